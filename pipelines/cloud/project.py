"""What a Google Cloud project needs for planet-tiles: the APIs its resources use and each service
account's roles, each with the documentation that asks for it. ``infra/terraform`` must match these
tables exactly; ``tests/cloud`` holds it to them.
"""

from __future__ import annotations

#: The API each Terraform resource type needs: a new project has BigQuery and Cloud Storage on, but not
#: the rest, and ``terraform apply`` stops with SERVICE_DISABLED on the first resource whose API is off.
RESOURCE_SERVICES = {
    "google_storage_bucket": "storage.googleapis.com",
    "google_storage_bucket_object": "storage.googleapis.com",
    "google_storage_bucket_iam_member": "storage.googleapis.com",
    "google_storage_notification": "storage.googleapis.com",
    "google_artifact_registry_repository": "artifactregistry.googleapis.com",
    "google_artifact_registry_repository_iam_member": "artifactregistry.googleapis.com",
    "google_bigquery_dataset": "bigquery.googleapis.com",
    "google_bigquery_dataset_iam_member": "bigquery.googleapis.com",
    "google_bigquery_table": "bigquery.googleapis.com",
    "google_biglake_iceberg_catalog": "biglake.googleapis.com",
    "google_biglake_iceberg_namespace": "biglake.googleapis.com",
    "google_service_account": "iam.googleapis.com",
    "google_service_account_iam_member": "iam.googleapis.com",
    "google_project_iam_member": "cloudresourcemanager.googleapis.com",  # the project's IAM policy
    "google_cloud_scheduler_job": "cloudscheduler.googleapis.com",
    "google_pubsub_topic": "pubsub.googleapis.com",
    "google_pubsub_topic_iam_member": "pubsub.googleapis.com",
    "google_pubsub_subscription": "pubsub.googleapis.com",
    "google_pubsub_subscription_iam_member": "pubsub.googleapis.com",
}
#: APIs no Terraform resource creates through but the jobs use: Dataflow runs the templates (the
#: scheduled scans post to it), its workers are Compute Engine VMs, and GPU training runs on Vertex AI.
JOB_SERVICES = ("dataflow.googleapis.com", "compute.googleapis.com", "aiplatform.googleapis.com")
SERVICES = tuple(sorted(set(RESOURCE_SERVICES.values()) | set(JOB_SERVICES)))

_FLEX_RUN = "https://cloud.google.com/dataflow/docs/guides/templates/run-flex-templates#required-permissions"
_DATAFLOW_ROLES = "https://cloud.google.com/iam/docs/roles-permissions/dataflow"
#: Roles per service account (project-level unless a resource is named), and why.
ROLES = {
    "worker": {
        "roles/dataflow.worker": _FLEX_RUN,
        "roles/viewer": _FLEX_RUN,
        "roles/storage.objectAdmin": f"{_FLEX_RUN} (on the data and pipeline buckets: scans replace their partitions)",
        "roles/artifactregistry.reader": f"{_FLEX_RUN} (read access to the Flex Template image)",
        "roles/bigquery.dataEditor": "streaming scans write alerts (on the dataset)",
        "roles/biglake.editor": "scans commit to their Iceberg table through the BigLake metastore Iceberg REST "
                                "catalog (https://cloud.google.com/biglake/docs/blms-rest-catalog#required-roles; "
                                "roles: https://cloud.google.com/biglake/docs/iam-roles)",
        "roles/pubsub.subscriber": "streaming scans read new-scene notifications (on the subscription)",
        "roles/pubsub.publisher": "streaming scans publish alerts (on the alerts topic)",
        "roles/pubsub.viewer": "Beam's Pub/Sub source checks the subscription",
    },
    "launcher": {
        "roles/dataflow.admin": f"{_DATAFLOW_ROLES}: the minimal role to create jobs (compute.machineTypes.get)",
        "roles/artifactregistry.writer": "pushes the pipeline images",
        "roles/storage.objectAdmin": "writes template specs, temp and staging files (on the pipeline bucket)",
        "roles/aiplatform.user": "creates the Vertex AI training job",
        "roles/iam.serviceAccountUser": "jobs run as the worker account (on that account)",
    },
    "scheduler": {
        "roles/dataflow.admin": f"{_DATAFLOW_ROLES}: the minimal role to create jobs (compute.machineTypes.get)",
        "roles/storage.objectViewer": "reads the scan template spec (on the pipeline bucket)",
        "roles/iam.serviceAccountUser": "the scheduled scans run as the worker account (on that account)",
    },
}
