"""What every imagery source shares: the item it discovers, the date range it is asked for, its protocol.

A source finds :class:`SceneItem` values (cheap: names, STAC metadata, no pixels) on the launcher; each
item travels to a worker, where :class:`~pipelines.sources.reader.SceneReader` opens it. An item says all
that the reader cannot learn from the pixels alone: how the file is named (its scene id), when it was
acquired, what product its values are, which files hold its bands when there is one file per band, and
which cloud mask goes with it. This module imports no GDAL.
"""

from __future__ import annotations

import datetime as dt
import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from shapely.geometry.base import BaseGeometry

from planet_core.errors import UserError

if TYPE_CHECKING:
    import pystac

#: Kinds of cloud mask a scene can come with (:mod:`pipelines.sources.masks`).
UDM2, SCL = "udm2", "scl"


class SourceError(UserError):
    """A source that cannot be listed: a pattern that matches nothing, a STAC document that is not one."""


@dataclass(frozen=True)
class SceneItem:
    """One scene as a source found it, before it is opened: what travels from the launcher to a worker."""

    uri: str  # the scene's file; for one file per band, its red band's file
    scene_id: str
    acquired: str | None = None  # ISO 8601 UTC, when the source knows it (STAC, Planet names)
    product: str | None = None  # planet_core.imagery.PRODUCTS, when the source knows it; else read from the file
    mask: str | None = None  # its cloud mask file; None: looked for beside the scene (UDM2 naming)
    mask_kind: str = UDM2  # what ``mask`` is: UDM2 (Planet) or SCL (Sentinel-2 scene classification)
    #: ``(role, uri)`` per band of a scene delivered one file per band (STAC: Landsat, Sentinel-2); it is
    #: read through a VRT stacking them (:func:`pipelines.sources.reader.band_vrt`).
    band_files: tuple[tuple[str, str], ...] = ()
    #: Added to every band value as it is read (Sentinel-2 L2A since processing baseline 04.00 stores
    #: reflectance x 10000 + 1000): so that every scene of a source has one scale.
    value_offset: int = 0


@dataclass(frozen=True)
class DateRange:
    """Acquisition dates, both ends included; ``None``: open on that side."""

    start: dt.date | None = None
    end: dt.date | None = None

    @classmethod
    def parse(cls, text: str | None) -> DateRange | None:
        """``--acquired`` (``2026-06-01/2026-06-30``, ``2026-06-01/``, ``/2026-06-30`` or one day) -> a range."""
        if not text:
            return None
        start, _, end = text.partition("/") if "/" in text else (text, "/", text)
        try:
            found = cls(dt.date.fromisoformat(start) if start else None, dt.date.fromisoformat(end) if end else None)
        except ValueError:
            raise ValueError(f"--acquired {text!r}: write START/END as YYYY-MM-DD (either may be left out)") from None
        if found.start and found.end and found.start > found.end:
            raise ValueError(f"--acquired {text!r}: the start is after the end")
        return found

    def holds(self, acquired: str | None) -> bool | None:
        """Whether an ISO 8601 time lies in the range (its UTC date); ``None`` when the time is unknown."""
        if not acquired:
            return None
        day = dt.datetime.fromisoformat(acquired.replace("Z", "+00:00"))
        if day.tzinfo is not None:
            day = day.astimezone(dt.timezone.utc)
        return (self.start is None or day.date() >= self.start) and (self.end is None or day.date() <= self.end)


class Source(Protocol):
    """A kind of imagery source. Discovery runs on the launcher and reads metadata only (names, STAC
    documents): it must not open pixels, so that a basin of thousands of scenes lists in seconds."""

    def discover(self, where: BaseGeometry | None = None, when: DateRange | None = None) -> list[SceneItem]:
        """The items that may touch ``where`` (EPSG:4326) and were acquired in ``when``, as far as the
        metadata tells: an item whose footprint or date is unknown here is kept (the workers clip to the AOI)."""
        ...


def acquired(item: pystac.Item) -> str | None:
    """When a STAC item was acquired, ISO 8601 in UTC: its ``datetime``, else the start of its
    ``start_datetime``/``end_datetime`` interval (STAC's datetime may be null when an interval is given)."""
    when = item.datetime or item.common_metadata.start_datetime
    return when.astimezone(dt.timezone.utc).isoformat() if when else None


def absolute(href: str, base: str) -> str:
    """A STAC href made absolute against the folder of the document that holds it."""
    return href if "://" in href or href.startswith("/") else posixpath.join(base, href)
