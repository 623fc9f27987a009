//! Auth: who the caller is (tokens), password sign-in, and superuser
//! management for the CLI. OTP, MFA, email flows and OAuth2 build on these.

pub mod api;
pub mod oauth2;
pub mod superusers;
pub mod throttle;
pub mod token;

pub use token::Auth;
