//! The server remembers tokens it verified a moment ago. Whatever makes a
//! token invalid must still take effect at once, for a token the server has
//! just seen: a new password, a deleted or truncated record, a rotated
//! secret, a superuser's own password change.

mod common;

use common::auth_env::{body_text, env, Env, PASSWORD};
use serde_json::json;

/// Signs `email` up in `users`, logs in, and uses the token twice so the
/// server has it remembered. Returns (record id, token).
fn remembered_session(e: &Env, email: &str) -> (String, String) {
    let id = e.sign_up("users", email);
    let r = e.login("users", email, PASSWORD);
    assert_eq!(r.status, 200, "{}", body_text(&r));
    let token = r.json()["token"].as_str().unwrap().to_string();
    for _ in 0..2 {
        assert_eq!(e.refresh_status("users", &token), 200);
    }
    (id, token)
}

#[test]
fn a_remembered_token_dies_with_a_new_password() {
    let e = env("tc-password");
    let (id, token) = remembered_session(&e, "pw@example.com");
    let new_password = "another-pass-456";
    let r = e.server.request(
        "PATCH",
        &format!("/api/collections/users/records/{id}"),
        Some(&e.su),
        Some(&json!({"password": new_password, "passwordConfirm": new_password})),
    );
    assert_eq!(r.status, 200, "{}", body_text(&r));
    assert_eq!(e.refresh_status("users", &token), 401);
}

#[test]
fn a_remembered_token_dies_with_its_record() {
    let e = env("tc-delete");
    let (id, token) = remembered_session(&e, "gone@example.com");
    let r = e.server.request(
        "DELETE",
        &format!("/api/collections/users/records/{id}"),
        Some(&e.su),
        None,
    );
    assert_eq!(r.status, 204, "{}", body_text(&r));
    assert_eq!(e.refresh_status("users", &token), 401);
}

#[test]
fn a_remembered_token_dies_when_its_collection_is_truncated() {
    let e = env("tc-truncate");
    let (_, token) = remembered_session(&e, "emptied@example.com");
    let r = e.server.request(
        "DELETE",
        "/api/collections/users/truncate",
        Some(&e.su),
        None,
    );
    assert_eq!(r.status, 204, "{}", body_text(&r));
    assert_eq!(e.refresh_status("users", &token), 401);
}

#[test]
fn a_remembered_token_dies_with_a_rotated_secret() {
    let e = env("tc-secret");
    let (_, token) = remembered_session(&e, "rotated@example.com");
    let r = e.server.request(
        "PATCH",
        "/api/collections/users",
        Some(&e.su),
        Some(&json!({"authToken": {"secret": "r".repeat(50)}})),
    );
    assert_eq!(r.status, 200, "{}", body_text(&r));
    assert_eq!(e.refresh_status("users", &token), 401);
}

#[test]
fn a_superuser_token_dies_with_its_own_password_change() {
    let e = env("tc-superuser");
    for _ in 0..2 {
        assert_eq!(e.refresh_status("_superusers", &e.su), 200);
    }
    let me = e.post(
        "/api/collections/_superusers/auth-refresh",
        Some(&e.su),
        json!({}),
    );
    let id = me.json()["record"]["id"].as_str().unwrap().to_string();
    let new_password = "root-pass-789012";
    let r = e.server.request(
        "PATCH",
        &format!("/api/collections/_superusers/records/{id}"),
        Some(&e.su),
        Some(&json!({"password": new_password, "passwordConfirm": new_password})),
    );
    assert_eq!(r.status, 200, "{}", body_text(&r));
    assert_eq!(e.refresh_status("_superusers", &e.su), 401);
}

#[test]
fn writes_elsewhere_leave_a_remembered_token_working() {
    let e = env("tc-unrelated");
    let (_, token) = remembered_session(&e, "stays@example.com");
    let r = e.post(
        "/api/collections",
        Some(&e.su),
        json!({"name": "notes", "type": "base", "createRule": "",
               "fields": [{"name": "text", "type": "text"}]}),
    );
    assert_eq!(r.status, 200, "{}", body_text(&r));
    for n in 0..3 {
        let r = e.post(
            "/api/collections/notes/records",
            Some(&token),
            json!({"text": format!("note {n}")}),
        );
        assert_eq!(r.status, 200, "{}", body_text(&r));
    }
    assert_eq!(e.refresh_status("users", &token), 200);
}
