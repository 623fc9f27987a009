//! What a handler answers. `Reply` is plain data so handlers can be tested
//! without sockets; the server turns it into bytes and adds the headers
//! every response carries.

use crate::error::ApiError;
use crate::json::WriteJson;
use serde_json::Value;
use std::borrow::Cow;

/// A response header: most names and many values are fixed text, which
/// needs no copy.
pub type HeaderPair = (Cow<'static, str>, Cow<'static, str>);

/// A finished response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<HeaderPair>,
    pub body: Vec<u8>,
}

impl Reply {
    /// 200 with a JSON body.
    pub fn json(value: &Value) -> Reply {
        Reply::json_status(200, value)
    }

    pub fn json_status(status: u16, value: &Value) -> Reply {
        Reply::json_of(status, value)
    }

    /// `status` with the JSON text of `value`, written straight into the
    /// body.
    pub fn json_of<T: WriteJson + ?Sized>(status: u16, value: &T) -> Reply {
        // Room for a typical record up front rather than growing from 128
        // bytes by doubling. Just under 1 KiB: glibc serves that size from
        // its per-thread cache, while a request of 1 KiB or more makes it
        // sweep its fast bins first, on every reply.
        let mut body = Vec::with_capacity(1000);
        value.write_json(&mut body);
        Reply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body,
        }
    }

    /// 204 with no body.
    pub fn no_content() -> Reply {
        Reply {
            status: 204,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn error(err: &ApiError) -> Reply {
        let mut reply = Reply::json_status(err.status(), &err.to_json());
        if let Some(secs) = err.retry_after() {
            reply
                .headers
                .push(("Retry-After".into(), secs.to_string().into()));
        }
        reply
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers
            .push((name.to_string().into(), value.to_string().into()));
        self
    }
}

/// Work a handler hands back to run off the worker pool (password hashing),
/// answering the request when it is done.
pub type Deferred = Box<dyn FnOnce() -> Result<Reply, ApiError> + Send>;

/// Takes over a connection whose request has been accepted for streaming:
/// it gets the raw socket writer (nothing written yet) and the headers
/// every response carries (security, CORS), and writes the response itself.
/// It must not block for long: it runs on the worker.
pub type TakeOver = Box<dyn FnOnce(Box<dyn std::io::Write + Send>, &[(&str, &str)]) + Send>;

/// A handler's answer: now, later from another thread, or a stream that
/// outlives the request (the connection is handed over and the worker
/// goes back to the pool).
pub enum Outcome {
    Now(Reply),
    Later(Deferred),
    Stream(TakeOver),
}

impl From<Reply> for Outcome {
    fn from(reply: Reply) -> Outcome {
        Outcome::Now(reply)
    }
}
