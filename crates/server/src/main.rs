//! The `guestlist` command: `serve` runs the server; the other commands administer a data
//! directory or talk to a running server over Graph, like the seed's PowerShell.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use guestlist::config::{sqlite_path, ServeConfig, StoreConfig};
use guestlist::services::Services;
use guestlist_domain::permissions::AppPermission;

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
    #[command(flatten)]
    Client(guestlist_client::cli::ClientCommand),
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
            report(add_app(store, name, permissions, cli.client.tenant.clone(), cli.client.json).await)
        }
        Command::Client(command) => guestlist_client::cli::run(&cli.client, command).await,
    }
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn add_app(config: StoreConfig, name: String, permissions: Vec<String>, tenant: Option<String>, json: bool) -> anyhow::Result<()> {
    let permissions = permissions
        .iter()
        .map(|p| {
            AppPermission::parse(p)
                .ok_or_else(|| anyhow::anyhow!("unknown permission '{p}'; known: {}", AppPermission::ALL.map(|k| k.as_str()).join(", ")))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let store = guestlist_store::connect(config.database_url.as_deref(), Some(&sqlite_path(&config.data_dir)), false).await?;
    let services = Services::new(store.clone(), String::new());
    let tenant = match tenant {
        Some(key) => store.tenant(&key).await?.ok_or_else(|| anyhow::anyhow!("no tenant '{key}'"))?,
        None => {
            store.tenants().await?.into_iter().next().ok_or_else(|| anyhow::anyhow!("no tenant yet: start `guestlist serve` once first"))?
        }
    };
    let created = services.add_application(&tenant, &name, permissions.clone()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let names: Vec<&str> = permissions.iter().map(|p| p.as_str()).collect();
    if json {
        println!(
            "{}",
            serde_json::json!({"tenantId": tenant.id.to_string(), "clientId": created.app.app_id.to_string(), "clientSecret": created.client_secret, "permissions": names})
        );
    } else {
        println!(
            "Registered app '{name}' in {}\n  client id:     {}\n  client secret: {}\n  permissions:   {}",
            tenant.initial_domain,
            created.app.app_id,
            created.client_secret,
            names.join(", ")
        );
    }
    Ok(())
}
