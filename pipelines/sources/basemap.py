"""Planet basemap quads: monthly mosaics delivered as COG quads in a folder named for the mosaic.

A Planet basemap's name is ``planet_medres_normalized_analytic_2026-06_mosaic`` (the month it shows;
NICFI's bi-annual archive mosaics name their first and last months, ``..._2015-12_2016-05_mosaic``), or
any name ending ``_mosaic``; its quads (``704-1080.tif``) lie in a folder of that name, as Planet's
Basemaps API and its downloads deliver them. Quad ids repeat in every month's mosaic, so a quad's scene
id is the mosaic's name and the quad's; a quad's date is the first day of its mosaic's (first) month.
Quads come through the files source (:mod:`pipelines.sources.files`), which asks this module what a path
is.
"""

from __future__ import annotations

import posixpath
import re

_MOSAIC = re.compile(r"_mosaic$")
#: ``..._2026-06_mosaic`` (monthly), or ``..._2015-12_2016-05_mosaic`` (NICFI's bi-annual archive, to
#: August 2020): the month it shows, or the first of its months.
_MOSAIC_MONTH = re.compile(r"_(?P<month>\d{4}-\d{2})(?:_\d{4}-\d{2})?_mosaic$")


def _folder(uri: str) -> str:
    return posixpath.basename(posixpath.dirname(uri.rstrip("/")))


def is_quad(uri: str) -> bool:
    """Whether the file lies in a basemap mosaic's folder."""
    return bool(_MOSAIC.search(_folder(uri)))


def quad_id(uri: str, stem: str) -> str:
    """The scene id of a quad: ``planet_medres_normalized_analytic_2026-06_mosaic/704-1080``."""
    return f"{_folder(uri)}/{stem}"


def mosaic_month(uri: str) -> str | None:
    """``YYYY-MM`` of the monthly basemap a quad belongs to, from its folder's mosaic name, or the first month
    of a mosaic of several (None: not a quad of a dated mosaic)."""
    match = _MOSAIC_MONTH.search(_folder(uri))
    return match["month"] if match else None
