//! Faults with replicas (issue 9): two real `guestlist serve` processes on one PostgreSQL cluster
//! of this test's own (it is killed and restarted, so never the shared test server):
//!
//! - `kill_9_of_one_replica_under_load`: invitation and reset load over both replicas, one is
//!   killed with SIGKILL; the other keeps answering 201 and no acknowledged write is lost.
//! - `postgres_restart_under_load`: the cluster is stopped (`-m fast`) and started again under load;
//!   meanwhile requests get 503 with `Retry-After` (or succeed), never a 500 or a hang, and both
//!   replicas serve again by themselves.
//! - `redemption_races_reset_across_replicas`: a guest accepts on one replica while the other
//!   resets the guest; per ticket exactly one of them wins and the guest's state stays consistent.
//!
//! Each prints its figures and asserts correctness, never speed. It runs when
//! `GUESTLIST_FAULTS_PG_BIN` names PostgreSQL's server binaries (scripts/test.sh sets it) and skips
//! with a message otherwise:
//!
//! ```sh
//! GUESTLIST_FAULTS_PG_BIN=/usr/lib/postgresql/15/bin cargo test -p guestlist --test faults -- --nocapture --test-threads=1
//! ```

#[allow(dead_code, unused_imports, unused_macros)]
#[path = "api/harness.rs"]
mod harness;

#[allow(dead_code)]
#[path = "api/browser.rs"]
mod browser;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use guestlist::connection::ConnectionInfo;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Connection;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::browser::Browser;

/// No request may stay unanswered longer than this (the client gives up and the test fails).
const REQUEST_BOUND: Duration = Duration::from_secs(30);
/// How long a replica may take to serve again after PostgreSQL is back before the test fails.
const RECOVERY_BOUND: Duration = Duration::from_secs(60);
/// How long PostgreSQL stays down in `postgres_restart_under_load`.
const OUTAGE: Duration = Duration::from_secs(8);
/// Concurrent load clients, spread over both replicas.
const CLIENTS: usize = 6;
const REDIRECT: &str = "https://apps.example.net/welcome";

fn postgres_bin() -> Option<PathBuf> {
    match std::env::var("GUESTLIST_FAULTS_PG_BIN") {
        Ok(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => {
            eprintln!(
                "skipping the fault tests: GUESTLIST_FAULTS_PG_BIN does not name PostgreSQL's bin directory (scripts/test.sh sets it)"
            );
            None
        }
    }
}

// ---- a PostgreSQL cluster of the test's own --------------------------------------------------

struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

/// Runs a PostgreSQL tool as `postgres` when we are root (the server refuses to run as root).
fn postgres_tool(bin: &Path, tool: &str) -> Command {
    let path = bin.join(tool);
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(path);
        command
    } else {
        Command::new(path)
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

fn run(command: &mut Command, what: &str) {
    let output = command.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Cluster {
    fn create(bin: PathBuf) -> Cluster {
        let dir = tempfile::Builder::new().prefix("gl-faults-pg").tempdir().expect("temp dir");
        if is_root() {
            let mut chown = Command::new("chown");
            chown.arg("postgres:").arg(dir.path());
            run(&mut chown, "chown the cluster directory");
        }
        let mut initdb = postgres_tool(&bin, "initdb");
        initdb.arg("-D").arg(dir.path().join("data")).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ]);
        run(&mut initdb, "initdb");
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let cluster = Cluster { bin, dir, port };
        cluster.start();
        cluster
    }

    fn pg_ctl(&self) -> Command {
        let mut command = postgres_tool(&self.bin, "pg_ctl");
        command.arg("-D").arg(self.dir.path().join("data"));
        command
    }

    /// Starts the server and waits until it accepts connections. Commits stay synchronous (no
    /// acknowledged write may depend on luck); fsync is off, as no test here crashes the machine.
    fn start(&self) {
        let mut start = self.pg_ctl();
        start.arg("-l").arg(self.dir.path().join("server.log")).args(["-w", "-t", "60", "-o"]).arg(format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c full_page_writes=off -c max_connections=100",
            self.port,
            self.dir.path().display()
        ));
        run(start.arg("start"), "pg_ctl start");
    }

    /// A fast shutdown: open sessions are terminated, the server is gone when this returns.
    fn stop_fast(&self) {
        let mut stop = self.pg_ctl();
        run(stop.args(["-m", "fast", "-w", "stop"]), "pg_ctl stop");
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    async fn create_database(&self, name: &str) -> String {
        let mut admin = sqlx::PgConnection::connect(&self.url("postgres")).await.expect("connect to the fault cluster");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create the database");
        self.url(name)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut stop = self.pg_ctl();
        let _ = stop.args(["-m", "immediate", "-w", "stop"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

// ---- replicas: real server processes ---------------------------------------------------------

struct Replica {
    name: &'static str,
    child: Option<Child>,
    dir: tempfile::TempDir,
    connection: ConnectionInfo,
}

/// The key-encryption key every replica of one database is given (base64 of 32 bytes).
const SHARED_KEY_ENCRYPTION_KEY: &str = "Z3Vlc3RsaXN0LWZhdWx0LXRlc3QtcmVwbGljYS1rZXk=";

impl Replica {
    /// `guestlist serve` on its own data directory (certificates, connection.json) and the shared
    /// database; returns once it accepts connections.
    fn start(name: &'static str, database_url: &str, smtp_url: Option<&str>) -> Replica {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_guestlist"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--no-demo-admin", "--database-url", database_url, "--data-dir"])
            .arg(dir.path())
            .env("GUESTLIST_LOG", "warn")
            // Replicas share the key that seals the signing keys (README "Secrets at rest").
            .env("GUESTLIST_KEY_ENCRYPTION_KEY", SHARED_KEY_ENCRYPTION_KEY)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(smtp_url) = smtp_url {
            command.args(["--smtp-url", smtp_url]).env("GUESTLIST_MAIL_POLL_INTERVAL_MS", "100");
        }
        let mut child = command.spawn().expect("spawn guestlist serve");
        let deadline = Instant::now() + Duration::from_secs(60);
        let connection = loop {
            if let Some(info) = guestlist::connection::read(dir.path()) {
                break info;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("replica {name} exited ({status}): {}", std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default());
            }
            assert!(Instant::now() < deadline, "replica {name} did not write connection.json");
            std::thread::sleep(Duration::from_millis(50));
        };
        Replica { name, child: Some(child), dir, connection }
    }

    /// SIGKILL: no shutdown, no flushing, in-flight requests are cut.
    fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9");
            child.wait().expect("reap");
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// Two replicas on one database, an HTTP client that trusts both development CAs, and a token
/// per replica for an app of the test's own (each replica replaces the demo app's secret when
/// it starts on a fresh data directory, so the demo credentials of the first are stale).
struct Pair {
    replicas: Vec<Replica>,
    http: reqwest::Client,
    tokens: Vec<String>,
    database_url: String,
}

impl Pair {
    async fn start(database_url: String, smtp_url: Option<&str>) -> Pair {
        let replicas = tokio::task::block_in_place(|| {
            vec![Replica::start("A", &database_url, smtp_url), Replica::start("B", &database_url, smtp_url)]
        });
        let mut builder = reqwest::Client::builder().timeout(REQUEST_BOUND).redirect(reqwest::redirect::Policy::none());
        for replica in &replicas {
            let pem = std::fs::read(replica.connection.ca_certificate.as_ref().expect("TLS")).expect("CA file");
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("CA PEM"));
        }
        let http = builder.build().expect("client");
        let mut add_app = Command::new(env!("CARGO_BIN_EXE_guestlist"));
        add_app.args(["app", "add", "--database-url", &database_url, "--name", "fault test", "--json"]);
        for permission in ["User.Invite.All", "User.ReadWrite.All", "Directory.ReadWrite.All", "RoleManagement.ReadWrite.Directory"] {
            add_app.args(["--permission", permission]);
        }
        let output = tokio::task::block_in_place(|| add_app.output()).expect("guestlist app add");
        assert!(output.status.success(), "app add: {}", String::from_utf8_lossy(&output.stderr));
        let app: Value = serde_json::from_slice(&output.stdout).expect("app add --json");
        let (client_id, secret) = (app["clientId"].as_str().unwrap(), app["clientSecret"].as_str().unwrap());
        let mut tokens = vec![];
        for replica in &replicas {
            tokens.push(harness::app_token(&http, &replica.connection, client_id, secret).await);
        }
        Pair { replicas, http, tokens, database_url }
    }

    fn targets(&self) -> Arc<Vec<Target>> {
        Arc::new(
            self.replicas
                .iter()
                .zip(&self.tokens)
                .map(|(r, token)| Target { graph_url: r.connection.graph_url.clone(), token: token.clone() })
                .collect(),
        )
    }

    fn logs(&self) -> String {
        self.replicas.iter().map(|r| format!("--- replica {} ---\n{}", r.name, r.log())).collect()
    }
}

// ---- load ------------------------------------------------------------------------------------

struct Target {
    graph_url: String,
    token: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Invite,
    Reset,
}

#[derive(Debug, Clone)]
struct Outcome {
    replica: usize,
    operation: Operation,
    started: Instant,
    finished: Instant,
    /// `None`: no answer (connection refused or cut, or the client's bound ran out).
    status: Option<StatusCode>,
    retry_after: bool,
    invitation_id: Option<String>,
    user_id: Option<String>,
    failure: Option<String>,
}

impl Outcome {
    fn latency(&self) -> Duration {
        self.finished - self.started
    }
    fn acknowledged(&self) -> bool {
        self.status == Some(StatusCode::CREATED)
    }
}

/// Load on both replicas until `stop`: each client alternates replicas (skipping those marked
/// down) and sends invitations of new addresses, every fourth request a reset of a guest it
/// invited before. Every request's outcome lands in `outcomes` as it is answered.
struct Load {
    stop: Arc<AtomicBool>,
    down: Arc<Vec<AtomicBool>>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(http: &reqwest::Client, targets: Arc<Vec<Target>>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let down = Arc::new(targets.iter().map(|_| AtomicBool::new(false)).collect::<Vec<_>>());
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let clients = (0..CLIENTS)
            .map(|client| {
                let (http, targets, stop, down, outcomes) = (http.clone(), targets.clone(), stop.clone(), down.clone(), outcomes.clone());
                tokio::spawn(async move {
                    let mut invited: Vec<(String, String)> = vec![];
                    let mut n = 0usize;
                    while !stop.load(Ordering::SeqCst) {
                        let mut replica = (client + n) % targets.len();
                        if down[replica].load(Ordering::SeqCst) {
                            replica = (replica + 1) % targets.len();
                        }
                        let (operation, body) = match invited.get((n / 4) % invited.len().max(1)) {
                            Some((user_id, email)) if n % 4 == 3 => (
                                Operation::Reset,
                                json!({"invitedUserEmailAddress": email, "inviteRedirectUrl": REDIRECT,
                                       "invitedUser": {"id": user_id}, "resetRedemption": true}),
                            ),
                            _ => (
                                Operation::Invite,
                                json!({"invitedUserEmailAddress": format!("c{client}n{n}@load.example"), "inviteRedirectUrl": REDIRECT}),
                            ),
                        };
                        n += 1;
                        let target = &targets[replica];
                        let started = Instant::now();
                        let sent =
                            http.post(format!("{}/v1.0/invitations", target.graph_url)).bearer_auth(&target.token).json(&body).send().await;
                        let mut outcome = Outcome {
                            replica,
                            operation,
                            started,
                            finished: started,
                            status: None,
                            retry_after: false,
                            invitation_id: None,
                            user_id: None,
                            failure: None,
                        };
                        match sent {
                            Ok(response) => {
                                outcome.status = Some(response.status());
                                outcome.retry_after = response.headers().contains_key("retry-after");
                                match response.json::<Value>().await {
                                    Ok(answer) if outcome.acknowledged() => {
                                        outcome.invitation_id = answer["id"].as_str().map(str::to_string);
                                        outcome.user_id = answer["invitedUser"]["id"].as_str().map(str::to_string);
                                        if operation == Operation::Invite {
                                            if let (Some(id), Some(email)) = (&outcome.user_id, body["invitedUserEmailAddress"].as_str()) {
                                                invited.push((id.clone(), email.to_string()));
                                            }
                                        }
                                    }
                                    Ok(answer) => outcome.failure = Some(answer.to_string()),
                                    Err(e) => outcome.failure = Some(format!("body: {e}")),
                                }
                            }
                            Err(e) => outcome.failure = Some(format!("{e:?}")),
                        }
                        outcome.finished = Instant::now();
                        outcomes.lock().unwrap().push(outcome);
                    }
                })
            })
            .collect();
        Load { stop, down, outcomes, clients }
    }

    fn snapshot(&self) -> Vec<Outcome> {
        self.outcomes.lock().unwrap().clone()
    }

    async fn finish(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::SeqCst);
        for client in self.clients {
            client.await.expect("load client");
        }
        let outcomes = self.outcomes.lock().unwrap().clone();
        outcomes
    }
}

/// What the database holds of the acknowledged writes.
#[derive(Debug)]
struct Durability {
    acknowledged: usize,
    lost: usize,
    duplicated: usize,
}

/// Every acknowledged (201) invitation must be stored, with its user, exactly once; no load
/// address may have more than one user.
async fn durability(database_url: &str, outcomes: &[Outcome]) -> Durability {
    let mut db = sqlx::PgConnection::connect(database_url).await.expect("connect for the checks");
    let acknowledged: Vec<&Outcome> = outcomes.iter().filter(|o| o.acknowledged()).collect();
    let invitation_ids: Vec<String> =
        acknowledged.iter().map(|o| o.invitation_id.clone().expect("201 carries the invitation id")).collect();
    let user_ids: Vec<String> = acknowledged.iter().map(|o| o.user_id.clone().expect("201 carries the user id")).collect();
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT id FROM invitations WHERE id = ANY($1)").bind(&invitation_ids).fetch_all(&mut db).await.unwrap();
    let stored: HashSet<String> = stored.into_iter().collect();
    let users: Vec<String> =
        sqlx::query_scalar("SELECT id FROM users WHERE id = ANY($1)").bind(&user_ids).fetch_all(&mut db).await.unwrap();
    let users: HashSet<String> = users.into_iter().collect();
    let lost = acknowledged
        .iter()
        .filter(|o| !stored.contains(o.invitation_id.as_ref().unwrap()) || !users.contains(o.user_id.as_ref().unwrap()))
        .count();
    let duplicated: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT invited_email_lower FROM users WHERE invited_email_lower LIKE '%@load.example' \
         GROUP BY invited_email_lower HAVING count(*) > 1) AS twice",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    // The duplicate check means something only if the column it reads is filled.
    let load_users: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users WHERE invited_email_lower LIKE '%@load.example'").fetch_one(&mut db).await.unwrap();
    let invites = acknowledged.iter().filter(|o| o.operation == Operation::Invite).count();
    assert!(load_users as usize >= invites, "{load_users} load users for {invites} acknowledged invitations");
    Durability { acknowledged: acknowledged.len(), lost, duplicated: duplicated as usize }
}

fn count(outcomes: &[Outcome], keep: impl Fn(&Outcome) -> bool) -> usize {
    outcomes.iter().filter(|o| keep(o)).count()
}

fn is_other_5xx(outcome: &Outcome) -> bool {
    outcome.status.is_some_and(|s| s.is_server_error() && s != StatusCode::SERVICE_UNAVAILABLE)
}

// ---- a. kill -9 of one replica ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_one_replica_under_load() {
    let Some(bin) = postgres_bin() else { return };
    let cluster = Cluster::create(bin);
    let database_url = cluster.create_database("faults_kill").await;
    let mut pair = Pair::start(database_url, None).await;
    let load = Load::start(&pair.http, pair.targets());

    tokio::time::sleep(Duration::from_secs(2)).await;
    let killed_at = Instant::now();
    pair.replicas[0].kill_9();
    load.down[0].store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let outcomes = load.finish().await;

    let figures = durability(&pair.database_url, &outcomes).await;
    let on_b = count(&outcomes, |o| o.replica == 1);
    let b_acknowledged = count(&outcomes, |o| o.replica == 1 && o.acknowledged());
    let b_after_kill = count(&outcomes, |o| o.replica == 1 && o.acknowledged() && o.started > killed_at);
    let a_before_kill = count(&outcomes, |o| o.replica == 0 && o.acknowledged());
    let cut = count(&outcomes, |o| o.status.is_none());
    let b_max_latency = outcomes.iter().filter(|o| o.replica == 1).map(Outcome::latency).max().unwrap_or_default();
    println!(
        "faults/kill-9: requests {}, acknowledged {} (A before the kill {a_before_kill}, B {b_acknowledged}, B after the kill {b_after_kill}), \
         lost {}, duplicated {}, unanswered on the killed replica {cut}, B answered {b_acknowledged}/{on_b} with 201, B max latency {} ms",
        outcomes.len(),
        figures.acknowledged,
        figures.lost,
        figures.duplicated,
        b_max_latency.as_millis(),
    );

    assert!(a_before_kill > 0 && b_after_kill > 0, "load reached both replicas and B went on after the kill");
    assert_eq!(figures.lost, 0, "acknowledged writes lost");
    assert_eq!(figures.duplicated, 0, "addresses with two users");
    // B answers every request, with 201, throughout.
    let b_failures: Vec<&Outcome> = outcomes.iter().filter(|o| o.replica == 1 && !o.acknowledged()).collect();
    assert!(b_failures.is_empty(), "B failed requests: {b_failures:?}\n{}", pair.logs());
    // Only A, once killed, leaves requests unanswered; whatever it answered was a 201.
    for outcome in &outcomes {
        match outcome.status {
            None => assert!(outcome.replica == 0 && outcome.finished >= killed_at, "unanswered: {outcome:?}"),
            Some(status) => assert_eq!(status, StatusCode::CREATED, "{outcome:?}"),
        }
    }
    // B still reads what A acknowledged.
    let from_a = outcomes.iter().find(|o| o.replica == 0 && o.acknowledged()).unwrap();
    let b = &pair.replicas[1];
    let read = pair
        .http
        .get(format!("{}/v1.0/users/{}", b.connection.graph_url, from_a.user_id.as_ref().unwrap()))
        .bearer_auth(&pair.tokens[1])
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
}

// ---- b. PostgreSQL restarts under load -------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_under_load() {
    let Some(bin) = postgres_bin() else { return };
    let cluster = Cluster::create(bin);
    let database_url = cluster.create_database("faults_restart").await;
    let pair = Pair::start(database_url, None).await;
    let probes = OutageProbes::prepare(&pair).await;
    let load = Load::start(&pair.http, pair.targets());

    tokio::time::sleep(Duration::from_secs(2)).await;
    let stopped_at = Instant::now();
    tokio::task::block_in_place(|| cluster.stop_fast());
    probes.check_while_down(&pair).await;
    // Longer than the server's wait for a database connection (5 s), so the load gets 503s too.
    tokio::time::sleep(OUTAGE.saturating_sub(stopped_at.elapsed())).await;
    tokio::task::block_in_place(|| cluster.start());
    let back_at = Instant::now();

    // Recovery: the first 201 of each replica for a request sent after PostgreSQL was back.
    let mut recovered: BTreeMap<usize, Duration> = BTreeMap::new();
    while recovered.len() < pair.replicas.len() {
        for outcome in load.snapshot() {
            if outcome.acknowledged() && outcome.started >= back_at {
                let took = outcome.finished - back_at;
                recovered.entry(outcome.replica).and_modify(|t| *t = (*t).min(took)).or_insert(took);
            }
        }
        assert!(back_at.elapsed() < RECOVERY_BOUND, "replicas recovered: {recovered:?} of 2\n{}", pair.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let outcomes = load.finish().await;

    let figures = durability(&pair.database_url, &outcomes).await;
    let during = |o: &Outcome| o.finished >= stopped_at && o.started <= back_at;
    let unavailable = count(&outcomes, |o| o.status == Some(StatusCode::SERVICE_UNAVAILABLE));
    let unavailable_with_retry_after = count(&outcomes, |o| o.status == Some(StatusCode::SERVICE_UNAVAILABLE) && o.retry_after);
    let other_5xx = count(&outcomes, is_other_5xx);
    let unanswered = count(&outcomes, |o| o.status.is_none());
    let max_during = outcomes.iter().filter(|o| during(o)).map(Outcome::latency).max().unwrap_or_default();
    let recovery: Vec<String> = recovered.iter().map(|(r, t)| format!("{} {} ms", pair.replicas[*r].name, t.as_millis())).collect();
    println!(
        "faults/postgres-restart: requests {}, acknowledged {}, lost {}, duplicated {}, 503 {unavailable} \
         ({unavailable_with_retry_after} with Retry-After), other 5xx {other_5xx}, unanswered {unanswered}, \
         outage {} ms, max latency during the outage {} ms, recovery after PostgreSQL was back: {}",
        outcomes.len(),
        figures.acknowledged,
        figures.lost,
        figures.duplicated,
        (back_at - stopped_at).as_millis(),
        max_during.as_millis(),
        recovery.join(", "),
    );

    assert_eq!(figures.lost, 0, "acknowledged writes lost");
    assert_eq!(figures.duplicated, 0, "addresses with two users");
    let wrong: Vec<&Outcome> =
        outcomes.iter().filter(|o| !(o.acknowledged() || (o.status == Some(StatusCode::SERVICE_UNAVAILABLE) && o.retry_after))).collect();
    assert!(wrong.is_empty(), "answers other than 201 or 503 with Retry-After: {wrong:?}\n{}", pair.logs());
    assert!(max_during < REQUEST_BOUND, "a request waited {max_during:?}");
    assert!(unavailable > 0, "the outage was seen by the load (else this scenario proved nothing)");
}

/// Requests other than the Graph API's during the outage: a guest's redeem link, a signed-in
/// admin's console page, and the token endpoint; each must say "try again" with 503 and
/// `Retry-After`, as pages or as the endpoint's own error shape.
struct OutageProbes {
    redeem_link: String,
    console: Browser,
}

const MEMBER_PASSWORD: &str = "Corr3ct-Horse!";
const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";

impl OutageProbes {
    async fn prepare(pair: &Pair) -> OutageProbes {
        let invited = post_json(
            pair,
            0,
            "/v1.0/invitations",
            json!({"invitedUserEmailAddress": "probe@guest.example", "inviteRedirectUrl": REDIRECT}),
        )
        .await;
        let domain = &pair.replicas[1].connection.tenant_domain;
        let upn = format!("probe-admin@{domain}");
        let member = post_json(
            pair,
            1,
            "/v1.0/users",
            json!({"accountEnabled": true, "displayName": "Probe admin", "mailNickname": "probe-admin", "userPrincipalName": upn,
                   "passwordProfile": {"password": MEMBER_PASSWORD, "forceChangePasswordNextSignIn": false}}),
        )
        .await;
        post_json(
            pair,
            1,
            "/v1.0/roleManagement/directory/roleAssignments",
            json!({"principalId": member["id"], "roleDefinitionId": GLOBAL_ADMINISTRATOR, "directoryScopeId": "/"}),
        )
        .await;
        let mut console = Browser {
            http: pair.http.clone(),
            origin: pair.replicas[1].connection.graph_url.clone(),
            cookies: BTreeMap::new(),
            csrf_token: None,
        };
        assert_eq!(console.console_sign_in(&upn, MEMBER_PASSWORD).await.status, StatusCode::SEE_OTHER);
        assert_eq!(console.get("/console/guests").await.status, StatusCode::OK);
        OutageProbes { redeem_link: invited["inviteRedeemUrl"].as_str().unwrap().to_string(), console }
    }

    /// Runs while PostgreSQL is down (the caller starts it again only afterwards).
    async fn check_while_down(mut self, pair: &Pair) {
        let a = &pair.replicas[0].connection;
        let mut guest = Browser { http: pair.http.clone(), origin: a.graph_url.clone(), cookies: BTreeMap::new(), csrf_token: None };
        let token_request = pair.http.post(format!("{}/{}/oauth2/v2.0/token", a.authority_url, a.tenant_id)).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "00000000-0000-0000-0000-000000000000"),
            ("client_secret", "whatever"),
            ("scope", "https://graph.microsoft.com/.default"),
        ]);
        let (landing, console, token) =
            tokio::join!(guest.get(&self.redeem_link), self.console.get("/console/guests"), token_request.send());
        for (what, page) in [("redeem page", &landing), ("console page", &console)] {
            assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {}\n{}", page.body, pair.logs());
            assert!(page.headers.contains_key("retry-after"), "{what} without Retry-After");
            assert!(page.headers["content-type"].to_str().unwrap().starts_with("text/html"), "{what}");
            assert!(page.says("try again") || page.says("Try again"), "{what}: {}", page.body);
        }
        let token = token.expect("the token endpoint answers");
        assert_eq!(token.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(token.headers().contains_key("retry-after"));
        let body: Value = token.json().await.unwrap();
        assert_eq!(body["error"], "server_error", "{body}");
        println!("faults/postgres-restart: during the outage the redeem page, a console page and the token endpoint answered 503 with Retry-After");
    }
}

// ---- c. redemption on one replica races a reset on the other ---------------------------------

const ROUNDS: usize = 16;
const ACCEPT_DELAY_STEP: Duration = Duration::from_millis(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redemption_races_reset_across_replicas() {
    let Some(bin) = postgres_bin() else { return };
    let cluster = Cluster::create(bin);
    let database_url = cluster.create_database("faults_race").await;
    let mailbox = Mailbox::start().await;
    let pair = Pair::start(database_url, Some(&mailbox.url)).await;
    let (a, b) = (&pair.replicas[0], &pair.replicas[1]);
    let mut db = sqlx::PgConnection::connect(&pair.database_url).await.unwrap();
    let (mut accept_won, mut reset_won) = (0, 0);

    for round in 0..ROUNDS {
        let invited_address = format!("race{round}@guest.example");
        let moved_address = format!("race{round}@moved.example");
        let invited: Value =
            post_json(&pair, 0, "/v1.0/invitations", json!({"invitedUserEmailAddress": invited_address, "inviteRedirectUrl": REDIRECT}))
                .await;
        let user_id = invited["invitedUser"]["id"].as_str().unwrap().to_string();
        let first_invitation = invited["id"].as_str().unwrap().to_string();
        // The reset address must be one of the user's (otherMails), as Graph requires.
        let patched = pair
            .http
            .patch(format!("{}/v1.0/users/{user_id}", b.connection.graph_url))
            .bearer_auth(&pair.tokens[1])
            .json(&json!({"otherMails": [moved_address]}))
            .send()
            .await
            .unwrap();
        assert_eq!(patched.status(), StatusCode::NO_CONTENT);

        // The guest on A up to "Review permissions".
        let mut guest =
            Browser { http: pair.http.clone(), origin: a.connection.graph_url.clone(), cookies: BTreeMap::new(), csrf_token: None };
        let landing = guest.get(invited["inviteRedeemUrl"].as_str().unwrap()).await;
        assert_eq!(landing.status, StatusCode::OK, "{}", landing.body);
        let verify = guest.get(&landing.href_to("/redeem/verify?")).await;
        let sent = guest.post("/redeem/send-code", &verify.link_fields()).await;
        assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
        let code_page = guest.get(&sent.location()).await;
        let code = mailbox.passcode(&invited_address).await;
        let verified = guest.post("/redeem/code", &with(&code_page.link_fields(), &[("code", &code)])).await;
        assert_eq!(verified.status, StatusCode::SEE_OTHER, "{}", verified.body);
        let consent = guest.get(&verified.location()).await;
        assert_eq!(consent.status, StatusCode::OK, "{}", consent.body);

        // Accept on A and reset on B at the same moment.
        let accept_form = with(&consent.link_fields(), &[("decision", "accept")]);
        let reset_body = json!({"invitedUserEmailAddress": moved_address, "inviteRedirectUrl": REDIRECT,
                                "invitedUser": {"id": user_id}, "resetRedemption": true});
        let reset_request =
            pair.http.post(format!("{}/v1.0/invitations", b.connection.graph_url)).bearer_auth(&pair.tokens[1]).json(&reset_body);
        // The accept starts a little later each round, so the rounds sweep across the window in
        // which the two writes overlap (which one wins is reported, not asserted).
        let accept_delay = ACCEPT_DELAY_STEP * round as u32;
        let accept = async {
            tokio::time::sleep(accept_delay).await;
            guest.post("/redeem/consent", &accept_form).await
        };
        let (accepted, reset) = tokio::join!(accept, reset_request.send());
        let reset = reset.expect("the reset is answered");
        assert_eq!(reset.status(), StatusCode::CREATED, "reset on B\n{}", pair.logs());
        let reset: Value = reset.json().await.unwrap();
        let won = match accepted.status {
            StatusCode::SEE_OTHER => {
                assert_eq!(accepted.location(), REDIRECT);
                accept_won += 1;
                true
            }
            // The reset revoked the ticket first: the guest sees the link's explanation.
            StatusCode::GONE => {
                reset_won += 1;
                false
            }
            other => panic!("accept on A answered {other}: {}\n{}", accepted.body, pair.logs()),
        };

        // One winner per ticket, and the guest as the newest invitation says.
        let states: BTreeMap<String, String> =
            sqlx::query_as::<_, (String, String)>("SELECT id, state FROM invitations WHERE user_id = $1")
                .bind(&user_id)
                .fetch_all(&mut db)
                .await
                .unwrap()
                .into_iter()
                .collect();
        let expected_first = if won { "redeemed" } else { "revoked" };
        assert_eq!(states.len(), 2, "{states:?}");
        assert_eq!(states[&first_invitation], expected_first, "round {round}: accept answered {}", accepted.status);
        assert_eq!(states[reset["id"].as_str().unwrap()], "pending");
        let (state, mail): (Option<String>, Option<String>) =
            sqlx::query_as("SELECT external_user_state, mail_lower FROM users WHERE id = $1")
                .bind(&user_id)
                .fetch_one(&mut db)
                .await
                .unwrap();
        assert_eq!(state.as_deref(), Some("PendingAcceptance"), "round {round}");
        assert_eq!(mail.as_deref(), Some(moved_address.as_str()), "round {round}");
        let redemptions: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM audit_records WHERE activity_display_name = 'Redeem external user invite' AND target_resources LIKE $1",
        )
        .bind(format!("%{user_id}%"))
        .fetch_one(&mut db)
        .await
        .unwrap();
        assert_eq!(redemptions, i64::from(won), "round {round}: redemption audit entries");
    }
    println!(
        "faults/redeem-vs-reset: {ROUNDS} races of accept (A) against reset (B): accept won {accept_won}, reset won {reset_won}, \
         invariant violations 0"
    );
}

async fn post_json(pair: &Pair, replica: usize, path: &str, body: Value) -> Value {
    let response = pair
        .http
        .post(format!("{}{path}", pair.replicas[replica].connection.graph_url))
        .bearer_auth(&pair.tokens[replica])
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "POST {path}: {body}");
    body
}

fn with(fields: &[(String, String)], extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut all = fields.to_vec();
    all.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    all
}

// ---- a mail catcher for the one-time passcodes -----------------------------------------------

/// Every message received: its recipients and its raw text.
type Messages = Arc<Mutex<Vec<(Vec<String>, String)>>>;

/// A minimal SMTP server on loopback that keeps every message (both replicas deliver to it).
struct Mailbox {
    url: String,
    messages: Messages,
}

impl Mailbox {
    async fn start() -> Mailbox {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind SMTP");
        let url = format!("smtp://{}", listener.local_addr().unwrap());
        let messages = Arc::new(Mutex::new(Vec::new()));
        let store = messages.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let _ = smtp_session(socket, store).await;
                });
            }
        });
        Mailbox { url, messages }
    }

    /// The code of the one-time passcode mail to `address` (one per address in these tests).
    async fn passcode(&self, address: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let raws: Vec<String> = self
                .messages
                .lock()
                .unwrap()
                .iter()
                .filter(|(to, _)| to.iter().any(|r| r.eq_ignore_ascii_case(address)))
                .map(|(_, raw)| raw.clone())
                .collect();
            for raw in raws {
                let message = mail_parser::MessageParser::default().parse(raw.as_bytes()).expect("a MIME message");
                if message.subject().is_some_and(|s| s.contains("verification code")) {
                    let text = message.body_text(0).expect("a text part").into_owned();
                    return text.split(|c: char| !c.is_ascii_digit()).find(|run| run.len() == 8).expect("an 8-digit code").to_string();
                }
            }
            assert!(Instant::now() < deadline, "no passcode mail to {address}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn smtp_session(socket: tokio::net::TcpStream, store: Messages) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 faults-smtp ready\r\n").await?;
    let mut recipients = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        if command.starts_with("EHLO") {
            write.write_all(b"250-faults-smtp\r\n250 8BITMIME\r\n").await?;
        } else if command.starts_with("RCPT TO:") {
            let address = line.trim_end()[8..].trim().trim_start_matches('<').split('>').next().unwrap_or_default().to_string();
            recipients.push(address);
            write.write_all(b"250 ok\r\n").await?;
        } else if command == "DATA" {
            write.write_all(b"354 go ahead\r\n").await?;
            let mut raw = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                raw.push_str(line.strip_prefix('.').filter(|_| line.starts_with("..")).unwrap_or(&line));
            }
            store.lock().unwrap().push((std::mem::take(&mut recipients), raw));
            write.write_all(b"250 queued\r\n").await?;
        } else if command == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            write.write_all(b"250 ok\r\n").await?;
        }
    }
}
