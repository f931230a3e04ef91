"""Cloud masks delivered with scenes, read per tile: Planet's UDM2 and Sentinel-2's scene classification (SCL).

A mask is the provider's own judgement of each pixel, made from the full sensor data: it sees thin haze
and cloud shadow that an RGB chip hides, so clouds are taken from it rather than guessed by the model.
Every kind gives the same :class:`MaskFractions` per tile, so chips, scans and the report treat them alike.

**UDM2.** Every PlanetScope scene is delivered with a UDM2 file: 8 bands uint8, described ``clear, snow, shadow,
haze_light, haze_heavy, cloud, confidence, udm1``, on the scene's own pixel grid. Bands 1-6 are 0/1 flags
per pixel; bit 0 of ``udm1`` marks pixels that were not imaged (blackfill).

**SCL.** Sentinel-2 L2A's scene classification: one uint8 band of classes at 20 m, beside bands of 10 m,
so it is warped onto its scene's grid (nearest neighbour) before any window is read. Classes 0 (no data)
and 1 (saturated or defective) are not counted; 3 is cloud shadow, 8 and 9 cloud (medium and high
probability), 10 thin cirrus (haze here); 4, 5 and 6 (vegetation, bare soil, water) are clear; 2 (dark
area), 7 (unclassified) and 11 (snow) are neither.

Per tile, :class:`MaskFractions` are shares of the tile's pixels that hold data (the scene's valid
pixels that the mask does not mark as blackfill). The mask is read through the same window or warp as
the pixels, with nearest-neighbour resampling so that flags stay flags.
"""

from __future__ import annotations

import abc
import posixpath
import re
from dataclasses import dataclass

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from pipelines.sources.base import SCL, UDM2
from planet_core import storage
from planet_core.errors import UserError

#: ``--cloud_mask``: ``auto`` reads a scene's mask when it has one, ``required`` fails a scene without one,
#: ``none`` reads no mask.
AUTO, REQUIRED, NONE = "auto", "required", "none"
CLOUD_MASKS = (AUTO, REQUIRED, NONE)
#: The bands of Planet's usable data mask, as its files describe them.
UDM2_BANDS = ("clear", "snow", "shadow", "haze_light", "haze_heavy", "cloud", "confidence", "udm1")
#: The bands a tile's fractions need, by 1-based index in a UDM2 file.
_READ = {name: UDM2_BANDS.index(name) + 1 for name in ("clear", "shadow", "haze_light", "haze_heavy", "cloud", "udm1")}
#: Planet's processing-level token in scene names (``20151119_025740_0c74_3B_AnalyticMS_clip.tif``):
#: the scene's UDM2 shares the name up to it (``20151119_025740_0c74_3B_udm2_clip.tif``).
_LEVEL = re.compile(r"^(?P<stem>.+?_(?:1B|3A|3B|4A)_)", re.IGNORECASE)


#: SCL classes (ESA's Sentinel-2 L2A product definition) by what a tile's fractions count them as.
SCL_NOT_COUNTED = (0, 1)
SCL_CLEAR, SCL_CLOUD, SCL_SHADOW, SCL_HAZE = (4, 5, 6), (8, 9), (3,), (10,)


class MaskError(UserError):
    """A mask file that cannot be used for its scene (unreadable, not the kind of mask it should be, another grid)."""


@dataclass(frozen=True)
class MaskFractions:
    """Shares of a tile's pixels with data that the UDM2 flags clear, cloud, cloud shadow and haze
    (light or heavy). Snow is left out: there is none in the Amazon, and it is not clear either."""

    clear: float
    cloud: float
    shadow: float
    haze: float


def is_udm2(descriptions: tuple[str | None, ...]) -> bool:
    """Whether a file's band descriptions are those of a UDM2 (so it is a mask, never an image)."""
    return set(UDM2_BANDS) <= {(d or "").strip().lower() for d in descriptions}


_MASK_NAME = re.compile(r"_udm2(_clip)?\.tiff?$", re.IGNORECASE)


def is_mask_name(uri: str) -> bool:
    """Whether a file name is a UDM2's (``..._udm2.tif``, ``..._udm2_clip.tif``): globs and bucket
    notifications of scenes pass over such files, which lie beside the scenes they belong to."""
    return bool(_MASK_NAME.search(posixpath.basename(uri)))


def candidates(uri: str) -> list[str]:
    """Where a scene's UDM2 may lie, most likely first: Planet's naming (the name up to the processing
    level, then ``udm2_clip.tif`` or ``udm2.tif``), then ``<scene>_udm2.tif`` and ``<scene>_udm2_clip.tif``."""
    folder, name = posixpath.split(uri)
    base = name.rsplit(".", 1)[0]
    found = []
    if match := _LEVEL.match(base):
        found += [f"{match['stem']}udm2_clip.tif", f"{match['stem']}udm2.tif"]
    found += [f"{base}_udm2.tif", f"{base}_udm2_clip.tif"]
    return [posixpath.join(folder, n) for n in dict.fromkeys(found) if n != name]


def find(uri: str) -> str | None:
    """The UDM2 beside the scene at ``uri``, or ``None``."""
    return next((path for path in candidates(uri) if storage.exists(path)), None)


class CloudMask(abc.ABC):
    """An open cloud mask checked against its scene; its scene's reader closes it.

    ``dataset`` is the mask on the scene's own pixel grid (the file itself, or a warp of it), read through
    the same windows as the scene; :meth:`warped` puts the file on any other grid, nearest neighbour.
    """

    kind = ""
    #: Bands read for a tile's fractions (1-based).
    bands: tuple[int, ...] = (1,)

    def __init__(self, uri: str, scene: rasterio.DatasetReader) -> None:
        self.uri = uri
        try:
            self.file = rasterio.open(uri)
        except rasterio.errors.RasterioIOError as error:
            raise MaskError(f"{self.kind.upper()} {uri}: cannot open: {error}") from error
        try:
            self._check(scene)
            self.dataset = self._on_grid(scene)
        except MaskError:
            self.file.close()
            raise

    @abc.abstractmethod
    def _check(self, scene: rasterio.DatasetReader) -> None:
        """Raise :class:`MaskError` when the file is not this kind of mask, or cannot be put on the scene's grid."""

    def _on_grid(self, scene: rasterio.DatasetReader) -> rasterio.io.DatasetReaderBase:
        return self.file

    def warped(self, crs: str, transform: rasterio.Affine, width: int, height: int) -> WarpedVRT:
        """The mask on another grid, nearest neighbour so that flags and classes stay what they are."""
        return WarpedVRT(self.file, crs=crs, transform=transform, width=width, height=height,
                         resampling=Resampling.nearest)

    def fractions(
        self, dataset: rasterio.io.DatasetReaderBase, window: Window, valid: np.ndarray
    ) -> MaskFractions | None:
        """Mask fractions of the pixels ``valid`` marks in ``window`` of ``dataset`` (this mask on some
        grid); ``None`` when no pixel holds data."""
        return self.count(dataset.read(list(self.bands), window=window), valid)

    @staticmethod
    @abc.abstractmethod
    def count(layers: np.ndarray, valid: np.ndarray) -> MaskFractions | None:
        """Fractions of the ``valid`` pixels from the mask's ``bands`` as read (``None``: none counted)."""

    @staticmethod
    @abc.abstractmethod
    def clear(layers: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Per pixel, from the mask's ``bands`` as read: ``valid`` and clear (no cloud, shadow or haze)."""

    def close(self) -> None:
        if self.dataset is not self.file:
            self.dataset.close()
        self.file.close()


class Udm2(CloudMask):
    """Planet's usable data mask: on its scene's own grid, exactly (anything else is refused)."""

    kind = UDM2
    bands = tuple(_READ.values())

    def _check(self, scene: rasterio.DatasetReader) -> None:
        mask = self.file
        if not is_udm2(mask.descriptions) and not (mask.count == len(UDM2_BANDS) and mask.dtypes[0] == "uint8"):
            raise MaskError(f"UDM2 {self.uri}: not a usable data mask ({mask.count} bands {mask.dtypes[0]}, "
                            f"a UDM2 has {len(UDM2_BANDS)} bands uint8: {', '.join(UDM2_BANDS)})")
        same_crs = mask.crs == scene.crs
        same_grid = (
            same_crs
            and (mask.width, mask.height) == (scene.width, scene.height)
            and mask.transform.almost_equals(scene.transform, precision=1e-6 * abs(scene.transform.a))
        )
        if not same_grid:
            raise MaskError(
                f"UDM2 {self.uri}: its grid ({mask.width}x{mask.height} px, {mask.crs}, origin "
                f"{mask.transform.c:.1f},{mask.transform.f:.1f}) is not its scene's ({scene.width}x{scene.height} px, "
                f"{scene.crs}, origin {scene.transform.c:.1f},{scene.transform.f:.1f}); tiles are kept without mask "
                "fractions"
            )

    @staticmethod
    def count(layers: np.ndarray, valid: np.ndarray) -> MaskFractions | None:
        layer = dict(zip(_READ, layers))
        counted = valid & ((layer["udm1"] & 1) == 0)
        n = int(counted.sum())
        if not n:
            return None

        def share(*names: str) -> float:
            return float(np.logical_or.reduce([layer[k] > 0 for k in names])[counted].sum() / n)

        return MaskFractions(clear=share("clear"), cloud=share("cloud"), shadow=share("shadow"),
                             haze=share("haze_light", "haze_heavy"))

    @staticmethod
    def clear(layers: np.ndarray, valid: np.ndarray) -> np.ndarray:
        layer = dict(zip(_READ, layers))
        flagged = np.logical_or.reduce([layer[k] > 0 for k in ("cloud", "shadow", "haze_light", "haze_heavy")])
        return valid & (layer["clear"] > 0) & ~flagged & ((layer["udm1"] & 1) == 0)


class Scl(CloudMask):
    """Sentinel-2 L2A's scene classification: one band of classes at 20 m, warped onto its scene's 10 m grid."""

    kind = SCL

    def _check(self, scene: rasterio.DatasetReader) -> None:
        mask = self.file
        if mask.count != 1 or mask.dtypes[0] != "uint8":
            raise MaskError(f"SCL {self.uri}: not a scene classification ({mask.count} bands {mask.dtypes[0]}; "
                            "an SCL has one band uint8)")
        if mask.crs != scene.crs:
            raise MaskError(f"SCL {self.uri}: its CRS ({mask.crs}) is not its scene's ({scene.crs}); tiles are kept "
                            "without mask fractions")

    def _on_grid(self, scene: rasterio.DatasetReader) -> rasterio.io.DatasetReaderBase:
        return self.warped(scene.crs, scene.transform, scene.width, scene.height)

    @staticmethod
    def count(layers: np.ndarray, valid: np.ndarray) -> MaskFractions | None:
        classes = layers[0]
        counted = valid & ~np.isin(classes, SCL_NOT_COUNTED)
        n = int(counted.sum())
        if not n:
            return None
        kept = classes[counted]

        def share(values: tuple[int, ...]) -> float:
            return float(np.isin(kept, values).sum() / n)

        return MaskFractions(clear=share(SCL_CLEAR), cloud=share(SCL_CLOUD), shadow=share(SCL_SHADOW),
                             haze=share(SCL_HAZE))

    @staticmethod
    def clear(layers: np.ndarray, valid: np.ndarray) -> np.ndarray:
        return valid & np.isin(layers[0], SCL_CLEAR)


#: Mask kinds by name (:data:`pipelines.sources.base.UDM2`, :data:`~pipelines.sources.base.SCL`).
KINDS: dict[str, type[CloudMask]] = {UDM2: Udm2, SCL: Scl}


def open_mask(kind: str, uri: str, scene: rasterio.DatasetReader) -> CloudMask:
    """The mask of kind ``kind`` at ``uri``, checked against its scene (:class:`MaskError` when unusable)."""
    return KINDS[kind](uri, scene)
