//! The key-encryption key generated for an SQLite database when `auth.key_encryption_key` is not
//! configured: the file `<database file>.kek` beside the database, readable by its owner only
//! (mode 0600), holding the key as the text `auth.key_encryption_key` would (so configuring the
//! file's content instead is the same key). A copy of the database file alone then holds nothing
//! that signs a token or computes a refresh token (docs/services.md, "Keys at rest").

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;

use crate::config::Secret;

/// What is appended to the database file's name.
pub const SUFFIX: &str = ".kek";

/// The key file of the SQLite database at `db_path`; `None` for an in-memory database (no file
/// to copy, nothing to protect).
pub fn path_for(db_path: &str) -> Option<PathBuf> {
    let path = db_path.strip_prefix("file:").map_or(db_path, |p| p.split('?').next().unwrap_or(p));
    if path.is_empty() || path == ":memory:" || db_path.contains("mode=memory") {
        return None;
    }
    Some(PathBuf::from(format!("{path}{SUFFIX}")))
}

/// The key in `path`, or `None` when there is no such file.
pub fn read(path: &Path) -> Result<Option<Secret>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read the key file {}: {e}", path.display())),
    };
    let key = text.trim();
    if key.len() < 32 {
        return Err(format!("the key file {} is corrupt (shorter than 32 bytes)", path.display()));
    }
    Ok(Some(Secret::new(key)))
}

/// Generates a key into `path` (mode 0600) unless the file exists, and returns the key the file
/// holds afterwards: instances starting together agree, as the file appears whole or not at all
/// (written aside, then hard-linked into place, which fails if another instance was first).
pub fn create(path: &Path) -> Result<Secret, String> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let key = URL_SAFE_NO_PAD.encode(bytes);
    let aside = PathBuf::from(format!("{}.{:016x}.tmp", path.display(), rand::rngs::OsRng.next_u64()));
    let written = write_private(&aside, &key);
    let linked = written.and_then(|()| std::fs::hard_link(&aside, path));
    let _ = std::fs::remove_file(&aside);
    match linked {
        Ok(()) => {
            // Make the new name durable before anything is sealed under the key it holds.
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create the key file {}: {e}", path.display())),
    }
    read(path)?.ok_or_else(|| format!("the key file {} vanished while being created", path.display()))
}

/// Writes `key` into a new file readable and writable by its owner only, synced to disk.
fn write_private(path: &Path, key: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(format!("{key}\n").as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_file_sits_beside_the_database_file() {
        assert_eq!(path_for("data/portcullis.db"), Some(PathBuf::from("data/portcullis.db.kek")));
        assert_eq!(path_for("file:/srv/a.db?mode=rwc"), Some(PathBuf::from("/srv/a.db.kek")));
        assert_eq!(path_for(":memory:"), None);
    }

    #[test]
    fn a_second_creation_keeps_the_first_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db.kek");
        let first = create(&path).unwrap();
        let second = create(&path).unwrap();
        assert_eq!(first.expose(), second.expose());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing left aside");
    }
}
