"""Small file operations on local paths and ``gs://`` URIs, through Beam's ``FileSystems``.

Beam resolves the scheme, so the same call works on a laptop and on Dataflow workers. Beam is imported
inside each function: command-line help must not pay for it.
"""

from __future__ import annotations

import io
import posixpath


def _fs():  # noqa: ANN202 - Beam's FileSystems class
    from apache_beam.io.filesystems import FileSystems

    return FileSystems


def join(base: str, *parts: str) -> str:
    """Join path parts with ``/`` (works for both local paths and ``gs://`` URIs)."""
    return posixpath.join(base.rstrip("/"), *parts) if base else posixpath.join(*parts)


def read_bytes(path: str) -> bytes:
    if not _fs().exists(path):
        raise FileNotFoundError(path)
    with _fs().open(path) as handle:
        return handle.read()


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8")


def write_bytes(path: str, data: bytes) -> None:
    fs = _fs()
    parent = posixpath.dirname(path)
    if parent and "://" not in path and not fs.exists(parent):
        fs.mkdirs(parent)
    with fs.create(path) as handle:
        handle.write(data)


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def glob(pattern: str) -> list[str]:
    """Sorted paths matching a glob (``*``, ``?``, ``**``), or ``[pattern]`` if it names one file."""
    results = _fs().match([pattern])[0].metadata_list
    return sorted(m.path for m in results)


def delete(paths: list[str]) -> None:
    if paths:
        _fs().delete(paths)


def exists(path: str) -> bool:
    return _fs().exists(path)


def copy_tree(src: str, dst: str) -> None:
    """Copy every file under ``src`` to the same relative place under ``dst``."""
    for path in glob(join(src, "**")):
        write_bytes(join(dst, posixpath.relpath(path, src)), read_bytes(path))


def open_binary(path: str) -> io.BufferedIOBase:
    return _fs().open(path)
