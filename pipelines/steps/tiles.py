"""The one tile path of every pipeline: scene items -> :class:`TileTask` blocks -> :class:`TileImage` pixels.

:class:`EnumerateTiles` runs on workers (the launcher only lists scenes), opens each scene's header and
lists the tiles of every AOI its footprint touches; :class:`ReadTiles` reads a block of tiles of one
scene through one open reader. Both take a :class:`~pipelines.geo.tiling.TileSpec` and the sources'
:class:`~pipelines.sources.reader.ReadOptions` and nothing else, and every tile that is not read ends
as an outcome (:mod:`pipelines.steps.accounting`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import apache_beam as beam
import numpy as np

from pipelines.geo.aoi import Aoi
from pipelines.geo.grid import Tile
from pipelines.geo.tiling import TileSpec
from pipelines.sources.base import DateRange, SceneItem
from pipelines.sources.masks import MaskFractions
from pipelines.sources.reader import ReadOptions, SceneError, SceneReader, TileRead, iter_blocks
from pipelines.steps.accounting import FAILED, OUTCOMES, SKIPPED, outcome, screen_tiles
from planet_core.imagery import UNKNOWN


@dataclass(frozen=True)
class TileTask:
    """Tiles of one scene to read together; ``aoi`` names the AOI they were listed for (None: none)."""

    source: SceneItem
    tiles: tuple[Tile, ...]
    aoi: str | None = None
    acquired: str | None = None  # the scene's acquisition time (ISO 8601), known once its header is read


@dataclass(frozen=True)
class TileImage:
    """A tile's pixels ``(size, size, bands)`` in record band order, and where they came from."""

    tile: Tile
    source: SceneItem
    bands: tuple[str, ...]
    image: np.ndarray
    valid_fraction: float
    aoi: str | None = None
    acquired: str | None = None
    product: str = UNKNOWN  # what the values are (imagery.PRODUCTS)
    mask: MaskFractions | None = None  # from the scene's cloud mask; None without one
    mask_error: str | None = None  # why the scene's cloud mask could not be used for this tile


class EnumerateTiles(beam.DoFn):
    """Scene -> :class:`TileTask` blocks for each AOI its footprint touches (or all its tiles: no AOIs).

    A scene that cannot be opened is one failed item; one that touches no AOI, or (``when``: ``--acquired``)
    whose header says it was acquired on another day, is one skipped item (a scene file whose name says no
    day is chosen by its header here); so is, failed, a scene without a cloud mask when the spec skips tiles
    by their mask's clear fraction (its tiles could not be screened, and keeping them all would pass cloudy
    ones off as clear).
    """

    def __init__(self, spec: TileSpec, read: ReadOptions, aois: Sequence[Aoi] | None = None,
                 when: DateRange | None = None) -> None:
        self.spec, self.read, self.aois, self.when = spec, read, tuple(aois) if aois else None, when

    def process(self, source: SceneItem) -> Iterator:
        try:
            with self.read.open(source) as reader:
                acquired = reader.acquired
                if self.when is not None and self.when.holds(acquired) is False:
                    yield beam.pvalue.TaggedOutput(OUTCOMES, outcome(
                        SKIPPED, source.scene_id, source.uri, reason=f"acquired: {acquired[:10]}, outside --acquired"))
                    return
                if reader.mask is not None:  # found once here, not again by every task's reader
                    source = dataclasses.replace(source, mask=reader.mask.uri)
                elif self.spec.skip_cloudier_than is not None and reader.mask_error is None:
                    yield beam.pvalue.TaggedOutput(OUTCOMES, outcome(
                        FAILED, source.scene_id, source.uri, reason=f"cloud mask: {source.uri} has no cloud mask, so "
                        f"its tiles cannot be screened by their clear fraction (--skip_cloudier_than)"))
                    return
                grid = reader.grid
                if self.aois is None:
                    listed = [(None, self.spec.tiles(grid))]
                else:
                    listed = [(aoi.name, tiles) for aoi in self.aois if (tiles := self.spec.tiles(grid, aoi.geometry))]
        except SceneError as error:
            yield beam.pvalue.TaggedOutput(
                OUTCOMES, outcome(FAILED, source.scene_id, source.uri, reason=f"scene: {error}")
            )
            return
        except Exception as error:  # noqa: BLE001 - an unforeseen reader error must not stop the job
            yield beam.pvalue.TaggedOutput(OUTCOMES, outcome(FAILED, source.scene_id, source.uri,
                                                             reason=f"scene: {type(error).__name__}: {error}"))
            return
        if not listed:
            yield beam.pvalue.TaggedOutput(OUTCOMES, outcome(SKIPPED, source.scene_id, source.uri,
                                                             reason="outside: the scene touches no AOI"))
        for name, tiles in listed:
            for block in iter_blocks(tiles, self.spec.tiles_per_task):
                yield TileTask(source, tuple(block), name, acquired)


class ReadTiles(beam.DoFn):
    """A :class:`TileTask` -> a :class:`TileImage` per kept tile, an outcome for each other one; without
    ``fractions``, its cloud mask's fractions are read only where the spec skips tiles by them."""

    def __init__(self, spec: TileSpec, read: ReadOptions, fractions: bool = True) -> None:
        self.spec, self.read, self.fractions = spec, read, fractions

    def process(self, task: TileTask) -> Iterator:
        def keep(reader: SceneReader, read: TileRead) -> Iterator[TileImage]:
            yield TileImage(read.tile, task.source, reader.bands, read.image, read.valid_fraction, task.aoi,
                            task.acquired or reader.acquired, reader.product, read.mask, read.mask_error)

        yield from screen_tiles(task.source, task.tiles, lambda: self.read.open(task.source),
                                self.spec.min_valid_fraction, keep, self.spec.skip_cloudier_than, self.fractions,
                                self.spec.read_threads)


class Tiles(beam.PTransform):
    """Scene items -> ``{"tiles": TileImage, "outcomes": outcome}``: enumerate on workers, spread, read
    (with the cloud mask's fractions unless ``fractions`` is false: chips do not carry them)."""

    def __init__(self, spec: TileSpec, read: ReadOptions, aois: Sequence[Aoi] | None = None,
                 fractions: bool = True, when: DateRange | None = None) -> None:
        super().__init__()
        self.spec, self.read, self.aois, self.fractions, self.when = spec, read, aois, fractions, when

    def expand(self, items: beam.PCollection) -> dict:
        enumerate_tiles = EnumerateTiles(self.spec, self.read, self.aois, self.when)
        tasks = items | "EnumerateTiles" >> beam.ParDo(enumerate_tiles).with_outputs(OUTCOMES, main="tasks")
        read = (tasks.tasks
                | "SpreadTasks" >> beam.Reshuffle()
                | "ReadTiles" >> beam.ParDo(ReadTiles(self.spec, self.read, self.fractions)).with_outputs(
                    OUTCOMES, main="tiles"))
        outcomes = (tasks[OUTCOMES], read[OUTCOMES]) | "TileOutcomes" >> beam.Flatten()
        return {"tiles": read.tiles, "outcomes": outcomes}
