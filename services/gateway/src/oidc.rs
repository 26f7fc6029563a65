//! Identity from an OIDC issuer: Amazon Cognito or any other that publishes
//! its signing keys as a JWKS.
//!
//! A bearer token that is not an API key is read as a JWT. Its header names
//! the key (`kid`) and an asymmetric algorithm; the key comes from the
//! issuer's JWKS, fetched on first use, kept for an hour, and fetched again
//! early when a token names a key not in it (the issuer rotated), at most
//! every 30 seconds so a stream of made-up `kid`s cannot turn the gateway
//! into a load on the issuer. The signature, `iss`, `exp` and `nbf` (with 30
//! seconds of leeway for clock skew) and the client (`aud` of an ID token,
//! `client_id` of a Cognito access token) are checked; the tenant is a
//! claim (`custom:tenant` by default) and the role is admin when the groups
//! claim (`cognito:groups`) holds the admin group, member otherwise.
//! Cognito puts custom attributes in ID tokens only: an access token names
//! no tenant unless a pre-token-generation trigger adds the claim, and is
//! refused as such.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tokio::sync::RwLock;

/// The flags that turn OIDC on.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OidcConfig {
    /// Accept JWTs from this issuer (its `iss`, e.g.
    /// `https://cognito-idp.<region>.amazonaws.com/<user pool id>`).
    #[arg(long, env = "TRACE_OIDC_ISSUER", requires = "oidc_audience")]
    pub oidc_issuer: Option<String>,
    /// Where the issuer's keys are; `<issuer>/.well-known/jwks.json` when
    /// not given.
    #[arg(long, env = "TRACE_OIDC_JWKS_URL")]
    pub oidc_jwks_url: Option<String>,
    /// The client the tokens must be for (a Cognito app client id).
    #[arg(long, env = "TRACE_OIDC_AUDIENCE")]
    pub oidc_audience: Option<String>,
    /// The claim holding the caller's tenant.
    #[arg(long, env = "TRACE_OIDC_TENANT_CLAIM", default_value = "custom:tenant")]
    pub oidc_tenant_claim: String,
    /// The claim listing the caller's groups.
    #[arg(
        long,
        env = "TRACE_OIDC_GROUPS_CLAIM",
        default_value = "cognito:groups"
    )]
    pub oidc_groups_claim: String,
    /// The group whose members act as admins.
    #[arg(long, env = "TRACE_OIDC_ADMIN_GROUP", default_value = "admin")]
    pub oidc_admin_group: String,
}

impl OidcConfig {
    /// The defaults of the flags, with OIDC off.
    pub fn off() -> Self {
        Self {
            oidc_tenant_claim: "custom:tenant".into(),
            oidc_groups_claim: "cognito:groups".into(),
            oidc_admin_group: "admin".into(),
            ..Self::default()
        }
    }
}

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OidcError {
    #[error("the bearer token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm `{0:?}` is not accepted")]
    Algorithm(Algorithm),
    #[error("the token names no signing key (`kid`)")]
    NoKeyId,
    #[error("the token's key `{0}` is not one of the issuer's")]
    UnknownKey(String),
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was not issued by the configured issuer")]
    Issuer,
    #[error("the token was issued for another client")]
    Audience,
    #[error("the token does not name a tenant in claim `{0}`")]
    NoTenant(String),
    #[error("the token does not name its subject")]
    NoSubject,
    #[error("the issuer's keys could not be fetched: {0}")]
    Jwks(String),
}

/// Who a valid token says the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    pub tenant: String,
    pub admin: bool,
}

/// How long fetched keys are trusted without asking again.
const KEYS_FOR: Duration = Duration::from_secs(3600);
/// The least time between two fetches.
const REFETCH_AFTER: Duration = Duration::from_secs(30);
/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;
/// Algorithms a token may be signed with: asymmetric only, so a public key
/// can never be used as an HMAC secret.
const ALGORITHMS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
];

#[derive(Default)]
struct Keys {
    by_id: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
    /// The last fetch tried, failed or not: at most one per
    /// [`REFETCH_AFTER`], so neither made-up `kid`s nor an issuer that is
    /// down make the gateway call it at the rate tokens arrive.
    attempted: Option<Instant>,
}

/// Checks tokens of one issuer.
pub struct Verifier {
    issuer: String,
    jwks_url: String,
    audience: String,
    tenant_claim: String,
    groups_claim: String,
    admin_group: String,
    http: reqwest::Client,
    keys: RwLock<Keys>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.issuer)
            .field("jwks_url", &self.jwks_url)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier for `config`, or none when OIDC is off.
    pub fn from_config(config: &OidcConfig) -> Option<Self> {
        let issuer = config.oidc_issuer.clone()?;
        let jwks_url = config
            .oidc_jwks_url
            .clone()
            .unwrap_or_else(|| format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/')));
        Some(Self {
            issuer,
            jwks_url,
            audience: config.oidc_audience.clone().unwrap_or_default(),
            tenant_claim: config.oidc_tenant_claim.clone(),
            groups_claim: config.oidc_groups_claim.clone(),
            admin_group: config.oidc_admin_group.clone(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            keys: RwLock::default(),
        })
    }

    /// The identity `token` proves.
    pub async fn verify(&self, token: &str) -> Result<Identity, OidcError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| OidcError::Malformed)?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(OidcError::Algorithm(header.alg));
        }
        let kid = header.kid.ok_or(OidcError::NoKeyId)?;
        let key = self.key(&kid).await?;

        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        // The client is checked below: Cognito access tokens carry it as
        // `client_id`, not `aud`.
        validation.validate_aud = false;
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => OidcError::Expired,
                ErrorKind::ImmatureSignature => OidcError::NotYetValid,
                ErrorKind::InvalidIssuer => OidcError::Issuer,
                ErrorKind::InvalidSignature => OidcError::Signature,
                ErrorKind::MissingRequiredClaim(claim) if claim == "sub" => OidcError::NoSubject,
                _ => OidcError::Malformed,
            },
        )?;
        let claims = data.claims;
        let client = match claims.get("token_use").and_then(|v| v.as_str()) {
            Some("access") => claims.get("client_id"),
            _ => claims.get("aud"),
        };
        let for_us = match client {
            Some(serde_json::Value::String(aud)) => *aud == self.audience,
            Some(serde_json::Value::Array(auds)) => {
                auds.iter().any(|a| a.as_str() == Some(&self.audience))
            }
            _ => false,
        };
        if !for_us {
            return Err(OidcError::Audience);
        }
        let subject = claims
            .get("sub")
            .and_then(|v| v.as_str())
            .ok_or(OidcError::NoSubject)?
            .to_string();
        let tenant = claims
            .get(&self.tenant_claim)
            .and_then(|v| v.as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OidcError::NoTenant(self.tenant_claim.clone()))?
            .to_string();
        let admin = claims
            .get(&self.groups_claim)
            .and_then(|v| v.as_array())
            .is_some_and(|groups| groups.iter().any(|g| g.as_str() == Some(&self.admin_group)));
        Ok(Identity {
            subject,
            tenant,
            admin,
        })
    }

    /// The key `kid`, fetching the JWKS when it is stale or lacks it.
    async fn key(&self, kid: &str) -> Result<DecodingKey, OidcError> {
        {
            let keys = self.keys.read().await;
            let fresh = keys.fetched.is_some_and(|t| t.elapsed() < KEYS_FOR);
            if let (true, Some(key)) = (fresh, keys.by_id.get(kid)) {
                return Ok(key.clone());
            }
        }
        let mut keys = self.keys.write().await;
        let recent = keys.attempted.is_some_and(|t| t.elapsed() < REFETCH_AFTER);
        let fresh = keys.fetched.is_some_and(|t| t.elapsed() < KEYS_FOR);
        // Keys past their hour still serve while a fetch was tried lately.
        if !(recent || fresh && keys.by_id.contains_key(kid)) {
            keys.attempted = Some(Instant::now());
            match self.fetch().await {
                Ok(by_id) => {
                    let count = by_id.len();
                    tracing::info!(url = %self.jwks_url, keys = count, "fetched the issuer's keys");
                    *keys = Keys {
                        by_id,
                        fetched: Some(Instant::now()),
                        attempted: keys.attempted,
                    };
                }
                // Keys fetched before still serve while the issuer is down.
                Err(err) if !keys.by_id.is_empty() => {
                    tracing::warn!(error = %err, "refreshing the issuer's keys failed");
                }
                Err(err) => return Err(err),
            }
        }
        keys.by_id
            .get(kid)
            .cloned()
            .ok_or_else(|| OidcError::UnknownKey(kid.to_string()))
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, OidcError> {
        let fail = |e: &dyn std::fmt::Display| OidcError::Jwks(format!("{}: {e}", self.jwks_url));
        let response = self
            .http
            .get(&self.jwks_url)
            .send()
            .await
            .map_err(|e| fail(&e))?;
        let response = response.error_for_status().map_err(|e| fail(&e))?;
        let set: JwkSet = response.json().await.map_err(|e| fail(&e))?;
        let mut by_id = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Ok(key)) = (&jwk.common.key_id, DecodingKey::from_jwk(jwk)) else {
                continue;
            };
            by_id.insert(kid.clone(), key);
        }
        Ok(by_id)
    }
}
