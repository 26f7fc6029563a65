//! An exact unsigned 256-bit integer for token amounts and other EVM words.
//!
//! Chain data reaches a UDF as `0x` hex text (log data, topics) and, for
//! computed quantities, as decimal text; [`U256`] parses both exactly and
//! prints decimal text, which is what a `numeric` dataset column takes. The
//! arithmetic is `ethnum`'s.

use std::fmt;
use std::str::FromStr;

/// An unsigned 256-bit integer.
///
/// ```
/// use trace_udf::U256;
///
/// let word = "0x00000000000000000000000000000000000000000000000000000000000f4240";
/// let amount = U256::from_hex_word(word).unwrap();
/// assert_eq!(amount.to_string(), "1000000");
/// assert!(amount > "999999".parse().unwrap());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct U256(ethnum::U256);

/// Why text did not parse as a [`U256`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseU256Error {
    /// The text is not `0x` followed by exactly 64 hex digits.
    #[error("`{0}` is not a 32-byte hex word")]
    NotAWord(String),
    /// The text is not decimal digits, or not hex digits after `0x`.
    #[error("`{0}` is not an unsigned integer")]
    NotANumber(String),
    /// The number does not fit in 256 bits.
    #[error("`{0}` does not fit in 256 bits")]
    Overflow(String),
}

impl U256 {
    /// Zero.
    pub const ZERO: U256 = U256(ethnum::U256::ZERO);
    /// The largest value, 2^256 - 1.
    pub const MAX: U256 = U256(ethnum::U256::MAX);

    /// Parses one 32-byte big-endian word written as `0x` and 64 hex digits
    /// (either case), as in log data and topics.
    pub fn from_hex_word(text: &str) -> Result<U256, ParseU256Error> {
        let digits = text.strip_prefix("0x").filter(|digits| digits.len() == 64);
        let digits = digits.ok_or_else(|| ParseU256Error::NotAWord(text.to_string()))?;
        U256::parse_radix(digits, 16, text)
    }

    /// Parses `0x`-prefixed hex of any length up to 64 digits, as in
    /// JSON-RPC quantities.
    pub fn from_hex(text: &str) -> Result<U256, ParseU256Error> {
        let digits = text.strip_prefix("0x");
        let digits = digits.ok_or_else(|| ParseU256Error::NotANumber(text.to_string()))?;
        U256::parse_radix(digits, 16, text)
    }

    /// Reads 32 big-endian bytes.
    pub fn from_be_bytes(bytes: [u8; 32]) -> U256 {
        U256(ethnum::U256::from_be_bytes(bytes))
    }

    /// The 32 big-endian bytes of the value.
    pub fn to_be_bytes(self) -> [u8; 32] {
        self.0.to_be_bytes()
    }

    /// Adds, or `None` past 2^256 - 1.
    pub fn checked_add(self, other: U256) -> Option<U256> {
        self.0.checked_add(other.0).map(U256)
    }

    /// The value as a `u128`, or `None` when it is larger.
    pub fn to_u128(self) -> Option<u128> {
        u128::try_from(self.0).ok()
    }

    fn parse_radix(digits: &str, radix: u32, text: &str) -> Result<U256, ParseU256Error> {
        let valid = !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix));
        if !valid {
            return Err(ParseU256Error::NotANumber(text.to_string()));
        }
        ethnum::U256::from_str_radix(digits, radix)
            .map(U256)
            .map_err(|_| ParseU256Error::Overflow(text.to_string()))
    }
}

impl FromStr for U256 {
    type Err = ParseU256Error;

    /// Parses decimal digits, the form of `numeric` values and parameters.
    fn from_str(text: &str) -> Result<U256, ParseU256Error> {
        U256::parse_radix(text, 10, text)
    }
}

impl fmt::Display for U256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<u64> for U256 {
    fn from(value: u64) -> U256 {
        U256(ethnum::U256::from(value))
    }
}

impl From<u128> for U256 {
    fn from(value: u128) -> U256 {
        U256(ethnum::U256::new(value))
    }
}

impl serde::Serialize for U256 {
    /// Serialises as a JSON string of decimal digits, as `numeric` columns
    /// take it.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_words_decode_exactly_up_to_the_maximum() {
        let max = format!("0x{}", "f".repeat(64));
        let decimal =
            "115792089237316195423570985008687907853269984665640564039457584007913129639935";
        assert_eq!(U256::from_hex_word(&max).unwrap().to_string(), decimal);
        assert_eq!(decimal.parse::<U256>().unwrap(), U256::MAX);
        assert_eq!(
            U256::from_hex_word(&format!("0x{}", "0".repeat(64))).unwrap(),
            U256::ZERO
        );
    }

    #[test]
    fn malformed_text_is_refused_with_its_reason() {
        assert!(matches!(
            U256::from_hex_word("0x01"),
            Err(ParseU256Error::NotAWord(_))
        ));
        let bad_digit = format!("0x{}g", "0".repeat(63));
        assert!(matches!(
            U256::from_hex_word(&bad_digit),
            Err(ParseU256Error::NotANumber(_))
        ));
        assert!(matches!(
            "".parse::<U256>(),
            Err(ParseU256Error::NotANumber(_))
        ));
        assert!(matches!(
            "-1".parse::<U256>(),
            Err(ParseU256Error::NotANumber(_))
        ));
        let too_big =
            "115792089237316195423570985008687907853269984665640564039457584007913129639936";
        assert!(matches!(
            too_big.parse::<U256>(),
            Err(ParseU256Error::Overflow(_))
        ));
    }

    #[test]
    fn values_compare_numerically() {
        let small: U256 = "999".parse().unwrap();
        let large = U256::from_hex("0x3e8").unwrap();
        assert!(large > small);
        assert_eq!(large, U256::from(1000u64));
        assert_eq!(serde_json::to_string(&large).unwrap(), "\"1000\"");
    }
}
