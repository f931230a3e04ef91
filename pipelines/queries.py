"""The BigQuery queries of ``infra/bigquery/``, run locally in DuckDB on scan Parquet.

    planet-tiles query alerts --scans scans/ --param start_date=2026-06-01 --param end_date=2026-07-31

The SQL files are written in BigQuery's dialect and are the only copy: here sqlglot transpiles them to
DuckDB, and ``planet_tiles.tile_labels`` becomes a view over ``SCANS/**/part-*.parquet`` with the Hive
partition keys typed as BigQuery has them (``scan_date`` DATE, ``aoi`` STRING). ``observations.sql``
defines the view the other queries start from. BigQuery's ``@name`` parameters become DuckDB's ``$name``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

SQL_DIR = Path(__file__).resolve().parents[1] / "infra" / "bigquery"
DATASET = "planet_tiles"
VIEWS = ("observations",)


def names() -> list[str]:
    """The queries (SQL files that are not views or table definitions, ``ddl_*.sql``)."""
    return sorted(p.stem for p in SQL_DIR.glob("*.sql") if p.stem not in VIEWS and not p.stem.startswith("ddl_"))


def to_duckdb(name: str) -> str:
    import sqlglot

    path = SQL_DIR / f"{name}.sql"
    if not SQL_DIR.is_dir():
        raise SystemExit(f"{SQL_DIR} not found: the queries live in the repository's infra/bigquery/ "
                         "(install with pip install -e from a checkout)")
    if not path.exists():
        raise SystemExit(f"no query {name!r}; queries: {', '.join(names())}")
    return ";\n".join(sqlglot.transpile(path.read_text(), read="bigquery", write="duckdb"))


def connect(scans: str):  # noqa: ANN201 - duckdb.DuckDBPyConnection
    """An in-memory DuckDB with ``planet_tiles.tile_labels`` over the scans under ``scans`` and the views."""
    import duckdb

    con = duckdb.connect()
    if "://" in scans:
        con.execute("INSTALL httpfs; LOAD httpfs;")  # gs:// through DuckDB's own extension
    pattern = scans.rstrip("/") + "/**/part-*.parquet"
    con.execute(f"CREATE SCHEMA {DATASET}")
    con.execute(f"CREATE VIEW {DATASET}.tile_labels AS SELECT * FROM read_parquet({_literal(pattern)}, "
                "hive_partitioning = true, hive_types = {'scan_date': DATE, 'aoi': VARCHAR})")
    for view in VIEWS:
        con.execute(to_duckdb(view))
    return con


def run(con, name: str, params: Mapping[str, Any] | None = None) -> list[dict]:  # noqa: ANN001
    """Rows of query ``name`` as dicts."""
    cursor = con.execute(to_duckdb(name), dict(params or {}) or None)
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row)) for row in cursor.fetchall()]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _param(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep:
        raise SystemExit(f"--param {text!r}: write name=value")
    try:
        return key, dt.date.fromisoformat(value)
    except ValueError:
        return key, value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="planet-tiles query", description=__doc__.split("\n\n")[0])
    p.add_argument("name", help="query: the name of a file in infra/bigquery/ (alerts, latest_state, ...)")
    p.add_argument("--scans", required=True, help="scan output prefix, local or gs://")
    p.add_argument("--param", action="append", default=[], help="a query parameter, name=value (dates as YYYY-MM-DD)")
    p.add_argument("--show_sql", action="store_true", help="print the DuckDB SQL instead of running it")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.show_sql:
        print(to_duckdb(args.name))
        return
    rows = run(connect(args.scans), args.name, dict(_param(p) for p in args.param))
    for row in rows:
        row.pop("geometry", None)
        print(json.dumps(row, default=str), file=sys.stdout)


if __name__ == "__main__":
    main()
