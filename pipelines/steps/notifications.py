"""Cloud Storage notifications -> scenes: which objects are scenes, and each scene version once.

Scenes arrive as ``OBJECT_FINALIZE`` notifications on Pub/Sub. Pub/Sub delivers at least once and keeps
unacknowledged messages for up to seven days, so a notification can repeat: :class:`FirstNotification`
passes each object generation once and forgets it after that retention period.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import posixpath
from collections.abc import Iterable, Iterator, Sequence

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import (
    ReadModifyWriteRuntimeState,
    ReadModifyWriteStateSpec,
    RuntimeTimer,
    TimerSpec,
    on_timer,
)
from apache_beam.utils.timestamp import Duration, Timestamp

from pipelines.sources import files
from pipelines.sources.base import SceneItem
from pipelines.sources.masks import is_mask_name

#: Pub/Sub's longest message retention: how long a notification can be redelivered.
LATENESS_DAYS = 7


def notified_scene(message: PubsubMessage, patterns: Sequence[str], object_prefix: str,
                   product: str | None = None) -> tuple[str, SceneItem] | None:
    """A GCS notification (``PubsubMessage``) -> ``(version, scene item)``, or ``None`` if it announces no
    scene; ``product`` (``--product``) overrides what the name says.

    Only ``OBJECT_FINALIZE`` events of objects matching ``patterns`` are scenes, UDM2 masks apart (read
    with their scene, which finds them beside it). ``version`` is the
    object and its generation: a re-uploaded scene is new, a repeated notification is not. The scene id
    is the batch scan's (the files source's: :func:`pipelines.sources.files.item`), so both write the same rows.
    """
    attributes = message.attributes or {}
    if attributes.get("eventType", "OBJECT_FINALIZE") != "OBJECT_FINALIZE":
        return None
    payload = json.loads(message.data.decode("utf-8")) if message.data else {}
    bucket = payload.get("bucket") or attributes.get("bucketId")
    name = payload.get("name") or attributes.get("objectId")
    generation = str(payload.get("generation") or attributes.get("objectGeneration") or "")
    if not bucket or not name or is_mask_name(name) \
            or not any(fnmatch.fnmatch(posixpath.basename(name), p) for p in patterns):
        return None
    uri = object_prefix.format(bucket=bucket) + name
    scene = files.item(uri)
    return f"gs://{bucket}/{name}#{generation}", dataclasses.replace(scene, product=product) if product else scene


class FirstNotification(beam.DoFn):
    """Keyed by scene version (object and generation): passes the first notification of each only.

    The state is cleared ``LATENESS_DAYS`` after the first one: Pub/Sub keeps (and so redelivers)
    messages for at most that long, so state does not grow with every scene ever seen.
    """

    SEEN = ReadModifyWriteStateSpec("seen", PickleCoder())
    EXPIRE = TimerSpec("expire", TimeDomain.WATERMARK)

    def process(self, keyed: tuple, timestamp: Timestamp = beam.DoFn.TimestampParam,
                seen: ReadModifyWriteRuntimeState = beam.DoFn.StateParam(SEEN),
                expire: RuntimeTimer = beam.DoFn.TimerParam(EXPIRE)) -> Iterator[SceneItem]:
        if seen.read():
            beam.metrics.Metrics.counter("planet_tiles_stream", "duplicate_notifications").inc()
            return
        seen.write(True)
        expire.set(timestamp + Duration(seconds=LATENESS_DAYS * 86400))
        yield keyed[1]

    @on_timer(EXPIRE)
    def forget(self, seen=beam.DoFn.StateParam(SEEN)) -> Iterable:  # noqa: ANN001
        seen.clear()
        return []
