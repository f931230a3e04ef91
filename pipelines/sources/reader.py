"""Opening scene items and reading tiles from them: band order, nodata, windows and reprojection.

Everything that touches a scene's pixels goes through :class:`SceneReader`, whatever source found the
scene (:mod:`pipelines.sources`) and whichever pipeline reads it. It reads window by window (never a
whole scene), turns the source's band order into the record order ``red, green, blue[, nir]``, reports
how much of each tile holds data and sets every pixel without data to :data:`FILL_VALUE`. Tiles in the
scene's own pixel grid are plain windowed reads; tiles of another grid (WebMercatorQuad) are read from
one ``WarpedVRT`` per batch of tiles, aligned to that grid so that every tile is an integer window.
A scene's cloud mask (:mod:`pipelines.sources.masks`) is read through the same windows or warp. A scene
delivered one file per band is read through a VRT stacking them (:func:`band_vrt`), built where the
scene is opened, so windowed reads stay windowed.
"""

from __future__ import annotations

import datetime as dt
import html
import itertools
import math
import os
import posixpath
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from pipelines.geo.grid import SceneGrid, Tile, ground_pixel_m
from pipelines.sources import masks
from pipelines.sources.base import UDM2, SceneItem
from pipelines.sources.masks import MaskError, MaskFractions
from planet_core.errors import UserError
from planet_core.imagery import DTYPES, PRODUCTS, RGBN, UNKNOWN

#: GDAL lists a file's folder when it opens it, looking for sidecar files (.aux.xml, .ovr, .msk). Planet,
#: Landsat and Sentinel-2 deliveries have none, and on Cloud Storage each listing is one more request per
#: scene and worker (slow in a bucket of millions of objects): opens never list. A user's setting wins.
os.environ.setdefault("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR")

#: What every pixel without data becomes in a tile (outside the scene, the scene's nodata value, alpha
#: 0), whatever the scene's own nodata value: chips and scans alike, so a model sees one padding value.
FILL_VALUE = 0
#: Tiles read ahead of the pipeline's step after the read (:func:`_read_ahead`): a model batch's worth,
#: 16 to 32 MB of 256-px tiles.
READ_AHEAD = 64
_BAND_ROLES = RGBN + ("alpha", "skip")
_NIR_DESCRIPTIONS = {"nir", "near-infrared", "near infrared", "nir1"}
#: Band descriptions that say a band's role.
_DESCRIBED_ROLES = {"red": "red", "green": "green", "blue": "blue", "alpha": "alpha",
                    **{name: "nir" for name in _NIR_DESCRIPTIONS}}
SCENE_SUFFIXES = (".tif", ".tiff")


class SceneError(UserError):
    """A scene that cannot be used as a whole (unreadable, no CRS, rotated, missing bands)."""


@dataclass(frozen=True)
class ReadOptions:
    """How a pipeline reads its scenes, from the flags of :func:`pipelines.sources.add_arguments`."""

    band_order: tuple[str, ...] | None = None  # source band roles, when colour interpretation does not say
    bands: tuple[str, ...] | None = None  # record bands to read; None: every one the scene has
    cloud_mask: str = masks.AUTO  # read each scene's cloud mask: auto (when it has one), required, none

    def __post_init__(self) -> None:
        if self.cloud_mask not in masks.CLOUD_MASKS:
            raise ValueError(f"--cloud_mask {self.cloud_mask!r}: choose from {', '.join(masks.CLOUD_MASKS)}")

    def open(self, item: SceneItem) -> SceneReader:
        """The scene, opened to read these bands (a context manager)."""
        return SceneReader(item, self.band_order, self.bands, self.cloud_mask)


class TileRead(NamedTuple):
    """One tile as read from a scene: pixels ``(size, size, bands)`` or the error that stopped the read,
    the share of pixels with data, and the cloud mask's fractions (``None`` without a usable mask, and then
    ``mask_error`` says why when a mask was there but could not be used)."""

    tile: Tile
    image: np.ndarray | None
    valid_fraction: float
    error: Exception | None
    mask: MaskFractions | None = None
    mask_error: str | None = None


@dataclass(frozen=True)
class BandLayout:
    """1-based band indexes of a scene for each record band, plus its alpha band if any."""

    red: int
    green: int
    blue: int
    nir: int | None = None
    alpha: int | None = None

    def available(self) -> tuple[str, ...]:
        return RGBN if self.nir else RGBN[:3]

    def indexes(self, bands: Sequence[str]) -> list[int]:
        missing = [b for b in bands if getattr(self, b, None) is None]
        if missing:
            raise SceneError(f"the scene has no {', '.join(missing)} band (it has {', '.join(self.available())})")
        return [getattr(self, b) for b in bands]


def parse_band_order(text: str | None) -> tuple[str, ...] | None:
    """``--band_order`` value such as ``blue,green,red,nir`` -> tuple of roles (or ``None``)."""
    if not text:
        return None
    roles = tuple(part.strip().lower() for part in text.split(","))
    unknown = [r for r in roles if r not in _BAND_ROLES]
    if unknown:
        raise ValueError(f"--band_order: unknown band role(s) {unknown}; use {', '.join(_BAND_ROLES)}")
    return roles


def band_layout(src: rasterio.DatasetReader, band_order: Sequence[str] | None = None) -> BandLayout:
    """Find red, green, blue, NIR and alpha bands: from ``band_order``, else from each band's description
    and colour interpretation.

    A band described ``red``, ``green``, ``blue``, ``nir`` (or near-infrared) or ``alpha`` is that role, as
    in PlanetScope's 8-band SuperDove files (``coastal_blue, blue, green_i, green, yellow, red, rededge,
    nir``), whose other described bands are left out. Otherwise colour interpretation names red, green,
    blue and alpha, and the one undefined band of a 4-band scene with RGB found, alpha apart, is NIR
    (Planet's analytic ``blue, green, red, nir`` files, and its basemap quads' ``blue, green, red, nir, alpha``
    wherever they lie, whatever their folder is called). A usable data mask (UDM2) is refused: it is never an image.
    """
    descriptions = tuple((d or "").strip().lower() for d in src.descriptions)
    if masks.is_udm2(src.descriptions):
        raise SceneError(f"is a usable data mask (UDM2: {', '.join(masks.UDM2_BANDS)}), not an image; pass the "
                         "scene it belongs to (its UDM2 beside it is read for clouds with --cloud_mask)")
    roles: dict[str, int] = {}
    if band_order:
        if len(band_order) != src.count:
            raise SceneError(f"--band_order names {len(band_order)} bands but the scene has {src.count}")
        roles = {role: i + 1 for i, role in enumerate(band_order) if role != "skip"}
    else:
        undefined = []
        for i, (interp, desc) in enumerate(zip(src.colorinterp, descriptions), start=1):
            if desc in _DESCRIBED_ROLES:
                roles.setdefault(_DESCRIBED_ROLES[desc], i)
            elif desc:
                continue  # a band described as something else (coastal_blue, yellow, rededge): not guessed
            elif interp in (ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha):
                roles.setdefault(interp.name, i)
            elif interp == ColorInterp.undefined:
                undefined.append(i)
        image_bands = src.count - ("alpha" in roles)
        if "nir" not in roles and len(undefined) == 1 and image_bands == 4:
            roles["nir"] = undefined[0]
    if not {"red", "green", "blue"} <= roles.keys():
        interps = ", ".join(c.name for c in src.colorinterp)
        raise SceneError(
            f"cannot tell which bands are red, green and blue (colour interpretation: {interps}); "
            "pass --band_order, e.g. blue,green,red,nir"
        )
    return BandLayout(roles["red"], roles["green"], roles["blue"], roles.get("nir"), roles.get("alpha"))


def tagged_product(src: rasterio.DatasetReader) -> str:
    """The product a ``product`` tag names (synthetic scenes carry one), else ``unknown``."""
    tagged = src.tags().get("product")
    return tagged if tagged in PRODUCTS else UNKNOWN


def acquired_time(src: rasterio.DatasetReader) -> str | None:
    """Acquisition time (ISO 8601, UTC) from an ``acquired`` tag or ``TIFFTAG_DATETIME``."""
    tags = src.tags()
    if tags.get("acquired"):
        return tags["acquired"]
    stamp = tags.get("TIFFTAG_DATETIME")
    if stamp:
        try:
            parsed = dt.datetime.strptime(stamp, "%Y:%m:%d %H:%M:%S").replace(tzinfo=dt.timezone.utc)
        except ValueError:
            return None
        return parsed.isoformat()
    return None


class SceneReader:
    """An open scene that yields tiles as ``(height, width, bands)`` arrays in record band order.

    Use as a context manager. ``bands`` is the record band list to read; by default red, green, blue
    and NIR when the scene has it.
    """

    def __init__(self, item: SceneItem, band_order: Sequence[str] | None = None,
                 bands: Sequence[str] | None = None, cloud_mask: str = masks.NONE) -> None:
        self.item = item
        self._opened_with = (band_order, bands, cloud_mask)
        try:
            self._src = rasterio.open(band_vrt(item) if item.band_files else item.uri)
        except rasterio.errors.RasterioIOError as error:
            raise SceneError(f"{item.uri}: cannot open: {describe(error)}") from error
        try:
            self._check()
            self.layout = band_layout(self._src, band_order)
            self.bands = tuple(bands) if bands else self.layout.available()
            self._indexes = self.layout.indexes(self.bands)
            self.mask, self.mask_error = self._open_mask(cloud_mask)
        except SceneError as error:
            self._src.close()
            raise SceneError(f"{item.uri}: {error}") from None
        except Exception:
            self._src.close()
            raise
        self.acquired = item.acquired or acquired_time(self._src)
        self.product = item.product or tagged_product(self._src)

    def _open_mask(self, cloud_mask: str) -> tuple[masks.CloudMask | None, str | None]:
        """The scene's cloud mask (``None`` with ``--cloud_mask none`` or, with ``auto``, when it has none)
        and, when one was found but cannot be used, why: its tiles are then kept without mask fractions.
        An item names its mask when its source knows it (STAC); else a UDM2 is looked for beside the scene."""
        if cloud_mask == masks.NONE:
            return None, None
        uri = self.item.mask or (masks.find(self.item.uri) if self.item.mask_kind == UDM2 else None)
        if uri is None:
            if cloud_mask == masks.REQUIRED:
                looked = (f"no UDM2 beside the scene (looked for "
                          f"{', '.join(posixpath.basename(c) for c in masks.candidates(self.item.uri))})"
                          if self.item.mask_kind == UDM2 else f"its item names no {self.item.mask_kind.upper()} mask")
                raise SceneError(f"--cloud_mask required: {looked}")
            return None, None
        try:
            return masks.open_mask(self.item.mask_kind, uri, self._src), None
        except MaskError as error:
            return None, str(error)

    def _check(self) -> None:
        src = self._src
        problems = []
        if src.crs is None:
            problems.append("no CRS")
        if not src.transform.is_rectilinear or src.transform.a <= 0 or src.transform.e >= 0:
            problems.append(f"a rotated or flipped geotransform {tuple(round(v, 6) for v in src.transform[:6])}")
        if problems:
            raise SceneError(f"unusable georeferencing: {' and '.join(problems)}; "
                             "assign a CRS and warp to a north-up grid first (gdalwarp)")
        if src.dtypes[0] not in DTYPES:
            raise SceneError(f"has dtype {src.dtypes[0]}; chips hold {', '.join(DTYPES)}")

    def __enter__(self) -> SceneReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.mask is not None:
            self.mask.close()
        self._src.close()

    @property
    def crs(self) -> str:
        return self._src.crs.to_string()

    @property
    def transform(self) -> Affine:
        return self._src.transform

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` in pixels."""
        return self._src.height, self._src.width

    @property
    def dtype(self) -> str:
        return self._src.dtypes[0]

    @property
    def grid(self) -> SceneGrid:
        """The scene's pixel grid: what tiles are cut from."""
        return SceneGrid(self.item.scene_id, self.crs, self.transform, self._src.width, self._src.height)

    @property
    def gsd_m(self) -> float:
        """Ground sample distance in metres at the scene's centre (geodesic, so right in any CRS)."""
        return ground_pixel_m(self._src.crs, self.transform, self._src.width / 2, self._src.height / 2)

    def read_tiles(self, tiles: Sequence[Tile], fractions: bool = True, threads: int = 1) -> Iterator[TileRead]:
        """A :class:`TileRead` per tile, in order; a failed read has ``error`` set.

        Tiles aligned to the scene's own pixels are read directly; the rest from one WarpedVRT covering
        all of ``tiles`` (which must share CRS and resolution, as tiles of one grid zoom do). The cloud mask,
        when there is one and ``fractions`` asks for its fractions, is read through the same windows or an
        identical VRT with nearest neighbour. Tiles are read while the caller works on the ones before
        (:func:`_read_ahead`): by ``threads`` threads taking turns, each through its own open copy of the
        scene (a GDAL dataset serves one thread at a time), so that as many tiles are decoded at once.
        """
        if not tiles:
            return iter(())
        n = min(threads, len(tiles))
        return _read_ahead([self._read_tiles(tiles[::n], fractions),
                            *(self._read_copy(tiles[i::n], fractions) for i in range(1, n))])

    def _read_copy(self, tiles: Sequence[Tile], fractions: bool) -> Iterator[TileRead]:
        """:meth:`_read_tiles` through another open copy of the scene, opened and closed by its reads."""
        try:
            copy = SceneReader(self.item, *self._opened_with)
        except SceneError as error:  # the scene changed or vanished since this one was opened
            for tile in tiles:
                yield TileRead(tile, None, 0.0, error)
            return
        with copy:
            yield from copy._read_tiles(tiles, fractions)

    def _read_tiles(self, tiles: Sequence[Tile], fractions: bool) -> Iterator[TileRead]:
        use_mask = self.mask is not None and fractions
        if all(self._aligned(t) for t in tiles):
            mask = self.mask.dataset if use_mask else None
            for tile in tiles:
                col = round((tile.transform[2] - self.transform.c) / self.transform.a)
                row = round((tile.transform[5] - self.transform.f) / self.transform.e)
                yield self._read_window(self._src, tile, Window(col, row, tile.size, tile.size), mask)
            return
        vrt, mask = self._warped(tiles), (self._warped_mask(tiles) if use_mask else None)
        try:
            for tile in tiles:
                col = round((tile.transform[2] - vrt.transform.c) / vrt.transform.a)
                row = round((tile.transform[5] - vrt.transform.f) / vrt.transform.e)
                result = self._read_window(vrt, tile, Window(col, row, tile.size, tile.size), mask)
                if result.error is not None:
                    # GDAL's warper keeps failing after a corrupt source block: start a fresh VRT.
                    vrt.close()
                    vrt = self._warped(tiles)
                yield result
        finally:
            vrt.close()
            if mask is not None:
                mask.close()

    def read_area(self, bounds: tuple[float, float, float, float], max_pixels: int = 256) -> np.ndarray:
        """The scene's pixels over ``bounds`` (west, south, east, north, EPSG:4326) in EPSG:3857, at the
        scene's ground resolution or coarser so that neither side exceeds ``max_pixels``:
        ``(height, width, bands)`` in record band order, 0 where the scene has no data."""
        left, bottom, right, top = transform_bounds("EPSG:4326", "EPSG:3857", *bounds)
        stretch = 1 / math.cos(math.radians((bounds[1] + bounds[3]) / 2))  # Web Mercator metres per ground metre
        res = max(self.gsd_m * stretch, (right - left) / max_pixels, (top - bottom) / max_pixels)
        width, height = max(1, math.ceil((right - left) / res)), max(1, math.ceil((top - bottom) / res))
        with WarpedVRT(self._src, crs="EPSG:3857", transform=Affine(res, 0, left, 0, -res, top), width=width,
                       height=height, resampling=Resampling.bilinear) as vrt:
            return vrt.read(self._indexes).transpose(1, 2, 0)

    def window_of(self, tile: Tile) -> list[int]:
        """The tile's pixel window in the scene: ``col_off, row_off, width, height`` (rounded)."""
        col, row = ~self.transform @ (tile.transform[2], tile.transform[5])
        scale = tile.transform[0] / self.transform.a
        return [round(col), round(row), round(tile.size * scale), round(tile.size * scale)]

    def _aligned(self, tile: Tile) -> bool:
        """True if the tile's pixels are the scene's own pixels (same CRS, size and phase, to 1e-3 px)."""
        a = self.transform
        if rasterio.crs.CRS.from_user_input(tile.crs) != self._src.crs:
            return False
        tolerance = 1e-3 / max(self.shape[0], self.shape[1], tile.size)
        if not (math.isclose(tile.transform[0], a.a, rel_tol=tolerance)
                and math.isclose(tile.transform[4], a.e, rel_tol=tolerance)):
            return False
        col = (tile.transform[2] - a.c) / a.a
        row = (tile.transform[5] - a.f) / a.e
        return abs(col - round(col)) < 1e-3 and abs(row - round(row)) < 1e-3

    def _warped(self, tiles: Sequence[Tile]) -> WarpedVRT:
        """A VRT in the tiles' CRS and resolution whose extent is exactly the union of ``tiles``."""
        options = dict(_warp_grid(tiles), resampling=Resampling.bilinear)
        if self._src.nodata is None and self.layout.alpha is None:
            options["add_alpha"] = True
        return WarpedVRT(self._src, **options)

    def _warped_mask(self, tiles: Sequence[Tile]) -> WarpedVRT | None:
        """The cloud mask on exactly the grid of :meth:`_warped`, nearest neighbour (flags stay flags)."""
        if self.mask is None:
            return None
        return self.mask.warped(**_warp_grid(tiles))

    def read_pixels(self, tile: Tile) -> tuple[np.ndarray, np.ndarray]:
        """``tile``'s pixels ``(size, size, bands)`` in record band order and where they are usable
        ``(size, size)``: holding data and, when the scene has a cloud mask, clear in it. Read as
        :meth:`read_tiles` reads (the scene's own window when aligned, else a WarpedVRT); ``tile`` may be any
        frame, such as a clearing's (:mod:`pipelines.analysis.clearings`). Raises ``OSError`` on a failed read."""
        if self._aligned(tile):
            dataset, mask = self._src, (self.mask.dataset if self.mask else None)
            col = round((tile.transform[2] - self.transform.c) / self.transform.a)
            row = round((tile.transform[5] - self.transform.f) / self.transform.e)
            window, opened = Window(col, row, tile.size, tile.size), []
        else:
            dataset, mask = self._warped([tile]), self._warped_mask([tile])
            window, opened = Window(0, 0, tile.size, tile.size), [dataset, mask]
        try:
            image, valid, inner = self._pixels(dataset, tile.size, window)
            usable = valid.copy()
            if mask is not None and inner is not None:
                r0, c0 = int(inner.row_off - window.row_off), int(inner.col_off - window.col_off)
                part = usable[r0:r0 + int(inner.height), c0:c0 + int(inner.width)]
                part &= self.mask.clear(mask.read(list(self.mask.bands), window=inner), part)
        except rasterio.errors.RasterioIOError as error:
            raise OSError(f"{self.item.uri}: cannot read {list(self.window_of(tile))}: {describe(error)}") from error
        finally:
            for each in opened:
                if each is not None:
                    each.close()
        return image, usable

    def _pixels(self, dataset: rasterio.io.DatasetReaderBase, size: int,
                window: Window) -> tuple[np.ndarray, np.ndarray, Window | None]:
        """``window`` of ``dataset`` as ``(size, size, bands)`` with what lies outside it (and nodata) set
        to :data:`FILL_VALUE`, the valid pixels, and the part of the window inside ``dataset`` (``None``
        when none is).

        GDAL writes the bands straight into a pixel-interleaved array (the records' layout): a band-first
        read transposed afterwards costs more than the read itself (0.7 ms against 0.1 ms for a 4-band
        256-px chip of uint16)."""
        image = np.empty((size, size, len(self._indexes)), dtype=self.dtype)
        valid = np.zeros((size, size), dtype=bool)
        if not _overlaps(window, dataset):
            image.fill(FILL_VALUE)
            return image, valid, None
        inner = window.intersection(Window(0, 0, dataset.width, dataset.height))
        r0, c0 = int(inner.row_off - window.row_off), int(inner.col_off - window.col_off)
        h, w = int(inner.height), int(inner.width)
        if (h, w) != (size, size):
            image.fill(FILL_VALUE)
        alpha = self._alpha_index(dataset)
        if alpha:  # the bands and their alpha in one read: a second would warp the window again
            both = np.empty((h, w, len(self._indexes) + 1), dtype=self.dtype)
            dataset.read(self._indexes + [alpha], window=inner, out=both.transpose(2, 0, 1))
            image[r0:r0 + h, c0:c0 + w] = both[..., :-1]
            valid[r0:r0 + h, c0:c0 + w] = both[..., -1] > 0
        else:
            part = image[r0:r0 + h, c0:c0 + w]
            dataset.read(self._indexes, window=inner, out=part.transpose(2, 0, 1))
            valid[r0:r0 + h, c0:c0 + w] = self._valid(dataset, part, inner)
        if not valid.all():
            image[~valid] = FILL_VALUE
        return image, valid, inner

    def _read_window(self, dataset: rasterio.io.DatasetReaderBase, tile: Tile, window: Window,
                     mask: rasterio.io.DatasetReaderBase | None = None) -> TileRead:
        """Read one window, padding what lies outside ``dataset`` with nodata, its valid fraction and,
        from ``mask`` (the cloud mask on the same grid as ``dataset``), its mask fractions."""
        try:
            image, valid, inner = self._pixels(dataset, tile.size, window)
        except rasterio.errors.RasterioIOError as error:
            return TileRead(tile, None, 0.0, RuntimeError(describe(error)))
        if inner is None:
            return TileRead(tile, image, 0.0, None, None, self.mask_error)
        fractions, mask_error = None, self.mask_error
        if mask is not None:
            r0, c0 = int(inner.row_off - window.row_off), int(inner.col_off - window.col_off)
            try:
                fractions = self.mask.fractions(mask, inner, valid[r0:r0 + int(inner.height), c0:c0 + int(inner.width)])
            except rasterio.errors.RasterioIOError as error:
                mask_error = (f"{self.mask.kind.upper()} {self.mask.uri}: cannot read window "
                              f"{list(self.window_of(tile))}: {describe(error)}")
        return TileRead(tile, image, float(valid.mean()), None, fractions, mask_error)

    def _alpha_index(self, dataset: rasterio.io.DatasetReaderBase) -> int | None:
        if self.layout.alpha:
            return self.layout.alpha
        if isinstance(dataset, WarpedVRT) and dataset.count > self._src.count:
            return dataset.count  # the alpha band WarpedVRT added
        return None

    def _valid(self, dataset: rasterio.io.DatasetReaderBase, pixels: np.ndarray, window: Window) -> np.ndarray:
        """Valid-pixel mask of ``window`` (of a dataset without alpha) from its ``pixels`` as read ``(rows,
        cols, bands)`` where the dataset's nodata value says it, else from GDAL's mask."""
        nodata = dataset.nodata
        if nodata is not None:
            return _holds_data(pixels, nodata)
        flags = dataset.mask_flag_enums[0]
        if MaskFlags.all_valid in flags:
            return np.ones(pixels.shape[:2], dtype=bool)
        return dataset.dataset_mask(window=window) > 0


def _read_ahead(lanes: Sequence[Iterator[TileRead]], depth: int = READ_AHEAD) -> Iterator[TileRead]:
    """The reads of ``lanes`` taken in turn (the first of each, then the second of each, ...), each lane
    read by its own helper thread up to ``depth`` reads ahead of the caller in all. GDAL lets go of Python's
    lock while it reads, so reads go on while the caller encodes and writes chips or the model labels a batch
    (which takes as long as reading it: a scan would otherwise read, then predict, then read), and lanes
    read at once. Only a lane's thread touches its datasets until the reads are closed, after every lane's
    last read has finished."""
    done = object()
    pools = [ThreadPoolExecutor(1, thread_name_prefix=f"read-ahead-{i}") for i in range(len(lanes))]
    turns = itertools.cycle(zip(pools, lanes))
    pending = deque(pool.submit(next, lane, done) for pool, lane in itertools.islice(turns, depth))
    try:
        while (read := pending.popleft().result()) is not done:
            pool, lane = next(turns)
            pending.append(pool.submit(next, lane, done))
            yield read
    finally:
        for future in pending:
            future.cancel()
        for pool in pools:
            pool.shutdown(wait=True)
        for lane in lanes:
            lane.close()


def _holds_data(pixels: np.ndarray, nodata: float) -> np.ndarray:
    """Per pixel of ``pixels`` ``(rows, cols, bands)``: whether any band differs from ``nodata`` (NaN: is a
    number). An integer pixel of 1, 2, 4 or 8 bytes with nodata 0 is compared as one unsigned integer, 80
    times faster than numpy's ``any`` over the bands of a 4-band uint16 chip (0.01 against 0.9 ms)."""
    width = pixels.shape[2] * pixels.itemsize
    if nodata == 0 and pixels.dtype.kind in "ui" and width in (1, 2, 4, 8) and pixels.flags.c_contiguous:
        return pixels.view(f"u{width}")[..., 0] != 0
    held = np.zeros(pixels.shape[:2], dtype=bool)
    for band in range(pixels.shape[2]):
        held |= ~np.isnan(pixels[..., band]) if np.isnan(nodata) else pixels[..., band] != nodata
    return held


def _warp_grid(tiles: Sequence[Tile]) -> dict:
    """CRS, transform and size of the grid that is exactly the union of ``tiles`` (one grid zoom)."""
    res_x, res_y = tiles[0].transform[0], tiles[0].transform[4]
    size = tiles[0].size
    left = min(t.transform[2] for t in tiles)
    top = max(t.transform[5] for t in tiles)
    right = max(t.transform[2] + size * res_x for t in tiles)
    bottom = min(t.transform[5] + size * res_y for t in tiles)
    return dict(crs=tiles[0].crs, transform=Affine(res_x, 0.0, left, 0.0, res_y, top),
                width=round((right - left) / res_x), height=round((bottom - top) / res_y))


def gdal_path(uri: str) -> str:
    """The name GDAL opens inside a VRT: ``gs://`` -> ``/vsigs/``, ``s3://`` -> ``/vsis3/``, ``http(s)://`` ->
    ``/vsicurl/`` (rasterio does this for a path it opens itself, not for paths inside a VRT)."""
    for scheme, prefix in (("gs://", "/vsigs/"), ("s3://", "/vsis3/")):
        if uri.startswith(scheme):
            return prefix + uri[len(scheme):]
    if uri.startswith(("http://", "https://")):
        return "/vsicurl/" + uri
    return uri


_GDAL_TYPES = {"uint8": "Byte", "uint16": "UInt16", "int16": "Int16", "float32": "Float32"}


def band_vrt(item: SceneItem) -> str:
    """A VRT (XML, opened by GDAL as it is) stacking the item's single-band files in its ``band_files``
    order, each band described by its role, with the item's ``value_offset`` added (values below 0 after
    it clip to 0, which is no data). The files must share CRS, grid and size: a scene whose bands differ
    in resolution (Sentinel-2's 20 m bands beside its 10 m ones) is refused, not resampled silently."""
    profiles = []
    for role, uri in item.band_files:
        try:
            with rasterio.open(uri) as src:
                profiles.append((role, uri, src.crs, src.transform, src.width, src.height, src.dtypes[0], src.nodata,
                                 src.count))
        except rasterio.errors.RasterioIOError as error:
            raise SceneError(f"{role} band {uri}: cannot open: {describe(error)}") from error
    _, first_uri, crs, transform, width, height, dtype, _, _ = profiles[0]
    for role, uri, other_crs, other_transform, w, h, other_dtype, _, count in profiles:
        if count != 1:
            raise SceneError(f"{role} band {uri}: has {count} bands; a band file holds one")
        if (other_crs, other_transform, w, h, other_dtype) != (crs, transform, width, height, dtype):
            raise SceneError(
                f"{role} band {uri}: its grid ({w}x{h} px, {other_transform.a:g} m, {other_dtype}) differs "
                f"from {first_uri}'s ({width}x{height} px, {transform.a:g} m, {dtype}); resample the "
                "bands to one grid first"
            )
    kind = "ComplexSource" if item.value_offset else "SimpleSource"
    lines = [f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">',
             f"<SRS>{html.escape(crs.to_wkt())}</SRS>",
             f"<GeoTransform>{', '.join(repr(v) for v in transform.to_gdal())}</GeoTransform>"]
    for index, (role, uri, *_, nodata, _) in enumerate(profiles, start=1):
        lines += [f'<VRTRasterBand dataType="{_GDAL_TYPES.get(dtype, dtype)}" band="{index}">',
                  f"<Description>{role}</Description>"]
        if nodata is not None:
            lines.append(f"<NoDataValue>{nodata!r}</NoDataValue>")
        lines += [f"<{kind}>", f'<SourceFilename relativeToVRT="0">{html.escape(gdal_path(uri))}</SourceFilename>',
                  "<SourceBand>1</SourceBand>",
                  f'<SrcRect xOff="0" yOff="0" xSize="{width}" ySize="{height}"/>',
                  f'<DstRect xOff="0" yOff="0" xSize="{width}" ySize="{height}"/>']
        if item.value_offset:
            lines.append(f"<ScaleOffset>{item.value_offset}</ScaleOffset><ScaleRatio>1</ScaleRatio>")
            if nodata is not None:
                lines.append(f"<NODATA>{nodata!r}</NODATA>")
        lines += [f"</{kind}>", "</VRTRasterBand>"]
    lines.append("</VRTDataset>")
    return "".join(lines)


def describe(error: BaseException) -> str:
    """An exception's message with its causes (rasterio puts GDAL's own words in the cause)."""
    parts = [str(error)]
    cause = error.__cause__ or error.__context__
    while cause is not None and str(cause) not in parts:
        parts.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    return "; ".join(p for p in parts if p)


def _overlaps(window: Window, dataset: rasterio.io.DatasetReaderBase) -> bool:
    return (window.col_off < dataset.width and window.row_off < dataset.height
            and window.col_off + window.width > 0 and window.row_off + window.height > 0)


def iter_blocks(items: Iterable, size: int) -> Iterator[list]:
    """Consecutive lists of at most ``size`` items (tiles read together share one open scene)."""
    block: list = []
    for item in items:
        block.append(item)
        if len(block) == size:
            yield block
            block = []
    if block:
        yield block
