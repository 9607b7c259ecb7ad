//! A software authenticator for the passkey tests: an ES256 or Ed25519 key, attestation "none", and the
//! authenticator data and client data a browser and authenticator would produce (WebAuthn
//! Level 2 §6.1, §6.5.4, §5.8.1), serialised as `PublicKeyCredential.toJSON()` does.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use rocket::http::Status;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::*;

/// The issuer (and so the relying party) of passkey tests: browsers refuse IP addresses.
pub const ORIGIN: &str = "http://localhost:8000";
pub const RP_ID: &str = "localhost";

/// An app whose issuer makes passkeys usable.
pub async fn passkey_app(backend: Backend) -> TestApp {
    TestApp::builder(backend).with_config("issuer", ORIGIN).build().await
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(value: &Value) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(value.as_str().expect("base64url string")).expect("base64url")
}

/// A CBOR byte string header (RFC 8949 §3.1, major type 2).
fn cbor_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut out = match bytes.len() {
        n if n < 24 => vec![0x40 | n as u8],
        n if n < 256 => vec![0x58, n as u8],
        n => vec![0x59, (n >> 8) as u8, n as u8],
    };
    out.extend_from_slice(bytes);
    out
}

/// The authenticator's key pair: ES256 (P-256) or EdDSA (Ed25519).
#[derive(Clone)]
enum KeyPair {
    Es256(SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

impl KeyPair {
    fn es256() -> KeyPair {
        KeyPair::Es256(SigningKey::random(&mut rand::rngs::OsRng))
    }

    /// The COSE_Key of the public key (RFC 9053 §2.1, §7.1, §7.2).
    fn cose(&self) -> Vec<u8> {
        match self {
            KeyPair::Es256(key) => {
                let point = key.verifying_key().to_encoded_point(false);
                let mut cose = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21];
                cose.extend(cbor_bytes(point.x().unwrap()));
                cose.push(0x22);
                cose.extend(cbor_bytes(point.y().unwrap()));
                cose
            }
            // kty OKP (1), alg EdDSA (-8), crv Ed25519 (6), x.
            KeyPair::Ed25519(key) => {
                let mut cose = vec![0xa4, 0x01, 0x01, 0x03, 0x27, 0x20, 0x06, 0x21];
                cose.extend(cbor_bytes(key.verifying_key().as_bytes()));
                cose
            }
        }
    }

    /// The assertion signature: DER for ECDSA, the raw 64 bytes for Ed25519.
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            KeyPair::Es256(key) => {
                let signature: Signature = key.sign(message);
                signature.to_der().as_bytes().to_vec()
            }
            KeyPair::Ed25519(key) => ed25519_dalek::Signer::sign(key, message).to_bytes().to_vec(),
        }
    }
}

#[derive(Clone)]
pub struct SoftKey {
    key: KeyPair,
    pub credential_id: Vec<u8>,
    pub counter: u32,
    /// Whether the authenticator verifies its user (a PIN or biometrics).
    pub verifies_user: bool,
    /// The origin the "browser" reports.
    pub origin: String,
    pub rp_id: String,
    user_handle: Vec<u8>,
}

impl SoftKey {
    pub fn new(verifies_user: bool) -> SoftKey {
        let mut id = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut id);
        SoftKey {
            key: KeyPair::es256(),
            credential_id: id.to_vec(),
            counter: 0,
            verifies_user,
            origin: ORIGIN.into(),
            rp_id: RP_ID.into(),
            user_handle: vec![],
        }
    }

    /// An authenticator with an Ed25519 key (COSE algorithm EdDSA).
    pub fn ed25519(verifies_user: bool) -> SoftKey {
        let mut seed = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        SoftKey { key: KeyPair::Ed25519(key), ..SoftKey::new(verifies_user) }
    }

    /// The same credential id and user handle with another private key: what a forger without
    /// the authenticator would sign with.
    pub fn forged(&self) -> SoftKey {
        SoftKey { key: KeyPair::es256(), ..self.clone() }
    }

    /// The user handle the authenticator stored at registration (`user.id` of the options).
    pub fn user_handle(&self) -> &[u8] {
        &self.user_handle
    }

    fn flags(&self, attested: bool) -> u8 {
        0x01 | if self.verifies_user { 0x04 } else { 0 } | if attested { 0x40 } else { 0 }
    }

    fn client_data(&self, kind: &str, options: &Value) -> Vec<u8> {
        json!({"type": kind, "challenge": options["challenge"], "origin": self.origin, "crossOrigin": false})
            .to_string()
            .into_bytes()
    }

    /// `navigator.credentials.create()` for `options` (the `publicKey` of the answer).
    pub fn create(&mut self, options: &Value) -> Value {
        self.user_handle = unb64(&options["user"]["id"]);
        let cose = self.key.cose();
        let mut auth_data = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        auth_data.push(self.flags(true));
        auth_data.extend(self.counter.to_be_bytes());
        auth_data.extend([0u8; 16]);
        auth_data.extend((self.credential_id.len() as u16).to_be_bytes());
        auth_data.extend(&self.credential_id);
        auth_data.extend(cose);
        let mut attestation = vec![0xa3, 0x63];
        attestation.extend(b"fmt");
        attestation.push(0x64);
        attestation.extend(b"none");
        attestation.push(0x67);
        attestation.extend(b"attStmt");
        attestation.extend([0xa0, 0x68]);
        attestation.extend(b"authData");
        attestation.extend(cbor_bytes(&auth_data));
        json!({
            "id": b64(&self.credential_id), "rawId": b64(&self.credential_id), "type": "public-key",
            "response": {
                "attestationObject": b64(&attestation),
                "clientDataJSON": b64(&self.client_data("webauthn.create", options)),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        })
    }

    /// `navigator.credentials.get()` for `options`, with the counter as it stands plus one.
    pub fn get(&mut self, options: &Value) -> Value {
        self.counter += 1;
        self.assertion(options)
    }

    /// An assertion at the current counter (0 stays 0: an authenticator that never counts).
    pub fn assertion(&self, options: &Value) -> Value {
        let client_data = self.client_data("webauthn.get", options);
        let mut auth_data = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        auth_data.push(self.flags(false));
        auth_data.extend(self.counter.to_be_bytes());
        let mut signed = auth_data.clone();
        signed.extend(Sha256::digest(&client_data));
        let signature = self.key.sign(&signed);
        json!({
            "id": b64(&self.credential_id), "rawId": b64(&self.credential_id), "type": "public-key",
            "response": {
                "authenticatorData": b64(&auth_data),
                "clientDataJSON": b64(&client_data),
                "signature": b64(&signature),
                "userHandle": b64(&self.user_handle),
            },
            "clientExtensionResults": {},
        })
    }
}

/// `POST /auth/passkeys/register` with the password, then the finish: the new passkey's JSON.
pub async fn add_passkey(app: &TestApp, tokens: &Tokens, key: &mut SoftKey, name: &str) -> Value {
    let start = app.post_authed("/auth/passkeys/register", &tokens.access, json!({"password": PASSWORD})).await;
    assert_eq!(start.status(), Status::Ok);
    let start: Value = start.into_json().await.unwrap();
    let credential = key.create(&start["publicKey"]);
    let body = json!({"ceremony_id": start["ceremony_id"], "name": name, "credential": credential});
    let finish = app.post_authed("/auth/passkeys/register/finish", &tokens.access, body).await;
    assert_eq!(finish.status(), Status::Created);
    finish.into_json().await.unwrap()
}

/// `POST /auth/passkeys/login` (with `email` when given): `(ceremony_id, publicKey)`.
pub async fn start_sign_in(app: &TestApp, email: Option<&str>) -> (String, Value) {
    let body = email.map_or(json!({}), |e| json!({"email": e}));
    let response = app.post("/auth/passkeys/login", body).await;
    assert_eq!(response.status(), Status::Ok);
    let body: Value = response.into_json().await.unwrap();
    (body["ceremony_id"].as_str().unwrap().to_owned(), body["publicKey"].clone())
}

pub async fn finish_sign_in<'a>(
    app: &'a TestApp,
    ceremony_id: &str,
    credential: Value,
) -> rocket::local::asynchronous::LocalResponse<'a> {
    app.post("/auth/passkeys/login/finish", json!({"ceremony_id": ceremony_id, "credential": credential})).await
}
