variable "project" {
  description = "Google Cloud project id"
  type        = string
}

variable "region" {
  description = "Region for Dataflow, buckets, BigQuery, Artifact Registry and Cloud Scheduler"
  type        = string
  default     = "us-central1"
}

variable "data_bucket" {
  description = "Bucket for scenes, AOIs, model bundles and scan output"
  type        = string
}

variable "pipeline_bucket" {
  description = "Bucket for Flex Template specs and Dataflow temp and staging files"
  type        = string
}

variable "dataset" {
  description = "BigQuery dataset of the tile labels and alerts"
  type        = string
  default     = "planet_tiles"
}

variable "image_tag" {
  description = "Tag of the pipeline images the templates point at"
  type        = string
  default     = "latest"
}

variable "worker_machine_type" {
  description = "Dataflow worker machine type for regions that ask for no GPU"
  type        = string
  default     = "n2-standard-4"
}

variable "scheduler_paused" {
  description = "Create the scheduled scans paused (true until the first bundle is in place)"
  type        = bool
  default     = false
}

variable "scans_table_exists" {
  description = "Make the BigQuery view over the scans' Iceberg table (true once the first scan or `planet-tiles maintain` has made the table)"
  type        = bool
  default     = false
}
