//! `guestlist-bench`: the benchmark's helpers, driven by `bench/run`.
//!
//! - `seed`: creates N guests through the store (`Store::write_user`, the server's own write path).
//! - `http-ceiling`: a bare handler on the server's HTTP stack (axum + axum-server + rustls with
//!   `guestlist::tls::server_config`, the same middleware layers), for the GET ceiling.
//! - `db-ceiling`: raw durable inserts with the store's settings and batching (SQLite: WAL,
//!   synchronous=FULL, one writer connection, `BEGIN IMMEDIATE`, one transaction per row), for
//!   the invitation ceiling.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

mod ceiling;
mod seed;

#[derive(Parser)]
#[command(name = "guestlist-bench", about = "guestlist benchmark helpers (seeding, ceilings); see BENCHMARKS.md")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create guests through the store until the tenant has `--users` users.
    Seed(seed::SeedArgs),
    /// Serve a bare JSON handler through the server's TLS + HTTP stack; prints the URL.
    HttpCeiling {
        /// Where the development certificates live (created if missing).
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
    /// Raw durable inserts with the store's settings; prints one JSON line.
    DbCeiling(ceiling::DbCeilingArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("GUESTLIST_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Seed(args) => seed::run(args).await,
        Command::HttpCeiling { data_dir, listen } => ceiling::serve_http(data_dir, listen).await,
        Command::DbCeiling(args) => ceiling::run_db(args).await,
    }
}

/// Latency percentiles over recorded durations, in milliseconds.
pub(crate) fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Prints progress to stderr about every `every` items.
pub(crate) struct Progress {
    done: AtomicU64,
    every: u64,
    total: u64,
    start: Instant,
}

impl Progress {
    pub(crate) fn new(total: u64, every: u64) -> Arc<Self> {
        Arc::new(Progress { done: AtomicU64::new(0), every: every.max(1), total, start: Instant::now() })
    }

    pub(crate) fn tick(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if done % self.every == 0 {
            let secs = self.start.elapsed().as_secs_f64();
            eprintln!("  {done}/{} ({:.0}/s, {secs:.0}s)", self.total, done as f64 / secs);
            let _ = std::io::stderr().flush();
        }
    }
}
