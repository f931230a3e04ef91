"""`planet-tiles export`: tables as GeoPackage, FlatGeobuf and GeoJSON, opened back with geopandas (GDAL)."""

import datetime as dt
import json

import geopandas
import pytest
import shapely

from pipelines.analysis import export, report
from pipelines.geo.grid import WebMercatorGrid
from planet_core.errors import UserError
from planet_core.labels import LABELS
from tests import tables

D1, D2 = dt.date(2026, 6, 1), dt.date(2026, 7, 1)
GRID = WebMercatorGrid(14)


def _row(col, labels):
    outline = GRID.polygon_wgs84(5000 + col, 8600)
    return {"tile_id": f"WebMercatorQuad/14/{5000 + col}/8600", "scene_id": "s", "acquired": None,
            "geometry": outline.wkb, "lon": outline.centroid.x, "lat": outline.centroid.y, "area_m2": 1.0,
            "valid_fraction": 1.0, **{f"p_{n}": 0.9 if n in labels else 0.05 for n in LABELS}, "labels": labels}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    scans = tables.write_scans(folder / "scans", {
        ("a", D1): [_row(c, ["clear", "primary"]) for c in range(3)],
        ("a", D2): [_row(0, ["clear", "primary", "agriculture"]), *(_row(c, ["clear", "primary"]) for c in (1, 2))],
        ("b", D1): [_row(9, ["clear", "water"])]})
    report.run(["--scans", scans, "--output", str(folder / "report"), "--no_images", "--no_clearings"])
    return {"scans": scans, "report": str(folder / "report")}


@pytest.mark.parametrize("extension", ["gpkg", "fgb", "geojson"])
def test_scans_open_in_gis_with_their_geometry_and_columns(made, tmp_path, extension):
    out = tmp_path / f"scans.{extension}"
    result = export.run(["tile_labels", "--scans", made["scans"], "--aoi", "a", "--output", str(out)])
    frame = geopandas.read_file(out)
    assert result["rows"] == len(frame) == 6 and frame.crs.to_epsg() == 4326
    assert set(frame["aoi"]) == {"a"} and "bbox" not in frame.columns
    rows = {(r["tile_id"], str(r["scan_date"])[:10]): r for r in tables.read_rows(made["scans"], "a")}
    for _, got in frame.iterrows():
        want = rows[(got["tile_id"], str(got["scan_date"])[:10])]
        assert got.geometry.equals_exact(shapely.from_wkb(want["geometry"]), 1e-9)
        # lists become JSON text (a GeoJSON reader gives it back as the list it is in the file)
        labels = got["labels"]
        assert (json.loads(labels) if isinstance(labels, str) else list(labels)) == want["labels"]
    assert not list(tmp_path.glob(".partial-*")), "nothing left beside the file"


def test_a_reports_alerts_and_events_export_as_it_has_them(made, tmp_path):
    alerts = export.run(["alerts", "--report", made["report"], "--output", str(tmp_path / "alerts.fgb")])
    events = export.run(["events", "--report", made["report"], "--output", str(tmp_path / "e.json"),
                         "--format", "geojson"])
    assert alerts["rows"] == events["rows"] == 1
    frame = geopandas.read_file(tmp_path / "alerts.fgb")
    assert frame.loc[0, "tile_id"] == "WebMercatorQuad/14/5000/8600" and frame.crs.to_epsg() == 4326


@pytest.mark.parametrize("args, message", [
    (["events", "--scans", "S", "--output", "x.gpkg"], "events is read from --report"),
    (["tile_labels", "--report", "R", "--output", "x.gpkg"], "tile_labels is read from --scans"),
    (["alerts", "--output", "x.gpkg"], "give either --scans"),
    (["tile_labels", "--scans", "S", "--output", "x.txt"], "say the format with --format"),
    # GeoJSON was written into x.gpkg
    (["tile_labels", "--scans", "S", "--output", "x.gpkg", "--format", "geojson"],
     "--format geojson: --output x.gpkg says gpkg; give one format"),
    (["alerts", "--report", "R", "--aoi", "a", "--output", "x.gpkg"], "--as_of and --aoi apply to --scans"),
    # a mistyped AOI wrote an empty file, exit 0
    (["tile_labels", "--scans", "S", "--aoi", "nosuch", "--output", "x.gpkg"], "no scan rows of --aoi nosuch"),
    (["clearings", "--scans", "S", "--output", "x.gpkg"], r"no clearings there \(planet-tiles delineate writes them\)"),
])
def test_misuse_is_one_line(made, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)  # a regression writes x.gpkg here, not in the checkout
    args = [a.replace("S", made["scans"]) if a == "S" else a.replace("R", made["report"]) if a == "R" else a
            for a in args]
    with pytest.raises(UserError, match=message):
        export.run(args)
    assert not list(tmp_path.iterdir()), "nothing written"


def test_an_existing_file_is_replaced_only_when_asked(made, tmp_path):
    """A GeoPackage of the user's with a layer of their own is refused, byte for byte untouched, as is a
    folder; with --overwrite the export replaces it whole (its other layer gone: what the flag says)."""
    import pyogrio

    out = tmp_path / "project.gpkg"
    pyogrio.write_dataframe(geopandas.GeoDataFrame({"name": ["farm"]}, geometry=[shapely.box(0, 0, 1, 1)],
                                                   crs="EPSG:4326"), out, layer="properties")
    before = out.read_bytes()
    args = ["events", "--report", made["report"], "--output", str(out)]
    with pytest.raises(UserError, match=r"project.gpkg: exists; pass --overwrite"):
        export.run(args)
    assert out.read_bytes() == before
    (tmp_path / "folder.gpkg").mkdir()
    with pytest.raises(UserError, match=r"folder.gpkg: a folder"):
        export.run(["events", "--report", made["report"], "--output", str(tmp_path / "folder.gpkg")])
    assert export.run([*args, "--overwrite"])["rows"] == 1
    assert [layer for layer, _ in pyogrio.list_layers(out)] == ["events"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.gpkg", "project.gpkg"]


def test_for_gis_writes_lists_and_records_as_json_text_and_the_geometry_last():
    """GIS formats hold neither lists nor records: each becomes its JSON text (dates as text), nulls stay
    null; the bounding box goes (the geometry says it) and the geometry comes last."""
    import pyarrow as pa

    table = pa.table({"geometry": [b"\x01", b"\x02"], "labels": [["road", "primary"], None],
                      "zone": [{"name": "z", "since": D1}, None],
                      "bbox": [{"xmin": 0.0}, {"xmin": 1.0}], "n": [1, 2]})
    out = export.for_gis(table)
    assert out.column_names == ["labels", "zone", "n", "geometry"]
    assert out["labels"].to_pylist() == ['["road", "primary"]', None]
    assert out["zone"].to_pylist() == ['{"name": "z", "since": "2026-06-01"}', None]
    assert out["geometry"].to_pylist() == [b"\x01", b"\x02"] and out["n"].to_pylist() == [1, 2]
