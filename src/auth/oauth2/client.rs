//! The outgoing HTTP client that talks to identity providers: a form POST
//! (token exchange) and a GET (user info, key sets), each with a deadline
//! and a size cap, over ureq with rustls (ring provider, Mozilla roots, the
//! same trust as `mail::tls`).
//!
//! It only ever fetches URLs a superuser configured (or the provider table's
//! defaults), never one taken from a profile; `https` everywhere, plain
//! `http` only to loopback (local test providers), never a redirect. At most
//! [`max_concurrent`] calls run at once, so a slow provider cannot take
//! every request worker.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ureq::tls::{RootCerts, TlsConfig};
use ureq::Agent;

/// The budget of one call: connect, send, and read the whole answer.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Token, profile and key-set answers are a few KiB.
pub const MAX_ANSWER_BYTES: u64 = 1 << 20;

/// A provider's answer, whatever its status.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// The media type, lower-cased, without parameters.
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why a call was not made or did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// Not `https`, nor `http` to a loopback host.
    RefusedUrl(String),
    /// Every call slot is taken; try again shortly.
    Busy,
    /// DNS, connect, TLS, timeout, malformed or oversized answer.
    Transport(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::RefusedUrl(url) => write!(f, "refused URL {url:?}"),
            CallError::Busy => f.write_str("too many OAuth2 provider calls in flight"),
            CallError::Transport(e) => write!(f, "provider call failed: {e}"),
        }
    }
}

/// POSTs `fields` form-encoded, with HTTP Basic client credentials if given.
pub fn post_form(
    url: &str,
    fields: &[(&str, &str)],
    basic: Option<&str>,
) -> Result<Answer, CallError> {
    let agent = agent_for(url)?;
    let _slot = Slot::take()?;
    let mut request = agent.post(url).header("Accept", "application/json");
    if let Some(credentials) = basic {
        request = request.header("Authorization", &format!("Basic {credentials}"));
    }
    let response = request
        .send_form(fields.iter().copied())
        .map_err(transport)?;
    read_answer(response)
}

/// GETs `url`, with `Authorization: Bearer <token>` if given.
pub fn get(url: &str, bearer: Option<&str>) -> Result<Answer, CallError> {
    let agent = agent_for(url)?;
    let _slot = Slot::take()?;
    let mut request = agent.get(url).header("Accept", "application/json");
    if let Some(token) = bearer {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    read_answer(request.call().map_err(transport)?)
}

fn transport(e: ureq::Error) -> CallError {
    CallError::Transport(e.to_string())
}

fn read_answer(mut response: ureq::http::Response<ureq::Body>) -> Result<Answer, CallError> {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_vec()
        .map_err(transport)?;
    Ok(Answer {
        status,
        content_type,
        body,
    })
}

// ---------------------------------------------------------------------------
// URL policy

/// Whether `url` may be fetched: `https://`, or `http://` to a loopback
/// host. URLs with credentials in them (`user@host`) are refused: they
/// serve no provider and hide the real host from a reader.
pub fn check_url(url: &str) -> Result<Scheme, CallError> {
    let refused = || CallError::RefusedUrl(url.to_string());
    let (scheme, rest) = url.split_once("://").ok_or_else(refused)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return Err(refused());
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Ok(Scheme::Https),
        "http" if is_loopback_host(host_of(authority)) => Ok(Scheme::LoopbackHttp),
        _ => Err(refused()),
    }
}

/// What [`check_url`] allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Https,
    LoopbackHttp,
}

/// The host of `host[:port]` or `[v6]:port`.
fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    authority.split(':').next().unwrap_or("")
}

fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

// ---------------------------------------------------------------------------
// Agents

/// The agent for a checked URL. Loopback calls never go through a proxy;
/// others honour the usual `HTTPS_PROXY`/`NO_PROXY` variables, as the
/// reference's Go client does.
fn agent_for(url: &str) -> Result<&'static Agent, CallError> {
    static REMOTE: OnceLock<Agent> = OnceLock::new();
    static LOOPBACK: OnceLock<Agent> = OnceLock::new();
    Ok(match check_url(url)? {
        Scheme::Https => REMOTE.get_or_init(|| build_agent(ureq::Proxy::try_from_env())),
        Scheme::LoopbackHttp => LOOPBACK.get_or_init(|| build_agent(None)),
    })
}

fn build_agent(proxy: Option<ureq::Proxy>) -> Agent {
    let tls = TlsConfig::builder()
        .root_certs(RootCerts::WebPki)
        // Named explicitly, like `mail::tls`, so no process-wide provider
        // choice can change or break it.
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .build();
    Agent::config_builder()
        .tls_config(tls)
        .proxy(proxy)
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(CALL_TIMEOUT))
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .user_agent("satchel")
        .build()
        .new_agent()
}

// ---------------------------------------------------------------------------
// Concurrency cap

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// How many provider calls may run at once: one per core, half the request
/// workers (two per core), so the other half always serves other requests.
pub fn max_concurrent() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(1)
}

/// One call slot, given back on drop.
struct Slot;

impl Slot {
    fn take() -> Result<Slot, CallError> {
        let limit = max_concurrent();
        let mut current = IN_FLIGHT.load(Ordering::Acquire);
        loop {
            if current >= limit {
                return Err(CallError::Busy);
            }
            match IN_FLIGHT.compare_exchange(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(Slot),
                Err(now) => current = now,
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
    }
}

// ---------------------------------------------------------------------------
// Encoding helpers shared by the OAuth2 code

/// `application/x-www-form-urlencoded` encoding of one value, as Go's
/// `url.QueryEscape` writes it (space as `+`).
pub fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_and_http_only_to_loopback() {
        for ok in [
            "https://accounts.google.com/o/oauth2/v2/auth",
            "https://idp.internal.example:8443/token?x=1",
            "http://127.0.0.1:4000/token",
            "http://127.8.9.10/userinfo",
            "http://localhost:8080/userinfo",
            "HTTP://LOCALHOST/x",
            "http://[::1]:9000/token",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for refused in [
            "http://example.com/token",
            "http://10.0.0.5/token",
            "http://169.254.169.254/latest/meta-data",
            "http://127.0.0.1.nip.io/token",
            "http://localhost@evil.example/token",
            "https://user:pw@example.com/token",
            "ftp://127.0.0.1/x",
            "file:///etc/passwd",
            "127.0.0.1/token",
            "https:///nohost",
            "",
        ] {
            assert!(check_url(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn refused_urls_are_never_contacted() {
        let e = get("http://192.0.2.1/userinfo", Some("t")).unwrap_err();
        assert!(matches!(e, CallError::RefusedUrl(_)));
    }

    #[test]
    fn form_encoding_matches_go_query_escape() {
        assert_eq!(form_encode("openid email profile"), "openid+email+profile");
        assert_eq!(form_encode("a/b:c@d"), "a%2Fb%3Ac%40d");
        assert_eq!(form_encode("AZaz09-_.~"), "AZaz09-_.~");
        assert_eq!(form_encode("é"), "%C3%A9");
    }

    #[test]
    fn call_slots_are_capped_and_returned() {
        let limit = max_concurrent();
        let slots: Vec<Slot> = (0..limit).map(|_| Slot::take().unwrap()).collect();
        assert!(matches!(Slot::take(), Err(CallError::Busy)));
        drop(slots);
        assert!(Slot::take().is_ok());
    }
}
