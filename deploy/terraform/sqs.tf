# One queue per Trace queue, each with a dead-letter queue. Messages only wake a worker up
# (Postgres state is the truth), so a message in a dead-letter queue loses no work; see
# deploy/README.md for what each one holds and how to move messages back.

resource "aws_sqs_queue" "dead_letter" {
  for_each = local.queues

  name                      = "${local.queue_prefix}${each.key}-dlq"
  message_retention_seconds = var.message_retention_seconds
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "queue" {
  for_each = local.queues

  name                       = "${local.queue_prefix}${each.key}"
  visibility_timeout_seconds = var.queue_visibility_timeout_seconds
  message_retention_seconds  = var.message_retention_seconds
  # SQS's largest message: the code refuses bodies over 256 KiB itself.
  max_message_size        = 262144
  sqs_managed_sse_enabled = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter[each.key].arn
    maxReceiveCount     = each.value.max_receive_count
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "dead_letter" {
  for_each = local.queues

  queue_url = aws_sqs_queue.dead_letter[each.key].id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.queue[each.key].arn]
  })
}

data "aws_iam_policy_document" "queue_tls_only" {
  for_each = merge(
    { for name, q in aws_sqs_queue.queue : name => q.arn },
    { for name, q in aws_sqs_queue.dead_letter : "${name}-dlq" => q.arn },
  )

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [each.value]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "queue" {
  for_each = local.queues

  queue_url = aws_sqs_queue.queue[each.key].id
  policy    = data.aws_iam_policy_document.queue_tls_only[each.key].json
}

resource "aws_sqs_queue_policy" "dead_letter" {
  for_each = local.queues

  queue_url = aws_sqs_queue.dead_letter[each.key].id
  policy    = data.aws_iam_policy_document.queue_tls_only["${each.key}-dlq"].json
}
