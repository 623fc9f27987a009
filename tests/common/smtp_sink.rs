//! A tiny SMTP sink for tests: accepts every message on loopback (no TLS,
//! no auth needed) and keeps it, decoded, so a test can wait for the mail
//! the server sends and read its token or code.

use super::{Response, Server};
use regex::Regex;
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

fn body_text(r: &Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

#[derive(Debug, Clone)]
pub struct Mail {
    pub to: Vec<String>,
    /// The decoded message (quoted-printable undone), headers included.
    pub text: String,
    claimed: bool,
}

#[derive(Default)]
pub struct Mailbox {
    mails: Mutex<Vec<Mail>>,
    arrived: Condvar,
}

pub struct Sink {
    pub port: u16,
    mailbox: Arc<Mailbox>,
}

impl Sink {
    pub fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the sink");
        let port = listener.local_addr().expect("sink address").port();
        let mailbox = Arc::new(Mailbox::default());
        let shared = mailbox.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mailbox = shared.clone();
                std::thread::spawn(move || serve_smtp(stream, &mailbox));
            }
        });
        Sink { port, mailbox }
    }

    /// Points the server's settings at this sink.
    pub fn attach(&self, server: &Server, su: &str) {
        let r = server.request(
            "PATCH",
            "/api/settings",
            Some(su),
            Some(&json!({"meta": {"appURL": "https://app.example.test"},
                         "smtp": {"enabled": true, "host": "127.0.0.1", "port": self.port,
                                  "tls": false, "authMethod": "", "username": "", "password": ""}})),
        );
        assert_eq!(r.status, 200, "{}", body_text(&r));
    }

    /// The next unclaimed mail to `to`, waiting up to five seconds.
    pub fn wait_for(&self, to: &str) -> Mail {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut mails = self.mailbox.mails.lock().unwrap();
        loop {
            if let Some(mail) = mails
                .iter_mut()
                .find(|m| !m.claimed && m.to.iter().any(|t| t == to))
            {
                mail.claimed = true;
                return mail.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no mail to {to} within 5 s");
            mails = self.mailbox.arrived.wait_timeout(mails, left).unwrap().0;
        }
    }

    /// How many mails to `to` arrived, after letting the outbox settle.
    pub fn count_after_settling(&self, to: &str) -> usize {
        std::thread::sleep(Duration::from_millis(600));
        let mails = self.mailbox.mails.lock().unwrap();
        mails
            .iter()
            .filter(|m| m.to.iter().any(|t| t == to))
            .count()
    }
}

fn serve_smtp(stream: TcpStream, mailbox: &Mailbox) {
    let mut out = match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    let mut reply = |line: &str| out.write_all(format!("{line}\r\n").as_bytes()).is_ok();
    if !reply("220 sink ready") {
        return;
    }
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim_end().to_string();
        let verb = command.split(' ').next().unwrap_or("").to_ascii_uppercase();
        let ok = match verb.as_str() {
            "EHLO" | "HELO" => reply("250 sink"),
            "MAIL" => {
                to.clear();
                reply("250 OK")
            }
            "RCPT" => {
                let start = command.find('<').map_or(0, |i| i + 1);
                let end = command.rfind('>').unwrap_or(command.len());
                to.push(command[start..end].to_string());
                reply("250 OK")
            }
            "DATA" => {
                reply("354 go on");
                let mut data = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line.trim_end() == "." {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                let mut mails = mailbox.mails.lock().unwrap();
                mails.push(Mail {
                    to: to.clone(),
                    text: decode_quoted_printable(&data),
                    claimed: false,
                });
                mailbox.arrived.notify_all();
                reply("250 queued")
            }
            "QUIT" => {
                reply("221 bye");
                return;
            }
            _ => reply("250 OK"),
        };
        if !ok {
            return;
        }
    }
}

fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Mail {
    pub fn token(&self) -> String {
        let re = Regex::new(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+").unwrap();
        re.find(&self.text)
            .map(|m| m.as_str().to_string())
            .unwrap_or_else(|| panic!("no token in {}", self.text))
    }

    pub fn code(&self, digits: usize) -> String {
        let re = Regex::new(&format!(r"(^|[^0-9])([0-9]{{{digits}}})([^0-9]|$)")).unwrap();
        let body = self
            .text
            .split("\r\n\r\n")
            .skip(1)
            .collect::<Vec<_>>()
            .join("\n");
        re.captures(&body)
            .map(|c| c[2].to_string())
            .unwrap_or_else(|| panic!("no {digits}-digit code in {}", self.text))
    }
}
