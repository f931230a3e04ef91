"""Flex Template entry point: runs the pipeline the image was built for (``PLANET_TILES_PIPELINE``).

The template launcher calls this file with the template parameters as ``--name=value`` flags, plus the
Dataflow options it fills in (runner, project, region, temp location, sdk_container_image ...), which
the pipelines pass on to Beam.
"""

import importlib
import logging
import os

from pipelines import PIPELINES

if __name__ == "__main__":
    logging.getLogger().setLevel(logging.INFO)
    pipeline = os.environ["PLANET_TILES_PIPELINE"]
    if pipeline not in PIPELINES:
        raise SystemExit(f"PLANET_TILES_PIPELINE={pipeline!r}: build the image with --build-arg PIPELINE="
                         + "|".join(PIPELINES))
    importlib.import_module(f"pipelines.{pipeline}").main()
