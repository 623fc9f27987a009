//! Who may see a record event: the collection's list rule (`/*` topics) or
//! view rule (`/ID` topics), plus a subscription's own `filter`, evaluated
//! for the client's auth against the record exactly as it was committed.
//! `null` lets only superusers through, `""` everyone; superusers pass every
//! rule but still get their own `filter` applied. As in the reference, both
//! see `@request.*` as a `GET` in the `realtime` context whose query and
//! headers are the subscription's options, and they are checked apart (a
//! relation path in the rule and one in the filter join separately).
//!
//! Why a snapshot and not the live table: the dispatcher runs after COMMIT,
//! when later commits may already have changed the record again or (for a
//! delete) removed it. So the event's record is written as the only row of
//! a TEMP table, and a check runs as
//! `SELECT 1 FROM temp.<snapshot> AS <collection> WHERE (rule) AND (filter)`:
//! the rule's column references (`<collection>.<field>`) read the committed
//! values, while anything it reaches in other tables reads the live
//! database. The TEMP table declares the collection's column types, so
//! comparisons get the same column affinity as on the real table. This
//! relies on `RecordQuery` reaching the record's own row only through
//! `<collection>.<field>` (its joins start from `(SELECT 1)`, correlated
//! with the outer row), never through `FROM <collection>`, which would read
//! the live row instead of the snapshot.
//!
//! The connection's main database is opened read-only; only `query_only`
//! is lifted so the in-memory TEMP database can be written.
//!
//! Cost at fan-out: a check's cache key (per event) leaves out whatever its
//! rule cannot read: the auth when neither rule nor filter can use
//! `@request.auth`, the subscription options when there is no filter and
//! the rule reads neither `@request.query` nor `@request.headers`. A rule
//! such as `views > 10` then runs once per event for every client.

use super::topic::{RuleKind, SubscriptionOptions};
use super::ClientAuth;
use crate::auth::Auth;
use crate::collections::{Collection, Schema};
use crate::query::SqlValue;
use crate::records::filter::{RecordQuery, RequestFields, RequestInfo};
use crate::records::sql::to_sql;
use crate::records::RecordValues;
use crate::store::quote_ident;
use rusqlite::Connection;
use serde_json::{Map, Value};
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// `@request.context` of rules checked for realtime events.
const REALTIME_CONTEXT: &str = "realtime";

/// One-row TEMP tables holding the record of the event being delivered,
/// one per collection, rebuilt when the collection's columns change.
pub(super) struct Snapshots {
    conn: Connection,
    tables: HashMap<String, SnapshotTable>,
    next_table: u64,
}

struct SnapshotTable {
    /// Quoted, ready for SQL.
    name: String,
    /// Hash of the column names and types it was created with.
    shape: u64,
}

impl Snapshots {
    /// Takes a read connection (`store::open_reader`) and lifts its
    /// `query_only` so TEMP tables can be written; the main database stays
    /// read-only because the connection was opened read-only.
    pub(super) fn new(conn: Connection) -> rusqlite::Result<Snapshots> {
        conn.execute_batch("PRAGMA query_only = OFF; PRAGMA temp_store = MEMORY;")?;
        Ok(Snapshots {
            conn,
            tables: HashMap::new(),
            next_table: 0,
        })
    }

    /// Makes `record` the only row of its collection's snapshot table and
    /// returns the table's quoted name.
    fn load(&mut self, collection: &Collection, record: &RecordValues) -> rusqlite::Result<String> {
        let table = self.table_for(collection)?;
        let columns: Vec<String> = collection
            .fields
            .iter()
            .map(|f| quote_ident(&f.name))
            .collect();
        let placeholders = vec!["?"; columns.len()].join(", ");
        self.conn
            .prepare_cached(&format!("DELETE FROM temp.{table}"))?
            .execute([])?;
        let insert = format!(
            "INSERT INTO temp.{table} ({}) VALUES ({placeholders})",
            columns.join(", ")
        );
        let values = collection
            .fields
            .iter()
            .map(|f| to_sql(&f.kind, record.get(&f.name)));
        self.conn
            .prepare_cached(&insert)?
            .execute(rusqlite::params_from_iter(values))?;
        Ok(table)
    }

    fn table_for(&mut self, collection: &Collection) -> rusqlite::Result<String> {
        let shape = shape_of(collection);
        if let Some(existing) = self.tables.get(&collection.id) {
            if existing.shape == shape {
                return Ok(existing.name.clone());
            }
        }
        if let Some(stale) = self.tables.remove(&collection.id) {
            self.drop_table(&stale.name);
        }
        self.next_table += 1;
        let name = quote_ident(&format!("_satchel_realtime_{}", self.next_table));
        let columns: Vec<String> = collection
            .fields
            .iter()
            .map(|f| {
                format!(
                    "{} {}",
                    quote_ident(&f.name),
                    declared_type(f.kind.column_type())
                )
            })
            .collect();
        self.conn.execute_batch(&format!(
            "CREATE TEMP TABLE {name} ({})",
            columns.join(", ")
        ))?;
        self.tables.insert(
            collection.id.clone(),
            SnapshotTable {
                name: name.clone(),
                shape,
            },
        );
        Ok(name)
    }

    /// Frees the connection's page cache (the snapshot rows stay).
    pub(super) fn release_idle_memory(&self) {
        crate::store::release_idle_memory(&self.conn);
    }

    /// Drops every snapshot table (after a schema change); they are
    /// recreated on demand.
    pub(super) fn forget_all(&mut self) {
        let tables: Vec<SnapshotTable> = self.tables.drain().map(|(_, t)| t).collect();
        for table in tables {
            self.drop_table(&table.name);
        }
        // Statements prepared against dropped tables must not be reused.
        self.conn.flush_prepared_statement_cache();
    }

    fn drop_table(&self, name: &str) {
        if let Err(e) = self
            .conn
            .execute_batch(&format!("DROP TABLE IF EXISTS temp.{name}"))
        {
            log::warn!("realtime: dropping a snapshot table failed: {e}");
        }
    }
}

/// The type name of a column definition (`NUMERIC DEFAULT 0 NOT NULL` →
/// `NUMERIC`), which is all SQLite needs to give the column its affinity.
fn declared_type(column_definition: &str) -> &str {
    column_definition.split_whitespace().next().unwrap_or("")
}

fn shape_of(collection: &Collection) -> u64 {
    let mut hasher = DefaultHasher::new();
    for field in &collection.fields {
        field.name.hash(&mut hasher);
        declared_type(field.kind.column_type()).hash(&mut hasher);
    }
    hasher.finish()
}

/// Who a cached check was made for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Who {
    /// The check cannot read the auth: one answer for everyone.
    Anyone,
    Guest,
    Record {
        collection: String,
        id: String,
    },
}

/// What a check's answer depends on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CheckKey<'a> {
    rule: Option<&'a str>,
    superuser: bool,
    who: Who,
    /// `None` when the check cannot read the options.
    options: Option<Arc<SubscriptionOptions>>,
}

/// The access checks of one event: loads the snapshot on first need and
/// answers each distinct check once.
pub(super) struct EventAccess<'a> {
    snapshots: &'a mut Snapshots,
    /// The schema as of the event's commit, for relation paths.
    schema: &'a Schema,
    collection: &'a Collection,
    record: &'a RecordValues,
    /// The snapshot table, once loaded (`Err` if loading failed: every
    /// expression check then denies).
    snapshot: Option<Result<String, ()>>,
    answers: HashMap<CheckKey<'a>, bool>,
}

impl<'a> EventAccess<'a> {
    /// The dispatcher's read connection, for rendering payloads that read
    /// other records (expand).
    pub(super) fn connection(&self) -> &Connection {
        &self.snapshots.conn
    }

    pub(super) fn new(
        snapshots: &'a mut Snapshots,
        schema: &'a Schema,
        collection: &'a Collection,
        record: &'a RecordValues,
    ) -> EventAccess<'a> {
        EventAccess {
            snapshots,
            schema,
            collection,
            record,
            snapshot: None,
            answers: HashMap::new(),
        }
    }

    /// Whether a client with `auth` and `options` may receive this event
    /// through a topic governed by `kind`.
    pub(super) fn allows(
        &mut self,
        kind: RuleKind,
        auth: Option<&ClientAuth>,
        options: &Arc<SubscriptionOptions>,
    ) -> bool {
        let superuser = auth.is_some_and(ClientAuth::is_superuser);
        let collection: &'a Collection = self.collection;
        let rule = match kind {
            RuleKind::List => collection.list_rule.as_deref(),
            RuleKind::View => collection.view_rule.as_deref(),
        };
        let rule = match (superuser, rule) {
            (true, _) => None,
            (false, None) => return false,
            (false, Some(text)) if text.trim().is_empty() => None,
            (false, Some(text)) => Some(text),
        };
        let filter = options.filter();
        if rule.is_none() && filter.is_none() {
            return true;
        }
        let key = check_key(rule, superuser, auth, options);
        if let Some(&known) = self.answers.get(&key) {
            return known;
        }
        let request = realtime_request(auth.map(|a| &*a.0), options);
        let allowed = self.evaluate(rule, filter, &request);
        self.answers.insert(key, allowed);
        allowed
    }

    /// Runs the rule and filter on the snapshot; any failure denies.
    fn evaluate(
        &mut self,
        rule: Option<&str>,
        filter: Option<&str>,
        request: &RequestInfo,
    ) -> bool {
        let mut conditions: Vec<String> = Vec::new();
        let mut params: Vec<SqlValue> = Vec::new();
        if let Some(rule) = rule {
            let mut query = RecordQuery::new(self.schema, self.collection, request);
            if let Err(e) = query.add_rule(rule) {
                log::warn!(
                    "realtime: rule of {} does not compile: {e}",
                    self.collection.name
                );
                return false;
            }
            let clause = query.finish();
            if !clause.sql.is_empty() {
                conditions.push(format!("({})", clause.sql));
                params.extend(clause.params);
            }
        }
        if let Some(filter) = filter {
            let mut query = RecordQuery::new(self.schema, self.collection, request);
            // The reference drops the event for a filter it cannot use.
            if query.add_client_filter(filter).is_err() {
                return false;
            }
            let clause = query.finish();
            if !clause.sql.is_empty() {
                conditions.push(format!("({})", clause.sql));
                params.extend(clause.params);
            }
        }
        if conditions.is_empty() {
            return true;
        }
        let Some(table) = self.snapshot_table() else {
            return false;
        };
        let alias = quote_ident(&self.collection.name);
        let sql = format!(
            "SELECT 1 FROM temp.{table} AS {alias} WHERE {} LIMIT 1",
            conditions.join(" AND ")
        );
        let found = self
            .snapshots
            .conn
            .prepare_cached(&sql)
            .and_then(|mut stmt| stmt.exists(rusqlite::params_from_iter(params)));
        found.unwrap_or_else(|e| {
            log::warn!(
                "realtime: checking a rule of {} failed: {e}",
                self.collection.name
            );
            false
        })
    }

    fn snapshot_table(&mut self) -> Option<String> {
        if self.snapshot.is_none() {
            let loaded = self
                .snapshots
                .load(self.collection, self.record)
                .map_err(|e| {
                    log::error!(
                        "realtime: cannot load the record snapshot of {}: {e}",
                        self.collection.name
                    );
                });
            self.snapshot = Some(loaded);
        }
        self.snapshot
            .as_ref()
            .and_then(|s| s.as_ref().ok())
            .cloned()
    }
}

/// What a subscription's rules see as `@request.*`: a `GET` from `auth` in
/// the `realtime` context, with the subscription's query and headers.
fn realtime_request(auth: Option<&Auth>, options: &SubscriptionOptions) -> RequestInfo {
    let strings = |pairs: &std::collections::BTreeMap<String, String>| -> Map<String, Value> {
        pairs
            .iter()
            .map(|(name, value)| (name.clone(), Value::String(value.clone())))
            .collect()
    };
    let mut request = RequestInfo::new(auth.cloned());
    request.method = "GET".into();
    request.context = REALTIME_CONTEXT.into();
    request.query = RequestFields::from_map(strings(&options.query));
    request.headers = RequestFields::from_map(strings(&options.headers));
    request
}

/// The key under which a check's answer is shared within one event.
fn check_key<'a>(
    rule: Option<&'a str>,
    superuser: bool,
    auth: Option<&ClientAuth>,
    options: &Arc<SubscriptionOptions>,
) -> CheckKey<'a> {
    let filter = options.filter();
    let mentions = |what: &str| rule.is_some_and(|r| r.contains(what));
    // A superuser's filter may read `@request.auth`; nobody else's can.
    let reads_auth = mentions("@request.auth") || (superuser && filter.is_some());
    let reads_options =
        filter.is_some() || mentions("@request.query") || mentions("@request.headers");
    let who = match (reads_auth, auth) {
        (false, _) => Who::Anyone,
        (true, None) => Who::Guest,
        (true, Some(auth)) => Who::Record {
            collection: auth.0.collection.id.clone(),
            id: auth.0.id().to_string(),
        },
    };
    CheckKey {
        rule,
        superuser,
        who,
        options: reads_options.then(|| Arc::clone(options)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collections::{CollectionType, Field, FieldKind};
    use serde_json::{json, Map};

    fn field(name: &str, kind: FieldKind) -> Field {
        Field::new(name, kind)
    }

    fn notes(list_rule: Option<&str>, view_rule: Option<&str>) -> Collection {
        let text = FieldKind::default_for("text").unwrap();
        let mut id = field("id", text.clone());
        id.kind = FieldKind::Text {
            min: 15,
            max: 15,
            pattern: String::new(),
            autogenerate_pattern: String::new(),
            primary_key: true,
        };
        Collection {
            id: "pbc_1".into(),
            name: "notes".into(),
            kind: CollectionType::Base,
            system: false,
            fields: vec![
                id,
                field("title", text),
                field("views", FieldKind::default_for("number").unwrap()),
                field("meta", FieldKind::default_for("json").unwrap()),
            ],
            indexes: vec![],
            list_rule: list_rule.map(str::to_string),
            view_rule: view_rule.map(str::to_string),
            create_rule: None,
            update_rule: None,
            delete_rule: None,
            options: Map::new(),
            created: String::new(),
            updated: String::new(),
        }
    }

    fn record(id: &str, views: i64) -> RecordValues {
        let mut r = RecordValues::new();
        r.set("id", json!(id));
        r.set("title", json!("t"));
        r.set("views", json!(views));
        r.set("meta", json!({"n": views}));
        r
    }

    /// An in-memory database with a live `notes` table that holds nothing,
    /// as after a delete.
    fn snapshots() -> Snapshots {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE notes (id TEXT PRIMARY KEY, title TEXT, views NUMERIC, meta JSON);",
        )
        .unwrap();
        Snapshots::new(conn).unwrap()
    }

    fn no_options() -> Arc<SubscriptionOptions> {
        Arc::new(SubscriptionOptions::default())
    }

    fn with_filter(filter: &str) -> Arc<SubscriptionOptions> {
        let mut options = SubscriptionOptions::default();
        options.query.insert("filter".into(), filter.into());
        Arc::new(options)
    }

    #[test]
    fn null_rules_are_for_superusers_and_empty_rules_for_everyone() {
        let collection = notes(None, Some(""));
        let record = record("r1", 5);
        let schema = Schema::from_collections(vec![collection.clone()]);
        let mut snaps = snapshots();
        let mut access = EventAccess::new(&mut snaps, &schema, &collection, &record);
        assert!(!access.allows(RuleKind::List, None, &no_options()));
        assert!(access.allows(RuleKind::View, None, &no_options()));
        assert!(access.snapshot.is_none(), "no SQL was needed");
    }

    #[test]
    fn expression_rules_read_the_committed_values_even_when_the_row_is_gone() {
        let collection = notes(Some("views > 10 && meta.n = 42"), Some("views > 100"));
        let record = record("r1", 42);
        let schema = Schema::from_collections(vec![collection.clone()]);
        let mut snaps = snapshots();
        let mut access = EventAccess::new(&mut snaps, &schema, &collection, &record);
        assert!(access.allows(RuleKind::List, None, &no_options()));
        assert!(!access.allows(RuleKind::View, None, &no_options()));
    }

    #[test]
    fn numeric_affinity_matches_the_real_table() {
        // On a NUMERIC column '42' compares equal to 42, as on the table.
        let collection = notes(Some("views = '42'"), None);
        let record = record("r1", 42);
        let schema = Schema::from_collections(vec![collection.clone()]);
        let mut snaps = snapshots();
        let mut access = EventAccess::new(&mut snaps, &schema, &collection, &record);
        assert!(access.allows(RuleKind::List, None, &no_options()));
    }

    #[test]
    fn a_subscription_filter_narrows_even_an_open_rule() {
        let collection = notes(Some(""), Some(""));
        let record = record("r1", 3);
        let schema = Schema::from_collections(vec![collection.clone()]);
        let mut snaps = snapshots();
        let mut access = EventAccess::new(&mut snaps, &schema, &collection, &record);
        assert!(!access.allows(RuleKind::List, None, &with_filter("views >= 10")));
        assert!(access.allows(RuleKind::List, None, &with_filter("views < 10")));
        assert!(!access.allows(RuleKind::List, None, &with_filter("nonsense ==")));
        assert!(
            !access.allows(RuleKind::List, None, &with_filter("@request.auth.id = ''")),
            "guests may not filter by @request"
        );
    }

    #[test]
    fn rules_see_the_subscription_as_a_realtime_request() {
        let rule = "@request.query.token = 'abc' && @request.headers.x_app = 'web' \
                    && @request.context = 'realtime' && @request.method = 'GET'";
        let collection = notes(Some(rule), None);
        let schema = Schema::from_collections(vec![collection.clone()]);
        let record = record("r1", 1);
        let mut snaps = snapshots();
        let mut access = EventAccess::new(&mut snaps, &schema, &collection, &record);
        let mut options = SubscriptionOptions::default();
        options.query.insert("token".into(), "abc".into());
        assert!(!access.allows(RuleKind::List, None, &Arc::new(options.clone())));
        options.headers.insert("x_app".into(), "web".into());
        assert!(access.allows(RuleKind::List, None, &Arc::new(options)));
    }

    #[test]
    fn answers_are_shared_when_the_rule_cannot_tell_clients_apart() {
        let collection = notes(Some("views > 1"), None);
        let record = record("r1", 5);
        let schema = Schema::from_collections(vec![collection.clone()]);
        let mut snaps = snapshots();
        let mut access = EventAccess::new(&mut snaps, &schema, &collection, &record);
        let a = with_filter("");
        let b = no_options();
        assert!(access.allows(RuleKind::List, None, &a));
        assert!(access.allows(RuleKind::List, None, &b));
        assert_eq!(access.answers.len(), 1);
    }

    #[test]
    fn the_cache_key_keeps_what_the_rule_reads() {
        let options = no_options();
        let plain = check_key(Some("views > 1"), false, None, &options);
        assert_eq!(plain.who, Who::Anyone);
        assert!(plain.options.is_none());
        let by_auth = check_key(Some("owner = @request.auth.id"), false, None, &options);
        assert_eq!(by_auth.who, Who::Guest);
        let by_header = check_key(Some("@request.headers.x = 'a'"), false, None, &options);
        assert!(by_header.options.is_some());
        let filtered = check_key(None, false, None, &with_filter("views > 1"));
        assert!(filtered.options.is_some());
    }

    #[test]
    fn releasing_idle_memory_keeps_the_snapshot() {
        let collection = notes(Some("views > 1"), None);
        let mut snaps = snapshots();
        let table = snaps.load(&collection, &record("r1", 5)).unwrap();
        snaps.release_idle_memory();
        let sql = format!("SELECT views FROM temp.{table}");
        let views: i64 = snaps.conn.query_row(&sql, [], |r| r.get(0)).unwrap();
        assert_eq!(views, 5);
    }

    #[test]
    fn a_changed_collection_gets_a_fresh_snapshot_table() {
        let mut collection = notes(Some("views > 1"), None);
        let mut snaps = snapshots();
        let first = snaps.load(&collection, &record("r1", 5)).unwrap();
        assert_eq!(snaps.load(&collection, &record("r2", 6)).unwrap(), first);
        let count: i64 = snaps
            .conn
            .query_row(&format!("SELECT count(*) FROM temp.{first}"), [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(count, 1, "one row: the event's record");
        collection.fields.pop();
        let second = snaps.load(&collection, &record("r3", 7)).unwrap();
        assert_ne!(first, second);
        snaps.forget_all();
        assert!(snaps.tables.is_empty());
    }
}
