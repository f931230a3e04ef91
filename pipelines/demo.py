"""The whole product on built-in data: scenes -> chips -> model -> three scans -> alerts -> report.

    planet-tiles demo [--output demo-output] [--arch simple_cnn]

1. Synthesise two regions of the same size: a training region, acquired twice (so that training sees
   clearings and burn scars too), and the region to watch, acquired on three dates a few weeks apart,
   the second and third with new clearings, roads and burn scars in known places
   (``truth/planted.geojson``) under their own weather: where the second date's UDM2 says a tile is
   too hazy or cloudy to judge, the third confirms the change, as a later pass does in monitoring.
2. Chip the training region's acquisitions on the native grid with their ground-truth labels.
3. Train (``simple_cnn`` by default so that it finishes on a laptop; ``--arch inception_v3`` for the
   study's model, with ``--weights``) and write a bundle.
4. Scan the watched region on each date with the bundle (UTM tiles, the scans' Iceberg table).
5. Detect changes, delineate the cleared polygons of each event, score both against the planted places
   and write the report.

Every stage is a real run of the same code the commands run; each prints what it is doing and how
long it took, and the last lines say where everything is.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import mapping, shape

from pipelines import chip, scan
from pipelines.analysis import report
from pipelines.geo.grid import scene_footprint
from pipelines.sources import synthetic
from planet_core import commands, logs
from planet_model import train as training

TRAIN_ROW_OFFSET = 4  # the training region lies south of the watched one, with a gap of one scene
#: The simple CNN's epochs: fewer leave its validation F2 at the mercy of the initialisation (0.86 at 30,
#: even with a higher learning rate and a cosine schedule, against 0.90 to 0.91 at 80).
EPOCHS = 80


def build_parser() -> argparse.ArgumentParser:
    p = commands.parser("demo", __doc__)
    p.add_argument("--output", default="demo-output", help="folder for everything the demo makes")
    p.add_argument("--seed", type=int, default=7, help="seed of the synthetic scenes (the same seed, the same land)")
    p.add_argument("--rows", type=int, default=3, help="scenes north to south in each region")
    p.add_argument("--cols", type=int, default=4, help="scenes west to east in each region")
    p.add_argument("--size", type=int, default=1024, help="scene size in pixels (3 m)")
    p.add_argument("--dates", nargs=3, default=["2026-06-01", "2026-07-13", "2026-07-27"],
                   metavar=("FIRST", "SECOND", "THIRD"),
                   help="the acquisition and scan dates of the watched region (the land changes after the first)")
    p.add_argument("--arch", choices=("simple_cnn", "inception_v3"), default="simple_cnn",
                   help="the model to train (inception_v3 is the study's, slow on a laptop)")
    p.add_argument("--weights", default="none", help="Inception V3 weights: imagenet, none or a local file")
    p.add_argument("--epochs", type=int, default=EPOCHS, help="epochs of the first (or only) training stage")
    p.add_argument("--finetune_epochs", type=int, default=10, help="Inception V3 fine-tuning epochs")
    p.add_argument("--batch_size", type=int, default=32, help="training batch size")
    return p


class Stages:
    """Numbered stages with their timings, printed as they start and end."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.started = total, 0, time.perf_counter()

    def run(self, name: str, step: Callable[[], Any]) -> Any:
        self.done += 1
        print(f"[{self.done}/{self.total}] {name} ...", flush=True)
        t = time.perf_counter()
        result = step()
        print(f"[{self.done}/{self.total}] {name}: done in {time.perf_counter() - t:.0f} s", flush=True)
        return result

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def synthesise(out: Path, args: argparse.Namespace) -> dict:
    """Scenes of both regions; returns their folders, the watched AOI and the planted places."""
    first, second, third = (f"{d}T13:30:00+00:00" for d in args.dates)
    watched = synthetic.mosaic(args.seed, args.rows, args.cols, args.size, acquired=first)
    training = [dataclasses.replace(s, seed=s.seed + 500, row=s.row + args.rows + 1)
                for s in synthetic.mosaic(args.seed, args.rows, args.cols, args.size, acquired=first)]
    acquisitions = {
        "train-1": training,
        "train-2": [synthetic.later(s, second, disturbance_seed=s.seed + 1) for s in training],
        "watch-1": watched,
        "watch-2": [synthetic.later(s, second, disturbance_seed=s.seed + 1) for s in watched],
        # The same changed land under other weather.
        "watch-3": [dataclasses.replace(synthetic.later(s, third, disturbance_seed=s.seed + 1),
                                        weather_seed=s.seed * 7919 + 3) for s in watched],
    }
    folders, planted = {}, []
    for name, specs in acquisitions.items():
        folder = out / "scenes" / name
        summaries = [synthetic.write_scene(spec, folder) for spec in specs]
        synthetic.merge_truth(summaries, folder / "truth.geojson")
        folders[name] = folder
        print(f"    {name}: {len(specs)} scenes of {args.size} px in {folder}", flush=True)
        if name == "watch-2":
            planted = [{"type": "Feature", "properties": {"tag": p["tag"], "scene_id": s["scene_id"]},
                       "geometry": p["geometry"]} for s in summaries for p in s["planted"]]
    truth = out / "truth" / "planted.geojson"
    truth.parent.mkdir(parents=True, exist_ok=True)
    truth.write_text(json.dumps({"type": "FeatureCollection", "features": planted}))
    footprints = [scene_footprint(synthetic.CRS, s.transform, s.width, s.height) for s in watched]
    aoi = out / "truth" / "watched.geojson"
    outline = shapely.union_all(footprints).buffer(-0.001)
    aoi.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "watched"}, "geometry": shapely.geometry.mapping(outline)}]}))
    return {"folders": folders, "planted": truth, "aoi": aoi}


def chip_training(out: Path, scenes: dict) -> Path:
    chips = out / "chips"
    for name in ("train-1", "train-2"):
        folder = scenes["folders"][name]
        manifest = chip.run(["--scenes", str(folder / "*.tif"), "--labels", str(folder / "truth.geojson"),
                             "--output", str(chips / name)])
        print(f"    {name}: {manifest['written']} chips written, {manifest['skipped']} skipped, "
              f"{manifest['failed']} failed", flush=True)
    return chips


def train(out: Path, chips: Path, args: argparse.Namespace) -> Path:
    bundle = out / "bundle"
    argv = ["--data", str(chips / "train-1"), str(chips / "train-2"), "--output", str(bundle),
            "--arch", args.arch, "--head_epochs", str(args.epochs), "--batch_size", str(args.batch_size),
            "--verbose", "2"]
    if args.arch == "inception_v3":
        argv += ["--weights", args.weights, "--finetune_epochs", str(args.finetune_epochs)]
    meta = training.run(argv)
    print(f"    bundle {meta.version}: validation F2 {meta.metrics['searched']:.3f}", flush=True)
    return bundle


def scan_dates(out: Path, scenes: dict, bundle: Path, args: argparse.Namespace) -> Path:
    scans = out / "scans"
    for date, name in zip(args.dates, ("watch-1", "watch-2", "watch-3")):
        manifest = scan.run(["--aoi", str(scenes["aoi"]), "--aoi_name", "watched",
                             "--scenes", str(scenes["folders"][name] / "*.tif"), "--bundle", str(bundle),
                             "--output", str(scans), "--scan_date", date])
        print(f"    {date}: {manifest['enumerated']} tiles enumerated, {manifest['inferred']} inferred, "
              f"{manifest['skipped']} skipped, {manifest['failed']} failed", flush=True)
    return scans


def run(argv: Sequence[str] | None = None) -> dict:
    """Run every stage; return where everything is and the report's summary."""
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    out = Path(args.output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    stages = Stages(5)
    scenes = stages.run("synthesise scenes of a training region and a watched region on three dates",
                        lambda: synthesise(out, args))
    chips = stages.run("chip the training region", lambda: chip_training(out, scenes))
    bundle = stages.run(f"train {args.arch}", lambda: train(out, chips, args))
    scans = stages.run("scan the watched region on each date", lambda: scan_dates(out, scenes, bundle, args))

    zones = write_zones(scenes["aoi"], out / "zones.geojson")
    summary = stages.run("detect changes and write the report", lambda: report.run(
        ["--scans", str(scans), "--output", str(out / "report"), "--bundle", str(bundle),
         "--truth", str(scenes["planted"]), "--zones", str(zones)]))
    return {"output": str(out), "seconds": stages.elapsed, "scenes": {k: str(v) for k, v in scenes["folders"].items()},
            "planted": str(scenes["planted"]), "aoi": str(scenes["aoi"]), "chips": str(chips), "bundle": str(bundle),
            "scans": str(scans), "report": summary}


def write_zones(aoi: Path, path: Path) -> Path:
    """A zone to report on: a made-up reserve over the western half of the watched AOI."""
    region = shape(json.loads(aoi.read_text())["features"][0]["geometry"])
    west, south, east, north = region.bounds
    reserve = region.intersection(shapely.box(west, south, (west + east) / 2, north))
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "Reserva demo (western half)"}, "geometry": mapping(reserve)}]}))
    return path


def main(argv: Sequence[str] | None = None) -> None:
    logs.configure()
    done = run(argv)
    summary = done["report"]
    print(f"\ndemo finished in {done['seconds']:.0f} s. Everything is in {done['output']}:")
    for what, where in (("scenes", Path(done["output"]) / "scenes"), ("chips", done["chips"]),
                        ("model bundle", done["bundle"]), ("scans (Iceberg)", done["scans"]),
                        ("alerts", Path(summary["folder"]) / summary["files"]["alerts_parquet"]),
                        ("report", Path(summary["folder"]) / summary["files"]["report"])):
        print(f"  {what:<16} {where}")
    score = summary["truth"]
    print(f"  {summary['alerts']} alerts in {summary['events']} events "
          f"({', '.join(f'{n} {level}' for level, n in summary['alerts_by_confidence'].items())}, "
          f"{summary['retracted']} retracted); against the {score['places']} planted places: precision "
          f"{score['precision']:.2f}, recall {score['recall']:.2f} "
          f"({score['recall_visible']:.2f} of those a cloud-free tile saw)")
    inside = (score.get("clearings") or {}).get("in_events")
    if inside and inside["planted_ha"]:
        print(f"  {summary['cleared_ha']:.0f} ha cleared in {summary['clearings']} polygons, in "
              f"{summary['event_area_ha']:.0f} ha of event tiles; of the {inside['planted_ha']:.0f} ha planted where "
              f"events are: {inside['area_ratio']:.2f} found, mean IoU {inside['mean_iou'] or 0:.2f}, "
              f"{inside['false_ha']:.1f} ha outside it (all {score['clearings']['planted_ha']:.0f} ha planted: "
              f"{score['clearings']['area_ratio'] or 0:.2f} found)")
    print(f"Open the report in a browser: file://{Path(summary['folder']) / summary['files']['report']}")
    command = os.path.join(os.path.dirname(sys.executable), "planet-tiles")
    print(f"Query the scans locally: {command} query alerts --scans {done['scans']} "
          f"--param start_date={summary['scan_dates'][0]} --param end_date={summary['scan_dates'][-1]}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
