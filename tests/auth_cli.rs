//! The auth commands of the CLI against a real data dir and server:
//! `superuser otp EMAIL` and `superuser ips [IP|CIDR ...]`, with the
//! reference's output and exit codes.

mod common;

use common::{run_cli, Server, TempDir, ENCRYPTION_KEY, SU_EMAIL, SU_PASSWORD};
use serde_json::json;

const KEY_VAR: &str = "PB_ENCRYPTION_KEY";

/// A `superuser` command on `dir`, with the settings key in the environment.
fn superuser(dir: &str, args: &[&str]) -> (i32, String) {
    let mut all = vec!["superuser"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--dir", dir, "--encryptionEnv", KEY_VAR]);
    run_cli(&all, &[(KEY_VAR, ENCRYPTION_KEY)])
}

/// The value after `label` in the OTP report (`├─ Id:    abc`).
fn report_value(out: &str, label: &str) -> String {
    out.lines()
        .find_map(|line| line.split_once(label).map(|(_, v)| v.trim().to_string()))
        .unwrap_or_else(|| panic!("no {label} in {out}"))
}

#[test]
fn superuser_otp_prints_a_code_that_passes_as_a_factor() {
    let tmp = TempDir::new("cli-otp");
    let server = Server::start(&tmp);
    let dir = server.dir.to_str().unwrap().to_string();
    let token = server.superuser_token();

    let (code, out) = superuser(&dir, &["otp", SU_EMAIL]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("OTP auth is not enabled"), "{out}");

    let enabled = server.request(
        "PATCH",
        "/api/collections/_superusers",
        Some(&token),
        Some(&json!({"otp": {"enabled": true}})),
    );
    assert_eq!(enabled.status, 200, "{:?}", enabled.body);

    let (code, out) = superuser(&dir, &["otp", "nobody@example.com"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("doesn't exist"), "{out}");
    assert_eq!(superuser(&dir, &["otp", "not-an-email"]).0, 1);
    assert_eq!(superuser(&dir, &["otp"]).0, 1, "missing email");

    let (code, out) = superuser(&dir, &["otp", SU_EMAIL]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with(&format!(
            "Successfully created OTP for superuser \"{SU_EMAIL}\":\n"
        )),
        "{out}"
    );
    assert_eq!(report_value(&out, "└─ Valid:"), "180s");
    let (otp_id, pass) = (report_value(&out, "├─ Id:"), report_value(&out, "├─ Pass:"));
    assert_eq!(otp_id.len(), 15);
    assert_eq!(pass.len(), 8);
    assert!(pass.bytes().all(|b| b.is_ascii_digit()), "{pass}");

    // OTP on _superusers forces MFA: the code is one factor, the password the other
    let first = server.request(
        "POST",
        "/api/collections/_superusers/auth-with-otp",
        None,
        Some(&json!({"otpId": otp_id, "password": pass})),
    );
    assert_eq!(first.status, 401, "{:?}", first.body);
    let mfa_id = first.json()["mfaId"].as_str().unwrap().to_string();
    let done = server.request(
        "POST",
        "/api/collections/_superusers/auth-with-password",
        None,
        Some(&json!({"identity": SU_EMAIL, "password": SU_PASSWORD, "mfaId": mfa_id})),
    );
    assert_eq!(done.status, 200, "{:?}", done.body);
    assert!(done.json()["token"].is_string());
}

#[test]
fn superuser_ips_sets_and_clears_the_allow_list_of_an_encrypted_dir() {
    let tmp = TempDir::new("cli-ips");
    let server = Server::start(&tmp);
    let dir = server.dir.clone();
    let d = dir.to_str().unwrap().to_string();
    let token = server.superuser_token();
    // Saving settings through the API stores them encrypted.
    let saved = server.request(
        "PATCH",
        "/api/settings",
        Some(&token),
        Some(&json!({"meta": {"appName": "Locked"}})),
    );
    assert_eq!(saved.status, 200, "{:?}", saved.body);
    server.stop();

    // without the key the settings cannot be read, so nothing is changed
    let (code, out) = run_cli(&["superuser", "ips", "10.9.9.0/24", "--dir", &d], &[]);
    assert_eq!(code, 1, "{out}");

    let (code, out) = superuser(&d, &["ips", "10.9.9.9", "10.9.8.0/24"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        "Successfully updated SuperuserIPs setting:\n├─ 10.9.9.9\n└─ 10.9.8.0/24\n"
    );
    let (code, out) = superuser(&d, &["ips", "10.0.0.1", "bogus"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("superuserIPs: (1: "), "{out}");

    // the list holds: a superuser signing in from 127.0.0.1 is refused
    let env = [(KEY_VAR, ENCRYPTION_KEY)];
    let flags = ["--encryptionEnv", KEY_VAR];
    let server = Server::serve(&dir, &env, &flags);
    let login = server.request(
        "POST",
        "/api/collections/_superusers/auth-with-password",
        None,
        Some(&json!({"identity": SU_EMAIL, "password": SU_PASSWORD})),
    );
    login.assert_error(403);
    server.stop();

    let (code, out) = superuser(&d, &["ips"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, "Successfully cleared SuperuserIPs setting!\n");
    let server = Server::serve(&dir, &env, &flags);
    let token = server.superuser_token();
    let settings = server.request("GET", "/api/settings", Some(&token), None);
    assert_eq!(settings.json()["superuserIPs"], json!([]));
    assert_eq!(settings.json()["meta"]["appName"], "Locked");
}
