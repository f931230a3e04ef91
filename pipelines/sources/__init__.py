"""Imagery sources: where scenes come from, and how each is opened for reading.

A source (:class:`~pipelines.sources.base.Source`) discovers :class:`~pipelines.sources.base.SceneItem`
values for an AOI and a date range from metadata alone, on the launcher; a worker opens each item as a
:class:`~pipelines.sources.reader.SceneReader`, which knows its bands, product, ground pixel and cloud mask.

==================  ===========================================================================
``files``           paths and globs (``--scenes``): Planet scenes with their UDM2, basemap quads
``basemap``         what a Planet basemap quad's folder says (mosaic, month), for ``files``
``stac``            STAC ItemCollections (``--stac``): one file per scene, or one file per band
``sentinel2``       Sentinel-2 L2A items of ``stac``: B02, B03, B04, B08 at 10 m, SCL as cloud mask
``kaggle``          the Kaggle competition's folders (chips, not scenes; ``chip`` only)
``masks``           cloud masks (UDM2, SCL) read per tile as the same fractions
``reader``          opening an item and reading tiles: band order, nodata, windows, warps
==================  ===========================================================================

Every pipeline takes its sources through one flag group (:func:`add_arguments`) and turns it into
items (:func:`discover`) and read options (:func:`read_options`), so chip, scan, stream and the report's
pictures cannot read scenes differently.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence

from shapely.geometry.base import BaseGeometry

from pipelines.sources import kaggle as kaggle_set
from pipelines.sources import masks
from pipelines.sources.base import DateRange, SceneItem, Source
from pipelines.sources.files import Files
from pipelines.sources.reader import ReadOptions, parse_band_order
from pipelines.sources.stac import StacItems
from planet_core.errors import UserError
from planet_core.imagery import PRODUCTS, UNKNOWN
from planet_model.kaggle import FORMATS as KAGGLE_FORMATS


def add_arguments(parser: argparse.ArgumentParser, *, find: bool = True, dates: bool = True, product: bool = True,
                  cloud_mask: bool = True, kaggle: bool = False) -> None:
    """The imagery flags, defined once. ``find=False`` for a pipeline whose scenes arrive otherwise (the
    stream's notifications); ``dates``, ``product`` and ``cloud_mask`` only where they change what is
    computed (not for the report's pictures); ``kaggle`` for the one pipeline that takes the Kaggle folders."""
    group = parser.add_argument_group("imagery", "where scenes come from and how they are read")
    if find:
        group.add_argument("--scenes", nargs="*", default=[], help="scene paths or globs, local or gs://")
        group.add_argument("--stac", help="a STAC ItemCollection JSON listing scenes (Planet, Landsat, Sentinel-2 L2A)")
    if find and dates:
        group.add_argument("--acquired", help="only scenes acquired in START/END (YYYY-MM-DD, both included; either "
                                              "may be left out) as their names or STAC items say")
    if kaggle:
        group.add_argument("--kaggle_csv", help="Kaggle train_v2.csv (image_name,tags)")
        group.add_argument("--kaggle_images", help="folder of Kaggle train-jpg or train-tif-v2 images")
        group.add_argument("--kaggle_format", choices=KAGGLE_FORMATS,
                           help="which Kaggle images to read (default: the kind the folder holds)")
    if product:
        group.add_argument("--product", choices=[p for p in PRODUCTS if p != UNKNOWN],
                           help="what the scenes' values are, when you know better than their names and items say "
                                "(a scan then also takes scenes whose dtype differs from its bundle's)")
    group.add_argument("--band_order", help="source band roles, e.g. blue,green,red,nir (default: from colour "
                                            "interpretation and band descriptions)")
    if cloud_mask:
        group.add_argument("--cloud_mask", choices=masks.CLOUD_MASKS, default=masks.AUTO,
                           help="read each scene's cloud mask (a UDM2 beside it or in its STAC item, a Sentinel-2 "
                                "SCL) for per-tile cloud, shadow and haze: auto (when it has one), required (a scene "
                                "without one fails), none (default auto)")



def kaggle_of(args: argparse.Namespace) -> kaggle_set.KaggleSet | None:
    """The Kaggle folders the flags name (``None``: none), checked: both flags, and no scenes beside them."""
    if not (args.kaggle_csv or args.kaggle_images):
        return None
    if not (args.kaggle_csv and args.kaggle_images):
        raise UserError("--kaggle_csv and --kaggle_images go together")
    if args.scenes or args.stac:
        raise UserError("give either scenes (--scenes/--stac) or the Kaggle data set, not both")
    return kaggle_set.KaggleSet(args.kaggle_csv, args.kaggle_images, args.kaggle_format)


def sources_of(args: argparse.Namespace) -> list[Source]:
    """The sources the flags name."""
    found: list[Source] = []
    if getattr(args, "scenes", None):
        found.append(Files(args.scenes))
    if getattr(args, "stac", None):
        found.append(StacItems(args.stac))
    return found


def acquired(args: argparse.Namespace) -> DateRange | None:
    """``--acquired`` (``None``: any day), a :class:`UserError` when it is not a range."""
    try:
        return DateRange.parse(getattr(args, "acquired", None))
    except ValueError as error:
        raise UserError(str(error)) from None


def discover(args: argparse.Namespace, where: BaseGeometry | None = None) -> list[SceneItem]:
    """Every scene item the flags name that may touch ``where`` (EPSG:4326), each once, sorted by uri,
    with ``--product`` applied. ``--acquired`` leaves out the items whose name or metadata says another day;
    a file whose name says none is left out by its header's time, when the pipeline opens it
    (:class:`pipelines.steps.tiles.EnumerateTiles`)."""
    when = acquired(args)
    items = [item for source in sources_of(args) for item in source.discover(where, when)]
    seen: set[str] = set()
    unique = [i for i in items if not (i.uri in seen or seen.add(i.uri))]  # type: ignore[func-returns-value]
    forced = getattr(args, "product", None)
    if forced:
        unique = [dataclasses.replace(i, product=forced) for i in unique]
    return sorted(unique, key=lambda i: i.uri)


def read_options(args: argparse.Namespace, bands: Sequence[str] | None = None) -> ReadOptions:
    """How scenes are read, from the flags; ``bands`` are the record bands to read (``None``: every one)."""
    try:
        return ReadOptions(band_order=parse_band_order(args.band_order), bands=tuple(bands) if bands else None,
                           cloud_mask=getattr(args, "cloud_mask", masks.NONE))
    except ValueError as error:
        raise UserError(str(error)) from None
