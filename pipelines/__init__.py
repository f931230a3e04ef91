"""pipelines: the Beam pipelines and everything around them, grouped by role.

- ``chip``, ``scan``, ``stream``: the Beam pipelines (each ``python -m pipelines.NAME``), and ``demo``;
- ``steps/``: the Beam steps they share (the tile path, applying a bundle, the outcome ledger, options,
  notifications, per-tile alert state, streaming sinks);
- ``geo/``: pure geospatial code, no Beam (grids, AOIs, the tile spec, scene reading, labelling from
  polygons, synthetic scenes);
- ``analysis/``: what happens to scans (schemas, the scan layout, the analysis rules, the BigQuery
  queries in DuckDB, the report);
- ``cloud/``: Dataflow templates and job submission.
"""

#: The Beam pipelines: each is the module ``pipelines.<name>`` with ``build_parser`` and ``main``. The
#: command line, the Flex Template metadata and the Dataflow image's entry point all read this list.
PIPELINES = ("chip", "scan", "stream")
