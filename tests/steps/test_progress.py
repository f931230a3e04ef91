"""Progress lines of a long step: counts and rates, the elements untouched."""

import logging

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines.steps.progress import Progress


def test_elements_pass_through_and_the_count_is_reported(caplog):
    caplog.set_level(logging.INFO, logger="pipelines.steps.progress")
    Progress._state.pop("test: things", None)  # a fresh count for this name
    with TestPipeline(runner="FnApiRunner") as p:
        out = p | beam.Create(range(25)) | beam.ParDo(Progress("test: things", interval=0.0))
        assert_that(out, equal_to(list(range(25))))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("test: things: ")]
    counts = [int(line.split(": ")[2].split(",")[0].replace(",", "")) for line in lines]
    assert counts and counts == sorted(counts) and counts[-1] == 25
    assert all(line.endswith("/s") for line in lines)
