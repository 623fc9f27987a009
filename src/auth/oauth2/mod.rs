//! OAuth2 sign-in: the provider table, the outgoing HTTPS client, the
//! `auth-methods` entries (state and PKCE), `auth-with-oauth2`, the
//! `/api/oauth2-redirect` hand-off to realtime and Apple's client secret.
//!
//! It owns talking to identity providers and deciding which record an
//! identity signs into. It must never write outside a writer job, never
//! fetch a URL taken from a profile (avatars stay text), and never link an
//! existing account through an email address the provider did not verify.

pub mod account;
pub mod apple;
pub mod client;
pub mod exchange;
pub mod id_token;
pub mod methods;
pub mod profile;
pub mod providers;
pub mod redirect;
pub mod sign_in;

pub use methods::{auth_methods_entries, provider_catalogue};
pub use redirect::{deliver_oauth2_redirect, oauth2_redirect};
pub use sign_in::auth_with_oauth2;
