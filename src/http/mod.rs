//! HTTP: the server (acceptor, worker pool, panics, common headers), the
//! router, and the request, body and response types handlers use.

pub mod admission;
pub mod body;
pub mod client_ip;
pub mod ratelimit;
pub mod request;
pub mod response;
pub mod router;
pub mod server;
pub mod static_files;

pub use request::{Method, Req};
pub use response::{Outcome, Reply};
