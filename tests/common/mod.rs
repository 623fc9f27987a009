//! Test harness: starts the real `satchel` binary on a free port with a
//! temporary data dir and talks plain HTTP/1.1 to it, as a user would.
#![allow(dead_code)]

pub mod auth_env;
pub mod session;
pub mod smtp_sink;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SU_EMAIL: &str = "root@example.com";
pub const SU_PASSWORD: &str = "root-pass-123";
pub const ENCRYPTION_KEY: &str = "test-key-0123456789abcdef-012345";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_satchel")
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p =
            std::env::temp_dir().join(format!("satchel-it-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs a CLI command against a data dir and returns (exit code, stdout+stderr).
pub fn run_cli(args: &[&str], envs: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(bin())
        .args(args)
        .envs(envs.iter().cloned())
        .output()
        .expect("run satchel");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// A running server; killed on drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl Server {
    /// A fresh data dir with the test superuser, served with an encryption key.
    pub fn start(tmp: &TempDir) -> Server {
        Server::start_with(tmp, &[])
    }

    /// As [`Server::start`], with extra `serve` flags.
    pub fn start_with(tmp: &TempDir, flags: &[&str]) -> Server {
        let dir = tmp.path().join("pb_data");
        let (code, out) = run_cli(
            &[
                "superuser",
                "upsert",
                SU_EMAIL,
                SU_PASSWORD,
                "--dir",
                dir.to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(code, 0, "superuser upsert failed: {out}");
        let mut extra = vec!["--encryptionEnv", "PB_ENCRYPTION_KEY"];
        extra.extend_from_slice(flags);
        Server::serve(&dir, &[("PB_ENCRYPTION_KEY", ENCRYPTION_KEY)], &extra)
    }

    /// Serves an existing data dir with extra env vars and flags.
    pub fn serve(dir: &Path, envs: &[(&str, &str)], extra: &[&str]) -> Server {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(bin())
            .args(["serve", "--dir", dir.to_str().unwrap(), "--http", &addr])
            .args(extra)
            .envs(envs.iter().cloned())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start satchel");
        let mut server = Server {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("server exited early: {status}");
            }
            if server
                .try_request("GET", "/api/health", None, None)
                .map(|r| r.status == 200)
                .unwrap_or(false)
            {
                return server;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not become healthy");
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        json: Option<&Value>,
    ) -> Response {
        let body = json.map(|v| v.to_string().into_bytes());
        self.try_request(
            method,
            path,
            token,
            body.as_deref().map(|b| (b, "application/json")),
        )
        .expect("request")
    }

    pub fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &[u8],
        content_type: &str,
    ) -> Response {
        self.try_request(method, path, token, Some((body, content_type)))
            .expect("request")
    }

    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&[u8], &str)>,
    ) -> std::io::Result<Response> {
        send_request(self.port, method, path, token, body)
    }

    /// Logs in the test superuser and returns the token.
    pub fn superuser_token(&self) -> String {
        self.login("_superusers", SU_EMAIL, SU_PASSWORD)
    }

    pub fn login(&self, collection: &str, identity: &str, password: &str) -> String {
        let r = self.request(
            "POST",
            &format!("/api/collections/{collection}/auth-with-password"),
            None,
            Some(&serde_json::json!({"identity": identity, "password": password})),
        );
        assert_eq!(r.status, 200, "login failed: {:?}", r.body);
        r.json()["token"].as_str().unwrap().to_string()
    }

    /// Sends SIGTERM and waits for the exit code.
    pub fn stop(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request on a new connection to 127.0.0.1:`port`.
pub fn send_request(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&[u8], &str)>,
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if let Some(t) = token {
        head.push_str(&format!("Authorization: {t}\r\n"));
    }
    if let Some((b, ct)) = body {
        head.push_str(&format!(
            "Content-Type: {ct}\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if let Some((b, _)) = body {
        // The server may answer (413) before reading everything.
        let _ = stream.write_all(b);
    }
    read_response(stream)
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// Asserts the reference's error shape and status.
    pub fn assert_error(&self, status: u16) -> Value {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        let body = self.json();
        assert_eq!(body["status"], status);
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(body["data"].is_object());
        body
    }
}

fn read_response(stream: TcpStream) -> std::io::Result<Response> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
            if size == 0 {
                break;
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        let _ = reader.read_to_end(&mut body);
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// One HTTP/1.1 request with extra headers (e.g. `User-Agent`,
/// `Authorization`) on a new connection to 127.0.0.1:`port`.
pub fn send_request_with_headers(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    json: Option<&Value>,
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = json.map(|v| v.to_string()).unwrap_or_default();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if json.is_some() {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    read_response(stream)
}
