"""Published folders (chip sets, reports): one set of files at a time, switched atomically; nothing deleted
unless an earlier manifest listed it."""

import datetime as dt
import json
import multiprocessing

import pytest

from planet_core import publishing, storage
from planet_core.errors import RunFailed

MANIFEST = "manifest.json"


def write_run(folder, run_id, started, names=("a.txt", "b.txt")):
    run = publishing.begin(folder, MANIFEST, run_id, started)
    for name in names:
        storage.write_text(storage.join(run, name), f"{run_id} {name}")
    return [publishing.relative(folder, storage.join(run, name)) for name in names]


def age_replaced(folder, run_id, by):
    """Move the time set ``run_id`` was replaced back by ``by`` (a timedelta), as if that long had passed."""
    path = storage.join(folder, MANIFEST)
    manifest = json.loads(storage.read_text(path))
    when = dt.datetime.fromisoformat(manifest["replaced"][run_id]["replaced_at"])
    manifest["replaced"][run_id]["replaced_at"] = (when - by).isoformat()
    storage.write_text(path, json.dumps(manifest))


def test_publish_switches_to_the_new_set_and_keeps_the_old_for_its_readers_a_while(tmp_path):
    """A replaced set stays whole for RETAIN (a reader that opened it finishes), listed under ``replaced``;
    the first publish after that deletes exactly its files, a second before it deletes nothing."""
    folder = str(tmp_path / "set")
    first = write_run(folder, "r1", "2026-01-01T00:00:00")
    publishing.publish(folder, MANIFEST, "r1", {"files": first})
    (tmp_path / "set" / "notes.txt").write_text("mine")
    (tmp_path / "set" / "runs" / "r1" / "notes.txt").write_text("mine too")
    second = write_run(folder, "r2", "2026-01-02T00:00:00")
    replaced = publishing.publish(folder, MANIFEST, "r2", {"files": second, "count": 2})
    assert replaced["files"] == first and replaced["run_id"] == "r1"
    manifest = publishing.read(folder, MANIFEST)
    assert (manifest["files"], manifest["count"], manifest["run_id"], manifest["runs"]) == (second, 2, "r2", {})
    assert list(manifest["replaced"]) == ["r1"] and manifest["replaced"]["r1"]["files"] == first
    assert all((tmp_path / "set" / name).exists() for name in first), "a reader of r1 finishes"

    age_replaced(folder, "r1", publishing.RETAIN - dt.timedelta(minutes=1))
    publishing.publish(folder, MANIFEST, "r3", {"files": write_run(folder, "r3", "2026-01-03T00:00:00")})
    assert all((tmp_path / "set" / name).exists() for name in first), "just under RETAIN: still kept"
    assert sorted(publishing.read(folder, MANIFEST)["replaced"]) == ["r1", "r2"]

    age_replaced(folder, "r1", dt.timedelta(minutes=2))
    publishing.publish(folder, MANIFEST, "r4", {"files": write_run(folder, "r4", "2026-01-04T00:00:00")})
    assert not any((tmp_path / "set" / name).exists() for name in first)
    assert all((tmp_path / "set" / name).exists() for name in second)
    assert sorted(publishing.read(folder, MANIFEST)["replaced"]) == ["r2", "r3"]
    assert (tmp_path / "set" / "notes.txt").read_text() == "mine"
    assert (tmp_path / "set" / "runs" / "r1" / "notes.txt").read_text() == "mine too", "never a file it did not list"


def test_a_file_the_new_set_or_a_kept_set_lists_is_never_deleted_with_an_expired_set(tmp_path):
    """Sets may share files (a run listing one it kept from the set before): an expired set's file that a
    later set lists stays."""
    folder = str(tmp_path / "set")
    first = write_run(folder, "r1", "2026-01-01T00:00:00")
    publishing.publish(folder, MANIFEST, "r1", {"files": first})
    publishing.begin(folder, MANIFEST, "r2", "2026-01-02T00:00:00")
    publishing.publish(folder, MANIFEST, "r2", {"files": first[:1]})
    age_replaced(folder, "r1", publishing.RETAIN)
    publishing.begin(folder, MANIFEST, "r3", "2026-01-03T00:00:00")
    publishing.publish(folder, MANIFEST, "r3", {"files": first[1:]})
    assert all((tmp_path / "set" / name).exists() for name in first)


def test_a_killed_runs_folder_goes_with_the_next_publish_and_a_later_run_is_left_alone(tmp_path):
    folder = str(tmp_path / "set")
    write_run(folder, "killed", "2026-01-01T00:00:00")  # registered, wrote, never published
    mine = write_run(folder, "mine", "2026-01-02T00:00:00")
    write_run(folder, "later", "2026-01-03T00:00:00")  # started after mine, still running
    publishing.publish(folder, MANIFEST, "mine", {"files": mine})
    assert not (tmp_path / "set" / "runs" / "killed").exists()
    assert (tmp_path / "set" / "runs" / "later" / "a.txt").exists()
    assert publishing.read(folder, MANIFEST)["runs"] == {"later": "2026-01-03T00:00:00"}


def test_a_run_superseded_by_a_later_one_is_refused_and_changes_nothing(tmp_path):
    folder = str(tmp_path / "set")
    early = write_run(folder, "early", "2026-01-01T00:00:00")
    late = write_run(folder, "late", "2026-01-02T00:00:00")
    publishing.publish(folder, MANIFEST, "late", {"files": late})
    with pytest.raises(RunFailed, match="a run started after this one"):
        publishing.publish(folder, MANIFEST, "early", {"files": early})
    assert publishing.read(folder, MANIFEST)["files"] == late
    assert [p.name for p in (tmp_path / "set" / "runs").iterdir()] == ["late"], "the superseded run's folder went"


def test_abandon_removes_the_run_and_leaves_the_set(tmp_path):
    folder = str(tmp_path / "set")
    first = write_run(folder, "r1", "2026-01-01T00:00:00")
    publishing.publish(folder, MANIFEST, "r1", {"files": first})
    write_run(folder, "crashed", "2026-01-02T00:00:00")
    assert publishing.abandon(folder, MANIFEST, "crashed") is None
    assert publishing.read(folder, MANIFEST) == {**publishing.read(folder, MANIFEST), "files": first, "runs": {}}
    assert not (tmp_path / "set" / "runs" / "crashed").exists()


def test_a_run_that_crashes_after_a_later_run_published_learns_it_was_superseded(tmp_path):
    """The later run's publish removed the earlier run's folder, maybe under its writes: abandoning, the
    earlier run is told why it could not have published, as its own publish would have told it."""
    folder = str(tmp_path / "set")
    write_run(folder, "early", "2026-01-01T00:00:00")
    publishing.publish(folder, MANIFEST, "late", {"files": write_run(folder, "late", "2026-01-02T00:00:00")})
    assert not (tmp_path / "set" / "runs" / "early").exists()
    why = publishing.abandon(folder, MANIFEST, "early")
    assert why == f"{folder}: a run started after this one (late) published first; this run's output is older, " \
                  "so it was not published"
    assert publishing.read(folder, MANIFEST)["run_id"] == "late"


def test_abandoning_a_run_that_published_leaves_its_files_for_their_readers(tmp_path):
    """A launcher that loses its job's status after the job published (or is interrupted then) abandons a
    run that is the folder's current set, or one replaced and kept for readers: nothing is removed. (It
    removed the run's folder, leaving the manifest naming files that were gone.)"""
    folder = str(tmp_path / "set")
    first = write_run(folder, "r1", "2026-01-01T00:00:00")
    publishing.publish(folder, MANIFEST, "r1", {"files": first})
    before = publishing.read(folder, MANIFEST)
    assert publishing.published(folder, MANIFEST, "r1") and publishing.abandon(folder, MANIFEST, "r1") is None
    assert publishing.read(folder, MANIFEST) == before
    assert all(storage.exists(p) for p in publishing.paths(folder, first))
    second = write_run(folder, "r2", "2026-01-02T00:00:00")
    publishing.publish(folder, MANIFEST, "r2", {"files": second})
    assert publishing.published(folder, MANIFEST, "r1") and publishing.abandon(folder, MANIFEST, "r1") is None
    assert all(storage.exists(p) for p in publishing.paths(folder, first + second))
    write_run(folder, "r3", "2026-01-03T00:00:00")
    assert not publishing.published(folder, MANIFEST, "r3") and publishing.abandon(folder, MANIFEST, "r3") is None
    assert not (tmp_path / "set" / "runs" / "r3").exists()


def test_manifest_entries_reaching_outside_the_folder_are_ignored(tmp_path):
    """A manifest's names are read as paths in its folder; one that climbs out of it (``..``), an absolute
    path elsewhere or a URL is never a file of the set, so a run never deletes through it."""
    folder = str(tmp_path / "set")
    names = ["runs/r1/a.txt", "../elsewhere.txt", "runs/../../up.txt", "/etc/passwd", "gs://b/x", "",
             f"{folder}/runs/r1/b.txt"]
    assert publishing.paths(folder, names) == [f"{folder}/runs/r1/a.txt", f"{folder}/runs/r1/b.txt"]


def test_a_manifest_that_is_not_ours_is_refused(tmp_path):
    (tmp_path / MANIFEST).write_text("[1, 2]")
    with pytest.raises(Exception, match="not a manifest this tool wrote"):
        publishing.read(str(tmp_path), MANIFEST)


def _race(folder, number, barrier):
    run_id = f"r{number}"
    names = write_run(folder, run_id, f"2026-01-01T00:00:0{number}", names=[f"{i}.txt" for i in range(number + 1)])
    barrier.wait()
    try:
        publishing.publish(folder, MANIFEST, run_id, {"files": names})
    except RunFailed:
        pass


@pytest.mark.slow  # other processes or servers: not for `make check`
def test_concurrent_publishers_leave_one_complete_set(tmp_path):
    """Real processes publishing into one folder at once: the manifest names one run's files, all of which
    exist, and nothing else of any run is left but what a later-started run still owns."""
    folder = str(tmp_path / "set")
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    workers = [context.Process(target=_race, args=(folder, n, barrier)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0] * 4
    manifest = json.loads((tmp_path / "set" / MANIFEST).read_text())
    winner = manifest["run_id"]
    assert manifest["files"] == [f"runs/{winner}/{i}.txt" for i in range(int(winner[1:]) + 1)]
    assert all((tmp_path / "set" / name).exists() for name in manifest["files"])
    left = {p.relative_to(tmp_path / "set").as_posix() for p in (tmp_path / "set" / "runs").rglob("*") if p.is_file()}
    assert left == set(manifest["files"]) | {
        f"runs/{r}/{i}.txt" for r in manifest["runs"] for i in range(int(r[1:]) + 1)
    } | {name for kept in manifest["replaced"].values() for name in kept["files"]}, "the sets replaced stay a while"
    assert all(set(kept["files"]) <= left for kept in manifest["replaced"].values())


def test_the_current_link_moves_only_once_the_manifest_has(tmp_path, monkeypatch):
    """The link ``current`` followed the manifest inside its switch, before the manifest was written: a run
    killed between the two (a kill of the last of ``evaluate``'s test runs landed there) left the link on its
    folder, a version readers then saw though it never published, which the next publish deleted. Now the
    manifest is written first: a write that fails there leaves both on the earlier version, and once it
    succeeds the link follows."""
    import os

    folder = str(tmp_path / "out")
    first = write_run(folder, "r1", "2026-01-01T00:00:00")
    publishing.publish(folder, MANIFEST, "r1", {"files": first}, switched=lambda _: publishing.link(folder, "r1"))
    second = write_run(folder, "r2", "2026-01-02T00:00:00")
    replace = os.replace

    def killed_at_the_manifest(source, target):
        if str(target).endswith(MANIFEST):
            raise KeyboardInterrupt  # as a kill lands: the manifest not yet replaced
        return replace(source, target)

    monkeypatch.setattr(os, "replace", killed_at_the_manifest)
    with pytest.raises(KeyboardInterrupt):
        publishing.publish(folder, MANIFEST, "r2", {"files": second}, switched=lambda _: publishing.link(folder, "r2"))
    monkeypatch.undo()
    assert json.loads((tmp_path / "out" / MANIFEST).read_text())["run_id"] == "r1"
    assert os.readlink(tmp_path / "out" / publishing.LINK) == "runs/r1"
    publishing.publish(folder, MANIFEST, "r2", {"files": second}, switched=lambda _: publishing.link(folder, "r2"))
    assert os.readlink(tmp_path / "out" / publishing.LINK) == "runs/r2"
    assert (tmp_path / "out" / publishing.LINK / "a.txt").read_text() == "r2 a.txt"
