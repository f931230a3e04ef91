-- Alerts between two dates: tiles whose last judged observation was intact forest and whose judged
-- observation on a scan date from @start_date to @end_date (DATE parameters, inclusive) has disturbance
-- labels. The observation before may lie before @start_date. Judged: cloud-free, and a UDM2 clear_fraction
-- of at least @min_clear_fraction (0.8 in planet-tiles; rows without a mask pass). Other observations
-- are skipped: a tile keeps its last judged state through them. confidence = 1 - prod(1 - p) over the
-- labels gained.
--   bq query --use_legacy_sql=false --parameter=start_date:DATE:2026-06-01 \
--     --parameter=end_date:DATE:2026-07-31 --parameter=min_clear_fraction:FLOAT64:0.8 < infra/bigquery/alerts.sql
WITH paired AS (
  SELECT *,
    LAG(scan_date) OVER tile AS before_date,
    LAG(scene_id) OVER tile AS before_scene,
    LAG(intact) OVER tile AS before_intact
  FROM planet_tiles.observations
  WHERE cloud_free AND COALESCE(clear_fraction, 1) >= @min_clear_fraction AND scan_date <= @end_date
  WINDOW tile AS (PARTITION BY aoi, tile_id ORDER BY scan_date)
),
changed AS (
  SELECT *, disturbance AS labels_gained
  FROM paired
  WHERE before_intact AND ARRAY_LENGTH(disturbance) > 0 AND scan_date >= @start_date
)
SELECT aoi, tile_id, before_date, scan_date AS after_date, before_scene, scene_id AS after_scene,
  acquired AS after_acquired, labels_gained,
  1 - (
    (1 - IF('agriculture' IN UNNEST(labels_gained), p_agriculture, 0))
    * (1 - IF('cultivation' IN UNNEST(labels_gained), p_cultivation, 0))
    * (1 - IF('habitation' IN UNNEST(labels_gained), p_habitation, 0))
    * (1 - IF('road' IN UNNEST(labels_gained), p_road, 0))
    * (1 - IF('bare_ground' IN UNNEST(labels_gained), p_bare_ground, 0))
    * (1 - IF('slash_burn' IN UNNEST(labels_gained), p_slash_burn, 0))
    * (1 - IF('selective_logging' IN UNNEST(labels_gained), p_selective_logging, 0))
    * (1 - IF('blow_down' IN UNNEST(labels_gained), p_blow_down, 0))
    * (1 - IF('conventional_mine' IN UNNEST(labels_gained), p_conventional_mine, 0))
    * (1 - IF('artisinal_mine' IN UNNEST(labels_gained), p_artisinal_mine, 0))
  ) AS confidence,
  geometry, lon, lat, area_m2
FROM changed
ORDER BY aoi, after_date, confidence DESC, tile_id;
