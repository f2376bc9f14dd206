//! The `guestlist` command: `serve` runs the server; the other commands administer a data
//! directory or talk to a running server over Graph, like the seed's PowerShell.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use guestlist::admin;
use guestlist::config::{ConfigurationError, KeyEncryptionConfig, ServeConfig, StoreConfig};

#[derive(Parser)]
#[command(
    name = "guestlist",
    version,
    about = "A self-hostable directory server for the Entra ID B2B guest lifecycle, speaking Microsoft Graph."
)]
struct Cli {
    /// How client commands reach a running server (connection.json and overrides, `--json`).
    #[command(flatten)]
    client: guestlist_client::cli::ClientArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (TLS on 127.0.0.1:8443 with a demo tenant by default).
    Serve(ServeConfig),
    /// Manage app registrations directly in a data directory or database.
    #[command(subcommand)]
    App(AppCommand),
    /// Show or change a tenant's settings directly in a data directory or database.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage the encryption of the token signing keys at rest.
    #[command(subcommand)]
    Keys(KeysCommand),
    #[command(flatten)]
    Client(guestlist_client::cli::ClientCommand),
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Print the tenant's settings (`--tenant` picks one; default: the first).
    Show {
        #[command(flatten)]
        store: StoreConfig,
    },
    /// Change the tenant's settings.
    Set {
        #[command(flatten)]
        store: StoreConfig,
        /// What reset redemption does to a guest's UPN: `followNewEmail` (the seed, default) or `keep` (Entra today).
        #[arg(long, value_name = "followNewEmail|keep")]
        upn_on_reset: Option<String>,
        /// Days a redeem link stays valid; `none` for never (Graph's behaviour, the default).
        #[arg(long, value_name = "DAYS|none")]
        invitation_lifetime_days: Option<String>,
        /// Throttle `/invitations` like Graph: `graph` (150 requests per 5 s), `REQUESTS/SECONDS`, or `off` (default).
        #[arg(long, value_name = "graph|REQUESTS/SECONDS|off")]
        invitation_throttle: Option<String>,
        /// Which domains may be invited: `any` (default), `allow:a.com,b.com` or `block:x.com` (one mode at a time).
        #[arg(long, value_name = "any|allow:DOMAINS|block:DOMAINS")]
        invitation_domains: Option<String>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Re-encrypt every signing key under a new key-encryption key, in one transaction.
    /// With the default `<data-dir>/key-encryption.key` the file is replaced; with
    /// GUESTLIST_KEY_ENCRYPTION_KEY[_FILE] give `--new-key-file` and then start every replica with it.
    RotateEncryptionKey {
        #[command(flatten)]
        store: StoreConfig,
        #[command(flatten)]
        current: KeyEncryptionConfig,
        /// Where the new key is: read if the file exists, else generated and written there (mode 0600).
        #[arg(long, value_name = "PATH")]
        new_key_file: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum AppCommand {
    /// Register an app with the given application permissions and print its credentials.
    Add {
        #[command(flatten)]
        store: StoreConfig,
        /// Display name of the app.
        #[arg(long)]
        name: String,
        /// An application permission, e.g. User.Invite.All (repeatable).
        #[arg(long = "permission", required = true)]
        permissions: Vec<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("GUESTLIST_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(config) => report(guestlist::http::server::run(config).await),
        // `--tenant` names the tenant (default: the first); `--json` prints {"tenantId", "clientId", "clientSecret", "permissions"}.
        Command::App(AppCommand::Add { store, name, permissions }) => {
            report(admin::add_app(store, name, permissions, cli.client.tenant.clone(), cli.client.json).await)
        }
        Command::Tenant(TenantCommand::Show { store }) => {
            report(admin::show_tenant(store, cli.client.tenant.clone(), cli.client.json).await)
        }
        Command::Tenant(TenantCommand::Set { store, upn_on_reset, invitation_lifetime_days, invitation_throttle, invitation_domains }) => {
            let changes = admin::TenantChanges { upn_on_reset, invitation_lifetime_days, invitation_throttle, invitation_domains };
            report(admin::set_tenant(store, cli.client.tenant.clone(), changes, cli.client.json).await)
        }
        Command::Keys(KeysCommand::RotateEncryptionKey { store, current, new_key_file }) => {
            report(admin::rotate_key_encryption_key(store, current, new_key_file, cli.client.json).await)
        }
        Command::Client(command) => guestlist_client::cli::run(&cli.client, command).await,
    }
}

/// Exit 0, 2 for the operator's configuration (as clap does for usage errors), else 1.
fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.downcast_ref::<ConfigurationError>().is_some() => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
