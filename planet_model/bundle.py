"""The model bundle: one self-describing folder (local or ``gs://``) that the scan applies as it is.

    model-<version>.keras
                    Keras 3 inference model: raw chips in (chip_size, bands, float32 of the native
                    values), 17 probabilities out; resize and normalisation are its first layers. Saved
                    without the training loss and optimizer, so plain ``keras.saving.load_model(path)``
                    opens it (safe mode) in any Python with Keras 3; only the softmax weather head
                    (``--weather_head softmax``) needs ``import planet_model.model`` first, for its layer.
    bundle.json     :class:`BundleMeta`: format_version, labels, thresholds (label -> float), chip_size,
                    input_size, bands, dtype, domain, normalization, arch, model_file, version (content
                    hash), created_at, training (options, data), metrics (validation F2 at 0.5, 0.2 and
                    the searched thresholds; per-label figures), tta, figures
    <figure>-<version>.png
                    training curves, F2 against threshold per label, label co-occurrence heatmaps, named
                    in ``figures`` (:func:`figures`; ``<figure>.png`` in bundles written before)

``domain`` is what the model learned from, which every scan must feed it: ``gsd_m`` (ground sample
distance of the chips, metres; null when unknown), ``product`` (``visual``, ``analytic``,
``surface_reflectance`` or ``unknown``), ``dtype``, ``bands`` and ``band_ranges`` (band -> 1st and 99th
percentile of the training pixels). Bundles of an older format are brought up to the current one on load,
step by step (:data:`UPGRADES`; format 1, before ``domain``, loads with a warning).

``bundle.json`` is the bundle: it names its model file (``model_file``; ``model.keras`` in bundles written before
model files were named by their version), and writing it is the one step that switches a folder from one
bundle to the next (:func:`save`), so a folder always holds one whole bundle, the earlier or the later.

Reading ``bundle.json`` (:func:`read_metadata`) needs no TensorFlow, so a launcher can validate a
bundle and check bands before any work starts. :func:`load_model` loads the Keras model in safe mode.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
import logging
import os
import posixpath
import re
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from planet_core import storage
from planet_core.errors import UserError
from planet_core.imagery import DTYPES, PRODUCTS, RGBN, UNKNOWN
from planet_core.labels import LABELS

log = logging.getLogger(__name__)

#: The ``bundle.json`` format this code writes. Older formats are brought up to it on load
#: (:data:`UPGRADES`), so every reader sees one shape.
FORMAT_VERSION = 2
METADATA = "bundle.json"
#: The model files bundles name: ``model.keras`` (bundles written before model files were named by their
#: version) or ``model-<version>.keras``.
_MODEL_NAME = re.compile(r"model(-[0-9a-f]{16})?\.keras")
#: The figures a bundle may hold (the names given to :func:`save`, each written as ``<stem>-<version>.png``).
FIGURES = ("training_curves.png", "f2_vs_threshold.png", "cooccurrence.png")
_VERSIONED_FIGURE = re.compile(r"(?:" + "|".join(re.escape(f[:-4]) for f in FIGURES) + r")-([0-9a-f]{16})\.png")
#: Model files of a bundle's folder that neither its bundle nor the one it replaced names (earlier bundles,
#: a killed training run's), and half-written temporary files, are deleted by a later save into the folder
#: once this old (seconds): a younger one may be a running training's.
ORPHAN_AGE_S = 24 * 3600


class BundleError(UserError):
    """A bundle that cannot be used, with what exactly is wrong."""


@dataclass(frozen=True)
class Domain:
    """What the model learned from, and what every scan must feed it."""

    #: Ground sample distance of the training chips (metres); None when unknown (older bundles).
    gsd_m: float | None
    product: str  # planet_core.imagery.PRODUCTS
    dtype: str
    bands: tuple[str, ...]
    #: Band -> 1st and 99th percentile of the training pixels (empty when unknown).
    band_ranges: dict[str, tuple[float, float]]


@dataclass(frozen=True)
class Normalization:
    """Per-band mean and variance of the training split, which the model's first layers apply."""

    mean: tuple[float, ...]
    variance: tuple[float, ...]


@dataclass(frozen=True)
class BundleMeta:
    """``bundle.json``, typed: everything a scan, an evaluation or a report needs to know of a model."""

    labels: tuple[str, ...]
    thresholds: dict[str, float]  # label -> probability cut
    chip_size: int  # pixels a side of the chips the model reads
    input_size: int  # pixels a side after the model's own resize
    bands: tuple[str, ...]  # record band names the model reads, in order
    dtype: str
    domain: Domain
    normalization: Normalization
    arch: str
    model_file: str
    version: str  # content hash of the model file and thresholds: changes whenever predictions can
    created_at: str
    #: How it was trained: options, data, history, the validation split's rule and hash (free-form record).
    training: dict[str, Any]
    #: Validation figures: F2 at 0.5, 0.2 and the searched thresholds, per-label figures (free-form record).
    metrics: dict[str, Any]
    tta: bool = False  # an ensemble bundle averaging the 8 flips of each chip
    #: Figure (a name of :data:`FIGURES`) -> its file in the folder (``<stem>-<version>.png``); None for a bundle
    #: written before figures were named by the version, whose figures are the plain names.
    figures: dict[str, str] | None = None
    format_version: int = FORMAT_VERSION

    @property
    def cuts(self) -> list[float]:
        """The thresholds in label order."""
        return [self.thresholds[name] for name in self.labels]

    def to_json(self) -> dict:
        """The ``bundle.json`` form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping, where: str = "bundle") -> BundleMeta:
        """Validate and type a ``bundle.json`` of any known format (:data:`UPGRADES`), naming every problem
        in one :class:`BundleError`."""
        data = upgrade(data, where)
        validate(data, where)
        domain = data["domain"]
        return cls(
            labels=tuple(data["labels"]), thresholds={k: float(v) for k, v in data["thresholds"].items()},
            chip_size=int(data["chip_size"]), input_size=int(data["input_size"]), bands=tuple(data["bands"]),
            dtype=data["dtype"],
            domain=Domain(gsd_m=domain.get("gsd_m"), product=domain["product"], dtype=domain["dtype"],
                          bands=tuple(domain["bands"]),
                          band_ranges={b: (float(r[0]), float(r[1])) for b, r in domain["band_ranges"].items()}),
            normalization=Normalization(tuple(data["normalization"]["mean"]), tuple(data["normalization"]["variance"])),
            arch=data["arch"], model_file=data["model_file"], version=data["version"], created_at=data["created_at"],
            training=dict(data["training"]), metrics=dict(data["metrics"]), tta=bool(data.get("tta", False)),
            figures=None if data.get("figures") is None else dict(data["figures"]), format_version=FORMAT_VERSION)


def _upgrade_1(data: dict, where: str) -> dict:
    """Format 1 -> 2: a bundle written before ``domain`` existed gets one from what it knows (no ground
    resolution, an unknown product, no value ranges), with a warning: scans check only its bands and dtype."""
    if "domain" not in data:
        log.warning("%s: the bundle records no domain (ground resolution, product, value ranges); it was written "
                    "by an older version. Scans check only its bands and dtype.", where)
        data["domain"] = {"gsd_m": data.get("resolution_m"), "product": UNKNOWN, "dtype": data.get("dtype"),
                          "bands": data.get("bands", []), "band_ranges": {}}
    data.pop("resolution_m", None)
    return data


#: format_version -> the step that brings a ``bundle.json`` of that format to the next one.
UPGRADES: dict[int, Callable[[dict, str], dict]] = {1: _upgrade_1}


def upgrade(data: Mapping, where: str = "bundle") -> dict:
    """``bundle.json`` of any known format brought to :data:`FORMAT_VERSION`."""
    data = dict(data)
    version = data.get("format_version", 1)
    while isinstance(version, int) and version in UPGRADES:
        data = UPGRADES[version](data, where)
        version += 1
        data["format_version"] = version
    return data


REQUIRED = ("format_version", "labels", "thresholds", "chip_size", "input_size", "bands", "dtype", "domain",
            "normalization", "arch", "model_file", "version", "created_at", "training", "metrics")


def validate(meta: Mapping, where: str = "bundle") -> None:
    """Raise :class:`BundleError` naming every problem of a ``bundle.json`` (of the current format)."""
    problems = [f"missing key {k!r}" for k in REQUIRED if k not in meta]
    if meta.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
        problems.append(f"format_version {meta.get('format_version')!r}, this code reads up to {FORMAT_VERSION}")
    if "labels" in meta and list(meta["labels"]) != list(LABELS):
        problems.append("labels differ from the 17 labels in the project's order")
    problems += _threshold_problems(meta.get("thresholds", {}))
    for size in ("chip_size", "input_size"):
        value = meta.get(size, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(f"{size} {value!r} must be a positive whole number of pixels")
    bands = meta.get("bands", [])
    if "bands" in meta and (not bands or any(b not in RGBN for b in bands)):
        problems.append(f"bands {bands!r}: use names among {', '.join(RGBN)}")
    if "dtype" in meta and meta["dtype"] not in DTYPES:
        problems.append(f"dtype {meta['dtype']!r} not in {DTYPES}")
    problems += _domain_problems(meta.get("domain"), bands)
    problems += _figure_problems(meta.get("figures"), meta.get("version"))
    norm = meta.get("normalization", {})
    if "normalization" in meta and not (len(norm.get("mean", [])) == len(norm.get("variance", [])) == len(bands)):
        problems.append("normalization needs a mean and a variance per band")
    if problems:
        raise BundleError(f"{where}: invalid bundle: " + "; ".join(problems))


def _threshold_problems(thresholds: object) -> list[str]:
    if not isinstance(thresholds, Mapping):
        return ["thresholds must map label -> number"]
    problems = []
    missing = [name for name in LABELS if name not in thresholds]
    if missing:
        problems.append(f"thresholds missing for {missing}")
    bad = [k for k, v in thresholds.items() if not isinstance(v, (int, float)) or not 0 <= v <= 1]
    if bad:
        problems.append(f"thresholds outside [0, 1] or not numbers: {bad}")
    return problems


def _figure_problems(figures: object, version: object) -> list[str]:
    if figures is None:  # written before figures were named by the version
        return []
    if not isinstance(figures, Mapping) or any(
            name not in FIGURES or not isinstance(version, str) or file != _figure_name(name, version)
            for name, file in figures.items()):
        return [f"figures must map names among {', '.join(FIGURES)} to <name>-<version>.png"]
    return []


def _domain_problems(domain: object, bands: list) -> list[str]:
    if domain is None:  # missing: named with the other missing keys
        return []
    if not isinstance(domain, Mapping):
        return ["domain must be an object"]
    problems = []
    if domain.get("product") not in PRODUCTS:
        problems.append(f"domain.product {domain.get('product')!r} not in {PRODUCTS}")
    if domain.get("gsd_m") is not None and not (isinstance(domain["gsd_m"], (int, float)) and domain["gsd_m"] > 0):
        problems.append(f"domain.gsd_m {domain.get('gsd_m')!r} must be positive metres or null")
    ranges = domain.get("band_ranges", {})
    if ranges and (sorted(ranges) != sorted(bands) or any(len(r) != 2 or r[0] > r[1] for r in ranges.values())):
        problems.append("domain.band_ranges needs [low, high] for each band")
    return problems


def read_metadata(path: str) -> BundleMeta:
    """Read and validate ``bundle.json`` of the bundle at ``path`` (folder, local or ``gs://``)."""
    location = storage.join(path, METADATA)
    try:
        data = json.loads(storage.read_text(location))
    except FileNotFoundError:
        raise BundleError(f"{path}: not a bundle ({METADATA} not found)") from None
    except json.JSONDecodeError as error:
        raise BundleError(f"{location}: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise BundleError(f"{location}: not a bundle description (not a JSON object)")
    meta = BundleMeta.from_json(data, path)
    _model_bytes(path, meta)
    return meta


def content_version(model_bytes: bytes, thresholds: Mapping[str, float]) -> str:
    """A bundle's ``version``: 16 hex digits of SHA-256 of its model file and its thresholds, so that it
    changes whenever predictions can."""
    digest = hashlib.sha256(model_bytes)
    digest.update(json.dumps(dict(thresholds), sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _model_bytes(path: str, meta: BundleMeta) -> bytes:
    """The bundle's model file, checked to be whole and to be the model ``meta`` describes: a training run
    writing into the folder of another (killed midway, or read while it wrote) leaves one run's model beside
    the other's thresholds, normalisation and version, which would label tiles silently wrong."""
    model_path = storage.join(path, meta.model_file)
    try:
        model_bytes = storage.read_bytes(model_path)
    except FileNotFoundError:
        raise BundleError(f"{path}: model file {meta.model_file!r} not found") from None
    if not _is_keras_file(model_bytes):
        raise BundleError(f"{model_path}: not a complete Keras file (truncated or overwritten?); copy the bundle again")
    found = content_version(model_bytes, meta.thresholds)
    if found != meta.version:
        raise BundleError(
            f"{path}: {meta.model_file} and the thresholds in {METADATA} are not the pair of version {meta.version} "
            f"(they hash to {found}): another training run wrote into this folder, or one was killed writing it; "
            f"train again into a folder of its own (if you changed the thresholds yourself, set \"version\" to "
            f"{found})")
    return model_bytes


def _is_keras_file(model_bytes: bytes) -> bool:
    """A ``.keras`` file is a zip archive with ``config.json``: a truncated copy has no central directory."""
    try:
        with zipfile.ZipFile(io.BytesIO(model_bytes)) as archive:
            return "config.json" in archive.namelist()
    except zipfile.BadZipFile:
        return False


def load_model(path: str, meta: BundleMeta | None = None):  # noqa: ANN201 - keras.Model
    """The bundle's Keras model, loaded in safe mode (no Lambda layers can run code); with ``meta`` (what a
    scan read when it started), only the model that ``meta`` describes (:func:`_model_bytes`)."""
    import keras  # noqa: PLC0415 - Keras brings TensorFlow (5 s): only where a model is built or loaded

    import planet_model.model  # noqa: PLC0415, F401 - registers the softmax weather head's layer

    meta = meta or read_metadata(path)
    model_bytes = _model_bytes(path, meta)  # the bytes checked are the bytes loaded, whatever writes meanwhile
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, meta.model_file)
        with open(local, "wb") as handle:
            handle.write(model_bytes)
        return keras.saving.load_model(local, safe_mode=True, compile=False)


def save(model, path: str, meta: dict, files: Mapping[str, bytes] = {}) -> BundleMeta:  # noqa: ANN001
    """Write the model file, the figures ``files`` (of :data:`FIGURES`, each named by the bundle's version:
    :func:`figures`) and ``bundle.json`` (``meta`` and what this adds: format, labels, model file, time,
    version); return the metadata.

    The model is saved as an uncompiled copy sharing the trained layers: the training loss (with its
    co-occurrence penalty) and the optimizer are not part of what a bundle is for, and a file that names
    them cannot be opened without this project. ``version`` is a hash of the model file and the
    thresholds: it changes whenever predictions can.

    A folder that already holds a bundle (a model trained again into it) is switched to this one when
    ``bundle.json`` is replaced, last and atomically: the model file is named by its version
    (``model-<version>.keras``), so writing it leaves the earlier bundle whole, and a run that fails or is
    killed before the switch (a full disk, a kill) leaves the earlier bundle as it was, its figures too
    (they are named by the version as well: a run killed after writing them left the earlier model with
    the new training's curves). The model file and figures of the bundle replaced stay, for readers that
    started with it; older ones go (:func:`_sweep`).
    """
    unknown = sorted(set(files) - set(FIGURES))
    if unknown:
        raise ValueError(f"bundle figures are {', '.join(FIGURES)}, not {', '.join(unknown)}")
    import keras  # noqa: PLC0415 - Keras brings TensorFlow (5 s): only where a model is built or loaded

    inference = keras.Model(model.inputs, model.outputs, name=model.name)
    with tempfile.TemporaryDirectory() as tmp:
        local_model = os.path.join(tmp, "model.keras")
        inference.save(local_model)
        with open(local_model, "rb") as handle:
            model_bytes = handle.read()
    full = {
        "format_version": FORMAT_VERSION,
        "labels": list(LABELS),
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        **meta,
    }
    full["version"] = content_version(model_bytes, full["thresholds"])
    full["model_file"] = f"model-{full['version']}.keras"
    full["figures"] = {name: _figure_name(name, full["version"]) for name in files}
    typed = BundleMeta.from_json(full, path)
    document = json.dumps(typed.to_json(), indent=2).encode()
    written = [typed.model_file]
    storage.write_bytes(storage.join(path, typed.model_file), model_bytes)
    try:
        for name, data in files.items():
            written.append(typed.figures[name])
            storage.write_bytes(storage.join(path, written[-1]), data)
        replaced = storage.swap(storage.join(path, METADATA), lambda _: document)
    except BaseException:  # the folder still holds the earlier bundle (or none): this run's files go
        try:
            current = storage.read_bytes(storage.join(path, METADATA))
        except OSError:
            current = None
        if _named_model(current) != typed.model_file:
            for name in written:
                _delete(path, name)
        raise
    _sweep(path, {typed.model_file, _named_model(replaced)})
    return typed


def check_folder(path: str) -> None:
    """Refuse (a :class:`UserError` naming ``--output``) to write a bundle into a folder holding another output
    of these tools (a chip set, a report, an evaluation, the scans: a wrong folder named), whose files the
    model and ``bundle.json`` would land among; a bundle's own folder is written again."""
    storage.check_own_folder(path, METADATA, "--output", "a bundle needs a folder of its own")


def figures(path: str, meta: BundleMeta, names: Sequence[str] = FIGURES) -> dict[str, bytes]:
    """The figures ``names`` (of :data:`FIGURES`) of the bundle ``meta`` in ``path``, those it has (name ->
    PNG bytes): the files its ``bundle.json`` names, or for a bundle written before it named them, the plain
    names."""
    found = {}
    named = meta.figures if meta.figures is not None else {name: name for name in FIGURES}
    for name, file in named.items():
        if name not in names:
            continue
        try:
            found[name] = storage.read_bytes(storage.join(path, file))
        except FileNotFoundError:
            continue
    return found


def _figure_name(name: str, version: str) -> str:
    """``training_curves.png`` of bundle ``version`` -> ``training_curves-<version>.png``."""
    stem, ext = posixpath.splitext(name)
    return f"{stem}-{version}{ext}"


def _sweep(path: str, kept: set[str | None]) -> None:
    """Delete the model files and figures of the bundle's folder other than those of ``kept`` (this bundle's
    model file and the one it replaced, which a scan that started with it still loads), and what killed
    runs left (half-written temporary files), once :data:`ORPHAN_AGE_S` old: a younger one may be a
    running training's. Only names a bundle gives are deleted."""
    cutoff = time.time() - ORPHAN_AGE_S
    versions = {match.group(1) for name in kept if name and (match := re.search(r"-([0-9a-f]{16})\.", name))}
    stale = [name for pattern in ("model*.keras", "*.png", ".write-*", ".swap-*")
             for found, modified in storage.modified(storage.join(path, pattern))
             if modified < cutoff and (name := posixpath.basename(found)) not in kept
             and (pattern != "model*.keras" or _MODEL_NAME.fullmatch(name))
             and (pattern != "*.png" or ((figure := _VERSIONED_FIGURE.fullmatch(name)) is not None
                                         and figure.group(1) not in versions))]
    for name in stale:
        _delete(path, name)


def _named_model(document: bytes | None) -> str | None:
    """The model file a ``bundle.json`` names, when it is a bundle of this tool's (the names
    :data:`_MODEL_NAME` allows); ``None`` otherwise."""
    try:
        name = json.loads(document or b"{}").get("model_file")
    except (ValueError, AttributeError):
        return None
    return name if isinstance(name, str) and _MODEL_NAME.fullmatch(name) else None


def _delete(path: str, name: str) -> None:
    """Delete the file ``name`` of the bundle's folder (a concurrent save may have deleted it first)."""
    try:
        storage.delete([storage.join(path, name)])
    except OSError as error:
        if storage.exists(storage.join(path, name)):
            log.warning("%s: could not delete %s: %s", path, name, error)
