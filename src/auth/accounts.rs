//! Accounts: email and password rules, creation (shared by `/auth/register` and the CLI) and
//! the account callers are answered with.

use unicode_normalization::UnicodeNormalization;

use crate::db::{DbPool, Id};
use crate::error::{ApiError, ApiResult};
use crate::models::{NewUser, RoleStore, User, UserStore};

use crate::auth::guards::RequestOrigin;
use crate::auth::recovery::send_token_mail;
use crate::auth::Auth;
use crate::mail::MailKind;

/// The role every new account gets unless told otherwise.
pub const DEFAULT_ROLE: &str = "user";

/// An account as its callers see it (the HTTP shape is `routes::views::UserView`): the public
/// fields of its user row and its roles, never the password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: Id,
    pub email: String,
    pub roles: Vec<String>,
    pub disabled: bool,
    /// Whether the account logs in with a second factor: TOTP or a passkey.
    pub mfa: bool,
    /// Whether the address was proven by a mail link (or the account made by an operator).
    pub email_verified: bool,
    /// Unix seconds.
    pub created_at: i64,
}

impl Account {
    pub fn new(user: &User, roles: Vec<String>) -> Self {
        Account {
            id: user.id,
            email: user.email.clone(),
            roles,
            disabled: user.disabled,
            mfa: user.mfa_enabled || user.passkey_count > 0,
            email_verified: user.email_verified,
            created_at: user.created_at,
        }
    }
}

/// Whether `c` is invisible or changes the direction of text: zero-width characters, joiners,
/// bidirectional controls (Unicode UAX #9), U+FEFF and the other default-ignorable code points of
/// Unicode's `DerivedCoreProperties.txt`. An address holding one can display as another one.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF0}'..='\u{FFF8}' | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E0FFF}')
}

/// The one form of an email that is stored and looked up: trimmed, NFKC-normalised (Unicode
/// UAX #15: fullwidth and other compatibility look-alikes become the plain letters), then
/// lower-cased. Invisible and direction-changing characters ([`is_invisible`]) are refused, as
/// is anything that is not shaped like an address: 422 naming `email`. Login applies the same,
/// and answers a refused email like an unknown one.
pub fn normalize_email(email: &str) -> ApiResult<String> {
    let invalid = || ApiError::invalid_field("email: must be a valid email address");
    let email = email.trim().nfkc().collect::<String>().to_lowercase();
    if email.chars().any(is_invisible) {
        return Err(invalid());
    }
    // Control characters (NUL among them) and U+FFFD (what a lone surrogate becomes) never name
    // a mailbox; PostgreSQL could not even store a NUL.
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\u{FFFD}') {
        return Err(invalid());
    }
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    let labels_ok = domain.split('.').all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'));
    if local.is_empty() || local.len() > 64 || domain.contains('@') || !domain.contains('.') || !labels_ok {
        return Err(invalid());
    }
    Ok(email)
}

/// Passwords are 8 to 128 characters; 422 naming `field` otherwise.
pub fn check_password(field: &str, password: &str) -> ApiResult<()> {
    let length = password.chars().count();
    if length < 8 {
        return Err(ApiError::invalid_field(format!("{field}: must be at least 8 characters")));
    }
    if length > 128 {
        return Err(ApiError::invalid_field(format!("{field}: must be at most 128 characters")));
    }
    if crate::auth::common_passwords::is_common(password) {
        return Err(ApiError::invalid_field(format!(
            "{field}: is a commonly used password (found in public breach lists); choose another"
        )));
    }
    Ok(())
}

pub(crate) fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(e, diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _))
}

/// Who creates an account: an operator (its address counts as verified), or the person at
/// `POST /auth/register` (a verification mail goes out when mail is configured).
pub enum Creation<'a> {
    Operator,
    Registration(&'a RequestOrigin),
}

/// Creates an account with `roles` (the default role when empty): 422 for a bad email, password
/// or unknown role, 409 when the email is taken.
pub async fn create_user(
    auth: &Auth,
    pool: &DbPool,
    email: &str,
    password: &str,
    roles: &[String],
    creation: Creation<'_>,
) -> ApiResult<Account> {
    let email = normalize_email(email)?;
    check_password("password", password)?;
    let mut roles: Vec<String> = if roles.is_empty() { vec![DEFAULT_ROLE.into()] } else { roles.to_vec() };
    roles.sort();
    roles.dedup();
    let known = crate::db::with_conn!(pool.conn().await?, |c| c.existing_role_names(&roles).await)?;
    if let Some(unknown) = roles.iter().find(|r| !known.contains(r)) {
        return Err(ApiError::invalid_field(format!("roles: unknown role {unknown:?}")));
    }
    // No connection is held while hashing.
    let hash = auth.hasher.hash(password).await.map_err(ApiError::internal)?;
    let mut conn = pool.conn().await?;
    let now = auth.clock.now();
    let new = NewUser {
        id: Id::new(),
        email: &email,
        password_hash: &hash,
        disabled: false,
        created_at: now,
        updated_at: now,
        email_verified: matches!(creation, Creation::Operator),
    };
    let mail = match creation {
        Creation::Registration(client) if auth.mail.is_on() => Some(client.ip.as_deref()),
        _ => None,
    };
    let inserted = crate::db::write_tx!(&mut conn, |c| {
        c.insert_user(&new, &roles).await?;
        if let Some(ip) = mail {
            send_token_mail(c, &auth.mail, MailKind::Verify, new.id, &email, ip, now).await?;
        }
        Ok::<_, diesel::result::Error>(())
    });
    match inserted {
        Ok(()) => auth.mail.wake(),
        Err(e) if is_unique_violation(&e) => return Err(ApiError::conflict("email: already registered")),
        Err(e) => return Err(e.into()),
    }
    let user = User {
        id: new.id,
        email: email.clone(),
        password_hash: String::new(),
        disabled: false,
        created_at: now,
        updated_at: now,
        mfa_enabled: false,
        email_verified: new.email_verified,
        passkey_count: 0,
    };
    Ok(Account::new(&user, roles))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(normalize_email("  Alice@Example.COM ").unwrap(), "alice@example.com");
    }

    #[test]
    fn look_alikes_normalise_to_the_plain_address_and_invisible_characters_are_refused() {
        assert_eq!(
            normalize_email("\u{FF41}\u{FF44}\u{FF4D}\u{FF49}\u{FF4E}@example.com").unwrap(),
            "admin@example.com"
        );
        assert_eq!(normalize_email("ADMIN\u{FF20}EXAMPLE.COM").unwrap(), "admin@example.com");
        for bad in [
            "ad\u{200B}min@example.com",
            "admin@exa\u{200B}mple.com",
            "admin\u{202E}@example.com",
            "\u{FEFF}admin@example.com",
            "admin@example.com\u{2066}",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn malformed_emails_are_rejected() {
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "alice@example",
            "a b@example.com",
            "a@b@c.com",
            "a@.com",
            "a@example..com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn passwords_are_counted_in_characters() {
        assert!(check_password("password", "1234567").is_err());
        assert!(check_password("password", "1234-5678").is_ok());
        assert!(check_password("password", "12345678").is_err(), "common");
        assert!(check_password("password", &"é".repeat(128)).is_ok());
        assert!(check_password("password", &"é".repeat(129)).is_err());
    }
}
