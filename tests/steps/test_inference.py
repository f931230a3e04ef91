"""The bundle model handler and the row step, on a small real Keras bundle."""

import dataclasses
import datetime as dt

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
    handler = BundleModelHandler(tiny_bundle["path"], batch_size=4)
    loaded = handler.load_model()
    chips = [np.random.default_rng(i).integers(0, 255, (32, 32, 3), dtype=np.uint8) for i in range(3)]
    results = list(handler.run_inference(chips, loaded))
    expected = tiny_bundle["model"].predict(np.stack(chips).astype(np.float32), verbose=0)
    assert [r.example is c for r, c in zip(results, chips)] == [True] * 3
    np.testing.assert_allclose(np.stack([r.inference for r in results]), expected, rtol=1e-5, atol=1e-6)
    assert handler.batch_elements_kwargs() == {"min_batch_size": 4, "max_batch_size": 4}


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
    no_ranges = ToRow(tiny_bundle["meta"])
    assert not no_ranges.out_of_domain(tile(255))
