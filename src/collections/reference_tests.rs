//! Differential test: a session of create/update requests recorded against
//! the reference binary (`testdata/reference_cases.json`: each body with
//! the reference's status and error data or resulting collection, email
//! template texts stripped) is replayed through `build_new`/`build_update`
//! and `ddl` on a fresh database, and the outcomes are compared.

use serde_json::{Map, Value};

use super::ddl;
use super::registry::Schema;
use super::system::tests::fresh_db;
use super::validate::{build_new, build_update};
use super::Collection;

const CASES: &str = include_str!("testdata/reference_cases.json");

/// The reference reported these rules as valid; our stand-in parser only
/// rejects names it cannot resolve.
fn rules(_: &Schema, c: &Collection, rule: &str) -> Result<(), String> {
    let first = rule.split_whitespace().next().unwrap_or("");
    if first.starts_with('@') || c.field(first).is_some() {
        Ok(())
    } else {
        Err(format!("unknown field {first:?}"))
    }
}

/// `data` flattened to `path → code`.
fn error_codes(data: &Value, prefix: &str, out: &mut Vec<(String, String)>) {
    let Some(map) = data.as_object() else { return };
    if let Some(code) = map.get("code").and_then(Value::as_str) {
        out.push((prefix.to_string(), code.to_string()));
        return;
    }
    for (key, value) in map {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        error_codes(value, &path, out);
    }
}

/// The parts of a collection JSON both sides must agree on.
fn comparable(api: &Value) -> Value {
    let mut out = Map::new();
    let Some(obj) = api.as_object() else {
        return Value::Null;
    };
    for (key, value) in obj {
        match key.as_str() {
            "created"
            | "updated"
            | "verificationTemplate"
            | "resetPasswordTemplate"
            | "confirmEmailChangeTemplate" => {}
            "fields" => {
                let fields: Vec<Value> = value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| {
                        let mut f = f.clone();
                        if f["id"].as_str().is_some_and(|id| id.starts_with("_clone_")) {
                            f["id"] = Value::String("_clone_".into());
                        }
                        f
                    })
                    .collect();
                out.insert(key.clone(), Value::Array(fields));
            }
            "otp" => {
                let mut otp = value.clone();
                if let Some(o) = otp.as_object_mut() {
                    o.remove("emailTemplate");
                }
                out.insert(key.clone(), otp);
            }
            "authAlert" => {
                out.insert(
                    key.clone(),
                    serde_json::json!({ "enabled": value["enabled"] }),
                );
            }
            "indexes" => {
                // auth index names embed the collection id, which matches too
                out.insert(key.clone(), value.clone());
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(out)
}

#[test]
fn replaying_the_reference_session_gives_the_same_outcomes() {
    let cases: Vec<Value> = serde_json::from_str(CASES).unwrap();
    let (conn, _) = fresh_db();
    let mut mismatches = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let schema = Schema::load(&conn).unwrap();
        let body = &case["body"];
        let result = match case["op"].as_str() {
            Some("create") => build_new(&conn, body, &schema, &rules)
                .and_then(|c| ddl::create(&conn, &c).map(|_| c)),
            _ => {
                let target = case["target"].as_str().unwrap_or("");
                let existing = schema.get(target).unwrap().clone();
                build_update(&conn, &existing, body, &schema, &rules)
                    .and_then(|c| ddl::update(&conn, &existing, &c, &schema).map(|_| c))
            }
        };
        let expected_status = case["status"].as_u64().unwrap_or(0);
        let label = format!("case {i} {} {}", case["op"], body);
        match result {
            Ok(c) if expected_status == 200 => {
                let (ours, theirs) = (comparable(&c.to_api_json()), comparable(&case["response"]));
                if ours != theirs {
                    mismatches.push(format!("{label}\n  ours:   {ours}\n  theirs: {theirs}"));
                }
            }
            Ok(_) => mismatches.push(format!(
                "{label}: we accepted, reference said {expected_status}"
            )),
            Err(e) => {
                if u64::from(e.status()) != expected_status {
                    mismatches.push(format!(
                        "{label}: we said {} ({}), reference {expected_status}",
                        e.status(),
                        e.to_json()
                    ));
                    continue;
                }
                let mut ours = Vec::new();
                let mut theirs = Vec::new();
                error_codes(&e.to_json()["data"], "", &mut ours);
                error_codes(&case["response"]["data"], "", &mut theirs);
                ours.sort();
                theirs.sort();
                if ours != theirs || e.message() != case["response"]["message"] {
                    mismatches.push(format!(
                        "{label}\n  ours:   {} {ours:?}\n  theirs: {} {theirs:?}",
                        e.message(),
                        case["response"]["message"]
                    ));
                }
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
