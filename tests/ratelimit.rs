//! Rate limits, brute-force protection, trusted proxy client IPs and the
//! superuser IP allow-list, end to end against the real binary.

mod common;

use common::{Response, Server, TempDir, SU_EMAIL, SU_PASSWORD};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const SIGN_IN: &str = "/api/collections/users/auth-with-password";

/// One request with extra headers (the harness sends none).
fn send(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Response {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    head.push_str(&body);
    stream.write_all(head.as_bytes()).expect("write");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: raw.get(split + 4..).unwrap_or_default().to_vec(),
    }
}

fn sign_in(server: &Server, identity: &str, password: &str, headers: &[(&str, &str)]) -> Response {
    let body = json!({"identity": identity, "password": password});
    send(server, "POST", SIGN_IN, headers, Some(&body))
}

fn sign_up(server: &Server, email: &str, password: &str) {
    let body = json!({"email": email, "password": password, "passwordConfirm": password});
    let r = server.request("POST", "/api/collections/users/records", None, Some(&body));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

fn patch_settings(server: &Server, su: &str, patch: Value) -> Value {
    let r = server.request("PATCH", "/api/settings", Some(su), Some(&patch));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn assert_throttled(r: &Response) -> u64 {
    let body = r.assert_error(429);
    assert_eq!(body["message"], "Too Many Requests.");
    let retry: u64 = r
        .header("Retry-After")
        .and_then(|v| v.parse().ok())
        .expect("a numeric Retry-After");
    assert!(retry >= 1, "Retry-After {retry}");
    retry
}

#[test]
fn a_brute_force_run_on_one_identity_is_stopped_while_others_are_served() {
    let tmp = TempDir::new("rl-brute");
    let server = Server::start(&tmp);
    sign_up(&server, "alice@example.com", "alice-pass-123");
    sign_up(&server, "bob@example.com", "bob-pass-1234");

    // Eight clients guess alice's password at once, 64 guesses in all.
    let outcomes: Vec<u16> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|n| {
                let server = &server;
                scope.spawn(move || {
                    (0..8)
                        .map(|i| {
                            sign_in(server, "alice@example.com", &format!("guess-{n}-{i}"), &[])
                                .status
                        })
                        .collect::<Vec<u16>>()
                })
            })
            .collect();
        // Meanwhile another user signs in and the API answers.
        assert_eq!(
            sign_in(&server, "bob@example.com", "bob-pass-1234", &[]).status,
            200
        );
        assert_eq!(server.request("GET", "/api/health", None, None).status, 200);
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let wrong = outcomes.iter().filter(|s| **s == 400).count();
    let refused = outcomes.iter().filter(|s| **s == 429).count();
    assert_eq!(wrong + refused, 64, "{outcomes:?}");
    assert!(wrong <= 10, "{wrong} guesses were checked: {outcomes:?}");
    assert!(refused >= 54);

    // Even the right password waits now, from any address...
    let retry = assert_throttled(&sign_in(
        &server,
        "alice@example.com",
        "alice-pass-123",
        &[],
    ));
    assert!(retry <= 300, "Retry-After {retry}");
    let su = server.superuser_token();
    patch_settings(
        &server,
        &su,
        json!({"trustedProxy": {"headers": ["X-Forwarded-For"]}}),
    );
    let elsewhere = [("X-Forwarded-For", "203.0.113.9")];
    assert_throttled(&sign_in(
        &server,
        "alice@example.com",
        "alice-pass-123",
        &elsewhere,
    ));
    // ...while bob, and bob's own mistakes, are unaffected.
    sign_in(&server, "bob@example.com", "nope", &[]).assert_error(400);
    assert_eq!(
        sign_in(&server, "bob@example.com", "bob-pass-1234", &[]).status,
        200
    );
}

#[test]
fn unknown_identities_are_throttled_too_and_a_success_resets_the_count() {
    let tmp = TempDir::new("rl-reset");
    let server = Server::start(&tmp);
    sign_up(&server, "carol@example.com", "carol-pass-123");
    for _ in 0..9 {
        sign_in(&server, "carol@example.com", "wrong", &[]).assert_error(400);
    }
    assert_eq!(
        sign_in(&server, "carol@example.com", "carol-pass-123", &[]).status,
        200
    );
    for _ in 0..9 {
        sign_in(&server, "carol@example.com", "wrong", &[]).assert_error(400);
    }
    assert_eq!(
        sign_in(&server, "carol@example.com", "carol-pass-123", &[]).status,
        200
    );

    // An identity nobody has is counted alike (in any letter case).
    for n in 0..10 {
        let identity = if n % 2 == 0 {
            "ghost@example.com"
        } else {
            "GHOST@example.com"
        };
        sign_in(&server, identity, "wrong", &[]).assert_error(400);
    }
    assert_throttled(&sign_in(&server, "ghost@example.com", "wrong", &[]));
}

#[test]
fn brute_force_settings_tune_the_guard_and_round_trip() {
    let tmp = TempDir::new("rl-tune");
    let server = Server::start(&tmp);
    let su = server.superuser_token();
    // Left at its defaults, the section is not served (the reference's shape).
    let r = server.request("GET", "/api/settings", Some(&su), None);
    assert!(r.json().get("bruteForce").is_none());

    let saved = patch_settings(&server, &su, json!({"bruteForce": {"maxFailures": 2}}));
    let tuned = json!({"enabled": true, "maxFailures": 2, "duration": 300});
    assert_eq!(saved["bruteForce"], tuned);
    let r = server.request("GET", "/api/settings", Some(&su), None);
    assert_eq!(r.json()["bruteForce"], tuned);
    // A GET patched back keeps it.
    let again = patch_settings(&server, &su, r.json());
    assert_eq!(again["bruteForce"], tuned);

    sign_up(&server, "dave@example.com", "dave-pass-123");
    for _ in 0..2 {
        sign_in(&server, "dave@example.com", "wrong", &[]).assert_error(400);
    }
    assert_throttled(&sign_in(&server, "dave@example.com", "dave-pass-123", &[]));

    let bad = json!({"bruteForce": {"maxFailures": -1}});
    let r = server.request("PATCH", "/api/settings", Some(&su), Some(&bad));
    let body = r.assert_error(400);
    assert!(
        body["data"]["bruteForce"]["maxFailures"].is_object(),
        "{body}"
    );

    patch_settings(&server, &su, json!({"bruteForce": {"enabled": false}}));
    assert_eq!(
        sign_in(&server, "dave@example.com", "dave-pass-123", &[]).status,
        200
    );
}

#[test]
fn enabled_rate_limits_answer_429_like_the_reference() {
    let tmp = TempDir::new("rl-limits");
    let server = Server::start(&tmp);
    let su = server.superuser_token();
    // Off by default.
    for _ in 0..4 {
        sign_in(&server, "x@example.com", "wrong", &[]).assert_error(400);
    }
    patch_settings(&server, &su, json!({"rateLimits": {"enabled": true}}));
    // With the default rules the third sign-in within 3 s is refused.
    sign_in(&server, "y@example.com", "wrong", &[]).assert_error(400);
    sign_in(&server, "y@example.com", "wrong", &[]).assert_error(400);
    assert_throttled(&sign_in(&server, "y@example.com", "wrong", &[]));
    // Another collection's sign-in route has windows of its own.
    let su_sign_in = json!({"identity": "nobody@example.com", "password": "x"});
    let r = server.request(
        "POST",
        "/api/collections/_superusers/auth-with-password",
        None,
        Some(&su_sign_in),
    );
    r.assert_error(400);

    // A tight catch-all rule: guests are limited, superusers never.
    let rules = json!([{"label": "/api/", "audience": "", "duration": 60, "maxRequests": 2}]);
    patch_settings(&server, &su, json!({"rateLimits": {"rules": rules}}));
    assert_eq!(server.request("GET", "/api/health", None, None).status, 200);
    assert_eq!(
        server.request("GET", "/api/nothing", None, None).status,
        404
    );
    assert_throttled(&server.request("GET", "/api/health", None, None));
    for _ in 0..5 {
        let r = server.request("GET", "/api/settings", Some(&su), None);
        assert_eq!(r.status, 200);
    }
    // Records routes count per collection and action.
    assert_eq!(
        server
            .request("GET", "/api/collections/users/records", None, None)
            .status,
        200
    );
    assert_eq!(
        server
            .request("GET", "/api/collections/users/records", None, None)
            .status,
        200
    );
    assert_throttled(&server.request("GET", "/api/collections/users/records", None, None));

    // Excluded IPs are never limited.
    patch_settings(
        &server,
        &su,
        json!({"rateLimits": {"excludedIPs": ["127.0.0.0/8"]}}),
    );
    for _ in 0..5 {
        assert_eq!(server.request("GET", "/api/health", None, None).status, 200);
    }
}

#[test]
fn a_trusted_proxy_header_decides_the_counted_ip() {
    let tmp = TempDir::new("rl-proxy");
    let server = Server::start(&tmp);
    let su = server.superuser_token();
    let rules = json!([{"label": "/api/health", "audience": "", "duration": 60, "maxRequests": 1}]);
    patch_settings(
        &server,
        &su,
        json!({"rateLimits": {"enabled": true, "rules": rules}}),
    );
    let from = |ip: &str| {
        send(
            &server,
            "GET",
            "/api/health",
            &[("X-Forwarded-For", ip)],
            None,
        )
    };

    // Not trusted yet: every "client" is the peer 127.0.0.1.
    assert_eq!(from("198.51.100.1").status, 200);
    assert_throttled(&from("198.51.100.2"));

    patch_settings(
        &server,
        &su,
        json!({"trustedProxy": {"headers": ["X-Forwarded-For"]}}),
    );
    assert_eq!(from("198.51.100.1").status, 200);
    assert_eq!(from("198.51.100.2").status, 200);
    assert_eq!(from("spoofed, 198.51.100.3").status, 200);
    assert_throttled(&from("198.51.100.1"));
    // The rightmost address is the one the proxy appended.
    assert_throttled(&from("198.51.100.9, 198.51.100.1"));

    let health = |headers: &[(&str, &str)]| {
        let mut all = vec![("Authorization", su.as_str())];
        all.extend_from_slice(headers);
        send(&server, "GET", "/api/health", &all, None).json()["data"].clone()
    };
    let data = health(&[("X-Forwarded-For", "192.0.2.1, 2001:db8::1")]);
    assert_eq!(data["realIP"], "2001:0db8:0000:0000:0000:0000:0000:0001");
    assert_eq!(data["possibleProxyHeader"], "X-Forwarded-For");
    patch_settings(
        &server,
        &su,
        json!({"trustedProxy": {"useLeftmostIP": true}}),
    );
    let data = health(&[("X-Forwarded-For", "192.0.2.1, 2001:db8::1")]);
    assert_eq!(data["realIP"], "192.0.2.1");
    let data = health(&[]);
    assert_eq!(
        (
            data["realIP"].as_str(),
            data["possibleProxyHeader"].as_str()
        ),
        (Some("127.0.0.1"), Some(""))
    );

    // Request logs keep both: the peer (remoteIP) and the client (userIP).
    let logged = wait_for_log(&server, "192.0.2.1");
    assert_eq!(logged["remoteIP"], "127.0.0.1");
}

/// The `data` of the first request log naming `user_ip`.
fn wait_for_log(server: &Server, user_ip: &str) -> Value {
    let path = server.dir.join("auxiliary.db");
    for _ in 0..100 {
        if let Ok(conn) = rusqlite::Connection::open(&path) {
            let found: Option<String> = conn
                .query_row(
                    "SELECT data FROM _logs WHERE json_extract(data, '$.userIP') = ?1 LIMIT 1",
                    [user_ip],
                    |row| row.get(0),
                )
                .ok();
            if let Some(text) = found {
                return serde_json::from_str(&text).unwrap_or(Value::Null);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no request log with userIP {user_ip}");
}

#[test]
fn superuser_ips_forbid_superusers_from_elsewhere() {
    let tmp = TempDir::new("rl-suips");
    let server = Server::start(&tmp);
    let su = server.superuser_token();
    patch_settings(
        &server,
        &su,
        json!({"superuserIPs": ["10.0.0.0/24"], "trustedProxy": {"headers": ["X-Real-IP"]}}),
    );
    let forbidden = |r: Response| {
        let body = r.assert_error(403);
        assert_eq!(
            body["message"],
            "You are not allowed to perform this request."
        );
    };
    forbidden(server.request("GET", "/api/settings", Some(&su), None));
    // Public endpoints too, with a superuser token.
    forbidden(server.request("GET", "/api/health", Some(&su), None));
    forbidden(server.request(
        "GET",
        "/api/collections/users/auth-methods",
        Some(&su),
        None,
    ));
    // Guests are not concerned.
    assert_eq!(server.request("GET", "/api/health", None, None).status, 200);
    // A correct superuser sign-in from elsewhere is refused; a wrong one is just wrong.
    let su_sign_in = "/api/collections/_superusers/auth-with-password";
    let good = json!({"identity": SU_EMAIL, "password": SU_PASSWORD});
    let bad = json!({"identity": SU_EMAIL, "password": "not-it"});
    forbidden(send(&server, "POST", su_sign_in, &[], Some(&good)));
    send(&server, "POST", su_sign_in, &[], Some(&bad)).assert_error(400);

    // From inside the subnet (as the trusted proxy says) all is well.
    let inside = [("X-Real-IP", "10.0.0.7")];
    assert_eq!(
        send(&server, "POST", su_sign_in, &inside, Some(&good)).status,
        200
    );
    let auth = [("Authorization", su.as_str()), ("X-Real-IP", "10.0.0.7")];
    let r = send(&server, "GET", "/api/settings", &auth, None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["superuserIPs"], json!(["10.0.0.0/24"]));
}
