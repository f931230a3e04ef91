"""What every scan, batch or streaming, sets up and checks before any work: its model flags, its tiles'
grid against the bundle's ground pixel, and its scenes against the bundle's domain.

The batch scan (:mod:`pipelines.scan`) and the streaming scan (:mod:`pipelines.stream`) both call these,
so a bundle is held to one standard wherever it runs. Nothing here runs in Beam.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from collections.abc import Sequence

from affine import Affine
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

from pipelines.geo import tiling
from pipelines.geo.grid import NATIVE, UTM, WEB_MERCATOR_QUAD, WebMercatorGrid, ground_pixel_m, zoom_for_resolution
from pipelines.sources.base import SceneItem
from pipelines.sources.masks import NONE
from pipelines.sources.reader import ReadOptions, SceneError
from pipelines.steps.accounting import FAILED, outcome
from planet_core.errors import RunFailed, UserError
from planet_core.imagery import UNKNOWN
from planet_model.bundle import BundleMeta

log = logging.getLogger(__name__)


def add_bundle_arguments(parser: argparse.ArgumentParser) -> None:
    """The model flags of every scan (batch and streaming)."""
    parser.add_argument("--bundle", required=True, help="model bundle folder, local or gs://")
    parser.add_argument("--batch_size", type=int, default=64, help="tiles per model call")
    parser.add_argument("--weather_one", action="store_true",
                        help="exactly one weather label per tile (clear, cloudy, haze or partly_cloudy: the one "
                             "with the largest probability relative to its threshold), as in the Kaggle data; it "
                             "costs mean F2 (see planet_model/thresholds.py)")


def check_batch_size(args: argparse.Namespace) -> None:
    if args.batch_size <= 0:
        raise UserError(f"--batch_size {args.batch_size}: must be a positive number of tiles per model call")


#: The UTM grid must give ground pixels within this share of the bundle's, anywhere in the AOI.
UTM_TOLERANCE = 0.10
#: Beyond this share, a WebMercatorQuad (or native) pixel is reported as far from the bundle's.
WARN_TOLERANCE = 0.25


def tile_spec(args: argparse.Namespace, meta: BundleMeta, region: BaseGeometry) -> tiling.TileSpec:
    """The scan's tiles: the bundle's chip size and bands, on a grid whose ground pixel is the bundle's.

    UTM (default): the cell size is the bundle's ``gsd_m`` and the zone that of each AOI's centre; the
    ground pixel must stay within 10 % of it over the whole AOI. WebMercatorQuad: without ``--zoom`` the
    level closest to ``gsd_m``; a pixel more than 25 % off is reported before the scan starts.
    """
    gsd = meta.domain.gsd_m
    zoom = args.zoom
    if args.grid == UTM and not (args.cell_size or gsd):
        raise UserError(f"the bundle {args.bundle} records no ground resolution (an older bundle): pass "
                         "--cell_size METRES, or --grid WebMercatorQuad --zoom Z")
    if args.grid == WEB_MERCATOR_QUAD and zoom is None:
        if not gsd:
            raise UserError(f"the bundle {args.bundle} records no ground resolution (an older bundle): pass --zoom")
        zoom = zoom_for_resolution(gsd, region.centroid.y)
    try:
        spec = tiling.from_args(args, tile_size=meta.chip_size, zoom=zoom, cell_size=gsd)
    except ValueError as error:  # the tiles' size is the bundle's: an error about it says where it comes from
        sized = f"{meta.chip_size} px" in str(error)
        about = f" (the bundle was trained on {meta.chip_size}-px chips)" if sized else ""
        raise UserError(f"{error}{about}") from None
    if gsd and spec.grid != NATIVE:
        check_resolution(spec, region, gsd)
    return spec


def check_resolution(spec: tiling.TileSpec, region: BaseGeometry, gsd: float) -> tuple[float, float]:
    """The grid's smallest and largest ground pixel over the AOI (its corners and centre), checked
    against the bundle's ``gsd``: beyond 10 % on the UTM grid the scan is refused, beyond 25 % on
    WebMercatorQuad it is reported."""
    matrix = spec.matrix(region)
    if spec.grid == UTM:
        matrix.tms()  # the tile matrix set itself, built here so that a bad one fails before any work
    west, south, east, north = region.bounds
    points = [(west, south), (west, north), (east, south), (east, north), (region.centroid.x, region.centroid.y)]
    cell = spec.cell_size if spec.grid == UTM else WebMercatorGrid.tms().matrix(spec.zoom).cellSize
    to_grid = Transformer.from_crs("EPSG:4326", matrix.crs, always_xy=True)
    sizes = [ground_pixel_m(matrix.crs, Affine(cell, 0, x, 0, -cell, y), 0, 0)
             for x, y in (to_grid.transform(lon, lat) for lon, lat in points)]
    low, high = min(sizes), max(sizes)
    worst = max(abs(low / gsd - 1), abs(high / gsd - 1))
    described = (f"the {spec.grid} grid's ground pixel is {low:.2f} to {high:.2f} m over the AOI; the bundle "
                 f"learned from {gsd:.2f} m")
    if spec.grid == UTM and worst > UTM_TOLERANCE:
        raise UserError(f"{described}: more than {UTM_TOLERANCE:.0%} off. Split the AOI by UTM zone or pass "
                         "--utm_zone for each part")
    if worst > WARN_TOLERANCE:
        log.warning("%s: objects look %.2f times their training size to the model; scan on --grid UTM to "
                    "match it", described, gsd / ((low + high) / 2))
    return low, high


def check_scenes(items: Sequence[SceneItem], meta: BundleMeta, read: ReadOptions, product: str | None,
                 region: BaseGeometry, allow_resampling: bool = False) -> list[dict]:
    """Check every scene's header against the bundle's domain before any work.

    A product that differs from the bundle's (both known) refuses the scan, naming both and the fix:
    a model applied to another product's values fails silently. So does a scene whose own ground pixel is
    more than :data:`UTM_TOLERANCE` off the bundle's (a 30-m Landsat scene under a 3-m bundle: its tiles
    would be its pixels blown up tenfold), unless ``allow_resampling``. A scene that cannot give the bundle's
    bands, or has another dtype (unless ``--product`` says the user knows better), becomes a failed
    outcome, unless no scene can, which refuses the scan. Scenes that cannot be opened are left to the
    pipeline's error lines.
    """
    domain = meta.domain
    wrong_product, wrong_pixel, failed, touching, opened = [], [], [], 0, 0
    every_band = dataclasses.replace(read, bands=None, cloud_mask=NONE)  # every band, to name the missing ones
    for item in items:
        try:
            with every_band.open(item) as reader:
                opened += 1
                touching += reader.grid.footprint().intersects(region)
                missing = [b for b in meta.bands if b not in reader.layout.available()]
                scene_product = product or reader.product
                if UNKNOWN not in (scene_product, domain.product) and scene_product != domain.product:
                    wrong_product.append(f"{item.uri} is {scene_product}")
                elif domain.gsd_m and not allow_resampling and abs(reader.gsd_m / domain.gsd_m - 1) > UTM_TOLERANCE:
                    wrong_pixel.append(f"{item.uri} has {reader.gsd_m:.2f} m")
                elif missing:
                    failed.append(outcome(FAILED, item.scene_id, item.uri, reason=(
                        f"bands: it provides {', '.join(reader.layout.available())}, not {', '.join(missing)}")))
                elif reader.dtype != meta.dtype and not product:
                    failed.append(outcome(FAILED, item.scene_id, item.uri, reason=(
                        f"dtype: it is {reader.dtype}, the bundle was trained on {meta.dtype} (pass --product "
                        "if its values are the bundle's product all the same)")))
        except SceneError as error:
            if len(items) == 1:
                raise UserError(str(error)) from None
            continue
    if wrong_product:
        raise UserError(
            f"the bundle was trained on {domain.product} imagery; {_first_three(wrong_product)}. Scan "
            f"{domain.product} scenes, or pass --product {domain.product} if these are that product whatever "
            "their names say"
        )
    if wrong_pixel:
        raise UserError(
            f"the bundle learned from {domain.gsd_m:.2f} m pixels; {_first_three(wrong_pixel)} (more than "
            f"{UTM_TOLERANCE:.0%} off): the model would see them resampled to its scale. Scan scenes of its "
            "resolution, or pass --allow_resampling to scan these all the same"
        )
    if failed and len(failed) == len(items):
        raise UserError(f"the bundle needs bands {', '.join(meta.bands)} ({meta.dtype}); no scene can give "
                         "them: " + "; ".join(f"{o['uri']}: {o['reason']}" for o in failed[:3]))
    for item in failed:
        log.warning("%s: %s (counted as failed)", item["uri"], item["reason"])
    if items and not touching and opened == len(items):
        raise RunFailed(f"scan: the AOI touches none of the {len(items)} scenes, so there is nothing to scan; "
                        "the scans table is unchanged")
    return failed


def _first_three(found: Sequence[str]) -> str:
    """Scenes named in a refusal: the first three, and how many more."""
    return "; ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
