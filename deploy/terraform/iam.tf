# IAM roles for service accounts (IRSA), one per service that calls AWS or is meant to hold
# object-store grants, each limited to what that service does. The rpc-gateway, delivery and
# the sinks call no AWS API and get no role.

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

# The dispatcher is the only service that talks to SQS (TRACE_QUEUE_BACKEND=sqs); the
# workers and the sinks reach the queues through its queue endpoint.
data "aws_iam_policy_document" "dispatcher" {
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
}

# The broker assumes the task role for each credential request, under a session policy that
# narrows it to one task's scratch prefix (services/broker/src/sts.rs).
data "aws_iam_policy_document" "broker" {
  statement {
    sid       = "AssumeTaskRole"
    actions   = ["sts:AssumeRole", "sts:TagSession"]
    resources = [aws_iam_role.broker_task.arn]
  }
}

# components/: written by the gateway (publish), read by the UDF workers.
data "aws_iam_policy_document" "gateway" {
  statement {
    sid       = "Components"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.objects.arn}/${local.prefix_components}*"]
  }

  statement {
    sid       = "ListComponents"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.objects.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.prefix_components}*"]
    }
  }
}

data "aws_iam_policy_document" "udf_worker" {
  statement {
    sid       = "ReadComponents"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.objects.arn}/${local.prefix_components}*"]
  }
}

# lake/: written by the platform worker (ingest), read by the query service.
data "aws_iam_policy_document" "platform_worker" {
  statement {
    sid       = "WriteLake"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.objects.arn}/${local.prefix_lake}*"]
  }
}

data "aws_iam_policy_document" "query" {
  statement {
    sid       = "ReadLake"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.objects.arn}/${local.prefix_lake}*"]
  }

  statement {
    sid       = "ListLake"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.objects.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.prefix_lake}*"]
    }
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
    resources = ["${aws_s3_bucket.objects.arn}/${local.prefix_scratch}*"]
  }

  statement {
    sid       = "TaskListing"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.objects.arn]

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
