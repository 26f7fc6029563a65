# The objects bucket. Today only the broker uses it: in AWS mode it hands each UDF task STS
# credentials limited to scratch/<tenant>/<job>/<task>/ of this bucket. The services still keep
# components, the lake and scratch on a filesystem (TRACE_OBJECTS_DIR, EFS in efs.tf); the
# prefixes and grants below are the layout of services/common/src/objects.rs, ready for an
# S3 object store.

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

    expiration {
      days = 1
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
