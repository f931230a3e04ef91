"""Launch a pipeline on Dataflow from its Flex Template.

    planet-tiles submit scan --project P --region us-central1 --bucket B -- \
        --aoi gs://B/aois/xingu.geojson --scenes 'gs://B/scenes/xingu/*.tif' --bundle gs://B/bundles/v3 \
        --output gs://B/scans
    planet-tiles submit scan --config infra/submit.example.yaml --dry_run -- --aoi ...

Flags after ``--`` are the pipeline's own (checked by its parser before anything is sent); they become
the template parameters. The Dataflow side (temp and staging locations in the bucket, the image as
``sdkContainerImage``, machine type, workers, service account, GPUs as a ``worker_accelerator`` service
option) comes from flags, else from ``--config`` (YAML with the same keys), else from defaults that match
``infra/terraform``. ``--dry_run`` prints the exact request (URL and body) and needs no credentials;
otherwise it is sent to the Flex Template launch API with Application Default Credentials.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from collections.abc import Mapping, Sequence

import google.auth
import yaml
from google.auth.transport.requests import AuthorizedSession

from pipelines import PIPELINES
from pipelines.cloud import templates
from planet_core import commands, storage
from planet_core.errors import RunFailed, UserError

LAUNCH_URL = "https://dataflow.googleapis.com/v1b3/projects/{project}/locations/{region}/flexTemplates:launch"
SETTINGS = ("project", "region", "bucket", "data_bucket", "image", "template", "machine_type", "max_workers",
            "num_workers", "service_account", "gpu", "network", "subnetwork", "job_name")
#: What a region of regions.yaml may set besides its scan flags (Terraform reads the same keys).
REGION_SETTINGS = ("gpu", "max_workers", "machine_type")
#: Worker machine types that can hold each GPU (Dataflow attaches the GPU to the worker VM).
GPU_MACHINES = {"nvidia-l4": "g2-standard-8", "nvidia-tesla-t4": "n1-standard-8", "nvidia-tesla-a100": "a2-highgpu-1g"}


def build_parser() -> argparse.ArgumentParser:
    p = commands.parser("submit", __doc__,
                                epilog="Pipeline flags follow '--'.")
    p.add_argument("pipeline", choices=PIPELINES)
    p.add_argument("--config", help="YAML file with any of the settings below (flags win)")
    p.add_argument("--project", help="Google Cloud project")
    p.add_argument("--region", help="Dataflow region, e.g. us-central1 (the cloud region, not an AOI)")
    p.add_argument("--bucket", help="bucket for templates, temp and staging files (name, no gs://)")
    p.add_argument("--data_bucket", help="bucket of scenes, AOIs, bundles and scans: {bucket} in regions.yaml "
                   "(default: --bucket)")
    p.add_argument("--scheduled", metavar="NAME", help="the scan of region NAME of --regions, with the flags its "
                   "scheduled job sends (pipeline flags after -- are added)")
    p.add_argument("--regions", default="infra/regions.yaml", help="regions file (default infra/regions.yaml)")
    p.add_argument(
        "--image", help="container image (default: REGION-docker.pkg.dev/PROJECT/planet-tiles/PIPELINE:latest)"
    )
    p.add_argument("--template", help="template spec (default: gs://BUCKET/templates/PIPELINE.json)")
    p.add_argument("--machine_type", help="worker machine type (default n2-standard-4; with a GPU, one that holds it)")
    p.add_argument("--max_workers", type=int, help="autoscaling limit (default 20)")
    p.add_argument("--num_workers", type=int, help="initial workers")
    p.add_argument("--service_account", help="worker service account (default: planet-tiles-worker@PROJECT...)")
    p.add_argument("--gpu", help="GPU per worker for the scan, TYPE[:COUNT], e.g. nvidia-l4:1")
    p.add_argument("--network")
    p.add_argument("--subnetwork", help="regions/REGION/subnetworks/NAME")
    p.add_argument("--job_name", help="default: planet-tiles-PIPELINE[-AOI]-UTC time")
    p.add_argument("--dry_run", action="store_true", help="print the launch request and send nothing")
    return p


def settings(args: argparse.Namespace, region: Mapping | None = None) -> dict:
    """Flags over the scheduled region's own settings over the config file; missing required settings
    are an error naming them."""
    merged: dict = {}
    if args.config:
        merged.update(yaml.safe_load(storage.read_text(args.config)) or {})
        unknown = sorted(set(merged) - set(SETTINGS))
        if unknown:
            raise UserError(f"{args.config}: unknown settings {unknown}; known: {', '.join(SETTINGS)}")
    merged.update({k: v for k, v in (region or {}).items() if k in REGION_SETTINGS})
    merged.update({k: getattr(args, k) for k in SETTINGS if getattr(args, k) is not None})
    missing = [k for k in ("project", "region", "bucket") if not merged.get(k)]
    if missing:
        raise UserError(f"missing {', '.join('--' + m for m in missing)} (flags or --config)")
    _check(merged)
    return merged


def _check(merged: dict) -> None:
    """Refuse settings Dataflow or Cloud Storage would refuse only at launch, after the template was looked up
    (a worker count of 0 was also read as the default), before any request."""
    for key in ("max_workers", "num_workers"):
        if merged.get(key) is not None:
            value = merged[key]
            if isinstance(value, bool) or not str(value).strip().isdigit() or int(value) < 1:
                raise UserError(f"--{key} {value!r}: a whole number of workers, at least 1")
            merged[key] = int(value)
    if merged.get("num_workers") and merged.get("max_workers") and merged["num_workers"] > merged["max_workers"]:
        raise UserError(f"--num_workers {merged['num_workers']}: more than --max_workers {merged['max_workers']}")
    name = merged.get("job_name")
    if name is not None and not re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", str(name)):
        raise UserError(f"--job_name {name!r}: Dataflow job names are lowercase letters, digits and '-', from a "
                        "letter, not ending in '-'")
    for key in ("bucket", "data_bucket"):
        value = merged.get(key)
        if value is not None and not re.fullmatch(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]", str(value)):
            raise UserError(f"--{key} {value!r}: a bucket's name, without gs:// or a folder (e.g. my-forest-data)")


def template_parameters(pipeline: str, argv: Sequence[str]) -> dict[str, str]:
    """The pipeline flags given, checked by the pipeline's parser, as template parameters (strings)."""
    parser = templates.parser(pipeline)
    parser.parse_args(argv)  # required flags, choices, types: fail here, not on the launcher VM
    for action in parser._actions:  # noqa: SLF001 - argparse lists its actions nowhere public
        action.default = argparse.SUPPRESS
        action.required = False
    given = vars(parser.parse_args(argv))
    parameters = {}
    for name, value in given.items():
        if isinstance(value, list):
            if len(value) != 1:
                raise UserError(f"--{name}: a template parameter holds one value; use one glob (or --stac)")
            value = value[0]
        parameters[name] = str(value)
    return parameters


def load_region(regions_file: str, name: str) -> dict:
    regions = yaml.safe_load(storage.read_text(regions_file))["regions"]
    if name not in regions:
        raise UserError(f"{regions_file}: no region {name!r}; regions: {', '.join(regions)}")
    return regions[name]


def scheduled_flags(region: Mapping, name: str, data_bucket: str, project: str) -> list[str]:
    """The scan flags of a region: its ``scan`` entries, ``{bucket}`` and ``{project}`` filled in, plus the AOI
    that Terraform uploads (``gs://DATA_BUCKET/aois/NAME.geojson``) and ``--aoi_name NAME``."""
    flags = [f"--{k}={str(v).replace('{bucket}', data_bucket).replace('{project}', project)}"
             for k, v in region["scan"].items()]
    return flags + [f"--aoi=gs://{data_bucket}/aois/{name}.geojson", f"--aoi_name={name}"]


def job_name(pipeline: str, parameters: Mapping[str, str], now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    parts = ["planet-tiles", pipeline, parameters.get("aoi_name", ""), now.strftime("%Y%m%d-%H%M%S")]
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(p for p in parts if p).lower()).strip("-")[:63]


def launch_request(pipeline: str, parameters: Mapping[str, str], conf: Mapping) -> dict:
    """The Flex Template launch request: ``{"url": ..., "body": ...}``."""
    project, region, bucket = conf["project"], conf["region"], conf["bucket"]
    environment = {
        "tempLocation": f"gs://{bucket}/tmp",
        "stagingLocation": f"gs://{bucket}/staging",
        "sdkContainerImage": conf.get("image") or f"{region}-docker.pkg.dev/{project}/planet-tiles/{pipeline}:latest",
        "serviceAccountEmail": conf.get("service_account") or f"planet-tiles-worker@{project}.iam.gserviceaccount.com",
        "maxWorkers": conf.get("max_workers") or 20,
        "additionalUserLabels": {"app": "planet-tiles", "pipeline": pipeline},
    }
    machine = conf.get("machine_type")
    if conf.get("gpu"):
        if pipeline == "chip":
            raise UserError("--gpu applies to scans (inference); chipping runs on CPUs")
        kind, _, count = str(conf["gpu"]).partition(":")
        environment["additionalExperiments"] = [
            f"worker_accelerator=type:{kind};count:{count or 1};install-nvidia-driver",
            # One process per worker VM, so that the model and the GPU are loaded once.
            "no_use_multiple_sdk_containers",
        ]
        machine = machine or GPU_MACHINES.get(kind)
        if not machine:
            raise UserError(f"--gpu {kind}: give --machine_type (known defaults: {', '.join(GPU_MACHINES)})")
    environment["machineType"] = machine or "n2-standard-4"
    if pipeline == "stream":
        environment["enableStreamingEngine"] = True  # state and timers live in the service, not on workers
    for key, field in (("num_workers", "numWorkers"), ("network", "network"), ("subnetwork", "subnetwork")):
        if conf.get(key):
            environment[field] = conf[key]
    body = {"launchParameter": {
        "jobName": conf.get("job_name") or job_name(pipeline, parameters),
        "containerSpecGcsPath": conf.get("template") or f"gs://{bucket}/templates/{pipeline}.json",
        "parameters": dict(parameters),
        "environment": environment,
    }}
    return {"url": LAUNCH_URL.format(project=project, region=region), "body": body}


def send(request: Mapping) -> dict:
    """POST the request with Application Default Credentials; the launched job comes back."""
    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    response = AuthorizedSession(credentials).post(request["url"], json=request["body"], timeout=120)
    if response.status_code >= 400:
        raise RunFailed(f"launch failed ({response.status_code}): {response.text}")
    return response.json()


def run(argv: Sequence[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    ours, pipeline_argv = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    args = build_parser().parse_args(ours)
    region = None
    if args.scheduled:
        if args.pipeline != "scan":
            raise UserError("--scheduled names a region of scheduled scans: use it with `submit scan`")
        region = load_region(args.regions, args.scheduled)
    conf = settings(args, region)
    if region is not None:
        pipeline_argv = scheduled_flags(region, args.scheduled, conf.get("data_bucket") or conf["bucket"],
                                        conf["project"]) + pipeline_argv
    request = launch_request(args.pipeline, template_parameters(args.pipeline, pipeline_argv), conf)
    if args.dry_run:
        return {"dry_run": True, **request}
    return {"dry_run": False, **request, "response": send(request)}


def main(argv: Sequence[str] | None = None) -> None:
    result = run(argv)
    if result["dry_run"]:
        print(json.dumps({"method": "POST", "url": result["url"], "body": result["body"]}, indent=2))
    else:
        job = result["response"].get("job", {})
        print(f"launched {job.get('name')} ({job.get('id')}): "
              f"https://console.cloud.google.com/dataflow/jobs/{job.get('location')}/{job.get('id')}"
              f"?project={job.get('projectId')}")


if __name__ == "__main__":
    main()
