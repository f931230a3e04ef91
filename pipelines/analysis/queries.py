"""The BigQuery queries of ``infra/bigquery/``, run locally in DuckDB on scan Parquet.

    planet-tiles query alerts --scans scans/ --param start_date=2026-06-01 --param end_date=2026-07-31

The SQL files are written in BigQuery's dialect and are the only copy: here sqlglot transpiles them to
DuckDB, and ``planet_tiles.tile_labels`` becomes a view over the scans
(:func:`pipelines.analysis.layout.duckdb_relation`, partition keys typed as BigQuery has them). ``observations.sql``
defines the view the other queries start from. BigQuery's ``@name`` parameters become DuckDB's ``$name``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipelines.analysis import layout, rules
from planet_model.errors import UserError

SQL_DIR = Path(__file__).resolve().parents[2] / "infra" / "bigquery"
DATASET = "planet_tiles"
VIEWS = ("observations",)
#: Parameters that have a default here (in BigQuery, pass them with ``--parameter``).
DEFAULTS: dict[str, Any] = {"min_clear_fraction": rules.MIN_CLEAR_FRACTION,
                         "highest_probability": rules.HIGHEST_PROBABILITY}


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
        raise UserError(f"no query {name!r}; queries: {', '.join(names())}")
    return ";\n".join(sqlglot.transpile(path.read_text(), read="bigquery", write="duckdb"))


def connect(scans: str):  # noqa: ANN201 - duckdb.DuckDBPyConnection
    """An in-memory DuckDB with ``planet_tiles.tile_labels`` over the scans under ``scans`` and the views."""
    import duckdb

    if not layout.part_files(scans):
        raise UserError(f"--scans {scans}: no scan output there ({layout.PART_PREFIX}*{layout.PART_SUFFIX} in "
                        "scan_date=/aoi= partitions)")
    con = duckdb.connect()
    if "://" in scans:
        # DuckDB reads Parquet through its own httpfs extension: Beam's file objects are not seekable.
        con.execute("INSTALL httpfs; LOAD httpfs;")
    con.execute(f"CREATE SCHEMA {DATASET}")
    con.execute(f"CREATE VIEW {DATASET}.tile_labels AS SELECT * FROM {layout.duckdb_relation(scans)}")
    for view in VIEWS:
        con.execute(to_duckdb(view))
    return con


def parameters(name: str) -> list[str]:
    """The ``@name`` parameters query ``name`` takes."""
    return sorted(set(re.findall(r"@(\w+)", (SQL_DIR / f"{name}.sql").read_text())))


def run(con, name: str, params: Mapping[str, Any] | None = None) -> list[dict]:  # noqa: ANN001
    """Rows of query ``name`` as dicts; a missing or unknown parameter is a :class:`UserError`
    (:data:`DEFAULTS` fill the ones that have a default)."""
    sql = to_duckdb(name)
    wanted = parameters(name)
    given = {**{k: v for k, v in DEFAULTS.items() if k in wanted}, **dict(params or {})}
    missing, unknown = sorted(set(wanted) - set(given)), sorted(set(given) - set(wanted))
    if missing or unknown:
        raise UserError(f"query {name} takes {', '.join(f'--param {w}=...' for w in wanted) or 'no parameters'}"
                        + (f"; missing {', '.join(missing)}" if missing else "")
                        + (f"; unknown {', '.join(unknown)}" if unknown else ""))
    cursor = con.execute(sql, given or None)
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row)) for row in cursor.fetchall()]


def _param(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep:
        raise UserError(f"--param {text!r}: write name=value")
    for parse in (dt.date.fromisoformat, float):
        try:
            return key, parse(value)
        except ValueError:
            continue
    return key, value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="planet-tiles query", description=__doc__.split("\n\n")[0])
    p.add_argument("name", help="query: the name of a file in infra/bigquery/ (alerts, latest_state, ...)")
    p.add_argument("--scans", required=True, help="scan output prefix, local or gs://")
    p.add_argument("--param", action="append", default=[],
                   help="a query parameter, name=value (dates as YYYY-MM-DD); defaults: "
                        + ", ".join(f"{k}={v}" for k, v in DEFAULTS.items()))
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
