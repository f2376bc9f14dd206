//! The client against a small in-process fake of the token endpoint and Graph (plain HTTP on a free
//! loopback port). The real server's integration tests cover TLS and the real semantics.

use std::sync::{Arc, Mutex};

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use guestlist_client::cli::{execute_with, ClientCommand, UserCommand};
use guestlist_client::{Connection, ErrorReport, GraphClient, GraphError, InviteParams, TokenError};
use serde_json::{json, Value};

const UPN: &str = "alice_example.org#EXT#@contoso.onmicrosoft.com";
const ALICE: &str = "bf883dbf-0b6e-4e0e-9c3b-5b1f2b7a9e11";

#[derive(Default)]
struct Seen {
    token_posts: usize,
    requests: Vec<String>,
    bodies: Vec<Value>,
}

#[derive(Clone)]
struct Fake {
    origin: String,
    seen: Arc<Mutex<Seen>>,
}

fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"error": {"code": code, "message": message, "innerError": {"date": "2024-01-01T00:00:00", "request-id": "rid-1", "client-request-id": "rid-1"}}});
    (status, Json(body)).into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|h| h.to_str().ok()) == Some("Bearer tok-1")
}

async fn token(State(f): State<Fake>, Path(tenant): Path<String>, Form(form): Form<Vec<(String, String)>>) -> Response {
    f.seen.lock().unwrap().token_posts += 1;
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(tenant, "tenant-1");
    assert_eq!(get("grant_type"), Some("client_credentials"));
    assert_eq!(get("scope"), Some("https://graph.microsoft.com/.default"));
    if get("client_id") != Some("app-1") || get("client_secret") != Some("secret+/=") {
        let body = json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided.", "error_codes": [7000215]});
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    Json(json!({"token_type": "Bearer", "expires_in": 3599, "access_token": "tok-1"})).into_response()
}

async fn invitations(State(f): State<Fake>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if !authorized(&headers) {
        return graph_error(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", "Access token is empty.");
    }
    f.seen.lock().unwrap().bodies.push(body.clone());
    let user_id = body.pointer("/invitedUser/id").and_then(Value::as_str).unwrap_or(ALICE);
    let inv = json!({"id": "inv-1", "inviteRedeemUrl": "http://127.0.0.1/redeem?t=x", "status": "PendingAcceptance",
        "invitedUserEmailAddress": body["invitedUserEmailAddress"], "sendInvitationMessage": body["sendInvitationMessage"],
        "resetRedemption": body.get("resetRedemption").cloned().unwrap_or(json!(false)),
        "invitedUser": {"id": user_id, "userPrincipalName": UPN}});
    (StatusCode::CREATED, Json(inv)).into_response()
}

async fn user(State(f): State<Fake>, headers: HeaderMap, Path(key): Path<String>, RawQuery(q): RawQuery) -> Response {
    assert!(authorized(&headers));
    f.seen.lock().unwrap().requests.push(format!("GET user {key} {}", q.unwrap_or_default()));
    if key == UPN || key == ALICE {
        Json(json!({"id": ALICE, "userPrincipalName": UPN, "displayName": "Alice"})).into_response()
    } else {
        graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!("Resource '{key}' does not exist or one of its queried reference-property objects are not present."),
        )
    }
}

async fn patch_user(State(f): State<Fake>, headers: HeaderMap, Path(key): Path<String>, Json(body): Json<Value>) -> StatusCode {
    assert!(authorized(&headers));
    let mut seen = f.seen.lock().unwrap();
    seen.requests.push(format!("PATCH user {key}"));
    seen.bodies.push(body);
    StatusCode::NO_CONTENT
}

/// Five users in pages of `$top` (default 2), with absolute next links carrying `$skiptoken`.
async fn users(State(f): State<Fake>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    assert!(authorized(&headers));
    let q = q.unwrap_or_default();
    f.seen.lock().unwrap().requests.push(format!("GET users {q}"));
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(q.as_bytes()).into_owned().collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if let Some(filter) = get("$filter") {
        if filter != "otherMails/any(x:x eq 'a+b@example.org')" {
            return graph_error(StatusCode::BAD_REQUEST, "Request_UnsupportedQuery", &format!("unexpected filter {filter}"));
        }
    }
    let top: usize = get("$top").map(|t| t.parse().unwrap()).unwrap_or(2);
    let skip: usize = get("$skiptoken").map(|t| t.parse().unwrap()).unwrap_or(0);
    let all: Vec<Value> = (0..5).map(|i| json!({"id": format!("u{i}"), "displayName": format!("User {i}"), "userType": "Guest"})).collect();
    let page: Vec<Value> = all.iter().skip(skip).take(top).cloned().collect();
    let mut body = json!({"value": page});
    if skip + top < all.len() {
        body["@odata.nextLink"] = json!(format!("{}/v1.0/users?$top={top}&$skiptoken={}", f.origin, skip + top));
    }
    Json(body).into_response()
}

async fn start() -> (GraphClient, Fake) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let fake = Fake { origin: origin.clone(), seen: Arc::default() };
    let app = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/v1.0/invitations", post(invitations))
        .route("/v1.0/users", get(users))
        .route("/v1.0/users/{key}", get(user).patch(patch_user))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let conn = Connection {
        tenant_id: "tenant-1".into(),
        tenant_domain: Some("contoso.onmicrosoft.com".into()),
        graph_url: origin.clone(),
        authority_url: origin,
        client_id: "app-1".into(),
        client_secret: "secret+/=".into(),
        ca_certificate: None,
        cli_client_id: None,
    };
    (GraphClient::new(conn).unwrap(), fake)
}

#[tokio::test]
async fn invite_then_reset_by_upn_with_one_cached_token() {
    let (client, fake) = start().await;
    let inv = client.invite(InviteParams { display_name: Some("Alice".into()), ..InviteParams::new("alice@example.com") }).await.unwrap();
    assert_eq!(inv["invitedUser"]["id"], ALICE);
    let reset = client.reset_redemption(UPN, "alice@example.org", "https://myapps.microsoft.com", false).await.unwrap();
    assert_eq!(reset["resetRedemption"], true);

    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen.token_posts, 1, "the token is cached");
    assert_eq!(seen.requests, vec![format!("GET user {UPN} $select=id")], "the UPN is resolved first and arrives intact");
    assert_eq!(seen.bodies[0]["invitedUserDisplayName"], "Alice");
    assert_eq!(seen.bodies[1]["invitedUser"], json!({"id": ALICE}));
    assert_eq!(seen.bodies[1]["invitedUserEmailAddress"], "alice@example.org");
}

#[tokio::test]
async fn reset_by_object_id_skips_the_lookup() {
    let (client, fake) = start().await;
    client.reset_redemption(ALICE, "alice@example.org", "https://myapps.microsoft.com", true).await.unwrap();
    assert!(fake.seen.lock().unwrap().requests.is_empty());
}

#[tokio::test]
async fn list_users_follows_every_next_link() {
    let (client, fake) = start().await;
    let users = client.list_users(Some("otherMails/any(x:x eq 'a+b@example.org')"), Some("id,displayName"), Some(2)).await.unwrap();
    let ids: Vec<&str> = users.iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["u0", "u1", "u2", "u3", "u4"]);
    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen.requests.len(), 3);
    assert_eq!(
        seen.requests[0],
        "GET users $filter=otherMails%2Fany%28x%3Ax%20eq%20%27a%2Bb%40example.org%27%29&$select=id,displayName&$top=2"
    );
    assert_eq!(seen.requests[2], "GET users $top=2&$skiptoken=4");
}

#[tokio::test]
async fn patch_user_gets_204() {
    let (client, fake) = start().await;
    client.patch_user(ALICE, json!({"otherMails": ["alice@example.org"]})).await.unwrap();
    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen.requests, vec![format!("PATCH user {ALICE}")]);
    assert_eq!(seen.bodies[0], json!({"otherMails": ["alice@example.org"]}));
}

#[tokio::test]
async fn graph_error_is_typed_and_rendered() {
    let (client, _fake) = start().await;
    let err = client.get_user("nobody@contoso.onmicrosoft.com", None).await.unwrap_err();
    let g = err.downcast_ref::<GraphError>().unwrap();
    assert_eq!((g.status, g.code.as_str(), g.request_id.as_deref()), (404, "Request_ResourceNotFound", Some("rid-1")));
    let report = ErrorReport::from_error(&err);
    assert_eq!(
        report.render_text(),
        "error: Request_ResourceNotFound: Resource 'nobody@contoso.onmicrosoft.com' does not exist or one of its queried reference-property objects are not present. (HTTP 404, request-id rid-1)\n"
    );
    assert_eq!(report.exit_code, 1);
}

#[tokio::test]
async fn wrong_secret_is_a_token_error() {
    let (client, _fake) = start().await;
    let mut conn = client.connection().clone();
    conn.client_secret = "wrong".into();
    let err = GraphClient::new(conn).unwrap().get_user(ALICE, None).await.unwrap_err();
    let t = err.downcast_ref::<TokenError>().unwrap();
    assert_eq!((t.status, t.error.as_str()), (401, "invalid_client"));
    assert!(t.description.starts_with("AADSTS7000215"));
}

#[tokio::test]
async fn cli_outputs_in_both_modes() {
    let (client, _fake) = start().await;
    let list = || ClientCommand::User(UserCommand::List { filter: None, select: None, top: None });
    let json_out: Value = serde_json::from_str(&execute_with(&client, true, list()).await.unwrap()).unwrap();
    assert_eq!(json_out.as_array().unwrap().len(), 5);
    let text = execute_with(&client, false, list()).await.unwrap();
    assert!(
        text.starts_with(
            "id  displayName  userPrincipalName  userType  externalUserState\nu0  User 0       -                  Guest     -\n"
        ),
        "{text}"
    );

    let invite = ClientCommand::Invite {
        email: "alice@example.com".into(),
        redirect_url: "https://myapps.microsoft.com".into(),
        display_name: None,
        send_message: false,
        message: None,
        cc: None,
        language: None,
        member: true,
    };
    let text = execute_with(&client, false, invite).await.unwrap();
    assert!(text.starts_with(&format!("Invited alice@example.com\n  user id:     {ALICE}\n  UPN:         {UPN}\n")), "{text}");
    let get = ClientCommand::User(UserCommand::Get { id_or_upn: UPN.into(), select: None });
    let v: Value = serde_json::from_str(&execute_with(&client, true, get).await.unwrap()).unwrap();
    assert_eq!(v["id"], ALICE);
}
