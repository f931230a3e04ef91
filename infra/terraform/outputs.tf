output "worker_service_account" {
  value = google_service_account.worker.email
}

output "launcher_service_account" {
  value = google_service_account.launcher.email
}

output "image_repository" {
  value = local.images
}

output "scheduled_scans" {
  value = { for name, job in google_cloud_scheduler_job.scan : name => job.schedule }
}
