-- One observation per (aoi, tile, scan date), the view every other query starts from.
-- Rules (the same as pipelines/analysis/rules.py; a test runs both on the same Parquet and compares):
--   * A tile seen by several scenes on one scan date counts once: cloud-free rows first, then rows whose
--     cloud mask could be read, then the largest clear_fraction (null, no mask, counts as 1), the largest
--     valid_fraction, the latest acquired, the smallest scene_id.
--   * cloud_free: the row has no 'cloudy' label (haze and partly_cloudy tiles still show the land).
--   * mask_readable: the scene had no cloud mask, or it was read for this tile (mask_status 'absent' or
--     'read'); a tile whose mask could not be read ('unreadable') is never judged.
--   * disturbance: the row's labels among the ten that mark human disturbance of forest.
--   * intact: cloud-free, 'primary', no disturbance label.
-- Create it once per dataset: bq query --use_legacy_sql=false < infra/bigquery/observations.sql
CREATE OR REPLACE VIEW planet_tiles.observations AS
SELECT
  *,
  'cloudy' NOT IN UNNEST(labels) AS cloud_free,
  mask_status != 'unreadable' AS mask_readable,
  ARRAY(
    SELECT label FROM UNNEST(labels) AS label WITH OFFSET AS position
    WHERE label IN ('agriculture', 'cultivation', 'habitation', 'road', 'bare_ground', 'slash_burn', 'selective_logging', 'blow_down', 'conventional_mine', 'artisinal_mine')
    ORDER BY position
  ) AS disturbance,
  'cloudy' NOT IN UNNEST(labels)
    AND 'primary' IN UNNEST(labels)
    AND NOT EXISTS (SELECT 1 FROM UNNEST(labels) AS label WHERE label IN ('agriculture', 'cultivation', 'habitation', 'road', 'bare_ground', 'slash_burn', 'selective_logging', 'blow_down', 'conventional_mine', 'artisinal_mine')) AS intact
FROM planet_tiles.tile_labels
WHERE TRUE
QUALIFY ROW_NUMBER() OVER (
  PARTITION BY aoi, tile_id, scan_date
  ORDER BY 'cloudy' IN UNNEST(labels), mask_status = 'unreadable', COALESCE(clear_fraction, 1) DESC, valid_fraction DESC, acquired DESC NULLS LAST, scene_id
) = 1;
