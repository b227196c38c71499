//! Secrets: random tokens shown to their owner once, stored only as SHA-256 hashes, and the
//! short public ids used to list and revoke them.

use sha2::{Digest, Sha256};

use crate::HttpError;

/// Prefix of API tokens, so a leaked one is recognisable in logs and secret scanners.
pub const API_TOKEN_PREFIX: &str = "tl_";
/// Prefix of browser session secrets (the session cookie's value).
pub const SESSION_PREFIX: &str = "tlsess_";
/// Bytes of OS randomness in a secret: 256 bits.
const SECRET_BYTES: usize = 32;
/// Bytes of OS randomness in a public id: enough to never collide, short enough to type.
const PUBLIC_ID_BYTES: usize = 8;

/// A new secret: `prefix` followed by 32 random bytes in hex.
///
/// # Errors
/// [`HttpError::Random`] when the OS random number generator fails.
pub fn new_secret(prefix: &str) -> Result<String, HttpError> {
    Ok(format!("{prefix}{}", random_hex::<SECRET_BYTES>()?))
}

/// A new public token id: `prefix` followed by 8 random bytes in hex.
///
/// # Errors
/// [`HttpError::Random`] when the OS random number generator fails.
pub fn new_public_id(prefix: &str) -> Result<String, HttpError> {
    Ok(format!("{prefix}{}", random_hex::<PUBLIC_ID_BYTES>()?))
}

/// The stored form of a secret: its SHA-256, lowercase hex. Secrets have 256 bits of entropy,
/// so a fast unsalted hash is enough; nothing can be guessed from it.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn random_hex<const N: usize>() -> Result<String, HttpError> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|e| HttpError::Random(e.to_string()))?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_prefixed_and_hashed() {
        let a = new_secret(API_TOKEN_PREFIX).unwrap();
        let b = new_secret(API_TOKEN_PREFIX).unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("tl_"));
        assert_eq!(a.len(), 3 + 64);
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(new_public_id("tok_").unwrap().len(), 4 + 16);
    }
}
