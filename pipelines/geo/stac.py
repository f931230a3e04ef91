"""Scenes from STAC: an ItemCollection (the answer of a STAC API search, or a file) -> scene sources.

Two kinds of item are read, parsed with ``pystac``:

- **One file per scene** (Planet's items: an ``ortho_analytic_4b_sr``, ``ortho_visual`` or ``analytic``
  asset): the first GeoTIFF asset with role ``data``, else one named ``analytic``, ``visual``, ``image``
  or ``data``. Its key says the product. A ``udm2`` (or ``ortho_udm2``) asset is the scene's cloud mask.
- **One file per band** (Landsat and Sentinel-2 COGs on public STAC APIs): assets whose ``eo:bands``
  common name (or STAC 1.1 ``eo:common_name``), else whose key (``blue``, ``red``, ``B04``, ``nir08``...),
  says which of blue, green, red and NIR they hold. They are read as one scene through a GDAL VRT that
  stacks them (:func:`band_vrt`), built where the scene is opened, so windowed reads stay windowed.

Relative hrefs resolve against the collection file.
"""

from __future__ import annotations

import html
import posixpath
from collections.abc import Sequence

import rasterio

from planet_core.errors import UserError
from planet_core.imagery import RGBN, UNKNOWN

#: Asset keys of one band each, by role: common names, Sentinel-2 (``B02``..``B08``) and Landsat 8/9
#: Collection 2 (``SR_B2``..``SR_B5``; bare ``B2``..``B5`` as USGS names the files).
_BAND_KEYS = {
    "blue": ("blue", "b02", "sr_b2", "b2"), "green": ("green", "b03", "sr_b3", "b3"),
    "red": ("red", "b04", "sr_b4", "b4"), "nir": ("nir", "nir08", "b08", "sr_b5", "b5"),
}
_COMMON_NAMES = {"blue": "blue", "green": "green", "red": "red", "nir": "nir", "nir08": "nir"}
_SCENE_KEYS = ("analytic", "visual", "image", "data")
_MASK_KEYS = ("udm2", "ortho_udm2")


class StacError(UserError):
    """A STAC document or item that cannot be read as scenes."""


def sources(document: dict, origin: str = "STAC") -> list:
    """Scene sources (:class:`~pipelines.geo.scenes.SceneSource`) of an ItemCollection document."""
    import pystac

    from pipelines.geo.scenes import SceneSource, product_from_name

    if document.get("type") != "FeatureCollection" or not isinstance(document.get("features"), list):
        raise StacError(f"{origin}: not a STAC ItemCollection (type FeatureCollection with features)")
    try:
        items = pystac.ItemCollection.from_dict(document, preserve_dict=True)
    except Exception as error:  # noqa: BLE001 - pystac raises KeyError, ValueError, STACTypeError...
        raise StacError(f"{origin}: not a valid STAC ItemCollection: {type(error).__name__}: {error}") from None
    base = posixpath.dirname(origin)
    found = []
    for item in items:
        hrefs = {key: _absolute(asset.href, base) for key, asset in item.assets.items()}
        acquired = item.datetime.isoformat() if item.datetime else item.properties.get("datetime")
        mask = next((hrefs[k] for k in _MASK_KEYS if k in hrefs), None)
        bands = band_assets(item)
        if bands:
            missing = [role for role in ("red", "green", "blue") if role not in bands]
            if missing:
                raise StacError(f"{origin}: item {item.id!r} has one asset per band but no {', '.join(missing)} band "
                                f"asset (its band assets: {', '.join(f'{k} ({r})' for r, k in bands.items())})")
            pairs = tuple((role, hrefs[bands[role]]) for role in RGBN if role in bands)
            found.append(SceneSource(hrefs[bands["red"]], str(item.id), acquired, None, mask, pairs))
            continue
        key = next((k for k, a in item.assets.items() if "data" in (a.roles or []) and "tiff" in (a.media_type or "")),
                   None) or next((k for k in _SCENE_KEYS if k in item.assets), None)
        if key is None:
            raise StacError(f"{origin}: item {item.id!r} has no GeoTIFF data asset (assets: {', '.join(item.assets)})")
        product = product_from_name(key)
        found.append(SceneSource(hrefs[key], str(item.id), acquired, product if product != UNKNOWN else None, mask))
    return found


def band_assets(item) -> dict[str, str]:  # noqa: ANN001 - pystac.Item
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


def _absolute(href: str, base: str) -> str:
    return href if "://" in href or href.startswith("/") else posixpath.join(base, href)


def gdal_path(uri: str) -> str:
    """The name GDAL opens inside a VRT: ``gs://`` -> ``/vsigs/``, ``s3://`` -> ``/vsis3/``, ``http(s)://`` ->
    ``/vsicurl/`` (rasterio does this for a path it opens itself, not for paths inside a VRT)."""
    for scheme, prefix in (("gs://", "/vsigs/"), ("s3://", "/vsis3/")):
        if uri.startswith(scheme):
            return prefix + uri[len(scheme):]
    if uri.startswith(("http://", "https://")):
        return "/vsicurl/" + uri
    return uri


def band_vrt(bands: Sequence[tuple[str, str]]) -> str:
    """A VRT (XML, opened by GDAL as it is) stacking single-band files in ``bands`` order, each band
    described by its role. The files must share CRS, grid and size: a scene whose bands differ in
    resolution (Sentinel-2's 20 m bands beside its 10 m ones) is refused, not resampled silently."""
    profiles = []
    for role, uri in bands:
        try:
            with rasterio.open(uri) as src:
                profiles.append((role, uri, src.crs, src.transform, src.width, src.height, src.dtypes[0], src.nodata,
                                 src.count))
        except rasterio.errors.RasterioIOError as error:
            raise StacError(f"{role} band {uri}: cannot open: {error}") from error
    _, first_uri, crs, transform, width, height, dtype, _, _ = profiles[0]
    for role, uri, other_crs, other_transform, w, h, other_dtype, _, count in profiles:
        if count != 1:
            raise StacError(f"{role} band {uri}: has {count} bands; a band asset holds one")
        if (other_crs, other_transform, w, h, other_dtype) != (crs, transform, width, height, dtype):
            raise StacError(f"{role} band {uri}: its grid ({w}x{h} px, {other_transform.a:g} m, {other_dtype}) differs "
                            f"from {first_uri}'s ({width}x{height} px, {transform.a:g} m, {dtype}); resample the "
                            "bands to one grid first")
    gdal_type = {"uint8": "Byte", "uint16": "UInt16", "int16": "Int16", "float32": "Float32"}.get(dtype, dtype)
    lines = [f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">',
             f"<SRS>{html.escape(crs.to_wkt())}</SRS>",
             f"<GeoTransform>{', '.join(repr(v) for v in transform.to_gdal())}</GeoTransform>"]
    for index, (role, uri, *_, nodata, _) in enumerate(profiles, start=1):
        lines += [f'<VRTRasterBand dataType="{gdal_type}" band="{index}">', f"<Description>{role}</Description>"]
        if nodata is not None:
            lines.append(f"<NoDataValue>{nodata!r}</NoDataValue>")
        lines += ["<SimpleSource>", f'<SourceFilename relativeToVRT="0">{html.escape(gdal_path(uri))}</SourceFilename>',
                  "<SourceBand>1</SourceBand>",
                  f'<SrcRect xOff="0" yOff="0" xSize="{width}" ySize="{height}"/>',
                  f'<DstRect xOff="0" yOff="0" xSize="{width}" ySize="{height}"/>',
                  "</SimpleSource>", "</VRTRasterBand>"]
    lines.append("</VRTDataset>")
    return "".join(lines)
