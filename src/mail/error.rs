//! Why a mail was not sent. Messages name the SMTP stage and quote the
//! server's reply; they never contain the password or the AUTH payload.

use std::fmt;

#[derive(Debug)]
pub enum SmtpError {
    /// The configuration cannot work (empty host, port out of range, bad
    /// local name, unknown auth method).
    InvalidConfig(String),
    /// TLS is needed but the server offers no way to it: credentials for a
    /// host other than loopback, or a server that demands TLS, on a clear
    /// connection whose server did not advertise STARTTLS.
    TlsRequired(String),
    /// The TLS handshake failed: an untrusted or expired certificate, one
    /// that does not name the configured host, or a TLS protocol error.
    /// Never retried by falling back to clear text.
    Tls(String),
    /// Refused before connecting: no recipients, a malformed address, or CR/LF
    /// in an address, name or subject (header injection).
    InvalidMessage(String),
    /// Connecting, reading or writing failed (including timeouts).
    Io {
        stage: &'static str,
        source: std::io::Error,
    },
    /// The server answered a command with an unexpected reply code.
    Rejected {
        stage: String,
        code: u16,
        message: String,
    },
    /// The server's reply was not valid SMTP (bad code, endless reply, closed).
    Protocol(String),
}

impl SmtpError {
    /// Whether retrying the same mail later could help (4xx replies, I/O).
    pub fn is_transient(&self) -> bool {
        match self {
            SmtpError::Io { .. } => true,
            SmtpError::Rejected { code, .. } => (400..500).contains(code),
            _ => false,
        }
    }
}

impl fmt::Display for SmtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SmtpError::InvalidConfig(why) => write!(f, "invalid SMTP configuration: {why}"),
            SmtpError::TlsRequired(why) => write!(f, "SMTP needs TLS here: {why}"),
            SmtpError::Tls(why) => write!(f, "SMTP TLS handshake failed: {why}"),
            SmtpError::InvalidMessage(why) => write!(f, "invalid mail message: {why}"),
            SmtpError::Io { stage, source } => write!(f, "SMTP {stage} failed: {source}"),
            SmtpError::Rejected {
                stage,
                code,
                message,
            } => write!(f, "SMTP server rejected {stage}: {code} {message}"),
            SmtpError::Protocol(why) => write!(f, "SMTP protocol error: {why}"),
        }
    }
}

impl std::error::Error for SmtpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SmtpError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
