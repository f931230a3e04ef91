"""report.html opened in headless Chromium (Debian's chromium, driven by Playwright)."""

import dataclasses
import datetime as dt
import io
import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import shapely
import shapely.affinity
from PIL import Image
from shapely.geometry import box

from pipelines.analysis import report_page, rules
from planet_model.labels import LABELS

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
        message = "Chromium is not installed and cannot be installed here (needs root and apt-get: apt-get install chromium)"
        if os.environ.get("CI"):  # CI must run the browser test: .ci/run installs Chromium
            pytest.fail(message)
        pytest.skip(message)
    return path


def test_report_renders_in_chromium(demo, chromium, tmp_path):
    from playwright.sync_api import sync_playwright

    page_path = demo["report"]["files"]["report"]
    alerts = len(json.loads(open(demo["report"]["files"]["alerts_geojson"]).read())["features"])
    errors, remote = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "data:"))
                   else (remote.append(route.request.url), route.abort()))
        page.goto(f"file://{page_path}", wait_until="load")
        page.screenshot(path=tmp_path / "report.png", full_page=True)
        shown = int(page.inner_text("#alert-count"))
        maps = page.locator("svg.map")
        assert maps.count() == len(demo["report"]["scan_dates"])
        pixels = np.asarray(Image.open(io.BytesIO(maps.last.screenshot())).convert("RGB")).reshape(-1, 3)
        outlines = page.locator("svg.map path.alert").count()
        images = page.evaluate("[...document.images].map(i => i.naturalWidth)")
        browser.close()
    assert errors == [] and remote == []
    assert shown == alerts == outlines
    # Not blank: mostly painted, in several colours (forest, fields, clouds, red outlines).
    assert (pixels != 255).any(axis=1).mean() > 0.5
    assert len(np.unique(pixels // 32, axis=0)) >= 4
    assert images and all(w > 0 for w in images)  # the model card's figures decoded


# --- A report built by hand, looked at in Chromium -------------------------------------------------------
# Nine tiles, 3 x 3, 0.01 degree each. On both dates: water in the north-east cell (row 0, column 2).
# On the second: the south-west cell (row 2, column 0) turned to fields (an alert), the centre is cloudy.
D1, D2 = dt.date(2026, 6, 1), dt.date(2026, 7, 1)
WATER, ALERT, CLOUD = (0, 2), (2, 0), (1, 1)
ALERT_ID = 'T<img src=x onerror="window.hacked=1">'  # a tile id that would run script if not escaped
RED = np.array([0xd5, 0x00, 0x00])


def _row(r, c, date, labels):
    outline = box(-56 + 0.01 * c, -9.97 - 0.01 * (r + 1), -56 + 0.01 * (c + 1), -9.97 - 0.01 * r)
    return {"aoi": "hand", "tile_id": ALERT_ID if (r, c) == ALERT else f"T{r}{c}", "scene_id": "s", "scan_date": date,
            "acquired": None, "valid_fraction": 1.0, "clear_fraction": None, "labels": labels,
            **{f"p_{n}": 0.9 if n in labels else 0.05 for n in LABELS}, "geometry": outline.wkb,
            "lon": outline.centroid.x, "lat": outline.centroid.y, "area_m2": 1.2e6}


def _hand_page():
    rows = []
    for date in (D1, D2):
        for r in range(3):
            for c in range(3):
                labels = ["clear", "water"] if (r, c) == WATER else ["clear", "primary"]
                if date == D2 and (r, c) == ALERT:
                    labels = ["clear", "primary", "agriculture"]
                if date == D2 and (r, c) == CLOUD:
                    labels = ["cloudy"]
                rows.append(_row(r, c, date, labels))
    obs = rules.observations(rows)
    found = rules.alerts(obs)
    return report_page.render(obs=obs, found=found, trends=rules.label_trends(obs), meta=None, figures={}, places=None,
                        scored=None, scans="hand-built")


def _look(chromium, html_text, tmp_path):
    """What a person sees: the maps' pixels, the legend's colours, the tables, and whether script ran."""
    from playwright.sync_api import sync_playwright

    path = tmp_path / "report.html"
    path.write_text(html_text)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1200, "height": 900}, device_scale_factor=1)
        page.goto(f"file://{path}", wait_until="load")
        maps = [np.asarray(Image.open(io.BytesIO(m.screenshot())).convert("RGB")).astype(int)
                for m in page.locator("svg.map").all()]
        legend = page.evaluate("""[...document.querySelectorAll('.legend span')].map(s => [s.innerText.trim(),
            getComputedStyle(s.querySelector('.swatch')).backgroundColor])""")
        seen = {"maps": maps, "tables": page.locator("table").count(), "alert_rows": page.locator("table").last
                .locator("tr").count() - 1, "alert_text": page.locator("table").last.inner_text(),
                "hacked": page.evaluate("window.hacked === undefined ? null : window.hacked"),
                "legend": {text: tuple(int(v) for v in colour[colour.index("(") + 1:-1].split(",")[:3])
                           for text, colour in legend}}
        browser.close()
    return seen


def _cell(image, r, c):
    """The pixel at the centre of grid cell (r, c) of a map image."""
    h, w = image.shape[:2]
    return image[int((r + 0.5) * h / 3), int((c + 0.5) * w / 3)]


def _check(seen):
    """Assertions a person would make looking at the page; AssertionError when something is wrong."""
    legend = seen["legend"]
    colour = {name: next(np.array(v) for k, v in legend.items() if k.startswith(text))
              for name, text in (("water", "water"), ("primary", "intact primary"), ("cloudy", "cloudy"),
                                 ("disturbed", "forest disturbed"))}
    assert len(seen["maps"]) == 2, "a map per date"
    first, second = seen["maps"]
    near = lambda pixel, name: np.abs(pixel - colour[name]).max() <= 8  # noqa: E731 - antialiasing
    assert near(_cell(first, *WATER), "water") and near(_cell(second, *WATER), "water"), "water where water is"
    assert near(_cell(first, 0, 0), "primary") and near(_cell(first, *ALERT), "primary"), "forest where forest is"
    assert near(_cell(second, *ALERT), "disturbed") and near(_cell(second, *CLOUD), "cloudy")
    # The alert's red outline runs along its own cell's edges, and nowhere else.
    h, w = second.shape[:2]
    r, c = ALERT
    band = second[int(r * h / 3) - 2:int(r * h / 3) + 3, int((c + 0.25) * w / 3):int((c + 0.75) * w / 3)]
    assert (np.abs(band - RED).max(axis=-1) <= 40).any(), "the alert outline sits on its tile"
    elsewhere = second[int(0.5 * h / 3):int(1.5 * h / 3), int(1.25 * w / 3):]
    assert not (np.abs(elsewhere - RED).max(axis=-1) <= 40).any(), "no outline away from the alert"
    assert not (np.abs(first - RED).max(axis=-1) <= 40).any(), "no alert on the first date"
    assert seen["tables"] >= 2 and seen["alert_rows"] == 1, "the label-area and alert tables"
    assert ALERT_ID in seen["alert_text"] and seen["hacked"] is None, "text is escaped, never run"


def test_the_report_shows_what_the_data_says(chromium, tmp_path):
    _check(_look(chromium, _hand_page(), tmp_path))


@pytest.mark.parametrize("broken", ["flipped", "recoloured", "shifted", "unescaped"])
def test_a_broken_renderer_fails_the_look(chromium, tmp_path, monkeypatch, broken):
    """Each way a renderer can go wrong, planted, must fail :func:`_check`: the test can see."""
    if broken == "flipped":  # south up: mirrored about the map's middle latitude
        north_up = report_page.Projection.path
        monkeypatch.setattr(report_page.Projection, "path", lambda self, g: north_up(
            self, shapely.affinity.scale(g, yfact=-1, origin=(0, self.north - self.height / self.scale / 2))))
    elif broken == "recoloured":  # water painted as forest
        real_class = report_page.tile_class
        monkeypatch.setattr(report_page, "tile_class", lambda o: "primary" if "water" in o.labels else real_class(o))
    elif broken == "shifted":  # alert outlines one tile (about 1 km) north-east of their tile
        real = report_page.svg_map
        monkeypatch.setattr(report_page, "svg_map", lambda aoi, date, obs, found, places, projection: real(
            aoi, date, obs, [dataclasses.replace(a, geometry=shapely.affinity.translate(
                shapely.from_wkb(a.geometry), 0.01, 0.01).wkb) for a in found], places, projection))
    else:  # text written into the page as HTML
        monkeypatch.setattr(report_page, "_e", lambda value: str(value))
    with pytest.raises(AssertionError):
        _check(_look(chromium, _hand_page(), tmp_path))

