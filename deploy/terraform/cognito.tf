# Sign-in for people: a user pool whose users carry their tenant, an admin group, and an app
# client for the CLI and a web console. The gateway accepts the pool's ID tokens beside API
# keys (services/gateway/src/oidc.rs): its TRACE_OIDC_ISSUER is local.cognito_issuer and its
# TRACE_OIDC_AUDIENCE the app client's id (both in kustomize_params, outputs.tf); the tenant
# is the ID token's custom:tenant and the admin role membership of the `admin` group
# (cognito:groups). Cognito puts custom attributes in ID tokens only: an access token names no
# tenant, and the gateway refuses it. deploy/lint/check.py checks the gateway's claim and group
# names against this file.

locals {
  # The `iss` of the pool's tokens; the gateway fetches <issuer>/.well-known/jwks.json.
  cognito_issuer = "https://${aws_cognito_user_pool.users.endpoint}"
}

resource "aws_cognito_user_pool" "users" {
  name                     = "${var.name_prefix}-users"
  username_attributes      = ["email"]
  auto_verified_attributes = ["email"]
  deletion_protection      = "ACTIVE"
  mfa_configuration        = "OPTIONAL"

  software_token_mfa_configuration {
    enabled = true
  }

  admin_create_user_config {
    # Users are created by an administrator, who sets their tenant.
    allow_admin_create_user_only = true
  }

  password_policy {
    minimum_length                   = 14
    require_lowercase                = true
    require_uppercase                = true
    require_numbers                  = true
    require_symbols                  = true
    temporary_password_validity_days = 3
  }

  account_recovery_setting {
    recovery_mechanism {
      name     = "verified_email"
      priority = 1
    }
  }

  # custom:tenant, a tenant id as the platform spells it: ^[a-z][a-z0-9_]{0,31}$. The
  # gateway's TRACE_OIDC_TENANT_CLAIM; the tenant must also exist in the state database's
  # `tenants`, or the gateway refuses the token.
  schema {
    name                     = "tenant"
    attribute_data_type      = "String"
    mutable                  = true
    developer_only_attribute = false
    required                 = false

    string_attribute_constraints {
      min_length = 1
      max_length = 32
    }
  }
}

# The gateway's TRACE_OIDC_ADMIN_GROUP: members act as admins of their tenant, everyone else
# as a member.
resource "aws_cognito_user_group" "admin" {
  name         = "admin"
  description  = "Tenant administrators (the gateway's admin role)"
  user_pool_id = aws_cognito_user_pool.users.id
}

resource "aws_cognito_user_pool_client" "console" {
  name         = "${var.name_prefix}-console"
  user_pool_id = aws_cognito_user_pool.users.id

  # A public client (CLI, browser): no secret, SRP and refresh tokens only.
  generate_secret               = false
  explicit_auth_flows           = ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
  prevent_user_existence_errors = "ENABLED"
  enable_token_revocation       = true

  # Users may read their tenant, never write it: only an administrator sets it. Reading it is
  # also what puts custom:tenant in the client's ID tokens.
  read_attributes  = ["email", "email_verified", "custom:tenant"]
  write_attributes = ["email"]

  access_token_validity  = 60
  id_token_validity      = 60
  refresh_token_validity = 30

  token_validity_units {
    access_token  = "minutes"
    id_token      = "minutes"
    refresh_token = "days"
  }

  allowed_oauth_flows_user_pool_client = length(var.cognito_callback_urls) > 0
  allowed_oauth_flows                  = length(var.cognito_callback_urls) > 0 ? ["code"] : []
  allowed_oauth_scopes = (
    length(var.cognito_callback_urls) > 0 ? ["openid", "email", "profile"] : []
  )
  callback_urls                = var.cognito_callback_urls
  supported_identity_providers = ["COGNITO"]
}
