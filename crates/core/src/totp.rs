//! Two-factor codes: TOTP (RFC 6238 over RFC 4226) with SHA-1, 30-second
//! steps and 6 digits, as every authenticator app expects; one step of clock
//! skew either way; a code is accepted once (the caller stores the last
//! step used and passes it back). Also recovery codes and the `otpauth` URI.

use std::sync::LazyLock;

use data_encoding::{BASE32_NOPAD, Encoding};
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha1::Sha1;
use subtle::ConstantTimeEq;

pub const STEP_SECS: i64 = 30;
pub const DIGITS: u32 = 6;
pub const RECOVERY_CODES: usize = 10;
/// RFC 3986's unreserved characters stay as they are in the `otpauth` URI.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A new 160-bit secret, base32 (RFC 4648, no padding).
pub fn new_secret() -> String {
    let mut raw = [0u8; 20];
    getrandom::fill(&mut raw).expect("the platform has a random source");
    base32(&raw)
}

/// RFC 4648 base32 without padding, as authenticator apps take secrets.
pub fn base32(bytes: &[u8]) -> String {
    BASE32_NOPAD.encode(bytes)
}

/// Base32 as people and tools write it: either case, `=` padding, and any
/// length, the bits past the last whole byte ignored (a 25-character recovery
/// code is 15 bytes and 5 bits).
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    static LENIENT: LazyLock<Encoding> = LazyLock::new(|| {
        let mut spec = BASE32_NOPAD.specification();
        spec.check_trailing_bits = false;
        spec.encoding()
            .expect("base32 without the trailing-bits check")
    });
    let text = text.trim_end_matches('=').to_ascii_uppercase();
    if !text.bytes().all(|b| matches!(b, b'A'..=b'Z' | b'2'..=b'7')) {
        return None;
    }
    let whole_bytes = text.len() * 5 / 8;
    LENIENT
        .decode(&text.as_bytes()[..(whole_bytes * 8).div_ceil(5)])
        .ok()
}

/// The code for time step `step` (RFC 4226 HOTP with dynamic truncation).
pub fn code_at(secret: &[u8], step: i64) -> u32 {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = (digest[19] & 0x0f) as usize;
    let value = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    value % 10u32.pow(DIGITS)
}

/// The step a code matches at `now_secs` (within ±1 step), if it is newer
/// than `last_used_step`: a code is accepted once.
pub fn verify(
    secret_b32: &str,
    code: &str,
    now_secs: i64,
    last_used_step: Option<i64>,
) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let wanted: u32 = code.parse().ok()?;
    let secret = base32_decode(secret_b32)?;
    let now_step = now_secs.div_euclid(STEP_SECS);
    // Every step is computed and compared in constant time, so the time
    // taken says nothing about which digits (or which step) matched.
    let mut matched = None;
    for step in now_step - 1..=now_step + 1 {
        let same: bool = code_at(&secret, step)
            .to_be_bytes()
            .ct_eq(&wanted.to_be_bytes())
            .into();
        let fresh = last_used_step.is_none_or(|last| step > last);
        if same && fresh && matched.is_none() {
            matched = Some(step);
        }
    }
    matched
}

/// The URI authenticator apps read (usually from a QR code).
pub fn otpauth_uri(issuer: &str, account: &str, secret_b32: &str) -> String {
    let enc = |s: &str| utf8_percent_encode(s, UNRESERVED).to_string();
    format!(
        "otpauth://totp/{}:{}?secret={secret_b32}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(issuer),
        enc(account),
        enc(issuer)
    )
}

/// Base32 characters in a recovery code: 25 × 5 = 125 random bits, above
/// the 112 bits NIST SP 800-63B asks of a look-up secret that is not
/// rate-limited by itself.
pub const RECOVERY_CODE_CHARS: usize = 25;

/// Ten one-time recovery codes, `xxxxx-xxxxx-xxxxx-xxxxx-xxxxx` in base32
/// (125 random bits each).
pub fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut raw = [0u8; 16];
            getrandom::fill(&mut raw).expect("the platform has a random source");
            let text = base32(&raw).to_lowercase();
            text.as_bytes()[..RECOVERY_CODE_CHARS]
                .chunks(5)
                .map(|group| std::str::from_utf8(group).expect("base32 is ASCII"))
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// Recovery codes compare without case, spaces or dashes.
pub fn normalize_recovery_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 (8-digit codes; ours are their last 6 digits).
    #[test]
    fn rfc6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, expected) in [
            (59, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
        ] {
            assert_eq!(
                code_at(secret, time / STEP_SECS),
                expected % 1_000_000,
                "t={time}"
            );
        }
    }

    #[test]
    fn base32_round_trips() {
        for bytes in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar"] {
            assert_eq!(base32_decode(&base32(bytes)).unwrap(), bytes);
        }
        // RFC 4648 §10, without the padding.
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_decode("mzxw6ytboi").unwrap(), b"foobar");
        assert_eq!(base32_decode("MZXW6===").unwrap(), b"foo");
        assert!(base32_decode("not base32!").is_none());
        assert!(base32_decode("MZXW6YTBO1").is_none());
        // Bits past the last whole byte: ignored, as before.
        assert_eq!(base32_decode("MZXW6YTBOJ").unwrap(), b"foobar");
        assert_eq!(base32_decode("MZXW6YTBOIA").unwrap(), b"foobar");
        let code = new_recovery_codes().remove(0).replace('-', "");
        assert_eq!(base32_decode(&code).unwrap().len(), 15);
    }

    #[test]
    fn codes_are_accepted_within_one_step_and_only_once() {
        let secret = new_secret();
        let raw = base32_decode(&secret).unwrap();
        let now = 1_800_000_000;
        let step = now / STEP_SECS;
        let code = format!("{:06}", code_at(&raw, step));
        assert_eq!(verify(&secret, &code, now, None), Some(step));
        assert_eq!(
            verify(&secret, &code, now + STEP_SECS, None),
            Some(step),
            "one step late is fine"
        );
        assert_eq!(
            verify(&secret, &code, now + 2 * STEP_SECS, None),
            None,
            "two steps late is not"
        );
        assert_eq!(
            verify(&secret, &code, now, Some(step)),
            None,
            "a used code is refused"
        );
        assert_eq!(
            verify(&secret, &code, now - STEP_SECS, None),
            Some(step),
            "one step early is fine"
        );
        assert_eq!(
            verify(&secret, &code, now + STEP_SECS, Some(step - 1)),
            Some(step),
            "a code newer than the last one used is taken"
        );
        let wrong = format!("{:06}", (code_at(&raw, step) + 1) % 1_000_000);
        assert_eq!(verify(&secret, &wrong, now, None), None);
        assert_eq!(verify(&secret, "12345", now, None), None);
        assert_eq!(verify(&secret, "abcdef", now, None), None);
    }

    #[test]
    fn recovery_codes_and_uri() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        assert_eq!(codes[0].len(), 29);
        let bits = normalize_recovery_code(&codes[0]).len() * 5;
        assert!(bits >= 112, "{bits} bits");
        assert_ne!(codes[0], codes[1]);
        assert_eq!(normalize_recovery_code(" AbCde-FGhij "), "abcdefghij");
        let uri = otpauth_uri("Vigil", "ana lyst", "ABC");
        assert_eq!(
            uri,
            "otpauth://totp/Vigil:ana%20lyst?secret=ABC&issuer=Vigil&algorithm=SHA1&digits=6&period=30"
        );
        let uri = otpauth_uri("Acme & Co", "zoë/1", "ABC");
        assert!(
            uri.starts_with("otpauth://totp/Acme%20%26%20Co:zo%C3%AB%2F1?"),
            "{uri}"
        );
    }
}
