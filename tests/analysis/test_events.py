"""Events and zones on alerts built by hand: which alerts group, what an event adds up to, and the zone
areas (in Python and through zone_alerts.sql on the events table)."""

import dataclasses
import datetime as dt
import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely
from pyproj import Geod
from shapely.geometry import box, mapping

from pipelines.analysis import clearings, events, queries, report
from pipelines.analysis.rules import Alert, alert_id
from pipelines.geo.grid import WebMercatorGrid
from pipelines.store import schema
from planet_core.errors import UserError
from planet_core.labels import LABELS
from tests import tables

D1 = dt.date(2026, 6, 1)
GRID = WebMercatorGrid(14)
X0, Y0 = 5000, 8600


def alert(dx, dy, first=D1, aoi="a", labels=("agriculture",), confidence="low", status="active"):
    outline = GRID.polygon_wgs84(X0 + dx, Y0 + dy)
    tile_id = f"WebMercatorQuad/14/{X0 + dx}/{Y0 + dy}"
    return Alert(alert_id=alert_id(tile_id, first), aoi=aoi, tile_id=tile_id, before_date=first - dt.timedelta(days=14),
                 before_scene="s0", first_detected=first, detected_scene="s1", detected_acquired=None,
                 labels_gained=labels, probability=0.9, confidence=confidence, confirmed_date=None, status=status,
                 retracted_date=None, last_judged=first, geometry=outline.wkb, lon=outline.centroid.x,
                 lat=outline.centroid.y, area_m2=100.0 * (10 + dx + dy))


FOUND = [
    alert(0, 0, labels=("agriculture", "road"), confidence="high"),
    alert(1, 1, status="retracted"),                                   # diagonal neighbour of (0, 0)
    alert(2, 1, D1 + dt.timedelta(days=60), labels=("road",)),         # touches (1, 1), two months later
    alert(5, 5),                                                       # alone
    alert(0, 0, aoi="b"),                                              # same tile, another AOI
]


def test_touching_alerts_close_in_time_are_one_event():
    found = {e.alert_ids: e for e in events.events(FOUND)}
    ids = [a.alert_id for a in FOUND]
    first = found[tuple(sorted(ids[:2]))]
    assert (first.tiles, first.area_ha) == (2, (1000.0 + 1200.0) / 1e4)
    assert first.labels_gained == (("agriculture", 2), ("road", 1))
    assert (first.confidence, first.status, first.event_id) == ("high", "active", ids[0])
    assert shapely.from_wkb(first.geometry).equals(shapely.union_all([GRID.polygon_wgs84(X0, Y0),
                                                                       GRID.polygon_wgs84(X0 + 1, Y0 + 1)]))
    assert tuple(ids[2:3]) in found and tuple(ids[3:4]) in found and tuple(ids[4:5]) in found
    assert len(found) == 4
    # A wider window joins the two-month-later alert; a minimum mapping unit drops the small events.
    wide = events.events(FOUND, window_days=90)
    assert sorted(e.tiles for e in wide) == [1, 1, 3]
    [grown] = [e for e in wide if e.tiles == 3]  # first and last detection: its earliest and latest alerts
    assert (grown.first_detected, grown.last_detected) == (D1, D1 + dt.timedelta(days=60))
    assert [e.tiles for e in events.events(FOUND, window_days=90, min_event_ha=0.3)] == [3]
    # Within an AOI and a date, the largest event comes first, whatever the ids.
    assert [(e.aoi, e.first_detected, e.area_ha) for e in events.events(FOUND)] == [
        ("a", D1, 0.22), ("a", D1, 0.2), ("a", D1 + dt.timedelta(days=60), 0.13), ("b", D1, 0.1)]


@pytest.mark.parametrize("days_apart, joined", [(30, True), (31, True), (32, False)])
def test_the_event_window_joins_alerts_up_to_its_days_apart(days_apart, joined):
    """--event_window_days 31 (the default): neighbours first detected 31 days apart are one event, 32
    apart two; a shorter window splits them."""
    pair = [alert(0, 0), alert(1, 0, D1 + dt.timedelta(days=days_apart))]
    assert len(events.events(pair, window_days=31)) == (1 if joined else 2)
    assert len(events.events(pair, window_days=days_apart)) == 1
    assert len(events.events(pair, window_days=days_apart - 1)) == 2


def test_the_minimum_event_area_keeps_an_event_of_exactly_that_area():
    """--min_event_ha: an event of exactly that many hectares is kept, one of a square metre less dropped."""
    single = alert(5, 5)  # area_m2 100 x (10 + 5 + 5): 0.2 ha
    assert [e.area_ha for e in events.events([single], min_event_ha=0.2)] == [pytest.approx(0.2)]
    assert events.events([single], min_event_ha=0.2 + 1e-4) == []
    assert len(events.events([single], min_event_ha=0.2 - 1e-4)) == 1


def test_an_event_keeps_its_id_when_it_grows_onto_a_tile_with_a_smaller_id():
    """The id is its first alert's: a later alert next to it, on a tile whose id sorts first (a smaller
    column), joins the event and leaves the id as it was, so the events table and the links to a card
    stay valid from one report to the next."""
    early = alert(3, 3)
    later = alert(2, 3, D1 + dt.timedelta(days=14))
    assert later.tile_id < early.tile_id and later.alert_id != early.alert_id
    [before] = events.events([early])
    [after] = events.events([early, later])
    assert after.tiles == 2 and after.event_id == before.event_id == early.alert_id
    # Found on the same day, the smaller tile id leads: the id does not depend on the input order.
    same_day = alert(2, 3)
    assert {e.event_id for e in events.events([early, same_day])} == {same_day.alert_id}
    assert {e.event_id for e in events.events([same_day, early])} == {same_day.alert_id}


def test_zones_get_the_area_inside_them(tmp_path):
    tile = GRID.polygon_wgs84(X0, Y0)
    west, south, east, north = tile.bounds
    zones_file = tmp_path / "zones.geojson"
    zones_file.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"name": "west half"},
                        "geometry": mapping(box(west, south, (west + east) / 2, north)),
                    },
                    {"type": "Feature", "properties": {"name": "far away"}, "geometry": mapping(box(10, 10, 11, 11))},
                    {"type": "Feature", "properties": {"name": "next door"},  # shares the tile's east edge only
                     "geometry": mapping(box(east, south, east + (east - west), north))},
                ],
            }
        )
    )
    zones = events.read_zones(str(zones_file))
    found = events.events(FOUND[:1], zones=zones)
    (name, ha, cleared), = found[0].zones  # "next door" touches the event but holds none of it: not listed
    # Half of the tile, by area on the ellipsoid (pyproj's geodesic area, not planar degrees): the halves of a
    # tile split at its middle meridian are mirror images.
    geodesic_ha = abs(Geod(ellps="WGS84").geometry_area_perimeter(tile)[0]) / 1e4
    assert name == "west half" and ha == pytest.approx(geodesic_ha / 2, rel=1e-6) and cleared == 0
    # A clearing over the tile's western three quarters: the zone holds two thirds of it.
    part = box(west, south, west + 0.75 * (east - west), north)
    clearing = clearings.Clearing(
        "c1", found[0].event_id, "a", found[0].alert_ids, D1, D1, ("agriculture",), "low", events.geodesic_ha(part),
        1.0, clearings.NDVI, 0.15, part.wkb, part.centroid.x, part.centroid.y)
    found = clearings.attach(found, [clearing])
    assert found[0].cleared_ha == pytest.approx(abs(Geod(ellps="WGS84").geometry_area_perimeter(part)[0]) / 1e4)
    assert found[0].zones == (("west half", ha, 0.0),), "zones not given: the clearing is in none"
    found = clearings.attach(found, [clearing], zones)
    (name, ha, cleared), = found[0].zones
    assert cleared == pytest.approx(2 / 3 * found[0].cleared_ha, rel=1e-3)
    # zone_alerts.sql over the events table gives the same.
    row = {"tile_id": "t", "scene_id": "s", "acquired": None, "geometry": tile.wkb, "lon": 0.0, "lat": 0.0,
           "area_m2": 1.0, "valid_fraction": 1.0, **{f"p_{n}": 0.0 for n in LABELS}, "labels": ["primary"]}
    tables.write_scans(tmp_path / "scans", {("a", D1): [row]})
    path = tmp_path / "events.parquet"
    path.write_bytes(schema.parquet_bytes(report._records(found + [dataclasses.replace(found[0], event_id="e2")],
                                                          schema.EVENT_COLUMNS), schema.EVENT_COLUMNS))
    con = tables.connect(tmp_path / "scans", events=str(path))
    assert queries.run(con, "zone_alerts") == [{"zone": "west half", "first_detected": D1, "events": 2,
                                                "area_ha": pytest.approx(2 * ha),
                                                "cleared_ha": pytest.approx(2 * cleared)}]
    # --events that is not a report's events.parquet is named, not DuckDB's traceback (exit 2)
    (tmp_path / "broken.parquet").write_text("not parquet")
    alerts = tmp_path / "alerts.parquet"
    alerts.write_bytes(schema.parquet_bytes([], schema.ALERT_COLUMNS))
    for given, problem in ((tmp_path / "missing.parquet", "not readable as Parquet (IO Error: No files found"),
                           (tmp_path / "broken.parquet", "not readable as Parquet"),
                           (alerts, "not a report's events table (no area_ha, event_id, zones)")):
        with pytest.raises(UserError, match=f"^--events {given}: " + re.escape(problem)):
            tables.connect(tmp_path / "scans", events=str(given))


@pytest.mark.parametrize("content, message", [
    ("not json", "not a vector file GDAL can read"),
    (json.dumps({"type": "FeatureCollection", "features": []}), "no features"),
    (json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"kind": "x"},
                                                            "geometry": mapping(box(0, 0, 1, 1))}]}),
     "has no 'name' property"),
    (json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"name": "p"},
                                                            "geometry": {"type": "Point", "coordinates": [0, 0]}}]}),
     "is a Point, not a polygon"),
])
def test_bad_zones_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "zones.geojson"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        events.read_zones(str(path))


BBOX_COVERING = {"bbox": {"xmin": ["bbox", "xmin"], "ymin": ["bbox", "ymin"], "xmax": ["bbox", "xmax"],
                          "ymax": ["bbox", "ymax"]}}


@pytest.mark.parametrize("columns, geometry", [
    (schema.COLUMNS, {"geometry_types": ["Polygon"], "covering": BBOX_COVERING}),
    (schema.EVENT_COLUMNS, {"geometry_types": ["Polygon", "MultiPolygon"]})])
def test_parquet_files_carry_the_geoparquet_metadata_the_spec_asks_for(columns, geometry):
    """GeoParquet 1.1: a file key ``geo`` naming the primary geometry column, WKB encoding, the geometry
    types that may occur (event outlines are unions of tiles), planar edges, no ``crs`` (which means
    OGC:CRS84, longitude/latitude), and for scan rows the ``bbox`` covering column."""
    import io


    data = io.BytesIO(schema.parquet_bytes([], columns))
    written = pq.read_schema(data)
    assert json.loads(written.metadata[b"geo"]) == {
        "version": "1.1.0", "primary_column": "geometry",
        "columns": {"geometry": {"encoding": "WKB", "edges": "planar", **geometry}}}
    assert written.field("geometry").type == pa.binary()


def test_each_comparisons_frame_is_its_tiles_bounds_widened_by_its_largest_tile_on_both_of_its_dates():
    """The frames the clearings' scenes are looked for in: per comparison of an event (its alerts that compared
    one date before with one date of detection), the bounds of those alert tiles, widened on every side by
    the largest one's width or height (worked here from each tile's own bounds), one row for the date before
    and one for the date of detection; and for an event of several comparisons, its pictures' frame over all
    its tiles on its first alert's dates."""
    later = D1 + dt.timedelta(days=14)
    cells = {(0, 0): D1, (1, 1): D1, (5, 5): D1 + dt.timedelta(days=60), (2, 1): later}
    tall = shapely.box(-60.0, -12.0, -59.99, -11.97)  # a tile taller than wide: its height is the margin
    found = [alert(dx, dy, first) for (dx, dy), first in cells.items()] + [
        dataclasses.replace(alert(9, 9), geometry=tall.wkb)]
    by_id = {a.alert_id: a for a in found}
    grouped = events.events(found)
    assert len(grouped) == 3
    looks = []
    for event in grouped:
        comparisons, pictured = clearings._looks(event, by_id)
        looks += [(event, c) for c in comparisons] + ([(event, pictured)] if pictured else [])
    frames = clearings._frames([c for _, c in looks], [e.aoi for e, _ in looks],
                               {i: a.geometry for i, a in by_id.items()}).to_pylist()
    assert len(frames) == 2 * len(looks) == 2 * 5  # the grown event: two comparisons and its pictures
    for number, (_, look) in enumerate(looks):
        bounds = [tall.bounds] if found[-1].alert_id in look.alert_ids else [
            GRID.polygon_wgs84(X0 + dx, Y0 + dy).bounds for (dx, dy) in cells
            if alert(dx, dy, cells[(dx, dy)]).alert_id in look.alert_ids]
        margin = max(max(b[2] - b[0] for b in bounds), max(b[3] - b[1] for b in bounds))
        expected = (min(b[0] for b in bounds) - margin, min(b[1] for b in bounds) - margin,
                    max(b[2] for b in bounds) + margin, max(b[3] for b in bounds) + margin, margin)
        mine = [f for f in frames if f["frame"] == number]
        assert sorted((f["side"], f["scan_date"], f["aoi"]) for f in mine) == [
            ("after", look.detected_date, "a"), ("before", look.before_date, "a")]
        for f in mine:
            assert (f["west"], f["south"], f["east"], f["north"], f["margin"]) == pytest.approx(expected, abs=1e-12)
    grown = next(e for e in grouped if len(e.alert_ids) == 3)
    assert [(c.before_date, c.detected_date, len(c.alert_ids)) for e, c in looks if e is grown] == [
        (D1 - dt.timedelta(days=14), D1, 2), (later - dt.timedelta(days=14), later, 1),
        (D1 - dt.timedelta(days=14), D1, 3)]
