//! Satchel: a PocketBase-compatible backend in one small binary.
//!
//! The crate is laid out by domain. `http` accepts and routes requests,
//! `store` owns the SQLite connections (one writer thread, read-only
//! connections for workers), and the domain modules (`collections`,
//! `records`, `auth`, `settings`, `realtime_api`) hold the API's behaviour.
//! `query`, `security`, `mail` and `realtime` (the SSE hub) are domain-free
//! tools with their own tests.
//!
//! No unsafe code (`deny`, not `forbid`), except where a module allows it by
//! name with its safety argument: `memory` (one allocator call) and
//! `security::thread_priority` (two libc calls that lower the hashing
//! threads' priority).
#![deny(unsafe_code)]

pub mod app;
pub mod auth;
pub mod boot;
pub mod cli;
pub mod collections;
pub mod datetime;
pub mod error;
pub mod http;
pub mod json;
pub mod mail;
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub mod memory;
pub mod query;
pub mod realtime;
pub mod realtime_api;
pub mod records;
pub mod request_log;
pub mod run;
pub mod security;
pub mod settings;
pub mod store;
