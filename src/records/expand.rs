//! Relation expansion (`?expand=author,tags.owner,comments_via_post`):
//! loads the records related to a set of records, level by level, and
//! shows each as the requester may see it (`Presenter::show`).
//!
//! Owns: the expand path tree, resolving relation and back-relation names
//! against the schema, the batched queries (one per relation and level,
//! ids bound in bounded `IN (...)` lists, the target's viewRule in the same
//! WHERE), and the reference's shape of the result. It never writes and
//! never puts request text into SQL: names are looked up in the schema and
//! quoted, ids and rule values are bound.
//!
//! The reference's rules, checked against v0.40.6:
//! - single relation → object, multiple → array (in the stored id order);
//!   a back-relation is an array unless a UNIQUE index covers exactly its
//!   field, then an object; at most 1000 back-related records per record.
//! - a related record the requester may not view is left out; a target
//!   collection whose viewRule is `null` makes the whole path unusable for
//!   non-superusers, even for records that relate to nothing.
//! - each path is all or nothing: if any step of `a.b.c` cannot be followed
//!   (unknown name, locked collection), nothing of that path appears.
//! - every record at a level a usable path went through gets an `expand`
//!   object, `{}` when nothing was found; records the path did not reach
//!   (or a path that failed) get no `expand` key.
//! - at most 6 levels; deeper steps are ignored.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::filter::WhereClause;
use super::present::{id_in, Presenter, IDS_PER_QUERY};
use super::sql;
use super::values::RecordValues;
use crate::collections::index::has_single_column_unique;
use crate::collections::{Collection, FieldKind};
use crate::query::SqlValue;
use crate::store::quote_ident;

/// Expand levels followed; the reference's limit.
pub const MAX_DEPTH: usize = 6;

/// Back-related records loaded per record; the reference's limit.
const MAX_BACK_RELATED: usize = 1000;

/// The parsed `expand` parameter: relation names, each with the paths
/// below it. `a,a.b,a.c` is one branch `a` with children `b` and `c`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpandTree {
    branches: Vec<(String, ExpandTree)>,
}

impl ExpandTree {
    /// Comma-separated dot paths; spaces are removed and leading or
    /// trailing dots ignored, as the reference does. Names are not checked
    /// here: unknown ones are skipped when expanding.
    pub fn parse(raw: &str) -> ExpandTree {
        let mut tree = ExpandTree::default();
        for path in raw.split(',') {
            let path: String = path.chars().filter(|c| *c != ' ').collect();
            let path = path.trim_matches('.');
            if !path.is_empty() {
                tree.insert(path.split('.'));
            }
        }
        tree
    }

    pub fn is_empty(&self) -> bool {
        self.branches.is_empty()
    }

    fn insert<'p>(&mut self, mut segments: impl Iterator<Item = &'p str>) {
        let Some(first) = segments.next() else {
            return;
        };
        let at = match self.branches.iter().position(|(name, _)| name == first) {
            Some(at) => at,
            None => {
                self.branches
                    .push((first.to_string(), ExpandTree::default()));
                self.branches.len() - 1
            }
        };
        self.branches[at].1.insert(segments);
    }
}

/// One record's `expand` object; `None` means no `expand` key at all.
pub type ExpandObject = Option<Map<String, Value>>;

/// The `expand` object of each of `records` (same order).
pub(crate) fn expand(
    presenter: &Presenter<'_>,
    collection: &Collection,
    records: &[RecordValues],
    tree: &ExpandTree,
) -> Vec<ExpandObject> {
    if tree.is_empty() || records.is_empty() {
        return vec![None; records.len()];
    }
    let expander = Expander { presenter };
    match expander.expand_level(collection, records, tree, 1) {
        Some(objects) => objects.into_iter().map(Some).collect(),
        None => vec![None; records.len()],
    }
}

/// How a relation name leads from a record to related records.
struct Relation {
    target: Arc<Collection>,
    /// Shown as an array rather than a single object.
    multiple: bool,
    source: Source,
}

enum Source {
    /// A relation field of the record holding the related ids.
    Field(String),
    /// Records of `target` whose relation `field` points at the record.
    Back { field: String, field_is_multi: bool },
}

struct Expander<'p, 'a> {
    presenter: &'p Presenter<'a>,
}

impl Expander<'_, '_> {
    /// Follows every branch of `tree` from `records` (at depth `level`).
    /// `None` when no branch could be followed; otherwise one object per
    /// record, empty where nothing related was found.
    fn expand_level(
        &self,
        collection: &Collection,
        records: &[RecordValues],
        tree: &ExpandTree,
        level: usize,
    ) -> Option<Vec<Map<String, Value>>> {
        let mut objects: Option<Vec<Map<String, Value>>> = None;
        for (name, below) in &tree.branches {
            let Some(related) = self.follow(collection, records, name, below, level) else {
                continue;
            };
            let objects = objects.get_or_insert_with(|| vec![Map::new(); records.len()]);
            for (object, value) in objects.iter_mut().zip(related) {
                if let Some(value) = value {
                    object.insert(name.clone(), value);
                }
            }
        }
        objects
    }

    /// The value of `expand[name]` for each parent (`None`: nothing to
    /// show), or `None` when the path cannot be followed.
    fn follow(
        &self,
        collection: &Collection,
        parents: &[RecordValues],
        name: &str,
        below: &ExpandTree,
        level: usize,
    ) -> Option<Vec<Option<Value>>> {
        let relation = self.resolve(collection, name)?;
        let ids_per_parent = match &relation.source {
            Source::Field(field) => parents
                .iter()
                .map(|p| {
                    p.get_strings(field)
                        .into_iter()
                        .map(str::to_string)
                        .collect()
                })
                .collect(),
            Source::Back {
                field,
                field_is_multi,
            } => self.back_related_ids(&relation.target, field, *field_is_multi, parents)?,
        };
        let wanted = unique_ids(&ids_per_parent);
        let related = self.fetch_viewable(&relation.target, &wanted)?;
        let nested: Vec<ExpandObject> =
            if below.is_empty() || related.is_empty() || level >= MAX_DEPTH {
                vec![None; related.len()]
            } else {
                let objects = self.expand_level(&relation.target, &related, below, level + 1)?;
                objects.into_iter().map(Some).collect()
            };
        let shown = self.show(&relation.target, &related, nested);
        Some(
            ids_per_parent
                .iter()
                .map(|ids| shape(&relation, ids, &shown))
                .collect(),
        )
    }

    /// `name` as a relation of `collection`: a relation field, or a
    /// back-relation `<collection>_via_<field>` (older spelling
    /// `<collection>(<field>)`).
    fn resolve(&self, collection: &Collection, name: &str) -> Option<Relation> {
        if let Some((via_name, field_name)) = back_relation_parts(name) {
            let via = self.presenter.schema.get(via_name)?;
            let field = via.field(field_name)?;
            let FieldKind::Relation {
                collection_id,
                max_select,
                ..
            } = &field.kind
            else {
                return None;
            };
            if *collection_id != collection.id {
                return None;
            }
            let one_each = has_single_column_unique(&via.indexes, &field.name);
            return Some(Relation {
                target: via.clone(),
                multiple: !one_each,
                source: Source::Back {
                    field: field.name.clone(),
                    field_is_multi: *max_select > 1,
                },
            });
        }
        let field = collection.field(name)?;
        let FieldKind::Relation {
            collection_id,
            max_select,
            ..
        } = &field.kind
        else {
            return None;
        };
        Some(Relation {
            target: self.presenter.schema.get(collection_id)?.clone(),
            multiple: *max_select > 1,
            source: Source::Field(field.name.clone()),
        })
    }

    /// For each parent, the ids of the `via` records whose relation
    /// `field` points at it, in insertion order, at most
    /// `MAX_BACK_RELATED` each.
    fn back_related_ids(
        &self,
        via: &Collection,
        field: &str,
        field_is_multi: bool,
        parents: &[RecordValues],
    ) -> Option<Vec<Vec<String>>> {
        let parent_ids: Vec<&str> = {
            let mut seen = HashSet::new();
            parents
                .iter()
                .map(RecordValues::id)
                .filter(|id| seen.insert(*id))
                .collect()
        };
        let mut by_parent: HashMap<String, Vec<String>> = HashMap::new();
        for chunk in parent_ids.chunks(IDS_PER_QUERY) {
            let sql = back_relation_sql(via, field, field_is_multi, chunk.len());
            let rows = query_pairs(self.presenter.conn, &sql, chunk)
                .map_err(|e| log::warn!("expanding {}.{field}: {e}", via.name))
                .ok()?;
            for (child, parent) in rows {
                let children = by_parent.entry(parent).or_default();
                if children.len() < MAX_BACK_RELATED && !children.contains(&child) {
                    children.push(child);
                }
            }
        }
        Some(
            parents
                .iter()
                .map(|p| by_parent.get(p.id()).cloned().unwrap_or_default())
                .collect(),
        )
    }

    /// The records of `target` among `ids` that the requester may view.
    /// `None` when the requester may view none of that collection (a
    /// `null` viewRule for non-superusers, or a rule that cannot be
    /// applied): the reference then drops the whole path.
    fn fetch_viewable(&self, target: &Collection, ids: &[&str]) -> Option<Vec<RecordValues>> {
        let condition = self.view_condition(target)?;
        let mut found = Vec::new();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let (sql, params) = where_ids(target, chunk, &condition);
            let rows = sql::list(
                self.presenter.conn,
                target,
                Some((&sql, &params)),
                &[],
                None,
                0,
            )
            .map_err(|e| log::warn!("expanding into {}: {e}", target.name))
            .ok()?;
            found.extend(rows);
        }
        Some(found)
    }

    /// The viewRule of `target` for the requester: an empty clause when
    /// all records are viewable, `None` when none are.
    fn view_condition(&self, target: &Collection) -> Option<WhereClause> {
        if self.presenter.is_superuser() {
            return Some(WhereClause::default());
        }
        let rule = target.view_rule.as_deref()?;
        if rule.trim().is_empty() {
            return Some(WhereClause::default());
        }
        self.presenter.expand_view_condition(target, rule)
    }

    /// Each record's JSON by id, with its nested `expand` object.
    fn show(
        &self,
        collection: &Collection,
        records: &[RecordValues],
        nested: Vec<ExpandObject>,
    ) -> HashMap<String, Value> {
        let shown = self.presenter.show(collection, records);
        records
            .iter()
            .zip(shown)
            .zip(nested)
            .map(|((record, mut json), expand)| {
                if let Some(expand) = expand {
                    json.insert("expand".into(), Value::Object(expand));
                }
                (record.id().to_string(), Value::Object(json))
            })
            .collect()
    }
}

/// A parent's `expand[name]`: the related records it names, in its order,
/// that were found and viewable.
fn shape(relation: &Relation, ids: &[String], shown: &HashMap<String, Value>) -> Option<Value> {
    let mut found: Vec<Value> = ids.iter().filter_map(|id| shown.get(id).cloned()).collect();
    if found.is_empty() {
        return None;
    }
    if relation.multiple {
        Some(Value::Array(found))
    } else {
        Some(found.swap_remove(0))
    }
}

fn unique_ids(ids_per_parent: &[Vec<String>]) -> Vec<&str> {
    let mut seen = HashSet::new();
    ids_per_parent
        .iter()
        .flatten()
        .map(String::as_str)
        .filter(|id| seen.insert(*id))
        .collect()
}

/// `<collection>_via_<field>` or `<collection>(<field>)`, both made of
/// ASCII word characters; the last `_via_` splits (the reference's greedy
/// match).
fn back_relation_parts(name: &str) -> Option<(&str, &str)> {
    let is_word =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if name.contains('(') {
        let (collection, rest) = name.split_once('(')?;
        let field = rest.strip_suffix(')')?;
        return (is_word(collection) && is_word(field)).then_some((collection, field));
    }
    if !is_word(name) {
        return None;
    }
    const VIA: &str = "_via_";
    (1..name.len().saturating_sub(VIA.len()))
        .rev()
        .filter(|at| name[*at..].starts_with(VIA))
        .map(|at| (&name[..at], &name[at + VIA.len()..]))
        .next()
}

/// `table.id IN (...) AND (rule)` and its parameters.
fn where_ids(
    collection: &Collection,
    ids: &[&str],
    condition: &WhereClause,
) -> (String, Vec<SqlValue>) {
    let mut sql = id_in(collection, ids.len());
    let mut params: Vec<SqlValue> = ids
        .iter()
        .map(|id| SqlValue::Text(id.to_string()))
        .collect();
    if !condition.sql.is_empty() {
        sql.push_str(&format!(" AND ({})", condition.sql));
        params.extend(condition.params.iter().cloned());
    }
    (sql, params)
}

/// `SELECT child id, parent id` of the `via` records pointing at `count`
/// parent ids through `field` (a single id, or a JSON array of ids).
fn back_relation_sql(via: &Collection, field: &str, field_is_multi: bool, count: usize) -> String {
    let table = quote_ident(&via.name);
    let column = format!("{table}.{}", quote_ident(field));
    let placeholders = vec!["?"; count].join(", ");
    // Views have no rowid; their order is the view's own.
    let order = if via.is_view() {
        String::new()
    } else {
        format!(" ORDER BY {table}._rowid_")
    };
    if field_is_multi {
        // Anything that is not a JSON array is treated as one id, as the
        // reference's json_each wrapper does.
        format!(
            "SELECT {table}.`id`, je.value FROM {table}, json_each(CASE WHEN json_valid({column}) \
             THEN (CASE WHEN json_type({column}) = 'array' THEN {column} ELSE json_array({column}) END) \
             ELSE json_array({column}) END) AS je WHERE je.value IN ({placeholders}){order}"
        )
    } else {
        format!(
            "SELECT {table}.`id`, {column} FROM {table} WHERE {column} IN ({placeholders}){order}"
        )
    }
}

fn query_pairs(
    conn: &rusqlite::Connection,
    sql: &str,
    ids: &[&str],
) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(ids.iter()), |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collections::{CollectionType, Field, Schema};
    use rusqlite::Connection;
    use serde_json::json;

    fn text() -> FieldKind {
        FieldKind::Text {
            min: 0,
            max: 0,
            pattern: String::new(),
            autogenerate_pattern: String::new(),
            primary_key: false,
        }
    }

    fn relation(to: &str, max_select: i64) -> FieldKind {
        FieldKind::Relation {
            collection_id: to.into(),
            cascade_delete: false,
            min_select: 0,
            max_select,
        }
    }

    fn collection(id: &str, name: &str, view_rule: &str, fields: Vec<Field>) -> Collection {
        let mut all = vec![Field::new("id", text())];
        all.extend(fields);
        Collection {
            id: id.into(),
            name: name.into(),
            kind: CollectionType::Base,
            system: false,
            fields: all,
            indexes: vec![],
            list_rule: None,
            view_rule: Some(view_rule.into()),
            create_rule: None,
            update_rule: None,
            delete_rule: None,
            options: Map::new(),
            created: String::new(),
            updated: String::new(),
        }
    }

    /// More people and posts than one `IN (...)` list holds, with
    /// `person 7` hidden by the people viewRule.
    fn crowd(conn: &Connection, count: usize) -> (Schema, Vec<RecordValues>, Vec<RecordValues>) {
        conn.execute_batch(
            "CREATE TABLE people (id TEXT PRIMARY KEY NOT NULL, name TEXT DEFAULT '' NOT NULL);
             CREATE TABLE posts (id TEXT PRIMARY KEY NOT NULL, author TEXT DEFAULT '' NOT NULL,
                                 friends JSON DEFAULT '[]' NOT NULL);",
        )
        .unwrap();
        let people = collection(
            "c_people",
            "people",
            "name != 'person 7'",
            vec![Field::new("name", text())],
        );
        let posts = collection(
            "c_posts",
            "posts",
            "",
            vec![
                Field::new("author", relation("c_people", 1)),
                Field::new("friends", relation("c_people", 5)),
            ],
        );
        for i in 0..count {
            let (me, next) = (format!("p{i:04}"), format!("p{:04}", (i + 1) % count));
            conn.execute(
                "INSERT INTO people VALUES (?1, ?2)",
                [&me, &format!("person {i}")],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO posts VALUES (?1, ?2, ?3)",
                [&format!("t{i:04}"), &me, &json!([me, next]).to_string()],
            )
            .unwrap();
        }
        let schema = Schema::from_collections(vec![people.clone(), posts.clone()]);
        let all_people = sql::list(conn, &people, None, &[], None, 0).unwrap();
        let all_posts = sql::list(conn, &posts, None, &[], None, 0).unwrap();
        (schema, all_people, all_posts)
    }

    #[test]
    fn a_page_larger_than_one_id_batch_expands_completely() {
        let conn = Connection::open_in_memory().unwrap();
        let count = IDS_PER_QUERY * 2 + 100;
        let (schema, people, posts) = crowd(&conn, count);
        let presenter = Presenter::new(&conn, &schema, None);
        let posts_collection = schema.get("posts").unwrap();
        let tree = ExpandTree::parse("author,friends");
        let expanded = expand(&presenter, posts_collection, &posts, &tree);
        assert_eq!(expanded.len(), count);
        for (i, object) in expanded.iter().enumerate() {
            let object = object.as_ref().expect("every post gets an expand object");
            let friends: Vec<&str> = object["friends"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["name"].as_str().unwrap())
                .collect();
            let (me, next) = (format!("person {i}"), format!("person {}", (i + 1) % count));
            let expected: Vec<&str> = [me.as_str(), next.as_str()]
                .into_iter()
                .filter(|name| *name != "person 7")
                .collect();
            assert_eq!(friends, expected, "post {i}");
            if i == 7 {
                assert!(object.get("author").is_none(), "hidden by the viewRule");
            } else {
                assert_eq!(object["author"]["name"], me.as_str());
            }
        }
        // back-relation across batches: each person is the author of one post
        let people_collection = schema.get("people").unwrap();
        let back = expand(
            &presenter,
            people_collection,
            &people,
            &ExpandTree::parse("posts_via_author,posts_via_friends"),
        );
        for (i, object) in back.iter().enumerate() {
            let object = object.as_ref().unwrap();
            assert_eq!(object["posts_via_author"][0]["id"], format!("t{i:04}"));
            let befriended: Vec<&str> = object["posts_via_friends"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_str().unwrap())
                .collect();
            let before = format!("t{:04}", (i + count - 1) % count);
            let mine = format!("t{i:04}");
            let mut expected = vec![before.as_str(), mine.as_str()];
            expected.sort();
            assert_eq!(befriended, expected, "person {i}, in insertion order");
        }
    }

    #[test]
    fn a_locked_target_drops_the_whole_path_for_guests() {
        let conn = Connection::open_in_memory().unwrap();
        let (schema, _, posts) = crowd(&conn, 3);
        let mut locked: Vec<Collection> = schema.all().iter().map(|c| (**c).clone()).collect();
        locked[0].view_rule = None;
        let schema = Schema::from_collections(locked);
        let posts_collection = schema.get("posts").unwrap();
        let tree = ExpandTree::parse("author");
        let guest = Presenter::new(&conn, &schema, None);
        assert!(expand(&guest, posts_collection, &posts, &tree)
            .iter()
            .all(Option::is_none));
    }

    fn names(tree: &ExpandTree) -> Vec<String> {
        let mut out = Vec::new();
        for (name, below) in &tree.branches {
            out.push(name.clone());
            for nested in names(below) {
                out.push(format!("{name}.{nested}"));
            }
        }
        out
    }

    #[test]
    fn paths_merge_into_one_tree() {
        let tree = ExpandTree::parse(" author , author.team,.friends.,, tags.owner.team,author");
        assert_eq!(
            names(&tree),
            [
                "author",
                "author.team",
                "friends",
                "tags",
                "tags.owner",
                "tags.owner.team"
            ]
        );
        assert!(ExpandTree::parse(" , . ,").is_empty());
    }

    #[test]
    fn back_relation_names_split_like_the_reference() {
        assert_eq!(
            back_relation_parts("comments_via_post"),
            Some(("comments", "post"))
        );
        assert_eq!(
            back_relation_parts("a_via_b_via_c"),
            Some(("a_via_b", "c")),
            "greedy: the last _via_ splits"
        );
        assert_eq!(back_relation_parts("a_via_b_via_"), Some(("a", "b_via_")));
        assert_eq!(back_relation_parts("a_via_via_b"), Some(("a_via", "b")));
        assert_eq!(
            back_relation_parts("comments(post)"),
            Some(("comments", "post"))
        );
        assert_eq!(back_relation_parts("author"), None);
        assert_eq!(back_relation_parts("_via_post"), None);
        assert_eq!(back_relation_parts("x-y_via_post"), None);
        assert_eq!(back_relation_parts("c(p"), None);
    }
}
