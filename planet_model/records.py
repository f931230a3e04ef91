"""The chip record: one ``tf.train.Example`` per 256-px chip, the contract between chipping and training.

Layout (every key is always present; georeferencing keys are empty for chips without it, such as the
Kaggle TIFs, which carry no CRS):

==========================  ==============  ============================================================
key                         type            meaning
==========================  ==============  ============================================================
``image/raw``               bytes           pixels, row-major ``height x width x bands``, little-endian
``image/shape``             int64 x 3       ``height, width, bands``
``image/dtype``             bytes           ``uint8``, ``uint16`` or ``float32``
``image/bands``             bytes list      band names in stored order: always ``red, green, blue[, nir]``
``tile/id``                 bytes           grid tile id (``<scene>/<row>/<col>``, ``WebMercatorQuad/z/x/y``
                                            or the Kaggle image name)
``tile/scene_id``           bytes           the scene the pixels come from
``tile/crs``                bytes           CRS of ``tile/transform`` (WKT or ``EPSG:n``); empty if unknown
``tile/transform``          float x 6       affine ``a, b, c, d, e, f`` of the chip (rasterio order); or none
``tile/bounds``             float x 4       ``west, south, east, north`` in EPSG:4326; or none
``tile/valid_fraction``     float           share of pixels that hold data (the rest is nodata padding)
``tile/gsd_m``              float           ground sample distance in metres (geodesic, at the chip's
                                            centre; 3 for the Kaggle chips); 0 when unknown
``image/product``           bytes           what the values are: ``visual`` (8-bit rendered),
                                            ``analytic`` (digital numbers), ``surface_reflectance`` or
                                            ``unknown``
``labels/multi_hot``        int64 x 17      labels in :data:`planet_core.labels.LABELS` order; empty when
                                            the chip is unlabelled
==========================  ==============  ============================================================

Records written before ``tile/gsd_m`` and ``image/product`` existed read as unknown for both.
TensorFlow is imported inside the functions that need it, so that importing this module stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from planet_core.imagery import DTYPES, PRODUCTS, RGB, RGBN, UNKNOWN
from planet_core.labels import NUM_LABELS

#: A chip set's manifest, in its folder: the files of the set (:mod:`planet_core.publishing`). Training and
#: evaluation read the files it lists, never a folder listing.
MANIFEST = "manifest.json"

if TYPE_CHECKING:
    import tensorflow as tf



@dataclass
class Chip:
    """A chip in memory: pixels ``(height, width, bands)`` plus where they came from."""

    image: np.ndarray
    bands: tuple[str, ...]
    tile_id: str
    scene_id: str
    crs: str = ""
    transform: tuple[float, ...] = ()
    bounds: tuple[float, ...] = ()
    valid_fraction: float = 1.0
    labels: np.ndarray | None = field(default=None)
    gsd_m: float | None = None
    product: str = UNKNOWN

    def __post_init__(self) -> None:
        if self.image.ndim != 3:
            raise ValueError(f"chip {self.tile_id}: image must be height x width x bands")
        if str(self.image.dtype) not in DTYPES:
            raise ValueError(f"chip {self.tile_id}: dtype {self.image.dtype} not in {DTYPES}")
        if self.image.shape[2] != len(self.bands):
            raise ValueError(f"chip {self.tile_id}: {self.image.shape[2]} bands but names {self.bands}")
        if self.bands not in (RGB, RGBN):
            raise ValueError(f"chip {self.tile_id}: bands must be {RGB} or {RGBN}, got {self.bands}")
        if self.transform and len(self.transform) != 6:
            raise ValueError(f"chip {self.tile_id}: transform needs 6 numbers")
        if self.bounds and len(self.bounds) != 4:
            raise ValueError(f"chip {self.tile_id}: bounds need 4 numbers")
        if self.labels is not None and np.shape(self.labels) != (NUM_LABELS,):
            raise ValueError(f"chip {self.tile_id}: labels need {NUM_LABELS} entries")
        if self.product not in PRODUCTS:
            raise ValueError(f"chip {self.tile_id}: product {self.product!r} not in {PRODUCTS}")


def encode(chip: Chip) -> bytes:
    """Serialise a chip to ``tf.train.Example`` bytes.

    The protobuf wire format is written directly (it is five small messages), so chipping workers
    need no TensorFlow: importing it costs seconds per worker and nothing here needs its kernels.
    The small features are built as bytes; the image's bytes are copied once, into the result, after
    headers that say their length. Readers parse it with ``tf.train.Example`` or
    ``tf.io.parse_single_example`` as usual.
    """
    image = np.ascontiguousarray(chip.image, dtype=chip.image.dtype.newbyteorder("<"))
    raw = memoryview(image).cast("B")
    labels = [] if chip.labels is None else chip.labels
    small = b"".join(_entry(key, feature) for key, feature in (
        ("image/shape", _int64_feature(image.shape)),
        ("image/dtype", _bytes_feature([str(chip.image.dtype).encode()])),
        ("image/bands", _bytes_feature([b.encode() for b in chip.bands])),
        ("tile/id", _bytes_feature([chip.tile_id.encode()])),
        ("tile/scene_id", _bytes_feature([chip.scene_id.encode()])),
        ("tile/crs", _bytes_feature([chip.crs.encode()])),
        ("tile/transform", _float_feature(chip.transform)),
        ("tile/bounds", _float_feature(chip.bounds)),
        ("tile/valid_fraction", _float_feature([chip.valid_fraction])),
        ("tile/gsd_m", _float_feature([chip.gsd_m or 0.0])),
        ("image/product", _bytes_feature([chip.product.encode()])),
        ("labels/multi_hot", _int64_feature(labels)),
    ))
    # The image's map entry, Features.feature {key: "image/raw", value: Feature.bytes_list.value[0]}:
    # its headers, innermost first, each after the size of what it holds.
    value = _header(1, len(raw))
    bytes_list = _header(1, len(value) + len(raw))
    feature = _header(2, len(bytes_list) + len(value) + len(raw))
    inner = _RAW_KEY + feature + bytes_list + value
    entry = _header(1, len(inner) + len(raw)) + inner
    return b"".join([_header(1, len(entry) + len(raw) + len(small)), entry, raw, small])  # Example.features


# Protobuf wire format of tensorflow/core/example/{example,feature}.proto.


def _varint(value: int) -> bytes:
    if 0 <= value < 128:  # field tags and most lengths: one byte, looked up
        return _ONE_BYTE[value]
    out = bytearray()
    value &= (1 << 64) - 1  # int64 is encoded as its two's complement
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


_ONE_BYTE = [bytes([value]) for value in range(128)]


def _header(number: int, size: int) -> bytes:
    """The tag and length of a length-delimited field (wire type 2) of ``size`` bytes."""
    return _varint(number << 3 | 2) + _varint(size)


def _field(number: int, payload: bytes) -> bytes:
    return _header(number, len(payload)) + payload


def _entry(key: str, feature: bytes) -> bytes:
    """One entry of the ``Features.feature`` map."""
    return _field(1, _field(1, key.encode()) + _field(2, feature))


_RAW_KEY = _field(1, b"image/raw")


def _bytes_feature(values: list[bytes]) -> bytes:
    return _field(1, b"".join(_field(1, v) for v in values))  # Feature.bytes_list


def _float_feature(values: Any) -> bytes:
    packed = np.asarray(list(values), dtype="<f4").tobytes()
    return _field(2, _field(1, packed) if packed else b"")  # Feature.float_list, packed


def _int64_feature(values: Any) -> bytes:
    packed = b"".join(_varint(int(v)) for v in values)
    return _field(3, _field(1, packed) if packed else b"")  # Feature.int64_list, packed


def decode(data: bytes) -> Chip:
    """Parse ``tf.train.Example`` bytes written by :func:`encode` back into a :class:`Chip`."""
    import tensorflow as tf  # noqa: PLC0415 - TensorFlow takes 5 s to import: only where tensors are made

    feature = tf.train.Example.FromString(data).features.feature
    shape = tuple(feature["image/shape"].int64_list.value)
    dtype = np.dtype(feature["image/dtype"].bytes_list.value[0].decode()).newbyteorder("<")
    image = np.frombuffer(feature["image/raw"].bytes_list.value[0], dtype=dtype).reshape(shape)
    labels = np.array(feature["labels/multi_hot"].int64_list.value, dtype=np.int64)
    gsd = feature["tile/gsd_m"].float_list.value if "tile/gsd_m" in feature else []
    product = feature["image/product"].bytes_list.value if "image/product" in feature else []
    return Chip(
        image=image.astype(dtype.newbyteorder("=")),
        bands=tuple(b.decode() for b in feature["image/bands"].bytes_list.value),
        tile_id=feature["tile/id"].bytes_list.value[0].decode(),
        scene_id=feature["tile/scene_id"].bytes_list.value[0].decode(),
        crs=feature["tile/crs"].bytes_list.value[0].decode(),
        transform=tuple(feature["tile/transform"].float_list.value),
        bounds=tuple(feature["tile/bounds"].float_list.value),
        valid_fraction=feature["tile/valid_fraction"].float_list.value[0],
        labels=labels if labels.size else None,
        gsd_m=float(gsd[0]) if gsd and gsd[0] > 0 else None,
        product=product[0].decode() if product else UNKNOWN,
    )


def parse_fn(dtype: str, shape: tuple[int, int, int]) -> Any:
    """A ``tf.data`` map function: serialised record -> ``{"image", "labels", "tile_id", "scene_id", "gsd_m",
    "product"}``.

    ``dtype`` and ``shape`` are fixed per data set (see :func:`peek`): ``tf.io.decode_raw`` needs a
    static dtype, and a static shape lets the model be built before the first batch.
    """
    import tensorflow as tf  # noqa: PLC0415 - TensorFlow takes 5 s to import: only where tensors are made

    spec = {
        "image/raw": tf.io.FixedLenFeature([], tf.string),
        "tile/id": tf.io.FixedLenFeature([], tf.string),
        "tile/scene_id": tf.io.FixedLenFeature([], tf.string),
        "labels/multi_hot": tf.io.FixedLenFeature([NUM_LABELS], tf.int64, default_value=[0] * NUM_LABELS),
        "tile/gsd_m": tf.io.FixedLenFeature([], tf.float32, default_value=0.0),
        "image/product": tf.io.FixedLenFeature([], tf.string, default_value=UNKNOWN.encode()),
    }
    tf_dtype = tf.dtypes.as_dtype(dtype)

    def parse(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        parsed = tf.io.parse_single_example(serialized, spec)
        image = tf.io.decode_raw(parsed["image/raw"], tf_dtype, little_endian=True)
        return {
            "image": tf.reshape(image, shape),
            "labels": tf.cast(parsed["labels/multi_hot"], tf.float32),
            "tile_id": parsed["tile/id"],
            "scene_id": parsed["tile/scene_id"],
            "gsd_m": parsed["tile/gsd_m"],
            "product": parsed["image/product"],
        }

    return parse
