//! The one gate for invitations and the target gate (issue 9 items 3 and 4), both engines: every
//! route that creates, re-sends or resets an invitation is refused when the gate refuses, for
//! each reason it has, with nothing changed; every route that changes a user is refused on a
//! Global Administrator for callers Entra doesn't let act on one, and allowed for a Global
//! Administrator.

use guestlist_domain::ids::ObjectId;
use guestlist_domain::permissions::AppPermission;
use guestlist_domain::tenant::InvitationThrottle;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::browser::Browser;
use crate::console::upload_csv;
use crate::guest_access::token_for;
use crate::harness::{assert_graph_error, both_engines, TestServer};

const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
const USER_ADMINISTRATOR: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
const HELPDESK_ADMINISTRATOR: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";
const GUEST_INVITER: &str = "95e79109-95c0-4d8e-aee3-d01accf2d47b";
const REDIRECT: &str = "https://myapps.microsoft.com";

/// A signed-in person: a delegated token for Graph, and a console session with it.
struct Actor {
    token: String,
    browser: Browser,
}

async fn assign(server: &TestServer, principal: &str, role: &str) {
    let body = json!({"principalId": principal, "roleDefinitionId": role, "directoryScopeId": "/"});
    let (status, body) = server.post("/v1.0/roleManagement/directory/roleAssignments", body).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// A member holding `role` (if any); returns its id.
async fn member(server: &TestServer, alias: &str, role: Option<&str>) -> String {
    let (status, body) = server
        .post(
            "/v1.0/users",
            json!({"accountEnabled": true, "displayName": alias, "mailNickname": alias, "mail": format!("{alias}@contoso.onmicrosoft.com"),
                   "userPrincipalName": format!("{alias}@contoso.onmicrosoft.com"), "passwordProfile": {"password": "xWwvJ]6NMw+bWH-d"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    if let Some(role) = role {
        assign(server, &id, role).await;
    }
    id
}

/// A member holding `role`, signed in to Graph and to the console (the session cookie holds the
/// same kind of token the console's sign-in issues).
async fn actor(server: &TestServer, alias: &str, role: &str) -> Actor {
    let id = member(server, alias, Some(role)).await;
    let token = token_for(server, &id).await;
    let mut browser = Browser::new(server);
    browser.cookies.insert("__Host-guestlist-console".into(), token.clone());
    let page = browser.get("/console/invite").await;
    assert_eq!(page.status, StatusCode::OK, "the console session works");
    Actor { token, browser }
}

/// Invites `email` as the test app; returns (user id, invitation id).
async fn guest(server: &TestServer, email: &str, user_type: &str) -> (String, String) {
    let body = json!({"invitedUserEmailAddress": email, "inviteRedirectUrl": REDIRECT, "invitedUserType": user_type});
    let (status, body) = server.post("/v1.0/invitations", body).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (body["invitedUser"]["id"].as_str().unwrap().to_string(), body["id"].as_str().unwrap().to_string())
}

/// Everything a refused request must leave as it was: the users, every invitation with its
/// state and mails, and the audit log.
async fn snapshot(server: &TestServer) -> (Vec<Value>, Vec<(String, String, usize)>, usize) {
    let select = "id,displayName,mail,otherMails,userPrincipalName,userType,accountEnabled,externalUserState";
    let (status, body) = server.get(&format!("/v1.0/users?$top=999&$select={select}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut users = body["value"].as_array().unwrap().clone();
    users.sort_by_key(|u| u["id"].as_str().unwrap().to_string());
    let store = &server.services().store;
    let tenant = ObjectId::parse(&server.connection.tenant_id).unwrap();
    let mut invitations = Vec::new();
    for user in &users {
        let id = ObjectId::parse(user["id"].as_str().unwrap()).unwrap();
        for invitation in store.invitations_for_user(tenant, id).await.unwrap() {
            let mails = store.mails_for_invitation(tenant, invitation.id).await.unwrap().len();
            invitations.push((invitation.id.to_string(), invitation.state.as_str().to_string(), mails));
        }
    }
    invitations.sort();
    (users, invitations, store.audit_records(tenant, 999).await.unwrap().len())
}

/// Every route that creates, re-sends or resets an invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    GraphNew(&'static str),
    GraphReinviteById(&'static str),
    GraphReset(&'static str),
    GuestlistResend,
    ConsoleInvite,
    ConsoleBulk,
    ConsoleResend,
    ConsoleReset,
    /// The console's reset to an address it first adds to otherMails.
    ConsoleResetToNewAddress,
}

const INVITATION_ROUTES: [Route; 12] = [
    Route::GraphNew("v1.0"),
    Route::GraphNew("beta"),
    Route::GraphReinviteById("v1.0"),
    Route::GraphReinviteById("beta"),
    Route::GraphReset("v1.0"),
    Route::GraphReset("beta"),
    Route::GuestlistResend,
    Route::ConsoleInvite,
    Route::ConsoleBulk,
    Route::ConsoleResend,
    Route::ConsoleReset,
    Route::ConsoleResetToNewAddress,
];

/// What one refusal reason sends, to whom.
struct Case {
    /// The address of a new invitation (the target's own for the protected-target case).
    new_address: String,
    user_type: &'static str,
    /// The existing user re-invited, resent or reset, its address and pending invitation.
    target: String,
    target_address: String,
    pending_invitation: String,
}

/// The answer: the HTTP status (none for a bulk row, whose page is 200 whatever its rows say)
/// and the Graph error code, or "" on success.
async fn send(server: &TestServer, actor: &mut Actor, route: Route, case: &Case) -> (Option<StatusCode>, String) {
    let graph = |version: &str, body: Value| {
        let token = actor.token.clone();
        let path = format!("/{version}/invitations");
        async move {
            let (status, body) = server.call_as(&token, Method::POST, &path, Some(body)).await;
            (Some(status), body["error"]["code"].as_str().unwrap_or_default().to_string())
        }
    };
    let by_id = json!({"invitedUserEmailAddress": case.target_address, "inviteRedirectUrl": REDIRECT,
                       "invitedUser": {"id": case.target}, "invitedUserType": case.user_type});
    let console = |page: crate::browser::Page| {
        let code = if page.status.is_success() || page.status.is_redirection() {
            String::new()
        } else {
            page.alert().split_whitespace().next().unwrap_or("no alert").to_string()
        };
        (Some(page.status), code)
    };
    let browser = &mut actor.browser;
    match route {
        Route::GraphNew(version) => {
            graph(
                version,
                json!({"invitedUserEmailAddress": case.new_address, "inviteRedirectUrl": REDIRECT, "invitedUserType": case.user_type}),
            )
            .await
        }
        Route::GraphReinviteById(version) => graph(version, by_id).await,
        Route::GraphReset(version) => {
            let mut body = by_id;
            body["resetRedemption"] = json!(true);
            graph(version, body).await
        }
        Route::GuestlistResend => {
            let path = format!("/guestlist/v1/invitations/{}/resend", case.pending_invitation);
            let (status, body) = server.call_as(&actor.token, Method::POST, &path, None).await;
            (Some(status), body["error"]["code"].as_str().unwrap_or_default().to_string())
        }
        Route::ConsoleInvite => {
            browser.get("/console/invite").await;
            let fields = [("email", case.new_address.as_str()), ("redirect_url", REDIRECT), ("user_type", case.user_type)];
            console(browser.submit("/console/invite", &fields).await)
        }
        Route::ConsoleBulk => {
            let page =
                upload_csv(server, browser, &format!("inviteeEmail,inviteRedirectURL,sendEmail\n{},{REDIRECT},true\n", case.new_address))
                    .await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
            let marker = "<strong class=\"code\">";
            let code = match page.body.find(marker) {
                Some(at) => page.body[at + marker.len()..].split('<').next().unwrap().to_string(),
                None => String::new(),
            };
            (None, code)
        }
        Route::ConsoleResend => {
            browser.get(&format!("/console/guests/{}", case.target)).await;
            console(browser.submit(&format!("/console/guests/{}/resend", case.target), &[]).await)
        }
        Route::ConsoleReset => {
            browser.get(&format!("/console/guests/{}/reset", case.target)).await;
            let fields = [("email", case.target_address.as_str()), ("redirect_url", REDIRECT), ("send_mail", "on")];
            console(browser.submit(&format!("/console/guests/{}/reset", case.target), &fields).await)
        }
        Route::ConsoleResetToNewAddress => {
            browser.get(&format!("/console/guests/{}/reset", case.target)).await;
            let moved = format!("moved.{}", case.target_address);
            let fields = [("email", "new"), ("new_email", moved.as_str()), ("redirect_url", REDIRECT), ("send_mail", "on")];
            console(browser.submit(&format!("/console/guests/{}/reset", case.target), &fields).await)
        }
    }
}

/// Sends every applicable route and asserts each is refused with `status` and `code`, and that
/// nothing changed.
async fn assert_all_refused(server: &TestServer, actor: &mut Actor, case: &Case, routes: &[Route], status: StatusCode, code: &str) {
    let before = snapshot(server).await;
    for route in routes {
        let (answered, answered_code) = send(server, actor, *route, case).await;
        assert_eq!(answered_code, code, "{route:?}");
        if let Some(answered) = answered {
            assert_eq!(answered, status, "{route:?}");
        }
    }
    assert_eq!(snapshot(server).await, before, "refused invitations changed nothing");
}

async fn set_allow_invites_from(server: &TestServer, value: &str) {
    let (status, body) = server.patch("/v1.0/policies/authorizationPolicy", json!({"allowInvitesFrom": value})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

async fn set_blocked_domains(server: &TestServer, blocked: &[&str]) {
    let inner = json!({"B2BManagementPolicy": {"InvitationsAllowedAndBlockedDomainsPolicy": {"BlockedDomains": blocked}}});
    let body = json!({"type": "B2BManagementPolicy", "definition": [inner.to_string()]});
    let (status, body) = server.call(Method::PUT, "/guestlist/v1/tenant/invitationDomainPolicy", Some(body)).await;
    assert!(status.is_success(), "{status} {body}");
}

async fn set_throttle(server: &TestServer, throttle: Option<InvitationThrottle>) {
    let store = &server.services().store;
    let mut tenant = store.tenant(&server.connection.tenant_id).await.unwrap().unwrap();
    tenant.invitation_throttle = throttle;
    store.update_tenant(&tenant).await.unwrap();
}

both_engines! {
    async fn every_invitation_route_is_refused_when_the_gate_refuses(server: TestServer) {
        let mut admin = actor(&server, "root", GLOBAL_ADMINISTRATOR).await;

        // allowInvitesFrom `none`: nobody sends, not even a Global Administrator; listing goes too.
        let (target, pending_invitation) = guest(&server, "nora@example.com", "Guest").await;
        let case = Case { new_address: "new.nora@example.com".into(), user_type: "Guest", target, target_address: "nora@example.com".into(), pending_invitation };
        set_allow_invites_from(&server, "none").await;
        assert_all_refused(&server, &mut admin, &case, &INVITATION_ROUTES, StatusCode::FORBIDDEN, "Authorization_RequestDenied").await;
        let (status, body) = server.call_as(&admin.token, Method::GET, "/guestlist/v1/invitations?state=pending", None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_graph_error(&body, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.");
        set_allow_invites_from(&server, "everyone").await;

        // A blocked domain: new, re-sent and reset invitations to it alike.
        let (target, pending_invitation) = guest(&server, "bea@blocked.example", "Guest").await;
        let case = Case { new_address: "new.bea@blocked.example".into(), user_type: "Guest", target, target_address: "bea@blocked.example".into(), pending_invitation };
        set_blocked_domains(&server, &["blocked.example"]).await;
        assert_all_refused(&server, &mut admin, &case, &INVITATION_ROUTES, StatusCode::BAD_REQUEST, "BadRequest").await;
        set_blocked_domains(&server, &[]).await;

        // A Member invitation by someone who isn't an admin: a Guest Inviter. Resets keep the
        // user's type (the member rule doesn't apply) and the bulk file has no type column.
        let mut inviter = actor(&server, "gina", GUEST_INVITER).await;
        let (target, pending_invitation) = guest(&server, "mia@example.com", "Member").await;
        let case = Case { new_address: "new.mia@example.com".into(), user_type: "Member", target, target_address: "mia@example.com".into(), pending_invitation };
        let member_routes = [Route::GraphNew("v1.0"), Route::GraphNew("beta"), Route::GraphReinviteById("v1.0"), Route::GraphReinviteById("beta"), Route::GuestlistResend, Route::ConsoleInvite, Route::ConsoleResend];
        assert_all_refused(&server, &mut inviter, &case, &member_routes, StatusCode::FORBIDDEN, "Authorization_RequestDenied").await;
        // Inviting an internal member by id converts it (B2B collaboration for internal users): admins only too.
        let internal = member(&server, "ivan", None).await;
        let case = Case { new_address: "ivan@contoso.onmicrosoft.com".into(), user_type: "Guest", target: internal, target_address: "ivan@contoso.onmicrosoft.com".into(), pending_invitation: String::new() };
        assert_all_refused(&server, &mut inviter, &case, &[Route::GraphReinviteById("v1.0"), Route::GraphReinviteById("beta")], StatusCode::FORBIDDEN, "Authorization_RequestDenied").await;

        // The throttle: an allowance of none, so no request gets through whatever the clock does.
        let (target, pending_invitation) = guest(&server, "theo@example.com", "Guest").await;
        let case = Case { new_address: "new.theo@example.com".into(), user_type: "Guest", target, target_address: "theo@example.com".into(), pending_invitation };
        set_throttle(&server, Some(InvitationThrottle { requests: 0, window_seconds: 3600 })).await;
        assert_all_refused(&server, &mut admin, &case, &INVITATION_ROUTES, StatusCode::TOO_MANY_REQUESTS, "TooManyRequests").await;
        set_throttle(&server, None).await;

        // A protected target: a guest holding Global Administrator, for a User Administrator and
        // an app with User.ReadWrite.All; a Global Administrator gets through every route.
        let (target, pending_invitation) = guest(&server, "gail@example.com", "Guest").await;
        assign(&server, &target, GLOBAL_ADMINISTRATOR).await;
        let case = Case { new_address: "gail@example.com".into(), user_type: "Guest", target, target_address: "gail@example.com".into(), pending_invitation };
        let mut user_admin = actor(&server, "uma", USER_ADMINISTRATOR).await;
        assert_all_refused(&server, &mut user_admin, &case, &INVITATION_ROUTES, StatusCode::FORBIDDEN, "Authorization_RequestDenied").await;
        let mut app = Actor { token: server.token_with(&[AppPermission::UserReadWriteAll]).await, browser: Browser::new(&server) };
        let app_routes = [Route::GraphNew("v1.0"), Route::GraphNew("beta"), Route::GraphReinviteById("v1.0"), Route::GraphReinviteById("beta"), Route::GraphReset("v1.0"), Route::GraphReset("beta"), Route::GuestlistResend];
        assert_all_refused(&server, &mut app, &case, &app_routes, StatusCode::FORBIDDEN, "Authorization_RequestDenied").await;
        let mut case = case;
        for route in INVITATION_ROUTES {
            // Each re-send revokes the pending invitation; the next route resends the newest.
            let (status, body) = server.get("/guestlist/v1/invitations?state=pending").await;
            assert_eq!(status, StatusCode::OK, "{body}");
            case.pending_invitation = body["value"].as_array().unwrap().iter().find(|i| i["invitedUserId"] == case.target.as_str()).expect("a pending invitation")["id"].as_str().unwrap().to_string();
            let (_, code) = send(&server, &mut admin, route, &case).await;
            assert_eq!(code, "", "{route:?}: a Global Administrator may");
        }
    }
}

/// Every route that changes an existing user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UserRoute {
    Patch(&'static str),
    Disable(&'static str),
    AddSponsor,
    ResetRedemption,
    GraphDelete,
    ConsoleDelete,
}

const USER_ROUTES: [UserRoute; 8] = [
    UserRoute::Patch("v1.0"),
    UserRoute::Patch("beta"),
    UserRoute::Disable("v1.0"),
    UserRoute::Disable("beta"),
    UserRoute::AddSponsor,
    UserRoute::ResetRedemption,
    UserRoute::GraphDelete,
    UserRoute::ConsoleDelete,
];

/// Sends `route` against `target` (whose mail is `address`); the status and Graph error code.
async fn change_user(
    server: &TestServer,
    actor: &mut Actor,
    route: UserRoute,
    target: &str,
    address: &str,
    sponsor: &str,
) -> (StatusCode, String) {
    let call = |method: Method, path: String, body: Option<Value>| {
        let token = actor.token.clone();
        async move {
            let (status, body) = server.call_as(&token, method, &path, body).await;
            (status, body["error"]["code"].as_str().unwrap_or_default().to_string())
        }
    };
    match route {
        UserRoute::Patch(version) => {
            call(Method::PATCH, format!("/{version}/users/{target}"), Some(json!({"displayName": "Renamed"}))).await
        }
        UserRoute::Disable(version) => {
            call(Method::PATCH, format!("/{version}/users/{target}"), Some(json!({"accountEnabled": false}))).await
        }
        UserRoute::AddSponsor => {
            let reference = format!("https://graph.microsoft.com/v1.0/users/{sponsor}");
            call(Method::POST, format!("/v1.0/users/{target}/sponsors/$ref"), Some(json!({"@odata.id": reference}))).await
        }
        UserRoute::ResetRedemption => {
            let body = json!({"invitedUserEmailAddress": address, "inviteRedirectUrl": REDIRECT, "invitedUser": {"id": target}, "resetRedemption": true});
            call(Method::POST, "/v1.0/invitations".into(), Some(body)).await
        }
        UserRoute::GraphDelete => call(Method::DELETE, format!("/v1.0/users/{target}"), None).await,
        UserRoute::ConsoleDelete => {
            let browser = &mut actor.browser;
            browser.get(&format!("/console/guests/{target}/delete")).await;
            let page = browser.submit(&format!("/console/guests/{target}/delete"), &[]).await;
            let code = if page.status.is_redirection() {
                String::new()
            } else {
                page.alert().split_whitespace().next().unwrap_or("no alert").to_string()
            };
            (page.status, code)
        }
    }
}

both_engines! {
    async fn user_changes_on_a_global_administrator_need_a_global_administrator(server: TestServer) {
        let sponsor = member(&server, "sam", None).await;
        let target = member(&server, "gabe", Some(GLOBAL_ADMINISTRATOR)).await;
        let address = "gabe@contoso.onmicrosoft.com";
        let mut callers = [
            ("User Administrator", actor(&server, "uma", USER_ADMINISTRATOR).await),
            ("Helpdesk Administrator", actor(&server, "hal", HELPDESK_ADMINISTRATOR).await),
            ("app with User.ReadWrite.All", Actor { token: server.token_with(&[AppPermission::UserReadWriteAll]).await, browser: Browser::new(&server) }),
        ];
        let before = snapshot(&server).await;
        for (name, caller) in callers.iter_mut() {
            for route in USER_ROUTES {
                // The console is for people; an app has no session there.
                if route == UserRoute::ConsoleDelete && name.starts_with("app") {
                    continue;
                }
                let (status, code) = change_user(&server, caller, route, &target, address, &sponsor).await;
                assert_eq!((status, code.as_str()), (StatusCode::FORBIDDEN, "Authorization_RequestDenied"), "{name} {route:?}");
            }
        }
        assert_eq!(snapshot(&server).await, before, "refused changes changed nothing");

        // The same User Administrator may change a User Administrator (Entra's table), and a
        // Global Administrator may change the Global Administrator, route by route.
        let peer = member(&server, "ursula", Some(USER_ADMINISTRATOR)).await;
        let (status, code) = change_user(&server, &mut callers[0].1, UserRoute::Patch("v1.0"), &peer, "ursula@contoso.onmicrosoft.com", &sponsor).await;
        assert_eq!((status, code.as_str()), (StatusCode::NO_CONTENT, ""));
        let mut root = actor(&server, "root", GLOBAL_ADMINISTRATOR).await;
        let second = member(&server, "gwen", Some(GLOBAL_ADMINISTRATOR)).await;
        for route in USER_ROUTES {
            // One delete each: the console's on the second Global Administrator.
            let target = if route == UserRoute::ConsoleDelete { &second } else { &target };
            let (status, code) = change_user(&server, &mut root, route, target, address, &sponsor).await;
            assert!(status.is_success() || status.is_redirection(), "{route:?}: {status} {code}");
        }
        for gone in [&target, &second] {
            let (status, _) = server.get(&format!("/v1.0/users/{gone}")).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "deleted");
        }
    }
}
