"""The scans table through an Iceberg REST catalog (the protocol BigLake speaks), on a local server: commits,
replacements by concurrent writers, snapshots and the query, by pyiceberg's real REST client."""

import contextlib
import datetime as dt
import io
import multiprocessing

import pytest
from shapely.geometry import box

from pipelines.analysis import queries
from pipelines.store import scans, schema
from pipelines.store.catalog import Warehouse
from planet_core import storage
from planet_core.labels import LABELS
from tests import tables
from tests.store.rest_catalog import serving

D1 = dt.date(2026, 6, 1)


def row(tile_id):
    return {"tile_id": tile_id, "scene_id": "s", "acquired": None, "geometry": box(0, 0, 1, 1).wkb, "lon": 0.5,
            "lat": 0.5, "area_m2": 1.0, "valid_fraction": 1.0, **{f"p_{n}": 0.0 for n in LABELS},
            "labels": ["clear", "primary"]}


def commit(location, url, tiles):
    warehouse = Warehouse(location, url)
    rows = [tables.complete(row(t), "a", D1) for t in tiles]
    return scans.write_rows(warehouse, D1.isoformat(), "a", rows,
                            {"run_id": f"r-{tiles[0]}", "partitions": [f"{D1}/a"], "bundle": f"b-{tiles[0]}"})


def _race(location, url, number, barrier):
    barrier.wait()
    commit(location, url, [f"w{number}-{i}" for i in range(number + 1)])


@pytest.mark.slow  # other processes or servers: not for `make check`
def test_a_rest_catalog_commits_replaces_and_serves_snapshots(tmp_path):
    with serving(tmp_path / "server") as (url, requests, _):
        location = str(tmp_path / "scans")
        commit(location, url, ["t1", "t2"])
        commit(location, url, ["t3"])
        warehouse = Warehouse(location, url)
        assert sorted(scans.read_arrow(warehouse).column("tile_id").to_pylist()) == ["t3"]
        assert [c.facts["bundle"] for c in scans.commits(warehouse)] == ["b-t3", "b-t1"]
        assert not (tmp_path / "scans" / "catalog.db").exists(), "the server holds the catalog"
        assert any(r.startswith("POST /v1/namespaces/planet_tiles/tables/tile_labels") for r in requests)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            queries.main(["latest_state", "--scans", location, "--catalog", url])
        assert len(printed.getvalue().splitlines()) == 1

        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(3)
        workers = [context.Process(target=_race, args=(location, url, n, barrier)) for n in range(3)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(120)
        assert [w.exitcode for w in workers] == [0, 0, 0]
        got = scans.read_arrow(warehouse).column("tile_id").to_pylist()
        writers = {t.split("-")[0] for t in got}
        assert len(writers) == 1 and len(got) == int(next(iter(writers))[1:]) + 1, got
        assert len(scans.commits(warehouse)) == 5


@pytest.mark.slow  # other processes or servers: not for `make check`
def test_a_commit_whose_answer_is_lost_is_found_committed_not_made_twice(tmp_path):
    """The catalog commits, then the gateway times out (504): pyiceberg cannot know whether the commit
    landed. The run looks before trying again, finds its own snapshot and reports it: one commit, not two."""
    with serving(tmp_path / "server") as (url, requests, server):
        location = str(tmp_path / "scans")
        commit(location, url, ["t1"])
        server.lose_answers = 1
        posted = sum(r.startswith("POST /v1/namespaces/planet_tiles/tables/tile_labels") for r in requests)
        snapshot_id = commit(location, url, ["t2", "t3"])
        warehouse = Warehouse(location, url)
        assert server.lose_answers == 0, "the answer was lost"
        assert [c.facts["run_id"] for c in scans.commits(warehouse)] == ["r-t2", "r-t1"]
        assert scans.commits(warehouse)[0].snapshot_id == snapshot_id
        assert sum(r.startswith("POST /v1/namespaces/planet_tiles/tables/tile_labels") for r in requests) == posted + 1
        assert sorted(scans.read_arrow(warehouse).column("tile_id").to_pylist()) == ["t2", "t3"]
        # A stream's window the same way: the retry finds its files in the table and adds none again.
        path = storage.join(scans.data_folder(warehouse, "2026-06-02", "a"), "part-w1.parquet")
        storage.write_bytes(path, schema.parquet_bytes([tables.complete(row("t4"), "a", dt.date(2026, 6, 2))],
                                                       schema.COLUMNS))
        server.lose_answers = 1
        assert scans.append_files(warehouse, [path], {"run_id": "w1"}) is None and server.lose_answers == 0
        assert [c.facts["run_id"] for c in scans.commits(warehouse)][:2] == ["w1", "r-t2"]
        assert sorted(scans.read_arrow(warehouse).column("tile_id").to_pylist()) == ["t2", "t3", "t4"]
