"""Where tables live and who commits them: a warehouse folder and its Apache Iceberg catalog.

A *warehouse* is the folder a user names (``scan --output``, ``report --scans``), local or ``gs://``. Its
tables are Iceberg tables in the namespace :data:`NAMESPACE`, each in a folder of its own
(``<warehouse>/<table>/data`` and ``/metadata``). A commit is one atomic switch of the table's metadata
in the catalog; readers read the file list of one snapshot and never list folders.

The catalog (``--catalog``):

- nothing: an embedded SQLite catalog beside the data (``<warehouse>/catalog.db``; pyiceberg's SQL catalog,
  no server to start). Local warehouses only: SQLite needs a local file system.
- ``biglake:PROJECT``: Google's BigLake metastore Iceberg REST catalog, whose catalog is the warehouse's
  bucket (``gcloud biglake iceberg catalogs create BUCKET --catalog-type=gcs-bucket``; Terraform makes it).
  BigQuery reads the same tables as ```PROJECT.BUCKET.planet_tiles.TABLE```. Credentials are Application
  Default Credentials.
- a SQLAlchemy URL (``sqlite:////path/catalog.db``, ``postgresql+psycopg2://...``): a SQL catalog there.
- ``https://...``: any Iceberg REST catalog (Lakekeeper, Polaris, Nessie...), anonymous or configured by
  pyiceberg's ``PYICEBERG_CATALOG__REST__*`` environment variables.
- any other word: a catalog of that name in pyiceberg's own configuration (``~/.pyiceberg.yaml`` or
  ``PYICEBERG_CATALOG__<NAME>__<PROPERTY>`` variables).

Files on ``gs://`` go through fsspec's ``gcsfs`` (pyiceberg's ``FsspecFileIO``): with
``STORAGE_EMULATOR_HOST`` set, to that server, anonymously (no credential look-up).
"""

from __future__ import annotations

import argparse
import logging
import os
import posixpath
from dataclasses import dataclass
from typing import Any

from pyiceberg.catalog import load_catalog

from planet_core import storage
from planet_core.errors import UserError

#: The namespace of every table: the BigQuery dataset's name too.
NAMESPACE = "planet_tiles"
#: The embedded catalog's file, beside the tables it commits.
EMBEDDED = "catalog.db"
BIGLAKE = "biglake:"
BIGLAKE_URI = "https://biglake.googleapis.com/iceberg/v1/restcatalog"

# gcsfs probes each bucket for Google's zonal/hierarchical-namespace features over gRPC first (an
# experiment it turns on by default); where gRPC cannot reach Cloud Storage (an emulator, a VPC-SC
# perimeter) every probe waits 60 s. The tables need neither feature.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
# pyiceberg says which file IO it picked at every table load: noise in a command's log.
logging.getLogger("pyiceberg.io").setLevel(logging.WARNING)


def add_argument(parser: argparse.ArgumentParser) -> None:
    """``--catalog``, for every command that writes or reads tables."""
    parser.add_argument("--catalog", help="the Iceberg catalog that commits the tables (default: an embedded SQLite "
                                          "catalog beside local data; biglake:PROJECT for BigLake metastore on "
                                          "Google Cloud; a SQLAlchemy URL; an https:// REST catalog; or a catalog "
                                          "name from pyiceberg's configuration)")


@dataclass(frozen=True)
class Warehouse:
    """A folder of tables and the catalog that commits them; plain strings, so Beam ships it to workers."""

    location: str
    catalog: str | None = None

    def __post_init__(self) -> None:
        if "://" in self.location and not self.location.startswith("gs://"):
            raise UserError(f"{self.location}: tables live on local disks or gs:// buckets")
        if self.catalog is None and "://" in self.location:
            raise UserError(f"{self.location}: a gs:// warehouse needs --catalog (biglake:PROJECT for the BigLake "
                            "metastore Iceberg REST catalog of the bucket, or another catalog): the embedded "
                            "SQLite catalog only works on a local disk")

    @property
    def local(self) -> bool:
        return "://" not in self.location

    def path(self, *parts: str) -> str:
        """A path inside the warehouse (absolute when local: the catalog records absolute locations)."""
        base = self.location if not self.local else os.path.abspath(self.location)
        return storage.join(base, *parts)

    def table_location(self, table: str) -> str:
        return self.path(table)

    def embedded(self) -> bool:
        return self.catalog is None

    def exists(self) -> bool:
        """Whether the warehouse has a catalog to read (the embedded one's file, or any other catalog)."""
        return not self.embedded() or os.path.exists(self.path(EMBEDDED))

    def check_own_folder(self, flag: str) -> None:
        """Refuse to make a warehouse in a folder holding another output of these tools (a chip set, a
        report, a bundle: ``flag`` named the wrong folder), whose files the tables would be made among."""
        if not self.exists():
            storage.check_own_folder(self.location, EMBEDDED, flag, "the scans' tables need a folder of their own")

    def properties(self) -> tuple[str, dict[str, Any]]:
        """The pyiceberg catalog name and properties this warehouse opens with."""
        io = _file_io(self.location)
        spec = self.catalog
        if spec is None:
            return "embedded", {
                "type": "sql",
                "uri": f"sqlite:///{self.path(EMBEDDED)}",
                "warehouse": self.path(),
                **io,
            }
        if spec.startswith(BIGLAKE):
            project = spec[len(BIGLAKE):]
            if not project or not self.location.startswith("gs://"):
                raise UserError(f"--catalog {spec}: write biglake:PROJECT, with a gs:// warehouse (its bucket is the "
                                "BigLake catalog)")
            bucket = self.location[len("gs://"):].split("/", 1)[0]
            return "biglake", {"type": "rest", "uri": BIGLAKE_URI, "warehouse": f"gs://{bucket}",
                               "auth": {"type": "google"}, "header.x-goog-user-project": project, **io}
        if spec.startswith(("http://", "https://")):
            return "rest", {"type": "rest", "uri": spec, "warehouse": self.path(), **io}
        if "://" in spec:
            return "sql", {"type": "sql", "uri": spec, "warehouse": self.path(), **io}
        return spec, io

    def open(self):  # noqa: ANN201 - pyiceberg.catalog.Catalog
        """The catalog, with the namespace made if it is missing."""
        name, properties = self.properties()
        if self.embedded():
            storage.check_writable(self.location)
        try:
            catalog = load_catalog(name, **properties)
        except ValueError as error:
            raise UserError(f"--catalog {self.catalog}: {error}") from None
        catalog.create_namespace_if_not_exists(NAMESPACE)
        return catalog


def _file_io(location: str) -> dict[str, str]:
    """pyiceberg file IO settings for a warehouse location."""
    if not location.startswith("gs://"):
        return {}
    settings = {"py-io-impl": "pyiceberg.io.fsspec.FsspecFileIO"}
    if emulator := os.environ.get("STORAGE_EMULATOR_HOST"):
        settings.update({"gcs.service.host": emulator, "gcs.oauth2.token": "anon"})
    return settings


def relative(warehouse: Warehouse, path: str) -> str:
    """``path`` relative to the warehouse, for messages."""
    base = warehouse.path() + "/"
    return path[len(base):] if path.startswith(base) else posixpath.basename(path)
