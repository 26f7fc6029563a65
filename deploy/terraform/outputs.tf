locals {
  # The values deploy/k8s/overlays/aws/aws-params.yaml holds; `terraform output -raw
  # kustomize_params` writes that file. deploy/lint.sh checks both name the same keys.
  kustomize_params = {
    awsRegion             = var.region
    sqsQueuePrefix        = local.queue_prefix
    queueTasksUdfUrl      = aws_sqs_queue.queue["tasks-udf"].url
    queueTasksIngestUrl   = aws_sqs_queue.queue["tasks-ingest"].url
    queueBufferRecordsUrl = aws_sqs_queue.queue["buffer-records"].url
    objectsBucket         = aws_s3_bucket.objects.bucket
    brokerTaskRoleArn     = aws_iam_role.broker_task.arn
    dispatcherRoleArn     = aws_iam_role.service["trace-dispatcher"].arn
    brokerRoleArn         = aws_iam_role.service["trace-broker"].arn
    gatewayRoleArn        = aws_iam_role.service["trace-gateway"].arn
    queryRoleArn          = aws_iam_role.service["trace-query"].arn
    platformWorkerRoleArn = aws_iam_role.service["trace-platform-worker"].arn
    udfWorkerRoleArn      = aws_iam_role.service["trace-udf-worker"].arn
    postgresCidr          = var.postgres_cidr
    awsApiCidr            = local.aws_api_cidr
    cognitoIssuerUrl      = local.cognito_issuer
    cognitoClientId       = aws_cognito_user_pool_client.console.id
  }
}

output "kustomize_params" {
  description = "deploy/k8s/overlays/aws/aws-params.yaml for this environment."
  value = join("", [
    "# Written by `terraform output -raw kustomize_params` (deploy/terraform).\n",
    yamlencode({
      apiVersion = "v1"
      kind       = "ConfigMap"
      metadata = {
        name        = "aws-params"
        annotations = { "config.kubernetes.io/local-config" = "true" }
      }
      data = local.kustomize_params
    }),
  ])
}

output "queue_urls" {
  description = "The Trace queues, by Trace queue name."
  value       = { for name, q in aws_sqs_queue.queue : name => q.id }
}

output "dead_letter_queue_urls" {
  description = "Their dead-letter queues, by Trace queue name."
  value       = { for name, q in aws_sqs_queue.dead_letter : name => q.id }
}

output "objects_bucket" {
  description = "The objects bucket (TRACE_OBJECTS_BUCKET of every service that has one)."
  value       = aws_s3_bucket.objects.bucket
}

output "broker_task_role_arn" {
  description = "The role the broker assumes per task (the broker's --sts-role-arn)."
  value       = aws_iam_role.broker_task.arn
}

output "service_role_arns" {
  description = "IRSA role of each service account."
  value       = { for name, role in aws_iam_role.service : name => role.arn }
}

output "keda_operator_role_arn" {
  description = "IRSA role for the KEDA operator's service account."
  value       = aws_iam_role.keda.arn
}

output "ecr_repository_urls" {
  description = "Image repositories, by image name."
  value       = { for name, repo in aws_ecr_repository.image : name => repo.repository_url }
}

output "cognito_user_pool_id" {
  description = "The user pool."
  value       = aws_cognito_user_pool.users.id
}

output "cognito_issuer_url" {
  description = "OIDC issuer of the user pool's tokens (the gateway's TRACE_OIDC_ISSUER)."
  value       = local.cognito_issuer
}

output "cognito_client_id" {
  description = "The console/CLI app client (the gateway's TRACE_OIDC_AUDIENCE)."
  value       = aws_cognito_user_pool_client.console.id
}
