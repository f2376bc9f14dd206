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

    /// Don't create the demo tenant's Global Administrator (`admin@<domain>`, password in connection.json).
    #[arg(long, env = "GUESTLIST_NO_DEMO_ADMIN")]
    pub no_demo_admin: bool,

    #[command(flatten)]
    pub limits: LimitsConfig,

    #[command(flatten)]
    pub mail: MailConfig,
}

/// Who a request counts against, and how much password hashing runs at once.
#[derive(Debug, Clone, Default, Args)]
pub struct LimitsConfig {
    /// Proxies (IP addresses, comma-separated) whose `X-Forwarded-For` names the client address
    /// for the per-address sign-in limit; from any other peer the header is ignored.
    #[arg(long, env = "GUESTLIST_TRUSTED_PROXY", value_delimiter = ',')]
    pub trusted_proxy: Vec<std::net::IpAddr>,

    /// Argon2 hashes that run at once (default: the number of cores).
    #[arg(long, env = "GUESTLIST_HASH_WORKERS", hide = true)]
    pub hash_workers: Option<usize>,

    /// Argon2 hashes that may wait for a worker before more are refused as busy (default: 8 per worker).
    #[arg(long, env = "GUESTLIST_HASH_QUEUE", hide = true)]
    pub hash_queue: Option<usize>,
}

/// Mail delivery. Without `--smtp-url` no mail is sent: messages are recorded as `notConfigured`
/// and the `inviteRedeemUrl` of the API response is the only channel.
#[derive(Debug, Clone, Default, Args)]
pub struct MailConfig {
    /// SMTP server in lettre's URL format: `smtp://127.0.0.1:2525` (plain), `smtp://host:587?tls=required`
    /// (STARTTLS), `smtps://user:pass@host:465` (implicit TLS, with login).
    #[arg(long, env = "GUESTLIST_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// Sender of all mail, e.g. `Guest invitations <invites@example.com>`. Default: per tenant,
    /// `<tenant name> invitations <invites@<tenant initial domain>>`.
    #[arg(long, env = "GUESTLIST_MAIL_FROM")]
    pub mail_from: Option<String>,

    /// Wait after the first failed delivery, doubling after each further one (default 5000).
    #[arg(long, env = "GUESTLIST_MAIL_RETRY_FIRST_DELAY_MS", hide = true)]
    pub mail_retry_first_delay_ms: Option<u64>,

    /// The longest wait between delivery attempts (default 600000).
    #[arg(long, env = "GUESTLIST_MAIL_RETRY_MAX_DELAY_MS", hide = true)]
    pub mail_retry_max_delay_ms: Option<u64>,

    /// Delivery attempts before a message is given up as `failed` (default 40).
    #[arg(long, env = "GUESTLIST_MAIL_MAX_ATTEMPTS", hide = true)]
    pub mail_max_attempts: Option<u32>,

    /// How often the delivery worker looks for due messages (default 2000).
    #[arg(long, env = "GUESTLIST_MAIL_POLL_INTERVAL_MS", hide = true)]
    pub mail_poll_interval_ms: Option<u64>,
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
