"""Change detection and the queries: the Python analysis and the BigQuery SQL (in DuckDB) on the same Parquet.

Two data sets: rows built here to hit each rule (cloudy in between, scene overlaps, ties, an already
disturbed tile, two AOIs), and the demo's two scans.
"""

import datetime as dt
import hashlib
import math

import pytest
from shapely.geometry import box

from pipelines.analysis import queries, rules
from pipelines.store import schema
from planet_core.labels import LABELS
from tests import tables

D1, D2, D3, D4 = dt.date(2026, 6, 1), dt.date(2026, 6, 15), dt.date(2026, 7, 1), dt.date(2026, 7, 15)


def row(tile, scene, labels, valid=1.0, acquired="2026-06-01T13:00:00+00:00", clear_fraction=None, **probabilities):
    """A scan row of tile number ``tile``; p_<label> is 0.9 for its labels unless given, else 0.05;
    ``clear_fraction`` from a UDM2 (None: the scene had none)."""
    x = tile * 0.01
    outline = box(-56 + x, -10, -55.99 + x, -9.99)
    p = {name: probabilities.get(name, 0.9 if name in labels else 0.05) for name in LABELS}
    return {
        "tile_id": f"T{tile}",
        "scene_id": scene,
        "scan_id": "x",
        "acquired": dt.datetime.fromisoformat(acquired) if acquired else None,
        "geometry": outline.wkb,
        "lon": outline.centroid.x,
        "lat": outline.centroid.y,
        "area_m2": 1.0e6 + tile,
        "valid_fraction": valid,
        "clear_fraction": clear_fraction,
        **{f"p_{n}": v for n, v in p.items()},
        "labels": [n for n in LABELS if n in labels],
        "model_version": "test",
    }


PRIMARY = ["clear", "primary"]
CLOUDY = ["cloudy"]
SCANS = {
    ("amazonas", D1): [
        row(1, "a", PRIMARY), row(2, "a", PRIMARY), row(3, "a", PRIMARY + ["road"]), row(4, "a", PRIMARY),
        row(5, "a", ["haze", "primary"], valid=0.9), row(5, "b", PRIMARY + ["road"], valid=1.0),
        row(6, "a", PRIMARY), row(7, "a", CLOUDY), row(8, "a", PRIMARY),
        row(9, "a", PRIMARY, acquired=None), row(9, "b", PRIMARY + ["agriculture"]),  # tie: b is acquired
    ],
    ("amazonas", D2): [
        row(1, "c", CLOUDY), row(2, "c", CLOUDY + ["agriculture"]), row(3, "c", PRIMARY + ["road", "agriculture"]),
        row(4, "c", CLOUDY, valid=1.0), row(4, "d", ["partly_cloudy", "primary", "slash_burn"], valid=0.6),
        row(6, "c", ["clear", "agriculture"]), row(7, "c", ["clear", "agriculture"]),
        row(8, "c", PRIMARY + ["agriculture", "road"], agriculture=0.5, road=0.4),
        row(9, "d", PRIMARY, acquired="2026-06-15T13:00:00+00:00"),
    ],
    ("amazonas", D3): [
        row(1, "e", PRIMARY + ["agriculture"]), row(2, "e", PRIMARY), row(6, "e", ["clear", "agriculture"]),
        row(5, "e", PRIMARY + ["agriculture"]),
    ],
    ("para", D1): [row(1, "p", PRIMARY), row(20, "p", PRIMARY)],
    ("para", D3): [row(1, "q", ["clear", "primary", "conventional_mine"]), row(20, "q", CLOUDY)],
    # UDM2 clear fractions (min_clear_fraction 0.8 unless a test says otherwise).
    ("mato", D1): [row(30, "m1", PRIMARY, clear_fraction=0.95), row(31, "m1", PRIMARY),
                   row(32, "m1", PRIMARY, clear_fraction=1.0), row(33, "m1", PRIMARY, clear_fraction=0.79)],
    ("mato", D2): [row(30, "m2", PRIMARY + ["agriculture"], clear_fraction=0.5),
                   row(31, "m2", PRIMARY + ["road"], clear_fraction=0.85),
                   row(32, "m2", PRIMARY + ["agriculture"], clear_fraction=0.6),
                   row(32, "n2", PRIMARY, valid=0.7, clear_fraction=0.9),
                   row(33, "m2", PRIMARY + ["agriculture"], clear_fraction=0.95)],
    ("mato", D3): [row(30, "m3", PRIMARY + ["agriculture"], clear_fraction=0.9)],
    # The alert lifecycle: confirmation, the highest level, retraction, a second alert, the state as of a date.
    ("xingu", D1): [row(t, "x1", PRIMARY) for t in range(40, 47)],
    ("xingu", D2): [row(40, "x2", PRIMARY + ["agriculture"], agriculture=0.97),
                    row(41, "x2", PRIMARY + ["road"], road=0.6), row(42, "x2", PRIMARY + ["agriculture"]),
                    row(43, "x2", PRIMARY + ["agriculture"]),
                    row(44, "x2", PRIMARY + ["agriculture"], agriculture=0.97, clear_fraction=0.95),
                    row(45, "x2", PRIMARY + ["agriculture"]), row(46, "x2", PRIMARY + ["agriculture"])],
    ("xingu", D3): [row(40, "x3", PRIMARY + ["agriculture"], agriculture=0.95),
                    row(41, "x3", PRIMARY + ["road"], road=0.95), row(42, "x3", CLOUDY), row(43, "x3", PRIMARY),
                    row(44, "x3", PRIMARY + ["agriculture"], clear_fraction=0.5),
                    row(45, "x3", ["haze", "primary", "road"], road=0.99, agriculture=0.99),
                    row(46, "x3", ["clear", "water"])],
    ("xingu", D4): [row(42, "x4", PRIMARY), row(43, "x4", PRIMARY + ["agriculture"]),
                    row(44, "x4", PRIMARY + ["agriculture"], agriculture=0.98, clear_fraction=0.9),
                    row(45, "x4", PRIMARY), row(46, "x4", PRIMARY + ["agriculture"])],
}


def _write_scans(prefix, scans):
    """Commit ``{(aoi, date): rows}`` to the scans table under ``prefix``; the prefix as a string."""
    return tables.write_scans(prefix, scans)


@pytest.fixture(scope="module")
def constructed(tmp_path_factory):
    return _write_scans(tmp_path_factory.mktemp("constructed"), SCANS)


def test_rules_on_constructed_rows(constructed):
    obs = rules.observations(tables.read_rows(constructed))
    found = {(a.aoi, a.tile_id): a for a in rules.alerts(obs) if a.aoi != "xingu"}
    # Cloudy in between: the tile keeps its last cloud-free state, the alert dates from it.
    assert (found[("amazonas", "T1")].before_date, found[("amazonas", "T1")].first_detected) == (D1, D3)
    # A cloudy observation never confirms an alert, whatever else it was labelled.
    assert ("amazonas", "T2") not in found
    # Already disturbed before: no alert. Overlapping scenes: the cloud-free row wins over a cloudy one.
    assert ("amazonas", "T3") not in found
    assert found[("amazonas", "T4")].detected_scene == "d" and found[("amazonas", "T4")].labels_gained == (
        "slash_burn",
    )
    # Overlap on D1: the larger valid fraction (scene b, with a road) wins, so T5 was not intact forest.
    assert ("amazonas", "T5") not in found
    # One alert when forest turns to fields, none for fields staying fields.
    assert [a.first_detected for a in found.values() if a.tile_id == "T6"] == [D2]
    # Never seen cloud-free before: no state to compare with.
    assert ("amazonas", "T7") not in found
    assert math.isclose(found[("amazonas", "T8")].probability, 1 - (1 - 0.5) * (1 - 0.4), rel_tol=1e-6)
    # A tie in valid fraction goes to the later acquisition (b has agriculture: not intact on D1).
    assert ("amazonas", "T9") not in found
    assert found[("para", "T1")].labels_gained == ("conventional_mine",)
    # UDM2: on D2 only half of T30 is clear, too little to judge; the alert waits for D3 and dates from D1.
    assert (found[("mato", "T30")].before_date, found[("mato", "T30")].first_detected) == (D1, D3)
    # A scene without a mask (D1) and one with enough clear pixels (D2) are both judged.
    assert (found[("mato", "T31")].before_date, found[("mato", "T31")].first_detected) == (D1, D2)
    # Overlap: the clearer row (n2, 0.9) wins over the larger one (m2, clear 0.6): intact, no alert.
    assert ("mato", "T32") not in found
    # 0.79 clear on D1 is below 0.8: no judged state before D2, so no alert.
    assert ("mato", "T33") not in found
    assert len(found) == 7
    # A looser threshold judges D2: T30's alert moves to D2, and T33's D1 becomes intact forest.
    loose = {(a.aoi, a.tile_id): a for a in rules.alerts(obs, min_clear_fraction=0.4) if a.aoi == "mato"}
    assert {k: (a.before_date, a.first_detected) for k, a in loose.items()} == {
        ("mato", "T30"): (D1, D2), ("mato", "T31"): (D1, D2), ("mato", "T33"): (D1, D2)}
    # Windows: the previous state may be older than the window.
    assert {(a.aoi, a.tile_id) for a in rules.alerts(obs, D3, D3) if a.aoi != "xingu"} == {
        ("amazonas", "T1"),
        ("para", "T1"),
        ("mato", "T30"),
    }
    assert {(a.aoi, a.tile_id) for a in rules.alerts(obs, D1, D2) if a.aoi != "xingu"} == {
        ("amazonas", "T4"),
        ("amazonas", "T6"),
        ("amazonas", "T8"),
        ("mato", "T31"),
    }
    latest = {(o.aoi, o.tile_id): o for o in rules.latest_state(obs)}
    assert latest[("para", "T20")].scan_date == D1  # cloudy on D3: the last cloud-free state stands
    assert latest[("amazonas", "T7")].scan_date == D2


def _lifecycle(found):
    return {(a.tile_id, a.first_detected): (a.confidence, a.confirmed_date, a.status, a.retracted_date)
            for a in found if a.aoi == "xingu"}


def test_alert_lifecycle_on_constructed_rows(constructed):
    """Each expected state is worked out by hand from the rows in SCANS (xingu)."""
    obs = rules.observations(tables.read_rows(constructed))
    assert _lifecycle(rules.alerts(obs)) == {
        # Confirmed on D3, agriculture at 0.97 then 0.95: both at least 0.9.
        ("T40", D2): ("highest", D3, "active", None),
        # Confirmed, but the road was 0.6 on D2.
        ("T41", D2): ("high", D3, "active", None),
        # Cloudy on D3 neither confirms nor retracts; intact forest on D4 retracts.
        ("T42", D2): ("low", None, "retracted", D4),
        # Retracted on D3, then a second alert on D4 with an id of its own.
        ("T43", D2): ("low", None, "retracted", D3),
        ("T43", D4): ("low", None, "active", None),
        # D3 is only half clear by its UDM2: D4 confirms (0.97, then 0.98).
        ("T44", D2): ("highest", D4, "active", None),
        # Confirmed by a hazy D3 (roads at 0.99, the D2 agriculture at 0.9: not both 0.9 in float32),
        # and retracted by D4: the status changes, the level stays.
        ("T45", D2): ("high", D3, "retracted", D4),
        # Water alone on D3 (judged, neither disturbed nor intact) does not confirm.
        ("T46", D2): ("low", None, "active", None),
    }
    # As of D2 every alert is one observation old.
    assert set(_lifecycle(rules.alerts(obs, end=D2)).values()) == {("low", None, "active", None)}
    ids = {(a.tile_id, a.first_detected): a.alert_id for a in rules.alerts(obs) if a.aoi == "xingu"}
    assert ids[("T43", D2)] != ids[("T43", D4)]
    # The id is the documented hash, worked out with hashlib here.
    assert ids[("T40", D2)] == hashlib.sha256(b"T40|2026-06-15").hexdigest()[:16]
    # A lower cut for "highest" promotes T41 (0.6 and 0.95 are both at least 0.5).
    looser = {a.tile_id: a.confidence for a in rules.alerts(obs, highest_probability=0.5) if a.aoi == "xingu"
              and a.first_detected == D2}
    assert looser["T41"] == "highest" and looser["T42"] == "low"


@pytest.fixture(params=["constructed", pytest.param("demo_scans", marks=pytest.mark.slow)])
def scans(request):
    if request.param == "demo_scans":
        return request.getfixturevalue("demo")["scans"]
    return request.getfixturevalue("constructed")


def _same(python_rows, sql_rows, key):
    assert len(python_rows) == len(sql_rows)
    python_rows, sql_rows = sorted(python_rows, key=key), sorted(sql_rows, key=key)
    for p, s in zip(python_rows, sql_rows):
        for name, value in p.items():
            if isinstance(value, float) or isinstance(s[name], float):
                # DuckDB keeps FLOAT (float32) columns in float32 arithmetic, BigQuery and Python use float64.
                assert (value is None and s[name] is None) or math.isclose(
                    value, s[name], rel_tol=1e-6, abs_tol=1e-6
                ), name
            else:
                assert (list(value) if isinstance(value, tuple) else value) == s[name], name


def test_sql_and_python_agree(scans):
    obs = rules.observations(tables.read_rows(scans))
    con = tables.connect(scans)
    dates = sorted({o.scan_date for o in obs})

    cases = [(dates[0], dates[-1], {}), (dates[-1], dates[-1], {}), (dates[0], dates[-1], {"min_clear_fraction": 0.4}),
             (dates[0], dates[1], {}), (dates[0], dates[-1], {"highest_probability": 0.5})]
    for start, end, given in cases:  # given {}: both engines' defaults
        python = [{c.name: getattr(a, c.name) for c in schema.ALERT_COLUMNS if c.name != "cleared_ha"}  # clearings'
                  for a in rules.alerts(obs, start, end, **given)]
        sql = queries.run(con, "alerts", {"start_date": start, "end_date": end, **given})
        _same(
            python,
            [{k: bytes(r[k]) if k == "geometry" else r[k] for k in python[0]} for r in sql] if python else sql,
            key=lambda r: (r["aoi"], r["tile_id"], r["first_detected"]),
        )
    assert rules.alerts(obs, dates[0], dates[-1]), "the data sets must produce alerts to compare"

    python = [{"aoi": o.aoi, "tile_id": o.tile_id, "scan_date": o.scan_date, "scene_id": o.scene_id,
               "labels": o.labels, "cloud_free": o.cloud_free} for o in rules.latest_state(obs)]
    sql = [{k: r[k] for k in python[0]} for r in queries.run(con, "latest_state")]
    _same(python, sql, key=lambda r: (r["aoi"], r["tile_id"]))

    _same(rules.label_areas(obs), queries.run(con, "label_areas"),
          key=lambda r: (r["aoi"], r["scan_date"], r["label"]))
    _same(rules.label_trends(obs), queries.run(con, "label_trends"),
          key=lambda r: (r["aoi"], r["label"], r["scan_date"]))


def test_coverage_and_tile_states_on_constructed_rows(constructed):
    """Worked out by hand from SCANS: amazonas has tiles T1..T9 (area 1e6 + n m2 each)."""
    con = tables.connect(constructed)
    coverage = {(r["aoi"], r["scan_date"]): r for r in queries.run(con, "coverage")}
    area = {n: 1.0e6 + n for n in range(1, 10)}
    total = sum(area.values())
    d2 = coverage[("amazonas", D2)]
    # D2: T5 not seen; T1 and T2 cloudy; T4's partly cloudy scene wins over the cloudy one; the rest judged.
    assert (d2["aoi_tiles"], d2["seen_tiles"]) == (9, 8)
    assert d2["judged_share"] == pytest.approx(sum(area[n] for n in (3, 4, 6, 7, 8, 9)) / total)
    assert d2["obscured_share"] == pytest.approx((area[1] + area[2]) / total)
    assert d2["not_covered_share"] == pytest.approx(area[5] / total)
    # D3: four tiles seen, all judged.
    assert coverage[("amazonas", D3)]["judged_share"] == pytest.approx(sum(area[n] for n in (1, 2, 5, 6)) / total)
    # mato D2: T30 (0.5 clear) and T32's winner... n2 is 0.9 clear: only T30 is obscured by its mask.
    mato = {n: 1.0e6 + n for n in range(30, 34)}
    assert coverage[("mato", D2)]["obscured_share"] == pytest.approx(mato[30] / sum(mato.values()))
    states = {(r["aoi"], r["scan_date"], r["tile_id"]): (r["state"], r["judged"])
              for r in queries.run(con, "tile_states")}
    assert states[("mato", D2, "T30")] == ("obscured", False)
    assert states[("mato", D2, "T33")] == ("disturbed", True)
    assert states[("amazonas", D2, "T1")] == ("cloudy", False)
    assert states[("amazonas", D1, "T5")] == ("disturbed", True)  # scene b (road) wins the overlap
    assert states[("amazonas", D1, "T1")] == ("primary", True)
    assert states[("xingu", D3, "T46")] == ("water", True)
    assert states[("amazonas", D2, "T6")] == ("disturbed", True)


def test_every_query_is_checked():
    assert queries.names() == ["alerts", "coverage", "label_areas", "label_trends", "latest_state", "tile_states",
                               "zone_alerts"]


def test_every_query_reads_the_materialized_observations_as_the_view(constructed):
    """The report's connection holds the observations as a table of the columns the queries name, without
    the rest (the other probabilities, the bounding box): every query gives the same rows on it as on the
    view over all the columns."""
    params = {"start_date": D1, "end_date": D4}
    views, tables_ = tables.connect(constructed), tables.connect(constructed, materialize=True)
    for con in (views, tables_):
        con.execute("CREATE VIEW planet_tiles.events AS SELECT 'z' AS event_id, DATE '2026-06-15' AS first_detected, "
                    "[{'name': 'zone', 'area_ha': 1.5, 'cleared_ha': 0.5}] AS zones")
    for name in queries.names():
        wanted = {k: v for k, v in params.items() if k in queries.parameters(name)}
        rows = queries.run(views, name, wanted)
        assert rows, name
        # tile_states has no ORDER BY: the rows are compared as a set
        assert sorted(map(repr, queries.run(tables_, name, wanted))) == sorted(map(repr, rows)), name
    kept = {d[0] for d in tables_.execute("SELECT * FROM planet_tiles.observations LIMIT 0").description}
    assert {"p_primary", "bbox", "scene_uri", "valid_fraction"}.isdisjoint(kept)
    assert {"geometry", "p_agriculture", "labels", "cloud_free", "disturbance", "intact"} <= kept
    assert _kind(tables_, "observations") == "BASE TABLE" and _kind(views, "observations") == "VIEW"


def _kind(con, name: str) -> str:
    return con.execute("SELECT table_type FROM information_schema.tables WHERE table_schema = 'planet_tiles' "
                       "AND table_name = ?", [name]).fetchone()[0]


def test_observations_are_left_a_view_when_no_tile_has_two_rows_on_a_date(tmp_path):
    """Without a repeated key the view does not sort: each query reading its own columns of the files is
    faster than a copy of them all, so ``materialize`` leaves it a view."""
    firsts = {key: list({r["tile_id"]: r for r in reversed(rows)}.values()) for key, rows in SCANS.items()}
    assert sum(map(len, firsts.values())) < sum(map(len, SCANS.values()))
    con = tables.connect(_write_scans(tmp_path / "scans", firsts), materialize=True)
    assert _kind(con, "observations") == "VIEW"
    assert "Window" not in con.execute("EXPLAIN SELECT * FROM planet_tiles.observations").fetchall()[0][1]


def test_the_query_command_streams_the_rows_under_a_memory_limit(constructed, capsys):
    """``planet-tiles query`` prints one JSON line per row, the same rows whatever DuckDB's memory limit, and
    names a memory limit that is not a size."""
    import json

    from pipelines.cli import main

    params = ["--param", f"start_date={D1}", "--param", f"end_date={D4}"]
    expected = [{k: v for k, v in row.items() if k != "geometry"} for row in
                queries.run(tables.connect(constructed), "alerts", {"start_date": D1, "end_date": D4})]
    assert len(expected) >= 5
    for limit in ("1GB", "64MB"):
        main(["query", "alerts", "--scans", constructed, *params, "--memory_limit", limit])
        printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert printed == json.loads(json.dumps(expected, default=str))
    with pytest.raises(SystemExit) as stopped:
        main(["query", "alerts", "--scans", constructed, *params, "--memory_limit", "lots"])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and err.count("\n") == 1 and "--memory_limit lots: not a memory size" in err


@pytest.mark.parametrize(("given", "message"), [
    (["start_date=yesterday", "end_date=2026-07-01"], "--param start_date=yesterday: write the date as YYYY-MM-DD"),
    (["start_date=2026-06-01", "end_date=2026-07-01", "min_clear_fraction=lots"],
     "--param min_clear_fraction=lots: must be a number between 0 and 1"),
    (["start_date=2026-06-01", "end_date=2026-07-01", "highest_probability=1.5"],
     "--param highest_probability=1.5: must be a number between 0 and 1"),
    (["end_date=2026-07-01"], "query alerts takes --param end_date=..., --param highest_probability=..., --param "
                              "min_clear_fraction=..., --param start_date=...; missing start_date"),
    (["start_date=2026-06-01", "end_date=2026-07-01", "zoom=3"], "; unknown zoom"),
    # an empty answer, exit 0, as if no alert had been raised
    (["start_date=2026-07-01", "end_date=2026-06-30"],
     "--param end_date=2026-06-30 is before start_date=2026-07-01: no row could be in that range"),
    # the last one given won, silently
    (["start_date=2026-06-01", "end_date=2026-07-01", "start_date=2026-06-02"],
     "--param start_date is given twice (2026-06-01 and 2026-06-02): give it once"),
])
def test_query_parameters_of_the_wrong_kind_are_named_before_duckdb(constructed, capsys, given, message):
    """A date DuckDB cannot read, or a share outside 0-1, was DuckDB's conversion error as a failed run."""
    from tests.conftest import refused

    stderr = refused(capsys, "query", "alerts", "--scans", constructed, *[a for g in given for a in ("--param", g)])
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("planet-tiles query: ") and message in lines[0], stderr


@pytest.mark.parametrize("command", [["query", "alerts"], ["report", "--no_images", "--no_clearings"]])
def test_running_out_of_the_memory_limit_is_one_line_saying_what_to_do(constructed, tmp_path, capsys, command):
    """DuckDB's error ends in tuning advice and a link: the query was a traceback, the report said "See also
    https://..."; both now give DuckDB's first line and the flag to change, exit 1."""
    from tests.conftest import run_here

    extra = ["--output", str(tmp_path / "report")] if command[0] == "report" else [
        "--param", f"start_date={D1}", "--param", f"end_date={D4}"]
    code, err = run_here(*command, "--scans", constructed, *extra, "--memory_limit", "1KB")
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"planet-tiles {command[0]}: {command[0]}") and "Out of Memory Error" in lines[0]
    assert "give --memory_limit more" in lines[0] and "duckdb.org" not in lines[0]


def _both_engines(tmp_path, scans):
    """Write ``{(aoi, date): rows}`` as scan partitions; the Python observations and a DuckDB connection."""
    prefix = _write_scans(tmp_path, scans)
    return rules.observations(tables.read_rows(prefix)), tables.connect(prefix)


def test_the_edges_of_the_alert_rules_by_hand(tmp_path):
    """Cuts are inclusive (a clear fraction or a probability equal to its cut passes), a scene without a
    UDM2 ranks as fully clear (a tie, broken by the valid fraction), and alerts list by probability, highest
    first. 0.75 and 0.5 are exact in float32, as the scan rows store them."""
    scans = {
        ("edge", D1): [
            row(50, "a", PRIMARY),
            row(51, "n", PRIMARY + ["road"], valid=0.9),
            row(51, "m", PRIMARY, clear_fraction=1.0),
            row(52, "a", PRIMARY),
            row(53, "a", PRIMARY),
            row(54, "a", PRIMARY),
        ],
        ("edge", D2): [
            row(50, "b", PRIMARY + ["agriculture"], clear_fraction=0.75),
            row(51, "b", PRIMARY + ["agriculture"]),
            row(52, "b", PRIMARY + ["agriculture"], agriculture=0.5),
            row(53, "b", PRIMARY + ["agriculture"], agriculture=0.6),
            row(54, "b", PRIMARY + ["agriculture"], agriculture=0.8),
        ],
        ("edge", D3): [row(52, "c", PRIMARY + ["agriculture"], agriculture=0.5)],
    }
    obs, con = _both_engines(tmp_path, scans)
    judging = {"min_clear_fraction": 0.75, "highest_probability": 0.5}
    expected = [("T50", "a", None), ("T51", "m", None), ("T54", "a", None), ("T53", "a", None), ("T52", "a", "highest")]
    python = rules.alerts(obs, D1, D3, **judging)
    sql = queries.run(con, "alerts", {"start_date": D1, "end_date": D3, **judging})
    for found in ([(a.tile_id, a.before_scene, a.confidence) for a in python],
                  [(a["tile_id"], a["before_scene"], a["confidence"]) for a in sql]):
        assert [(t, s) for t, s, _ in found] == [(t, s) for t, s, _ in expected]
        assert found[-1][2] == "highest"  # 0.5 on both observations reaches the 0.5 cut
    assert {a.tile_id: a.confidence for a in rules.alerts(obs, D1, D3, min_clear_fraction=0.75,
                                                          highest_probability=0.51)}["T52"] == "high"
    assert "T50" not in {a.tile_id for a in rules.alerts(obs, D1, D3, min_clear_fraction=0.76)}
    # The map's states cut at the same place: T50's 0.75 clear is judged at a 0.75 cut, obscured above it.
    for cut, expected_state in ((0.74, ("disturbed", True)), (0.75, ("disturbed", True)), (0.76, ("obscured", False))):
        states = {(r["tile_id"], r["scan_date"]): (r["state"], r["judged"])
                  for r in queries.run(con, "tile_states", {"min_clear_fraction": cut})}
        assert states[("T50", D2)] == expected_state, cut


def test_label_areas_and_trends_by_hand(tmp_path):
    """Tile n has area 1e6 + n m2. Areas in km2 to the square metre; rows in AOI, date, label order
    whatever the counts or areas; a date when every tile was cloudy has no share (not a division by 0)."""
    scans = {
        ("a", D1): [row(1, "s", PRIMARY), row(2, "s", PRIMARY + ["road"]), row(3, "s", ["clear"])],
        ("a", D2): [row(4, "t", CLOUDY), row(5, "t", CLOUDY)],
        ("a", D3): [row(6, "u", PRIMARY + ["road", "water"]), row(7, "u", ["clear", "road"])],
        ("b", D1): [row(8, "v", ["clear", "water"])],
    }
    obs, con = _both_engines(tmp_path, scans)
    km2 = lambda *tiles: sum(1e6 + t for t in tiles) / 1e6  # noqa: E731
    expected_areas = [
        ("a", D1, "clear", 3, km2(1, 2, 3)), ("a", D1, "primary", 2, km2(1, 2)), ("a", D1, "road", 1, km2(2)),
        ("a", D2, "cloudy", 2, km2(4, 5)),
        ("a", D3, "clear", 2, km2(6, 7)), ("a", D3, "primary", 1, km2(6)), ("a", D3, "road", 2, km2(6, 7)),
        ("a", D3, "water", 1, km2(6)),
        ("b", D1, "clear", 1, km2(8)), ("b", D1, "water", 1, km2(8)),
    ]
    for found, rel in ((rules.label_areas(obs), 1e-12), (queries.run(con, "label_areas"), 1e-7)):
        assert [(r["aoi"], r["scan_date"], r["label"], r["tiles"]) for r in found] == [e[:4] for e in expected_areas]
        assert [r["area_km2"] for r in found] == pytest.approx([e[4] for e in expected_areas], rel=rel)
    for found, rel in ((rules.label_trends(obs), 1e-12), (queries.run(con, "label_trends"), 1e-7)):
        road = [r for r in found if r["aoi"] == "a" and r["label"] == "road"]
        assert [r["scan_date"] for r in road] == [D1, D2, D3]
        assert [r["area_km2"] for r in road] == pytest.approx([km2(2), 0.0, km2(6, 7)], rel=rel)
        assert [r["cloud_free_km2"] for r in road] == pytest.approx([km2(1, 2, 3), 0.0, km2(6, 7)], rel=rel)
        assert road[1]["share"] is None and road[1]["share_change"] is None and road[2]["share_change"] is None
        assert road[0]["share"] == pytest.approx(km2(2) / km2(1, 2, 3), rel=rel)
        assert road[2]["share"] == pytest.approx(1.0, rel=rel)


def test_array_filters_run_as_list_functions_with_the_subqueries_results():
    """The observations view's filters over ``labels`` run in DuckDB as list functions, and give what
    BigQuery's subqueries (as sqlglot writes them for DuckDB, unrewritten) give: order kept, repeats kept,
    empty and NULL label lists, NULL labels in a list."""
    import duckdb
    import sqlglot

    bigquery = queries.sql("observations")
    assert "UNNEST" not in queries.to_duckdb("observations")
    plain = ";".join(sqlglot.transpile(bigquery, read="bigquery", write="duckdb"))
    cases = [["clear", "primary"], ["road", "primary", "agriculture"], ["agriculture", "road", "agriculture"],
             [], None, ["cloudy"], ["clear", "primary", "water"], ["haze", "slash_burn", "artisinal_mine"],
             [None, "primary", "road"], ["primary", None]]
    results = []
    for text in (plain, queries.to_duckdb("observations")):
        con = duckdb.connect()
        con.execute("CREATE SCHEMA planet_tiles")
        con.execute("CREATE TABLE planet_tiles.tile_labels (aoi VARCHAR, tile_id VARCHAR, scan_date DATE, "
                    "labels VARCHAR[], mask_status VARCHAR, clear_fraction FLOAT, valid_fraction FLOAT, "
                    "acquired TIMESTAMP, scene_id VARCHAR)")
        con.executemany("INSERT INTO planet_tiles.tile_labels VALUES ('a', ?, DATE '2026-06-01', ?, 'absent', "
                        "NULL, 1, NULL, 's')", [(f"T{i}", labels) for i, labels in enumerate(cases)])
        con.execute(text)
        results.append(con.execute("SELECT tile_id, disturbance, intact, cloud_free FROM planet_tiles.observations "
                                   "ORDER BY tile_id").fetchall())
    assert results[0] == results[1]
    assert dict((t, d) for t, d, *_ in results[1])["T2"] == ["agriculture", "road", "agriculture"]


@pytest.mark.parametrize("repeats", [(1, 1, 1, 2, 3, 5), (1,)])
def test_the_observations_view_keeps_the_same_row_per_key_when_only_repeated_keys_are_sorted(repeats):
    """The view as DuckDB runs it sorts only the rows whose key (aoi, tile, scan date) repeats, and none
    when no key does (``queries.create_view``): against BigQuery's text transpiled as it is, on rows where
    keys repeat two to five times or not at all, null keys among them, and every rule of the order tried
    (cloudy or not, mask unreadable, null and tied clear and valid fractions, null and tied times)."""
    import random

    import duckdb

    pick = random.Random(7)
    rows = []
    for key in range(120):
        aoi, tile = pick.choice(["a", "b", None]), None if key == 0 else f"T{key}"
        for copy in range(pick.choice(repeats)):
            rows.append((aoi, tile, dt.date(2026, 6, 1 + key % 2) if key % 7 else None,
                         pick.choice([["primary"], ["cloudy"], ["primary", "road"], [], None]),
                         pick.choice(["absent", "read", "unreadable"]), pick.choice([None, 0.5, 0.9, 0.9]),
                         pick.choice([0.6, 1.0, 1.0]), pick.choice([None, dt.datetime(2026, 6, 1, 10, copy % 2)]),
                         f"s{len(rows)}"))
    results, plans = [], []
    for create in (lambda con: con.execute(queries.to_duckdb("observations")),
                   lambda con: queries.create_view(con, "observations")):
        con = duckdb.connect()
        con.execute("CREATE SCHEMA planet_tiles")
        con.execute("CREATE TABLE planet_tiles.tile_labels (aoi VARCHAR, tile_id VARCHAR, scan_date DATE, "
                    "labels VARCHAR[], mask_status VARCHAR, clear_fraction FLOAT, valid_fraction FLOAT, "
                    "acquired TIMESTAMP, scene_id VARCHAR)")
        con.executemany("INSERT INTO planet_tiles.tile_labels VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        create(con)
        results.append(con.execute("SELECT * FROM planet_tiles.observations ORDER BY scene_id").fetchall())
        plans.append(con.execute("EXPLAIN SELECT * FROM planet_tiles.observations").fetchall()[0][1])
    assert len(results[1]) == 120 and (len(rows) > 200) == (len(repeats) > 1)
    assert results[1] == results[0]
    assert ("Window" in plans[1]) == (len(repeats) > 1) and "Window" in plans[0]


@pytest.mark.parametrize("subquery", [
    "ARRAY(SELECT label FROM UNNEST(labels) AS label WHERE label = other)",  # reads a column of the row
    "ARRAY(SELECT label FROM UNNEST(labels) AS label WITH OFFSET AS i WHERE label = 'a' ORDER BY i DESC)",
    "ARRAY(SELECT UPPER(label) FROM UNNEST(labels) AS label WHERE label = 'a')",
    "ARRAY(SELECT other FROM UNNEST(labels) AS label WHERE label = 'a')",
    "ARRAY(SELECT label FROM UNNEST(labels) AS label WHERE label = 'a' LIMIT 1)",
    "EXISTS(SELECT 1 FROM UNNEST(labels) AS label, UNNEST(others) AS o WHERE label = o)",
])
def test_other_subqueries_over_arrays_are_left_as_they_are(subquery):
    import sqlglot

    statement = sqlglot.parse_one(f"SELECT {subquery} AS x FROM t", read="bigquery")
    assert statement.transform(queries._as_list_filter).sql("duckdb") == statement.sql("duckdb")


def test_the_query_command_writes_each_row_as_json_dumps_would():
    """``query`` builds its lines column by column; each is the text ``json.dumps(row, default=str)`` writes
    (the geometry left out): dates, times with a zone and without, nulls, lists, a date inside a struct."""
    import json

    import pyarrow as pa

    when = dt.datetime(2026, 6, 1, 13, 30, tzinfo=dt.timezone.utc)
    batch = pa.RecordBatch.from_pydict({
        "alert_id": ["a", "b", "c", None],
        "first_detected": pa.array([D1, D2, D1, None], pa.date32()),
        "acquired": pa.array([when, when, when + dt.timedelta(microseconds=5), None], pa.timestamp("us", tz="UTC")),
        "local": pa.array([when.replace(tzinfo=None)] * 4, pa.timestamp("ms")),
        "probability": pa.array([0.93, 0.5, None, 1e-7], pa.float32()),
        "labels_gained": [["road"], [], None, ["agriculture", "road"]],
        "zones": pa.array([{"name": "z", "since": D1}, None, {"name": "é", "since": None}, {"name": "q", "since": D2}]),
        "geometry": [b"\x01", b"\x02", None, b"\x03"],
        "area_m2": [1.0, 2.5, float("nan"), 3.0],
    })
    expected = []
    for row in batch.to_pylist():
        row.pop("geometry")
        expected.append(json.dumps(row, default=str))
    assert queries.json_lines(batch) == expected
