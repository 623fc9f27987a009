//! The SMTP conversation (RFC 5321) over TCP with timeouts: greeting, EHLO
//! (HELO fallback), STARTTLS (RFC 3207) when offered, optional AUTH PLAIN /
//! LOGIN, MAIL FROM, RCPT TO per recipient, DATA with dot-stuffing, QUIT.
//!
//! Like the reference: `tls: true` is implicit TLS from the first byte;
//! otherwise STARTTLS is used whenever the server offers it, and a failed
//! upgrade fails the send (never a silent fall back to clear text). AUTH is
//! attempted only when credentials are set and the server advertises AUTH.
//! Credentials go to any host over TLS, but in clear text only to loopback.
//! Certificates and host names are always verified.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use super::error::SmtpError;
use super::message::{render_for_sending, Message};
use super::tls::{tls_client_config, tls_client_config_with_roots};
use crate::security::base64::encode_std;

/// Where and how to send. Built from the settings' `smtp` section by
/// `settings::SmtpSettings::mail_config`.
#[derive(Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: String,
    /// `"PLAIN"`, `"LOGIN"`, or `""`: PLAIN unless the server only offers LOGIN.
    pub auth_method: String,
    /// Implicit TLS from the first byte (usually port 465). When false,
    /// STARTTLS is still used if the server offers it.
    pub tls: bool,
    /// Name announced in EHLO/HELO; empty means `localhost`.
    pub local_name: String,
    pub connect_timeout: Duration,
    /// Per read and per write, TLS handshake included.
    pub io_timeout: Duration,
    /// Extra trusted root certificates (one or more PEM blocks), added to
    /// Mozilla's roots: for a server behind a private CA or with a
    /// self-signed certificate. Not a PocketBase setting, so settings leave
    /// it `None`; tests and embedders set it. It adds trust, never turns
    /// verification off.
    pub extra_roots_pem: Option<String>,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: String::new(),
            port: 25,
            username: String::new(),
            password: String::new(),
            auth_method: String::new(),
            tls: false,
            local_name: String::new(),
            connect_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(30),
            extra_roots_pem: None,
        }
    }
}

/// Debug output must not reveal the password (configs end up in logs).
impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field(
                "password",
                &if self.password.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field("auth_method", &self.auth_method)
            .field("tls", &self.tls)
            .field("local_name", &self.local_name)
            .field("extra_roots_pem", &self.extra_roots_pem.is_some())
            .finish()
    }
}

/// Longest reply line accepted; EHLO lines are short, so this only stops a
/// hostile server from growing our memory.
const MAX_REPLY_LINE: u64 = 4096;
const MAX_REPLY_LINES: usize = 100;

/// Sends `message` through the configured server. Blocking; bounded by the
/// config's timeouts for each connect, read and write.
pub fn send(config: &SmtpConfig, message: &Message) -> Result<(), SmtpError> {
    send_with_connector(config, message, connect_tcp)
}

/// [`send`] with the TCP connection made by `connect`, so tests can reach a
/// loopback fake server while the config names any host (the name decides
/// certificate checks and whether clear-text credentials are allowed).
fn send_with_connector(
    config: &SmtpConfig,
    message: &Message,
    connect: impl FnOnce(&SmtpConfig) -> Result<TcpStream, SmtpError>,
) -> Result<(), SmtpError> {
    check_config(config)?;
    // Rendering checks the message, and the TLS target checks the host name
    // and extra roots, so bad input fails before connecting.
    let data = render_for_sending(message)?;
    let tls = TlsTarget::for_config(config)?;
    let mut session = Session::open(connect(config)?, config.tls, &tls)?;
    session.expect_greeting()?;
    let mut extensions = session.hello(local_name(config))?;
    if !session.is_encrypted() && extensions.starttls {
        session = session.start_tls(&tls)?;
        // RFC 3207 §4.2: forget everything learned before the upgrade; an
        // attacker could have added or stripped extensions.
        extensions = session.hello(local_name(config))?;
    }
    if has_credentials(config) && extensions.auth.is_some() {
        session.authenticate(config, &extensions)?;
    }
    session.send_envelope(message)?;
    session.command("DATA", &[354], "DATA")?;
    session.send_data(&data)?;
    session.quit();
    Ok(())
}

fn check_config(config: &SmtpConfig) -> Result<(), SmtpError> {
    if config.host.is_empty() || config.port == 0 {
        return Err(SmtpError::InvalidConfig(
            "host and port are required".into(),
        ));
    }
    let name = local_name(config);
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(SmtpError::InvalidConfig(format!(
            "invalid local name {name:?}"
        )));
    }
    if !matches!(config.auth_method.as_str(), "" | "PLAIN" | "LOGIN") {
        return Err(SmtpError::InvalidConfig(format!(
            "unknown auth method {:?}",
            config.auth_method
        )));
    }
    Ok(())
}

fn local_name(config: &SmtpConfig) -> &str {
    if config.local_name.is_empty() {
        "localhost"
    } else {
        &config.local_name
    }
}

/// The reference authenticates when either the username or the password is set.
fn has_credentials(config: &SmtpConfig) -> bool {
    !config.username.is_empty() || !config.password.is_empty()
}

/// Loopback is the one place clear-text credentials cannot be sniffed.
fn is_loopback_host(host: &str) -> bool {
    let bare = bare_host(host);
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `[::1]` → `::1`: brackets are URL syntax, not part of the address.
fn bare_host(host: &str) -> &str {
    host.trim_start_matches('[').trim_end_matches(']')
}

fn connect_tcp(config: &SmtpConfig) -> Result<TcpStream, SmtpError> {
    let io = |source| SmtpError::Io {
        stage: "connect",
        source,
    };
    let addresses = (bare_host(&config.host), config.port)
        .to_socket_addrs()
        .map_err(io)?;
    let mut last_error = None;
    for address in addresses {
        match TcpStream::connect_timeout(&address, config.connect_timeout) {
            Ok(stream) => {
                // The TLS layer reads and writes through this socket, so
                // these timeouts bound the handshake and every TLS record too.
                stream
                    .set_read_timeout(Some(config.io_timeout))
                    .map_err(io)?;
                stream
                    .set_write_timeout(Some(config.io_timeout))
                    .map_err(io)?;
                return Ok(stream);
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(io(last_error.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "host did not resolve")
    })))
}

/// Who the TLS peer must prove to be, and whom we trust to say so.
struct TlsTarget {
    config: Arc<ClientConfig>,
    /// The configured host (name or IP address), matched against the
    /// certificate.
    server_name: ServerName<'static>,
}

impl TlsTarget {
    fn for_config(config: &SmtpConfig) -> Result<TlsTarget, SmtpError> {
        let client_config = match &config.extra_roots_pem {
            None => tls_client_config().map_err(|e| SmtpError::Tls(e.to_string()))?,
            Some(pem) => tls_client_config_with_roots(pem)
                .map_err(|e| SmtpError::InvalidConfig(format!("extra root certificates: {e}")))?,
        };
        let server_name =
            ServerName::try_from(bare_host(&config.host).to_string()).map_err(|_| {
                SmtpError::InvalidConfig(format!(
                    "host {:?} is neither a DNS name nor an IP address",
                    config.host
                ))
            })?;
        Ok(TlsTarget {
            config: client_config,
            server_name,
        })
    }
}

/// The connection under the SMTP conversation: clear until STARTTLS, or
/// encrypted from the start for implicit TLS.
enum Transport {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Transport::Plain(stream) => stream.read(buf),
            Transport::Tls(stream) => stream.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Transport::Plain(stream) => stream.write(buf),
            Transport::Tls(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Transport::Plain(stream) => stream.flush(),
            Transport::Tls(stream) => stream.flush(),
        }
    }
}

/// Runs the whole handshake now rather than on the first read, so a bad
/// certificate is reported as such and before any SMTP byte is sent.
fn tls_handshake(mut tcp: TcpStream, target: &TlsTarget) -> Result<Transport, SmtpError> {
    let mut connection =
        ClientConnection::new(Arc::clone(&target.config), target.server_name.clone())
            .map_err(|e| SmtpError::Tls(e.to_string()))?;
    while connection.is_handshaking() {
        connection.complete_io(&mut tcp).map_err(handshake_error)?;
    }
    Ok(Transport::Tls(Box::new(StreamOwned::new(connection, tcp))))
}

/// rustls reports its own failures (certificate, alert, protocol) as an
/// `io::Error` wrapping a `rustls::Error`; unwrap those into `Tls` so a
/// certificate problem does not look like a retryable network error.
fn handshake_error(error: std::io::Error) -> SmtpError {
    let tls_failure = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .map(|tls| tls.to_string());
    match tls_failure {
        Some(why) => SmtpError::Tls(why),
        None => SmtpError::Io {
            stage: "TLS handshake",
            source: error,
        },
    }
}

/// What the server announced in its EHLO reply.
#[derive(Debug, Default)]
struct Extensions {
    /// Mechanisms after `AUTH` (upper-cased), `None` when AUTH is not offered.
    auth: Option<Vec<String>>,
    /// The server offers to upgrade this connection to TLS.
    starttls: bool,
}

impl Extensions {
    fn parse(lines: &[String]) -> Extensions {
        let mut extensions = Extensions::default();
        // The first line is the server's greeting name, not an extension.
        for line in lines.iter().skip(1) {
            let upper = line.to_ascii_uppercase();
            let mut words = upper.split([' ', '=']);
            match words.next() {
                Some("AUTH") => {
                    let mechanisms = extensions.auth.get_or_insert_with(Vec::new);
                    mechanisms.extend(words.filter(|w| !w.is_empty()).map(String::from));
                }
                Some("STARTTLS") => extensions.starttls = true,
                _ => {}
            }
        }
        extensions
    }

    fn offers(&self, mechanism: &str) -> bool {
        self.auth
            .as_ref()
            .is_some_and(|m| m.iter().any(|x| x == mechanism))
    }
}

/// A server reply: code and text lines (without the code prefix).
#[derive(Debug)]
struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    fn text(&self) -> String {
        self.lines.join(" ")
    }
}

struct Session {
    reader: BufReader<Transport>,
}

impl Session {
    /// Starts the session on a connected socket; with `implicit_tls` the
    /// TLS handshake comes before the server's greeting.
    fn open(tcp: TcpStream, implicit_tls: bool, tls: &TlsTarget) -> Result<Session, SmtpError> {
        let transport = if implicit_tls {
            tls_handshake(tcp, tls)?
        } else {
            Transport::Plain(tcp)
        };
        Ok(Session {
            reader: BufReader::new(transport),
        })
    }

    fn is_encrypted(&self) -> bool {
        matches!(self.reader.get_ref(), Transport::Tls(_))
    }

    /// STARTTLS, then the handshake on the same socket. A server that
    /// offered it but then refuses, or fails the handshake, fails the send:
    /// falling back to clear text would let an attacker force it.
    fn start_tls(mut self, tls: &TlsTarget) -> Result<Session, SmtpError> {
        self.write_line("STARTTLS", "STARTTLS")?;
        let reply = self.read_reply("STARTTLS")?;
        if reply.code != 220 {
            // Not `require`: a refusal here is a rejection, not a server
            // that lacks STARTTLS.
            return Err(SmtpError::Rejected {
                stage: "STARTTLS".into(),
                code: reply.code,
                message: reply.text(),
            });
        }
        // Bytes already buffered came in clear text behind the 220, ahead of
        // the handshake: unauthenticated, and a sign of reply injection by a
        // man in the middle (the CVE-2011-0411 family). Give up rather than
        // drop them and carry on.
        if !self.reader.buffer().is_empty() {
            return Err(SmtpError::Protocol(
                "the server sent data after its STARTTLS reply".into(),
            ));
        }
        match self.reader.into_inner() {
            Transport::Plain(tcp) => Session::open(tcp, true, tls),
            Transport::Tls(_) => Err(SmtpError::Protocol(
                "STARTTLS on a connection that is already encrypted".into(),
            )),
        }
    }

    fn expect_greeting(&mut self) -> Result<(), SmtpError> {
        let reply = self.read_reply("greeting")?;
        self.require(&reply, &[220], "greeting")
    }

    /// EHLO, falling back to HELO for servers that do not speak ESMTP.
    fn hello(&mut self, name: &str) -> Result<Extensions, SmtpError> {
        self.write_line(&format!("EHLO {name}"), "EHLO")?;
        let reply = self.read_reply("EHLO")?;
        if reply.code == 250 {
            return Ok(Extensions::parse(&reply.lines));
        }
        self.write_line(&format!("HELO {name}"), "HELO")?;
        let reply = self.read_reply("HELO")?;
        self.require(&reply, &[250], "HELO")?;
        Ok(Extensions::default())
    }

    fn authenticate(&mut self, config: &SmtpConfig, offered: &Extensions) -> Result<(), SmtpError> {
        if !self.is_encrypted() && !is_loopback_host(&config.host) {
            return Err(SmtpError::TlsRequired(format!(
                "refusing to send credentials unencrypted to {}: the server does not \
                 offer STARTTLS (set `tls` if it expects implicit TLS, usually port 465)",
                config.host
            )));
        }
        let use_login = match config.auth_method.as_str() {
            "LOGIN" => true,
            "PLAIN" => false,
            _ => !offered.offers("PLAIN") && offered.offers("LOGIN"),
        };
        if use_login {
            self.auth_login(config)
        } else {
            self.auth_plain(config)
        }
    }

    fn auth_plain(&mut self, config: &SmtpConfig) -> Result<(), SmtpError> {
        let token = encode_std(format!("\0{}\0{}", config.username, config.password).as_bytes());
        self.write_line(&format!("AUTH PLAIN {token}"), "AUTH PLAIN")?;
        let mut reply = self.read_reply("AUTH PLAIN")?;
        if reply.code == 334 {
            // Some servers ignore the initial response and ask again.
            self.write_line(&token, "AUTH PLAIN")?;
            reply = self.read_reply("AUTH PLAIN")?;
        }
        self.require(&reply, &[235], "AUTH PLAIN")
    }

    fn auth_login(&mut self, config: &SmtpConfig) -> Result<(), SmtpError> {
        self.write_line("AUTH LOGIN", "AUTH LOGIN")?;
        let reply = self.read_reply("AUTH LOGIN")?;
        self.require(&reply, &[334], "AUTH LOGIN")?;
        self.write_line(&encode_std(config.username.as_bytes()), "AUTH LOGIN")?;
        let reply = self.read_reply("AUTH LOGIN")?;
        self.require(&reply, &[334], "AUTH LOGIN")?;
        self.write_line(&encode_std(config.password.as_bytes()), "AUTH LOGIN")?;
        let reply = self.read_reply("AUTH LOGIN")?;
        self.require(&reply, &[235], "AUTH LOGIN")
    }

    /// MAIL FROM, then RCPT TO for each recipient.
    fn send_envelope(&mut self, message: &Message) -> Result<(), SmtpError> {
        self.command(
            &format!("MAIL FROM:<{}>", message.from.email),
            &[250],
            "MAIL FROM",
        )?;
        for to in &message.to {
            self.command(
                &format!("RCPT TO:<{}>", to.email),
                &[250, 251],
                &format!("RCPT TO <{}>", to.email),
            )?;
        }
        Ok(())
    }

    fn command(&mut self, line: &str, accepted: &[u16], stage: &str) -> Result<(), SmtpError> {
        self.write_line(line, "command")?;
        let reply = self.read_reply("reply")?;
        self.require(&reply, accepted, stage)
    }

    fn require(&self, reply: &Reply, accepted: &[u16], stage: &str) -> Result<(), SmtpError> {
        require_reply(reply, accepted, stage, self.is_encrypted())
    }

    /// The message with CRLF line ends and dot-stuffing, then `.` and the
    /// server's verdict.
    fn send_data(&mut self, message: &str) -> Result<(), SmtpError> {
        let wire = dot_stuff(message);
        self.write_all(wire.as_bytes(), "DATA")?;
        let reply = self.read_reply("end of DATA")?;
        self.require(&reply, &[250], "message")
    }

    /// Best effort: the mail is accepted already, so a failing QUIT is
    /// ignored. Over TLS a close_notify follows, so the server can tell our
    /// hang-up from a truncation attack and does not log an error.
    fn quit(&mut self) {
        if self.write_line("QUIT", "QUIT").is_ok() {
            let _ = self.read_reply("QUIT");
        }
        if let Transport::Tls(stream) = self.reader.get_mut() {
            stream.conn.send_close_notify();
            let _ = stream.flush();
        }
    }

    fn write_line(&mut self, line: &str, stage: &'static str) -> Result<(), SmtpError> {
        self.write_all(format!("{line}\r\n").as_bytes(), stage)
    }

    fn write_all(&mut self, bytes: &[u8], stage: &'static str) -> Result<(), SmtpError> {
        let stream = self.reader.get_mut();
        stream
            .write_all(bytes)
            .and_then(|()| stream.flush())
            .map_err(|source| SmtpError::Io { stage, source })
    }

    /// One reply: `NNN-text` lines up to the final `NNN text` line.
    fn read_reply(&mut self, stage: &'static str) -> Result<Reply, SmtpError> {
        let mut lines = Vec::new();
        loop {
            let line = self.read_line(stage)?;
            let (code, more, text) = parse_reply_line(&line)?;
            lines.push(text.to_string());
            if !more {
                return Ok(Reply { code, lines });
            }
            if lines.len() >= MAX_REPLY_LINES {
                return Err(SmtpError::Protocol("reply has too many lines".into()));
            }
        }
    }

    fn read_line(&mut self, stage: &'static str) -> Result<String, SmtpError> {
        let mut buffer = Vec::new();
        let read = (&mut self.reader)
            .take(MAX_REPLY_LINE)
            .read_until(b'\n', &mut buffer)
            .map_err(|source| SmtpError::Io { stage, source })?;
        if read == 0 {
            return Err(SmtpError::Protocol(format!(
                "connection closed by the server during {stage}"
            )));
        }
        if !buffer.ends_with(b"\n") {
            return Err(SmtpError::Protocol("reply line too long".into()));
        }
        let text = String::from_utf8_lossy(&buffer);
        Ok(text.trim_end_matches(['\r', '\n']).to_string())
    }
}

/// `250-text` → (250, true, "text"); `250 text` or `250` → (250, false, ...).
fn parse_reply_line(line: &str) -> Result<(u16, bool, &str), SmtpError> {
    let malformed = || SmtpError::Protocol(format!("malformed reply line {line:?}"));
    let code_text = line.get(..3).ok_or_else(malformed)?;
    if !code_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    let code: u16 = code_text.parse().map_err(|_| malformed())?;
    match line.as_bytes().get(3) {
        None => Ok((code, false, "")),
        Some(b'-') => Ok((code, true, &line[4..])),
        Some(b' ') => Ok((code, false, &line[4..])),
        Some(_) => Err(malformed()),
    }
}

/// `encrypted` tells whether a 530 can mean "TLS first": on a clear
/// connection it does (the server did not offer STARTTLS, or we would have
/// used it); over TLS a 530 is about authentication.
fn require_reply(
    reply: &Reply,
    accepted: &[u16],
    stage: &str,
    encrypted: bool,
) -> Result<(), SmtpError> {
    if accepted.contains(&reply.code) {
        return Ok(());
    }
    let text = reply.text();
    // 530 5.7.0 "Must issue a STARTTLS command first" and friends.
    if !encrypted && (reply.code == 530 || text.to_ascii_uppercase().contains("STARTTLS")) {
        return Err(SmtpError::TlsRequired(format!(
            "the server requires TLS at {stage} but offers no STARTTLS: {} {text}",
            reply.code
        )));
    }
    Err(SmtpError::Rejected {
        stage: stage.to_string(),
        code: reply.code,
        message: text,
    })
}

/// CRLF line ends everywhere, a `.` doubled at the start of any line, and
/// the terminating `.` line (RFC 5321 §4.5.2).
fn dot_stuff(message: &str) -> String {
    let normalized = message.replace("\r\n", "\n").replace('\r', "\n");
    let body = normalized.strip_suffix('\n').unwrap_or(&normalized);
    let mut wire = String::with_capacity(body.len() + 64);
    for line in body.split('\n') {
        if line.starts_with('.') {
            wire.push('.');
        }
        wire.push_str(line);
        wire.push_str("\r\n");
    }
    wire.push_str(".\r\n");
    wire
}

#[cfg(test)]
mod tests;
