//! `guestlist serve` configuration: flags, each with a `GUESTLIST_*` environment equivalent
//! (flags win). These names are a stable interface; a change gets a line in the README.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Where the SQLite database, the development certificates and connection.json live.
    #[arg(long, env = "GUESTLIST_DATA_DIR", default_value = "./guestlist-data")]
    pub data_dir: PathBuf,

    /// Address to listen on; port 0 picks a free port (connection.json then holds the real one).
    #[arg(long, env = "GUESTLIST_LISTEN", default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,

    /// A `postgres://` URL selects PostgreSQL instead of the embedded SQLite database.
    #[arg(long, env = "GUESTLIST_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Keep everything in memory: nothing survives a restart.
    #[arg(long, env = "GUESTLIST_IN_MEMORY")]
    pub in_memory: bool,

    /// Serve plain HTTP instead of TLS (MSAL and azure-identity refuse http authorities).
    #[arg(long, env = "GUESTLIST_PLAIN_HTTP")]
    pub plain_http: bool,

    /// PEM certificate chain to serve instead of the generated development certificate.
    #[arg(long, env = "GUESTLIST_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, env = "GUESTLIST_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// The origin clients use when it differs from the listen address (behind a proxy), e.g. `https://guests.example.com`.
    #[arg(long, env = "GUESTLIST_PUBLIC_URL")]
    pub public_url: Option<String>,
}

/// Where the store lives, shared by `serve` and the offline admin commands.
#[derive(Debug, Clone, Args)]
pub struct StoreConfig {
    #[arg(long, env = "GUESTLIST_DATA_DIR", default_value = "./guestlist-data")]
    pub data_dir: PathBuf,
    #[arg(long, env = "GUESTLIST_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

pub fn sqlite_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("guestlist.db")
}
