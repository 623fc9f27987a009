//! The records and auth APIs end to end: rules, sign-up and sign-in,
//! token invalidation, multipart bodies and field modifiers.

mod common;

use common::{Server, TempDir};
use serde_json::{json, Value};

fn create_collection(server: &Server, su: &str, body: Value) -> Value {
    let r = server.request("POST", "/api/collections", Some(su), Some(&body));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn sign_up(server: &Server, email: &str, password: &str) -> Value {
    let r = server.request(
        "POST",
        "/api/collections/users/records",
        None,
        Some(&json!({"email": email, "password": password, "passwordConfirm": password})),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

#[test]
fn rules_decide_who_sees_and_writes_what() {
    let tmp = TempDir::new("rules");
    let server = Server::start(&tmp);
    let su = server.superuser_token();
    let alice = sign_up(&server, "alice@example.com", "alice-pass-1");
    sign_up(&server, "bob@example.com", "bob-pass-12");
    let alice_token = server.login("users", "alice@example.com", "alice-pass-1");
    let bob_token = server.login("users", "bob@example.com", "bob-pass-12");
    create_collection(
        &server,
        &su,
        json!({"name": "posts", "type": "base",
               "listRule": "owner = @request.auth.id || published = true",
               "viewRule": "owner = @request.auth.id || published = true",
               "createRule": "@request.auth.id != '' && owner = @request.auth.id",
               "updateRule": "owner = @request.auth.id",
               "deleteRule": null,
               "fields": [{"name": "title", "type": "text"}, {"name": "published", "type": "bool"},
                          {"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1}]}),
    );
    let posts = "/api/collections/posts/records";
    // create: guests and impersonation attempts fail the rule with 400
    server
        .request(
            "POST",
            posts,
            None,
            Some(&json!({"title": "x", "owner": alice["id"]})),
        )
        .assert_error(400);
    server
        .request(
            "POST",
            posts,
            Some(&bob_token),
            Some(&json!({"title": "x", "owner": alice["id"]})),
        )
        .assert_error(400);
    let draft = server
        .request(
            "POST",
            posts,
            Some(&alice_token),
            Some(&json!({"title": "draft", "owner": alice["id"]})),
        )
        .json();
    let public = server
        .request(
            "POST",
            posts,
            Some(&alice_token),
            Some(&json!({"title": "public", "published": true, "owner": alice["id"]})),
        )
        .json();
    assert_eq!(
        server
            .request("GET", &format!("{posts}?perPage=1"), Some(&su), None)
            .json()["totalItems"],
        2,
        "nothing half-written by the refused creates"
    );
    // list filters silently
    assert_eq!(
        server.request("GET", posts, None, None).json()["totalItems"],
        1
    );
    assert_eq!(
        server.request("GET", posts, Some(&bob_token), None).json()["totalItems"],
        1
    );
    assert_eq!(
        server
            .request("GET", posts, Some(&alice_token), None)
            .json()["totalItems"],
        2
    );
    // view: hidden records are 404, not 403
    let draft_path = format!("{posts}/{}", draft["id"].as_str().unwrap());
    server
        .request("GET", &draft_path, Some(&bob_token), None)
        .assert_error(404);
    assert_eq!(
        server
            .request("GET", &draft_path, Some(&alice_token), None)
            .status,
        200
    );
    // update: not the owner → 404, nothing changes
    server
        .request(
            "PATCH",
            &draft_path,
            Some(&bob_token),
            Some(&json!({"title": "hacked"})),
        )
        .assert_error(404);
    assert_eq!(
        server
            .request(
                "PATCH",
                &draft_path,
                Some(&alice_token),
                Some(&json!({"title": "edited"}))
            )
            .json()["title"],
        "edited"
    );
    // delete: null rule → 403 for everyone but superusers
    server
        .request("DELETE", &draft_path, Some(&alice_token), None)
        .assert_error(403);
    assert_eq!(
        server
            .request("DELETE", &draft_path, Some(&su), None)
            .status,
        204
    );
    // a client filter may not use @request as a non-superuser
    let f = "/api/collections/posts/records?filter=owner%3D%40request.auth.id";
    server
        .request("GET", f, Some(&bob_token), None)
        .assert_error(403);
    assert_eq!(server.request("GET", f, Some(&su), None).status, 200);
    let _ = public;
}

#[test]
fn sign_up_sign_in_refresh_and_token_invalidation() {
    let tmp = TempDir::new("auth");
    let server = Server::start(&tmp);
    let user = sign_up(&server, "carol@example.com", "carol-pass-1");
    assert!(user.get("password").is_none() && user.get("tokenKey").is_none());
    // guests don't see the email unless emailVisibility is set
    assert!(user.get("email").is_none());
    let token = server.login("users", "carol@example.com", "carol-pass-1");
    let me = server.request(
        "POST",
        "/api/collections/users/auth-refresh",
        Some(&format!("Bearer {token}")),
        None,
    );
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["record"]["email"], "carol@example.com");
    // wrong password and unknown identities look the same
    let wrong = server.request(
        "POST",
        "/api/collections/users/auth-with-password",
        None,
        Some(&json!({"identity": "carol@example.com", "password": "nope-nope-1"})),
    );
    let unknown = server.request(
        "POST",
        "/api/collections/users/auth-with-password",
        None,
        Some(&json!({"identity": "nobody@example.com", "password": "nope-nope-1"})),
    );
    assert_eq!(
        wrong.assert_error(400)["message"],
        unknown.assert_error(400)["message"]
    );
    server
        .request(
            "POST",
            "/api/collections/users/auth-with-password",
            None,
            Some(&json!({})),
        )
        .assert_error(400);
    // changing the password needs the old one and invalidates old tokens
    let path = format!(
        "/api/collections/users/records/{}",
        user["id"].as_str().unwrap()
    );
    let no_old = server.request(
        "PATCH",
        &path,
        Some(&token),
        Some(&json!({"password": "carol-pass-2", "passwordConfirm": "carol-pass-2"})),
    );
    assert!(no_old.assert_error(400)["data"]["oldPassword"].is_object());
    let changed = server.request("PATCH", &path, Some(&token), Some(&json!({"password": "carol-pass-2", "passwordConfirm": "carol-pass-2", "oldPassword": "carol-pass-1"})));
    assert_eq!(
        changed.status,
        200,
        "{}",
        String::from_utf8_lossy(&changed.body)
    );
    server
        .request(
            "POST",
            "/api/collections/users/auth-refresh",
            Some(&token),
            None,
        )
        .assert_error(401);
    server.login("users", "carol@example.com", "carol-pass-2");
    // sign-up validation: mismatch and too short
    let bad = server.request(
        "POST",
        "/api/collections/users/records",
        None,
        Some(&json!({"email": "d@example.com", "password": "short", "passwordConfirm": "other"})),
    );
    let data = bad.assert_error(400)["data"].clone();
    assert!(data["password"].is_object() && data["passwordConfirm"].is_object());
    // a tampered token is just a guest
    let mut forged = token.clone();
    forged.pop();
    server
        .request(
            "POST",
            "/api/collections/users/auth-refresh",
            Some(&forged),
            None,
        )
        .assert_error(401);
    server
        .request("GET", "/api/collections", Some(&token), None)
        .assert_error(401);
}

#[test]
fn multipart_bodies_with_json_payload_and_modifiers() {
    let tmp = TempDir::new("multipart");
    let server = Server::start(&tmp);
    let su = server.superuser_token();
    create_collection(
        &server,
        &su,
        json!({"name": "items", "type": "base", "listRule": "", "createRule": "", "updateRule": "",
               "fields": [{"name": "title", "type": "text"}, {"name": "n", "type": "number"},
                          {"name": "tags", "type": "select", "values": ["a", "b", "c"], "maxSelect": 3},
                          {"name": "meta", "type": "json"}]}),
    );
    let boundary = "XbOuNdArY";
    let body = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nhello\r\n--{b}\r\nContent-Disposition: form-data; name=\"n\"\r\n\r\n3\r\n--{b}\r\nContent-Disposition: form-data; name=\"tags\"\r\n\r\na\r\n--{b}\r\nContent-Disposition: form-data; name=\"tags\"\r\n\r\nc\r\n--{b}\r\nContent-Disposition: form-data; name=\"@jsonPayload\"\r\n\r\n{{\"meta\": {{\"deep\": [1, 2]}}}}\r\n--{b}--\r\n",
        b = boundary
    );
    let r = server.raw(
        "POST",
        "/api/collections/items/records",
        None,
        body.as_bytes(),
        &format!("multipart/form-data; boundary={boundary}"),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let item = r.json();
    assert_eq!(item["title"], "hello");
    assert_eq!(item["n"], 3);
    assert_eq!(item["tags"], json!(["a", "c"]));
    assert_eq!(item["meta"], json!({"deep": [1, 2]}));
    let path = format!(
        "/api/collections/items/records/{}",
        item["id"].as_str().unwrap()
    );
    let r = server.raw(
        "PATCH",
        &path,
        None,
        b"n%2B=4&tags-=a",
        "application/x-www-form-urlencoded",
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["n"], 7);
    assert_eq!(r.json()["tags"], json!(["c"]));
}

/// Workers share read snapshots between GET requests (`store::reader`);
/// none may hide a write that was already acknowledged. Clients at once
/// create a record, read it, change it and read the change, each request on
/// a new connection that any worker may take.
#[test]
fn every_acknowledged_write_is_read_back_at_once_under_concurrent_load() {
    let tmp = TempDir::new("read-your-writes");
    let server = Server::start(&tmp);
    let su = server.superuser_token();
    create_collection(
        &server,
        &su,
        json!({
            "name": "notes", "type": "base",
            "viewRule": "", "createRule": "", "updateRule": "",
            "fields": [{"name": "n", "type": "number"}],
        }),
    );
    std::thread::scope(|scope| {
        for client in 0..8 {
            let server = &server;
            scope.spawn(move || {
                for round in 0..40 {
                    let body = json!({ "n": round });
                    let created =
                        server.request("POST", "/api/collections/notes/records", None, Some(&body));
                    assert_eq!(created.status, 200, "client {client} round {round}");
                    let id = created.json()["id"].as_str().unwrap().to_string();
                    let path = format!("/api/collections/notes/records/{id}");
                    let seen = server.request("GET", &path, None, None);
                    assert_eq!(seen.status, 200, "client {client} round {round}");
                    let body = json!({ "n": round + 1000 });
                    let changed = server.request("PATCH", &path, None, Some(&body));
                    assert_eq!(changed.status, 200, "client {client} round {round}");
                    let seen = server.request("GET", &path, None, None);
                    assert_eq!(
                        seen.json()["n"],
                        round + 1000,
                        "client {client} round {round}"
                    );
                }
            });
        }
    });
}
