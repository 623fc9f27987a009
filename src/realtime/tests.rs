//! The hub end to end: a real tiny_http server on 127.0.0.1:0, requests
//! turned into raw writers exactly as the HTTP layer will, and clients that
//! are plain TCP sockets reading the chunked stream byte by byte.

use super::*;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::sync::Mutex;

const READ_TIMEOUT: Duration = Duration::from_secs(3);

fn quick_config() -> HubConfig {
    HubConfig {
        idle_timeout: Duration::from_secs(30),
        max_lifetime: Duration::from_secs(60),
        ..HubConfig::default()
    }
}

/// A tiny_http server whose requests the test accepts one at a time.
struct TestServer {
    server: tiny_http::Server,
    hub: Hub<String>,
}

impl TestServer {
    fn start(hub: &Hub<String>) -> TestServer {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        TestServer {
            server,
            hub: hub.clone(),
        }
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.server.server_addr().to_ip().unwrap()
    }

    /// Connects a socket, sends `GET /api/realtime`, and hands the request
    /// to the hub as a worker would.
    fn open_client(&self) -> (TestClient, Result<ClientId, ConnectError>) {
        let client = TestClient::connect(self.addr());
        let outcome = self.accept_next();
        (client, outcome)
    }

    fn accept_next(&self) -> Result<ClientId, ConnectError> {
        let request = self
            .server
            .recv_timeout(READ_TIMEOUT)
            .unwrap()
            .expect("the request reached the server");
        assert_eq!(request.url(), "/api/realtime");
        let ip = request.remote_addr().map(|a| a.ip());
        self.hub.connect(
            request.into_writer(),
            ip,
            &[("Access-Control-Allow-Origin", "*")],
        )
    }

    /// An opened client that has read its head and `PB_CONNECT`.
    fn connected_client(&self) -> (TestClient, ClientId) {
        let (mut client, outcome) = self.open_client();
        let id = outcome.expect("the stream opened");
        client.read_head();
        let connect = client.read_event().unwrap();
        assert_eq!(connect.event, "PB_CONNECT");
        (client, id)
    }
}

#[derive(Debug, PartialEq)]
struct Event {
    id: String,
    event: String,
    data: String,
}

/// One end of an event stream, parsing HTTP chunks and SSE fields.
struct TestClient {
    reader: BufReader<TcpStream>,
}

impl TestClient {
    fn connect(addr: std::net::SocketAddr) -> TestClient {
        let mut socket = TcpStream::connect(addr).unwrap();
        socket.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        socket.write_all(Self::REQUEST).unwrap();
        TestClient {
            reader: BufReader::new(socket),
        }
    }

    const REQUEST: &'static [u8] =
        b"GET /api/realtime HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n";

    fn socket(&mut self) -> &mut TcpStream {
        self.reader.get_mut()
    }

    fn read_head(&mut self) -> String {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            assert!(!line.is_empty(), "connection closed inside the head");
            head.push_str(&line);
            if line == "\r\n" {
                return head;
            }
        }
    }

    /// The next chunk's payload; empty for the terminating chunk.
    fn read_chunk(&mut self) -> std::io::Result<Vec<u8>> {
        let mut size_line = String::new();
        self.reader.read_line(&mut size_line)?;
        let size = usize::from_str_radix(size_line.trim_end(), 16)
            .map_err(|_| io::Error::other(format!("bad chunk size {size_line:?}")))?;
        let mut payload = vec![0; size];
        self.reader.read_exact(&mut payload)?;
        let mut crlf = [0; 2];
        self.reader.read_exact(&mut crlf)?;
        assert_eq!(&crlf, b"\r\n", "chunk not followed by CRLF");
        Ok(payload)
    }

    /// The next event, skipping heartbeat comments; `None` at the end of
    /// the stream.
    fn read_event(&mut self) -> Option<Event> {
        loop {
            let chunk = self.read_chunk().expect("a chunk");
            if chunk.is_empty() {
                return None;
            }
            let text = String::from_utf8(chunk).unwrap();
            if text.starts_with(':') {
                continue;
            }
            return Some(parse_event(&text));
        }
    }

    fn expect_end_of_stream(&mut self) {
        assert_eq!(self.read_event(), None, "expected the terminating chunk");
    }
}

fn parse_event(text: &str) -> Event {
    let body = text
        .strip_suffix("\n\n")
        .expect("an SSE message ends with a blank line");
    let mut event = Event {
        id: String::new(),
        event: String::new(),
        data: String::new(),
    };
    for line in body.split('\n') {
        let (field, value) = line.split_once(':').unwrap();
        match field {
            "id" => event.id = value.to_string(),
            "event" => event.event = value.to_string(),
            "data" => event.data = value.to_string(),
            other => panic!("unexpected field {other}"),
        }
    }
    event
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + READ_TIMEOUT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// An in-memory stream for tests that need no socket.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn memory_client(hub: &Hub<String>) -> (ClientId, SharedBuf) {
    let buf = SharedBuf::default();
    let id = hub.connect(Box::new(buf.clone()), None, &[]).unwrap();
    (id, buf)
}

// ---------------------------------------------------------------------------
// opening and delivering

#[test]
fn a_stream_opens_with_the_sse_head_and_pb_connect_carrying_the_client_id() {
    let hub = Hub::new(quick_config());
    let server = TestServer::start(&hub);
    let (mut client, outcome) = server.open_client();
    let id = outcome.unwrap();

    let head = client.read_head();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    for line in [
        "Content-Type: text/event-stream",
        "Cache-Control: no-store",
        "X-Accel-Buffering: no",
        "Transfer-Encoding: chunked",
        "Access-Control-Allow-Origin: *",
    ] {
        assert!(head.contains(line), "missing {line} in {head}");
    }
    let connect = client.read_event().unwrap();
    assert_eq!(connect.event, "PB_CONNECT");
    assert_eq!(connect.id, id.as_str());
    assert_eq!(connect.data, format!(r#"{{"clientId":"{id}"}}"#));
    assert_eq!(hub.client_count(), 1);
    assert_eq!(hub.open_streams(), 1);
}

#[test]
fn messages_arrive_in_order_one_chunk_each_with_the_client_id() {
    let hub = Hub::new(quick_config());
    let server = TestServer::start(&hub);
    let (mut client, id) = server.connected_client();
    for i in 0..50 {
        hub.send(id.as_str(), "posts/*", format!(r#"{{"n":{i}}}"#))
            .unwrap();
    }
    for i in 0..50 {
        let event = client.read_event().unwrap();
        assert_eq!(event.id, id.as_str());
        assert_eq!(event.event, "posts/*");
        assert_eq!(event.data, format!(r#"{{"n":{i}}}"#));
    }
}

#[test]
fn a_broadcast_delivers_what_the_caller_decides_per_client() {
    let hub = Hub::new(quick_config());
    let server = TestServer::start(&hub);
    let (mut posts, posts_id) = server.connected_client();
    let (mut other, other_id) = server.connected_client();
    hub.set_subscriptions(posts_id.as_str(), vec!["posts/*".into()])
        .unwrap();
    hub.set_subscriptions(other_id.as_str(), vec!["tags/*".into()])
        .unwrap();

    let data: Arc<str> = Arc::from(r#"{"action":"create"}"#);
    let report = hub.broadcast(|client| {
        client
            .subscriptions
            .iter()
            .filter(|topic| topic.starts_with("posts/"))
            .map(|topic| Message::new(Arc::clone(topic), Arc::clone(&data)))
            .collect()
    });
    assert_eq!(report.clients, 2);
    assert_eq!(report.queued, 1);
    hub.send(other_id.as_str(), "marker", "{}").unwrap();

    let got = posts.read_event().unwrap();
    assert_eq!((got.event.as_str(), got.data.as_str()), ("posts/*", &*data));
    assert_eq!(
        other.read_event().unwrap().event,
        "marker",
        "the tags subscriber got nothing before the marker"
    );
}

// ---------------------------------------------------------------------------
// slow, gone and dropped clients

#[test]
fn a_stalled_client_is_dropped_while_another_keeps_receiving() {
    let hub = Hub::new(quick_config());
    let server = TestServer::start(&hub);
    let (stalled, stalled_id) = server.connected_client();
    let (mut healthy, healthy_id) = server.connected_client();

    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        while seen.len() < 200 {
            seen.push(healthy.read_event().unwrap().data);
        }
        (healthy, seen)
    });

    // The stalled client never reads: once the socket buffers are full its
    // writer blocks, its backlog passes the byte limit, and it is dropped.
    // The healthy one gets the same burst of 200 and keeps up.
    let big: Arc<str> = Arc::from(format!("\"{}\"", "x".repeat(256 * 1024)));
    let mut outcome = Ok(());
    for i in 0..200 {
        if outcome.is_ok() {
            outcome = hub.send(stalled_id.as_str(), "big", Arc::clone(&big));
        }
        hub.send(healthy_id.as_str(), "small", i.to_string())
            .expect("the healthy client is never dropped");
    }
    assert_eq!(outcome, Err(SendError::ClientDropped));
    assert!(hub.client(stalled_id.as_str()).is_none());
    assert_eq!(hub.client_count(), 1);

    let (_healthy, seen) = reader.join().unwrap();
    let expected: Vec<String> = (0..200).map(|i| i.to_string()).collect();
    assert_eq!(seen, expected);

    // Its writer still holds the socket while stuck writing; once the peer
    // goes away the write fails and the slot comes back.
    drop(stalled);
    wait_until("the stuck writer lets go", || hub.open_streams() == 1);
}

#[test]
fn a_client_that_goes_away_is_dropped_at_the_next_writes_and_frees_its_slot() {
    let hub = Hub::new(quick_config());
    let server = TestServer::start(&hub);
    let (client, id) = server.connected_client();
    drop(client);
    // The first write after the peer closed may still succeed (it provokes
    // the reset); a later one fails.
    wait_until("the client is dropped", || {
        let _ = hub.send(id.as_str(), "ping", "{}");
        hub.client_count() == 0 && hub.open_streams() == 0
    });
}

#[test]
fn disconnect_ends_the_stream_and_frees_the_slot() {
    let hub = Hub::new(quick_config());
    let server = TestServer::start(&hub);
    let (mut client, id) = server.connected_client();
    hub.set_subscriptions(id.as_str(), vec!["a/*".into()])
        .unwrap();
    assert!(hub.disconnect(id.as_str()));
    assert_eq!(hub.client_count(), 0);
    client.expect_end_of_stream();
    wait_until("the slot is free", || hub.open_streams() == 0);
    assert!(!hub.disconnect(id.as_str()));
    assert_eq!(hub.subscriptions(id.as_str()), Err(HubError::UnknownClient));
    assert_eq!(
        hub.send(id.as_str(), "a/*", "{}"),
        Err(SendError::UnknownClient)
    );
}

#[test]
fn disconnect_where_ends_every_stream_bound_to_an_auth() {
    let hub = Hub::new(quick_config());
    let (alice_1, _) = memory_client(&hub);
    let (alice_2, _) = memory_client(&hub);
    let (bob, _) = memory_client(&hub);
    hub.set_auth(alice_1.as_str(), Some("alice".into()))
        .unwrap();
    hub.set_auth(alice_2.as_str(), Some("alice".into()))
        .unwrap();
    hub.set_auth(bob.as_str(), Some("bob".into())).unwrap();
    let ended = hub.disconnect_where(|c| c.auth.as_deref() == Some("alice"));
    assert_eq!(ended, 2);
    let left: Vec<ClientId> = hub.clients().into_iter().map(|c| c.id).collect();
    assert_eq!(left, [bob]);
}

// ---------------------------------------------------------------------------
// caps

#[test]
fn the_cap_refuses_the_next_client_with_503_and_retry_after() {
    let hub = Hub::new(HubConfig {
        max_clients: 2,
        retry_after: Duration::from_secs(7),
        ..quick_config()
    });
    let server = TestServer::start(&hub);
    let (_a, a_id) = server.connected_client();
    let (_b, _) = server.connected_client();

    let (mut third, outcome) = server.open_client();
    match outcome {
        Err(ConnectError::Refused(refused)) => {
            assert_eq!(refused.reason, Refusal::TooManyClients);
            assert_eq!(refused.retry_after_secs(), 7);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let head = third.read_head();
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert!(head.contains("Retry-After: 7\r\n"), "{head}");
    assert!(
        head.contains("Access-Control-Allow-Origin: *\r\n"),
        "{head}"
    );
    assert_eq!(hub.client_count(), 2);

    hub.disconnect(a_id.as_str());
    wait_until("a slot is free", || hub.open_streams() == 1);
    let (_c, _) = server.connected_client();
}

#[test]
fn peers_that_went_away_free_their_slots_by_the_heartbeats_alone() {
    let hub = Hub::new(HubConfig {
        max_clients: 2,
        heartbeat: Some(Duration::from_millis(50)),
        ..quick_config()
    });
    let server = TestServer::start(&hub);
    let (gone_a, _) = server.connected_client();
    let (gone_b, _) = server.connected_client();
    // Both leave without a word, and nothing is sent to them: the
    // heartbeats draw their resets, the next ones fail.
    drop(gone_a);
    drop(gone_b);
    wait_until("both slots are free", || hub.open_streams() == 0);
    assert_eq!(hub.client_count(), 0);
    let (_c, outcome) = server.open_client();
    assert!(outcome.is_ok(), "expected a slot, got {outcome:?}");
}

#[test]
fn a_heartbeat_is_a_comment_line_that_leaves_the_events_intact() {
    let hub = Hub::new(HubConfig {
        heartbeat: Some(Duration::from_millis(40)),
        ..quick_config()
    });
    let (id, buf) = memory_client(&hub);
    wait_until("a heartbeat is written", || {
        buf.text()
            .contains(std::str::from_utf8(wire::HEARTBEAT_CHUNK).unwrap())
    });
    hub.send(id.as_str(), "e", "1").unwrap();
    wait_until("the event is written", || buf.text().contains("data:1\n"));
    // No blank line anywhere but at the end of each event: a client that
    // splits the body at blank lines sees PB_CONNECT and the event only.
    let body: String = buf
        .text()
        .split("\r\n")
        .skip_while(|line| !line.is_empty())
        .skip(1)
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, payload)| payload)
        .collect();
    let events: Vec<&str> = body.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.len(), 2, "{body:?}");
    assert!(events[1].contains("event:e\ndata:1"), "{body:?}");
}

#[test]
fn a_write_stuck_on_a_peer_that_stopped_reading_does_not_hold_up_the_others() {
    // One writer only: without the watch, the stuck write would hold
    // every other client until the peer reads.
    let hub = Hub::new(HubConfig {
        writers: 1,
        stall_timeout: Duration::from_millis(200),
        ..quick_config()
    });
    let server = TestServer::start(&hub);
    let (stalled, stalled_id) = server.connected_client();
    let (mut healthy, healthy_id) = server.connected_client();
    let big: Arc<str> = Arc::from(format!("\"{}\"", "x".repeat(32 << 20)));
    hub.send(stalled_id.as_str(), "big", big).unwrap();
    wait_until("the stalled client is let go", || {
        hub.client(stalled_id.as_str()).is_none()
    });
    hub.send(healthy_id.as_str(), "small", "1").unwrap();
    assert_eq!(healthy.read_event().unwrap().data, "1");
    drop(stalled);
    wait_until("the stuck socket is let go", || hub.open_streams() == 1);
}

#[test]
fn the_address_cap_applies_only_to_addresses_the_caller_vouches_for() {
    let hub: Hub<String> = Hub::new(HubConfig {
        max_clients_per_ip: Some(1),
        ..quick_config()
    });
    let home: IpAddr = "203.0.113.5".parse().unwrap();
    let first = hub.reserve(Some(home)).unwrap();
    let refused = hub.reserve(Some(home)).err().unwrap();
    assert_eq!(refused.reason, Refusal::TooManyFromAddress);
    assert!(
        hub.reserve(None).is_ok(),
        "an unvouched address is not capped"
    );
    drop(first);
    assert!(
        hub.reserve(Some(home)).is_ok(),
        "a dropped reservation frees its slot"
    );
}

// ---------------------------------------------------------------------------
// timers and shutdown

#[test]
fn an_idle_stream_ends_with_the_last_chunk_and_the_connection_serves_the_next_request() {
    let hub = Hub::new(HubConfig {
        idle_timeout: Duration::from_millis(150),
        ..quick_config()
    });
    let server = TestServer::start(&hub);
    let (mut client, _) = server.connected_client();
    let started = Instant::now();
    client.expect_end_of_stream();
    assert!(started.elapsed() >= Duration::from_millis(100));
    wait_until("the idle client is gone", || {
        hub.client_count() == 0 && hub.open_streams() == 0
    });

    // Keep-alive: the EventSource can reconnect over the same connection.
    client.socket().write_all(TestClient::REQUEST).unwrap();
    let second = server.accept_next().unwrap();
    client.read_head();
    assert_eq!(client.read_event().unwrap().id, second.as_str());
}

#[test]
fn sending_a_message_postpones_the_idle_timeout() {
    let hub = Hub::new(HubConfig {
        idle_timeout: Duration::from_millis(400),
        ..quick_config()
    });
    let (id, buf) = memory_client(&hub);
    let started = Instant::now();
    // Ticks far more often than the timeout, so a loaded machine's late
    // wake-ups do not turn this into an idle stream.
    while started.elapsed() < Duration::from_millis(600) {
        hub.send(id.as_str(), "tick", "{}").unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        hub.client(id.as_str()).is_some(),
        "a busy stream is not idle"
    );
    wait_until("the stream idles out", || hub.open_streams() == 0);
    assert!(buf.text().ends_with("0\r\n\r\n"));
}

#[test]
fn shutdown_ends_every_stream_and_refuses_new_ones() {
    let hub = Hub::new(quick_config());
    let server = TestServer::start(&hub);
    let (mut a, _) = server.connected_client();
    let (mut b, _) = server.connected_client();
    assert_eq!(hub.shutdown(Duration::from_secs(2)), 0);
    a.expect_end_of_stream();
    b.expect_end_of_stream();
    assert_eq!(hub.client_count(), 0);

    let (mut late, outcome) = server.open_client();
    assert!(matches!(
        outcome,
        Err(ConnectError::Refused(ConnectRefused {
            reason: Refusal::ShuttingDown,
            ..
        }))
    ));
    assert!(late.read_head().starts_with("HTTP/1.1 503"));
}

#[test]
fn a_reservation_opened_after_shutdown_began_is_refused() {
    let hub: Hub<String> = Hub::new(quick_config());
    let reservation = hub.reserve(None).unwrap();
    let shutdown = {
        let hub = hub.clone();
        std::thread::spawn(move || hub.shutdown(Duration::from_secs(2)))
    };
    wait_until("shutdown has begun", || hub.reserve(None).is_err());
    let buf = SharedBuf::default();
    let outcome = reservation.open(Box::new(buf.clone()), &[]);
    assert!(matches!(outcome, Err(ConnectError::Refused(_))));
    assert!(buf.text().starts_with("HTTP/1.1 503"));
    assert_eq!(shutdown.join().unwrap(), 0);
    assert_eq!(hub.client_count(), 0);
}

// ---------------------------------------------------------------------------
// client state

#[test]
fn subscription_limits_and_unknown_clients() {
    let hub = Hub::new(quick_config());
    let (id, _buf) = memory_client(&hub);
    let thousand: Vec<String> = (0..1000).map(|i| format!("posts/{i}")).collect();
    hub.set_subscriptions(id.as_str(), thousand.clone())
        .unwrap();
    assert_eq!(hub.subscriptions(id.as_str()).unwrap().len(), 1000);

    let mut too_many = thousand;
    too_many.push("posts/x".into());
    assert_eq!(
        hub.set_subscriptions(id.as_str(), too_many),
        Err(HubError::TooManySubscriptions { max: 1000 })
    );
    assert_eq!(
        hub.set_subscriptions(id.as_str(), vec!["p".repeat(2501)]),
        Err(HubError::SubscriptionTooLong {
            index: 0,
            max: 2500
        })
    );
    assert_eq!(hub.subscriptions(id.as_str()).unwrap().len(), 1000);
    assert_eq!(
        hub.set_subscriptions("no-such-client", vec![]),
        Err(HubError::UnknownClient)
    );
    assert_eq!(hub.auth("no-such-client"), Err(HubError::UnknownClient));
}

#[test]
fn an_auth_once_bound_can_be_guarded_against_change_in_one_step() {
    let hub: Hub<String> = Hub::new(quick_config());
    let (id, _buf) = memory_client(&hub);
    // What the lead's POST /api/realtime does: refuse a different auth,
    // else bind it and store the subscriptions, under one lock.
    let subscribe = |auth: Option<&str>, topics: &[&str]| {
        hub.update(id.as_str(), |state| {
            if state.auth().is_some() && state.auth().map(String::as_str) != auth {
                return Err("403");
            }
            state.set_auth(auth.map(String::from));
            let topics = topics.iter().map(|t| t.to_string()).collect();
            state.replace_subscriptions(topics).map_err(|_| "400")
        })
        .unwrap()
    };
    assert_eq!(subscribe(None, &["a/*"]), Ok(()));
    assert_eq!(subscribe(Some("user1"), &["a/*"]), Ok(()));
    assert_eq!(subscribe(Some("user2"), &[]), Err("403"));
    assert_eq!(subscribe(None, &[]), Err("403"));
    assert_eq!(hub.auth(id.as_str()).unwrap().as_deref(), Some("user1"));
    assert_eq!(hub.subscriptions(id.as_str()).unwrap().len(), 1);
}

#[test]
fn an_event_name_with_a_line_break_is_never_written() {
    let hub = Hub::new(quick_config());
    let (id, buf) = memory_client(&hub);
    assert_eq!(
        hub.send(id.as_str(), "a\ndata:forged", "{}"),
        Err(SendError::InvalidEventName)
    );
    let report = hub.broadcast(|_| vec![Message::new("b\r", "{}")]);
    assert_eq!(report.invalid, 1);
    assert!(!buf.text().contains("forged"));
}

#[test]
fn a_bad_extra_header_answers_500_and_registers_nothing() {
    let hub: Hub<String> = Hub::new(quick_config());
    let buf = SharedBuf::default();
    let outcome = hub.connect(Box::new(buf.clone()), None, &[("X-Bad", "a\r\nb: c")]);
    assert!(matches!(outcome, Err(ConnectError::InvalidHeader(_))));
    assert!(buf.text().starts_with("HTTP/1.1 500"));
    assert_eq!(hub.client_count(), 0);
    assert_eq!(hub.open_streams(), 0);
}

// ---------------------------------------------------------------------------
// failures inside the hub

/// Writes normally until it is asked to write a message containing "boom".
struct PanicsOnBoom(SharedBuf);

impl Write for PanicsOnBoom {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.windows(4).any(|w| w == b"boom") {
            panic!("test: the writer blew up");
        }
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_panicking_write_is_cleaned_up_and_the_hub_keeps_working() {
    let hub = Hub::new(quick_config());
    let buf = SharedBuf::default();
    let id = hub
        .connect(Box::new(PanicsOnBoom(buf.clone())), None, &[])
        .unwrap();
    hub.send(id.as_str(), "e", "\"boom\"").unwrap();
    wait_until("the panicked client is cleaned up", || {
        hub.client_count() == 0 && hub.open_streams() == 0
    });
    assert!(
        buf.text().ends_with("0\r\n\r\n"),
        "the stream is still ended"
    );

    let (other, other_buf) = memory_client(&hub);
    hub.send(other.as_str(), "e", "\"fine\"").unwrap();
    wait_until("the next client receives", || {
        other_buf.text().contains("data:\"fine\"")
    });
}

#[test]
fn dropping_the_last_hub_handle_ends_the_streams() {
    let hub: Hub<String> = Hub::new(quick_config());
    let (_, buf) = memory_client(&hub);
    drop(hub);
    wait_until("the stream ends", || buf.text().ends_with("0\r\n\r\n"));
}

// ---------------------------------------------------------------------------
// measurement (run by hand: `cargo test --lib realtime::tests::measure -- --ignored --nocapture`)

fn resident_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
#[ignore = "a measurement, not a check"]
fn measure_idle_client_memory() {
    const CLIENTS: usize = 1000;
    let hub = Hub::new(HubConfig {
        max_clients: CLIENTS,
        max_clients_per_ip: None,
        ..quick_config()
    });
    let server = TestServer::start(&hub);
    // Warm up allocator arenas and the server's thread pool first.
    let warm: Vec<_> = (0..20).map(|_| server.connected_client()).collect();
    drop(warm);
    wait_until("warm-up clients are gone", || {
        let _ = hub.broadcast(|c| vec![Message::new("p", c.id.as_str())]);
        hub.open_streams() == 0
    });
    let before = resident_kib();
    let clients: Vec<_> = (0..CLIENTS).map(|_| server.connected_client()).collect();
    std::thread::sleep(Duration::from_millis(500));
    let after = resident_kib();
    println!(
        "{CLIENTS} idle clients: RSS {before} KiB -> {after} KiB, {:.1} KiB per client \
         (tiny_http connection thread + state; client sockets are in the kernel)",
        (after.saturating_sub(before)) as f64 / CLIENTS as f64
    );
    assert_eq!(hub.client_count(), CLIENTS);
    drop(clients);
}
