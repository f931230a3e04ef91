"""Where outputs live and how they are committed: the output tables' one schema definition, the
warehouse and its Apache Iceberg catalog, the scans table (commits and snapshots), its upkeep
(``planet-tiles maintain``) and the import of scans written before tables (``planet-tiles migrate``)."""
