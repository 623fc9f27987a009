//! OAuth2 sign-in end to end against a fake provider on 127.0.0.1: the
//! auth-methods flow data, the code exchange with PKCE and client
//! credentials, creating and linking accounts (and the reference's linking
//! CVE fixes), external auth links, the redirect endpoint and the settings
//! helpers.

mod common;

use common::{Response, Server, TempDir};
use satchel::http::request::parse_query;
use satchel::security::base64;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const REDIRECT: &str = "http://127.0.0.1:1/oauth2-callback";
const CLIENT_ID: &str = "test-client";
const CLIENT_SECRET: &str = "test-secret-0123";
const PASSWORD: &str = "oauth-pass-123";

// ---------------------------------------------------------------------------
// The fake provider

/// A code the provider handed out.
struct Grant {
    sub: String,
    redirect_uri: String,
    challenge: String,
    used: bool,
}

#[derive(Default)]
struct IdpState {
    users: HashMap<String, Value>,
    codes: HashMap<String, Grant>,
    access_tokens: HashMap<String, String>,
    /// Every token request: its form fields and whether Basic auth was used.
    token_log: Vec<(HashMap<String, String>, bool)>,
    /// Refuse client credentials in an HTTP Basic header.
    refuse_basic: bool,
    /// Answer 500 on the user-info endpoint.
    user_info_down: bool,
    seq: u64,
}

/// A tiny OAuth2 provider: `POST /token`, `GET /userinfo`. Codes are minted
/// by the test (it plays the browser) with the PKCE challenge the server
/// put into the authorization URL.
struct FakeIdp {
    url: String,
    state: Arc<Mutex<IdpState>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeIdp {
    fn start() -> FakeIdp {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let port = server.server_addr().to_ip().unwrap().port();
        let state = Arc::new(Mutex::new(IdpState::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                if let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(50)) {
                    serve(&s, request);
                }
            }
        });
        FakeIdp {
            url: format!("http://127.0.0.1:{port}"),
            state,
            stop,
            thread: Some(thread),
        }
    }

    fn provider_config(&self, name: &str) -> Value {
        json!({
            "name": name, "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET,
            "authURL": format!("{}/authorize", self.url),
            "tokenURL": format!("{}/token", self.url),
            "userInfoURL": format!("{}/userinfo", self.url),
            "displayName": "Test IdP",
        })
    }

    /// Registers a person; `email_verified` defaults to true.
    fn add_user(&self, claims: Value) -> String {
        let mut state = self.state.lock().unwrap();
        state.seq += 1;
        let mut user = json!({"sub": format!("idp-{}", state.seq), "email_verified": true});
        for (k, v) in claims.as_object().unwrap() {
            user[k] = v.clone();
        }
        let sub = user["sub"].as_str().unwrap().to_string();
        state.users.insert(sub.clone(), user);
        sub
    }

    /// Plays the user consenting: a code for `sub` bound to the challenge.
    fn grant(&self, sub: &str, redirect_uri: &str, challenge: &str) -> String {
        let mut state = self.state.lock().unwrap();
        state.seq += 1;
        let code = format!("code-{}", state.seq);
        state.codes.insert(
            code.clone(),
            Grant {
                sub: sub.into(),
                redirect_uri: redirect_uri.into(),
                challenge: challenge.into(),
                used: false,
            },
        );
        code
    }

    fn last_token_request(&self) -> (HashMap<String, String>, bool) {
        self.state
            .lock()
            .unwrap()
            .token_log
            .last()
            .cloned()
            .unwrap()
    }
}

impl Drop for FakeIdp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn respond(request: tiny_http::Request, status: u16, body: Value) {
    let header =
        tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]).unwrap();
    let _ = request.respond(
        tiny_http::Response::from_string(body.to_string())
            .with_status_code(status)
            .with_header(header),
    );
}

fn header(request: &tiny_http::Request, name: &'static str) -> String {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str().to_string())
        .unwrap_or_default()
}

fn serve(state: &Mutex<IdpState>, mut request: tiny_http::Request) {
    let path = request.url().split('?').next().unwrap_or("").to_string();
    match path.as_str() {
        "/token" => {
            let mut body = String::new();
            let _ = std::io::Read::read_to_string(request.as_reader(), &mut body);
            let authz = header(&request, "Authorization");
            let (status, answer) = token(state, &body, &authz);
            respond(request, status, answer);
        }
        "/userinfo" => {
            let authz = header(&request, "Authorization");
            let state = state.lock().unwrap();
            let user = authz
                .strip_prefix("Bearer ")
                .and_then(|t| state.access_tokens.get(t))
                .and_then(|sub| state.users.get(sub))
                .cloned();
            let down = state.user_info_down;
            drop(state);
            match user {
                _ if down => respond(request, 500, json!({"error": "down"})),
                Some(user) => respond(request, 200, user),
                None => respond(request, 401, json!({"error": "invalid_token"})),
            }
        }
        _ => respond(request, 404, json!({"error": "not_found"})),
    }
}

fn token(state: &Mutex<IdpState>, body: &str, authz: &str) -> (u16, Value) {
    let params: HashMap<String, String> = parse_query(body).into_iter().collect();
    let mut state = state.lock().unwrap();
    let basic = authz.starts_with("Basic ");
    state.token_log.push((params.clone(), basic));
    let (id, secret) = if basic {
        let decoded = base64::decode_std(&authz[6..]).unwrap_or_default();
        let text = String::from_utf8_lossy(&decoded).to_string();
        let (id, secret) = text.split_once(':').unwrap_or(("", ""));
        (id.to_string(), secret.to_string())
    } else {
        (
            params.get("client_id").cloned().unwrap_or_default(),
            params.get("client_secret").cloned().unwrap_or_default(),
        )
    };
    if (basic && state.refuse_basic) || id != CLIENT_ID || secret != CLIENT_SECRET {
        return (401, json!({"error": "invalid_client"}));
    }
    let code = params.get("code").cloned().unwrap_or_default();
    let verifier = params.get("code_verifier").cloned().unwrap_or_default();
    let redirect = params.get("redirect_uri").cloned().unwrap_or_default();
    let Some(grant) = state.codes.get_mut(&code) else {
        return (400, json!({"error": "invalid_grant"}));
    };
    let challenge = base64::encode_url(&Sha256::digest(verifier.as_bytes()));
    if grant.used || grant.redirect_uri != redirect || grant.challenge != challenge {
        return (400, json!({"error": "invalid_grant"}));
    }
    grant.used = true;
    let sub = grant.sub.clone();
    let access = format!("at-{}", state.seq + 1000);
    state.seq += 1;
    state.access_tokens.insert(access.clone(), sub.clone());
    let claims = state.users.get(&sub).cloned().unwrap_or(json!({}));
    let mut id_claims = claims.clone();
    id_claims["aud"] = json!(CLIENT_ID);
    let id_token = format!(
        "{}.{}.",
        base64::encode_url(br#"{"alg":"none"}"#),
        base64::encode_url(id_claims.to_string().as_bytes())
    );
    (
        200,
        json!({"access_token": access, "token_type": "Bearer", "expires_in": 3600,
               "refresh_token": "rt-1", "id_token": id_token}),
    )
}

// ---------------------------------------------------------------------------
// Helpers: the app's side of the flow

struct Env {
    _tmp: TempDir,
    server: Server,
    su: String,
    idp: FakeIdp,
}

fn env(tag: &str) -> Env {
    let tmp = TempDir::new(tag);
    let server = Server::start(&tmp);
    let su = server.superuser_token();
    Env {
        _tmp: tmp,
        server,
        su,
        idp: FakeIdp::start(),
    }
}

impl Env {
    /// An auth collection `name` with the fake provider as `oidc` (and
    /// `oidc2`), `name` mapped; `extra` is merged into the body.
    fn collection(&self, name: &str, extra: Value) -> String {
        let mut body = json!({
            "name": name, "type": "auth", "createRule": "",
            "listRule": "id = @request.auth.id", "viewRule": "id = @request.auth.id",
            "fields": [{"name": "name", "type": "text"}, {"name": "avatar", "type": "url"},
                       {"name": "handle", "type": "text", "max": 20}],
            "oauth2": {"enabled": true,
                       "providers": [self.idp.provider_config("oidc"), self.idp.provider_config("oidc2")],
                       "mappedFields": {"name": "name", "avatarURL": "avatar", "username": "handle"}},
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = self
            .server
            .request("POST", "/api/collections", Some(&self.su), Some(&body));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        name.to_string()
    }

    /// The provider entry of auth-methods.
    fn flow(&self, collection: &str, provider: &str) -> Value {
        let r = self.server.request(
            "GET",
            &format!("/api/collections/{collection}/auth-methods"),
            None,
            None,
        );
        assert_eq!(r.status, 200);
        r.json()["oauth2"]["providers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == provider)
            .cloned()
            .unwrap()
    }

    /// Runs the browser part: returns (code, verifier).
    fn authorize(&self, collection: &str, provider: &str, sub: &str) -> (String, String) {
        let flow = self.flow(collection, provider);
        let url = flow["authURL"].as_str().unwrap();
        let query: HashMap<String, String> = parse_query(url.split_once('?').unwrap().1)
            .into_iter()
            .collect();
        let code = self.idp.grant(sub, REDIRECT, &query["code_challenge"]);
        (code, flow["codeVerifier"].as_str().unwrap().to_string())
    }

    fn login_as(
        &self,
        collection: &str,
        provider: &str,
        sub: &str,
        token: Option<&str>,
        extra: Value,
    ) -> Response {
        let (code, verifier) = self.authorize(collection, provider, sub);
        let mut body = json!({"provider": provider, "code": code, "codeVerifier": verifier,
                              "redirectURL": REDIRECT});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.server.request(
            "POST",
            &format!("/api/collections/{collection}/auth-with-oauth2"),
            token,
            Some(&body),
        )
    }

    fn login(&self, collection: &str, sub: &str) -> Value {
        let r = self.login_as(collection, "oidc", sub, None, json!({}));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()
    }

    fn sign_up(&self, collection: &str, email: &str, verified: bool) -> Value {
        let r = self.server.request(
            "POST",
            &format!("/api/collections/{collection}/records"),
            Some(&self.su),
            Some(
                &json!({"email": email, "password": PASSWORD, "passwordConfirm": PASSWORD,
                         "verified": verified}),
            ),
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()
    }

    fn password_login(&self, collection: &str, email: &str) -> Response {
        self.server.request(
            "POST",
            &format!("/api/collections/{collection}/auth-with-password"),
            None,
            Some(&json!({"identity": email, "password": PASSWORD})),
        )
    }

    /// `(recordRef, provider, providerId)` of every link.
    fn links(&self) -> Vec<(String, String, String)> {
        let r = self.server.request(
            "GET",
            "/api/collections/_externalAuths/records?perPage=500",
            Some(&self.su),
            None,
        );
        r.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let s = |k: &str| l[k].as_str().unwrap().to_string();
                (s("recordRef"), s("provider"), s("providerId"))
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn auth_methods_start_a_pkce_flow_and_hide_the_secret() {
    let e = env("oa-methods");
    let c = e.collection("people", json!({}));
    let flow = e.flow(&c, "oidc");
    assert_eq!(flow["displayName"], "Test IdP");
    assert_eq!(flow["state"].as_str().unwrap().len(), 30);
    let verifier = flow["codeVerifier"].as_str().unwrap();
    assert_eq!(
        flow["codeChallenge"],
        base64::encode_url(&Sha256::digest(verifier.as_bytes()))
    );
    assert_eq!(flow["codeChallengeMethod"], "S256");
    let url = flow["authURL"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/authorize?", e.idp.url)));
    assert!(url.ends_with("&redirect_uri="));
    assert!(url.contains("client_id=test-client&"));
    assert!(url.contains("scope=openid+email+profile"));
    assert_eq!(flow["authUrl"], flow["authURL"]);

    let r = e.server.request(
        "GET",
        &format!("/api/collections/{c}/auth-methods"),
        None,
        None,
    );
    assert!(!String::from_utf8_lossy(&r.body).contains(CLIENT_SECRET));
    assert_eq!(r.json()["authProviders"].as_array().unwrap().len(), 2);

    let off = e.collection("plain", json!({"oauth2": {"enabled": false}}));
    let r = e.server.request(
        "GET",
        &format!("/api/collections/{off}/auth-methods"),
        None,
        None,
    );
    assert_eq!(
        r.json()["oauth2"],
        json!({"enabled": false, "providers": []})
    );
    assert_eq!(r.json()["authProviders"], json!([]));
}

#[test]
fn first_sign_in_creates_a_verified_user_and_the_second_reuses_it() {
    let e = env("oa-create");
    let c = e.collection("people", json!({}));
    let sub = e
        .idp
        .add_user(json!({"email": "ada@example.com", "name": "Ada",
        "preferred_username": "ada_l", "picture": "https://img.example/ada.png"}));
    let first = e.login(&c, &sub);
    assert_eq!(first["meta"]["isNew"], true);
    assert_eq!(first["meta"]["id"], sub.as_str());
    assert_eq!(first["meta"]["email"], "ada@example.com");
    assert_eq!(first["meta"]["rawUser"]["preferred_username"], "ada_l");
    assert!(first["meta"]["accessToken"]
        .as_str()
        .unwrap()
        .starts_with("at-"));
    assert_eq!(first["meta"]["refreshToken"], "rt-1");
    assert!(first["meta"]["expiry"].as_str().unwrap().ends_with('Z'));
    let record = &first["record"];
    assert_eq!(record["email"], "ada@example.com");
    assert_eq!(record["verified"], true);
    assert_eq!(record["name"], "Ada");
    assert_eq!(record["handle"], "ada_l");
    assert_eq!(record["avatar"], "https://img.example/ada.png");

    // the exchange carried the PKCE verifier, redirect URL and credentials
    let (params, basic) = e.idp.last_token_request();
    assert!(basic);
    assert_eq!(params["grant_type"], "authorization_code");
    assert_eq!(params["redirect_uri"], REDIRECT);
    assert_eq!(params["code_verifier"].len(), 43);

    // the token works
    let token = first["token"].as_str().unwrap();
    let r = e.server.request(
        "POST",
        &format!("/api/collections/{c}/auth-refresh"),
        Some(token),
        None,
    );
    assert_eq!(r.status, 200);

    let second = e.login(&c, &sub);
    assert_eq!(second["meta"]["isNew"], false);
    assert_eq!(second["record"]["id"], record["id"]);
    assert_eq!(e.links().len(), 1);
}

#[test]
fn create_data_wins_over_the_profile_and_a_taken_username_is_skipped() {
    let e = env("oa-createdata");
    let c = e.collection("people", json!({}));
    let first = e
        .idp
        .add_user(json!({"email": "a1@example.com", "preferred_username": "dup"}));
    assert_eq!(e.login(&c, &first)["record"]["handle"], "dup");
    let second = e
        .idp
        .add_user(json!({"email": "a2@example.com", "name": "From IdP",
                                       "preferred_username": "dup"}));
    let r = e.login_as(
        &c,
        "oidc",
        &second,
        None,
        json!({"createData": {"name": "Chosen", "emailVisibility": true}}),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let record = &r.json()["record"];
    assert_eq!(record["name"], "Chosen");
    assert_eq!(record["emailVisibility"], true);
    assert_eq!(record["handle"], "", "a taken username is not copied");
}

#[test]
fn a_verified_account_with_the_vouched_address_is_linked_and_keeps_its_password() {
    let e = env("oa-link-verified");
    let c = e.collection("people", json!({}));
    let existing = e.sign_up(&c, "kept@example.com", true);
    let sub = e.idp.add_user(json!({"email": "kept@example.com"}));
    let auth = e.login(&c, &sub);
    assert_eq!(auth["record"]["id"], existing["id"]);
    assert_eq!(auth["meta"]["isNew"], false);
    assert_eq!(e.password_login(&c, "kept@example.com").status, 200);
}

#[test]
fn taking_over_an_unverified_account_resets_its_password_and_sessions() {
    // CVE-2024-38351: someone pre-registered the victim's address.
    let e = env("oa-prereg");
    let c = e.collection("people", json!({}));
    let squatter = e.sign_up(&c, "victim@example.com", false);
    let r = e.password_login(&c, "victim@example.com");
    assert_eq!(r.status, 200);
    let squatter_token = r.json()["token"].as_str().unwrap().to_string();

    let sub = e.idp.add_user(json!({"email": "victim@example.com"}));
    let auth = e.login(&c, &sub);
    assert_eq!(auth["record"]["id"], squatter["id"]);
    assert_eq!(auth["record"]["verified"], true);
    e.password_login(&c, "victim@example.com").assert_error(400);
    let r = e.server.request(
        "POST",
        &format!("/api/collections/{c}/auth-refresh"),
        Some(&squatter_token),
        None,
    );
    assert_eq!(r.status, 401, "the squatter's session is gone");
}

#[test]
fn an_address_the_provider_did_not_verify_never_links() {
    let e = env("oa-unverified");
    let c = e.collection("people", json!({}));
    let victim = e.sign_up(&c, "target@example.com", true);
    let attacker = e
        .idp
        .add_user(json!({"email": "target@example.com", "email_verified": false}));
    let r = e.login_as(&c, "oidc", &attacker, None, json!({}));
    let body = r.assert_error(400);
    assert!(body.get("token").is_none());
    assert!(e
        .links()
        .iter()
        .all(|(rec, _, _)| rec != victim["id"].as_str().unwrap()));
}

#[test]
fn links_made_while_unverified_are_dropped_when_the_owner_verifies() {
    // CVE-2026-44166: an attacker creates an unverified account with the
    // victim's address through provider A; the victim later signs in with B.
    let e = env("oa-prehijack");
    let c = e.collection("people", json!({}));
    let attacker = e.idp.add_user(json!({"email": "attacker@example.com"}));
    let r = e.login_as(
        &c,
        "oidc",
        &attacker,
        None,
        json!({"createData": {"email": "victim2@example.com"}}),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let planted = r.json()["record"].clone();
    assert_eq!(planted["verified"], false);

    let victim = e.idp.add_user(json!({"email": "victim2@example.com"}));
    let r = e.login_as(&c, "oidc2", &victim, None, json!({}));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["record"]["id"], planted["id"]);
    assert_eq!(r.json()["record"]["verified"], true);
    let links: Vec<_> = e
        .links()
        .into_iter()
        .filter(|(rec, _, _)| rec == planted["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        links,
        [(
            planted["id"].as_str().unwrap().to_string(),
            "oidc2".to_string(),
            victim
        )]
    );

    // the attacker's provider account now leads elsewhere
    let again = e.login(&c, &attacker);
    assert_ne!(again["record"]["id"], planted["id"]);
    assert_eq!(again["meta"]["isNew"], true);
}

#[test]
fn a_signed_in_user_links_the_provider_to_their_own_account() {
    let e = env("oa-requester");
    let c = e.collection("people", json!({}));
    let own = e.sign_up(&c, "me@example.com", false);
    let token = e.password_login(&c, "me@example.com").json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let sub = e.idp.add_user(json!({"email": "elsewhere@example.com"}));
    let r = e.login_as(&c, "oidc", &sub, Some(&token), json!({}));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["record"]["id"], own["id"]);
    assert_eq!(r.json()["record"]["verified"], false, "different address");
    // the owner signed in themselves: the password stays
    assert_eq!(e.password_login(&c, "me@example.com").status, 200);
    assert_eq!(e.login(&c, &sub)["record"]["id"], own["id"]);
}

#[test]
fn provider_failures_answer_400_and_never_a_token() {
    let e = env("oa-failures");
    let c = e.collection("people", json!({}));
    let sub = e.idp.add_user(json!({"email": "f@example.com"}));
    let (code, verifier) = e.authorize(&c, "oidc", &sub);
    let post = |body: Value| {
        e.server.request(
            "POST",
            &format!("/api/collections/{c}/auth-with-oauth2"),
            None,
            Some(&body),
        )
    };
    let base = |code: &str, verifier: &str| json!({"provider": "oidc", "code": code, "codeVerifier": verifier, "redirectURL": REDIRECT});
    let bogus = post(base("nope", &verifier)).assert_error(400);
    assert_eq!(bogus["message"], "Failed to fetch OAuth2 token.");
    post(base(&code, "wrong-verifier-wrong-verifier-wrong-verifier")).assert_error(400);
    assert_eq!(post(base(&code, &verifier)).status, 200);
    post(base(&code, &verifier)).assert_error(400);

    let missing = post(json!({})).assert_error(400);
    assert_eq!(missing["data"]["provider"]["code"], "validation_required");
    assert_eq!(missing["data"]["code"]["code"], "validation_required");
    let unknown =
        post(json!({"provider": "github", "code": "x", "redirectURL": REDIRECT})).assert_error(400);
    assert_eq!(
        unknown["data"]["provider"]["code"],
        "validation_invalid_provider"
    );

    e.idp.state.lock().unwrap().user_info_down = true;
    let (code, verifier) = e.authorize(&c, "oidc", &sub);
    let down = post(base(&code, &verifier)).assert_error(400);
    assert_eq!(down["message"], "Failed to fetch OAuth2 user.");
}

#[test]
fn oauth2_off_answers_403_and_superusers_cannot_sign_up() {
    let e = env("oa-forbidden");
    let c = e.collection("people", json!({"oauth2": {"enabled": false}}));
    let r = e.server.request(
        "POST",
        &format!("/api/collections/{c}/auth-with-oauth2"),
        None,
        Some(&json!({"provider": "oidc", "code": "x", "redirectURL": REDIRECT})),
    );
    r.assert_error(403);

    let r = e.server.request(
        "PATCH",
        "/api/collections/_superusers",
        Some(&e.su),
        Some(&json!({"oauth2": {"enabled": true, "providers": [e.idp.provider_config("oidc")]}})),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let sub = e.idp.add_user(json!({"email": "newsu@example.com"}));
    let r = e.login_as("_superusers", "oidc", &sub, None, json!({}));
    r.assert_error(400);
}

#[test]
fn a_null_create_rule_refuses_sign_up_and_the_auth_rule_still_applies() {
    let e = env("oa-rules");
    let locked = e.collection("locked", json!({"createRule": null}));
    let sub = e.idp.add_user(json!({"email": "l@example.com"}));
    e.login_as(&locked, "oidc", &sub, None, json!({}))
        .assert_error(403);

    let gated = e.collection("gated", json!({"authRule": "verified = false"}));
    let sub = e.idp.add_user(json!({"email": "g@example.com"}));
    let r = e.login_as(&gated, "oidc", &sub, None, json!({}));
    r.assert_error(403);
    // like the reference, the account and its link exist anyway
    assert_eq!(e.links().len(), 1);
}

#[test]
fn a_provider_that_refuses_basic_auth_gets_the_credentials_in_the_body() {
    let e = env("oa-body-auth");
    let c = e.collection("people", json!({}));
    e.idp.state.lock().unwrap().refuse_basic = true;
    let sub = e.idp.add_user(json!({"email": "body@example.com"}));
    e.login(&c, &sub);
    let (params, basic) = e.idp.last_token_request();
    assert!(!basic);
    assert_eq!(params["client_id"], CLIENT_ID);
    assert_eq!(params["client_secret"], CLIENT_SECRET);
}

#[test]
fn oidc_without_a_user_info_url_reads_the_id_token() {
    let e = env("oa-idtoken");
    let mut provider = e.idp.provider_config("oidc");
    provider["userInfoURL"] = json!("");
    let c = e.collection(
        "people",
        json!({"oauth2": {"enabled": true, "providers": [provider]}}),
    );
    let sub = e
        .idp
        .add_user(json!({"email": "idt@example.com", "name": "Id Token"}));
    let auth = e.login(&c, &sub);
    assert_eq!(auth["meta"]["id"], sub.as_str());
    assert_eq!(auth["record"]["email"], "idt@example.com");
}

#[test]
fn plain_http_providers_outside_loopback_are_never_called() {
    let e = env("oa-ssrf");
    let mut provider = e.idp.provider_config("oidc");
    provider["tokenURL"] = json!("http://169.254.169.254/latest/token");
    let c = e.collection(
        "people",
        json!({"oauth2": {"enabled": true, "providers": [provider]}}),
    );
    let sub = e.idp.add_user(json!({"email": "s@example.com"}));
    let r = e.login_as(&c, "oidc", &sub, None, json!({}));
    assert_eq!(
        r.assert_error(400)["message"],
        "Failed to fetch OAuth2 token."
    );
}

#[test]
fn external_auths_are_listed_to_their_owner_and_can_be_unlinked() {
    let e = env("oa-links");
    let c = e.collection("people", json!({}));
    let sub = e.idp.add_user(json!({"email": "own@example.com"}));
    let auth = e.login(&c, &sub);
    let token = auth["token"].as_str().unwrap();
    let mine = e.server.request(
        "GET",
        "/api/collections/_externalAuths/records",
        Some(token),
        None,
    );
    let items = mine.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["providerId"], sub.as_str());
    let anon = e
        .server
        .request("GET", "/api/collections/_externalAuths/records", None, None);
    assert_eq!(anon.json()["items"], json!([]));
    let id = items[0]["id"].as_str().unwrap();
    let r = e.server.request(
        "DELETE",
        &format!("/api/collections/_externalAuths/records/{id}"),
        Some(token),
        None,
    );
    assert_eq!(r.status, 204);
    assert!(e.links().is_empty());
}

#[test]
fn the_redirect_endpoint_sends_the_browser_on() {
    let e = env("oa-redirect");
    // No realtime client is waiting (none can be, yet): failure page.
    let r = e
        .server
        .request("GET", "/api/oauth2-redirect?state=abc&code=def", None, None);
    assert_eq!(r.status, 307);
    assert_eq!(
        r.header("location"),
        Some("../_/#/auth/oauth2-redirect-failure")
    );
    let r = e.server.raw(
        "POST",
        "/api/oauth2-redirect",
        None,
        b"state=abc&code=def",
        "application/x-www-form-urlencoded",
    );
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location"),
        Some("../_/#/auth/oauth2-redirect-failure")
    );
}

#[test]
fn settings_helpers_are_for_superusers() {
    let e = env("oa-settings");
    let r = e
        .server
        .request("GET", "/api/collections/meta/oauth2-providers", None, None);
    r.assert_error(401);
    let r = e.server.request(
        "GET",
        "/api/collections/meta/oauth2-providers",
        Some(&e.su),
        None,
    );
    assert_eq!(r.json().as_array().unwrap().len(), 32);

    let path = "/api/settings/apple/generate-client-secret";
    e.server
        .request("POST", path, None, Some(&json!({})))
        .assert_error(401);
    let bad = e
        .server
        .request("POST", path, Some(&e.su), Some(&json!({"teamId": "short"})))
        .assert_error(400);
    assert_eq!(bad["data"]["teamId"]["code"], "validation_length_invalid");
    assert_eq!(bad["data"]["privateKey"]["code"], "validation_required");
}
