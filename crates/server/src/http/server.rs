//! `guestlist serve`: binds, prepares the store and the demo tenant, serves HTTP/1.1 and
//! HTTP/2 over TLS (or plain HTTP), writes connection.json, and shuts down on Ctrl-C/SIGTERM.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;

use super::client_address::{self, TrustedProxies};
use super::{router, AppState};
use crate::config::{sqlite_path, ServeConfig};
use crate::connection::{self, ConnectionInfo};
use crate::mail::worker::MailWorker;
use crate::mail::MailSettings;
use crate::services::hashing::HashLimiter;
use crate::services::Services;
use crate::tls;

/// A running server, for the binary and for tests that start it in-process.
pub struct RunningServer {
    pub address: SocketAddr,
    pub connection: ConnectionInfo,
    pub services: Services,
    /// Delivers the mail outbox; `None` without an SMTP URL.
    mail_worker: Option<MailWorker>,
    shutdown: axum_server::Handle,
    in_flight: InFlight,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// How long shutdown waits for requests already being served.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Counts requests being served, so shutdown can wait for exactly those: an idle keep-alive
/// connection (msgraph-sdk keeps HTTP/2 ones open) must not hold the process for the whole grace.
#[derive(Clone, Default)]
struct InFlight(Arc<std::sync::atomic::AtomicUsize>);

impl InFlight {
    fn count(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

async fn count_in_flight(
    axum::extract::State(in_flight): axum::extract::State<InFlight>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use std::sync::atomic::Ordering;
    in_flight.0.fetch_add(1, Ordering::SeqCst);
    // Decrements even if the handler's future is dropped.
    struct Done(InFlight);
    impl Drop for Done {
        fn drop(&mut self) {
            self.0 .0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let _done = Done(in_flight);
    next.run(request).await
}

impl RunningServer {
    /// Stops accepting, lets in-flight requests finish (up to a grace period), closes idle
    /// connections, and waits.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.graceful_shutdown(Some(SHUTDOWN_GRACE));
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        while self.in_flight.count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.shutdown.shutdown();
        let served = self.task.await.context("server task panicked")?;
        if let Some(worker) = self.mail_worker {
            worker.stop().await;
        }
        served
    }
}

pub async fn start(config: ServeConfig) -> anyhow::Result<RunningServer> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let public_url = config.public_url.as_deref().map(crate::config::validate_public_url).transpose()?;
    crate::secret_files::create_private_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    let (key_encryption_key, key_source) = crate::key_encryption::load(&config.key_encryption, &config.data_dir, true)?;
    let std_listener = std::net::TcpListener::bind(config.listen).with_context(|| format!("binding {}", config.listen))?;
    std_listener.set_nonblocking(true)?;
    let address = std_listener.local_addr()?;
    let scheme = if config.plain_http { "http" } else { "https" };
    let public_origin = public_url.unwrap_or_else(|| origin_for(scheme, address));

    let sqlite = sqlite_path(&config.data_dir);
    let store =
        guestlist_store::connect(config.database_url.as_deref(), Some(&sqlite), config.in_memory).await.context("opening the database")?;
    let mut services = Services::new(store, public_origin.clone());
    services.mail = MailSettings::from_config(&config.mail)?;
    services.hashing = HashLimiter::configured(config.limits.hash_workers, config.limits.hash_queue);
    services.keys = crate::services::tokens::KeyCache::new(key_encryption_key);
    services.prepare_signing_keys(&key_source.describe()).await.map_err(|e| match e {
        crate::services::tokens::SigningKeySetupError::WrongKey { .. } => {
            anyhow::Error::new(crate::config::ConfigurationError(e.to_string()))
        }
        other => anyhow::anyhow!("preparing the signing keys: {other}"),
    })?;
    let previous = connection::read(&config.data_dir);
    let known_secret = previous.as_ref().map(|p| (p.client_id.as_str(), p.client_secret.as_str()));
    let demo = services.ensure_demo_tenant(known_secret).await.map_err(|e| anyhow::anyhow!("preparing the demo tenant: {e}"))?;
    let cli_app = services.ensure_cli_app(&demo.tenant).await.map_err(|e| anyhow::anyhow!("registering the CLI's public client: {e}"))?;
    let admin = if config.no_demo_admin {
        None
    } else {
        let known_password = previous.as_ref().and_then(|p| p.admin_password.as_deref());
        Some(services.ensure_demo_admin(&demo, known_password).await.map_err(|e| anyhow::anyhow!("preparing the demo admin: {e}"))?)
    };

    let tls_files = match (&config.tls_cert, &config.tls_key, config.plain_http) {
        (_, _, true) => None,
        (Some(cert), Some(key), false) => Some(tls::TlsFiles { cert_chain: cert.clone(), private_key: key.clone(), ca_certificate: None }),
        _ => Some(tls::ensure_dev_certificates(&config.data_dir)?),
    };
    let connection = ConnectionInfo {
        tenant_id: demo.tenant.id.to_string(),
        tenant_domain: demo.tenant.initial_domain.clone(),
        graph_url: public_origin.clone(),
        authority_url: public_origin.clone(),
        client_id: demo.app.app_id.to_string(),
        client_secret: demo.client_secret.clone(),
        ca_certificate: tls_files.as_ref().and_then(|t| t.ca_certificate.as_ref()).map(|p: &PathBuf| p.display().to_string()),
        cli_client_id: Some(cli_app.app_id.to_string()),
        console_url: Some(format!("{public_origin}/console")),
        admin_user_principal_name: admin.as_ref().map(|a| a.user_principal_name.clone()),
        admin_password: admin.map(|a| a.password),
    };

    let in_flight = InFlight::default();
    let app = router(AppState { services: services.clone(), scheme })
        .layer(axum::middleware::from_fn_with_state(TrustedProxies::new(&config.limits.trusted_proxy), client_address::attach))
        .layer(axum::middleware::from_fn_with_state(in_flight.clone(), count_in_flight))
        // The client address feeds the per-address sign-in limit.
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let handle = axum_server::Handle::new();
    let task = match &tls_files {
        Some(files) => {
            let rustls = RustlsConfig::from_config(Arc::new(tls::server_config(files)?));
            let server = axum_server::from_tcp_rustls(std_listener, rustls).handle(handle.clone());
            tokio::spawn(async move { server.serve(app).await.context("serving") })
        }
        None => {
            let server = axum_server::from_tcp(std_listener).handle(handle.clone());
            tokio::spawn(async move { server.serve(app).await.context("serving") })
        }
    };
    // connection.json appears only once the socket accepts connections.
    handle.listening().await.context("the server did not start listening")?;
    connection::write(&config.data_dir, &connection).context("writing connection.json")?;
    let mail_worker = MailWorker::spawn(services.store.clone(), services.mail.clone());
    Ok(RunningServer { address, connection, services, mail_worker, shutdown: handle, in_flight, task })
}

/// Runs until Ctrl-C or SIGTERM.
pub async fn run(config: ServeConfig) -> anyhow::Result<()> {
    let data_dir = config.data_dir.clone();
    // Secrets are printed when they are new; afterwards connection.json (0600) holds them.
    let previous = connection::read(&data_dir);
    let engine = if config.database_url.is_some() {
        "PostgreSQL"
    } else if config.in_memory {
        "in-memory SQLite"
    } else {
        "SQLite"
    };
    let server = start(config).await?;
    let c = &server.connection;
    println!("guestlist is listening on {} ({engine})", c.graph_url);
    println!("  tenant:        {} ({})", c.tenant_domain, c.tenant_id);
    println!("  Graph:         {}/v1.0  and  {}/beta", c.graph_url, c.graph_url);
    println!("  authority:     {}/{}", c.authority_url, c.tenant_id);
    println!("  client id:     {}", c.client_id);
    let connection_path = connection::path_in(&data_dir);
    if previous.as_ref().is_some_and(|p| p.client_id == c.client_id && p.client_secret == c.client_secret) {
        println!("  client secret: unchanged, in {}", connection_path.display());
    } else {
        println!("  client secret: {}", c.client_secret);
    }
    if let Some(ca) = &c.ca_certificate {
        println!("  CA to trust:   {ca}");
    }
    if let (Some(console), Some(upn), Some(password)) = (&c.console_url, &c.admin_user_principal_name, &c.admin_password) {
        if previous.as_ref().and_then(|p| p.admin_password.as_deref()) == Some(password.as_str()) {
            println!("  admin console: {console}  (sign in as {upn}, password unchanged: adminPassword in connection.json)");
        } else {
            println!("  admin console: {console}  (sign in as {upn}, password {password})");
        }
    }
    println!("  connection:    {}", connection_path.display());
    if server.services.mail.is_configured() {
        println!("  mail:          delivered over SMTP");
    } else {
        println!("  mail:          off (no --smtp-url): inviteRedeemUrl is the only channel");
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.stop().await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

/// The origin for a bound address: wildcard addresses are reached through loopback.
fn origin_for(scheme: &str, address: SocketAddr) -> String {
    let ip = match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    match ip {
        IpAddr::V4(ip) => format!("{scheme}://{ip}:{}", address.port()),
        IpAddr::V6(ip) => format!("{scheme}://[{ip}]:{}", address.port()),
    }
}
