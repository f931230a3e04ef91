"""Chipping pipeline: raw scenes (or the Kaggle data set as published) -> 256-px chips in TFRecords.

    python -m pipelines.chip --scenes 'scenes/*.tif' --labels truth.geojson --output chips/

Writes a chip set (:mod:`planet_core.publishing`): the run's ``OUTPUT/runs/<run>/chips-*.tfrecord``
(records as :mod:`planet_model.records` describes) and ``errors.jsonl`` (one line per failed scene or
chip), then switches ``OUTPUT/manifest.json`` to them (``written + skipped + failed == enumerated``,
per-scene counts, the run's options). A run that fails as a whole, or writes nothing, changes nothing.

The launcher only lists scene files; each scene's tiles are enumerated on a worker and read in blocks
after a reshuffle, so a basin-wide job spreads over Dataflow workers. All Beam flags are accepted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import posixpath
from collections.abc import Iterator, Sequence

import apache_beam as beam

from pipelines import sources
from pipelines.geo import aoi as aois
from pipelines.geo import tiling
from pipelines.geo.grid import NATIVE
from pipelines.geo.ground_truth import PolygonTruth, TruthRules
from pipelines.sources.kaggle import KaggleChip, KaggleSet
from pipelines.sources.reader import ReadOptions, iter_blocks
from pipelines.steps import accounting
from pipelines.steps.accounting import FAILED, OUTCOMES, WRITTEN, outcome
from pipelines.steps.commits import ERRORS, PublishChips
from pipelines.steps.options import parse, pipeline_options, submitted_only
from pipelines.steps.progress import Progress
from pipelines.steps.tiles import TileImage, Tiles
from planet_core import commands, logs, publishing, storage
from planet_core.errors import RunFailed, UserError
from planet_core.labels import encode as encode_labels
from planet_model import kaggle, records
from planet_model.records import MANIFEST, Chip


def build_parser() -> argparse.ArgumentParser:
    parser = commands.parser("chip", __doc__)
    sources.add_arguments(parser, kaggle=True)
    parser.add_argument("--labels", help="ground truth: GeoJSON of polygons with a 'tag' property (EPSG:4326)")
    parser.add_argument("--output", required=True, help="output prefix (folder), local or gs://")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into an output folder that holds files this tool did not write (they are "
                             "left alone; the tool only ever deletes files its own manifests list)")
    parser.add_argument("--aoi", help="only tiles intersecting this area: a vector file GDAL reads (any CRS) or "
                                      "west,south,east,north")
    parser.add_argument("--min_label_coverage", type=float, default=0.01,
                        help="a land tag needs this share of a chip (outside clouds)")
    parser.add_argument("--compression", choices=("none", "gzip"), default="none",
                        help="TFRecord compression (default none: gzip makes chipping ~10x slower "
                             "for about 10%% smaller files of 16-bit imagery)")
    parser.add_argument("--skip_cloudier_than", type=float,
                        help="skip chips of which a larger share than this is not clear by their cloud mask (UDM2 "
                             "or SCL; e.g. 0.2 keeps chips at least 80%% clear; counted in the manifest as skipped "
                             "'cloudy'; default: keep every chip, clouds are a label)")
    tiling.add_arguments(parser, grid_default=NATIVE)
    return parser


def read_truth(path: str, min_coverage: float) -> PolygonTruth:
    """The ``--labels`` polygons; a file that is missing or not tagged GeoJSON is a :class:`UserError`
    naming the flag (checked before the pipeline starts, and read again by each worker)."""
    try:
        document = json.loads(storage.read_text(path))
        if not document.get("features"):  # a bare geometry, an empty collection: every chip would be untagged
            raise ValueError("no features")
        return PolygonTruth.from_geojson(document, TruthRules(min_coverage=min_coverage))
    except FileNotFoundError:
        raise UserError(f"--labels {path}: no such file") from None
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise UserError(f"--labels {path}: not GeoJSON polygons with a 'tag' property ({error})") from None


class GroundTruthChips(beam.DoFn):
    """A :class:`TileImage` -> a :class:`Chip` with its ground-truth tags (from the ``--labels`` polygons;
    none without them) and its ``written`` outcome."""

    def __init__(self, labels_path: str | None, min_label_coverage: float) -> None:
        self.labels_path, self.min_label_coverage = labels_path, min_label_coverage

    def setup(self) -> None:
        self.truth = read_truth(self.labels_path, self.min_label_coverage) if self.labels_path else None

    def process(self, item: TileImage) -> Iterator:
        tile, source = item.tile, item.source
        labels = encode_labels(self.truth.labels(tile)) if self.truth else None
        yield Chip(image=item.image, bands=item.bands, tile_id=tile.tile_id, scene_id=source.scene_id,
                   crs=tile.crs, transform=tile.transform, bounds=tile.bounds_wgs84(),
                   valid_fraction=item.valid_fraction, labels=labels, gsd_m=tile.ground_pixel_m(),
                   product=item.product)
        yield beam.pvalue.TaggedOutput(OUTCOMES, outcome(WRITTEN, source.scene_id, source.uri, tile.tile_id,
                                                         mask_error=item.mask_error))


class ReadKaggleChips(beam.DoFn):
    """Kaggle chips (``train_N.jpg`` RGB or ``train_N.tif`` BGRN uint16, no georeferencing) -> chips.

    They carry no georeferencing, so their ground sample distance is Planet's published figure for the
    256-px chips (:data:`planet_model.kaggle.GSD_M`), scaled by their size (a 32-px thumbnail of the same
    768 m has 24 m pixels: :func:`planet_model.kaggle.gsd_of`), and their product is what the format is:
    JPG = visual, TIF = analytic.
    """

    def __init__(self, kaggle_set: KaggleSet) -> None:
        self.kaggle_set = kaggle_set

    def process(self, block: list[KaggleChip]) -> Iterator:
        for chip in block:
            name, uri = chip.name, chip.uri
            try:
                image, bands = self.kaggle_set.read(chip)
            except FileNotFoundError:
                yield beam.pvalue.TaggedOutput(OUTCOMES, outcome(FAILED, name, uri, name, f"file not found: {uri}"))
                continue
            except Exception as error:  # noqa: BLE001 - one bad image must not stop the job
                yield beam.pvalue.TaggedOutput(OUTCOMES, outcome(FAILED, name, uri, name, f"read: {error}"))
                continue
            yield Chip(image=image, bands=bands, tile_id=name, scene_id=name, labels=encode_labels(chip.tags),
                       gsd_m=kaggle.gsd_of(image.shape[0]), product=self.kaggle_set.product)
            yield beam.pvalue.TaggedOutput(OUTCOMES, outcome(WRITTEN, name, uri, name))


#: Flags that say how scenes are found, read, cut and labelled: none of them touches the Kaggle data set,
#: whose chips are its images as they are, labelled by its CSV.
SCENE_ONLY = ("acquired", "product", "band_order", "cloud_mask", "labels", "aoi", "min_label_coverage",
              "skip_cloudier_than", "grid", "zoom", "cell_size", "utm_zone", "tile_size", "min_valid_fraction",
              "read_threads")


def check_args(args: argparse.Namespace, parser: argparse.ArgumentParser,
               ) -> tuple[tiling.TileSpec, ReadOptions, KaggleSet | None]:
    """Refuse contradictory inputs (``args``, parsed by ``parser``) before any work; return the tile spec,
    the read options and the Kaggle folders (``None``: scenes)."""
    if args.kaggle_csv or args.kaggle_images:
        given = [name for name in SCENE_ONLY if getattr(args, name) != parser.get_default(name)]
        if given:
            raise UserError(f"--{given[0]} applies to scenes, not to the Kaggle data set (--kaggle_csv, "
                            "--kaggle_images: its chips are its images as they are, labelled by its CSV)")
    kaggle_set = sources.kaggle_of(args)
    if kaggle_set is None and not (args.scenes or args.stac):
        raise UserError("no input: give --scenes, --stac, or --kaggle_csv with --kaggle_images")
    if args.cloud_mask == sources.masks.NONE and args.skip_cloudier_than is not None:
        raise UserError("--skip_cloudier_than needs the scenes' cloud masks; it cannot go with --cloud_mask none")
    if args.labels:
        read_truth(args.labels, args.min_label_coverage)
    elif args.min_label_coverage != parser.get_default("min_label_coverage"):
        raise UserError(f"--min_label_coverage {args.min_label_coverage} does nothing without --labels: chips "
                        "without ground truth have no tags to cover")
    try:
        return tiling.from_args(args), sources.read_options(args), kaggle_set
    except ValueError as error:
        raise UserError(str(error)) from None


def aoi_of(args: argparse.Namespace) -> list[aois.Aoi] | None:
    """``--aoi`` as the one AOI whose tiles are chipped (``None``: every tile of every scene)."""
    if not args.aoi:
        return None
    try:
        return [aois.Aoi("aoi", aois.parse_region(args.aoi))]
    except ValueError as error:
        raise UserError(f"--aoi: {error}") from None


def check_output(output: str, overwrite: bool) -> None:
    """Refuse an output folder holding files that no earlier chip manifest there lists (another person's
    chips, notes): a re-run replaces only what this tool wrote."""
    manifest = publishing.read(output, MANIFEST)
    ours = {storage.join(output, MANIFEST), storage.join(output, publishing.RUNS)}
    ours |= set(publishing.paths(output, (manifest or {}).get("files", [])))
    runs = storage.join(output, publishing.RUNS) + "/"
    foreign = [path for path in storage.glob(storage.join(output, "*"))
               if path not in ours and not path.startswith(runs)]
    if foreign and not overwrite:
        names = ", ".join(posixpath.basename(p) for p in foreign[:4]) + (
            f" and {len(foreign) - 4} more" if len(foreign) > 4 else ""
        )
        raise UserError(f"--output {output} holds files this tool did not write ({names}); choose an empty "
                         "folder, or pass --overwrite to write beside them (they are never deleted)")


def run(argv: Sequence[str] | None = None, save_main_session: bool = True) -> dict:
    """Run the chipping pipeline and return the chip set's new manifest."""
    parser = build_parser()
    args, beam_args = parse(parser, argv)
    spec, read, kaggle_set = check_args(args, parser)
    check_output(args.output, args.overwrite)
    storage.check_writable(args.output)
    region = aoi_of(args)
    found = kaggle_set.discover() if kaggle_set else sources.discover(args, region[0].geometry if region else None)
    this_run, started = publishing.new_run_id(), dt.datetime.now(dt.timezone.utc).isoformat()
    suffix = ".tfrecord.gz" if args.compression == "gzip" else ".tfrecord"
    run_info = {"pipeline": "chip", "started": started, "options": vars(args), "beam_args": list(beam_args)}
    options = pipeline_options(beam_args, save_main_session)
    folder = publishing.begin(args.output, MANIFEST, this_run, started)
    try:
        with beam.Pipeline(options=options) as pipeline:
            chips, outcomes = _chips(pipeline, args, spec, read, kaggle_set, found, region)
            written = (
                chips
                | "Progress" >> beam.ParDo(Progress("chip: chips cut"))
                | "Encode" >> beam.Map(records.encode)
                | "WriteChips" >> beam.io.WriteToTFRecord(
                    storage.join(folder, "chips"), file_name_suffix=suffix,
                    compression_type=beam.io.filesystem.CompressionTypes.GZIP if args.compression == "gzip"
                    else beam.io.filesystem.CompressionTypes.UNCOMPRESSED)
            )
            summary, errors = outcomes | "Account" >> accounting.Account(storage.join(folder, ERRORS))
            _ = summary | "Publish" >> beam.ParDo(PublishChips(args.output, this_run, run_info),
                                                   beam.pvalue.AsList(written), beam.pvalue.AsList(errors))
    except RunFailed as failed:  # refused as a whole: its folder stays (error lines) until the next publish
        raise RunFailed(str(failed)) from None
    except BaseException as error:
        why = publishing.abandon(args.output, MANIFEST, this_run)
        if why and isinstance(error, Exception):  # a later run published meanwhile, removing this one's folder
            raise RunFailed(why) from None
        if isinstance(error, Exception):
            raise RunFailed.of(error, "chip", f"the chip set in {args.output}",
                               publishing.published(args.output, MANIFEST, this_run)) from error
        raise
    if submitted_only(options):
        return {"submitted": True, "output": args.output}
    manifest = publishing.read(args.output, MANIFEST) or {}
    if manifest.get("run_id") != this_run:
        raise RunFailed(f"chip: run {this_run} finished, but {args.output}/{MANIFEST} names run "
                        f"{manifest.get('run_id')}: a run started later published after it")
    logging.info("chips: %(written)d written, %(skipped)d skipped, %(failed)d failed of %(enumerated)d", manifest)
    if manifest["failed"]:
        logging.warning("%d of %d items failed; their error lines are in %s", manifest["failed"],
                        manifest["enumerated"], storage.join(folder, ERRORS))
    return manifest


def _chips(pipeline: beam.Pipeline, args: argparse.Namespace, spec: tiling.TileSpec, read: ReadOptions,
           kaggle_set: KaggleSet | None, found: list, region: list[aois.Aoi] | None,
           ) -> tuple[beam.PCollection, beam.PCollection]:
    """The run's chips and the outcomes of every item (``found``: Kaggle chips or scene items)."""
    if kaggle_set is not None:
        results = (
            pipeline
            | "KaggleChips" >> beam.Create(list(iter_blocks(found, args.tiles_per_task)))
            | "SpreadBlocks" >> beam.Reshuffle()
            | "ReadImages" >> beam.ParDo(ReadKaggleChips(kaggle_set)).with_outputs(OUTCOMES, main="chips")
        )
        return results.chips, results[OUTCOMES]
    tiles = pipeline | "Scenes" >> beam.Create(found) | "Tiles" >> Tiles(spec, read, region, fractions=False,
                                                                       when=sources.acquired(args))
    chips = tiles["tiles"] | "GroundTruth" >> beam.ParDo(
        GroundTruthChips(args.labels, args.min_label_coverage)).with_outputs(OUTCOMES, main="chips")
    return chips.chips, (tiles["outcomes"], chips[OUTCOMES]) | "AllOutcomes" >> beam.Flatten()


def main(argv: Sequence[str] | None = None) -> None:
    logs.configure()
    manifest = run(argv)
    print(json.dumps({k: manifest[k] for k in ("enumerated", "written", "skipped", "failed", "submitted", "output")
                      if k in manifest}))
    print(f"manifest: {storage.join(manifest['options']['output'], MANIFEST)}")


if __name__ == "__main__":
    main()
