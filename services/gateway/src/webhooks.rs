//! Webhook endpoints of a tenant, with their signing secrets.
//!
//! Secrets follow Standard Webhooks: `whsec_` and base64 of random bytes. A
//! secret is shown once, in the answer that creates the endpoint.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
use rand::RngCore as _;
use trace_common::ApiError;
use trace_common::api::{CreateWebhook, Webhook};
use uuid::Uuid;

use crate::state::audit;
use crate::{AppState, Principal};

const SECRET_PREFIX: &str = "whsec_";

/// `POST /v1/webhooks`.
pub(crate) async fn create(
    principal: Principal,
    State(state): State<AppState>,
    Json(req): Json<CreateWebhook>,
) -> Result<(StatusCode, Json<Webhook>), ApiError> {
    validate_url(&req.url)?;
    let secret = match req.secret {
        Some(secret) => validate_secret(secret)?,
        None => generate_secret(),
    };
    let id = Uuid::new_v4();
    sqlx::query(
        "insert into webhook_endpoints (id, tenant_id, url, secret) values ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(&principal.tenant)
    .bind(&req.url)
    .bind(&secret)
    .execute(&state.pool)
    .await?;
    let detail = serde_json::json!({ "url": req.url });
    audit(
        &state.pool,
        &principal,
        "webhook.create",
        &id.to_string(),
        detail,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(Webhook {
            id,
            url: req.url,
            secret: Some(secret),
        }),
    ))
}

/// `GET /v1/webhooks`: the tenant's endpoints, without their secrets.
pub(crate) async fn list(
    principal: Principal,
    State(state): State<AppState>,
) -> Result<Json<Vec<Webhook>>, ApiError> {
    let rows: Vec<(Uuid, String)> = sqlx::query_as(
        "select id, url from webhook_endpoints where tenant_id = $1 order by created_at",
    )
    .bind(&principal.tenant)
    .fetch_all(&state.pool)
    .await?;
    let hooks = rows
        .into_iter()
        .map(|(id, url)| Webhook {
            id,
            url,
            secret: None,
        })
        .collect();
    Ok(Json(hooks))
}

fn validate_url(url: &str) -> Result<(), ApiError> {
    let parsed = reqwest::Url::parse(url).ok();
    let ok = parsed.is_some_and(|u| {
        matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
    });
    if ok && url.len() <= 2048 {
        return Ok(());
    }
    Err(ApiError::bad_request(
        "invalid_url",
        format!("webhook url `{url}` must be an absolute http or https url"),
    ))
}

fn validate_secret(secret: String) -> Result<String, ApiError> {
    let decoded = secret
        .strip_prefix(SECRET_PREFIX)
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
    match decoded {
        Some(bytes) if bytes.len() >= 16 => Ok(secret),
        _ => Err(ApiError::bad_request(
            "invalid_secret",
            "a webhook secret must be `whsec_` followed by base64 of at least 16 bytes",
        )),
    }
}

/// `whsec_` and base64 of 24 random bytes.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_decode_to_24_bytes() {
        let secret = generate_secret();
        let body = secret.strip_prefix("whsec_").unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        assert_eq!(bytes.len(), 24);
        assert!(validate_secret(secret).is_ok());
    }

    #[test]
    fn urls_must_be_absolute_http() {
        assert!(validate_url("http://127.0.0.1:7408/hooks").is_ok());
        assert!(validate_url("https://example.com/x").is_ok());
        assert!(validate_url("ftp://example.com").is_err());
        assert!(validate_url("/hooks").is_err());
    }
}
