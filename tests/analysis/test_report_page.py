"""report.html opened in headless Chromium (Debian's chromium, driven by Playwright)."""

import io
import json
import os
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

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
        assert maps.count() == 2
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
