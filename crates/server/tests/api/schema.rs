//! Every entity a response carries fits Graph's published schema (property names and value
//! types from `shared/spec/graph-schema-v1.json`).

use serde_json::{json, Value};

use crate::harness::{both_engines, shared_dir};

struct Schema(Value);

impl Schema {
    fn load() -> Schema {
        let path = shared_dir().join("spec/graph-schema-v1.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        Schema(serde_json::from_str::<Value>(&text).unwrap()["types"].clone())
    }

    /// The declared type of `property` on `type_name` or one of its base types.
    fn property(&self, type_name: &str, property: &str) -> Option<(String, bool)> {
        let mut current = Some(type_name.to_string());
        while let Some(name) = current {
            let definition = &self.0[&name];
            assert!(definition.is_object(), "type {name} is not in the schema file");
            if let Some(p) = definition["properties"].get(property) {
                return Some((p["type"].as_str().unwrap().to_string(), p["nullable"].as_bool().unwrap_or(true)));
            }
            if let Some(n) = definition["navigation"].get(property) {
                return Some((n["type"].as_str().unwrap().to_string(), true));
            }
            current = definition["base"].as_str().map(str::to_string);
        }
        None
    }

    fn assert_fits(&self, type_name: &str, value: &Value, path: &str) {
        let object = value.as_object().unwrap_or_else(|| panic!("{path}: {type_name} must be an object, got {value}"));
        // A derived type names itself, as in a directoryObject collection (`#microsoft.graph.group`).
        let derived = object.get("@odata.type").and_then(Value::as_str).and_then(|t| t.strip_prefix("#microsoft.graph."));
        let type_name = derived.unwrap_or(type_name);
        for (name, member) in object {
            if name.starts_with("@odata.") {
                continue;
            }
            let (declared, nullable) =
                self.property(type_name, name).unwrap_or_else(|| panic!("{path}.{name} is not a property of {type_name}"));
            self.assert_value(&declared, nullable, member, &format!("{path}.{name}"));
        }
    }

    fn assert_value(&self, declared: &str, nullable: bool, value: &Value, path: &str) {
        if value.is_null() {
            assert!(nullable, "{path} is null but {declared} is not nullable");
            return;
        }
        if let Some(inner) = declared.strip_prefix("Collection(").and_then(|t| t.strip_suffix(')')) {
            let items = value.as_array().unwrap_or_else(|| panic!("{path} must be an array ({declared}), got {value}"));
            for (i, item) in items.iter().enumerate() {
                self.assert_value(inner, false, item, &format!("{path}[{i}]"));
            }
            return;
        }
        match declared {
            "Edm.String" | "Edm.Guid" => assert!(value.is_string(), "{path} must be a string, got {value}"),
            "Edm.Boolean" => assert!(value.is_boolean(), "{path} must be a boolean, got {value}"),
            "Edm.Int32" | "Edm.Int64" => assert!(value.is_i64(), "{path} must be an integer, got {value}"),
            "Edm.DateTimeOffset" => {
                let text = value.as_str().unwrap_or_else(|| panic!("{path} must be a date-time string"));
                assert!(chrono::DateTime::parse_from_rfc3339(text).is_ok(), "{path}: {text} is not ISO 8601");
            }
            other if other.starts_with("Edm.") => panic!("{path}: unhandled type {other}"),
            enumeration if self.0[enumeration]["kind"] == "EnumType" => {
                let members = self.0[enumeration]["members"].as_array().unwrap();
                assert!(members.contains(value), "{path}: {value} is not a member of {enumeration}");
            }
            complex => self.assert_fits(complex, value, path),
        }
    }
}

both_engines! {
    async fn every_route_returns_schema_conformant_entities(server: TestServer) {
        let schema = Schema::load();
        let (_, invitation) = server.post("/v1.0/invitations", json!({"invitedUserEmailAddress": "rita@example.com", "inviteRedirectUrl": "https://x.example",
            "invitedUserMessageInfo": {"customizedMessageBody": "hi", "ccRecipients": [{"emailAddress": {"address": "cc@example.com"}}]}})).await;
        schema.assert_fits("invitation", &invitation, "POST /invitations");
        let id = invitation["invitedUser"]["id"].as_str().unwrap().to_string();
        let (_, reset) = server.post("/beta/invitations", json!({"invitedUserEmailAddress": "rita@example.com", "inviteRedirectUrl": "https://x.example",
            "invitedUser": {"id": id}, "resetRedemption": true})).await;
        schema.assert_fits("invitation", &reset, "POST /invitations (reset)");
        let all = "id,accountEnabled,businessPhones,companyName,createdDateTime,creationType,department,displayName,externalUserState,externalUserStateChangeDateTime,givenName,identities,jobTitle,mail,mobilePhone,officeLocation,otherMails,preferredLanguage,proxyAddresses,surname,usageLocation,userPrincipalName,userType,city,country";
        for path in [format!("/v1.0/users/{id}"), format!("/v1.0/users/{id}?$select={all}"), format!("/beta/users/{id}?$select={all}")] {
            let (_, user) = server.get(&path).await;
            schema.assert_fits("user", &user, &path);
        }
        let (_, created) = server.post("/v1.0/users", json!({"accountEnabled": true, "displayName": "Sam", "mailNickname": "sam",
            "userPrincipalName": "sam@contoso.onmicrosoft.com", "passwordProfile": {"password": "xWwvJ]6NMw+bWH-d"}})).await;
        schema.assert_fits("user", &created, "POST /users");
        let (_, sponsored) = server.post(&format!("/v1.0/users/{id}/sponsors/$ref"), json!({"@odata.id": format!("users/{}", created["id"].as_str().unwrap())})).await;
        assert_eq!(sponsored, Value::Null);
        let (_, sponsors) = server.get(&format!("/v1.0/users/{id}/sponsors")).await;
        assert_eq!(sponsors["value"].as_array().unwrap().len(), 1);
        for sponsor in sponsors["value"].as_array().unwrap() {
            schema.assert_fits("user", sponsor, "GET /users/{id}/sponsors");
        }
        let (_, audits) = server.get("/v1.0/auditLogs/directoryAudits").await;
        let entries = audits["value"].as_array().unwrap();
        assert!(entries.len() >= 4, "{audits}");
        for entry in entries {
            schema.assert_fits("directoryAudit", entry, "GET /auditLogs/directoryAudits");
        }
        let (_, single) = server.get(&format!("/v1.0/auditLogs/directoryAudits/{}", entries[0]["id"].as_str().unwrap())).await;
        schema.assert_fits("directoryAudit", &single, "GET /auditLogs/directoryAudits/{id}");
        for path in ["/v1.0/users".to_string(), format!("/v1.0/users?$select={all}")] {
            let (_, list) = server.get(&path).await;
            let values = list["value"].as_array().unwrap();
            assert_eq!(values.len(), 2);
            for user in values {
                schema.assert_fits("user", user, &path);
            }
        }
    }
}

both_engines! {
    async fn group_routes_return_schema_conformant_entities(server: TestServer) {
        let schema = Schema::load();
        let guest = server.invite("sam@example.com").await["invitedUser"]["id"].as_str().unwrap().to_string();
        let (_, unified) = server.post("/v1.0/groups", json!({"displayName": "Team", "description": "d", "mailNickname": "team",
            "mailEnabled": true, "securityEnabled": false, "groupTypes": ["Unified"]})).await;
        schema.assert_fits("group", &unified, "POST /groups");
        let (_, security) = server.post("/v1.0/groups", json!({"displayName": "Readers", "mailNickname": "readers", "mailEnabled": false, "securityEnabled": true})).await;
        schema.assert_fits("group", &security, "POST /groups (security)");
        let (team, readers) = (unified["id"].as_str().unwrap(), security["id"].as_str().unwrap());
        for member in [guest.as_str(), readers] {
            let (status, _) = server.post(&format!("/v1.0/groups/{team}/members/$ref"), json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{member}")})).await;
            assert_eq!(status, reqwest::StatusCode::NO_CONTENT);
        }
        for path in [format!("/v1.0/users/{guest}?$expand=memberOf"), "/v1.0/users?$expand=memberOf,sponsors&$select=id,displayName".to_string()] {
            let (status, body) = server.get(&path).await;
            assert_eq!(status, reqwest::StatusCode::OK, "{body}");
            let users = body.get("value").and_then(Value::as_array).cloned().unwrap_or_else(|| vec![body.clone()]);
            for user in &users {
                schema.assert_fits("user", user, &path);
            }
        }
        let every = guestlist_odata::GROUP_PROPERTIES.join(",");
        for path in [format!("/v1.0/groups/{team}"), format!("/beta/groups/{readers}?$select={every}")] {
            let (_, group) = server.get(&path).await;
            schema.assert_fits("group", &group, &path);
        }
        for path in ["/v1.0/groups".to_string(), format!("/v1.0/groups?$select={every}")] {
            let (_, list) = server.get(&path).await;
            assert_eq!(list["value"].as_array().unwrap().len(), 2);
            for group in list["value"].as_array().unwrap() {
                schema.assert_fits("group", group, &path);
            }
        }
        let user_and_group_select = "id,displayName,mail,groupTypes,userPrincipalName,otherMails,proxyAddresses";
        for path in [
            format!("/v1.0/groups/{team}/members"),
            format!("/v1.0/groups/{team}/members?$select={user_and_group_select}"),
            format!("/v1.0/users/{guest}/memberOf"),
            format!("/v1.0/users/{guest}/transitiveMemberOf"),
            format!("/v1.0/groups/{readers}/memberOf"),
            format!("/v1.0/groups/{readers}/transitiveMemberOf?$select={user_and_group_select}"),
        ] {
            let (_, list) = server.get(&path).await;
            let items = list["value"].as_array().unwrap_or_else(|| panic!("{path}: {list}"));
            assert!(!items.is_empty(), "{path}");
            for item in items {
                let type_name = item["@odata.type"].as_str().unwrap().trim_start_matches("#microsoft.graph.");
                schema.assert_fits(type_name, item, &path);
            }
        }
    }
}

both_engines! {
    async fn role_and_policy_routes_return_schema_conformant_entities(server: TestServer) {
        let schema = Schema::load();
        let (_, created) = server
            .post("/v1.0/users", json!({"accountEnabled": true, "displayName": "Ada", "mailNickname": "ada",
                "userPrincipalName": "ada@contoso.onmicrosoft.com", "passwordProfile": {"password": "xWwvJ]6NMw+bWH-d"}}))
            .await;
        let ada = created["id"].as_str().unwrap();
        let assignment = json!({"principalId": ada, "roleDefinitionId": "fe930be7-5e62-47db-91af-98c3a49a38b1", "directoryScopeId": "/"});
        let (status, created) = server.post("/v1.0/roleManagement/directory/roleAssignments", assignment).await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{created}");
        schema.assert_fits("unifiedRoleAssignment", &created, "POST /roleManagement/directory/roleAssignments");
        let collections = [
            ("/v1.0/directoryRoles", "directoryRole"),
            ("/v1.0/roleManagement/directory/roleAssignments", "unifiedRoleAssignment"),
            ("/v1.0/roleManagement/directory/roleDefinitions", "unifiedRoleDefinition"),
        ];
        for (path, type_name) in collections {
            let (_, list) = server.get(path).await;
            let items = list["value"].as_array().unwrap_or_else(|| panic!("{path}: {list}"));
            assert!(!items.is_empty(), "{path}");
            for item in items {
                schema.assert_fits(type_name, item, path);
            }
        }
        let (_, role) = server.get("/v1.0/directoryRoles(roleTemplateId='fe930be7-5e62-47db-91af-98c3a49a38b1')").await;
        schema.assert_fits("directoryRole", &role, "GET /directoryRoles(roleTemplateId=...)");
        let (_, members) = server.get(&format!("/v1.0/directoryRoles/{}/members", role["id"].as_str().unwrap())).await;
        schema.assert_fits("user", &members["value"][0], "GET /directoryRoles/{id}/members");
        let (_, policy) = server.get("/v1.0/policies/authorizationPolicy").await;
        schema.assert_fits("authorizationPolicy", &policy, "GET /policies/authorizationPolicy");
    }
}
