//! Outgoing mail: a blocking SMTP client over `std::net::TcpStream`, with
//! TLS through rustls (implicit TLS for `tls: true`, STARTTLS whenever the
//! server offers it), and the RFC 5322 / MIME message it sends
//! (multipart/alternative text + HTML, quoted-printable bodies, RFC 2047
//! subjects and names).
//!
//! Domain-free: it knows nothing of templates, records or settings storage;
//! callers hand in a [`SmtpConfig`] and a [`Message`], directly ([`send`]) or
//! through the [`Outbox`] thread that keeps SMTP off the request workers. It must never put a
//! credential in an error message, never send credentials in clear text to
//! a host other than loopback, never skip certificate or host name
//! verification, never fall back to clear text after a failed STARTTLS, and
//! never let CR/LF from an address, name or subject reach the wire (header
//! injection).

mod error;
mod message;
pub mod outbox;
mod plain_text;
mod smtp;
pub mod templates;
mod tls;

pub use error::SmtpError;
pub use message::{render_message, Address, Message};
pub use outbox::{Outbox, Outgoing};
pub use plain_text::html_to_text;
pub use smtp::{send, SmtpConfig};
pub use tls::{tls_client_config, tls_client_config_with_roots, TrustError};
