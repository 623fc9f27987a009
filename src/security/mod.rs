//! Domain-free security primitives: randomness, encodings, password hashing,
//! JWT signing and settings encryption. Nothing here knows about HTTP,
//! collections or records.

pub mod base64;
pub mod jwt;
pub mod md5;
pub mod password;
pub mod random;
pub mod thread_priority;
