"""The analysis rules of scan output, in Python: the same rules as the BigQuery queries in ``infra/bigquery/``.

Every function here has a query of the same name (``observations`` is the CTE the others start from),
and a test runs each query in DuckDB on the same Parquet and compares: one analysis, two engines.

Rules:

- **Observation**: a scan row. A tile seen by several scenes on one scan date (scene overlaps) counts
  once: its cloud-free rows first, then rows whose cloud mask could be read, then the largest
  ``clear_fraction`` (null counts as 1), the largest ``valid_fraction``, the latest ``acquired``, the
  smallest ``scene_id``.
- **Cloud-free**: an observation without ``cloudy`` (the ``clear`` weather label is a different thing:
  hazy and partly cloudy tiles are cloud-free here, since land shows through).
- **Judged**: what change detection uses: a cloud-free observation whose cloud mask could be read and whose
  UDM2 ``clear_fraction`` is at least ``min_clear_fraction`` (:data:`MIN_CLEAR_FRACTION` unless given; a row
  of a scene without a mask passes; one whose mask was there but unreadable, ``mask_status`` ``unreadable``,
  is never judged).
  Other observations never confirm or clear an alert: a tile keeps its last judged state through them.
- **Intact forest**: a cloud-free observation with ``primary`` and none of :data:`DISTURBANCE_LABELS`.
- **Alert**: a judged observation with one or more disturbance labels whose tile's previous
  judged observation was intact forest; ``first_detected`` is its scan date and ``alert_id`` a hash of the
  tile id and that date (:func:`alert_id`), the same from a re-run, another AOI or the streaming scan.
  ``probability = 1 - prod(1 - p)`` over the labels gained: the chance that at least one of them is real,
  taking the labels as independent.
- **Confidence**, as Global Forest Watch's integrated alerts grade theirs: ``low`` after one judged
  observation; ``high`` when the tile's next judged observation also shows disturbance (``confirmed_date``);
  ``highest`` when confirmed and the probability of the disturbance labels is at least
  ``highest_probability`` (:data:`HIGHEST_PROBABILITY`) on both observations.
- **Retraction**: a later judged observation of intact forest retracts the alert (``status`` ``retracted``,
  ``retracted_date``; the row stays). A tile disturbed again after that raises a new alert.
  Observations that are not judged never confirm or retract.
- **Areas** sum ``area_m2`` (the tile's geodesic area) of one observation per tile and date.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pipelines.store.schema import MASK_UNREADABLE
from planet_core.labels import DISTURBANCE_LABELS, LABELS, LAND_LABELS

#: Below this share of clear pixels by the scene's UDM2, an observation is too cloudy to judge change
#: (``--min_clear_fraction`` of report and the streaming scan; the ``min_clear_fraction`` query parameter).
MIN_CLEAR_FRACTION = 0.8
#: A confirmed alert is ``highest`` when the disturbance probability is at least this on both observations
#: (``--highest_probability``; the ``highest_probability`` query parameter).
HIGHEST_PROBABILITY = 0.9
CONFIDENCE_LEVELS = ("low", "high", "highest")
STATUSES = ("active", "retracted")


@dataclass(frozen=True)
class Observation:
    """One tile on one scan date (the row chosen among the scenes that saw it)."""

    aoi: str
    tile_id: str
    scan_date: dt.date
    scene_id: str
    acquired: dt.datetime | None
    valid_fraction: float
    clear_fraction: float | None
    mask_status: str
    labels: tuple[str, ...]
    probabilities: dict[str, float]
    geometry: bytes
    lon: float
    lat: float
    area_m2: float

    @property
    def cloud_free(self) -> bool:
        return "cloudy" not in self.labels

    @property
    def mask_readable(self) -> bool:
        return self.mask_status != MASK_UNREADABLE

    def judged(self, min_clear_fraction: float = MIN_CLEAR_FRACTION) -> bool:
        """Cloud-free, its mask readable, and clear enough by the UDM2 (when the scene had one) to confirm or
        clear an alert."""
        return self.cloud_free and self.mask_readable and (
            self.clear_fraction is None or self.clear_fraction >= min_clear_fraction)

    @property
    def disturbance(self) -> tuple[str, ...]:
        return tuple(name for name in self.labels if name in DISTURBANCE_LABELS)

    @property
    def intact(self) -> bool:
        return self.cloud_free and "primary" in self.labels and not self.disturbance


@dataclass(frozen=True)
class Alert:
    """Forest that turned into something else between two judged observations of a tile, with its state as
    of the last judged observation: confidence level and status."""

    alert_id: str
    aoi: str
    tile_id: str
    before_date: dt.date
    before_scene: str
    first_detected: dt.date
    detected_scene: str
    detected_acquired: dt.datetime | None
    labels_gained: tuple[str, ...]
    probability: float
    confidence: str
    confirmed_date: dt.date | None
    status: str
    retracted_date: dt.date | None
    last_judged: dt.date
    geometry: bytes
    lon: float
    lat: float
    area_m2: float
    #: Hectares of its event's clearings inside the tile (pipelines.analysis.clearings); None until delineated.
    cleared_ha: float | None = None


def observations(rows: Iterable[dict]) -> list[Observation]:
    """One observation per (aoi, tile, scan date), chosen as the module docstring says."""
    best: dict[tuple, tuple] = {}
    for row in rows:
        obs = Observation(
            aoi=row["aoi"], tile_id=row["tile_id"], scan_date=row["scan_date"], scene_id=row["scene_id"],
            acquired=row["acquired"], valid_fraction=float(row["valid_fraction"]),
            clear_fraction=None if row.get("clear_fraction") is None else float(row["clear_fraction"]),
            mask_status=row["mask_status"],
            labels=tuple(row["labels"]),
            probabilities={name: float(row[f"p_{name}"]) for name in LABELS}, geometry=row["geometry"],
            lon=row["lon"], lat=row["lat"], area_m2=row["area_m2"])
        key = (obs.aoi, obs.tile_id, obs.scan_date)
        rank = _rank(obs)
        if key not in best or rank < best[key][0]:
            best[key] = (rank, obs)
    return sorted((obs for _, obs in best.values()), key=lambda o: (o.aoi, o.tile_id, o.scan_date))


def _rank(obs: Observation) -> tuple:
    acquired = obs.acquired.timestamp() if obs.acquired else -math.inf
    clear = 1.0 if obs.clear_fraction is None else obs.clear_fraction
    return (not obs.cloud_free, not obs.mask_readable, -clear, -obs.valid_fraction, -acquired, obs.scene_id)


def latest_state(obs: Sequence[Observation]) -> list[Observation]:
    """Per tile, its latest cloud-free observation, or its latest observation if it never was cloud-free."""
    latest: dict[tuple, Observation] = {}
    for o in obs:
        key = (o.aoi, o.tile_id)
        held = latest.get(key)
        if held is None or (o.cloud_free, o.scan_date) > (held.cloud_free, held.scan_date):
            latest[key] = o
    return sorted(latest.values(), key=lambda o: (o.aoi, o.tile_id))


def label_areas(obs: Sequence[Observation]) -> list[dict]:
    """Per AOI, scan date and label present: tiles and area (km2)."""
    totals: dict[tuple, list] = defaultdict(lambda: [0, 0.0])
    for o in obs:
        for name in o.labels:
            total = totals[(o.aoi, o.scan_date, name)]
            total[0] += 1
            total[1] += o.area_m2
    return [{"aoi": aoi, "scan_date": date, "label": name, "tiles": n, "area_km2": area / 1e6}
            for (aoi, date, name), (n, area) in sorted(totals.items(), key=lambda kv: (kv[0][0], kv[0][1],
                                                                                          LABELS.index(kv[0][2])))]


def label_trends(obs: Sequence[Observation]) -> list[dict]:
    """Per AOI, land label and scan date: area and share of the cloud-free area, and the share's change.

    Only cloud-free observations count, and the share divides by the cloud-free area seen that date, so
    that clouds do not look like a loss. Every land label appears on every scan date of an AOI (zero
    when absent), so the change compares consecutive scan dates.
    """
    dates: dict[str, set] = defaultdict(set)
    seen: dict[tuple, float] = defaultdict(float)
    area: dict[tuple, float] = defaultdict(float)
    for o in obs:
        dates[o.aoi].add(o.scan_date)
        if o.cloud_free:
            seen[(o.aoi, o.scan_date)] += o.area_m2
            for name in o.labels:
                area[(o.aoi, name, o.scan_date)] += o.area_m2
    out = []
    for aoi in sorted(dates):
        for name in LAND_LABELS:
            previous = None
            for date in sorted(dates[aoi]):
                total = seen[(aoi, date)]
                share = area[(aoi, name, date)] / total if total else None
                out.append({"aoi": aoi, "label": name, "scan_date": date, "area_km2": area[(aoi, name, date)] / 1e6,
                            "cloud_free_km2": total / 1e6, "share": share,
                            "share_change": None if previous is None or share is None else share - previous})
                previous = share
    return out


def alerts(obs: Sequence[Observation], start: dt.date | None = None, end: dt.date | None = None,
           min_clear_fraction: float = MIN_CLEAR_FRACTION,
           highest_probability: float = HIGHEST_PROBABILITY) -> list[Alert]:
    """Alerts first detected between ``start`` and ``end`` (inclusive; open when None), in their state as of
    ``end``: observations after it neither confirm nor retract.

    The observation before may lie before ``start``: a tile's last judged state is whenever it was seen.
    """
    by_tile: dict[tuple, list[Observation]] = defaultdict(list)
    for o in obs:
        if o.judged(min_clear_fraction) and (end is None or o.scan_date <= end):
            by_tile[(o.aoi, o.tile_id)].append(o)
    found = []
    for series in by_tile.values():
        series.sort(key=lambda o: o.scan_date)
        for i, (before, after) in enumerate(zip(series, series[1:])):
            if not (before.intact and after.disturbance and (start is None or after.scan_date >= start)):
                continue
            later = series[i + 2:]
            confirming = later[0] if later and later[0].disturbance else None
            found_p = probability(after, after.disturbance)
            if confirming is None:
                level = "low"
            elif min(found_p, probability(confirming, confirming.disturbance)) >= highest_probability:
                level = "highest"
            else:
                level = "high"
            retracted = next((o.scan_date for o in later if o.intact), None)
            found.append(Alert(
                alert_id=alert_id(after.tile_id, after.scan_date), aoi=after.aoi, tile_id=after.tile_id,
                before_date=before.scan_date, before_scene=before.scene_id, first_detected=after.scan_date,
                detected_scene=after.scene_id, detected_acquired=after.acquired, labels_gained=after.disturbance,
                probability=found_p, confidence=level,
                confirmed_date=confirming.scan_date if confirming else None,
                status="retracted" if retracted else "active", retracted_date=retracted,
                last_judged=series[-1].scan_date, geometry=after.geometry, lon=after.lon, lat=after.lat,
                area_m2=after.area_m2))
    return sorted(found, key=lambda a: (a.aoi, a.first_detected, -a.probability, a.tile_id))


def probability(obs: Observation, gained: Sequence[str]) -> float:
    """``1 - prod(1 - p)`` over the labels ``gained``: the chance that at least one of them is real."""
    return 1.0 - math.prod(1.0 - obs.probabilities[name] for name in gained)


def alert_id(tile_id: str, first_detected: dt.date) -> str:
    """16 hex digits of SHA-256 of ``tile_id|YYYY-MM-DD`` (in BigQuery:
    ``SUBSTR(TO_HEX(SHA256(CONCAT(tile_id, '|', CAST(first_detected AS STRING)))), 1, 16)``)."""
    return hashlib.sha256(f"{tile_id}|{first_detected.isoformat()}".encode()).hexdigest()[:16]
