"""Applying a model bundle to tiles: the scans' shared steps from pixels to rows.

:class:`BundleModelHandler` is a Beam ``ModelHandler`` that loads the bundle's model file once per worker and
predicts batches (Beam 2.77's built-in TensorFlow handler needs tensorflow_hub and cannot load Keras 3
files; this one calls :func:`planet_model.bundle.load_model` in safe mode and ``predict_on_batch``).
:class:`PredictTiles` wraps it in RunInference between :class:`DescribeTile` and :class:`ToRow`, so the
batch and the streaming scan write the same rows.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference
from pyproj import Geod

from pipelines.sources.masks import MaskFractions
from pipelines.steps.accounting import OUTCOMES, WRITTEN, outcome
from pipelines.steps.tiles import TileImage
from pipelines.store import schema
from planet_model import bundle, thresholds
from planet_model.bundle import BundleMeta

GEOD = Geod(ellps="WGS84")


def _drop_memory_warning(record: logging.LogRecord) -> bool:
    # Beam 2.77's RunInference imports `resource` together with a module that needs PyTorch; without
    # PyTorch it logs "Resource module is not available" on every bundle. The figure it wants is only a
    # metric, so the line is noise for users of this handler.
    return not record.getMessage().startswith("Resource module is not available")


logging.getLogger().addFilter(_drop_memory_warning)


class BundleModelHandler(ModelHandler[np.ndarray, PredictionResult, Any]):
    """Chips ``(chip_size, chip_size, bands)`` in, 17 probabilities out. A worker loads the model that ``meta``
    (what the scan read when it started, whose thresholds and version its rows carry) describes, or fails: a
    bundle trained again into the same folder meanwhile is not mixed into the scan."""

    def __init__(self, bundle_path: str, meta: BundleMeta, batch_size: int = 64) -> None:
        super().__init__()
        self.bundle_path, self.meta, self.batch_size = bundle_path, meta, batch_size

    def load_model(self) -> Any:
        return bundle.load_model(self.bundle_path, self.meta)

    def run_inference(self, batch: Sequence[np.ndarray], model: Any,
                      inference_args: dict | None = None) -> Iterable[PredictionResult]:
        stacked = np.stack(batch).astype(np.float32, copy=False)
        probabilities = np.asarray(model.predict_on_batch(stacked))
        return [PredictionResult(example, p) for example, p in zip(batch, probabilities)]

    def batch_elements_kwargs(self) -> dict:
        # Full batches from the start: BatchElements' adaptive sizing would begin at one tile per model
        # call and grow, which costs a large share of a scan on a CPU. A bundle's last batch may be short.
        return {"min_batch_size": self.batch_size, "max_batch_size": self.batch_size}

    def get_metrics_namespace(self) -> str:
        return "planet_tiles_bundle"


@dataclass(frozen=True)
class TileInfo:
    """What a scan row says of a tile besides the model's output: the key that rides through RunInference."""

    tile_id: str
    scene_id: str
    uri: str
    acquired: str | None
    geometry: bytes  # WKB, EPSG:4326
    bbox: dict[str, float]  # the outline's bounds, EPSG:4326 (schema.bbox)
    lon: float
    lat: float
    area_m2: float
    valid_fraction: float
    mask: MaskFractions | None
    mask_error: str | None
    aoi: str
    scan_date: str
    scan_id: str
    event_time: float  # the element's timestamp (the streaming scan's notification time)


class DescribeTile(beam.DoFn):
    """:class:`TileImage` -> ``(TileInfo, image)``. ``scan_date`` is the batch scan's date; without it
    (the streaming scan) it is the scene's acquisition date, UTC."""

    def __init__(self, version: str, scan_date: str | None = None) -> None:
        self.version, self.scan_date = version, scan_date

    def process(self, item: TileImage, timestamp=beam.DoFn.TimestampParam) -> Iterator[tuple[TileInfo, np.ndarray]]:  # noqa: ANN001
        polygon = item.tile.polygon_wgs84()
        day = self.scan_date or acquisition_day(item.acquired)
        yield (
            TileInfo(
                tile_id=item.tile.tile_id,
                scene_id=item.source.scene_id,
                uri=item.source.uri,
                acquired=item.acquired,
                geometry=polygon.wkb,
                bbox=schema.bbox(polygon),
                lon=polygon.centroid.x,
                lat=polygon.centroid.y,
                area_m2=abs(GEOD.geometry_area_perimeter(polygon)[0]),
                valid_fraction=item.valid_fraction,
                mask=item.mask,
                mask_error=item.mask_error,
                aoi=item.aoi or "",
                scan_date=day,
                scan_id=f"{item.aoi}:{day}:{self.version}",
                event_time=float(timestamp),
            ),
            item.image,
        )


def acquisition_day(acquired: str | None) -> str:
    """The UTC date of an ISO 8601 acquisition time (today when unknown)."""
    moment = dt.datetime.fromisoformat(acquired) if acquired else dt.datetime.now(dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc).date().isoformat()


class ToRow(beam.DoFn):
    """Model output -> a scan row (thresholds applied; ``aoi`` and ``scan_date`` are columns of the row, and
    the partition of the table it goes to) and a ``written`` outcome.

    The outcome says whether the tile is ``out_of_domain``: a band mean outside the 1st-99th percentile
    range of the bundle's training pixels. A model far outside its data fails silently; the manifest
    counts such tiles so that a run can say so.
    """

    def __init__(self, meta: BundleMeta, weather_one: bool = False) -> None:
        self.labels = list(meta.labels)
        self.cut = np.array([meta.thresholds[n] for n in self.labels], dtype=np.float32)
        self.weather_one = weather_one
        self.version = meta.version
        ranges = meta.domain.band_ranges
        self.ranges = np.array([ranges[b] for b in meta.bands], dtype=np.float64) if ranges else None

    def out_of_domain(self, image: np.ndarray) -> bool:
        """Whether a band mean of the tile's pixels with data (those not 0 in every band, the fill value
        of pixels without data) lies outside the training range. Every 4th pixel each way is plenty for
        a mean and keeps the check off the scan's critical path."""
        if self.ranges is None or image is None:
            return False
        pixels = np.asarray(image[::4, ::4], dtype=np.float64).reshape(-1, len(self.ranges))
        pixels = pixels[np.any(pixels != 0, axis=1)]
        if not len(pixels):
            return False
        means = pixels.mean(axis=0)
        return bool(np.any((means < self.ranges[:, 0]) | (means > self.ranges[:, 1])))

    def process(self, keyed: tuple[TileInfo, PredictionResult]) -> Iterator:
        tile, result = keyed
        # Rounded so that the batch a tile happened to share (which can move the last float bits on
        # some CPU kernels) never changes a row: same inputs, same bundle, same output.
        probs = np.round(np.asarray(result.inference, dtype=np.float64), 6).astype(np.float32)
        acquired = dt.datetime.fromisoformat(tile.acquired).astimezone(dt.timezone.utc) if tile.acquired else None
        yield {"tile_id": tile.tile_id, "scene_id": tile.scene_id, "scene_uri": tile.uri, "scan_id": tile.scan_id,
               "acquired": acquired, "geometry": tile.geometry, "bbox": tile.bbox, "lon": float(tile.lon),
               "lat": float(tile.lat), "area_m2": float(tile.area_m2), "valid_fraction": float(tile.valid_fraction),
               **mask_columns(tile.mask, tile.mask_error),
               **{f"p_{n}": float(p) for n, p in zip(self.labels, probs)},
               "labels": [n for n, on in zip(self.labels, thresholds.apply(probs[None], self.cut, self.weather_one)[0])
                          if on],
               "model_version": self.version, "aoi": tile.aoi, "scan_date": dt.date.fromisoformat(tile.scan_date)}
        yield beam.pvalue.TaggedOutput(OUTCOMES, outcome(WRITTEN, tile.scene_id, tile.uri, tile.tile_id,
                                                         out_of_domain=self.out_of_domain(result.example),
                                                         mask_error=tile.mask_error))


def mask_columns(mask: MaskFractions | None, error: str | None = None) -> dict[str, str | float | None]:
    """The scan row's cloud mask columns: ``mask_status`` and the fractions (null unless the mask was read).
    A tile whose mask exists but could not be read is ``unreadable``: the rules do not judge it."""
    status = schema.MASK_READ if mask is not None else schema.MASK_UNREADABLE if error else schema.MASK_ABSENT
    return {"mask_status": status, **{f"{name}_fraction": None if mask is None else float(getattr(mask, name))
                                      for name in ("clear", "cloud", "shadow", "haze")}}


class PredictTiles(beam.PTransform):
    """:class:`TileImage` -> ``{"rows", "outcomes"}``: the bundle's model through RunInference, thresholds.

    RunInference's batching drops element timestamps; rows are re-stamped with their tile's, which the
    streaming scan's windows and alert timers run on.
    """

    def __init__(self, bundle_path: str, meta: BundleMeta, batch_size: int, scan_date: str | None = None,
                 weather_one: bool = False) -> None:
        super().__init__()
        self.bundle_path, self.meta, self.batch_size, self.scan_date = bundle_path, meta, batch_size, scan_date
        self.weather_one = weather_one

    def expand(self, tiles: beam.PCollection) -> dict:
        handler = KeyedModelHandler(BundleModelHandler(self.bundle_path, self.meta, self.batch_size))
        rows = (tiles
                | "DescribeTiles" >> beam.ParDo(DescribeTile(self.meta.version, self.scan_date))
                | "RunInference" >> RunInference(handler)
                | "Restamp" >> beam.Map(lambda kv: beam.window.TimestampedValue(kv, kv[0].event_time))
                | "ToRows" >> beam.ParDo(ToRow(self.meta, self.weather_one)).with_outputs(OUTCOMES, main="rows"))
        return {"rows": rows.rows, "outcomes": rows[OUTCOMES]}
