//! The admin console over HTTP (issue 5 item 4), both engines: its session, and that each page
//! action lands in the directory exactly as the Graph call it stands for, with Graph's refusal
//! text when a rule says no. The browser tests (e2e/tests/console.test.mjs) drive the same pages
//! in Chromium.

use reqwest::header::{CONTENT_SECURITY_POLICY, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::browser::Browser;
use crate::harness::{both_engines, TestServer};

const PASSWORD: &str = "Corr3ct-Horse!";
const GUEST_INVITER: &str = "95e79109-95c0-4d8e-aee3-d01accf2d47b";
const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";

async fn admin_browser(server: &TestServer) -> Browser {
    member_browser(server, "root", GLOBAL_ADMINISTRATOR).await.0
}

/// A member with one directory role, signed in to the console.
async fn member_browser(server: &TestServer, alias: &str, role_template: &str) -> (Browser, String) {
    let upn = format!("{alias}@contoso.onmicrosoft.com");
    let (status, body) = server
        .post(
            "/v1.0/users",
            json!({"accountEnabled": true, "displayName": alias, "mailNickname": alias, "userPrincipalName": upn,
                   "passwordProfile": {"password": PASSWORD, "forceChangePasswordNextSignIn": false}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let (status, body) = server
        .post(
            "/v1.0/roleManagement/directory/roleAssignments",
            json!({"principalId": id, "roleDefinitionId": role_template, "directoryScopeId": "/"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut browser = Browser::new(server);
    assert_eq!(browser.console_sign_in(&upn, PASSWORD).await.status, StatusCode::SEE_OTHER);
    (browser, id)
}

/// The guest id a successful invite or reset redirected to.
fn guest_id_from(location: &str) -> String {
    location.trim_start_matches("/console/guests/").split(['?', '/']).next().unwrap().to_string()
}

async fn pending_invitation_ids(server: &TestServer, user_id: &str) -> Vec<String> {
    let (status, body) = server.get("/guestlist/v1/invitations?state=pending").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["invitedUserId"] == user_id)
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

/// Uploads a bulk invitation file the way the invite page's form does (multipart, CSRF token).
pub(crate) async fn upload_csv(server: &TestServer, admin: &mut Browser, csv: &str) -> crate::browser::Page {
    admin.get("/console/invite").await;
    let boundary = "guestlist-test-boundary";
    let token = admin.csrf_token.clone().unwrap();
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"send_mail\"\r\n\r\non\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"guests.csv\"\r\nContent-Type: text/csv\r\n\r\n{csv}\r\n--{boundary}--\r\n"
    );
    let request = admin
        .http
        .post(server.url("/console/invite/bulk"))
        .header("origin", &admin.origin)
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body);
    admin.send(request).await
}

/// The guest ids a list page links to.
fn listed_guests(body: &str) -> Vec<String> {
    body.match_indices("href=\"/console/guests/").map(|(at, m)| body[at + m.len()..at + m.len() + 36].to_string()).collect()
}

both_engines! {
    async fn pages_need_a_session_and_sign_in_sets_a_strict_host_cookie(server: TestServer) {
        let mut browser = Browser::new(&server);
        let answer = browser.get("/console/guests?state=pending").await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER);
        assert_eq!(answer.location().as_str(), "/console/signin?next=%2Fconsole%2Fguests%3Fstate%3Dpending");

        let (_, root) = member_browser(&server, "root", GLOBAL_ADMINISTRATOR).await;
        let upn = server.user(&root, "userPrincipalName").await["userPrincipalName"].as_str().unwrap().to_string();
        let wrong = browser.console_sign_in(&upn, "not-the-password").await;
        assert_eq!(wrong.status, StatusCode::OK);
        assert!(wrong.alert().contains("Your account or password is incorrect."), "{}", wrong.alert());
        assert!(!browser.cookies.contains_key("__Host-guestlist-console"));

        let right = browser.console_sign_in(&upn, PASSWORD).await;
        assert_eq!(right.status, StatusCode::SEE_OTHER);
        let set = right.headers.get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_string()).find(|c| c.starts_with("__Host-guestlist-console=")).expect("session cookie");
        for attribute in ["Path=/", "HttpOnly", "SameSite=Strict", "Secure", "Max-Age="] {
            assert!(set.contains(attribute), "{set} lacks {attribute}");
        }
        let guests = browser.get("/console/guests").await;
        assert_eq!(guests.status, StatusCode::OK);
        assert!(guests.body.contains(&format!("Signed in as {upn}")));
        let csp = guests.headers.get(CONTENT_SECURITY_POLICY).unwrap().to_str().unwrap();
        assert!(csp.starts_with("default-src 'none'") && csp.contains("form-action 'self'"), "{csp}");

        // A form from another site is refused, and sign-out ends the session in this browser.
        let users = server.user_count().await;
        let mut forged = browser.http.post(server.url("/console/invite")).header("cookie", browser.cookie_header()).header("origin", "https://evil.example");
        forged = forged.form(&[("email", "x@example.com"), ("redirect_url", "https://x.example"), ("csrf_token", browser.csrf_token.as_deref().unwrap())]);
        assert_eq!(forged.send().await.unwrap().status(), StatusCode::FORBIDDEN);
        assert_eq!(server.user_count().await, users, "the forged form created nothing");
        let signed_out = browser.submit("/console/signout", &[]).await;
        assert_eq!((signed_out.status, signed_out.location().as_str()), (StatusCode::SEE_OTHER, "/console/signin?signed_out=1"));
        assert_eq!(browser.get("/console/guests").await.status, StatusCode::SEE_OTHER);
    }

    async fn a_member_who_must_change_the_password_does_so_at_sign_in(server: TestServer) {
        const NEW_PASSWORD: &str = "N3w-Battery-Staple";
        let upn = "nadia@contoso.onmicrosoft.com";
        // forceChangePasswordNextSignIn left out: Graph's default, true.
        let (status, body) = server
            .post("/v1.0/users", json!({"accountEnabled": true, "displayName": "Nadia", "mailNickname": "nadia", "userPrincipalName": upn,
                "passwordProfile": {"password": PASSWORD}}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["id"].as_str().unwrap();
        let (status, body) = server
            .post("/v1.0/roleManagement/directory/roleAssignments", json!({"principalId": id, "roleDefinitionId": GUEST_INVITER, "directoryScopeId": "/"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        let mut browser = Browser::new(&server);
        let asked = browser.console_sign_in(upn, PASSWORD).await;
        assert_eq!(asked.status, StatusCode::OK);
        assert!(asked.body.contains("<h1>Update your password</h1>") && asked.body.contains("name=\"next\" value=\"&#x2f;console&#x2f;guests\""), "{}", asked.body);
        let change = |new: &'static str, confirm: &'static str| {
            [("username", upn), ("password", PASSWORD), ("new_password", new), ("confirm_password", confirm), ("next", "/console/guests")]
        };
        let weak = browser.submit("/console/signin", &change("weakweak", "weakweak")).await;
        assert_eq!(weak.status, StatusCode::OK);
        assert!(weak.alert().contains("does not comply with password complexity requirements"), "{}", weak.alert());
        let mismatch = browser.submit("/console/signin", &change(NEW_PASSWORD, "N3w-Battery-Stable")).await;
        assert!(mismatch.alert().contains("The new passwords don't match."), "{}", mismatch.alert());
        assert!(!browser.cookies.contains_key("__Host-guestlist-console"), "no session before the change");

        let done = browser.submit("/console/signin", &change(NEW_PASSWORD, NEW_PASSWORD)).await;
        assert_eq!((done.status, done.location().as_str()), (StatusCode::SEE_OTHER, "/console/guests"), "{}", done.alert());
        assert!(browser.cookies.contains_key("__Host-guestlist-console"));
        let guests = browser.get("/console/guests").await;
        assert_eq!(guests.status, StatusCode::OK);
        assert!(guests.body.contains(&format!("Signed in as {upn}")));

        // The old password is gone; the new one signs straight in.
        let mut later = Browser::new(&server);
        assert!(later.console_sign_in(upn, PASSWORD).await.alert().contains("Your account or password is incorrect."));
        assert_eq!(later.console_sign_in(upn, NEW_PASSWORD).await.status, StatusCode::SEE_OTHER);
    }

    async fn invite_reset_and_resend_land_as_their_graph_calls(server: TestServer) {
        let mut admin = admin_browser(&server).await;
        admin.get("/console/invite").await;
        let invited = admin
            .submit("/console/invite", &[("email", "ann@example.com"), ("display_name", "Ann"), ("redirect_url", "https://myapps.microsoft.com"), ("user_type", "Guest")])
            .await;
        assert_eq!(invited.status, StatusCode::SEE_OTHER, "{}", invited.alert());
        let id = guest_id_from(invited.location().as_str());
        let user = server.user(&id, "id,userType,externalUserState,mail,creationType").await;
        assert_eq!((user["userType"].as_str(), user["externalUserState"].as_str()), (Some("Guest"), Some("PendingAcceptance")));
        let (_, sponsors) = server.get(&format!("/v1.0/users/{id}/sponsors")).await;
        assert_eq!(sponsors["value"][0]["userPrincipalName"], "root@contoso.onmicrosoft.com", "the inviting person sponsors the guest");
        let page = admin.get(&format!("/console/guests/{id}?done=invited")).await;
        assert!(page.body.contains("Invitation sent.") && page.body.contains("Invite external user"), "the audit history shows the invite");
        // Mail is off on this server: the page shows the redeem link, once, and it works.
        let start = page.body.find("<code>").expect("the redeem link is shown") + "<code>".len();
        let link = crate::browser::html_unescape(&page.body[start..start + page.body[start..].find("</code>").unwrap()]);
        assert!(link.starts_with(&format!("{}/redeem?", server.connection.graph_url)), "{link}");
        assert!(!admin.get(&format!("/console/guests/{id}")).await.body.contains("shown only once"), "only once");
        let landing = Browser::new(&server).get(&link).await;
        assert_eq!(landing.status, StatusCode::OK, "{}", landing.body);
        assert!(landing.says("ann@example.com"), "{}", landing.body);

        // An address that is not on the user: Graph's rule, Graph's text, nothing changes.
        admin.get(&format!("/console/guests/{id}/reset")).await;
        let refused = admin.submit(&format!("/console/guests/{id}/reset"), &[("email", "stranger@example.net"), ("redirect_url", "https://myapps.microsoft.com")]).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert!(refused.alert().starts_with("BadRequest The email you’re using to invite this user doesn’t match any emails on the user object."), "{}", refused.alert());
        assert_eq!(server.user(&id, "mail").await["mail"], "ann@example.com");

        // "Another address" goes to otherMails first, then the reset moves mail to it.
        let before = pending_invitation_ids(&server, &id).await;
        let reset = admin
            .submit(&format!("/console/guests/{id}/reset"), &[("email", "new"), ("new_email", "ann@fabrikam.example"), ("redirect_url", "https://myapps.microsoft.com"), ("send_mail", "on")])
            .await;
        assert_eq!(reset.status, StatusCode::SEE_OTHER, "{}", reset.alert());
        assert_eq!(guest_id_from(reset.location().as_str()), id, "the same object");
        let user = server.user(&id, "id,mail,otherMails,externalUserState,userPrincipalName").await;
        assert_eq!(user["mail"], "ann@fabrikam.example");
        assert!(user["otherMails"].as_array().unwrap().contains(&json!("ann@fabrikam.example")));
        assert_eq!(user["externalUserState"], "PendingAcceptance");
        let after = pending_invitation_ids(&server, &id).await;
        assert_eq!(after.len(), 1);
        assert!(!before.contains(&after[0]), "the earlier link is revoked");
        let page = admin.get(&format!("/console/guests/{id}")).await;
        assert!(page.body.contains("Reset redemption"), "the invitations list the reset");

        // Resend: a new pending invitation replaces the reset's.
        let resent = admin.submit(&format!("/console/guests/{id}/resend"), &[]).await;
        assert_eq!(resent.status, StatusCode::SEE_OTHER, "{}", resent.alert());
        let again = pending_invitation_ids(&server, &id).await;
        assert_eq!(again.len(), 1);
        assert_ne!(again, after);
    }

    async fn refusals_show_graphs_error_and_change_nothing(server: TestServer) {
        let guest = server.invite("bob@example.com").await;
        let id = guest["invitedUser"]["id"].as_str().unwrap().to_string();
        let (mut inviter, _) = member_browser(&server, "gina", GUEST_INVITER).await;

        // A Guest Inviter may invite, but not reset (DECISIONS 6) nor read the settings.
        inviter.get(&format!("/console/guests/{id}/reset")).await;
        let reset = inviter.submit(&format!("/console/guests/{id}/reset"), &[("email", "bob@example.com"), ("redirect_url", "https://myapps.microsoft.com")]).await;
        assert_eq!(reset.status, StatusCode::FORBIDDEN);
        assert_eq!(reset.alert(), "Forbidden Generic authorization exception.");
        assert_eq!(pending_invitation_ids(&server, &id).await, vec![guest["id"].as_str().unwrap().to_string()], "nothing was revoked");
        let settings = inviter.get("/console/settings").await;
        assert!(settings.alert().starts_with("Authorization_RequestDenied Insufficient privileges"), "{}", settings.alert());
        let member = inviter.submit("/console/invite", &[("email", "m@example.com"), ("redirect_url", "https://x.example"), ("user_type", "Member")]).await;
        assert_eq!(member.status, StatusCode::FORBIDDEN, "a Member invitation is for admins");
        assert!(member.alert().starts_with("Authorization_RequestDenied"), "{}", member.alert());
        let ok = inviter.submit("/console/invite", &[("email", "carl@example.com"), ("redirect_url", "https://x.example"), ("user_type", "Guest")]).await;
        assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.alert());

        // The admin blocks a domain in the settings; inviting it then shows the policy's text.
        let mut admin = admin_browser(&server).await;
        admin.get("/console/settings").await;
        let saved = admin.submit("/console/settings/domains", &[("mode", "block"), ("domains", "blocked.example\nworse.example")]).await;
        assert_eq!((saved.status, saved.location().as_str()), (StatusCode::SEE_OTHER, "/console/settings?done=saved"));
        let (_, policy) = server.get("/guestlist/v1/tenant/invitationDomainPolicy").await;
        let definition: Value = serde_json::from_str(policy["definition"][0].as_str().unwrap()).unwrap();
        let lists = &definition["B2BManagementPolicy"]["InvitationsAllowedAndBlockedDomainsPolicy"];
        assert_eq!(lists["BlockedDomains"], json!(["blocked.example", "worse.example"]), "{policy}");
        let users = server.user_count().await;
        let blocked = admin.submit("/console/invite", &[("email", "x@blocked.example"), ("redirect_url", "https://x.example")]).await;
        assert_eq!(blocked.status, StatusCode::BAD_REQUEST);
        assert!(blocked.alert().contains("currently blocked by your invitation policy"), "{}", blocked.alert());
        assert_eq!(server.user_count().await, users);
        let invites = admin.submit("/console/settings/invitations", &[("allow_invites_from", "adminsAndGuestInviters"), ("guest_user_role", "2af84b1e-32c8-42b7-82bc-daa82404023b")]).await;
        assert_eq!(invites.status, StatusCode::SEE_OTHER, "{}", invites.alert());
        let (_, policy) = server.get("/v1.0/policies/authorizationPolicy").await;
        assert_eq!((policy["allowInvitesFrom"].as_str(), policy["guestUserRoleId"].as_str()), (Some("adminsAndGuestInviters"), Some("2af84b1e-32c8-42b7-82bc-daa82404023b")));
        let bad = admin.submit("/console/settings/invitations", &[("allow_invites_from", "sometimes")]).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert!(bad.alert().starts_with("Request_BadRequest"), "{}", bad.alert());
        let (_, unchanged) = server.get("/v1.0/policies/authorizationPolicy").await;
        assert_eq!(unchanged["allowInvitesFrom"], "adminsAndGuestInviters");
    }

    async fn deleting_a_guest_goes_through_delete_users(server: TestServer) {
        let ann = server.invite("ann@example.com").await["invitedUser"]["id"].as_str().unwrap().to_string();
        let bob = server.invite("bob@example.com").await["invitedUser"]["id"].as_str().unwrap().to_string();

        // A Guest Inviter may not delete users: Graph's refusal, and the guest stays.
        let (mut inviter, _) = member_browser(&server, "gina", GUEST_INVITER).await;
        let confirm = inviter.get(&format!("/console/guests/{bob}/delete")).await;
        assert_eq!(confirm.status, StatusCode::OK);
        let refused = inviter.submit(&format!("/console/guests/{bob}/delete"), &[]).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert!(refused.alert().starts_with("Authorization_RequestDenied Insufficient privileges"), "{}", refused.alert());
        assert_eq!(server.get(&format!("/v1.0/users/{bob}")).await.0, StatusCode::OK);

        let mut admin = admin_browser(&server).await;
        let confirm = admin.get(&format!("/console/guests/{ann}/delete")).await;
        assert!(confirm.body.contains("<h1>Delete guest</h1>") && confirm.says("ann@example.com"), "{}", confirm.body);
        let deleted = admin.submit(&format!("/console/guests/{ann}/delete"), &[]).await;
        assert_eq!((deleted.status, deleted.location().as_str()), (StatusCode::SEE_OTHER, "/console/guests?done=deleted"), "{}", deleted.alert());
        assert_eq!(server.get(&format!("/v1.0/users/{ann}")).await.0, StatusCode::NOT_FOUND);
        let list = admin.get("/console/guests?done=deleted").await;
        assert!(list.says("Guest deleted.") && !list.says("ann@example.com") && list.says("bob@example.com"));
        let filter = format!("/v1.0/auditLogs/directoryAudits?$filter=targetResources/any(t:t/id eq '{ann}')");
        let (_, audits) = server.get(&filter).await;
        let activities: Vec<&str> = audits["value"].as_array().unwrap().iter().map(|a| a["activityDisplayName"].as_str().unwrap()).collect();
        assert!(activities.contains(&"Delete external user"), "{activities:?}");
        let again = admin.submit(&format!("/console/guests/{ann}/delete"), &[]).await;
        assert_eq!(again.status, StatusCode::NOT_FOUND, "a second delete finds nothing");
    }

    async fn the_guest_list_pages_by_fifty(server: TestServer) {
        let mut admin = admin_browser(&server).await;
        let mut csv = String::from("inviteeEmail,inviteRedirectURL,sendEmail\n");
        for i in 0..55 {
            csv.push_str(&format!("page{i:02}@example.com,https://myapps.microsoft.com,false\n"));
        }
        let results = upload_csv(&server, &mut admin, &csv).await;
        assert!(results.body.contains("55 invited, 0 failed."), "{}", results.body);
        let first = admin.get("/console/guests?state=pending").await;
        let mut seen = listed_guests(&first.body);
        assert_eq!(seen.len(), 50);
        let marker = "<a href=\"";
        let next_at = first.body.find("rel=\"next\"").expect("a next page link");
        let start = first.body[..next_at].rfind(marker).unwrap() + marker.len();
        let next = crate::browser::html_unescape(&first.body[start..start + first.body[start..].find('"').unwrap()]);
        assert!(next.starts_with("/console/guests?state=pending&after="), "{next}");
        let second = admin.get(&next).await;
        let rest = listed_guests(&second.body);
        assert_eq!(rest.len(), 5);
        assert!(!second.body.contains("rel=\"next\""), "the last page has no next link");
        seen.extend(rest);
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 55, "every guest once");
    }

    async fn bulk_upload_invites_each_good_row_and_reports_the_others(server: TestServer) {
        let mut admin = admin_browser(&server).await;
        admin.get("/console/invite").await;
        let template = admin.get("/console/invite/template.csv").await;
        assert!(template.body.starts_with("version:v1.0"));
        let csv = format!(
            "{}dee@example.com,https://myapps.microsoft.com,false,\nnot-an-address,https://myapps.microsoft.com,,\neve@example.org,https://contoso.example/start,true,\"Hi, Eve\"\n",
            template.body.lines().take(2).map(|l| format!("{l}\n")).collect::<String>()
        );
        let results = upload_csv(&server, &mut admin, &csv).await;
        assert_eq!(results.status, StatusCode::OK);
        assert!(results.body.contains("2 invited, 1 failed."), "{}", results.body);
        assert!(results.body.contains("not-an-address"));
        let (_, found) = server.get("/v1.0/users?$filter=mail eq 'dee@example.com' or mail eq 'eve@example.org'&$select=mail").await;
        assert_eq!(found["value"].as_array().unwrap().len(), 2, "{found}");

        // The list's filters: pending, by domain, by search word.
        let pending = admin.get("/console/guests?state=pending").await;
        assert!(pending.body.contains("dee@example.com") && pending.body.contains("eve@example.org"));
        let accepted = admin.get("/console/guests?state=accepted").await;
        assert!(accepted.body.contains("No guests match"));
        let by_domain = admin.get("/console/guests?domain=example.org").await;
        assert!(by_domain.body.contains("eve@example.org") && !by_domain.body.contains("dee@example.com"));
        let by_word = admin.get("/console/guests?q=dee").await;
        assert!(by_word.body.contains("dee@example.com") && !by_word.body.contains("eve@example.org"));
        let bad = admin.get("/console/guests?state=gone").await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    }
}
