//! Random identifiers and the one-way forms in which secrets are stored.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

/// `n` bytes from the operating system's secure random source, as lower-case hex.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    crate::entropy::fill_bytes(&mut buf);
    hex::encode(buf)
}

/// A new whitelist token: 160 random bits as 40 lower-case hex characters.
pub fn new_whitelist_token() -> String {
    random_hex(20)
}

/// A new API key: 160 random bits as 40 hex characters (the original's format).
pub fn new_api_key() -> String {
    random_hex(20)
}

/// SHA-256 hex. API keys are long random secrets, so a fast hash is enough to
/// make a copy of the table useless for logging in; the same goes for push
/// tokens used as lookup keys.
pub fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// HMAC-SHA256 of `message` under `key`, as hex: how a source address is
/// counted without being stored (the key is the day's source key).
pub fn keyed_hash(key: &str, message: &str) -> String {
    use hmac::{Hmac, Mac};
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.as_bytes()) else {
        // HMAC takes keys of any length; kept total all the same.
        return sha256_hex(&format!("{key}/{message}"));
    };
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The networks a sign-up's source is counted at, each with its own limit
/// (docs/SECURITY.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceNetwork {
    /// An IPv4 address (perhaps a carrier NAT's, shared by many phones).
    Ipv4,
    /// An IPv6 /64: one subscriber's usual allocation.
    Ipv6Slash64,
    /// An IPv6 /56: a home's or a small site's.
    Ipv6Slash56,
    /// An IPv6 /48: a site's, or what a tunnel broker gives away.
    Ipv6Slash48,
}

/// The networks a source address is counted as, narrowest first: an IPv4
/// address (an IPv4-mapped IPv6 one, `::ffff:a.b.c.d`, is that IPv4
/// address) itself; an IPv6 address's /64, /56 and /48. Anything that is
/// no address (API Gateway always gives one) as given, as a /64.
pub fn source_networks(source_ip: &str) -> Vec<(SourceNetwork, String)> {
    use std::net::{IpAddr, Ipv6Addr};
    match source_ip.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
        Ok(IpAddr::V4(v4)) => vec![(SourceNetwork::Ipv4, v4.to_string())],
        Ok(IpAddr::V6(v6)) => [
            (SourceNetwork::Ipv6Slash64, 64),
            (SourceNetwork::Ipv6Slash56, 56),
            (SourceNetwork::Ipv6Slash48, 48),
        ]
        .into_iter()
        .map(|(network, bits)| {
            let prefix = Ipv6Addr::from(u128::from(v6) & (u128::MAX << (128 - bits)));
            (network, format!("{prefix}/{bits}"))
        })
        .collect(),
        Err(_) => vec![(SourceNetwork::Ipv6Slash64, source_ip.to_string())],
    }
}

/// argon2id with OWASP's baseline parameters (19 MiB, 2 passes, 1 lane).
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string (salt and parameters included).
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Checks a password against a stored PHC string; a malformed hash never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_counted_at_each_of_its_networks_narrowest_first() {
        use SourceNetwork::*;
        let nets = |ip: &str| source_networks(ip);
        assert_eq!(nets("198.51.100.7"), [(Ipv4, "198.51.100.7".to_string())]);
        // IPv4-mapped IPv6 is its IPv4 address, not one /64 for them all.
        assert_eq!(nets("::ffff:198.51.100.7"), nets("198.51.100.7"));
        assert_ne!(nets("::ffff:198.51.100.8"), nets("::ffff:198.51.100.7"));
        assert_eq!(
            nets("2001:db8:4800:1a2b:c:d:e:f"),
            [
                (Ipv6Slash64, "2001:db8:4800:1a2b::/64".to_string()),
                (Ipv6Slash56, "2001:db8:4800:1a00::/56".to_string()),
                (Ipv6Slash48, "2001:db8:4800::/48".to_string()),
            ]
        );
        assert_eq!(
            nets("not an address"),
            [(Ipv6Slash64, "not an address".to_string())]
        );
    }

    #[test]
    fn whitelist_tokens_are_40_lower_hex_and_distinct() {
        let a = new_whitelist_token();
        let b = new_whitelist_token();
        assert_eq!(a.len(), 40);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }

    #[test]
    fn password_hash_round_trip() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(!phc.contains("correct horse"));
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("wrong", &phc));
        assert!(!verify_password("correct horse", "not a hash"));
    }
}
