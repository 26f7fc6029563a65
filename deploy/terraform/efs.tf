# The platform object store the services use today. Every service that touches objects
# (gateway: components/; platform-worker: lake/; query: reads lake/; udf-worker: reads
# components/; broker: scratch/) opens TRACE_OBJECTS_DIR as a local directory, so replicas on
# different nodes must share it: one EFS file system, one access point per prefix, each
# mounted only by the pods that need it (deploy/k8s/base/storage.yaml).

locals {
  # The distroless image's nonroot user (deploy/Dockerfile), owner of every file written.
  object_store_uid = 65532

  efs_access_points = {
    components = "/trace/components"
    lake       = "/trace/lake"
    scratch    = "/trace/scratch"
  }
}

resource "aws_efs_file_system" "objects" {
  creation_token = "${var.name_prefix}-objects"
  # At rest with the AWS-managed key (aws/elasticfilesystem).
  encrypted = true

  lifecycle_policy {
    transition_to_ia = "AFTER_30_DAYS"
  }

  tags = {
    Name = "${var.name_prefix}-objects"
  }
}

resource "aws_efs_backup_policy" "objects" {
  file_system_id = aws_efs_file_system.objects.id

  backup_policy {
    status = "ENABLED"
  }
}

resource "aws_security_group" "efs" {
  name        = "${var.name_prefix}-efs"
  description = "NFS from the cluster nodes to the ${var.name_prefix} object store"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "efs_from_nodes" {
  security_group_id            = aws_security_group.efs.id
  description                  = "NFS from the cluster nodes"
  referenced_security_group_id = var.node_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 2049
  to_port                      = 2049
}

resource "aws_efs_mount_target" "objects" {
  for_each = toset(var.private_subnet_ids)

  file_system_id  = aws_efs_file_system.objects.id
  subnet_id       = each.value
  security_groups = [aws_security_group.efs.id]
}

resource "aws_efs_access_point" "objects" {
  for_each = local.efs_access_points

  file_system_id = aws_efs_file_system.objects.id

  posix_user {
    uid = local.object_store_uid
    gid = local.object_store_uid
  }

  root_directory {
    path = each.value

    creation_info {
      owner_uid   = local.object_store_uid
      owner_gid   = local.object_store_uid
      permissions = "0750"
    }
  }

  tags = {
    Name = "${var.name_prefix}-${each.key}"
  }
}

data "aws_iam_policy_document" "efs" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["*"]
    resources = [aws_efs_file_system.objects.arn]

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

  statement {
    sid = "MountThroughAccessPoints"
    actions = [
      "elasticfilesystem:ClientMount",
      "elasticfilesystem:ClientWrite",
    ]
    resources = [aws_efs_file_system.objects.arn]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "elasticfilesystem:AccessedViaMountTarget"
      values   = ["true"]
    }

    condition {
      test     = "ArnEquals"
      variable = "elasticfilesystem:AccessPointArn"
      values   = [for ap in aws_efs_access_point.objects : ap.arn]
    }
  }
}

resource "aws_efs_file_system_policy" "objects" {
  file_system_id = aws_efs_file_system.objects.id
  policy         = data.aws_iam_policy_document.efs.json
}
