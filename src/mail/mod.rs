//! Outgoing mail: a blocking SMTP client over `std::net::TcpStream` and the
//! RFC 5322 / MIME message it sends (multipart/alternative text + HTML,
//! quoted-printable bodies, RFC 2047 subjects and names).
//!
//! Domain-free: it knows nothing of templates, records or settings storage;
//! callers hand in a [`SmtpConfig`] and a [`Message`]. It must never put a
//! credential in an error message, never send credentials in clear text to
//! a host other than loopback, and never let CR/LF from an address, name or
//! subject reach the wire (header injection).
//!
//! Known gap: no TLS yet (no TLS crate in the build). `tls: true` (implicit
//! TLS, port 465) fails with [`SmtpError::TlsUnsupported`] before connecting;
//! STARTTLS offered by a server is not used, so a server that insists on it
//! (`530 ... STARTTLS`) and any AUTH to a non-loopback host fail with the same
//! error. The auth work item that adds TLS closes this gap.

mod error;
mod message;
mod plain_text;
mod smtp;
pub mod templates;
mod tls;

pub use error::SmtpError;
pub use message::{render_message, Address, Message};
pub use plain_text::html_to_text;
pub use smtp::{send, SmtpConfig};
pub use tls::{tls_client_config, tls_client_config_with_roots, TrustError};
