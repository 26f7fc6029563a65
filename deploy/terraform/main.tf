locals {
  account_id  = data.aws_caller_identity.current.account_id
  oidc_issuer = element(split(":oidc-provider/", var.oidc_provider_arn), 1)

  # The dispatcher's --sqs-queue-prefix (TRACE_SQS_QUEUE_PREFIX): Trace queue `name` is the
  # SQS queue `<prefix><name>` (services/common/src/queue/sqs.rs).
  queue_prefix = "${var.name_prefix}-"

  # Trace's internal queues (trace_common::api::QUEUE_TASKS_UDF, QUEUE_TASKS_INGEST,
  # QUEUE_BUFFER). Only the dispatcher talks to SQS; every other service reaches these through
  # the dispatcher's queue endpoint.
  queues = {
    "tasks-udf"      = { max_receive_count = var.task_queue_max_receive_count }
    "tasks-ingest"   = { max_receive_count = var.task_queue_max_receive_count }
    "buffer-records" = { max_receive_count = var.buffer_queue_max_receive_count }
  }

  bucket_name = "${var.name_prefix}-objects-${local.account_id}-${var.region}"

  # Key prefixes of the object store (services/common/src/objects.rs): component bytes,
  # the Parquet lake, task scratch, and queue messages too large for SQS (claim checks).
  prefix_components = "components/"
  prefix_lake       = "lake/"
  prefix_scratch    = "scratch/"
  prefix_claims     = "claims/"

  # A claim-check object must outlive every message that points at it, or a late receive
  # finds it gone and drops the message as already consumed.
  claims_expiry_days = ceil(var.message_retention_seconds / 86400) + 1

  endpoint_subnet_ids = (
    length(var.vpc_endpoint_subnet_ids) > 0 ? var.vpc_endpoint_subnet_ids : var.private_subnet_ids
  )
  aws_api_cidr = var.aws_api_cidr != "" ? var.aws_api_cidr : data.aws_vpc.this.cidr_block
}
