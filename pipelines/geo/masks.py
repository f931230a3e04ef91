"""Planet's usable data mask (UDM2): finding it beside its scene and reading cloud, shadow and haze per tile.

Every PlanetScope scene is delivered with a UDM2 file: 8 bands uint8, described ``clear, snow, shadow,
haze_light, haze_heavy, cloud, confidence, udm1``, on the scene's own pixel grid. Bands 1-6 are 0/1 flags
per pixel; bit 0 of ``udm1`` marks pixels that were not imaged (blackfill). Clouds are taken from it
rather than guessed by the model: Planet derives it from the full sensor data, and it sees thin haze
and cloud shadow that an RGB chip hides.

Per tile, :class:`MaskFractions` are shares of the tile's pixels that hold data (the scene's valid
pixels that the mask does not mark as blackfill). The mask is read through the same window or warp as
the pixels, with nearest-neighbour resampling so that flags stay flags.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

import numpy as np
import rasterio
from rasterio.windows import Window

from planet_core import storage
from planet_core.errors import UserError

#: ``--cloud_mask``: ``auto`` uses a scene's UDM2 when there is one, ``udm2`` requires it, ``none`` ignores it.
AUTO, UDM2, NONE = "auto", "udm2", "none"
CLOUD_MASKS = (AUTO, UDM2, NONE)
#: The bands of Planet's usable data mask, as its files describe them.
UDM2_BANDS = ("clear", "snow", "shadow", "haze_light", "haze_heavy", "cloud", "confidence", "udm1")
#: The bands a tile's fractions need, by 1-based index in a UDM2 file.
_READ = {name: UDM2_BANDS.index(name) + 1 for name in ("clear", "shadow", "haze_light", "haze_heavy", "cloud", "udm1")}
#: Planet's processing-level token in scene names (``20151119_025740_0c74_3B_AnalyticMS_clip.tif``):
#: the scene's UDM2 shares the name up to it (``20151119_025740_0c74_3B_udm2_clip.tif``).
_LEVEL = re.compile(r"^(?P<stem>.+?_(?:1B|3A|3B|4A)_)", re.IGNORECASE)


class MaskError(UserError):
    """A UDM2 file that cannot be used for its scene (unreadable, not a UDM2, another grid)."""


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


class Udm2:
    """An open UDM2 checked against its scene's grid; its scene's reader closes it."""

    def __init__(self, uri: str, scene: rasterio.DatasetReader) -> None:
        self.uri = uri
        try:
            self.dataset = rasterio.open(uri)
        except rasterio.errors.RasterioIOError as error:
            raise MaskError(f"UDM2 {uri}: cannot open: {error}") from error
        try:
            self._check(scene)
        except MaskError:
            self.dataset.close()
            raise

    def _check(self, scene: rasterio.DatasetReader) -> None:
        mask = self.dataset
        if not is_udm2(mask.descriptions) and not (mask.count == len(UDM2_BANDS) and mask.dtypes[0] == "uint8"):
            raise MaskError(f"UDM2 {self.uri}: not a usable data mask ({mask.count} bands {mask.dtypes[0]}, "
                            f"a UDM2 has {len(UDM2_BANDS)} bands uint8: {', '.join(UDM2_BANDS)})")
        same_crs = mask.crs == scene.crs
        same_grid = same_crs and (mask.width, mask.height) == (scene.width, scene.height) and mask.transform.almost_equals(
            scene.transform, precision=1e-6 * abs(scene.transform.a))
        if not same_grid:
            raise MaskError(
                f"UDM2 {self.uri}: its grid ({mask.width}x{mask.height} px, {mask.crs}, origin "
                f"{mask.transform.c:.1f},{mask.transform.f:.1f}) is not its scene's ({scene.width}x{scene.height} px, "
                f"{scene.crs}, origin {scene.transform.c:.1f},{scene.transform.f:.1f}); tiles are kept without mask fractions")

    def close(self) -> None:
        self.dataset.close()


def fractions(dataset: rasterio.io.DatasetReaderBase, window: Window, valid: np.ndarray) -> MaskFractions | None:
    """Mask fractions of the pixels ``valid`` marks in ``window`` of ``dataset`` (a UDM2 or a VRT warped
    from one, same band order); ``None`` when no pixel holds data."""
    flags = dataset.read(list(_READ.values()), window=window)
    layer = dict(zip(_READ, flags))
    counted = valid & ((layer["udm1"] & 1) == 0)
    n = int(counted.sum())
    if not n:
        return None
    share = lambda *names: float(np.logical_or.reduce([layer[k] > 0 for k in names])[counted].sum() / n)  # noqa: E731
    return MaskFractions(clear=share("clear"), cloud=share("cloud"), shadow=share("shadow"),
                         haze=share("haze_light", "haze_heavy"))
