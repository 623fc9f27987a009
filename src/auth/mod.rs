//! Auth: who the caller is (tokens), the sign-in methods (password, OTP)
//! and what completes them (MFA, login alerts), the email flows
//! (verification, password reset, email change), impersonation, and
//! superuser management for the CLI. OAuth2 builds on these.

pub mod alerts;
pub mod api;
pub mod changes;
pub mod complete;
pub mod emails;
pub mod flows;
pub mod impersonate;
pub mod input;
pub mod limits;
pub mod mfa;
pub mod oauth2;
pub mod otp;
pub mod superusers;
pub mod throttle;
pub mod token;
pub mod token_cache;

pub use token::Auth;
