import hashlib
import json

import numpy as np
import rasterio
from rasterio.enums import ColorInterp

from pipelines.sources import synthetic
from planet_core.labels import WEATHER_LABELS, read_kaggle_csv


def _digest(path):
    with rasterio.open(path) as src:
        return hashlib.sha256(src.read().tobytes()).hexdigest()


def test_scene_looks_like_a_planetscope_analytic_scene(scenes):
    path = scenes["summaries"][0]["scene"]
    with rasterio.open(path) as src:
        assert src.count == 4 and src.dtypes == ("uint16",) * 4
        assert src.colorinterp == (ColorInterp.blue, ColorInterp.green, ColorInterp.red, ColorInterp.undefined)
        assert src.crs.to_epsg() == 32721 and src.res == (3.0, 3.0)
        assert src.profile["tiled"] and src.profile["compress"] == "zstd" and src.block_shapes[0] == (256, 256)
        assert src.tags()["acquired"].startswith("2026-06-01")
        pixels = src.read(out_shape=(4, 128, 128))
    assert pixels.max() <= 4095  # 12-bit values, as Planet's analytic products
    assert np.median(pixels[3]) > 2 * np.median(pixels[2])  # forest: NIR well above red


def test_same_spec_same_pixels_other_seed_other_pixels(tmp_path):
    spec = synthetic.SceneSpec(seed=11, width=512, height=512)
    a = synthetic.write_scene(spec, tmp_path / "a")
    b = synthetic.write_scene(spec, tmp_path / "b")
    c = synthetic.write_scene(synthetic.SceneSpec(seed=12, width=512, height=512), tmp_path / "c")
    assert _digest(a["scene"]) == _digest(b["scene"]) != _digest(c["scene"])
    assert open(a["truth"]).read() == open(b["truth"]).read()


def test_ground_truth_and_kaggle_labels(scenes):
    rows = []
    for summary in scenes["summaries"]:
        rows += list(read_kaggle_csv(summary["labels_csv"]))
        tags = {f["properties"]["tag"] for f in json.load(open(summary["truth"]))["features"]}
        assert "primary" in tags
    assert len(rows) == 12 * 16
    assert all(sum(t in WEATHER_LABELS for t in tags) == 1 for _, tags in rows)
    assert all(tags == ["cloudy"] for _, tags in rows if "cloudy" in tags)
    seen = {t for _, tags in rows for t in tags}
    assert {"primary", "clear", "road", "agriculture", "water", "partly_cloudy"} <= seen


def test_later_acquisition_keeps_the_land_and_plants_disturbances(tmp_path):
    spec = synthetic.SceneSpec(seed=5, width=1024, height=1024)
    before = synthetic.landscape(spec)
    after = synthetic.landscape(synthetic.later(spec, "2026-07-15T13:30:00+00:00", disturbance_seed=1))
    assert after.planted and {t for t, _ in after.planted} <= {"agriculture", "slash_burn", "road"}
    assert [t for t, _ in after.features[: len(before.features)]] == [t for t, _ in before.features]
    assert all(not g.intersects(o) for _, g in after.planted for _, o in before.features)
