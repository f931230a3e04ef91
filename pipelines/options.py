"""Beam options shared by the pipelines: the same flags run locally and on Dataflow."""

from __future__ import annotations

from collections.abc import Sequence

#: Used when no ``--runner`` is given. Beam's DirectRunner first tries to download the Prism runner,
#: which cannot work offline; the FnApiRunner is the DirectRunner's own in-process engine.
LOCAL_RUNNER = "FnApiRunner"


def pipeline_options(beam_args: Sequence[str], save_main_session: bool = True):  # noqa: ANN201
    """``PipelineOptions`` from the flags a pipeline's own parser did not consume."""
    from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions, StandardOptions

    options = PipelineOptions(list(beam_args))
    standard = options.view_as(StandardOptions)
    if not standard.runner:
        standard.runner = LOCAL_RUNNER
    options.view_as(SetupOptions).save_main_session = save_main_session
    return options


def submitted_only(options) -> bool:  # noqa: ANN001 - PipelineOptions
    """True when running the pipeline only writes a job template (a Flex Template launch): the job runs
    later on Dataflow, so its outputs (manifest included) do not exist when ``run`` returns."""
    from apache_beam.options.pipeline_options import GoogleCloudOptions

    return bool(options.view_as(GoogleCloudOptions).template_location)


def run_id() -> str:
    """A sortable id for one run: UTC time plus randomness, used in output file names."""
    import datetime as dt
    import secrets

    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
