"""Before and after pictures of each event, what an analyst looks at before sending someone out, and the
map's imagery layers.

For each of the largest events (``--max_pictures``, default :data:`MAX_PICTURES`: a report of thousands
of events would spend most of its time here), the area of its tiles (with half the event's size of
margin around it, so that the clearing is seen against the forest) is read on two dates: the observation
before (the last judged one of intact forest) and the first detection, each the mosaic of the scenes of
that date that cover the event (the clearest first, by the UDM2 clear fractions the scan recorded over
the event, :func:`pipelines.analysis.clearings.plan`; the others fill where it has no data, so a scene's
edge does not black out half the picture), in EPSG:3857 at the scenes' own
resolution (:meth:`pipelines.sources.reader.SceneReader.read_area`). Each becomes a true-colour PNG of
at most :data:`MAX_PIXELS` a side with the event's outline drawn in yellow.

The stretch: per band, the 2nd and 98th percentiles (:data:`STRETCH`) of the pixels that hold data map
to 0 and 255, as QGIS's and most viewers' default "cumulative count cut" does; so analytic (uint16
radiance or reflectance) and visual (uint8) scenes both look natural without knowing their scale. Each
image is stretched on its own, so the two are comparable in contrast, not in absolute brightness.

The same mosaics, over each AOI's map at :data:`IMAGERY_PIXELS` a side, are the map's imagery layers
(``report --imagery``, :func:`imagery`): one per scan date, under the tiles.

Scenes are found by ``scene_id``: among the items of the report's imagery flags (``--scenes``,
``--stac``: a Sentinel-2 scene is one file per band, and a moved scene can be pointed to), else where the
scan rows say it was read (``scene_uri``). A date whose scenes cannot be read any more gives no image,
and the report's card says so.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import logging
import math
from collections.abc import Mapping, Sequence

import duckdb
import numpy as np
import shapely
from PIL import Image, ImageDraw
from pyproj import Transformer

from pipelines.analysis.clearings import CLEAREST_FIRST, Work
from pipelines.analysis.events import Event
from pipelines.sources import files
from pipelines.sources.base import SceneItem
from pipelines.sources.reader import ReadOptions
from planet_core import storage
from planet_core.errors import UserError
from planet_core.imagery import RGB

log = logging.getLogger(__name__)

MAX_PIXELS = 512
#: The map's imagery layers (report --imagery): a side's pixels, whatever the AOI (the page stays small).
IMAGERY_PIXELS = 1024
#: Default ``--max_pictures``: pictures of the largest events only (each reads its scenes again).
MAX_PICTURES = 200
STRETCH = (2.0, 98.0)
OUTLINE = (255, 235, 59)
FOLDER = "events"


def scene_items(con: duckdb.DuckDBPyConnection, given: Sequence[SceneItem] = ()) -> dict[str, SceneItem]:
    """``scene_id -> item`` of every scene of the scans a report reads (``planet_tiles.tile_labels`` in
    ``con``): the ``given`` item of that id (the report's imagery flags), else the file the scan rows say it
    was read from (the latest scan's, where a scene was read from two places)."""
    rows = con.execute("SELECT scene_id, arg_max(scene_uri, scan_date) FROM planet_tiles.tile_labels "
                       "GROUP BY scene_id").fetchall()
    named = {item.scene_id: item for item in given}
    unread = sorted(set(named) - {scene_id for scene_id, _ in rows})
    if unread:  # another folder than meant: the scans' own paths are read instead, without a word otherwise
        log.warning("--scenes/--stac: %d of %d scenes given are no scene of the scans (%s%s); they are not read",
                    len(unread), len(named), ", ".join(unread[:3]), " ..." if len(unread) > 3 else "")
    return {scene_id: named.get(scene_id) or dataclasses.replace(files.item(uri), scene_id=scene_id)
            for scene_id, uri in rows}


def true_colour(pixels: np.ndarray) -> np.ndarray:
    """``(h, w, 3)`` red, green, blue of any dtype -> uint8 by the percentile stretch; no-data stays black."""
    data = pixels.astype(np.float64)
    valid = (pixels > 0).any(axis=-1)
    out = np.zeros(pixels.shape[:2] + (3,), np.uint8)
    if not valid.any():
        return out
    for band in range(3):
        low, high = np.percentile(data[..., band][valid], STRETCH)
        if high - low < 1:  # one flat colour (a uniform field): keep it, not black
            low, high = 0.0, max(high * 1.25, 1.0)
        scaled = (data[..., band] - low) / (high - low) * 255
        out[..., band] = np.where(valid, np.clip(scaled, 0, 255), 0).astype(np.uint8)
    return out


def mosaic(items: Sequence[SceneItem], read: ReadOptions, bounds: tuple[float, float, float, float],
           max_pixels: int, what: str) -> np.ndarray:
    """Red, green and blue of the mosaic of ``items`` (one date's scenes, the clearest first: each fills
    what the ones before left without data) over ``bounds`` (EPSG:4326) in EPSG:3857, at most
    ``max_pixels`` a side (:meth:`pipelines.sources.reader.SceneReader.read_area`). An item that cannot be
    read costs only its own pixels; ``OSError`` naming ``what`` when none holds data there."""
    pixels, problems = None, []
    for item in items:
        try:
            with dataclasses.replace(read, bands=RGB).open(item) as reader:
                more = reader.read_area(bounds, max_pixels)
        except (OSError, ValueError, UserError) as error:
            problems.append(f"{item.scene_id}: {error}")
            continue
        if pixels is None:
            pixels = more
        elif more.shape == pixels.shape:  # scenes of one product and resolution: the same raster
            empty = ~(pixels > 0).any(axis=-1)
            pixels[empty] = more[empty]
    if pixels is None or not (pixels > 0).any():
        raise OSError(f"no scene holds data over {what}" + (f" ({'; '.join(problems)})" if problems else ""))
    return pixels


def imagery(con: duckdb.DuckDBPyConnection, frames: Mapping[str, tuple[float, float, float, float]],
            items: Mapping[str, SceneItem], read: ReadOptions,
            max_pixels: int = IMAGERY_PIXELS) -> dict[str, dict[dt.date, bytes]]:
    """The report map's imagery layers: for each AOI (``frames``: the bounds of its map, EPSG:4326) and scan
    date, the mosaic of the scenes the scan read that date, clearest first (:data:`pipelines.analysis.
    clearings.CLEAREST_FIRST`, over the AOI), true colour, as WebP with
    transparency where no scene has data, at most ``max_pixels`` a side: about 100 to 300 kB a layer,
    whatever the AOI. A date none of whose scenes can be read any more has no layer, with a warning."""
    rows = con.execute("SELECT aoi, scan_date, scene_id FROM planet_tiles.tile_labels GROUP BY ALL "
                       f"ORDER BY aoi, scan_date, {CLEAREST_FIRST}").fetchall()
    scenes: dict[tuple[str, dt.date], list[SceneItem]] = {}
    for aoi, date, scene_id in rows:
        if aoi in frames and scene_id in items:
            scenes.setdefault((aoi, date), []).append(items[scene_id])
    layers: dict[str, dict[dt.date, bytes]] = {}
    for (aoi, date), chosen in scenes.items():
        try:
            pixels = mosaic(chosen, read, frames[aoi], max_pixels, f"AOI {aoi}")
        except OSError as error:
            log.warning("AOI %s, %s: no imagery layer: %s", aoi, date.isoformat(), error)
            continue
        rgba = np.dstack([true_colour(pixels), np.where((pixels > 0).any(axis=-1), 255, 0).astype(np.uint8)])
        buffer = io.BytesIO()
        Image.fromarray(rgba, mode="RGBA").save(buffer, format="WEBP", quality=80, method=4)
        layers.setdefault(aoi, {})[date] = buffer.getvalue()
    return layers


def picture(items: Sequence[SceneItem], read: ReadOptions, outline: shapely.Geometry,
            max_pixels: int = MAX_PIXELS) -> bytes:
    """The PNG of ``outline``'s surroundings in the :func:`mosaic` of ``items`` (one date's scenes, the
    clearest first), the outline drawn on it."""
    west, south, east, north = outline.bounds
    margin = max(east - west, north - south) / 2
    bounds = (west - margin, south - margin, east + margin, north + margin)
    image = Image.fromarray(true_colour(mosaic(items, read, bounds, max_pixels, "the event")))
    to_mercator = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform
    left, top = to_mercator(bounds[0], bounds[3])
    right, bottom = to_mercator(bounds[2], bounds[1])
    sx, sy = image.width / (right - left), image.height / (top - bottom)
    draw = ImageDraw.Draw(image)
    for polygon in getattr(outline, "geoms", [outline]):
        xs, ys = to_mercator(*np.asarray(polygon.exterior.coords).T)
        draw.line([((x - left) * sx, (top - y) * sy) for x, y in zip(xs, ys)], fill=OUTLINE,
                  width=max(1, math.ceil(image.width / 96)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def write(found: Sequence[Event], works: Mapping[str, Work], read: ReadOptions, output: str,
          max_pictures: int = MAX_PICTURES) -> dict[str, dict[str, str | None]]:
    """Write the before and after PNGs of the ``max_pictures`` largest events under ``output/events/``:
    each the mosaic of its date's scenes over the event (``works``: by event id, the scenes of its first alert's
    date before and of detection that cover it, ``pictured`` by :func:`pipelines.analysis.clearings.plan`). Returns
    ``{event_id: {"before": path relative to output or None, "after": ...}}`` for the events pictured.
    A side whose scenes cannot be read is logged and left out."""
    written: dict[str, dict[str, str | None]] = {}
    for event in sorted(found, key=lambda e: (-e.area_ha, e.event_id))[:max_pictures]:
        outline = shapely.from_wkb(event.geometry)
        work = works.get(event.event_id)
        paths: dict[str, str | None] = {}
        pictured = work.pictured if work else None
        for side, items in (("before", pictured.before if pictured else ()),
                            ("after", pictured.after if pictured else ())):
            relative = f"{FOLDER}/{event.event_id}-{side}.png"
            try:
                if not items:
                    raise OSError("its scenes are in no scan row under --scans, nor in --scenes/--stac")
                storage.write_bytes(storage.join(output, relative), picture(items, read, outline))
                paths[side] = relative
            except (OSError, ValueError, UserError) as error:  # an unreadable date costs only its picture
                log.warning("event %s: no %s image: %s", event.event_id, side, error)
                paths[side] = None
        written[event.event_id] = paths
    return written
