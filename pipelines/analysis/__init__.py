"""What happens to scans: the analysis rules, the queries (BigQuery's SQL, run in DuckDB here), events,
the report and its map."""
