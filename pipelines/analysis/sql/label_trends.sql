-- Land label trends per AOI: area and share of the cloud-free area seen on each scan date, and the
-- share's change since the previous scan date. Only cloud-free observations count, so that clouds do
-- not look like a loss; every land label appears on every scan date (zero when absent).
WITH dates AS (
  SELECT aoi, scan_date, SUM(IF(cloud_free, area_m2, 0)) AS cloud_free_m2
  FROM planet_tiles.observations
  GROUP BY aoi, scan_date
),
land AS (
  SELECT label
  FROM UNNEST(['primary', 'agriculture', 'water', 'habitation', 'road', 'cultivation', 'bare_ground',
               'slash_burn', 'selective_logging', 'blooming', 'conventional_mine', 'artisinal_mine',
               'blow_down']) AS label
),
areas AS (
  SELECT aoi, scan_date, label, SUM(area_m2) AS area_m2
  FROM planet_tiles.observations, UNNEST(labels) AS label
  WHERE cloud_free
  GROUP BY aoi, scan_date, label
),
filled AS (
  SELECT d.aoi, l.label, d.scan_date, COALESCE(a.area_m2, 0) AS area_m2, d.cloud_free_m2,
    IF(d.cloud_free_m2 > 0, COALESCE(a.area_m2, 0) / d.cloud_free_m2, NULL) AS share
  FROM dates AS d
  CROSS JOIN land AS l
  LEFT JOIN areas AS a ON a.aoi = d.aoi AND a.scan_date = d.scan_date AND a.label = l.label
)
SELECT aoi, label, scan_date, area_m2 / 1e6 AS area_km2, cloud_free_m2 / 1e6 AS cloud_free_km2, share,
  share - LAG(share) OVER (PARTITION BY aoi, label ORDER BY scan_date) AS share_change
FROM filled
ORDER BY aoi, label, scan_date;
