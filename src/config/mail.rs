//! The `[mail]` table: the SMTP server, the sender address, where mail links lead, token
//! lifetimes, the per-address limits and the retries (docs/mail.md). Without `smtp_url` mail is
//! off and the mail endpoints answer 503. Every error names its key, and stops start-up.

use std::net::IpAddr;

use rocket::figment::Figment;
use serde::Deserialize;
use url::Url;

use super::{problem, ConfigError, Secret};

/// How `smtp://` treats TLS: STARTTLS is required (unless the host is a loopback address, where
/// it is used when offered), or `none` turns it off. `smtps://` is always implicit TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MailTls {
    #[default]
    Starttls,
    None,
}

/// The `[mail]` table as written (durations in seconds).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    /// `smtp://host:port` or `smtps://host:port`, optionally with `user:password@`.
    pub smtp_url: Option<Secret>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub tls: MailTls,
    /// A PEM certificate to trust besides the system's (a private relay).
    pub tls_ca_file: Option<String>,
    pub from: Option<String>,
    pub link_base: Option<String>,
    pub reset_ttl: u64,
    pub verify_ttl: u64,
    pub per_address_per_hour: u32,
    pub per_client_address_per_hour: u32,
    pub max_attempts: u32,
    /// How long one SMTP command may take before the try counts as a connection failure.
    pub timeout: u64,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            smtp_url: None,
            username: None,
            password: None,
            tls: MailTls::Starttls,
            tls_ca_file: None,
            from: None,
            link_base: None,
            reset_ttl: 900,
            verify_ttl: 86_400,
            per_address_per_hour: 3,
            per_client_address_per_hour: 20,
            max_attempts: 12,
            timeout: 10,
        }
    }
}

/// The SMTP server, checked.
#[derive(Clone)]
pub struct SmtpServer {
    pub host: String,
    pub port: u16,
    /// `smtps://`: TLS from the first byte.
    pub implicit_tls: bool,
    /// STARTTLS must succeed (else it is used when offered, or never with `tls = "none"`).
    pub starttls_required: bool,
    pub tls_off: bool,
    pub credentials: Option<(String, Secret)>,
    /// The contents of `tls_ca_file`.
    pub extra_root_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpServer").field("host", &self.host).field("port", &self.port).finish_non_exhaustive()
    }
}

/// Mail settings after validation.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// `None`: mail is off.
    pub smtp: Option<SmtpServer>,
    pub from: String,
    /// Links are `<link_base>/<page>?token=...`, without a trailing slash.
    pub link_base: String,
    pub config: MailConfig,
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn smtp_server(config: &MailConfig, url: &str) -> Result<SmtpServer, String> {
    let parsed = Url::parse(url).map_err(|_| "must be smtp://host:port or smtps://host:port".to_string())?;
    let implicit_tls = match parsed.scheme() {
        "smtps" => true,
        "smtp" => false,
        _ => return Err("must start with smtp:// (STARTTLS) or smtps:// (implicit TLS)".into()),
    };
    let host = parsed.host_str().filter(|h| !h.is_empty()).ok_or("names no host")?.to_owned();
    if !parsed.path().trim_matches('/').is_empty() || parsed.query().is_some() || parsed.fragment().is_some() {
        return Err("must be only scheme, credentials, host and port".into());
    }
    let port = parsed.port().unwrap_or(if implicit_tls { 465 } else { 587 });
    let decode = |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
    let from_url = (!parsed.username().is_empty()).then(|| {
        let user = decode(parsed.username()).unwrap_or_default();
        (user, Secret::new(parsed.password().and_then(decode).unwrap_or_default()))
    });
    let from_keys = config.username.clone().map(|u| (u, config.password.clone().unwrap_or_else(|| Secret::new(""))));
    let loopback = is_loopback(&host);
    Ok(SmtpServer {
        implicit_tls,
        starttls_required: !implicit_tls && config.tls == MailTls::Starttls && !loopback,
        tls_off: !implicit_tls && config.tls == MailTls::None,
        host,
        port,
        credentials: from_url.or(from_keys),
        extra_root_pem: None,
    })
}

impl MailSettings {
    /// Extracts `mail` from the figment and checks it; `issuer` gives the defaults of `from` and
    /// `link_base`.
    pub fn from_figment(figment: &Figment, issuer: &str) -> Result<MailSettings, ConfigError> {
        let config: MailConfig = match figment.find_value("mail") {
            Err(_) => MailConfig::default(),
            Ok(_) => figment.focus("mail").extract().map_err(|e| {
                let key = std::iter::once("mail".to_string()).chain(e.path.iter().cloned());
                problem(&key.collect::<Vec<_>>().join("."), e.kind.to_string())
            })?,
        };
        let smtp = match &config.smtp_url {
            None => None,
            Some(url) => {
                let mut server = smtp_server(&config, url.expose()).map_err(|e| problem("mail.smtp_url", e))?;
                if let Some(path) = &config.tls_ca_file {
                    let pem = std::fs::read(path).map_err(|e| problem("mail.tls_ca_file", format!("{path}: {e}")))?;
                    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                        return Err(problem("mail.tls_ca_file", format!("{path} holds no PEM certificate")));
                    }
                    server.extra_root_pem = Some(pem);
                }
                Some(server)
            }
        };
        let from = config.from.clone().unwrap_or_else(|| format!("no-reply@{}", super::issuer::host(issuer)));
        if from.parse::<lettre::message::Mailbox>().is_err() || from.chars().any(char::is_control) {
            return Err(problem("mail.from", format!("{from:?} is not a mail address")));
        }
        let link_base = config.link_base.clone().unwrap_or_else(|| issuer.to_owned());
        match Url::parse(&link_base) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.query().is_none() => {}
            _ => return Err(problem("mail.link_base", "must be an http(s) URL without query")),
        }
        let nonzero = [
            ("mail.reset_ttl", config.reset_ttl),
            ("mail.verify_ttl", config.verify_ttl),
            ("mail.max_attempts", config.max_attempts.into()),
            ("mail.timeout", config.timeout),
        ];
        if let Some((key, _)) = nonzero.iter().find(|(_, v)| *v == 0) {
            return Err(problem(key, "must be at least 1"));
        }
        let link_base = link_base.trim_end_matches('/').to_owned();
        Ok(MailSettings { smtp, from, link_base, config })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(url: &str) -> Result<SmtpServer, String> {
        smtp_server(&MailConfig::default(), url)
    }

    #[test]
    fn smtp_urls_choose_tls_by_scheme_and_host() {
        let relay = server("smtp://user:p%40ss@relay.example.com:587").unwrap();
        assert!(relay.starttls_required && !relay.implicit_tls);
        assert_eq!(relay.credentials.as_ref().map(|(u, p)| (u.as_str(), p.expose())), Some(("user", "p@ss")));
        let local = server("smtp://127.0.0.1:2525").unwrap();
        assert!(!local.starttls_required && !local.tls_off);
        let wrapped = server("smtps://relay.example.com").unwrap();
        assert!(wrapped.implicit_tls && wrapped.port == 465);
        for bad in ["http://relay.example.com", "smtp://", "relay.example.com:25", "smtp://h:25/path"] {
            assert!(server(bad).is_err(), "{bad} was accepted");
        }
    }
}
