"""Deterministic synthetic Amazon scenes: a forest with rivers, roads, fields, settlements and weather.

Each scene is a GeoTIFF laid out like a PlanetScope analytic scene: 4 bands uint16 (surface reflectance
x 10,000, 12-bit range) in Planet's ``blue, green, red, nir`` order with colour interpretation set,
3 m pixels, UTM zone 21S, tiled 256 x 256 and compressed with Zstandard at level 1 (deflate's default level
made compression most of a scene's writing: 0.76 against 0.20 s for a 2,048-px scene, read as fast, files
a sixth larger). Beside it go its usable data mask
(``<scene_id>_udm2.tif``, Planet's UDM2 layout, flagging the planted clouds, their shadows and haze), the
ground truth as a GeoJSON of tagged polygons (EPSG:4326) and the Kaggle-format labels of each native
256-px tile.

A scene is fully determined by its :class:`SceneSpec`: same spec, same bytes. A second acquisition of
the same place (``disturbance_seed``) keeps the landscape and adds new clearings, roads and burn scars,
which are returned as the known places change detection must find.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import morecantile
import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.enums import ColorInterp
from rasterio.features import rasterize
from rasterio.shutil import copy as copy_dataset
from shapely.geometry import LineString, Polygon, box, mapping
from shapely.geometry.base import BaseGeometry

from pipelines.geo.grid import WGS84, NativeGrid, reproject
from pipelines.geo.ground_truth import PolygonTruth
from pipelines.sources.masks import UDM2_BANDS
from planet_core import commands
from planet_core.errors import UserError
from planet_core.imagery import SURFACE_REFLECTANCE
from planet_core.labels import write_kaggle_csv

CRS = "EPSG:32721"  # UTM 21S, the heart of the Brazilian Amazon
#: Easting, northing of scene (0, 0)'s top-left: about 56.1 W, 9.95 S (Mato Grosso). Both are multiples
#: of the 3 m pixel, as the UTM tile matrix sets' pixel edges are (pipelines.geo.grid.UtmGrid), so a
#: scan on the default grid reads these pixels unresampled, like a scene snapped to its pixel size.
ORIGIN = (600_000.0, 8_899_998.0)
RESOLUTION = 3.0

# Surface reflectance x 10,000 in Planet's band order: blue, green, red, nir.
SPECTRA = {
    "primary": (350, 600, 330, 3000),
    "water": (520, 700, 560, 350),
    "agriculture": (700, 1050, 950, 2500),
    "bare_ground": (1350, 1650, 2050, 2600),
    "road": (1150, 1350, 1550, 2050),
    "habitation": (1900, 2000, 2100, 2300),
    "slash_burn": (260, 280, 300, 800),
    "cloud": (4600, 4600, 4650, 4900),
    "haze": (1900, 1950, 2050, 2500),
}
#: Where a cloud's shadow falls, in pixels (column, row) from the cloud: a sun in the north-west,
#: clouds about 1 km up. Shadowed ground keeps this share of its light.
SHADOW_OFFSET = (40, 30)
SHADOW_LIGHT = 0.5
# Drawing order: later classes cover earlier ones.
_DRAW = ("water", "agriculture", "bare_ground", "slash_burn", "road", "habitation")
_LAND_COVER_NOT_FOREST = ("water", "agriculture", "bare_ground", "habitation", "slash_burn")


@dataclass(frozen=True)
class SceneSpec:
    """Everything that determines a synthetic scene."""

    seed: int
    width: int = 2048
    height: int = 2048
    col: int = 0  # scene position in a mosaic of neighbouring scenes, in scene widths
    row: int = 0
    acquired: str = "2026-06-01T13:30:00+00:00"
    weather_seed: int | None = None  # clouds and haze; default: from seed
    disturbance_seed: int | None = None  # new clearings, roads, burn scars (a later acquisition)
    cloud_probability: float = 0.45
    haze_probability: float = 0.25
    overcast: bool = False  # one cloud over the whole scene (a day on which nothing on the ground shows)
    crs: str = CRS
    origin: tuple[float, float] = ORIGIN  # top-left of scene (0, 0), in ``crs``
    pixel: float = RESOLUTION  # metres of ``crs`` per pixel
    name: str | None = None  # the file's name, when not ``synth_<day>_r<row>c<col>`` (a basemap quad's id)

    @property
    def scene_id(self) -> str:
        day = self.acquired[:10].replace("-", "")
        return self.name or f"synth_{day}_r{self.row}c{self.col}"

    @property
    def transform(self) -> Affine:
        x = self.origin[0] + self.col * self.width * self.pixel
        y = self.origin[1] - self.row * self.height * self.pixel
        return Affine(self.pixel, 0.0, x, 0.0, -self.pixel, y)


@dataclass
class Landscape:
    """Tagged polygons in scene pixel coordinates (column, row)."""

    features: list[tuple[str, BaseGeometry]] = field(default_factory=list)
    planted: list[tuple[str, BaseGeometry]] = field(default_factory=list)


def _blob(rng: np.random.Generator, cx: float, cy: float, radius: float, points: int = 14) -> Polygon:
    angles = np.sort(rng.uniform(0, 2 * math.pi, points))
    radii = radius * rng.uniform(0.55, 1.0, points)
    return Polygon(np.column_stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)])).buffer(radius * 0.15)


def _wander(rng: np.random.Generator, width: int, height: int, wiggle: float, steps: int = 24) -> LineString:
    """A line from one scene edge to the opposite one, bending as it goes."""
    horizontal = rng.random() < 0.5
    span = width if horizontal else height
    across = height if horizontal else width
    t = np.linspace(-0.05 * span, 1.05 * span, steps)
    offset = rng.uniform(0.15, 0.85) * across + np.cumsum(rng.normal(0, wiggle, steps))
    return LineString(np.column_stack([t, offset]) if horizontal else np.column_stack([offset, t]))


def _field(rng: np.random.Generator, cx: float, cy: float, size: tuple[float, float]) -> Polygon:
    w, h = size
    return shapely.affinity.rotate(box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), rng.uniform(0, 90))


def landscape(spec: SceneSpec) -> Landscape:
    """The land of a scene: what is on the ground, from ``spec.seed`` (weather and changes apart)."""
    rng = np.random.default_rng(spec.seed)
    w, h = spec.width, spec.height
    scale = math.sqrt(w * h) / 2048
    land = Landscape()
    if rng.random() < 0.6:
        land.features.append(("water", _wander(rng, w, h, 25).buffer(rng.uniform(6, 14))))
    roads = [_wander(rng, w, h, 8) for _ in range(rng.integers(0, 3 if scale < 0.75 else 4))]
    land.features += [("road", r.buffer(2.5)) for r in roads]
    for _ in range(rng.poisson(3 * scale)):
        anchor = _near(rng, roads, w, h)
        land.features.append(("agriculture", _field(rng, *anchor, rng.uniform(70, 220, 2))))
    for _ in range(rng.poisson(1.2 * scale)):
        land.features.append(("bare_ground", _blob(rng, rng.uniform(0, w), rng.uniform(0, h), rng.uniform(18, 45))))
    for _ in range(rng.poisson(1.0 * scale) if roads else 0):
        cx, cy = _near(rng, roads, w, h)
        land.features.append(("habitation", _blob(rng, cx, cy, rng.uniform(35, 60), 10)))
    if spec.disturbance_seed is not None:
        land.planted = plant_disturbances(spec, land)
        land.features += land.planted
    clip = box(0, 0, w, h)
    land.features = [(t, g.intersection(clip)) for t, g in land.features if g.intersects(clip)]
    return land


def plant_disturbances(spec: SceneSpec, land: Landscape) -> list[tuple[str, BaseGeometry]]:
    """New clearings, roads and burn scars placed in intact forest: the changes a later scan must find."""
    rng = np.random.default_rng(spec.disturbance_seed)
    taken = shapely.union_all([g for _, g in land.features]).buffer(60) if land.features else Polygon()
    planted: list[tuple[str, BaseGeometry]] = []
    scale = math.sqrt(spec.width * spec.height) / 2048
    for kind in ["agriculture", "slash_burn"] * max(1, round(2 * scale)) + ["road"]:
        for _ in range(50):
            cx, cy = rng.uniform(150, spec.width - 150), rng.uniform(150, spec.height - 150)
            if kind == "road":
                angle = rng.uniform(0, math.pi)
                length = rng.uniform(400, 900)
                dx, dy = math.cos(angle) * length / 2, math.sin(angle) * length / 2
                geom = LineString([(cx - dx, cy - dy), (cx + dx, cy + dy)]).buffer(2.5)
            elif kind == "agriculture":
                geom = _field(rng, cx, cy, rng.uniform(150, 230, 2))
            else:
                geom = _blob(rng, cx, cy, rng.uniform(60, 100))
            if not geom.intersects(taken):
                planted.append((kind, geom))
                taken = taken.union(geom.buffer(60))
                break
    return planted


def weather(spec: SceneSpec) -> list[tuple[str, BaseGeometry]]:
    """Clouds and haze of one acquisition, in pixel coordinates."""
    rng = np.random.default_rng(spec.seed * 7919 + 1 if spec.weather_seed is None else spec.weather_seed)
    w, h = spec.width, spec.height
    found: list[tuple[str, BaseGeometry]] = []
    if spec.overcast:
        return [("cloudy", box(-0.1 * w, -0.1 * h, 1.1 * w, 1.1 * h))]
    if rng.random() < spec.cloud_probability:
        for _ in range(rng.integers(1, 5)):
            found.append(("cloudy", _blob(rng, rng.uniform(0, w), rng.uniform(0, h), rng.uniform(80, 420), 18)))
    if rng.random() < spec.haze_probability:
        found.append(("haze", _blob(rng, rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.5, 1.0) * max(w, h), 10)))
    return found


def shadows(sky: Sequence[tuple[str, BaseGeometry]]) -> BaseGeometry:
    """The ground in cloud shadow: each cloud moved by :data:`SHADOW_OFFSET`, less the clouds themselves."""
    clouds = [g for t, g in sky if t == "cloudy"]
    if not clouds:
        return Polygon()
    cast = shapely.union_all([shapely.affinity.translate(g, *SHADOW_OFFSET) for g in clouds])
    return cast.difference(shapely.union_all(clouds))


def _near(rng: np.random.Generator, roads: Sequence[LineString], w: int, h: int) -> tuple[float, float]:
    if roads and rng.random() < 0.7:
        road = roads[rng.integers(len(roads))]
        p = road.interpolate(rng.uniform(0, road.length))
        return float(np.clip(p.x + rng.normal(0, 60), 0, w)), float(np.clip(p.y + rng.normal(0, 60), 0, h))
    return float(rng.uniform(0, w)), float(rng.uniform(0, h))


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    small = rng.normal(0, 1, (cells, cells)).astype(np.float32)
    return cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def render(spec: SceneSpec, land: Landscape, sky: list[tuple[str, BaseGeometry]]) -> np.ndarray:
    """Pixels ``(4, height, width)`` uint16 in blue, green, red, nir order."""
    rng = np.random.default_rng(spec.seed * 104729 + (spec.disturbance_seed or 0))
    shape = (spec.height, spec.width)
    texture = 1 + 0.12 * _smooth_noise(rng, shape, 64) + 0.05 * rng.normal(0, 1, shape).astype(np.float32)
    classes = np.zeros(shape, dtype=np.uint8)
    for code, kind in enumerate(_DRAW, start=1):
        geoms = [g for t, g in land.features if t == kind and not g.is_empty]
        if geoms:
            rasterize(((g, code) for g in geoms), out=classes, transform=Affine.identity())
    palette = np.array([SPECTRA["primary"]] + [SPECTRA[k] for k in _DRAW], dtype=np.float32)
    image = palette[classes].transpose(2, 0, 1) * texture
    stripes = 1 + 0.08 * np.sin(np.arange(spec.width, dtype=np.float32) / 3.0)
    image[:, classes == _DRAW.index("agriculture") + 1] *= np.broadcast_to(stripes, shape)[classes == 2]
    roofs = (classes == _DRAW.index("habitation") + 1) & (rng.random(shape) < 0.35)
    image[:, roofs] *= 1.4
    shade = shadows(sky)
    if not shade.is_empty:
        image[:, rasterize([(shade, 1)], out_shape=shape, transform=Affine.identity()).astype(bool)] *= SHADOW_LIGHT
    for kind, geom in sky:
        mask = rasterize([(geom, 1)], out_shape=shape, transform=Affine.identity()).astype(bool)
        if not mask.any():
            continue
        if kind == "haze":
            alpha = 0.4
        else:  # soft-edged, textured cloud
            alpha = np.clip(0.85 + 0.15 * _smooth_noise(rng, shape, 16), 0, 1)[mask]
        target = np.array(SPECTRA["cloud" if kind == "cloudy" else "haze"], dtype=np.float32)[:, None]
        image[:, mask] = image[:, mask] * (1 - alpha) + target * alpha
    return np.clip(image, 1, 4095).astype(np.uint16)


def _draw(spec: SceneSpec) -> tuple[Landscape, list[tuple[str, BaseGeometry]], np.ndarray]:
    """The land, the sky (clipped to the scene, as its ground truth ends at its edge) and the pixels."""
    land = landscape(spec)
    clip = box(0, 0, spec.width, spec.height)
    sky = [(t, g.intersection(clip)) for t, g in weather(spec) if g.intersects(clip)]
    return land, sky, render(spec, land, sky)


def write_scene(spec: SceneSpec, directory: str | Path) -> dict:
    """Write ``<scene_id>.tif``, its UDM2 ``<scene_id>_udm2.tif``, ``<scene_id>.truth.geojson`` and
    ``<scene_id>.labels.csv``.

    Returns a summary: paths, scene id, and the planted disturbances (EPSG:4326 GeoJSON geometries).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    land, sky, pixels = _draw(spec)
    tif = directory / f"{spec.scene_id}.tif"
    profile = dict(driver="GTiff", width=spec.width, height=spec.height, count=4, dtype="uint16", crs=spec.crs,
                   transform=spec.transform, nodata=0, tiled=True, blockxsize=256, blockysize=256,
                   compress="zstd", zstd_level=1, predictor=2, interleave="pixel")
    acquired = dt.datetime.fromisoformat(spec.acquired).astimezone(dt.timezone.utc)
    with rasterio.open(tif, "w", **profile) as dst:
        dst.write(pixels)
        dst.colorinterp = (ColorInterp.blue, ColorInterp.green, ColorInterp.red, ColorInterp.undefined)
        dst.descriptions = ("blue", "green", "red", "nir")
        dst.update_tags(acquired=acquired.isoformat(), TIFFTAG_DATETIME=acquired.strftime("%Y:%m:%d %H:%M:%S"),
                        synthetic_seed=str(spec.seed), product=SURFACE_REFLECTANCE)
    udm2 = write_udm2(spec, sky, directory / f"{spec.scene_id}_udm2.tif", profile)
    return {"scene": str(tif), "udm2": str(udm2), **_write_truth(spec, directory, land, sky)}


def _write_truth(spec: SceneSpec, directory: Path, land: Landscape, sky: list[tuple[str, BaseGeometry]],
                 covered: BaseGeometry | None = None) -> dict:
    """The scene's ground truth (GeoJSON, EPSG:4326) and Kaggle-format labels of its native tiles;
    ``covered`` (pixel coordinates) limits both to where the scene holds data."""
    area = box(0, 0, spec.width, spec.height) if covered is None else covered
    to_wgs84 = lambda g: reproject(shapely.affinity.affine_transform(g, spec.transform.to_shapely()), spec.crs, WGS84)  # noqa: E731
    tagged = [(t, to_wgs84(g.intersection(area))) for t, g in land.features + sky if g.intersects(area)]
    footprint = to_wgs84(area)
    not_forest = shapely.union_all([g for t, g in tagged if t in _LAND_COVER_NOT_FOREST] or [Polygon()])
    tagged.append(("primary", footprint.difference(not_forest)))
    stem = spec.scene_id.replace("/", "_")
    truth = directory / f"{stem}.truth.geojson"
    truth.write_text(json.dumps(_collection(tagged, spec.scene_id)))
    grid = NativeGrid(spec.scene_id, spec.crs, tuple(spec.transform)[:6], spec.width, spec.height)
    labeller = PolygonTruth(tagged)
    rows = [(grid.tile(r, c).tile_id, labeller.labels(grid.tile(r, c))) for r, c in grid.tiles()]
    csv_path = directory / f"{stem}.labels.csv"
    write_kaggle_csv(csv_path, rows)
    return {
        "scene_id": spec.scene_id,
        "truth": str(truth),
        "labels_csv": str(csv_path),
        "planted": [{"tag": t, "geometry": mapping(to_wgs84(g.intersection(area)))}
                    for t, g in land.planted if g.intersects(area)],
    }


def sky_layers(spec: SceneSpec, sky: Sequence[tuple[str, BaseGeometry]]) -> tuple[np.ndarray, ...]:
    """``(cloud, shadow, haze)`` pixel masks of a scene's sky, exclusive as cloud masks' classes are: cloud
    over shadow over haze."""
    shape = (spec.height, spec.width)

    def layer(geoms: Sequence[BaseGeometry]) -> np.ndarray:
        geoms = [g for g in geoms if not g.is_empty]
        if not geoms:
            return np.zeros(shape, dtype=bool)
        return rasterize([(g, 1) for g in geoms], out_shape=shape, transform=Affine.identity()).astype(bool)

    cloud = layer([g for t, g in sky if t == "cloudy"])
    shadow = layer([shadows(sky)]) & ~cloud
    haze = layer([g for t, g in sky if t == "haze"]) & ~cloud & ~shadow
    return cloud, shadow, haze


def write_udm2(spec: SceneSpec, sky: Sequence[tuple[str, BaseGeometry]], path: Path, profile: dict) -> Path:
    """The scene's UDM2: one class per pixel (cloud over shadow over haze over clear, as Planet's are
    exclusive), haze as ``haze_light``, confidence 100 (the truth is known), ``udm1`` bit 1 on cloud."""
    shape = (spec.height, spec.width)
    cloud, shadow, haze = sky_layers(spec, sky)
    bands = {name: np.zeros(shape, dtype=np.uint8) for name in UDM2_BANDS}
    bands["clear"][~(cloud | shadow | haze)] = 1
    bands["shadow"][shadow] = 1
    bands["haze_light"][haze] = 1
    bands["cloud"][cloud] = 1
    bands["confidence"][:] = 100
    bands["udm1"][cloud] = 2
    mask_profile = {**profile, "count": len(UDM2_BANDS), "dtype": "uint8", "nodata": None, "predictor": 1}
    with rasterio.open(path, "w", **mask_profile) as dst:
        dst.write(np.stack([bands[name] for name in UDM2_BANDS]))
        dst.descriptions = UDM2_BANDS
    return path


#: Planet's basemap quads: 4096 px square (some mosaics use 2048) of WebMercatorQuad z15 pixels (4.777 m
#: at the equator), so a quad is one tile of level ``15 - log2(quad_size / 256)``: z11 for 4096.
QUAD_PIXEL_ZOOM = 15
QUAD_SIZE = 4096
#: The monthly NICFI tropical mosaics' names (Planet's "normalized analytic" surface reflectance, and
#: "visual" 8-bit RGB).
BASEMAP_PRODUCTS = {"normalized_analytic": "planet_medres_normalized_analytic_{month}_mosaic",
                    "visual": "planet_medres_visual_{month}_mosaic"}
#: The mosaic's western edge: quads of its first column hold no data this far in from their left edge
#: (alpha 0), as quads at a mosaic's edge do. Not a multiple of 256: tiles there are partly covered.
UNCOVERED_PX = 384


def quad_level(quad_size: int) -> int:
    level = QUAD_PIXEL_ZOOM - math.log2(quad_size / 256) if quad_size > 0 else -1
    if level != int(level) or not 0 <= level <= QUAD_PIXEL_ZOOM:
        raise ValueError(f"--quad_size {quad_size}: must be 256 times a power of two, up to 256 x 2^15")
    return int(level)


def quad_specs(seed: int, month: str, cols: int, rows: int, quad_size: int = QUAD_SIZE,
               changed: bool = False) -> list[SceneSpec]:
    """Specs of a ``rows x cols`` block of basemap quads of one month, from the quad holding the synthetic
    scenes' origin (Mato Grosso). The landscape is drawn in pixels, as for scenes; the same ``seed`` gives
    the same land every month, and ``changed`` adds the planted disturbances."""
    level = quad_level(quad_size)
    tms = morecantile.tms.get("WebMercatorQuad")
    lon, lat = reproject(shapely.Point(ORIGIN), CRS, WGS84).coords[0]
    first = tms.tile(lon, lat, level)
    specs = []
    for r in range(rows):
        for c in range(cols):
            x, y = first.x + c, first.y + r
            bounds = tms.xy_bounds(morecantile.Tile(x, y, level))
            specs.append(SceneSpec(seed=seed * 1000 + r * cols + c, width=quad_size, height=quad_size,
                                   acquired=f"{month}-15T00:00:00+00:00", cloud_probability=0.0, haze_probability=0.0,
                                   crs="EPSG:3857", origin=(bounds.left, bounds.top),
                                   pixel=(bounds.right - bounds.left) / quad_size, name=f"{x}-{y}",
                                   disturbance_seed=1 if changed else None))
    return specs


def write_quad(spec: SceneSpec, directory: str | Path, product: str, first_column: bool) -> dict:
    """One basemap quad as Planet publishes it: a Cloud Optimized GeoTIFF in EPSG:3857 with an alpha band,
    4 bands uint16 blue, green, red, NIR (surface reflectance x 10,000) for ``normalized_analytic``, or
    RGB uint8 for ``visual`` (``255 * (reflectance / 3000) ^ (1 / 2.2)``, clipped: a display stretch).
    Returns its summary, with ``scene`` the quad's path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    land, sky, pixels = _draw(spec)
    covered = box(UNCOVERED_PX if first_column else 0, 0, spec.width, spec.height)
    alpha = np.zeros((spec.height, spec.width), dtype=bool)
    alpha[:, UNCOVERED_PX if first_column else 0:] = True
    if product == "visual":
        rgb = 255 * np.clip(pixels[[2, 1, 0]].astype(np.float32) / 3000, 0, 1) ** (1 / 2.2)
        bands = np.concatenate([np.round(rgb).astype(np.uint8), (alpha * 255).astype(np.uint8)[None]])
        interp = (ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha)
        names = ("red", "green", "blue", "alpha")
    else:
        bands = np.concatenate([pixels, (alpha * 65535).astype(np.uint16)[None]])
        interp = (ColorInterp.blue, ColorInterp.green, ColorInterp.red, ColorInterp.undefined, ColorInterp.alpha)
        names = ("blue", "green", "red", "nir", "alpha")
    bands[:, ~alpha] = 0
    tif = directory / f"{spec.scene_id}.tif"
    staged = directory / f".{spec.scene_id}.gtiff"
    profile = dict(driver="GTiff", width=spec.width, height=spec.height, count=len(bands), dtype=bands.dtype,
                   crs=spec.crs, transform=spec.transform, tiled=True, blockxsize=256, blockysize=256)
    with rasterio.open(staged, "w", **profile) as dst:
        dst.write(bands)
        dst.colorinterp = interp
        dst.descriptions = names
        dst.update_tags(synthetic_seed=str(spec.seed))
    copy_dataset(staged, tif, driver="COG", BLOCKSIZE=256, COMPRESS="DEFLATE", OVERVIEWS="NONE")
    staged.unlink()
    return {"scene": str(tif), **_write_truth(spec, directory, land, [], covered)}


def write_basemap(seed: int, months: Sequence[str], cols: int, rows: int, directory: str | Path,
                  product: str = "normalized_analytic", quad_size: int = QUAD_SIZE) -> list[dict]:
    """Monthly mosaics of the same quads, each in its folder named as Planet names it; the land changes
    between the first month and the second (later months keep the change). Returns one summary per
    month: ``month``, ``mosaic``, ``folder``, ``quads`` (their summaries) and ``truth``."""
    if product not in BASEMAP_PRODUCTS:
        raise ValueError(f"--product {product!r}: choose from {', '.join(BASEMAP_PRODUCTS)}")
    out = []
    for index, month in enumerate(months):
        try:
            dt.date.fromisoformat(f"{month}-01")
        except ValueError:
            raise ValueError(f"--months {month}: not a month (YYYY-MM)") from None
        mosaic = BASEMAP_PRODUCTS[product].format(month=month)
        folder = Path(directory) / mosaic
        specs = quad_specs(seed, month, cols, rows, quad_size, changed=index > 0)
        quads = [write_quad(spec, folder, product, first_column=i % cols == 0) for i, spec in enumerate(specs)]
        merge_truth(quads, folder / "truth.geojson")
        out.append({"month": month, "mosaic": mosaic, "folder": str(folder), "quads": quads,
                    "truth": str(folder / "truth.geojson")})
    return out


#: Sentinel-2 L2A as Earth Search v1 serves it: 10 m bands as single-band COGs (uint16, nodata 0), the
#: scene classification at 20 m, and an item naming them; values carry BOA_ADD_OFFSET (+1000) since
#: processing baseline 04.00.
SENTINEL2_PIXEL = 10.0
SENTINEL2_BANDS = {"blue": 0, "green": 1, "red": 2, "nir": 3}  # asset key -> band of the drawn scene
SCL_CLEAR, SCL_CLOUD_HIGH, SCL_SHADOW, SCL_CIRRUS = 4, 9, 3, 10


def write_sentinel2(spec: SceneSpec, directory: str | Path, baseline: str = "05.10") -> dict:
    """A Sentinel-2 L2A-shaped scene of ``spec``'s place at 10 m: ``B02``..``B08`` COGs (+1000 for a
    baseline of 04.00 or later), ``SCL.tif`` at 20 m (cloud, shadow, cirrus from the drawn sky: a 20 m
    pixel takes the class of its top-left 10 m pixel) and ``item.json``, an ItemCollection of one
    Earth Search-style item. Returns the paths and the drawn bands (reflectance x 10000, ``(4, h, w)``
    in blue, green, red, nir order) as the oracle."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    spec = replace(spec, pixel=SENTINEL2_PIXEL)
    land, sky, pixels = _draw(spec)
    offset = 1000 if float(baseline) >= 4.0 else 0
    profile = dict(driver="COG", width=spec.width, height=spec.height, count=1, dtype="uint16", crs=spec.crs,
                   transform=spec.transform, nodata=0, compress="deflate", blocksize=256)
    hrefs = {}
    for key, band in SENTINEL2_BANDS.items():
        name = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08"}[key]
        with rasterio.open(directory / f"{name}.tif", "w", **profile) as dst:
            dst.write(np.where(pixels[band] > 0, pixels[band] + offset, 0).astype(np.uint16), 1)
        hrefs[key] = f"{name}.tif"
    shape = (spec.height, spec.width)
    cloud, shadow, cirrus = sky_layers(spec, sky)
    classes = np.full(shape, SCL_CLEAR, np.uint8)
    classes[cirrus], classes[shadow], classes[cloud] = SCL_CIRRUS, SCL_SHADOW, SCL_CLOUD_HIGH
    scl = classes[::2, ::2]
    with rasterio.open(
        directory / "SCL.tif",
        "w",
        **{
            **profile,
            "width": scl.shape[1],
            "height": scl.shape[0],
            "dtype": "uint8",
            "transform": spec.transform * Affine.scale(2),
        },
    ) as dst:
        dst.write(scl, 1)
    hrefs["scl"] = "SCL.tif"
    footprint = scene_outline(spec)
    acquired = dt.datetime.fromisoformat(spec.acquired).astimezone(dt.timezone.utc)
    item_id = f"S2B_21LXL_{acquired:%Y%m%d}_0_L2A"
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "collection": "sentinel-2-l2a",
        "geometry": mapping(footprint),
        "bbox": list(footprint.bounds),
        "properties": {
            "datetime": acquired.isoformat().replace("+00:00", "Z"),
            "platform": "sentinel-2b",
            "s2:processing_baseline": baseline,
            "earthsearch:boa_offset_applied": False,
        },
        "links": [],
        "assets": {
            key: {"href": href, "type": "image/tiff; application=geotiff; profile=cloud-optimized", "roles": ["data"]}
            for key, href in hrefs.items()
        },
    }
    path = directory / "item.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [item]}))
    return {"stac": str(path), "item_id": item_id, "pixels": pixels, "classes": classes,
            "bands": {key: str(directory / href) for key, href in hrefs.items()}}


def scene_outline(spec: SceneSpec) -> BaseGeometry:
    """The scene's extent in EPSG:4326."""
    return reproject(shapely.affinity.affine_transform(box(0, 0, spec.width, spec.height), spec.transform.to_shapely()),
                     spec.crs, WGS84)


def _collection(tagged: list[tuple[str, BaseGeometry]], scene_id: str) -> dict:
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"tag": t, "scene_id": scene_id}, "geometry": mapping(g)}
            for t, g in tagged if not g.is_empty
        ],
    }


def mosaic(seed: int, rows: int, cols: int, size: int = 2048, **overrides: object) -> list[SceneSpec]:
    """Specs for a ``rows x cols`` block of neighbouring scenes, each with its own seed."""
    return [SceneSpec(seed=seed * 1000 + r * cols + c, width=size, height=size, row=r, col=c, **overrides)  # type: ignore[arg-type]
            for r in range(rows) for c in range(cols)]


def merge_truth(summaries: Sequence[dict], path: str | Path) -> None:
    """One GeoJSON with the ground truth of several scenes (what the chip pipeline's --labels takes)."""
    features = []
    for summary in summaries:
        features += json.loads(Path(summary["truth"]).read_text())["features"]
    Path(path).write_text(json.dumps({"type": "FeatureCollection", "features": features}))


def later(spec: SceneSpec, acquired: str, disturbance_seed: int) -> SceneSpec:
    """The same place acquired again later, with new disturbances and its own weather."""
    return replace(spec, acquired=acquired, disturbance_seed=disturbance_seed,
                   weather_seed=spec.seed * 7919 + disturbance_seed)


def build_parser() -> argparse.ArgumentParser:
    parser = commands.parser("synth", __doc__)
    parser.add_argument("--output", required=True, help="folder for scenes, ground truth and labels")
    parser.add_argument("--layout", choices=("scenes", "basemap"), default="scenes",
                        help="scenes: PlanetScope-like scenes with their UDM2 (default); basemap: Planet monthly "
                             "basemap quads (EPSG:3857, z15 pixels, alpha band), a folder per mosaic month")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", type=int, default=1, help="scenes (or quads) north to south")
    parser.add_argument("--cols", type=int, default=1, help="scenes (or quads) west to east")
    parser.add_argument("--size", type=int, default=2048, help="scenes: width and height in pixels (3 m)")
    parser.add_argument("--acquired", default="2026-06-01T13:30:00+00:00", help="scenes: acquisition time, ISO 8601")
    parser.add_argument("--months", nargs="+", default=["2026-06", "2026-07"],
                        help="basemap: mosaic months YYYY-MM; the land changes after the first")
    parser.add_argument("--product", choices=tuple(BASEMAP_PRODUCTS), default="normalized_analytic",
                        help="basemap: normalized_analytic (BGRN uint16 + alpha) or visual (RGBA uint8)")
    parser.add_argument("--quad_size", type=int, default=QUAD_SIZE,
                        help=f"basemap: quad width in pixels (default {QUAD_SIZE}, as Planet's; 2048 in some mosaics)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    scene_flags = {"size": 2048, "acquired": "2026-06-01T13:30:00+00:00"}
    basemap_flags = {"months": ["2026-06", "2026-07"], "product": "normalized_analytic", "quad_size": QUAD_SIZE}
    unused = basemap_flags if args.layout == "scenes" else scene_flags
    ignored = [f"--{k}" for k, default in unused.items() if getattr(args, k) != default]
    if ignored:
        raise UserError(f"{', '.join(ignored)} do not apply to --layout {args.layout}")
    for flag, least in (("seed", 0), ("rows", 1), ("cols", 1), ("size", 1)):
        if getattr(args, flag) < least:
            raise UserError(f"--{flag} {getattr(args, flag)}: must be at least {least}")
    try:
        zone = dt.datetime.fromisoformat(args.acquired).tzinfo
    except ValueError:
        raise UserError(f"--acquired {args.acquired!r}: not an ISO 8601 time (2026-06-01T13:30:00+00:00)") from None
    if zone is None:  # the time would be read in this machine's zone: scenes made elsewhere would differ
        raise UserError(f"--acquired {args.acquired}: give its UTC offset, as in 2026-06-01T13:30:00+00:00")
    if args.layout == "basemap":
        try:
            months = write_basemap(args.seed, args.months, args.cols, args.rows, args.output, args.product,
                                   args.quad_size)
        except ValueError as error:
            raise UserError(str(error)) from None
        for month in months:
            print(f"{month['mosaic']}: {len(month['quads'])} quads in {month['folder']}")
        return
    specs = mosaic(args.seed, args.rows, args.cols, args.size, acquired=args.acquired)
    summaries = [write_scene(spec, args.output) for spec in specs]
    merge_truth(summaries, Path(args.output) / "truth.geojson")
    for s in summaries:
        print(s["scene"])
    print(f"ground truth: {Path(args.output) / 'truth.geojson'}")


if __name__ == "__main__":
    main()
