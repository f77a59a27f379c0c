//! Passwords: argon2id with OWASP's parameters and a policy checked on the
//! NFKC-normalised form, so what a user types on any keyboard hashes the same.
//!
//! Nothing is truncated: the whole normalised password (up to the policy's
//! maximum) goes into argon2, unlike bcrypt's silent 72-byte cut.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use unicode_normalization::UnicodeNormalization;

pub const MIN_BYTES: usize = 12;
pub const MAX_BYTES: usize = 1024;

/// OWASP password storage cheat sheet: argon2id, m = 19 MiB, t = 2, p = 1.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;

/// The 30,000 most common passwords of Mark Burnett's 10-million-password
/// breach set, as the `zxcvbn` crate (3.1.1, MIT) ships them: one per line,
/// lower-case (the check is case-insensitive). Source and licence:
/// `common_passwords.md` beside this file.
const COMMON: &str = include_str!("common_passwords.txt");

#[derive(Debug, PartialEq, Eq)]
pub enum PolicyError {
    TooShort,
    TooLong,
    Common,
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicyError::TooShort => write!(f, "must be at least {MIN_BYTES} bytes"),
            PolicyError::TooLong => write!(f, "must be at most {MAX_BYTES} bytes"),
            PolicyError::Common => write!(f, "is one of the most common passwords"),
        }
    }
}

fn normalize(password: &str) -> String {
    password.nfkc().collect()
}

/// Check the policy; returns the normalised password to hash.
pub fn check_policy(password: &str) -> Result<String, PolicyError> {
    let normalized = normalize(password);
    if normalized.len() < MIN_BYTES {
        return Err(PolicyError::TooShort);
    }
    if normalized.len() > MAX_BYTES {
        return Err(PolicyError::TooLong);
    }
    let lower = normalized.to_lowercase();
    if COMMON.lines().any(|common| common == lower) {
        return Err(PolicyError::Common);
    }
    Ok(normalized)
}

fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).expect("valid params");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hash a password that passed [`check_policy`] into a PHC string.
pub fn hash(password: &str) -> String {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("the platform has a random source");
    let salt = SaltString::encode_b64(&salt).expect("16 bytes encode");
    hasher()
        .hash_password(normalize(password).as_bytes(), &salt)
        .expect("argon2 accepts any input length up to 4 GiB")
        .to_string()
}

/// A hash of a password nobody knows, with the same parameters as real ones:
/// verifying against it costs what a real verification costs, so a login for
/// an unknown or locked account takes as long as one with a wrong password.
const DUMMY_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$yKM7zpa6EV7yIAEWPH9pOg$PtTFOAj0pLyhd9oLcDndiTpmPf5XbO2RhVHWKEHNHx8";

/// Spend the time of one verification, for accounts that cannot log in.
pub fn dummy_verify(password: &str) {
    let _ = verify(password, DUMMY_PHC);
}

/// Verify against a stored PHC string; false for a wrong password or an unreadable hash.
pub fn verify(password: &str, phc: &str) -> bool {
    if password.len() > MAX_BYTES * 4 {
        return false;
    }
    PasswordHash::new(phc)
        .map(|parsed| {
            hasher()
                .verify_password(normalize(password).as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert_eq!(check_policy("short"), Err(PolicyError::TooShort));
        assert_eq!(check_policy(&"a".repeat(1025)), Err(PolicyError::TooLong));
        assert_eq!(check_policy("Password1234"), Err(PolicyError::Common));
        assert!(check_policy("correct horse battery staple").is_ok());
        // NFKC: full-width digits count as their ASCII forms.
        assert_eq!(
            check_policy("ｐａｓｓｗｏｒｄ１２３４"),
            Err(PolicyError::Common)
        );
    }

    #[test]
    fn the_common_list_is_real_and_large() {
        assert!(COMMON.lines().count() >= 10_000);
        assert_eq!(COMMON.lines().next(), Some("123456"), "most common first");
        for breached in [
            "qwertyuiop123",
            "1q2w3e4r5t6y",
            "qazwsxedcrfv",
            "leavemealone",
        ] {
            assert_eq!(
                check_policy(breached),
                Err(PolicyError::Common),
                "{breached}"
            );
        }
        assert_eq!(check_policy("LeaveMeAlone"), Err(PolicyError::Common));
    }

    #[test]
    fn hash_and_verify_without_truncation() {
        let long_a = format!("{}A", "x".repeat(100));
        let long_b = format!("{}B", "x".repeat(100));
        let phc = hash(&long_a);
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify(&long_a, &phc));
        assert!(!verify(&long_b, &phc), "bytes past 72 must matter");
        assert!(!verify(&long_a, "not a phc string"));
    }

    #[test]
    fn the_dummy_hash_has_the_real_parameters() {
        let real = hash("correct horse battery staple");
        let params = |phc: &str| phc.split('$').take(4).collect::<Vec<_>>().join("$");
        assert_eq!(params(DUMMY_PHC), params(&real));
        assert!(PasswordHash::new(DUMMY_PHC).is_ok());
    }
}
