-- Alerts first detected from @start_date to @end_date (DATE parameters, inclusive), in their state as of
-- @end_date. Rules (the same as pipelines/analysis/rules.py, which the streaming scan runs per tile; a test
-- runs both on the same Parquet and compares them with hand-worked answers):
--   * Judged: cloud-free, its cloud mask readable, and a UDM2 clear_fraction of at least @min_clear_fraction
--     (rows of scenes without a mask pass). Other observations are skipped: a tile keeps its last judged
--     state through them.
--   * Alert: a judged observation with disturbance labels after a judged observation of intact forest (which
--     may lie before @start_date). alert_id: 16 hex digits of SHA-256 of tile_id|first_detected.
--   * probability = 1 - prod(1 - p) over the disturbance labels.
--   * confidence: low; high when the next judged observation also shows disturbance; highest when confirmed
--     and both probabilities are at least @highest_probability.
--   * status: retracted from the first later judged observation of intact forest, else active.
--   bq query --use_legacy_sql=false --parameter=start_date:DATE:2026-06-01 \
--     --parameter=end_date:DATE:2026-07-31 --parameter=min_clear_fraction:FLOAT64:0.8 \
--     --parameter=highest_probability:FLOAT64:0.9 < infra/bigquery/alerts.sql
WITH judged AS (
  SELECT *,
    1 - (
      (1 - IF('agriculture' IN UNNEST(disturbance), p_agriculture, 0))
      * (1 - IF('cultivation' IN UNNEST(disturbance), p_cultivation, 0))
      * (1 - IF('habitation' IN UNNEST(disturbance), p_habitation, 0))
      * (1 - IF('road' IN UNNEST(disturbance), p_road, 0))
      * (1 - IF('bare_ground' IN UNNEST(disturbance), p_bare_ground, 0))
      * (1 - IF('slash_burn' IN UNNEST(disturbance), p_slash_burn, 0))
      * (1 - IF('selective_logging' IN UNNEST(disturbance), p_selective_logging, 0))
      * (1 - IF('blow_down' IN UNNEST(disturbance), p_blow_down, 0))
      * (1 - IF('conventional_mine' IN UNNEST(disturbance), p_conventional_mine, 0))
      * (1 - IF('artisinal_mine' IN UNNEST(disturbance), p_artisinal_mine, 0))
    ) AS probability
  FROM planet_tiles.observations
  WHERE cloud_free AND mask_readable AND COALESCE(clear_fraction, 1) >= @min_clear_fraction AND scan_date <= @end_date
),
sequenced AS (
  SELECT *,
    LAG(scan_date) OVER tile AS before_date,
    LAG(scene_id) OVER tile AS before_scene,
    LAG(intact) OVER tile AS before_intact,
    LEAD(scan_date) OVER tile AS next_date,
    LEAD(ARRAY_LENGTH(disturbance) > 0) OVER tile AS next_disturbed,
    LEAD(probability) OVER tile AS next_probability,
    MIN(IF(intact, scan_date, NULL)) OVER (
      PARTITION BY aoi, tile_id ORDER BY scan_date ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING
    ) AS retracted_date,
    MAX(scan_date) OVER (PARTITION BY aoi, tile_id) AS last_judged
  FROM judged
  WINDOW tile AS (PARTITION BY aoi, tile_id ORDER BY scan_date)
)
SELECT
  SUBSTR(TO_HEX(SHA256(CONCAT(tile_id, '|', CAST(scan_date AS STRING)))), 1, 16) AS alert_id,
  aoi, tile_id, before_date, before_scene, scan_date AS first_detected, scene_id AS detected_scene,
  acquired AS detected_acquired, disturbance AS labels_gained, probability,
  CASE
    WHEN NOT COALESCE(next_disturbed, FALSE) THEN 'low'
    WHEN probability >= @highest_probability AND next_probability >= @highest_probability THEN 'highest'
    ELSE 'high'
  END AS confidence,
  IF(COALESCE(next_disturbed, FALSE), next_date, NULL) AS confirmed_date,
  IF(retracted_date IS NULL, 'active', 'retracted') AS status,
  retracted_date, last_judged, geometry, lon, lat, area_m2
FROM sequenced
WHERE before_intact AND ARRAY_LENGTH(disturbance) > 0 AND scan_date >= @start_date
ORDER BY aoi, first_detected, probability DESC, tile_id;
