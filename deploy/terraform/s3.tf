# The object store (TRACE_OBJECTS_BUCKET): components/ (the gateway writes, the UDF workers
# read), lake/ (the platform worker writes, the query service reads), scratch/ (UDF tasks,
# through the broker or with the STS credentials it scopes to one task), claims/ (queue
# messages too large for SQS, the dispatcher's).

resource "aws_s3_bucket" "objects" {
  bucket = local.bucket_name
}

resource "aws_s3_bucket_ownership_controls" "objects" {
  bucket = aws_s3_bucket.objects.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "objects" {
  bucket = aws_s3_bucket.objects.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "objects" {
  bucket = aws_s3_bucket.objects.id

  versioning_configuration {
    status = "Enabled"
  }
}

# SSE-S3, not SSE-KMS: the broker's per-task session policy (services/broker/src/sts.rs)
# grants S3 actions only, and a KMS key would also need kms:GenerateDataKey and kms:Decrypt
# in it.
resource "aws_s3_bucket_server_side_encryption_configuration" "objects" {
  bucket = aws_s3_bucket.objects.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "objects" {
  bucket = aws_s3_bucket.objects.id

  # Versioning must be on before the noncurrent-version rules apply.
  depends_on = [aws_s3_bucket_versioning.objects]

  rule {
    id     = "whole-bucket"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }

    noncurrent_version_expiration {
      noncurrent_days = 30
    }

    expiration {
      expired_object_delete_marker = true
    }
  }

  rule {
    id     = "scratch"
    status = "Enabled"

    filter {
      prefix = local.prefix_scratch
    }

    expiration {
      days = var.scratch_expiry_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 1
    }
  }

  rule {
    id     = "claims"
    status = "Enabled"

    filter {
      prefix = local.prefix_claims
    }

    # The dispatcher deletes a claim's object once its message is consumed; this removes
    # what a failed delete leaves, a day after the longest a message can wait in SQS
    # (local.claims_expiry_days: retention, which a dead-lettered message keeps counting, plus
    # one day). Counted from the object's creation: a message moved back from its dead-letter
    # queue starts a new retention period, its object does not (deploy/README.md).
    expiration {
      days = local.claims_expiry_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 1
    }
  }
}

data "aws_iam_policy_document" "objects_bucket" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.objects.arn,
      "${aws_s3_bucket.objects.arn}/*",
    ]

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

resource "aws_s3_bucket_policy" "objects" {
  bucket = aws_s3_bucket.objects.id
  policy = data.aws_iam_policy_document.objects_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.objects]
}
