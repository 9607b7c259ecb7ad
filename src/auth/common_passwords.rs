//! Commonly used passwords (NIST SP 800-63B §5.1.1.2, a blocklist of breached values): refused at registration, password change and
//! `portcullis user create`.
//!
//! The list is `data/common-passwords.txt`, compiled into the binary: every password of at least
//! 8 characters (shorter ones are refused by length anyway) among the 30,000 most common of
//! zxcvbn's breach-derived frequency list (MIT; see `data/COMMON-PASSWORDS-LICENSE`). It is list
//! membership, compared case-insensitively, not a strength score: a password in no list stays
//! accepted. The set is built once, on first use; a check is one lower-casing and one hash lookup.

use std::collections::HashSet;
use std::sync::LazyLock;

static LIST: &str = include_str!("../../data/common-passwords.txt");

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| LIST.lines().filter(|l| !l.is_empty()).collect());

/// Whether `password` is on the list, ignoring case.
pub fn is_common(password: &str) -> bool {
    COMMON.contains(password.to_lowercase().as_str())
}

/// How many passwords the list holds.
pub fn count() -> usize {
    COMMON.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_common_passwords_are_on_the_list_in_any_case() {
        for password in ["password", "12345678", "iloveyou", "PassWord", "qwertyuiop", "football"] {
            assert!(is_common(password), "{password}");
        }
        assert!(count() > 10_000);
    }

    #[test]
    fn uncommon_passwords_are_not_even_repetitive_ones() {
        for password in ["Ab1-Ab1-", "correct horse battery", "zq8#Lm2!pX"] {
            assert!(!is_common(password), "{password}");
        }
    }
}
