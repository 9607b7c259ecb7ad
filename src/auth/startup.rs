//! Why the service cannot start: [`StartupError`], the one error of the start-up path
//! ([`super::Auth::build`], the signing keys, the refresh-token key). Each variant names the
//! configuration key or the storage step at fault; `Display` gives the operator's message
//! (`portcullis serve` prints it, Rocket logs it at ignite).

use std::fmt;

/// A storage step of start-up; its text prefixes the storage error, where it had one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageStep {
    /// Reading the settings of the legacy HS256 secret.
    ReadSettings,
    /// Reading the generated signing keys.
    ReadSigningKeys,
    /// Storing the first generated signing key.
    StoreSigningKey,
    /// Sealing signing keys stored in clear under the key-encryption key.
    SealSigningKeys,
    /// Loading (or creating) the refresh-token MAC key.
    LoadRefreshKey,
    /// Sealing the refresh-token MAC key under the key-encryption key.
    SealRefreshKey,
    /// Loading the revoked sessions, the role changes and the role table.
    LoadViews,
    /// Deleting signing keys whose tokens have all expired.
    DeleteRetiredKeys,
}

impl StorageStep {
    /// The message's prefix, as start-up has always written it (none for the plain reads).
    fn prefix(self) -> Option<&'static str> {
        match self {
            StorageStep::StoreSigningKey => Some("cannot store the signing key"),
            StorageStep::LoadRefreshKey => Some("cannot load the refresh-token key"),
            StorageStep::SealRefreshKey => Some("cannot seal the refresh-token key"),
            StorageStep::DeleteRetiredKeys => Some("cannot delete expired signing keys"),
            StorageStep::ReadSettings
            | StorageStep::ReadSigningKeys
            | StorageStep::SealSigningKeys
            | StorageStep::LoadViews => None,
        }
    }
}

/// Why start-up failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupError {
    /// A configuration key's value cannot be used: `databases.main` (the database does not
    /// answer), `auth.eddsa_keys[i].private_key`, `auth.active_kid`, ...
    Config { key: String, reason: String },
    /// A storage step failed.
    Storage { step: StorageStep, cause: String },
    /// What storage holds cannot be used: a corrupt setting or key, a key that does not open
    /// under the configured key-encryption key. The text names it.
    Stored(String),
    /// The password hasher could not be set up from `auth.argon2_*`.
    Hasher(String),
}

impl StartupError {
    pub fn config(key: impl Into<String>, reason: impl fmt::Display) -> Self {
        StartupError::Config { key: key.into(), reason: reason.to_string() }
    }

    /// The error of `step`, from the storage error's text.
    pub fn storage<E: fmt::Display>(step: StorageStep) -> impl FnOnce(E) -> StartupError {
        move |e| StartupError::Storage { step, cause: e.to_string() }
    }

    /// `databases.main` for a pool that gives no connection.
    pub fn database(e: impl fmt::Display) -> Self {
        Self::config("databases.main", e)
    }
}

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartupError::Config { key, reason } => write!(f, "{key}: {reason}"),
            StartupError::Storage { step, cause } => match step.prefix() {
                Some(prefix) => write!(f, "{prefix}: {cause}"),
                None => f.write_str(cause),
            },
            StartupError::Stored(what) | StartupError::Hasher(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for StartupError {}

impl From<StartupError> for String {
    /// For the command line, whose commands report a message.
    fn from(e: StartupError) -> String {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_key_or_the_step() {
        assert_eq!(StartupError::database("timed out").to_string(), "databases.main: timed out");
        let sealing = StartupError::Storage { step: StorageStep::SealRefreshKey, cause: "locked".into() };
        assert_eq!(sealing.to_string(), "cannot seal the refresh-token key: locked");
        let read = StartupError::Storage { step: StorageStep::ReadSigningKeys, cause: "no such table".into() };
        assert_eq!(read.to_string(), "no such table");
    }
}
