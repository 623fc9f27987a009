//! Record filters on a real in-memory SQLite database shaped like the
//! reference's tables. Expected results were recorded from the reference
//! binary (v0.40.6) on the same data unless a comment says otherwise.

use super::*;
use crate::collections::defaults::new_collection;
use crate::collections::{CollectionType, Field, FieldKind};
use crate::records::sql;
use rusqlite::Connection;
use serde_json::{json, Map};
use std::sync::Arc;

const TEAMS: &str = "pbc_teams";
const PEOPLE: &str = "pbc_people";
const ITEMS: &str = "pbc_items";
const REVIEWS: &str = "pbc_reviews";
const USERS: &str = "_pb_users_auth_";

fn number() -> FieldKind {
    FieldKind::Number {
        min: None,
        max: None,
        only_int: false,
    }
}

fn text() -> FieldKind {
    FieldKind::default_for("text").unwrap()
}

fn relation(to: &str, max_select: i64) -> FieldKind {
    FieldKind::Relation {
        collection_id: to.into(),
        cascade_delete: false,
        min_select: 0,
        max_select,
    }
}

fn base(id: &str, name: &str, list_rule: Option<&str>, fields: Vec<Field>) -> Collection {
    let mut c = new_collection(CollectionType::Base, id, name);
    c.fields.extend(fields);
    c.list_rule = list_rule.map(str::to_owned);
    c
}

struct Fixture {
    conn: Connection,
    schema: Schema,
    ids: Map<String, Value>,
}

impl Fixture {
    fn collection(&self, id: &str) -> &Collection {
        self.schema.get(id).unwrap()
    }

    fn id(&self, name: &str) -> String {
        self.ids[name].as_str().unwrap().to_owned()
    }

    fn set_list_rule(&mut self, id: &str, rule: Option<&str>) {
        let mut all: Vec<Collection> = self.schema.all().iter().map(|c| (**c).clone()).collect();
        for c in &mut all {
            if c.id == id {
                c.list_rule = rule.map(str::to_owned);
            }
        }
        self.schema = Schema::from_collections(all);
    }

    /// Names of the items matching `filter` (a client filter for `info`).
    fn items(&self, filter: &str, info: &RequestInfo) -> Result<Vec<String>, FilterError> {
        self.names(ITEMS, "name", |q| q.add_client_filter(filter), info)
    }

    fn names(
        &self,
        collection: &str,
        column: &str,
        add: impl FnOnce(&mut RecordQuery<'_>) -> Result<(), FilterError>,
        info: &RequestInfo,
    ) -> Result<Vec<String>, FilterError> {
        let collection = self.collection(collection);
        let mut query = RecordQuery::new(&self.schema, collection, info);
        add(&mut query)?;
        let clause = query.finish();
        let table = quote_ident(&collection.name);
        let mut sql = format!("SELECT {table}.`{column}` FROM {table}");
        if !clause.sql.is_empty() {
            sql.push_str(&format!(" WHERE {}", clause.sql));
        }
        sql.push_str(&format!(" ORDER BY {table}.`{column}`"));
        let mut stmt = self
            .conn
            .prepare(&sql)
            .unwrap_or_else(|e| panic!("{e}: {sql}"));
        let rows = stmt
            .query_map(rusqlite::params_from_iter(clause.params), |r| r.get(0))
            .unwrap();
        Ok(rows.map(Result::unwrap).collect())
    }

    /// Item names in the order `sort` gives (ties by insertion).
    fn sorted(&self, sort: &str, info: &RequestInfo) -> Result<Vec<String>, FilterError> {
        let items = self.collection(ITEMS);
        let mut query = RecordQuery::new(&self.schema, items, info);
        let keys = query.add_client_sort(sort)?;
        let clause = query.finish();
        let mut params = clause.params.clone();
        let mut order = Vec::new();
        for key in &keys {
            match key {
                SortKey::Expr { sql, desc } => {
                    params.extend(sql.params.iter().cloned());
                    order.push(format!(
                        "{} {}",
                        sql.sql,
                        if *desc { "DESC" } else { "ASC" }
                    ));
                }
                SortKey::Random => order.push("RANDOM()".into()),
                SortKey::Rowid { desc } => {
                    order.push(format!("_rowid_ {}", if *desc { "DESC" } else { "ASC" }))
                }
            }
        }
        order.push("`items`._rowid_".into());
        let mut sql = "SELECT `name` FROM `items`".to_string();
        if !clause.sql.is_empty() {
            sql.push_str(&format!(" WHERE {}", clause.sql));
        }
        sql.push_str(&format!(" ORDER BY {}", order.join(", ")));
        let mut stmt = self
            .conn
            .prepare(&sql)
            .unwrap_or_else(|e| panic!("{e}: {sql}"));
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), |r| r.get(0))
            .unwrap();
        Ok(rows.map(Result::unwrap).collect())
    }
}

fn fixture() -> Fixture {
    let teams = base(TEAMS, "teams", Some(""), vec![Field::new("title", text())]);
    let mut secret = Field::new("secret", text());
    secret.hidden = true;
    let people = base(
        PEOPLE,
        "people",
        Some(""),
        vec![
            Field::new("name", text()),
            Field::new("team", relation(TEAMS, 1)),
            secret,
        ],
    );
    let items = base(
        ITEMS,
        "items",
        Some(""),
        vec![
            Field::new("name", text()),
            Field::new("n", number()),
            Field::new("ok", FieldKind::Bool),
            Field::new(
                "tags",
                FieldKind::Select {
                    values: vec!["a".into(), "b".into(), "c".into()],
                    max_select: 3,
                },
            ),
            Field::new("when", FieldKind::default_for("date").unwrap()),
            Field::new("meta", FieldKind::Json { max_size: 0 }),
            Field::new("owner", relation(PEOPLE, 1)),
            Field::new("friends", relation(PEOPLE, 5)),
            Field::new("loc", FieldKind::GeoPoint),
        ],
    );
    let reviews = base(
        REVIEWS,
        "reviews",
        None,
        vec![
            Field::new("text", text()),
            Field::new("stars", number()),
            Field::new("item", relation(ITEMS, 1)),
        ],
    );
    let mut users = new_collection(CollectionType::Auth, USERS, "users");
    users.fields.push(Field::new("name", text()));
    users.fields.push(Field::new("team", relation(TEAMS, 1)));
    users.list_rule = Some(String::new());
    let all = vec![
        teams,
        people,
        items,
        reviews,
        users,
        superusers_collection(),
    ];

    let conn = Connection::open_in_memory().unwrap();
    for c in &all {
        let columns: Vec<String> = c
            .fields
            .iter()
            .map(|f| format!("{} {}", quote_ident(&f.name), f.kind.column_type()))
            .collect();
        conn.execute_batch(&format!(
            "CREATE TABLE {} ({})",
            quote_ident(&c.name),
            columns.join(", ")
        ))
        .unwrap();
    }
    let schema = Schema::from_collections(all);
    let mut ids = Map::new();
    let mut n = 0;
    let mut insert = |conn: &Connection, key: &str, collection: &str, data: Value| {
        n += 1;
        let id = format!("{key:_<15}").replace('\'', "q");
        let collection = schema.get(collection).unwrap();
        let mut values = RecordValues::zero(collection);
        values.set("id", json!(id));
        for (k, v) in data.as_object().unwrap() {
            values.set(k, v.clone());
        }
        sql::insert(conn, collection, &values).unwrap();
        ids.insert(key.into(), json!(id));
        id
    };
    let red = insert(&conn, "red", TEAMS, json!({"title": "Red"}));
    let blue = insert(&conn, "blue", TEAMS, json!({"title": "Blue"}));
    let ann = insert(
        &conn,
        "ann",
        PEOPLE,
        json!({"name": "Ann", "team": red, "secret": "s1"}),
    );
    let bob = insert(&conn, "bob", PEOPLE, json!({"name": "Bob", "team": blue}));
    let cat = insert(&conn, "cat", PEOPLE, json!({"name": "Cat"}));
    let apple = insert(
        &conn,
        "apple",
        ITEMS,
        json!({"name": "apple", "n": 1, "ok": true, "tags": ["a"], "when": "2020-01-01 00:00:00.000Z",
               "meta": {"k": 1, "list": ["x", "y"]}, "owner": ann, "friends": [bob], "loc": {"lon": 10, "lat": 20}}),
    );
    let banana = insert(
        &conn,
        "banana",
        ITEMS,
        json!({"name": "banana", "n": 2, "ok": false, "tags": ["a", "b"], "when": "2021-06-15 12:00:00.000Z",
               "meta": {"k": 2}, "owner": bob, "friends": [ann, bob]}),
    );
    insert(
        &conn,
        "cherry",
        ITEMS,
        json!({"name": "cherry", "n": 3, "ok": true, "tags": ["b", "c"], "when": "2099-01-01 00:00:00.000Z",
               "owner": ann, "friends": [cat]}),
    );
    insert(
        &conn,
        "its",
        ITEMS,
        json!({"name": "it's", "n": 4, "tags": [], "meta": {"k": "x"}}),
    );
    insert(
        &conn,
        "hi",
        ITEMS,
        json!({"name": "say \"hi\"", "n": 5, "ok": true, "tags": ["c"]}),
    );
    insert(
        &conn,
        "pct",
        ITEMS,
        json!({"name": "100%", "n": 5, "tags": ["a", "b", "c"]}),
    );
    insert(
        &conn,
        "apricot",
        ITEMS,
        json!({"name": "Apricot", "n": 6, "ok": true, "tags": ["b"]}),
    );
    insert(
        &conn,
        "mix",
        ITEMS,
        json!({"name": "mix", "n": 7, "friends": [ann, cat]}),
    );
    insert(
        &conn,
        "r1",
        REVIEWS,
        json!({"text": "great", "stars": 5, "item": apple}),
    );
    insert(
        &conn,
        "r2",
        REVIEWS,
        json!({"text": "poor", "stars": 1, "item": apple}),
    );
    insert(
        &conn,
        "r3",
        REVIEWS,
        json!({"text": "fine", "stars": 3, "item": banana}),
    );
    insert(
        &conn,
        "u1",
        USERS,
        json!({"email": "one@x.co", "emailVisibility": true, "name": "one", "team": red, "verified": true}),
    );
    insert(
        &conn,
        "u2",
        USERS,
        json!({"email": "two@x.co", "name": "two"}),
    );
    Fixture { conn, schema, ids }
}

fn superusers_collection() -> Collection {
    let mut su = new_collection(
        CollectionType::Auth,
        crate::auth::token::SUPERUSERS_ID,
        "_superusers",
    );
    su.system = true;
    su
}

fn superuser() -> RequestInfo {
    let su = superusers_collection();
    let mut record = RecordValues::new();
    record.set("id", json!("su0000000000000"));
    record.set("email", json!("su@x.co"));
    RequestInfo::new(Some(Auth {
        collection: Arc::new(su),
        record: Arc::new(record),
        token: "".into(),
        refreshable: false,
    }))
}

fn guest() -> RequestInfo {
    RequestInfo::new(None)
}

fn user(fx: &Fixture, key: &str) -> RequestInfo {
    let users = fx.collection(USERS);
    let id = fx.id(key);
    let row = sql::find_by_id(&fx.conn, users, &id).unwrap().unwrap();
    RequestInfo::new(Some(Auth {
        collection: Arc::new(users.clone()),
        record: Arc::new(row),
        token: "".into(),
        refreshable: false,
    }))
}

fn names(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// Asserts a superuser filter's matches (compared as sorted sets).
fn check(fx: &Fixture, filter: &str, expected: &[&str]) {
    let mut got = fx
        .items(filter, &superuser())
        .unwrap_or_else(|e| panic!("{filter:?}: {e}"));
    got.sort();
    assert_eq!(got, names(expected), "{filter}");
}

const EMPTY_FRIENDS: [&str; 4] = ["100%", "Apricot", "it's", "say \"hi\""];

#[test]
fn own_fields_and_modifiers() {
    let fx = fixture();
    check(&fx, "n >= 2 && n < 4", &["banana", "cherry"]);
    check(&fx, "name:lower = 'apricot'", &["Apricot"]);
    check(&fx, "name:isset = true", &[]);
    check(&fx, "name:changed = true", &[]);
    check(&fx, "name:length = 5", &[]);
    check(&fx, "tags:each = 'c'", &["say \"hi\""]);
    check(&fx, "tags:each ?= 'a'", &["100%", "apple", "banana"]);
    check(
        &fx,
        "tags:each != 'a'",
        &["Apricot", "cherry", "it's", "mix", "say \"hi\""],
    );
    check(&fx, "tags:length = 0", &["it's", "mix"]);
    check(&fx, "tags = 'a'", &[]);
    check(&fx, "tags ~ 'c'", &["100%", "cherry", "say \"hi\""]);
    check(&fx, "friends:length = 2", &["banana", "mix"]);
    check(&fx, "owner:length = 1", &["apple", "banana", "cherry"]);
    check(&fx, "friends:each ?= ''", &EMPTY_FRIENDS);
}

#[test]
fn json_and_geo_paths() {
    let fx = fixture();
    check(&fx, "meta.k = 2", &["banana"]);
    check(&fx, "meta.k = 'x'", &["it's"]);
    check(&fx, "meta.list.1 = 'y'", &["apple"]);
    check(
        &fx,
        "meta = null",
        &["100%", "Apricot", "cherry", "mix", "say \"hi\""],
    );
    check(
        &fx,
        "meta.x.y = null",
        &[
            "100%",
            "Apricot",
            "apple",
            "banana",
            "cherry",
            "it's",
            "mix",
            "say \"hi\"",
        ],
    );
    check(&fx, "loc.lat = 20", &["apple"]);
    check(&fx, "loc.lon > 5", &["apple"]);
}

#[test]
fn single_relation_paths() {
    let fx = fixture();
    check(&fx, "owner.name = 'Ann'", &["apple", "cherry"]);
    check(&fx, "owner.team.title = 'Blue'", &["banana"]);
    check(
        &fx,
        "owner.name != 'Ann'",
        &["100%", "Apricot", "banana", "it's", "mix", "say \"hi\""],
    );
    check(
        &fx,
        "owner.id = ''",
        &["100%", "Apricot", "it's", "mix", "say \"hi\""],
    );
    check(&fx, "owner.name:lower = 'ann'", &["apple", "cherry"]);
    check(&fx, "owner.secret = 's1'", &["apple", "cherry"]);
}

#[test]
fn multiple_relation_paths_any_and_every() {
    let fx = fixture();
    check(&fx, "friends.name ?= 'Bob'", &["apple", "banana"]);
    check(&fx, "friends.name = 'Bob'", &["apple"]);
    check(&fx, "friends.name = ''", &EMPTY_FRIENDS);
    check(
        &fx,
        "friends.name != 'Bob'",
        &["100%", "Apricot", "cherry", "it's", "mix", "say \"hi\""],
    );
    check(
        &fx,
        "friends.name ?!= 'Bob'",
        &[
            "100%",
            "Apricot",
            "banana",
            "cherry",
            "it's",
            "mix",
            "say \"hi\"",
        ],
    );
    check(
        &fx,
        "friends.name > 'A'",
        &["apple", "banana", "cherry", "mix"],
    );
    check(&fx, "friends.name:lower ?= 'ann'", &["banana", "mix"]);
    // one shared set of joined rows: the same friend must be Ann and Bob
    check(&fx, "friends.name ?= 'Ann' && friends.name ?= 'Bob'", &[]);
    check(
        &fx,
        "friends.name ?= 'Ann' || friends.name ?= 'Bob'",
        &["apple", "banana", "mix"],
    );
    // a friend without a team has a NULL title, which never fails `=`/`>`
    check(&fx, "friends.team.title = 'Red'", &["mix"]);
    check(&fx, "friends.team.title > 'A'", &["apple", "banana", "mix"]);
    check(&fx, "friends.team.title != ''", &["apple", "banana"]);
    check(&fx, "friends.team.title ?= 'Red'", &["banana", "mix"]);
}

#[test]
fn back_relations() {
    let fx = fixture();
    check(&fx, "reviews_via_item.stars ?> 4", &["apple"]);
    check(&fx, "reviews_via_item.stars > 0", &["apple", "banana"]);
    check(&fx, "reviews_via_item.text ?= 'fine'", &["banana"]);
    check(&fx, "reviews_via_item.id ?!= ''", &["apple", "banana"]);
    check(
        &fx,
        "reviews_via_item.stars != 5",
        &[
            "100%",
            "Apricot",
            "banana",
            "cherry",
            "it's",
            "mix",
            "say \"hi\"",
        ],
    );
    check(
        &fx,
        "reviews_via_item.id = ''",
        &["100%", "Apricot", "cherry", "it's", "mix", "say \"hi\""],
    );
    // through a relation, then back (people ← items.owner)
    let got = fx
        .names(
            PEOPLE,
            "name",
            |q| q.add_client_filter("items_via_owner.name ?= 'banana'"),
            &superuser(),
        )
        .unwrap();
    assert_eq!(got, names(&["Bob"]));
    // a name that is not a back-relation is an unknown field
    assert!(fx.items("nosuch_via_item.x = 1", &superuser()).is_err());
    assert!(fx.items("reviews_via_text.x = 1", &superuser()).is_err());
}

#[test]
fn collection_joins_and_aliases() {
    let fx = fixture();
    check(&fx, "@collection.reviews.item ?= id", &["apple", "banana"]);
    check(&fx, "@collection.reviews.item = id", &[]);
    check(
        &fx,
        "@collection.people.name ?= owner.name",
        &["apple", "banana", "cherry"],
    );
    // an alias names one shared row; two aliases are independent rows
    check(
        &fx,
        "@collection.reviews:r.item ?= id && @collection.reviews:r.stars ?= 3",
        &["banana"],
    );
    check(
        &fx,
        "@collection.reviews:a.item ?= id && @collection.reviews:b.stars ?= 3",
        &["apple", "banana"],
    );
    assert!(fx.items("@collection.nosuch.x = 1", &superuser()).is_err());
    assert!(fx.items("@collection.reviews = 1", &superuser()).is_err());
}

#[test]
fn request_values() {
    let fx = fixture();
    let mut info = superuser();
    info.method = "GET".into();
    info.query = RequestFields::from_map(json!({"code": "open"}).as_object().cloned().unwrap());
    info.headers = RequestFields::from_map(json!({"x_token": "abc"}).as_object().cloned().unwrap());
    let all = fx.items("", &info).unwrap();
    let run = |filter: &str| fx.items(filter, &info).unwrap();
    assert_eq!(
        run("@request.method = 'GET' && @request.context = 'default'"),
        all
    );
    assert_eq!(run("@request.query.code = 'open'"), all);
    assert_eq!(run("@request.query.code = 'closed'"), Vec::<String>::new());
    assert_eq!(run("@request.headers.x_token = 'abc'"), all);
    assert_eq!(run("@request.headers.x_token:isset = true"), all);
    assert_eq!(run("@request.headers.nope:isset = false"), all);
    assert_eq!(
        run("@request.query.code:lower = 'OPEN'"),
        Vec::<String>::new()
    );
    assert_eq!(run("@request.query.code:lower = 'open'"), all);
    assert_eq!(run("@request.auth.collectionName = '_superusers'"), all);
    assert_eq!(run("@request.auth.nope = null"), all);
    assert!(fx.items("@request.nope = null", &info).is_err());
    assert!(fx
        .items("@request.query.code:changed = true", &info)
        .is_err());
}

#[test]
fn request_auth_fields_and_relations() {
    let fx = fixture();
    let one = user(&fx, "u1");
    let two = user(&fx, "u2");
    let rule = |info: &RequestInfo, rule: &str| {
        fx.names(ITEMS, "name", |q| q.add_rule(rule), info)
            .unwrap()
            .len()
    };
    assert_eq!(rule(&one, "@request.auth.id != ''"), 8);
    assert_eq!(rule(&guest(), "@request.auth.id != ''"), 0);
    assert_eq!(rule(&one, "@request.auth.verified = true"), 8);
    assert_eq!(rule(&two, "@request.auth.verified = true"), 0);
    // non-plain fields come from the auth record's row
    assert_eq!(rule(&one, "@request.auth.name = 'one'"), 8);
    assert_eq!(rule(&two, "@request.auth.name = 'one'"), 0);
    // relation paths through the auth record
    assert_eq!(rule(&one, "owner.team = @request.auth.team"), 2);
    assert_eq!(rule(&one, "@request.auth.team.title = 'Red'"), 8);
    assert_eq!(rule(&two, "@request.auth.team.title = 'Red'"), 0);
    assert_eq!(rule(&guest(), "@request.auth.team.title = null"), 8);
}

fn body_rule(fx: &Fixture, rule: &str, body: Value, current: Option<&RecordValues>) -> bool {
    let items = fx.collection(ITEMS);
    let info = guest().with_body(body.as_object().unwrap().clone());
    let id = current.map(|r| r.id().to_owned()).unwrap_or(fx.id("apple"));
    record_satisfies_on(&fx.conn, &fx.schema, items, rule, &id, &info, current).unwrap()
}

#[test]
fn request_body_values_and_modifiers() {
    let fx = fixture();
    let items = fx.collection(ITEMS);
    let apple = sql::find_by_id(&fx.conn, items, &fx.id("apple"))
        .unwrap()
        .unwrap();
    assert!(body_rule(&fx, "@request.body.n = 5", json!({"n": 5}), None));
    // a numeric string is a number for a number field
    assert!(body_rule(
        &fx,
        "@request.body.n = 5",
        json!({"n": "5"}),
        None
    ));
    assert!(!body_rule(
        &fx,
        "@request.body.n = '5'",
        json!({"n": 5}),
        None
    ));
    assert!(body_rule(
        &fx,
        "@request.body.title:isset = false",
        json!({}),
        None
    ));
    assert!(body_rule(
        &fx,
        "@request.body.name:isset = true",
        json!({"name": null}),
        None
    ));
    // modifier keys resolve against the record: apple.n = 1, n+ 3 → 4
    assert!(body_rule(
        &fx,
        "@request.body.n = 4 && @request.body.n:isset = true",
        json!({"n+": 3}),
        Some(&apple)
    ));
    assert!(body_rule(
        &fx,
        "@request.body.tags:each ?= 'b'",
        json!({"tags": ["a", "b"]}),
        None
    ));
    assert!(body_rule(
        &fx,
        "@request.body.tags:each ?= 'b'",
        json!({"tags": "b"}),
        None
    ));
    assert!(!body_rule(
        &fx,
        "@request.body.tags:each = 'b'",
        json!({"tags": ["a", "b"]}),
        None
    ));
    assert!(!body_rule(
        &fx,
        "@request.body.tags:each = 'b'",
        json!({"tags": []}),
        None
    ));
    assert!(body_rule(
        &fx,
        "@request.body.tags:length = 2",
        json!({"tags": ["a", "b"]}),
        None
    ));
    assert!(body_rule(
        &fx,
        "@request.body.name:lower = 'abc'",
        json!({"name": "ABC"}),
        None
    ));
    assert!(body_rule(
        &fx,
        "@request.body.meta.a.0 = 1",
        json!({"meta": {"a": [1]}}),
        None
    ));
    let ann = fx.id("ann");
    assert!(body_rule(
        &fx,
        "@request.body.owner.name = 'Ann'",
        json!({"owner": ann}),
        None
    ));
    assert!(!body_rule(
        &fx,
        "@request.body.owner.name = 'Ann'",
        json!({}),
        None
    ));
    let (ann, bob) = (fx.id("ann"), fx.id("bob"));
    assert!(body_rule(
        &fx,
        "@request.body.friends.name ?= 'Bob'",
        json!({"friends": [ann, bob]}),
        None
    ));
    assert!(!body_rule(
        &fx,
        "@request.body.friends.name = 'Bob'",
        json!({"friends": [ann, bob]}),
        None
    ));
    // `:each`/`:length` need a list field
    let info = guest();
    assert!(RecordQuery::new(&fx.schema, items, &info)
        .add_rule("@request.body.name:each = 'x'")
        .is_err());
    assert!(RecordQuery::new(&fx.schema, items, &info)
        .add_rule("@request.body.n:length = 0")
        .is_err());
}

#[test]
fn request_body_changed_compares_the_typed_value() {
    let fx = fixture();
    let items = fx.collection(ITEMS);
    let apple = sql::find_by_id(&fx.conn, items, &fx.id("apple"))
        .unwrap()
        .unwrap();
    let changed = |body: Value| {
        let key = body.as_object().unwrap().keys().next().unwrap().clone();
        let rule = format!("@request.body.{key}:changed = true");
        body_rule(&fx, &rule, body, Some(&apple))
    };
    assert!(!changed(json!({"n": 1})));
    assert!(!changed(json!({"n": "1.0"})));
    assert!(changed(json!({"n": 2})));
    assert!(changed(json!({"n": "abc"})));
    assert!(!changed(json!({"ok": "true"})));
    assert!(!changed(json!({"when": "2020-01-01"})));
    assert!(!changed(json!({"tags": ["a"]})));
    assert!(changed(json!({"tags": ["a", "b"]})));
    assert!(!changed(json!({"meta": {"k": 1, "list": ["x", "y"]}})));
    assert!(changed(json!({"name": "apple "})));
    assert!(changed(json!({"name": null})));
    // absent, or outside an update: never changed
    assert!(!body_rule(
        &fx,
        "@request.body.name:changed = true",
        json!({}),
        Some(&apple)
    ));
    assert!(!body_rule(
        &fx,
        "@request.body.name:changed = true",
        json!({"name": "x"}),
        None
    ));
    let info = guest();
    assert!(RecordQuery::new(&fx.schema, items, &info)
        .add_rule("@request.body.nosuch:changed = true")
        .is_err());
}

#[test]
fn client_filters_hide_what_the_caller_may_not_list() {
    let mut fx = fixture();
    let err = |fx: &Fixture, filter: &str| fx.items(filter, &guest()).unwrap_err();
    assert!(matches!(
        err(&fx, "owner.secret = 's1'"),
        FilterError::Invalid(_)
    ));
    assert!(matches!(
        err(&fx, "owner.secret:isset = true"),
        FilterError::Invalid(_)
    ));
    // reviews' list rule is null: only superusers may filter through it
    assert!(matches!(
        err(&fx, "reviews_via_item.stars ?> 4"),
        FilterError::Invalid(_)
    ));
    assert!(matches!(
        err(&fx, "@request.auth.id = ''"),
        FilterError::Forbidden(_)
    ));
    assert!(matches!(
        err(&fx, "@collection.reviews.stars > 1"),
        FilterError::Forbidden(_)
    ));
    assert_eq!(fx.items("owner.name = 'Ann'", &guest()).unwrap().len(), 2);

    // an expression list rule limits the joined rows, for the whole filter
    fx.set_list_rule(PEOPLE, Some("name = 'Bob'"));
    let run = |fx: &Fixture, filter: &str| {
        let mut got = fx.items(filter, &guest()).unwrap();
        got.sort();
        got
    };
    assert_eq!(run(&fx, "owner.name = 'Ann'"), names(&[]));
    assert_eq!(run(&fx, "owner.name = 'Bob'"), names(&["banana"]));
    assert_eq!(
        run(&fx, "owner.name != 'Zed'"),
        names(&["100%", "Apricot", "banana", "it's", "mix", "say \"hi\""])
    );
    assert_eq!(
        run(&fx, "owner.id = ''"),
        names(&["100%", "Apricot", "it's", "mix", "say \"hi\""])
    );
    assert_eq!(run(&fx, "owner.name = 'Ann' || name = 'apple'"), names(&[]));
    assert_eq!(run(&fx, "friends.name ?= 'Ann'"), names(&[]));
    assert_eq!(run(&fx, "friends.name = 'Bob'"), names(&["apple"]));
    // superusers and rules are not limited
    assert_eq!(
        fx.items("owner.name = 'Ann'", &superuser()).unwrap().len(),
        2
    );
    let by_rule = fx
        .names(
            ITEMS,
            "name",
            |q| q.add_rule("owner.name = 'Ann'"),
            &guest(),
        )
        .unwrap();
    assert_eq!(by_rule.len(), 2);

    fx.set_list_rule(PEOPLE, None);
    assert!(fx.items("owner.name = 'Ann'", &guest()).is_err());
    // `rel.id` needs no join, so it stays allowed
    assert_eq!(
        run(&fx, "owner.id != ''"),
        names(&["apple", "banana", "cherry"])
    );
}

#[test]
fn hidden_emails_do_not_match_for_other_callers() {
    let fx = fixture();
    let users = |filter: &str, info: &RequestInfo| {
        fx.names(USERS, "name", |q| q.add_client_filter(filter), info)
            .unwrap()
    };
    let two = user(&fx, "u2");
    assert_eq!(users("email = 'two@x.co'", &guest()), Vec::<String>::new());
    assert_eq!(
        users("email = 'two@x.co'", &two),
        Vec::<String>::new(),
        "not even one's own"
    );
    assert_eq!(users("email = 'one@x.co'", &guest()), vec!["one"]);
    assert_eq!(users("email = ''", &guest()), Vec::<String>::new());
    assert_eq!(users("email != ''", &guest()), vec!["one"]);
    assert_eq!(users("email = 'two@x.co'", &superuser()), vec!["two"]);
    assert!(fx
        .names(
            USERS,
            "name",
            |q| q.add_client_filter("password != ''"),
            &guest()
        )
        .is_err());
    assert!(fx
        .names(
            USERS,
            "name",
            |q| q.add_client_filter("tokenKey != ''"),
            &guest()
        )
        .is_err());
}

#[test]
fn sort_keys() {
    let fx = fixture();
    let su = superuser();
    let sorted = |sort: &str| {
        fx.sorted(sort, &su)
            .unwrap_or_else(|e| panic!("{sort}: {e}"))
    };
    assert_eq!(sorted("-n,name")[..3], ["mix", "Apricot", "100%"]);
    assert_eq!(
        sorted("-owner.name,name"),
        [
            "banana",
            "apple",
            "cherry",
            "100%",
            "Apricot",
            "it's",
            "mix",
            "say \"hi\""
        ]
    );
    assert_eq!(
        sorted("owner.team.title"),
        [
            "it's",
            "say \"hi\"",
            "100%",
            "Apricot",
            "mix",
            "banana",
            "apple",
            "cherry"
        ]
    );
    // a multi-valued key sorts by the first related value
    assert_eq!(
        sorted("friends.name"),
        [
            "it's",
            "say \"hi\"",
            "100%",
            "Apricot",
            "banana",
            "mix",
            "apple",
            "cherry"
        ]
    );
    assert_eq!(
        sorted("-friends.name"),
        [
            "cherry",
            "apple",
            "banana",
            "mix",
            "it's",
            "say \"hi\"",
            "100%",
            "Apricot"
        ]
    );
    assert_eq!(
        sorted("meta.k"),
        [
            "cherry",
            "say \"hi\"",
            "100%",
            "Apricot",
            "mix",
            "apple",
            "banana",
            "it's"
        ]
    );
    assert_eq!(
        sorted("-friends:length,name"),
        [
            "banana",
            "mix",
            "apple",
            "cherry",
            "100%",
            "Apricot",
            "it's",
            "say \"hi\""
        ]
    );
    assert_eq!(sorted("loc.lat")[7], "apple");
    for bad in [
        "nosuch",
        "-",
        "n desc",
        "@request.auth.id",
        "strftime('%Y', when)",
        "a,b",
        "n;",
        "n--",
    ] {
        assert!(fx.sorted(bad, &su).is_err(), "{bad}");
    }
    assert!(fx.sorted(&["n"; 8].join(","), &su).is_ok());
    assert!(fx.sorted(&["n"; 9].join(","), &su).is_err());
    // non-superusers: no hidden fields, no locked collections
    assert!(fx.sorted("owner.secret", &guest()).is_err());
    assert!(fx.sorted("reviews_via_item.stars", &guest()).is_err());
    assert!(fx.sorted("owner.secret", &su).is_ok());
}

#[test]
fn sort_through_a_limited_collection_drops_rows_it_may_not_list() {
    let mut fx = fixture();
    fx.set_list_rule(PEOPLE, Some("name = 'Bob'"));
    assert_eq!(
        fx.sorted("-owner.name,name", &guest()).unwrap(),
        ["banana", "100%", "Apricot", "it's", "mix", "say \"hi\""]
    );
}

/// Hostile text in filters and sort keys is either refused or matched
/// literally; it never changes what the query means.
#[test]
fn injection_attempts_never_change_the_meaning() {
    let fx = fixture();
    let su = superuser();
    let literal = [
        "name = \"x' OR 1=1 --\"",
        "name = 'x\\' || id != \\''",
        "name = \"x\\\" || id != \\\"\"",
        "name = '); DROP TABLE items; --'",
        "name = '`items`.`name`'",
        "name ~ '%' || name = '/* */'",
        "name = 'ünï©ødé ' && n = 1",
        "meta.k = '\\'; SELECT 1; --'",
        "\"name\" = name",
    ];
    for filter in literal {
        let got = fx
            .items(filter, &su)
            .unwrap_or_else(|e| panic!("{filter}: {e}"));
        assert!(got.len() <= 1 || filter.contains('%'), "{filter}: {got:?}");
    }
    let refused = [
        "name = 1; DROP TABLE items",
        "name = 1 -- comment",
        "`name` = 'x'",
        "[name] = 'x'",
        "name = 1 OR 1=1",
        "select = 1",
        "items.name = 'x'",
        "@collection.items`.x = 1",
        "@collection.sqlite_master.name = 'x'",
        "owner.`name` = 1",
        "meta.k\" = 1",
        "nâme = 'x'",
    ];
    for filter in refused {
        assert!(fx.items(filter, &su).is_err(), "{filter} should be refused");
    }
    for sort in [
        "name;DROP TABLE items",
        "`name`",
        "name)",
        "(name",
        "name/*",
        "@collection.items.name`",
    ] {
        assert!(fx.sorted(sort, &su).is_err(), "{sort}");
    }
    // the table is intact
    assert_eq!(fx.items("", &su).unwrap().len(), 8);
}

#[test]
fn list_and_count_agree_without_duplicates() {
    let fx = fixture();
    let items = fx.collection(ITEMS);
    let su = superuser();
    for filter in [
        "friends.name ?!= ''",
        "reviews_via_item.stars > 0 || n > 0",
        "@collection.reviews.stars ?> 0",
    ] {
        let mut query = RecordQuery::new(&fx.schema, items, &su);
        query.add_client_filter(filter).unwrap();
        let clause = query.finish();
        let clause_ref = Some((clause.sql.as_str(), clause.params.as_slice()));
        let list = sql::list(&fx.conn, items, clause_ref, &[], None, 0).unwrap();
        let count = sql::count(&fx.conn, items, clause_ref).unwrap();
        assert_eq!(list.len() as u64, count, "{filter}");
        let mut ids: Vec<&str> = list.iter().map(|r| r.id()).collect();
        ids.dedup();
        assert_eq!(ids.len(), list.len(), "{filter}");
    }
}

#[test]
fn rules_validate_against_the_schema() {
    let fx = fixture();
    let items = fx.collection(ITEMS);
    for ok in [
        "owner.team.title = 'x'",
        "reviews_via_item.stars > 1",
        "@collection.reviews:r.stars > 1",
        "@request.auth.anything.deep = 1",
        "@request.body.tags:each = 'a'",
        "@request.body.name:changed = true",
        "geoDistance(loc.lon, loc.lat, 1, 2) < 10",
    ] {
        assert!(validate_rule(&fx.schema, items, ok).is_ok(), "{ok}");
    }
    for bad in [
        "nosuch = 1",
        "owner.nosuch = 1",
        "name.x = 1",
        "@collection.nosuch.x = 1",
        "@request.nope = 1",
        "title:foo = 1",
    ] {
        assert!(validate_rule(&fx.schema, items, bad).is_err(), "{bad}");
    }
}

#[test]
fn superuser_only_mentions() {
    assert_eq!(
        superuser_only_mention(&[Some("a = @request.auth.id"), None]),
        Some("@request.")
    );
    assert_eq!(
        superuser_only_mention(&[None, Some("@collection.x.y")]),
        Some("@collection.")
    );
    // the reference checks the raw text, quoted or not
    assert_eq!(
        superuser_only_mention(&[Some("name = '@request.'")]),
        Some("@request.")
    );
    assert_eq!(superuser_only_mention(&[Some("name = '@request'")]), None);
}

#[test]
fn can_manage_follows_the_manage_rule() {
    let fx = fixture();
    let mut users = fx.collection(USERS).clone();
    let two = sql::find_by_id(&fx.conn, &users, &fx.id("u2"))
        .unwrap()
        .unwrap();
    let one_info = user(&fx, "u1");
    let manages = |users: &Collection, info: &RequestInfo| {
        can_manage(&fx.conn, &fx.schema, users, two.id(), Some(&two), info).unwrap()
    };
    assert!(!manages(&users, &one_info));
    users
        .options
        .insert("manageRule".into(), json!("@request.auth.name = 'one'"));
    assert!(manages(&users, &one_info));
    assert!(!manages(&users, &user(&fx, "u2")));
    assert!(!manages(&users, &guest()));
    let ids = [fx.id("u1"), fx.id("u2")];
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(
        managed_ids(&fx.conn, &fx.schema, &users, &ids, &one_info)
            .unwrap()
            .len(),
        2
    );
    assert!(
        managed_ids(&fx.conn, &fx.schema, &users, &ids, &user(&fx, "u2"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn bundled_sqlite_has_math_functions_for_geo_distance() {
    let fx = fixture();
    check(&fx, "geoDistance(loc.lon, loc.lat, 10, 20) < 1", &["apple"]);
}

/// Random filters and sort keys over the fixture, in every mode, run on
/// SQLite: whatever compiles must execute, and the list and its COUNT must
/// agree. Quick by default; `RECORD_FUZZ_CASES` makes it longer.
#[test]
fn random_filters_execute_and_agree_with_their_count() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let cases = std::env::var("RECORD_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let operand = prop::sample::select(vec![
        "name",
        "n",
        "ok",
        "tags",
        "tags:each",
        "tags:length",
        "meta",
        "meta.k",
        "meta.list.1",
        "owner",
        "owner.id",
        "owner.name",
        "owner.team.title",
        "owner.secret",
        "friends",
        "friends.name",
        "friends:length",
        "friends.team.title",
        "friends:each",
        "reviews_via_item.stars",
        "reviews_via_item.item.owner.name",
        "loc.lat",
        "@request.auth.id",
        "@request.auth.name",
        "@request.auth.team.title",
        "@request.body.n",
        "@request.body.tags:each",
        "@request.body.owner.name",
        "@request.query.q",
        "@collection.reviews.stars",
        "@collection.reviews:r.item.name",
        "@collection.people.name:lower",
        "name:lower",
        "@now",
        "null",
        "true",
        "''",
        "'a'",
        "'x'' OR 1=1'",
        "1",
        "-2.5",
        "geoDistance(loc.lon, loc.lat, 1, 2)",
        "strftime('%Y', when)",
        "created",
        "nosuch",
    ]);
    let op = prop::sample::select(vec![
        "=", "!=", ">", ">=", "<", "<=", "~", "!~", "?=", "?!=", "?>", "?~", "?!~", "?<=",
    ]);
    let comparison = (operand.clone(), op, operand).prop_map(|(l, o, r)| format!("{l} {o} {r}"));
    let filter = comparison.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} && {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} || {b})")),
        ]
    });
    let sort = prop::sample::select(vec![
        "",
        "-n",
        "owner.name",
        "-friends.name",
        "meta.k",
        "reviews_via_item.stars",
        "@random",
        "-@rowid",
        "owner.team.title,name",
        "tags:each",
    ]);
    let fx = fixture();
    let items = fx.collection(ITEMS);
    let mut infos = vec![superuser(), guest(), user(&fx, "u1")];
    for info in &mut infos {
        info.body = json!({"n": 3, "tags": ["a"], "owner": fx.id("ann")})
            .as_object()
            .unwrap()
            .clone();
        info.query = RequestFields::from_map(json!({"q": "x"}).as_object().cloned().unwrap());
    }
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let executed = std::cell::Cell::new(0u32);
    runner
        .run(
            &(filter, sort, 0..3usize, any::<bool>()),
            |(filter, sort, who, as_rule)| {
                let info = &infos[who];
                let mut query = RecordQuery::new(&fx.schema, items, info);
                let added = if as_rule {
                    query.add_rule(&filter)
                } else {
                    query.add_client_filter(&filter)
                };
                let Ok(()) = added else { return Ok(()) };
                let Ok(keys) = query.add_client_sort(sort) else {
                    return Ok(());
                };
                let clause = query.finish();
                assert!(!clause.sql.contains("OR 1=1"), "{}", clause.sql);
                let mut params = clause.params.clone();
                let mut order = Vec::new();
                for key in &keys {
                    if let SortKey::Expr { sql, .. } = key {
                        params.extend(sql.params.iter().cloned());
                        order.push(sql.sql.clone());
                    }
                }
                order.push("`items`._rowid_".into());
                let where_sql = if clause.sql.is_empty() {
                    "1"
                } else {
                    clause.sql.as_str()
                };
                let list_sql = format!(
                    "SELECT `id` FROM `items` WHERE {where_sql} ORDER BY {}",
                    order.join(", ")
                );
                let mut stmt = fx
                    .conn
                    .prepare(&list_sql)
                    .unwrap_or_else(|e| panic!("{filter} / {sort}: {e}: {list_sql}"));
                let ids: Vec<String> = stmt
                    .query_map(rusqlite::params_from_iter(params), |r| r.get(0))
                    .unwrap()
                    .map(|r| r.unwrap_or_else(|e| panic!("{filter}: {e}")))
                    .collect();
                let count_sql = format!("SELECT COUNT(*) FROM `items` WHERE {where_sql}");
                let count: i64 = fx
                    .conn
                    .query_row(&count_sql, rusqlite::params_from_iter(clause.params), |r| {
                        r.get(0)
                    })
                    .unwrap_or_else(|e| panic!("{filter}: {e}"));
                prop_assert_eq!(ids.len() as i64, count);
                executed.set(executed.get() + 1);
                Ok(())
            },
        )
        .unwrap();
    println!("{} of {cases} random filters executed", executed.get());
    assert!(
        executed.get() > cases / 10,
        "the generator mostly makes invalid filters"
    );
}
