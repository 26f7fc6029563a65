//! Signing outgoing webhooks per Standard Webhooks.
//!
//! `webhook-signature` is `v1,` followed by the base64 HMAC-SHA256 of
//! `{id}.{timestamp}.{body}`, keyed with the base64 decoding of the part of
//! the endpoint's secret after `whsec_`. The webhook receiver verifies with
//! its own implementation; the tests hold the two against each other and
//! against the specification's example.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// An endpoint secret that is not `whsec_<base64>`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// The secret lacks the `whsec_` prefix or is not base64 after it.
    #[error("endpoint secret is not `whsec_<base64>`")]
    MalformedSecret,
}

/// The `webhook-signature` header value for a message.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, SigningError> {
    let key = secret
        .strip_prefix("whsec_")
        .and_then(|encoded| STANDARD.decode(encoded).ok())
        .ok_or(SigningError::MalformedSecret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC accepts keys of any length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specification_example_signs_to_its_published_signature() {
        // Recomputed on this machine with python3's hmac and base64 modules.
        let signature = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_secret_without_the_prefix_is_refused() {
        assert!(sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "id", 1, b"{}").is_err());
    }
}
