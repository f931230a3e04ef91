"""Cloud Storage notifications -> scenes: which events are scenes, re-uploads, and the expiry of what
``FirstNotification`` remembers (a real Beam TestStream run for the timer)."""

import json

import apache_beam as beam
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue

from pipelines.steps.notifications import (
    LATENESS_DAYS,
    FirstNotification,
    notified_scene,
)

PATTERNS = ("*.tif",)
DAY = 86400


def message(name, generation="1", event="OBJECT_FINALIZE"):
    return PubsubMessage(json.dumps({"bucket": "landing", "name": name, "generation": generation}).encode(),
                         {"eventType": event, "bucketId": "landing", "objectId": name})


def test_only_finalized_scenes_are_scenes():
    version, source = notified_scene(message("a/scene.tif"), PATTERNS, "gs://{bucket}/")
    assert (version, source.uri, source.scene_id) == ("gs://landing/a/scene.tif#1", "gs://landing/a/scene.tif", "scene")
    for event in ("OBJECT_DELETE", "OBJECT_METADATA_UPDATE", "OBJECT_ARCHIVE"):
        assert notified_scene(message("a/scene.tif", event=event), PATTERNS, "gs://{bucket}/") is None
    assert notified_scene(message("a/notes.txt"), PATTERNS, "gs://{bucket}/") is None
    assert notified_scene(message("a/scene_3B_udm2_clip.tif"), PATTERNS, "gs://{bucket}/") is None  # a mask


def test_a_re_uploaded_scene_is_a_new_version():
    first, _ = notified_scene(message("scene.tif", "1"), PATTERNS, "gs://{bucket}/")
    again, _ = notified_scene(message("scene.tif", "1"), PATTERNS, "gs://{bucket}/")
    newer, _ = notified_scene(message("scene.tif", "7"), PATTERNS, "gs://{bucket}/")
    assert first == again != newer


def test_a_repeat_passes_once_within_the_retention_and_again_after_it_expires():
    """Pub/Sub redelivers for at most LATENESS_DAYS: a repeat inside that is dropped, and the state is
    cleared by the timer after it, so a notification older than the retention is new again."""
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    key = ("gs://landing/scene.tif#1", "scene")
    events = (TestStream()
              .advance_watermark_to(0)
              .add_elements([TimestampedValue(key, 0)])
              .add_elements([TimestampedValue(key, DAY)])  # a redelivery a day later
              .advance_watermark_to(LATENESS_DAYS * DAY - 60)  # time passes to a minute short of the retention
              .add_elements([TimestampedValue(key, LATENESS_DAYS * DAY - 60)])  # still a redelivery
              .advance_watermark_to((LATENESS_DAYS + 1) * DAY)  # the expiry timer fires
              .add_elements([TimestampedValue(key, (LATENESS_DAYS + 2) * DAY)])
              .advance_watermark_to_infinity())
    with beam.Pipeline(options=options) as pipeline:
        passed = (pipeline | events | beam.ParDo(FirstNotification())
                  | beam.Map(lambda source, t=beam.DoFn.TimestampParam: (source, int(t))))
        assert_that(passed, equal_to([("scene", 0), ("scene", (LATENESS_DAYS + 2) * DAY)]))
