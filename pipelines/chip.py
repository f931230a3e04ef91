"""Chipping pipeline: raw scenes (or the Kaggle data set as published) -> 256-px chips in TFRecords.

    python -m pipelines.chip --scenes 'scenes/*.tif' --labels truth.geojson --output chips/

Writes ``OUTPUT/chips-*.tfrecord`` (records as :mod:`planet_model.records` describes),
``OUTPUT/errors-*.jsonl`` (one line per failed scene or chip) and ``OUTPUT/manifest.json``
(``written + skipped + failed == enumerated``, per-scene counts, the run's options).

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
from pipelines.steps.options import parse, pipeline_options, run_id, submitted_only
from pipelines.steps.tiles import TileImage, Tiles
from planet_model import kaggle, storage
from planet_model.errors import UserError
from planet_model.labels import encode as encode_labels
from planet_model.records import PRODUCTS, Chip

MANIFEST = "manifest.json"


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
    chips, notes): a re-run replaces only what this tool wrote, and training globs ``chips-*``."""
    manifest_path = storage.join(output, MANIFEST)
    ours = {manifest_path}
    if storage.exists(manifest_path):
        try:
            ours |= set(accounting.manifest_paths(output, json.loads(storage.read_text(manifest_path))))
        except ValueError:
            raise UserError(f"--output {output}: its {MANIFEST} is not one this tool wrote (not JSON); "
                             "choose another folder") from None
    foreign = [path for path in storage.glob(storage.join(output, "*"))
               if path not in ours and not path.endswith(".lock") and f"/{accounting.STAGING}" not in path
               and not ((run := accounting.RUN_FILE.match(posixpath.basename(path))) and run["kind"] in ("chips", "errors"))]
    if foreign and not overwrite:
        names = ", ".join(posixpath.basename(p) for p in foreign[:4]) + (f" and {len(foreign) - 4} more" if len(foreign) > 4 else "")
        raise UserError(f"--output {output} holds files this tool did not write ({names}); choose an empty "
                         "folder, or pass --overwrite to write beside them (they are never deleted)")


def run(argv: Sequence[str] | None = None, save_main_session: bool = True) -> dict:
    """Run the chipping pipeline and return its manifest."""
    args, beam_args = parse(build_parser(), argv)
    spec = check_args(args)
    check_output(args.output, args.overwrite)
    storage.check_writable(args.output)
    region = aoi_of(args)
    this_run = run_id()
    suffix = ".tfrecord.gz" if args.compression == "gzip" else ".tfrecord"
    run_info = {"pipeline": "chip", "run_id": this_run, "started": dt.datetime.now(dt.timezone.utc).isoformat(),
                "options": vars(args), "beam_args": list(beam_args)}
    options = pipeline_options(beam_args, save_main_session)
    with beam.Pipeline(options=options) as pipeline:
        if args.kaggle_csv:
            from planet_model.labels import read_kaggle_csv

            rows = list(read_kaggle_csv(args.kaggle_csv))
            results = (
                pipeline
                | "KaggleRows" >> beam.Create(list(iter_blocks(rows, args.tiles_per_task)))
                | "SpreadBlocks" >> beam.Reshuffle()
                | "ReadImages" >> beam.ParDo(ReadKaggleImages(args.kaggle_images, args.kaggle_format))
                .with_outputs(OUTCOMES, main="chips")
            )
            chips, outcomes = results.chips, results[OUTCOMES]
        else:
            sources = [dataclasses.replace(s, product=args.product or s.product)
                       for s in resolve_sources(args.scenes, args.stac)]
            tiles = pipeline | "Scenes" >> beam.Create(sources) | "Tiles" >> Tiles(spec, region)
            labelled = tiles["tiles"] | "LabelChips" >> beam.ParDo(
                LabelChips(args.labels, args.min_label_coverage)).with_outputs(OUTCOMES, main="chips")
            chips = labelled.chips
            outcomes = (tiles["outcomes"], labelled[OUTCOMES]) | "AllOutcomes" >> beam.Flatten()
        from planet_model import records

        written = (
            chips
            | "Encode" >> beam.Map(records.encode)
            | "WriteChips" >> beam.io.WriteToTFRecord(
                storage.join(accounting.staging(args.output, this_run), f"chips-{this_run}"),
                file_name_suffix=suffix + accounting.STAGED,
                compression_type=beam.io.filesystem.CompressionTypes.GZIP if args.compression == "gzip"
                else beam.io.filesystem.CompressionTypes.UNCOMPRESSED)
        )
        summary, errors = outcomes | "Account" >> accounting.Account(args.output, this_run)
        _ = summary | "Publish" >> beam.ParDo(accounting.Publish(args.output, MANIFEST, run_info),
                                               beam.pvalue.AsList(written), beam.pvalue.AsList(errors))
    if submitted_only(options):
        return {"submitted": True, "output": args.output}
    manifest = json.loads(storage.read_text(storage.join(args.output, MANIFEST)))
    logging.info("chips: %(written)d written, %(skipped)d skipped, %(failed)d failed of %(enumerated)d", manifest)
    accounting.fail_if_all_failed(manifest, "chip", args.output)
    return manifest


def main(argv: Sequence[str] | None = None) -> None:
    logging.getLogger().setLevel(logging.INFO)
    manifest = run(argv)
    print(json.dumps({k: manifest[k] for k in ("enumerated", "written", "skipped", "failed", "submitted", "output")
                      if k in manifest}))
    print(f"manifest: {posixpath.join(manifest['options']['output'], 'manifest.json')}")


if __name__ == "__main__":
    main()
