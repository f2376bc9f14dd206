//! Member sign-in over HTTP (issue 5 items 1 and 5): the authorization code flow with PKCE
//! through the sign-in page, refresh token rotation and reuse detection, the device code flow,
//! lockout, and delegated tokens on Graph.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::harness::{assert_graph_error, both_engines, TestServer};

const PASSWORD: &str = "Corr3ct-Horse!";
const REDIRECT: &str = "http://localhost:8400/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-and-some-more";

/// A browser without redirects: the sign-in answers with a redirect to the loopback address.
fn browser(server: &TestServer) -> reqwest::Client {
    crate::browser::client(server)
}

/// A member who signs in with [`PASSWORD`] as it is.
async fn create_member(server: &TestServer, alias: &str) -> String {
    create_member_with(server, alias, json!({"password": PASSWORD, "forceChangePasswordNextSignIn": false})).await
}

async fn create_member_with(server: &TestServer, alias: &str, password_profile: Value) -> String {
    let (status, body) = server
        .post(
            "/v1.0/users",
            json!({"accountEnabled": true, "displayName": alias, "mailNickname": alias,
                   "userPrincipalName": format!("{alias}@contoso.onmicrosoft.com"), "passwordProfile": password_profile}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().expect("id").to_string()
}

fn upn(server: &TestServer, alias: &str) -> String {
    let _ = server;
    format!("{alias}@contoso.onmicrosoft.com")
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The CSRF cookie a page set and the token in its form.
fn form_state(set_cookie: Option<String>, html: &str) -> (String, String) {
    let cookie = set_cookie.expect("the page sets its CSRF cookie");
    let cookie = cookie.split(';').next().expect("cookie pair").to_string();
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("a CSRF field") + marker.len();
    let token = html[start..].split('"').next().expect("token").to_string();
    (cookie, token)
}

fn authorize_params(server: &TestServer, scope: &str) -> Vec<(&'static str, String)> {
    vec![
        ("client_id", server.connection.cli_client_id.clone().expect("public client")),
        ("response_type", "code".into()),
        ("redirect_uri", REDIRECT.into()),
        ("scope", scope.into()),
        ("state", "st-123".into()),
        ("nonce", "n-456".into()),
        ("code_challenge", challenge(VERIFIER)),
        ("code_challenge_method", "S256".into()),
    ]
}

/// Opens the sign-in page and posts the form; the response to the post.
async fn sign_in(server: &TestServer, scope: &str, username: &str, password: &str) -> reqwest::Response {
    sign_in_session(server, scope, username, password).await.1
}

/// [`sign_in`], keeping the browser's CSRF cookie for the next form.
async fn sign_in_session(server: &TestServer, scope: &str, username: &str, password: &str) -> (String, reqwest::Response) {
    let http = browser(server);
    let path = format!("{}/{}/oauth2/v2.0/authorize", server.connection.authority_url, server.connection.tenant_id);
    let params = authorize_params(server, scope);
    let page = http.get(&path).query(&params).send().await.expect("authorize page");
    assert_eq!(page.status(), StatusCode::OK);
    let set_cookie = page.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_string());
    let html = page.text().await.unwrap();
    assert!(html.contains("name=\"password\""), "{html}");
    let (cookie, token) = form_state(set_cookie, &html);
    let mut form = params;
    form.extend([("csrf_token", token), ("username", username.to_string()), ("password", password.to_string())]);
    let response = http.post(&path).header("cookie", &cookie).form(&form).send().await.expect("sign-in post");
    (cookie, response)
}

/// Signs in and returns the authorization code from the redirect.
async fn code_for(server: &TestServer, scope: &str, username: &str) -> String {
    code_from(sign_in(server, scope, username, PASSWORD).await)
}

/// The authorization code of a sign-in's redirect to the client.
fn code_from(response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let url = url::Url::parse(&location).unwrap();
    assert_eq!(url.origin().ascii_serialization(), "http://localhost:8400");
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(query.get("state").map(String::as_str), Some("st-123"));
    query.get("code").expect("code").clone()
}

async fn token_request(server: &TestServer, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let url = format!("{}/{}/oauth2/v2.0/token", server.connection.authority_url, server.connection.tenant_id);
    let response = server.http.post(url).form(form).send().await.expect("token request");
    let status = response.status();
    (status, response.json().await.expect("token JSON"))
}

async fn redeem(server: &TestServer, code: &str, verifier: &str) -> (StatusCode, Value) {
    let client_id = server.connection.cli_client_id.clone().expect("public client");
    token_request(
        server,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &client_id),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
            ("client_info", "1"),
        ],
    )
    .await
}

async fn refresh(server: &TestServer, refresh_token: &str) -> (StatusCode, Value) {
    let client_id = server.connection.cli_client_id.clone().expect("public client");
    token_request(server, &[("grant_type", "refresh_token"), ("client_id", &client_id), ("refresh_token", refresh_token)]).await
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("claims JSON")
}

fn assert_token_error(body: &Value, error: &str, code: u64) {
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"][0], code, "{body}");
    assert!(body["error_description"].as_str().unwrap().starts_with(&format!("AADSTS{code}:")), "{body}");
}

const SCOPE: &str = "openid profile offline_access https://graph.microsoft.com/User.Invite.All https://graph.microsoft.com/User.Read.All";

both_engines! {
    async fn authorization_code_with_pkce_signs_in_and_acts_as_the_user(server: TestServer) {
        let user_id = create_member(&server, "amelia").await;
        let code = code_for(&server, SCOPE, &upn(&server, "amelia")).await;
        let (status, tokens) = redeem(&server, &code, VERIFIER).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        assert_eq!(tokens["token_type"], "Bearer");
        assert!(tokens["refresh_token"].is_string() && tokens["id_token"].is_string());
        let scope = tokens["scope"].as_str().unwrap();
        assert!(scope.contains("https://graph.microsoft.com/User.Invite.All"), "{scope}");
        let info: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(tokens["client_info"].as_str().unwrap()).unwrap()).unwrap();
        assert_eq!(info, json!({"uid": user_id, "utid": server.connection.tenant_id}));

        let access = claims(tokens["access_token"].as_str().unwrap());
        assert_eq!(access["scp"], "User.Invite.All User.Read.All");
        assert_eq!(access["idtyp"], "user");
        assert_eq!(access["oid"], user_id);
        assert_eq!(access["upn"], upn(&server, "amelia"));
        assert_eq!(access["appid"], server.connection.cli_client_id.as_deref().expect("public client"));
        assert!(access.get("roles").is_none());
        let id_token = claims(tokens["id_token"].as_str().unwrap());
        assert_eq!(id_token["aud"], server.connection.cli_client_id.as_deref().expect("public client"));
        assert_eq!(id_token["nonce"], "n-456");
        assert_eq!(id_token["preferred_username"], upn(&server, "amelia"));

        // The delegated token works on Graph, and the audit log names the user.
        let token = tokens["access_token"].as_str().unwrap();
        let (status, invited) = server
            .call_as(token, Method::POST, "/v1.0/invitations", Some(json!({"invitedUserEmailAddress": "dora@example.com", "inviteRedirectUrl": "https://myapps.microsoft.com"})))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{invited}");
        let (status, audits) = server.get("/v1.0/auditLogs/directoryAudits?$top=5").await;
        assert_eq!(status, StatusCode::OK);
        let invite_entry = audits["value"].as_array().unwrap().iter().find(|a| a["activityDisplayName"] == "Invite external user").expect("invite audit");
        assert_eq!(invite_entry["initiatedBy"]["user"]["id"], user_id, "{invite_entry}");

        // A code is single use; the second redemption revokes what the first issued.
        let (status, again) = redeem(&server, &code, VERIFIER).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_token_error(&again, "invalid_grant", 54005);
        let (status, body) = refresh(&server, tokens["refresh_token"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_token_error(&body, "invalid_grant", 700082);
    }

    async fn a_wrong_verifier_or_redirect_uri_is_refused(server: TestServer) {
        create_member(&server, "bruno").await;
        let code = code_for(&server, SCOPE, &upn(&server, "bruno")).await;
        let (status, body) = redeem(&server, &code, "another-verifier-another-verifier-another-verifier").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_token_error(&body, "invalid_grant", 501481);
        let client_id = server.connection.cli_client_id.clone().expect("public client");
        let code = code_for(&server, SCOPE, &upn(&server, "bruno")).await;
        let (status, body) = token_request(&server, &[("grant_type", "authorization_code"), ("client_id", &client_id), ("code", &code),
            ("redirect_uri", "http://localhost:9999/other"), ("code_verifier", VERIFIER)]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_token_error(&body, "invalid_grant", 50011);
        let (status, body) = token_request(&server, &[("grant_type", "authorization_code"), ("client_id", &client_id), ("code", "made-up"),
            ("redirect_uri", REDIRECT), ("code_verifier", VERIFIER)]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_token_error(&body, "invalid_grant", 70000);
    }

    async fn refresh_tokens_rotate_and_reuse_revokes_the_family(server: TestServer) {
        create_member(&server, "carla").await;
        let code = code_for(&server, SCOPE, &upn(&server, "carla")).await;
        let (_, first) = redeem(&server, &code, VERIFIER).await;
        let rt1 = first["refresh_token"].as_str().unwrap().to_string();
        let (status, second) = refresh(&server, &rt1).await;
        assert_eq!(status, StatusCode::OK, "{second}");
        let rt2 = second["refresh_token"].as_str().unwrap().to_string();
        assert_ne!(rt1, rt2);
        assert_eq!(claims(second["access_token"].as_str().unwrap())["scp"], "User.Invite.All User.Read.All");
        // The spent token again: reuse, so the whole family goes, including the newest token.
        let (status, reused) = refresh(&server, &rt1).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_token_error(&reused, "invalid_grant", 700082);
        let (status, after) = refresh(&server, &rt2).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_token_error(&after, "invalid_grant", 700082);
    }

    async fn wrong_passwords_lock_the_account_and_are_audited(server: TestServer) {
        let user_id = create_member(&server, "dmitri").await;
        for attempt in 1..=4 {
            let response = sign_in(&server, SCOPE, &upn(&server, "dmitri"), "Wrong-passw0rd").await;
            assert_eq!(response.status(), StatusCode::OK, "attempt {attempt}");
            assert!(response.text().await.unwrap().contains("Your account or password is incorrect."));
        }
        let fifth = sign_in(&server, SCOPE, &upn(&server, "dmitri"), "Wrong-passw0rd").await;
        assert_eq!(fifth.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(fifth.text().await.unwrap().contains("temporarily locked"));
        // Locked: even the right password is refused for the rest of the window.
        let right = sign_in(&server, SCOPE, &upn(&server, "dmitri"), PASSWORD).await;
        assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);
        // An unknown account reads like a wrong password.
        let unknown = sign_in(&server, SCOPE, "nobody@contoso.onmicrosoft.com", PASSWORD).await;
        assert_eq!(unknown.status(), StatusCode::OK);
        assert!(unknown.text().await.unwrap().contains("Your account or password is incorrect."));

        let filter = format!("/v1.0/auditLogs/directoryAudits?$filter=targetResources/any(t:t/id eq '{user_id}')");
        let (status, audits) = server.get(&filter).await;
        assert_eq!(status, StatusCode::OK, "{audits}");
        let names: Vec<&str> = audits["value"].as_array().unwrap().iter().filter_map(|a| a["activityDisplayName"].as_str()).collect();
        assert_eq!(names.iter().filter(|n| **n == "Sign-in failed").count(), 5, "{names:?}");
        assert_eq!(names.iter().filter(|n| **n == "Account locked out").count(), 1, "{names:?}");
        let failed = audits["value"].as_array().unwrap().iter().find(|a| a["activityDisplayName"] == "Sign-in failed").unwrap();
        assert_eq!(failed["result"], "failure");
        assert_eq!(failed["initiatedBy"]["user"]["id"], user_id);
    }

    async fn device_code_polling_follows_the_device_login(server: TestServer) {
        create_member(&server, "elena").await;
        let client_id = server.connection.cli_client_id.clone().expect("public client");
        let url = format!("{}/{}/oauth2/v2.0/devicecode", server.connection.authority_url, server.connection.tenant_id);
        let start = |scope: &'static str| {
            let (http, url, client_id) = (server.http.clone(), url.clone(), client_id.clone());
            async move {
                let response = http.post(url).form(&[("client_id", client_id.as_str()), ("scope", scope)]).send().await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                response.json::<Value>().await.unwrap()
            }
        };
        let device = start("openid offline_access https://graph.microsoft.com/User.Read.All").await;
        assert_eq!(device["verification_uri"], format!("{}/devicelogin", server.connection.authority_url));
        assert_eq!(device["expires_in"], 900);
        assert_eq!(device["interval"], 5);
        let device_code = device["device_code"].as_str().unwrap().to_string();
        let poll = || {
            let device_code = device_code.clone();
            let client_id = client_id.clone();
            let server = &server;
            async move {
                token_request(server, &[("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("client_id", &client_id), ("device_code", &device_code)]).await
            }
        };
        let (status, pending) = poll().await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_token_error(&pending, "authorization_pending", 70016);
        // At once again: faster than the interval.
        let (_, fast) = poll().await;
        assert_eq!(fast["error"], "slow_down", "{fast}");

        let done = complete_device_login(&server, device["user_code"].as_str().unwrap(), &upn(&server, "elena"), PASSWORD, false).await;
        assert!(done.contains("You&#x27;re signed in") || done.contains("signed in"), "{done}");
        let (status, tokens) = poll().await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        assert_eq!(claims(tokens["access_token"].as_str().unwrap())["scp"], "User.Read.All");
        let token = tokens["access_token"].as_str().unwrap();
        let (status, _) = server.call_as(token, Method::GET, "/v1.0/users", None).await;
        assert_eq!(status, StatusCode::OK);
        // The device code is spent.
        let (status, spent) = poll().await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_token_error(&spent, "invalid_grant", 70000);

        // A declined login.
        let declined = start("User.Read.All").await;
        complete_device_login(&server, declined["user_code"].as_str().unwrap(), "", "", true).await;
        let (_, body) = token_request(&server, &[("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("client_id", &client_id),
            ("device_code", declined["device_code"].as_str().unwrap())]).await;
        assert_eq!(body["error"], "authorization_declined", "{body}");
    }

    async fn a_delegated_scope_without_the_permission_is_forbidden(server: TestServer) {
        create_member(&server, "farid").await;
        let code = code_for(&server, "openid https://graph.microsoft.com/User.Read", &upn(&server, "farid")).await;
        let (_, tokens) = redeem(&server, &code, VERIFIER).await;
        assert!(tokens.get("refresh_token").is_none(), "no offline_access, no refresh token: {tokens}");
        let token = tokens["access_token"].as_str().unwrap();
        let (status, body) = server.call_as(token, Method::GET, "/v1.0/users", None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, body) = server
            .call_as(token, Method::POST, "/v1.0/invitations", Some(json!({"invitedUserEmailAddress": "x@example.com", "inviteRedirectUrl": "https://myapps.microsoft.com"})))
            .await;
        assert!(status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED, "{status} {body}");
    }

    async fn member_passwords_follow_graphs_complexity_rule(server: TestServer) {
        for weak in ["short1A", "alllowercaseletters", "12345678abc"] {
            let (status, body) = server
                .post("/v1.0/users", json!({"accountEnabled": true, "displayName": "W", "mailNickname": "weak",
                    "userPrincipalName": "weak@contoso.onmicrosoft.com", "passwordProfile": {"password": weak}}))
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{weak}");
            assert_graph_error(&body, "Request_BadRequest", "does not comply with password complexity requirements");
        }
    }
}

/// The hidden fields of a page's form, unescaped.
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let marker = "<input type=\"hidden\" name=\"";
    let unescape = |text: &str| {
        text.replace("&#x2f;", "/")
            .replace("&quot;", "\"")
            .replace("&#x27;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    html.match_indices(marker)
        .map(|(at, _)| {
            let rest = &html[at + marker.len()..];
            let name = rest.split('"').next().unwrap();
            let value = rest.split("value=\"").nth(1).unwrap().split('"').next().unwrap();
            (name.to_string(), unescape(value))
        })
        .collect()
}

/// Posts "Update your password" as a browser would: the page's hidden fields (the original
/// request's and the CSRF token), the username, the current password and the new one twice.
async fn post_new_password(
    server: &TestServer,
    action: &str,
    cookie: &str,
    page: &str,
    [username, current, new, confirm]: [&str; 4],
) -> reqwest::Response {
    assert!(page.contains("<h1>Update your password</h1>") && page.contains("name=\"new_password\""), "{page}");
    let mut form = hidden_fields(page);
    for (name, value) in
        [("username", username), ("password", current), ("new_password", new), ("confirm_password", confirm), ("decision", "sign-in")]
    {
        form.push((name.to_string(), value.to_string()));
    }
    let url = format!("{}{action}", server.connection.authority_url);
    browser(server).post(url).header("cookie", cookie).form(&form).send().await.expect("change post")
}

async fn stored_password(server: &TestServer, user_id: &str) -> guestlist_store::StoredPassword {
    let tenant = guestlist_domain::ObjectId::parse(&server.connection.tenant_id).unwrap();
    let user = guestlist_domain::ObjectId::parse(user_id).unwrap();
    server.services().store.user_password(tenant, user).await.unwrap().expect("a stored password")
}

const NEW_PASSWORD: &str = "N3w-Battery-Staple";

both_engines! {
    async fn a_member_who_must_change_the_password_updates_it_before_the_code(server: TestServer) {
        // Graph's default when passwordProfile leaves the flag out is true.
        let user_id = create_member_with(&server, "jonas", json!({"password": PASSWORD})).await;
        assert!(stored_password(&server, &user_id).await.force_change_next_sign_in);
        let username = upn(&server, "jonas");
        let action = format!("/{}/oauth2/v2.0/authorize", server.connection.tenant_id);
        let (cookie, response) = sign_in_session(&server, SCOPE, &username, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK, "the change form, not a code");
        let csp = response.headers()["content-security-policy"].to_str().unwrap().to_string();
        assert!(csp.contains("form-action 'self' http://localhost:8400"), "{csp}");
        let page = response.text().await.unwrap();
        assert!(page.contains(&format!("value=\"{username}\"")), "{page}");
        let hidden = hidden_fields(&page);
        assert!(hidden.contains(&("redirect_uri".to_string(), REDIRECT.to_string())), "{hidden:?}");
        assert!(hidden.contains(&("code_challenge".to_string(), challenge(VERIFIER))), "{hidden:?}");

        // Refusals show their text on the same form and change nothing.
        let before = stored_password(&server, &user_id).await;
        let refusals = [
            ("password1", "password1", "does not comply with password complexity requirements"),
            (NEW_PASSWORD, "N3w-Battery-Stable", "The new passwords don&#x27;t match."),
            (PASSWORD, PASSWORD, "You can&#x27;t reuse your current password."),
        ];
        for (new, confirm, text) in refusals {
            let refused = post_new_password(&server, &action, &cookie, &page, [&username, PASSWORD, new, confirm]).await;
            assert_eq!(refused.status(), StatusCode::OK);
            let html = refused.text().await.unwrap();
            assert!(html.contains(text) && html.contains("name=\"new_password\""), "{text}: {html}");
            assert_eq!(stored_password(&server, &user_id).await, before);
        }
        // A wrong current password is a failed sign-in, audited as one.
        let wrong = post_new_password(&server, &action, &cookie, &page, [&username, "Wrong-passw0rd", NEW_PASSWORD, NEW_PASSWORD]).await;
        assert_eq!(wrong.status(), StatusCode::OK);
        assert!(wrong.text().await.unwrap().contains("Your current password is incorrect."));
        assert_eq!(stored_password(&server, &user_id).await, before);

        // A good new password: the sign-in goes on to the client with its code and state.
        let changed = post_new_password(&server, &action, &cookie, &page, [&username, PASSWORD, NEW_PASSWORD, NEW_PASSWORD]).await;
        let code = code_from(changed);
        let (status, tokens) = redeem(&server, &code, VERIFIER).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        assert_eq!(claims(tokens["access_token"].as_str().unwrap())["oid"], user_id);
        assert!(!stored_password(&server, &user_id).await.force_change_next_sign_in, "the flag is cleared");

        // The old password no longer works; the new one signs in without the form.
        let old = sign_in(&server, SCOPE, &username, PASSWORD).await;
        assert_eq!(old.status(), StatusCode::OK);
        assert!(old.text().await.unwrap().contains("Your account or password is incorrect."));
        let response = sign_in(&server, SCOPE, &username, NEW_PASSWORD).await;
        code_from(response);

        let filter = format!("/v1.0/auditLogs/directoryAudits?$filter=targetResources/any(t:t/id eq '{user_id}')");
        let (status, audits) = server.get(&filter).await;
        assert_eq!(status, StatusCode::OK, "{audits}");
        let entries = audits["value"].as_array().unwrap();
        let changes: Vec<&Value> = entries.iter().filter(|a| a["activityDisplayName"] == "Change user password").collect();
        assert_eq!(changes.len(), 1, "{audits}");
        assert_eq!(changes[0]["category"], "UserManagement");
        assert_eq!(changes[0]["loggedByService"], "Core Directory");
        assert_eq!(changes[0]["result"], "success");
        assert_eq!(changes[0]["initiatedBy"]["user"]["id"], user_id);
        assert_eq!(entries.iter().filter(|a| a["activityDisplayName"] == "Sign-in failed").count(), 2, "the wrong current and the old password");
    }

    async fn wrong_current_passwords_on_the_change_form_lock_the_account(server: TestServer) {
        let user_id = create_member_with(&server, "kaja", json!({"password": PASSWORD, "forceChangePasswordNextSignIn": true})).await;
        let username = upn(&server, "kaja");
        let action = format!("/{}/oauth2/v2.0/authorize", server.connection.tenant_id);
        let (cookie, response) = sign_in_session(&server, SCOPE, &username, PASSWORD).await;
        let page = response.text().await.unwrap();
        for attempt in 1..=4 {
            let wrong = post_new_password(&server, &action, &cookie, &page, [&username, "Wrong-passw0rd", NEW_PASSWORD, NEW_PASSWORD]).await;
            assert_eq!(wrong.status(), StatusCode::OK, "attempt {attempt}");
        }
        let fifth = post_new_password(&server, &action, &cookie, &page, [&username, "Wrong-passw0rd", NEW_PASSWORD, NEW_PASSWORD]).await;
        assert_eq!(fifth.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(fifth.text().await.unwrap().contains("temporarily locked"));
        // Locked: the right current password changes nothing for the rest of the window.
        let before = stored_password(&server, &user_id).await;
        let right = post_new_password(&server, &action, &cookie, &page, [&username, PASSWORD, NEW_PASSWORD, NEW_PASSWORD]).await;
        assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(stored_password(&server, &user_id).await, before);
        assert!(before.force_change_next_sign_in);
    }

    async fn a_device_login_asks_for_a_new_password_before_approving(server: TestServer) {
        let user_id = create_member_with(&server, "lior", json!({"password": PASSWORD, "forceChangePasswordNextSignIn": true})).await;
        let username = upn(&server, "lior");
        let client_id = server.connection.cli_client_id.clone().expect("public client");
        let url = format!("{}/{}/oauth2/v2.0/devicecode", server.connection.authority_url, server.connection.tenant_id);
        let response = server.http.post(url).form(&[("client_id", client_id.as_str()), ("scope", "User.Read.All")]).send().await.unwrap();
        let device: Value = response.json().await.unwrap();
        let user_code = device["user_code"].as_str().unwrap();
        let poll = || {
            let form = [("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("client_id", client_id.as_str()), ("device_code", device["device_code"].as_str().unwrap())];
            let server = &server;
            async move { token_request(server, &form).await }
        };

        let http = browser(&server);
        let origin = &server.connection.authority_url;
        let page = http.get(format!("{origin}/devicelogin")).send().await.unwrap();
        let set_cookie = page.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_string());
        let (cookie, token) = form_state(set_cookie, &page.text().await.unwrap());
        let form = [("csrf_token", token.as_str()), ("user_code", user_code), ("username", &username), ("password", PASSWORD), ("decision", "sign-in")];
        let asked = http.post(format!("{origin}/devicelogin/signin")).header("cookie", &cookie).form(&form).send().await.unwrap();
        assert_eq!(asked.status(), StatusCode::OK);
        let page = asked.text().await.unwrap();
        assert!(hidden_fields(&page).contains(&("user_code".to_string(), user_code.to_string())), "{page}");
        assert!(page.contains("value=\"cancel\""), "the device form keeps Cancel");
        let (_, pending) = poll().await;
        assert_eq!(pending["error"], "authorization_pending", "not approved before the change: {pending}");

        let weak = post_new_password(&server, "/devicelogin/signin", &cookie, &page, [&username, PASSWORD, "weakweak", "weakweak"]).await;
        assert!(weak.text().await.unwrap().contains("does not comply with password complexity requirements"));
        let grant = server.services().store.oauth_grant_by_user_code(user_code).await.unwrap().unwrap();
        assert_eq!(grant.state, guestlist_domain::signin::GrantState::Pending);

        let done = post_new_password(&server, "/devicelogin/signin", &cookie, &page, [&username, PASSWORD, NEW_PASSWORD, NEW_PASSWORD]).await;
        assert_eq!(done.status(), StatusCode::OK);
        assert!(done.text().await.unwrap().contains("You have signed in to"));
        let (status, tokens) = poll().await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        assert_eq!(claims(tokens["access_token"].as_str().unwrap())["oid"], user_id);
        assert!(!stored_password(&server, &user_id).await.force_change_next_sign_in);
        let old = sign_in(&server, SCOPE, &username, PASSWORD).await;
        assert!(old.text().await.unwrap().contains("Your account or password is incorrect."));
    }
}

/// Completes a device login over HTTP as a browser would: the code page, then the sign-in form
/// (or Cancel). The final page's HTML.
pub async fn complete_device_login(server: &TestServer, user_code: &str, username: &str, password: &str, cancel: bool) -> String {
    let http = browser(server);
    let origin = &server.connection.authority_url;
    let page = http.get(format!("{origin}/devicelogin")).send().await.unwrap();
    let set_cookie = page.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_string());
    let (cookie, token) = form_state(set_cookie, &page.text().await.unwrap());
    let signin = http
        .post(format!("{origin}/devicelogin"))
        .header("cookie", &cookie)
        .form(&[("csrf_token", token.as_str()), ("user_code", &user_code.to_lowercase())])
        .send()
        .await
        .unwrap();
    assert_eq!(signin.status(), StatusCode::OK);
    let html = signin.text().await.unwrap();
    assert!(html.contains("name=\"password\""), "{html}");
    let decision = if cancel { "cancel" } else { "sign-in" };
    let done = http
        .post(format!("{origin}/devicelogin/signin"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf_token", token.as_str()),
            ("user_code", user_code),
            ("username", username),
            ("password", password),
            ("decision", decision),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    done.text().await.unwrap()
}

/// Runs the `guestlist` binary with its config directory in `config_home`.
async fn guestlist_cli(server: &TestServer, config_home: &std::path::Path, rest: &[&str]) -> std::process::Output {
    let connection = server.data_dir.path().join("connection.json").display().to_string();
    let mut args = vec!["--connection".to_string(), connection];
    args.extend(rest.iter().map(|s| s.to_string()));
    let config_home = config_home.to_path_buf();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_guestlist"))
            .args(&args)
            .env_remove("GUESTLIST_CONNECTION")
            .env("XDG_CONFIG_HOME", &config_home)
            .output()
            .expect("run guestlist")
    })
    .await
    .unwrap()
}

both_engines! {
    async fn cli_login_signs_a_person_in_with_the_device_code_flow(server: TestServer) {
        use std::io::BufRead as _;
        let user_id = create_member(&server, "gustav").await;
        let config_home = tempfile::tempdir().unwrap();
        let connection = server.data_dir.path().join("connection.json").display().to_string();
        let mut login = std::process::Command::new(env!("CARGO_BIN_EXE_guestlist"))
            .args(["--connection", &connection, "login"])
            .env_remove("GUESTLIST_CONNECTION")
            .env("XDG_CONFIG_HOME", config_home.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run guestlist login");
        let stderr = login.stderr.take().unwrap();
        let message = tokio::task::spawn_blocking(move || {
            std::io::BufReader::new(stderr).lines().map_while(Result::ok).find(|line| line.contains("enter the code")).expect("the login message")
        })
        .await
        .unwrap();
        assert!(message.contains(&format!("{}/devicelogin", server.connection.authority_url)), "{message}");
        let user_code = message.split("enter the code ").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
        complete_device_login(&server, &user_code, &upn(&server, "gustav"), PASSWORD, false).await;
        let output = tokio::task::spawn_blocking(move || login.wait_with_output().unwrap()).await.unwrap();
        assert!(output.status.success());
        assert_eq!(String::from_utf8_lossy(&output.stdout), "Signed in as gustav@contoso.onmicrosoft.com.\n");
        let cache = config_home.path().join("guestlist/tokens.json");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777, 0o600);
        }

        // Client commands now act as the person: the audit log names the user.
        let invited = guestlist_cli(&server, config_home.path(), &["--json", "invite", "--email", "hilde@example.com"]).await;
        assert!(invited.status.success(), "{}", String::from_utf8_lossy(&invited.stderr));
        let listed = guestlist_cli(&server, config_home.path(), &["--json", "user", "list"]).await;
        assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
        let (_, audits) = server.get("/v1.0/auditLogs/directoryAudits?$top=5").await;
        let entry = audits["value"].as_array().unwrap().iter().find(|a| a["activityDisplayName"] == "Invite external user").unwrap();
        assert_eq!(entry["initiatedBy"]["user"]["id"], user_id, "{entry}");
        // `--app` uses the app credentials even with a cached login.
        let as_app = guestlist_cli(&server, config_home.path(), &["--app", "--json", "invite", "--email", "ida@example.com"]).await;
        assert!(as_app.status.success());
        let (_, audits) = server.get("/v1.0/auditLogs/directoryAudits?$top=5").await;
        let entry = audits["value"].as_array().unwrap().iter().find(|a| a["activityDisplayName"] == "Invite external user").unwrap();
        assert!(entry["initiatedBy"]["app"].is_object(), "{entry}");

        let out = guestlist_cli(&server, config_home.path(), &["logout"]).await;
        assert_eq!(String::from_utf8_lossy(&out.stdout), "Signed out.\n");
        assert!(!cache.exists());
    }
}

both_engines! {
    async fn expired_codes_and_device_codes_are_refused(server: TestServer) {
        use guestlist_domain::signin::{secret_hash, GrantKind, GrantState, OAuthGrant};
        let user_id = create_member(&server, "hanna").await;
        let store = &server.services().store;
        let client_id = guestlist_domain::ObjectId::parse(server.connection.cli_client_id.as_deref().expect("public client")).unwrap();
        let tenant_id = guestlist_domain::ObjectId::parse(&server.connection.tenant_id).unwrap();
        let past = chrono::Utc::now() - chrono::Duration::seconds(1);
        let grant = |secret: &str, kind: GrantKind, state: GrantState| OAuthGrant {
            token_hash: secret_hash(secret),
            tenant_id,
            kind,
            state,
            client_id,
            user_id: Some(guestlist_domain::ObjectId::parse(&user_id).unwrap()),
            family_id: guestlist_domain::ObjectId::new_random(),
            scope: "User.Read.All openid offline_access".into(),
            redirect_uri: Some(REDIRECT.into()),
            code_challenge: Some(challenge(VERIFIER)),
            nonce: None,
            user_code: None,
            created_date_time: past - chrono::Duration::seconds(600),
            expires_date_time: past,
        };
        store.insert_oauth_grant(&grant("expired-code", GrantKind::AuthorizationCode, GrantState::Active)).await.unwrap();
        let (status, body) = redeem(&server, "expired-code", VERIFIER).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_token_error(&body, "invalid_grant", 70008);

        let mut device = grant("expired-device", GrantKind::DeviceCode, GrantState::Pending);
        device.user_code = Some("EXPIREDXX".into());
        store.insert_oauth_grant(&device).await.unwrap();
        let client = server.connection.cli_client_id.clone().expect("public client");
        let (status, body) = token_request(
            &server,
            &[("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("client_id", &client), ("device_code", "expired-device")],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_token_error(&body, "expired_token", 70019);
        // The device login page does not accept an expired code either.
        let http = browser(&server);
        let page = http.get(format!("{}/devicelogin", server.connection.authority_url)).send().await.unwrap();
        let set_cookie = page.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_string());
        let (cookie, token) = form_state(set_cookie, &page.text().await.unwrap());
        let answer = http
            .post(format!("{}/devicelogin", server.connection.authority_url))
            .header("cookie", cookie)
            .form(&[("csrf_token", token.as_str()), ("user_code", "EXPIREDXX")])
            .send()
            .await
            .unwrap();
        assert!(answer.text().await.unwrap().contains("That code didn"));

        let mut refresh_grant = grant("expired-refresh", GrantKind::RefreshToken, GrantState::Active);
        refresh_grant.redirect_uri = None;
        store.insert_oauth_grant(&refresh_grant).await.unwrap();
        let (status, body) = refresh(&server, "expired-refresh").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_token_error(&body, "invalid_grant", 700082);
    }
}

both_engines! {
    async fn issuing_and_redeeming_grants_prunes_long_expired_ones(server: TestServer) {
        use guestlist_domain::signin::{GrantKind, GrantState, OAuthGrant};
        use guestlist_domain::ObjectId;
        let user_id = ObjectId::parse(&create_member(&server, "ines").await).unwrap();
        let store = server.services().store.clone();
        let tenant_id = ObjectId::parse(&server.connection.tenant_id).unwrap();
        let now = chrono::Utc::now();
        let grant = |state: GrantState, expires: chrono::DateTime<chrono::Utc>| OAuthGrant {
            token_hash: ObjectId::new_random().to_string(),
            tenant_id,
            kind: GrantKind::RefreshToken,
            state,
            client_id: ObjectId::parse(server.connection.cli_client_id.as_deref().expect("public client")).unwrap(),
            user_id: Some(user_id),
            family_id: ObjectId::new_random(),
            scope: "User.Read.All offline_access".into(),
            redirect_uri: None,
            code_challenge: None,
            nonce: None,
            user_code: None,
            created_date_time: expires - chrono::Duration::days(90),
            expires_date_time: expires,
        };
        let spent = grant(GrantState::Used, now - chrono::Duration::days(2));
        let recently_expired = grant(GrantState::Used, now - chrono::Duration::hours(1));
        let live = grant(GrantState::Active, now + chrono::Duration::days(30));
        for g in [&spent, &recently_expired, &live] {
            store.insert_oauth_grant(g).await.unwrap();
        }

        // A sign-in issues a code and redeems it; the first grant work of the process prunes.
        let code = code_for(&server, SCOPE, &upn(&server, "ines")).await;
        let (status, body) = redeem(&server, &code, VERIFIER).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while store.oauth_grant(&spent.token_hash).await.unwrap().is_some() {
            assert!(std::time::Instant::now() < deadline, "the long-expired grant was not pruned");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(store.oauth_grant(&recently_expired.token_hash).await.unwrap().is_some(), "kept a day past expiry");
        assert!(store.oauth_grant(&live.token_hash).await.unwrap().is_some());

        // Within the minute the process does not prune again; the service call does, once.
        let another = grant(GrantState::Revoked, now - chrono::Duration::days(3));
        store.insert_oauth_grant(&another).await.unwrap();
        let (status, body) = refresh(&server, body["refresh_token"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(store.oauth_grant(&another.token_hash).await.unwrap().is_some());
        assert_eq!(server.services().prune_spent_grants(chrono::Utc::now()).await.unwrap(), 1);
        assert_eq!(server.services().prune_spent_grants(chrono::Utc::now()).await.unwrap(), 0);
        assert!(store.oauth_grant(&another.token_hash).await.unwrap().is_none());
        assert!(store.oauth_grant(&recently_expired.token_hash).await.unwrap().is_some());
    }
}
