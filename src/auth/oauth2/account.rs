//! Which record an OAuth2 identity signs into, and the writes that make it
//! so: reuse the `_externalAuths` link, else the signed-in requester, else
//! the record with the address the provider vouched for, else a new record
//! from `createData` and the collection's `mappedFields`.
//!
//! The reference's fixes for its linking CVEs live here and must stay:
//! an address the provider did not verify never selects a record
//! (`Identity::email` only holds vouched addresses); an unverified record
//! taken over this way gets a new random password and a new `tokenKey`
//! (CVE-2024-38351), and a record that becomes verified here loses the
//! links it had collected while unverified (CVE-2026-44166).
//!
//! Every write runs in the caller's writer job; password hashing never does
//! (it is prepared beforehand, see [`PasswordPrep`]).

use super::exchange::Tokens;
use super::profile::Identity;
use crate::app::Ctx;
use crate::collections::auth_options::MappedFields;
use crate::collections::{Collection, FieldKind};
use crate::error::ApiError;
use crate::records::api::{apply_create, PasswordPlan, PasswordWork, RequestParts};
use crate::records::filter::RequestInfo;
use crate::records::{self, sql, RecordValues, WriteOptions};
use crate::security::{password, random};
use crate::store::{quote_ident, WriteTx};
use rusqlite::{Connection, OptionalExtension};
use serde_json::{json, Map, Value};

const EXTERNAL_AUTHS: &str = "_externalAuths";
/// The answer for failures past the provider, as the reference words it.
pub const AUTH_FAILED: &str = "Failed to authenticate.";
/// Length of the random passwords given to OAuth2 accounts.
const RANDOM_PASSWORD_LENGTH: usize = 30;

/// One completed provider round trip.
#[derive(Debug, Clone)]
pub struct SignIn {
    pub provider: String,
    pub identity: Identity,
    pub tokens: Tokens,
    pub create_data: Map<String, Value>,
}

/// The record an identity signs into.
#[derive(Debug, Clone)]
pub enum Target {
    /// Found through its `_externalAuths` link.
    Linked(RecordValues),
    /// The requester, signed in to this collection.
    Requester(RecordValues),
    /// The record with the provider-verified address.
    ByEmail(RecordValues),
    New,
}

impl Target {
    fn record(&self) -> Option<&RecordValues> {
        match self {
            Target::Linked(r) | Target::Requester(r) | Target::ByEmail(r) => Some(r),
            Target::New => None,
        }
    }
}

/// Finds the target on `ctx`'s connection.
pub fn find_target(
    ctx: &Ctx<'_>,
    collection: &Collection,
    sign_in: &SignIn,
) -> Result<Target, ApiError> {
    if let Some(record) = linked_record(ctx.db, collection, sign_in)? {
        return Ok(Target::Linked(record));
    }
    if let Some(auth) = ctx
        .auth
        .as_ref()
        .filter(|a| a.collection.id == collection.id)
    {
        if let Some(record) = sql::find_by_id(ctx.db, collection, auth.id())? {
            return Ok(Target::Requester(record));
        }
    }
    let email = &sign_in.identity.email;
    if !email.is_empty() {
        if let Some(record) = record_by_email(ctx.db, collection, email)? {
            return Ok(Target::ByEmail(record));
        }
    }
    Ok(Target::New)
}

fn linked_record(
    conn: &Connection,
    collection: &Collection,
    sign_in: &SignIn,
) -> Result<Option<RecordValues>, ApiError> {
    // A link to a deleted record counts as no link (it is replaced).
    match linked_record_id(conn, collection, sign_in)? {
        Some(id) => Ok(sql::find_by_id(conn, collection, &id)?),
        None => Ok(None),
    }
}

/// The `recordRef` of the identity's link in this collection, if any.
fn linked_record_id(
    conn: &Connection,
    collection: &Collection,
    sign_in: &SignIn,
) -> Result<Option<String>, ApiError> {
    Ok(conn
        .query_row(
            "SELECT `recordRef` FROM `_externalAuths` \
             WHERE `collectionRef` = ?1 AND `provider` = ?2 AND `providerId` = ?3 LIMIT 1",
            rusqlite::params![collection.id, sign_in.provider, sign_in.identity.id],
            |row| row.get(0),
        )
        .optional()?)
}

/// The record with `email`, compared without case as the reference does.
fn record_by_email(
    conn: &Connection,
    collection: &Collection,
    email: &str,
) -> Result<Option<RecordValues>, ApiError> {
    let query = format!(
        "SELECT `id` FROM {} WHERE `email` = ?1 COLLATE NOCASE LIMIT 1",
        quote_ident(&collection.name)
    );
    let id: Option<String> = conn
        .query_row(&query, [email], |row| row.get(0))
        .optional()?;
    match id {
        Some(id) => Ok(sql::find_by_id(conn, collection, &id)?),
        None => Ok(None),
    }
}

/// Whether the requester is `record` itself.
fn is_requester(ctx: &Ctx<'_>, collection: &Collection, record: &RecordValues) -> bool {
    ctx.auth
        .as_ref()
        .is_some_and(|a| a.collection.id == collection.id && a.id() == record.id())
}

/// Whether taking over `record` resets its password: an unverified record
/// with an address that someone other than its signed-in owner reaches.
fn needs_reset(ctx: &Ctx<'_>, collection: &Collection, record: &RecordValues) -> bool {
    !is_requester(ctx, collection, record)
        && !record.get_str("email").is_empty()
        && record.get("verified") != Some(&Value::Bool(true))
}

// ---------------------------------------------------------------------------
// Password work, done on the hashing pool before the writer job

/// The hashing a sign-in needs, decided from the target as the request
/// worker saw it.
#[derive(Debug, Default)]
pub struct PasswordPrep {
    /// New record: `password`/`passwordConfirm` (createData's or random)
    /// and their hashing plan.
    create: Option<(Map<String, Value>, PasswordPlan)>,
    /// Taken-over record: a random password to hash.
    reset: Option<String>,
}

/// [`PasswordPrep`] carried out.
#[derive(Debug, Default, Clone)]
pub struct PreparedPasswords {
    create: Option<(Map<String, Value>, PasswordWork)>,
    reset_hash: Option<String>,
}

impl PasswordPrep {
    pub fn plan(
        ctx: &Ctx<'_>,
        collection: &Collection,
        target: &Target,
        create_data: &Map<String, Value>,
    ) -> PasswordPrep {
        match target.record() {
            None => {
                let fields = create_passwords(create_data);
                let plan = PasswordPlan::for_body(collection, &fields, None, ctx.is_superuser());
                PasswordPrep {
                    create: Some((fields, plan)),
                    reset: None,
                }
            }
            Some(record) if needs_reset(ctx, collection, record) => PasswordPrep {
                create: None,
                reset: Some(random::string_from(
                    random::ALPHANUMERIC,
                    RANDOM_PASSWORD_LENGTH,
                )),
            },
            Some(_) => PasswordPrep::default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.create.is_none() && self.reset.is_none()
    }

    /// Hashes; run it on the hashing pool.
    pub fn run(self) -> Result<PreparedPasswords, ApiError> {
        let create = match self.create {
            Some((fields, plan)) => Some((fields, plan.run()?)),
            None => None,
        };
        let reset_hash = self
            .reset
            .map(|plain| password::hash_password(&plain))
            .transpose()
            .map_err(ApiError::internal)?;
        Ok(PreparedPasswords { create, reset_hash })
    }
}

/// createData's password pair, or a random one when it gives none.
fn create_passwords(create_data: &Map<String, Value>) -> Map<String, Value> {
    let given = create_data
        .get("password")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut fields = Map::new();
    if given.is_empty() {
        let plain = random::string_from(random::ALPHANUMERIC, RANDOM_PASSWORD_LENGTH);
        fields.insert("password".into(), json!(plain));
        fields.insert("passwordConfirm".into(), json!(plain));
    } else {
        fields.insert("password".into(), json!(given));
        let confirm = create_data
            .get("passwordConfirm")
            .cloned()
            .unwrap_or(Value::Null);
        fields.insert("passwordConfirm".into(), confirm);
    }
    fields
}

// ---------------------------------------------------------------------------
// The writer job's part

/// The record signed into, as stored after this job's writes.
pub struct Settled {
    pub record: RecordValues,
    pub is_new: bool,
}

/// Finds the target again on the writer's connection and writes what
/// signing into it takes: the record (new, or its password, email and
/// verified state) and the `_externalAuths` link.
pub(crate) fn settle(
    ctx: &Ctx<'_>,
    tx: &mut WriteTx<'_>,
    request: &RequestParts,
    collection: &Collection,
    mapped: &MappedFields,
    sign_in: &SignIn,
    passwords: PreparedPasswords,
) -> Result<Settled, ApiError> {
    let (record, is_new) = match find_target(ctx, collection, sign_in)? {
        Target::New => {
            let (fields, work) = passwords.create.ok_or_else(changed_meanwhile)?;
            let body = create_payload(ctx.db, collection, mapped, sign_in, fields);
            // The create rule sees the sign-in request, in the `oauth2`
            // context, with this payload as its body.
            let request = request.request_info(ctx.auth.clone(), &body);
            let record = create_record(ctx, tx, collection, body, &request, sign_in, &work)?;
            (record, true)
        }
        Target::Linked(record) | Target::Requester(record) | Target::ByEmail(record) => {
            let record = update_existing(ctx, collection, record, sign_in, passwords.reset_hash)?;
            (record, false)
        }
    };
    ensure_link(ctx, collection, &record, sign_in)?;
    Ok(Settled { record, is_new })
}

/// The account changed between the provider round trip and the write
/// (a concurrent sign-in); the client may simply try again.
fn changed_meanwhile() -> ApiError {
    log::debug!("OAuth2 sign-in: the account changed while the provider was asked");
    ApiError::bad_request(AUTH_FAILED)
}

fn create_record(
    ctx: &Ctx<'_>,
    tx: &mut WriteTx<'_>,
    collection: &Collection,
    body: Map<String, Value>,
    request: &RequestInfo,
    sign_in: &SignIn,
    work: &PasswordWork,
) -> Result<RecordValues, ApiError> {
    if collection.id == crate::auth::token::SUPERUSERS_ID {
        log::debug!("refused an OAuth2 sign-up as a superuser");
        return Err(ApiError::bad_request(AUTH_FAILED));
    }
    let written = apply_create(ctx, tx, &collection.id, body, request, work)?;
    let record = written.record;
    // Verified when its address is the one the provider vouched for.
    if record.get_str("email") == sign_in.identity.email
        && record.get("verified") != Some(&Value::Bool(true))
    {
        return mark_verified(ctx, collection, record);
    }
    Ok(record)
}

/// The new record's body: createData, the address, the password pair and
/// the mapped profile fields createData does not set.
fn create_payload(
    conn: &Connection,
    collection: &Collection,
    mapped: &MappedFields,
    sign_in: &SignIn,
    password_fields: Map<String, Value>,
) -> Map<String, Value> {
    let identity = &sign_in.identity;
    let mut body = sign_in.create_data.clone();
    let given_email = body
        .get("email")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if given_email.is_empty() {
        let email = if identity.email.is_empty() {
            &identity.unverified_email
        } else {
            &identity.email
        };
        body.insert("email".into(), json!(email));
    }
    body.extend(password_fields);
    let mut map = |field: &str, value: &str| {
        if !field.is_empty() && !body.contains_key(field) {
            body.insert(field.to_string(), json!(value));
        }
    };
    map(&mapped.id, &identity.id);
    map(&mapped.name, &identity.name);
    if can_assign_username(conn, collection, &mapped.username, &identity.username) {
        map(&mapped.username, &identity.username);
    }
    if !identity.avatar_url.is_empty() {
        match collection.field(&mapped.avatar_url).map(|f| &f.kind) {
            // Downloading the picture needs file storage, which is not
            // built; the URL is never fetched.
            Some(FieldKind::File { .. }) => {
                log::debug!("OAuth2 avatar not stored: file fields are not supported yet")
            }
            _ => map(&mapped.avatar_url, &identity.avatar_url),
        }
    }
    body
}

/// The provider's username goes in only if it is valid for the mapped text
/// field and not taken, so it never fails a sign-up.
fn can_assign_username(
    conn: &Connection,
    collection: &Collection,
    field: &str,
    username: &str,
) -> bool {
    let Some(field) = collection.field(field) else {
        return false;
    };
    if !matches!(field.kind, FieldKind::Text { .. })
        || records::validate::validate_field(field, &json!(username)).is_some()
    {
        return false;
    }
    let query = format!(
        "SELECT 1 FROM {} WHERE {} = ?1 COLLATE NOCASE LIMIT 1",
        quote_ident(&collection.name),
        quote_ident(&field.name)
    );
    match conn.query_row(&query, [username], |_| Ok(())).optional() {
        Ok(taken) => taken.is_none(),
        Err(e) => {
            log::warn!("OAuth2 username check failed: {e}");
            false
        }
    }
}

/// The reference's updates when signing into an existing record: a new
/// password for a taken-over unverified record, the provider's address for
/// a record without one, and `verified` when the addresses agree.
fn update_existing(
    ctx: &Ctx<'_>,
    collection: &Collection,
    record: RecordValues,
    sign_in: &SignIn,
    reset_hash: Option<String>,
) -> Result<RecordValues, ApiError> {
    let vouched = &sign_in.identity.email;
    let mut body = Map::new();
    let mut opts = WriteOptions::new(true);
    let reset = needs_reset(ctx, collection, &record);
    if reset {
        let hash = reset_hash.ok_or_else(changed_meanwhile)?;
        opts.password_hashes.insert("password".into(), hash);
    }
    let mut email = record.get_str("email").to_string();
    if email.is_empty() && !vouched.is_empty() {
        email = vouched.clone();
        body.insert("email".into(), json!(email));
    }
    let verified = record.get("verified") == Some(&Value::Bool(true));
    let becomes_verified = !verified && (email.is_empty() || &email == vouched);
    if becomes_verified {
        body.insert("verified".into(), json!(true));
        drop_links(ctx.db, collection, &record)?;
    }
    if body.is_empty() && !reset {
        return Ok(record);
    }
    write_update(ctx, collection, &record, &body, &opts, reset)
}

fn mark_verified(
    ctx: &Ctx<'_>,
    collection: &Collection,
    record: RecordValues,
) -> Result<RecordValues, ApiError> {
    drop_links(ctx.db, collection, &record)?;
    let body = json!({"verified": true});
    let body = body.as_object().cloned().unwrap_or_default();
    write_update(
        ctx,
        collection,
        &record,
        &body,
        &WriteOptions::new(true),
        false,
    )
}

/// Stores `body` over `record` (a new `tokenKey` when `rotate`) and reads
/// it back.
fn write_update(
    ctx: &Ctx<'_>,
    collection: &Collection,
    record: &RecordValues,
    body: &Map<String, Value>,
    opts: &WriteOptions,
    rotate: bool,
) -> Result<RecordValues, ApiError> {
    let mut values = records::build_update(collection, record, body, opts)
        .into_result()
        .map_err(|errors| ApiError::validation(AUTH_FAILED, errors))?;
    if rotate {
        values.set(
            "tokenKey",
            json!(random::string_from(random::ALPHANUMERIC, 50)),
        );
    }
    if !sql::update(ctx.db, collection, record.id(), &values)
        .map_err(|e| e.into_api(AUTH_FAILED))?
    {
        return Err(ApiError::bad_request(AUTH_FAILED));
    }
    sql::find_by_id(ctx.db, collection, record.id())?
        .ok_or_else(|| ApiError::internal("an updated record vanished"))
}

/// Removes every provider link of `record` (it is becoming verified: links
/// made while nobody had proven the address are not trusted).
fn drop_links(
    conn: &Connection,
    collection: &Collection,
    record: &RecordValues,
) -> Result<(), ApiError> {
    conn.execute(
        "DELETE FROM `_externalAuths` WHERE `collectionRef` = ?1 AND `recordRef` = ?2",
        rusqlite::params![collection.id, record.id()],
    )?;
    Ok(())
}

/// Links the identity to `record` unless it already is, replacing a link
/// left by a deleted record.
fn ensure_link(
    ctx: &Ctx<'_>,
    collection: &Collection,
    record: &RecordValues,
    sign_in: &SignIn,
) -> Result<(), ApiError> {
    let conn = ctx.db;
    let linked_to = linked_record_id(conn, collection, sign_in)?;
    if linked_to.as_deref() == Some(record.id()) {
        return Ok(());
    }
    conn.execute(
        "DELETE FROM `_externalAuths` \
         WHERE `collectionRef` = ?1 AND `provider` = ?2 AND `providerId` = ?3",
        rusqlite::params![collection.id, sign_in.provider, sign_in.identity.id],
    )?;
    let links = ctx
        .schema
        .get_by_name(EXTERNAL_AUTHS)
        .ok_or_else(|| ApiError::internal("the _externalAuths collection is missing"))?
        .clone();
    let body = json!({
        "collectionRef": collection.id,
        "recordRef": record.id(),
        "provider": sign_in.provider,
        "providerId": sign_in.identity.id,
    });
    let body = body.as_object().cloned().unwrap_or_default();
    let values = records::build_create(&links, &body, &WriteOptions::new(true))
        .into_result()
        .map_err(|errors| ApiError::validation(AUTH_FAILED, errors))?;
    sql::insert(conn, &links, &values).map_err(|e| {
        // e.g. the record already has another account of this provider
        log::debug!("OAuth2 link refused: {e:?}");
        ApiError::bad_request(AUTH_FAILED)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_passwords_take_create_data_s_pair_or_a_random_one() {
        let given = json!({"password": "chosen-pass-1", "passwordConfirm": "chosen-pass-1"});
        let fields = create_passwords(given.as_object().unwrap());
        assert_eq!(fields["password"], "chosen-pass-1");
        assert_eq!(fields["passwordConfirm"], "chosen-pass-1");
        let unconfirmed = json!({"password": "short"});
        let fields = create_passwords(unconfirmed.as_object().unwrap());
        assert_eq!(fields["passwordConfirm"], Value::Null);
        let a = create_passwords(&Map::new());
        let b = create_passwords(&Map::new());
        assert_eq!(a["password"], a["passwordConfirm"]);
        assert_eq!(
            a["password"].as_str().unwrap().len(),
            RANDOM_PASSWORD_LENGTH
        );
        assert_ne!(a["password"], b["password"]);
    }
}
