"""Shared test data: synthetic scenes and their chips, made once per session in a temporary folder."""

from __future__ import annotations

import fcntl
import json
import os
from collections import OrderedDict
from pathlib import Path

import pytest
from xdist.scheduler import LoadGroupScheduling
from xdist.workermanage import WorkerController

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
#: ``../shared/data`` beside the checkout; found from any copy of the tests below it (a snapshot, mutmut's
#: ``mutants/`` folder), the nearest first.
SHARED = next((folder / "shared" / "data" for folder in Path(__file__).resolve().parents
               if (folder / "shared" / "data").is_dir()), Path(__file__).resolve().parents[2] / "shared" / "data")
RASTERS = SHARED / "rasters"
TRAIN_CSV = SHARED / "planet" / "train_v2.csv"
RUNNER = ["--runner", "FnApiRunner"]


def run_here(*args: str) -> tuple[int, str]:
    """``planet-tiles ARGS`` in this process through the CLI's entry point, for runs that are neither killed
    nor raced (those need a process of their own): its exit code and what it wrote on stderr. A process
    would spend seconds loading Beam and TensorFlow again."""
    import contextlib
    import io

    from pipelines.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(list(args))
            code = 0
        except SystemExit as stopped:
            code = stopped.code if isinstance(stopped.code, int) else int(stopped.code is not None)
    return code, err.getvalue()


def refused(capsys: pytest.CaptureFixture, *args: str) -> str:
    """Run ``planet-tiles ARGS`` in this process (:func:`run_here`): it must exit 2 (bad usage) without a
    traceback. Returns what it printed on stderr."""
    code, stderr = run_here(*args)
    assert code == 2 and "Traceback" not in stderr, stderr
    return stderr


@pytest.fixture(scope="session")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 3 x 4 mosaic of 1024-px synthetic scenes (192 native chips) with merged ground truth."""
    from pipelines.sources import synthetic

    folder = tmp_path_factory.mktemp("scenes")
    specs = synthetic.mosaic(seed=7, rows=3, cols=4, size=1024)
    summaries = [synthetic.write_scene(spec, folder) for spec in specs]
    synthetic.merge_truth(summaries, folder / "truth.geojson")
    return {"folder": folder, "specs": specs, "summaries": summaries, "truth": folder / "truth.geojson"}


@pytest.fixture(scope="session")
def chips(scenes: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The mosaic chipped on the native grid with labels from the ground truth."""
    from pipelines import chip

    output = tmp_path_factory.mktemp("chips")
    manifest = chip.run([*RUNNER, "--scenes", str(scenes["folder"] / "*.tif"), "--labels", str(scenes["truth"]),
                         "--output", str(output)])
    return {"folder": output, "manifest": manifest}


@pytest.fixture(scope="session")
def simple_bundle(demo: dict) -> dict:
    """The session's one trained bundle, used by the model, scan and stream tests: the demo's simple_cnn
    (RGB, 64 px, ``demo.EPOCHS`` epochs on the chips of its training region, ``data``). Training is the
    suite's single largest cost; the demo's own test of training is this bundle."""
    from planet_model import bundle

    chips = Path(demo["chips"])
    return {"path": demo["bundle"], "meta": bundle.read_metadata(demo["bundle"]),
            "data": [str(chips / "train-1"), str(chips / "train-2")]}


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``planet-tiles demo`` run once, end to end, with its defaults (simple_cnn). Under pytest-xdist the
    first worker to need it runs it in the run's shared temporary folder while holding a lock there; the
    others wait for it and read its summary (the tests only read the demo's output, or copy it)."""
    from pipelines import demo as demo_module

    if "PYTEST_XDIST_WORKER" not in os.environ:  # one process (no xdist, or -p no:xdist): its own folder
        return demo_module.run(["--output", str(tmp_path_factory.mktemp("demo"))])
    shared = tmp_path_factory.getbasetemp().parent  # this run's folder, above each worker's own
    with open(shared / "demo.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed, or the process dies
        summary = shared / "demo.json"
        if not summary.exists():
            result = demo_module.run(["--output", str(shared / "demo")])
            summary.write_text(json.dumps(result))
        return json.loads(summary.read_text())


#: Fixtures that run pipelines or train models: tests using them are end to end (marker ``slow``).
SLOW_FIXTURES = {"scenes", "chips", "simple_bundle", "demo", "scanned", "streamed", "batch", "place", "chromium",
                 "gcs", "quad"}


#: Suffix of the ``xdist_group`` of a module's tests that need the demo (:func:`demo`).
NEEDS_DEMO = " (demo)"


@pytest.hookimpl(tryfirst=True)  # before xdist's, which reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the end-to-end tests ``slow``: those under ``tests/pipelines/`` and those using a fixture that
    runs a pipeline or trains. ``make check`` (``pytest -m "not slow"``) runs the rest in seconds.

    Each of them also gets an ``xdist_group``: its module, split in two where some of its tests need the
    demo and others do not. Under ``make test``'s workers (``--dist loadgroup``) a group runs on one worker,
    so its module fixtures are built once; :class:`DemoFirst` orders the groups. Session fixtures are built
    once per worker (``scenes``, ``chips``: seconds), except the demo."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))  # the closure: the demo also through simple_bundle
        if "pipelines" in item.path.parts[-2:-1] or SLOW_FIXTURES & fixtures:
            item.add_marker(pytest.mark.slow)
            group = str(item.path.relative_to(Path(__file__).parent))
            if "demo" in fixtures:
                group += NEEDS_DEMO
            item.add_marker(pytest.mark.xdist_group(group))


class DemoFirst(LoadGroupScheduling):
    """``--dist loadgroup`` with the groups in the order that keeps both cores busy while the demo runs
    (the suite's largest cost, minutes): the largest group that needs the demo goes first, so that the
    first worker starts the demo at once; the groups that do not need it follow, so that the other workers
    have work meanwhile instead of waiting for the demo; then the other groups that need it. Within each
    part, the largest first (xdist's own order)."""

    def __init__(self, config: pytest.Config, log: object = None) -> None:
        super().__init__(config, log)
        self.ordered = False

    def _assign_work_unit(self, node: WorkerController) -> None:
        if not self.ordered:
            self.ordered = True
            queue = list(self.workqueue.items())  # the largest first
            # A test's nodeid as its scope (a group name has no "::") where every test has a group, in
            # tests/pipelines/ (wherever pytest was started from), means xdist's groups were lost.
            alone = [scope for scope, _ in queue if "::" in scope and "pipelines/" in scope.split("::")[0]]
            if alone:
                raise RuntimeError(f"{alone[0]} has no xdist group: this pytest and pytest-xdist ignore the groups "
                                   "(pytest-dev/pytest-xdist#1386); install the versions setup.py pins")
            demo = [unit for unit in queue if unit[0].endswith(NEEDS_DEMO)]
            rest = [unit for unit in queue if not unit[0].endswith(NEEDS_DEMO)]
            self.workqueue = OrderedDict(demo[:1] + rest + demo[1:])
        super()._assign_work_unit(node)


@pytest.hookimpl(optionalhook=True)  # a hook of xdist's: none without it (-p no:xdist)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> LoadGroupScheduling | None:
    """:class:`DemoFirst` for ``--dist loadgroup``; xdist's own scheduler otherwise."""
    return DemoFirst(config, log) if config.getoption("dist") == "loadgroup" else None


@pytest.fixture()
def status_lost_after_the_job(monkeypatch):
    """Beam's run does the whole job, then the launcher fails as one that lost its job's status would (the
    Dataflow service unreachable after the job's last step)."""
    import apache_beam as beam

    ran = beam.Pipeline.run

    def run_then_fail(self, *args, **kwargs):
        ran(self, *args, **kwargs)
        raise ConnectionError("lost the job's status")

    monkeypatch.setattr(beam.Pipeline, "run", run_then_fail)
