//! The filter language, sort and API rules end to end, against the real
//! binary: relation and back-relation paths, request values in rules,
//! what non-superusers may filter by, `manageRule`, limits, and hostile
//! filter/sort text. Expected values were checked on the reference binary.

mod common;

use common::session::Session;
use serde_json::{json, Value};
use std::io::{Read, Write};

fn enc(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Session {
    fn patch_collection(&self, name: &str, body: Value) {
        let r = self.server.request(
            "PATCH",
            &format!("/api/collections/{name}"),
            Some(&self.su),
            Some(&body),
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }

    /// `(status, body)` of a list with the given query string.
    fn list(&self, collection: &str, query: &str, token: Option<&str>) -> (u16, Value) {
        let r = self.server.request(
            "GET",
            &format!("/api/collections/{collection}/records?perPage=500&{query}"),
            token,
            None,
        );
        (r.status, r.json())
    }

    /// Sorted `name`s of the records matching `filter`, as the superuser.
    fn names(&self, collection: &str, filter: &str) -> Vec<String> {
        self.names_as(collection, filter, Some(&self.su.clone()))
            .unwrap_or_else(|status| panic!("{filter}: {status}"))
    }

    fn names_as(
        &self,
        collection: &str,
        filter: &str,
        token: Option<&str>,
    ) -> Result<Vec<String>, u16> {
        let (status, body) = self.list(collection, &format!("filter={}", enc(filter)), token);
        if status != 200 {
            return Err(status);
        }
        assert_eq!(
            body["totalItems"].as_u64().unwrap() as usize,
            body["items"].as_array().unwrap().len(),
            "COUNT and items agree for {filter}"
        );
        let mut names: Vec<String> = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap_or_default().to_string())
            .collect();
        names.sort();
        Ok(names)
    }

    fn sorted(&self, collection: &str, sort: &str) -> Result<Vec<String>, u16> {
        let (status, body) = self.list(collection, &format!("sort={}", enc(sort)), Some(&self.su));
        if status != 200 {
            return Err(status);
        }
        Ok(body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap_or_default().to_string())
            .collect())
    }

    fn sign_up(&self, collection: &str, email: &str, extra: Value) -> (String, String) {
        let mut body =
            json!({"email": email, "password": "pass-12345", "passwordConfirm": "pass-12345"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let id = self.create(collection, body);
        (id, self.server.login(collection, email, "pass-12345"))
    }

    /// A request with extra headers, answered as `(status, body)`.
    fn with_headers(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        json: Option<&Value>,
    ) -> (u16, Value) {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.server.port)).unwrap();
        let body = json.map(|v| v.to_string()).unwrap_or_default();
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if json.is_some() {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body.as_bytes()).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw);
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let payload = text.split("\r\n\r\n").nth(1).unwrap_or("");
        (status, serde_json::from_str(payload).unwrap_or(Value::Null))
    }
}

/// teams ← people.team ← items.owner / items.friends ← reviews.item
fn catalogue(s: &Session) {
    let teams = s.collection(json!({"name": "teams", "type": "base", "listRule": "",
        "fields": [{"name": "name", "type": "text"}]}));
    let people = s.collection(json!({"name": "people", "type": "base", "listRule": "",
        "fields": [{"name": "name", "type": "text"},
                   {"name": "team", "type": "relation", "collectionId": teams["id"], "maxSelect": 1},
                   {"name": "secret", "type": "text", "hidden": true}]}));
    let items = s.collection(json!({"name": "items", "type": "base", "listRule": "",
        "fields": [{"name": "name", "type": "text"}, {"name": "n", "type": "number"},
                   {"name": "meta", "type": "json"},
                   {"name": "owner", "type": "relation", "collectionId": people["id"], "maxSelect": 1},
                   {"name": "friends", "type": "relation", "collectionId": people["id"], "maxSelect": 5}]}));
    s.collection(json!({"name": "reviews", "type": "base",
        "fields": [{"name": "name", "type": "text"}, {"name": "stars", "type": "number"},
                   {"name": "item", "type": "relation", "collectionId": items["id"], "maxSelect": 1}]}));
    let red = s.create("teams", json!({"name": "Red"}));
    let blue = s.create("teams", json!({"name": "Blue"}));
    let ann = s.create(
        "people",
        json!({"name": "Ann", "team": red, "secret": "s1"}),
    );
    let bob = s.create("people", json!({"name": "Bob", "team": blue}));
    let cat = s.create("people", json!({"name": "Cat"}));
    let apple = s.create(
        "items",
        json!({"name": "apple", "n": 1, "meta": {"k": 1}, "owner": ann, "friends": [bob]}),
    );
    let banana = s.create(
        "items",
        json!({"name": "banana", "n": 2, "meta": {"k": 2}, "owner": bob, "friends": [ann, bob]}),
    );
    s.create(
        "items",
        json!({"name": "cherry", "n": 3, "owner": ann, "friends": [cat]}),
    );
    s.create("items", json!({"name": "date", "n": 4, "meta": {"k": "x"}}));
    s.create(
        "reviews",
        json!({"name": "great", "stars": 5, "item": apple}),
    );
    s.create(
        "reviews",
        json!({"name": "poor", "stars": 1, "item": apple}),
    );
    s.create(
        "reviews",
        json!({"name": "fine", "stars": 3, "item": banana}),
    );
}

fn list_of(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn relation_and_back_relation_paths_filter_without_duplicates() {
    let s = Session::start("qr-paths");
    catalogue(&s);
    assert_eq!(
        s.names("items", "owner.name = 'Ann'"),
        list_of(&["apple", "cherry"])
    );
    assert_eq!(
        s.names("items", "owner.team.name = 'Blue'"),
        list_of(&["banana"])
    );
    assert_eq!(
        s.names("items", "friends.name ?= 'Bob'"),
        list_of(&["apple", "banana"])
    );
    assert_eq!(
        s.names("items", "friends.name = 'Bob'"),
        list_of(&["apple"])
    );
    assert_eq!(
        s.names("items", "friends.name ?= 'Ann' && friends.name ?= 'Bob'"),
        list_of(&[])
    );
    assert_eq!(
        s.names("items", "reviews_via_item.stars ?> 4"),
        list_of(&["apple"])
    );
    assert_eq!(
        s.names("items", "reviews_via_item.stars > 0"),
        list_of(&["apple", "banana"])
    );
    assert_eq!(
        s.names("items", "@collection.reviews.item ?= id"),
        list_of(&["apple", "banana"])
    );
    assert_eq!(
        s.names("people", "items_via_owner.name ?= 'banana'"),
        list_of(&["Bob"])
    );
    assert_eq!(s.names("items", "meta.k = 2"), list_of(&["banana"]));
    // skipTotal still applies the same filter
    let (status, body) = s.list(
        "items",
        &format!("skipTotal=1&filter={}", enc("friends.name ?!= ''")),
        Some(&s.su),
    );
    assert_eq!(status, 200);
    assert_eq!(body["totalItems"], -1);
    assert_eq!(body["items"].as_array().unwrap().len(), 3);
}

#[test]
fn sort_by_relation_and_json_paths_without_a_filter() {
    let s = Session::start("qr-sort");
    catalogue(&s);
    // a JSON path binds its path as a parameter: this once answered 500
    assert_eq!(
        s.sorted("items", "meta.k").unwrap(),
        list_of(&["cherry", "apple", "banana", "date"])
    );
    assert_eq!(
        s.sorted("items", "-owner.name,name").unwrap(),
        list_of(&["banana", "apple", "cherry", "date"])
    );
    assert_eq!(
        s.sorted("items", "owner.team.name").unwrap(),
        list_of(&["date", "banana", "apple", "cherry"])
    );
    assert_eq!(
        s.sorted("items", "-@rowid").unwrap(),
        list_of(&["date", "cherry", "banana", "apple"])
    );
    assert_eq!(s.sorted("items", "nosuch"), Err(400));
    assert_eq!(s.sorted("items", "name desc"), Err(400));
    assert_eq!(s.sorted("items", &["n"; 9].join(",")), Err(400));
    // paging a sorted list never repeats or skips a record
    let (_, page1) = s.list("items", "sort=owner.name&perPage=2&page=1", Some(&s.su));
    let (_, page2) = s.list("items", "sort=owner.name&perPage=2&page=2", Some(&s.su));
    let mut seen: Vec<&str> = page1["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["items"].as_array().unwrap())
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    seen.sort();
    assert_eq!(seen, ["apple", "banana", "cherry", "date"]);
}

#[test]
fn non_superusers_may_not_filter_by_what_they_cannot_list() {
    let s = Session::start("qr-client");
    catalogue(&s);
    let (_, bob) = s.sign_up("users", "bob@example.com", json!({}));
    for filter in [
        "owner = @request.auth.id",
        "@collection.reviews.stars > 1",
        "name = '@request.x'",
    ] {
        assert_eq!(
            s.names_as("items", filter, Some(&bob)),
            Err(403),
            "{filter}"
        );
        assert_eq!(s.names_as("items", filter, None), Err(403), "{filter}");
    }
    let (status, _) = s.list("items", &format!("sort={}", enc("@request.auth.id")), None);
    assert_eq!(status, 403);
    // hidden fields and collections whose list rule is null
    assert_eq!(s.names_as("items", "owner.secret = 's1'", None), Err(400));
    assert_eq!(
        s.names_as("items", "reviews_via_item.stars > 1", None),
        Err(400)
    );
    assert_eq!(
        s.names_as("items", "owner.secret = 's1'", Some(&s.su.clone()))
            .unwrap()
            .len(),
        2
    );
    // a list rule limits the related rows a client filter can see
    s.patch_collection("people", json!({"listRule": "name = 'Bob'"}));
    assert_eq!(
        s.names_as("items", "owner.name = 'Ann'", None),
        Ok(list_of(&[]))
    );
    assert_eq!(
        s.names_as("items", "owner.name = 'Bob'", None),
        Ok(list_of(&["banana"]))
    );
    assert_eq!(
        s.names_as("items", "owner.name = 'Ann' || name = 'apple'", None),
        Ok(list_of(&[]))
    );
    assert_eq!(
        s.names_as("items", "owner.name = 'Ann'", Some(&s.su.clone()))
            .unwrap()
            .len(),
        2
    );
    s.patch_collection("people", json!({"listRule": null}));
    assert_eq!(s.names_as("items", "owner.name = 'Ann'", None), Err(400));
    assert_eq!(
        s.names_as("items", "owner.id != ''", None),
        Ok(list_of(&["apple", "banana", "cherry"]))
    );
}

#[test]
fn limits_of_the_reference() {
    let s = Session::start("qr-limits");
    catalogue(&s);
    let long = format!("name = '{}'", "x".repeat(3500));
    assert_eq!(s.names_as("items", &long, Some(&s.su.clone())), Err(400));
    let many = vec!["n > 0"; 201].join(" && ");
    assert_eq!(s.names_as("items", &many, Some(&s.su.clone())), Err(400));
    let enough = vec!["n > 0"; 200].join(" && ");
    assert_eq!(
        s.names_as("items", &enough, Some(&s.su.clone()))
            .unwrap()
            .len(),
        4
    );
    let r = s.server.request(
        "GET",
        "/api/collections/items/records?perPage=5000",
        Some(&s.su),
        None,
    );
    assert_eq!(r.json()["perPage"], 1000);
    assert_eq!(s.names_as("items", " ", Some(&s.su.clone())), Err(400));
}

#[test]
fn hostile_filter_and_sort_text_never_changes_the_query() {
    let s = Session::start("qr-hostile");
    catalogue(&s);
    let su = Some(s.su.clone());
    for filter in [
        "name = \"x' OR '1'='1\"",
        "name = 'apple\\' || id != \\''",
        "name = '); DELETE FROM items; --'",
        "name = '`items`'",
        "name ~ '/*' && name ~ '*/'",
        "meta.k = 'ünï©ødé'",
    ] {
        assert_eq!(
            s.names_as("items", filter, su.as_deref()),
            Ok(vec![]),
            "{filter}"
        );
    }
    for filter in [
        "name = 1; DELETE FROM items",
        "`name` = 'x'",
        "name = 1 OR 1 = 1",
        "select = 1",
        "items.name = 'x'",
        "@collection.sqlite_master.name = 'items'",
        "@collection.items`.name = 1",
        "owner.`name` = 1",
        "meta.k\" = 1",
    ] {
        assert_eq!(
            s.names_as("items", filter, su.as_deref()),
            Err(400),
            "{filter}"
        );
    }
    for sort in [
        "name;DELETE FROM items",
        "(name)",
        "name)--",
        "`name`",
        "name/**/",
    ] {
        assert_eq!(s.sorted("items", sort), Err(400), "{sort}");
    }
    assert_eq!(s.names("items", "").len(), 4, "nothing was deleted");
}

#[test]
fn rules_read_the_request() {
    let s = Session::start("qr-request");
    let (alice, alice_token) = s.sign_up("users", "alice@example.com", json!({"name": "alice"}));
    s.collection(json!({"name": "notes", "type": "base",
        "fields": [{"name": "name", "type": "text"}, {"name": "n", "type": "number"},
                   {"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1}],
        "listRule": "@request.query.code = 'open' || @request.headers.x_key = 'k1'",
        "viewRule": "",
        "createRule": "@request.body.n:isset = true && @request.body.n <= 5 && @request.auth.name = 'alice'",
        "updateRule": "n < 10 && @request.body.owner:changed = false",
        "deleteRule": "@request.method = 'DELETE' && @request.body.confirm = 'yes'"}));
    let path = "/api/collections/notes/records";
    // list: query parameters and headers (lower-cased, '-' → '_')
    let id = s.create("notes", json!({"name": "a", "n": 1, "owner": alice}));
    let (_, body) = s.with_headers("GET", path, &[], None);
    assert_eq!(body["totalItems"], 0);
    let (_, body) = s.with_headers("GET", &format!("{path}?code=open"), &[], None);
    assert_eq!(body["totalItems"], 1);
    let (_, body) = s.with_headers("GET", path, &[("X-Key", "k1")], None);
    assert_eq!(body["totalItems"], 1);
    // create: the body and the caller's record
    let auth = [("Authorization", alice_token.as_str())];
    assert_eq!(
        s.with_headers("POST", path, &auth, Some(&json!({"name": "b", "n": 9})))
            .0,
        400
    );
    assert_eq!(
        s.with_headers("POST", path, &auth, Some(&json!({"name": "b"})))
            .0,
        400
    );
    assert_eq!(
        s.with_headers("POST", path, &[], Some(&json!({"name": "b", "n": 2})))
            .0,
        400
    );
    assert_eq!(
        s.with_headers("POST", path, &auth, Some(&json!({"name": "b", "n": "2"})))
            .0,
        200
    );
    // update: the rule sees the record before the change (n 1 → 50 passes,
    // then 50 → 1 does not), and `:changed` compares typed values
    let one = format!("{path}/{id}");
    assert_eq!(
        s.with_headers("PATCH", &one, &[], Some(&json!({"n": 50})))
            .0,
        200
    );
    assert_eq!(
        s.with_headers("PATCH", &one, &[], Some(&json!({"n": 1}))).0,
        404
    );
    s.server
        .request("PATCH", &one, Some(&s.su), Some(&json!({"n": 1})));
    assert_eq!(
        s.with_headers("PATCH", &one, &[], Some(&json!({"owner": alice})))
            .0,
        200
    );
    assert_eq!(
        s.with_headers("PATCH", &one, &[], Some(&json!({"owner": ""})))
            .0,
        404
    );
    // modifier keys reach rules as the value they produce
    s.patch_collection("notes", json!({"updateRule": "@request.body.n = 4"}));
    assert_eq!(
        s.with_headers("PATCH", &one, &[], Some(&json!({"n+": 3})))
            .0,
        200
    );
    // delete: the rule reads the DELETE's body
    assert_eq!(
        s.with_headers("DELETE", &one, &[], Some(&json!({"confirm": "no"})))
            .0,
        404
    );
    assert_eq!(
        s.with_headers("DELETE", &one, &[], Some(&json!({"confirm": "yes"})))
            .0,
        204
    );
}

#[test]
fn collection_rules_with_joins_and_aliases() {
    let s = Session::start("qr-collection");
    let (alice, alice_token) = s.sign_up("users", "alice@example.com", json!({}));
    let (bob, bob_token) = s.sign_up("users", "bob@example.com", json!({}));
    s.collection(json!({"name": "members", "type": "base",
        "fields": [{"name": "user", "type": "relation", "collectionId": "_pb_users_auth_", "maxSelect": 1},
                   {"name": "role", "type": "text"}]}));
    s.create("members", json!({"user": alice, "role": "editor"}));
    s.create("members", json!({"user": bob, "role": "viewer"}));
    s.collection(json!({"name": "docs", "type": "base", "fields": [{"name": "name", "type": "text"}],
        "listRule": "@collection.members.user ?= @request.auth.id",
        // the same alias is the same row: the editor membership must be the caller's
        "createRule": "@collection.members:m.user ?= @request.auth.id && @collection.members:m.role ?= 'editor'"}));
    s.create("docs", json!({"name": "doc"}));
    assert_eq!(
        s.names_as("docs", "", Some(&bob_token)).unwrap(),
        list_of(&["doc"])
    );
    assert_eq!(s.names_as("docs", "", None).unwrap(), list_of(&[]));
    let path = "/api/collections/docs/records";
    let post = |token: &str| {
        s.server
            .request("POST", path, Some(token), Some(&json!({"name": "new"})))
            .status
    };
    assert_eq!(post(&alice_token), 200);
    assert_eq!(post(&bob_token), 400);
}

#[test]
fn manage_rule_grants_full_edit_of_other_auth_records() {
    let s = Session::start("qr-manage");
    s.collection(
        json!({"name": "staff", "type": "auth", "fields": [{"name": "role", "type": "text"}],
        "listRule": "", "viewRule": "", "createRule": "", "updateRule": "@request.auth.id != ''",
        "manageRule": "@request.auth.role = 'admin'"}),
    );
    let (_, admin) = s.sign_up("staff", "admin@example.com", json!({"role": "admin"}));
    let (bob, _) = s.sign_up("staff", "bob@example.com", json!({"role": "user"}));
    let (_, carl) = s.sign_up("staff", "carl@example.com", json!({"role": "user"}));
    let one = format!("/api/collections/staff/records/{bob}");
    let patch =
        |token: &str, body: Value| s.server.request("PATCH", &one, Some(token), Some(&body));
    // others: no verified, no password without the old one
    let r = patch(&carl, json!({"verified": true}));
    assert_eq!(
        r.assert_error(400)["data"]["verified"]["code"],
        "validation_values_mismatch"
    );
    let r = patch(
        &carl,
        json!({"password": "new-pass-123", "passwordConfirm": "new-pass-123"}),
    );
    assert_eq!(
        r.assert_error(400)["data"]["oldPassword"]["code"],
        "validation_required"
    );
    let viewed = s.server.request("GET", &one, Some(&carl), None).json();
    assert!(viewed.get("email").is_none());
    // the manager may, and sees the email
    let r = patch(&admin, json!({"verified": true}));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["verified"], true);
    assert_eq!(r.json()["email"], "bob@example.com");
    let r = patch(
        &admin,
        json!({"password": "new-pass-123", "passwordConfirm": "new-pass-123"}),
    );
    assert_eq!(r.status, 200);
    s.server.login("staff", "bob@example.com", "new-pass-123");
    let r = patch(&admin, json!({"email": "robert@example.com"}));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["email"], "robert@example.com");
    let viewed = s.server.request("GET", &one, Some(&admin), None).json();
    assert_eq!(viewed["email"], "robert@example.com");
    let (_, list) = s.list("staff", "", Some(&admin));
    assert!(list["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["email"].is_string()));
    // creating a verified record needs the same right
    let new = |token: &str, email: &str| {
        s.server.request("POST", "/api/collections/staff/records", Some(token), Some(&json!({
            "email": email, "password": "pass-12345", "passwordConfirm": "pass-12345", "verified": true})))
    };
    assert_eq!(new(&admin, "d@example.com").json()["verified"], true);
    assert_eq!(
        new(&carl, "e@example.com").assert_error(400)["data"]["verified"]["code"],
        "validation_values_mismatch"
    );
}
