# IAM roles for service accounts (IRSA), one per service that calls AWS, each limited to
# what that service does. The rpc-gateway, delivery and the sinks call no AWS API and get no
# role.

locals {
  # The service accounts (deploy/k8s/base) that get a role.
  irsa_roles = toset([
    "trace-dispatcher",
    "trace-broker",
    "trace-gateway",
    "trace-query",
    "trace-platform-worker",
    "trace-udf-worker",
  ])

  queue_arns = [for q in aws_sqs_queue.queue : q.arn]
}

data "aws_iam_policy_document" "irsa_trust" {
  for_each = local.irsa_roles

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${var.namespace}:${each.key}"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "service" {
  for_each = local.irsa_roles

  name                 = "${var.name_prefix}-${trimprefix(each.key, "trace-")}"
  description          = "IRSA role of ${each.key} in namespace ${var.namespace}"
  assume_role_policy   = data.aws_iam_policy_document.irsa_trust[each.key].json
  max_session_duration = 3600
}

locals {
  bucket_arn = aws_s3_bucket.objects.arn
}

# Every service that opens the bucket checks it at start-up with HeadBucket, which S3
# authorises as s3:ListBucket on the bucket with no prefix. So each grant of ListBucket
# below allows requests without a prefix (IfExists) and, with one, only the service's own
# prefix: the service may list every key of the bucket, and list within its prefix only.
data "aws_iam_policy_document" "list_bucket" {
  for_each = {
    "trace-dispatcher"      = local.prefix_claims
    "trace-broker"          = local.prefix_scratch
    "trace-gateway"         = local.prefix_components
    "trace-query"           = local.prefix_lake
    "trace-platform-worker" = local.prefix_lake
    "trace-udf-worker"      = local.prefix_components
  }

  statement {
    sid       = "HeadBucketAndOwnPrefix"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arn]

    condition {
      test     = "StringLikeIfExists"
      variable = "s3:prefix"
      values   = ["${each.value}*"]
    }
  }
}

# The dispatcher is the only service that talks to SQS (TRACE_QUEUE_BACKEND=sqs); the
# workers and the sinks reach the queues through its queue endpoint. With TRACE_OBJECTS_BUCKET
# it also keeps the claim checks of messages over SQS's 256 KiB
# (services/common/src/queue/claim_check.rs): it puts claims/<sqs queue>/<uuid> before it
# sends, gets it when it receives the message for whichever service asked its queue endpoint,
# and deletes it after the message. No other role touches claims/. Its HeadBucket at start-up
# is allowed by the ListBucket grant without a prefix (list_bucket above). S3 answers a
# GetObject of a missing key with 404 only to callers allowed ListBucket (403 otherwise); the
# dispatcher needs the 404, which it reads as "already consumed", so keep that grant.
data "aws_iam_policy_document" "dispatcher" {
  source_policy_documents = [data.aws_iam_policy_document.list_bucket["trace-dispatcher"].json]

  statement {
    sid = "TraceQueues"
    actions = [
      "sqs:GetQueueUrl",
      "sqs:SendMessage",
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
    ]
    resources = local.queue_arns
  }

  statement {
    sid       = "ClaimChecks"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${local.bucket_arn}/${local.prefix_claims}*"]
  }
}

# The broker serves the scoped object endpoint over scratch/ with its own role, and assumes
# the task role for each credential request, under a session policy that narrows it to one
# task's prefix (services/broker/src/sts.rs).
data "aws_iam_policy_document" "broker" {
  source_policy_documents = [data.aws_iam_policy_document.list_bucket["trace-broker"].json]

  statement {
    sid       = "AssumeTaskRole"
    actions   = ["sts:AssumeRole", "sts:TagSession"]
    resources = [aws_iam_role.broker_task.arn]
  }

  statement {
    sid       = "Scratch"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${local.bucket_arn}/${local.prefix_scratch}*"]
  }
}

# components/: written by the gateway (publish), read by the UDF workers.
data "aws_iam_policy_document" "gateway" {
  source_policy_documents = [data.aws_iam_policy_document.list_bucket["trace-gateway"].json]

  statement {
    sid       = "PublishComponents"
    actions   = ["s3:PutObject"]
    resources = ["${local.bucket_arn}/${local.prefix_components}*"]
  }
}

data "aws_iam_policy_document" "udf_worker" {
  source_policy_documents = [data.aws_iam_policy_document.list_bucket["trace-udf-worker"].json]

  statement {
    sid       = "ReadComponents"
    actions   = ["s3:GetObject"]
    resources = ["${local.bucket_arn}/${local.prefix_components}*"]
  }
}

# lake/: written by the platform worker (ingest), read by the query service.
data "aws_iam_policy_document" "platform_worker" {
  source_policy_documents = [
    data.aws_iam_policy_document.list_bucket["trace-platform-worker"].json,
  ]

  statement {
    sid       = "WriteLake"
    actions   = ["s3:PutObject"]
    resources = ["${local.bucket_arn}/${local.prefix_lake}*"]
  }
}

data "aws_iam_policy_document" "query" {
  source_policy_documents = [data.aws_iam_policy_document.list_bucket["trace-query"].json]

  statement {
    sid       = "ReadLake"
    actions   = ["s3:GetObject"]
    resources = ["${local.bucket_arn}/${local.prefix_lake}*"]
  }
}

locals {
  service_policies = {
    "trace-dispatcher"      = data.aws_iam_policy_document.dispatcher.json
    "trace-broker"          = data.aws_iam_policy_document.broker.json
    "trace-gateway"         = data.aws_iam_policy_document.gateway.json
    "trace-query"           = data.aws_iam_policy_document.query.json
    "trace-platform-worker" = data.aws_iam_policy_document.platform_worker.json
    "trace-udf-worker"      = data.aws_iam_policy_document.udf_worker.json
  }
}

resource "aws_iam_role_policy" "service" {
  for_each = local.irsa_roles

  name   = "${var.name_prefix}-${trimprefix(each.key, "trace-")}"
  role   = aws_iam_role.service[each.key].id
  policy = local.service_policies[each.key]
}

# The role the broker hands out, narrowed per task. Only the broker's role may assume it;
# on its own it reaches scratch/ and nothing else, and each session is further limited to
# scratch/<tenant>/<job>/<task>/ until the task's lease ends.
data "aws_iam_policy_document" "broker_task_trust" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]

    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.service["trace-broker"].arn]
    }
  }
}

resource "aws_iam_role" "broker_task" {
  name                 = "${var.name_prefix}-task-scratch"
  description          = "Assumed by the broker per UDF task, narrowed by a session policy"
  assume_role_policy   = data.aws_iam_policy_document.broker_task_trust.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "broker_task" {
  statement {
    sid       = "TaskObjects"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${local.bucket_arn}/${local.prefix_scratch}*"]
  }

  statement {
    sid       = "TaskListing"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.prefix_scratch}*"]
    }
  }
}

resource "aws_iam_role_policy" "broker_task" {
  name   = "${var.name_prefix}-task-scratch"
  role   = aws_iam_role.broker_task.id
  policy = data.aws_iam_policy_document.broker_task.json
}

# KEDA's operator reads the queue depths to scale the workers and the sinks
# (deploy/k8s/base/autoscaling.yaml, podIdentity provider aws).
data "aws_iam_policy_document" "keda_trust" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${var.keda_namespace}:${var.keda_service_account}"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "keda" {
  name                 = "${var.name_prefix}-keda-operator"
  description          = "IRSA role of the KEDA operator: queue depths of the Trace queues"
  assume_role_policy   = data.aws_iam_policy_document.keda_trust.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "keda" {
  statement {
    sid       = "QueueDepth"
    actions   = ["sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
    resources = local.queue_arns
  }
}

resource "aws_iam_role_policy" "keda" {
  name   = "${var.name_prefix}-keda-operator"
  role   = aws_iam_role.keda.id
  policy = data.aws_iam_policy_document.keda.json
}
