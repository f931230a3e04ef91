"""Ground truth for a chip: its labels from tagged polygons (GeoJSON), the way a Kaggle annotator would tag it.

Rules (all fractions are of the chip's area, measured on the chip's own pixel grid):

* Cloud: polygons tagged ``cloudy`` or ``partly_cloudy`` are cloud. Cloud over at least
  ``cloudy_fraction`` (0.7) of the chip makes it ``cloudy`` and nothing else: nothing shows through.
  Cloud over at least ``partly_cloudy_fraction`` (0.05) makes it ``partly_cloudy``.
* Otherwise polygons tagged ``haze`` over at least ``haze_fraction`` (0.5) make it ``haze``, else it is
  ``clear``. So every chip gets exactly one weather label, as in the Kaggle data.
* Land tags: each tag whose polygons cover at least ``min_coverage`` (0.01: roads are thin) of the chip
  *outside the clouds* is taken; a road under a cloud cannot be seen and is not labelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from affine import Affine
from rasterio.features import rasterize
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree

from pipelines.geo.grid import WGS84, Tile, reproject
from planet_core.labels import LABEL_INDEX, LAND_LABELS

CLOUD_TAGS = ("cloudy", "partly_cloudy")


@dataclass(frozen=True)
class TruthRules:
    min_coverage: float = 0.01
    cloudy_fraction: float = 0.7
    partly_cloudy_fraction: float = 0.05
    haze_fraction: float = 0.5


class PolygonTruth:
    """Labels chips from ``(tag, geometry in EPSG:4326)`` pairs; geometries are indexed once."""

    def __init__(self, features: Sequence[tuple[str, BaseGeometry]], rules: TruthRules = TruthRules()) -> None:
        unknown = sorted({tag for tag, _ in features if tag not in LABEL_INDEX})
        if unknown:
            raise ValueError(f"ground truth has unknown tag(s) {unknown}")
        self.rules = rules
        self._tags = [tag for tag, _ in features]
        self._geoms = [geom for _, geom in features]
        self._index = STRtree(self._geoms)

    @classmethod
    def from_geojson(cls, document: dict, rules: TruthRules = TruthRules()) -> PolygonTruth:
        """From a FeatureCollection whose features carry a ``tag`` property (EPSG:4326 coordinates)."""
        features = []
        for i, feature in enumerate(document.get("features", [])):
            tag = (feature.get("properties") or {}).get("tag")
            if not tag:
                raise ValueError(f"ground-truth feature {i} has no 'tag' property")
            features.append((tag, shape(feature["geometry"])))
        return cls(features, rules)

    def labels(self, tile: Tile) -> list[str]:
        """Label names for one tile, by the rules in the module docstring."""
        area = tile.polygon_wgs84()
        hits = self._index.query(area, predicate="intersects")
        by_tag: dict[str, list[BaseGeometry]] = {}
        for i in hits:
            by_tag.setdefault(self._tags[i], []).append(self._geoms[i])
        masks = {tag: self._mask(geoms, tile) for tag, geoms in by_tag.items()}
        size = tile.size * tile.size
        empty = np.zeros((tile.size, tile.size), dtype=bool)
        cloud = np.logical_or.reduce([masks.get(t, empty) for t in CLOUD_TAGS])
        cloud_fraction = cloud.sum() / size
        if cloud_fraction >= self.rules.cloudy_fraction:
            return ["cloudy"]
        found = []
        for tag in LAND_LABELS:
            if tag in masks and (masks[tag] & ~cloud).sum() / size >= self.rules.min_coverage:
                found.append(tag)
        if cloud_fraction >= self.rules.partly_cloudy_fraction:
            found.append("partly_cloudy")
        elif "haze" in masks and masks["haze"].sum() / size >= self.rules.haze_fraction:
            found.append("haze")
        else:
            found.append("clear")
        return sorted(found, key=LABEL_INDEX.__getitem__)

    @staticmethod
    def _mask(geoms: list[BaseGeometry], tile: Tile) -> np.ndarray:
        local = [reproject(g, WGS84, tile.crs) for g in geoms]
        return rasterize(((g, 1) for g in local), out_shape=(tile.size, tile.size),
                         transform=Affine(*tile.transform), dtype="uint8").astype(bool)
