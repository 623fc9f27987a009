//! One connected client as the hub keeps it: its id, its outgoing queue and
//! the state the caller manages (subscriptions, auth binding).
//!
//! Subscriptions are opaque strings here: what a topic means, and who may
//! receive what, is the caller's business.

use super::error::HubError;
use super::outlet::Outlet;
use super::HubConfig;
use std::borrow::Borrow;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// What a caller may bind as a client's auth: anything comparable and cheap
/// to clone (an auth record id, an `Arc` of the auth record, an enum of
/// guest/user/superuser). The hub only stores and hands it back.
pub trait AuthKey: Clone + PartialEq + Send + Sync + 'static {}

impl<T: Clone + PartialEq + Send + Sync + 'static> AuthKey for T {}

/// A client's 40-character `[A-Za-z0-9]` id, sent to it in `PB_CONNECT` and
/// as the `id:` of every event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientId(Arc<str>);

impl ClientId {
    pub(crate) fn random() -> ClientId {
        use crate::security::random::{string_from, ALPHANUMERIC};
        ClientId(string_from(ALPHANUMERIC, 40).into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lets the registry be searched with the `&str` a request body carries.
impl Borrow<str> for ClientId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// One SSE message: the event name (for PocketBase, the subscription string
/// exactly as the client sent it) and the data (one line of JSON).
/// Both are shared, so broadcasting one record to many clients copies no text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub event: Arc<str>,
    pub data: Arc<str>,
}

impl Message {
    pub fn new(event: impl Into<Arc<str>>, data: impl Into<Arc<str>>) -> Message {
        Message {
            event: event.into(),
            data: data.into(),
        }
    }

    /// A heartbeat comment instead of an event (an empty event name, which
    /// no real event has): writing it tells whether the peer is still there.
    pub(crate) fn probe() -> Message {
        Message::new("", "")
    }

    pub(crate) fn is_probe(&self) -> bool {
        self.event.is_empty()
    }
}

/// The part of a client the caller manages, changed through `Hub::update`
/// so a check and a change happen under one lock (e.g. "refuse a different
/// auth, else store the new subscriptions").
#[derive(Debug, Clone)]
pub struct ClientState<A> {
    subscriptions: Arc<[Arc<str>]>,
    auth: Option<A>,
    remote_ip: Option<IpAddr>,
    max_subscriptions: usize,
    max_subscription_len: usize,
}

impl<A: AuthKey> ClientState<A> {
    fn new(remote_ip: Option<IpAddr>, config: &HubConfig) -> Self {
        ClientState {
            subscriptions: Arc::from(Vec::new()),
            auth: None,
            remote_ip,
            max_subscriptions: config.max_subscriptions,
            max_subscription_len: config.max_subscription_len,
        }
    }

    pub fn subscriptions(&self) -> &[Arc<str>] {
        &self.subscriptions
    }

    pub fn auth(&self) -> Option<&A> {
        self.auth.as_ref()
    }

    /// The address the stream was opened from, as the caller passed it.
    pub fn remote_ip(&self) -> Option<IpAddr> {
        self.remote_ip
    }

    /// Binds (or clears) the client's auth. Whether a change is allowed is
    /// the caller's rule; `Hub::update` lets it check first.
    pub fn set_auth(&mut self, auth: Option<A>) {
        self.auth = auth;
    }

    /// Replaces the whole set, as the reference's subscribe call does.
    /// Nothing changes unless every entry is valid.
    pub fn replace_subscriptions(&mut self, requested: Vec<String>) -> Result<(), HubError> {
        self.subscriptions =
            validated_subscriptions(requested, self.max_subscriptions, self.max_subscription_len)?;
        Ok(())
    }
}

/// Checks the reference's limits (count of the list as sent, length in
/// characters), refuses line breaks (a subscription becomes an SSE event
/// name), then drops empty entries and repeats as the reference's set does.
fn validated_subscriptions(
    requested: Vec<String>,
    max_count: usize,
    max_len: usize,
) -> Result<Arc<[Arc<str>]>, HubError> {
    if requested.len() > max_count {
        return Err(HubError::TooManySubscriptions { max: max_count });
    }
    for (index, topic) in requested.iter().enumerate() {
        if topic.chars().count() > max_len {
            return Err(HubError::SubscriptionTooLong {
                index,
                max: max_len,
            });
        }
        if !super::wire::is_valid_event_name(topic) {
            return Err(HubError::InvalidSubscription { index });
        }
    }
    let mut kept: Vec<Arc<str>> = Vec::with_capacity(requested.len());
    for topic in requested {
        if !topic.is_empty() && !kept.iter().any(|k| **k == *topic) {
            kept.push(topic.into());
        }
    }
    Ok(kept.into())
}

/// A snapshot of one client handed to a broadcast's decision function.
/// Taking it costs two reference-count bumps and a clone of the auth key.
#[derive(Debug, Clone)]
pub struct ClientView<A> {
    pub id: ClientId,
    pub remote_ip: Option<IpAddr>,
    pub subscriptions: Arc<[Arc<str>]>,
    pub auth: Option<A>,
}

impl<A> ClientView<A> {
    /// Exact match, like the reference's `HasSubscription`.
    pub fn has_subscription(&self, topic: &str) -> bool {
        self.subscriptions.iter().any(|s| **s == *topic)
    }
}

/// A registered client: its outgoing side (shared with the writers) and
/// the state the caller manages.
pub(crate) struct ClientEntry<A> {
    pub(crate) id: ClientId,
    pub(crate) outlet: Arc<Outlet>,
    state: Mutex<ClientState<A>>,
}

impl<A: AuthKey> ClientEntry<A> {
    pub(crate) fn new(
        id: ClientId,
        outlet: Arc<Outlet>,
        remote_ip: Option<IpAddr>,
        config: &HubConfig,
    ) -> Self {
        ClientEntry {
            id,
            outlet,
            state: Mutex::new(ClientState::new(remote_ip, config)),
        }
    }
}

impl<A: AuthKey> ClientEntry<A> {
    pub(crate) fn state(&self) -> MutexGuard<'_, ClientState<A>> {
        lock(&self.state)
    }

    pub(crate) fn view(&self) -> ClientView<A> {
        let state = self.state();
        ClientView {
            id: self.id.clone(),
            remote_ip: state.remote_ip,
            subscriptions: Arc::clone(&state.subscriptions),
            auth: state.auth.clone(),
        }
    }
}

/// Every critical section on client data leaves it consistent, so a poisoned
/// lock (a panic in a caller's closure) is safe to keep using.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> ClientState<String> {
        ClientState::new(None, &HubConfig::default())
    }

    fn strings(topics: &[&str]) -> Vec<String> {
        topics.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn client_ids_are_40_alphanumerics_and_unique() {
        let a = ClientId::random();
        assert_eq!(a.as_str().len(), 40);
        assert!(a.as_str().bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, ClientId::random());
    }

    #[test]
    fn subscriptions_are_replaced_as_a_whole_without_empties_or_repeats() {
        let mut s = state();
        s.replace_subscriptions(strings(&["a/*", "", "b/1", "a/*"]))
            .unwrap();
        let got: Vec<&str> = s.subscriptions().iter().map(|t| &**t).collect();
        assert_eq!(got, ["a/*", "b/1"]);
        s.replace_subscriptions(Vec::new()).unwrap();
        assert!(s.subscriptions().is_empty());
    }

    #[test]
    fn the_reference_subscription_limits_apply() {
        let mut s = state();
        let thousand: Vec<String> = (0..1000).map(|i| format!("c/{i}")).collect();
        s.replace_subscriptions(thousand.clone()).unwrap();
        let mut too_many = thousand;
        too_many.push("c/x".into());
        assert_eq!(
            s.replace_subscriptions(too_many),
            Err(HubError::TooManySubscriptions { max: 1000 })
        );
        assert_eq!(
            s.subscriptions().len(),
            1000,
            "a refused call changes nothing"
        );

        // The length is counted in characters, as the reference does.
        s.replace_subscriptions(vec!["é".repeat(2500)]).unwrap();
        assert_eq!(
            s.replace_subscriptions(vec!["ok".into(), "x".repeat(2501)]),
            Err(HubError::SubscriptionTooLong {
                index: 1,
                max: 2500
            })
        );
    }

    #[test]
    fn a_subscription_with_a_line_break_is_refused() {
        let mut s = state();
        assert_eq!(
            s.replace_subscriptions(strings(&["a/*", "a/*\ndata:forged"])),
            Err(HubError::InvalidSubscription { index: 1 })
        );
    }

    fn entry() -> ClientEntry<String> {
        let slots = super::super::slots::Slots::new(1, None);
        let id = ClientId::random();
        let outlet = Outlet::new(
            id.clone(),
            Box::new(Vec::new()),
            slots.take(None).unwrap(),
            super::super::outlet::Limits {
                max_messages: 1,
                max_bytes: 1 << 20,
            },
            0,
        );
        ClientEntry::new(id, Arc::new(outlet), None, &HubConfig::default())
    }

    #[test]
    fn a_view_matches_subscriptions_exactly() {
        let entry = entry();
        entry
            .state()
            .replace_subscriptions(strings(&["posts/*"]))
            .unwrap();
        let view = entry.view();
        assert!(view.has_subscription("posts/*"));
        assert!(!view.has_subscription("posts"));
    }
}
