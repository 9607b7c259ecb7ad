//! Configuration: the `auth` table's defaults, validation that names the offending key, weak
//! secrets stopping start-up, and secrets kept out of `Debug` output.

use crate::helpers::*;
use portcullis::config::{AuthConfig, ConfigError, Registration, Secret};
use rocket::error::ErrorKind;
use rocket::figment::Figment;
use serde_json::{json, Value};

/// A secret that passes validation: 40 random-looking characters.
const GOOD_SECRET: &str = "q7R2vX9mK4pL8sT1wZ6yB3nC5dF0gH2jJ4kM7aQe";

/// Rocket's figment (`Rocket.toml`, `ROCKET_*`) with `auth.<key> = value` merged over it.
fn figment_with(key: &str, value: impl Into<Value>) -> Figment {
    Figment::from(rocket::Config::figment()).merge((format!("auth.{key}"), value.into()))
}

fn rejected(key: &str, value: impl Into<Value>) -> ConfigError {
    let value = value.into();
    match AuthConfig::from_figment(&figment_with(key, value.clone())) {
        Ok(config) => panic!("auth.{key} = {value} was accepted: {config:?}"),
        Err(e) => e,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_match_the_contract() {
    for figment in [Figment::new(), Figment::from(rocket::Config::figment())] {
        let config = AuthConfig::from_figment(&figment).expect("the defaults are valid");
        assert_eq!(config.issuer, "http://127.0.0.1:8000", "Rocket's address and port");
        assert_eq!(config.display_name(), "127.0.0.1", "the issuer's host");
        assert_eq!(config.audience, "portcullis");
        assert_eq!(config.access_ttl, 900);
        assert_eq!(config.refresh_ttl, 1_209_600);
        assert_eq!(config.session_max_age, 2_592_000);
        assert_eq!(config.reuse_grace, 10);
        assert_eq!(config.registration, Registration::Open);
        assert!(config.secret.is_none(), "no secret by default: one is generated");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_out_of_range_are_rejected_naming_the_key() {
    let e = rejected("access_ttl", 0);
    assert_eq!(e.key, "auth.access_ttl");
    let e = rejected("refresh_ttl", 0);
    assert_eq!(e.key, "auth.refresh_ttl");
    let e = rejected("revocation_poll_ms", 5000);
    assert_eq!(e.key, "auth.revocation_poll_ms");
    let e = rejected("issuer", " ");
    assert_eq!(e.key, "auth.issuer");
    assert!(e.to_string().contains("auth.issuer"), "{e}");
    assert_eq!(rejected("mfa_required_roles", vec![""]).key, "auth.mfa_required_roles");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_of_the_wrong_type_are_rejected_naming_the_key() {
    let e = rejected("access_ttl", "abc");
    assert_eq!(e.key, "auth.access_ttl");
    let e = rejected("access_ttl", -5);
    assert_eq!(e.key, "auth.access_ttl");
    let e = rejected("registration", "sometimes");
    assert_eq!(e.key, "auth.registration");
    assert_eq!(rejected("registration", "Closed").key, "auth.registration");
    let closed = AuthConfig::from_figment(&figment_with("registration", "closed")).expect("closed is valid");
    assert_eq!(closed.registration, Registration::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_keys_under_auth_are_rejected_naming_the_key() {
    let e = rejected("acces_ttl", 300);
    assert_eq!(e.key, "auth.acces_ttl");
    assert!(e.to_string().contains("auth.acces_ttl"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_secrets_are_rejected_naming_auth_secret() {
    let e = rejected("secret", "0123456789abcdef0123456789abcde");
    assert_eq!(e.key, "auth.secret");
    assert!(e.to_string().contains("auth.secret"), "{e}");
    assert_eq!(rejected("secret", "").key, "auth.secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placeholder_secrets_are_rejected_naming_auth_secret() {
    for placeholder in [
        "changeme",
        "your_secret_key",
        "secret",
        "changeme-changeme-changeme-changeme-1234",
        "YOUR-SECRET-KEY-YOUR-SECRET-KEY-YOUR-SECRET-KEY",
        "this_is_my_super_secret_jwt_key_1234567890",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ] {
        let e = rejected("secret", placeholder);
        assert_eq!(e.key, "auth.secret", "{placeholder}");
    }
    let e = rejected("secret", "changeme-changeme-changeme-changeme-1234");
    assert!(e.problem.contains("placeholder"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_random_secret_is_accepted() {
    let config = AuthConfig::from_figment(&figment_with("secret", GOOD_SECRET)).expect("a good secret");
    assert_eq!(config.secret, Some(Secret::new(GOOD_SECRET)));
    assert_eq!(config.secret.as_ref().map(Secret::expose), Some(GOOD_SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_debug_output() {
    let config = AuthConfig::from_figment(&figment_with("secret", GOOD_SECRET)).expect("a good secret");
    let debug = format!("{config:?}");
    assert!(!debug.contains(GOOD_SECRET), "{debug}");
    let pretty = format!("{config:#?}");
    assert!(!pretty.contains(GOOD_SECRET), "{pretty}");
    assert!(!format!("{:?}", Secret::new(GOOD_SECRET)).contains(GOOD_SECRET));

    // Nor in the error about a weak one.
    let weak = "changeme-changeme-changeme-changeme-1234";
    let e = rejected("secret", weak);
    assert!(!e.to_string().contains(weak) && !format!("{e:?}").contains(weak), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_configuration_stops_ignition() {
    let db = TestDb::migrated(Backend::Sqlite).await;
    for (key, value) in [
        ("auth.secret", json!("changeme")),
        ("auth.access_ttl", json!(0)),
        ("auth.registration", json!("sometimes")),
        ("auth.no_such_key", json!(1)),
    ] {
        let figment = test_figment(db.url()).merge((key, value.clone()));
        let error = match portcullis::rocket(figment).ignite().await {
            Ok(_) => panic!("{key} = {value} ignited"),
            Err(error) => error,
        };
        // Inspecting the error marks it handled (Rocket panics on dropping an unhandled one).
        match error.kind() {
            ErrorKind::FailedFairings(failed) => {
                let names: Vec<_> = failed.iter().map(|f| f.name).collect();
                assert_eq!(names, vec!["Auth state"], "{key} = {value}");
            }
            other => panic!("{key} = {value}: {other:?}"),
        }
    }
    // The same figment without a bad value ignites.
    let figment = test_figment(db.url()).merge(("auth.secret", GOOD_SECRET));
    assert!(portcullis::rocket(figment).ignite().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weak_key_encryption_key_is_rejected_naming_it() {
    assert_eq!(rejected("key_encryption_key", "too short").key, "auth.key_encryption_key");
    assert_eq!(
        rejected("key_encryption_key", "changeme-changeme-changeme-changeme-1234").key,
        "auth.key_encryption_key"
    );
    let config = AuthConfig::from_figment(&figment_with("key_encryption_key", GOOD_SECRET)).expect("a good KEK");
    assert!(!format!("{config:?}").contains(GOOD_SECRET), "the KEK stays out of Debug output");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_permissions_must_be_resource_colon_action() {
    for bad in ["reports", "Reports:read", "reports:", ":read", "reports:read:all", "reports read"] {
        let e = rejected("permissions", json!(["ok:fine", bad]));
        assert_eq!(e.key, "auth.permissions[1]", "{bad}");
    }
    let config =
        AuthConfig::from_figment(&figment_with("permissions", json!(["reports:read", "billing.v2:export-csv"])))
            .expect("valid application permissions");
    assert_eq!(config.permissions, ["reports:read", "billing.v2:export-csv"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_identifiers_must_be_absolute_uris_other_than_the_audience() {
    assert!(AuthConfig::from_figment(&Figment::new()).unwrap().resources.is_empty(), "none by default");
    for bad in ["reports", "/reports", "https://reports.example#frag", "https://reports example", "", "portcullis"] {
        let e = rejected("resources", json!(["https://ok.example", bad]));
        assert_eq!(e.key, "auth.resources[1]", "{bad:?}");
    }
    let config =
        AuthConfig::from_figment(&figment_with("resources", json!(["https://reports.example", "urn:example:billing"])))
            .expect("absolute URIs");
    assert_eq!(config.resources, ["https://reports.example", "urn:example:billing"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_name_of_the_per_account_and_address_threshold_is_still_read() {
    // `throttle_account_failures` was renamed `throttle_pair_failures` (it counts one account
    // from one address); configurations written for the old name keep working.
    let old = AuthConfig::from_figment(&figment_with("throttle_account_failures", 7)).expect("the old key is accepted");
    assert_eq!(old.throttle_pair_failures, 7);
    let new = AuthConfig::from_figment(&figment_with("throttle_pair_failures", 8)).expect("the new key is accepted");
    assert_eq!(new.throttle_pair_failures, 8);
}
