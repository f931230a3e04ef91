# Storage, images, BigQuery, service accounts and the scheduled regional scans of planet-tiles.
# Regions come from ../regions.yaml and table schemas from ../bigquery/*.schema.json, which the code
# generates (python -m pipelines.store.schema): nothing here repeats them.

locals {
  regions_file = yamldecode(file("${path.module}/../regions.yaml"))
  regions      = local.regions_file.regions
  images       = "${var.region}-docker.pkg.dev/${var.project}/${google_artifact_registry_repository.images.repository_id}"
  # Machine types that hold each GPU (the same table as pipelines/cloud/submit.py).
  gpu_machines = {
    "nvidia-l4"         = "g2-standard-8"
    "nvidia-tesla-t4"   = "n1-standard-8"
    "nvidia-tesla-a100" = "a2-highgpu-1g"
  }
}

# --- APIs: exactly those the resources and jobs below use (pipelines/cloud/project.py) ------------------

resource "google_project_service" "apis" {
  for_each = toset([
    "aiplatform.googleapis.com",
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "biglake.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "compute.googleapis.com",
    "dataflow.googleapis.com",
    "iam.googleapis.com",
    "pubsub.googleapis.com",
    "storage.googleapis.com",
  ])
  project            = var.project
  service            = each.key
  disable_on_destroy = false # other workloads of the project may use them too
}

# --- Storage ---------------------------------------------------------------------------------------

resource "google_storage_bucket" "data" {
  depends_on = [google_project_service.apis["storage.googleapis.com"]]

  name                        = var.data_bucket
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  versioning {
    enabled = true
  }
}

resource "google_storage_bucket" "pipeline" {
  depends_on = [google_project_service.apis["storage.googleapis.com"]]

  name                        = var.pipeline_bucket
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  lifecycle_rule {
    condition {
      age            = 7
      matches_prefix = ["tmp/", "staging/"]
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_storage_bucket_object" "aoi" {
  depends_on = [google_project_service.apis["storage.googleapis.com"]]

  for_each     = local.regions
  bucket       = google_storage_bucket.data.name
  name         = "aois/${each.key}.geojson"
  content_type = "application/geo+json"
  content = jsonencode({
    type = "FeatureCollection"
    features = [{
      type       = "Feature"
      properties = { name = each.key, description = lookup(each.value, "description", "") }
      geometry   = each.value.aoi
    }]
  })
}

resource "google_artifact_registry_repository" "images" {
  depends_on = [google_project_service.apis["artifactregistry.googleapis.com"]]

  location      = var.region
  repository_id = "planet-tiles"
  format        = "DOCKER"
  description   = "planet-tiles pipeline images (Flex Template launcher and Dataflow worker in one)"
}

# --- BigQuery --------------------------------------------------------------------------------------

resource "google_bigquery_dataset" "tiles" {
  depends_on = [google_project_service.apis["bigquery.googleapis.com"]]

  dataset_id    = var.dataset
  location      = var.region
  description   = "Per-tile labels of planet-tiles scans, and forest change alerts"
  friendly_name = "planet-tiles"
}

resource "google_bigquery_table" "alerts" {
  depends_on = [google_project_service.apis["bigquery.googleapis.com"]]

  dataset_id          = google_bigquery_dataset.tiles.dataset_id
  table_id            = "alerts"
  description         = "Tiles that turned from intact forest to a disturbance label (pipelines/analysis/rules.py)"
  schema              = file("${path.module}/../bigquery/alerts.schema.json")
  clustering          = ["aoi", "tile_id"]
  deletion_protection = true
  time_partitioning {
    type  = "DAY"
    field = "first_detected"
  }
}

resource "google_bigquery_table" "events" {
  depends_on = [google_project_service.apis["bigquery.googleapis.com"]]

  dataset_id          = google_bigquery_dataset.tiles.dataset_id
  table_id            = "events"
  description         = "Alert tiles that touch and were first detected close in time (pipelines/analysis/events.py)"
  schema              = file("${path.module}/../bigquery/events.schema.json")
  clustering          = ["aoi"]
  deletion_protection = true
  time_partitioning {
    type  = "DAY"
    field = "first_detected"
  }
}

# --- The scans' Iceberg table ------------------------------------------------------------------------

# The data bucket's BigLake metastore Iceberg REST catalog (a catalog of the gcs-bucket type is named after
# its bucket). Scans commit their partitions through it (--catalog biglake:PROJECT); BigQuery reads the
# table as `PROJECT.DATA_BUCKET.planet_tiles.tile_labels`. The first scan, or `planet-tiles maintain`,
# creates the table (its schema is the code's, pipelines/store/schema.py).
resource "google_biglake_iceberg_catalog" "scans" {
  depends_on = [google_project_service.apis["biglake.googleapis.com"]]

  name         = google_storage_bucket.data.name
  catalog_type = "CATALOG_TYPE_GCS_BUCKET"
}

resource "google_biglake_iceberg_namespace" "tiles" {
  depends_on = [google_project_service.apis["biglake.googleapis.com"]]

  catalog      = google_biglake_iceberg_catalog.scans.name
  namespace_id = "planet_tiles" # the namespace of pipelines/store/catalog.py
}

# The view that names the Iceberg table in the dataset, as every query in infra/bigquery/ reads it
# (infra/bigquery/ddl_tile_labels.sql is the same view). BigQuery checks a view's table when it is made:
# apply with -var scans_table_exists=true once the table exists.
resource "google_bigquery_table" "tile_labels" {
  count      = var.scans_table_exists ? 1 : 0
  depends_on = [google_project_service.apis["bigquery.googleapis.com"]]

  dataset_id          = google_bigquery_dataset.tiles.dataset_id
  table_id            = "tile_labels"
  description         = "One row per (tile, scene) of each scan: the scans' Apache Iceberg table"
  deletion_protection = false
  view {
    query          = "SELECT * FROM `${var.project}.${google_biglake_iceberg_catalog.scans.name}.${google_biglake_iceberg_namespace.tiles.namespace_id}.tile_labels`"
    use_legacy_sql = false
  }
}

# --- Service accounts: each with the least it needs ------------------------------------------------

# Dataflow workers (and the Flex Template launcher VM): read scenes, bundles and AOIs, write scans,
# use temp and staging space, pull the image, write rows to BigQuery (streaming scans).
resource "google_service_account" "worker" {
  depends_on = [google_project_service.apis["iam.googleapis.com"]]

  account_id   = "planet-tiles-worker"
  display_name = "planet-tiles Dataflow worker"
}

resource "google_project_iam_member" "worker_viewer" {
  depends_on = [google_project_service.apis["cloudresourcemanager.googleapis.com"]]

  project = var.project
  role    = "roles/viewer" # as the Flex Template docs list for launcher and worker VMs
  member  = "serviceAccount:${google_service_account.worker.email}"
}

resource "google_project_iam_member" "worker_dataflow" {
  depends_on = [google_project_service.apis["cloudresourcemanager.googleapis.com"]]

  project = var.project
  role    = "roles/dataflow.worker"
  member  = "serviceAccount:${google_service_account.worker.email}"
}

resource "google_storage_bucket_iam_member" "worker_data" {
  depends_on = [google_project_service.apis["storage.googleapis.com"]]

  bucket = google_storage_bucket.data.name
  role   = "roles/storage.objectAdmin" # a re-run replaces its own scan partition
  member = "serviceAccount:${google_service_account.worker.email}"
}

resource "google_storage_bucket_iam_member" "worker_pipeline" {
  depends_on = [google_project_service.apis["storage.googleapis.com"]]

  bucket = google_storage_bucket.pipeline.name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_service_account.worker.email}"
}

resource "google_artifact_registry_repository_iam_member" "worker_images" {
  depends_on = [google_project_service.apis["artifactregistry.googleapis.com"]]

  location   = google_artifact_registry_repository.images.location
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.reader"
  member     = "serviceAccount:${google_service_account.worker.email}"
}

resource "google_bigquery_dataset_iam_member" "worker_rows" {
  depends_on = [google_project_service.apis["bigquery.googleapis.com"]]

  dataset_id = google_bigquery_dataset.tiles.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = "serviceAccount:${google_service_account.worker.email}"
}

# Scans commit to the Iceberg table through the BigLake catalog (end-user credentials: the worker's own).
resource "google_project_iam_member" "worker_tables" {
  depends_on = [google_project_service.apis["cloudresourcemanager.googleapis.com"]]

  project = var.project
  role    = "roles/biglake.editor"
  member  = "serviceAccount:${google_service_account.worker.email}"
}

# Launcher: the identity that builds images and templates and submits jobs (CI or an operator):
# push images, write template specs, launch jobs that run as the worker account.
resource "google_service_account" "launcher" {
  depends_on = [google_project_service.apis["iam.googleapis.com"]]

  account_id   = "planet-tiles-launcher"
  display_name = "planet-tiles template builder and job launcher"
}

resource "google_project_iam_member" "launcher_dataflow" {
  depends_on = [google_project_service.apis["cloudresourcemanager.googleapis.com"]]

  project = var.project
  role    = "roles/dataflow.admin" # the minimal role to create jobs (it holds compute.machineTypes.get)
  member  = "serviceAccount:${google_service_account.launcher.email}"
}

resource "google_artifact_registry_repository_iam_member" "launcher_images" {
  depends_on = [google_project_service.apis["artifactregistry.googleapis.com"]]

  location   = google_artifact_registry_repository.images.location
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${google_service_account.launcher.email}"
}

resource "google_storage_bucket_iam_member" "launcher_pipeline" {
  depends_on = [google_project_service.apis["storage.googleapis.com"]]

  bucket = google_storage_bucket.pipeline.name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_service_account.launcher.email}"
}

resource "google_project_iam_member" "launcher_vertex" {
  depends_on = [google_project_service.apis["cloudresourcemanager.googleapis.com"]]

  project = var.project
  role    = "roles/aiplatform.user" # GPU training jobs (infra/vertex/train_job.yaml), run as the worker account
  member  = "serviceAccount:${google_service_account.launcher.email}"
}

resource "google_service_account_iam_member" "launcher_acts_as_worker" {
  depends_on = [google_project_service.apis["iam.googleapis.com"]]

  service_account_id = google_service_account.worker.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.launcher.email}"
}

# Scheduler: only launches the scan template, as the worker account.
resource "google_service_account" "scheduler" {
  depends_on = [google_project_service.apis["iam.googleapis.com"]]

  account_id   = "planet-tiles-scheduler"
  display_name = "planet-tiles scheduled scans"
}

resource "google_project_iam_member" "scheduler_dataflow" {
  depends_on = [google_project_service.apis["cloudresourcemanager.googleapis.com"]]

  project = var.project
  role    = "roles/dataflow.admin" # the minimal role to create jobs (it holds compute.machineTypes.get)
  member  = "serviceAccount:${google_service_account.scheduler.email}"
}

resource "google_storage_bucket_iam_member" "scheduler_templates" {
  depends_on = [google_project_service.apis["storage.googleapis.com"]]

  bucket = google_storage_bucket.pipeline.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.scheduler.email}"
}

resource "google_service_account_iam_member" "scheduler_acts_as_worker" {
  depends_on = [google_project_service.apis["iam.googleapis.com"]]

  service_account_id = google_service_account.worker.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.scheduler.email}"
}

# --- Scheduled regional scans: one job per region of ../regions.yaml ------------------------------

resource "google_cloud_scheduler_job" "scan" {
  depends_on = [google_project_service.apis["cloudscheduler.googleapis.com"], google_project_service.apis["dataflow.googleapis.com"], google_project_service.apis["compute.googleapis.com"]]

  for_each    = local.regions
  name        = "planet-tiles-scan-${each.key}"
  description = "Scan ${each.key}: ${lookup(each.value, "description", "")}"
  region      = var.region
  schedule    = each.value.schedule
  time_zone   = local.regions_file.time_zone
  paused      = var.scheduler_paused

  retry_config {
    retry_count = 1
  }

  # The body `planet-tiles submit scan` sends (pipelines/cloud/submit.py: launch_request).
  http_target {
    http_method = "POST"
    uri         = "https://dataflow.googleapis.com/v1b3/projects/${var.project}/locations/${var.region}/flexTemplates:launch"
    headers     = { "Content-Type" = "application/json" }
    body = base64encode(jsonencode({
      launchParameter = {
        jobName              = "planet-tiles-scan-${each.key}"
        containerSpecGcsPath = "gs://${google_storage_bucket.pipeline.name}/templates/scan.json"
        parameters = merge(
          { for k, v in each.value.scan : k => replace(replace(tostring(v), "{bucket}", google_storage_bucket.data.name), "{project}", var.project) },
          {
            aoi      = "gs://${google_storage_bucket.data.name}/${google_storage_bucket_object.aoi[each.key].name}"
            aoi_name = each.key
          },
        )
        environment = merge(
          {
            tempLocation         = "gs://${google_storage_bucket.pipeline.name}/tmp"
            stagingLocation      = "gs://${google_storage_bucket.pipeline.name}/staging"
            sdkContainerImage    = "${local.images}/scan:${var.image_tag}"
            serviceAccountEmail  = google_service_account.worker.email
            maxWorkers           = lookup(each.value, "max_workers", 20)
            additionalUserLabels = { app = "planet-tiles", pipeline = "scan" }
            machineType = lookup(each.value, "machine_type",
            contains(keys(each.value), "gpu") ? local.gpu_machines[split(":", each.value.gpu)[0]] : var.worker_machine_type)
          },
          contains(keys(each.value), "gpu") ? {
            additionalExperiments = [
              "worker_accelerator=type:${split(":", each.value.gpu)[0]};count:${try(split(":", each.value.gpu)[1], "1")};install-nvidia-driver",
              "no_use_multiple_sdk_containers",
            ]
          } : {},
        )
      }
    }))
    oauth_token {
      service_account_email = google_service_account.scheduler.email
      scope                 = "https://www.googleapis.com/auth/cloud-platform"
    }
  }
}
