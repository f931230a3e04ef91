"""Sentinel-2 L2A from STAC: the 10 m bands B02, B03, B04, B08 as one scene, its SCL as the cloud mask.

Items of the ``sentinel-2-l2a`` collections (Earth Search, Microsoft's Planetary Computer, Copernicus
Data Space) name their band COGs differently (``blue`` / ``B02`` / ``B02_10m``); this kind knows all three,
takes blue, green, red and NIR at 10 m, and the scene classification (``scl`` / ``SCL`` / ``SCL_20m``, at
20 m) as the scene's cloud mask, which the reader warps onto the 10 m grid
(:class:`pipelines.sources.masks.Scl`). Values are surface reflectance x 10000.

Since processing baseline 04.00 (25 January 2022) L2A values carry ``BOA_ADD_OFFSET`` (+1000), so that a
scene of 2023 and one of 2021 differ by 0.1 reflectance in every band. The offset is taken away as the
bands are read: the item's ``raster:bands`` offset over its scale where it gives one (as openEO does),
else -1000 for a baseline of 04.00 or later whose catalogue does not say it applied the offset
(``earthsearch:boa_offset_applied``). Catalogues have been found to mislabel this (Element84/earth-search
issues 66 and 71); a scan's domain check (band ranges) shows a scene off by 0.1 as out of domain.
"""

from __future__ import annotations

import pystac

from pipelines.sources.base import SCL, SceneItem, absolute, acquired
from planet_core.imagery import SURFACE_REFLECTANCE

COLLECTIONS = ("sentinel-2-l2a", "sentinel-2-c1-l2a", "sentinel2-l2a")
#: Asset keys by role, as Earth Search, the Planetary Computer and Copernicus Data Space name them.
BANDS = {"blue": ("blue", "B02", "B02_10m"), "green": ("green", "B03", "B03_10m"),
         "red": ("red", "B04", "B04_10m"), "nir": ("nir", "B08", "B08_10m")}
MASK = ("scl", "SCL", "SCL_20m")
#: L2A's offset since processing baseline 04.00, in digital numbers.
BOA_ADD_OFFSET = -1000
OFFSET_BASELINE = 4.0


def is_sentinel2_l2a(item: pystac.Item) -> bool:
    """Whether an item is a Sentinel-2 L2A scene: by its collection, else by its platform and level."""
    if (item.collection_id or "").lower() in COLLECTIONS:
        return True
    platform = str(item.properties.get("platform", "")).lower()
    return platform.startswith("sentinel-2") and "s2:processing_baseline" in item.properties and any(
        key in item.assets for key in MASK)


def _asset(item: pystac.Item, keys: tuple[str, ...]) -> str | None:
    return next((key for key in keys if key in item.assets), None)


def value_offset(item: pystac.Item, red_key: str) -> int:
    """Digital numbers to add to every band value so that it is reflectance x 10000 (0 or -1000)."""
    described = item.assets[red_key].extra_fields.get("raster:bands") or []
    if described and isinstance(described[0], dict) and described[0].get("scale") and "offset" in described[0]:
        return round(described[0]["offset"] / described[0]["scale"])
    baseline = item.properties.get("s2:processing_baseline")
    try:
        late = baseline is not None and float(baseline) >= OFFSET_BASELINE
    except ValueError:
        late = False
    applied = item.properties.get("earthsearch:boa_offset_applied", False)
    return BOA_ADD_OFFSET if late and not applied else 0


def scene_item(item: pystac.Item, base: str) -> SceneItem | None:
    """The scene of a Sentinel-2 L2A item (``None`` for any other item). An L2A item without the four 10 m
    bands is not read as one: the general STAC reading names what it lacks."""
    if not is_sentinel2_l2a(item):
        return None
    keys = {role: _asset(item, names) for role, names in BANDS.items()}
    if None in keys.values():
        return None
    href = {role: absolute(item.assets[key].href, base) for role, key in keys.items()}
    mask = _asset(item, MASK)
    return SceneItem(
        uri=href["red"], scene_id=str(item.id),
        acquired=acquired(item),
        product=SURFACE_REFLECTANCE, mask=absolute(item.assets[mask].href, base) if mask else None, mask_kind=SCL,
        band_files=tuple((role, href[role]) for role in ("red", "green", "blue", "nir")),
        value_offset=value_offset(item, keys["red"]))
