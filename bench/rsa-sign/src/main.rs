//! `cargo run --release --manifest-path bench/rsa-sign/Cargo.toml -- [N]`: N (default 200) RS256
//! signatures of a JWS-sized message with the `rsa` crate (`sign_with_rng`, blinded; what signed
//! ID tokens before) and with ring (`RsaKeyPair` from the same PKCS #1 DER, blinded; what signs
//! them now), three interleaved rounds, wall time per signature. Checks first that both give the
//! same bytes (PKCS #1 v1.5 is deterministic) and that the `rsa` crate verifies ring's signature.

use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding, Verifier};
use std::time::Instant;

fn main() {
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("a 2048-bit key");
    let der = key.to_pkcs1_der().expect("PKCS #1 DER");
    let rsa_signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone());
    let ring_key = ring::signature::RsaKeyPair::from_der(der.as_bytes()).expect("ring reads the key");
    let rng = ring::rand::SystemRandom::new();
    let message = b"eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwiYXV0aF90aW1lIjoxNTE2MjM5MDIyfQ";
    let n: u32 = std::env::args().nth(1).map(|s| s.parse().expect("a count")).unwrap_or(200);
    let ring_sign = || {
        let mut signature = vec![0; ring_key.public().modulus_len()];
        ring_key.sign(&ring::signature::RSA_PKCS1_SHA256, &rng, message, &mut signature).expect("signed");
        signature
    };
    let by_rsa = rsa_signer.sign_with_rng(&mut rand::rngs::OsRng, message).to_vec();
    let by_ring = ring_sign();
    assert_eq!(by_rsa, by_ring, "the same signature");
    let verifier = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key.to_public_key());
    verifier.verify(message, &rsa::pkcs1v15::Signature::try_from(by_ring.as_slice()).unwrap()).expect("verifies");
    for round in 0..3 {
        let start = Instant::now();
        for _ in 0..n {
            std::hint::black_box(rsa_signer.sign_with_rng(&mut rand::rngs::OsRng, message).to_vec());
        }
        let rsa_time = start.elapsed() / n;
        let start = Instant::now();
        for _ in 0..n {
            std::hint::black_box(ring_sign());
        }
        let ring_time = start.elapsed() / n;
        let ratio = rsa_time.as_secs_f64() / ring_time.as_secs_f64();
        println!("round {round}: rsa 0.9.10 {rsa_time:?}/signature, ring 0.17.14 {ring_time:?}/signature, {ratio:.1}x");
    }
}
