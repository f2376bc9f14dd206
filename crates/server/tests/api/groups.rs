//! Groups and memberships over Graph: CRUD, validation, `$ref` members, nested groups,
//! `memberOf`/`transitiveMemberOf`, paging and filters, permissions, and the seed's promise that
//! a reset redemption keeps every membership.

use std::collections::BTreeSet;

use guestlist_domain::ids::ObjectId;
use guestlist_domain::permissions::AppPermission;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{assert_graph_error, both_engines, TestServer};

fn security_group(name: &str) -> Value {
    json!({"displayName": name, "mailNickname": name.to_lowercase().replace(' ', "-"), "mailEnabled": false, "securityEnabled": true})
}

async fn create_group(server: &TestServer, body: Value) -> Value {
    let (status, group) = server.post("/v1.0/groups", body).await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    group
}

async fn group_id(server: &TestServer, name: &str) -> String {
    create_group(server, security_group(name)).await["id"].as_str().unwrap().to_string()
}

async fn add_member(server: &TestServer, group: &str, member_url: &str) -> (StatusCode, Value) {
    server.post(&format!("/v1.0/groups/{group}/members/$ref"), json!({"@odata.id": member_url})).await
}

async fn add(server: &TestServer, group: &str, member: &str) {
    let (status, body) = add_member(server, group, &format!("https://graph.microsoft.com/v1.0/directoryObjects/{member}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

/// Display names of a directoryObject collection, after checking every item is a group.
async fn group_names(server: &TestServer, path: &str) -> BTreeSet<String> {
    let (status, body) = server.get(path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    assert!(body["@odata.context"].as_str().unwrap().ends_with("/v1.0/$metadata#directoryObjects"), "{body}");
    body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            assert_eq!(item["@odata.type"], "#microsoft.graph.group", "{item}");
            item["displayName"].as_str().unwrap().to_string()
        })
        .collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

async fn group_count(server: &TestServer) -> usize {
    let (status, body) = server.get("/v1.0/groups?$select=id&$top=999").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["value"].as_array().unwrap().len()
}

async fn activities(server: &TestServer) -> Vec<(String, String, String)> {
    let tenant = ObjectId::parse(&server.connection.tenant_id).unwrap();
    let records = server.services().store.audit_records(tenant, 50).await.unwrap();
    records.into_iter().rev().map(|r| (r.activity_display_name, r.logged_by_service, r.category)).collect()
}

both_engines! {
    async fn group_create_get_list_patch_delete(server: TestServer) {
        let created = create_group(&server, json!({"displayName": "Partners", "description": "External partners", "mailNickname": "partners",
            "mailEnabled": true, "securityEnabled": false, "groupTypes": ["Unified"]})).await;
        assert!(created["@odata.context"].as_str().unwrap().ends_with("/v1.0/$metadata#groups/$entity"));
        let id = created["id"].as_str().unwrap().to_string();
        assert_eq!(created["mail"], "partners@contoso.onmicrosoft.com");
        assert_eq!(created["proxyAddresses"], json!(["SMTP:partners@contoso.onmicrosoft.com"]));
        assert_eq!(created["groupTypes"], json!(["Unified"]));
        assert_eq!(created["visibility"], "Public");
        assert_eq!(created["mailEnabled"], true);
        assert_eq!(created["securityEnabled"], false);
        assert!(created["securityIdentifier"].as_str().unwrap().starts_with("S-1-12-1-"));

        let security = create_group(&server, security_group("Readers")).await;
        assert_eq!(security["mail"], Value::Null);
        assert_eq!(security["proxyAddresses"], json!([]));
        assert_eq!(security["visibility"], "Private");

        let (status, got) = server.get(&format!("/v1.0/groups/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(got["displayName"], "Partners");
        assert_eq!(got["description"], "External partners");
        let (_, selected) = server.get(&format!("/beta/groups/{id}?$select=displayName,MAIL")).await;
        assert!(selected["@odata.context"].as_str().unwrap().ends_with("/beta/$metadata#groups(displayName,mail)/$entity"), "{selected}");
        assert_eq!(selected.as_object().unwrap().len(), 3, "{selected}");

        let (status, body) = server.patch(&format!("/v1.0/groups/{id}"), json!({"displayName": "Partners EU", "description": null, "mailNickname": "partners-eu"})).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (_, got) = server.get(&format!("/v1.0/groups/{id}")).await;
        assert_eq!(got["displayName"], "Partners EU");
        assert_eq!(got["description"], Value::Null);
        assert_eq!(got["mail"], "partners-eu@contoso.onmicrosoft.com");
        assert_eq!(got["createdDateTime"], created["createdDateTime"]);

        let (status, _) = server.call(Method::DELETE, &format!("/v1.0/groups/{id}"), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, body) = server.get(&format!("/v1.0/groups/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_graph_error(&body, "Request_ResourceNotFound", &id);
        let (status, body) = server.call(Method::DELETE, &format!("/v1.0/groups/{id}"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(group_count(&server).await, 1);

        let core = |name: &str| (name.to_string(), "Core Directory".to_string(), "GroupManagement".to_string());
        assert_eq!(activities(&server).await, vec![core("Add group"), core("Add group"), core("Update group"), core("Delete group")]);
    }

    async fn invalid_groups_are_refused_and_change_nothing(server: TestServer) {
        let base = security_group("Readers");
        let with = |key: &str, value: Value| {
            let mut body = base.clone();
            body[key] = value;
            body
        };
        let without = |key: &str| {
            let mut body = base.clone();
            body.as_object_mut().unwrap().remove(key);
            body
        };
        for (body, fragment) in [
            (without("displayName"), "'displayName' is required"),
            (without("mailNickname"), "'mailNickname' is required"),
            (without("securityEnabled"), "'securityEnabled' is required"),
            (with("displayName", json!("x".repeat(257))), "displayName"),
            (with("mailNickname", json!("has space")), "mailNickname"),
            (with("mailNickname", json!("n".repeat(65))), "mailNickname"),
            (with("mailEnabled", json!(true)), "mail-enabled groups"),
            (with("securityEnabled", json!(false)), "securityEnabled"),
            (with("groupTypes", json!(["DynamicMembership"])), "membershipRule"),
            (with("groupTypes", json!(["Unified"])), "mailEnabled"),
            (with("visibility", json!("Secret")), "visibility"),
            (with("mailEnabled", json!("no")), "Edm.Boolean"),
            (with("id", json!("6b9f4e0c-1111-4c6a-9d3e-2f4a5b6c7d8e")), "read-only"),
            (with("members@odata.bind", json!([])), "members@odata.bind"),
        ] {
            let (status, error) = server.post("/v1.0/groups", body.clone()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
            assert_graph_error(&error, "Request_BadRequest", fragment);
        }
        assert_eq!(group_count(&server).await, 0);

        // A Microsoft 365 group's nickname (its mail) is taken once.
        let unified = json!({"displayName": "Team", "mailNickname": "team", "mailEnabled": true, "securityEnabled": false, "groupTypes": ["Unified"]});
        create_group(&server, unified.clone()).await;
        let (status, error) = server.post("/v1.0/groups", unified).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_graph_error(&error, "Request_BadRequest", "Another object with the same value for property proxyAddresses already exists.");
        assert_eq!(group_count(&server).await, 1);

        let id = group_id(&server, "Readers").await;
        for (body, fragment) in [
            (json!({"displayName": null}), "displayName"),
            (json!({"displayName": ""}), "displayName"),
            (json!({"mailNickname": "a@b"}), "mailNickname"),
            (json!({"mailEnabled": true}), "read-only"),
            (json!({"securityEnabled": false}), "securityEnabled"),
            (json!({"visibility": "HiddenMembership"}), "visibility"),
        ] {
            let (status, error) = server.patch(&format!("/v1.0/groups/{id}"), body.clone()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
            assert_graph_error(&error, "Request_BadRequest", fragment);
        }
        let (_, got) = server.get(&format!("/v1.0/groups/{id}")).await;
        assert_eq!(got["displayName"], "Readers");
        assert_eq!(got["mailNickname"], "readers");
        let (status, error) = server.get("/v1.0/groups/not-a-guid").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_graph_error(&error, "Request_BadRequest", "Invalid object identifier 'not-a-guid'.");
        let (status, _) = server.patch(&format!("/v1.0/groups/{}", ObjectId::new_random()), json!({"displayName": "x"})).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    async fn members_are_added_listed_refused_twice_and_removed(server: TestServer) {
        let guest = server.invite("alice@example.com").await["invitedUser"]["id"].as_str().unwrap().to_string();
        let group = group_id(&server, "Partners").await;
        let nested = group_id(&server, "Nested").await;
        let (status, body) = add_member(&server, &group, &format!("https://graph.microsoft.com/v1.0/directoryObjects/{guest}")).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        // Any origin, version and collection that names a directory object.
        let (status, body) = add_member(&server, &group, &format!("{}/beta/groups/{nested}", server.connection.graph_url)).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

        let (status, error) = add_member(&server, &group, &format!("https://graph.microsoft.com/v1.0/users/{guest}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_graph_error(&error, "Request_BadRequest", "One or more added object references already exist for the following modified properties: 'members'.");
        let unknown = ObjectId::new_random().to_string();
        let (status, error) = add_member(&server, &group, &format!("https://graph.microsoft.com/v1.0/directoryObjects/{unknown}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_graph_error(&error, "Request_ResourceNotFound", &unknown);
        let (status, error) = add_member(&server, &unknown, &format!("https://graph.microsoft.com/v1.0/users/{guest}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_graph_error(&error, "Request_ResourceNotFound", &unknown);
        for bad in [json!({"@odata.id": "https://graph.microsoft.com/v1.0/applications/x"}), json!({"id": guest})] {
            let (status, error) = server.post(&format!("/v1.0/groups/{group}/members/$ref"), bad).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
            assert_eq!(error["error"]["code"], "Request_BadRequest");
        }
        let (status, error) = add_member(&server, &group, &format!("https://graph.microsoft.com/v1.0/groups/{group}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");

        let (status, members) = server.get(&format!("/v1.0/groups/{group}/members")).await;
        assert_eq!(status, StatusCode::OK);
        let members = members["value"].as_array().unwrap().clone();
        assert_eq!(members.len(), 2);
        let user = members.iter().find(|m| m["id"] == guest.as_str()).unwrap();
        assert_eq!(user["@odata.type"], "#microsoft.graph.user");
        assert_eq!(user["userPrincipalName"], "alice_example.com#EXT#@contoso.onmicrosoft.com");
        let group_member = members.iter().find(|m| m["id"] == nested.as_str()).unwrap();
        assert_eq!(group_member["@odata.type"], "#microsoft.graph.group");
        assert_eq!(group_member["displayName"], "Nested");
        let (_, selected) = server.get(&format!("/v1.0/groups/{group}/members?$select=id,userPrincipalName")).await;
        for item in selected["value"].as_array().unwrap() {
            let expected = if item["@odata.type"] == "#microsoft.graph.user" { 3 } else { 2 };
            assert_eq!(item.as_object().unwrap().len(), expected, "{item}");
        }

        let (status, _) = server.call(Method::DELETE, &format!("/v1.0/groups/{group}/members/{guest}/$ref"), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, error) = server.call(Method::DELETE, &format!("/v1.0/groups/{group}/members/{guest}/$ref"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_graph_error(&error, "Request_ResourceNotFound", &guest);
        assert!(group_names(&server, &format!("/v1.0/users/{guest}/memberOf")).await.is_empty());

        let membership: Vec<_> = activities(&server).await.into_iter().filter(|(a, _, _)| a.contains("member")).map(|(a, _, _)| a).collect();
        assert_eq!(membership, vec!["Add member to group", "Add member to group", "Remove member from group"]);
    }

    async fn nested_groups_and_transitive_member_of_with_a_cycle(server: TestServer) {
        let guest = server.invite("bob@example.com").await["invitedUser"]["id"].as_str().unwrap().to_string();
        let inner = group_id(&server, "Inner").await;
        let outer = group_id(&server, "Outer").await;
        let top = group_id(&server, "Top").await;
        add(&server, &inner, &guest).await;
        add(&server, &outer, &inner).await;
        add(&server, &top, &outer).await;
        assert_eq!(group_names(&server, &format!("/v1.0/users/{guest}/memberOf")).await, names(&["Inner"]));
        assert_eq!(group_names(&server, &format!("/v1.0/users/{guest}/transitiveMemberOf")).await, names(&["Inner", "Outer", "Top"]));
        // By UPN too, percent-encoded as the SDKs send it.
        let by_upn = "/v1.0/users/bob_example.com%23EXT%23%40contoso.onmicrosoft.com/transitiveMemberOf";
        assert_eq!(group_names(&server, by_upn).await, names(&["Inner", "Outer", "Top"]));

        // Top is made a member of Inner: a cycle Inner -> Outer -> Top -> Inner.
        add(&server, &inner, &top).await;
        assert_eq!(group_names(&server, &format!("/v1.0/users/{guest}/transitiveMemberOf")).await, names(&["Inner", "Outer", "Top"]));
        assert_eq!(group_names(&server, &format!("/v1.0/groups/{inner}/transitiveMemberOf")).await, names(&["Outer", "Top"]));
        assert_eq!(group_names(&server, &format!("/v1.0/groups/{inner}/memberOf")).await, names(&["Outer"]));

        // Deleting Outer takes its memberships along: the chain breaks and the user keeps Inner only.
        let (status, _) = server.call(Method::DELETE, &format!("/v1.0/groups/{outer}"), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(group_names(&server, &format!("/v1.0/users/{guest}/transitiveMemberOf")).await, names(&["Inner"]));
        let (status, error) = server.get(&format!("/v1.0/users/{}/memberOf", ObjectId::new_random())).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
    }

    async fn groups_filter_select_and_page(server: TestServer) {
        for name in ["Alpha", "Alpine", "Beta", "Gamma", "Delta"] {
            group_id(&server, name).await;
        }
        create_group(&server, json!({"displayName": "Unified", "mailNickname": "unified", "mailEnabled": true, "securityEnabled": false, "groupTypes": ["Unified"]})).await;
        let listed = |query: &'static str| {
            let server = &server;
            async move {
                let (status, body) = server.get(&format!("/v1.0/groups?{query}")).await;
                assert_eq!(status, StatusCode::OK, "{query}: {body}");
                body["value"].as_array().unwrap().iter().map(|g| g["displayName"].as_str().unwrap().to_string()).collect::<BTreeSet<_>>()
            }
        };
        assert_eq!(listed("$filter=startsWith(displayName,'alp')").await, names(&["Alpha", "Alpine"]));
        assert_eq!(listed("$filter=displayName%20eq%20'Beta'").await, names(&["Beta"]));
        assert_eq!(listed("$filter=mailNickname in ('gamma','delta')").await, names(&["Gamma", "Delta"]));
        assert_eq!(listed("$filter=mail eq 'unified@contoso.onmicrosoft.com'").await, names(&["Unified"]));
        assert_eq!(listed("$filter=groupTypes/any(c:c+eq+'Unified')").await, names(&["Unified"]));
        assert_eq!(listed("$filter=securityEnabled eq true and startsWith(mailNickname,'a')").await, names(&["Alpha", "Alpine"]));

        let (status, body) = server.get("/v1.0/groups?$select=id,displayName&$top=2").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body["@odata.context"].as_str().unwrap().ends_with("/v1.0/$metadata#groups(id,displayName)"), "{body}");
        let mut seen = Vec::new();
        let mut page = body;
        loop {
            let items = page["value"].as_array().unwrap();
            assert!(items.len() <= 2);
            for item in items {
                assert_eq!(item.as_object().unwrap().len(), 2, "{item}");
                seen.push(item["displayName"].as_str().unwrap().to_string());
            }
            let Some(next) = page["@odata.nextLink"].as_str() else { break };
            assert!(next.contains("$select=id,displayName") && next.contains("$skiptoken="), "{next}");
            let response = server.http.get(next).bearer_auth(&server.token).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            page = response.json().await.unwrap();
        }
        assert_eq!(seen.len(), 6);
        assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>().len(), 6);

        for (query, code) in [
            ("$filter=userType eq 'Guest'", "Request_UnsupportedQuery"),
            ("$filter=displayName ne 'Beta'", "Request_UnsupportedQuery"),
            ("$filter=securityEnabled eq 'yes'", "BadRequest"),
            ("$select=userPrincipalName", "Request_BadRequest"),
            ("$top=1000", "Request_BadRequest"),
            ("$skiptoken=garbage", "Request_BadRequest"),
            ("$orderby=mail", "Request_UnsupportedQuery"),
        ] {
            let (status, error) = server.get(&format!("/v1.0/groups?{query}")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {error}");
            assert_eq!(error["error"]["code"], code, "{query}: {error}");
        }
    }

    async fn permissions_follow_graph(server: TestServer) {
        let guest = server.invite("carol@example.com").await["invitedUser"]["id"].as_str().unwrap().to_string();
        let group = group_id(&server, "Partners").await;
        let member_writer = server.token_with(&[AppPermission::GroupMemberReadWriteAll]).await;
        let reader = server.token_with(&[AppPermission::GroupReadAll]).await;
        let user_reader = server.token_with(&[AppPermission::UserReadAll]).await;
        let user_and_member_reader = server.token_with(&[AppPermission::UserReadAll, AppPermission::GroupMemberReadAll]).await;
        let reference = json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{guest}")});
        let denied = |(status, body): (StatusCode, Value)| {
            assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
            assert_graph_error(&body, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.");
        };

        // GroupMember.ReadWrite.All adds members but can't create, change or delete groups.
        denied(server.call_as(&member_writer, Method::POST, "/v1.0/groups", Some(security_group("Other"))).await);
        denied(server.call_as(&member_writer, Method::PATCH, &format!("/v1.0/groups/{group}"), Some(json!({"displayName": "x"}))).await);
        denied(server.call_as(&member_writer, Method::DELETE, &format!("/v1.0/groups/{group}"), None).await);
        let (status, body) = server.call_as(&member_writer, Method::POST, &format!("/v1.0/groups/{group}/members/$ref"), Some(reference.clone())).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

        // Group.Read.All reads groups and members but writes nothing.
        let (status, body) = server.call_as(&reader, Method::GET, "/v1.0/groups", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = server.call_as(&reader, Method::GET, &format!("/v1.0/groups/{group}/members"), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        denied(server.call_as(&reader, Method::POST, "/v1.0/groups", Some(security_group("Other"))).await);
        denied(server.call_as(&reader, Method::DELETE, &format!("/v1.0/groups/{group}/members/{guest}/$ref"), None).await);

        // A user's groups need the user and the memberships.
        denied(server.call_as(&user_reader, Method::GET, &format!("/v1.0/users/{guest}/memberOf"), None).await);
        denied(server.call_as(&reader, Method::GET, &format!("/v1.0/users/{guest}/memberOf"), None).await);
        let (status, body) = server.call_as(&user_and_member_reader, Method::GET, &format!("/v1.0/users/{guest}/transitiveMemberOf"), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["value"][0]["id"], group.as_str());
        assert_eq!(group_count(&server).await, 1);
    }

    async fn reset_redemption_keeps_every_membership(server: TestServer) {
        let invited = server.invite("dana@example.com").await;
        let id = invited["invitedUser"]["id"].as_str().unwrap().to_string();
        let inner = group_id(&server, "Project").await;
        let outer = group_id(&server, "All partners").await;
        let direct = group_id(&server, "Newsletter").await;
        add(&server, &inner, &id).await;
        add(&server, &outer, &inner).await;
        add(&server, &direct, &id).await;
        let member_of = group_names(&server, &format!("/v1.0/users/{id}/memberOf")).await;
        let transitive = group_names(&server, &format!("/v1.0/users/{id}/transitiveMemberOf")).await;
        assert_eq!(member_of, names(&["Project", "Newsletter"]));
        assert_eq!(transitive, names(&["Project", "Newsletter", "All partners"]));

        let (status, body) = server.patch(&format!("/v1.0/users/{id}"), json!({"otherMails": ["dana@newco.example"]})).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (status, reset) = server.post("/v1.0/invitations", json!({"invitedUserEmailAddress": "dana@newco.example",
            "inviteRedirectUrl": "https://myapps.microsoft.com", "invitedUser": {"id": id}, "resetRedemption": true})).await;
        assert_eq!(status, StatusCode::CREATED, "{reset}");
        assert_eq!(reset["invitedUser"]["id"], id.as_str());
        assert_eq!(server.user(&id, "mail").await["mail"], "dana@newco.example");

        assert_eq!(group_names(&server, &format!("/v1.0/users/{id}/memberOf")).await, member_of);
        assert_eq!(group_names(&server, &format!("/v1.0/users/{id}/transitiveMemberOf")).await, transitive);
        let (_, members) = server.get(&format!("/v1.0/groups/{inner}/members")).await;
        assert_eq!(members["value"][0]["id"], id.as_str());
        assert_eq!(members["value"][0]["mail"], "dana@newco.example");
    }
}
