//! The client against an in-process fake SMTP server on 127.0.0.1:0 that
//! records what it is told, speaks TLS (implicit or STARTTLS) with a
//! certificate made by rcgen for the test, and misbehaves on request.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection};

use super::*;
use crate::mail::Address;
use crate::security::base64::decode_std;

/// How the fake server behaves.
#[derive(Clone)]
struct Behaviour {
    /// EHLO extension lines after the greeting name.
    extensions: Vec<&'static str>,
    /// Answer EHLO with 502 so the client must fall back to HELO.
    refuse_ehlo: bool,
    /// RCPT TO for this address gets a 550.
    reject_recipient: Option<&'static str>,
    /// MAIL FROM gets `530 5.7.0 Must issue a STARTTLS command first`.
    demand_starttls: bool,
    /// AUTH gets a 535.
    refuse_auth: bool,
    /// Close the connection after reading this many commands.
    hang_up_after: Option<usize>,
    /// Accept the connection but never say anything.
    silent: bool,
    /// TLS handshake before the greeting (port 465 style).
    implicit_tls: Option<Arc<ServerConfig>>,
    /// Advertise STARTTLS (and, like many real servers, nothing else until
    /// the connection is encrypted) and upgrade on request.
    starttls: Option<Arc<ServerConfig>>,
    /// Answer STARTTLS with a 454 instead of upgrading.
    refuse_starttls: bool,
    /// Send a forged reply right behind the STARTTLS 220, in clear text.
    inject_after_starttls: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            extensions: vec!["AUTH PLAIN LOGIN", "8BITMIME"],
            refuse_ehlo: false,
            reject_recipient: None,
            demand_starttls: false,
            refuse_auth: false,
            hang_up_after: None,
            silent: false,
            implicit_tls: None,
            starttls: None,
            refuse_starttls: false,
            inject_after_starttls: false,
        }
    }
}

/// What the fake server saw.
#[derive(Debug, Default)]
struct Transcript {
    commands: Vec<String>,
    auth: Vec<(String, String, String)>,
    mail_from: Vec<String>,
    rcpt_to: Vec<String>,
    /// DATA lines as they came over the wire (still dot-stuffed).
    raw_data: Vec<String>,
    /// Every line received before TLS was up, AUTH payloads included: what
    /// an eavesdropper would have read.
    clear_text: Vec<String>,
}

impl Transcript {
    /// The message as the server would store it (dot-stuffing undone).
    fn message(&self) -> String {
        let lines: Vec<&str> = self
            .raw_data
            .iter()
            .map(|l| l.strip_prefix('.').unwrap_or(l))
            .collect();
        lines.join("\r\n")
    }

    fn verbs(&self) -> Vec<String> {
        self.commands
            .iter()
            .map(|c| c.split(' ').next().unwrap_or("").to_ascii_uppercase())
            .collect()
    }
}

struct FakeServer {
    port: u16,
    handle: JoinHandle<Transcript>,
}

impl FakeServer {
    fn start(behaviour: Behaviour) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut transcript = Transcript::default();
            serve(stream, &behaviour, &mut transcript);
            transcript
        });
        FakeServer { port, handle }
    }

    fn config(&self) -> SmtpConfig {
        SmtpConfig {
            host: "127.0.0.1".into(),
            port: self.port,
            io_timeout: Duration::from_secs(5),
            ..SmtpConfig::default()
        }
    }

    /// Connects to this server whatever host the config names, so a test
    /// can play `smtp.example.com` on loopback.
    fn connector(&self) -> impl FnOnce(&SmtpConfig) -> Result<TcpStream, SmtpError> {
        let port = self.port;
        move |config| {
            connect_tcp(&SmtpConfig {
                host: "127.0.0.1".into(),
                port,
                ..config.clone()
            })
        }
    }

    fn finish(self) -> Transcript {
        self.handle.join().unwrap()
    }
}

/// A certificate for `names` (DNS names or IP addresses) made for one test:
/// the server's TLS config and the PEM a client must trust to accept it.
struct TestCertificate {
    server: Arc<ServerConfig>,
    pem: String,
}

fn test_certificate(names: &[&str]) -> TestCertificate {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let rcgen::CertifiedKey { cert, key_pair } = rcgen::generate_simple_self_signed(names).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
    let server =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .unwrap();
    TestCertificate {
        server: Arc::new(server),
        pem: cert.pem(),
    }
}

/// The fake server's side of the connection, clear or encrypted.
enum ServerStream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<ServerConnection, TcpStream>>),
}

impl std::io::Read for ServerStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            ServerStream::Plain(s) => s.read(buf),
            ServerStream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for ServerStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            ServerStream::Plain(s) => s.write(buf),
            ServerStream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            ServerStream::Plain(s) => s.flush(),
            ServerStream::Tls(s) => s.flush(),
        }
    }
}

type Connection = BufReader<ServerStream>;

/// `None` when the client gave up on the handshake (e.g. it refused our
/// certificate).
fn accept_tls(mut tcp: TcpStream, config: &Arc<ServerConfig>) -> Option<Connection> {
    let mut tls = ServerConnection::new(Arc::clone(config)).ok()?;
    while tls.is_handshaking() {
        tls.complete_io(&mut tcp).ok()?;
    }
    let stream = rustls::StreamOwned::new(tls, tcp);
    Some(BufReader::new(ServerStream::Tls(Box::new(stream))))
}

fn is_encrypted(connection: &Connection) -> bool {
    matches!(connection.get_ref(), ServerStream::Tls(_))
}

fn say(connection: &mut Connection, text: &str) {
    let stream = connection.get_mut();
    let _ = stream
        .write_all(text.as_bytes())
        .and_then(|()| stream.flush());
}

fn serve(stream: TcpStream, behaviour: &Behaviour, transcript: &mut Transcript) {
    if behaviour.silent {
        std::thread::sleep(Duration::from_millis(1500));
        return;
    }
    let mut connection = match &behaviour.implicit_tls {
        Some(config) => match accept_tls(stream, config) {
            Some(connection) => connection,
            None => return,
        },
        None => BufReader::new(ServerStream::Plain(stream)),
    };
    say(&mut connection, "220 fake.test ESMTP\r\n");
    let mut login_user: Option<String> = None;
    let mut login_step = 0;
    loop {
        let Some(line) = read_line(&mut connection, transcript) else {
            return;
        };
        let offer_starttls = behaviour.starttls.is_some() && !is_encrypted(&connection);
        if login_step > 0 {
            let decoded = String::from_utf8(decode_std(&line).unwrap()).unwrap();
            if login_step == 1 {
                login_user = Some(decoded);
                login_step = 2;
                say(&mut connection, "334 UGFzc3dvcmQ6\r\n");
            } else {
                transcript
                    .auth
                    .push(("LOGIN".into(), login_user.take().unwrap(), decoded));
                login_step = 0;
                say(&mut connection, "235 2.7.0 ok\r\n");
            }
            continue;
        }
        transcript.commands.push(line.clone());
        if behaviour
            .hang_up_after
            .is_some_and(|n| transcript.commands.len() >= n)
        {
            return;
        }
        let upper = line.to_ascii_uppercase();
        let verb = upper.split(' ').next().unwrap_or("");
        match verb {
            "EHLO" if behaviour.refuse_ehlo => say(&mut connection, "502 5.5.2 no ESMTP here\r\n"),
            "EHLO" if offer_starttls => say(&mut connection, "250-fake.test\r\n250 STARTTLS\r\n"),
            "STARTTLS" if !offer_starttls => {
                say(&mut connection, "503 5.5.1 TLS already active\r\n")
            }
            "STARTTLS" if behaviour.refuse_starttls => say(
                &mut connection,
                "454 4.7.0 TLS not available due to temporary reason\r\n",
            ),
            "STARTTLS" if behaviour.inject_after_starttls => say(
                &mut connection,
                "220 2.0.0 ready\r\n250-forged.test\r\n250 AUTH PLAIN\r\n",
            ),
            "STARTTLS" => {
                say(&mut connection, "220 2.0.0 ready\r\n");
                let (Some(config), ServerStream::Plain(tcp)) =
                    (&behaviour.starttls, connection.into_inner())
                else {
                    return;
                };
                connection = match accept_tls(tcp, config) {
                    Some(connection) => connection,
                    None => return,
                };
            }
            "EHLO" => {
                let mut reply = String::from("250-fake.test\r\n");
                for (i, ext) in behaviour.extensions.iter().enumerate() {
                    let sep = if i + 1 == behaviour.extensions.len() {
                        ' '
                    } else {
                        '-'
                    };
                    reply.push_str(&format!("250{sep}{ext}\r\n"));
                }
                if behaviour.extensions.is_empty() {
                    reply = "250 fake.test\r\n".into();
                }
                say(&mut connection, &reply);
            }
            "HELO" => say(&mut connection, "250 fake.test\r\n"),
            "AUTH" if behaviour.refuse_auth => {
                say(&mut connection, "535 5.7.8 bad credentials\r\n")
            }
            "AUTH" => {
                let parts: Vec<&str> = line.split(' ').collect();
                match parts.get(1).map(|m| m.to_ascii_uppercase()).as_deref() {
                    Some("PLAIN") => {
                        let raw = decode_std(parts.get(2).copied().unwrap_or("")).unwrap();
                        let text = String::from_utf8(raw).unwrap();
                        let fields: Vec<&str> = text.split('\0').collect();
                        transcript
                            .auth
                            .push(("PLAIN".into(), fields[1].into(), fields[2].into()));
                        say(&mut connection, "235 2.7.0 ok\r\n");
                    }
                    Some("LOGIN") => {
                        login_step = 1;
                        say(&mut connection, "334 VXNlcm5hbWU6\r\n");
                    }
                    _ => say(&mut connection, "504 5.5.4 unknown mechanism\r\n"),
                }
            }
            "MAIL" if behaviour.demand_starttls && !is_encrypted(&connection) => say(
                &mut connection,
                "530 5.7.0 Must issue a STARTTLS command first\r\n",
            ),
            "MAIL" => {
                transcript
                    .mail_from
                    .push(line["MAIL FROM:".len()..].to_string());
                say(&mut connection, "250 2.1.0 ok\r\n");
            }
            "RCPT" => {
                let address = line["RCPT TO:".len()..].to_string();
                if behaviour
                    .reject_recipient
                    .is_some_and(|r| address.contains(r))
                {
                    say(&mut connection, "550 5.1.1 no such user\r\n");
                } else {
                    transcript.rcpt_to.push(address);
                    say(&mut connection, "250 2.1.5 ok\r\n");
                }
            }
            "DATA" => {
                say(&mut connection, "354 go ahead\r\n");
                loop {
                    let Some(data_line) = read_line(&mut connection, transcript) else {
                        return;
                    };
                    if data_line == "." {
                        break;
                    }
                    transcript.raw_data.push(data_line);
                }
                say(&mut connection, "250 2.0.0 queued\r\n");
            }
            "QUIT" => {
                say(&mut connection, "221 2.0.0 bye\r\n");
                return;
            }
            _ => say(&mut connection, "500 5.5.1 what?\r\n"),
        }
    }
}

fn read_line(connection: &mut Connection, transcript: &mut Transcript) -> Option<String> {
    let mut line = String::new();
    match connection.read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => {
            assert!(line.ends_with("\r\n"), "client sent a bare LF: {line:?}");
            let line = line.trim_end_matches("\r\n").to_string();
            if !is_encrypted(connection) {
                transcript.clear_text.push(line.clone());
            }
            Some(line)
        }
    }
}

fn message() -> Message {
    Message {
        from: Address::with_name("Acme Support", "support@example.com"),
        to: vec![Address::new("first@example.org")],
        subject: "Verify your email".into(),
        html: "<p>Hello</p>\n<p>.starts with a dot</p>".into(),
        text: String::new(),
    }
}

fn send_with(
    behaviour: Behaviour,
    edit: impl FnOnce(&mut SmtpConfig),
    msg: &Message,
) -> (Result<(), SmtpError>, Transcript) {
    let server = FakeServer::start(behaviour);
    let mut config = server.config();
    edit(&mut config);
    let result = send(&config, msg);
    (result, server.finish())
}

fn credentials(method: &str) -> impl FnOnce(&mut SmtpConfig) + '_ {
    move |c: &mut SmtpConfig| {
        c.username = "mailer".into();
        c.password = "s3cr3t pass".into();
        c.auth_method = method.into();
    }
}

#[test]
fn sends_envelope_and_message_without_auth() {
    let (result, seen) = send_with(Behaviour::default(), |_| {}, &message());
    result.unwrap();
    assert_eq!(seen.verbs(), ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]);
    assert_eq!(seen.commands[0], "EHLO localhost");
    assert_eq!(seen.mail_from, ["<support@example.com>"]);
    assert_eq!(seen.rcpt_to, ["<first@example.org>"]);
    let text = seen.message();
    assert!(text.contains("From: \"Acme Support\" <support@example.com>\r\n"));
    assert!(text.contains("To: <first@example.org>\r\n"));
    assert!(text.contains("Subject: Verify your email\r\n"));
    assert!(text.contains("Content-Type: text/html; charset=UTF-8"));
    assert!(text.contains("<p>Hello</p>"));
}

#[test]
fn auth_plain_sends_the_configured_credentials() {
    let (result, seen) = send_with(Behaviour::default(), credentials("PLAIN"), &message());
    result.unwrap();
    assert_eq!(
        seen.auth,
        [("PLAIN".into(), "mailer".into(), "s3cr3t pass".into())]
    );
    assert_eq!(
        seen.verbs(),
        ["EHLO", "AUTH", "MAIL", "RCPT", "DATA", "QUIT"]
    );
}

#[test]
fn auth_login_sends_user_then_password() {
    let (result, seen) = send_with(Behaviour::default(), credentials("LOGIN"), &message());
    result.unwrap();
    assert_eq!(
        seen.auth,
        [("LOGIN".into(), "mailer".into(), "s3cr3t pass".into())]
    );
}

#[test]
fn an_empty_auth_method_picks_what_the_server_offers() {
    let (result, seen) = send_with(Behaviour::default(), credentials(""), &message());
    result.unwrap();
    assert_eq!(seen.auth[0].0, "PLAIN");

    let login_only = Behaviour {
        extensions: vec!["AUTH LOGIN"],
        ..Behaviour::default()
    };
    let (result, seen) = send_with(login_only, credentials(""), &message());
    result.unwrap();
    assert_eq!(seen.auth[0].0, "LOGIN");
}

#[test]
fn no_auth_without_credentials_or_without_server_support() {
    let (result, seen) = send_with(Behaviour::default(), |_| {}, &message());
    result.unwrap();
    assert!(seen.auth.is_empty());

    let no_auth = Behaviour {
        extensions: vec!["8BITMIME"],
        ..Behaviour::default()
    };
    let (result, seen) = send_with(no_auth, credentials("PLAIN"), &message());
    result.unwrap();
    assert!(!seen.verbs().contains(&"AUTH".to_string()));
}

#[test]
fn refused_auth_is_an_error_without_the_password() {
    let refuse = Behaviour {
        refuse_auth: true,
        ..Behaviour::default()
    };
    let (result, seen) = send_with(refuse, credentials("PLAIN"), &message());
    let err = result.unwrap_err();
    assert!(
        matches!(err, SmtpError::Rejected { code: 535, .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains("s3cr3t"));
    assert!(!format!("{err:?}").contains("s3cr3t"));
    assert!(!seen.verbs().contains(&"MAIL".to_string()));
}

#[test]
fn every_recipient_gets_a_rcpt_to() {
    let mut msg = message();
    msg.to = vec![
        Address::new("a@example.org"),
        Address::with_name("Bee", "b@example.org"),
        Address::new("c@example.org"),
    ];
    let (result, seen) = send_with(Behaviour::default(), |_| {}, &msg);
    result.unwrap();
    assert_eq!(
        seen.rcpt_to,
        ["<a@example.org>", "<b@example.org>", "<c@example.org>"]
    );
    assert!(seen
        .message()
        .contains("To: <a@example.org>, \"Bee\" <b@example.org>, <c@example.org>\r\n"));
}

#[test]
fn a_rejected_recipient_fails_the_send_before_data() {
    let reject = Behaviour {
        reject_recipient: Some("bad@example.org"),
        ..Behaviour::default()
    };
    let mut msg = message();
    msg.to.push(Address::new("bad@example.org"));
    let (result, seen) = send_with(reject, |_| {}, &msg);
    match result {
        Err(SmtpError::Rejected { code, stage, .. }) => {
            assert_eq!(code, 550);
            assert!(stage.contains("bad@example.org"), "{stage}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(!seen.verbs().contains(&"DATA".to_string()));
}

#[test]
fn helo_is_used_when_ehlo_is_refused() {
    let old_server = Behaviour {
        refuse_ehlo: true,
        ..Behaviour::default()
    };
    let (result, seen) = send_with(
        old_server,
        |c| c.local_name = "mail.acme.test".into(),
        &message(),
    );
    result.unwrap();
    assert_eq!(seen.commands[0], "EHLO mail.acme.test");
    assert_eq!(seen.commands[1], "HELO mail.acme.test");
}

#[test]
fn data_is_dot_stuffed_and_crlf_normalized() {
    assert_eq!(
        dot_stuff("a\n.b\r\n..c\rd\r\n"),
        "a\r\n..b\r\n...c\r\nd\r\n.\r\n"
    );
    assert_eq!(dot_stuff("."), "..\r\n.\r\n");
    // End to end, a body line starting with a dot arrives intact.
    let mut msg = message();
    msg.html.clear();
    msg.text = "line one\n.hidden?\n.\nlast".into();
    let (result, seen) = send_with(Behaviour::default(), |_| {}, &msg);
    result.unwrap();
    assert!(
        seen.raw_data.iter().all(|l| l != "."),
        "a lone dot would end DATA early"
    );
    assert!(seen
        .message()
        .contains("line one\r\n=2Ehidden?\r\n=2E\r\nlast"));
}

#[test]
fn a_server_demanding_tls_it_does_not_offer_is_tls_required() {
    let demands = Behaviour {
        demand_starttls: true,
        ..Behaviour::default()
    };
    let (result, _) = send_with(demands, |_| {}, &message());
    assert!(
        matches!(result, Err(SmtpError::TlsRequired(_))),
        "{result:?}"
    );
}

#[test]
fn credentials_only_go_in_clear_text_to_loopback() {
    for host in [
        "localhost",
        "127.0.0.1",
        "::1",
        "[::1]",
        "127.1.2.3",
        "LOCALHOST",
    ] {
        assert!(is_loopback_host(host), "{host}");
    }
    for host in ["smtp.example.com", "10.0.0.1", "localhost.evil.com", "::2"] {
        assert!(!is_loopback_host(host), "{host}");
    }
}

#[test]
fn header_injection_is_refused_before_connecting() {
    let mut msg = message();
    msg.subject = "Hi\r\nBcc: victim@example.com".into();
    let config = SmtpConfig {
        host: "127.0.0.1".into(),
        port: 1, // nothing listens; connecting would be a different error
        ..SmtpConfig::default()
    };
    assert!(matches!(
        send(&config, &msg),
        Err(SmtpError::InvalidMessage(_))
    ));
    msg.subject = "ok".into();
    msg.to[0].email = "x@y.z>\r\nRCPT TO:<evil@y.z".into();
    assert!(matches!(
        send(&config, &msg),
        Err(SmtpError::InvalidMessage(_))
    ));
}

#[test]
fn a_server_hanging_up_is_an_error_not_a_panic() {
    let hang_up = Behaviour {
        hang_up_after: Some(2),
        ..Behaviour::default()
    };
    let (result, _) = send_with(hang_up, |_| {}, &message());
    assert!(
        matches!(result, Err(SmtpError::Protocol(_) | SmtpError::Io { .. })),
        "{result:?}"
    );
}

#[test]
fn a_silent_server_times_out() {
    let silent = Behaviour {
        silent: true,
        ..Behaviour::default()
    };
    let started = Instant::now();
    let (result, _) = send_with(
        silent,
        |c| c.io_timeout = Duration::from_millis(200),
        &message(),
    );
    assert!(
        matches!(
            result,
            Err(SmtpError::Io {
                stage: "greeting",
                ..
            })
        ),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn reply_lines_are_parsed_strictly() {
    assert_eq!(
        parse_reply_line("250-AUTH PLAIN").unwrap(),
        (250, true, "AUTH PLAIN")
    );
    assert_eq!(parse_reply_line("250 ok").unwrap(), (250, false, "ok"));
    assert_eq!(parse_reply_line("250").unwrap(), (250, false, ""));
    for bad in ["", "25", "abc ok", "250x", "2é0 ok"] {
        assert!(parse_reply_line(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn extensions_understand_both_auth_spellings() {
    let lines: Vec<String> = ["fake.test", "AUTH=LOGIN", "auth plain cram-md5", "SIZE 100"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let ext = Extensions::parse(&lines);
    assert!(ext.offers("LOGIN") && ext.offers("PLAIN") && ext.offers("CRAM-MD5"));
    assert!(Extensions::parse(&lines[..1]).auth.is_none());
}

#[test]
fn debug_output_hides_the_password() {
    let config = SmtpConfig {
        password: "hunter2".into(),
        ..SmtpConfig::default()
    };
    assert!(!format!("{config:?}").contains("hunter2"));
}

// ---- TLS ----

fn trusting(certificate: &TestCertificate) -> impl FnOnce(&mut SmtpConfig) + '_ {
    move |c: &mut SmtpConfig| c.extra_roots_pem = Some(certificate.pem.clone())
}

/// Sends through a fake server while the config names `host`: the name the
/// certificate must match and the one the clear-text rule looks at.
fn send_as_host(
    host: &str,
    behaviour: Behaviour,
    edit: impl FnOnce(&mut SmtpConfig),
) -> (Result<(), SmtpError>, Transcript) {
    let server = FakeServer::start(behaviour);
    let mut config = server.config();
    config.host = host.into();
    edit(&mut config);
    let result = send_with_connector(&config, &message(), server.connector());
    (result, server.finish())
}

fn with_credentials<'a>(
    method: &'a str,
    extra: impl FnOnce(&mut SmtpConfig) + 'a,
) -> impl FnOnce(&mut SmtpConfig) + 'a {
    move |c: &mut SmtpConfig| {
        credentials(method)(c);
        extra(c);
    }
}

#[test]
fn implicit_tls_carries_auth_plain_to_a_remote_host() {
    let certificate = test_certificate(&["smtp.example.com"]);
    let server = Behaviour {
        implicit_tls: Some(Arc::clone(&certificate.server)),
        ..Behaviour::default()
    };
    let (result, seen) = send_as_host(
        "smtp.example.com",
        server,
        with_credentials("PLAIN", |c| {
            c.tls = true;
            c.port = 465;
            trusting(&certificate)(c);
        }),
    );
    result.unwrap();
    assert_eq!(
        seen.auth,
        [("PLAIN".into(), "mailer".into(), "s3cr3t pass".into())]
    );
    assert_eq!(
        seen.verbs(),
        ["EHLO", "AUTH", "MAIL", "RCPT", "DATA", "QUIT"]
    );
    assert!(seen.clear_text.is_empty(), "{:?}", seen.clear_text);
    assert!(seen.message().contains("<p>Hello</p>"));
}

#[test]
fn starttls_upgrades_then_says_ehlo_again_and_auth_login_is_encrypted() {
    let certificate = test_certificate(&["localhost", "127.0.0.1"]);
    let server = Behaviour {
        starttls: Some(Arc::clone(&certificate.server)),
        ..Behaviour::default()
    };
    let (result, seen) = send_with(
        server,
        with_credentials("LOGIN", trusting(&certificate)),
        &message(),
    );
    result.unwrap();
    assert_eq!(
        seen.verbs(),
        ["EHLO", "STARTTLS", "EHLO", "AUTH", "MAIL", "RCPT", "DATA", "QUIT"]
    );
    // The server offered AUTH only after the upgrade: a client that kept the
    // first EHLO's answer would not have authenticated.
    assert_eq!(
        seen.auth,
        [("LOGIN".into(), "mailer".into(), "s3cr3t pass".into())]
    );
    assert_eq!(seen.clear_text, ["EHLO localhost", "STARTTLS"]);
}

#[test]
fn a_certificate_for_another_host_is_refused() {
    let certificate = test_certificate(&["mail.other.test"]);
    let server = Behaviour {
        implicit_tls: Some(Arc::clone(&certificate.server)),
        ..Behaviour::default()
    };
    let (result, seen) = send_with(
        server,
        with_credentials("PLAIN", |c| {
            c.tls = true;
            trusting(&certificate)(c);
        }),
        &message(),
    );
    match result {
        Err(SmtpError::Tls(why)) => assert!(why.contains("not valid for name"), "{why}"),
        other => panic!("expected a certificate error, got {other:?}"),
    }
    assert!(seen.commands.is_empty(), "{:?}", seen.commands);
}

#[test]
fn an_untrusted_certificate_is_refused_and_starttls_never_falls_back() {
    // Right name, but nobody vouches for it.
    let certificate = test_certificate(&["127.0.0.1"]);
    let server = Behaviour {
        starttls: Some(Arc::clone(&certificate.server)),
        ..Behaviour::default()
    };
    let (result, seen) = send_with(server, credentials("PLAIN"), &message());
    let err = result.unwrap_err();
    assert!(
        matches!(&err, SmtpError::Tls(why) if why.contains("UnknownIssuer")),
        "{err:?}"
    );
    assert!(
        !err.is_transient(),
        "a bad certificate does not heal itself"
    );
    assert_eq!(seen.verbs(), ["EHLO", "STARTTLS"]);
    assert!(seen.auth.is_empty());
}

#[test]
fn a_refused_starttls_fails_instead_of_sending_in_clear() {
    let certificate = test_certificate(&["127.0.0.1"]);
    let server = Behaviour {
        starttls: Some(Arc::clone(&certificate.server)),
        refuse_starttls: true,
        ..Behaviour::default()
    };
    let (result, seen) = send_with(server, trusting(&certificate), &message());
    assert!(
        matches!(result, Err(SmtpError::Rejected { code: 454, .. })),
        "{result:?}"
    );
    assert_eq!(seen.verbs(), ["EHLO", "STARTTLS"]);
}

#[test]
fn replies_injected_before_the_tls_handshake_are_refused() {
    let certificate = test_certificate(&["127.0.0.1"]);
    let server = Behaviour {
        starttls: Some(Arc::clone(&certificate.server)),
        inject_after_starttls: true,
        ..Behaviour::default()
    };
    let (result, seen) = send_with(
        server,
        with_credentials("PLAIN", trusting(&certificate)),
        &message(),
    );
    assert!(matches!(result, Err(SmtpError::Protocol(_))), "{result:?}");
    assert!(seen.auth.is_empty());
}

#[test]
fn a_server_without_starttls_still_works_in_clear_text_to_loopback() {
    let no_tls = Behaviour {
        extensions: vec!["AUTH PLAIN", "8BITMIME"],
        ..Behaviour::default()
    };
    let (result, seen) = send_with(no_tls, credentials("PLAIN"), &message());
    result.unwrap();
    assert_eq!(
        seen.verbs(),
        ["EHLO", "AUTH", "MAIL", "RCPT", "DATA", "QUIT"]
    );
    assert_eq!(seen.auth.len(), 1);
}

#[test]
fn credentials_are_never_sent_in_clear_to_a_remote_host() {
    for method in ["PLAIN", "LOGIN", ""] {
        let (result, seen) = send_as_host(
            "smtp.example.com",
            Behaviour::default(),
            credentials(method),
        );
        assert!(
            matches!(result, Err(SmtpError::TlsRequired(_))),
            "{method}: {result:?}"
        );
        let err = result.unwrap_err().to_string();
        assert!(!err.contains("s3cr3t"), "{err}");
        assert_eq!(seen.verbs(), ["EHLO"], "{method}");
        let password_b64 = encode_std(b"s3cr3t pass");
        assert!(
            seen.clear_text
                .iter()
                .all(|l| !l.contains("s3cr3t") && !l.contains(&password_b64)),
            "{:?}",
            seen.clear_text
        );
    }
    // Without credentials, a remote host in clear text is still fine.
    let (result, _) = send_as_host("smtp.example.com", Behaviour::default(), |_| {});
    result.unwrap();
}

#[test]
fn a_stalled_tls_handshake_times_out() {
    let certificate = test_certificate(&["127.0.0.1"]);
    let silent = Behaviour {
        silent: true,
        implicit_tls: Some(Arc::clone(&certificate.server)),
        ..Behaviour::default()
    };
    let started = Instant::now();
    let (result, _) = send_with(
        silent,
        |c| {
            c.tls = true;
            c.io_timeout = Duration::from_millis(200);
            trusting(&certificate)(c);
        },
        &message(),
    );
    assert!(
        matches!(
            result,
            Err(SmtpError::Io {
                stage: "TLS handshake",
                ..
            })
        ),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn bad_extra_roots_fail_before_connecting() {
    let config = SmtpConfig {
        host: "127.0.0.1".into(),
        port: 1, // nothing listens; connecting would be a different error
        extra_roots_pem: Some("not a certificate".into()),
        ..SmtpConfig::default()
    };
    assert!(
        matches!(send(&config, &message()), Err(SmtpError::InvalidConfig(_))),
        "bad PEM must be reported as configuration"
    );
}

#[test]
fn extensions_notice_starttls() {
    let lines: Vec<String> = ["fake.test", "STARTTLS", "SIZE 100"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert!(Extensions::parse(&lines).starttls);
    assert!(!Extensions::parse(&lines[..1]).starttls);
}

#[test]
fn over_tls_a_530_is_a_rejection_not_a_tls_demand() {
    let reply = Reply {
        code: 530,
        lines: vec!["5.7.0 Authentication required".into()],
    };
    assert!(matches!(
        require_reply(&reply, &[250], "MAIL FROM", true),
        Err(SmtpError::Rejected { code: 530, .. })
    ));
    assert!(matches!(
        require_reply(&reply, &[250], "MAIL FROM", false),
        Err(SmtpError::TlsRequired(_))
    ));
}
