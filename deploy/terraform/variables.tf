variable "region" {
  description = "AWS region everything is created in (also the services' AWS_REGION)."
  type        = string
}

variable "name_prefix" {
  description = <<-EOT
    Prefix of every resource name. The SQS queues are named `<name_prefix>-<queue>`, so the
    dispatcher's --sqs-queue-prefix (TRACE_SQS_QUEUE_PREFIX) must be `<name_prefix>-`.
  EOT
  type        = string
  default     = "trace"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.name_prefix))
    error_message = "Use 2 to 20 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "namespace" {
  description = "Kubernetes namespace the services run in (deploy/k8s/base uses `trace`)."
  type        = string
  default     = "trace"
}

variable "oidc_provider_arn" {
  description = <<-EOT
    ARN of the EKS cluster's IAM OIDC provider, for IRSA:
    arn:aws:iam::<account>:oidc-provider/oidc.eks.<region>.amazonaws.com/id/<id>.
  EOT
  type        = string

  validation {
    condition = can(
      regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/.+$", var.oidc_provider_arn)
    )
    error_message = "Expected an IAM OIDC provider ARN."
  }
}

variable "keda_namespace" {
  description = "Namespace of the KEDA operator, whose service account reads the queue depths."
  type        = string
  default     = "keda"
}

variable "keda_service_account" {
  description = "Service account of the KEDA operator."
  type        = string
  default     = "keda-operator"
}

variable "vpc_id" {
  description = "VPC of the EKS cluster, where the interface endpoints are created."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets of the cluster's nodes (the endpoints' subnets by default)."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) > 0
    error_message = "At least one subnet is needed."
  }
}

variable "node_security_group_id" {
  description = "Security group of the cluster's nodes; it may reach the VPC endpoints."
  type        = string
}

variable "create_vpc_endpoints" {
  description = <<-EOT
    Create interface VPC endpoints for S3, SQS and STS, so that the services reach the AWS APIs
    without internet egress (their NetworkPolicy allows one CIDR on 443).
  EOT
  type        = bool
  default     = true
}

variable "vpc_endpoint_subnet_ids" {
  description = <<-EOT
    Subnets of the interface endpoints; empty means private_subnet_ids. Dedicated small
    subnets let the NetworkPolicy for AWS APIs name a narrow CIDR (aws_api_cidr).
  EOT
  type        = list(string)
  default     = []
}

variable "aws_api_cidr" {
  description = <<-EOT
    The CIDR the services that call AWS may reach on 443 for S3, SQS and STS (put into the
    Kubernetes params): the subnet(s) of the interface endpoints. Empty means the VPC's CIDR,
    which is wider than needed.
  EOT
  type        = string
  default     = ""
}

variable "postgres_cidr" {
  description = <<-EOT
    CIDR of the Postgres server (RDS subnets) that the services holding a database URL may
    reach on 5432. Postgres itself is not created here.
  EOT
  type        = string
}

variable "task_queue_max_receive_count" {
  description = <<-EOT
    Receives of a task wake-up before SQS moves it to its dead-letter queue. A lost wake-up
    only costs latency: the dispatcher's reconciler sends a new one after 5 minutes.
  EOT
  type        = number
  default     = 5
}

variable "buffer_queue_max_receive_count" {
  description = <<-EOT
    Receives of a buffer message (a record batch or an attempt end) before it goes to the
    dead-letter queue. The sinks leave a message on the queue only when its transaction failed
    (the data database was unreachable), about once a minute; a batch in the dead-letter queue
    holds its task's records back until it is moved back, so this is high.
  EOT
  type        = number
  default     = 100
}

variable "queue_visibility_timeout_seconds" {
  description = <<-EOT
    Default visibility of the queues. Every Trace receiver sets its own on each receive (the
    workers 60 s, twice the dispatcher's 30 s lease; the sinks --visibility-ms, 60 s); this
    default matches them.
  EOT
  type        = number
  default     = 60

  validation {
    condition     = var.queue_visibility_timeout_seconds >= 30
    error_message = "Keep the visibility at least the dispatcher's lease (30 s by default)."
  }
}

variable "message_retention_seconds" {
  description = <<-EOT
    How long SQS keeps a message, in the queues and their dead-letter queues (SQS counts a
    dead-lettered message's age from its first enqueue). Claim-check objects outlive it by a
    day (s3.tf).
  EOT
  type        = number
  default     = 1209600

  validation {
    condition     = var.message_retention_seconds >= 60 && var.message_retention_seconds <= 1209600
    error_message = "SQS keeps messages from 60 seconds to 14 days."
  }
}

variable "scratch_expiry_days" {
  description = "Days after which task scratch objects (scratch/) expire in the bucket."
  type        = number
  default     = 7
}

variable "cognito_callback_urls" {
  description = "OAuth callback URLs of the web console app client (none yet)."
  type        = list(string)
  default     = []
}
