"""Areas of interest: a name and a polygon in EPSG:4326, from a bounding box, a vector file or a regions file.

Every pipeline that limits its work to a region (chip ``--aoi``, scan ``--aoi``, stream ``--aoi`` or
``--regions``) turns its flags into :class:`Aoi` values here, once, on the launcher; the workers receive
the geometry itself and never re-read the file. An AOI's name becomes a path part of the scan layout
(``aoi=NAME``), so it is checked here too.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass

import shapely
import yaml
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from pipelines.geo import vectors
from pipelines.geo.grid import WGS84, reproject
from planet_core import storage

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Aoi:
    """A named area of interest; ``geometry`` is in EPSG:4326 (longitude, latitude)."""

    name: str
    geometry: BaseGeometry


def bounding_box(text: str) -> BaseGeometry | None:
    """``west,south,east,north`` (EPSG:4326) as a box; ``None`` when ``text`` is not four numbers."""
    parts = text.split(",")
    if len(parts) != 4:
        return None
    try:
        west, south, east, north = (float(p) for p in parts)
    except ValueError:
        return None
    if not (west < east and south < north):
        raise ValueError(f"bounding box {text!r} must be west,south,east,north with west<east, south<north")
    return box(west, south, east, north)


def parse_region(text: str, flag: str = "--aoi") -> BaseGeometry:
    """An AOI from ``west,south,east,north`` (EPSG:4326) or a vector file: GeoJSON (a FeatureCollection,
    Feature or bare geometry; a legacy ``crs`` member is honoured, without one coordinates are EPSG:4326 as
    RFC 7946 says), or any format GDAL reads in any CRS (GeoPackage, Shapefile, FlatGeobuf, KML...;
    ``path|layername=NAME`` for one layer of several: :mod:`pipelines.geo.vectors`). Its polygons' union."""
    region = bounding_box(text)
    if region is not None:
        return region
    if not text.lower().endswith((".geojson", ".json")):
        polygons = [f.geometry for f in vectors.read(text, flag) if f.geometry.area > 0]
        if not polygons:
            raise ValueError(f"{flag} {text}: no polygon in it")
        return shapely.union_all([shapely.make_valid(g) for g in polygons])
    try:
        document = json.loads(storage.read_text(text))
    except FileNotFoundError as error:
        raise ValueError(f"AOI {text!r} is neither west,south,east,north nor a readable GeoJSON file") from error
    except json.JSONDecodeError as error:
        raise ValueError(f"AOI {text}: not valid GeoJSON ({error})") from None
    return geojson_geometry(document, source=text)


def geojson_geometry(document: dict, source: str = "GeoJSON") -> BaseGeometry:
    """The union of the geometries in a GeoJSON object, reprojected to EPSG:4326."""
    kind = document.get("type") if isinstance(document, dict) else None
    if kind == "FeatureCollection":
        geometries = [shape(f["geometry"]) for f in document.get("features", []) if f.get("geometry")]
    elif kind == "Feature":
        geometries = [shape(document["geometry"])] if document.get("geometry") else []
    elif kind in ("Polygon", "MultiPolygon"):
        geometries = [shape(document)]
    else:
        raise ValueError(f"{source}: expected a FeatureCollection, Feature, Polygon or MultiPolygon, got {kind!r}")
    if not geometries:
        raise ValueError(f"{source}: no geometry in it")
    merged = shapely.union_all([shapely.make_valid(g) for g in geometries])
    if merged.is_empty or merged.area == 0:
        raise ValueError(f"{source}: its geometry has no area")
    crs_name = (document.get("crs") or {}).get("properties", {}).get("name")
    return reproject(merged, crs_name, WGS84) if crs_name else merged


def check_name(name: str, flag: str = "--aoi_name") -> str:
    """``name`` if it can be a path part of the scan layout, else a ``ValueError`` naming ``flag``."""
    if not _NAME.match(name or ""):
        raise ValueError(f"{flag} {name!r}: use letters, digits, '-', '_', '.' (it becomes a path part)")
    return name


def load(text: str, name: str | None = None) -> Aoi:
    """``--aoi`` (and ``--aoi_name``) -> an :class:`Aoi`. A bounding box needs a name; a file's name
    defaults to its base name without extension."""
    if not name:
        if bounding_box(text) is not None:
            raise ValueError("--aoi_name is required when --aoi is a bounding box")
        name = posixpath.basename(text.split(vectors.LAYER)[0]).rsplit(".", 1)[0]
    return Aoi(check_name(name), parse_region(text))


def from_regions_file(path: str) -> list[Aoi]:
    """Every region of a regions file (``infra/regions.yaml``: ``regions: {NAME: {aoi: GeoJSON, ...}}``)."""
    try:
        regions = (yaml.safe_load(storage.read_text(path)) or {}).get("regions") or {}
    except FileNotFoundError:
        raise ValueError(f"--regions {path}: file not found") from None
    except yaml.YAMLError as error:
        raise ValueError(f"--regions {path}: not valid YAML ({error})") from None
    if not regions:
        raise ValueError(f"--regions {path}: no regions in it")
    return [Aoi(check_name(name, f"region name in {path}"),
                geojson_geometry(region["aoi"], f"{path}: region {name}")) for name, region in regions.items()]
