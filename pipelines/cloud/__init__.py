"""Google Cloud: Dataflow Flex Template metadata, job submission, and the project's set-up."""
