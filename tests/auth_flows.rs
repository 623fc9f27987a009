//! The auth flows end to end, read through an in-test SMTP sink:
//! verification, password reset, email change, OTP, MFA, login alerts,
//! impersonation, the auth-record rules of plain updates, token tampering
//! and expiry. (Timing of unknown identities: `auth_timing.rs`.)

mod common;

use common::auth_env::{body_text, env, Env, PASSWORD};
use common::{send_request_with_headers, Response};
use serde_json::{json, Value};
use std::time::Duration;

// ---------------------------------------------------------------------------
// helpers

fn token_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT payload");
    let mut padded = payload.replace('-', "+").replace('_', "/");
    while padded.len() % 4 != 0 {
        padded.push('=');
    }
    let bytes = decode_base64(&padded);
    serde_json::from_slice(&bytes).expect("JSON claims")
}

fn decode_base64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|c| *c != b'=') {
        let value = ALPHABET.iter().position(|a| *a == c).expect("base64") as u32;
        buffer = (buffer << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn error_code(r: &Response, field: &str) -> String {
    r.json()["data"][field]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

// ---------------------------------------------------------------------------
// verification

#[test]
fn verification_mails_a_link_that_verifies_and_can_be_confirmed_again() {
    let e = env("verify");
    let id = e.sign_up("users", "v@example.com");
    let session = e.login("users", "v@example.com", PASSWORD).json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = e.post(
        "/api/collections/users/request-verification",
        None,
        json!({"email": "v@example.com"}),
    );
    assert_eq!(r.status, 204);
    let mail = e.sink.wait_for("v@example.com");
    let token = mail.token();
    assert!(
        mail.text.contains(&format!(
            "https://app.example.test/_/#/auth/confirm-verification/{token}"
        )),
        "{}",
        mail.text
    );
    let claims = token_claims(&token);
    assert_eq!(claims["type"], "verification");
    assert_eq!(claims["email"], "v@example.com");
    assert_eq!(claims["id"], id.as_str());
    assert_eq!(e.record("users", &id)["verified"], false);

    let confirm = |t: &str| {
        e.post(
            "/api/collections/users/confirm-verification",
            None,
            json!({ "token": t }),
        )
    };
    assert_eq!(confirm(&token).status, 204);
    assert_eq!(e.record("users", &id)["verified"], true);
    assert_eq!(
        confirm(&token).status,
        204,
        "repeatable while the token lives"
    );
    // verifying does not sign anybody out
    assert_eq!(e.refresh_status("users", &session), 200);
    // a verified account gets no more verification mails
    e.post(
        "/api/collections/users/request-verification",
        None,
        json!({"email": "v@example.com"}),
    );
    assert_eq!(e.sink.count_after_settling("v@example.com"), 1);
}

#[test]
fn a_second_verification_request_within_the_pause_sends_nothing() {
    let e = env("verify-pause");
    e.sign_up("users", "p@example.com");
    let request = || {
        e.post(
            "/api/collections/users/request-verification",
            None,
            json!({"email": "p@example.com"}),
        )
        .status
    };
    assert_eq!(request(), 204);
    e.sink.wait_for("p@example.com");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(request(), 204);
    assert_eq!(e.sink.count_after_settling("p@example.com"), 1);
}

#[test]
fn bad_verification_tokens_are_refused_with_the_reference_codes() {
    let e = env("verify-bad");
    let confirm = |t: Value| {
        e.post(
            "/api/collections/users/confirm-verification",
            None,
            json!({ "token": t }),
        )
    };
    let r = confirm(json!(""));
    r.assert_error(400);
    assert_eq!(error_code(&r, "token"), "validation_required");
    let r = confirm(json!("bogus.token.value"));
    assert_eq!(error_code(&r, "token"), "validation_invalid_token_claims");

    e.sign_up("users", "t@example.com");
    e.post(
        "/api/collections/users/request-verification",
        None,
        json!({"email": "t@example.com"}),
    );
    let token = e.sink.wait_for("t@example.com").token();
    let parts: Vec<&str> = token.split('.').collect();
    // a flipped signature
    let mut sig = parts[2].to_string();
    let last = if sig.ends_with('A') { "B" } else { "A" };
    sig.replace_range(sig.len() - 1.., last);
    let r = confirm(json!(format!("{}.{}.{sig}", parts[0], parts[1])));
    assert_eq!(error_code(&r, "token"), "validation_invalid_token");
    // a payload naming another email, with the old signature
    let forged = token_claims(&token);
    let mut forged = forged.as_object().unwrap().clone();
    forged.insert("exp".into(), json!(now_unix() + 999_999));
    let payload = encode_base64url(&serde_json::to_vec(&forged).unwrap());
    let r = confirm(json!(format!("{}.{payload}.{}", parts[0], parts[2])));
    assert_eq!(error_code(&r, "token"), "validation_invalid_token");
    // a token of another purpose
    e.post(
        "/api/collections/users/request-password-reset",
        None,
        json!({"email": "t@example.com"}),
    );
    let reset = e.sink.wait_for("t@example.com").token();
    assert_eq!(
        error_code(&confirm(json!(reset)), "token"),
        "validation_invalid_token"
    );
    // superusers are always verified
    e.post(
        "/api/collections/_superusers/request-verification",
        None,
        json!({"email": common::SU_EMAIL}),
    )
    .assert_error(400);
}

fn encode_base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[test]
fn expired_tokens_and_codes_stop_working() {
    let e = env("expiry");
    let name = e.auth_collection(
        "short_lived",
        json!({"verificationToken": {"duration": 10}, "otp": {"enabled": true, "duration": 10, "length": 6}}),
    );
    e.sign_up(&name, "x@example.com");
    e.post(
        &format!("/api/collections/{name}/request-verification"),
        None,
        json!({"email": "x@example.com"}),
    );
    let token = e.sink.wait_for("x@example.com").token();
    let (otp_id, code) = e.emailed_otp(&name, "x@example.com");
    std::thread::sleep(Duration::from_secs(11));
    let r = e.post(
        &format!("/api/collections/{name}/confirm-verification"),
        None,
        json!({ "token": token }),
    );
    assert_eq!(error_code(&r, "token"), "validation_invalid_token");
    let r = e.post(
        &format!("/api/collections/{name}/auth-with-otp"),
        None,
        json!({"otpId": otp_id, "password": code}),
    );
    r.assert_error(400);
}

// ---------------------------------------------------------------------------
// password reset

#[test]
fn password_reset_sets_a_new_password_and_ends_every_session() {
    let e = env("reset");
    let id = e.sign_up("users", "r@example.com");
    let session = e.login("users", "r@example.com", PASSWORD).json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = e.post(
        "/api/collections/users/request-password-reset",
        None,
        json!({"email": "r@example.com"}),
    );
    assert_eq!(r.status, 204);
    let mail = e.sink.wait_for("r@example.com");
    let token = mail.token();
    assert!(mail
        .text
        .contains("https://app.example.test/_/#/auth/confirm-password-reset/"));
    assert_eq!(token_claims(&token)["type"], "passwordReset");

    let confirm = |password: &str, again: &str| {
        e.post(
            "/api/collections/users/confirm-password-reset",
            None,
            json!({"token": token, "password": password, "passwordConfirm": again}),
        )
    };
    let mismatch = confirm("new-pass-4567", "new-pass-4568");
    assert_eq!(
        error_code(&mismatch, "passwordConfirm"),
        "validation_values_mismatch"
    );
    let short = confirm("short", "short");
    assert_eq!(
        error_code(&short, "password"),
        "validation_length_out_of_range"
    );
    assert_eq!(confirm("new-pass-4567", "new-pass-4567").status, 204);

    assert_eq!(
        e.login("users", "r@example.com", "new-pass-4567").status,
        200
    );
    assert_eq!(e.login("users", "r@example.com", PASSWORD).status, 400);
    assert_eq!(e.refresh_status("users", &session), 401);
    assert_eq!(
        e.record("users", &id)["verified"],
        true,
        "the mail proved the address"
    );
    // the token dies with the old tokenKey
    let again = confirm("third-pass-789", "third-pass-789");
    assert_eq!(error_code(&again, "token"), "validation_invalid_token");
}

#[test]
fn a_second_reset_request_within_the_pause_sends_nothing() {
    let e = env("reset-pause");
    e.sign_up("users", "rp@example.com");
    let request = || {
        e.post(
            "/api/collections/users/request-password-reset",
            None,
            json!({"email": "rp@example.com"}),
        )
        .status
    };
    assert_eq!(request(), 204);
    e.sink.wait_for("rp@example.com");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(request(), 204);
    assert_eq!(e.sink.count_after_settling("rp@example.com"), 1);
}

#[test]
fn unknown_and_malformed_addresses() {
    let e = env("unknown");
    for path in ["request-password-reset", "request-verification"] {
        let r = e.post(
            &format!("/api/collections/users/{path}"),
            None,
            json!({"email": "ghost@example.com"}),
        );
        assert_eq!(r.status, 204, "{path}");
        let r = e.post(
            &format!("/api/collections/users/{path}"),
            None,
            json!({"email": "not-an-email"}),
        );
        assert_eq!(error_code(&r, "email"), "validation_is_email", "{path}");
        let r = e.post(&format!("/api/collections/users/{path}"), None, json!({}));
        assert_eq!(error_code(&r, "email"), "validation_required", "{path}");
    }
    assert_eq!(e.sink.count_after_settling("ghost@example.com"), 0);
}

// ---------------------------------------------------------------------------
// email change

#[test]
fn email_change_goes_to_the_new_address_and_needs_the_password() {
    let e = env("email-change");
    let id = e.sign_up("users", "old@example.com");
    e.sign_up("users", "taken@example.com");
    let token = e.login("users", "old@example.com", PASSWORD).json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let request = |auth: Option<&str>, new_email: &str| {
        e.post(
            "/api/collections/users/request-email-change",
            auth,
            json!({ "newEmail": new_email }),
        )
    };
    request(None, "new@example.com").assert_error(401);
    let codes: Vec<String> = ["taken@example.com", "old@example.com", "nope", ""]
        .iter()
        .map(|addr| error_code(&request(Some(&token), addr), "newEmail"))
        .collect();
    assert_eq!(
        codes,
        [
            "validation_invalid_new_email",
            "validation_not_in_invalid",
            "validation_is_email",
            "validation_required"
        ]
    );
    assert_eq!(request(Some(&token), "new@example.com").status, 204);
    let mail = e.sink.wait_for("new@example.com");
    let change = mail.token();
    let claims = token_claims(&change);
    assert_eq!(
        (claims["type"].as_str(), claims["newEmail"].as_str()),
        (Some("emailChange"), Some("new@example.com"))
    );
    assert_eq!(e.sink.count_after_settling("old@example.com"), 0);
    assert_eq!(e.record("users", &id)["email"], "old@example.com");

    let confirm = |password: &str| {
        e.post(
            "/api/collections/users/confirm-email-change",
            None,
            json!({"token": change, "password": password}),
        )
    };
    let wrong = confirm("not-my-password");
    assert_eq!(
        error_code(&wrong, "password"),
        "validation_invalid_password"
    );
    assert_eq!(confirm(PASSWORD).status, 204);
    let rec = e.record("users", &id);
    assert_eq!(
        (rec["email"].as_str(), rec["verified"].as_bool()),
        (Some("new@example.com"), Some(true))
    );
    assert_eq!(e.login("users", "new@example.com", PASSWORD).status, 200);
    assert_eq!(e.login("users", "old@example.com", PASSWORD).status, 400);
    assert_eq!(e.refresh_status("users", &token), 401);
    assert_eq!(
        error_code(&confirm(PASSWORD), "token"),
        "validation_invalid_token",
        "single use"
    );
}

// ---------------------------------------------------------------------------
// OTP

#[test]
fn otp_codes_sign_in_once_and_survive_a_wrong_guess() {
    let e = env("otp");
    let users_otp = e.post(
        "/api/collections/users/request-otp",
        None,
        json!({"email": "a@example.com"}),
    );
    users_otp.assert_error(403);
    let name = e.auth_collection(
        "otp_users",
        json!({"otp": {"enabled": true, "duration": 300, "length": 6}}),
    );
    let id = e.sign_up(&name, "o@example.com");
    e.server.request(
        "PATCH",
        &format!("/api/collections/{name}/records/{id}"),
        Some(&e.su),
        Some(&json!({"verified": true})),
    );
    let (otp_id, code) = e.emailed_otp(&name, "o@example.com");
    let with = |password: &str| {
        e.post(
            &format!("/api/collections/{name}/auth-with-otp"),
            None,
            json!({"otpId": otp_id, "password": password}),
        )
    };
    let wrong = if code == "000000" { "111111" } else { "000000" };
    with(wrong).assert_error(400);
    let ok = with(&code);
    assert_eq!(ok.status, 200, "{}", body_text(&ok));
    assert_eq!(ok.json()["record"]["id"], id.as_str());
    assert_eq!(ok.json()["record"]["email"], "o@example.com");
    assert_eq!(
        token_claims(ok.json()["token"].as_str().unwrap())["type"],
        "auth"
    );
    with(&code).assert_error(400);
    let left = e.server.request(
        "GET",
        &format!("/api/collections/_otps/records?filter=recordRef%3D%27{id}%27"),
        Some(&e.su),
        None,
    );
    assert_eq!(left.json()["totalItems"], 0, "a used code is deleted");
    // a verified record keeps its password
    assert_eq!(e.login(&name, "o@example.com", PASSWORD).status, 200);

    // unknown addresses get an id that leads nowhere, and no mail
    let ghost = e.post(
        &format!("/api/collections/{name}/request-otp"),
        None,
        json!({"email": "ghost@example.com"}),
    );
    assert_eq!(ghost.status, 200);
    let ghost_id = ghost.json()["otpId"].as_str().unwrap().to_string();
    assert_eq!(ghost_id.len(), 15);
    let r = e.post(
        &format!("/api/collections/{name}/auth-with-otp"),
        None,
        json!({"otpId": ghost_id, "password": "123456"}),
    );
    r.assert_error(400);
    assert_eq!(e.sink.count_after_settling("ghost@example.com"), 0);
}

#[test]
fn otp_verifies_the_address_and_without_mfa_retires_the_old_password() {
    let e = env("otp-verify");
    let name = e.auth_collection(
        "otp_fresh",
        json!({"otp": {"enabled": true, "duration": 300, "length": 6}}),
    );
    let id = e.sign_up(&name, "f@example.com");
    let before = e.login(&name, "f@example.com", PASSWORD).json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (otp_id, code) = e.emailed_otp(&name, "f@example.com");
    let ok = e.post(
        &format!("/api/collections/{name}/auth-with-otp"),
        None,
        json!({"otpId": otp_id, "password": code}),
    );
    assert_eq!(ok.status, 200, "{}", body_text(&ok));
    assert_eq!(ok.json()["record"]["verified"], true);
    assert_eq!(e.record(&name, &id)["verified"], true);
    // as the reference: a password set before the address was proven no
    // longer signs in, and older sessions end; the new one lives
    assert_eq!(e.login(&name, "f@example.com", PASSWORD).status, 400);
    assert_eq!(e.refresh_status(&name, &before), 401);
    assert_eq!(
        e.refresh_status(&name, ok.json()["token"].as_str().unwrap()),
        200
    );
}

#[test]
fn otp_guesses_are_limited_per_record() {
    let e = env("otp-guard");
    let name = e.auth_collection(
        "otp_guard",
        json!({"otp": {"enabled": true, "duration": 300, "length": 6}}),
    );
    e.sign_up(&name, "g@example.com");
    let (otp_id, code) = e.emailed_otp(&name, "g@example.com");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let statuses: Vec<u16> = (0..5)
        .map(|_| {
            e.post(
                &format!("/api/collections/{name}/auth-with-otp"),
                None,
                json!({"otpId": otp_id, "password": wrong}),
            )
            .status
        })
        .collect();
    // as the reference: five wrong guesses, then even the right code is refused
    assert_eq!(statuses, [400, 400, 400, 400, 400]);
    let locked = e.post(
        &format!("/api/collections/{name}/auth-with-otp"),
        None,
        json!({"otpId": otp_id, "password": code}),
    );
    let body = locked.assert_error(429);
    assert_eq!(
        body["message"],
        "Too many attempts, please try again later with a new OTP."
    );
    assert!(locked.header("retry-after").is_some());
    // ... and so is a new code for the same record
    let (otp_id, code) = e.emailed_otp(&name, "g@example.com");
    e.post(
        &format!("/api/collections/{name}/auth-with-otp"),
        None,
        json!({"otpId": otp_id, "password": code}),
    )
    .assert_error(429);
}

// ---------------------------------------------------------------------------
// MFA

fn mfa_env(tag: &str, rule: &str) -> (Env, String) {
    let e = env(tag);
    let name = e.auth_collection(
        "mfa_users",
        json!({"otp": {"enabled": true, "duration": 300, "length": 6},
               "mfa": {"enabled": true, "duration": 600, "rule": rule}}),
    );
    (e, name)
}

fn password_step(e: &Env, name: &str, email: &str, mfa_id: Option<&str>) -> Response {
    let mut body = json!({"identity": email, "password": PASSWORD});
    if let Some(id) = mfa_id {
        body["mfaId"] = json!(id);
    }
    e.post(
        &format!("/api/collections/{name}/auth-with-password"),
        None,
        body,
    )
}

#[test]
fn mfa_needs_two_different_factors_in_either_order() {
    let (e, name) = mfa_env("mfa", "");
    e.sign_up(&name, "m@example.com");
    let first = password_step(&e, &name, "m@example.com", None);
    assert_eq!(first.status, 401);
    let body = first.json();
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["mfaId"], "only the mfaId, not the error shape");
    let mfa_id = body["mfaId"].as_str().unwrap().to_string();

    // the same factor again does not complete it
    password_step(&e, &name, "m@example.com", Some(&mfa_id)).assert_error(400);
    // OTP with the mfaId in the query (as the SDK sends it) does
    let (otp_id, code) = e.emailed_otp(&name, "m@example.com");
    let done = e.post(
        &format!("/api/collections/{name}/auth-with-otp?mfaId={mfa_id}"),
        None,
        json!({"otpId": otp_id, "password": code}),
    );
    assert_eq!(done.status, 200, "{}", body_text(&done));
    assert!(done.json()["token"].is_string());
    // with MFA the password stays usable (it is the other factor)
    let (otp_id, code) = e.emailed_otp(&name, "m@example.com");
    let first = e.post(
        &format!("/api/collections/{name}/auth-with-otp"),
        None,
        json!({"otpId": otp_id, "password": code}),
    );
    assert_eq!(first.status, 401);
    let mfa_id = first.json()["mfaId"].as_str().unwrap().to_string();
    let done = password_step(&e, &name, "m@example.com", Some(&mfa_id));
    assert_eq!(done.status, 200, "{}", body_text(&done));
    // a spent session cannot be used again
    password_step(&e, &name, "m@example.com", Some(&mfa_id)).assert_error(400);
}

fn wrong_password_step(e: &Env, name: &str, email: &str, mfa_id: &str) -> Response {
    e.post(
        &format!("/api/collections/{name}/auth-with-password"),
        None,
        json!({"identity": email, "password": "not-the-password", "mfaId": mfa_id}),
    )
}

#[test]
fn wrong_second_factors_are_limited_per_mfa_session() {
    let (e, name) = mfa_env("mfa-guesses", "");
    e.sign_up(&name, "v@example.com");
    e.sign_up(&name, "other@example.com");
    let first_factor = |email: &str| {
        let (otp_id, code) = e.emailed_otp(&name, email);
        let r = e.post(
            &format!("/api/collections/{name}/auth-with-otp"),
            None,
            json!({"otpId": otp_id, "password": code}),
        );
        assert_eq!(r.status, 401, "{}", body_text(&r));
        r.json()["mfaId"].as_str().unwrap().to_string()
    };
    let mfa_id = first_factor("v@example.com");
    for _ in 0..4 {
        wrong_password_step(&e, &name, "v@example.com", &mfa_id).assert_error(400);
    }
    // another record's right password neither completes nor forgives the session
    let other = password_step(&e, &name, "other@example.com", Some(&mfa_id));
    assert_eq!(other.status, 400, "{}", body_text(&other));
    wrong_password_step(&e, &name, "v@example.com", &mfa_id).assert_error(400);
    // five wrong second factors: the session is done, even for the right one
    let locked = password_step(&e, &name, "v@example.com", Some(&mfa_id));
    let body = locked.assert_error(429);
    assert!(body["message"].as_str().unwrap().contains("MFA session"));
    assert!(locked.header("retry-after").is_some());
    // passing the first factor again opens a fresh session
    let mfa_id = first_factor("v@example.com");
    let done = password_step(&e, &name, "v@example.com", Some(&mfa_id));
    assert_eq!(done.status, 200, "{}", body_text(&done));
}

#[test]
fn mfa_sessions_belong_to_one_record_and_the_rule_picks_records() {
    let (e, name) = mfa_env("mfa-rule", "strict = true");
    for email in ["s@example.com", "other@example.com"] {
        let id = e.sign_up(&name, email);
        e.server.request(
            "PATCH",
            &format!("/api/collections/{name}/records/{id}"),
            Some(&e.su),
            Some(&json!({"strict": true})),
        );
    }
    e.sign_up(&name, "relaxed@example.com");
    assert_eq!(
        password_step(&e, &name, "relaxed@example.com", None).status,
        200
    );
    let gated = password_step(&e, &name, "s@example.com", None);
    assert_eq!(gated.status, 401);
    let mfa_id = gated.json()["mfaId"].as_str().unwrap().to_string();
    // wrong credentials never open a session
    let wrong = e.post(
        &format!("/api/collections/{name}/auth-with-password"),
        None,
        json!({"identity": "s@example.com", "password": "wrong-password"}),
    );
    assert_eq!(wrong.status, 400);
    assert!(wrong.json().get("mfaId").is_none());
    // another record cannot finish it, and made-up ids fail
    let (otp_id, code) = e.emailed_otp(&name, "other@example.com");
    let foreign = e.post(
        &format!("/api/collections/{name}/auth-with-otp"),
        None,
        json!({"otpId": otp_id, "password": code, "mfaId": mfa_id}),
    );
    foreign.assert_error(400);
    let (otp_id, code) = e.emailed_otp(&name, "s@example.com");
    let bogus = e.post(
        &format!("/api/collections/{name}/auth-with-otp"),
        None,
        json!({"otpId": otp_id, "password": code, "mfaId": "nosuchmfa000000"}),
    );
    bogus.assert_error(400);
    let methods = e.server.request(
        "GET",
        &format!("/api/collections/{name}/auth-methods"),
        None,
        None,
    );
    assert_eq!(
        methods.json()["mfa"],
        json!({"enabled": true, "duration": 600})
    );
}

// ---------------------------------------------------------------------------
// login alerts

fn login_as(e: &Env, collection: &str, email: &str, agent: &str) -> u16 {
    let body = json!({"identity": email, "password": PASSWORD});
    send_request_with_headers(
        e.server.port,
        "POST",
        &format!("/api/collections/{collection}/auth-with-password"),
        &[("User-Agent", agent)],
        Some(&body),
    )
    .expect("login")
    .status
}

#[test]
fn a_login_from_a_new_place_mails_an_alert_but_not_the_first_one() {
    let e = env("alerts");
    e.sign_up("users", "al@example.com");
    assert_eq!(login_as(&e, "users", "al@example.com", "agent-A"), 200);
    assert_eq!(login_as(&e, "users", "al@example.com", "agent-A"), 200);
    assert_eq!(
        e.sink.count_after_settling("al@example.com"),
        0,
        "first and known origins"
    );
    assert_eq!(
        login_as(&e, "users", "al@example.com", "agent-<b>B</b>"),
        200
    );
    let alert = e.sink.wait_for("al@example.com");
    assert!(
        alert.text.contains("127.0.0.1 agent-&lt;b&gt;B&lt;/b&gt;"),
        "{}",
        alert.text
    );
    assert_eq!(
        login_as(&e, "users", "al@example.com", "agent-<b>B</b>"),
        200
    );
    assert_eq!(e.sink.count_after_settling("al@example.com"), 1);
    let origins = e.server.request(
        "GET",
        "/api/collections/_authOrigins/records?filter=collectionRef%3D%27_pb_users_auth_%27",
        Some(&e.su),
        None,
    );
    assert_eq!(origins.json()["totalItems"], 2);

    // with alerts off nothing is mailed
    e.server.request(
        "PATCH",
        "/api/collections/users",
        Some(&e.su),
        Some(&json!({"authAlert": {"enabled": false}})),
    );
    assert_eq!(login_as(&e, "users", "al@example.com", "agent-C"), 200);
    assert_eq!(e.sink.count_after_settling("al@example.com"), 1);
}

// ---------------------------------------------------------------------------
// impersonation

#[test]
fn impersonation_gives_superusers_a_fixed_lifetime_token() {
    let e = env("impersonate");
    let id = e.sign_up("users", "i@example.com");
    let user = e.login("users", "i@example.com", PASSWORD).json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/collections/users/impersonate/{id}");
    e.post(&path, None, json!({"duration": 60}))
        .assert_error(401);
    e.post(&path, Some(&user), json!({"duration": 60}))
        .assert_error(403);
    e.post(
        "/api/collections/users/impersonate/missingid000000",
        Some(&e.su),
        json!({}),
    )
    .assert_error(404);
    let negative = e.post(&path, Some(&e.su), json!({"duration": -1}));
    assert_eq!(
        error_code(&negative, "duration"),
        "validation_min_greater_equal_than_required"
    );

    let r = e.post(&path, Some(&e.su), json!({"duration": 3600}));
    assert_eq!(r.status, 200, "{}", body_text(&r));
    let token = r.json()["token"].as_str().unwrap().to_string();
    assert_eq!(r.json()["record"]["email"], "i@example.com");
    let claims = token_claims(&token);
    assert_eq!(claims["refreshable"], false);
    assert!((claims["exp"].as_i64().unwrap() - (now_unix() + 3600)).abs() < 60);
    let refreshed = e.post(
        "/api/collections/users/auth-refresh",
        Some(&token),
        json!({}),
    );
    assert_eq!(refreshed.json()["token"], token.as_str(), "not extended");

    // the default lifetime is the collection's auth token duration
    let r = e.post(&path, Some(&e.su), json!({}));
    let exp = token_claims(r.json()["token"].as_str().unwrap())["exp"]
        .as_i64()
        .unwrap();
    assert!((exp - (now_unix() + 432_000)).abs() < 60);

    // and it ends when it expires
    let r = e.post(&path, Some(&e.su), json!({"duration": 1}));
    let short = r.json()["token"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(e.refresh_status("users", &short), 401);
}

// ---------------------------------------------------------------------------
// auth records through the records API

#[test]
fn plain_writes_cannot_verify_or_change_the_email() {
    let e = env("record-rules");
    let signup = e.post(
        "/api/collections/users/records",
        None,
        json!({"email": "self@example.com", "password": PASSWORD, "passwordConfirm": PASSWORD, "verified": true}),
    );
    assert_eq!(
        error_code(&signup, "verified"),
        "validation_values_mismatch"
    );
    let ok = e.post(
        "/api/collections/users/records",
        None,
        json!({"email": "self@example.com", "password": PASSWORD, "passwordConfirm": PASSWORD, "verified": false}),
    );
    assert_eq!(ok.status, 200, "{}", body_text(&ok));
    let id = ok.json()["id"].as_str().unwrap().to_string();
    let token = e.login("users", "self@example.com", PASSWORD).json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/collections/users/records/{id}");
    let patch = |body: Value| e.server.request("PATCH", &path, Some(&token), Some(&body));
    assert_eq!(
        error_code(&patch(json!({"verified": true})), "verified"),
        "validation_values_mismatch"
    );
    assert_eq!(
        error_code(&patch(json!({"email": "other@example.com"})), "email"),
        "validation_values_mismatch"
    );
    assert_eq!(
        patch(json!({"email": "self@example.com", "verified": false})).status,
        200
    );
    // superusers may
    let su = e.server.request(
        "PATCH",
        &path,
        Some(&e.su),
        Some(&json!({"verified": true})),
    );
    assert_eq!(su.json()["verified"], true);
}

#[test]
fn a_user_token_is_forbidden_on_admin_apis() {
    let e = env("admin-apis");
    e.sign_up("users", "u@example.com");
    let token = e.login("users", "u@example.com", PASSWORD).json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    for path in [
        "/api/collections",
        "/api/settings",
        "/api/logs",
        "/api/logs/stats",
    ] {
        let r = e.server.request("GET", path, Some(&token), None);
        assert_eq!(r.status, 403, "{path}");
        assert_eq!(
            e.server.request("GET", path, None, None).status,
            401,
            "{path}"
        );
    }
}
