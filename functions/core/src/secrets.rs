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
/// counted without being stored (the key is the day's random salt).
pub fn keyed_hash(key: &str, message: &str) -> String {
    use hmac::{Hmac, Mac};
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.as_bytes()) else {
        // HMAC takes keys of any length; kept total all the same.
        return sha256_hex(&format!("{key}/{message}"));
    };
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The network a source address is counted as: an IPv4 address itself, an
/// IPv6 address's /64 (one subscriber's usual allocation). Anything else as
/// given.
pub fn source_network(source_ip: &str) -> String {
    match source_ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => v4.to_string(),
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Err(_) => source_ip.to_string(),
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
