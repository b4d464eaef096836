//! The configuration-key table lives in `rxd_api` (it is LXD's, and pure); this module adds
//! what needs the host: the trust password's hash.

pub use rxd_api::config_keys::*;

use rand::RngCore;

/// Hashes a trust password as LXD does: hex(salt ‖ scrypt(password, salt, N=16384, r=8, p=1, 64)).
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 32];
    rand::rng().fill_bytes(&mut salt);
    let hash = scrypt_hash(password, &salt);
    let mut out = salt.to_vec();
    out.extend_from_slice(&hash);
    hex::encode(out)
}

fn scrypt_hash(password: &str, salt: &[u8]) -> [u8; 64] {
    let params = scrypt::Params::new(14, 8, 1, 64).expect("LXD's scrypt parameters are valid");
    let mut out = [0u8; 64];
    scrypt::scrypt(password.as_bytes(), salt, &params, &mut out)
        .expect("a 64-byte output is a valid scrypt length");
    out
}

/// Checks a password against a stored hash, in constant time.
pub fn check_password(stored: &str, password: &str) -> bool {
    let Ok(bytes) = hex::decode(stored) else {
        return false;
    };
    if bytes.len() != 96 {
        return false;
    }
    let (salt, expected) = bytes.split_at(32);
    let got = scrypt_hash(password, salt);
    got.iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hash_round_trips() {
        let h = hash_password("sekret");
        assert_eq!(h.len(), 192);
        assert!(check_password(&h, "sekret"));
        assert!(!check_password(&h, "wrong"));
    }
}
