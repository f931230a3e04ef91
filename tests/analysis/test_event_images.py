"""The report's pictures on small real GeoTIFFs: which scene a picture reads, how a date's scenes mosaic,
which events get pictures and what a picture frames."""

import dataclasses
import io

import duckdb
import numpy as np
import rasterio
import shapely
from PIL import Image
from rasterio.transform import from_bounds

from pipelines.analysis import event_images, events
from pipelines.sources import files
from pipelines.sources.reader import ReadOptions
from tests.analysis.test_events import alert

BOUNDS = (-55.0, -10.0, -54.99, -9.99)  # about 1.1 km a side


def _scene(path, value, west_half_only=False):
    """An RGB GeoTIFF over BOUNDS of one value (a little texture for the stretch), nodata 0; only its west
    half holds data when ``west_half_only``."""
    data = np.full((3, 64, 64), value, np.uint8)
    data[:, :8, :8] = value // 2
    if west_half_only:
        data[:, :, 32:] = 0
    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=3, dtype="uint8", nodata=0,
                       crs="EPSG:4326", transform=from_bounds(*BOUNDS, 64, 64)) as dst:
        dst.write(data)
    return files.item(str(path))


def test_a_scene_read_from_two_places_is_read_where_the_latest_scan_read_it():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA planet_tiles")
    con.execute("CREATE TABLE planet_tiles.tile_labels AS SELECT * FROM (VALUES "
                "('s1', '/b/s1.tif', DATE '2026-07-01'), ('s1', '/a/s1.tif', DATE '2026-06-01'), "
                "('s1', '/c/s1.tif', DATE '2026-06-15')) "
                "AS t(scene_id, scene_uri, scan_date)")
    assert {k: v.uri for k, v in event_images.scene_items(con).items()} == {"s1": "/b/s1.tif"}


def test_a_dates_mosaic_keeps_the_clearest_scenes_pixels_and_fills_only_where_it_has_none(tmp_path):
    first = _scene(tmp_path / "first.tif", 200, west_half_only=True)
    second = _scene(tmp_path / "second.tif", 60)
    pixels = event_images.mosaic([first, second], ReadOptions(), BOUNDS, 64, "the test")
    width = pixels.shape[1]
    assert (pixels[20:-2, 2 : width // 2 - 2] == 200).all(), "the first scene's own pixels stay"
    assert (pixels[20:-2, width // 2 + 2 : -2] == 60).all(), "the second fills what the first has no data for"


def test_pictures_are_of_the_largest_events_and_frame_each_with_half_its_size_around_it(tmp_path, caplog):
    small, large = alert(0, 0), dataclasses.replace(alert(5, 5), area_m2=1e6)
    found = events.events([small, large])
    written = event_images.write(found, {}, ReadOptions(), str(tmp_path), max_pictures=1)
    assert list(written) == [large.alert_id], "the largest event, whatever the order given"
    assert written[large.alert_id] == {"before": None, "after": None} and "no before image" in caplog.text

    outline = shapely.box(-54.9975, -9.9975, -54.9925, -9.9925)  # half the scene's width, in its middle
    image = np.asarray(Image.open(io.BytesIO(event_images.picture([_scene(tmp_path / "s.tif", 120)], ReadOptions(),
                                                                  outline))))
    drawn = np.argwhere((image == event_images.OUTLINE).all(axis=-1))
    height, width = image.shape[:2]
    # the outline spans the middle half of the picture: half its side of margin on every side
    for low, high, size in ((drawn[:, 1].min(), drawn[:, 1].max(), width), (drawn[:, 0].min(), drawn[:, 0].max(),
                                                                             height)):
        assert abs(low - size / 4) <= 0.05 * size and abs(high - 3 * size / 4) <= 0.05 * size


def test_an_event_of_several_comparisons_is_pictured_on_its_first_alerts_dates(tmp_path, caplog):
    """The pictures of an event that grew are of its first alert's dates over all its tiles (``pictured``), not
    of its last comparison's, whose scenes are not there."""
    import datetime as dt

    from pipelines.analysis.clearings import Comparison, Work

    later = alert(0, 0).first_detected + dt.timedelta(days=14)
    first, grown = (dataclasses.replace(a, geometry=shapely.box(west, -9.997, west + 0.003, -9.994).wkb)
                    for a, west in ((alert(0, 0), -54.997), (alert(1, 0, later), -54.994)))
    [event] = events.events([first, grown])
    scene = _scene(tmp_path / "s.tif", 120)
    tiles = tuple((a.alert_id, a.geometry) for a in (first, grown))
    looks = (Comparison(first.before_date, first.first_detected, (first.alert_id,), (scene,), (scene,)),
             Comparison(grown.before_date, grown.first_detected, (grown.alert_id,), (), ()))
    work = Work(event, tiles, looks, Comparison(event.before_date, event.first_detected, event.alert_ids, (scene,),
                                                (scene,)))
    written = event_images.write([event], {event.event_id: work}, ReadOptions(), str(tmp_path))
    assert written[event.event_id] == {side: f"{event_images.FOLDER}/{event.event_id}-{side}.png"
                                       for side in ("before", "after")}, caplog.text
