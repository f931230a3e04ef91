"""pipelines: the Beam pipelines and everything around them, grouped by role.

- ``chip``, ``scan``, ``stream``, ``delineate``: the Beam pipelines (each ``python -m pipelines.NAME``), and
  ``demo``;
- ``steps/``: the Beam steps they share (the tile path, applying a bundle, the outcome ledger, commits,
  options, notifications, per-tile alert state, streaming sinks);
- ``analysis/``: what happens to scans (the analysis rules, the BigQuery queries in DuckDB, events,
  clearings, the report);
- ``store/``: the output tables' schema, the warehouse and its Iceberg tables (scans, clearings);
- ``sources/``: imagery sources and the scene reader; ``geo/``: pure geometry (grids, AOIs, the tile spec,
  ground truth from polygons);
- ``cloud/``: Dataflow templates and job submission.
"""

#: The Beam pipelines: each is the module ``pipelines.<name>`` with ``build_parser`` and ``main``. The
#: command line, the Flex Template metadata and the Dataflow image's entry point all read this list.
PIPELINES = ("chip", "scan", "stream", "delineate")
