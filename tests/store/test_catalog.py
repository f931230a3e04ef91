"""Which catalog a warehouse commits through, and with which settings."""

import pytest

from pipelines.store.catalog import BIGLAKE_URI, EMBEDDED, Warehouse
from planet_core.errors import UserError


def test_a_local_warehouse_has_an_embedded_sqlite_catalog_beside_its_data(tmp_path):
    name, properties = Warehouse(str(tmp_path / "scans")).properties()
    assert (name, properties["type"]) == ("embedded", "sql")
    assert properties["uri"] == f"sqlite:///{tmp_path}/scans/{EMBEDDED}"
    assert properties["warehouse"] == str(tmp_path / "scans")


def test_biglake_commits_through_google_rest_catalog_of_the_bucket(monkeypatch):
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    name, properties = Warehouse("gs://my-forest-data/scans", "biglake:my-forest-project").properties()
    assert name == "biglake"
    assert properties == {"type": "rest", "uri": BIGLAKE_URI, "warehouse": "gs://my-forest-data",
                          "auth": {"type": "google"}, "header.x-goog-user-project": "my-forest-project",
                          "py-io-impl": "pyiceberg.io.fsspec.FsspecFileIO"}


def test_other_catalogs_sql_rest_and_named(tmp_path):
    assert Warehouse("gs://b/scans", "sqlite:////tmp/c.db").properties()[1]["uri"] == "sqlite:////tmp/c.db"
    assert Warehouse("gs://b/scans", "https://catalog.example/api").properties()[1]["type"] == "rest"
    assert Warehouse(str(tmp_path), "prod").properties()[0] == "prod"


def test_gs_warehouses_go_to_the_emulator_anonymously_when_one_is_set(monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9023")
    properties = Warehouse("gs://b/scans", "sqlite:////tmp/c.db").properties()[1]
    assert (properties["gcs.service.host"], properties["gcs.oauth2.token"]) == ("http://127.0.0.1:9023", "anon")


@pytest.mark.parametrize("location, spec, message", [
    ("gs://b/scans", None, "a gs:// warehouse needs --catalog"),
    ("s3://b/scans", None, "local disks or gs:// buckets"),
    ("/tmp/scans", "biglake:p", "biglake:PROJECT, with a gs:// warehouse"),
    ("gs://b/scans", "biglake:", "biglake:PROJECT"),
])
def test_warehouses_that_cannot_work_are_refused_in_one_line(location, spec, message):
    with pytest.raises(UserError, match=message):
        Warehouse(location, spec).properties()
