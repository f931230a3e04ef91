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
import dataclasses
import datetime as dt
import json
import logging
import posixpath
from collections.abc import Iterator, Sequence

import apache_beam as beam

from pipelines.geo import aoi as aois
from pipelines.geo import tiling
from pipelines.geo.grid import NATIVE
from pipelines.geo.scenes import iter_blocks, resolve_sources
from pipelines.steps import accounting
from pipelines.steps.accounting import FAILED, OUTCOMES, WRITTEN, outcome
from pipelines.steps.commits import ERRORS, PublishChips
from pipelines.steps.options import parse, pipeline_options, submitted_only
from pipelines.steps.tiles import TileImage, Tiles
from planet_core import logs, publishing, storage
from planet_core.errors import RunFailed, UserError
from planet_core.imagery import PRODUCTS
from planet_core.labels import encode as encode_labels
from planet_model import kaggle, records
from planet_model.records import MANIFEST, Chip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="planet-tiles chip", description=__doc__.split("\n\n")[0])
    source = parser.add_argument_group("inputs")
    source.add_argument("--scenes", nargs="*", default=[], help="scene paths or globs, local or gs://")
    source.add_argument("--stac", help="a STAC ItemCollection JSON listing scenes")
    source.add_argument("--labels", help="GeoJSON of polygons with a 'tag' property (EPSG:4326)")
    source.add_argument("--kaggle_csv", help="Kaggle train_v2.csv (image_name,tags)")
    source.add_argument("--kaggle_images", help="folder of Kaggle train-jpg or train-tif-v2 images")
    source.add_argument("--kaggle_format", choices=("jpg", "tif"),
                        help="which Kaggle images to read (default: the kind the folder holds)")
    source.add_argument("--product", choices=[p for p in PRODUCTS if p != "unknown"],
                        help="what the scenes' values are (default: from the file and asset names)")
    parser.add_argument("--output", required=True, help="output prefix (folder), local or gs://")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into an output folder that holds files this tool did not write (they are "
                             "left alone; the tool only ever deletes files its own manifests list)")
    parser.add_argument("--aoi", help="only tiles intersecting this GeoJSON or west,south,east,north")
    parser.add_argument("--min_label_coverage", type=float, default=0.01,
                        help="a land tag needs this share of a chip (outside clouds)")
    parser.add_argument("--compression", choices=("none", "gzip"), default="none",
                        help="TFRecord compression (default none: gzip makes chipping ~10x slower "
                             "for about 10%% smaller files of 16-bit imagery)")
    parser.add_argument("--min_clear_fraction", type=float,
                        help="skip chips whose UDM2 says less than this share is clear (counted in the "
                             "manifest as skipped 'cloudy'; default: keep every chip, clouds are a label)")
    tiling.add_arguments(parser, grid_default=NATIVE)
    return parser


class LabelChips(beam.DoFn):
    """A :class:`TileImage` -> a labelled :class:`Chip` (labels from the ground-truth polygons) and its
    ``written`` outcome."""

    def __init__(self, labels_path: str | None, min_label_coverage: float) -> None:
        self.labels_path, self.min_label_coverage = labels_path, min_label_coverage

    def setup(self) -> None:
        self.labeller = None
        if self.labels_path:
            from pipelines.geo.labelling import LabelRules, PolygonLabeller

            document = json.loads(storage.read_text(self.labels_path))
            self.labeller = PolygonLabeller.from_geojson(document, LabelRules(min_coverage=self.min_label_coverage))

    def process(self, item: TileImage) -> Iterator:
        tile, source = item.tile, item.source
        labels = encode_labels(self.labeller.labels(tile)) if self.labeller else None
        yield Chip(image=item.image, bands=item.bands, tile_id=tile.tile_id, scene_id=source.scene_id,
                   crs=tile.crs, transform=tile.transform, bounds=tile.bounds_wgs84(),
                   valid_fraction=item.valid_fraction, labels=labels, gsd_m=tile.ground_pixel_m(),
                   product=item.product)
        yield beam.pvalue.TaggedOutput(OUTCOMES, outcome(WRITTEN, source.scene_id, source.uri, tile.tile_id,
                                                         mask_error=item.mask_error))


class ReadKaggleImages(beam.DoFn):
    """Kaggle chips (``train_N.jpg`` RGB or ``train_N.tif`` BGRN uint16, no georeferencing) -> chips.

    They carry no georeferencing, so their ground sample distance is Planet's published figure,
    :data:`planet_model.kaggle.GSD_M`, and their product is what the format is: JPG = visual, TIF = analytic.
    """

    def __init__(self, images: str, image_format: str) -> None:
        self.images, self.image_format = images, image_format

    def process(self, rows: list[tuple[str, list[str]]]) -> Iterator:
        product = kaggle.PRODUCTS[self.image_format]
        for name, tags in rows:
            uri = storage.join(self.images, f"{name}.{self.image_format}")
            try:
                image, bands = kaggle.read_image(uri, self.image_format)
            except FileNotFoundError:
                yield beam.pvalue.TaggedOutput(OUTCOMES, outcome(FAILED, name, uri, name, f"file not found: {uri}"))
                continue
            except Exception as error:  # noqa: BLE001 - one bad image must not stop the job
                yield beam.pvalue.TaggedOutput(OUTCOMES, outcome(FAILED, name, uri, name, f"read: {error}"))
                continue
            yield Chip(image=image, bands=bands, tile_id=name, scene_id=name, labels=encode_labels(tags),
                       gsd_m=kaggle.GSD_M, product=product)
            yield beam.pvalue.TaggedOutput(OUTCOMES, outcome(WRITTEN, name, uri, name))


def check_args(args: argparse.Namespace) -> tiling.TileSpec:
    """Refuse contradictory inputs before any work; return the tile spec."""
    from_kaggle = bool(args.kaggle_csv or args.kaggle_images)
    if from_kaggle and not (args.kaggle_csv and args.kaggle_images):
        raise UserError("--kaggle_csv and --kaggle_images go together")
    if from_kaggle and (args.scenes or args.stac):
        raise UserError("give either scenes (--scenes/--stac) or the Kaggle data set, not both")
    if not from_kaggle and not (args.scenes or args.stac):
        raise UserError("no input: give --scenes, --stac, or --kaggle_csv with --kaggle_images")
    if from_kaggle:
        args.kaggle_format = kaggle.image_format(args.kaggle_images, args.kaggle_format)
    try:
        return tiling.from_args(args, min_clear_fraction=args.min_clear_fraction)
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
        names = ", ".join(posixpath.basename(p) for p in foreign[:4]) + (f" and {len(foreign) - 4} more" if len(foreign) > 4 else "")
        raise UserError(f"--output {output} holds files this tool did not write ({names}); choose an empty "
                         "folder, or pass --overwrite to write beside them (they are never deleted)")


def run(argv: Sequence[str] | None = None, save_main_session: bool = True) -> dict:
    """Run the chipping pipeline and return the chip set's new manifest."""
    args, beam_args = parse(build_parser(), argv)
    spec = check_args(args)
    check_output(args.output, args.overwrite)
    storage.check_writable(args.output)
    region = aoi_of(args)
    this_run, started = publishing.new_run_id(), dt.datetime.now(dt.timezone.utc).isoformat()
    suffix = ".tfrecord.gz" if args.compression == "gzip" else ".tfrecord"
    run_info = {"pipeline": "chip", "started": started, "options": vars(args), "beam_args": list(beam_args)}
    options = pipeline_options(beam_args, save_main_session)
    folder = publishing.begin(args.output, MANIFEST, this_run, started)
    try:
        with beam.Pipeline(options=options) as pipeline:
            chips, outcomes = _chips(pipeline, args, spec, region)
            written = (
                chips
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
        publishing.abandon(args.output, MANIFEST, this_run)
        if isinstance(error, Exception):
            raise RunFailed.of(error, "chip", f"the chip set in {args.output}") from error
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


def _chips(pipeline: beam.Pipeline, args: argparse.Namespace, spec: tiling.TileSpec,
           region: list[aois.Aoi] | None) -> tuple[beam.PCollection, beam.PCollection]:
    """The run's chips and the outcomes of every item, from the Kaggle data set or from scenes."""
    if args.kaggle_csv:
        from planet_core.labels import read_kaggle_csv

        rows = list(read_kaggle_csv(args.kaggle_csv))
        results = (
            pipeline
            | "KaggleRows" >> beam.Create(list(iter_blocks(rows, args.tiles_per_task)))
            | "SpreadBlocks" >> beam.Reshuffle()
            | "ReadImages" >> beam.ParDo(ReadKaggleImages(args.kaggle_images, args.kaggle_format))
            .with_outputs(OUTCOMES, main="chips")
        )
        return results.chips, results[OUTCOMES]
    sources = [dataclasses.replace(s, product=args.product or s.product) for s in resolve_sources(args.scenes, args.stac)]
    tiles = pipeline | "Scenes" >> beam.Create(sources) | "Tiles" >> Tiles(spec, region)
    labelled = tiles["tiles"] | "LabelChips" >> beam.ParDo(
        LabelChips(args.labels, args.min_label_coverage)).with_outputs(OUTCOMES, main="chips")
    return labelled.chips, (tiles["outcomes"], labelled[OUTCOMES]) | "AllOutcomes" >> beam.Flatten()


def main(argv: Sequence[str] | None = None) -> None:
    logs.configure()
    manifest = run(argv)
    print(json.dumps({k: manifest[k] for k in ("enumerated", "written", "skipped", "failed", "submitted", "output")
                      if k in manifest}))
    print(f"manifest: {storage.join(manifest['options']['output'], MANIFEST)}")


if __name__ == "__main__":
    main()
