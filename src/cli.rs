//! The `portcullis` command line: `serve` (the default), `migrate`, `user create`,
//! `client create`, `keys generate`, `keys rotate`.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::admin::client_settings::ClientFields;
use crate::auth::accounts::{create_user, Creation};
use crate::auth::Auth;
use crate::clock::Clock;
use crate::config::AuthConfig;
use crate::db::{run_migrations_for, DbPool, PoolSettings};

#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about = "Authentication and authorization service")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (applies pending migrations first). The default.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage service clients.
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// Manage signing keys (access tokens and ID tokens).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Check the mail configuration.
    Mail {
        #[command(subcommand)]
        command: MailCommand,
    },
}

#[derive(Debug, Subcommand)]
enum MailCommand {
    /// Send one message through the configured SMTP server and print what it answered.
    Test {
        #[arg(long)]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Write a new Ed25519 key pair (`<kid>.pem`, `<kid>.pub.pem`) and print its config entry.
    Generate {
        /// Key id; defaults to `ed25519-<unix time>`.
        #[arg(long)]
        kid: Option<String>,
        /// Directory for the key files.
        #[arg(long, default_value = "keys")]
        out_dir: std::path::PathBuf,
    },
    /// Make newly generated keys (kept in the database) the active ones: the Ed25519 access-token
    /// key (when access-token keys are generated) and the ID-token keys (RS256 and EdDSA). The
    /// previous keys keep verifying until every token they signed has expired.
    Rotate,
}

#[derive(Debug, Subcommand)]
enum ClientCommand {
    /// Create a client and print its `client_id` and, for a confidential client, its
    /// `client_secret` (shown only now).
    Create {
        #[arg(long)]
        name: String,
        /// A permission the client holds (repeatable).
        #[arg(long = "permission", value_name = "PERMISSION")]
        permissions: Vec<String>,
        /// `confidential` (the default: it gets a secret) or `public` (browser and native apps:
        /// no secret).
        #[arg(long = "type", value_name = "TYPE")]
        client_type: Option<String>,
        /// A redirect URI for the authorization-code grant (repeatable).
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        /// A `post_logout_redirect_uri` for RP-initiated logout (repeatable).
        #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
        post_logout_redirect_uris: Vec<String>,
        /// The ID tokens' algorithm: `RS256` (the default) or `EdDSA`.
        #[arg(long = "id-token-alg", value_name = "ALG")]
        id_token_alg: Option<String>,
        /// A grant the client may use (repeatable); the type's defaults when none is given.
        #[arg(long = "grant-type", value_name = "GRANT")]
        grant_types: Vec<String>,
        /// Users are not asked for consent (a client of the same operator).
        #[arg(long)]
        first_party: bool,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account, e.g. the first admin: `portcullis user create --email E --role admin`.
    Create {
        #[arg(long)]
        email: String,
        /// A role to grant (repeatable); `user` when none is given.
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// Parses the arguments and runs the command; the exit code is non-zero on any failure.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(),
        Command::Migrate => rocket::execute(migrate()),
        Command::User { command: UserCommand::Create { email, roles, password_stdin } } => {
            read_password(password_stdin).and_then(|password| rocket::execute(create(email, roles, password)))
        }
        Command::Keys { command: KeysCommand::Generate { kid, out_dir } } => generate_keys(kid, &out_dir),
        Command::Keys { command: KeysCommand::Rotate } => rocket::execute(rotate()),
        Command::Mail { command: MailCommand::Test { to } } => rocket::execute(async move {
            crate::mail::check::send_test(&crate::figment(), &to).await.map(|reply| println!("{reply}"))
        }),
        Command::Client {
            command:
                ClientCommand::Create {
                    name,
                    permissions,
                    client_type,
                    redirect_uris,
                    post_logout_redirect_uris,
                    id_token_alg,
                    grant_types,
                    first_party,
                },
        } => {
            let fields = ClientFields {
                name: Some(name),
                permissions: Some(permissions),
                client_type,
                redirect_uris: Some(redirect_uris),
                post_logout_redirect_uris: Some(post_logout_redirect_uris),
                id_token_signed_response_alg: id_token_alg,
                grant_types: (!grant_types.is_empty()).then_some(grant_types),
                first_party: Some(first_party),
            };
            rocket::execute(create_client(fields))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn settings() -> Result<(PoolSettings, AuthConfig), String> {
    let figment = crate::figment();
    let pool: PoolSettings = figment.extract_inner("databases.main").map_err(|e| format!("databases.main: {e}"))?;
    let auth = AuthConfig::from_figment(&figment).map_err(|e| e.to_string())?;
    Ok((pool, auth))
}

fn serve() -> Result<(), String> {
    // Validate first so a bad value is reported plainly, before Rocket starts logging.
    settings()?;
    rocket::execute(crate::ops::shutdown::serve(crate::rocket(crate::figment())))
}

async fn migrate() -> Result<(), String> {
    let (pool, _) = settings()?;
    let applied = run_migrations_for(&pool).await?;
    if applied.is_empty() {
        println!("database is up to date");
    }
    for version in applied {
        println!("applied {version}");
    }
    Ok(())
}

fn read_password(from_stdin: bool) -> Result<String, String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|e| format!("cannot read the password: {e}"))?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    if !std::io::stdin().is_terminal() {
        return Err("no terminal to prompt on: pass --password-stdin and pipe the password".into());
    }
    let first = rpassword::prompt_password("Password: ").map_err(|e| e.to_string())?;
    let again = rpassword::prompt_password("Repeat password: ").map_err(|e| e.to_string())?;
    if first != again {
        return Err("the passwords do not match".into());
    }
    Ok(first)
}

async fn create(email: String, roles: Vec<String>, password: String) -> Result<(), String> {
    let (settings, config) = settings()?;
    run_migrations_for(&settings).await?;
    let pool = DbPool::build(&settings).map_err(|e| e.to_string())?;
    let auth = Auth::build(config, Clock::new(), &pool).await?;
    let user = create_user(&auth, &pool, &email, &password, &roles, Creation::Operator)
        .await
        .map_err(|e| e.into_description().into_owned())?;
    println!("created user {} <{}> with roles {}", user.id, user.email, user.roles.join(", "));
    Ok(())
}

fn generate_keys(kid: Option<String>, dir: &std::path::Path) -> Result<(), String> {
    let kid = kid.unwrap_or_else(|| format!("ed25519-{}", Clock::new().now()));
    let (private, public) = crate::auth::keys::files::generate(dir, &kid)?;
    println!("wrote {private} (private, keep it secret) and {public}");
    println!("add it to the [default.auth] table of Rocket.toml; list older keys after it so their tokens stay valid:");
    println!("eddsa_keys = [{{ kid = \"{kid}\", private_key = \"{private}\" }}]");
    println!("active_kid = \"{kid}\"");
    Ok(())
}

async fn rotate() -> Result<(), String> {
    let (settings, config) = settings()?;
    run_migrations_for(&settings).await?;
    let rotated = rotate_keys(&settings, &config, Clock::new().now()).await?;
    match &rotated.access_token_kid {
        Some(kid) => {
            println!("the active signing key is now {kid}; the previous key verifies until its tokens have expired")
        }
        None => println!("access tokens are signed with auth.secret or auth.eddsa_keys: only the ID-token keys rotate"),
    }
    println!(
        "the active ID-token keys are now {}; the previous ones stay in the JWKS until their ID tokens have expired",
        rotated.id_token_kids.join(" and ")
    );
    println!("running instances pick up the new keys within auth.revocation_poll_ms");
    Ok(())
}

/// What `keys rotate` made active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// The new access-token key, when access-token keys are generated ones.
    pub access_token_kid: Option<String>,
    /// The new ID-token keys (RS256, EdDSA), which are always generated ones.
    pub id_token_kids: Vec<String>,
}

/// `keys rotate` on the database of `settings` at `now`: the generated access-token key (unless
/// `auth.secret` or `auth.eddsa_keys` sign access tokens) and the ID-token keys.
pub async fn rotate_keys(settings: &PoolSettings, config: &AuthConfig, now: i64) -> Result<Rotated, String> {
    let pool = DbPool::build(settings).map_err(|e| e.to_string())?;
    let at_rest = crate::auth::keys::sealing::prepare(config, &pool).await?;
    let generated = config.secret.is_none() && config.eddsa_keys.is_empty();
    let access_token_kid = match generated {
        true => Some(crate::auth::keys::signing::rotate(&pool, &at_rest, now).await?),
        false => None,
    };
    let id_token_kids = crate::auth::oidc::keys::rotate(&pool, &at_rest, now).await?;
    Ok(Rotated { access_token_kid, id_token_kids })
}

async fn create_client(fields: ClientFields) -> Result<(), String> {
    let (settings, config) = settings()?;
    run_migrations_for(&settings).await?;
    let pool = DbPool::build(&settings).map_err(|e| e.to_string())?;
    let auth = Auth::build(config, Clock::new(), &pool).await?;
    let created = crate::admin::clients::create_client_unchecked(&auth, &pool, &fields)
        .await
        .map_err(|e| e.into_description().into_owned())?;
    println!("client_id: {}", created.client.client_id);
    match created.client_secret {
        Some(secret) => println!("client_secret: {secret}"),
        None => println!("type: public (no secret; it identifies by its client_id alone)"),
    }
    Ok(())
}
