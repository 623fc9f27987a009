//! An existing PocketBase data dir opens and serves as it is: its records
//! list, its users and superusers log in with their bcrypt passwords (which
//! are then upgraded), and its encrypted settings decrypt with the same key.

mod common;

use common::{run_cli, Server, TempDir};
use serde_json::json;
use std::path::Path;

const KEY_VAR: &str = "PB_KEY";
const KEY: &str = "fixture-key-0123456789abcdef0123";

fn copy_fixture(tmp: &TempDir) -> std::path::PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference_pb_data");
    let dst = tmp.path().join("pb_data");
    std::fs::create_dir_all(&dst).unwrap();
    for name in ["data.db", "auxiliary.db"] {
        std::fs::copy(src.join(name), dst.join(name)).unwrap();
    }
    dst
}

fn serve(dir: &Path) -> Server {
    Server::serve(dir, &[(KEY_VAR, KEY)], &["--encryptionEnv", KEY_VAR])
}

#[test]
fn reference_records_list_with_their_types() {
    let tmp = TempDir::new("compat-list");
    let server = serve(&copy_fixture(&tmp));
    let r = server.request(
        "GET",
        "/api/collections/notes/records?sort=views",
        None,
        None,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let body = r.json();
    assert_eq!(body["totalItems"], 3);
    let first = &body["items"][0];
    assert_eq!(first["title"], "note 1");
    assert_eq!(first["views"], 10);
    assert_eq!(first["done"], false);
    assert_eq!(first["tags"], json!(["a", "c"]));
    assert_eq!(first["meta"], json!({"n": 1}));
    assert_eq!(first["collectionName"], "notes");
    assert_eq!(body["items"][1]["done"], true);
    let filtered = server.request(
        "GET",
        "/api/collections/notes/records?filter=views%3E15",
        None,
        None,
    );
    assert_eq!(filtered.json()["totalItems"], 2);
}

#[test]
fn reference_passwords_verify_and_are_upgraded() {
    let tmp = TempDir::new("compat-login");
    let dir = copy_fixture(&tmp);
    let server = serve(&dir);
    let hash_of = |table: &str, email: &str| -> String {
        let conn = rusqlite::Connection::open(dir.join("data.db")).unwrap();
        conn.query_row(
            &format!("SELECT password FROM `{table}` WHERE email = ?1"),
            [email],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert!(hash_of("users", "alice@example.com").starts_with("$2a$"));
    let token = server.login("users", "alice@example.com", "alice-pass-123");
    assert!(!token.is_empty());
    assert!(
        hash_of("users", "alice@example.com").starts_with("$argon2id$"),
        "bcrypt is re-hashed on login"
    );
    // the upgraded hash still verifies, and the old token is still valid
    server.login("users", "alice@example.com", "alice-pass-123");
    let me = server.request(
        "POST",
        "/api/collections/users/auth-refresh",
        Some(&token),
        None,
    );
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["record"]["name"], "Alice");
    // a wrong password is still wrong
    let bad = server.request(
        "POST",
        "/api/collections/users/auth-with-password",
        None,
        Some(&json!({"identity": "alice@example.com", "password": "nope-nope-nope"})),
    );
    bad.assert_error(400);
    // the reference's superuser logs in too
    server.login("_superusers", "admin@example.com", "admin-pass-123");
}

#[test]
fn reference_encrypted_settings_decrypt_with_the_same_key() {
    let tmp = TempDir::new("compat-settings");
    let server = serve(&copy_fixture(&tmp));
    let token = server.login("_superusers", "admin@example.com", "admin-pass-123");
    let r = server.request("GET", "/api/settings", Some(&token), None);
    assert_eq!(r.status, 200);
    let s = r.json();
    assert_eq!(s["meta"]["appName"], "Fixture App");
    assert_eq!(s["smtp"]["username"], "fixture-user");
    assert!(
        !r.body.windows(19).any(|w| w == b"fixture-smtp-secret"),
        "secrets are never returned"
    );
}

#[test]
fn encrypted_settings_without_the_right_key_refuse_to_start() {
    let tmp = TempDir::new("compat-key");
    let dir = copy_fixture(&tmp);
    let before = std::fs::read(dir.join("data.db")).unwrap();
    let d = dir.to_str().unwrap();
    let (code, out) = run_cli(
        &[
            "superuser",
            "upsert",
            "x@example.com",
            "whatever-123",
            "--dir",
            d,
            "--encryptionEnv",
            KEY_VAR,
        ],
        &[(KEY_VAR, "wrong-key-0123456789abcdef012345")],
    );
    assert_ne!(code, 0, "wrong key must fail: {out}");
    let (code, out) = run_cli(
        &[
            "superuser",
            "upsert",
            "x@example.com",
            "whatever-123",
            "--dir",
            d,
        ],
        &[],
    );
    assert_ne!(code, 0, "missing key must fail: {out}");
    assert!(
        out.contains("encryption") || out.contains("key"),
        "the message names the problem: {out}"
    );
    assert_eq!(
        std::fs::read(dir.join("data.db")).unwrap(),
        before,
        "nothing was written"
    );
}
