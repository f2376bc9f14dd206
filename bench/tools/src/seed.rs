//! Seeding: guests that look like invited guests (mail, otherMails, proxyAddresses, identities,
//! `#EXT#` UPN), written one by one through `Store::write_user` from `--concurrency` tasks.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use chrono::Utc;
use guestlist::config::sqlite_path;
use guestlist::services::Services;
use guestlist_domain::upn::guest_upn;
use guestlist_domain::user::{ExternalUserState, ObjectIdentity, UserType, CREATION_TYPE_INVITATION};
use guestlist_domain::{EmailAddress, Tenant, User};
use guestlist_store::{Conflict, Store, StoreError, UserWrite};

use crate::Progress;

#[derive(Debug, Clone, clap::Args)]
pub struct SeedArgs {
    /// The data directory (SQLite file `guestlist.db` inside), as for `guestlist serve`.
    #[arg(long)]
    data_dir: PathBuf,
    /// A `postgres://` URL selects PostgreSQL.
    #[arg(long)]
    database_url: Option<String>,
    /// Total users the tenant should have; existing users count.
    #[arg(long)]
    users: u64,
    /// Concurrent writers (SQLite serializes them on its one writer connection).
    #[arg(long, default_value_t = 8)]
    concurrency: u64,
    /// Writes a sample of the created users (`id<TAB>mail<TAB>otherMail`, at most `--sample` lines) here.
    #[arg(long)]
    keys_out: Option<PathBuf>,
    #[arg(long, default_value_t = 10_000)]
    sample: u64,
}

/// User number `i`: one in two has accepted with a federated identity, every one has an
/// `otherMails` entry that is also a secondary proxy address.
pub fn guest(tenant: &Tenant, i: u64) -> anyhow::Result<User> {
    let mail = format!("guest{i}@partner{}.example", i % 997);
    let other = format!("guest{i}.home@mail{}.example", i % 113);
    let email = EmailAddress::parse(&mail).map_err(|e| anyhow::anyhow!("{e}"))?;
    let now = Utc::now();
    // What `invitation::new_guest` makes of an invitation (built from `User::new` so new request fields don't matter here).
    let upn = guest_upn(&email, &tenant.initial_domain, None);
    let mut user = User::new(tenant.id, upn, format!("Guest {i}"), UserType::Guest, now);
    user.mail = Some(email.as_str().to_string());
    user.proxy_addresses = vec![format!("SMTP:{}", email.as_str())];
    user.creation_type = Some(CREATION_TYPE_INVITATION.to_string());
    user.external_user_state = Some(ExternalUserState::PendingAcceptance);
    user.external_user_state_change_date_time = Some(now);
    user.invited_email = Some(email.as_str().to_string());
    user.given_name = Some("Guest".into());
    user.surname = Some(format!("Number {i}"));
    user.company_name = Some(format!("Partner {}", i % 997));
    user.other_mails = vec![other.clone()];
    user.proxy_addresses.push(format!("smtp:{other}"));
    if i % 2 == 1 {
        user.external_user_state = Some(ExternalUserState::Accepted);
        user.identities.push(ObjectIdentity {
            sign_in_type: "federated".into(),
            issuer: "ExternalAzureAD".into(),
            issuer_assigned_id: None,
        });
    }
    Ok(user)
}

pub async fn run(args: SeedArgs) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    std::fs::create_dir_all(&args.data_dir).with_context(|| format!("creating {}", args.data_dir.display()))?;
    let store = guestlist_store::connect(args.database_url.as_deref(), Some(&sqlite_path(&args.data_dir)), false).await?;
    let services = Services::new(store.clone(), String::new());
    let tenant = match store.tenants().await?.into_iter().next() {
        Some(tenant) => tenant,
        None => services.ensure_demo_tenant(None).await.map_err(|e| anyhow::anyhow!("creating the demo tenant: {e}"))?.tenant,
    };
    let existing = store.count_users(tenant.id, None).await?;
    let missing = args.users.saturating_sub(existing);
    eprintln!("seed: tenant {} has {existing} users; creating {missing}", tenant.initial_domain);
    let start = Instant::now();
    // Numbering starts after the users already there, so a re-run tops up instead of colliding.
    let next = Arc::new(AtomicU64::new(existing));
    let end = existing + missing;
    let step = (missing / args.sample.max(1)).max(1);
    let progress = Progress::new(missing, (missing / 20).max(1000));
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (store, tenant, next, progress) = (store.clone(), tenant.clone(), next.clone(), progress.clone());
        tasks.push(tokio::spawn(async move { writer(store, tenant, next, end, step, progress).await }));
    }
    let mut sample = Vec::new();
    for task in tasks {
        sample.extend(task.await.context("a seeding task panicked")??);
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!("seed: created {missing} users in {secs:.1}s ({:.0}/s)", missing as f64 / secs.max(1e-9));
    if let Some(path) = &args.keys_out {
        sample.sort();
        let mut file = std::io::BufWriter::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?);
        for (_, id, mail, other) in sample.iter().take(args.sample as usize) {
            writeln!(file, "{id}\t{mail}\t{other}")?;
        }
        file.flush()?;
    }
    println!("{}", serde_json::json!({"tenantId": tenant.id.to_string(), "existing": existing, "created": missing, "seconds": secs}));
    Ok(())
}

type Sampled = (u64, String, String, String);

async fn writer(
    store: Arc<dyn Store>,
    tenant: Tenant,
    next: Arc<AtomicU64>,
    end: u64,
    step: u64,
    progress: Arc<Progress>,
) -> anyhow::Result<Vec<Sampled>> {
    let mut sample = Vec::new();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= end {
            return Ok(sample);
        }
        let user = guest(&tenant, i)?;
        match store.write_user(&UserWrite::Create(user), &[]).await {
            Ok(stored) => {
                if i % step == 0 {
                    let mail = stored.mail.clone().unwrap_or_default();
                    sample.push((i, stored.id.to_string(), mail, stored.other_mails.first().cloned().unwrap_or_default()));
                }
            }
            // A partly seeded directory: the number is taken already.
            Err(StoreError::Conflict(Conflict::UserPrincipalName | Conflict::ProxyAddress)) => {}
            Err(error) => return Err(anyhow::anyhow!("writing user {i}: {error}")),
        }
        progress.tick();
    }
}
