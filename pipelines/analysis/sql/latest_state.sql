-- Latest state per tile: its latest cloud-free observation, or its latest observation if it never was
-- cloud-free (then its labels say 'cloudy').
SELECT aoi, tile_id, scan_date, scene_id, acquired, labels, cloud_free, geometry, lon, lat, area_m2
FROM planet_tiles.observations
WHERE TRUE
QUALIFY ROW_NUMBER() OVER (PARTITION BY aoi, tile_id ORDER BY cloud_free DESC, scan_date DESC) = 1
ORDER BY aoi, tile_id;
