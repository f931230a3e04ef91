"""The output schemas, defined once: scan rows (:data:`COLUMNS`), alerts (:data:`ALERT_COLUMNS`) and events
(:data:`EVENT_COLUMNS`).

Each yields its pyarrow schema (with GeoParquet 1.1 metadata), its BigQuery JSON schema (checked in as
``infra/bigquery/<table>.schema.json``, which Terraform reads), its BigQuery DDL (``ddl_<table>.sql``).

    python -m pipelines.analysis.schema infra/bigquery     # rewrites the JSON schemas, the DDL and the
                                                           # external table's reference Parquet file

In scan output, ``aoi`` and ``scan_date`` are Hive partition keys: they live in the path
(``scan_date=YYYY-MM-DD/aoi=NAME/``), not in the files, as BigQuery external tables and DuckDB read them.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from planet_model.labels import LABELS


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # STRING, TIMESTAMP, GEOGRAPHY (WKB in Parquet), FLOAT64, FLOAT32, INT64, DATE, STRING_LIST, RECORD_LIST
    description: str
    required: bool = True
    partition_key: bool = False
    fields: tuple[tuple[str, str], ...] = ()  # RECORD_LIST: (name, type) of each record's fields


COLUMNS: tuple[Column, ...] = (
    Column("tile_id", "STRING", "grid tile id, e.g. WebMercatorQuad/16/22094/34553: stable across scans"),
    Column("scene_id", "STRING", "the scene the tile was read from"),
    Column("scan_id", "STRING", "aoi:scan_date:model_version, identical for every row of one scan"),
    Column("acquired", "TIMESTAMP", "scene acquisition time (UTC), from scene metadata; null when unknown",
           required=False),
    Column("geometry", "GEOGRAPHY", "tile outline in EPSG:4326 (WKB in Parquet, GeoParquet 1.1)"),
    Column("lon", "FLOAT64", "tile centroid longitude (EPSG:4326)"),
    Column("lat", "FLOAT64", "tile centroid latitude (EPSG:4326)"),
    Column("area_m2", "FLOAT64", "geodesic area of the tile on the WGS84 ellipsoid, m2 (sums without GIS functions)"),
    Column("valid_fraction", "FLOAT32", "share of the tile's pixels holding data"),
    *(Column(f"{name}_fraction", "FLOAT32", f"share of the tile's pixels with data that the scene's UDM2 flags "
             f"{what}; null when the scene had no usable UDM2", required=False)
      for name, what in (("clear", "clear"), ("cloud", "cloud"), ("shadow", "cloud shadow"),
                         ("haze", "light or heavy haze"))),
    *(Column(f"p_{name}", "FLOAT32", f"probability of {name}") for name in LABELS),
    Column("labels", "STRING_LIST", "labels at or above the bundle's threshold, in label order"),
    Column("model_version", "STRING", "version (content hash) of the model bundle"),
    Column("aoi", "STRING", "area of interest (Hive partition key, from the path)", partition_key=True),
    Column("scan_date", "DATE", "scan date (Hive partition key, from the path)", partition_key=True),
)
FILE_COLUMNS = tuple(c for c in COLUMNS if not c.partition_key)

#: Alerts (``planet-tiles report``'s alerts.parquet and the BigQuery alerts table): see pipelines.analysis.
ALERT_COLUMNS: tuple[Column, ...] = (
    Column("alert_id", "STRING", "16 hex digits of SHA-256 of tile_id|first_detected: the same from a re-run, "
                                 "another AOI or the streaming scan"),
    Column("aoi", "STRING", "area of interest"),
    Column("tile_id", "STRING", "grid tile id"),
    Column("before_date", "DATE", "scan date of the tile's last judged observation as intact forest"),
    Column("before_scene", "STRING", "scene of the observation before"),
    Column("first_detected", "DATE", "scan date of the first judged observation with disturbance labels"),
    Column("detected_scene", "STRING", "scene of that observation"),
    Column("detected_acquired", "TIMESTAMP", "acquisition time of that scene (UTC); null when unknown",
           required=False),
    Column("labels_gained", "STRING_LIST", "disturbance labels of the first detection, in label order"),
    Column("probability", "FLOAT64", "1 - prod(1 - p) over the labels gained"),
    Column("confidence", "STRING", "low (one judged observation), high (confirmed by the next judged "
                                   "observation), highest (confirmed, disturbance probability >= "
                                   "highest_probability on both)"),
    Column("confirmed_date", "DATE", "scan date of the confirming observation; null while low", required=False),
    Column("status", "STRING", "active, or retracted (a later judged observation showed intact forest)"),
    Column("retracted_date", "DATE", "scan date of the retracting observation; null while active",
           required=False),
    Column("last_judged", "DATE", "the tile's latest judged observation the state is based on (in the "
                                  "streamed table, the latest row per alert_id is the current state)"),
    Column("geometry", "GEOGRAPHY", "tile outline in EPSG:4326 (WKB in Parquet, GeoParquet 1.1)"),
    Column("lon", "FLOAT64", "tile centroid longitude"),
    Column("lat", "FLOAT64", "tile centroid latitude"),
    Column("area_m2", "FLOAT64", "geodesic area of the tile, m2"),
)


#: Events (``planet-tiles report``'s events.parquet and the BigQuery events table): see pipelines.analysis.events.
EVENT_COLUMNS: tuple[Column, ...] = (
    Column("event_id", "STRING", "alert_id of the event's first alert (earliest detection, then smallest tile id)"),
    Column("aoi", "STRING", "area of interest"),
    Column("first_detected", "DATE", "earliest first_detected of its alerts"),
    Column("last_detected", "DATE", "latest first_detected of its alerts"),
    Column("tiles", "INT64", "alert tiles in the event"),
    Column("area_ha", "FLOAT64", "sum of the tiles' geodesic areas, hectares"),
    Column("labels_gained", "RECORD_LIST", "disturbance labels gained, with the number of tiles that gained each",
           fields=(("label", "STRING"), ("tiles", "INT64"))),
    Column("confidence", "STRING", "the highest confidence level of its alerts: low, high or highest"),
    Column("status", "STRING", "active while any of its alerts is active, else retracted"),
    Column("alert_ids", "STRING_LIST", "its alerts (alert_id in the alerts table)"),
    Column("zones", "RECORD_LIST", "zones (report --zones) the event touches, with the hectares inside each",
           fields=(("name", "STRING"), ("area_ha", "FLOAT64"))),
    Column("before_image", "STRING", "true-colour PNG of the event from the scene before, beside the report; "
                                     "null when that scene could not be read", required=False),
    Column("after_image", "STRING", "the same from the scene of the first detection", required=False),
    Column("geometry", "GEOGRAPHY", "union of the event's tiles in EPSG:4326 (WKB in Parquet, GeoParquet 1.1)"),
    Column("lon", "FLOAT64", "centroid longitude"),
    Column("lat", "FLOAT64", "centroid latitude"),
)


@dataclass(frozen=True)
class Table:
    columns: tuple[Column, ...]
    partition: str  # a DATE column: BigQuery's daily partitions
    cluster: tuple[str, ...]
    description: str


TABLES = {
    "tile_labels": Table(COLUMNS, "scan_date", ("aoi", "tile_id"),
                         "One row per (tile, scene) of each scan, loaded from the scans' GeoParquet"),
    "alerts": Table(ALERT_COLUMNS, "first_detected", ("aoi", "tile_id"),
                    "Tiles that turned from intact forest to a disturbance label (pipelines/analysis/rules.py)"),
    "events": Table(EVENT_COLUMNS, "first_detected", ("aoi",),
                    "Alert tiles that touch and were first detected close in time (pipelines/analysis/events.py)"),
}
DATASET = "planet_tiles"
#: Column types in BigQuery (FLOAT32 is stored as FLOAT64; STRING_LIST is a REPEATED STRING).
BIGQUERY_TYPES = {"STRING": "STRING", "TIMESTAMP": "TIMESTAMP", "GEOGRAPHY": "GEOGRAPHY", "FLOAT64": "FLOAT64",
                  "FLOAT32": "FLOAT64", "INT64": "INT64", "DATE": "DATE", "STRING_LIST": "STRING",
                  "RECORD_LIST": "RECORD"}
REPEATED = ("STRING_LIST", "RECORD_LIST")


def arrow_schema(columns: Sequence[Column] = FILE_COLUMNS):  # noqa: ANN201 - pyarrow.Schema
    """A Parquet file schema (scan rows by default, partition keys excluded) with GeoParquet metadata."""
    import pyarrow as pa

    types = {"STRING": pa.string(), "TIMESTAMP": pa.timestamp("us", tz="UTC"), "GEOGRAPHY": pa.binary(),
             "FLOAT64": pa.float64(), "FLOAT32": pa.float32(), "INT64": pa.int64(), "DATE": pa.date32(),
             "STRING_LIST": pa.list_(pa.string())}

    def kind(c: Column):  # noqa: ANN202 - pyarrow.DataType
        if c.type == "RECORD_LIST":
            return pa.list_(pa.struct([pa.field(n, types[t], nullable=False) for n, t in c.fields]))
        return types[c.type]

    fields = [pa.field(c.name, kind(c), nullable=not c.required) for c in columns if not c.partition_key]
    # Event outlines (unions of tiles) may be MultiPolygons; tiles are Polygons.
    shapes = ["Polygon", "MultiPolygon"] if any(c.name == "event_id" for c in columns) else ["Polygon"]
    geo = {"version": "1.1.0", "primary_column": "geometry",
           # No "crs" key: GeoParquet then means OGC:CRS84 (longitude, latitude), which the tiles are in.
           "columns": {"geometry": {"encoding": "WKB", "geometry_types": shapes, "edges": "planar"}}}
    return pa.schema(fields, metadata={b"geo": json.dumps(geo).encode()})


def parquet_bytes(rows: Sequence[dict], columns: Sequence[Column]) -> bytes:
    """``rows`` as one Parquet file (GeoParquet metadata included), ready for :func:`storage.write_bytes`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(list(rows), schema=arrow_schema(columns)), buffer)
    return buffer.getvalue().to_pybytes()


def bigquery_schema(columns: Sequence[Column] = COLUMNS) -> list[dict]:
    """BigQuery table schema (JSON form), partition keys included."""
    def field(c: Column) -> dict:
        out = {"name": c.name, "type": BIGQUERY_TYPES[c.type],
               "mode": "REPEATED" if c.type in REPEATED else ("REQUIRED" if c.required else "NULLABLE"),
               "description": c.description}
        if c.fields:
            out["fields"] = [{"name": n, "type": BIGQUERY_TYPES[t], "mode": "REQUIRED"} for n, t in c.fields]
        return out

    return [field(c) for c in columns]


def ddl(name: str) -> str:
    """BigQuery ``CREATE TABLE`` of table ``name`` (what Terraform creates, for those who use ``bq``)."""
    table = TABLES[name]
    lines = []
    for c in table.columns:
        repeated = c.type in REPEATED
        if c.type == "RECORD_LIST":
            kind = f"ARRAY<STRUCT<{', '.join(f'{n} {BIGQUERY_TYPES[t]}' for n, t in c.fields)}>>"
        else:
            kind = f"ARRAY<{BIGQUERY_TYPES[c.type]}>" if repeated else BIGQUERY_TYPES[c.type]
        required = " NOT NULL" if c.required and not repeated else ""
        lines.append(f"  {c.name} {kind}{required} OPTIONS (description = {json.dumps(c.description)})")
    return (f"-- Generated by `python -m pipelines.analysis.schema infra/bigquery` from pipelines/analysis/schema.py: edit that.\n"
            f"CREATE TABLE IF NOT EXISTS {DATASET}.{name} (\n" + ",\n".join(lines) + "\n)\n"
            f"PARTITION BY {table.partition}\nCLUSTER BY {', '.join(table.cluster)}\n"
            f"OPTIONS (description = {json.dumps(table.description)});\n")


def external_ddl() -> str:
    """BigQuery ``CREATE EXTERNAL TABLE`` over the scans where they lie (what Terraform's
    ``tile_labels_external`` is): partition keys from the path, columns from the reference file."""
    from pipelines.analysis.layout import PARTITION_KEYS

    keys = ",\n".join(f"  {name} {kind}" for name, kind in PARTITION_KEYS)  # in the path's order
    return ("-- Generated by `python -m pipelines.analysis.schema infra/bigquery` from pipelines/analysis/schema.py: edit that.\n"
            "-- The scans where they lie (gs://DATA_BUCKET/scans/scan_date=D/aoi=NAME/part-*.parquet), queryable\n"
            "-- without loading: partition keys from the path, the columns from the reference file that Terraform\n"
            f"-- uploads (infra/bigquery/{REFERENCE_FILE}), so the table can exist before any scan does; `labels`\n"
            "-- read as ARRAY<STRING>, `geometry` as WKB bytes (ST_GEOGFROMWKB(geometry) gives the GEOGRAPHY).\n"
            "-- Replace DATA_BUCKET, then: bq query --use_legacy_sql=false < infra/bigquery/ddl_tile_labels_external.sql\n"
            f"CREATE OR REPLACE EXTERNAL TABLE {DATASET}.tile_labels_external\n"
            f"WITH PARTITION COLUMNS (\n{keys}\n)\n"
            "OPTIONS (\n  format = 'PARQUET',\n  uris = ['gs://DATA_BUCKET/scans/*.parquet'],\n"
            "  hive_partition_uri_prefix = 'gs://DATA_BUCKET/scans',\n"
            "  reference_file_schema_uri = 'gs://DATA_BUCKET/schemas/tile_labels.parquet',\n"
            "  enable_list_inference = TRUE\n);\n")


#: The empty Parquet file whose schema BigQuery gives the external table over the scans (Terraform's
#: ``reference_file_schema_uri``), so that the table can exist before the first scan does.
REFERENCE_FILE = "tile_labels.reference.parquet"


def main(argv: Sequence[str] | None = None) -> None:
    folder = (list(sys.argv[1:] if argv is None else argv) or ["infra/bigquery"])[0]
    for name, table in TABLES.items():
        for path, text in ((f"{name}.schema.json", json.dumps(bigquery_schema(table.columns), indent=2) + "\n"),
                           (f"ddl_{name}.sql", ddl(name))):
            with open(os.path.join(folder, path), "w", encoding="utf-8") as handle:
                handle.write(text)
            print(os.path.join(folder, path))
    with open(os.path.join(folder, "ddl_tile_labels_external.sql"), "w", encoding="utf-8") as handle:
        handle.write(external_ddl())
    print(os.path.join(folder, "ddl_tile_labels_external.sql"))
    with open(os.path.join(folder, REFERENCE_FILE), "wb") as handle:
        handle.write(parquet_bytes([], FILE_COLUMNS))
    print(os.path.join(folder, REFERENCE_FILE))


if __name__ == "__main__":
    main()
