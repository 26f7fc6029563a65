//! Which provider serves which chain: `<chain id>=<url>` specifications.

use std::str::FromStr;

/// One chain's provider, written `<chain id>=<url>` on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSpec {
    /// The EVM chain id.
    pub chain_id: u64,
    /// The provider's JSON-RPC URL.
    pub url: String,
}

/// A provider specification that is not `<chain id>=<url>`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// There is no `=` or the chain id is not a number.
    #[error("provider `{0}` is not `<chain id>=<url>`")]
    Malformed(String),
    /// The URL is not http or https.
    #[error("provider URL `{0}` is not http:// or https://")]
    Scheme(String),
}

impl FromStr for ProviderSpec {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (chain, url) = s
            .split_once('=')
            .ok_or_else(|| SpecError::Malformed(s.into()))?;
        let chain_id = chain
            .trim()
            .parse()
            .map_err(|_| SpecError::Malformed(s.into()))?;
        let url = url.trim().to_string();
        if !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(SpecError::Scheme(url));
        }
        Ok(Self { chain_id, url })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_chain_and_url_and_refuse_other_shapes() {
        let spec: ProviderSpec = "1=http://127.0.0.1:7407/".parse().unwrap();
        assert_eq!(
            spec,
            ProviderSpec {
                chain_id: 1,
                url: "http://127.0.0.1:7407/".into()
            }
        );
        assert!("http://x".parse::<ProviderSpec>().is_err());
        assert!("one=http://x".parse::<ProviderSpec>().is_err());
        assert!("1=ftp://x".parse::<ProviderSpec>().is_err());
    }
}
