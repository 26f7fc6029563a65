//! Where delivery may connect: the egress rules for webhook targets.
//!
//! A target's host is resolved and every address checked; loopback,
//! private, link-local, unique-local, shared (CGNAT), unspecified,
//! multicast and documentation addresses, and the cloud metadata address
//! `169.254.169.254`, are refused unless private targets are allowed (as
//! `trace dev` does for its local receiver). The request is then pinned to
//! the checked address, so a second DNS answer cannot redirect it, and
//! redirects are not followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A target delivery will not connect to.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EgressError {
    /// The URL does not parse or is not http(s) with a host.
    #[error("webhook url `{0}` is not an http(s) url with a host")]
    BadUrl(String),
    /// The host did not resolve.
    #[error("webhook host `{host}` does not resolve")]
    Unresolved {
        host: String,
        #[source]
        source: std::io::Error,
    },
    /// The host resolves to an address that is not public.
    #[error("webhook host `{host}` resolves to `{addr}`, which is not a public address")]
    Private { host: String, addr: IpAddr },
}

/// A checked target: the URL and the address to connect to.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: reqwest::Url,
    pub host: String,
    pub addr: SocketAddr,
}

/// Resolves `url` and checks its addresses; `allow_private` lifts the rules.
pub async fn check(url: &str, allow_private: bool) -> Result<Target, EgressError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| EgressError::BadUrl(url.to_string()))?;
    let host = match parsed.host_str() {
        Some(host) if matches!(parsed.scheme(), "http" | "https") => host.to_string(),
        _ => return Err(EgressError::BadUrl(url.to_string())),
    };
    let port = parsed.port_or_known_default().unwrap_or(443);
    let bare = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare.as_str(), port))
        .await
        .map_err(|source| EgressError::Unresolved {
            host: host.clone(),
            source,
        })?
        .collect();
    let Some(first) = addrs.first().copied() else {
        let source = std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses");
        return Err(EgressError::Unresolved { host, source });
    };
    if !allow_private && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
        return Err(EgressError::Private {
            host,
            addr: bad.ip(),
        });
    }
    Ok(Target {
        url: parsed,
        host: bare,
        addr: first,
    })
}

/// Whether `ip` is a public unicast address a webhook may go to.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || first == 0x2001 && ip.segments()[1] == 0x0db8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(ip: &str) -> bool {
        is_public(ip.parse().unwrap())
    }

    #[test]
    fn private_loopback_link_local_and_metadata_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!public(ip), "{ip} counted as public");
        }
    }

    #[test]
    fn ordinary_internet_addresses_are_public() {
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "172.32.0.1",
        ] {
            assert!(public(ip), "{ip} counted as private");
        }
    }

    #[tokio::test]
    async fn a_loopback_url_is_refused_unless_private_targets_are_allowed() {
        let err = check("http://127.0.0.1:9/hooks", false).await.unwrap_err();
        assert!(matches!(err, EgressError::Private { .. }), "{err}");
        assert!(check("http://localhost:9/hooks", false).await.is_err());
        let target = check("http://127.0.0.1:9/hooks", true).await.unwrap();
        assert_eq!(target.addr, "127.0.0.1:9".parse().unwrap());
        assert!(check("ftp://example.com/", true).await.is_err());
    }
}
