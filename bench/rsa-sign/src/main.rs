//! `cargo run --release --manifest-path bench/rsa-sign/Cargo.toml -- [N]`: N (default 200) RS256
//! signatures of a JWS-sized message with the `rsa` crate (`sign_with_rng`, blinded; what signed
//! ID tokens first), ring (`RsaKeyPair` from the same PKCS #1 DER, blinded; what signed them next)
//! and aws-lc-rs (the same, over AWS-LC; what signs them now), three interleaved rounds, wall
//! time per signature. Checks first that all three give the same bytes (PKCS #1 v1.5 is
//! deterministic) and that the `rsa` crate verifies AWS-LC's signature.

use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding, Verifier};
use std::time::{Duration, Instant};

/// The mean time of `n` calls of `f`.
fn per_call<T>(n: u32, mut f: impl FnMut() -> T) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(f());
    }
    start.elapsed() / n
}

fn main() {
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("a 2048-bit key");
    let der = key.to_pkcs1_der().expect("PKCS #1 DER");
    let rsa_signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone());
    let ring_key = ring::signature::RsaKeyPair::from_der(der.as_bytes()).expect("ring reads the key");
    let ring_rng = ring::rand::SystemRandom::new();
    let lc_key = aws_lc_rs::signature::RsaKeyPair::from_der(der.as_bytes()).expect("AWS-LC reads the key");
    let lc_rng = aws_lc_rs::rand::SystemRandom::new();
    let message = b"eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwiYXV0aF90aW1lIjoxNTE2MjM5MDIyfQ";
    let n: u32 = std::env::args().nth(1).map(|s| s.parse().expect("a count")).unwrap_or(200);
    let ring_sign = || {
        let mut signature = vec![0; ring_key.public().modulus_len()];
        ring_key.sign(&ring::signature::RSA_PKCS1_SHA256, &ring_rng, message, &mut signature).expect("signed");
        signature
    };
    let lc_sign = || {
        let mut signature = vec![0; lc_key.public_modulus_len()];
        lc_key.sign(&aws_lc_rs::signature::RSA_PKCS1_SHA256, &lc_rng, message, &mut signature).expect("signed");
        signature
    };
    let by_rsa = rsa_signer.sign_with_rng(&mut rand::rngs::OsRng, message).to_vec();
    let by_lc = lc_sign();
    assert_eq!(by_rsa, ring_sign(), "ring: the same signature");
    assert_eq!(by_rsa, by_lc, "AWS-LC: the same signature");
    let verifier = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key.to_public_key());
    verifier.verify(message, &rsa::pkcs1v15::Signature::try_from(by_lc.as_slice()).unwrap()).expect("verifies");
    for round in 0..3 {
        let rsa_time = per_call(n, || rsa_signer.sign_with_rng(&mut rand::rngs::OsRng, message).to_vec());
        let ring_time = per_call(n, ring_sign);
        let lc_time = per_call(n, lc_sign);
        let (to_ring, to_lc) = (ring_time.as_secs_f64() / lc_time.as_secs_f64(), rsa_time.as_secs_f64() / lc_time.as_secs_f64());
        println!(
            "round {round}: rsa 0.9.10 {rsa_time:?}, ring 0.17.14 {ring_time:?}, aws-lc-rs {lc_time:?} per signature; ring÷aws-lc {to_ring:.2}x, rsa÷aws-lc {to_lc:.2}x"
        );
    }
}
