-- Label area per AOI and scan date: tiles carrying each label and their area (km2), one observation per
-- tile and date, cloudy ones included (their labels say 'cloudy').
SELECT aoi, scan_date, label, COUNT(*) AS tiles, SUM(area_m2) / 1e6 AS area_km2
FROM planet_tiles.observations, UNNEST(labels) AS label
GROUP BY aoi, scan_date, label
ORDER BY aoi, scan_date, label;
