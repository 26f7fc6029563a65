# Interface endpoints for the three AWS APIs the services call: S3 (the object store), SQS
# (the dispatcher's queues) and STS (IRSA's AssumeRoleWithWebIdentity for every pod with a
# role, and the broker's AssumeRole). With private DNS the SDKs' default endpoints resolve to
# these, inside the VPC, so the pods need no internet egress: their NetworkPolicy allows
# aws_api_cidr on 443. S3 goes through an interface endpoint rather than a gateway endpoint
# because a gateway endpoint routes to S3's public addresses, which no NetworkPolicy can name.

locals {
  interface_endpoints = var.create_vpc_endpoints ? toset(["s3", "sqs", "sts"]) : toset([])
}

resource "aws_security_group" "vpc_endpoints" {
  count = var.create_vpc_endpoints ? 1 : 0

  name        = "${var.name_prefix}-vpc-endpoints"
  description = "HTTPS from the cluster nodes to the ${var.name_prefix} AWS API endpoints"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "vpc_endpoints_from_nodes" {
  count = var.create_vpc_endpoints ? 1 : 0

  security_group_id            = aws_security_group.vpc_endpoints[0].id
  description                  = "HTTPS from the cluster nodes"
  referenced_security_group_id = var.node_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
}

resource "aws_vpc_endpoint" "interface" {
  for_each = local.interface_endpoints

  vpc_id              = var.vpc_id
  service_name        = "com.amazonaws.${var.region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  private_dns_enabled = true
  subnet_ids          = local.endpoint_subnet_ids
  security_group_ids  = [aws_security_group.vpc_endpoints[0].id]

  # S3 also offers a gateway endpoint; with none in the VPC, requests from inside it must
  # resolve to this interface endpoint too.
  dynamic "dns_options" {
    for_each = each.key == "s3" ? [1] : []

    content {
      private_dns_only_for_inbound_resolver_endpoint = false
    }
  }

  tags = {
    Name = "${var.name_prefix}-${each.key}"
  }
}
