"""The output tables, defined once: scan rows (:data:`COLUMNS`, the Apache Iceberg table ``tile_labels``),
alerts (:data:`ALERT_COLUMNS`), events (:data:`EVENT_COLUMNS`) and clearings (:data:`CLEARING_COLUMNS`).

Each yields its pyarrow schema (GeoParquet 1.1 metadata, with a ``bbox`` covering column where the table
has one), its BigQuery JSON schema (checked in as ``infra/bigquery/<table>.schema.json``, which Terraform
reads) and its BigQuery DDL (``ddl_<table>.sql``); the scans also yield their Iceberg schema and
partition spec (:func:`iceberg_schema`, :func:`iceberg_partition_spec`).

    python -m pipelines.store.schema infra/bigquery     # rewrites the JSON schemas and the DDL

Scan rows carry ``scan_date`` and ``aoi`` as columns: the Iceberg table is partitioned by both (identity
transforms), so a data file holds one partition and its partition values come from the file itself.
BigQuery reads the scans where they lie, through the BigLake metastore Iceberg REST catalog, as
```PROJECT.DATA_BUCKET.planet_tiles.tile_labels```; ``ddl_tile_labels.sql`` names it
``planet_tiles.tile_labels`` (a view), the name every query in ``infra/bigquery/`` uses.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import (
    BinaryType,
    DateType,
    DoubleType,
    FloatType,
    ListType,
    LongType,
    NestedField,
    StringType,
    StructType,
    TimestamptzType,
)

from planet_core.labels import LABELS


@dataclass(frozen=True)
class Column:
    name: str
    #: STRING, TIMESTAMP, GEOGRAPHY (WKB in Parquet), FLOAT64, FLOAT32, INT64, DATE, STRING_LIST,
    #: RECORD_LIST (a list of records of ``fields``) or BBOX (the GeoParquet 1.1 bounding box record)
    type: str
    description: str
    required: bool = True
    #: An identity partition of the Iceberg table, by nesting level (0 outermost; None: not a partition):
    #: scans are partitioned by ``scan_date``, then ``aoi``.
    partition_level: int | None = None
    fields: tuple[tuple[str, str], ...] = ()  # RECORD_LIST: (name, type) of each record's fields


#: How a scan row's tile was judged against its scene's cloud mask (``mask_status``).
MASK_READ, MASK_ABSENT, MASK_UNREADABLE = "read", "absent", "unreadable"

COLUMNS: tuple[Column, ...] = (
    Column("tile_id", "STRING", "grid tile id, e.g. WebMercatorQuad/16/22094/34553: stable across scans"),
    Column("scene_id", "STRING", "the scene the tile was read from"),
    Column("scene_uri", "STRING", "where that scene was read (the report's pictures and the clearings read it "
                                  "again)"),
    Column("scan_id", "STRING", "aoi:scan_date:model_version, identical for every row of one scan"),
    Column("acquired", "TIMESTAMP", "scene acquisition time (UTC), from scene metadata; null when unknown",
           required=False),
    Column("geometry", "GEOGRAPHY", "tile outline in EPSG:4326 (WKB in Parquet, GeoParquet 1.1)"),
    Column("bbox", "BBOX", "the outline's bounding box in EPSG:4326 (GeoParquet 1.1 covering: engines skip row "
                           "groups by it)"),
    Column("lon", "FLOAT64", "tile centroid longitude (EPSG:4326)"),
    Column("lat", "FLOAT64", "tile centroid latitude (EPSG:4326)"),
    Column("area_m2", "FLOAT64", "geodesic area of the tile on the WGS84 ellipsoid, m2 (sums without GIS functions)"),
    Column("valid_fraction", "FLOAT32", "share of the tile's pixels holding data"),
    Column("mask_status", "STRING", f"the scene's cloud mask for this tile: {MASK_READ} (the fractions below come "
                                    f"from it), {MASK_ABSENT} (the scene has none: judged by its labels alone) or "
                                    f"{MASK_UNREADABLE} (the mask could not be read here: the tile is not judged)"),
    *(Column(f"{name}_fraction", "FLOAT32", f"share of the tile's pixels with data that the scene's cloud mask "
             f"flags {what}; null unless mask_status is {MASK_READ}", required=False)
      for name, what in (("clear", "clear"), ("cloud", "cloud"), ("shadow", "cloud shadow"),
                         ("haze", "light or heavy haze"))),
    *(Column(f"p_{name}", "FLOAT32", f"probability of {name}") for name in LABELS),
    Column("labels", "STRING_LIST", "labels at or above the bundle's threshold, in label order"),
    Column("model_version", "STRING", "version (content hash) of the model bundle"),
    Column("aoi", "STRING", "area of interest (an identity partition of the table)", partition_level=1),
    Column("scan_date", "DATE", "scan date (an identity partition of the table)", partition_level=0),
)


def partition_keys(columns: Sequence[Column]) -> tuple[str, ...]:
    """An Iceberg table's partition keys, outermost first: its columns with a ``partition_level``."""
    return tuple(c.name for c in sorted((c for c in columns if c.partition_level is not None),
                                        key=lambda c: c.partition_level))


#: The scans table's partition keys.
PARTITION_KEYS: tuple[str, ...] = partition_keys(COLUMNS)

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
    Column("cleared_ha", "FLOAT64", "hectares of its event's clearings inside the tile (the clearings table); null "
                                    "when not delineated (report --no_clearings, the streaming scan)", required=False),
)


#: Events (``planet-tiles report``'s events.parquet and the BigQuery events table): see pipelines.analysis.events.
EVENT_COLUMNS: tuple[Column, ...] = (
    Column("event_id", "STRING", "alert_id of the event's first alert (earliest detection, then smallest tile id)"),
    Column("aoi", "STRING", "area of interest"),
    Column("first_detected", "DATE", "earliest first_detected of its alerts"),
    Column("last_detected", "DATE", "latest first_detected of its alerts"),
    Column("tiles", "INT64", "alert tiles in the event"),
    Column("area_ha", "FLOAT64", "sum of the alert tiles' geodesic areas, hectares: the area searched, not the "
                                 "area cleared (cleared_ha)"),
    Column("cleared_ha", "FLOAT64", "hectares of the event's clearings (the clearings table): the changed pixels "
                                    "delineated inside and around its tiles; null when not delineated", required=False),
    Column("labels_gained", "RECORD_LIST", "disturbance labels gained, with the number of tiles that gained each",
           fields=(("label", "STRING"), ("tiles", "INT64"))),
    Column("confidence", "STRING", "the highest confidence level of its alerts: low, high or highest"),
    Column("status", "STRING", "active while any of its alerts is active, else retracted"),
    Column("alert_ids", "STRING_LIST", "its alerts (alert_id in the alerts table)"),
    Column("zones", "RECORD_LIST", "zones (report --zones) the event touches, with the hectares of its tiles inside "
                                   "each and of its clearings inside each (0 when not delineated: cleared_ha null)",
           fields=(("name", "STRING"), ("area_ha", "FLOAT64"), ("cleared_ha", "FLOAT64"))),
    Column("before_image", "STRING", "true-colour PNG of the event from the scene before, beside the report; "
                                     "null when that scene could not be read", required=False),
    Column("after_image", "STRING", "the same from the scene of the first detection", required=False),
    Column("geometry", "GEOGRAPHY", "union of the event's tiles in EPSG:4326 (WKB in Parquet, GeoParquet 1.1)"),
    Column("lon", "FLOAT64", "centroid longitude"),
    Column("lat", "FLOAT64", "centroid latitude"),
)


#: Clearings (``planet-tiles report``'s clearings.parquet and the BigQuery clearings table): see
#: pipelines.analysis.clearings.
CLEARING_COLUMNS: tuple[Column, ...] = (
    Column("clearing_id", "STRING", "16 hex digits of SHA-256 of event_id and a point inside the polygon"),
    Column("event_id", "STRING", "the event it delineates (events table)"),
    Column("aoi", "STRING", "area of interest (an identity partition of the table)", partition_level=0),
    Column("alert_ids", "STRING_LIST", "the alerts whose tiles it touches"),
    Column("before_date", "DATE", "the observation before (the first image compared): its alerts' date before"),
    Column("detected_date", "DATE", "the detection it was found on (the second image compared): the first of the "
           "event's detections whose comparison saw it"),
    Column("labels_gained", "STRING_LIST", "the event's disturbance labels"),
    Column("confidence", "STRING", "the event's confidence level"),
    Column("area_ha", "FLOAT64", "geodesic area of the polygon on the WGS84 ellipsoid, hectares"),
    Column("judged_share", "FLOAT64", "share of the event's frame (its tiles and one tile around) usable on both "
                                      "dates: with data and clear by the cloud mask"),
    Column("change_index", "STRING", "the index whose drop was thresholded: ndvi, or ngrdi for visual products"),
    Column("threshold", "FLOAT64", "the drop of the index above which a pixel changed, in this event's frame"),
    Column("geometry", "GEOGRAPHY", "the cleared polygon in EPSG:4326 (WKB in Parquet, GeoParquet 1.1)"),
    Column("lon", "FLOAT64", "centroid longitude"),
    Column("lat", "FLOAT64", "centroid latitude"),
)


@dataclass(frozen=True)
class Table:
    columns: tuple[Column, ...]
    partition: str  # a DATE column: BigQuery's daily partitions
    cluster: tuple[str, ...]
    description: str
    #: Where BigQuery reads it: a native table (``bq load`` from the report's Parquet), or the Iceberg table
    #: of the scans through the BigLake metastore catalog, named in the dataset by a view.
    iceberg: bool = False


TABLES = {
    "tile_labels": Table(COLUMNS, "scan_date", ("aoi", "tile_id"),
                         "One row per (tile, scene) of each scan: the scans' Apache Iceberg table", iceberg=True),
    "alerts": Table(ALERT_COLUMNS, "first_detected", ("aoi", "tile_id"),
                    "Tiles that turned from intact forest to a disturbance label (pipelines/analysis/rules.py)"),
    "events": Table(EVENT_COLUMNS, "first_detected", ("aoi",),
                    "Alert tiles that touch and were first detected close in time (pipelines/analysis/events.py)"),
    "clearings": Table(CLEARING_COLUMNS, "detected_date", ("aoi", "event_id"),
                       "The cleared polygons of each event, in hectares: the clearings' Apache Iceberg table "
                       "(pipelines/analysis/clearings.py)", iceberg=True),
}
DATASET = "planet_tiles"
#: Column types in BigQuery (FLOAT32 is stored as FLOAT64; STRING_LIST is a REPEATED STRING).
BIGQUERY_TYPES = {"STRING": "STRING", "TIMESTAMP": "TIMESTAMP", "GEOGRAPHY": "GEOGRAPHY", "FLOAT64": "FLOAT64",
                  "FLOAT32": "FLOAT64", "INT64": "INT64", "DATE": "DATE", "STRING_LIST": "STRING",
                  "RECORD_LIST": "RECORD", "BBOX": "RECORD"}
REPEATED = ("STRING_LIST", "RECORD_LIST")
#: The GeoParquet 1.1 bounding box record's fields.
BBOX_FIELDS = ("xmin", "ymin", "xmax", "ymax")
GENERATED = (
    "-- Generated by `python -m pipelines.store.schema infra/bigquery` from pipelines/store/schema.py: edit that.\n"
)


def bbox(geometry: Any) -> dict[str, float]:
    """The ``bbox`` value of a shapely geometry."""
    return dict(zip(BBOX_FIELDS, (float(v) for v in geometry.bounds)))


def _arrow_type(c: Column):  # noqa: ANN202 - pyarrow.DataType
    types = {"STRING": pa.string(), "TIMESTAMP": pa.timestamp("us", tz="UTC"), "GEOGRAPHY": pa.binary(),
             "FLOAT64": pa.float64(), "FLOAT32": pa.float32(), "INT64": pa.int64(), "DATE": pa.date32(),
             "STRING_LIST": pa.list_(pa.string()),
             "BBOX": pa.struct([pa.field(n, pa.float64(), nullable=False) for n in BBOX_FIELDS])}
    if c.type == "RECORD_LIST":
        return pa.list_(pa.struct([pa.field(n, types[t], nullable=False) for n, t in c.fields]))
    return types[c.type]


def arrow_schema(columns: Sequence[Column] = COLUMNS):  # noqa: ANN201 - pyarrow.Schema
    """A Parquet file schema (scan rows by default) with GeoParquet 1.1 metadata: the ``geometry`` column
    and, where the table has one, its ``bbox`` covering column."""
    fields = [pa.field(c.name, _arrow_type(c), nullable=not c.required) for c in columns]
    # Event outlines (unions of tiles) may be MultiPolygons; tiles are Polygons.
    shapes = ["Polygon", "MultiPolygon"] if any(c.name == "event_id" for c in columns) else ["Polygon"]
    # No "crs" key: GeoParquet then means OGC:CRS84 (longitude, latitude), which the tiles are in.
    geometry: dict[str, Any] = {"encoding": "WKB", "geometry_types": shapes, "edges": "planar"}
    if any(c.type == "BBOX" for c in columns):
        geometry["covering"] = {"bbox": {n: ["bbox", n] for n in BBOX_FIELDS}}
    geo = {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": geometry}}
    return pa.schema(fields, metadata={b"geo": json.dumps(geo).encode()})


#: Parquet compression of every file the tools write: zstd (geometry, most of a scan row, shrinks well).
COMPRESSION = "zstd"


def parquet_bytes(rows: Sequence[dict], columns: Sequence[Column]) -> bytes:
    """``rows`` as one Parquet file (GeoParquet metadata included), ready for :func:`storage.write_bytes`."""
    buffer = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(list(rows), schema=arrow_schema(columns)), buffer, compression=COMPRESSION)
    return buffer.getvalue().to_pybytes()


def iceberg_schema(columns: Sequence[Column] = COLUMNS, optional: Sequence[str] = ()):  # noqa: ANN201
    """The Iceberg schema (``pyiceberg.schema.Schema``) of a table of ``columns`` (field ids in column order;
    the catalog assigns its own on creation), with the columns named in ``optional`` nullable: columns
    added to an existing table must be, since its earlier rows have no value for them. Geometry is WKB in a
    binary column: the table is format v2, which has no geometry type."""
    primitive = {"STRING": StringType(), "TIMESTAMP": TimestamptzType(), "GEOGRAPHY": BinaryType(),
                 "FLOAT64": DoubleType(), "FLOAT32": FloatType(), "INT64": LongType(), "DATE": DateType()}
    ids = iter(range(1, 10_000))
    fields = []
    for c in columns:
        field_id = next(ids)
        if c.type == "STRING_LIST":
            kind = ListType(element_id=next(ids), element_type=StringType(), element_required=False)
        elif c.type == "BBOX":
            kind = StructType(*(NestedField(next(ids), n, DoubleType(), required=True) for n in BBOX_FIELDS))
        elif c.type == "RECORD_LIST":
            record = StructType(*(NestedField(next(ids), n, primitive[t], required=True) for n, t in c.fields))
            kind = ListType(element_id=next(ids), element_type=record, element_required=True)
        else:
            kind = primitive[c.type]
        fields.append(NestedField(field_id, c.name, kind, required=c.required and c.name not in optional,
                                  doc=c.description))
    return Schema(*fields)


def iceberg_partition_spec(schema, keys: Sequence[str] = PARTITION_KEYS):  # noqa: ANN001, ANN201
    """Identity partitions on ``keys`` (the scans' by default), outermost first (a pyiceberg ``Schema`` in,
    a ``PartitionSpec`` out)."""
    return PartitionSpec(*(PartitionField(source_id=schema.find_field(name).field_id, field_id=1000 + i,
                                          transform=IdentityTransform(), name=name)
                           for i, name in enumerate(keys)))


def bigquery_schema(columns: Sequence[Column] = COLUMNS) -> list[dict]:
    """BigQuery table schema (JSON form)."""
    def field(c: Column) -> dict:
        out = {"name": c.name, "type": BIGQUERY_TYPES[c.type],
               "mode": "REPEATED" if c.type in REPEATED else ("REQUIRED" if c.required else "NULLABLE"),
               "description": c.description}
        if c.fields:
            out["fields"] = [{"name": n, "type": BIGQUERY_TYPES[t], "mode": "REQUIRED"} for n, t in c.fields]
        if c.type == "BBOX":
            out["fields"] = [{"name": n, "type": "FLOAT64", "mode": "REQUIRED"} for n in BBOX_FIELDS]
        return out

    return [field(c) for c in columns]


def ddl(name: str) -> str:
    """BigQuery DDL of table ``name``: ``CREATE TABLE`` of a native table (what Terraform creates, for those who
    use ``bq``), or for an Iceberg table (scans, clearings) the view that names it in the dataset."""
    table = TABLES[name]
    if table.iceberg:
        return (
            GENERATED
            + f"-- {name} is an Apache Iceberg table in the BigLake metastore Iceberg REST catalog of the data\n"
            f"-- bucket; BigQuery reads it as `PROJECT.DATA_BUCKET.{DATASET}.{name}` (project, catalog, namespace,\n"
            f"-- table). This view gives it the name the queries in infra/bigquery/ use. The first scan (the first\n"
            f"-- delineate for clearings; `planet-tiles maintain` for the scans) creates the table; then replace\n"
            f"-- PROJECT and DATA_BUCKET and run\n"
            f"--   bq query --use_legacy_sql=false < infra/bigquery/ddl_{name}.sql\n"
            f"-- geometry is WKB bytes there: ST_GEOGFROMWKB(geometry) gives the GEOGRAPHY.\n"
            f"CREATE OR REPLACE VIEW {DATASET}.{name}\n"
            f"OPTIONS (description = {json.dumps(table.description)})\n"
            f"AS SELECT * FROM `PROJECT.DATA_BUCKET.{DATASET}.{name}`;\n"
        )
    lines = []
    for c in table.columns:
        repeated = c.type in REPEATED
        if c.type == "RECORD_LIST":
            kind = f"ARRAY<STRUCT<{', '.join(f'{n} {BIGQUERY_TYPES[t]}' for n, t in c.fields)}>>"
        elif c.type == "BBOX":
            kind = f"STRUCT<{', '.join(f'{n} FLOAT64' for n in BBOX_FIELDS)}>"
        else:
            kind = f"ARRAY<{BIGQUERY_TYPES[c.type]}>" if repeated else BIGQUERY_TYPES[c.type]
        required = " NOT NULL" if c.required and not repeated else ""
        lines.append(f"  {c.name} {kind}{required} OPTIONS (description = {json.dumps(c.description)})")
    return (GENERATED + f"CREATE TABLE IF NOT EXISTS {DATASET}.{name} (\n" + ",\n".join(lines) + "\n)\n"
            f"PARTITION BY {table.partition}\nCLUSTER BY {', '.join(table.cluster)}\n"
            f"OPTIONS (description = {json.dumps(table.description)});\n")


def main(argv: Sequence[str] | None = None) -> None:
    folder = (list(sys.argv[1:] if argv is None else argv) or ["infra/bigquery"])[0]
    for name, table in TABLES.items():
        files = [(f"ddl_{name}.sql", ddl(name))]
        if not table.iceberg:  # Terraform makes native tables from their JSON schema; BigQuery reads Iceberg's
            files.insert(0, (f"{name}.schema.json", json.dumps(bigquery_schema(table.columns), indent=2) + "\n"))
        for path, text in files:
            with open(os.path.join(folder, path), "w", encoding="utf-8") as handle:
                handle.write(text)
            print(os.path.join(folder, path))


if __name__ == "__main__":
    main()
