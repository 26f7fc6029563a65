//! API keys: how they look, how they are stored, and the extractor that turns
//! a request's bearer key, or a JWT from the configured OIDC issuer
//! ([`crate::oidc`]), into the [`Principal`] every handler acts for.
//!
//! A key is `trk_` followed by 32 random bytes in URL-safe base64. Only its
//! SHA-256 (hex) is stored, so a leaked database does not leak keys; the key
//! itself is returned once, when it is created. A JWT's tenant must exist
//! here, as a key's does.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use sqlx::PgPool;
use trace_common::ApiError;

use crate::oidc::{OidcError, Verifier};
use crate::{AppState, Error};

/// Prefix of every API key.
pub const KEY_PREFIX: &str = "trk_";

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything a member may, plus ingest jobs and recorded-block listings.
    Admin,
    /// Publish components, run UDF jobs, query, manage webhooks.
    Member,
}

impl Role {
    /// Parses the stored role name.
    pub fn parse(role: &str) -> Option<Self> {
        match role {
            "admin" => Some(Self::Admin),
            "member" => Some(Self::Member),
            _ => None,
        }
    }
}

/// The authenticated caller: a tenant and a role, from the key or token.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The tenant the caller acts in.
    pub tenant: String,
    /// The caller's role.
    pub role: Role,
    /// How the audit log names the caller: `key:` and the first 12 hex
    /// digits of the key's hash, or `oidc:` and the token's subject.
    pub name: String,
}

impl Principal {
    /// How the audit log names this principal.
    pub fn id(&self) -> String {
        self.name.clone()
    }

    /// Refuses the request unless the key is an admin key.
    pub fn require_admin(&self, what: &str) -> Result<(), ApiError> {
        if self.role == Role::Admin {
            return Ok(());
        }
        Err(ApiError::forbidden(format!(
            "{what} requires an admin key (or a token of the admin group); \
             this caller is a member"
        )))
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                ApiError::unauthorized("missing `Authorization: Bearer <api key>` header")
            })?;
        let bearer = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim);
        match (bearer, &state.oidc) {
            (Some(key), _) if key.starts_with(KEY_PREFIX) => from_key(key, state).await,
            (Some(token), Some(oidc)) if !token.is_empty() => from_token(token, oidc, state).await,
            (_, Some(_)) => Err(ApiError::unauthorized(
                "the Authorization header must be `Bearer <token>` with a Trace API key \
                 or a token from the identity provider",
            )),
            (_, None) => Err(ApiError::unauthorized(
                "the Authorization header must be `Bearer trk_...` with a Trace API key",
            )),
        }
    }
}

/// The principal of an API key.
async fn from_key(key: &str, state: &AppState) -> Result<Principal, ApiError> {
    let hash = hash_key(key);
    let row: Option<(String, String)> =
        sqlx::query_as("select tenant_id, role from api_keys where key_hash = $1")
            .bind(&hash)
            .fetch_optional(&state.pool)
            .await?;
    let (tenant, role) = row.ok_or_else(|| ApiError::unauthorized("unknown or revoked API key"))?;
    let role = Role::parse(&role).ok_or_else(|| ApiError::internal("stored role is invalid"))?;
    Ok(Principal {
        tenant,
        role,
        name: format!("key:{}", &hash[..12]),
    })
}

/// The principal of a JWT from the OIDC issuer.
async fn from_token(token: &str, oidc: &Verifier, state: &AppState) -> Result<Principal, ApiError> {
    let identity = oidc.verify(token).await.map_err(|err| match err {
        OidcError::Jwks(_) => {
            tracing::warn!(error = %err, "oidc keys unavailable");
            ApiError::unavailable(err)
        }
        err => ApiError::unauthorized(err.to_string()),
    })?;
    let known: Option<(String,)> = sqlx::query_as("select id from tenants where id = $1")
        .bind(&identity.tenant)
        .fetch_optional(&state.pool)
        .await?;
    if known.is_none() {
        return Err(ApiError::forbidden(format!(
            "the token's tenant `{}` is not known here",
            identity.tenant
        )));
    }
    Ok(Principal {
        tenant: identity.tenant,
        role: if identity.admin {
            Role::Admin
        } else {
            Role::Member
        },
        name: format!("oidc:{}", identity.subject),
    })
}

/// The stored form of a key: lowercase hex SHA-256 of its text.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A new random key.
fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!(
        "{KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Creates `tenant` if it does not exist and returns a new API key with
/// `role` (`admin` or `member`) for it. The key is not stored, only its hash.
pub async fn bootstrap_tenant(pool: &PgPool, tenant: &str, role: &str) -> Result<String, Error> {
    if !valid_tenant(tenant) {
        return Err(Error::InvalidTenant(tenant.to_string()));
    }
    if Role::parse(role).is_none() {
        return Err(Error::InvalidRole(role.to_string()));
    }
    let key = generate_key();
    let mut tx = pool.begin().await?;
    sqlx::query("insert into tenants (id, name) values ($1, $1) on conflict (id) do nothing")
        .bind(tenant)
        .execute(&mut *tx)
        .await?;
    sqlx::query("insert into api_keys (key_hash, tenant_id, role, label) values ($1, $2, $3, $4)")
        .bind(hash_key(&key))
        .bind(tenant)
        .bind(role)
        .bind("bootstrap")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(tenant, role, "bootstrapped an api key");
    Ok(key)
}

fn valid_tenant(tenant: &str) -> bool {
    let mut chars = tenant.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    first_ok
        && tenant.len() <= 32
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_prefix_and_differ() {
        let (a, b) = (generate_key(), generate_key());
        assert!(a.starts_with("trk_") && a.len() == 4 + 43, "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn the_stored_hash_is_the_sha256_hex_of_the_key() {
        // sha256("abc"), a published test vector.
        let expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(hash_key("abc"), expected);
    }

    #[test]
    fn tenant_ids_follow_the_schema_rule() {
        assert!(valid_tenant("dev"));
        assert!(valid_tenant("acme_2"));
        assert!(!valid_tenant("2acme"));
        assert!(!valid_tenant("Acme"));
        assert!(!valid_tenant(&"a".repeat(33)));
    }
}
