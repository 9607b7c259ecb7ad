//! Well-known placeholder secrets, which must never be a key (`auth.secret`,
//! `auth.key_encryption_key`).

/// Well-known placeholder secrets from tutorials and templates (compared without punctuation).
const PLACEHOLDERS: &[&str] = &[
    "changeme",
    "changethis",
    "replaceme",
    "yoursecretkey",
    "yoursecret",
    "secretkey",
    "mysecret",
    "jwtsecret",
    "supersecret",
    "your256bitsecret",
    "placeholder",
    "insecure",
    "password",
];

pub(super) fn is_placeholder(secret: &str) -> bool {
    let folded: String = secret.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect();
    let mut chars = folded.chars();
    let single_repeated = chars.next().is_some_and(|first| chars.all(|c| c == first));
    folded.is_empty() || folded == "secret" || single_repeated || PLACEHOLDERS.iter().any(|p| folded.contains(p))
}
