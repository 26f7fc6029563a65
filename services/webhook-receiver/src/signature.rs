//! Standard Webhooks signatures: what a signed request carries and how it is
//! checked.
//!
//! The signed content is `{id}.{timestamp}.{body}`, the key is the base64
//! decoding of the secret after its `whsec_` prefix, and the header holds one
//! or more space-separated `v1,<base64 HMAC-SHA256>` entries. Delivery signs
//! with its own implementation; the two are tested against each other and
//! against the specification's published vector.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix every webhook secret carries.
pub const SECRET_PREFIX: &str = "whsec_";

/// A secret that cannot be used as a signing key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The secret is not `whsec_` followed by base64.
    #[error("webhook secret is not `whsec_<base64>`")]
    Malformed,
}

/// Decodes a `whsec_<base64>` secret into its key bytes.
pub fn secret_key(secret: &str) -> Result<Vec<u8>, SecretError> {
    let encoded = secret
        .strip_prefix(SECRET_PREFIX)
        .ok_or(SecretError::Malformed)?;
    STANDARD.decode(encoded).map_err(|_| SecretError::Malformed)
}

/// The `webhook-signature` header value (`v1,<base64>`) for a message.
pub fn sign(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> Result<String, SecretError> {
    let key = secret_key(secret)?;
    let mac = mac_of(&key, id, timestamp, body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// Whether any `v1,` entry of `signature_header` signs the message with
/// `secret`. The comparison is constant-time; a malformed secret verifies
/// nothing.
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    body: &[u8],
    signature_header: &str,
) -> bool {
    let Ok(key) = secret_key(secret) else {
        return false;
    };
    signature_header
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        .any(|candidate| {
            mac_of(&key, id, timestamp, body)
                .verify_slice(&candidate)
                .is_ok()
        })
}

fn mac_of(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of the Standard Webhooks specification, recomputed on this
    // machine with python3's hmac and base64 modules.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: &str = "1614265330";
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signing_the_specification_example_gives_its_signature() {
        assert_eq!(sign(SECRET, ID, TIMESTAMP, BODY).unwrap(), SIGNATURE);
    }

    #[test]
    fn the_specification_example_verifies_among_other_entries() {
        let header = format!("v1,bm90IGl0 v2,abc {SIGNATURE}");
        assert!(verify(SECRET, ID, TIMESTAMP, BODY, &header));
    }

    #[test]
    fn a_changed_body_id_or_timestamp_does_not_verify() {
        assert!(!verify(
            SECRET,
            ID,
            TIMESTAMP,
            br#"{"test": 2432232315}"#,
            SIGNATURE
        ));
        assert!(!verify(SECRET, "msg_other", TIMESTAMP, BODY, SIGNATURE));
        assert!(!verify(SECRET, ID, "1614265331", BODY, SIGNATURE));
    }

    #[test]
    fn a_malformed_secret_or_header_verifies_nothing() {
        assert!(!verify(
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            ID,
            TIMESTAMP,
            BODY,
            SIGNATURE
        ));
        assert!(!verify(
            SECRET,
            ID,
            TIMESTAMP,
            BODY,
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        ));
        assert!(sign("whsec_!!", ID, TIMESTAMP, BODY).is_err());
    }
}
