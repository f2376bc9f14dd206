//! Bounded query work: every limit on `$search`, `$filter`, `$expand` and the query string is
//! answered with Graph's 400 naming the limit, the server keeps serving after each refusal, and
//! queries at the limits run on both engines (no SQL refused for its size, so no 500).

use guestlist_odata::{
    MAX_FILTER_CLAUSES, MAX_FILTER_NESTING, MAX_IN_VALUES, MAX_PAGE_SIZE_WITH_EXPAND, MAX_QUERY_STRING_LENGTH, MAX_SEARCH_WORDS,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{assert_graph_error, both_engines, TestServer};

/// GET `path` with `ConsistencyLevel: eventual`: the status and the JSON body. Spaces travel as
/// `+`, as a browser's form sends them, so that long queries stay under the length limit.
async fn get_eventual(server: &TestServer, path: &str) -> (StatusCode, Value) {
    let response = server
        .http
        .get(server.url(&path.replace(' ', "+")))
        .bearer_auth(&server.token)
        .header("ConsistencyLevel", "eventual")
        .send()
        .await
        .expect("answered");
    let status = response.status();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Asserts Graph's 400 with `code` and a message containing `fragment`, then that the server
/// still answers a plain list.
async fn refused_and_still_serving(server: &TestServer, path: &str, code: &str, fragment: &str) {
    let (status, body) = get_eventual(server, path).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{}: {body}", &path[..path.len().min(120)]);
    assert_graph_error(&body, code, fragment);
    let (status, body) = server.get("/v1.0/users?$select=id").await;
    assert_eq!(status, StatusCode::OK, "the server keeps serving: {body}");
}

fn words(n: usize, word: &str) -> String {
    vec![word; n].join(" ")
}

fn ids(body: &Value) -> Vec<String> {
    let mut ids: Vec<String> = body["value"].as_array().expect("value").iter().map(|o| o["id"].as_str().unwrap().to_string()).collect();
    ids.sort();
    ids
}

async fn new_group(server: &TestServer, name: &str) -> String {
    let body = json!({"displayName": name, "mailNickname": name.replace(' ', "-"), "mailEnabled": false, "securityEnabled": true});
    let (status, group) = server.post("/v1.0/groups", body).await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    group["id"].as_str().unwrap().to_string()
}

both_engines! {
    async fn a_search_of_thousands_of_words_is_refused_and_the_server_keeps_serving(server: TestServer) {
        for resource in ["users", "groups"] {
            for count in [MAX_SEARCH_WORDS + 1, 1_000, 3_000] {
                let path = format!("/v1.0/{resource}?$search=\"displayName:{}\"", words(count, "a"));
                refused_and_still_serving(&server, &path, "BadRequest", &format!("more than {MAX_SEARCH_WORDS} words")).await;
            }
            // The request: 5,000 words (a 10 KB URL) once aborted the whole process; it
            // is now longer than the query string may be.
            let path = format!("/v1.0/{resource}?$search=\"displayName:{}\"", words(5_000, "a"));
            refused_and_still_serving(&server, &path, "BadRequest", &format!("at most {MAX_QUERY_STRING_LENGTH}")).await;
        }
    }

    async fn a_search_at_the_word_limit_runs(server: TestServer) {
        let alice = server.invite("alice.anders@example.com").await["invitedUser"]["id"].as_str().unwrap().to_string();
        server.invite("bob@example.com").await;
        let group = new_group(&server, "Alpha Team").await;
        new_group(&server, "Beta").await;
        for (resource, expected) in [("users", &alice), ("groups", &group)] {
            let one = format!("/v1.0/{resource}?$search=\"displayName:al\"&$select=id");
            let (status, single) = get_eventual(&server, &one).await;
            assert_eq!(status, StatusCode::OK, "{single}");
            assert!(ids(&single).contains(expected), "{single}");
            // Every word must match; the same word many times selects what it selects once.
            let at_limit = format!("/v1.0/{resource}?$search=\"displayName:{}\"&$select=id&$count=true", words(MAX_SEARCH_WORDS, "al"));
            let (status, body) = get_eventual(&server, &at_limit).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(ids(&body), ids(&single));
            assert_eq!(body["@odata.count"], ids(&single).len());
        }
    }

    async fn filters_at_every_limit_run_together(server: TestServer) {
        let alice = server.invite("alice@example.com").await["invitedUser"]["id"].as_str().unwrap().to_string();
        server.invite("bob@example.com").await;
        // The largest filter the limits allow in one request: nested to the limit, a chain of
        // clauses to the limit, one of them an `in` list at the limit, and a search at its limit.
        let mut clauses = vec!["mail eq 'nobody@example.com'".to_string(); MAX_FILTER_CLAUSES - 2];
        clauses.push(format!("mail in ({})", vec!["'nobody@example.com'"; MAX_IN_VALUES].join(",")));
        clauses.push("mail eq 'alice@example.com'".to_string());
        let nested = |depth: usize| format!("{}{}{}", "(".repeat(depth), clauses.join(" or "), ")".repeat(depth));
        let filter = nested(MAX_FILTER_NESTING - 1);
        let path = format!("/v1.0/users?$filter={filter}&$select=id");
        let (status, body) = get_eventual(&server, &path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(ids(&body), std::slice::from_ref(&alice));
        // The same together with a search at its limit and `not` (an advanced query).
        let search = words(MAX_SEARCH_WORDS, "ali");
        // `not(` takes two levels (the operator and its parentheses).
        let path = format!("/v1.0/users?$filter=not({})&$search=\"mail:{search}\"&$count=true&$select=id", nested(MAX_FILTER_NESTING - 3));
        let (status, body) = get_eventual(&server, &path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["@odata.count"], 0, "alice is excluded by not(), nobody else matches 'ali'");
        let path = format!("/v1.0/users?$filter={filter}&$search=\"mail:{search}\"&$count=true&$select=id");
        let (status, body) = get_eventual(&server, &path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(ids(&body), [alice]);

        // Groups: an `in` list and a clause chain at their limits.
        let group = new_group(&server, "Target").await;
        let names = std::iter::once("'Target'".to_string()).chain((1..MAX_IN_VALUES).map(|i| format!("'g{i}'"))).collect::<Vec<_>>();
        let (status, body) = get_eventual(&server, &format!("/v1.0/groups?$filter=displayName in ({})&$select=id", names.join(","))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(ids(&body), std::slice::from_ref(&group));
        let mut chain = vec!["displayName eq 'nothing'"; MAX_FILTER_CLAUSES - 1];
        chain.push("startsWith(displayName,'Tar')");
        let (status, body) = get_eventual(&server, &format!("/v1.0/groups?$filter={}&$select=id", chain.join(" or "))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(ids(&body), [group]);

        // The audit log: a conjunction at the clause limit.
        let chain = vec!["category eq 'UserManagement'"; MAX_FILTER_CLAUSES].join(" and ");
        let (status, body) = get_eventual(&server, &format!("/v1.0/auditLogs/directoryAudits?$filter={chain}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(!body["value"].as_array().unwrap().is_empty(), "the invitations were audited: {body}");
    }

    async fn oversized_filters_are_refused_and_the_server_keeps_serving(server: TestServer) {
        let clauses = |n: usize, clause: &str| vec![clause; n].join(" or ");
        let in_list = |n: usize| format!("mail in ({})", vec!["'a@b.c'"; n].join(","));
        let nested = |n: usize| format!("{}mail eq 'a@b.c'{}", "(".repeat(n), ")".repeat(n));
        let too_many = format!("more than {MAX_FILTER_CLAUSES} clauses");
        let too_deep = format!("nested more than {MAX_FILTER_NESTING} levels");
        let in_max = format!("Max allowed: {MAX_IN_VALUES}");
        for resource in ["users", "groups"] {
            let filter = |text: String| format!("/v1.0/{resource}?$filter={text}");
            refused_and_still_serving(&server, &filter(clauses(MAX_FILTER_CLAUSES + 1, "mail eq 'a@b.c'")), "BadRequest", &too_many).await;
            refused_and_still_serving(&server, &filter(clauses(300, "mail eq 'a@b.c'")), "BadRequest", &too_many).await;
            refused_and_still_serving(&server, &filter(in_list(MAX_IN_VALUES + 1)), "Request_UnsupportedQuery", &in_max).await;
            refused_and_still_serving(&server, &filter(in_list(600)), "Request_UnsupportedQuery", &in_max).await;
            refused_and_still_serving(&server, &filter(nested(MAX_FILTER_NESTING)), "BadRequest", &too_deep).await;
            // 3,900 levels, under the length limit: refused by depth without exhausting the stack.
            refused_and_still_serving(&server, &filter(nested(3_900)), "BadRequest", &too_deep).await;
            refused_and_still_serving(&server, &filter("not(".repeat(1_900)), "BadRequest", &too_deep).await;
        }
        let audit = format!("/v1.0/auditLogs/directoryAudits?$filter={}", vec!["category eq 'x'"; MAX_FILTER_CLAUSES + 1].join(" and "));
        refused_and_still_serving(&server, &audit, "BadRequest", &too_many).await;
    }

    async fn a_query_string_over_the_length_limit_is_refused(server: TestServer) {
        let filler = "a".repeat(MAX_QUERY_STRING_LENGTH);
        for path in [
            format!("/v1.0/users?$filter=mail eq '{filler}'"),
            format!("/v1.0/groups?$search=\"displayName:{filler}\""),
            format!("/v1.0/auditLogs/directoryAudits?$filter=category eq '{filler}'"),
        ] {
            refused_and_still_serving(&server, &path, "BadRequest", &format!("at most {MAX_QUERY_STRING_LENGTH}")).await;
        }
    }

    async fn expand_is_one_level_each_name_once_and_caps_the_page(server: TestServer) {
        for path in ["/v1.0/users?$expand=memberOf,sponsors,memberOf", "/v1.0/groups?$expand=members,members"] {
            refused_and_still_serving(&server, path, "BadRequest", "more than once").await;
        }
        let many = format!("/v1.0/users?$expand={}", vec!["memberOf"; 800].join(","));
        refused_and_still_serving(&server, &many, "BadRequest", "more than once").await;
        for path in [
            "/v1.0/users?$expand=memberOf($expand=members)",
            "/v1.0/groups?$expand=members($select=id;$expand=memberOf)",
        ] {
            refused_and_still_serving(&server, path, "Request_UnsupportedQuery", "one level").await;
        }
        let deep = format!("/v1.0/groups?$expand={}{}", "members($expand=".repeat(400), ")".repeat(400));
        refused_and_still_serving(&server, &deep, "Request_UnsupportedQuery", "one level").await;

        // With `$expand`, a page holds at most 100 objects whatever `$top` asks, as in Graph.
        let count = MAX_PAGE_SIZE_WITH_EXPAND as usize + 1;
        for i in 0..count {
            new_group(&server, &format!("Group {i:03}")).await;
        }
        let (status, body) = server.get("/v1.0/groups?$top=999&$expand=members&$select=id").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["value"].as_array().unwrap().len(), MAX_PAGE_SIZE_WITH_EXPAND as usize);
        let next = body["@odata.nextLink"].as_str().expect("a next page");
        let response = server.http.get(next).bearer_auth(&server.token).send().await.unwrap();
        let rest: Value = response.json().await.unwrap();
        assert_eq!(rest["value"].as_array().unwrap().len(), count - MAX_PAGE_SIZE_WITH_EXPAND as usize, "{rest}");
        assert!(rest["value"][0]["members"].is_array(), "the next page expands too");
        let (status, body) = server.get("/v1.0/groups?$top=999&$select=id").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["value"].as_array().unwrap().len(), count, "without $expand $top is served in full");
    }
}
