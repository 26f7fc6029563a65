//! Task-scoped bearer tokens, signed with HMAC-SHA256 by the broker's key.
//!
//! A token is `<claims>.<signature>`, both unpadded base64url: the claims are
//! the JSON of [`Claims`] (tenant, job, task, attempt, the object prefix, the
//! expiry and the renewal limit), the signature the HMAC of the encoded
//! claims. Only the broker
//! holds the key, so only the broker can mint or check a token; a changed
//! claim or a token from another key fails the check.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// What a token grants: objects under `prefix` until `exp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub tenant: String,
    pub job: Uuid,
    pub task: Uuid,
    pub attempt: u32,
    /// `scratch/<tenant>/<job>/<task>/`.
    pub prefix: String,
    /// Expiry, in seconds since the Unix epoch: the lease's expiry when the
    /// token was issued, or the TTL cap if sooner.
    pub exp: i64,
    /// Until when (Unix seconds) an expired token is still honoured while the
    /// dispatcher says its lease is live (heartbeats extended it): issuance
    /// plus the TTL cap.
    pub renew_until: i64,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token is not `<claims>.<signature>` in base64url with JSON claims.
    #[error("the token is malformed")]
    Malformed,
    /// The signature does not match the claims under the broker's key.
    #[error("the token signature is invalid")]
    BadSignature,
    /// The token expired at `exp` (Unix seconds).
    #[error("the token expired at `{0}`")]
    Expired(i64),
}

/// Mints and checks tokens with one key.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Signer {
    /// A signer with `key`.
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        Self { key: key.into() }
    }

    /// A signer with 32 fresh random bytes as its key.
    pub fn generate() -> Self {
        Self::new(rand::random::<[u8; 32]>().to_vec())
    }

    /// The token for `claims`.
    pub fn sign(&self, claims: &Claims) -> String {
        let json = serde_json::to_vec(claims).expect("claims always serialize");
        let body = URL_SAFE_NO_PAD.encode(json);
        let signature = URL_SAFE_NO_PAD.encode(self.mac(body.as_bytes()).finalize().into_bytes());
        format!("{body}.{signature}")
    }

    /// The claims of `token` if it is ours and not expired at `now` (Unix seconds).
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let claims = self.open(token)?;
        if claims.exp <= now {
            return Err(TokenError::Expired(claims.exp));
        }
        Ok(claims)
    }

    /// The claims of `token` if it is ours, expired or not.
    pub fn open(&self, token: &str) -> Result<Claims, TokenError> {
        let (body, signature) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        let mac = self.mac(body.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| TokenError::BadSignature)?;

        let json = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| TokenError::Malformed)?;
        serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)
    }

    fn mac(&self, data: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("hmac takes keys of any length");
        mac.update(data);
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            tenant: "acme".into(),
            job: Uuid::nil(),
            task: Uuid::max(),
            attempt: 2,
            prefix: "scratch/acme/j/t/".into(),
            exp,
            renew_until: exp + 10,
        }
    }

    #[test]
    fn a_token_verifies_under_its_key_until_it_expires() {
        let signer = Signer::new(b"k".to_vec());
        let token = signer.sign(&claims(100));
        assert_eq!(signer.verify(&token, 99), Ok(claims(100)));
        assert_eq!(signer.verify(&token, 100), Err(TokenError::Expired(100)));
    }

    #[test]
    fn a_token_from_another_key_or_with_changed_claims_is_refused() {
        let token = Signer::new(b"other".to_vec()).sign(&claims(100));
        assert_eq!(
            Signer::new(b"k".to_vec()).verify(&token, 0),
            Err(TokenError::BadSignature)
        );

        let signer = Signer::new(b"k".to_vec());
        let (_, signature) = signer
            .sign(&claims(100))
            .split_once('.')
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .unwrap();
        let mut widened = claims(100);
        widened.prefix = "scratch/".into();
        let forged_body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&widened).unwrap());
        let forged = format!("{forged_body}.{signature}");
        assert_eq!(signer.verify(&forged, 0), Err(TokenError::BadSignature));
        assert_eq!(signer.verify("garbage", 0), Err(TokenError::Malformed));
    }
}
