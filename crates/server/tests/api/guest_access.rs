//! What a signed-in guest may read under each `guestUserRoleId` level (contract §5.3), and `/me`.
//! Guests have no interactive sign-in yet (federated redemption comes later), so the test has the
//! server sign a delegated token for the guest, as its console client would for a member; every
//! call then goes over HTTP like any other.

use guestlist_store::UserKey;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{assert_graph_error, both_engines, TestServer};

const SAME_AS_MEMBERS: &str = "a0b1b346-4d3e-4e8b-98f8-753987be4970";
const LIMITED: &str = "10dae51f-b6af-4016-8d66-8c2a99b929b3";
const RESTRICTED: &str = "2af84b1e-32c8-42b7-82bc-daa82404023b";

/// A delegated token the server signs for `user_id` (its console client, `Directory.AccessAsUser.All`).
pub(crate) async fn token_for(server: &TestServer, user_id: &str) -> String {
    let services = server.services();
    let tenant = services.store.tenant(&server.connection.tenant_id).await.unwrap().unwrap();
    let app = services.ensure_console_app(&tenant).await.unwrap();
    let id = guestlist_domain::ObjectId::parse(user_id).unwrap();
    let user = services.store.user(tenant.id, &UserKey::Id(id)).await.unwrap().unwrap();
    services.first_party_access_token(&tenant, &app, &user).await.unwrap().0
}

both_engines! {
    async fn guest_reads_follow_the_guest_user_role(server: TestServer) {
        let ann = server.invite("ann@example.com").await["invitedUser"]["id"].as_str().unwrap().to_string();
        let bob = server.invite("bob@example.com").await["invitedUser"]["id"].as_str().unwrap().to_string();
        let (status, group) = server
            .post("/v1.0/groups", json!({"displayName": "Partners", "mailEnabled": false, "mailNickname": "partners", "securityEnabled": true}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{group}");
        let group = group["id"].as_str().unwrap().to_string();
        let (status, _) = server.post(&format!("/v1.0/groups/{group}/members/$ref"), json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{ann}")})).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let token = token_for(&server, &ann).await;

        // Per level: list users, another user, /me, /me/memberOf, list groups, a group, its members.
        let reads = [
            "/v1.0/users".to_string(),
            format!("/v1.0/users/{bob}"),
            "/v1.0/me".to_string(),
            "/v1.0/me/memberOf".to_string(),
            "/v1.0/groups".to_string(),
            format!("/v1.0/groups/{group}"),
            format!("/v1.0/groups/{group}/members"),
        ];
        let levels = [(SAME_AS_MEMBERS, "Y Y Y Y Y Y Y"), (LIMITED, "N Y Y Y N Y Y"), (RESTRICTED, "N N Y Y N N N")];
        for (level, line) in levels {
            let (status, body) = server.patch("/v1.0/policies/authorizationPolicy", json!({"guestUserRoleId": level})).await;
            assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
            for (path, cell) in reads.iter().zip(line.split(' ')) {
                let (status, body) = server.call_as(&token, Method::GET, path, None).await;
                if cell == "Y" {
                    assert_eq!(status, StatusCode::OK, "{level} {path}: {body}");
                } else {
                    assert_eq!(status, StatusCode::FORBIDDEN, "{level} {path}: {body}");
                    assert_graph_error(&body, "Authorization_RequestDenied", "Insufficient privileges");
                }
            }
            let (_, me) = server.call_as(&token, Method::GET, "/v1.0/me", None).await;
            assert_eq!(me["id"], ann.as_str());
            let (_, groups) = server.call_as(&token, Method::GET, "/v1.0/me/memberOf", None).await;
            assert_eq!(groups["value"][0]["id"], group.as_str(), "{groups}");
            let (status, _) = server.call_as(&token, Method::PATCH, &format!("/v1.0/users/{bob}"), Some(json!({"jobTitle": "x"}))).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "no level lets a guest write");
        }
    }

    async fn me_is_the_signed_in_user_and_refused_to_apps(server: TestServer) {
        let (status, body) = server.get("/v1.0/me").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_graph_error(&body, "BadRequest", "/me request is only valid with delegated authentication flow.");
        let (status, body) = server.get("/beta/me/memberOf").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

        let (status, created) = server
            .post(
                "/v1.0/users",
                json!({"accountEnabled": true, "displayName": "Root", "mailNickname": "root", "userPrincipalName": "root@contoso.onmicrosoft.com",
                       "passwordProfile": {"password": "Corr3ct-Horse!"}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let admin = created["id"].as_str().unwrap().to_string();
        let assignment = json!({"principalId": admin, "roleDefinitionId": "62e90394-69f5-4237-9190-012177145e10", "directoryScopeId": "/"});
        let (status, body) = server.post("/v1.0/roleManagement/directory/roleAssignments", assignment).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let token = token_for(&server, &admin).await;
        let (status, me) = server.call_as(&token, Method::GET, "/v1.0/me?$select=id,userPrincipalName", None).await;
        assert_eq!(status, StatusCode::OK, "{me}");
        assert_eq!(me["id"], admin.as_str());
        assert!(me["@odata.context"].as_str().unwrap().ends_with("/v1.0/$metadata#users(id,userPrincipalName)/$entity"), "{me}");
        let (status, _) = server.call_as(&token, Method::PATCH, "/v1.0/me", Some(json!({"jobTitle": "Directory admin"}))).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(server.user(&admin, "jobTitle").await["jobTitle"], "Directory admin");
        let (status, body) = server.call_as("not-a-token", Method::GET, "/v1.0/me", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_graph_error(&body, "InvalidAuthenticationToken", "");
        let (status, _) = server.call_as(&token, Method::GET, "/v1.0/members", None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "only /me and its children are rewritten");
    }
}
