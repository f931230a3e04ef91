"""A team's first real Google Cloud run, checked offline: images that build, APIs on, roles as documented,
README commands that run as written."""

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from pipelines.cloud.project import JOB_SERVICES, RESOURCE_SERVICES, ROLES, SERVICES
from tests.cloud.terraform import resources, text

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
DOCKERFILES = [INFRA / "dataflow" / "Dockerfile", INFRA / "vertex" / "Dockerfile"]


def stages(dockerfile: Path) -> list[str]:
    return re.findall(r"^FROM\s+(\S+)", dockerfile.read_text(), flags=re.M)


def apt_packages(dockerfile: Path) -> list[str]:
    text = dockerfile.read_text().replace("\\\n", " ")
    found = []
    for command in re.findall(r"apt-get install ([^&;\n]+)", text):
        found += [word for word in command.split() if not word.startswith("-")]
    return found


def test_base_images_are_pinned_to_a_debian_release_and_a_digest():
    for dockerfile in DOCKERFILES:
        final = stages(dockerfile)[-1]
        assert re.fullmatch(r"python:3\.11-slim-(bookworm|trixie)@sha256:[0-9a-f]{64}", final), (dockerfile, final)
        assert not any(image.endswith(":latest") for image in stages(dockerfile)), dockerfile


def debian_mirror() -> str | None:
    """This machine's Debian archive address, from its own apt sources (so no host is named here)."""
    for path in (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")):
        if path.exists():
            match = re.search(r"(?:^URIs:\s*|^deb\s+(?:\[[^]]*\]\s+)?)(\S+/debian)\s*$", path.read_text(), flags=re.M)
            if match:
                return match.group(1)
    return None


def available(release: str, packages: list[str], folder: Path) -> dict[str, bool]:
    """Whether each package is in ``release``'s main archive: apt reads that release's lists into a
    temporary folder, touching nothing of the system's own apt state."""
    mirror = debian_mirror()
    if mirror is None:
        pytest.skip("no Debian apt source on this machine to read release package lists from")
    (folder / "lists" / "partial").mkdir(parents=True)
    (folder / "cache" / "archives" / "partial").mkdir(parents=True)
    (folder / "parts").mkdir()
    (folder / "status").write_text("")
    (folder / "sources.list").write_text(f"deb [trusted=yes] {mirror} {release} main\n")
    options = [f"-o=Dir::Etc::SourceList={folder / 'sources.list'}", f"-o=Dir::Etc::SourceParts={folder / 'parts'}",
               f"-o=Dir::State::Lists={folder / 'lists'}", f"-o=Dir::Cache={folder / 'cache'}",
               f"-o=Dir::State::status={folder / 'status'}", "-o=APT::Get::List-Cleanup=0"]
    update = subprocess.run(["apt-get", *options, "update"], capture_output=True, text=True, timeout=600)
    if update.returncode != 0:
        pytest.skip(f"the Debian archive could not be read: {update.stderr.strip()[-300:]}")
    def candidate(name: str) -> bool:  # `show` succeeds for a name other packages merely mention
        policy = subprocess.run(["apt-cache", *options, "policy", name], capture_output=True, text=True).stdout
        found = re.search(r"Candidate:\s*(\S+)", policy)
        return bool(found) and found.group(1) != "(none)"

    return {name: candidate(name) for name in packages}


@pytest.mark.slow
def test_apt_packages_exist_in_the_pinned_release_and_the_check_catches_a_missing_one(tmp_path):
    for dockerfile in DOCKERFILES:
        release = re.search(r"slim-(\w+)@", stages(dockerfile)[-1]).group(1)
        packages = apt_packages(dockerfile)
        if packages:
            assert all(available(release, packages, tmp_path / dockerfile.parent.name).values()), (dockerfile, release)
    # The check would have caught the image that did not build: trixie has no OpenJDK 17.
    assert available("trixie", ["openjdk-17-jre-headless", "default-jre-headless"], tmp_path / "trixie") == {
        "openjdk-17-jre-headless": False, "default-jre-headless": True}


def test_pip_installs_are_the_pinned_ones():
    pins = dict(line.split("==", 1) for line in (INFRA / "dataflow" / "requirements.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    for dockerfile in DOCKERFILES:
        text = dockerfile.read_text().replace("\\\n", " ")
        for command in re.findall(r"pip install ([^&;\n]+)", text):
            words = [w.strip("\"'") for w in shlex.split(command) if not w.startswith("-")]
            for word in words:
                if word in (".", "requirements.txt", "infra/dataflow/requirements.txt"):
                    continue
                name, _, version = word.partition("==")
                base = re.sub(r"\[.*\]", "", name)
                pinned = pins.get(base) or pins.get(f"{base}-cpu")  # the CUDA build of the pinned CPU TensorFlow
                assert pinned is not None and version == pinned, (dockerfile, word, pinned)


def test_every_resource_depends_on_its_api_and_exactly_those_apis_are_enabled():
    found = resources(INFRA / "terraform")
    apis = found[("google_project_service", "apis")]
    assert sorted(re.findall(r"[\w.-]+\.googleapis\.com", apis["for_each"])) == list(SERVICES)
    used = set()
    for (kind, name), body in found.items():
        if kind == "google_project_service":
            continue
        assert kind in RESOURCE_SERVICES, f"{kind}.{name}: which API does it need? (pipelines/cloud/project.py)"
        service = RESOURCE_SERVICES[kind]
        used.add(service)
        depends = " ".join(body.get("depends_on", []))
        assert f'google_project_service.apis["{service}"]' in depends, f"{kind}.{name} does not wait for {service}"
    for (kind, _name), body in found.items():
        if kind != "google_cloud_scheduler_job":
            continue
        for service in ("dataflow.googleapis.com", "compute.googleapis.com"):
            assert service in " ".join(body["depends_on"]), f"scheduled scans launch Dataflow jobs: {service}"
    assert used | set(JOB_SERVICES) == set(SERVICES), "no API is enabled that nothing uses"


def test_service_account_roles_are_the_documented_ones_and_no_more():
    granted: dict[str, set] = {account: set() for account in ROLES}
    for (kind, _), body in resources(INFRA / "terraform").items():
        if not kind.endswith("_iam_member"):
            continue
        member = re.search(r"google_service_account\.(\w+)\.email", body["member"])
        if member:
            granted[member.group(1)].add(text(body["role"]))
    assert granted == {account: set(roles) for account, roles in ROLES.items()}
    assert not any(role in ("roles/owner", "roles/editor") for roles in granted.values() for role in roles)


#: The flags of each command the README runs, as Google's reference documents them (gcloud reference
#: pages for dataflow flex-template run/build, ai custom-jobs create, auth configure-docker, dataflow jobs
#: drain; bq command-line tool reference for load and query), plus gcloud's global flags.
GCLOUD_GLOBAL = {"--project", "--account", "--quiet", "--format", "--verbosity", "--impersonate-service-account"}
FLAGS = {
    ("gcloud", "dataflow", "flex-template", "run"): {
        "--template-file-gcs-location", "--additional-experiments", "--additional-pipeline-options",
        "--additional-user-labels", "--dataflow-kms-key", "--disable-public-ips", "--enable-streaming-engine",
        "--flexrs-goal", "--launcher-machine-type", "--launcher-vm-timeout-secs", "--max-workers", "--network",
        "--num-workers", "--parameters", "--region", "--service-account-email", "--staging-location",
        "--subnetwork", "--temp-location", "--worker-machine-type", "--update", "--transform-name-mappings",
        "--worker-region", "--worker-zone"},
    ("gcloud", "dataflow", "flex-template", "build"): {
        "--sdk-language", "--image", "--env", "--flex-template-base-image", "--image-gcr-path", "--py-path",
        "--jar", "--go-binary-path", "--additional-experiments", "--additional-user-labels", "--dataflow-kms-key",
        "--disable-public-ips", "--enable-streaming-engine", "--gcs-log-dir", "--max-workers", "--metadata-file",
        "--network", "--num-workers", "--print-only", "--service-account-email", "--staging-location",
        "--subnetwork", "--temp-location", "--worker-machine-type", "--worker-region", "--worker-zone"},
    ("gcloud", "ai", "custom-jobs", "create"): {
        "--region", "--display-name", "--config", "--worker-pool-spec", "--args", "--command", "--labels",
        "--network", "--service-account", "--python-package-uris", "--enable-web-access", "--kms-key"},
    ("gcloud", "auth", "configure-docker"): set(),
    ("gcloud", "dataflow", "jobs", "drain"): {"--region"},
    ("bq", "load"): {"--source_format", "--parquet_enable_list_inference", "--hive_partitioning_mode",
                     "--hive_partitioning_source_uri_prefix", "--autodetect", "--replace", "--schema"},
    ("bq", "query"): {"--use_legacy_sql", "--parameter", "--destination_table", "--dry_run", "--format"},
}


def readme_commands() -> list[list[str]]:
    """Every gcloud and bq command of the README: code blocks (continuation lines joined) and inline code."""
    text = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line.startswith(("gcloud ", "bq ")):
                commands.append(line)
    prose = re.sub(r"\s*\n\s*", " ", re.sub(r"```.*?```", "", text, flags=re.S))
    commands += [c for c in re.findall(r"`([^`]+)`", prose) if c.startswith(("gcloud ", "bq "))]
    return [shlex.split(c.split(" < ")[0]) for c in commands]


def test_readme_cloud_commands_use_only_real_flags_and_the_templates_parameters():
    from pipelines.cloud import templates

    checked = 0
    for words in readme_commands():
        command = next(key for key in FLAGS if tuple(words[: len(key)]) == key)
        known = FLAGS[command] | (GCLOUD_GLOBAL if command[0] == "gcloud" else set())
        flags = [w.split("=", 1)[0] for w in words if w.startswith("--")]
        assert set(flags) <= known, (command, set(flags) - known)
        if command[-1] == "run":  # Flex Template parameters are the template's own flags
            given = [w for i, w in enumerate(words) if words[i - 1] == "--parameters" or w.startswith("--parameters=")]
            pairs = dict(p.split("=", 1) for value in given for p in value.removeprefix("--parameters=").split(","))
            declared = {p["name"]: p for p in templates.metadata(command_template(words))["parameters"]}
            assert set(pairs) <= set(declared)
            assert {n for n, p in declared.items() if not p["isOptional"]} <= set(pairs)
        checked += 1
    assert checked >= 8


def command_template(words: list[str]) -> str:
    location = words[words.index("--template-file-gcs-location") + 1]
    return Path(location).stem
