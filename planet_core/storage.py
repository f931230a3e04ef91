"""File operations on local paths and ``gs://`` URIs: the one storage layer. Local paths are read, written,
tested and deleted here directly; every other path (and any glob) through Beam's ``FileSystems``.

Everything that reads or writes a path a user gives (scenes lists, AOIs, regions, the Kaggle CSV and
images, bundles, chip manifests, scans, reports) goes through here, so every such flag takes local paths
and ``gs://`` alike. Beam resolves the other schemes, so the same call works on a laptop and on Dataflow
workers. Engines that must use their own IO say why where they do (GDAL's ``/vsigs/`` for rasters,
``tf.data`` for TFRecords, pyarrow and DuckDB for Parquet). Beam is imported inside each function:
command-line help must not pay for it.
"""

from __future__ import annotations

import fcntl
import os
import posixpath
import shutil
import tempfile
from collections.abc import Callable

from planet_core.errors import UserError


def _fs():  # noqa: ANN202 - Beam's FileSystems class
    from apache_beam.io.filesystems import FileSystems  # noqa: PLC0415 - Beam (1.6 s) only for paths that are not local; planet_model's commands never load it

    if os.environ.get("STORAGE_EMULATOR_HOST"):
        _anonymous_beam()
    return FileSystems


def _anonymous_beam() -> None:
    """Against a storage emulator (``STORAGE_EMULATOR_HOST``), Beam's ``gs://`` filesystem goes anonymous at
    once. Left to itself it looks for Google credentials four times with back-off first (about 21 s per
    process) before connecting anonymously, the only way an emulator is reached anyway. Beam offers no
    option for it: its credentials cache is marked as looked up, with none found."""
    from apache_beam.internal.gcp import auth  # noqa: PLC0415 - Beam, as in _fs

    with auth._Credentials._credentials_lock:  # noqa: SLF001 - see the docstring
        auth._Credentials._credentials_init = True  # noqa: SLF001 - see the docstring


def same_place(a: str, b: str) -> bool:
    """Whether two paths name one file or folder: local ones through any spelling or link (a ``file://``
    URI too), others as written but a trailing slash."""
    a, b = a.removeprefix("file://"), b.removeprefix("file://")
    if not (_local(a) and _local(b)):
        return a.rstrip("/") == b.rstrip("/")
    return os.path.realpath(a) == os.path.realpath(b)


def join(base: str, *parts: str) -> str:
    """Join path parts with ``/`` (works for both local paths and ``gs://`` URIs)."""
    return posixpath.join(base.rstrip("/"), *parts) if base else posixpath.join(*parts)


def _local(path: str) -> bool:
    """A path on this machine (no ``scheme://``): read, written and tested here without Beam's filesystems."""
    return "://" not in path


def read_bytes(path: str) -> bytes:
    if _local(path):
        with open(path, "rb") as handle:
            return handle.read()
    if not _fs().exists(path):
        raise FileNotFoundError(path)
    with _fs().open(path) as handle:
        return handle.read()


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8")


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


#: The mode ``open()`` gives a new file under this process's umask: ``mkstemp`` makes its files 0600, which
#: would leave manifests unreadable to the group that reads the data beside them.
_ORDINARY = 0o666 & ~_umask()


def write_bytes(path: str, data: bytes) -> None:
    """Write a whole file, never seen half-written: a Cloud Storage object appears when its upload
    completes; a local file is written under a temporary name in its folder and renamed into place."""
    if not _local(path):
        with _fs().create(path) as handle:
            handle.write(data)
        return

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".write-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temporary, _ORDINARY)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def glob(pattern: str) -> list[str]:
    """Sorted paths matching a glob (``*``, ``?``, ``**``), or ``[pattern]`` if it names one file."""
    results = _fs().match([pattern])[0].metadata_list
    return sorted(m.path for m in results)


def delete(paths: list[str]) -> None:
    """Delete files (a local folder with everything below it). Every path is tried; then one that could not
    be deleted (missing, not permitted) is an error naming it, as Beam's filesystems do for ``gs://``."""
    failed = []
    for path in filter(_local, paths):
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
        except OSError as error:
            failed.append(f"{path}: {error.strerror or error}")
    remote = [path for path in paths if not _local(path)]
    if remote:
        _fs().delete(remote)
    if failed:
        raise OSError(f"could not delete {len(failed)} of {len(paths)} paths: " + "; ".join(failed))


def exists(path: str) -> bool:
    return os.path.exists(path) if _local(path) else _fs().exists(path)


def modified(pattern: str) -> list[tuple[str, float]]:
    """``(path, last modified, seconds since the epoch)`` of the files matching ``pattern``, sorted."""
    results = _fs().match([pattern])[0].metadata_list
    return sorted((m.path, m.last_updated_in_seconds) for m in results)


def swap(path: str, make: Callable[[bytes | None], bytes], attempts: int = 20,
         then: Callable[[], None] | None = None) -> bytes | None:
    """Replace a small file with ``make(current content or None)``, atomically against concurrent swaps
    of the same file; returns the content it replaced. ``then()`` runs once the file is replaced, before
    any other swap of it can start (locally, still holding the lock): what must follow the file and no
    other writer's version of it.

    This is how a run switches a partition's manifest to its own files: every writer that replaces the
    manifest knows exactly which manifest (and so which files) it replaced, so two runs never delete
    each other's new files, and the last one to swap wins. On Cloud Storage the write carries a
    generation precondition (``ifGenerationMatch``; 0 means "must not exist yet") and is retried when
    another writer got there first; locally an exclusive ``flock`` on the file's folder serialises the
    read and an atomic ``os.replace``. ``make`` may raise to leave the file as it is.
    """
    if path.startswith("gs://"):
        replaced = _swap_gcs(path, make, attempts)
        if then is not None:
            then()
        return replaced
    return _swap_local(path, make, then)


def _swap_local(path: str, make: Callable[[bytes | None], bytes], then: Callable[[], None] | None) -> bytes | None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # The lock is the folder itself (flock on its descriptor): nothing is left behind, and every swap of a
    # file in the folder waits for the others.
    lock = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = None
        if os.path.exists(path):
            with open(path, "rb") as handle:
                current = handle.read()
        data = make(current)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".swap-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temporary, _ORDINARY)
            os.replace(temporary, path)
        except BaseException:
            if os.path.exists(temporary):
                os.remove(temporary)
            raise
        if then is not None:
            then()
        return current
    finally:
        os.close(lock)  # closing the descriptor releases the lock


def _swap_gcs(path: str, make: Callable[[bytes | None], bytes], attempts: int) -> bytes | None:
    from google.api_core.exceptions import NotFound, PreconditionFailed  # noqa: PLC0415 - the Cloud Storage client (0.3 s) only for gs:// paths
    from google.cloud import storage as gcs  # noqa: PLC0415 - the Cloud Storage client (0.3 s) only for gs:// paths

    bucket_name, _, name = path[len("gs://"):].partition("/")
    blob = gcs.Client().bucket(bucket_name).blob(name)
    for _ in range(attempts):
        try:
            blob.reload()
            generation, current = blob.generation, blob.download_as_bytes(if_generation_match=blob.generation)
        except NotFound:
            generation, current = 0, None
        except PreconditionFailed:
            continue  # replaced between the two requests: read again
        try:
            blob.upload_from_string(make(current), if_generation_match=generation)
            return current
        except PreconditionFailed:
            continue  # another writer swapped first: build on what it wrote
    raise RuntimeError(f"{path}: could not replace it after {attempts} attempts (too many concurrent writers)")


def delete_tree(folder: str) -> None:
    """Delete a folder and everything below it (every object under the prefix on Cloud Storage)."""
    if not _local(folder):
        delete(glob(join(folder, "**")))
        return

    shutil.rmtree(folder, ignore_errors=True)


def delete_empty_folders(folder: str) -> None:
    """Remove ``folder`` and the folders below it that hold no file (local disks; Cloud Storage has no
    folders)."""
    if not _local(folder):
        return

    if not os.path.isdir(folder):
        return
    for root, _, _ in sorted(os.walk(folder), key=lambda entry: -len(entry[0])):
        try:
            os.rmdir(root)
        except OSError:  # not empty: something else lives there
            pass


#: The file that says what a folder of these tools' outputs holds (each module owns its name; a test checks
#: they agree): a folder named for one output that holds another is a wrong folder named.
OUTPUTS = {"manifest.json": "a chip set", "current.json": "a report", "bundle.json": "a model bundle",
           "options.json": "a training run's work folder", "catalog.db": "a scans warehouse",
           "evaluations.json": "an evaluation"}


def check_own_folder(folder: str, mine: str, flag: str, needs: str) -> None:
    """Refuse, naming ``flag``, to write the output whose file is ``mine`` (one of :data:`OUTPUTS`) into a
    ``folder`` holding another kind (``needs`` says what the output needs instead): its files would land
    among the other's. A folder of the same kind is written again."""
    for name, what in OUTPUTS.items():
        if name != mine and exists(join(folder, name)):
            raise UserError(f"{flag} {folder}: holds {what} ({name}); {needs}")


def check_writable(folder: str) -> None:
    """Raise ``PermissionError`` naming ``folder`` when a local folder cannot be written (made and a file
    put in it), and a :class:`UserError` when it is a file (bad usage: the flag names the wrong path), before
    a run spends any work; Cloud Storage permissions are checked by the writes."""
    if not _local(folder):
        return

    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UserError(f"{folder}: a file, not a folder")
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise PermissionError(f"{folder}: cannot write there ({error.strerror or error})") from None
