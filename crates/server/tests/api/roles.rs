//! Directory roles over Graph: `directoryRoles` and `roleManagement/directory/roleAssignments`,
//! and what holding a role does to app resets (issue 5 item 2, DECISIONS 6).

use guestlist_domain::permissions::AppPermission;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{assert_graph_error, both_engines, TestServer};

const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
const HELPDESK_ADMINISTRATOR: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";
const GUEST_INVITER: &str = "95e79109-95c0-4d8e-aee3-d01accf2d47b";

async fn member(server: &TestServer, nickname: &str) -> String {
    let (status, body) = server
        .post(
            "/v1.0/users",
            json!({"accountEnabled": true, "displayName": nickname, "mailNickname": nickname,
            "userPrincipalName": format!("{nickname}@contoso.onmicrosoft.com"), "passwordProfile": {"password": "xWwvJ]6NMw+bWH-d"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_string()
}

async fn audit_count(server: &TestServer, activity: &str) -> usize {
    let tenant = guestlist_domain::ids::ObjectId::parse(&server.connection.tenant_id).unwrap();
    server.services().store.audit_records(tenant, 999).await.unwrap().iter().filter(|a| a.activity_display_name == activity).count()
}

fn ids(body: &Value) -> Vec<String> {
    body["value"]
        .as_array()
        .unwrap_or_else(|| panic!("a collection: {body}"))
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

async fn assign(server: &TestServer, principal: &str, role: &str) -> Value {
    let (status, body) = server
        .post(
            "/v1.0/roleManagement/directory/roleAssignments",
            json!({"principalId": principal, "roleDefinitionId": role, "directoryScopeId": "/"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

both_engines! {
    async fn role_assignments_through_both_endpoint_families(server: TestServer) {
        let alice = member(&server, "alice").await;
        let bob = member(&server, "bob").await;

        // Activated roles, and the alternate key by template id.
        let (status, roles) = server.get("/v1.0/directoryRoles").await;
        assert_eq!(status, StatusCode::OK, "{roles}");
        let global = roles["value"].as_array().unwrap().iter().find(|r| r["roleTemplateId"] == GLOBAL_ADMINISTRATOR).unwrap().clone();
        assert_eq!(global["displayName"], "Global Administrator");
        assert_ne!(global["id"], GLOBAL_ADMINISTRATOR, "a directoryRole's id is not its template id");
        let global_id = global["id"].as_str().unwrap().to_string();
        for path in [
            format!("/v1.0/directoryRoles/{global_id}"),
            format!("/v1.0/directoryRoles(roleTemplateId='{GLOBAL_ADMINISTRATOR}')"),
            format!("/v1.0/directoryRoles/roleTemplateId={GLOBAL_ADMINISTRATOR}"),
        ] {
            let (status, body) = server.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            assert_eq!(body["id"], global_id.as_str());
        }
        // The alternate-key route leaves other root segments to the unknown-segment answer, for every method.
        for method in [Method::GET, Method::POST, Method::DELETE] {
            let (status, body) = server.call(method.clone(), "/v1.0/nothingHere", None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{method}: {body}");
            assert_graph_error(&body, "BadRequest", "Resource not found for the segment 'nothingHere'.");
        }
        let (status, body) = server.get("/v1.0/directoryRoles/00000000-0000-0000-0000-000000000001").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_graph_error(&body, "Request_ResourceNotFound", "does not exist");

        // unifiedRoleAssignment: create, read, filter, duplicate, delete.
        let created = assign(&server, &alice, GLOBAL_ADMINISTRATOR).await;
        assert_eq!((created["principalId"].as_str(), created["roleDefinitionId"].as_str(), created["directoryScopeId"].as_str()),
            (Some(alice.as_str()), Some(GLOBAL_ADMINISTRATOR), Some("/")));
        let assignment = created["id"].as_str().unwrap().to_string();
        let (status, body) = server.get(&format!("/v1.0/roleManagement/directory/roleAssignments/{assignment}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["principalId"], alice.as_str());
        let (status, body) = server
            .post("/v1.0/roleManagement/directory/roleAssignments", json!({"principalId": alice, "roleDefinitionId": GLOBAL_ADMINISTRATOR, "directoryScopeId": "/"}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_graph_error(&body, "Request_BadRequest", "conflicting object");
        for bad in [
            json!({"principalId": alice, "roleDefinitionId": GLOBAL_ADMINISTRATOR, "directoryScopeId": "/administrativeUnits/x"}),
            json!({"principalId": alice, "roleDefinitionId": "00000000-0000-0000-0000-000000000000", "directoryScopeId": "/"}),
            json!({"principalId": "nope", "roleDefinitionId": GLOBAL_ADMINISTRATOR, "directoryScopeId": "/"}),
        ] {
            let (status, body) = server.post("/v1.0/roleManagement/directory/roleAssignments", bad.clone()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        }
        let (status, _) = server
            .post("/v1.0/roleManagement/directory/roleAssignments", json!({"principalId": "00000000-0000-0000-0000-000000000002", "roleDefinitionId": GLOBAL_ADMINISTRATOR, "directoryScopeId": "/"}))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // directoryRoles members: add by $ref, list, both families see the same assignments.
        let (status, body) = server
            .post(&format!("/v1.0/directoryRoles/{global_id}/members/$ref"), json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{bob}")}))
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (status, body) = server
            .post(&format!("/v1.0/directoryRoles/{global_id}/members/$ref"), json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{bob}")}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_graph_error(&body, "Request_BadRequest", "already exist");
        let (_, members) = server.get(&format!("/v1.0/directoryRoles/{global_id}/members")).await;
        assert_eq!(ids(&members), vec![alice.clone(), bob.clone()]);
        assert_eq!(members["value"][0]["@odata.type"], "#microsoft.graph.user");
        let (_, listed) = server.get(&format!("/v1.0/roleManagement/directory/roleAssignments?$filter=principalId eq '{bob}'")).await;
        assert_eq!(listed["value"].as_array().unwrap().len(), 1, "{listed}");
        let (_, listed) = server.get(&format!("/v1.0/roleManagement/directory/roleAssignments?$filter=roleDefinitionId eq '{GLOBAL_ADMINISTRATOR}'")).await;
        assert_eq!(listed["value"].as_array().unwrap().len(), 2, "{listed}");

        let (status, _) = server.call(Method::DELETE, &format!("/v1.0/directoryRoles/{global_id}/members/{bob}/$ref"), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = server.call(Method::DELETE, &format!("/v1.0/directoryRoles/{global_id}/members/{bob}/$ref"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = server.call(Method::DELETE, &format!("/v1.0/roleManagement/directory/roleAssignments/{assignment}"), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = server.get(&format!("/v1.0/roleManagement/directory/roleAssignments/{assignment}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, listed) = server.get("/v1.0/roleManagement/directory/roleAssignments").await;
        assert!(listed["value"].as_array().unwrap().is_empty(), "{listed}");

        assert_eq!(audit_count(&server, "Add member to role").await, 2);
        assert_eq!(audit_count(&server, "Remove member from role").await, 2);
        let tenant = guestlist_domain::ids::ObjectId::parse(&server.connection.tenant_id).unwrap();
        let records = server.services().store.audit_records(tenant, 999).await.unwrap();
        let entry = records.iter().find(|a| a.activity_display_name == "Add member to role").unwrap();
        assert_eq!((entry.category.as_str(), entry.logged_by_service.as_str()), ("RoleManagement", "Core Directory"));

        let (status, definitions) = server.get("/v1.0/roleManagement/directory/roleDefinitions").await;
        assert_eq!(status, StatusCode::OK);
        assert!(ids(&definitions).contains(&HELPDESK_ADMINISTRATOR.to_string()));
    }

    async fn role_permissions_are_graphs(server: TestServer) {
        let alice = member(&server, "alice").await;
        let reader = server.token_with(&[AppPermission::RoleManagementReadDirectory]).await;
        let directory_reader = server.token_with(&[AppPermission::DirectoryReadAll]).await;
        let users_only = server.token_with(&[AppPermission::UserReadWriteAll]).await;
        for token in [&reader, &directory_reader] {
            let (status, body) = server.call_as(token, Method::GET, "/v1.0/directoryRoles", None).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        let (status, body) = server.call_as(&users_only, Method::GET, "/v1.0/roleManagement/directory/roleAssignments", None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_graph_error(&body, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.");
        let request = json!({"principalId": alice, "roleDefinitionId": GUEST_INVITER, "directoryScopeId": "/"});
        for token in [&reader, &directory_reader] {
            let (status, body) = server.call_as(token, Method::POST, "/v1.0/roleManagement/directory/roleAssignments", Some(request.clone())).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
            assert_graph_error(&body, "Authorization_RequestDenied", "Insufficient privileges");
        }
        let (_, listed) = server.get("/v1.0/roleManagement/directory/roleAssignments").await;
        assert!(listed["value"].as_array().unwrap().is_empty(), "refused assignments change nothing");
    }

    async fn an_app_cannot_reset_a_role_holder(server: TestServer) {
        let invited = server.invite("robin@example.com").await;
        let guest = invited["invitedUser"]["id"].as_str().unwrap().to_string();
        let before = server.user(&guest, "mail,externalUserState,userPrincipalName").await;
        let assignment = assign(&server, &guest, GUEST_INVITER).await;
        let reset = json!({"invitedUserEmailAddress": "robin@example.com", "inviteRedirectUrl": "https://myapps.microsoft.com",
            "invitedUser": {"id": guest}, "resetRedemption": true});
        let (status, body) = server.post("/v1.0/invitations", reset.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        // A protected target: Graph's 403 for insufficient privileges (the permission itself is there).
        assert_graph_error(&body, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.");
        assert_eq!(server.user(&guest, "mail,externalUserState,userPrincipalName").await, before);
        assert_eq!(audit_count(&server, "Invite external user with reset invitation status").await, 0);
        // Without the role the same reset goes through.
        let id = assignment["id"].as_str().unwrap();
        let (status, _) = server.call(Method::DELETE, &format!("/v1.0/roleManagement/directory/roleAssignments/{id}"), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, body) = server.post("/v1.0/invitations", reset).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

// ---- delegated callers: scope AND role, through HTTP ----------------------------------------

const PASSWORD: &str = "Corr3ct-Horse!";
const REDIRECT: &str = "http://localhost:8400/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-and-some-more";
const USER_ADMINISTRATOR: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
const DIRECTORY_WRITERS: &str = "9360feb5-f418-4baa-8175-e2a00bac4301";

async fn signed_in_member(server: &TestServer, alias: &str) -> (String, String) {
    let (status, body) = server
        .post(
            "/v1.0/users",
            json!({"accountEnabled": true, "displayName": alias, "mailNickname": alias,
                   "userPrincipalName": format!("{alias}@contoso.onmicrosoft.com"),
                   "passwordProfile": {"password": PASSWORD, "forceChangePasswordNextSignIn": false}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    (id, delegated_token(server, &format!("{alias}@contoso.onmicrosoft.com")).await)
}

/// The authorization code flow with PKCE through the sign-in page, as a browser would.
async fn delegated_token(server: &TestServer, username: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let http = crate::browser::client(server);
    let scope = ["User.Invite.All", "User.ReadWrite.All"].map(|s| format!("https://graph.microsoft.com/{s}")).join(" ");
    let params = vec![
        ("client_id", server.connection.cli_client_id.clone().expect("public client")),
        ("response_type", "code".to_string()),
        ("redirect_uri", REDIRECT.to_string()),
        ("scope", format!("openid {scope}")),
        ("state", "s".to_string()),
        ("code_challenge", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(VERIFIER.as_bytes()))),
        ("code_challenge_method", "S256".to_string()),
    ];
    let path = format!("{}/{}/oauth2/v2.0/authorize", server.connection.authority_url, server.connection.tenant_id);
    let page = http.get(&path).query(&params).send().await.unwrap();
    let cookie = page.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let html = page.text().await.unwrap();
    let marker = "name=\"csrf_token\" value=\"";
    let csrf = html[html.find(marker).expect("CSRF field") + marker.len()..].split('"').next().unwrap().to_string();
    let mut form = params;
    form.extend([("csrf_token", csrf), ("username", username.to_string()), ("password", PASSWORD.to_string())]);
    let response = http.post(&path).header("cookie", cookie).form(&form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    let code = location.query_pairs().find(|(k, _)| k == "code").expect("code").1.into_owned();
    let token = http
        .post(format!("{}/{}/oauth2/v2.0/token", server.connection.authority_url, server.connection.tenant_id))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", server.connection.cli_client_id.as_deref().expect("public client")),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), StatusCode::OK);
    let body: Value = token.json().await.unwrap();
    body["access_token"].as_str().expect("access_token").to_string()
}

both_engines! {
    async fn delegated_callers_need_a_role_as_well_as_a_scope(server: TestServer) {
        let (_, plain) = signed_in_member(&server, "plain").await;
        let (inviter_id, inviter) = signed_in_member(&server, "inviter").await;
        let (helpdesk_id, helpdesk) = signed_in_member(&server, "helpdesk").await;
        let (writer_id, writer) = signed_in_member(&server, "writer").await;
        let (admin_id, _) = signed_in_member(&server, "useradmin").await;
        assign(&server, &inviter_id, GUEST_INVITER).await;
        assign(&server, &helpdesk_id, HELPDESK_ADMINISTRATOR).await;
        assign(&server, &writer_id, DIRECTORY_WRITERS).await;
        assign(&server, &admin_id, USER_ADMINISTRATOR).await;
        let invite = |email: &str| json!({"invitedUserEmailAddress": email, "inviteRedirectUrl": "https://myapps.microsoft.com"});

        // Invite: any member under `everyone`; only role holders under `adminsAndGuestInviters`.
        let (status, body) = server.call_as(&plain, Method::POST, "/v1.0/invitations", Some(invite("a@example.com"))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, _) = server.patch("/v1.0/policies/authorizationPolicy", json!({"allowInvitesFrom": "adminsAndGuestInviters"})).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, body) = server.call_as(&plain, Method::POST, "/v1.0/invitations", Some(invite("b@example.com"))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_graph_error(&body, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.");
        let (status, body) = server.call_as(&inviter, Method::POST, "/v1.0/invitations", Some(invite("c@example.com"))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        // Reset: Helpdesk Administrator on a plain guest, not on one holding an admin role; members never.
        let guest = server.invite("d@example.com").await["invitedUser"]["id"].as_str().unwrap().to_string();
        let reset = json!({"invitedUserEmailAddress": "d@example.com", "inviteRedirectUrl": "https://myapps.microsoft.com",
            "invitedUser": {"id": guest}, "resetRedemption": true});
        let (status, body) = server.call_as(&plain, Method::POST, "/v1.0/invitations", Some(reset.clone())).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_graph_error(&body, "Forbidden", "Generic authorization exception.");
        let (status, body) = server.call_as(&helpdesk, Method::POST, "/v1.0/invitations", Some(reset.clone())).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assign(&server, &guest, USER_ADMINISTRATOR).await;
        let (status, body) = server.call_as(&helpdesk, Method::POST, "/v1.0/invitations", Some(reset)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_graph_error(&body, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.");

        // Writes to users: Directory Writers yes, a plain member no; reads for everyone. Not on
        // a user holding an admin role (Entra's "Who can perform sensitive actions").
        let plain_guest = server.invite("e@example.com").await["invitedUser"]["id"].as_str().unwrap().to_string();
        let path = format!("/v1.0/users/{plain_guest}");
        let (status, body) = server.call_as(&plain, Method::PATCH, &path, Some(json!({"jobTitle": "x"}))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_graph_error(&body, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.");
        let (status, body) = server.call_as(&writer, Method::PATCH, &path, Some(json!({"jobTitle": "x"}))).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let path = format!("/v1.0/users/{guest}");
        let (status, body) = server.call_as(&writer, Method::PATCH, &path, Some(json!({"jobTitle": "x"}))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_graph_error(&body, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.");
        let (status, body) = server.call_as(&plain, Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

both_engines! {
    async fn member_invitations_are_for_admins_only(server: TestServer) {
        let (_, plain) = signed_in_member(&server, "plain").await;
        let (inviter_id, inviter) = signed_in_member(&server, "inviter").await;
        let (admin_id, admin) = signed_in_member(&server, "useradmin").await;
        assign(&server, &inviter_id, GUEST_INVITER).await;
        assign(&server, &admin_id, USER_ADMINISTRATOR).await;
        let invite = |email: &str, user_type: &str| {
            json!({"invitedUserEmailAddress": email, "inviteRedirectUrl": "https://myapps.microsoft.com", "invitedUserType": user_type})
        };

        // Under `everyone` a plain member and a Guest Inviter may invite guests, not Members (contract §1.7).
        let users = server.user_count().await;
        let audits = audit_count(&server, "Invite external user").await;
        for (caller, email) in [(&plain, "m1@example.com"), (&inviter, "m2@example.com")] {
            let (status, body) = server.call_as(caller, Method::POST, "/v1.0/invitations", Some(invite(email, "Member"))).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
            assert_graph_error(&body, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.");
            let (status, found) = server.get(&format!("/v1.0/users?$filter=mail eq '{email}'")).await;
            assert_eq!(status, StatusCode::OK, "{found}");
            assert_eq!(ids(&found), Vec::<String>::new(), "{email}: no user created");
        }
        assert_eq!(server.user_count().await, users, "nothing changed");
        assert_eq!(audit_count(&server, "Invite external user").await, audits, "nothing audited");
        // Re-inviting an existing guest as a Member is refused the same way.
        let (status, body) = server.call_as(&plain, Method::POST, "/v1.0/invitations", Some(invite("g1@example.com", "Guest"))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = server.call_as(&plain, Method::POST, "/v1.0/invitations", Some(invite("g1@example.com", "Member"))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_graph_error(&body, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.");

        // A User Administrator may; so may an app with an invitation permission.
        let (status, body) = server.call_as(&admin, Method::POST, "/v1.0/invitations", Some(invite("m3@example.com", "Member"))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["invitedUserType"], "Member");
        let id = body["invitedUser"]["id"].as_str().unwrap().to_string();
        assert_eq!(server.user(&id, "userType").await["userType"], "Member");
        let app = server.token_with(&[AppPermission::UserInviteAll]).await;
        let (status, body) = server.call_as(&app, Method::POST, "/v1.0/invitations", Some(invite("m4@example.com", "Member"))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["invitedUserType"], "Member");

        // `none` stops admins too, with the same refusal.
        let (status, _) = server.patch("/v1.0/policies/authorizationPolicy", json!({"allowInvitesFrom": "none"})).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, body) = server.call_as(&admin, Method::POST, "/v1.0/invitations", Some(invite("m5@example.com", "Member"))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_graph_error(&body, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.");
    }
}
