"""The bundle model handler and the row step, on a small real Keras bundle."""

import dataclasses
import datetime as dt

import numpy as np
import pytest
from apache_beam.ml.inference.base import PredictionResult
from shapely.geometry import box

from pipelines.steps.inference import BundleModelHandler, TileInfo, ToRow
from planet_core.labels import LABELS
from planet_model import bundle, model


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    net = model.build("simple_cnn", 32, 3, 32, [100.0] * 3, [400.0] * 3)
    path = str(tmp_path_factory.mktemp("bundle") / "tiny")
    meta = bundle.save(net, path, {"thresholds": {n: 0.5 for n in LABELS}, "chip_size": 32, "input_size": 32,
                                   "bands": ["red", "green", "blue"], "dtype": "uint8",
                                   "domain": {"gsd_m": 3.0, "product": "visual", "dtype": "uint8",
                                              "bands": ["red", "green", "blue"], "band_ranges": {}},
                                   "normalization": {"mean": [100.0] * 3, "variance": [400.0] * 3},
                                   "arch": "simple_cnn", "training": {}, "metrics": {}})
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
