"""The bundle model handler and the row step, on a small real Keras bundle."""

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from apache_beam.ml.inference.base import PredictionResult
from shapely.geometry import box

from pipelines.steps.inference import BundleModelHandler, TileInfo, ToRow
from planet_core.labels import LABELS
from tests import bundles


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("bundle") / "tiny")
    net, meta = bundles.tiny(path)
    return {"path": path, "meta": meta, "model": net}


def test_handler_predicts_what_the_model_predicts(tiny_bundle):
    handler = BundleModelHandler(tiny_bundle["path"], tiny_bundle["meta"], batch_size=4)
    loaded = handler.load_model()
    chips = [np.random.default_rng(i).integers(0, 255, (32, 32, 3), dtype=np.uint8) for i in range(3)]
    results = list(handler.run_inference(chips, loaded))
    expected = tiny_bundle["model"].predict(np.stack(chips).astype(np.float32), verbose=0)
    assert [r.example is c for r, c in zip(results, chips)] == [True] * 3
    np.testing.assert_allclose(np.stack([r.inference for r in results]), expected, rtol=1e-5, atol=1e-6)
    assert handler.batch_elements_kwargs() == {"min_batch_size": 4, "max_batch_size": 4}


def test_a_model_that_is_not_the_one_its_description_names_is_refused(tiny_bundle, tmp_path):
    """A bundle's model file replaced by another model (a copy gone wrong) leaves one run's model beside the
    other's thresholds: refused by every reader, naming both hashes. A scan's workers load the model of the
    description the scan started with, even once the folder holds a complete newer bundle (a replaced
    bundle's model file stays for them), and fail in one line once it is gone; thresholds changed by hand
    pass once "version" says so."""
    import json
    import shutil

    from planet_model import bundle

    torn = tmp_path / "torn"
    shutil.copytree(tiny_bundle["path"], torn)
    _, other = bundles.tiny(tmp_path / "other", gain=3.0)
    model_file = tiny_bundle["meta"].model_file
    shutil.copy(tmp_path / "other" / other.model_file, torn / model_file)
    found = bundle.content_version((torn / model_file).read_bytes(), tiny_bundle["meta"].thresholds)
    assert found == other.version != tiny_bundle["meta"].version
    message = f"are not the pair of version {tiny_bundle['meta'].version} \\(they hash to {found}\\)"
    with pytest.raises(bundle.BundleError, match=f"^{torn}: {model_file} and the thresholds in bundle.json {message}"):
        bundle.read_metadata(str(torn))
    with pytest.raises(bundle.BundleError, match=message):
        BundleModelHandler(str(torn), tiny_bundle["meta"]).load_model()

    retrained = tmp_path / "retrained"
    shutil.copytree(tiny_bundle["path"], retrained)
    for name in (other.model_file, "bundle.json"):
        shutil.copy(tmp_path / "other" / name, retrained / name)
    assert bundle.read_metadata(str(retrained)).version == other.version
    started = BundleModelHandler(str(retrained), tiny_bundle["meta"]).load_model()
    for loaded, trained in zip(started.get_weights(), tiny_bundle["model"].get_weights(), strict=True):
        np.testing.assert_array_equal(loaded, trained)
    (retrained / model_file).unlink()
    with pytest.raises(bundle.BundleError, match=f"model file '{model_file}' not found"):
        BundleModelHandler(str(retrained), tiny_bundle["meta"]).load_model()

    tuned = tmp_path / "tuned"
    shutil.copytree(tiny_bundle["path"], tuned)
    doc = json.loads((tuned / "bundle.json").read_text())
    doc["thresholds"]["road"] = 0.35
    (tuned / "bundle.json").write_text(json.dumps(doc))
    with pytest.raises(bundle.BundleError, match='set "version" to ([0-9a-f]{16})') as error:
        bundle.read_metadata(str(tuned))
    doc["version"] = error.value.args[0].rsplit(" ", 1)[-1].rstrip(")")
    (tuned / "bundle.json").write_text(json.dumps(doc))
    assert bundle.read_metadata(str(tuned)).thresholds["road"] == 0.35
    assert bundle.load_model(str(tuned)).count_params() == tiny_bundle["model"].count_params()


def test_rows_apply_each_labels_threshold_and_count_a_written_tile(tiny_bundle):
    meta = dataclasses.replace(tiny_bundle["meta"], thresholds={n: (0.3 if n == "road" else 0.6) for n in LABELS})
    probabilities = np.full(len(LABELS), 0.5, dtype=np.float32)
    probabilities[LABELS.index("primary")] = 0.6  # at its threshold: taken
    info = TileInfo("WebMercatorQuad/16/1/2", "scene", "uri", "2026-06-01T13:30:00+00:00", box(0, 0, 1, 1).wkb,
                    {"xmin": 0.0, "ymin": 0.0, "xmax": 1.0, "ymax": 1.0}, 0.5, 0.5, 1.0, 0.9, None, None, "xingu",
                    "2026-06-01", "xingu:2026-06-01:v", 0.0)
    row, written = list(ToRow(meta).process((info, PredictionResult(None, probabilities))))
    assert row["labels"] == ["primary", "road"]  # primary at 0.6 >= 0.6; road 0.5 >= 0.3; others 0.5 < 0.6
    assert row["p_road"] == pytest.approx(0.5) and row["acquired"].isoformat() == "2026-06-01T13:30:00+00:00"
    assert (row["aoi"], row["scan_date"], row["scan_id"]) == ("xingu", dt.date(2026, 6, 1), "xingu:2026-06-01:v")
    assert (row["scene_uri"], row["mask_status"], row["bbox"]["xmax"]) == ("uri", "absent", 1.0)
    assert written.value["status"] == "written" and written.value["item"] == info.tile_id


def test_out_of_domain_is_judged_on_the_pixels_with_data_at_its_range_edges(tiny_bundle):
    """A tile is out of domain when a band's mean over the pixels with data (not 0 in every band, the
    fill) is outside the bundle's range; at either end of the range it is inside. Fill pixels do not
    count: a tile half outside the scene, its data in range, is in domain."""
    domain = dataclasses.replace(tiny_bundle["meta"].domain,
                                 band_ranges={"red": (50.0, 150.0), "green": (50.0, 150.0), "blue": (50.0, 150.0)})
    row = ToRow(dataclasses.replace(tiny_bundle["meta"], domain=domain))

    def tile(red, fill_share=0.0):
        image = np.full((32, 32, 3), 100, np.uint8)
        image[..., 0] = red
        image[:, : round(32 * fill_share)] = 0
        return image

    assert not row.out_of_domain(tile(100))
    assert not row.out_of_domain(tile(150)) and not row.out_of_domain(tile(50))  # at the edges: inside
    assert row.out_of_domain(tile(151)) and row.out_of_domain(tile(49))
    assert not row.out_of_domain(tile(100, fill_share=0.75)), "fill pixels pull no mean down"
    assert row.out_of_domain(tile(200, fill_share=0.75))
    assert not row.out_of_domain(np.zeros((32, 32, 3), np.uint8)), "no data: nothing to judge"
    dark = tile(100)
    dark[:20, :, 0] = 0  # data with no red (dark water in a visual product): counted, not taken for fill
    assert row.out_of_domain(dark), "red's mean over the pixels with data is 37.5: below the range"
    no_ranges = ToRow(tiny_bundle["meta"])
    assert not no_ranges.out_of_domain(tile(255))


def _tile_image(tile, acquired, image, aoi="xingu", mask=None, mask_error=None):
    from pipelines.sources.base import SceneItem
    from pipelines.steps.tiles import TileImage

    return TileImage(tile, SceneItem(f"/scenes/{acquired[:10]}.tif", f"s{acquired[:10]}"), ("red", "green", "blue"),
                     image, 0.75, aoi, acquired, "visual", mask, mask_error)


def test_a_tiles_description_its_geodesic_area_centre_and_utc_scan_date():
    """The area is the ellipsoid's, from the corners as pyproj places them (a 768 m UTM tile is not 768 m
    squared: UTM's scale factor); a streaming row's scan date is its acquisition's UTC date."""
    from apache_beam.utils.timestamp import Timestamp
    from pyproj import Geod, Transformer
    from shapely.geometry import Polygon

    from pipelines.geo.grid import UtmGrid
    from pipelines.steps.inference import DescribeTile

    tile = UtmGrid(21, True, 3.0).tile(1100, 5300)
    left, top = tile.transform[2], tile.transform[5]
    corners = [(left, top), (left + 768, top), (left + 768, top - 768), (left, top - 768)]
    lon, lat = Transformer.from_crs(tile.crs, "EPSG:4326", always_xy=True).transform(*zip(*corners))
    area = abs(Geod(ellps="WGS84").polygon_area_perimeter(lon, lat)[0])
    image = np.zeros((256, 256, 3), np.uint8)
    late = "2026-06-01T23:30:00-03:00"  # 02:30 UTC on the 2nd
    [(info, pixels)] = DescribeTile("v1").process(_tile_image(tile, late, image), timestamp=Timestamp(42))
    assert info.area_m2 == pytest.approx(area, rel=1e-9) and abs(info.area_m2 - 768 ** 2) > 100
    assert (info.lon, info.lat) == pytest.approx(Polygon(zip(lon, lat)).centroid.coords[0], abs=1e-9)
    assert (info.scan_date, info.scan_id, info.event_time) == ("2026-06-02", "xingu:2026-06-02:v1", 42.0)
    assert pixels is image and info.valid_fraction == 0.75 and info.uri == "/scenes/2026-06-01.tif"
    [(batch_info, _)] = DescribeTile("v1", "2026-06-05").process(_tile_image(tile, late, image), timestamp=Timestamp(0))
    assert (batch_info.scan_date, batch_info.scan_id) == ("2026-06-05", "xingu:2026-06-05:v1")


def test_mask_columns_say_whether_the_mask_was_read_missing_or_unreadable():
    from pipelines.sources.masks import MaskFractions
    from pipelines.steps.inference import mask_columns

    nulls = {"clear_fraction": None, "cloud_fraction": None, "shadow_fraction": None, "haze_fraction": None}
    assert mask_columns(None) == {"mask_status": "absent", **nulls}
    assert mask_columns(None, "UDM2 x: cannot read") == {"mask_status": "unreadable", **nulls}
    assert mask_columns(MaskFractions(0.5, 0.25, 0.125, 0.0625)) == {
        "mask_status": "read", "clear_fraction": 0.5, "cloud_fraction": 0.25, "shadow_fraction": 0.125,
        "haze_fraction": 0.0625}


def test_predict_tiles_in_a_pipeline_rounds_probabilities_keeps_timestamps_and_passes_weather_one(tiny_bundle):
    """Through RunInference on the DirectRunner: each row's probabilities are the model's rounded to 6
    decimals (so a tile's row never depends on its batch), its element keeps its tile's timestamp, and
    ``weather_one`` reaches the thresholds (every row one weather label, with thresholds that let through
    none or several)."""
    import apache_beam as beam
    from apache_beam.testing.util import assert_that

    from pipelines.geo.grid import UtmGrid
    from pipelines.steps.inference import PredictTiles
    from planet_core.labels import WEATHER_LABELS
    from planet_model import bundle

    thresholds = {n: (0.0 if n in ("clear", "haze") else 1.0) for n in LABELS}
    model_bytes = (Path(tiny_bundle["path"]) / tiny_bundle["meta"].model_file).read_bytes()
    meta = dataclasses.replace(tiny_bundle["meta"], thresholds=thresholds,  # the same model, thresholds of its own
                               version=bundle.content_version(model_bytes, thresholds))
    rng = np.random.default_rng(7)
    grid = UtmGrid(21, True, 3.0, tile_size=32)
    images = [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(5)]
    items = [beam.window.TimestampedValue(_tile_image(grid.tile(100 + i, 200), "2026-06-01T13:00:00+00:00", im),
                                          1000 + i) for i, im in enumerate(images)]
    expected = tiny_bundle["model"].predict(np.stack(images).astype(np.float32), verbose=0)

    def check(rows):
        assert len(rows) == 5
        for row, stamp in rows:
            i = int(stamp) - 1000
            assert row["tile_id"] == grid.tile(100 + i, 200).tile_id
            probabilities = np.array([row[f"p_{n}"] for n in LABELS])
            np.testing.assert_allclose(probabilities, expected[i], atol=2e-6)  # batches of 2, not of 5
            assert all(p == float(np.float32(round(p, 6))) for p in probabilities)
            assert len([n for n in row["labels"] if n in WEATHER_LABELS]) == 1

    with beam.Pipeline("FnApiRunner") as pipeline:
        result = (pipeline | beam.Create(items) | PredictTiles(tiny_bundle["path"], meta, batch_size=2,
                                                                weather_one=True))
        stamped = result["rows"] | beam.Map(lambda row, t=beam.DoFn.TimestampParam: (row, t))
        assert_that(stamped, check)
