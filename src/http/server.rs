//! The HTTP server: one tiny_http acceptor, a fixed pool of named worker
//! threads pulling requests, each with its own read-only SQLite connection.
//!
//! A panic while handling a request answers 500 for that request only; the
//! worker keeps its connection and goes on. Work a handler defers (password
//! hashing) is answered from the hashing pool so the worker is free at once;
//! a stream (realtime) gets the raw connection and the worker moves on.
//! Every response gets the reference's security headers and CORS headers here,
//! in one place.

use super::request::{Method, Req};
use super::response::{Outcome, Reply, TakeOver};
use super::router;
use crate::app::App;
use crate::error::ApiError;
use crate::realtime::Hub;
use crate::realtime_api::ClientAuth;
use crate::security::password::PoolBusy;
use crate::store::{Access, Reader};
use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running server; `shutdown` stops it gracefully.
pub struct RunningServer {
    http: Arc<tiny_http::Server>,
    stopping: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    /// Open event streams live outside the workers; shutdown ends them.
    realtime: Hub<ClientAuth>,
    pub local_addr: String,
}

/// How long shutdown waits for event streams to be ended and let go.
const STREAMS_GRACE: Duration = Duration::from_secs(2);

impl RunningServer {
    /// Binds `addr` and starts `workers` worker threads.
    pub fn start(app: Arc<App>, addr: &str, workers: usize) -> Result<RunningServer, String> {
        let listener = listen(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let http = tiny_http::Server::from_listener(listener, None)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let local_addr = http
            .server_addr()
            .to_ip()
            .map(|a| a.to_string())
            .unwrap_or_else(|| addr.to_string());
        let http = Arc::new(http);
        let stopping = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::with_capacity(workers);
        for n in 0..workers.max(1) {
            // Opened here so that a data dir that cannot be read fails the
            // start, not the first request.
            let mut reader = Reader::open(
                app.db_path(),
                app.writer.commit_count(),
                app.config.query_timeout,
            )
            .map_err(|e| format!("cannot open a read connection: {e}"))?;
            let (app, http, stopping) = (app.clone(), http.clone(), stopping.clone());
            let handle = std::thread::Builder::new()
                .name(format!("satchel-worker-{n}"))
                .spawn(move || worker_loop(&app, &http, &mut reader, &stopping))
                .map_err(|e| format!("cannot start a worker thread: {e}"))?;
            handles.push(handle);
        }
        Ok(RunningServer {
            http,
            stopping,
            workers: handles,
            realtime: app.realtime.hub.clone(),
            local_addr,
        })
    }

    /// Ends the event streams (clients get the end of the stream and
    /// reconnect elsewhere), stops taking requests, lets in-flight ones
    /// finish, joins the workers.
    pub fn shutdown(self) {
        let held = self.realtime.shutdown(STREAMS_GRACE);
        if held > 0 {
            log::warn!("{held} realtime stream(s) still held by peers that stopped reading");
        }
        self.stopping.store(true, Ordering::SeqCst);
        for _ in &self.workers {
            self.http.unblock();
        }
        for worker in self.workers {
            // `unblock` wakes one waiting worker; keep waking until all are out.
            while !worker.is_finished() {
                self.http.unblock();
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let _ = worker.join();
        }
    }
}

/// Pending connections the kernel queues before the acceptor takes them.
const LISTEN_BACKLOG: i32 = 1024;

/// Binds `addr` (the first of its addresses that binds) with TCP_NODELAY,
/// which Linux passes on to every accepted connection. A response is written
/// in more than one piece (head, then body); with Nagle's algorithm on, the
/// last piece waits for the client to acknowledge the first, and clients
/// delay that by up to 40 ms.
fn listen(addr: &str) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    use std::net::ToSocketAddrs;
    let mut last_error = None;
    for candidate in addr.to_socket_addrs()? {
        let socket = Socket::new(
            Domain::for_address(candidate),
            Type::STREAM,
            Some(Protocol::TCP),
        )?;
        // As std's TcpListener::bind does: a restart can rebind at once.
        socket.set_reuse_address(true)?;
        socket.set_tcp_nodelay(true)?;
        match socket
            .bind(&candidate.into())
            .and_then(|_| socket.listen(LISTEN_BACKLOG))
        {
            Ok(()) => return Ok(socket.into()),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to listen on")
    }))
}

fn worker_loop(
    app: &Arc<App>,
    http: &tiny_http::Server,
    reader: &mut Reader,
    stopping: &AtomicBool,
) {
    loop {
        match http.recv_timeout(reader.patience()) {
            Ok(Some(request)) => handle(app, reader, request),
            Ok(None) => {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                reader.idle();
            }
            Err(e) => {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                log::debug!("accept error: {e}");
            }
        }
    }
}

/// Handles one request: route it inside `catch_unwind`, then answer.
fn handle(app: &Arc<App>, reader: &mut Reader, mut request: tiny_http::Request) {
    let started = Instant::now();
    let (outcome, info) = {
        let mut req = Req::from_tiny(&mut request);
        // From here on `remote_ip` is the client's IP; the peer is logged too.
        let peer = req.remote_ip;
        let settings = app.settings();
        req.remote_ip = super::client_ip::resolve(peer, req.headers(), &settings.trusted_proxy);
        let info = RequestInfo::of(&req, peer);
        let dispatch = || {
            let access = match req.method {
                Method::Get | Method::Head => Access::ReadOnly,
                _ => Access::MayWrite,
            };
            let db = reader
                .for_request(access, started)
                .map_err(|e| ApiError::internal(format!("cannot open a read connection: {e}")))?;
            router::dispatch(app, db, &mut req)
        };
        let outcome = match catch_unwind(AssertUnwindSafe(dispatch)) {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(err)) => Outcome::Now(error_reply(&err, &info)),
            Err(_) => {
                log::error!("handler panicked: {} {}", info.method_name(), info.path);
                Outcome::Now(error_reply(&ApiError::internal("handler panicked"), &info))
            }
        };
        (outcome, info)
    };
    match outcome {
        Outcome::Now(reply) => send(request, reply, info, app, started),
        Outcome::Stream(take_over) => hand_over(request, take_over, info, app, started),
        Outcome::Later(work) => {
            let app2 = app.clone();
            let pending = (request, work, info);
            let queued = app
                .hash_pool
                .spawn_with(pending, move |(request, work, info)| {
                    let reply = match catch_unwind(AssertUnwindSafe(work)) {
                        Ok(Ok(reply)) => reply,
                        Ok(Err(err)) => error_reply(&err, &info),
                        Err(_) => {
                            error_reply(&ApiError::internal("deferred handler panicked"), &info)
                        }
                    };
                    send(request, reply, info, &app2, started);
                });
            // A full hashing queue means a login storm: shed load rather
            // than let it take the workers too.
            if let Err(PoolBusy((request, _, info))) = queued {
                let busy = ApiError::Unavailable {
                    message: "Too many concurrent sign-ins, try again shortly.".into(),
                    retry_after_secs: 1,
                };
                send(request, Reply::error(&busy), info, app, started);
            }
        }
    }
}

fn error_reply(err: &ApiError, info: &RequestInfo) -> Reply {
    if let ApiError::Internal(context) = err {
        log::error!("{} {}: {context}", info.method_name(), info.path);
    }
    Reply::error(err)
}

/// What the response stage needs to know about the request after the
/// handler has consumed it.
pub struct RequestInfo {
    method: Method,
    path: String,
    url: String,
    origin: Option<String>,
    preflight_headers: Option<String>,
    /// The TCP peer.
    remote_ip: String,
    /// The client behind trusted proxies (the peer without them).
    user_ip: String,
    user_agent: String,
    referer: String,
}

impl RequestInfo {
    fn of(req: &Req<'_>, peer: Option<std::net::IpAddr>) -> RequestInfo {
        let ip_text =
            |ip: Option<std::net::IpAddr>| ip.map(super::client_ip::display).unwrap_or_default();
        let remote_ip = ip_text(peer);
        // Without trusted proxies (the usual case) both IPs are the peer's.
        let user_ip = if req.remote_ip == peer {
            remote_ip.clone()
        } else {
            ip_text(req.remote_ip)
        };
        let path = req.path();
        let mut url = path.clone();
        for (n, (key, value)) in req.query.iter().enumerate() {
            url.push(if n == 0 { '?' } else { '&' });
            url.push_str(key);
            url.push('=');
            url.push_str(value);
        }
        RequestInfo {
            method: req.method,
            url,
            path,
            origin: req.header("origin").map(str::to_string),
            preflight_headers: req
                .header("access-control-request-headers")
                .map(str::to_string),
            remote_ip,
            user_ip,
            user_agent: req.header("user-agent").unwrap_or_default().to_string(),
            referer: req.header("referer").unwrap_or_default().to_string(),
        }
    }

    fn method_name(&self) -> &'static str {
        self.method.name()
    }
}

/// Headers the reference puts on every response.
const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "SAMEORIGIN"),
    ("X-Xss-Protection", "1; mode=block"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Vary", "Origin"),
];

fn send(
    request: tiny_http::Request,
    reply: Reply,
    info: RequestInfo,
    app: &App,
    started: std::time::Instant,
) {
    let status = reply.status;
    let mut response = tiny_http::Response::from_data(reply.body).with_status_code(status);
    let keeps_frame_header = !reply
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("X-Frame-Options"));
    response.add_header_lines(security_lines(keeps_frame_header));
    // A refused header (a line break in a value) is left out.
    let mut add = |name: &str, value: &str| {
        response.add_header_line(name, value);
    };
    let allowed = allowed_origin(&info, app);
    if let Some(origin) = &allowed {
        add("Access-Control-Allow-Origin", origin);
    }
    for (name, value) in &reply.headers {
        // An empty X-Frame-Options is a handler's way of dropping it (file downloads).
        if !value.is_empty() {
            add(name, value);
        }
    }
    if info.method == Method::Options {
        add("Vary", "Access-Control-Request-Method");
        add("Vary", "Access-Control-Request-Headers");
        if allowed.is_some() {
            add(
                "Access-Control-Allow-Methods",
                "GET,HEAD,PUT,PATCH,POST,DELETE",
            );
            if let Some(h) = &info.preflight_headers {
                add("Access-Control-Allow-Headers", h);
            }
        }
    }
    if let Err(e) = request.respond(response) {
        log::debug!("could not send the response: {e}");
    }
    log_request(app, info, status, started);
}

/// `SECURITY_HEADERS` with or without `X-Frame-Options`, keeping it or
/// not, checked and formatted once for all responses.
fn security_lines(keep_frame_header: bool) -> &'static tiny_http::HeaderLines {
    static WITH_FRAME: OnceLock<tiny_http::HeaderLines> = OnceLock::new();
    static WITHOUT_FRAME: OnceLock<tiny_http::HeaderLines> = OnceLock::new();
    let lines = if keep_frame_header {
        &WITH_FRAME
    } else {
        &WITHOUT_FRAME
    };
    lines.get_or_init(|| {
        let pairs: Vec<(&str, &str)> = security_headers(keep_frame_header).collect();
        // The pairs are constants, checked by a unit test.
        tiny_http::HeaderLines::new(&pairs).unwrap_or_default()
    })
}

fn security_headers(keep_frame_header: bool) -> impl Iterator<Item = (&'static str, &'static str)> {
    SECURITY_HEADERS
        .iter()
        .filter(move |(name, _)| *name != "X-Frame-Options" || keep_frame_header)
        .copied()
}

/// The CORS header's value for an allowed origin.
fn allowed_origin(info: &RequestInfo, app: &App) -> Option<String> {
    info.origin.as_deref().and_then(|o| app.allowed_origin(o))
}

/// The security headers of every response and, for an allowed origin, the
/// CORS header, for streams, which write their own head.
fn common_headers(
    info: &RequestInfo,
    app: &App,
    keep_frame_header: bool,
) -> Vec<(&'static str, Cow<'static, str>)> {
    let mut headers: Vec<(&'static str, Cow<'static, str>)> = security_headers(keep_frame_header)
        .map(|(name, value)| (name, Cow::Borrowed(value)))
        .collect();
    if let Some(allowed) = allowed_origin(info, app) {
        headers.push(("Access-Control-Allow-Origin", Cow::Owned(allowed)));
    }
    headers
}

/// Gives the connection to a streaming handler (realtime): it writes the
/// response itself, and this worker goes straight back to the pool.
fn hand_over(
    request: tiny_http::Request,
    take_over: TakeOver,
    info: RequestInfo,
    app: &App,
    started: std::time::Instant,
) {
    let headers = common_headers(&info, app, true);
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(name, value)| (*name, value.as_ref()))
        .collect();
    let stream = request.into_writer();
    if catch_unwind(AssertUnwindSafe(|| take_over(stream, &headers))).is_err() {
        log::error!(
            "taking over the connection panicked: {} {}",
            info.method_name(),
            info.path
        );
    }
    log_request(app, info, 200, started);
}

/// Queues the request's log entry; the entry takes over the request's
/// strings rather than copying them.
fn log_request(app: &App, info: RequestInfo, status: u16, started: std::time::Instant) {
    app.log_request(crate::request_log::Entry {
        method: info.method_name(),
        url: info.url,
        status,
        exec_time_ms: started.elapsed().as_secs_f64() * 1000.0,
        remote_ip: info.remote_ip,
        user_ip: info.user_ip,
        user_agent: info.user_agent,
        referer: info.referer,
        auth: String::new(),
        finished_millis: crate::datetime::now_millis(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lines_reach_the_head_and_line_breaks_never_do() {
        let mut response = tiny_http::Response::from_data(b"{}".to_vec());
        assert!(response.add_header_line("X-Frame-Options", "SAMEORIGIN"));
        assert!(!response.add_header_line("X-Evil", "a\r\nSet-Cookie: x=1"));
        assert!(!response.add_header_line("Bad Name", "v"));
        assert!(!response.add_header_line("", "v"));
        assert!(!response.add_header_line("X-Utf8", "caf\u{e9}"));
        let mut head = Vec::new();
        response
            .raw_print(&mut head, tiny_http::HTTPVersion(1, 1), &[], false, None)
            .expect("written to memory");
        let text = String::from_utf8(head).expect("ASCII");
        assert!(text.starts_with("HTTP/1.1 200 OK\r\nDate: "), "{text}");
        assert!(
            text.contains("\r\nX-Frame-Options: SAMEORIGIN\r\n"),
            "{text}"
        );
        assert!(text.ends_with("\r\nContent-Length: 2\r\n\r\n{}"), "{text}");
        assert!(!text.contains("Evil") && !text.contains("Cookie") && !text.contains("Utf8"));
    }

    #[test]
    fn the_security_lines_hold_every_security_header() {
        for keep in [true, false] {
            let mut response = tiny_http::Response::from_data(Vec::new());
            response.add_header_lines(security_lines(keep));
            let mut head = Vec::new();
            response
                .raw_print(&mut head, tiny_http::HTTPVersion(1, 1), &[], false, None)
                .expect("written to memory");
            let text = String::from_utf8(head).expect("ASCII");
            for (name, value) in SECURITY_HEADERS {
                let line = format!("\r\n{name}: {value}\r\n");
                let framing = *name == "X-Frame-Options";
                assert_eq!(text.contains(&line), keep || !framing, "{line:?} in {text}");
            }
        }
    }

    #[test]
    fn headers_tiny_http_reads_back_keep_their_meaning_in_any_case() {
        let mut response = tiny_http::Response::from_data(b"{}".to_vec());
        assert!(response.add_header_line("Content-Type", "text/plain"));
        assert!(response.add_header_line("content-type", "application/json"));
        assert!(response.add_header_line("date", "Thu, 01 Jan 1970 00:00:00 GMT"));
        assert!(response.add_header_line("Vary", "Origin"));
        let mut head = Vec::new();
        response
            .raw_print(&mut head, tiny_http::HTTPVersion(1, 1), &[], false, None)
            .expect("written to memory");
        let text = String::from_utf8(head).expect("ASCII").to_ascii_lowercase();
        // one type, the last one set; the given date instead of the server's
        assert_eq!(text.matches("content-type:").count(), 1, "{text}");
        assert!(
            text.contains("content-type: application/json\r\n"),
            "{text}"
        );
        assert_eq!(text.matches("date:").count(), 1, "{text}");
        assert!(text.contains("date: thu, 01 jan 1970"), "{text}");
        assert!(text.contains("\r\nvary: origin\r\n"), "{text}");
        assert!(tiny_http::HeaderLines::new(&[("Content-Length", "5")]).is_none());
        assert!(tiny_http::HeaderLines::new(&[("Vary", "Origin")]).is_some());
    }
}
