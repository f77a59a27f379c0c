//! Rules about user records.

/// Usernames: 3–64 characters of `a-z 0-9 . _ -`, starting with a letter or digit.
pub fn check_username(username: &str) -> Result<(), &'static str> {
    let ok_len = (3..=64).contains(&username.len());
    let ok_chars = username
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    let ok_start = username
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if ok_len && ok_chars && ok_start {
        Ok(())
    } else {
        Err("must be 3-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit")
    }
}

/// Display names: at most 128 characters, no control characters.
pub fn check_display_name(name: &str) -> Result<(), &'static str> {
    if name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Err("must be at most 128 characters without control characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(check_username("alice").is_ok());
        assert!(check_username("soc.lead-2").is_ok());
        for bad in ["al", "Alice", "-x-", "a'b", "a b", &"a".repeat(65)] {
            assert!(check_username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn display_names() {
        assert!(check_display_name("Ada Lovelace").is_ok());
        assert!(check_display_name("tab\there").is_err());
        assert!(check_display_name(&"x".repeat(129)).is_err());
    }
}
