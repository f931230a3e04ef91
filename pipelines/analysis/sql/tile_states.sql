-- What each tile shows on each scan date, in one word (the report's map colours), and whether it is
-- judged (cloud-free, its cloud mask readable, UDM2 clear_fraction of at least @min_clear_fraction where a
-- mask exists):
--   cloudy     'cloudy' label
--   unjudged   cloud-free by its labels, but the scene's cloud mask could not be read for it
--   obscured   cloud-free by its labels, but too little clear by the UDM2 to judge
--   disturbed  a disturbance label (agriculture, road, habitation, bare ground, burns, mines, ...)
--   water, primary, other   the first that applies
--   bq query --use_legacy_sql=false --parameter=min_clear_fraction:FLOAT64:0.8 < infra/bigquery/tile_states.sql
SELECT aoi, scan_date, tile_id,
  CASE
    WHEN NOT cloud_free THEN 'cloudy'
    WHEN NOT mask_readable THEN 'unjudged'
    WHEN COALESCE(clear_fraction, 1) < @min_clear_fraction THEN 'obscured'
    WHEN ARRAY_LENGTH(disturbance) > 0 THEN 'disturbed'
    WHEN 'water' IN UNNEST(labels) THEN 'water'
    WHEN 'primary' IN UNNEST(labels) THEN 'primary'
    ELSE 'other'
  END AS state,
  cloud_free AND mask_readable AND COALESCE(clear_fraction, 1) >= @min_clear_fraction AS judged,
  geometry, lon, lat, area_m2
FROM planet_tiles.observations;
