"""The scan output schema, defined once: it yields the pyarrow schema (with GeoParquet 1.1 metadata),
the BigQuery JSON schema (``infra/bigquery/tile_labels.schema.json``) and the Markdown docs.

``aoi`` and ``scan_date`` are Hive partition keys: they live in the path
(``scan_date=YYYY-MM-DD/aoi=NAME/``), not in the files, as BigQuery external tables and DuckDB read them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from planet_model.labels import LABELS


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # STRING, TIMESTAMP, GEOGRAPHY (WKB in Parquet), FLOAT64, FLOAT32, DATE, STRING_LIST
    description: str
    required: bool = True
    partition_key: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("tile_id", "STRING", "grid tile id, e.g. WebMercatorQuad/16/22094/34553: stable across scans"),
    Column("scene_id", "STRING", "the scene the tile was read from"),
    Column("scan_id", "STRING", "aoi:scan_date:model_version, identical for every row of one scan"),
    Column("acquired", "TIMESTAMP", "scene acquisition time (UTC), from scene metadata; null when unknown",
           required=False),
    Column("geometry", "GEOGRAPHY", "tile outline in EPSG:4326 (WKB in Parquet, GeoParquet 1.1)"),
    Column("lon", "FLOAT64", "tile centroid longitude (EPSG:4326)"),
    Column("lat", "FLOAT64", "tile centroid latitude (EPSG:4326)"),
    Column("valid_fraction", "FLOAT32", "share of the tile's pixels holding data"),
    *(Column(f"p_{name}", "FLOAT32", f"probability of {name}") for name in LABELS),
    Column("labels", "STRING_LIST", "labels at or above the bundle's threshold, in label order"),
    Column("model_version", "STRING", "version (content hash) of the model bundle"),
    Column("aoi", "STRING", "area of interest (Hive partition key, from the path)", partition_key=True),
    Column("scan_date", "DATE", "scan date (Hive partition key, from the path)", partition_key=True),
)
FILE_COLUMNS = tuple(c for c in COLUMNS if not c.partition_key)


def arrow_schema():  # noqa: ANN201 - pyarrow.Schema
    """The Parquet file schema (partition keys excluded), with GeoParquet ``geo`` metadata."""
    import pyarrow as pa

    types = {"STRING": pa.string(), "TIMESTAMP": pa.timestamp("us", tz="UTC"), "GEOGRAPHY": pa.binary(),
             "FLOAT64": pa.float64(), "FLOAT32": pa.float32(), "STRING_LIST": pa.list_(pa.string())}
    fields = [pa.field(c.name, types[c.type], nullable=not c.required) for c in FILE_COLUMNS]
    geo = {"version": "1.1.0", "primary_column": "geometry",
           # No "crs" key: GeoParquet then means OGC:CRS84 (longitude, latitude), which the tiles are in.
           "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Polygon"], "edges": "planar"}}}
    return pa.schema(fields, metadata={b"geo": json.dumps(geo).encode()})


def bigquery_schema() -> list[dict]:
    """BigQuery table schema (JSON form), partition keys included."""
    types = {"STRING": "STRING", "TIMESTAMP": "TIMESTAMP", "GEOGRAPHY": "GEOGRAPHY", "FLOAT64": "FLOAT64",
             "FLOAT32": "FLOAT64", "DATE": "DATE", "STRING_LIST": "STRING"}
    return [{"name": c.name, "type": types[c.type],
             "mode": "REPEATED" if c.type == "STRING_LIST" else ("REQUIRED" if c.required else "NULLABLE"),
             "description": c.description} for c in COLUMNS]


def markdown() -> str:
    rows = ["| column | type | description |", "| --- | --- | --- |"]
    rows += [f"| `{c.name}` | {c.type} | {c.description} |" for c in COLUMNS]
    return "\n".join(rows)


if __name__ == "__main__":
    print(json.dumps(bigquery_schema(), indent=2))
