"""A real Cloud Storage API server on localhost (the ``gcp-storage-emulator`` package), and the settings that
point each storage layer at it.

- The ``google-cloud-storage`` client (our :mod:`planet_core.storage` swaps, and Beam's ``gs://``
  filesystem, which is built on it) reads ``STORAGE_EMULATOR_HOST``.
- GDAL's ``/vsigs/`` (rasterio opening ``gs://`` scenes) reads ``CPL_GS_ENDPOINT``; ``GS_NO_SIGN_REQUEST``
  stops it looking for credentials. GDAL takes its configuration options from the environment too, so
  the DirectRunner's workers (threads of this process) inherit them.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Emulator:
    endpoint: str
    bucket: str

    def client(self):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(project="planet-tiles-test", credentials=AnonymousCredentials())

    def upload(self, local: Path, name: str) -> str:
        """Upload a local file (a symlink's target) as ``name``; return its ``gs://`` URI."""
        self.client().bucket(self.bucket).blob(name).upload_from_filename(str(Path(local).resolve()))
        return f"gs://{self.bucket}/{name}"

    def names(self, prefix: str = "") -> list[str]:
        return sorted(b.name for b in self.client().list_blobs(self.bucket, prefix=prefix))

    def download(self, name: str, local: Path) -> Path:
        local.parent.mkdir(parents=True, exist_ok=True)
        self.client().bucket(self.bucket).blob(name).download_to_filename(str(local))
        return local


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running(bucket: str = "planet-tiles-test") -> Iterator[Emulator]:
    """The emulator, in memory, with one bucket, and the environment pointing every layer at it."""
    from gcp_storage_emulator.server import create_server

    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=bucket)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    settings = {"STORAGE_EMULATOR_HOST": endpoint, "CPL_GS_ENDPOINT": endpoint + "/", "GS_NO_SIGN_REQUEST": "YES",
                "GOOGLE_CLOUD_PROJECT": "planet-tiles-test"}
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        yield Emulator(endpoint, bucket)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()
