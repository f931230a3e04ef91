-- The scans where they lie (gs://DATA_BUCKET/scans/scan_date=D/aoi=NAME/part-*.parquet), queryable
-- without loading: Hive partition keys typed as in the loaded table, `labels` read as ARRAY<STRING>
-- (enable_list_inference), `geometry` as WKB bytes (ST_GEOGFROMWKB(geometry) gives the GEOGRAPHY).
-- Replace DATA_BUCKET, then: bq query --use_legacy_sql=false < infra/bigquery/ddl_tile_labels_external.sql
-- (Terraform's google_bigquery_table.tile_labels_external is the same table.)
CREATE OR REPLACE EXTERNAL TABLE planet_tiles.tile_labels_external
WITH PARTITION COLUMNS (
  scan_date DATE,
  aoi STRING
)
OPTIONS (
  format = 'PARQUET',
  uris = ['gs://DATA_BUCKET/scans/*.parquet'],
  hive_partition_uri_prefix = 'gs://DATA_BUCKET/scans',
  enable_list_inference = TRUE
);
