//! What a plain create or update (the records API) may not do to an auth
//! record without full access (superuser or `manageRule`): set `verified`
//! to anything but what it is, or change `email`. Those go through the
//! email flows, which prove the address first. Both answer 400
//! `validation_values_mismatch`, as the reference does.
//!
//! Pure: the records code asks, passing whether the caller has full access.

use crate::collections::Collection;
use crate::error::field_error;
use crate::records::{cast, RecordValues};
use serde_json::{Map, Value};

/// The reference's error for a value the caller may not set.
pub fn values_mismatch() -> Value {
    field_error("validation_values_mismatch", "Values don't match.")
}

/// The error for a body that sets `verified` to something else than it is
/// (`false` for a new record), when the caller lacks full access.
pub fn verified_error(
    collection: &Collection,
    body: &Map<String, Value>,
    current: Option<&RecordValues>,
    full_access: bool,
) -> Option<Value> {
    if full_access || !collection.is_auth() {
        return None;
    }
    let now = current.is_some_and(|r| r.get_bool("verified"));
    let asked = body.get("verified").map(cast::to_bool)?;
    (asked != now).then(values_mismatch)
}

/// Whether a body changes the record's email (updates only).
pub fn changes_email(
    collection: &Collection,
    body: &Map<String, Value>,
    current: &RecordValues,
) -> bool {
    collection.is_auth()
        && body
            .get("email")
            .is_some_and(|email| Some(email) != current.get("email"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collections::system;
    use serde_json::json;

    fn users() -> Collection {
        system::default_collections()
            .into_iter()
            .find(|c| c.name == "users")
            .expect("the default users collection")
    }

    fn body(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn only_full_access_may_change_verified() {
        let users = users();
        let mut unverified = RecordValues::new();
        unverified.set("verified", json!(false));
        let asks = body(json!({"verified": true}));
        assert!(verified_error(&users, &asks, None, false).is_some());
        assert!(verified_error(&users, &asks, Some(&unverified), false).is_some());
        assert!(verified_error(&users, &asks, None, true).is_none());
        // Sending the value it already has is no change.
        let same = body(json!({"verified": false}));
        assert!(verified_error(&users, &same, None, false).is_none());
        assert!(verified_error(&users, &same, Some(&unverified), false).is_none());
        assert!(verified_error(&users, &body(json!({})), None, false).is_none());
    }

    #[test]
    fn an_unchanged_email_is_no_change() {
        let users = users();
        let mut current = RecordValues::new();
        current.set("email", json!("a@x.y"));
        assert!(!changes_email(
            &users,
            &body(json!({"email": "a@x.y"})),
            &current
        ));
        assert!(changes_email(
            &users,
            &body(json!({"email": "b@x.y"})),
            &current
        ));
        assert!(!changes_email(&users, &body(json!({})), &current));
    }
}
