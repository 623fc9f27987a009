//! `POST /api/collections/{c}/auth-with-oauth2`: checks the form, does the
//! provider round trips on the request worker (bounded by `client`'s
//! deadlines and call slots), hashes what needs hashing on the hashing pool,
//! and settles the account in one writer job that also passes the sign-in
//! gate (auth rule, MFA, login alerts) and renders the answer
//! `{token, record, meta}`.
//!
//! It never writes outside that job and never answers with the client
//! secret or the provider's error bodies (those only go to the log).

use super::account::{self, PasswordPrep, PreparedPasswords, SignIn, AUTH_FAILED};
use super::exchange::{self, ExchangeError, Tokens};
use super::profile::Identity;
use super::providers::{self, Provider, Unusable};
use crate::app::{App, Ctx};
use crate::auth::api as auth_api;
use crate::auth::complete::{self, Attempt, METHOD_OAUTH2};
use crate::auth::{token, Auth};
use crate::collections::auth_options::{AuthOptions, OAuth2, OAuth2Provider};
use crate::collections::Collection;
use crate::error::{ApiError, FieldErrors};
use crate::http::{body, Outcome, Reply, Req};
use crate::records::api::{writer_ctx, RequestParts};
use crate::records::PresentOptions;
use serde_json::{json, Map, Value};
use std::net::IpAddr;
use std::sync::Arc;

const FORM_INVALID: &str = "An error occurred while loading the submitted data.";

/// The request body.
#[derive(Debug, Default)]
struct Form {
    provider: String,
    code: String,
    code_verifier: String,
    redirect_url: String,
    create_data: Map<String, Value>,
    /// The whole body (for `mfaId`).
    values: Map<String, Value>,
}

impl Form {
    fn read(ctx: &Ctx<'_>, req: &mut Req<'_>) -> Result<Form, ApiError> {
        let values = body::parse(
            req,
            crate::http::request::DEFAULT_BODY_LIMIT,
            &ctx.app.temp_dir(),
        )?
        .values;
        let text = |key: &str| {
            values
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let mut redirect_url = text("redirectURL");
        if redirect_url.is_empty() {
            // the pre-0.23 spelling, still accepted by the reference
            redirect_url = text("redirectUrl");
        }
        let create_data = match values.get("createData") {
            Some(Value::Object(map)) => map.clone(),
            // multipart and form bodies carry it as JSON text
            Some(Value::String(s)) if !s.trim().is_empty() => match serde_json::from_str(s) {
                Ok(Value::Object(map)) => map,
                _ => return Err(ApiError::bad_request(FORM_INVALID)),
            },
            _ => Map::new(),
        };
        Ok(Form {
            provider: text("provider"),
            code: text("code"),
            code_verifier: text("codeVerifier"),
            redirect_url,
            create_data,
            values,
        })
    }

    /// The reference's checks, all reported at once; the provider's
    /// configuration when they pass.
    fn check<'o>(&self, oauth2: &'o OAuth2) -> Result<&'o OAuth2Provider, ApiError> {
        let mut errors = FieldErrors::new();
        let config = oauth2.providers.iter().find(|p| p.name == self.provider);
        if self.provider.is_empty() {
            errors.insert("provider".into(), required());
        } else if config.is_none() || self.provider.len() > 100 {
            errors.insert(
                "provider".into(),
                json!({
                    "code": "validation_invalid_provider",
                    "message": format!("Provider with name {} is missing or is not enabled.", self.provider),
                    "params": {"name": self.provider},
                }),
            );
        }
        if self.code.is_empty() {
            errors.insert("code".into(), required());
        }
        // An empty redirectURL is passed on as it is: v0.40.6 does not
        // require it (providers that need it refuse the code themselves).
        match config {
            Some(config) if errors.is_empty() => Ok(config),
            _ => Err(ApiError::validation(FORM_INVALID, errors)),
        }
    }
}

fn required() -> Value {
    crate::error::field_error("validation_required", "Cannot be blank.")
}

/// `POST /api/collections/{c}/auth-with-oauth2`
pub fn auth_with_oauth2(ctx: &Ctx<'_>, req: &mut Req<'_>, c: &str) -> Result<Outcome, ApiError> {
    let collection = auth_api::auth_collection(ctx, c)?;
    let options = AuthOptions::from_collection(&collection)
        .ok_or_else(|| ApiError::internal("unreadable auth options"))?;
    if !options.oauth2.enabled {
        return Err(ApiError::Forbidden(
            "The collection is not configured to allow OAuth2 authentication.".into(),
        ));
    }
    let present = auth_api::present_options(req)?;
    // A sign-up's create rule sees this request in the `oauth2` context,
    // with the new record's payload as its body (as the reference).
    let mut request = RequestParts::of(req);
    request.context = "oauth2";
    let form = Form::read(ctx, req)?;
    let attempt = Attempt::of(ctx, req, &form.values, METHOD_OAUTH2);
    let provider = providers::resolve(form.check(&options.oauth2)?).map_err(unusable)?;
    let sign_in = round_trip(&provider, form)?;
    let target = account::find_target(ctx, &collection, &sign_in)?;
    let prep = PasswordPrep::plan(ctx, &collection, &target, &sign_in.create_data);
    let job = SettleJob {
        app: ctx.app.clone(),
        auth: ctx.auth.clone(),
        remote_ip: ctx.remote_ip,
        request,
        collection_id: collection.id.clone(),
        mapped: options.oauth2.mapped_fields,
        sign_in,
        present,
        attempt,
    };
    if prep.is_empty() {
        return Ok(Outcome::Now(job.run(PreparedPasswords::default())?));
    }
    Ok(Outcome::Later(Box::new(move || job.run(prep.run()?))))
}

fn unusable(why: Unusable) -> ApiError {
    log::warn!("OAuth2 provider cannot be used: {why:?}");
    ApiError::bad_request("The OAuth2 provider is not supported or not fully configured.")
}

/// Code → tokens → identity.
fn round_trip(provider: &Provider, form: Form) -> Result<SignIn, ApiError> {
    let tokens = exchange::exchange_code(
        provider,
        &form.code,
        &form.code_verifier,
        &form.redirect_url,
    )
    .map_err(exchange_error)?;
    let identity = exchange::fetch_identity(provider, &tokens).map_err(exchange_error)?;
    Ok(SignIn {
        provider: provider.name.clone(),
        identity,
        tokens,
        create_data: form.create_data,
    })
}

fn exchange_error(e: ExchangeError) -> ApiError {
    match e {
        ExchangeError::Token(why) => {
            log::debug!("OAuth2 token exchange failed: {why}");
            ApiError::bad_request("Failed to fetch OAuth2 token.")
        }
        ExchangeError::User(why) => {
            log::debug!("OAuth2 user fetch failed: {why}");
            ApiError::bad_request("Failed to fetch OAuth2 user.")
        }
        ExchangeError::Busy => ApiError::Unavailable {
            message: "Too many OAuth2 sign-ins in progress, try again shortly.".into(),
            retry_after_secs: 1,
        },
    }
}

/// Everything the writer job needs, owned.
struct SettleJob {
    app: Arc<App>,
    auth: Option<Auth>,
    remote_ip: Option<IpAddr>,
    request: RequestParts,
    collection_id: String,
    mapped: crate::collections::auth_options::MappedFields,
    sign_in: SignIn,
    present: PresentOptions,
    attempt: Attempt,
}

impl SettleJob {
    fn run(self, passwords: PreparedPasswords) -> Result<Reply, ApiError> {
        let app = self.app.clone();
        // The write commits even when the auth rule then refuses the
        // sign-in (the reference links first and checks after).
        let answer = app.write(move |tx| {
            let ctx = writer_ctx(&self.app, tx.conn(), self.auth.clone(), self.remote_ip);
            let collection = ctx
                .schema
                .get_by_id(&self.collection_id)
                .cloned()
                .ok_or_else(|| ApiError::bad_request(AUTH_FAILED))?;
            let settled = account::settle(
                &ctx,
                tx,
                &self.request,
                &collection,
                &self.mapped,
                &self.sign_in,
                passwords,
            )?;
            // The gate's refusals keep the job's writes, as the rule's did.
            match complete::gate(&self.app, tx, &collection, &settled.record, &self.attempt) {
                Ok(None) => {}
                Ok(Some(challenge)) => return Ok(Ok(challenge)),
                Err(refused) => return Ok(Err(refused)),
            }
            Ok(
                answer(&ctx, &collection, &settled, &self.sign_in, &self.present)
                    .map(|reply| Reply::json(&reply)),
            )
        })?;
        answer
    }
}

/// `{token, record, meta}`.
fn answer(
    ctx: &Ctx<'_>,
    collection: &Collection,
    settled: &account::Settled,
    sign_in: &SignIn,
    present: &PresentOptions,
) -> Result<Value, ApiError> {
    let token = token::issue_auth(collection, &settled.record).map_err(ApiError::internal)?;
    let record = auth_api::owner_view(ctx, collection, &settled.record, &present.expand);
    let mut reply = json!({
        "token": token,
        "record": record,
        "meta": meta(&sign_in.identity, &sign_in.tokens, settled.is_new),
    });
    if let Some(fields) = &present.fields {
        fields.pick(&mut reply);
    }
    Ok(reply)
}

/// The reference's `meta`: the provider's view of the person and the
/// provider tokens, for apps that call the provider themselves.
fn meta(identity: &Identity, tokens: &Tokens, is_new: bool) -> Value {
    json!({
        "id": identity.id,
        "name": identity.name,
        "username": identity.username,
        "email": identity.email,
        "avatarURL": identity.avatar_url,
        "avatarUrl": identity.avatar_url,
        "rawUser": identity.raw_user,
        "accessToken": tokens.access_token,
        "refreshToken": tokens.refresh_token,
        "expiry": tokens.expiry,
        "isNew": is_new,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collections::auth_options::MappedFields;

    fn oauth2_with(names: &[&str]) -> OAuth2 {
        OAuth2 {
            providers: names
                .iter()
                .map(|n| OAuth2Provider {
                    pkce: None,
                    name: n.to_string(),
                    client_id: "id".into(),
                    client_secret: "s".into(),
                    auth_url: String::new(),
                    token_url: String::new(),
                    user_info_url: String::new(),
                    display_name: String::new(),
                    extra: Map::new(),
                })
                .collect(),
            mapped_fields: MappedFields::default(),
            enabled: true,
        }
    }

    fn data(err: ApiError) -> FieldErrors {
        match err {
            ApiError::Validation { errors, .. } => errors,
            other => panic!("not a validation error: {other:?}"),
        }
    }

    #[test]
    fn the_form_reports_every_missing_field_at_once() {
        let errors = data(Form::default().check(&oauth2_with(&["oidc"])).unwrap_err());
        let keys: Vec<&str> = errors.keys().map(String::as_str).collect();
        assert_eq!(keys, ["provider", "code"]);
    }

    #[test]
    fn an_unconfigured_provider_is_invalid_with_its_name() {
        let form = Form {
            provider: "github".into(),
            code: "c".into(),
            redirect_url: "r".into(),
            ..Form::default()
        };
        let errors = data(form.check(&oauth2_with(&["oidc"])).unwrap_err());
        assert_eq!(errors["provider"]["code"], "validation_invalid_provider");
        assert_eq!(errors["provider"]["params"]["name"], "github");
        assert!(form.check(&oauth2_with(&["oidc", "github"])).is_ok());
    }

    #[test]
    fn meta_has_the_reference_s_keys() {
        let m = meta(&Identity::default(), &Tokens::default(), true);
        let mut keys: Vec<&str> = m.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "accessToken",
                "avatarURL",
                "avatarUrl",
                "email",
                "expiry",
                "id",
                "isNew",
                "name",
                "rawUser",
                "refreshToken",
                "username"
            ]
        );
    }
}
