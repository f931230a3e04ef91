# Streaming scans (pipelines/stream.py): new scenes in the data bucket's scenes/ announce themselves on
# Pub/Sub; the streaming job reads the subscription and publishes alerts on their own topic.

data "google_storage_project_service_account" "gcs" {
  depends_on = [google_project_service.apis["storage.googleapis.com"]]
}

resource "google_pubsub_topic" "new_scenes" {
  depends_on = [google_project_service.apis["pubsub.googleapis.com"]]

  name = "planet-tiles-new-scenes"
}

resource "google_pubsub_topic_iam_member" "gcs_publishes" {
  depends_on = [google_project_service.apis["pubsub.googleapis.com"]]

  topic  = google_pubsub_topic.new_scenes.id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

resource "google_storage_notification" "new_scenes" {
  depends_on = [google_project_service.apis["storage.googleapis.com"], google_pubsub_topic_iam_member.gcs_publishes]

  bucket             = google_storage_bucket.data.name
  topic              = google_pubsub_topic.new_scenes.id
  payload_format     = "JSON_API_V1"
  event_types        = ["OBJECT_FINALIZE"]
  object_name_prefix = "scenes/"
}

resource "google_pubsub_subscription" "new_scenes" {
  depends_on = [google_project_service.apis["pubsub.googleapis.com"]]

  name                       = "planet-tiles-new-scenes"
  topic                      = google_pubsub_topic.new_scenes.id
  ack_deadline_seconds       = 600
  message_retention_duration = "604800s" # a week: a drained or updated job picks up where it stopped
  expiration_policy {
    ttl = "" # never expires
  }
}

resource "google_pubsub_subscription_iam_member" "worker_reads_scenes" {
  depends_on = [google_project_service.apis["pubsub.googleapis.com"]]

  subscription = google_pubsub_subscription.new_scenes.name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${google_service_account.worker.email}"
}

resource "google_pubsub_topic" "alerts" {
  depends_on = [google_project_service.apis["pubsub.googleapis.com"]]

  name = "planet-tiles-alerts"
}

resource "google_pubsub_topic_iam_member" "worker_publishes_alerts" {
  depends_on = [google_project_service.apis["pubsub.googleapis.com"]]

  topic  = google_pubsub_topic.alerts.id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.worker.email}"
}

# Pub/Sub reads need the viewer role on the subscription's project for the Dataflow source's checks.
resource "google_project_iam_member" "worker_pubsub_viewer" {
  depends_on = [google_project_service.apis["cloudresourcemanager.googleapis.com"]]

  project = var.project
  role    = "roles/pubsub.viewer"
  member  = "serviceAccount:${google_service_account.worker.email}"
}

output "new_scenes_subscription" {
  value = google_pubsub_subscription.new_scenes.id
}

output "alerts_topic" {
  value = google_pubsub_topic.alerts.id
}
