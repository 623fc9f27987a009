//! The server as a user meets it: health, headers, CORS, errors, limits,
//! the compose contract (env superuser, graceful SIGTERM) and concurrency.

mod common;

use common::{run_cli, Server, TempDir, ENCRYPTION_KEY};
use serde_json::json;

#[test]
fn health_answers_get_and_head_with_security_headers() {
    let tmp = TempDir::new("health");
    let server = Server::start(&tmp);
    let r = server.request("GET", "/api/health", None, None);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"message": "API is healthy.", "code": 200, "data": {}})
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("x-frame-options"), Some("SAMEORIGIN"));
    let head = server.request("HEAD", "/api/health", None, None);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    let su = server.superuser_token();
    let r = server.request("GET", "/api/health", Some(&su), None);
    assert_eq!(r.json()["data"]["canBackup"], true);
}

#[test]
fn cors_preflight_and_origin_headers() {
    let tmp = TempDir::new("cors");
    let server = Server::start(&tmp);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    use std::io::{Read, Write};
    stream
        .write_all(b"OPTIONS /api/collections/users/records HTTP/1.1\r\nHost: x\r\nOrigin: http://app.example\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type,authorization\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 204"), "{text}");
    let lower = text.to_ascii_lowercase();
    assert!(lower.contains("access-control-allow-origin: *"));
    assert!(lower.contains("access-control-allow-methods: get,head,put,patch,post,delete"));
    assert!(lower.contains("access-control-allow-headers: content-type,authorization"));
}

#[test]
fn unknown_routes_and_wrong_methods_are_json_404s() {
    let tmp = TempDir::new("routes");
    let server = Server::start(&tmp);
    for (method, path) in [
        ("GET", "/api/nope"),
        ("POST", "/api/health"),
        ("PUT", "/api/health"),
        ("DELETE", "/api/collections/users/records"),
    ] {
        server
            .request(method, path, None, Some(&json!({})))
            .assert_error(404);
    }
}

#[test]
fn bad_bodies_are_4xx_and_write_nothing() {
    let tmp = TempDir::new("bodies");
    let server = Server::start(&tmp);
    let su = server.superuser_token();
    let coll = json!({"name": "things", "type": "base", "createRule": "", "listRule": "", "fields": [{"name": "t", "type": "text"}, {"name": "n", "type": "number"}]});
    assert_eq!(
        server
            .request("POST", "/api/collections", Some(&su), Some(&coll))
            .status,
        200
    );
    let path = "/api/collections/things/records";
    for bad in [&b"{\"t\": "[..], b"[1,2]", b"nope", b"\"str\""] {
        server
            .raw("POST", path, None, bad, "application/json")
            .assert_error(400);
    }
    server
        .raw("POST", path, None, b"t=x", "text/csv")
        .assert_error(400);
    let huge = vec![b'x'; 33 << 20];
    let r = server.raw("POST", path, None, &huge, "application/json");
    assert_eq!(r.status, 413);
    let deep = format!("{{\"t\": {}1{}}}", "[".repeat(5000), "]".repeat(5000));
    server
        .raw("POST", path, None, deep.as_bytes(), "application/json")
        .assert_error(400);
    let list = server.request("GET", path, None, None).json();
    assert_eq!(list["totalItems"], 0);
    // wrong types are coerced like the reference, not rejected
    let ok = server.request("POST", path, None, Some(&json!({"t": 12, "n": "7"})));
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["n"], 7);
    server
        .request("GET", &format!("{path}?page=abc"), None, None)
        .assert_error(400);
    server
        .request("GET", &format!("{path}?filter=%28%28%28"), None, None)
        .assert_error(400);
    server
        .request("GET", &format!("{path}?filter=nope%3D1"), None, None)
        .assert_error(400);
    server
        .request("GET", &format!("{path}?sort=nope"), None, None)
        .assert_error(400);
}

#[test]
fn concurrent_writes_all_commit_and_each_is_answered() {
    let tmp = TempDir::new("concurrent");
    let server = Server::start(&tmp);
    let su = server.superuser_token();
    let coll = json!({"name": "hits", "type": "base", "createRule": "", "listRule": "", "fields": [{"name": "k", "type": "text"}],
                      "indexes": ["CREATE UNIQUE INDEX idx_hits_k ON hits (k)"]});
    assert_eq!(
        server
            .request("POST", "/api/collections", Some(&su), Some(&coll))
            .status,
        200
    );
    let port = server.port;
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                let mut statuses = Vec::new();
                for i in 0..25 {
                    // every fifth key is shared by all threads: exactly one wins
                    let k = if i % 5 == 0 {
                        format!("shared-{i}")
                    } else {
                        format!("{t}-{i}")
                    };
                    let body = json!({"k": k}).to_string();
                    let r = common::send_request(
                        port,
                        "POST",
                        "/api/collections/hits/records",
                        None,
                        Some((body.as_bytes(), "application/json")),
                    )
                    .unwrap();
                    statuses.push(r.status);
                }
                statuses
            })
        })
        .collect();
    let statuses: Vec<u16> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 400),
        "{statuses:?}"
    );
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(ok, 8 * 20 + 5);
    let list = server
        .request("GET", "/api/collections/hits/records?perPage=1", None, None)
        .json();
    assert_eq!(list["totalItems"], ok);
}

#[test]
fn sigterm_stops_the_server_cleanly_and_data_survives() {
    let tmp = TempDir::new("sigterm");
    let server = Server::start(&tmp);
    let su = server.superuser_token();
    let coll = json!({"name": "keep", "type": "base", "listRule": "", "fields": [{"name": "v", "type": "text"}]});
    assert_eq!(
        server
            .request("POST", "/api/collections", Some(&su), Some(&coll))
            .status,
        200
    );
    assert_eq!(
        server
            .request(
                "POST",
                "/api/collections/keep/records",
                Some(&su),
                Some(&json!({"v": "x"}))
            )
            .status,
        200
    );
    let dir = server.dir.clone();
    assert_eq!(server.stop(), Some(0));
    assert_no_wal_left(&dir);
    // Several stops in a row, each right after a write: whichever
    // connection closes last, the WAL is folded back every time.
    for round in 0..3 {
        let again = Server::serve(
            &dir,
            &[("PB_ENCRYPTION_KEY", ENCRYPTION_KEY)],
            &["--encryptionEnv", "PB_ENCRYPTION_KEY"],
        );
        assert_eq!(
            again
                .request("GET", "/api/collections/keep/records", None, None)
                .json()["totalItems"],
            round + 1
        );
        let su = again.superuser_token();
        let created = again.request(
            "POST",
            "/api/collections/keep/records",
            Some(&su),
            Some(&json!({"v": "y"})),
        );
        assert_eq!(created.status, 200);
        assert_eq!(again.stop(), Some(0));
        assert_no_wal_left(&dir);
    }
}

/// A clean stop leaves the databases whole, without WAL or shared-memory
/// files, as the reference does.
fn assert_no_wal_left(dir: &std::path::Path) {
    for leftover in [
        "data.db-wal",
        "data.db-shm",
        "auxiliary.db-wal",
        "auxiliary.db-shm",
    ] {
        assert!(
            !dir.join(leftover).exists(),
            "{leftover} is left in the data dir after a clean stop"
        );
    }
}

#[test]
fn env_admin_is_created_at_start_and_can_log_in() {
    let tmp = TempDir::new("envadmin");
    let dir = tmp.path().join("pb_data");
    let envs = [
        ("POCKETBASE_ADMIN_EMAIL", "env@example.com"),
        ("POCKETBASE_ADMIN_PASSWORD", "env-pass-1234"),
        ("PB_ENCRYPTION_KEY", ENCRYPTION_KEY),
    ];
    let server = Server::serve(&dir, &envs, &["--encryptionEnv", "PB_ENCRYPTION_KEY"]);
    server.login("_superusers", "env@example.com", "env-pass-1234");
    // The seed's compose healthcheck, word for word, when wget is installed.
    if std::process::Command::new("wget")
        .arg("--version")
        .output()
        .is_ok()
    {
        let url = format!("http://localhost:{}/api/health", server.port);
        let status = std::process::Command::new("wget")
            .args(["--no-verbose", "--tries=1", "--spider", &url])
            .output()
            .expect("run wget");
        assert!(
            status.status.success(),
            "wget --spider failed: {}",
            String::from_utf8_lossy(&status.stderr)
        );
    }
    for sub in ["data.db", "storage", "logs"] {
        assert!(dir.join(sub).exists(), "{sub} is created at start");
    }
}

#[test]
fn cli_commands_and_their_exit_codes() {
    let tmp = TempDir::new("cli");
    let d = tmp.path().join("pb_data");
    let d = d.to_str().unwrap();
    assert_eq!(run_cli(&["--version"], &[]).0, 0);
    assert!(run_cli(&["--help"], &[]).1.contains("serve"));
    assert_eq!(run_cli(&["serve", "--bogus"], &[]).0, 1);
    assert_eq!(run_cli(&["frobnicate"], &[]).0, 1);
    assert_eq!(
        run_cli(
            &["superuser", "create", "a@example.com", "short", "--dir", d],
            &[]
        )
        .0,
        1
    );
    assert_eq!(
        run_cli(
            &[
                "superuser",
                "create",
                "a@example.com",
                "long-enough-1",
                "--dir",
                d
            ],
            &[]
        )
        .0,
        0
    );
    assert_eq!(
        run_cli(
            &[
                "superuser",
                "create",
                "a@example.com",
                "long-enough-1",
                "--dir",
                d
            ],
            &[]
        )
        .0,
        1,
        "exists"
    );
    assert_eq!(
        run_cli(
            &[
                "superuser",
                "update",
                "a@example.com",
                "changed-pass-2",
                "--dir",
                d
            ],
            &[]
        )
        .0,
        0
    );
    assert_eq!(
        run_cli(
            &[
                "superuser",
                "upsert",
                "b@example.com",
                "another-pass-3",
                "--dir",
                d
            ],
            &[]
        )
        .0,
        0
    );
    assert_eq!(
        run_cli(&["superuser", "delete", "a@example.com", "--dir", d], &[]).0,
        0
    );
    assert_eq!(
        run_cli(
            &["superuser", "delete", "missing@example.com", "--dir", d],
            &[]
        )
        .0,
        0
    );
    assert_eq!(
        run_cli(&["superuser", "delete", "b@example.com", "--dir", d], &[]).0,
        1,
        "the last superuser stays"
    );
}

/// Browsers open several connections at once. Each must be served while the
/// others stay open (keep-alive): none may wait for another to close.
#[test]
fn connections_opened_together_are_all_served() {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    let tmp = TempDir::new("together");
    let server = Server::start(&tmp);
    // Each burst is larger than the last, so it meets both idle threads
    // (left by the previous burst) and the need for new ones.
    for burst in 1..=8 {
        // Opened back to back, before any of them says anything.
        let streams: Vec<TcpStream> = (0..8 * burst)
            .map(|_| TcpStream::connect(("127.0.0.1", server.port)).unwrap())
            .collect();
        for (n, mut stream) in streams.iter().enumerate() {
            // Generous: only a connection nobody serves ever reaches it.
            stream
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            stream
                .write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let mut status = String::new();
            BufReader::new(stream)
                .read_line(&mut status)
                .unwrap_or_else(|e| panic!("burst {burst}, connection {n}: no answer ({e})"));
            assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        }
    }
}

#[test]
fn pipelined_requests_and_split_heads_are_each_answered_in_order() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    let tmp = TempDir::new("pipelined");
    let server = Server::start(&tmp);
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // Three requests in one write (the head reader must stop at each
    // blank line, leaving the next request in the buffer), then one whose
    // head arrives in pieces that split its lines and its CRLFs.
    stream
        .write_all(
            b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n\
              HEAD /api/health HTTP/1.1\r\nHost: x\r\n\r\n\
              GET /api/nothing-here HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .unwrap();
    for piece in [
        &b"GET /api/hea"[..],
        b"lth HTTP/1.1\r",
        b"\nHost: x\r\nConnection: close\r",
        b"\n\r\n",
    ] {
        stream.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut answers = String::new();
    stream.read_to_string(&mut answers).unwrap();
    // A body has no line end of its own, so a status line may follow it
    // on the same text line.
    let statuses: Vec<&str> = answers
        .match_indices("HTTP/1.1 ")
        .map(|(at, prefix)| &answers[at + prefix.len()..at + prefix.len() + 3])
        .collect();
    assert_eq!(statuses, ["200", "200", "404", "200"], "{answers}");
    assert!(!answers.contains("tiny-http"), "{answers}");
}
