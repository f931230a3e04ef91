"""Cloud operation, checked offline: Flex Template metadata, the launch request, regions and Terraform."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import hcl2
import pytest
import yaml

from pipelines import PIPELINES
from pipelines.cloud import submit, templates
from pipelines.store import schema
from pipelines.store.catalog import NAMESPACE
from tests.cloud.terraform import resources, unquote

INFRA = Path(__file__).resolve().parents[2] / "infra"


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_template_metadata_matches_the_pipeline_flags(pipeline):
    checked_in = json.loads((INFRA / "dataflow" / f"{pipeline}.metadata.json").read_text())
    assert checked_in == templates.metadata(pipeline)
    flags = {a.option_strings[0].lstrip("-"): a for a in templates.flags(pipeline)}
    assert [p["name"] for p in checked_in["parameters"]] == list(flags)
    for param in checked_in["parameters"]:
        assert param["isOptional"] == (not flags[param["name"]].required)
        for regex in param.get("regexes", []):
            for choice in flags[param["name"]].choices or []:
                assert re.match(regex, choice)


def dry_run(*argv):
    """``submit.run`` with --dry_run among submit's own flags (before the pipeline's, after ``--``)."""
    argv = list(argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    return submit.run([*argv[:cut], "--dry_run", *argv[cut:]])


def test_submit_dry_run_prints_the_launch_request_without_credentials(tmp_path, capsys):
    config = tmp_path / "submit.yaml"
    config.write_text("project: forest-watch\nregion: southamerica-east1\nbucket: fw-pipeline\nmax_workers: 8\n")
    request = dry_run(
        "scan",
        "--config",
        str(config),
        "--gpu",
        "nvidia-l4:2",
        "--job_name",
        "xingu-now",
        "--",
        "--aoi",
        "gs://fw/aois/xingu.geojson",
        "--aoi_name",
        "xingu",
        "--scenes",
        "gs://fw/s/*.tif",
        "--bundle",
        "gs://fw/bundles/v3",
        "--output",
        "gs://fw/scans",
        "--grid",
        "WebMercatorQuad",
        "--zoom",
        "15",
    )
    assert request["url"] == ("https://dataflow.googleapis.com/v1b3/projects/forest-watch/locations/"
                              "southamerica-east1/flexTemplates:launch")
    launch = request["body"]["launchParameter"]
    assert launch["jobName"] == "xingu-now"
    assert launch["containerSpecGcsPath"] == "gs://fw-pipeline/templates/scan.json"
    assert launch["parameters"] == {"aoi": "gs://fw/aois/xingu.geojson", "aoi_name": "xingu",
                                    "scenes": "gs://fw/s/*.tif", "bundle": "gs://fw/bundles/v3",
                                    "output": "gs://fw/scans", "grid": "WebMercatorQuad", "zoom": "15"}
    env = launch["environment"]
    assert env["tempLocation"] == "gs://fw-pipeline/tmp" and env["stagingLocation"] == "gs://fw-pipeline/staging"
    assert env["sdkContainerImage"] == "southamerica-east1-docker.pkg.dev/forest-watch/planet-tiles/scan:latest"
    assert env["maxWorkers"] == 8 and env["machineType"] == "g2-standard-8"
    assert "worker_accelerator=type:nvidia-l4;count:2;install-nvidia-driver" in env["additionalExperiments"]
    assert env["serviceAccountEmail"] == "planet-tiles-worker@forest-watch.iam.gserviceaccount.com"

    from pipelines import cli

    cli.main(["submit", "chip", "--project", "p", "--region", "us-central1", "--bucket", "fw-pipeline", "--dry_run",
              "--", "--scenes", "gs://b/scenes/*.tif", "--output", "gs://b/chips"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["method"] == "POST" and printed["body"]["launchParameter"]["parameters"]["output"] == "gs://b/chips"
    assert "enableStreamingEngine" not in printed["body"]["launchParameter"]["environment"]

    streaming = dry_run("stream", "--project", "p", "--region", "us-central1", "--bucket", "fw-pipeline", "--",
                        "--subscription", "projects/p/subscriptions/new-scenes", "--regions", "gs://b/regions.yaml",
                        "--bundle", "gs://b/bundles/v4", "--output", "gs://b/scans", "--catalog", "biglake:p")
    launch = streaming["body"]["launchParameter"]
    assert launch["containerSpecGcsPath"] == "gs://fw-pipeline/templates/stream.json"
    assert launch["environment"]["enableStreamingEngine"] is True
    assert launch["parameters"]["subscription"] == "projects/p/subscriptions/new-scenes"


SCAN_FLAGS = ["--aoi", "gs://fw/a.geojson", "--bundle", "gs://fw/b", "--output", "gs://fw/scans"]


@pytest.mark.parametrize("argv, message", [
    (["scan", "--project", "p", "--region", "r", "--bucket", "fw-pipeline", "--", "--aoi", "x.geojson"], "required"),
    (["scan", "--region", "r", "--bucket", "fw-pipeline", "--", "--aoi", "a", "--bundle", "b", "--output", "o"],
     "--project"),
    (["chip", "--project", "p", "--region", "r", "--bucket", "fw-pipeline", "--gpu", "nvidia-l4", "--",
      "--scenes", "s", "--output", "o"], "chipping runs on CPUs"),
    (["stream", "--project", "p", "--region", "r", "--bucket", "fw-pipeline", "--", "--subscription", "s"], "required"),
    (["scan", "--project", "p", "--region", "r", "--bucket", "fw-pipeline", "--", "--aoi", "a", "--bundle", "b",
      "--output", "o", "--scenes", "a.tif", "b.tif"], "one glob"),
    # Each was sent, for Dataflow or Cloud Storage to refuse at launch; a worker count of 0 was read as 20.
    *[([p, "--project", "p", "--region", "r", *settings, "--", *SCAN_FLAGS], message) for p, settings, message in [
        ("scan", ["--bucket", "fw-pipeline", "--max_workers", "0"], "--max_workers 0: a whole number of workers"),
        ("scan", ["--bucket", "fw-pipeline", "--num_workers", "-1"], "--num_workers -1: a whole number of workers"),
        ("scan", ["--bucket", "fw-pipeline", "--max_workers", "2", "--num_workers", "5"],
         "--num_workers 5: more than --max_workers 2"),
        ("scan", ["--bucket", "fw-pipeline", "--job_name", "Xingu now"], "--job_name 'Xingu now': Dataflow job names"),
        ("scan", ["--bucket", "gs://fw-pipeline"], "--bucket 'gs://fw-pipeline': a bucket's name, without gs://"),
        ("scan", ["--bucket", "fw-pipeline", "--data_bucket", "fw-data/scans"], "--data_bucket 'fw-data/scans'"),
    ]],
])
def test_submit_refuses_bad_requests_before_sending(argv, message, capsys):
    """One line naming the flag, exit 2, as every command's bad usage (it was a bare message, exit 1)."""
    from tests.conftest import refused

    cut = argv.index("--") if "--" in argv else len(argv)
    stderr = refused(capsys, "submit", *argv[:cut], "--dry_run", *argv[cut:])
    last = stderr.strip().splitlines()[-1]
    assert message in last and last.startswith("planet-tiles "), stderr


def test_every_region_is_a_valid_scan():
    regions = yaml.safe_load((INFRA / "regions.yaml").read_text())["regions"]
    assert regions
    for name, region in regions.items():
        request = dry_run("scan", "--project", "p", "--region", "us-central1", "--bucket", "pipe",
                          "--data_bucket", "data", "--scheduled", name, "--regions", str(INFRA / "regions.yaml"))
        params = request["body"]["launchParameter"]["parameters"]
        assert params["aoi"] == f"gs://data/aois/{name}.geojson" and params["aoi_name"] == name
        assert all("{bucket}" not in v and "{project}" not in v for v in params.values())
        assert params["catalog"] == "biglake:p" and params["output"].startswith("gs://data/")
        assert region["aoi"]["type"] in ("Polygon", "MultiPolygon")
        assert len(region["schedule"].split()) == 5


def test_terraform_has_a_job_per_region_and_the_generated_schemas():
    folder = INFRA / "terraform"
    found = resources(folder)
    main = unquote(hcl2.load((folder / "main.tf").open()))
    local = {k: v for block in main["locals"] for k, v in block.items()}
    assert "../regions.yaml" in local["regions_file"] and local["regions"] == "${local.regions_file.regions}"
    assert {k.strip('"'): v.strip('"') for k, v in local["gpu_machines"].items() if k != "__comments__"} \
        == submit.GPU_MACHINES

    job = found[("google_cloud_scheduler_job", "scan")]
    assert job["for_each"] == "${local.regions}"
    assert found[("google_storage_bucket_object", "aoi")]["for_each"] == "${local.regions}"
    body = str(job["http_target"])
    sample = dry_run("scan", "--project", "p", "--region", "r", "--bucket", "fw-pipeline", "--gpu", "nvidia-l4", "--",
                     "--aoi", "a", "--aoi_name", "n", "--bundle", "b", "--output", "o")["body"]["launchParameter"]
    for key in [*sample, *sample["environment"]]:
        assert re.search(rf"\b{key}\b", body), f"the scheduled request lacks {key}"
    assert "flexTemplates:launch" in body and "oauth_token" in body

    tables = {name: body for (kind, name), body in found.items() if kind == "google_bigquery_table"}
    assert "../bigquery/alerts.schema.json" in tables["alerts"]["schema"]
    assert "../bigquery/events.schema.json" in tables["events"]["schema"]
    # The scans: the data bucket's BigLake Iceberg catalog and the code's namespace; the dataset's view over
    # the table, made once the table exists, reads it by its four-part name.
    catalog = found[("google_biglake_iceberg_catalog", "scans")]
    assert (catalog["name"], catalog["catalog_type"]) == (
        "${google_storage_bucket.data.name}",
        '"CATALOG_TYPE_GCS_BUCKET"',
    )
    namespace = found[("google_biglake_iceberg_namespace", "tiles")]
    assert namespace["namespace_id"] == f'"{NAMESPACE}"'
    view = tables["tile_labels"]
    assert view["count"] == "${var.scans_table_exists ? 1 : 0}" and view["view"][0]["use_legacy_sql"] is False
    assert view["view"][0]["query"].endswith(".${google_biglake_iceberg_namespace.tiles.namespace_id}.tile_labels`\"")
    assert "tile_labels_external" not in tables
    accounts = {name for kind, name in found if kind == "google_service_account"}
    assert accounts == {"worker", "launcher", "scheduler"}
    assert not any('"roles/owner"' in str(b) or '"roles/editor"' in str(b) for b in found.values())


@pytest.mark.skipif(shutil.which("terraform") is None, reason="no terraform binary here (terraform fmt -check)")
def test_terraform_is_formatted():
    done = subprocess.run(["terraform", "fmt", "-check", "-recursive", str(INFRA / "terraform")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_bigquery_ddl_is_generated_from_the_schemas():
    for table in schema.TABLES:
        assert (INFRA / "bigquery" / f"ddl_{table}.sql").read_text() == schema.ddl(table)


def test_vertex_training_job_uses_real_training_flags():
    from planet_model import train

    spec = yaml.safe_load((INFRA / "vertex" / "train_job.yaml").read_text())
    pool = spec["workerPoolSpecs"][0]
    assert pool["machineSpec"]["acceleratorCount"] >= 1 and spec["scheduling"]["restartJobOnWorkerRestart"]
    args = train.build_parser().parse_args(pool["containerSpec"]["args"])
    assert args.arch == "inception_v3" and args.resume and args.workdir.startswith("/gcs/")


def test_example_submit_config_is_accepted(tmp_path):
    request = dry_run("scan", "--config", str(INFRA / "submit.example.yaml"), "--",
                      "--aoi", "gs://my-forest-data/aois/x.geojson", "--bundle", "gs://b/v", "--output", "gs://o")
    assert request["body"]["launchParameter"]["environment"]["maxWorkers"] == 20


def ddl_structure(text: str) -> dict:
    """Columns (name, type, NOT NULL), partitioning and clustering of a BigQuery CREATE TABLE, as sqlglot
    parses it; anything sqlglot cannot parse as a table definition fails here."""
    import sqlglot
    from sqlglot import exp

    create = sqlglot.parse_one(text, read="bigquery")
    assert isinstance(create, exp.Create) and isinstance(create.this, exp.Schema), "not a CREATE TABLE"
    properties = create.args["properties"].expressions
    return {
        "columns": [(c.name, c.args["kind"].sql("bigquery"),
                     any(isinstance(k.args.get("kind"), exp.NotNullColumnConstraint) for k in c.constraints))
                    for c in create.this.expressions],
        "partition": [p.this.sql("bigquery") for p in properties if isinstance(p, exp.PartitionedByProperty)],
        "cluster": [c.sql("bigquery") for p in properties if isinstance(p, exp.ClusterProperty) for c in p.expressions],
    }


def test_bigquery_ddl_has_the_schema_definitions_columns_partitioning_and_clustering():
    for name, table in schema.TABLES.items():
        if table.iceberg:
            continue

        def kind(c):
            if c.type == "RECORD_LIST":
                return f"ARRAY<STRUCT<{', '.join(f'{n} {schema.BIGQUERY_TYPES[t]}' for n, t in c.fields)}>>"
            return (
                f"ARRAY<{schema.BIGQUERY_TYPES[c.type]}>" if c.type == "STRING_LIST" else schema.BIGQUERY_TYPES[c.type]
            )

        expected = {
            "columns": [(c.name, kind(c), c.required and c.type not in ("STRING_LIST", "RECORD_LIST"))
                        for c in table.columns],
            "partition": [table.partition],
            "cluster": list(table.cluster),
        }
        assert ddl_structure((INFRA / "bigquery" / f"ddl_{name}.sql").read_text()) == expected, name
    with pytest.raises(AssertionError, match="not a CREATE TABLE"):
        ddl_structure("CREATE TABLE foo bar baz qux")  # what the old check let through


def test_the_scans_view_reads_the_iceberg_table_by_its_four_part_name():
    """BigQuery names a BigLake Iceberg table project.catalog.namespace.table; the view gives it the dataset
    name the queries use, and parses as BigQuery SQL."""
    import sqlglot
    from sqlglot import exp

    text = (INFRA / "bigquery" / "ddl_tile_labels.sql").read_text()
    assert text == schema.ddl("tile_labels")
    create = sqlglot.parse_one(text, read="bigquery")
    assert isinstance(create, exp.Create) and create.kind == "VIEW"
    assert create.this.sql("bigquery") == f"{schema.DATASET}.tile_labels"
    (source,) = list(create.expression.find_all(exp.Table))
    assert [source.catalog, source.db, source.name] == ["PROJECT.DATA_BUCKET", NAMESPACE, "tile_labels"] or \
        source.sql("bigquery") == f"`PROJECT.DATA_BUCKET.{NAMESPACE}.tile_labels`"


def test_bigquery_schema_files_match_the_code():
    folder = INFRA / "bigquery"
    assert not (folder / "tile_labels.schema.json").exists(), "BigQuery reads the scans' schema from Iceberg"
    assert json.loads((folder / "alerts.schema.json").read_text()) == schema.bigquery_schema(schema.ALERT_COLUMNS)
    events = json.loads((folder / "events.schema.json").read_text())
    assert events == schema.bigquery_schema(schema.EVENT_COLUMNS)
    zones = next(c for c in events if c["name"] == "zones")
    assert (zones["type"], zones["mode"], [f["name"] for f in zones["fields"]]) == ("RECORD", "REPEATED",
                                                                                   ["name", "area_ha", "cleared_ha"])
    assert not (folder / "clearings.schema.json").exists(), "BigQuery reads the clearings' schema from Iceberg"
    text = (folder / "ddl_clearings.sql").read_text()
    assert text == schema.ddl("clearings") and "CREATE OR REPLACE VIEW planet_tiles.clearings" in text
    labels = next(c for c in schema.bigquery_schema() if c["name"] == "labels")
    assert (labels["type"], labels["mode"]) == ("STRING", "REPEATED")


def test_schema_command_writes_exactly_the_checked_in_files(tmp_path, capsys):
    schema.main([str(tmp_path)])
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(line.rsplit("/", 1)[1] for line in capsys.readouterr().out.split())
    for name in written:
        assert (tmp_path / name).read_text() == (INFRA / "bigquery" / name).read_text(), name
    assert set(written) == {"alerts.schema.json", "events.schema.json", "ddl_tile_labels.sql", "ddl_alerts.sql",
                            "ddl_events.sql", "ddl_clearings.sql"}


def test_schema_command_takes_its_folder_from_the_command_line_else_infra_bigquery(tmp_path, monkeypatch):
    import sys

    (tmp_path / "infra" / "bigquery").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["schema"])
    schema.main()
    assert (tmp_path / "infra" / "bigquery" / "ddl_alerts.sql").read_text() == schema.ddl("alerts")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.setattr(sys, "argv", ["schema", str(tmp_path / "elsewhere")])
    schema.main()
    assert (tmp_path / "elsewhere" / "ddl_alerts.sql").exists()
