//! The hub's failures, each carrying what a handler needs to pick a status
//! (404 unknown client, 400 bad subscriptions, 503 + Retry-After when full).

pub use super::slots::Refusal;
use super::wire::InvalidHeader;
use std::time::Duration;

/// A refused or failed request about a client's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubError {
    /// No open stream has this id (never had, or has closed). → 404
    UnknownClient,
    /// More subscriptions than the cap in one call. → 400
    TooManySubscriptions { max: usize },
    /// The subscription at `index` is longer than the cap. → 400
    SubscriptionTooLong { index: usize, max: usize },
    /// The subscription at `index` holds a line break, which would break
    /// the SSE framing once it is used as an event name. → 400
    InvalidSubscription { index: usize },
}

impl std::fmt::Display for HubError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HubError::UnknownClient => f.write_str("Missing or invalid client id."),
            HubError::TooManySubscriptions { max } => {
                write!(f, "at most {max} subscriptions are allowed")
            }
            HubError::SubscriptionTooLong { index, max } => {
                write!(f, "subscription {index} is longer than {max} characters")
            }
            HubError::InvalidSubscription { index } => {
                write!(f, "subscription {index} contains a line break")
            }
        }
    }
}

impl std::error::Error for HubError {}

/// Why `Hub::send` queued nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// No open stream has this id.
    UnknownClient,
    /// The event name holds a line break.
    InvalidEventName,
    /// The client's queue was full, so the client was dropped (the SDK
    /// reconnects and resubscribes).
    ClientDropped,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::UnknownClient => f.write_str("no such realtime client"),
            SendError::InvalidEventName => f.write_str("the event name contains a line break"),
            SendError::ClientDropped => {
                f.write_str("the client could not keep up and was disconnected")
            }
        }
    }
}

impl std::error::Error for SendError {}

/// A refusal with the wait to advertise in `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectRefused {
    pub reason: Refusal,
    pub retry_after: Duration,
}

impl ConnectRefused {
    /// Whole seconds for the `Retry-After` header (at least 1).
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_secs().max(1)
    }

    /// The sentence for the 503 body.
    pub fn message(&self) -> &'static str {
        match self.reason {
            Refusal::TooManyClients => "Too many realtime connections, try again later.",
            Refusal::TooManyFromAddress => {
                "Too many realtime connections from this address, try again later."
            }
            Refusal::ShuttingDown => "The server is shutting down.",
        }
    }
}

impl std::fmt::Display for ConnectRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for ConnectRefused {}

/// Why no stream was opened. In every case the hub holds nothing for it.
#[derive(Debug)]
pub enum ConnectError {
    /// A cap or shutdown refused it; `Hub::connect` has already answered 503.
    Refused(ConnectRefused),
    /// A caller-supplied header would break the response; nothing was written.
    InvalidHeader(InvalidHeader),
    /// Writing the head failed (the client left) or no sender thread could
    /// be started.
    Io(std::io::Error),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Refused(refused) => refused.fmt(f),
            ConnectError::InvalidHeader(header) => header.fmt(f),
            ConnectError::Io(e) => write!(f, "opening the event stream failed: {e}"),
        }
    }
}

impl std::error::Error for ConnectError {}

impl From<ConnectRefused> for ConnectError {
    fn from(refused: ConnectRefused) -> Self {
        ConnectError::Refused(refused)
    }
}
