//! Realtime as a subscriber meets it: raw event streams over TCP against the
//! real binary, on a fresh data dir (`Server::start`) with a `notes`
//! collection and a user, alice, who owns three notes; rules are set per test
//! through the collections API before anyone subscribes.
//!
//! Each stream is read by a background thread that parses HTTP chunks and
//! SSE fields into events, so a test can wait for what must arrive and watch
//! a quiet period for what must not.

mod common;

use common::{Response, Server, TempDir};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

const ALICE: (&str, &str) = ("alice@example.com", "alice-pass-123");
/// The longest wait for an event that must arrive.
const ARRIVES: Duration = Duration::from_secs(5);
/// How long to watch for an event that must not arrive.
const QUIET: Duration = Duration::from_millis(400);

// ---------------------------------------------------------------------------
// harness

/// The `notes` collection's fields; `hidden` names the ones to hide.
fn notes_fields(hidden: &[&str]) -> Value {
    let field = |name: &str, kind: &str| json!({"name": name, "type": kind, "hidden": hidden.contains(&name)});
    let mut title = field("title", "text");
    title["required"] = json!(true);
    let mut owner = field("owner", "relation");
    owner["collectionId"] = json!("_pb_users_auth_");
    owner["maxSelect"] = json!(1);
    json!([
        title,
        field("views", "number"),
        field("meta", "json"),
        owner
    ])
}

/// A fresh server started with `flags`, holding `notes` (open list and view
/// rules, sign-in to create, superusers only to update and delete; `notes`
/// overrides any of these keys) and alice with three notes (`note 1..3`,
/// views 10, 20, 30, meta `{"n": i}`).
fn serve(tmp: &TempDir, notes: Value, flags: &[&str]) -> Server {
    let server = Server::start_with(tmp, flags);
    let su = server.superuser_token();
    let mut body = json!({
        "name": "notes", "type": "base", "listRule": "", "viewRule": "",
        "createRule": "@request.auth.id != ''", "fields": notes_fields(&[]),
    });
    for (key, value) in notes.as_object().into_iter().flatten() {
        body[key] = value.clone();
    }
    let r = server.request("POST", "/api/collections", Some(&su), Some(&body));
    assert_eq!(r.status, 200, "notes: {}", String::from_utf8_lossy(&r.body));
    let alice =
        json!({"email": ALICE.0, "password": ALICE.1, "passwordConfirm": ALICE.1, "name": "Alice"});
    let r = server.request(
        "POST",
        "/api/collections/users/records",
        Some(&su),
        Some(&alice),
    );
    assert_eq!(r.status, 200, "alice: {}", String::from_utf8_lossy(&r.body));
    let alice_id = r.json()["id"].clone();
    for i in 1..=3 {
        let note = json!({"title": format!("note {i}"), "views": i * 10, "meta": {"n": i}, "owner": alice_id});
        create_note(&server, &su, note);
    }
    server
}

/// Changes a collection's options (rules) through the API.
fn set_collection(server: &Server, su: &str, collection: &str, patch: Value) {
    let path = format!("/api/collections/{collection}");
    let r = server.request("PATCH", &path, Some(su), Some(&patch));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

fn su_token(server: &Server) -> String {
    server.superuser_token()
}

fn alice_token(server: &Server) -> String {
    server.login("users", ALICE.0, ALICE.1)
}

/// Signs up a user in `users` and logs in: (id, token).
fn new_user(server: &Server, email: &str) -> (String, String) {
    let password = "user-pass-123";
    let r = server.request(
        "POST",
        "/api/collections/users/records",
        None,
        Some(&json!({"email": email, "password": password, "passwordConfirm": password})),
    );
    assert_eq!(
        r.status,
        200,
        "sign-up: {}",
        String::from_utf8_lossy(&r.body)
    );
    (
        r.json()["id"].as_str().unwrap().to_string(),
        server.login("users", email, password),
    )
}

/// Returns once realtime has dispatched every change committed so far, so
/// streams subscribed afterwards cannot receive those changes late (they
/// are dispatched after commit, asynchronously, as in the reference). A
/// touch of the superuser record is dispatched after them, in commit
/// order, to a probe that alone subscribes to `_superusers`.
fn wait_for_dispatch(server: &Server, su: &str) {
    let mut probe = open(server);
    assert_eq!(probe.subscribe(server, &["_superusers/*"], Some(su)), 204);
    let me = server.request(
        "POST",
        "/api/collections/_superusers/auth-refresh",
        Some(su),
        None,
    );
    let path = format!(
        "/api/collections/_superusers/records/{}",
        me.json()["record"]["id"].as_str().unwrap()
    );
    assert_eq!(
        server
            .request("PATCH", &path, Some(su), Some(&json!({})))
            .status,
        200
    );
    probe.wait_for(|e| e.name == "_superusers/*", "the dispatch barrier");
}

fn create_note(server: &Server, token: &str, body: Value) -> Value {
    let r = server.request(
        "POST",
        "/api/collections/notes/records",
        Some(token),
        Some(&body),
    );
    assert_eq!(
        r.status,
        200,
        "create: {}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

fn note_path(id: &str) -> String {
    format!("/api/collections/notes/records/{id}")
}

fn subscribe(
    server: &Server,
    client_id: &str,
    subscriptions: &[&str],
    token: Option<&str>,
) -> Response {
    let body = json!({"clientId": client_id, "subscriptions": subscriptions});
    server.request("POST", "/api/realtime", token, Some(&body))
}

#[derive(Debug, Clone)]
struct Event {
    id: String,
    name: String,
    data: Value,
}

impl Event {
    fn action(&self) -> &str {
        self.data["action"].as_str().unwrap_or("")
    }
    fn record_id(&self) -> &str {
        self.data["record"]["id"].as_str().unwrap_or("")
    }
}

/// What the reader thread saw.
#[derive(Debug)]
enum Item {
    Event(Event),
    /// The server ended the chunked body (`0\r\n\r\n`).
    EndOfStream,
    /// The socket closed or broke.
    Closed,
}

/// An open event stream.
struct Sse {
    id: String,
    head: String,
    items: Receiver<Item>,
    seen: Vec<Event>,
    ended: bool,
    socket: TcpStream,
}

/// `GET /api/realtime`: the open stream, or the refusal's response.
fn open_stream(port: u16, headers: &[(&str, &str)]) -> Result<Sse, Response> {
    let socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut request = String::from(
        "GET /api/realtime HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n",
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    (&socket).write_all(request.as_bytes()).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(socket.try_clone().unwrap());
    let head = read_head(&mut reader);
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if status != 200 {
        return Err(refusal(status, &head, &mut reader));
    }
    socket.set_read_timeout(None).unwrap();
    let (tx, items) = channel();
    std::thread::spawn(move || read_events(reader, tx));
    let mut sse = Sse {
        id: String::new(),
        head,
        items,
        seen: Vec::new(),
        ended: false,
        socket,
    };
    let connect = sse.wait_for(|e| e.name == "PB_CONNECT", "PB_CONNECT");
    sse.id = connect.data["clientId"].as_str().unwrap().to_string();
    assert_eq!(connect.id, sse.id, "the SSE id is the client id");
    Ok(sse)
}

fn open(server: &Server) -> Sse {
    open_stream(server.port, &[]).unwrap_or_else(|r| {
        panic!(
            "stream refused: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        )
    })
}

fn read_head(reader: &mut impl BufRead) -> String {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            return head;
        }
        head.push_str(&line);
    }
}

fn refusal(status: u16, head: &str, reader: &mut impl Read) -> Response {
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    Response {
        status,
        headers,
        body,
    }
}

/// Parses one HTTP chunk per SSE message until the stream ends.
fn read_events(mut reader: BufReader<TcpStream>, tx: std::sync::mpsc::Sender<Item>) {
    loop {
        let mut size_line = String::new();
        if reader.read_line(&mut size_line).unwrap_or(0) == 0 {
            let _ = tx.send(Item::Closed);
            return;
        }
        let Ok(size) = usize::from_str_radix(size_line.trim(), 16) else {
            let _ = tx.send(Item::Closed);
            return;
        };
        let mut chunk = vec![0; size + 2];
        if reader.read_exact(&mut chunk).is_err() {
            let _ = tx.send(Item::Closed);
            return;
        }
        if size == 0 {
            let _ = tx.send(Item::EndOfStream);
            return;
        }
        if let Some(event) = parse_message(&String::from_utf8_lossy(&chunk[..size])) {
            let _ = tx.send(Item::Event(event));
        }
    }
}

fn parse_message(text: &str) -> Option<Event> {
    let (mut id, mut name, mut data) = (String::new(), String::new(), Vec::new());
    for line in text.lines() {
        match line.split_once(':') {
            Some(("id", v)) => id = v.to_string(),
            Some(("event", v)) => name = v.to_string(),
            Some(("data", v)) => data.push(v.to_string()),
            _ => {}
        }
    }
    if data.is_empty() {
        return None;
    }
    let data = serde_json::from_str(&data.join("\n")).unwrap_or(Value::Null);
    Some(Event { id, name, data })
}

/// Closing the socket also ends the reader thread's clone of it.
impl Drop for Sse {
    fn drop(&mut self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
    }
}

impl Sse {
    /// The next item within `timeout`; `None` on timeout.
    fn next(&mut self, timeout: Duration) -> Option<Item> {
        match self.items.recv_timeout(timeout) {
            Ok(Item::Event(e)) => {
                self.seen.push(e.clone());
                Some(Item::Event(e))
            }
            Ok(end) => {
                self.ended = true;
                Some(end)
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                self.ended = true;
                Some(Item::Closed)
            }
        }
    }

    fn wait_for(&mut self, matches: impl Fn(&Event) -> bool, what: &str) -> Event {
        if let Some(e) = self.seen.iter().find(|e| matches(e)) {
            return e.clone();
        }
        let deadline = Instant::now() + ARRIVES;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.next(left) {
                Some(Item::Event(e)) if matches(&e) => return e,
                Some(Item::Event(_)) => {}
                Some(end) => panic!("{what}: the stream ended ({end:?}); saw {:?}", self.seen),
                None => break,
            }
        }
        panic!("{what}: nothing within {ARRIVES:?}; saw {:?}", self.seen)
    }

    /// Every record event seen after watching a quiet period.
    fn settle(&mut self) -> Vec<Event> {
        while let Some(Item::Event(_)) = self.next(QUIET) {}
        self.record_events()
    }

    fn record_events(&self) -> Vec<Event> {
        self.seen
            .iter()
            .filter(|e| e.name != "PB_CONNECT")
            .cloned()
            .collect()
    }

    fn subscribe(&self, server: &Server, subscriptions: &[&str], token: Option<&str>) -> u16 {
        subscribe(server, &self.id, subscriptions, token).status
    }
}

// ---------------------------------------------------------------------------
// protocol

#[test]
fn the_stream_opens_with_pb_connect_and_the_response_headers() {
    let tmp = TempDir::new("rt-open");
    let server = serve(&tmp, json!({}), &[]);
    let a = open_stream(server.port, &[("Origin", "http://app.example")])
        .unwrap_or_else(|r| panic!("{}", r.status));
    let head = a.head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    for line in [
        "content-type: text/event-stream",
        "cache-control: no-store",
        "x-accel-buffering: no",
        "x-content-type-options: nosniff",
        "access-control-allow-origin: *",
    ] {
        assert!(head.contains(line), "missing {line:?} in {head}");
    }
    assert_eq!(a.id.len(), 40);
    assert!(a.id.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_ne!(open(&server).id, a.id, "every stream gets its own id");
}

#[test]
fn subscribe_calls_are_validated_and_bind_auth_once() {
    let tmp = TempDir::new("rt-subscribe");
    let server = serve(&tmp, json!({}), &[]);
    let su = su_token(&server);
    let alice = alice_token(&server);
    let (_, bob) = new_user(&server, "bob@example.com");
    let mut a = open(&server);

    let unknown = subscribe(&server, "no-such-client", &[], None);
    assert_eq!(
        unknown.assert_error(404)["message"],
        "Missing or invalid client id."
    );
    let missing = server.request(
        "POST",
        "/api/realtime",
        None,
        Some(&json!({"subscriptions": ["notes/*"]})),
    );
    assert_eq!(
        missing.assert_error(400)["data"]["clientId"]["code"],
        "validation_required"
    );
    let too_long = "x".repeat(2501);
    let long = [too_long.as_str()];
    assert!(
        subscribe(&server, &a.id, &long, None).assert_error(400)["data"]["subscriptions"]["0"]
            .is_object()
    );
    subscribe(&server, &a.id, &["notes/*\ndata:forged"], None).assert_error(400);

    // guest -> user is allowed; then another user, or no auth, is refused
    assert_eq!(a.subscribe(&server, &["notes/*"], None), 204);
    assert_eq!(a.subscribe(&server, &["notes/*"], Some(&alice)), 204);
    let other = subscribe(&server, &a.id, &[], Some(&bob));
    assert_eq!(
        other.assert_error(403)["message"],
        "The current and the previous request authorization don't match."
    );
    subscribe(&server, &a.id, &[], None).assert_error(403);
    subscribe(&server, &a.id, &[], Some(&su)).assert_error(403);
    // the refused calls changed nothing
    let note = create_note(&server, &su, json!({"title": "still subscribed"}));
    let e = a.wait_for(
        |e| e.record_id() == note["id"],
        "event after refused changes",
    );
    assert_eq!(e.name, "notes/*", "the event is named by the subscription");
    // the same user may resubscribe; an empty list unsubscribes
    assert_eq!(a.subscribe(&server, &[], Some(&alice)), 204);
    create_note(&server, &su, json!({"title": "after unsubscribe"}));
    assert_eq!(a.settle().len(), 1, "nothing after unsubscribing");
}

#[test]
fn create_update_and_delete_events_carry_the_record_and_follow_the_topic() {
    let tmp = TempDir::new("rt-events");
    let server = serve(&tmp, json!({}), &[]);
    let su = su_token(&server);
    let existing = create_note(&server, &su, json!({"title": "one", "views": 1}));
    let other = create_note(&server, &su, json!({"title": "other"}));
    wait_for_dispatch(&server, &su);
    let notes = server.request("GET", "/api/collections/notes", Some(&su), None);
    let notes_id = notes.json()["id"].as_str().unwrap().to_string();
    let by_id = format!("{notes_id}/{}", existing["id"].as_str().unwrap());
    let fields = "notes/*?options=%7B%22query%22%3A%7B%22fields%22%3A%22id%2Ctitle%22%7D%7D";
    let mut all = open(&server);
    let mut one = open(&server);
    assert_eq!(all.subscribe(&server, &["notes/*", fields], None), 204);
    assert_eq!(one.subscribe(&server, &[&by_id], None), 204);

    let id = existing["id"].as_str().unwrap();
    server.request(
        "PATCH",
        &note_path(other["id"].as_str().unwrap()),
        Some(&su),
        Some(&json!({"title": "other 2"})),
    );
    server.request(
        "PATCH",
        &note_path(id),
        Some(&su),
        Some(&json!({"title": "two"})),
    );
    assert_eq!(
        server
            .request("DELETE", &note_path(id), Some(&su), None)
            .status,
        204
    );
    let created = create_note(&server, &su, json!({"title": "three"}));

    let events = all.wait_for(
        |e| e.record_id() == created["id"] && e.name == fields,
        "last event",
    );
    assert_eq!(
        events.data["record"],
        json!({"id": created["id"], "title": "three"}),
        "fields pick keys"
    );
    let full: Vec<Event> = all
        .settle()
        .into_iter()
        .filter(|e| e.name == "notes/*")
        .collect();
    let actions: Vec<(&str, &str)> = full
        .iter()
        .map(|e| (e.action(), e.data["record"]["title"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("update", "other 2"),
            ("update", "two"),
            ("delete", "two"),
            ("create", "three")
        ]
    );
    let deleted = &full[2].data["record"];
    assert_eq!(deleted["collectionName"], "notes");
    assert_eq!(deleted["views"], 1, "a delete carries the last state");

    let mine = one.settle();
    let actions: Vec<&str> = mine.iter().map(Event::action).collect();
    assert_eq!(
        actions,
        ["update", "delete"],
        "a record topic (by collection id) gets only that record"
    );
    assert!(mine.iter().all(|e| e.name == by_id && e.record_id() == id));
}

// ---------------------------------------------------------------------------
// commit order and rollbacks

#[test]
fn events_arrive_in_commit_order_under_concurrent_writes() {
    let tmp = TempDir::new("rt-order");
    let server = serve(&tmp, json!({}), &[]);
    let su = su_token(&server);
    let mut a = open(&server);
    assert_eq!(a.subscribe(&server, &["notes/*"], None), 204);
    let (threads, per_thread): (usize, usize) = (4, 12);
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (server, su) = (&server, &su);
            scope.spawn(move || {
                for i in 0..per_thread {
                    let note = create_note(server, su, json!({"title": format!("t{t}-{i}")}));
                    let path = note_path(note["id"].as_str().unwrap());
                    let r = server.request("PATCH", &path, Some(su), Some(&json!({"views": i})));
                    assert_eq!(r.status, 200);
                    if i % 3 == 0 {
                        assert_eq!(server.request("DELETE", &path, Some(su), None).status, 204);
                    }
                }
            });
        }
    });
    let deletes = threads * per_thread.div_ceil(3);
    let expected = threads * per_thread * 2 + deletes;
    let deadline = Instant::now() + Duration::from_secs(20);
    while a.record_events().len() < expected && Instant::now() < deadline {
        a.next(Duration::from_millis(200));
    }
    let events = a.settle();
    assert_eq!(events.len(), expected, "every committed change, once");

    // per record: create, update, then delete
    let mut per_record: std::collections::HashMap<&str, Vec<&str>> = Default::default();
    for e in &events {
        per_record
            .entry(e.record_id())
            .or_default()
            .push(e.action());
    }
    for (id, actions) in &per_record {
        assert!(
            actions == &["create", "update"] || actions == &["create", "update", "delete"],
            "{id}: {actions:?}"
        );
    }
    // globally: creates in the order the rows were committed (rowid order)
    let listed = server.request(
        "GET",
        "/api/collections/notes/records?sort=@rowid&perPage=500&filter=title~%27t%25%27",
        None,
        None,
    );
    let committed: Vec<String> = listed.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let survivors: Vec<&str> = events
        .iter()
        .filter(|e| e.action() == "create" && committed.iter().any(|c| c == e.record_id()))
        .map(Event::record_id)
        .collect();
    assert_eq!(survivors, committed, "create events follow commit order");
}

#[test]
fn a_rolled_back_write_announces_nothing() {
    let tmp = TempDir::new("rt-rollback");
    // guests may not create notes: their insert is rolled back by the rule
    let server = serve(&tmp, json!({}), &[]);
    let su = su_token(&server);
    let mut a = open(&server);
    assert_eq!(a.subscribe(&server, &["notes/*"], None), 204);
    std::thread::scope(|scope| {
        for t in 0..3 {
            let (server, su) = (&server, &su);
            scope.spawn(move || {
                for i in 0..8 {
                    let refused = server.request(
                        "POST",
                        "/api/collections/notes/records",
                        None,
                        Some(&json!({"title": format!("refused {t}-{i}")})),
                    );
                    assert_eq!(refused.status, 400);
                    create_note(server, su, json!({"title": format!("kept {t}-{i}")}));
                }
            });
        }
    });
    let events = {
        let deadline = Instant::now() + ARRIVES;
        while a.record_events().len() < 24 && Instant::now() < deadline {
            a.next(Duration::from_millis(200));
        }
        a.settle()
    };
    assert_eq!(events.len(), 24);
    assert!(
        events.iter().all(|e| e.data["record"]["title"]
            .as_str()
            .unwrap()
            .starts_with("kept")),
        "{events:?}"
    );
}

/// `POST /api/batch` with batching switched on.
fn send_batch(server: &Server, su: &str, requests: Value) -> Response {
    let on = json!({"batch": {"enabled": true}});
    let r = server.request("PATCH", "/api/settings", Some(su), Some(&on));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let body = json!({ "requests": requests });
    server.request("POST", "/api/batch", Some(su), Some(&body))
}

#[test]
fn a_batch_announces_its_steps_in_order_only_if_it_commits() {
    let tmp = TempDir::new("rt-batch");
    let server = serve(&tmp, json!({}), &[]);
    let su = su_token(&server);
    let listed = server.request(
        "GET",
        "/api/collections/notes/records?sort=views",
        None,
        None,
    );
    let ids: Vec<String> = listed.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect();
    wait_for_dispatch(&server, &su);
    let mut admin = open(&server);
    assert_eq!(
        admin.subscribe(&server, &["notes/*", "users/*"], Some(&su)),
        204
    );
    let records = "/api/collections/notes/records";
    let one = format!("{records}/{}", ids[0]);

    // every step but the last would publish; the last fails, so none may
    let failing = send_batch(
        &server,
        &su,
        json!([
            {"method": "POST", "url": records, "body": {"title": "rolled back"}},
            {"method": "PATCH", "url": one, "body": {"title": "rolled back"}},
            {"method": "DELETE", "url": format!("{records}/{}", ids[1])},
            {"method": "POST", "url": records, "body": {"views": 1}},
        ]),
    );
    failing.assert_error(400);
    let barrier = create_note(&server, &su, json!({"title": "after the rollback"}));
    admin.wait_for(|e| e.record_id() == barrier["id"], "the single create");
    let seen: Vec<String> = admin
        .settle()
        .iter()
        .map(|e| e.record_id().to_string())
        .collect();
    assert_eq!(
        seen,
        [barrier["id"].as_str().unwrap()],
        "a rolled-back batch announced"
    );

    let kept = send_batch(
        &server,
        &su,
        json!([
            {"method": "POST", "url": records, "body": {"title": "batched"}},
            {"method": "PATCH", "url": one, "body": {"title": "note 1 batched"}},
            {"method": "DELETE", "url": format!("{records}/{}", ids[2])},
            {"method": "PUT", "url": records, "body": {"id": ids[0], "views": 11}},
        ]),
    );
    assert_eq!(kept.status, 200, "{}", String::from_utf8_lossy(&kept.body));
    admin.wait_for(|e| e.data["record"]["views"] == 11, "the upsert's update");
    let steps: Vec<(String, String)> = admin.settle()[1..]
        .iter()
        .map(|e| {
            (
                e.action().to_string(),
                e.data["record"]["title"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("create", "batched"),
        ("update", "note 1 batched"),
        ("delete", "note 3"),
        ("update", "note 1 batched"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, t)| (a.to_string(), t.to_string()))
        .collect();
    assert_eq!(steps, expected, "one event per step, in step order");
}

// ---------------------------------------------------------------------------
// rules

#[test]
fn list_and_view_rules_decide_per_subscriber() {
    let tmp = TempDir::new("rt-rules");
    let rules = json!({"listRule": "owner = @request.auth.id", "viewRule": ""});
    let server = serve(&tmp, rules, &[]);
    let su = su_token(&server);
    let alice = alice_token(&server);
    let (bob_id, bob) = new_user(&server, "bob@example.com");
    let listed = server.request("GET", "/api/collections/notes/records", Some(&alice), None);
    let alice_note = listed.json()["items"][0].clone();
    let alice_id = alice_note["owner"].as_str().unwrap().to_string();
    let alice_note_id = alice_note["id"].as_str().unwrap().to_string();
    let one_topic = format!("notes/{alice_note_id}");

    let mut a = open(&server);
    let mut b = open(&server);
    let mut guest_all = open(&server);
    let mut guest_one = open(&server);
    let mut admin = open(&server);
    assert_eq!(a.subscribe(&server, &["notes/*"], Some(&alice)), 204);
    assert_eq!(b.subscribe(&server, &["notes/*"], Some(&bob)), 204);
    assert_eq!(guest_all.subscribe(&server, &["notes/*"], None), 204);
    assert_eq!(guest_one.subscribe(&server, &[&one_topic], None), 204);
    assert_eq!(admin.subscribe(&server, &["notes/*"], Some(&su)), 204);

    let for_alice = create_note(
        &server,
        &su,
        json!({"title": "for alice", "owner": alice_id}),
    );
    let for_bob = create_note(&server, &su, json!({"title": "for bob", "owner": bob_id}));
    server.request(
        "PATCH",
        &note_path(&alice_note_id),
        Some(&su),
        Some(&json!({"title": "alice edited"})),
    );
    let last = create_note(&server, &su, json!({"title": "ownerless"}));

    admin.wait_for(|e| e.record_id() == last["id"], "superuser sees everything");
    assert_eq!(admin.settle().len(), 4);
    let ids = |events: Vec<Event>| {
        events
            .iter()
            .map(|e| e.record_id().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(a.settle()),
        [for_alice["id"].as_str().unwrap(), &alice_note_id],
        "alice: her notes only"
    );
    assert_eq!(
        ids(b.settle()),
        [for_bob["id"].as_str().unwrap()],
        "bob: his note only"
    );
    // As in the records API, a guest's `@request.auth.id` is "" and so
    // matches a note without owner.
    assert_eq!(
        ids(guest_all.settle()),
        [last["id"].as_str().unwrap()],
        "guests: ownerless notes only"
    );
    let guest_list = server
        .request("GET", "/api/collections/notes/records", None, None)
        .json();
    assert_eq!(
        guest_list["items"][0]["id"], last["id"],
        "the records API agrees"
    );
    assert_eq!(
        ids(guest_one.settle()),
        std::slice::from_ref(&alice_note_id),
        "the view rule is open"
    );
}

#[test]
fn null_rules_deliver_to_superusers_only() {
    let tmp = TempDir::new("rt-null");
    let rules = json!({"listRule": null, "viewRule": null});
    let server = serve(&tmp, rules, &[]);
    let su = su_token(&server);
    let alice = alice_token(&server);
    let existing = create_note(&server, &su, json!({"title": "existing"}));
    wait_for_dispatch(&server, &su);
    let one = format!("notes/{}", existing["id"].as_str().unwrap());
    let mut guest = open(&server);
    let mut user = open(&server);
    let mut admin = open(&server);
    assert_eq!(guest.subscribe(&server, &["notes/*", &one], None), 204);
    assert_eq!(
        user.subscribe(&server, &["notes/*", &one], Some(&alice)),
        204
    );
    assert_eq!(admin.subscribe(&server, &["notes/*", &one], Some(&su)), 204);
    server.request(
        "PATCH",
        &note_path(existing["id"].as_str().unwrap()),
        Some(&su),
        Some(&json!({"title": "secret"})),
    );
    create_note(&server, &su, json!({"title": "secret too"}));
    admin.wait_for(|e| e.action() == "create", "superuser create event");
    assert_eq!(
        admin.settle().len(),
        3,
        "the update through both topics, the create through one"
    );
    assert!(guest.settle().is_empty());
    assert!(user.settle().is_empty());
}

#[test]
fn hidden_fields_reach_superusers_only() {
    let tmp = TempDir::new("rt-hidden");
    let server = serve(&tmp, json!({"fields": notes_fields(&["meta"])}), &[]);
    let su = su_token(&server);
    let mut guest = open(&server);
    let mut admin = open(&server);
    assert_eq!(guest.subscribe(&server, &["notes/*"], None), 204);
    assert_eq!(admin.subscribe(&server, &["notes/*"], Some(&su)), 204);
    let note = create_note(
        &server,
        &su,
        json!({"title": "visible", "meta": {"secret": "classified"}}),
    );
    let g = guest.wait_for(|e| e.record_id() == note["id"], "guest event");
    let s = admin.wait_for(|e| e.record_id() == note["id"], "superuser event");
    assert_eq!(g.data["record"]["title"], "visible");
    assert!(
        g.data["record"].get("meta").is_none(),
        "hidden field leaked: {}",
        g.data
    );
    assert_eq!(s.data["record"]["meta"], json!({"secret": "classified"}));
}

#[test]
fn auth_records_show_email_to_their_owner_and_revoked_tokens_unbind() {
    let tmp = TempDir::new("rt-auth");
    let rules = json!({"listRule": "@request.auth.id != ''"});
    let server = serve(&tmp, rules, &[]);
    let su = su_token(&server);
    set_collection(&server, &su, "users", json!({"listRule": ""}));
    let alice = alice_token(&server);
    let (_, bob) = new_user(&server, "bob@example.com");
    let alice_id = server
        .request(
            "POST",
            "/api/collections/users/auth-refresh",
            Some(&alice),
            None,
        )
        .json()["record"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for_dispatch(&server, &su);
    let mut a = open(&server);
    let mut b = open(&server);
    assert_eq!(
        a.subscribe(&server, &["users/*", "notes/*"], Some(&alice)),
        204
    );
    assert_eq!(
        b.subscribe(&server, &["users/*", "notes/*"], Some(&bob)),
        204
    );
    let users_path = format!("/api/collections/users/records/{alice_id}");

    server.request(
        "PATCH",
        &users_path,
        Some(&su),
        Some(&json!({"name": "Alice 2"})),
    );
    let alice_update = |e: &Event| e.name == "users/*" && e.record_id() == alice_id;
    let own = a.wait_for(alice_update, "alice's own update");
    assert_eq!(
        own.data["record"]["email"], ALICE.0,
        "the owner sees the email"
    );
    let seen = b.wait_for(alice_update, "bob sees alice's update");
    assert!(
        seen.data["record"].get("email").is_none(),
        "email hidden from others"
    );
    assert!(
        seen.data["record"].get("tokenKey").is_none()
            && seen.data["record"].get("password").is_none()
    );

    let before = create_note(&server, &su, json!({"title": "members only"}));
    a.wait_for(
        |e| e.record_id() == before["id"],
        "alice, signed in, sees members' notes",
    );

    // a new password rotates the token key: alice's stream loses its auth
    let change = json!({"password": "alice-pass-456", "passwordConfirm": "alice-pass-456"});
    assert_eq!(
        server
            .request("PATCH", &users_path, Some(&su), Some(&change))
            .status,
        200
    );
    let after = create_note(&server, &su, json!({"title": "members only, later"}));
    b.wait_for(|e| e.record_id() == after["id"], "bob still signed in");
    assert!(
        a.settle().iter().all(|e| e.record_id() != after["id"]),
        "alice's revoked auth still delivered"
    );
    // being a guest again, the stream may be bound afresh
    assert_eq!(a.subscribe(&server, &["notes/*"], Some(&bob)), 204);
}

#[test]
fn a_new_token_secret_or_a_deleted_collection_unbinds_its_clients() {
    let tmp = TempDir::new("rt-secret");
    let server = serve(&tmp, json!({}), &[]);
    let su = su_token(&server);
    let members = json!({"name": "members", "type": "auth", "fields": []});
    let r = server.request("POST", "/api/collections", Some(&su), Some(&members));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let member = json!({"email": "m@example.com", "password": "member-pass-1", "passwordConfirm": "member-pass-1"});
    let r = server.request(
        "POST",
        "/api/collections/members/records",
        Some(&su),
        Some(&member),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let member = server.login("members", "m@example.com", "member-pass-1");
    let alice = alice_token(&server);
    let a = open(&server);
    let m = open(&server);
    assert_eq!(a.subscribe(&server, &["notes/*"], Some(&alice)), 204);
    assert_eq!(m.subscribe(&server, &["notes/*"], Some(&member)), 204);
    // bound: a guest call may not change the subscriptions
    assert_eq!(a.subscribe(&server, &[], None), 403);
    assert_eq!(m.subscribe(&server, &[], None), 403);

    let secret = json!({"authToken": {"secret": "s".repeat(50)}});
    set_collection(&server, &su, "users", secret);
    wait_for_dispatch(&server, &su);
    assert_eq!(
        a.subscribe(&server, &["notes/*"], None),
        204,
        "a new secret unbinds"
    );
    assert_eq!(
        m.subscribe(&server, &[], None),
        403,
        "other collections keep theirs"
    );

    let r = server.request("DELETE", "/api/collections/members", Some(&su), None);
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
    wait_for_dispatch(&server, &su);
    assert_eq!(
        m.subscribe(&server, &["notes/*"], None),
        204,
        "a deleted collection unbinds"
    );
}

#[test]
fn deleting_a_user_announces_its_last_state_and_the_notes_that_lost_it() {
    let tmp = TempDir::new("rt-cascade");
    let server = serve(&tmp, json!({}), &[]);
    let su = su_token(&server);
    let alice = alice_token(&server);
    let alice_id = server
        .request(
            "POST",
            "/api/collections/users/auth-refresh",
            Some(&alice),
            None,
        )
        .json()["record"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut admin = open(&server);
    assert_eq!(
        admin.subscribe(&server, &["users/*", "notes/*"], Some(&su)),
        204
    );
    let path = format!("/api/collections/users/records/{alice_id}");
    assert_eq!(server.request("DELETE", &path, Some(&su), None).status, 204);
    let gone = admin.wait_for(|e| e.name == "users/*", "the user's delete event");
    assert_eq!(gone.action(), "delete");
    assert_eq!(
        gone.data["record"]["email"], ALICE.0,
        "last state, as a superuser sees it"
    );
    assert!(gone.data["record"].get("password").is_none());
    let events = admin.settle();
    let notes: Vec<&Event> = events.iter().filter(|e| e.name == "notes/*").collect();
    assert_eq!(notes.len(), 3, "alice's three notes");
    assert!(notes
        .iter()
        .all(|e| e.action() == "update" && e.data["record"]["owner"] == ""));
}

// ---------------------------------------------------------------------------
// limits and failures

#[test]
fn the_client_cap_answers_503_and_a_disconnect_frees_the_slot() {
    let tmp = TempDir::new("rt-cap");
    let server = serve(&tmp, json!({}), &["--realtimeMaxClients", "1"]);
    let su = su_token(&server);
    let first = open(&server);
    assert_eq!(first.subscribe(&server, &["notes/*"], None), 204);
    let refused = open_stream(server.port, &[]).err().expect("over the cap");
    assert_eq!(refused.assert_error(503)["status"], 503);
    assert!(refused
        .header("retry-after")
        .is_some_and(|v| v.parse::<u64>().is_ok_and(|s| s >= 1)));

    // the client goes away; the server notices on its next writes
    let gone = first.id.clone();
    drop(first);
    let deadline = Instant::now() + ARRIVES;
    let second = loop {
        create_note(&server, &su, json!({"title": "probe"}));
        if let Ok(stream) = open_stream(server.port, &[]) {
            break stream;
        }
        assert!(
            Instant::now() < deadline,
            "the slot of a closed client was never freed"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    subscribe(&server, &gone, &[], None).assert_error(404);
    assert_eq!(second.subscribe(&server, &["notes/*"], None), 204);
}

#[test]
fn a_client_that_leaves_frees_its_slot_with_no_event_sent() {
    let tmp = TempDir::new("rt-leave");
    let server = serve(
        &tmp,
        json!({}),
        &["--realtimeMaxClients", "1", "--realtimeHeartbeat", "1"],
    );
    let first = open(&server);
    assert_eq!(first.subscribe(&server, &["notes/*"], None), 204);
    let gone = first.id.clone();
    // the client closes its socket; nothing is written to it by anyone
    drop(first);
    // the heartbeats find it gone: a bound on the wait, not a speed check
    let deadline = Instant::now() + 4 * ARRIVES;
    let second = loop {
        if let Ok(stream) = open_stream(server.port, &[]) {
            break stream;
        }
        assert!(
            Instant::now() < deadline,
            "the slot of a closed client was never freed"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    subscribe(&server, &gone, &[], None).assert_error(404);
    assert_eq!(second.subscribe(&server, &["notes/*"], None), 204);
}

#[test]
fn the_per_address_cap_counts_real_client_addresses_only() {
    let tmp = TempDir::new("rt-per-ip");
    let server = serve(&tmp, json!({}), &["--realtimeMaxClientsPerIP", "1"]);
    let su = su_token(&server);
    // loopback peers are a local proxy's address, not a client's: not capped
    let _local = [open(&server), open(&server)];
    let proxy = json!({"trustedProxy": {"headers": ["X-Forwarded-For"], "useLeftmostIP": false}});
    assert_eq!(
        server
            .request("PATCH", "/api/settings", Some(&su), Some(&proxy))
            .status,
        200
    );
    let _one = open_stream(server.port, &[("X-Forwarded-For", "203.0.113.9, 10.0.0.1")])
        .unwrap_or_else(|r| panic!("{}", r.status));
    let refused = open_stream(server.port, &[("X-Forwarded-For", "10.0.0.1")])
        .err()
        .expect("same address");
    refused.assert_error(503);
    assert!(open_stream(server.port, &[("X-Forwarded-For", "10.0.0.2")]).is_ok());
}

#[test]
fn a_stalled_client_is_dropped_while_others_keep_receiving() {
    let tmp = TempDir::new("rt-stall");
    let server = serve(&tmp, json!({}), &[]);
    let su = su_token(&server);
    let mut healthy = open(&server);
    assert_eq!(healthy.subscribe(&server, &["notes/*"], None), 204);
    // a client that reads its PB_CONNECT and then never reads again
    let mut stalled = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stalled
        .write_all(b"GET /api/realtime HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let opening = read_until(&mut stalled, "\"}\n\n\r\n");
    let stalled_id = opening
        .split("\"clientId\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    assert_eq!(
        subscribe(&server, &stalled_id, &["notes/*"], None).status,
        204
    );

    // ~900 KB per event: socket buffers and the client's backlog fill fast
    let big = "x".repeat(900_000);
    let total = 30;
    for i in 0..total {
        create_note(
            &server,
            &su,
            json!({"title": format!("big {i}"), "meta": big}),
        );
        let e = healthy.wait_for(
            |e| e.data["record"]["title"] == format!("big {i}"),
            "healthy client's event",
        );
        assert_eq!(
            e.data["record"]["meta"].as_str().map(str::len),
            Some(big.len())
        );
    }
    subscribe(&server, &stalled_id, &[], None).assert_error(404);

    // what the stalled client gets, once it reads: part of the events, then the end
    let rest = read_until(&mut stalled, "\r\n0\r\n\r\n");
    let got = rest.matches("event:notes/*").count();
    assert!(
        got < total,
        "the stalled client was not dropped ({got} events)"
    );
    assert!(
        rest.ends_with("\r\n0\r\n\r\n"),
        "the stream is ended cleanly"
    );
}

/// Reads until the text read ends with `end` (or the socket stays quiet).
fn read_until(socket: &mut TcpStream, end: &str) -> String {
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut text = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    while !text.ends_with(end.as_bytes()) {
        match socket.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

#[test]
fn shutdown_ends_open_streams() {
    let tmp = TempDir::new("rt-shutdown");
    let server = serve(&tmp, json!({}), &[]);
    let mut a = open(&server);
    assert_eq!(a.subscribe(&server, &["notes/*"], None), 204);
    assert_eq!(server.stop(), Some(0));
    let mut end = None;
    while end.is_none() {
        match a.next(ARRIVES) {
            Some(Item::Event(_)) => {}
            other => end = Some(other),
        }
    }
    assert!(matches!(end, Some(Some(Item::EndOfStream))), "{end:?}");
    assert!(a.ended);
}
