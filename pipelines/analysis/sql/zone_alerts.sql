-- Alert area per zone and first-detection date: the events (planet-tiles report --zones writes them to
-- events.parquet; load it into planet_tiles.events) summed over the zones they touch. Hectares inside the
-- zone, not the events' whole areas: area_ha of the alert tiles, cleared_ha of the delineated clearings
-- (0 for events not delineated: their cleared_ha is null).
SELECT zone.name AS zone, first_detected, COUNT(*) AS events, SUM(zone.area_ha) AS area_ha,
  SUM(zone.cleared_ha) AS cleared_ha
FROM planet_tiles.events, UNNEST(zones) AS zone
GROUP BY zone.name, first_detected
ORDER BY zone, first_detected;
