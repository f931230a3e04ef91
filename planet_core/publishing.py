"""A published folder: a manifest names the folder's current set of files, and runs switch it atomically.

Chip sets (``chip --output``: ``manifest.json``), reports (``report --output``: ``current.json``) and
evaluations (``evaluate --output``: ``evaluations.json``) are published this way:

    FOLDER/<manifest>                  the current set: its files (names relative to FOLDER), the run that
                                       wrote them, its facts; and the runs registered and not yet published
    FOLDER/runs/<run>/...              each run's files
    FOLDER/current                     reports and evaluations, on local disks: a link to the current run's
                                       folder, moved once the manifest is written (:func:`new_version`)

A run registers itself in the manifest before it writes anything (:func:`begin`), writes only into its
own folder, and when it is complete switches the manifest to its files (:func:`publish`). Readers read
the files the manifest lists (:func:`read`), never a listing, so what a failed or killed run wrote is
invisible, and a run that publishes nothing changes nothing.

Deletion follows one rule: a file is deleted only if an earlier manifest of this folder lists it, either
as a set it replaced or as the folder of a run registered in it. A replaced set stays, listed under
``replaced`` in the manifest, for :data:`RETAIN` after it was replaced: a reader that opened it before the
switch (a training run reading a chip set epoch after epoch, an export, a page open in a browser)
finishes on whole files, as Iceberg keeps a replaced snapshot's files until the snapshot expires. A
publish deletes the sets replaced longer ago than that (and their folders, once empty: a file someone
put beside them stays) and the folders of runs registered before the publishing one that never
published (killed, or superseded: a run that would publish after a run started later is refused, since
its output is older; no reader ever had their files). No name patterns. The manifest is switched with
:func:`planet_core.storage.swap` (a generation precondition on Cloud Storage, a lock on local disks), so
concurrent runs never interleave.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
from collections.abc import Callable, Sequence
from typing import Any

from planet_core import storage
from planet_core.errors import RunFailed, UserError

log = logging.getLogger(__name__)

RUNS = "runs"
#: On local disks, a link beside the manifest to the current version's folder (``FOLDER/current/...``).
LINK = "current"
#: How long a replaced set stays readable: the scans table's own orphans wait as long (Iceberg's default).
RETAIN = dt.timedelta(days=3)


def new_run_id() -> str:
    """A sortable id for one run: UTC time to the second plus randomness, used in file and folder names."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def run_folder(folder: str, run_id: str) -> str:
    """Where run ``run_id`` writes its files."""
    return storage.join(folder, RUNS, run_id)


def read(folder: str, manifest: str) -> dict | None:
    """The folder's manifest, or None when it has none. A manifest this tool did not write is a
    :class:`UserError` naming it."""
    path = storage.join(folder, manifest)
    if not storage.exists(path):
        return None
    return _parse(storage.read_bytes(path), path)


def _parse(data: bytes | None, path: str) -> dict:
    if not data:
        return {}
    try:
        parsed = json.loads(data)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise UserError(f"{path}: not a manifest this tool wrote (not a JSON object); choose another folder")
    return parsed


def paths(folder: str, names: Sequence[str]) -> list[str]:
    """Manifest entries (names relative to the folder; older manifests held absolute paths) as paths in
    ``folder``. Entries that point outside the folder are ignored: a run never reaches outside it."""
    prefix = folder.rstrip("/") + "/"
    found = []
    for entry in names:
        if entry.startswith(prefix):
            entry = entry[len(prefix):]
        if entry and not entry.startswith("/") and ".." not in entry.split("/") and "://" not in entry:
            found.append(storage.join(folder, entry))
    return found


def relative(folder: str, path: str) -> str:
    """A path in ``folder`` as the manifest names it."""
    prefix = folder.rstrip("/") + "/"
    if not path.startswith(prefix):
        raise ValueError(f"{path} is not in {folder}")
    return path[len(prefix):]


def begin(folder: str, manifest: str, run_id: str, started: str) -> str:
    """Register run ``run_id`` (started at ``started``, ISO 8601) in the manifest before it writes anything;
    return the folder it writes into."""
    path = storage.join(folder, manifest)

    def register(current: bytes | None) -> bytes:
        found = _parse(current, path)
        found.setdefault("runs", {})[run_id] = started
        return json.dumps(found, indent=2).encode()

    storage.swap(path, register)
    return run_folder(folder, run_id)


def _superseded_by(folder: str, found: dict) -> str:
    return (f"{folder}: a run started after this one ({found.get('run_id')}) published first; this run's output is "
            "older, so it was not published")


def publish(folder: str, manifest: str, run_id: str, content: dict[str, Any],
            switched: Callable[[dict], None] | None = None) -> dict:
    """Switch the folder to the run's files (``content["files"]``, names relative to ``folder``; the rest of
    ``content`` is the run's facts), keep the set it replaces for :data:`RETAIN`, and delete the sets
    replaced longer ago and the folders of runs registered before this one. ``switched(new manifest)``
    runs once the manifest is replaced, before another run can switch it (under the lock, on local
    disks): what must follow the manifest, such as a link to the current version. (Run before the
    manifest was written, a kill between the two left the link on a run that never published.) A run
    that is no longer registered was superseded by a later run that published: :class:`RunFailed`, its
    folder removed, and nothing else changes. Returns the replaced manifest."""
    path = storage.join(folder, manifest)
    replaced: dict = {}
    new: dict = {}
    expired: list[str] = []  # files of the sets replaced longer ago than RETAIN

    def switch(current: bytes | None) -> bytes:  # on Cloud Storage maybe called again: the last call holds
        nonlocal replaced, new, expired
        replaced = _parse(current, path)
        runs = dict(replaced.get("runs", {}))
        if run_id not in runs:
            raise RunFailed(_superseded_by(folder, replaced))
        mine = (runs.pop(run_id), run_id)
        now = dt.datetime.now(dt.timezone.utc)
        sets = dict(replaced.get("replaced", {}))
        if replaced.get("files"):
            sets[replaced.get("run_id", "")] = {"files": replaced["files"], "replaced_at": now.isoformat()}
        retained = {r: v for r, v in sets.items() if now - dt.datetime.fromisoformat(v["replaced_at"]) < RETAIN}
        expired = [name for r, v in sets.items() if r not in retained for name in v["files"]]
        new = {**content, "run_id": run_id, "runs": {other: at for other, at in runs.items() if (at, other) > mine},
               "replaced": retained}
        return json.dumps(new, indent=2).encode()

    try:
        storage.swap(path, switch, then=None if switched is None else lambda: switched(new))
    except RunFailed:  # superseded: no manifest names this run any more, so its folder is its own to remove
        storage.delete_tree(run_folder(folder, run_id))
        raise
    listed = set(paths(folder, new["files"] + [name for v in new["replaced"].values() for name in v["files"]]))
    storage.delete([p for p in paths(folder, expired) if p not in listed and storage.exists(p)])
    started = replaced.get("runs", {})
    mine = (started.get(run_id), run_id)
    for other, at in started.items():
        if other != run_id and (at, other) < mine:
            storage.delete_tree(run_folder(folder, other))
    for name in expired:  # the expired sets' run folders, once nothing else is in them
        parts = name.split("/")
        if len(parts) > 2 and parts[0] == RUNS and parts[1] != run_id:
            storage.delete_empty_folders(run_folder(folder, parts[1]))
    return replaced


def abandon(folder: str, manifest: str, run_id: str) -> str | None:
    """A run that crashed removes its own folder and its registration; the folder stays as it was. (A run
    refused as a whole keeps its folder, for its error lines, and its registration, so the next run that
    publishes removes it.) A run that had published before it crashed (:func:`published`: a launcher that
    lost its job's status after the job's last step) is left as it is: its folder is what readers read.
    Returns why the run could not have published when a run started after it published first (its
    registration was gone, and its folder with it: the likely cause of the crash, which then says that
    instead), else ``None``."""
    path = storage.join(folder, manifest)
    if published(folder, manifest, run_id):
        return None
    why = None

    def unregister(current: bytes | None) -> bytes:
        nonlocal why
        found = _parse(current, path)
        runs = found.get("runs", {})
        why = None if run_id in runs else _superseded_by(folder, found)
        runs.pop(run_id, None)
        return json.dumps(found, indent=2).encode()

    storage.delete_tree(run_folder(folder, run_id))
    if storage.exists(path):
        storage.swap(path, unregister)
    return why


def published(folder: str, manifest: str, run_id: str) -> bool:
    """Whether run ``run_id``'s files are the folder's current set, or a replaced set kept for readers."""
    found = read(folder, manifest) or {}
    return found.get("run_id") == run_id or run_id in found.get("replaced", {})


def new_version(folder: str, manifest: str, write: Callable[[str, str], tuple[dict, list[str]]],
                main_file: str, what: str) -> tuple[dict, str]:
    """One run of a command whose output is a versioned folder (``report``, ``evaluate``): registered in the
    manifest, ``write(run folder, run id)`` -> ``(facts, paths written)`` into its own folder, then published
    with the link :data:`LINK` moved after the manifest. A run that fails removes its folder and registration
    (a :class:`UserError` as it is; one superseded by a later run that published first says so, as a
    :class:`RunFailed`), leaving the folder as it was. Returns the facts and where the version is read (the
    link on local disks). ``main_file`` and ``what`` name the output for :func:`note_earlier_layout`."""
    run_id, started = new_run_id(), dt.datetime.now(dt.timezone.utc).isoformat()
    note_earlier_layout(folder, manifest, main_file, what)
    mine = begin(folder, manifest, run_id, started)
    try:
        facts, written = write(mine, run_id)
    except UserError:
        abandon(folder, manifest, run_id)
        raise
    except BaseException as error:
        why = abandon(folder, manifest, run_id)
        if why and isinstance(error, Exception):  # a later run published meanwhile, removing this one's folder
            raise RunFailed(why) from None
        raise
    publish(folder, manifest, run_id, {"started": started, **facts,
                                       "files": [relative(folder, path) for path in written]},
            switched=lambda _: link(folder, run_id))
    return facts, current(folder, mine)


def link(folder: str, run_id: str) -> None:
    """Point ``FOLDER/current`` (:data:`LINK`) at run ``run_id``'s folder (a relative link, replaced atomically):
    pass as ``publish``'s ``switched``, so that the link moves with the manifest. Local disks only; on
    Cloud Storage readers follow the manifest."""
    if "://" in folder:
        return
    temporary = os.path.join(folder, f".{LINK}-{run_id}")
    os.symlink(f"{RUNS}/{run_id}", temporary)
    os.replace(temporary, os.path.join(folder, LINK))


def current(folder: str, run_folder_: str) -> str:
    """Where the published version of ``folder`` is read: the link :data:`LINK` on local disks, else the run's
    own folder ``run_folder_``."""
    return storage.join(folder, LINK) if "://" not in folder else run_folder_


def note_earlier_layout(folder: str, manifest: str, main_file: str, what: str) -> None:
    """Outputs written before versions put their files straight into the folder: they are left alone (the tools
    never delete what no manifest of theirs lists), with a line saying where ``what`` is now."""
    if not storage.exists(storage.join(folder, manifest)) and storage.exists(storage.join(folder, main_file)):
        log.warning("%s: its %s and the files beside it are an earlier %s's, left as they are; the %s is now %s",
                    folder, main_file, what, what, storage.join(folder, LINK, main_file))
