//! The two ceilings the benchmark reports its figures against.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{middleware, Router};
use axum_server::tls_rustls::RustlsConfig;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tower_http::trace::TraceLayer;

use crate::percentile_ms;

/// About the size of a guest as `GET /users/{id}` returns it, built once.
fn user_sized_body() -> Bytes {
    let body = serde_json::json!({
        "@odata.context": "https://127.0.0.1/v1.0/$metadata#users/$entity",
        "id": "3f1c2a64-5b7e-4c1d-9a8e-2b6f0d4e7c19",
        "businessPhones": [], "displayName": "Guest 12345", "givenName": "Guest", "surname": "Number 12345",
        "jobTitle": null, "mail": "guest12345@partner381.example", "mobilePhone": null, "officeLocation": null,
        "preferredLanguage": null, "userPrincipalName": "guest12345_partner381.example#EXT#@contoso.onmicrosoft.com",
        "userType": "Guest", "creationType": "Invitation", "externalUserState": "PendingAcceptance",
        "otherMails": ["guest12345.home@mail28.example"],
        "proxyAddresses": ["SMTP:guest12345@partner381.example", "smtp:guest12345.home@mail28.example"],
        "accountEnabled": true, "createdDateTime": "2026-01-01T00:00:00Z", "companyName": "Partner 381",
        "identities": [{"signInType": "userPrincipalName", "issuer": "contoso.onmicrosoft.com",
            "issuerAssignedId": "guest12345_partner381.example#EXT#@contoso.onmicrosoft.com"}]
    });
    Bytes::from(serde_json::to_vec(&body).expect("static JSON"))
}

/// The bare handler: no token, no database, a prebuilt body. Routes mirror the Graph ones so
/// the same wrk scripts drive both.
pub async fn serve_http(data_dir: PathBuf, listen: SocketAddr) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    std::fs::create_dir_all(&data_dir)?;
    let files = guestlist::tls::ensure_dev_certificates(&data_dir)?;
    let config = guestlist::tls::server_config(&files)?;
    let listener = std::net::TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
    listener.set_nonblocking(true)?;
    let address = listener.local_addr()?;
    let body = user_sized_body();
    let get_body = body.clone();
    let post_body = body.clone();
    let app = Router::new()
        .route(
            "/ceiling",
            get(move || {
                let body = get_body.clone();
                async move { json(StatusCode::OK, body) }
            })
            .post(move |_request: Bytes| {
                let body = post_body.clone();
                async move { json(StatusCode::CREATED, body) }
            }),
        )
        // The same layers as `guestlist::http::router`.
        .layer(DefaultBodyLimit::max(guestlist::http::MAX_BODY_BYTES))
        .layer(middleware::from_fn(guestlist::http::error::graph_envelope))
        .layer(TraceLayer::new_for_http());
    let server = axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(Arc::new(config)));
    println!("listening on https://{address}");
    use std::io::Write;
    std::io::stdout().flush()?;
    server.serve(app.into_make_service()).await.context("serving")
}

fn json(status: StatusCode, body: Bytes) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[derive(Debug, Clone, clap::Args)]
pub struct DbCeilingArgs {
    /// A SQLite file to create (removed first), opened with the store's settings.
    #[arg(long, conflicts_with = "database_url")]
    sqlite: Option<PathBuf>,
    /// A `postgres://` URL; the table `bench_ceiling` is dropped and recreated there.
    #[arg(long)]
    database_url: Option<String>,
    /// How long to insert.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Stop after this many rows even if time is left.
    #[arg(long, default_value_t = 2_000_000)]
    max_rows: u64,
    /// Rows per transaction (the store commits one invitation per transaction: 1).
    #[arg(long, default_value_t = 1)]
    batch: u64,
    /// Concurrent writers (PostgreSQL; SQLite has one writer connection like the store).
    #[arg(long, default_value_t = 1)]
    concurrency: u64,
}

const CREATE_TABLE: &str = "CREATE TABLE bench_ceiling (
    id TEXT PRIMARY KEY NOT NULL, tenant_id TEXT NOT NULL, upn_lower TEXT NOT NULL, mail_lower TEXT,
    payload TEXT NOT NULL, version INTEGER NOT NULL)";
const CREATE_INDEXES: [&str; 2] = [
    "CREATE UNIQUE INDEX bench_ceiling_upn ON bench_ceiling (tenant_id, upn_lower)",
    "CREATE INDEX bench_ceiling_mail ON bench_ceiling (tenant_id, mail_lower)",
];
const INSERT: &str = "INSERT INTO bench_ceiling (id, tenant_id, upn_lower, mail_lower, payload, version) VALUES ($1, $2, $3, $4, $5, 1)";

/// A row about the size of a guest's `users` row (the JSON columns and the lookup columns).
fn row(n: u64, tenant: &str) -> (String, String, String, String, String) {
    let id = uuid::Uuid::new_v4().to_string();
    let mail = format!("ceiling{n}@partner{}.example", n % 997);
    let upn = format!("ceiling{n}_partner{}.example#ext#@contoso.onmicrosoft.com", n % 997);
    let payload = format!(
        r#"{{"displayName":"Ceiling {n}","otherMails":["ceiling{n}.home@mail.example"],"proxyAddresses":["SMTP:{mail}","smtp:ceiling{n}.home@mail.example"],"identities":[{{"signInType":"userPrincipalName","issuer":"contoso.onmicrosoft.com","issuerAssignedId":"{upn}"}}],"userType":"Guest","creationType":"Invitation","externalUserState":"PendingAcceptance","createdDateTime":"2026-01-01T00:00:00.000000Z","businessPhones":[]}}"#
    );
    (id, tenant.to_string(), upn, mail, payload)
}

struct Tally {
    rows: AtomicU64,
    stop: AtomicBool,
}

pub async fn run_db(args: DbCeilingArgs) -> anyhow::Result<()> {
    let tenant = uuid::Uuid::new_v4().to_string();
    let tally = Arc::new(Tally { rows: AtomicU64::new(0), stop: AtomicBool::new(false) });
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    let batch = args.batch.max(1);
    let start = Instant::now();
    let (engine, latencies) = if let Some(path) = &args.sqlite {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        // The store's settings (crates/store/src/sqlite.rs): WAL, synchronous=FULL, one writer, BEGIN IMMEDIATE.
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
        sqlx::query(CREATE_TABLE).execute(&pool).await?;
        for sql in CREATE_INDEXES {
            sqlx::query(sql).execute(&pool).await?;
        }
        let mut latencies = Vec::new();
        let mut n = 0u64;
        while Instant::now() < deadline && n < args.max_rows {
            let began = Instant::now();
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            for _ in 0..batch {
                let (id, tenant, upn, mail, payload) = row(n, &tenant);
                sqlx::query(INSERT).bind(id).bind(tenant).bind(upn).bind(mail).bind(payload).execute(&mut *tx).await?;
                n += 1;
            }
            tx.commit().await?;
            latencies.push(began.elapsed());
        }
        tally.rows.store(n, Ordering::Relaxed);
        pool.close().await;
        ("sqlite", latencies)
    } else if let Some(url) = &args.database_url {
        let pool = PgPoolOptions::new().max_connections(args.concurrency.max(1) as u32).connect(url).await?;
        sqlx::query("DROP TABLE IF EXISTS bench_ceiling").execute(&pool).await?;
        sqlx::query(CREATE_TABLE).execute(&pool).await?;
        for sql in CREATE_INDEXES {
            sqlx::query(sql).execute(&pool).await?;
        }
        let next = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..args.concurrency.max(1) {
            let (pool, tally, next, tenant, max_rows) = (pool.clone(), tally.clone(), next.clone(), tenant.clone(), args.max_rows);
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline && !tally.stop.load(Ordering::Relaxed) {
                    let began = Instant::now();
                    let mut tx = pool.begin().await?;
                    for _ in 0..batch {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        let (id, tenant, upn, mail, payload) = row(n, &tenant);
                        sqlx::query(INSERT).bind(id).bind(tenant).bind(upn).bind(mail).bind(payload).execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                    latencies.push(began.elapsed());
                    if tally.rows.fetch_add(batch, Ordering::Relaxed) + batch >= max_rows {
                        tally.stop.store(true, Ordering::Relaxed);
                    }
                }
                anyhow::Ok(latencies)
            }));
        }
        let mut latencies = Vec::new();
        for task in tasks {
            latencies.extend(task.await??);
        }
        sqlx::query("DROP TABLE IF EXISTS bench_ceiling").execute(&pool).await?;
        ("postgres", latencies)
    } else {
        anyhow::bail!("give --sqlite PATH or --database-url URL");
    };
    let seconds = start.elapsed().as_secs_f64();
    let mut latencies = latencies;
    latencies.sort();
    let rows = tally.rows.load(Ordering::Relaxed);
    println!(
        "{}",
        serde_json::json!({
            "engine": engine, "batch": batch, "concurrency": args.concurrency, "rows": rows, "seconds": seconds,
            "rows_per_s": rows as f64 / seconds, "commits_per_s": latencies.len() as f64 / seconds,
            "commit_p50_ms": percentile_ms(&latencies, 0.50), "commit_p99_ms": percentile_ms(&latencies, 0.99),
        })
    );
    Ok(())
}
