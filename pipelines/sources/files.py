"""Scene files named by paths and globs (local or ``gs://``): Planet's scenes as delivered, with their UDM2.

Planet names say much before a file is opened, and this source reads them: the product
(``..._3B_AnalyticMS_SR_clip.tif`` is surface reflectance, ``..._Visual_clip.tif`` visual), the
acquisition time (PlanetScope ``20151119_025740_0c74_...`` is 2015-11-19 02:57:40 UTC; RapidEye
``1056417_2017-03-08_RE3_...`` says the day), and where the UDM2 lies (beside the scene, found by the
reader: :func:`pipelines.sources.masks.candidates`). Basemap quads (:mod:`pipelines.sources.basemap`) come
through here too. A glob passes over UDM2 files: they are read with their scenes.
"""

from __future__ import annotations

import datetime as dt
import logging
import posixpath
import re
from collections.abc import Sequence

from shapely.geometry.base import BaseGeometry

from pipelines.sources import basemap, masks
from pipelines.sources.base import DateRange, SceneItem, SourceError
from planet_core import storage
from planet_core.imagery import ANALYTIC, SURFACE_REFLECTANCE, UNKNOWN, VISUAL

log = logging.getLogger(__name__)

#: Planet's names for its products, in file names (``..._3B_AnalyticMS_SR.tif``, ``..._Visual_clip.tif``),
#: asset types (``ortho_analytic_4b_sr``, ``ortho_visual``) and basemap mosaics (``normalized_analytic``),
#: most specific first: the product a name says.
_PRODUCT_NAMES = (
    ("analyticms_sr", SURFACE_REFLECTANCE), ("analytic_sr", SURFACE_REFLECTANCE), ("_sr_", SURFACE_REFLECTANCE),
    ("normalized_analytic", SURFACE_REFLECTANCE), ("analytic_4b_sr", SURFACE_REFLECTANCE),
    ("analytic_8b_sr", SURFACE_REFLECTANCE), ("surface_reflectance", SURFACE_REFLECTANCE),
    ("analyticms", ANALYTIC), ("analytic", ANALYTIC),
    ("visual", VISUAL),
)
#: PlanetScope scene ids start with the acquisition time, UTC (``20151119_025740_0c74``, ``20230815_134512_57_24b7``).
_PLANETSCOPE_TIME = re.compile(r"^(?P<stamp>\d{8}_\d{6})_")
#: RapidEye's start with the tile id and the day (``1056417_2017-03-08_RE3_3A_...``).
_RAPIDEYE_DAY = re.compile(r"^\d+_(?P<day>\d{4}-\d{2}-\d{2})_RE\d_")
SUFFIXES = (".tif", ".tiff")


def product_from_name(name: str) -> str:
    """The product a Planet file, asset or mosaic name says (``unknown`` when it says none): the file
    name first, then the folders (a basemap quad's mosaic name is its folder)."""
    for part in (posixpath.basename(name.rstrip("/")), name):
        text = part.lower().replace("-", "_")
        text = f"_{text.rsplit('.', 1)[0] if '.' in posixpath.basename(text) else text}_"
        found = next((product for key, product in _PRODUCT_NAMES if key in text), None)
        if found:
            return found
    return UNKNOWN


def _stem(uri: str) -> str:
    name = posixpath.basename(uri.rstrip("/"))
    return next((name[: -len(s)] for s in SUFFIXES if name.lower().endswith(s)), name)


def scene_id_from_uri(uri: str) -> str:
    """Scene id from a file name: the base name without its extension; for a basemap quad, the mosaic's
    name and the quad's (quad ids repeat in every month's mosaic)."""
    stem = _stem(uri)
    return basemap.quad_id(uri, stem) if basemap.is_quad(uri) else stem


def acquired_from_name(uri: str) -> str | None:
    """The acquisition time a PlanetScope scene's name says (ISO 8601 UTC), else ``None``."""
    match = _PLANETSCOPE_TIME.match(posixpath.basename(uri))
    if not match:
        return None
    return dt.datetime.strptime(match["stamp"], "%Y%m%d_%H%M%S").replace(tzinfo=dt.timezone.utc).isoformat()


def day_from_name(uri: str) -> str | None:
    """The day a Planet name says (PlanetScope, RapidEye, a monthly basemap's first day), for choosing
    scenes by date before they are opened; ``None`` when the name says none."""
    name = posixpath.basename(uri)
    if stamp := acquired_from_name(uri):
        return stamp
    if match := _RAPIDEYE_DAY.match(name):
        return f"{match['day']}T00:00:00+00:00"
    if month := basemap.mosaic_month(uri):
        return f"{month}-01T00:00:00+00:00"
    return None


def item(uri: str) -> SceneItem:
    """A scene file as an item: what its name says (id, product, acquisition time); its UDM2 is found
    beside it when it is opened."""
    product = product_from_name(uri)
    return SceneItem(uri=uri, scene_id=scene_id_from_uri(uri), acquired=acquired_from_name(uri),
                     product=None if product == UNKNOWN else product)


class Files:
    """Scene paths and globs, local or ``gs://`` (``--scenes``)."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = list(patterns)

    def discover(self, where: BaseGeometry | None = None, when: DateRange | None = None) -> list[SceneItem]:
        """Every file the patterns name, UDM2 files apart. A pattern that matches nothing is an error:
        a typo must not look like an empty region. With ``when``, a file whose name says another day is
        left out (a file whose name says none is kept). ``where`` is not used: a file's footprint is in
        its header, which the workers read."""
        found: list[SceneItem] = []
        for pattern in self.patterns:
            glob = any(ch in pattern for ch in "*?[")
            matches = [m for m in storage.glob(pattern) if not masks.is_mask_name(m)] if glob else [pattern]
            if not matches:
                raise SourceError(f"--scenes: no scene matches {pattern!r}")
            found.extend(item(uri) for uri in matches)
        if when is None:
            return found
        kept = [i for i in found if when.holds(day_from_name(i.uri)) is not False]
        if len(kept) < len(found):
            log.info("--acquired: %d of %d scene files are named for other days", len(found) - len(kept), len(found))
        return kept
