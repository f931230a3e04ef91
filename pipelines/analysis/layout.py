"""Where scans live on disk, and how to read a set of them: the one owner of the scan layout.

    OUTPUT/scan_date=YYYY-MM-DD/aoi=NAME/part-*.parquet     rows (GeoParquet, :mod:`pipelines.analysis.schema`)
                                         _manifest.json      a batch scan's manifest (counts, bundle, files)
                                         _manifest-stream.json  the streaming scan's (bundle, model version)
                                         errors-*.jsonl      failed items

``scan_date`` and ``aoi`` are Hive partition keys: they live in the path, not in the files, as BigQuery
external tables, ``bq load --hive_partitioning_mode`` and DuckDB read them. Every writer (batch scan,
streaming scan) and every reader (the report, the queries, the tests) goes through this module.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import posixpath
import re

from planet_model import storage

log = logging.getLogger(__name__)

PART_PREFIX = "part-"
PART_SUFFIX = ".parquet"
MANIFEST = "_manifest.json"
STREAM_MANIFEST = "_manifest-stream.json"
ERRORS_PREFIX = "errors-"
#: The Hive partition keys, outermost first, with their types as BigQuery and DuckDB declare them.
PARTITION_KEYS = (("scan_date", "DATE"), ("aoi", "STRING"))
_PARTITION = re.compile(r"scan_date=(?P<scan_date>[^/]+)/aoi=(?P<aoi>[^/]+)/")
_DATE = re.compile(r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])")


def partition(output: str, scan_date: str, aoi: str) -> str:
    """The folder of one scan date and AOI under ``output``."""
    return storage.join(output, f"scan_date={scan_date}", f"aoi={aoi}")


def partition_path(scan_date: str, aoi: str) -> str:
    """The same folder relative to the output prefix (the streaming writer's partition key)."""
    return f"scan_date={scan_date}/aoi={aoi}"


def part_prefix(partition_folder: str, run_id: str) -> str:
    """File name prefix of a batch run's Parquet shards in a partition."""
    return storage.join(partition_folder, f"{PART_PREFIX}{run_id}")


def stream_part(output: str, partition_key: str, window: str, digest: str) -> str:
    """One streaming window's Parquet file (its name is fixed by partition, window and pane, so a retried
    bundle rewrites it instead of adding one)."""
    return storage.join(output, partition_key, f"{PART_PREFIX}stream-{window}-{digest}{PART_SUFFIX}")


def stream_manifest(output: str, partition_key: str, bundle: str, model_version: str) -> tuple[str, str]:
    """Path and content of the streaming scan's manifest in a partition: the same bytes from every window,
    so concurrent writers agree."""
    scan_date, aoi = _keys(partition_key + "/")
    text = json.dumps({"pipeline": "stream", "scan_date": scan_date, "aoi": aoi, "bundle": bundle,
                       "model_version": model_version}, indent=2, sort_keys=True)
    return storage.join(output, partition_key, STREAM_MANIFEST), text


def _keys(relative: str) -> tuple[str, str] | None:
    match = _PARTITION.search(relative)
    return (match["scan_date"], match["aoi"]) if match else None


def part_files(output: str) -> list[str]:
    """Every scan Parquet file under ``output`` (local or ``gs://``), sorted. Files in a partition whose
    scan date is not ``YYYY-MM-DD`` (written by hand or by an old version) are skipped with a warning
    instead of failing every reader of the folder."""
    found, skipped = [], set()
    for path in storage.glob(storage.join(output, "**")):
        name, keys = posixpath.basename(path), _keys(path)
        if not (name.startswith(PART_PREFIX) and name.endswith(PART_SUFFIX)) or keys is None:
            continue
        if _DATE.fullmatch(keys[0]) is None:
            skipped.add(f"scan_date={keys[0]}")
            continue
        found.append(path)
    if skipped:
        log.warning("%s: skipped partitions whose scan date is not YYYY-MM-DD: %s", output, ", ".join(sorted(skipped)))
    return found


def read_table(output: str, aoi: str | None = None):  # noqa: ANN201 - pyarrow.Table
    """All scan rows under ``output`` as one pyarrow table, with ``aoi`` and ``scan_date`` from the path."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    from pyarrow import fs

    from pipelines.analysis import schema

    # pyarrow reads gs:// with its own GCS client (Beam's file objects are not seekable).
    if "://" in output:
        filesystem, base = fs.FileSystem.from_uri(output)
        files = [fs.FileSystem.from_uri(p)[1] for p in part_files(output)]
    else:
        filesystem, base = fs.LocalFileSystem(), os.path.abspath(output)
        files = [os.path.abspath(p) for p in part_files(output)]
    if not files:
        raise FileNotFoundError(f"no scan output ({PART_PREFIX}*{PART_SUFFIX}) under {output}")
    keys = pa.schema([("scan_date", pa.date32()), ("aoi", pa.string())])
    dataset = ds.dataset(files, filesystem=filesystem, format="parquet",
                         partitioning=ds.partitioning(keys, flavor="hive"), partition_base_dir=base,
                         schema=schema.arrow_schema().append(keys.field("scan_date")).append(keys.field("aoi")))
    return dataset.to_table(filter=None if aoi is None else ds.field("aoi") == aoi)


def duckdb_relation(output: str) -> str:
    """A DuckDB table expression over every scan under ``output`` (partition keys typed as in BigQuery);
    the glob takes only partitions whose scan date has the ``YYYY-MM-DD`` shape, as :func:`part_files`."""
    day = "[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]"
    pattern = output.rstrip("/") + f"/scan_date={day}/aoi=*/{PART_PREFIX}*{PART_SUFFIX}"
    types = ", ".join(f"'{name}': {'VARCHAR' if kind == 'STRING' else kind}" for name, kind in PARTITION_KEYS)
    return f"read_parquet('{pattern.replace(chr(39), chr(39) * 2)}', hive_partitioning = true, hive_types = {{{types}}})"


def bigquery_load(output: str, scan_date: str, aoi: str, table: str) -> list[str]:
    """The ``bq load`` command that appends one partition to the loaded table: the partition keys come
    from the path (Hive partitioning), GeoParquet ``geometry`` becomes GEOGRAPHY, ``labels`` a list.
    ``infra/bigquery/load_scan.sh`` runs exactly this (a test compares them)."""
    keys = "/".join(f"{{{name}:{kind}}}" for name, kind in PARTITION_KEYS)
    return ["bq", "load", "--source_format=PARQUET", "--parquet_enable_list_inference=true",
            "--hive_partitioning_mode=CUSTOM", f"--hive_partitioning_source_uri_prefix={output.rstrip('/')}/{keys}",
            table, f"{partition(output, scan_date, aoi)}/{PART_PREFIX}*{PART_SUFFIX}"]


def manifests(output: str) -> list[dict]:
    """Every partition's manifests (batch and streaming), newest scan date first; each carries
    ``scan_date`` and ``aoi`` from its path."""
    found = []
    for path in storage.glob(storage.join(output, "**")):
        name = posixpath.basename(path)
        keys = _keys(path)
        if keys is None or name not in (MANIFEST, STREAM_MANIFEST):
            continue
        try:
            manifest = json.loads(storage.read_text(path))
        except (OSError, ValueError) as error:
            log.warning("unreadable manifest %s: %s", path, error)
            continue
        found.append({**manifest, "scan_date": keys[0], "aoi": keys[1], "path": path})
    return sorted(found, key=lambda m: (m["scan_date"], m["aoi"], m["path"]), reverse=True)


def latest_bundle(output: str, aoi: str | None = None) -> str | None:
    """The bundle that made the newest scan (of ``aoi``) under ``output``, from the manifests."""
    for manifest in manifests(output):
        if (aoi is None or manifest["aoi"] == aoi) and manifest.get("bundle"):
            return manifest["bundle"]
    return None


def check_scan_date(text: str) -> str:
    """``YYYY-MM-DD`` or a ``ValueError`` naming the flag (the date becomes a partition key)."""
    try:
        if _DATE.fullmatch(text) is None:
            raise ValueError
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise ValueError(f"--scan_date {text!r}: write the date as YYYY-MM-DD") from None
