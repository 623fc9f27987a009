//! The batch API end to end: the settings switch and limits, all-or-nothing
//! transactions, upserts, rules per step, auth records created in a batch,
//! and the SDK's multipart form.

mod common;

use common::{Server, TempDir};
use serde_json::{json, Value};

/// A server with batching switched on and a `posts` collection
/// (`title` required) that guests may create in.
fn batch_server(tag: &str) -> (TempDir, Server, String) {
    let tmp = TempDir::new(tag);
    let server = Server::start(&tmp);
    let su = server.superuser_token();
    enable_batch(&server, &su, json!({"enabled": true}));
    let r = server.request(
        "POST",
        "/api/collections",
        Some(&su),
        Some(&json!({"name": "posts", "type": "base", "createRule": "", "listRule": "", "viewRule": "",
                     "fields": [{"name": "title", "type": "text", "required": true},
                                {"name": "n", "type": "number"}]})),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    (tmp, server, su)
}

fn enable_batch(server: &Server, su: &str, batch: Value) {
    let r = server.request(
        "PATCH",
        "/api/settings",
        Some(su),
        Some(&json!({ "batch": batch })),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

fn batch(server: &Server, token: Option<&str>, requests: Value) -> common::Response {
    server.request(
        "POST",
        "/api/batch",
        token,
        Some(&json!({ "requests": requests })),
    )
}

fn titles(server: &Server, su: &str) -> Vec<String> {
    let r = server.request(
        "GET",
        "/api/collections/posts/records?perPage=500",
        Some(su),
        None,
    );
    let mut titles: Vec<String> = r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["title"].as_str().unwrap().to_string())
        .collect();
    titles.sort();
    titles
}

fn create_post(server: &Server, su: &str, title: &str) -> String {
    let r = server.request(
        "POST",
        "/api/collections/posts/records",
        Some(su),
        Some(&json!({ "title": title, "n": 1 })),
    );
    assert_eq!(r.status, 200);
    r.json()["id"].as_str().unwrap().to_string()
}

const POSTS: &str = "/api/collections/posts/records";

#[test]
fn batch_is_refused_until_the_settings_enable_it() {
    let tmp = TempDir::new("batch-off");
    let server = Server::start(&tmp);
    let su = server.superuser_token();
    let requests = json!([{"method": "POST", "url": "/api/collections/users/records", "body": {}}]);
    let body = batch(&server, Some(&su), requests.clone()).assert_error(403);
    assert_eq!(body["message"], "Batch requests are not allowed.");
    batch(&server, None, requests.clone()).assert_error(403);
    enable_batch(&server, &su, json!({"enabled": true}));
    let on = batch(&server, Some(&su), requests);
    assert_eq!(on.status, 400, "enabled: the step itself fails now");
    enable_batch(&server, &su, json!({"enabled": false}));
    let users = server.request("GET", "/api/collections/users/records", Some(&su), None);
    assert_eq!(users.json()["totalItems"], 0);
}

#[test]
fn steps_run_in_order_and_answer_in_order() {
    let (_tmp, server, su) = batch_server("batch-order");
    let keep = create_post(&server, &su, "keep");
    let gone = create_post(&server, &su, "gone");
    let r = batch(
        &server,
        Some(&su),
        json!([
            {"method": "POST", "url": POSTS, "body": {"id": "newpost00000001", "title": "new"}},
            // sees the record the step before created
            {"method": "PATCH", "url": format!("{POSTS}/newpost00000001"), "body": {"n+": 2}},
            {"method": "PATCH", "url": format!("{POSTS}/{keep}"), "body": {"title": "kept", "n+": 5}},
            {"method": "DELETE", "url": format!("{POSTS}/{gone}")},
        ]),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let results = r.json();
    let statuses: Vec<u64> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 200, 200, 204]);
    assert_eq!(results[0]["body"]["title"], "new");
    assert_eq!(results[1]["body"]["n"], 2);
    assert_eq!(results[2]["body"]["n"], 6);
    assert_eq!(results[3]["body"], Value::Null);
    assert_eq!(titles(&server, &su), ["kept", "new"]);
}

#[test]
fn a_failing_third_step_leaves_nothing_of_the_first_two() {
    let (_tmp, server, su) = batch_server("batch-rollback");
    let existing = create_post(&server, &su, "existing");
    let r = batch(
        &server,
        Some(&su),
        json!([
            {"method": "POST", "url": POSTS, "body": {"title": "first"}},
            {"method": "PATCH", "url": format!("{POSTS}/{existing}"), "body": {"title": "changed"}},
            {"method": "POST", "url": POSTS, "body": {"n": 3}},
            {"method": "POST", "url": POSTS, "body": {"title": "never reached"}},
        ]),
    );
    let body = r.assert_error(400);
    assert_eq!(body["message"], "Batch transaction failed.");
    let requests = body["data"]["requests"].as_object().unwrap();
    assert_eq!(requests.len(), 1, "only the failing step is named: {body}");
    let failed = &requests["2"];
    assert_eq!(failed["code"], "batch_request_failed");
    assert_eq!(failed["message"], "Batch request failed.");
    assert_eq!(failed["response"]["status"], 400);
    assert_eq!(failed["response"]["message"], "Failed to create record.");
    assert_eq!(
        failed["response"]["data"]["title"]["code"],
        "validation_required"
    );
    assert_eq!(titles(&server, &su), ["existing"]);
}

#[test]
fn a_missing_record_in_the_middle_fails_the_batch_with_its_404() {
    let (_tmp, server, su) = batch_server("batch-404");
    let body = batch(
        &server,
        Some(&su),
        json!([
            {"method": "POST", "url": POSTS, "body": {"title": "first"}},
            {"method": "DELETE", "url": format!("{POSTS}/zzzzzzzzzzzzzzz")},
            {"method": "POST", "url": "/api/collections/nope/records", "body": {}},
        ]),
    )
    .assert_error(400);
    assert_eq!(body["data"]["requests"]["1"]["response"]["status"], 404);
    assert!(titles(&server, &su).is_empty());
}

#[test]
fn upsert_updates_an_existing_id_and_creates_otherwise() {
    let (_tmp, server, su) = batch_server("batch-upsert");
    let existing = create_post(&server, &su, "before");
    let r = batch(
        &server,
        Some(&su),
        json!([
            {"method": "PUT", "url": POSTS, "body": {"id": existing, "title": "after"}},
            {"method": "PUT", "url": POSTS, "body": {"id": "upsertedrec0001", "title": "created"}},
            // the record the step before created now exists
            {"method": "PUT", "url": POSTS, "body": {"id": "upsertedrec0001", "n": 7}},
            {"method": "PUT", "url": POSTS, "body": {"title": "no id"}},
        ]),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let results = r.json();
    assert_eq!(results[0]["body"]["id"], existing.as_str());
    assert_eq!(results[0]["body"]["n"], 1, "an update keeps unsent fields");
    assert_eq!(results[1]["body"]["id"], "upsertedrec0001");
    assert_eq!(results[2]["body"]["title"], "created");
    assert_eq!(results[2]["body"]["n"], 7);
    assert_eq!(titles(&server, &su), ["after", "created", "no id"]);
}

#[test]
fn each_step_is_checked_against_its_collection_rules_with_the_callers_auth() {
    let (_tmp, server, su) = batch_server("batch-rules");
    let r = server.request(
        "POST",
        "/api/collections",
        Some(&su),
        Some(&json!({"name": "locked", "type": "base", "fields": [{"name": "title", "type": "text"}]})),
    );
    assert_eq!(r.status, 200);
    let ok = batch(
        &server,
        None,
        json!([{"method": "POST", "url": POSTS, "body": {"title": "guest"}}]),
    );
    assert_eq!(ok.status, 200);
    let body = batch(
        &server,
        None,
        json!([
            {"method": "POST", "url": POSTS, "body": {"title": "guest again"}},
            // a step's Authorization header does not change who is asking
            {"method": "POST", "url": "/api/collections/locked/records",
             "headers": {"Authorization": su}, "body": {"title": "sneaky"}},
        ]),
    )
    .assert_error(400);
    let failed = &body["data"]["requests"]["1"]["response"];
    assert_eq!(failed["status"], 403);
    assert_eq!(
        failed["message"],
        "Only superusers can perform this action."
    );
    assert_eq!(titles(&server, &su), ["guest"]);
    let locked = server.request("GET", "/api/collections/locked/records", Some(&su), None);
    assert_eq!(locked.json()["totalItems"], 0);
}

#[test]
fn only_record_writes_can_be_batched() {
    let (_tmp, server, su) = batch_server("batch-actions");
    for (method, url) in [
        ("GET", POSTS.to_string()),
        ("PUT", format!("{POSTS}/abcdefghijklmno")),
        ("POST", format!("{POSTS}/")),
        ("POST", "/api/collections".to_string()),
    ] {
        let body = batch(
            &server,
            Some(&su),
            json!([
                {"method": "POST", "url": POSTS, "body": {"title": "x"}},
                {"method": method, "url": url},
            ]),
        )
        .assert_error(400);
        assert_eq!(
            body["data"]["requests"]["1"]["response"]["status"], 400,
            "{method} {url}"
        );
    }
    assert!(titles(&server, &su).is_empty());
}

#[test]
fn malformed_empty_and_oversized_batches_are_refused() {
    let (_tmp, server, su) = batch_server("batch-limits");
    enable_batch(
        &server,
        &su,
        json!({"enabled": true, "maxRequests": 2, "maxBodySize": 2000}),
    );
    let empty = batch(&server, Some(&su), json!([])).assert_error(400);
    assert_eq!(empty["message"], "Invalid batch request data.");
    assert_eq!(empty["data"]["requests"]["code"], "validation_required");

    let step = json!({"method": "POST", "url": POSTS, "body": {"title": "t"}});
    let over = batch(&server, Some(&su), json!([step, step, step])).assert_error(400);
    assert_eq!(
        over["data"]["requests"]["code"],
        "validation_length_too_long"
    );
    assert_eq!(over["data"]["requests"]["params"]["max"], 2);

    let bad_method = batch(
        &server,
        Some(&su),
        json!([{"method": "post", "url": POSTS}, {"url": ""}]),
    )
    .assert_error(400);
    let requests = &bad_method["data"]["requests"];
    assert_eq!(requests["0"]["method"]["code"], "validation_in_invalid");
    assert_eq!(requests["1"]["method"]["code"], "validation_required");
    assert_eq!(requests["1"]["url"]["code"], "validation_required");

    for raw in [&b"not json"[..], b"[1]", br#"{"requests": "x"}"#] {
        let r = server.raw("POST", "/api/batch", Some(&su), raw, "application/json");
        let body = r.assert_error(400);
        assert_eq!(body["message"], "Failed to read the submitted batch data.");
    }

    let big = json!([{"method": "POST", "url": POSTS, "body": {"title": "x".repeat(3000)}}]);
    batch(&server, Some(&su), big).assert_error(413);
    assert!(titles(&server, &su).is_empty());
}

#[test]
fn auth_records_created_in_a_batch_can_sign_in() {
    let (_tmp, server, su) = batch_server("batch-users");
    let r = batch(
        &server,
        Some(&su),
        json!([
            {"method": "POST", "url": "/api/collections/users/records",
             "body": {"email": "a@example.com", "password": "a-pass-1234", "passwordConfirm": "a-pass-1234"}},
            {"method": "POST", "url": "/api/collections/users/records",
             "body": {"email": "b@example.com", "password": "b-pass-1234", "passwordConfirm": "b-pass-1234"}},
        ]),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.json()[0]["body"].get("password").is_none());
    let token = server.login("users", "b@example.com", "b-pass-1234");

    // A user changes their own password in a batch: oldPassword is
    // verified, the new one hashed, both before the writer job.
    let me = r.json()[1]["body"]["id"].as_str().unwrap().to_string();
    let r = server.request(
        "PATCH",
        "/api/collections/users",
        Some(&su),
        Some(&json!({"updateRule": "id = @request.auth.id"})),
    );
    assert_eq!(r.status, 200);
    let change = |old: &str| {
        batch(
            &server,
            Some(&token),
            json!([{"method": "PATCH", "url": format!("/api/collections/users/records/{me}"),
                    "body": {"oldPassword": old, "password": "b-new-pass-99", "passwordConfirm": "b-new-pass-99"}}]),
        )
    };
    let wrong = change("not-my-password").assert_error(400);
    assert_eq!(
        wrong["data"]["requests"]["0"]["response"]["data"]["oldPassword"]["code"],
        "validation_invalid_old_password"
    );
    assert_eq!(change("b-pass-1234").status, 200);
    server.login("users", "b@example.com", "b-new-pass-99");

    // A failing batch creates no user at all.
    let body = batch(
        &server,
        Some(&su),
        json!([
            {"method": "POST", "url": "/api/collections/users/records",
             "body": {"email": "c@example.com", "password": "c-pass-1234", "passwordConfirm": "c-pass-1234"}},
            {"method": "POST", "url": "/api/collections/users/records",
             "body": {"email": "d@example.com", "password": "short", "passwordConfirm": "short"}},
        ]),
    )
    .assert_error(400);
    assert_eq!(
        body["data"]["requests"]["1"]["response"]["data"]["password"]["code"],
        "validation_min_text_constraint"
    );
    let users = server.request("GET", "/api/collections/users/records", Some(&su), None);
    assert_eq!(users.json()["totalItems"], 2);
}

#[test]
fn the_sdk_multipart_form_carries_the_batch_in_json_payload() {
    let (_tmp, server, su) = batch_server("batch-multipart");
    let payload = json!({"requests": [
        {"method": "POST", "url": POSTS, "body": {"title": "from a form"}},
        {"method": "PUT", "url": POSTS, "body": {"id": "formupsert00001", "title": "upserted"}},
    ]});
    let boundary = "batchBoundary42";
    let mut form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"@jsonPayload\"\r\n\r\n{payload}\r\n"
    );
    form.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"requests.0.doc\"; filename=\"a.txt\"\r\n\
         Content-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n"
    ));
    let r = server.raw(
        "POST",
        "/api/batch",
        Some(&su),
        form.as_bytes(),
        &format!("multipart/form-data; boundary={boundary}"),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()[1]["body"]["id"], "formupsert00001");
    assert_eq!(titles(&server, &su), ["from a form", "upserted"]);
}

#[test]
fn a_short_password_is_reported_as_too_short_not_as_missing() {
    let (_tmp, server, su) = batch_server("batch-short-password");
    let short = json!({"email": "s@example.com", "password": "short", "passwordConfirm": "short"});
    let single = server
        .request("POST", "/api/collections/users/records", None, Some(&short))
        .assert_error(400);
    assert_eq!(
        single["data"]["password"]["code"],
        "validation_min_text_constraint"
    );
    let batched = batch(
        &server,
        Some(&su),
        json!([{"method": "POST", "url": "/api/collections/users/records", "body": short}]),
    )
    .assert_error(400);
    assert_eq!(
        batched["data"]["requests"]["0"]["response"]["data"]["password"]["code"],
        "validation_min_text_constraint"
    );
}

/// Creates a collection as the superuser.
fn new_collection(server: &Server, su: &str, definition: Value) {
    let r = server.request("POST", "/api/collections", Some(su), Some(&definition));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

#[test]
fn step_rules_see_the_steps_body_and_the_batch_context() {
    let (_tmp, server, su) = batch_server("batch-request-info");
    new_collection(
        &server,
        &su,
        json!({"name": "guarded", "type": "base", "listRule": "", "viewRule": "",
               "fields": [{"name": "title", "type": "text"}, {"name": "n", "type": "number"}],
               "createRule": "@request.body.title != 'locked' && @request.body.n < 10",
               "updateRule": "@request.body.title:changed = false",
               "deleteRule": "@request.body.confirm = true"}),
    );
    new_collection(
        &server,
        &su,
        json!({"name": "batchonly", "type": "base", "fields": [{"name": "title", "type": "text"}],
               "createRule": "@request.context = 'batch'"}),
    );
    const GUARDED: &str = "/api/collections/guarded/records";
    // `n+` is applied before the rule looks: 0 + 11 is not below 10
    let body = batch(
        &server,
        None,
        json!([{"method": "POST", "url": GUARDED, "body": {"title": "a", "n+": 5}},
               {"method": "POST", "url": GUARDED, "body": {"title": "b", "n+": 11}}]),
    )
    .assert_error(400);
    assert_eq!(body["data"]["requests"]["1"]["response"]["status"], 400);
    let r = batch(
        &server,
        None,
        json!([{"method": "POST", "url": GUARDED, "body": {"id": "guarded00000001", "title": "a", "n": 1}}]),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let one = format!("{GUARDED}/guarded00000001");
    let step = |method: &str, body: Value| {
        batch(
            &server,
            None,
            json!([{"method": method, "url": one, "body": body}]),
        )
    };
    let failed = step("PATCH", json!({"title": "changed"})).assert_error(400);
    assert_eq!(failed["data"]["requests"]["0"]["response"]["status"], 404);
    assert_eq!(step("PATCH", json!({"title": "a", "n": 3})).status, 200);
    let failed = step("DELETE", json!({})).assert_error(400);
    assert_eq!(failed["data"]["requests"]["0"]["response"]["status"], 404);
    assert_eq!(step("DELETE", json!({"confirm": true})).status, 200);
    // `@request.context` is `batch` for steps only
    let single = server.request(
        "POST",
        "/api/collections/batchonly/records",
        None,
        Some(&json!({"title": "single"})),
    );
    assert_eq!(single.status, 400);
    let batched = batch(
        &server,
        None,
        json!([{"method": "POST", "url": "/api/collections/batchonly/records", "body": {"title": "step"}}]),
    );
    assert_eq!(
        batched.status,
        200,
        "{}",
        String::from_utf8_lossy(&batched.body)
    );
}

#[test]
fn a_manager_step_edits_another_auth_record_like_a_single_request() {
    let (_tmp, server, su) = batch_server("batch-manage");
    new_collection(
        &server,
        &su,
        json!({"name": "staff", "type": "auth", "fields": [{"name": "role", "type": "text"}],
               "listRule": "", "viewRule": "", "createRule": "", "updateRule": "@request.auth.id != ''",
               "manageRule": "@request.auth.role = 'admin'"}),
    );
    let sign_up = |email: &str, role: &str| {
        let r = server.request(
            "POST",
            "/api/collections/staff/records",
            None,
            Some(&json!({"email": email, "password": "pass-12345", "passwordConfirm": "pass-12345", "role": role})),
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let token = server.login("staff", email, "pass-12345");
        (r.json()["id"].as_str().unwrap().to_string(), token)
    };
    let (_, admin) = sign_up("admin@example.com", "admin");
    let (bob, _) = sign_up("bob@example.com", "user");
    let (_, carl) = sign_up("carl@example.com", "user");
    let edit = |token: &str| {
        batch(
            &server,
            Some(token),
            json!([{"method": "PATCH", "url": format!("/api/collections/staff/records/{bob}"),
                    "body": {"password": "bob-new-pass-1", "passwordConfirm": "bob-new-pass-1", "verified": true}}]),
        )
    };
    let refused = edit(&carl).assert_error(400);
    let data = &refused["data"]["requests"]["0"]["response"]["data"];
    assert_eq!(data["oldPassword"]["code"], "validation_required");
    assert_eq!(data["verified"]["code"], "validation_values_mismatch");
    // no oldPassword needed, and the answer shows the managed record's email
    let r = edit(&admin);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()[0]["body"]["verified"], true);
    assert_eq!(r.json()[0]["body"]["email"], "bob@example.com");
    server.login("staff", "bob@example.com", "bob-new-pass-1");
}
