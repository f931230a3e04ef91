"""The BigQuery queries (``pipelines/analysis/sql/``, linked from ``infra/bigquery/``), run locally in DuckDB
on one snapshot of the scans table.

    planet-tiles query alerts --scans scans/ --param start_date=2026-06-01 --param end_date=2026-07-31

The SQL files are written in BigQuery's dialect and are the only copy: here sqlglot transpiles them to
DuckDB, and ``planet_tiles.tile_labels`` becomes the rows of one snapshot of the scans' Iceberg table
(:func:`pipelines.store.scans.snapshot`: the current one, or ``--as_of`` a time): DuckDB reads the data
files the snapshot lists, never a folder listing. ``observations.sql`` defines the view the other
queries start from. BigQuery's ``@name`` parameters become DuckDB's ``$name``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import functools
import json
import re
import sys
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import sqlglot
from sqlglot import exp

from pipelines.analysis import rules
from pipelines.store import catalog, scans
from pipelines.store.catalog import Warehouse
from planet_core import commands
from planet_core.errors import RunFailed, UserError

#: The SQL, package data (``infra/bigquery/`` links to the same files, for analysts running them in BigQuery).
SQL_DIR = resources.files("pipelines.analysis") / "sql"
DATASET = "planet_tiles"
VIEWS = ("observations",)
#: Parameters that have a default here (in BigQuery, pass them with ``--parameter``).
DEFAULTS: dict[str, Any] = {"min_clear_fraction": rules.MIN_CLEAR_FRACTION,
                         "highest_probability": rules.HIGHEST_PROBABILITY}


def names() -> list[str]:
    """The queries (SQL files that are not views)."""
    return sorted(p.name[:-4] for p in SQL_DIR.iterdir() if p.name.endswith(".sql") and p.name[:-4] not in VIEWS)


def sql(name: str) -> str:
    """The BigQuery SQL of query (or view) ``name``."""
    path = SQL_DIR / f"{name}.sql"
    if not path.is_file():
        raise UserError(f"no query {name!r}; queries: {', '.join(names())}")
    return path.read_text(encoding="utf-8")


def to_duckdb(name: str) -> str:
    """Query (or view) ``name`` in DuckDB's dialect, with BigQuery's filters over an array
    (:func:`_as_list_filter`) rewritten as DuckDB list functions."""
    return ";\n".join(statement.sql(dialect="duckdb") for statement in _statements(name))


def _statements(name: str) -> list[exp.Expression]:
    return [statement.transform(_as_list_filter) for statement in sqlglot.parse(sql(name), read="bigquery")]


def create_view(con, view: str) -> bool:  # noqa: ANN001 - duckdb connection
    """View ``view`` of :data:`VIEWS` in ``con``, its first row per key kept by sorting only the rows of keys
    that repeat in the data ``con`` holds (:func:`_first_row_per_key`); whether it sorts any (a key repeats)."""
    statements = [s.transform(functools.partial(_first_row_per_key, con)) for s in _statements(view)]
    for statement in statements:
        con.execute(statement.sql(dialect="duckdb"))
    return any(statement.find(exp.Qualify) for statement in statements)


def _as_list_filter(node: exp.Expression) -> exp.Expression:
    """BigQuery filters an array with a subquery over its elements: ``ARRAY(SELECT x FROM UNNEST(a) AS x
    [WITH OFFSET AS i] WHERE c [ORDER BY i])`` and ``EXISTS(SELECT 1 FROM UNNEST(a) AS x WHERE c)``.
    DuckDB runs such a subquery once per row, as a join: the observations view's two took four fifths of
    its time (5.9 against 1.2 s for 939,000 rows materialized). The same filters as
    ``list_filter(a, lambda x: c)`` (which keeps the elements' order) and a non-empty test of it run as one
    vectorised function. Any other subquery is left as it is."""
    inner = node.this if isinstance(node, exp.Exists) else node.expressions[0] if (
        isinstance(node, exp.Array) and len(node.expressions) == 1) else None
    if not isinstance(inner, exp.Select) or not isinstance(inner.args.get("from_"), exp.From):
        return node
    unnest, where = inner.args["from_"].this, inner.args.get("where")
    if (not isinstance(unnest, exp.Unnest) or len(unnest.expressions) != 1 or where is None
            or not unnest.args.get("alias") or len(unnest.args["alias"].columns) != 1
            or any(inner.args.get(part) for part in ("joins", "group", "having", "qualify", "limit", "distinct"))):
        return node
    element, offset = unnest.args["alias"].columns[0].name, unnest.args.get("offset")
    order = inner.args.get("order")
    by_offset = isinstance(offset, exp.Identifier) and order is not None and [
        o.this.name for o in order.expressions if not o.args.get("desc")] == [offset.name]
    if (any(c.name != element for c in where.this.find_all(exp.Column))
            or (order is not None and not by_offset)):
        return node
    if isinstance(node, exp.Array) and not (
            len(inner.expressions) == 1 and isinstance(inner.expressions[0], exp.Column)
            and inner.expressions[0].name == element):
        return node
    array = exp.Coalesce(this=unnest.expressions[0].copy(), expressions=[exp.Array(expressions=[])])
    kept = exp.ArrayFilter(this=array, expression=exp.Lambda(this=where.this.copy(),
                                                             expressions=[exp.to_identifier(element)]))
    if isinstance(node, exp.Exists):
        return exp.Paren(this=exp.GT(this=exp.Anonymous(this="len", expressions=[kept]),
                                     expression=exp.Literal.number(0)))
    return kept


def _first_row_per_key(con, node: exp.Expression) -> exp.Expression:  # noqa: ANN001 - duckdb connection
    """``SELECT ... FROM t WHERE w QUALIFY ROW_NUMBER() OVER (PARTITION BY k ORDER BY o) = 1`` keeps one row
    per key ``k``, which DuckDB does by sorting every row with all its columns, while a key that one row has
    keeps that row whatever the order; in the observations, a key repeats only where scenes overlap. So the
    keys that repeat are found first, by one aggregate of the key columns alone, into a temporary table:
    none, and the QUALIFY, a no-op, is dropped (the view over 3,756,000 rows: 1.0 against 3.2 s with the
    sort); else the rows of keys that do not repeat are taken as they are (an anti join) and only the
    others sorted, their partitions whole. The same rows either way. Any other QUALIFY is left as it is."""
    qualify, source = node.args.get("qualify"), node.args.get("from_")
    if not isinstance(node, exp.Select) or qualify is None or not isinstance(source, exp.From):
        return node
    first = qualify.this
    window = first.this if isinstance(first, exp.EQ) else None
    if (not isinstance(window, exp.Window) or not isinstance(window.this, exp.RowNumber)
            or first.expression != exp.Literal.number(1) or not isinstance(source.this, exp.Table)
            or not window.args.get("partition_by") or any(
                node.args.get(part) for part in ("joins", "group", "having", "distinct", "order", "limit", "with_"))
            or any(not isinstance(key, exp.Column) or key.table for key in window.args["partition_by"])):
        return node
    table, keys = source.this.alias_or_name, [key.name for key in window.args["partition_by"]]
    repeated = f"repeated_{uuid.uuid4().hex}"  # one table per QUALIFY, whatever else the connection holds
    where = node.args["where"].this.copy() if node.args.get("where") else exp.true()
    found = exp.select(*keys).from_(source.this.copy()).where(where).group_by(*keys).having("COUNT(*) > 1")
    con.execute(f"CREATE OR REPLACE TEMPORARY TABLE {repeated} AS {found.sql(dialect='duckdb')}")
    if not con.execute(f"SELECT COUNT(*) FROM {repeated}").fetchone()[0]:
        kept = node.copy()
        kept.set("qualify", None)
        return kept

    def joined(kind: str) -> exp.Select:
        on = exp.and_(*(exp.NullSafeEQ(this=exp.column(k, table), expression=exp.column(k, repeated)) for k in keys))
        return node.copy().join(exp.to_table(repeated), on=on, join_type=kind)

    single = joined("ANTI")
    single.set("qualify", None)
    return exp.union(single, joined("SEMI"), distinct=False)


def add_judging_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags for the judging parameters of :data:`DEFAULTS`. ``report`` and the streaming scan both take
    them from here, so that the two judge alike and say so alike."""
    parser.add_argument("--min_clear_fraction", type=float, default=rules.MIN_CLEAR_FRACTION,
                        help="observations whose UDM2 clear fraction is below this never confirm or clear an "
                             f"alert (default {rules.MIN_CLEAR_FRACTION}; tiles of scenes without a UDM2 are judged "
                             "by their cloudy label alone)")
    parser.add_argument("--highest_probability", type=float, default=rules.HIGHEST_PROBABILITY,
                        help="a confirmed alert is 'highest' when its disturbance probability is at least this "
                             f"on both observations (default {rules.HIGHEST_PROBABILITY})")


def check_judging_arguments(args: argparse.Namespace) -> None:
    """The judging flags are shares and probabilities: a value outside 0-1 is a :class:`UserError`."""
    for flag in DEFAULTS:
        if not 0 <= getattr(args, flag) <= 1:
            raise UserError(f"--{flag} {getattr(args, flag)}: must be between 0 and 1")


def add_memory_argument(parser: argparse.ArgumentParser) -> None:
    """``--memory_limit``, for the commands that run these queries (``report``, ``query``)."""
    parser.add_argument("--memory_limit", default="1GB",
                        help="DuckDB's memory limit (default 1GB): beyond it the queries spill to a temporary "
                             "folder, so memory does not grow with the number of rows")


def explain(error: duckdb.Error) -> str:
    """A DuckDB error in one line: its first (what follows is generic tuning advice and a link), and for
    running out of ``--memory_limit`` what to do about it."""
    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
    if isinstance(error, duckdb.OutOfMemoryException):
        return f"{first}: give --memory_limit more (past it the queries spill to disk, but some steps need memory)"
    return first


def spill_folder() -> tempfile.TemporaryDirectory:
    """A temporary folder for DuckDB to spill to past ``--memory_limit``, as a context manager that gives
    its path and removes it afterwards (ours alone)."""
    return tempfile.TemporaryDirectory(prefix="planet-tiles-duckdb-", ignore_cleanup_errors=True)


def add_snapshot_arguments(parser: argparse.ArgumentParser) -> None:
    """``--scans``, ``--catalog`` and ``--as_of``: which snapshot of which scans table a reader reads."""
    parser.add_argument("--scans", required=True, help="the scans' warehouse (what scan's --output was), local or gs://")
    catalog.add_argument(parser)
    parser.add_argument("--as_of", help="read the scans as they were at this time (ISO 8601, UTC unless it says "
                                        "otherwise; default: the latest commit)")


def open_snapshot(args: argparse.Namespace, aoi: str | None = None) -> scans.Snapshot:
    """The snapshot the flags of :func:`add_snapshot_arguments` name, narrowed to ``aoi``."""
    as_of = None
    if args.as_of:
        try:
            as_of = dt.datetime.fromisoformat(args.as_of)
        except ValueError:
            raise UserError(
                f"--as_of {args.as_of!r}: write a time as YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][+HH:MM]"
            ) from None
        as_of = as_of if as_of.tzinfo else as_of.replace(tzinfo=dt.timezone.utc)
    return scans.snapshot(Warehouse(args.scans, args.catalog), aoi, as_of)


def connect(snapshot: scans.Snapshot, events: str | None = None, materialize: bool = False,  # noqa: ANN201
            memory_limit: str | None = None, spill: str | None = None):
    """An in-memory DuckDB (``duckdb.DuckDBPyConnection``) with ``planet_tiles.tile_labels`` the rows of
    ``snapshot``, ``planet_tiles.events`` over an ``events.parquet`` when given, and the views.
    ``materialize``, for a caller that runs several queries (the report), makes a view that sorts (some key
    repeats: :func:`create_view`) a table of the columns the queries read (:func:`_materialize`), sorted
    once; a view that does not is left a view, each query reading only its own columns of the files, which
    is faster than a copy of them all (the report over 3,756,000 rows: 7.1 against 8.5 s). ``memory_limit``
    (DuckDB's, e.g. ``1GB``) bounds what DuckDB holds in memory whatever the number of rows: beyond it
    DuckDB spills to the folder ``spill`` (:func:`spill_folder`).

    Local data files are read by DuckDB itself (projection and filters pushed into the Parquet reader);
    remote ones, or a snapshot with row-level deletes another engine wrote, through pyiceberg's reader."""
    where = f" for AOI {snapshot.aoi}" if snapshot.aoi else ""
    if not snapshot.files:
        raise UserError(f"--scans {snapshot.warehouse.location}: no scan rows{where}")
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")  # a bar on stderr is noise in logs and pipes
    if memory_limit:
        try:
            con.execute(f"SET memory_limit = {_quote(memory_limit)}")
        except duckdb.Error as error:
            raise UserError(f"--memory_limit {memory_limit}: not a memory size like 1GB or 512MB "
                            f"({str(error).splitlines()[0]})") from None
        con.execute("SET preserve_insertion_order = false")  # lets large results stream instead of buffering
    if spill:
        con.execute(f"SET temp_directory = {_quote(spill)}")
    con.execute(f"CREATE SCHEMA {DATASET}")
    if snapshot.warehouse.local and not snapshot.has_deletes:
        files = ", ".join(_quote(path) for path in snapshot.files)
        con.execute(f"CREATE VIEW {DATASET}.tile_labels AS SELECT * FROM read_parquet([{files}], union_by_name = true)")
    else:
        con.register("snapshot_rows", snapshot.arrow_reader())
        con.execute(f"CREATE TABLE {DATASET}.tile_labels AS SELECT * FROM snapshot_rows")
        con.unregister("snapshot_rows")
    if events is not None:
        _events_view(con, events)
    for view in VIEWS:
        if create_view(con, view) and materialize:
            _materialize(con, view)
    return con


#: Columns that make a Parquet file a report's events table (older reports lack some later ones).
EVENT_IDENTITY = frozenset({"event_id", "aoi", "first_detected", "area_ha", "zones"})


def _events_view(con, events: str) -> None:  # noqa: ANN001 - duckdb connection
    """``planet_tiles.events`` over a report's ``events.parquet``, checked to be one: a missing file, a folder or
    another table is a :class:`UserError` naming ``--events``, not DuckDB's traceback."""
    try:
        con.execute(f"CREATE VIEW {DATASET}.events AS SELECT * FROM read_parquet({_quote(events)})")
        names = {d[0] for d in con.execute(f"SELECT * FROM {DATASET}.events LIMIT 0").description}
    except duckdb.Error as error:
        raise UserError(f"--events {events}: not readable as Parquet ({explain(error)})") from None
    missing = sorted(EVENT_IDENTITY - names)
    if missing:
        raise UserError(f"--events {events}: not a report's events table (no {', '.join(missing)}); give "
                        "REPORT/current/events.parquet")


def _materialize(con, view: str) -> None:  # noqa: ANN001 - duckdb connection
    """Replace ``view`` by a table of its rows, holding only the columns some query names
    (:func:`_named_columns`): the rest (the other labels' probabilities, the bounding box, the scene's URI,
    ...) would only be carried through the sort and held, a third of its time (7.7 against 4.9 s for
    3,756,000 rows under a 1 GB limit)."""
    table = f"{DATASET}.{view}"
    columns = [d[0] for d in con.execute(f"SELECT * FROM {table} LIMIT 0").description]
    kept = [c for c in columns if c in _named_columns()]
    con.execute(f"CREATE TABLE {table}_rows AS SELECT {', '.join(kept)} FROM {table}")
    con.execute(f"DROP VIEW {table}")
    con.execute(f"ALTER TABLE {table}_rows RENAME TO {view}")


@functools.cache
def _named_columns() -> frozenset[str]:
    """Every column name that some query (not a view) names: among them all that the report's and the
    map's own SQL reads (``aoi``, ``tile_id``, ``scan_date``, ``lon``, ``lat``, ``area_m2``)."""
    return frozenset(column.name for name in names() for statement in sqlglot.parse(sql(name), read="bigquery")
                     for column in statement.find_all(exp.Column))


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def scan_dates(con) -> list[dt.date]:  # noqa: ANN001 - duckdb connection
    """The scan dates of the snapshot in ``con``, oldest first."""
    return [d for (d,) in con.execute(f"SELECT DISTINCT scan_date FROM {DATASET}.observations ORDER BY scan_date")
            .fetchall()]


def alerts(con, dates: Sequence[dt.date], min_clear_fraction: float,  # noqa: ANN001 - duckdb connection
           highest_probability: float) -> list[rules.Alert]:
    """``alerts.sql`` over every scan date of ``dates``, as :class:`~pipelines.analysis.rules.Alert` values:
    what ``report`` and ``delineate`` both start from. Built from the result's columns in the order of the
    value's fields, without a dict per row first (52,497 alerts: 0.33 against 0.46 s past the query)."""
    cursor = execute(con, "alerts", {"min_clear_fraction": min_clear_fraction, "start_date": dates[0],
                                     "end_date": dates[-1], "highest_probability": highest_probability})
    names = [d[0] for d in cursor.description]
    columns = dict(zip(names, zip(*cursor.fetchall()))) or dict.fromkeys(names, ())
    columns["labels_gained"] = map(tuple, columns["labels_gained"])
    columns["geometry"] = map(bytes, columns["geometry"])
    return list(map(rules.Alert, *(columns[f.name] for f in dataclasses.fields(rules.Alert) if f.name in columns)))


def parameters(name: str) -> list[str]:
    """The ``@name`` parameters query ``name`` takes."""
    return sorted(set(re.findall(r"@(\w+)", sql(name))))


def run(con, name: str, params: Mapping[str, Any] | None = None) -> list[dict]:  # noqa: ANN001
    """Rows of query ``name`` as dicts; a missing or unknown parameter is a :class:`UserError`
    (:data:`DEFAULTS` fill the ones that have a default)."""
    cursor = execute(con, name, params)
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row)) for row in cursor.fetchall()]


def batches(con, name: str, params: Mapping[str, Any] | None = None, columns: Sequence[str] = (),  # noqa: ANN001, ANN201
            rows: int = 262_144):
    """Query ``name``'s result (only ``columns`` when given) as a ``pyarrow.RecordBatchReader``: for
    results too large to hold as dicts. A relation, not a cursor: DuckDB streams a relation's batches,
    where a cursor's Arrow reader copies the whole result first."""
    sql, given = _bound(name, params, columns)
    return con.sql(sql, params=given or None).to_arrow_reader(rows)


def execute(con, name: str, params: Mapping[str, Any] | None = None, columns: Sequence[str] = (),  # noqa: ANN001, ANN201
            where: str | None = None):
    """Run query ``name`` with its parameters checked (only ``columns`` of the rows that pass ``where``, a
    DuckDB condition, when given); the DuckDB cursor."""
    sql, given = _bound(name, params, columns, where)
    return con.execute(sql, given or None)


def _bound(name: str, params: Mapping[str, Any] | None, columns: Sequence[str] = (),
           where: str | None = None) -> tuple[str, dict[str, Any]]:
    """Query ``name``'s DuckDB SQL (narrowed to ``columns`` and ``where``) and its checked parameters."""
    sql = to_duckdb(name)
    if columns or where:
        sql = (f"SELECT {', '.join(columns) or '*'} FROM ({sql.rstrip().rstrip(';')})"
               + (f" WHERE {where}" if where else ""))
    wanted = parameters(name)
    given = {**{k: v for k, v in DEFAULTS.items() if k in wanted}, **dict(params or {})}
    missing, unknown = sorted(set(wanted) - set(given)), sorted(set(given) - set(wanted))
    if missing or unknown:
        raise UserError(f"query {name} takes {', '.join(f'--param {w}=...' for w in wanted) or 'no parameters'}"
                        + (f"; missing {', '.join(missing)}" if missing else "")
                        + (f"; unknown {', '.join(unknown)}" if unknown else ""))
    for key, value in given.items():  # DuckDB would take "yesterday" for a date and fail as a run
        if key.endswith("_date") and not isinstance(value, dt.date):
            raise UserError(f"--param {key}={value}: write the date as YYYY-MM-DD")
        if key in DEFAULTS and not (isinstance(value, (int, float)) and 0 <= value <= 1):
            raise UserError(f"--param {key}={value}: must be a number between 0 and 1")
    if "start_date" in given and "end_date" in given and given["end_date"] < given["start_date"]:
        raise UserError(f"--param end_date={given['end_date']} is before start_date={given['start_date']}: "
                        "no row could be in that range")
    return sql, given


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
    p = commands.parser("query", __doc__)
    p.add_argument("name", help="query: the name of a file in pipelines/analysis/sql/ (alerts, latest_state, ...)")
    add_snapshot_arguments(p)
    p.add_argument("--events", help="a report's events.parquet, as planet_tiles.events (for zone_alerts)")
    p.add_argument("--param", action="append", default=[],
                   help="a query parameter, name=value (dates as YYYY-MM-DD); defaults: "
                        + ", ".join(f"{k}={v}" for k, v in DEFAULTS.items()))
    p.add_argument("--show_sql", action="store_true", help="print the DuckDB SQL instead of running it")
    add_memory_argument(p)
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sql = to_duckdb(args.name)
    if args.show_sql:
        print(sql)
        return
    if f"{DATASET}.events" in sql and not args.events:
        raise UserError(f"query {args.name} reads planet_tiles.events: give --events REPORT/events.parquet")
    params: dict[str, Any] = {}
    for key, value in map(_param, args.param):
        if key in params:
            raise UserError(f"--param {key} is given twice ({params[key]} and {value}): give it once")
        params[key] = value
    snapshot = open_snapshot(args)
    with spill_folder() as spill:
        try:  # connecting reads the files' metadata: it may run out of --memory_limit too
            con = connect(snapshot, events=args.events, memory_limit=args.memory_limit, spill=spill)
            for batch in batches(con, args.name, params):  # rows stream out: memory does not grow with them
                sys.stdout.write("".join(f"{line}\n" for line in json_lines(batch)))
        except duckdb.Error as error:  # out of --memory_limit, a full spill disk, unreadable files
            raise RunFailed(f"query {args.name} failed: {explain(error)}") from None


def json_lines(batch: pa.RecordBatch) -> list[str]:
    """The rows of ``batch`` but their geometry as JSON objects, values JSON has no type for (dates, times)
    as Python writes them (``str``). Built column by column: such a column's distinct values are written
    once (a scan date or an acquisition time repeats over thousands of rows), four times faster than
    ``json.dumps(row, default=str)`` row by row."""
    names, columns = [], []
    for name, column in zip(batch.schema.names, batch.columns):
        if name == "geometry":
            continue
        names.append(name)
        if pa.types.is_temporal(column.type) or pa.types.is_decimal(column.type):
            encoded = pc.dictionary_encode(column)
            text = [None if value is None else str(value) for value in encoded.dictionary.to_pylist()]
            columns.append([None if i is None else text[i] for i in encoded.indices.to_pylist()])
        else:
            columns.append(column.to_pylist())
    encode = json.JSONEncoder(default=str).encode  # str: a date inside a list or a struct
    return [encode(dict(zip(names, values))) for values in zip(*columns)]


if __name__ == "__main__":
    main()
