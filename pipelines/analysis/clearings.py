"""Clearings: the changed pixels of each event, as polygons in hectares.

An alert says that a tile (768 m a side at 3 m) turned from forest into something else; an event is the
touching alert tiles of one change. Its tiles' area is not the cleared area: a 2-ha clearing and a 59-ha
one raise the same alert. The people who act on alerts (DETER's polygons from 3 ha, MapBiomas Alerta's
refined polygons, embargoes per hectare) need the clearing itself. This module measures it from the
pixels, per event, on the grid of the scene of detection:

1. **Two observations**, the date before and the date of detection, each the mosaic of that date's scenes
   over a frame: the alert tiles that compared those dates with one tile of margin all round (a clearing
   crosses tile edges). A pixel is *usable* where a scene holds data and, where the scene has a cloud mask
   (UDM2, SCL), the mask says clear; of several scenes of one date, the first usable pixel wins. An event
   whose alerts compared several pairs of dates (it grew over later scans, or its tiles were last seen
   clear on different dates) is compared on each pair in turn, by date of detection, each finding only
   what the earlier ones did not (:func:`delineate`): each clearing carries the dates it was found
   between.
2. **Radiometric normalisation.** The second date, band by band, is brought onto the first by adding the
   difference between the dates over the pixels both agree are forest (*pseudo-invariant features*: each
   date's forest is the pixels whose vegetation index is close to that date's own canopy level,
   :func:`forest_cut`), averaged over a moving window of about 400 m (:func:`normalise`). Haze adds light
   that varies across a scene, a brighter sun scales every band alike (which the index ignores): so a
   brighter or hazier second date, evenly or not, does not light up as change.
3. **The change index**: the drop of a vegetation index from the first date to the second, over pixels
   usable on both dates that were forest on the first. The index is NDVI where the scene has a near-
   infrared band; for visual (RGB) products it is the normalised green-red difference index
   (NGRDI = (green - red) / (green + red), Tucker 1979), the visible-band greenness that separates canopy
   from soil and burn.
4. **The threshold**: a drop of more than the index's calibrated threshold (:data:`FLOORS`: 0.12 NDVI,
   0.08 NGRDI). The NDVI one is calibrated on synthetic truth (``benchmarks/delineation.py``'s hard pair,
   three draws of it: 0.10 and 0.12 find 0.88 to 0.92 of the planted area with a mean IoU of 0.87 to
   0.97 and 2 to 3 ha false; 0.15 finds 0.81 to 0.83; in an earlier variant of the set, 0.10 let noise
   through as 49 ha of false clearings, so 0.12 keeps a margin), within the range of NDVI-difference
   thresholds of the deforestation literature. The NGRDI one is not calibrated (the synthetic scenes are
   analytic): it is the NDVI one scaled by the two indices' forest-to-pasture contrast. Otsu's threshold
   within the frame, with or without the floor under it, was measured against it (:data:`RULES`) and does
   worse: it cuts the weaker drops of clearings under haze (mean IoU 0.71 against 0.87 on the hard pair;
   the same on the demo), and alone it splits frames of intact forest.
5. **Clean-up and polygons**: a 3 x 3 opening (speckle: single pixels, selective-logging-like gaps), a
   3 x 3 closing, holes smaller than the minimum filled; vectorised (``rasterio.features.shapes``),
   simplified by one pixel with topology kept, reprojected to EPSG:4326 and measured on the WGS84
   ellipsoid (pyproj). Polygons under ``min_clearing_ha`` and those that touch none of the event's alert
   tiles are dropped.

What it cannot see: change under cloud or shadow on either date (``judged_share`` says how much of the
frame was judged); changes that keep a forest-like index (selective logging under the canopy); without a
cloud mask, a cloud on the second date over forest is a drop like a clearing, which the floor does not
stop, so scenes without masks give clearings only as good as their weather.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import duckdb
import numpy as np
import pyarrow as pa
import rasterio.features
import shapely
from affine import Affine
from scipy import ndimage

from pipelines.analysis.events import Event, Zone, geodesic_ha
from pipelines.analysis.rules import Alert
from pipelines.geo.grid import WGS84, Tile, reproject
from pipelines.sources.base import SceneItem
from pipelines.sources.reader import ReadOptions, SceneError
from planet_core.errors import UserError

log = logging.getLogger(__name__)

#: Default ``--min_clearing_ha``: the smallest clearing kept (DETER maps from 3 ha, MapBiomas Alerta 0.3 ha).
MIN_CLEARING_HA = 1.0
NDVI, NGRDI = "ndvi", "ngrdi"
#: The calibrated threshold on each index's drop (see the module docstring, step 4).
FLOORS = {NDVI: 0.12, NGRDI: 0.08}
#: Threshold rules (:func:`threshold_of`): the one used, and the two it was measured against.
FLOOR, OTSU_FLOOR, OTSU = "floor", "otsu+floor", "otsu"
RULES = (FLOOR, OTSU_FLOOR, OTSU)
#: Fewer forest pixels on both dates than this share of the usable ones: the dates are not normalised
#: (too little invariant ground to fit the map on).
MIN_INVARIANT_SHARE = 0.05
#: The delineation's version, recorded with stored clearings (:func:`options_of`): 2 compares each pair of dates
#: an event's alerts compared (1, before it, only its first alert's, missing what an event grew by later).
METHOD = 2
#: Side, in pixels, of the moving window over which the two dates' forest is matched (about 400 m at 3 m).
NORMALISING_WINDOW = 129
_SQUARE = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class Observation:
    """One date's pixels over a frame: ``image`` ``(height, width, bands)`` in record band order, and
    ``usable`` ``(height, width)``: holding data and clear."""

    image: np.ndarray
    usable: np.ndarray


@dataclass(frozen=True)
class Change:
    """What :func:`detect` found in a frame: the index and its threshold, the pixels judged (usable on both
    dates and forest on the first), the cleaned changed pixels, and the share of the frame usable on both."""

    index: str
    threshold: float
    judged: np.ndarray
    changed: np.ndarray
    judged_share: float


@dataclass(frozen=True)
class Clearing:
    """One cleared polygon of an event (the ``clearings`` table's row)."""

    clearing_id: str
    event_id: str
    aoi: str
    alert_ids: tuple[str, ...]
    before_date: dt.date
    detected_date: dt.date
    labels_gained: tuple[str, ...]
    confidence: str
    area_ha: float
    judged_share: float
    change_index: str
    threshold: float
    geometry: bytes
    lon: float
    lat: float


def row(clearing: Clearing) -> dict:
    """A clearing as a row of the clearings table (:data:`pipelines.store.schema.CLEARING_COLUMNS`)."""
    return {f.name: list(v) if isinstance(v := getattr(clearing, f.name), tuple) else v
            for f in dataclasses.fields(Clearing)}


def from_row(values: Mapping) -> Clearing:
    """A row of the clearings table (as pyarrow's ``to_pylist`` gives it) as a :class:`Clearing`."""
    return Clearing(**{f.name: tuple(values[f.name]) if isinstance(values[f.name], list) else values[f.name]
                       for f in dataclasses.fields(Clearing)})


def vegetation_index(image: np.ndarray, bands: Sequence[str]) -> tuple[str, np.ndarray]:
    """``(name, index)``: NDVI with a ``nir`` band, else NGRDI; 0 where the denominator is 0."""
    band = {name: image[..., i].astype(np.float32) for i, name in enumerate(bands)}
    high, low, name = (band["nir"], band["red"], NDVI) if "nir" in band else (band["green"], band["red"], NGRDI)
    total = high + low
    return name, np.divide(high - low, total, out=np.zeros_like(total), where=total != 0)


def otsu(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of ``values`` (1-D): the cut that maximises the between-class variance."""
    if values.size == 0:
        return 0.0
    values = values.astype(np.float64)
    if values.max() - values.min() < 1e-6:
        return float(values.max())
    counts, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(counts)
    weight_high = weight_low[-1] - weight_low
    sum_low = np.cumsum(counts * centres)
    mean_low = sum_low / np.maximum(weight_low, 1)
    mean_high = (sum_low[-1] - sum_low) / np.maximum(weight_high, 1)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(edges[1:][np.argmax(between)])


def forest_cut(index: np.ndarray, name: str) -> float:
    """The index value above which a pixel of a frame is forest, from ``index`` (its usable pixels'
    values): the forest's level is the median of the upper half of the values (the frame is mostly forest:
    it surrounds an alert of forest lost), its spread their scaled median absolute deviation, and a pixel is
    forest within three spreads of the level, or within the index's floor where the forest is more uniform
    than that. Fields, roads and water, well below the canopy's greenness, fall outside."""
    if index.size == 0:
        return math.inf
    upper = index[index >= np.median(index)]
    level = float(np.median(upper))
    spread = 1.4826 * float(np.median(np.abs(upper - level)))
    return level - max(3 * spread, FLOORS[name])


def normalise(before: Observation, after: Observation, bands: Sequence[str]) -> np.ndarray:
    """``after``'s image brought onto ``before``'s (step 2): band by band, the difference between the two
    dates over the pixels both call forest, averaged over a moving window of :data:`NORMALISING_WINDOW`
    pixels, is added to ``after``; where a window holds too few such pixels, their difference over the
    whole frame. A local offset, not one map for the frame: haze is thicker here and thinner there, and
    one linear map fitted to a frame with uneven haze compresses the contrast of the clearings themselves.
    (A common scale of all bands, a brighter sun, leaves the index as it is.) Unchanged when the frame has
    too few such pixels."""
    both = before.usable & after.usable
    name, index_before = vegetation_index(before.image, bands)
    _, index_after = vegetation_index(after.image, bands)
    forest = (both & (index_before > forest_cut(index_before[both], name))
              & (index_after > forest_cut(index_after[both], name)))
    image = after.image.astype(np.float32)
    if forest.sum() < max(MIN_INVARIANT_SHARE * both.sum(), 2):
        return image
    weight = ndimage.uniform_filter(forest.astype(np.float32), NORMALISING_WINDOW, mode="constant")
    enough = weight >= MIN_INVARIANT_SHARE
    out = np.empty_like(image)
    for b in range(image.shape[-1]):
        difference = np.where(forest, before.image[..., b].astype(np.float32) - image[..., b], 0)
        local = ndimage.uniform_filter(difference, NORMALISING_WINDOW, mode="constant") / np.maximum(weight, 1e-6)
        out[..., b] = image[..., b] + np.where(enough, local, float(np.median(difference[forest])))
    return out


def threshold_of(drops: np.ndarray, name: str, rule: str = FLOOR) -> float:
    """The drop above which a pixel changed, by ``rule`` (:data:`RULES`): the index's calibrated threshold
    (the default), Otsu's threshold of ``drops`` never below it, or Otsu's alone."""
    if rule == FLOOR:
        return FLOORS[name]
    cut = otsu(drops)
    return cut if rule == OTSU else max(cut, FLOORS[name])


def detect(before: Observation, after: Observation, bands: Sequence[str], min_pixels: int = 1,
           rule: str = FLOOR) -> Change:
    """The changed pixels between two observations of one frame (steps 2 to 5 but the polygons);
    components smaller than ``min_pixels`` are dropped and holes smaller than it filled."""
    both = before.usable & after.usable
    name, index_before = vegetation_index(before.image, bands)
    _, index_after = vegetation_index(np.maximum(normalise(before, after, bands), 0), bands)
    forest_before = both & (index_before > forest_cut(index_before[both], name))
    drop = index_before - index_after
    threshold = threshold_of(drop[forest_before], name, rule) if forest_before.any() else math.inf
    changed = forest_before & (drop > threshold)
    changed = ndimage.binary_closing(ndimage.binary_opening(changed, _SQUARE), _SQUARE) & both
    labelled, count = ndimage.label(changed, _SQUARE)
    if count:
        sizes = np.bincount(labelled.ravel())
        small = sizes < min_pixels
        small[0] = False
        changed[small[labelled]] = False
    holes, count = ndimage.label(~changed)
    if count:
        sizes = np.bincount(holes.ravel())
        filled = sizes < min_pixels
        filled[0] = False
        changed |= filled[holes]
    return Change(name, float(threshold), forest_before, changed, float(both.mean()) if both.size else 0.0)


def polygons(changed: np.ndarray, crs: str, transform: Affine, min_ha: float) -> list[tuple[shapely.Geometry, float]]:
    """The changed pixels as ``(polygon in EPSG:4326, geodesic hectares)``, largest first, those under
    ``min_ha`` left out."""
    pixel = abs(transform.a)
    found = []
    for geometry, _ in rasterio.features.shapes(changed.astype(np.uint8), mask=changed, transform=transform):
        outline = shapely.geometry.shape(geometry).simplify(pixel, preserve_topology=True)
        lonlat = reproject(outline, crs, WGS84, densify=False)
        area = geodesic_ha(lonlat)
        if area >= min_ha:
            found.append((lonlat, area))
    return sorted(found, key=lambda pair: -pair[1])


def not_found_before(changed: np.ndarray, earlier: Sequence[shapely.Geometry], crs: str,
                     transform: Affine) -> np.ndarray:
    """``changed`` (a frame's pixels on grid ``crs``, ``transform``) less every pixel that ``earlier`` (EPSG:4326
    polygons an earlier comparison of the event found) touch, and less the slivers that their one-pixel
    simplification leaves along their edges (a 3 x 3 opening of what remains)."""
    if not earlier:
        return changed
    seen = rasterio.features.rasterize([(reproject(g, WGS84, crs, densify=False), 1) for g in earlier],
                                       out_shape=changed.shape, transform=transform, all_touched=True) > 0
    return ndimage.binary_opening(changed & ~seen, _SQUARE)


def frame(alert_tiles: Sequence[shapely.Geometry], crs: str, resolution: float) -> Tile:
    """The square frame of an event on a scene's grid (``crs`` and pixel ``resolution``, snapped to whole
    pixels of it): the bounds of its alert tiles (EPSG:4326) with one tile of margin all round."""
    projected = [reproject(t, WGS84, crs, densify=False) for t in alert_tiles]  # their own vertices suffice
    outline = shapely.union_all(projected)
    margin = max(max(t.bounds[2] - t.bounds[0], t.bounds[3] - t.bounds[1]) for t in projected)
    west, south, east, north = outline.bounds
    # whole pixels outward, forgiving the round trip through EPSG:4326 (well under a millimetre)
    left = math.floor((west - margin) / resolution + 1e-3) * resolution
    top = math.ceil((north + margin) / resolution - 1e-3) * resolution
    size = math.ceil(max(east + margin - left, top - (south - margin)) / resolution - 1e-3)
    return Tile("frame", crs, (resolution, 0.0, left, 0.0, -resolution, top), size)


def observe(items: Sequence[SceneItem], read: ReadOptions, where: Tile) -> Observation | None:
    """The mosaic of ``items`` (one date's scenes) over ``where``: the first usable pixel of each, in order;
    ``None`` when no scene could be read there. A scene that fails costs only its own pixels."""
    image, usable = None, None
    for item in items:
        try:
            with read.open(item) as reader:
                pixels, clear = reader.read_pixels(where)
        except (SceneError, OSError) as error:
            log.warning("clearings: scene %s skipped: %s", item.scene_id, error)
            continue
        if image is None:
            image, usable = pixels.astype(np.float32), clear.copy()
            continue
        take = clear & ~usable
        image[take] = pixels[take]
        usable |= take
    return Observation(image, usable) if image is not None else None


def clearing_id(event_id: str, geometry: shapely.Geometry) -> str:
    """16 hex digits of SHA-256 of the event id and the polygon's representative point (metre-rounded):
    the same from a re-run on the same scenes."""
    point = geometry.representative_point()
    key = f"{event_id}|{point.x:.5f}|{point.y:.5f}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


#: SQL order of one date's scenes over a place, from its scan rows (``tile_labels``) grouped by scene: the
#: clearest first (the sum of their tiles' UDM2 clear fractions), then the one that gave more tiles (the
#: only measure where scenes have no mask), then by id. Pictures, imagery layers and delineation start
#: from the first and fill from the others.
CLEAREST_FIRST = "SUM(COALESCE(clear_fraction, 0)) DESC, COUNT(*) DESC, scene_id"


#: Degrees of the cells that :func:`plan` joins frames and scan rows on: a row falls in the cell of its tile's
#: south-west corner, and a frame looks in every cell that corner can be in for a tile as large as the
#: event's own overlapping it. An equality join instead of comparing every frame with every row of its date.
FRAME_CELL = 0.05


@dataclass(frozen=True)
class Comparison:
    """One look for an event's clearings: its alerts first detected on ``detected_date`` after forest judged
    on ``before_date`` (``alert_ids``: the tiles in the middle of the frame), and the scenes of those two
    dates that cover the frame, the clearest first (:data:`CLEAREST_FIRST`, over the frame): the first
    scene of detection's pixels are the grid, the others fill where it has no data."""

    before_date: dt.date
    detected_date: dt.date
    alert_ids: tuple[str, ...]
    before: tuple[SceneItem, ...]
    after: tuple[SceneItem, ...]


@dataclass(frozen=True)
class Work:
    """One event to delineate, with all it needs (a Beam element): its alert tiles' outlines (WKB, EPSG:4326,
    by alert id); its comparisons, one per pair of dates its alerts compared (the date before and the date
    of detection), by date of detection and, on one date, the later date before first: an event that grew
    over later scans, or whose tiles were under cloud on different dates, is looked at on each (see
    :func:`delineate`); and ``pictured``, the dates of its first alert over all its tiles, the pictures'
    scenes (:mod:`pipelines.analysis.event_images`), which are its only comparison's where it has one."""

    event: Event
    alert_tiles: tuple[tuple[str, bytes], ...]
    comparisons: tuple[Comparison, ...]
    pictured: Comparison


class ClearingError(Exception):
    """An event that could not be delineated (its scenes unreadable): one counted error line. ``scene``: the
    scene of detection of the comparison that failed, where the scans name one."""

    def __init__(self, why: str, scene: SceneItem | None = None) -> None:
        super().__init__(why)
        self.scene = scene


class _Dates(NamedTuple):
    """A comparison's dates and alerts, before :func:`plan` finds its scenes (the frames' rows)."""

    before_date: dt.date
    detected_date: dt.date
    alert_ids: tuple[str, ...]


def plan(con: duckdb.DuckDBPyConnection, found: Sequence[Event], alerts: Sequence[Alert],
         items: Mapping[str, SceneItem]) -> list[Work]:
    """The :class:`Work` of each event: for each of its comparisons (and its pictures), the scenes of the two
    dates whose scanned tiles (``planet_tiles.tile_labels`` in ``con``) overlap the frame, clearest first
    (:data:`CLEAREST_FIRST`, over the frame's tiles: a scene that saw the frame clear beats one that saw a
    corner of it clear, and one that saw it under cloud), as ``items`` (by scene id) says where they are now."""
    by_id = {a.alert_id: a for a in alerts}
    frames: list[_Dates] = []  # each event's comparisons in order, then its pictures' when they are not those
    aois: list[str] = []
    spans: list[tuple[int, int, bool]] = []  # per event: its first frame, its comparisons, its pictures' own
    for event in found:
        comparisons, pictured = _looks(event, by_id)
        spans.append((len(frames), len(comparisons), pictured is not None))
        frames += comparisons if pictured is None else [*comparisons, pictured]
        aois += [event.aoi] * (len(comparisons) + (pictured is not None))
    scenes: dict[tuple[int, str], list[str]] = {}
    if frames:
        con.register("clearing_frames", _frames(frames, aois, {a.alert_id: a.geometry for a in alerts}))
        rows = con.execute(
            f"WITH cells AS (SELECT f.*, cx, cy FROM clearing_frames f, "
            f"range(floor((f.west - f.margin) / {FRAME_CELL})::BIGINT, floor(f.east / {FRAME_CELL})::BIGINT + 1) "
            f"AS x(cx), range(floor((f.south - f.margin) / {FRAME_CELL})::BIGINT, "
            f"floor(f.north / {FRAME_CELL})::BIGINT + 1) AS y(cy)) "
            "SELECT f.frame, f.side, t.scene_id FROM cells f JOIN planet_tiles.tile_labels t "
            "ON t.aoi = f.aoi AND t.scan_date = f.scan_date "
            f"AND floor(t.bbox.xmin / {FRAME_CELL})::BIGINT = f.cx "
            f"AND floor(t.bbox.ymin / {FRAME_CELL})::BIGINT = f.cy "
            "AND t.bbox.xmin <= f.east AND t.bbox.xmax >= f.west AND t.bbox.ymin <= f.north AND t.bbox.ymax >= f.south "
            f"GROUP BY ALL ORDER BY f.frame, f.side, {CLEAREST_FIRST}").fetchall()
        con.unregister("clearing_frames")
        for frame_number, side, scene_id in rows:
            scenes.setdefault((frame_number, side), []).append(scene_id)

    def look(f: int) -> Comparison:
        return Comparison(*frames[f], tuple(items[i] for i in scenes.get((f, "before"), ()) if i in items),
                          tuple(items[i] for i in scenes.get((f, "after"), ()) if i in items))

    out = []
    for event, (first, count, own) in zip(found, spans):
        mine = tuple(look(f) for f in range(first, first + count))
        out.append(Work(event, tuple((i, by_id[i].geometry) for i in event.alert_ids if i in by_id), mine,
                        look(first + count) if own else mine[0]))
    return out


def _looks(event: Event, alerts: Mapping[str, Alert]) -> tuple[list[_Dates], _Dates | None]:
    """An event's comparisons, in :class:`Work`'s order, and its pictures' dates over all its tiles: ``None``
    when they are its only comparison's (most events: their alerts all compared the same dates)."""
    mine = [alerts[i] for i in event.alert_ids if i in alerts]
    everything = _Dates(event.before_date, event.first_detected, tuple(event.alert_ids))
    if len(mine) == len(everything.alert_ids) and all(
            a.first_detected == everything.detected_date and a.before_date == everything.before_date for a in mine):
        return [everything], None
    pairs: dict[tuple[dt.date, dt.date], list[str]] = {}
    for alert in mine:
        pairs.setdefault((alert.before_date, alert.first_detected), []).append(alert.alert_id)
    return [_Dates(before, detected, tuple(ids)) for (before, detected), ids in
            sorted(pairs.items(), key=lambda p: (p[0][1], -p[0][0].toordinal()))], everything


def _frames(looks: Sequence[_Dates], aois: Sequence[str], tiles: Mapping[str, bytes]) -> pa.Table:
    """Each comparison's frame on its two dates (``frame``: its place in ``looks``; a row per side): the
    bounds of its alert tiles (``tiles``: WKB by alert id), widened by its largest tile's side (``margin``)
    on every side. The tiles' bounds come from one call for all of them and are reduced per frame by numpy,
    not a call per frame."""
    index = {alert_id: n for n, alert_id in enumerate(tiles)}
    bounds = shapely.bounds(shapely.from_wkb(list(tiles.values())))
    members = [[index[i] for i in c.alert_ids if i in index] for c in looks]
    starts = np.cumsum([0] + [len(m) for m in members[:-1]])
    west, south, east, north = bounds[np.concatenate(members)].T
    margin = np.maximum(np.maximum.reduceat(east - west, starts), np.maximum.reduceat(north - south, starts))
    west, south = np.minimum.reduceat(west, starts) - margin, np.minimum.reduceat(south, starts) - margin
    east, north = np.maximum.reduceat(east, starts) + margin, np.maximum.reduceat(north, starts) + margin
    numbers = list(range(len(looks)))
    return pa.table({
        "frame": numbers * 2, "side": ["before"] * len(looks) + ["after"] * len(looks), "aoi": list(aois) * 2,
        "scan_date": [c.before_date for c in looks] + [c.detected_date for c in looks],
        **{name: np.concatenate([v, v]) for name, v in (("west", west), ("south", south), ("east", east),
                                                       ("north", north), ("margin", margin))}})


def delineate(work: Work, read: ReadOptions, min_clearing_ha: float = MIN_CLEARING_HA,
              rule: str = FLOOR, unreadable: dict[str, str] | None = None) -> list[Clearing]:
    """The clearings of one event: those of each of its comparisons in turn (:func:`compare`), less the
    pixels the earlier ones found. A later comparison whose date before is older than an earlier detection
    (its tiles were under cloud then) sees that earlier clearing as a drop again, in its frame's margin;
    it is the earlier comparison's. :class:`ClearingError` when any of the dates cannot be read: an
    event's clearings are all of them or none, since a part would pass for the event's cleared area.
    ``unreadable`` (scene URI -> why) remembers the scenes of detection that could not be opened, across
    the events of one run."""
    tiles = dict(work.alert_tiles)
    found: list[Clearing] = []
    for comparison in work.comparisons:
        found += compare(work.event, comparison, tiles, [shapely.from_wkb(c.geometry) for c in found], read,
                         min_clearing_ha, rule, unreadable)
    return found


def compare(event: Event, comparison: Comparison, tiles: Mapping[str, bytes], earlier: Sequence[shapely.Geometry],
            read: ReadOptions, min_clearing_ha: float = MIN_CLEARING_HA, rule: str = FLOOR,
            unreadable: dict[str, str] | None = None) -> list[Clearing]:
    """The clearings of one comparison of ``event`` (its alert tiles' outlines, WKB by alert id), on the grid
    of its first scene of detection, through the record bands that scene has (NIR where it has it), leaving
    out the pixels inside ``earlier`` (EPSG:4326 polygons the event's earlier comparisons found). The frame
    is the comparison's own tiles with a tile of margin; a clearing in it must touch one of the event's
    tiles, which it names (one seen in the margin over a tile detected later was there on this date: it
    is dated by the first comparison that sees it)."""
    if not comparison.before or not comparison.after:
        missing = comparison.before_date if not comparison.before else comparison.detected_date
        raise ClearingError(f"no scenes of {missing} over the event (compared {comparison.before_date} and "
                            f"{comparison.detected_date}): the scans name none (or --scenes/--stac do not hold them)",
                            comparison.after[0] if comparison.after else None)
    first = comparison.after[0]
    if unreadable is not None and first.uri in unreadable:
        raise ClearingError(unreadable[first.uri], first)
    try:
        with read.open(first) as reader:
            crs, resolution, bands = reader.crs, abs(reader.transform.a), reader.bands
    except (SceneError, OSError) as error:
        why = f"scene {first.scene_id}: {error}"
        if unreadable is not None:
            unreadable[first.uri] = why
        raise ClearingError(why, first) from None
    ids = list(tiles)  # parsed only now: of a basin's thousands of events, many fail on a scene already
    outlines, at = shapely.from_wkb(list(tiles.values())), {alert_id: n for n, alert_id in enumerate(ids)}
    where = frame([outlines[at[i]] for i in comparison.alert_ids if i in at], crs, resolution)
    bands_read = dataclasses.replace(read, bands=tuple(bands))
    before, after = observe(comparison.before, bands_read, where), observe(comparison.after, bands_read, where)
    if before is None or after is None:
        side, date = ((comparison.before, comparison.before_date) if before is None
                      else (comparison.after, comparison.detected_date))
        raise ClearingError(f"none of the {len(side)} scenes of {date} could be read "
                            f"({', '.join(i.scene_id for i in side)})", first)
    pixel_ha = (resolution * resolution) / 1e4
    change = detect(before, after, bands, max(1, math.floor(min_clearing_ha / pixel_ha)), rule)
    pixels = not_found_before(change.changed, earlier, crs, where.affine)
    tree = shapely.STRtree(outlines)
    labels = tuple(label for label, _ in event.labels_gained)
    found = []
    for outline, area in polygons(pixels, crs, where.affine, min_clearing_ha):
        touched = sorted(ids[i] for i in tree.query(outline, predicate="intersects").tolist())
        if not touched:
            continue
        centre = outline.centroid
        found.append(Clearing(
            clearing_id=clearing_id(event.event_id, outline), event_id=event.event_id, aoi=event.aoi,
            alert_ids=tuple(touched), before_date=comparison.before_date, detected_date=comparison.detected_date,
            labels_gained=labels, confidence=event.confidence, area_ha=area, judged_share=change.judged_share,
            change_index=change.index, threshold=change.threshold, geometry=shapely.to_wkb(outline),
            lon=centre.x, lat=centre.y))
    return found


def for_events(works: Sequence[Work], read: ReadOptions, min_clearing_ha: float = MIN_CLEARING_HA,
               rule: str = FLOOR) -> list[Clearing]:
    """The clearings of every event, here (the report's small runs; ``planet-tiles delineate`` runs the same
    per event on Beam); an event that cannot be delineated has none, and one line per reason counts them
    (a scene that cannot be opened is tried once, not once per event: a basin's thousands of events share
    a few hundred scenes)."""
    unreadable: dict[str, str] = {}
    out: list[Clearing] = []
    failed: dict[str, list[str]] = {}
    for work in works:
        try:
            out += delineate(work, read, min_clearing_ha, rule, unreadable)
        except ClearingError as error:
            failed.setdefault(str(error), []).append(work.event.event_id)
    for reason, ids in failed.items():
        log.warning("%d event%s without clearings (%s%s): %s", len(ids), "" if len(ids) == 1 else "s",
                    ", ".join(ids[:3]), ", ..." if len(ids) > 3 else "", reason)
    return out


def attach_alerts(alerts: Sequence[Alert], cleared: Sequence[Clearing]) -> list[Alert]:
    """``alerts`` with the hectares of their clearings inside their tiles (``cleared_ha``)."""
    by_alert: dict[str, list[shapely.Geometry]] = {}
    for c in cleared:
        for alert_id in c.alert_ids:
            by_alert.setdefault(alert_id, []).append(shapely.from_wkb(c.geometry))
    out = []
    for alert in alerts:
        mine = by_alert.get(alert.alert_id)
        inside = geodesic_ha(shapely.from_wkb(alert.geometry).intersection(shapely.union_all(mine))) if mine else 0.0
        out.append(dataclasses.replace(alert, cleared_ha=round(inside, 4)))
    return out


def attach(found: Sequence[Event], cleared: Sequence[Clearing], zones: Sequence[Zone] = ()) -> list[Event]:
    """``found`` with their cleared hectares: ``cleared_ha`` (the sum of their clearings) and, for each zone
    an event touches, the hectares of its clearings inside that zone."""
    mine: dict[str, list[Clearing]] = {}
    for c in cleared:
        mine.setdefault(c.event_id, []).append(c)
    shapes = {z.name: z.geometry for z in zones}
    out = []
    for event in found:
        outlines = [shapely.from_wkb(c.geometry) for c in mine.get(event.event_id, [])]
        union = shapely.union_all(outlines) if outlines else None
        inside = tuple((name, ha, round(geodesic_ha(shapes[name].intersection(union)), 4)
                        if union is not None and name in shapes else 0.0) for name, ha, _ in event.zones)
        out.append(dataclasses.replace(event, zones=inside, cleared_ha=round(
            sum(c.area_ha for c in mine.get(event.event_id, [])), 4)))
    return out


def score(found: Sequence[Clearing], places: Sequence[dict], events: Sequence[Event] = (),
          min_ha: float = MIN_CLEARING_HA) -> dict:
    """Clearings against planted or mapped clearings (GeoJSON features, EPSG:4326), as :func:`measure`
    says, over every place and (``in_events``) over the places that touch an event's tiles: those the
    delineation had a chance at, whatever the tile classifier missed."""
    shapes = [shapely.make_valid(shapely.geometry.shape(p["geometry"])) for p in places]
    outlines = [shapely.from_wkb(c.geometry) for c in found]
    result = measure(outlines, shapes, min_ha)
    if events:
        searched = shapely.union_all([shapely.from_wkb(e.geometry) for e in events])
        result["in_events"] = measure(outlines, [s for s in shapes if s.intersects(searched)], min_ha)
    return result


def measure(found: Sequence[shapely.Geometry], planted: Sequence[shapely.Geometry], min_ha: float) -> dict:
    """Total area found against planted; per planted polygon of at least ``min_ha``: found when the
    clearings that touch it cover it with an intersection over union of 0.5 or more, and the mean of that
    IoU; and the hectares found outside every planted polygon (false clearings)."""
    tree = shapely.STRtree(found) if found else None
    planted_all = shapely.union_all(planted) if planted else shapely.Polygon()
    found_all = shapely.union_all(found) if found else shapely.Polygon()
    ious = []
    for place in planted:
        if geodesic_ha(place) < min_ha:
            continue
        touching = tree.query(place, predicate="intersects").tolist() if tree is not None else []
        mine = shapely.union_all([found[i] for i in touching]) if touching else shapely.Polygon()
        union = geodesic_ha(place.union(mine))
        ious.append(geodesic_ha(place.intersection(mine)) / union if union else 0.0)
    planted_ha, found_ha = geodesic_ha(planted_all), geodesic_ha(found_all)
    return {
        "planted_ha": round(planted_ha, 3),
        "cleared_ha": round(found_ha, 3),
        "area_ratio": round(found_ha / planted_ha, 4) if planted_ha else None,
        "planted": len(ious),
        "recall_iou50": round(sum(1 for v in ious if v >= 0.5) / len(ious), 4) if ious else None,
        "mean_iou": round(sum(ious) / len(ious), 4) if ious else None,
        "false_ha": round(geodesic_ha(found_all.difference(planted_all)), 3),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--min_clearing_ha``, for ``delineate`` and ``report``."""
    parser.add_argument("--min_clearing_ha", type=float, default=MIN_CLEARING_HA,
                        help="leave out cleared polygons smaller than this many hectares "
                             f"(default {MIN_CLEARING_HA:g})")


def options_of(args: argparse.Namespace) -> dict:
    """The options clearings depend on beside the scans they come from (judging, grouping, minimum size) and
    the method's version (:data:`METHOD`): ``report`` reuses a stored delineation only when they are the
    same."""
    return {"min_clear_fraction": args.min_clear_fraction, "highest_probability": args.highest_probability,
            "event_window_days": args.event_window_days, "min_event_ha": args.min_event_ha,
            "min_clearing_ha": args.min_clearing_ha, "method": METHOD}


def check_arguments(args: argparse.Namespace) -> None:
    if not args.min_clearing_ha > 0:
        raise UserError(f"--min_clearing_ha {args.min_clearing_ha}: must be more than 0")
