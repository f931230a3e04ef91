"""Events: alert tiles that touch on the grid and were first detected close in time, as one change.

An analyst acts on a clearing, not on a tile: the tiles of one clearing raise one alert each, usually on
the same scan date, sometimes a scan or two apart as it grows. Two alerts belong to one event when their
tiles are 8-neighbours on the grid (same tile matrix, column and row at most one apart) and their
``first_detected`` dates are at most ``window_days`` apart; events are the connected groups (single
linkage), found with a union-find over a hash of grid positions, so the cost is linear in the alerts.

Each event gets the union of its tiles as its outline, its area (sum of the tiles' geodesic areas), the
labels gained with the number of tiles that gained each, the highest confidence level of its alerts, and
``event_id``: the ``alert_id`` of its first alert (earliest detection, then smallest tile id), so that an
event keeps its id while it grows. With zones (:func:`read_zones`), each event lists the zones it touches
and the area inside each.

This runs in Python, not SQL: events are a connected-components problem over the (few) alerts, which
BigQuery's SQL has no good way to express; the events table is loaded from ``events.parquet``.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import shapely
from pyproj import Geod

from pipelines.analysis.rules import CONFIDENCE_LEVELS, Alert
from pipelines.geo import vectors
from planet_core.errors import UserError
from planet_core.labels import LABELS

#: Default ``--event_window_days``: alerts of one clearing first detected within a month are one event.
EVENT_WINDOW_DAYS = 31
_GEOD = Geod(ellps="WGS84")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--event_window_days`` and ``--min_event_ha``: how alerts become events (``report`` and
    ``delineate`` group alike, so that a clearing's event is the report's)."""
    parser.add_argument("--event_window_days", type=int, default=EVENT_WINDOW_DAYS,
                        help="touching alert tiles first detected at most this many days apart are one event "
                             f"(default {EVENT_WINDOW_DAYS})")
    parser.add_argument("--min_event_ha", type=float, default=0.0,
                        help="minimum mapping unit: leave out events smaller than this many hectares of alert tiles "
                             "(default 0: every event, down to one tile)")


def check_arguments(args: argparse.Namespace) -> None:
    if args.event_window_days < 0:
        raise UserError(f"--event_window_days {args.event_window_days}: must be 0 or more")
    if args.min_event_ha < 0:
        raise UserError(f"--min_event_ha {args.min_event_ha}: must be 0 or more")


@dataclass(frozen=True)
class Zone:
    """A named polygon (protected area, indigenous territory, property) from ``--zones``."""

    name: str
    geometry: shapely.Geometry


@dataclass(frozen=True)
class Event:
    event_id: str
    aoi: str
    first_detected: dt.date
    last_detected: dt.date
    tiles: int
    area_ha: float
    labels_gained: tuple[tuple[str, int], ...]  # (label, tiles), in label order
    confidence: str
    status: str  # active while any of its alerts is
    alert_ids: tuple[str, ...]
    #: (zone name, hectares of the event's tiles inside it, hectares of its clearings inside it: 0 until
    #: delineated, see cleared_ha)
    zones: tuple[tuple[str, float, float], ...]
    geometry: bytes
    lon: float
    lat: float
    before_date: dt.date
    before_scene: str
    detected_scene: str
    before_image: str | None = None
    after_image: str | None = None
    #: Hectares of its clearings (pipelines.analysis.clearings); None when not delineated.
    cleared_ha: float | None = None


def tile_position(tile_id: str) -> tuple[str, int, int]:
    """``(tile matrix, column, row)`` of a tile id (``WebMercatorQuad/16/x/y``, ``UTM21S-3m/col/row``,
    ``<scene>/row/col``: the last two parts are grid coordinates, the rest names the grid)."""
    matrix, a, b = tile_id.rsplit("/", 2)
    return matrix, int(a), int(b)


def group(alerts: Sequence[Alert], window_days: int = EVENT_WINDOW_DAYS) -> list[list[int]]:
    """The alerts as events: lists of indexes into ``alerts``, each list a connected group (see the module
    docstring), ordered by AOI, first detection and smallest tile id."""
    parent = list(range(len(alerts)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    at: dict[tuple, list[int]] = defaultdict(list)
    positions = []
    for i, a in enumerate(alerts):
        matrix, col, row = tile_position(a.tile_id)
        positions.append((a.aoi, matrix, col, row))
        at[(a.aoi, matrix, col, row)].append(i)
    for i, (aoi, matrix, col, row) in enumerate(positions):
        for dc in (-1, 0, 1):
            for dr in (-1, 0, 1):
                for j in at.get((aoi, matrix, col + dc, row + dr), ()):
                    if j > i and abs((alerts[i].first_detected - alerts[j].first_detected).days) <= window_days:
                        parent[root(j)] = root(i)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(alerts)):
        groups[root(i)].append(i)
    return sorted(groups.values(), key=lambda g: (alerts[g[0]].aoi, min(alerts[i].first_detected for i in g),
                                                  min(alerts[i].tile_id for i in g)))


def events(alerts: Sequence[Alert], window_days: int = EVENT_WINDOW_DAYS, min_event_ha: float = 0.0,
           zones: Sequence[Zone] = ()) -> list[Event]:
    """Events of at least ``min_event_ha`` hectares, largest first within each AOI and date. The tiles' outlines
    are read from WKB, and the events' written and centred, in one call each for all of them."""
    zone_tree = shapely.STRtree([z.geometry for z in zones]) if zones else None
    tiles = shapely.from_wkb([a.geometry for a in alerts])
    kept, outlines = [], []
    for indexes in group(alerts, window_days):
        members = [alerts[i] for i in indexes]
        area_ha = sum(a.area_m2 for a in members) / 1e4
        if area_ha >= min_event_ha:
            kept.append((members, area_ha))
            outlines.append(shapely.union_all(tiles[indexes]))
    found = []
    for (members, area_ha), outline, wkb, centre in zip(kept, outlines, shapely.to_wkb(outlines),
                                                        shapely.centroid(outlines)):
        seed = min(members, key=lambda a: (a.first_detected, a.tile_id))
        counts = Counter(label for a in members for label in a.labels_gained)
        inside: tuple[tuple[str, float], ...] = ()
        if zone_tree is not None:
            inside = tuple((zones[i].name, geodesic_ha(zones[i].geometry.intersection(outline)))
                           for i in sorted(zone_tree.query(outline, predicate="intersects").tolist()))
        found.append(Event(
            event_id=seed.alert_id, aoi=seed.aoi, first_detected=seed.first_detected,
            last_detected=max(a.first_detected for a in members), tiles=len(members), area_ha=area_ha,
            labels_gained=tuple((label, counts[label]) for label in LABELS if label in counts),
            confidence=max((a.confidence for a in members), key=CONFIDENCE_LEVELS.index),
            status="active" if any(a.status == "active" for a in members) else "retracted",
            alert_ids=tuple(sorted(a.alert_id for a in members)),
            zones=tuple((name, ha, 0.0) for name, ha in inside if ha > 0),
            geometry=wkb, lon=centre.x, lat=centre.y, before_date=seed.before_date,
            before_scene=seed.before_scene, detected_scene=seed.detected_scene))
    return sorted(found, key=lambda e: (e.aoi, e.first_detected, -e.area_ha, e.event_id))


def geodesic_ha(geometry: shapely.Geometry) -> float:
    """Area on the WGS84 ellipsoid of a longitude/latitude geometry, hectares."""
    return abs(_GEOD.geometry_area_perimeter(geometry)[0]) / 1e4 if not geometry.is_empty else 0.0


#: Default ``--zone_name_property``: the zones' property that holds their name.
ZONE_NAME_PROPERTY = "name"


def read_zones(path: str, name_property: str = ZONE_NAME_PROPERTY) -> list[Zone]:
    """Polygons with a name from any vector file GDAL reads, in any CRS (:mod:`pipelines.geo.vectors`:
    reprojected to EPSG:4326); a clear error naming ``--zones`` for anything else."""
    zones = []
    for i, feature in enumerate(vectors.read(path, "--zones")):
        name = feature.properties.get(name_property)
        if name is None:
            raise UserError(f"--zones {path}: feature {i} has no {name_property!r} property "
                            "(--zone_name_property names the property that holds the zone's name)")
        if feature.geometry.geom_type not in ("Polygon", "MultiPolygon"):
            raise UserError(f"--zones {path}: feature {i} ({name}) is a {feature.geometry.geom_type}, not a polygon")
        zones.append(Zone(str(name), shapely.make_valid(feature.geometry)))
    if not zones:
        raise UserError(f"--zones {path}: no features (named polygons)")
    return zones
