//! The `guestlist` binary's client and admin commands against a real server.

use std::process::{Command, Output};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{Engine, TestServer};

async fn guestlist(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_guestlist")).args(&args).env_remove("GUESTLIST_CONNECTION").output().expect("run guestlist")
    })
    .await
    .unwrap()
}

fn args(server: &TestServer, rest: &[&str]) -> Vec<String> {
    let connection = server.data_dir.path().join("connection.json").display().to_string();
    let mut all = vec!["--connection".to_string(), connection];
    all.extend(rest.iter().map(|s| s.to_string()));
    all
}

fn stdout_json(output: &Output) -> Value {
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_invites_reads_lists_and_resets_like_the_seeds_powershell() {
    let server = TestServer::start(Engine::Sqlite).await;
    let invited =
        stdout_json(&guestlist(args(&server, &["invite", "--email", "uma@example.com", "--display-name", "Uma", "--json"])).await);
    let id = invited["invitedUser"]["id"].as_str().unwrap().to_string();
    assert_eq!(invited["status"], "PendingAcceptance");

    let readable = guestlist(args(&server, &["invite", "--email", "vic@example.com"])).await;
    assert!(readable.status.success());
    let text = String::from_utf8_lossy(&readable.stdout);
    assert!(text.contains("vic_example.com#EXT#@contoso.onmicrosoft.com") && text.contains("redeem URL"), "{text}");

    let by_upn = stdout_json(&guestlist(args(&server, &["user", "get", "uma_example.com#EXT#@contoso.onmicrosoft.com", "--json"])).await);
    assert_eq!(by_upn["id"], id.as_str());
    assert_eq!(by_upn["externalUserState"], "PendingAcceptance");

    let listed = stdout_json(&guestlist(args(&server, &["user", "list", "--filter", "startsWith(mail,'uma')", "--json"])).await);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());

    let (status, _) = server.patch(&format!("/v1.0/users/{id}"), json!({"otherMails": ["uma@newco.example"]})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let reset = stdout_json(
        &guestlist(args(
            &server,
            &["reset-redemption", "--user", "uma_example.com#EXT#@contoso.onmicrosoft.com", "--email", "uma@newco.example", "--json"],
        ))
        .await,
    );
    assert_eq!(reset["resetRedemption"], true);
    assert_eq!(reset["invitedUser"]["id"], id.as_str());
    assert_eq!(server.user(&id, "mail").await["mail"], "uma@newco.example");

    // A refusal: exit code 1 and Graph's error as JSON on stderr; nothing on stdout.
    let refused = guestlist(args(&server, &["reset-redemption", "--user", &id, "--email", "nobody@else.example", "--json"])).await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(refused.stdout.is_empty());
    let error: Value = serde_json::from_slice(&refused.stderr).unwrap();
    assert_eq!(error["error"]["code"], "BadRequest");
    assert_eq!(error["error"]["status"], 400);
}

#[tokio::test]
async fn cli_without_a_connection_file_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json").display().to_string();
    let output = guestlist(vec!["--connection".into(), missing.clone(), "user".into(), "list".into()]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains(&missing));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_add_registers_a_limited_app_on_a_running_servers_data_dir() {
    let server = TestServer::start(Engine::Sqlite).await;
    let data_dir = server.data_dir.path().display().to_string();
    let output = guestlist(vec![
        "app".into(),
        "add".into(),
        "--data-dir".into(),
        data_dir,
        "--name".into(),
        "inviter".into(),
        "--permission".into(),
        "User.Invite.All".into(),
        "--json".into(),
    ])
    .await;
    let app = stdout_json(&output);
    assert_eq!(app["tenantId"], server.connection.tenant_id.as_str());
    assert_eq!(app["permissions"], json!(["User.Invite.All"]));
    let token = crate::harness::app_token(
        &server.http,
        &server.connection,
        app["clientId"].as_str().unwrap(),
        app["clientSecret"].as_str().unwrap(),
    )
    .await;
    let (status, _) = server
        .call_as(
            &token,
            reqwest::Method::POST,
            "/v1.0/invitations",
            Some(json!({"invitedUserEmailAddress": "w@example.com", "inviteRedirectUrl": "https://x.example"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = server.call_as(&token, reqwest::Method::GET, "/v1.0/users", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let bad = guestlist(vec![
        "app".into(),
        "add".into(),
        "--data-dir".into(),
        server.data_dir.path().display().to_string(),
        "--name".into(),
        "x".into(),
        "--permission".into(),
        "Mail.Send".into(),
    ])
    .await;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown permission"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_set_switches_the_upn_rule_of_a_running_server() {
    let server = TestServer::start(Engine::Sqlite).await;
    let data_dir = server.data_dir.path().display().to_string();
    let set = |value: &str| {
        vec!["tenant".into(), "set".into(), "--data-dir".into(), data_dir.clone(), "--upn-on-reset".into(), value.into(), "--json".into()]
    };
    let shown = stdout_json(&guestlist(set("keep")).await);
    assert_eq!(shown["upnOnReset"], "keep");
    assert_eq!(shown["id"], server.connection.tenant_id.as_str());

    let id = server.invite("xena@example.com").await["invitedUser"]["id"].as_str().unwrap().to_string();
    let (status, _) = server.patch(&format!("/v1.0/users/{id}"), json!({"otherMails": ["xena@newco.example"]})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let reset = json!({"invitedUserEmailAddress": "xena@newco.example", "inviteRedirectUrl": "https://x.example", "invitedUser": {"id": id}, "resetRedemption": true});
    let (status, body) = server.post("/v1.0/invitations", reset.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["invitedUser"]["userPrincipalName"], "xena_example.com#EXT#@contoso.onmicrosoft.com");

    assert_eq!(stdout_json(&guestlist(set("followNewEmail")).await)["upnOnReset"], "followNewEmail");
    let (status, body) = server.post("/v1.0/invitations", reset).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["invitedUser"]["userPrincipalName"], "xena_newco.example#EXT#@contoso.onmicrosoft.com");

    let refused = guestlist(set("sometimes")).await;
    assert!(!refused.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_set_turns_on_graphs_invitation_throttling() {
    let server = TestServer::start(Engine::Sqlite).await;
    let data_dir = server.data_dir.path().display().to_string();
    let set = |value: &str| {
        vec![
            "tenant".into(),
            "set".into(),
            "--data-dir".into(),
            data_dir.clone(),
            "--invitation-throttle".into(),
            value.into(),
            "--json".into(),
        ]
    };
    assert_eq!(stdout_json(&guestlist(set("graph")).await)["invitationThrottle"], "150/5");
    // An hour-long window of 3 requests: the 4th is refused whatever the machine's speed.
    assert_eq!(stdout_json(&guestlist(set("3/3600")).await)["invitationThrottle"], "3/3600");
    let invite = |i: usize| json!({"invitedUserEmailAddress": format!("t{i}@example.com"), "inviteRedirectUrl": "https://x.example"});
    for i in 0..3 {
        let (status, body) = server.post("/v1.0/invitations", invite(i)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let response = server.http.post(server.url("/v1.0/invitations")).bearer_auth(&server.token).json(&invite(3)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let headers = response.headers().clone();
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry_after));
    assert!(headers["x-ms-throttle-scope"].to_str().unwrap().ends_with(&server.connection.tenant_id));
    assert!(headers.contains_key("x-ms-throttle-information"));
    let body: Value = response.json().await.unwrap();
    crate::harness::assert_graph_error(&body, "TooManyRequests", "Please try again later.");
    assert_eq!(body["error"]["innerError"]["code"], "throttledRequest");
    assert_eq!(server.user_count().await, 3, "the refused invitation changed nothing");
    // Other routes are not throttled; turning it off lifts the limit.
    let (status, _) = server.get("/v1.0/users").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stdout_json(&guestlist(set("off")).await)["invitationThrottle"], Value::Null);
    let (status, _) = server.post("/v1.0/invitations", invite(4)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(!guestlist(set("lots")).await.status.success());
}
