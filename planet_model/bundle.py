"""The model bundle: one self-describing folder (local or ``gs://``) that the scan applies as it is.

    model.keras     Keras 3 inference model: raw chips in (chip_size, bands, float32 of the native
                    values), 17 probabilities out; resize and normalisation are its first layers. Saved
                    without the training loss and optimizer, so plain ``keras.saving.load_model(path)``
                    opens it (safe mode) in any Python with Keras 3; only the softmax weather head
                    (``--weather_head softmax``) needs ``import planet_model.model`` first, for its layer.
    bundle.json     format_version, labels, thresholds (label -> float), chip_size, input_size, bands,
                    dtype, domain, normalization, arch, model_file, version (content hash), created_at,
                    training (options, data), metrics (validation F2 at 0.5, 0.2 and the searched
                    thresholds; per-label figures)
    *.png           training curves, F2 against threshold per label, label co-occurrence heatmaps

``domain`` is what the model learned from, which every scan must feed it: ``gsd_m`` (ground sample
distance of the chips, metres; null when unknown), ``product`` (``visual``, ``analytic``,
``surface_reflectance`` or ``unknown``), ``dtype``, ``bands`` and ``band_ranges`` (band -> 1st and 99th
percentile of the training pixels). Bundles written before it existed still load, with a warning.

Reading ``bundle.json`` (:func:`read_metadata`) needs no TensorFlow, so a launcher can validate a
bundle and check bands before any work starts. :func:`load_model` loads the Keras model in safe mode.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping

from planet_core import storage
from planet_core.errors import UserError
from planet_core.labels import LABELS
from planet_model.records import DTYPES, PRODUCTS, UNKNOWN

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
METADATA = "bundle.json"
MODEL_FILE = "model.keras"
REQUIRED = ("format_version", "labels", "thresholds", "chip_size", "input_size", "bands", "dtype",
            "normalization", "arch", "model_file", "version", "created_at", "training", "metrics")


class BundleError(UserError):
    """A bundle that cannot be used, with what exactly is wrong."""


def validate(meta: Mapping, where: str = "bundle") -> None:
    """Raise :class:`BundleError` naming every problem of a ``bundle.json``."""
    problems = [f"missing key {k!r}" for k in REQUIRED if k not in meta]
    if meta.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
        problems.append(f"format_version {meta.get('format_version')!r}, this code reads {FORMAT_VERSION}")
    if "labels" in meta and list(meta["labels"]) != list(LABELS):
        problems.append("labels differ from the 17 labels in the project's order")
    thresholds = meta.get("thresholds", {})
    if not isinstance(thresholds, Mapping):
        problems.append("thresholds must map label -> number")
    else:
        missing = [name for name in LABELS if name not in thresholds]
        if missing:
            problems.append(f"thresholds missing for {missing}")
        bad = [k for k, v in thresholds.items() if not isinstance(v, (int, float)) or not 0 <= v <= 1]
        if bad:
            problems.append(f"thresholds outside [0, 1] or not numbers: {bad}")
    bands = meta.get("bands", [])
    if "bands" in meta and (not bands or any(b not in ("red", "green", "blue", "nir") for b in bands)):
        problems.append(f"bands {bands!r}: use names among red, green, blue, nir")
    if "dtype" in meta and meta["dtype"] not in DTYPES:
        problems.append(f"dtype {meta['dtype']!r} not in {DTYPES}")
    domain = meta.get("domain")
    if domain is not None:
        if domain.get("product") not in PRODUCTS:
            problems.append(f"domain.product {domain.get('product')!r} not in {PRODUCTS}")
        if domain.get("gsd_m") is not None and not (isinstance(domain["gsd_m"], (int, float)) and domain["gsd_m"] > 0):
            problems.append(f"domain.gsd_m {domain.get('gsd_m')!r} must be positive metres or null")
        ranges = domain.get("band_ranges", {})
        if sorted(ranges) != sorted(bands) or any(len(r) != 2 or r[0] > r[1] for r in ranges.values()):
            problems.append("domain.band_ranges needs [low, high] for each band")
    norm = meta.get("normalization", {})
    if "normalization" in meta and not (len(norm.get("mean", [])) == len(norm.get("variance", [])) == len(bands)):
        problems.append("normalization needs a mean and a variance per band")
    if problems:
        raise BundleError(f"{where}: invalid bundle: " + "; ".join(problems))


def read_metadata(path: str) -> dict:
    """Read and validate ``bundle.json`` of the bundle at ``path`` (folder, local or ``gs://``)."""
    location = storage.join(path, METADATA)
    try:
        meta = json.loads(storage.read_text(location))
    except FileNotFoundError:
        raise BundleError(f"{path}: not a bundle ({METADATA} not found)") from None
    except json.JSONDecodeError as error:
        raise BundleError(f"{location}: not valid JSON ({error})") from None
    validate(meta, path)
    model_path = storage.join(path, meta["model_file"])
    if not storage.exists(model_path):
        raise BundleError(f"{path}: model file {meta['model_file']!r} not found")
    if not _is_keras_file(model_path):
        raise BundleError(f"{model_path}: not a complete Keras file (truncated or overwritten?); copy the bundle again")
    if "domain" not in meta:
        log.warning("%s: the bundle records no domain (ground resolution, product, value ranges); it was "
                    "written by an older version. Scans check only its bands and dtype.", path)
        meta["domain"] = {"gsd_m": meta.get("resolution_m"), "product": UNKNOWN, "dtype": meta["dtype"],
                          "bands": meta["bands"], "band_ranges": {}}
    return meta


def _is_keras_file(path: str) -> bool:
    """A ``.keras`` file is a zip archive with ``config.json``: a truncated copy has no central directory."""
    import io
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(storage.read_bytes(path))) as archive:
            return "config.json" in archive.namelist()
    except zipfile.BadZipFile:
        return False


def load_model(path: str, meta: Mapping | None = None):  # noqa: ANN201 - keras.Model
    """The bundle's Keras model, loaded in safe mode (no Lambda layers can run code)."""
    import keras

    import planet_model.model  # noqa: F401 - registers the softmax weather head's layer

    meta = meta or read_metadata(path)
    source = storage.join(path, meta["model_file"])
    if "://" in source:
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, meta["model_file"])
            with open(local, "wb") as handle:
                handle.write(storage.read_bytes(source))
            return keras.saving.load_model(local, safe_mode=True, compile=False)
    return keras.saving.load_model(source, safe_mode=True, compile=False)


def save(model, path: str, meta: dict, files: Mapping[str, bytes] = {}) -> dict:  # noqa: ANN001, B006
    """Write ``model.keras``, the extra ``files`` (plots) and ``bundle.json``; return the metadata.

    The model is saved as an uncompiled copy sharing the trained layers: the training loss (with its
    co-occurrence penalty) and the optimizer are not part of what a bundle is for, and a file that names
    them cannot be opened without this project. ``version`` is a hash of the model file and the
    thresholds: it changes whenever predictions can.
    """
    import keras

    inference = keras.Model(model.inputs, model.outputs, name=model.name)
    with tempfile.TemporaryDirectory() as tmp:
        local_model = os.path.join(tmp, MODEL_FILE)
        inference.save(local_model)
        with open(local_model, "rb") as handle:
            model_bytes = handle.read()
    full = {
        "format_version": FORMAT_VERSION,
        "labels": list(LABELS),
        "model_file": MODEL_FILE,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        **meta,
    }
    digest = hashlib.sha256(model_bytes)
    digest.update(json.dumps(full["thresholds"], sort_keys=True).encode())
    full["version"] = digest.hexdigest()[:16]
    validate(full, path)
    storage.write_bytes(storage.join(path, MODEL_FILE), model_bytes)
    for name, data in files.items():
        storage.write_bytes(storage.join(path, name), data)
    storage.write_text(storage.join(path, METADATA), json.dumps(full, indent=2))
    return full
