# One repository per service image (deploy/Dockerfile targets), plus the migration image.

locals {
  images = toset([
    "trace-gateway",
    "trace-dispatcher",
    "trace-query",
    "trace-broker",
    "trace-rpc-gateway",
    "trace-delivery",
    "trace-sinks",
    "trace-platform-worker",
    "trace-udf-worker",
    "trace-migrate",
  ])
}

resource "aws_ecr_repository" "image" {
  for_each = local.images

  name                 = "${var.name_prefix}/${each.key}"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
  }
}

resource "aws_ecr_lifecycle_policy" "image" {
  for_each = local.images

  repository = aws_ecr_repository.image[each.key].name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the 50 newest images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = 50
      }
      action = { type = "expire" }
    }]
  })
}
