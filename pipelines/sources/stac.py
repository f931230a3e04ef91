"""Scenes from STAC: an ItemCollection (the answer of a STAC API search, or a file) -> scene items.

Items are parsed with ``pystac`` and chosen by their metadata alone: one whose geometry misses the AOI, or
whose datetime lies outside ``--acquired``, is left out before any file is opened. Each item is then
given to the first of :data:`ITEM_KINDS` that knows it (Sentinel-2 L2A: :mod:`pipelines.sources.sentinel2`),
else read as one of two general kinds:

- **One file per scene** (Planet's items: an ``ortho_analytic_4b_sr``, ``ortho_visual`` or ``analytic``
  asset): the first GeoTIFF asset with role ``data``, else one named ``analytic``, ``visual``, ``image``
  or ``data``. Its key says the product. A ``udm2`` (or ``ortho_udm2``) asset is the scene's cloud mask.
- **One file per band** (Landsat and Sentinel-2 COGs on public STAC APIs): assets whose ``eo:bands``
  common name (or STAC 1.1 ``eo:common_name``), else whose key (``blue``, ``red``, ``B04``, ``nir08``...),
  says which of blue, green, red and NIR they hold. They are read as one scene through a GDAL VRT that
  stacks them (:func:`pipelines.sources.reader.band_vrt`).

Relative hrefs resolve against the collection file.
"""

from __future__ import annotations

import json
import logging
import posixpath
from collections.abc import Callable

import pystac
import shapely
from shapely.geometry.base import BaseGeometry

from pipelines.sources import sentinel2
from pipelines.sources.base import DateRange, SceneItem, SourceError, absolute, acquired
from pipelines.sources.files import product_from_name
from planet_core import storage
from planet_core.imagery import RGBN, UNKNOWN

log = logging.getLogger(__name__)

#: Asset keys of one band each, by role: common names, Sentinel-2 (``B02``..``B08``) and Landsat 8/9
#: Collection 2 (``SR_B2``..``SR_B5``; bare ``B2``..``B5`` as USGS names the files).
_BAND_KEYS = {
    "blue": ("blue", "b02", "sr_b2", "b2"), "green": ("green", "b03", "sr_b3", "b3"),
    "red": ("red", "b04", "sr_b4", "b4"), "nir": ("nir", "nir08", "b08", "sr_b5", "b5"),
}
_COMMON_NAMES = {"blue": "blue", "green": "green", "red": "red", "nir": "nir", "nir08": "nir"}
_SCENE_KEYS = ("analytic", "visual", "image", "data")
_MASK_KEYS = ("udm2", "ortho_udm2")


class StacError(SourceError):
    """A STAC document or item that cannot be read as scenes."""


#: Item kinds with their own reading, tried in order before the general ones: each takes an item and the
#: folder its hrefs are relative to, and returns its scene, or ``None`` when the item is not of its kind.
ITEM_KINDS: tuple[Callable[[pystac.Item, str], SceneItem | None], ...] = (sentinel2.scene_item,)


class StacItems:
    """The items of a STAC ItemCollection file (``--stac``, local or ``gs://``)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def discover(self, where: BaseGeometry | None = None, when: DateRange | None = None) -> list[SceneItem]:
        try:
            document = json.loads(storage.read_text(self.path))
        except json.JSONDecodeError as error:
            raise StacError(f"--stac {self.path}: not JSON: {error}") from None
        return items(document, self.path, where, when)


def items(document: dict, origin: str = "STAC", where: BaseGeometry | None = None,
          when: DateRange | None = None) -> list[SceneItem]:
    """Scene items of an ItemCollection document whose geometry touches ``where`` and whose datetime is in
    ``when`` (an item without geometry or datetime is kept)."""
    if document.get("type") != "FeatureCollection" or not isinstance(document.get("features"), list):
        raise StacError(f"{origin}: not a STAC ItemCollection (type FeatureCollection with features)")
    try:
        collection = list(pystac.ItemCollection.from_dict(document, preserve_dict=True))
    except Exception as error:  # noqa: BLE001 - pystac raises KeyError, ValueError, STACTypeError...
        raise StacError(f"{origin}: not a valid STAC ItemCollection: {type(error).__name__}: {error}") from None
    base = posixpath.dirname(origin)
    chosen = [item for item in collection if _chosen(item, where, when)]
    if len(chosen) < len(collection):
        log.info("--stac: %d of %d items lie outside the AOI or the --acquired dates", len(collection) - len(chosen),
                 len(collection))
    return [_scene(item, base, origin) for item in chosen]


def _chosen(item: pystac.Item, where: BaseGeometry | None, when: DateRange | None) -> bool:
    if where is not None and item.geometry and not shapely.geometry.shape(item.geometry).intersects(where):
        return False
    return when is None or when.holds(acquired(item)) is not False


def _scene(item: pystac.Item, base: str, origin: str) -> SceneItem:
    """The scene of one item: by the first of :data:`ITEM_KINDS` that knows it, else as a one-file or a
    one-file-per-band scene."""
    for kind in ITEM_KINDS:
        if (scene := kind(item, base)) is not None:
            return scene
    hrefs = {key: absolute(asset.href, base) for key, asset in item.assets.items()}
    when = acquired(item)
    mask = next((hrefs[k] for k in _MASK_KEYS if k in hrefs), None)
    bands = band_assets(item)
    if bands:
        missing = [role for role in ("red", "green", "blue") if role not in bands]
        if missing:
            raise StacError(f"{origin}: item {item.id!r} has one asset per band but no {', '.join(missing)} band "
                            f"asset (its band assets: {', '.join(f'{k} ({r})' for r, k in bands.items())})")
        pairs = tuple((role, hrefs[bands[role]]) for role in RGBN if role in bands)
        return SceneItem(hrefs[bands["red"]], str(item.id), when, mask=mask, band_files=pairs)
    key = next((k for k, a in item.assets.items() if "data" in (a.roles or []) and "tiff" in (a.media_type or "")),
               None) or next((k for k in _SCENE_KEYS if k in item.assets), None)
    if key is None:
        raise StacError(f"{origin}: item {item.id!r} has no GeoTIFF data asset (assets: {', '.join(item.assets)})")
    product = product_from_name(key)
    return SceneItem(hrefs[key], str(item.id), when, product if product != UNKNOWN else None, mask)


def band_assets(item: pystac.Item) -> dict[str, str]:
    """``{role: asset key}`` of an item's single-band assets of blue, green, red and NIR (empty when the
    item has none, i.e. its scene is one file): by ``eo:bands`` common name, else by key."""
    roles: dict[str, str] = {}
    for key, asset in item.assets.items():
        fields = asset.extra_fields
        described = fields.get("eo:bands") or fields.get("bands") or []
        names = [b.get("common_name") or b.get("eo:common_name") for b in described if isinstance(b, dict)]
        if len(described) > 1:
            continue  # a multi-band file: a scene of its own, not a band
        role = _COMMON_NAMES.get((names[0] or "").lower()) if names else None
        if role is None and not described:
            role = next((r for r, keys in _BAND_KEYS.items() if key.lower() in keys), None)
        if role and role not in roles:
            roles[role] = key
    return roles
