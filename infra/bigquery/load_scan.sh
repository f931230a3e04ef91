#!/usr/bin/env bash
# Load one scan partition (a scan date and AOI) into planet_tiles.tile_labels, replacing what an earlier
# run of the same scan loaded and nothing else. The table's daily partitions hold every AOI of a date,
# so the partition decorator cannot be used to replace one AOI: delete its rows, then append.
#
#   infra/bigquery/load_scan.sh DATA_BUCKET 2026-11-24 xingu-headwaters [DATASET]
#
# GeoParquet `geometry` loads into the GEOGRAPHY column; `labels` loads as ARRAY<STRING>
# (--parquet_enable_list_inference); `scan_date` and `aoi` come from the path (Hive partitioning).
# The `bq load` below is pipelines/analysis/layout.py's bigquery_load(), which owns the scan layout; a
# test (tests/analysis/test_layout.py) keeps the two equal.
set -euo pipefail
bucket=${1:?data bucket}; date=${2:?scan date YYYY-MM-DD}; aoi=${3:?AOI name}; dataset=${4:-planet_tiles}
prefix="gs://${bucket}/scans"

bq query --use_legacy_sql=false --parameter="d:DATE:${date}" --parameter="a:STRING:${aoi}" \
  "DELETE FROM ${dataset}.tile_labels WHERE scan_date = @d AND aoi = @a"
bq load --source_format=PARQUET --parquet_enable_list_inference=true \
  --hive_partitioning_mode=CUSTOM \
  --hive_partitioning_source_uri_prefix="${prefix}/{scan_date:DATE}/{aoi:STRING}" \
  "${dataset}.tile_labels" "${prefix}/scan_date=${date}/aoi=${aoi}/part-*.parquet"
