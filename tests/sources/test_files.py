"""The files source: what Planet's names say before a file is opened, and choosing files by date."""

import pytest

from pipelines import sources
from pipelines.chip import build_parser
from pipelines.sources import files
from pipelines.sources.base import DateRange, SourceError
from planet_core.errors import UserError
from tests.conftest import RASTERS

PLANETSCOPE = RASTERS / "planetscope"


@pytest.mark.parametrize("name, acquired, day", [
    ("20151119_025740_0c74_3B_AnalyticMS_clip.tif", "2015-11-19T02:57:40+00:00", "2015-11-19T02:57:40+00:00"),
    ("20230815_134512_57_24b7_3B_AnalyticMS_SR_8b.tif", "2023-08-15T13:45:12+00:00", "2023-08-15T13:45:12+00:00"),
    ("1056417_2017-03-08_RE3_3A_Visual_clip.tif", None, "2017-03-08T00:00:00+00:00"),
    ("planet_medres_normalized_analytic_2026-06_mosaic/704-1080.tif", None, "2026-06-01T00:00:00+00:00"),
    ("synth_20260601_r0c0.tif", None, None),
])
def test_what_planet_names_say_of_the_date(name, acquired, day):
    assert files.acquired_from_name(f"gs://b/{name}") == acquired
    assert files.day_from_name(f"gs://b/{name}") == day


def test_an_item_is_what_its_name_says(tmp_path):
    item = files.item(str(PLANETSCOPE / "1056417_2017-03-08_RE3_3A_Visual_clip.tif"))
    assert item.scene_id == "1056417_2017-03-08_RE3_3A_Visual_clip" and item.product == "visual"
    assert item.acquired is None and item.mask is None and item.band_files == ()
    quad = files.item("gs://b/planet_medres_visual_2026-07_mosaic/704-1080.tif")
    assert quad.scene_id == "planet_medres_visual_2026-07_mosaic/704-1080" and quad.product == "visual"


def test_files_are_chosen_by_the_day_their_names_say(tmp_path):
    names = ["20260601_131500_0c74_3B_AnalyticMS_SR_clip.tif", "20260715_131500_0c74_3B_AnalyticMS_SR_clip.tif",
             "20260601_131500_0c74_3B_udm2_clip.tif", "unnamed.tif"]
    for name in names:
        (tmp_path / name).symlink_to(PLANETSCOPE / "1056417_2017-03-08_RE3_3A_Visual_clip.tif")
    glob = [str(tmp_path / "*.tif")]
    every = files.Files(glob).discover()
    assert [i.scene_id for i in every] == [n[:-4] for n in sorted(names) if "udm2" not in n]  # the mask passed over
    june = files.Files(glob).discover(when=DateRange.parse("2026-06-01/2026-06-30"))
    # a file whose name says no date is kept
    assert sorted(i.scene_id for i in june) == ["20260601_131500_0c74_3B_AnalyticMS_SR_clip", "unnamed"]
    with pytest.raises(SourceError, match="--scenes: no scene matches"):
        files.Files([str(tmp_path / "nothing-*.tif")]).discover()


def test_the_flag_group_gives_sorted_unique_items_with_the_product_forced(tmp_path):
    scene = str(PLANETSCOPE / "1056417_2017-03-08_RE3_3A_Visual_clip.tif")
    args = build_parser().parse_args(["--scenes", scene, scene, "--product", "analytic", "--output", "x"])
    [item] = sources.discover(args)
    assert item.uri == scene and item.product == "analytic"
    args = build_parser().parse_args(["--scenes", scene, "--acquired", "2017-13-01", "--output", "x"])
    with pytest.raises(UserError, match="--acquired '2017-13-01': write START/END as YYYY-MM-DD"):
        sources.discover(args)
    args = build_parser().parse_args(["--scenes", scene, "--band_order", "red,green,infrared", "--output", "x"])
    with pytest.raises(UserError, match="--band_order: unknown band role"):
        sources.read_options(args)
