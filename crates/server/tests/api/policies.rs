//! External collaboration settings: `authorizationPolicy` (who may invite) and the invitation
//! domain allow/deny list (`B2BManagementPolicy`), at invite time and at redemption (issue 5 item 3).

use guestlist_domain::permissions::AppPermission;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{assert_graph_error, both_engines, TestServer};

const DOMAIN_POLICY: &str = "/guestlist/v1/tenant/invitationDomainPolicy";

fn definition(allowed: &[&str], blocked: &[&str]) -> Value {
    let text = json!({"B2BManagementPolicy": {"InvitationsAllowedAndBlockedDomainsPolicy": {"AllowedDomains": allowed, "BlockedDomains": blocked}}});
    json!({"definition": [text.to_string()]})
}

async fn put_domain_policy(server: &TestServer, body: Value) -> (StatusCode, Value) {
    let response = server
        .http
        .put(format!("{}{DOMAIN_POLICY}", server.connection.graph_url))
        .bearer_auth(&server.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn try_invite(server: &TestServer, token: &str, email: &str) -> (StatusCode, Value) {
    let body = json!({"invitedUserEmailAddress": email, "inviteRedirectUrl": "https://myapps.microsoft.com"});
    server.call_as(token, Method::POST, "/v1.0/invitations", Some(body)).await
}

async fn policy_audits(server: &TestServer) -> Vec<guestlist_domain::audit::AuditRecord> {
    let tenant = guestlist_domain::ids::ObjectId::parse(&server.connection.tenant_id).unwrap();
    let records = server.services().store.audit_records(tenant, 999).await.unwrap();
    records.into_iter().filter(|a| a.activity_display_name == "Update policy").collect()
}

both_engines! {
    async fn authorization_policy_reads_patches_validates_and_audits(server: TestServer) {
        let (status, policy) = server.get("/v1.0/policies/authorizationPolicy").await;
        assert_eq!(status, StatusCode::OK, "{policy}");
        assert_eq!(policy["id"], "authorizationPolicy");
        assert_eq!(policy["allowInvitesFrom"], "everyone");
        assert_eq!(policy["guestUserRoleId"], "10dae51f-b6af-4016-8d66-8c2a99b929b3");
        assert_eq!(policy["defaultUserRolePermissions"]["allowedToReadOtherUsers"], true);

        for bad in [json!({"allowInvitesFrom": "admins"}), json!({"guestUserRoleId": "62e90394-69f5-4237-9190-012177145e10"}),
            json!({"allowInvitesFrom": "none", "displayName": "x"}), json!({"allowedToUseSSPR": "yes"})] {
            let (status, body) = server.patch("/v1.0/policies/authorizationPolicy", bad.clone()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
            assert_graph_error(&body, "Request_BadRequest", "");
        }
        let (_, unchanged) = server.get("/v1.0/policies/authorizationPolicy").await;
        assert_eq!(unchanged, policy, "a refused PATCH changes nothing");
        assert!(policy_audits(&server).await.is_empty());

        let (status, body) = server
            .patch("/v1.0/policies/authorizationPolicy", json!({"allowInvitesFrom": "adminsAndGuestInviters", "guestUserRoleId": "2af84b1e-32c8-42b7-82bc-daa82404023b"}))
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (_, changed) = server.get("/v1.0/policies/authorizationPolicy").await;
        assert_eq!(changed["allowInvitesFrom"], "adminsAndGuestInviters");
        assert_eq!(changed["guestUserRoleId"], "2af84b1e-32c8-42b7-82bc-daa82404023b");
        let audits = policy_audits(&server).await;
        assert_eq!(audits.len(), 1);
        assert_eq!((audits[0].category.as_str(), audits[0].logged_by_service.as_str()), ("Policy", "Core Directory"));
        assert_eq!(audits[0].target_resources[0].id, "authorizationPolicy");
        assert_eq!(audits[0].target_resources[0].modified_properties[0].display_name, "PolicyDetails");

        let reader = server.token_with(&[AppPermission::PolicyReadAll]).await;
        let (status, _) = server.call_as(&reader, Method::GET, "/v1.0/policies/authorizationPolicy", None).await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = server.call_as(&reader, Method::PATCH, "/v1.0/policies/authorizationPolicy", Some(json!({"allowInvitesFrom": "none"}))).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_graph_error(&body, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.");
    }

    async fn allow_invites_from_none_stops_app_invitations(server: TestServer) {
        let inviter = server.token_with(&[AppPermission::UserInviteAll]).await;
        let (status, _) = server.patch("/v1.0/policies/authorizationPolicy", json!({"allowInvitesFrom": "adminsAndGuestInviters"})).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        // Graph-docs PR #9556: apps still invite when invitations are limited to admins.
        let (status, body) = try_invite(&server, &inviter, "first@example.com").await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        let (status, _) = server.patch("/v1.0/policies/authorizationPolicy", json!({"allowInvitesFrom": "none"})).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let users = server.user_count().await;
        let (status, body) = try_invite(&server, &inviter, "second@example.com").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_graph_error(&body, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.");
        assert_eq!(server.user_count().await, users);
        // Without an invitation permission the app still gets the invitation API's own 401.
        let reader = server.token_with(&[AppPermission::UserReadAll]).await;
        let (status, body) = try_invite(&server, &reader, "third@example.com").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_graph_error(&body, "Unauthorized", "MSGraphInviteAPI");
    }

    async fn the_domain_list_at_invite_time(server: TestServer) {
        let (status, body) = put_domain_policy(&server, definition(&[], &["blocked.example"])).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let users = server.user_count().await;
        let (status, body) = try_invite(&server, &server.token, "eve@Blocked.example").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_graph_error(&body, "BadRequest", "The domain of the user is currently blocked by your invitation policy");
        assert_eq!(server.user_count().await, users, "a refused invite changes nothing");
        let (status, _) = try_invite(&server, &server.token, "ok@fine.example").await;
        assert_eq!(status, StatusCode::CREATED);

        // Switching to an allow list discards the block list.
        let (status, _) = put_domain_policy(&server, definition(&["partner.example"], &[])).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = try_invite(&server, &server.token, "eve@blocked.example").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = try_invite(&server, &server.token, "other@fine.example").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, body) = try_invite(&server, &server.token, "pat@partner.example").await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        let response = server.http.get(format!("{}{DOMAIN_POLICY}", server.connection.graph_url)).bearer_auth(&server.token).send().await.unwrap();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["type"], "B2BManagementPolicy");
        let stored: Value = serde_json::from_str(body["definition"][0].as_str().unwrap()).unwrap();
        assert_eq!(stored["B2BManagementPolicy"]["InvitationsAllowedAndBlockedDomainsPolicy"]["AllowedDomains"], json!(["partner.example"]));
        assert_eq!(stored["B2BManagementPolicy"]["InvitationsAllowedAndBlockedDomainsPolicy"]["BlockedDomains"], json!([]));

        let audits = policy_audits(&server).await;
        assert_eq!(audits.len(), 2);
        assert!(audits.iter().all(|a| a.target_resources[0].display_name.as_deref() == Some("B2BManagementPolicy")));
        assert!(audits.iter().all(|a| a.target_resources[0].modified_properties[0].display_name == "PolicyDetails"));
    }

    async fn the_domain_list_is_validated_and_capped(server: TestServer) {
        let both = definition(&["a.example"], &["b.example"]);
        let mut over: Vec<String> = Vec::new();
        while json!({"B2BManagementPolicy": {"InvitationsAllowedAndBlockedDomainsPolicy": {"AllowedDomains": [], "BlockedDomains": over}}}).to_string().len() <= 25_000 {
            over.push(format!("d{:08}.example.com", over.len()));
        }
        let over_refs: Vec<&str> = over.iter().map(String::as_str).collect();
        let fits_refs: Vec<&str> = over_refs[..over_refs.len() - 1].to_vec();
        for bad in [both, definition(&[], &over_refs), definition(&["not a domain"], &[]), json!({"definition": "x"})] {
            let (status, body) = put_domain_policy(&server, bad).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        }
        assert!(policy_audits(&server).await.is_empty(), "refused lists change nothing");
        let (status, body) = put_domain_policy(&server, definition(&[], &fits_refs)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let reader = server.token_with(&[AppPermission::PolicyReadAll]).await;
        let response = server.http.put(format!("{}{DOMAIN_POLICY}", server.connection.graph_url)).bearer_auth(&reader).json(&definition(&[], &[])).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }

    async fn a_pending_invitation_to_a_newly_blocked_domain_fails_at_redemption(server: TestServer) {
        let invited = server.invite("sam@soon-blocked.example").await;
        let link = invited["inviteRedeemUrl"].as_str().unwrap().to_string();
        let landing = server.http.get(&link).send().await.unwrap();
        assert_eq!(landing.status(), StatusCode::OK);
        let (status, _) = put_domain_policy(&server, definition(&[], &["soon-blocked.example"])).await;
        assert_eq!(status, StatusCode::OK);
        let refused = server.http.get(&link).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        let page = refused.text().await.unwrap();
        assert!(page.contains("no longer accepts guests from your email domain"), "{page}");
        let guest = invited["invitedUser"]["id"].as_str().unwrap();
        assert_eq!(server.user(guest, "externalUserState").await["externalUserState"], "PendingAcceptance");
        // Unblocked again, the same link works: nothing was consumed.
        let (status, _) = put_domain_policy(&server, definition(&[], &[])).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(server.http.get(&link).send().await.unwrap().status(), StatusCode::OK);
    }
}

async fn guestlist(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_guestlist"))
            .args(&args)
            .env_remove("GUESTLIST_CONNECTION")
            .output()
            .expect("run guestlist")
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_set_invitation_domains() {
    let server = TestServer::start(crate::harness::Engine::Sqlite).await;
    let data_dir = server.data_dir.path().display().to_string();
    let set = |value: &str| {
        vec!["tenant".into(), "set".into(), "--data-dir".into(), data_dir.clone(), "--invitation-domains".into(), value.into()]
    };
    let output = guestlist(set("block:cli-blocked.example,other.example")).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let (status, body) = try_invite(&server, &server.token, "x@cli-blocked.example").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(!guestlist(set("deny:x.example")).await.status.success());
    assert!(!guestlist(set("allow:")).await.status.success());
    assert_eq!(policy_audits(&server).await.len(), 1, "refused values change nothing");
    assert!(guestlist(set("any")).await.status.success());
    let (status, body) = try_invite(&server, &server.token, "x@cli-blocked.example").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(policy_audits(&server).await.len(), 2);
}
