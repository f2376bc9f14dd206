use std::path::PathBuf;
use std::sync::OnceLock;

use guestlist::config::ServeConfig;
use guestlist::connection::ConnectionInfo;
use guestlist::http::server::{start, RunningServer};
use guestlist_domain::permissions::AppPermission;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Declares one async test per storage engine: `<name>::sqlite` and `<name>::postgres`.
macro_rules! both_engines {
    ($(async fn $name:ident($server:ident: TestServer) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                async fn case($server: $crate::harness::TestServer) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let server = $crate::harness::TestServer::start($crate::harness::Engine::Sqlite).await;
                    case(server).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let Some(server) = $crate::harness::TestServer::start_postgres().await else { return };
                    case(server).await;
                }
            }
        )*
    };
}
pub(crate) use both_engines;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

pub struct TestServer {
    pub running: Option<RunningServer>,
    pub connection: ConnectionInfo,
    pub data_dir: tempfile::TempDir,
    pub http: reqwest::Client,
    pub token: String,
    pub database_url: Option<String>,
}

/// The PostgreSQL server for the tests, or `None` (with a note) when none is configured.
pub fn postgres_base_url() -> Option<String> {
    static WARNED: OnceLock<()> = OnceLock::new();
    match std::env::var("GUESTLIST_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            WARNED.get_or_init(|| eprintln!("skipping PostgreSQL cases: GUESTLIST_TEST_DATABASE_URL is not set (scripts/test.sh sets it)"));
            None
        }
    }
}

/// A fresh, empty database on the test PostgreSQL server, so tests run in parallel.
pub async fn fresh_postgres_database(base: &str) -> String {
    use sqlx::Connection;
    let name = format!("gl_it_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(base).await.expect("connect to the test PostgreSQL server");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create a test database");
    let mut url = url::Url::parse(base).expect("GUESTLIST_TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

impl TestServer {
    pub async fn start(engine: Engine) -> TestServer {
        let database_url = match engine {
            Engine::Sqlite => None,
            Engine::Postgres => Some(fresh_postgres_database(&postgres_base_url().expect("PostgreSQL configured")).await),
        };
        Self::start_in(tempfile::tempdir().expect("temp dir"), database_url).await
    }

    pub async fn start_postgres() -> Option<TestServer> {
        postgres_base_url()?;
        Some(Self::start(Engine::Postgres).await)
    }

    pub fn config(data_dir: &std::path::Path, database_url: Option<String>) -> ServeConfig {
        ServeConfig {
            data_dir: data_dir.to_path_buf(),
            listen: "127.0.0.1:0".parse().expect("address"),
            database_url,
            in_memory: false,
            plain_http: false,
            tls_cert: None,
            tls_key: None,
            public_url: None,
            // Tests count users and audit entries from an empty tenant; the console tests make
            // their own admins (server::the_demo_admin_* covers the default).
            no_demo_admin: true,
            limits: Default::default(),
            mail: Default::default(),
            key_encryption: Default::default(),
        }
    }

    pub async fn start_in(data_dir: tempfile::TempDir, database_url: Option<String>) -> TestServer {
        Self::start_with(data_dir, database_url, |_| {}).await
    }

    /// Starts on this data directory with the test configuration as `adjust` leaves it.
    pub async fn start_with(
        data_dir: tempfile::TempDir,
        database_url: Option<String>,
        adjust: impl FnOnce(&mut ServeConfig),
    ) -> TestServer {
        let mut config = Self::config(data_dir.path(), database_url.clone());
        adjust(&mut config);
        let running = start(config).await.expect("server starts");
        let connection = running.connection.clone();
        let http = https_client(&connection);
        let token = app_token(&http, &connection, &connection.client_id, &connection.client_secret).await;
        TestServer { running: Some(running), connection, data_dir, http, token, database_url }
    }

    pub async fn stop(mut self) -> (tempfile::TempDir, Option<String>) {
        if let Some(running) = self.running.take() {
            running.stop().await.expect("clean shutdown");
        }
        (self.data_dir, self.database_url)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.connection.graph_url, path)
    }

    /// Registers an app with only these permissions and returns a token for it.
    pub async fn token_with(&self, permissions: &[AppPermission]) -> String {
        let running = self.running.as_ref().expect("running");
        let tenant = running.services.store.tenant(&self.connection.tenant_id).await.unwrap().unwrap();
        let created = running.services.add_application(&tenant, "limited test app", permissions.to_vec()).await.unwrap();
        app_token(&self.http, &self.connection, &created.app.app_id.to_string(), &created.client_secret).await
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call_as(&self.token, method, path, body).await
    }

    pub async fn call_as(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request is answered");
        let status = response.status();
        let text = response.text().await.expect("body");
        let value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(body)).await
    }

    /// Invites `email` and returns the 201 body.
    pub async fn invite(&self, email: &str) -> Value {
        let (status, body) = self
            .post("/v1.0/invitations", json!({"invitedUserEmailAddress": email, "inviteRedirectUrl": "https://myapps.microsoft.com"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    pub async fn user(&self, id: &str, select: &str) -> Value {
        let (status, body) = self.get(&format!("/v1.0/users/{id}?$select={select}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub async fn user_count(&self) -> usize {
        let mut count = 0;
        let mut next = Some(self.url("/v1.0/users?$top=999&$select=id"));
        while let Some(url) = next {
            let response = self.http.get(&url).bearer_auth(&self.token).send().await.unwrap();
            let body: Value = response.json().await.unwrap();
            count += body["value"].as_array().map(Vec::len).unwrap_or(0);
            next = body["@odata.nextLink"].as_str().map(str::to_string);
        }
        count
    }

    pub fn services(&self) -> &guestlist::services::Services {
        &self.running.as_ref().expect("running").services
    }
}

pub fn https_client(connection: &ConnectionInfo) -> reqwest::Client {
    let ca = std::fs::read(connection.ca_certificate.as_ref().expect("TLS by default")).expect("CA file");
    reqwest::Client::builder().add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA PEM")).build().expect("client")
}

pub async fn app_token(http: &reqwest::Client, connection: &ConnectionInfo, client_id: &str, secret: &str) -> String {
    let response = http
        .post(format!("{}/{}/oauth2/v2.0/token", connection.authority_url, connection.tenant_id))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .expect("token request");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("token JSON");
    body["access_token"].as_str().expect("access_token").to_string()
}

/// The schema file shipped beside the project (`../shared`), for conformance checks.
pub fn shared_dir() -> PathBuf {
    std::env::var("GUESTLIST_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

/// Asserts a Graph error body: code, message fragment, and a well-formed innerError.
pub fn assert_graph_error(body: &Value, code: &str, message_fragment: &str) {
    let error = &body["error"];
    assert_eq!(error["code"], code, "{body}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains(message_fragment), "message {message:?} lacks {message_fragment:?}");
    let date = error["innerError"]["date"].as_str().expect("innerError.date");
    assert!(chrono::NaiveDateTime::parse_from_str(date, "%Y-%m-%dT%H:%M:%S").is_ok(), "date {date}");
    assert!(uuid::Uuid::parse_str(error["innerError"]["request-id"].as_str().expect("request-id")).is_ok());
    assert!(error["innerError"]["client-request-id"].is_string());
}
