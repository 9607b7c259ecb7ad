//! Sessions for the `logout` scenario: each logout ends a session for good, so the scenario needs
//! as many live sessions as it sends requests. Logging that many in through the API would cost an
//! argon2 hash each (minutes); instead `bench/run` inserts the sessions in SQL and hands over
//! their ids and the server's refresh-token key (the `refresh_mac_key` setting, which a bench
//! with database access can read), and this module mints each session's first refresh token the
//! way the server does (src/auth/chain.rs) and exchanges it once for an access token — all before
//! the clock starts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use hyper::header::HeaderValue;
use sha2::Sha256;

use crate::http::{bearer, Call, Client, Target};

/// Access tokens of live sessions, each handed out once to whichever connection asks next.
pub struct Sessions {
    tokens: Vec<HeaderValue>,
    next: AtomicUsize,
}

impl Sessions {
    /// The next session's bearer header, or `None` once every session has been taken.
    pub fn take(&self) -> Option<HeaderValue> {
        self.tokens.get(self.next.fetch_add(1, Ordering::Relaxed)).cloned()
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }
}

/// The key bytes of a stored `refresh_mac_key` value: `plain:<base64>` (PostgreSQL without a
/// key-encryption key), `xc20p1:<base64 of nonce || ciphertext>` sealed under the key-encryption
/// key given on a following `kek:` line (SQLite's generated `<database>.kek` file; the sealing
/// of `src/auth/keys/kek.rs`), or a bare value from before that prefix existed.
fn key_bytes(file: &str) -> Result<Vec<u8>, String> {
    let mut lines = file.lines().map(str::trim).filter(|l| !l.is_empty());
    let stored = lines.next().unwrap_or_default();
    let kek = lines.find_map(|l| l.strip_prefix("kek:"));
    if let Some(encoded) = stored.strip_prefix("plain:") {
        return STANDARD_NO_PAD.decode(encoded).map_err(|e| format!("refresh_mac_key: {e}"));
    }
    if let Some(encoded) = stored.strip_prefix("xc20p1:") {
        use chacha20poly1305::aead::{Aead, KeyInit};
        use sha2::Digest;
        let kek = kek.ok_or("refresh_mac_key is sealed and no kek: line gives the key-encryption key")?;
        let key = sha2::Sha256::new()
            .chain_update(b"portcullis key-encryption key v1\0")
            .chain_update(kek.as_bytes())
            .finalize();
        let bytes = STANDARD_NO_PAD.decode(encoded).map_err(|e| format!("refresh_mac_key: {e}"))?;
        if bytes.len() < 24 {
            return Err("refresh_mac_key: sealed value too short".into());
        }
        let (nonce, sealed) = bytes.split_at(24);
        let cipher = chacha20poly1305::XChaCha20Poly1305::new(&key);
        return cipher.decrypt(nonce.into(), sealed).map_err(|_| "refresh_mac_key: the kek does not open it".into());
    }
    Ok(stored.as_bytes().to_vec())
}

/// The 16 bytes of a UUID in its text form (with or without dashes).
fn uuid_bytes(text: &str) -> Result<[u8; 16], String> {
    let hex: String = text.trim().chars().filter(|c| *c != '-').collect();
    let mut bytes = [0u8; 16];
    if hex.len() != 32 {
        return Err(format!("not a session id: {text:?}"));
    }
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| format!("not a session id: {text:?}"))?;
    }
    Ok(bytes)
}

/// The refresh token of generation 0 of `session` (format version 2 of src/auth/chain.rs).
fn mint(key: &[u8], session: [u8; 16]) -> String {
    let mut token = vec![2u8];
    token.extend_from_slice(&session);
    token.extend_from_slice(&0u64.to_be_bytes());
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(&token);
    token.extend_from_slice(&mac.finalize().into_bytes());
    URL_SAFE_NO_PAD.encode(token)
}

/// Exchanges the first refresh token of every session listed in `ids_file` (one id a line) for an
/// access token, over 16 connections.
pub async fn prepare(target: Target, ids_file: &str, key_file: &str) -> Result<Arc<Sessions>, String> {
    let key = key_bytes(&std::fs::read_to_string(key_file).map_err(|e| format!("{key_file}: {e}"))?)?;
    let ids = std::fs::read_to_string(ids_file).map_err(|e| format!("{ids_file}: {e}"))?;
    let refresh: Vec<String> = ids
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|id| uuid_bytes(id).map(|b| mint(&key, b)))
        .collect::<Result<_, _>>()?;
    let refresh = Arc::new(refresh);
    let workers = 16;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (target, refresh) = (target.clone(), refresh.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = Client::new(target);
            let mut tokens = Vec::new();
            for token in refresh.iter().skip(w).step_by(workers) {
                let body = serde_json::json!({ "refresh_token": token }).to_string();
                let (status, body) = client.send(&Call::post_json("/auth/refresh", body.into())).await?;
                if !status.is_success() {
                    return Err(format!(
                        "refresh of a seeded session answered {status}: {}",
                        String::from_utf8_lossy(&body)
                    ));
                }
                let value: serde_json::Value =
                    serde_json::from_slice(&body).map_err(|e| format!("refresh response: {e}"))?;
                let access = value["access_token"].as_str().ok_or("refresh response lacks access_token")?;
                tokens.push(bearer(access));
            }
            Ok::<_, String>(tokens)
        }));
    }
    let mut tokens = Vec::with_capacity(refresh.len());
    for task in tasks {
        tokens.extend(task.await.map_err(|e| e.to_string())??);
    }
    if tokens.is_empty() {
        return Err(format!("{ids_file} lists no sessions"));
    }
    Ok(Arc::new(Sessions { tokens, next: AtomicUsize::new(0) }))
}
