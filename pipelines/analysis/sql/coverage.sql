-- Coverage per AOI and scan date, so that "no alerts" is never read as "nothing happened": the share of
-- the AOI's area seen and judged (cloud-free, UDM2 clear_fraction of at least @min_clear_fraction where a
-- mask exists), seen but obscured (cloudy, or too little clear by the mask), seen but not judged because
-- the scene's cloud mask could not be read there, and not covered by any scene that date. The AOI's area is that of every tile any scan of the AOI saw (the scans cover the AOI's
-- tiles, so one full scan makes it the AOI's tiled area).
--   bq query --use_legacy_sql=false --parameter=min_clear_fraction:FLOAT64:0.8 < infra/bigquery/coverage.sql
WITH tiles AS (
  SELECT aoi, tile_id, MAX(area_m2) AS area_m2
  FROM planet_tiles.observations
  GROUP BY aoi, tile_id
),
aois AS (
  SELECT aoi, COUNT(*) AS aoi_tiles, SUM(area_m2) AS aoi_m2
  FROM tiles
  GROUP BY aoi
),
seen AS (
  SELECT aoi, scan_date, COUNT(*) AS seen_tiles,
    SUM(IF(cloud_free AND mask_readable AND COALESCE(clear_fraction, 1) >= @min_clear_fraction, area_m2, 0)) AS judged_m2,
    SUM(IF(mask_readable AND NOT (cloud_free AND COALESCE(clear_fraction, 1) >= @min_clear_fraction), area_m2, 0))
      + SUM(IF(NOT mask_readable AND NOT cloud_free, area_m2, 0)) AS obscured_m2,
    SUM(IF(NOT mask_readable AND cloud_free, area_m2, 0)) AS unjudged_m2
  FROM planet_tiles.observations
  GROUP BY aoi, scan_date
)
SELECT s.aoi, s.scan_date, a.aoi_tiles, s.seen_tiles, a.aoi_m2 / 1e6 AS aoi_km2,
  s.judged_m2 / a.aoi_m2 AS judged_share,
  s.obscured_m2 / a.aoi_m2 AS obscured_share,
  s.unjudged_m2 / a.aoi_m2 AS mask_unreadable_share,
  (a.aoi_m2 - s.judged_m2 - s.obscured_m2 - s.unjudged_m2) / a.aoi_m2 AS not_covered_share
FROM seen AS s
JOIN aois AS a ON a.aoi = s.aoi
ORDER BY s.aoi, s.scan_date;
