"""pipelines: Apache Beam pipelines (chipping, regional scans) and the geospatial pieces they share."""
