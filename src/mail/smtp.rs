//! The SMTP conversation (RFC 5321) over a plain TCP connection with
//! timeouts: greeting, EHLO (HELO fallback), optional AUTH PLAIN / LOGIN,
//! MAIL FROM, RCPT TO per recipient, DATA with dot-stuffing, QUIT.
//!
//! Like the reference, AUTH is attempted only when credentials are set and
//! the server advertises AUTH, and credentials are only ever sent in clear
//! text to a loopback host; anything else needs TLS, which is not there yet.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::error::SmtpError;
use super::message::{render_for_sending, Message};
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
    /// Implicit TLS. Not supported yet: sending fails with `TlsUnsupported`.
    pub tls: bool,
    /// Name announced in EHLO/HELO; empty means `localhost`.
    pub local_name: String,
    pub connect_timeout: Duration,
    /// Per read and per write.
    pub io_timeout: Duration,
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
    check_config(config)?;
    // Rendering checks the message, so a bad one fails before connecting.
    let data = render_for_sending(message)?;
    let mut session = Session::connect(config)?;
    session.expect_greeting()?;
    let extensions = session.hello(local_name(config))?;
    if has_credentials(config) && extensions.auth.is_some() {
        session.authenticate(config, &extensions)?;
    }
    session.command(
        &format!("MAIL FROM:<{}>", message.from.email),
        &[250],
        "MAIL FROM",
    )?;
    for to in &message.to {
        session.command(
            &format!("RCPT TO:<{}>", to.email),
            &[250, 251],
            &format!("RCPT TO <{}>", to.email),
        )?;
    }
    session.command("DATA", &[354], "DATA")?;
    session.send_data(&data)?;
    session.quit();
    Ok(())
}

fn check_config(config: &SmtpConfig) -> Result<(), SmtpError> {
    if config.tls {
        return Err(SmtpError::TlsUnsupported(
            "implicit TLS (`tls: true`) is configured".into(),
        ));
    }
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
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// What the server announced in its EHLO reply.
#[derive(Debug, Default)]
struct Extensions {
    /// Mechanisms after `AUTH` (upper-cased), `None` when AUTH is not offered.
    auth: Option<Vec<String>>,
}

impl Extensions {
    fn parse(lines: &[String]) -> Extensions {
        let mut extensions = Extensions::default();
        // The first line is the server's greeting name, not an extension.
        for line in lines.iter().skip(1) {
            let upper = line.to_ascii_uppercase();
            let mut words = upper.split([' ', '=']);
            if words.next() == Some("AUTH") {
                let mechanisms = extensions.auth.get_or_insert_with(Vec::new);
                mechanisms.extend(words.filter(|w| !w.is_empty()).map(String::from));
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
    reader: BufReader<TcpStream>,
}

impl Session {
    fn connect(config: &SmtpConfig) -> Result<Session, SmtpError> {
        let io = |source| SmtpError::Io {
            stage: "connect",
            source,
        };
        let addresses = (config.host.as_str(), config.port)
            .to_socket_addrs()
            .map_err(io)?;
        let mut last_error = None;
        for address in addresses {
            match TcpStream::connect_timeout(&address, config.connect_timeout) {
                Ok(stream) => {
                    stream
                        .set_read_timeout(Some(config.io_timeout))
                        .map_err(io)?;
                    stream
                        .set_write_timeout(Some(config.io_timeout))
                        .map_err(io)?;
                    return Ok(Session {
                        reader: BufReader::new(stream),
                    });
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(io(last_error.unwrap_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "host did not resolve")
        })))
    }

    fn expect_greeting(&mut self) -> Result<(), SmtpError> {
        let reply = self.read_reply("greeting")?;
        require_reply(&reply, &[220], "greeting")
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
        require_reply(&reply, &[250], "HELO")?;
        Ok(Extensions::default())
    }

    fn authenticate(&mut self, config: &SmtpConfig, offered: &Extensions) -> Result<(), SmtpError> {
        if !is_loopback_host(&config.host) {
            return Err(SmtpError::TlsUnsupported(format!(
                "refusing to send credentials unencrypted to {}",
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
        require_reply(&reply, &[235], "AUTH PLAIN")
    }

    fn auth_login(&mut self, config: &SmtpConfig) -> Result<(), SmtpError> {
        self.write_line("AUTH LOGIN", "AUTH LOGIN")?;
        let reply = self.read_reply("AUTH LOGIN")?;
        require_reply(&reply, &[334], "AUTH LOGIN")?;
        self.write_line(&encode_std(config.username.as_bytes()), "AUTH LOGIN")?;
        let reply = self.read_reply("AUTH LOGIN")?;
        require_reply(&reply, &[334], "AUTH LOGIN")?;
        self.write_line(&encode_std(config.password.as_bytes()), "AUTH LOGIN")?;
        let reply = self.read_reply("AUTH LOGIN")?;
        require_reply(&reply, &[235], "AUTH LOGIN")
    }

    fn command(&mut self, line: &str, accepted: &[u16], stage: &str) -> Result<(), SmtpError> {
        self.write_line(line, "command")?;
        let reply = self.read_reply("reply")?;
        require_reply(&reply, accepted, stage)
    }

    /// The message with CRLF line ends and dot-stuffing, then `.` and the
    /// server's verdict.
    fn send_data(&mut self, message: &str) -> Result<(), SmtpError> {
        let wire = dot_stuff(message);
        self.write_all(wire.as_bytes(), "DATA")?;
        let reply = self.read_reply("end of DATA")?;
        require_reply(&reply, &[250], "message")
    }

    /// Best effort: the mail is accepted already, so a failing QUIT is ignored.
    fn quit(&mut self) {
        if self.write_line("QUIT", "QUIT").is_ok() {
            let _ = self.read_reply("QUIT");
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

fn require_reply(reply: &Reply, accepted: &[u16], stage: &str) -> Result<(), SmtpError> {
    if accepted.contains(&reply.code) {
        return Ok(());
    }
    let text = reply.text();
    // 530 5.7.0 "Must issue a STARTTLS command first" and friends.
    if reply.code == 530 || text.to_ascii_uppercase().contains("STARTTLS") {
        return Err(SmtpError::TlsUnsupported(format!(
            "the server requires TLS at {stage}: {} {text}",
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
