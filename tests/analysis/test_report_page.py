"""report.html opened in headless Chromium (Debian's chromium, driven by Playwright): what a person sees."""

import dataclasses
import datetime as dt
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import morecantile
import numpy as np
import pytest
import rasterio
import shapely
import shapely.affinity
from PIL import Image
from rasterio.transform import from_bounds

from pipelines.analysis import event_images, events, map_layers, report, report_page
from pipelines.geo.grid import WebMercatorGrid
from pipelines.sources import files
from pipelines.sources.reader import ReadOptions
from planet_core.errors import UserError
from planet_core.labels import LABELS
from tests import tables

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def chromium():
    """The system Chromium; installed with apt-get when missing and this process may (root, Debian)."""
    path = shutil.which("chromium")
    if path is None and shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], env=env, check=False, capture_output=True)
        path = shutil.which("chromium")
    if path is None:
        message = (
            "Chromium is not installed and cannot be installed here (needs root and apt-get: apt-get install chromium)"
        )
        if os.environ.get("CI"):  # CI must run the browser test: .ci/run installs Chromium
            pytest.fail(message)
        pytest.skip(message)
    return path


def _open(page_path, chromium, errors, remote):
    from playwright.sync_api import sync_playwright

    p = sync_playwright().start()
    browser = p.chromium.launch(executable_path=chromium, args=FLAGS, headless=True)
    page = browser.new_page(viewport={"width": 1200, "height": 900}, device_scale_factor=1)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "data:"))
               else (remote.append(route.request.url), route.abort()))
    page.goto(f"file://{page_path}", wait_until="load")
    page.wait_for_function("window.reportMaps !== undefined")
    return p, browser, page


def _click_an_event(page, aoi):
    """Click, as a person would, the middle of event outlines that lie on the map, clear of the layer
    control, until one opens its card (the middle of an L-shaped event is outside it); False when none does."""
    the_map = page.locator(f"#map-{aoi}").bounding_box()
    control = page.locator(f"#map-{aoi} .leaflet-control-layers").bounding_box()
    inside = lambda x, y, box: box["x"] <= x <= box["x"] + box["width"] and box["y"] <= y <= box["y"] + box["height"]  # noqa: E731
    outlines = page.locator(f"#map-{aoi} path.leaflet-interactive")
    for i in range(outlines.count()):
        box = outlines.nth(i).bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        if inside(x, y, the_map) and not inside(x, y, control):
            page.mouse.click(x, y)
            page.wait_for_timeout(100)
            if page.locator("details.event[open]").count():
                return True
    return False


def _shot(locator):
    return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("RGB")).astype(int)


def test_report_renders_in_chromium(demo, chromium, tmp_path):
    """The demo's report: no errors, nothing fetched from outside, the map draws and zooms, and a click
    on an event opens its card with its two pictures."""
    summary = demo["report"]
    page_path = Path(summary["folder"]) / summary["files"]["report"]
    alerts = len(json.loads((Path(summary["folder"]) / summary["files"]["alerts_geojson"]).read_text())["features"])
    errors, remote = [], []
    p, browser, page = _open(page_path, chromium, errors, remote)
    try:
        shown = int(page.inner_text("#alert-count"))
        aoi = summary["aois"][0]
        the_map = page.locator(f"#map-{aoi}")
        before = _shot(the_map)
        assert page.evaluate(f"Object.keys(window.reportMaps['{aoi}'].layers)") == summary["scan_dates"]
        page.evaluate(f"window.reportMaps['{aoi}'].map.setZoom(window.reportMaps['{aoi}'].map.getZoom() + 2, "
                      "{animate: false})")
        page.wait_for_timeout(300)
        zoomed = _shot(the_map)
        page.evaluate(f"window.reportMaps['{aoi}'].map.fitBounds(window.reportMaps['{aoi}'].bounds, "
                      "{animate: false})")
        page.wait_for_timeout(300)
        outlines = page.locator(f"#map-{aoi} path.leaflet-interactive")
        assert outlines.count() == summary["events"] > 0
        assert _click_an_event(page, aoi), "an event outline to click on the map"
        card = page.locator("details.event[open]")
        card.first.wait_for()
        pictures = card.first.evaluate("c => [...c.querySelectorAll('img')].map(i => i.naturalWidth)")
        figures = page.evaluate("[...document.querySelectorAll('.figures img')].map(i => i.naturalWidth)")
        opened = card.count()
    finally:
        browser.close()
        p.stop()
    assert errors == [] and remote == []
    assert shown == alerts == summary["alerts"]
    # Not blank: mostly painted, in several colours (forest, fields, clouds, red outlines).
    assert (before != 255).any(axis=-1).mean() > 0.5 and len(np.unique(before // 32, axis=0)) >= 4
    assert np.abs(zoomed - before).max(axis=-1).mean() > 10, "zooming in changes what is drawn"
    assert opened == 1 and len(pictures) == 2 and all(w > 0 for w in pictures), "the card and its pictures"
    assert figures and all(w > 0 for w in figures)  # the model card's figures decoded


# --- A report built by hand, looked at in Chromium -------------------------------------------------------
# Nine WebMercatorQuad z14 tiles, 3 x 3. On both dates: water in the north-east cell (row 0, column 2).
# On the second: the south-west cell (row 2, column 0) turned to fields (an alert), the centre is cloudy.
D1, D2 = dt.date(2026, 6, 1), dt.date(2026, 7, 1)
WATER, ALERT, CLOUD = (0, 2), (2, 0), (1, 1)
ZOOM = 14
ORIGIN = morecantile.tms.get("WebMercatorQuad").tile(-56.0, -10.0, ZOOM)
TAG = '<img src=x onerror="window.hacked=1">'  # a zone name that would run script if not escaped
RED = np.array([0xd5, 0x00, 0x00])
CLEARING = np.array([0xff, 0x6d, 0x00])
GREEN, BROWN = (34, 120, 40), (170, 110, 60)


def _outline(r, c):
    return WebMercatorGrid(ZOOM).polygon_wgs84(ORIGIN.x + c, ORIGIN.y + r)


def _row(r, c, labels, scene, uri):
    outline = _outline(r, c)
    return {"tile_id": f"WebMercatorQuad/{ZOOM}/{ORIGIN.x + c}/{ORIGIN.y + r}", "scene_id": scene, "scene_uri": uri,
            "acquired": None, "valid_fraction": 1.0, "clear_fraction": None, "labels": labels,
            **{f"p_{n}": 0.9 if n in labels else 0.05 for n in LABELS}, "geometry": outline.wkb,
            "lon": outline.centroid.x, "lat": outline.centroid.y, "area_m2": events.geodesic_ha(outline) * 1e4,
            "model_version": "hand", "haze_fraction": None, "cloud_fraction": None, "shadow_fraction": None}


def _scene(path, alert_brown):
    """An RGB GeoTIFF over the nine tiles: forest green, the alert tile brown when ``alert_brown``."""
    west, south, east, north = shapely.union_all([_outline(r, c) for r in range(3) for c in range(3)]).bounds
    size = 96
    data = np.empty((3, size, size), np.uint8)
    data[:] = np.array(GREEN)[:, None, None]
    data[:, 10:20, 10:20] = 90  # some texture, so the stretch has a range
    if alert_brown:
        data[:, 64:96, 0:32] = np.array(BROWN)[:, None, None]
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=3, dtype="uint8", crs="EPSG:4326",
                       transform=from_bounds(west, south, east, north, size, size)) as dst:
        dst.write(data)
    return str(path)


def _hand_scans(tmp_path):
    scans = tmp_path / "scans"
    scenes = {"s1": _scene(tmp_path / "s1.tif", False), "s2": _scene(tmp_path / "s2.tif", True)}
    for date, scene in ((D1, "s1"), (D2, "s2")):
        rows = []
        for r in range(3):
            for c in range(3):
                labels = ["clear", "water"] if (r, c) == WATER else ["clear", "primary"]
                if date == D2 and (r, c) == ALERT:
                    labels = ["clear", "primary", "agriculture"]
                if date == D2 and (r, c) == CLOUD:
                    labels = ["cloudy"]
                rows.append(_row(r, c, labels, scene, scenes[scene]))
        tables.write_scans(scans, {("hand", date): rows})
    zone = shapely.geometry.mapping(shapely.box(*_outline(*ALERT).bounds).buffer(0.001))
    (tmp_path / "zones.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": TAG}, "geometry": zone}]}))
    return scans


def _look(chromium, tmp_path):
    """Build the hand-made report and look at it: each date's map pixels at known tiles, the legend's
    colours, the tables, the event card, and whether script ran."""
    scans = _hand_scans(tmp_path)
    out = tmp_path / "report"
    report.run(["--scans", str(scans), "--output", str(out), "--zones", str(tmp_path / "zones.geojson")])
    errors, remote = [], []
    p, browser, page = _open(out / "current" / "report.html", chromium, errors, remote)
    try:
        maps = {}
        page.evaluate("window.reportMaps.hand.map.removeLayer(window.reportMaps.hand.clearings)")
        for date in (D1, D2):  # the tiles' colours, with the clearings switched off
            page.evaluate(f"window.reportMaps.hand.show('{date.isoformat()}')")
            page.wait_for_timeout(100)
            maps[date] = _shot(page.locator("#map-hand"))
        page.evaluate("window.reportMaps.hand.clearings.addTo(window.reportMaps.hand.map)")
        page.wait_for_timeout(100)
        maps["cleared"] = _shot(page.locator("#map-hand"))
        centres = {(r, c): page.evaluate(f"(() => {{ const p = window.reportMaps.hand.map.latLngToContainerPoint("
                                         f"[{_outline(r, c).centroid.y}, {_outline(r, c).centroid.x}]); "
                                         "return [p.x, p.y]; })()") for r in range(3) for c in range(3)}
        north_edge = page.evaluate("(() => { const p = window.reportMaps.hand.map.latLngToContainerPoint("
                                   f"[{_outline(*ALERT).bounds[3]}, {_outline(*ALERT).centroid.x}]); "
                                   "return [p.x, p.y]; })()")
        legend = page.evaluate("""[...document.querySelectorAll('.legend span')].map(s => [s.innerText.trim(),
            getComputedStyle(s.querySelector('.swatch')).backgroundColor])""")
        _click_an_event(page, "hand")
        card = page.locator("details.event[open]")
        opened = card.count()
        after = card.first.locator("img").last if opened else None
        picture = (np.asarray(Image.open(io.BytesIO(after.screenshot())).convert("RGB")).astype(int)
                   if opened and after.count() else None)
        seen = {"maps": maps, "centres": centres, "north_edge": north_edge, "opened": opened, "picture": picture,
                "alert_rows": page.locator("#alerts tr").count() - 1, "zones": page.locator("#zones").inner_text(),
                "coverage": page.locator("#coverage").inner_text(),
                "hacked": page.evaluate("window.hacked === undefined ? null : window.hacked"),
                "legend": {text: tuple(int(v) for v in colour[colour.index("(") + 1:-1].split(",")[:3])
                           for text, colour in legend if "rgb" in colour}, "errors": errors, "remote": remote}
    finally:
        browser.close()
        p.stop()
    return seen


def _check(seen):
    """Assertions a person would make looking at the page; AssertionError when something is wrong."""
    legend = seen["legend"]
    colour = {name: next(np.array(v) for k, v in legend.items() if k.startswith(text))
              for name, text in (("water", "water"), ("primary", "intact primary"), ("cloudy", "cloudy"),
                                 ("disturbed", "forest disturbed"))}
    first, second = seen["maps"][D1], seen["maps"][D2]

    def at(image, r, c):
        x, y = seen["centres"][(r, c)]
        return image[round(y), round(x)]

    near = lambda pixel, name: np.abs(pixel - colour[name]).max() <= 8  # noqa: E731
    assert seen["errors"] == [] and seen["remote"] == []
    assert near(at(first, *WATER), "water") and near(at(second, *WATER), "water"), "water where water is"
    assert near(at(first, 0, 0), "primary") and near(at(first, *ALERT), "primary"), "forest where forest is"
    assert near(at(second, *ALERT), "disturbed") and near(at(second, *CLOUD), "cloudy")
    # The brown field is the whole alert tile (the scene is RGB: delineated by its green-red index): its
    # clearing is drawn over it, the clearings' orange over the tile's colour, and not over water or forest.
    cleared = seen["maps"]["cleared"]
    share = 0.55  # the clearings' fill opacity
    blend = np.round(share * CLEARING + (1 - share) * colour["disturbed"])
    x, y = seen["centres"][ALERT]
    assert (np.abs(cleared[round(y):round(y) + 12, round(x) - 12:round(x)] - blend).max(axis=-1) <= 12).mean() > 0.5
    assert near(at(cleared, *WATER), "water") and near(at(cleared, 0, 0), "primary")
    # The event's red outline runs along its tile's north edge, and nowhere near the water.
    x, y = seen["north_edge"]
    band = second[round(y) - 3:round(y) + 4, round(x) - 10:round(x) + 11]
    assert (np.abs(band - RED).max(axis=-1) <= 40).any(), "the event outline sits on its tile"
    wx, wy = seen["centres"][WATER]
    assert not (np.abs(second[round(wy) - 20:round(wy) + 20, round(wx) - 20:round(wx) + 20] - RED).max(axis=-1)
                <= 40).any(), "no outline away from the event"
    assert not (np.abs(first - RED).max(axis=-1) <= 40).any(), "no event shown on the first date"
    # A click on the event opens its card; the after picture shows the brown field in its south-west.
    assert seen["opened"] == 1 and seen["picture"] is not None, "the event's card opens with its pictures"
    h, w = seen["picture"].shape[:2]
    middle = seen["picture"][h // 2 - 3:h // 2 + 4, w // 2 - 3:w // 2 + 4].reshape(-1, 3).mean(axis=0)
    assert middle[0] > middle[1], "the after picture shows the field (red over green) at the event"
    assert seen["alert_rows"] == 1, "the alert table"
    assert TAG in seen["zones"] and "judged" in seen["coverage"], "the zones and coverage tables"
    assert seen["hacked"] is None, "text is escaped, never run"


def test_the_report_shows_what_the_data_says(chromium, tmp_path):
    _check(_look(chromium, tmp_path))


def test_the_imagery_layer_lies_under_the_tiles(chromium, tmp_path):
    """``report --imagery``: each date's scene under its tiles, which turn translucent while it is on. What
    the tiles let through is the scene where the tile is: on the second date, under the alert tile, the
    field, unlike the forest under the tile beside it; on the first date, forest under both. Switched off,
    the tiles' own colours."""
    scans = _hand_scans(tmp_path)
    out = tmp_path / "report"
    report.run(["--scans", str(scans), "--output", str(out), "--imagery", "--no_clearings", "--no_images"])
    errors, remote = [], []
    forest = (2, 1)  # intact on both dates, away from the scene's darker patch
    p, browser, page = _open(out / "current" / "report.html", chromium, errors, remote)
    try:
        centre = lambda r, c: page.evaluate(  # noqa: E731
            f"(() => {{ const p = window.reportMaps.hand.map.latLngToContainerPoint([{_outline(r, c).centroid.y}, "
            f"{_outline(r, c).centroid.x}]); return [p.x, p.y]; }})()")
        seen = {}
        for date in (D1, D2):
            page.evaluate(f"window.reportMaps.hand.show('{date.isoformat()}')")
            page.wait_for_timeout(150)
            shot = _shot(page.locator("#map-hand")).astype(float)
            seen[date] = {rc: shot[round(centre(*rc)[1]), round(centre(*rc)[0])] for rc in (ALERT, forest)}
        page.evaluate("window.reportMaps.hand.map.removeLayer(window.reportMaps.hand.imagery)")
        page.wait_for_timeout(150)
        shot = _shot(page.locator("#map-hand"))
        off = shot[round(centre(*ALERT)[1]), round(centre(*ALERT)[0])]
        legend = page.evaluate("""[...document.querySelectorAll('.legend span')].map(s => [s.innerText.trim(),
            getComputedStyle(s.querySelector('.swatch')).backgroundColor])""")
    finally:
        browser.close()
        p.stop()
    assert errors == [] and remote == []
    colour = {text: np.array([int(v) for v in c[c.index("(") + 1:-1].split(",")[:3]]) for text, c in legend
              if "rgb" in c}
    disturbed = next(v for k, v in colour.items() if k.startswith("forest disturbed"))
    primary = next(v for k, v in colour.items() if k.startswith("intact primary"))
    assert np.abs(off - disturbed).max() <= 8, "imagery off: the tile's own colour"

    def under(shown, tile):  # the scene's colour behind a translucent tile
        return (shown - report_page.TRANSLUCENT * tile) / (1 - report_page.TRANSLUCENT)

    assert np.abs(under(seen[D2][ALERT], disturbed) - under(seen[D2][forest], primary)).max() > 60, \
        "the field under the alert tile, unlike the forest beside it"
    assert np.abs(under(seen[D1][ALERT], primary) - under(seen[D1][forest], primary)).max() < 15, \
        "forest under both on the first date"
    assert np.abs(seen[D2][forest] - primary).max() > 20, "the scene shows through"
    assert (out / "current" / "report.html").stat().st_size < 3_000_000


@pytest.mark.parametrize("broken", ["flipped", "recoloured", "shifted", "unescaped"])
def test_a_broken_renderer_fails_the_look(chromium, tmp_path, monkeypatch, broken):
    """Each way a renderer can go wrong, planted, must fail :func:`_check`: the test can see."""
    real_png = map_layers.AoiMap.png
    if broken == "flipped":  # south up
        def flipped(self, date):
            self.rasters[date] = self.rasters[date][::-1].copy()
            return real_png(self, date)
        monkeypatch.setattr(map_layers.AoiMap, "png", flipped)
    elif broken == "recoloured":  # water painted as forest
        def recoloured(self, date):
            r = self.rasters[date]
            self.rasters[date] = np.where(r == map_layers.CODES["water"], map_layers.CODES["primary"], r).astype(
                np.uint8
            )
            return real_png(self, date)
        monkeypatch.setattr(map_layers.AoiMap, "png", recoloured)
    elif broken == "shifted":  # event outlines one tile (about 2.4 km) north-east of their tiles
        real = events.events
        monkeypatch.setattr(
            events,
            "events",
            lambda *a, **k: [
                dataclasses.replace(
                    e, geometry=shapely.affinity.translate(shapely.from_wkb(e.geometry), 0.022, 0.022).wkb
                )
                for e in real(*a, **k)
            ],
        )
    else:  # text written into the page as HTML
        monkeypatch.setattr(report_page, "_e", lambda value: str(value))
    with pytest.raises(AssertionError):
        _check(_look(chromium, tmp_path))


def test_pictures_are_drawn_for_the_largest_events_only_and_mosaic_their_dates(tmp_path):
    scans = _hand_scans(tmp_path)
    none = report.run(["--scans", str(scans), "--output", str(tmp_path / "r0"), "--max_pictures", "0"])
    page = (tmp_path / "r0" / "current" / "report.html").read_text()
    assert none["events"] == 1 and none["images"] == [] and "largest events only (report --max_pictures)" in page
    one = report.run(["--scans", str(scans), "--output", str(tmp_path / "r1"), "--max_pictures", "1"])
    assert len(one["images"]) == 2

    # A date of two scenes: one with data in its western half only, one with all of it. The picture of
    # the first alone is half black; the mosaic of both has data everywhere the second has.
    west, south, east, north = shapely.union_all([_outline(r, c) for r in range(3) for c in range(3)]).bounds
    half = tmp_path / "half.tif"
    with rasterio.open(half, "w", driver="GTiff", width=96, height=96, count=3, dtype="uint8", nodata=0,
                       crs="EPSG:4326", transform=from_bounds(west, south, east, north, 96, 96)) as dst:
        data = np.zeros((3, 96, 96), np.uint8)
        data[:, :, :48] = np.random.default_rng(0).integers(40, 200, (3, 96, 48))
        dst.write(data)
    full = _scene(tmp_path / "full.tif", True)
    items = [files.item(str(half)), files.item(full)]
    outline = _outline(1, 1)  # the middle tile: its surroundings lie inside the scenes
    read = ReadOptions()

    def covered(png):
        image = np.asarray(Image.open(io.BytesIO(png)))[..., :3]
        return (image.max(axis=-1) > 0).mean(), max(image.shape[:2])

    alone, size = covered(event_images.picture(items[:1], read, outline))
    both, _ = covered(event_images.picture(items, read, outline))
    assert alone < 0.7 and both > 0.99 and size <= event_images.MAX_PIXELS


def test_a_rerun_replaces_the_report_as_a_whole(tmp_path):
    """A re-run is a new version, switched to in one step; the earlier version stays whole for a while
    (a page open on it keeps its pictures) and then goes at a later publish (pictures of an event it no
    longer shows among them); files it never wrote stay."""
    scans = _hand_scans(tmp_path)
    out = tmp_path / "report"
    first = report.run(["--scans", str(scans), "--output", str(out)])
    old = (out / "current").resolve()
    pictures = sorted(str(p.relative_to(old)) for p in (old / "events").iterdir())
    assert first["events"] == 1 and first["images"] == pictures and len(pictures) == 2
    (old / "events" / "notes.txt").write_text("an analyst's own file")
    (out / "notes.txt").write_text("another")
    # The field turns out to be forest after all: the second date's partition is rewritten without it.
    rows = [r for r in tables.read_rows(scans) if r["scan_date"] == D2]
    alert_tile = f"WebMercatorQuad/{ZOOM}/{ORIGIN.x + ALERT[1]}/{ORIGIN.y + ALERT[0]}"
    for row in rows:
        if row["tile_id"] == alert_tile:
            row["labels"] = ["clear", "primary"]
            row["p_agriculture"] = 0.05
    tables.write_scans(scans, {("hand", D2): rows})
    second = report.run(["--scans", str(scans), "--output", str(out)])
    new = (out / "current").resolve()
    assert second["events"] == 0 and second["images"] == [] and new != old
    assert sorted(p.name for p in new.iterdir()) == ["alerts.geojson", "alerts.parquet", "clearings.geojson",
                                                    "clearings.parquet", "events.geojson", "events.parquet",
                                                    "report.html", "summary.json"]
    assert sorted(str(p.relative_to(old)) for p in (old / "events").iterdir()) == [*pictures, "events/notes.txt"]
    manifest = json.loads((out / "current.json").read_text())
    assert manifest["run_id"] == second["version"] and manifest["runs"] == {}
    assert list(manifest["replaced"]) == [first["version"]]
    manifest["replaced"][first["version"]]["replaced_at"] = "2000-01-01T00:00:00+00:00"  # long ago
    (out / "current.json").write_text(json.dumps(manifest))
    third = report.run(["--scans", str(scans), "--output", str(out)])
    assert [p.name for p in old.rglob("*") if p.is_file()] == ["notes.txt"], "the old version's own files went"
    assert (out / "notes.txt").read_text() == "another"
    assert list(json.loads((out / "current.json").read_text())["replaced"]) == [second["version"]] != [third["version"]]


def test_map_outlines_keep_the_corners_of_densified_outlines_and_drop_the_rest():
    """Outlines stored with the points their reprojected edges were densified with (as UTM tile outlines
    were before they kept only what their pixels need, and as other engines write them) keep their corners
    only on the map, within half a metre of the stored geometry (measured in their UTM zone by pyproj),
    and 20 times smaller."""
    from pyproj import Transformer
    from shapely.geometry import box

    from pipelines.geo.grid import WGS84, reproject

    cells = [(0, 0), (1, 0), (2, 0), (0, 1)]  # an L of four 768-m tiles
    event = shapely.union_all([reproject(box(600000 + 768 * i, 8899232 - 768 * j, 600768 + 768 * i, 8900000 - 768 * j),
                                         "EPSG:32721", WGS84) for i, j in cells])
    feature, = json.loads(report_page._features(["e"], [event.wkb], [{}]))["features"]
    outline = shapely.geometry.shape(feature["geometry"])
    assert len(shapely.get_coordinates(event)) > 100 and len(shapely.get_coordinates(outline)) == 7
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32721", always_xy=True)
    utm = lambda g: shapely.transform(g, lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1])))  # noqa: E731
    assert shapely.hausdorff_distance(utm(event), utm(outline), densify=0.01) < 0.5
    assert len(json.dumps(feature["geometry"])) * 20 < len(json.dumps(shapely.geometry.mapping(event)))
    assert shapely.get_coordinates(outline).round(6).tolist() == shapely.get_coordinates(outline).tolist()


def test_true_colour_stretches_each_band_between_its_percentiles_of_the_pixels_with_data():
    """Worked by hand: a band rising 0..999 over pixels with data maps its 2nd and 98th percentiles (numpy's,
    of those pixels only) to 0 and 255; a pixel without data in every band stays black, one with data in
    any band does not; a flat band keeps its colour (500 of 625 = 204), not black."""
    ramp = np.arange(1000, dtype=np.uint16).reshape(25, 40) + 1  # 1..1000: every pixel holds data
    pixels = np.stack([ramp, np.full_like(ramp, 500), ramp[::-1]], axis=-1)
    pixels[0, :5] = 0  # five pixels without data
    pixels[1, 0] = (0, 0, 999)  # data in one band only
    image = event_images.true_colour(pixels)
    held = pixels[..., 0][(pixels > 0).any(axis=-1)].astype(float)
    low, high = np.percentile(held, event_images.STRETCH)
    expected = np.clip((pixels[..., 0] - low) / (high - low) * 255, 0, 255).astype(np.uint8)
    expected[0, :5] = 0
    assert np.array_equal(image[..., 0], expected)
    assert (image[0, :5] == 0).all() and image[1, 0, 2] == 255
    assert (image[2:, :, 1] == 204).all()
    assert image[..., 0].max() == 255 and image[..., 0][(pixels > 0).any(axis=-1)].min() == 0
    assert not event_images.true_colour(np.zeros((4, 4, 3), np.uint16)).any()


def test_each_aois_map_shows_its_own_largest_events_their_clearings_and_the_places_in_its_frame(monkeypatch):
    """The page's map data, without a browser: with room for two outlines, the two largest events (by area,
    then id) are drawn, each on its own AOI's map; a clearing is drawn with its event; a known place only
    on the map whose frame it touches; the page says how many events the map leaves out."""
    from pipelines.analysis.clearings import Clearing
    from pipelines.analysis.events import Event

    monkeypatch.setattr(report_page, "MAX_MAP_EVENTS", 2)
    day = dt.date(2026, 6, 15)

    def event(event_id, aoi, area_ha, x, cleared_ha=None):
        outline = shapely.box(x, -10, x + 0.01, -9.99)
        return Event(event_id, aoi, day, day, 1, area_ha, (("agriculture", 1),), "low", "active", ("a",), (),
                     outline.wkb, x, -10, dt.date(2026, 6, 1), "s0", "s1", cleared_ha=cleared_ha)

    def clearing(clearing_id, event_id, x):
        return Clearing(clearing_id, event_id, "a", ("a",), day, day, ("agriculture",), "low", 1.0, 0.9, "ndvi", 0.1,
                        shapely.box(x, -10, x + 0.001, -9.999).wkb, x, -10)

    def frame(aoi, lon):  # a 256-px map of 2.56 km whose north-west corner lies at ``lon``, 9.98 S
        x0, y1 = np.radians(lon) * 6378137.0, np.log(np.tan(np.pi / 4 + np.radians(-9.98) / 2)) * 6378137.0
        return map_layers.AoiMap(aoi, x0, y1, 10.0, 256, 256, 1, {day: np.zeros((256, 256), np.uint8)})

    events_ = [event("e1", "a", 5.0, -56.0, cleared_ha=1.25), event("e2", "b", 9.0, -50.0),
               event("e3", "a", 1.0, -55.99), event("e0", "a", 5.0, -55.98)]
    maps = {"a": frame("a", -56.01), "b": frame("b", -50.01)}
    inside = {"type": "Feature", "properties": {"name": "p"}, "geometry": shapely.geometry.mapping(
        shapely.box(-56.0, -10.0, -55.999, -9.999))}
    content = report_page.Content("scans", [day], maps, [], events_, [clearing("c1", "e1", -56.0), clearing(
        "c3", "e3", -55.99)], [], [], None, [inside], None, None, {}, 0.8, 0.9)
    data = {m["aoi"]: m for m in json.loads(report_page._map_data(content))}
    assert [f["id"] for f in data["a"]["events"]["features"]] == ["e0"]  # e0 and e1 tie on area: e0 first
    assert [f["id"] for f in data["b"]["events"]["features"]] == ["e2"]
    assert data["b"]["events"]["features"][0]["properties"]["label"] == \
        "9.0 ha of tiles, low, active: agriculture"
    assert data["a"]["clearings"]["features"] == [] and data["b"]["clearings"]["features"] == []
    assert data["a"]["places"]["features"] == [json.loads(json.dumps(inside))] and data["b"]["places"] is None
    assert [d["date"] for d in data["a"]["layers"]] == ["2026-06-15"]
    assert "The map outlines the 2 largest of 4 events" in report_page._maps(content)
    monkeypatch.setattr(report_page, "MAX_MAP_EVENTS", 3)
    data = {m["aoi"]: m for m in json.loads(report_page._map_data(content))}
    assert sorted(f["id"] for f in data["a"]["events"]["features"]) == ["e0", "e1"]
    assert [f["id"] for f in data["a"]["clearings"]["features"]] == ["c1"]
    assert next(f for f in data["a"]["events"]["features"] if f["id"] == "e1")["properties"]["label"] == \
        "1.2 ha cleared in 5.0 ha of tiles, low, active: agriculture"
    monkeypatch.setattr(report_page, "MAX_MAP_EVENTS", 4)
    assert "largest of" not in report_page._maps(content)


def test_shares_and_text_on_the_page():
    assert [report_page._pct(v) for v in (None, -0.0004, 0.0004, 0.1234, -0.25)] == [
        "n/a", "0.0%", "0.0%", "12.3%", "-25.0%"]
    assert report_page._e('<b class="x">&') == "&lt;b class=&quot;x&quot;&gt;&amp;"


def test_a_deleted_bundle_leaves_the_page_without_its_card_but_a_bad_bundle_flag_is_refused(tmp_path, caplog):
    """Old bundles are deleted as models are replaced: the report of scans that name one failed as a whole
    (exit 2, "not a bundle") for want of its model card. Now the card is left out with a warning; a
    ``--bundle`` given is still checked, before any work."""
    scans = tables.write_scans(tmp_path / "scans", {("hand", D1): [_row(0, 0, ["clear", "primary"], "s1", "/s1.tif")]},
                               bundle=str(tmp_path / "deleted-bundle"))
    with caplog.at_level("WARNING"):
        summary = report.run(["--scans", scans, "--output", str(tmp_path / "report"), "--no_images",
                              "--no_clearings"])
    assert summary["model_version"] is None and summary["bundle"].endswith("deleted-bundle")
    assert "the page has no model card: the newest scan's bundle cannot be read" in caplog.text
    with pytest.raises(UserError, match="deleted-bundle: not a bundle"):
        report.run(["--scans", scans, "--output", str(tmp_path / "again"), "--no_images", "--no_clearings",
                    "--bundle", str(tmp_path / "deleted-bundle")])
    assert not (tmp_path / "again" / "runs").exists() or not any((tmp_path / "again" / "runs").iterdir())


def test_truth_without_a_place_is_refused_and_the_report_kept(tmp_path):
    """Scored against no place, every alert counted as a false one (precision 0) in a report that replaced
    the last; now refused in one line, and the report folder keeps its version."""
    scans = tables.write_scans(tmp_path / "scans", {("hand", D1): [_row(0, 0, ["clear", "primary"], "s1", "/s1.tif")]})
    args = ["--scans", scans, "--output", str(tmp_path / "report"), "--no_images", "--no_clearings"]
    report.run(args)
    before = (tmp_path / "report" / "current.json").read_text()
    (tmp_path / "none.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(UserError, match=f"--truth {tmp_path / 'none.geojson'}: no features"):
        report.run([*args, "--truth", str(tmp_path / "none.geojson")])
    assert (tmp_path / "report" / "current.json").read_text() == before


def test_scenes_given_for_the_pictures_that_the_scans_never_read_are_named_in_a_warning(caplog):
    """``--scenes`` stands in for the scans' paths of the same scene ids (scenes moved since): given another
    folder, none stood in and the scans' own paths were read, without a word."""
    import duckdb

    from pipelines.sources.base import SceneItem

    con = duckdb.connect()
    con.execute("CREATE SCHEMA planet_tiles")
    con.execute("CREATE TABLE planet_tiles.tile_labels AS SELECT * FROM (VALUES ('s1', '/old/s1.tif', "
                "DATE '2026-06-01'), ('s2', '/old/s2.tif', DATE '2026-06-01')) AS t(scene_id, scene_uri, scan_date)")
    given = [SceneItem("/moved/s1.tif", "s1"), SceneItem("/other/x9.tif", "x9")]
    with caplog.at_level("WARNING"):
        items = event_images.scene_items(con, given)
    assert {k: v.uri for k, v in items.items()} == {"s1": "/moved/s1.tif", "s2": "/old/s2.tif"}
    assert "1 of 2 scenes given are no scene of the scans (x9); they are not read" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        event_images.scene_items(con, given[:1])
    assert "no scene of the scans" not in caplog.text


def test_the_geojson_files_properties_are_what_a_json_encoder_writes_for_each_item():
    """The GeoJSON beside the page encodes its properties column by column, texts and dates once per distinct
    value: each feature must still be, character for character, what encoding the item's dict writes (dates
    and times in ISO 8601), whatever the values: none, not a number, whole and fractional numbers, texts with
    quotes and accents, nested tuples, times with a zone."""
    from types import SimpleNamespace

    from pipelines.store.schema import Column

    columns = [Column(name, kind, "") for name, kind in (
        ("item_id", "STRING"), ("value", "FLOAT64"), ("count", "INT64"), ("note", "STRING"), ("when", "DATE"),
        ("at", "TIMESTAMP"), ("pairs", "STRING"), ("geometry", "GEOGRAPHY"))]
    utc, minus3 = dt.timezone.utc, dt.timezone(dt.timedelta(hours=-3))
    values = [("a", 0.1, 3, 'say "sí"', dt.date(2026, 6, 1), dt.datetime(2026, 6, 1, 13, 30, tzinfo=utc),
               (("agriculture", 2),)),
              ("b", float("nan"), 0, 'say "sí"', dt.date(2026, 6, 1), None, ()),
              ("c", None, -7, None, dt.date(2026, 6, 15), dt.datetime(2026, 6, 1, 13, 30, tzinfo=minus3),
               (("agriculture", 2),)),
              ("d", 1e-7, 10**20, "", dt.date(2026, 6, 15), dt.datetime(2026, 6, 1, 13, 30, tzinfo=utc),
               (("road", 1), ("habitation", 4)))]
    names = [c.name for c in columns if c.name != "geometry"]
    items = [SimpleNamespace(**dict(zip(names, v)), geometry=shapely.box(i, 0, i + 1, 1).wkb)
             for i, v in enumerate(values)]
    written = report._geojson(items, columns, "item_id")
    encode = json.JSONEncoder(default=lambda v: v.isoformat()).encode
    for feature, item in zip(json.loads(written)["features"], items, strict=True):
        text = f'"properties": {encode({n: getattr(item, n) for n in names})}'
        assert text in written
        assert feature["id"] == item.item_id and feature["properties"]["at"] == (
            None if item.at is None else item.at.isoformat())
    assert report._geojson([], columns, "item_id") == '{"type": "FeatureCollection", "features": []}'
