"""Vector files users bring (AOIs, zones, known change places): any format GDAL reads, any CRS.

GeoPackage, Shapefile, FlatGeobuf, GeoJSON (with a legacy ``crs`` member or without, as RFC 7946 says),
KML and the rest of GDAL's vector drivers are read through ``pyogrio`` and reprojected to EPSG:4326
(longitude, latitude), the one CRS the project works in. A file of several layers is read as
``path|layername=NAME`` (QGIS's way of naming a layer); a file on ``gs://`` is read into memory through
the project's storage layer first (single-file formats: GeoPackage, FlatGeobuf, GeoJSON, KML), so it needs no
GDAL credentials. A file without a CRS is taken as EPSG:4326 when its coordinates fit, and refused
otherwise, as is one whose coordinates do not fit the CRS it names (a UTM GeoJSON without its ``crs``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import shapely
from shapely.geometry.base import BaseGeometry

from pipelines.geo.grid import WGS84, reproject
from planet_core import storage
from planet_core.errors import UserError

LAYER = "|layername="


@dataclass(frozen=True)
class Feature:
    """One feature: its attributes and its geometry in EPSG:4326."""

    properties: dict
    geometry: BaseGeometry


def _source(path: str) -> str | io.BytesIO:
    """What pyogrio opens: a local path, or the bytes of a remote file."""
    return io.BytesIO(storage.read_bytes(path)) if "://" in path else path


def read(text: str, flag: str) -> list[Feature]:
    """The features of ``text`` (``path`` or ``path|layername=NAME``) in EPSG:4326; a :class:`UserError`
    naming ``flag`` and the file when it cannot be read."""
    import pyogrio  # noqa: PLC0415 - it brings geopandas (0.3 s): only for a run given a vector file
    from pyogrio.errors import DataLayerError, DataSourceError  # noqa: PLC0415 - with pyogrio

    path, _, layer = text.partition(LAYER)
    if not storage.exists(path):
        raise UserError(f"{flag} {path}: no such file")
    try:
        layers = [str(name) for name, _ in pyogrio.list_layers(_source(path))]
    except (DataSourceError, OSError) as error:
        raise UserError(f"{flag} {path}: not a vector file GDAL can read ({_first_line(error)})") from None
    if layer and layer not in layers:
        raise UserError(f"{flag} {path}: no layer {layer!r}; its layers: {', '.join(layers)}")
    if not layer and len(layers) > 1:
        raise UserError(f"{flag} {path}: it has {len(layers)} layers ({', '.join(layers)}); name one as "
                        f"'{path}{LAYER}{layers[0]}'")
    try:
        meta, _, geometries, fields = pyogrio.raw.read(_source(path), layer=layer or None)
    except (DataSourceError, DataLayerError, OSError) as error:
        raise UserError(f"{flag} {text}: cannot read it ({_first_line(error)})") from None
    names = list(meta["fields"])
    features = []
    for i, wkb in enumerate(geometries):
        if wkb is None:
            continue
        geometry = shapely.from_wkb(wkb)
        features.append(Feature({name: _plain(fields[j][i]) for j, name in enumerate(names)}, geometry))
    crs = meta.get("crs")
    if crs:
        features = [Feature(f.properties, reproject(f.geometry, crs, WGS84)) for f in features]
    if features:
        west, south, east, north = shapely.union_all([f.geometry for f in features]).bounds
        if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
            said = f"it says its CRS is {crs}" if crs else "it names no CRS"
            raise UserError(f"{flag} {text}: {said} and its coordinates are not longitudes and latitudes there "
                            f"(bounds {west:.0f}, {south:.0f}, {east:.0f}, {north:.0f}); give the file its CRS "
                            "(GeoJSON without a crs member is longitude, latitude)")
    return features


def _plain(value: object) -> object:
    """A field value as plain Python (numpy scalars and datetimes as their Python kinds)."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
