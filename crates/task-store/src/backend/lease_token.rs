//! Fencing tokens for leases: unguessable, so only the worker that claimed a task can write to it.

use crate::StoreError;

/// 128 bits: a stale worker cannot hit the current token by chance.
const TOKEN_BYTES: usize = 16;

/// A fresh lease token: 128 bits from the OS random number generator, hex-encoded.
///
/// # Errors
/// [`StoreError::Backend`] when the OS random number generator is unavailable; a token must never
/// come from weak randomness.
pub fn new_lease_token() -> Result<String, StoreError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| StoreError::Backend(format!("OS random number generator unavailable: {e}")))?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_128_bit_hex_and_differ() {
        let a = new_lease_token().unwrap();
        let b = new_lease_token().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
