//! Records: the data of the collections. This module owns turning request
//! bodies into validated record values (`prepare`, with `values`,
//! `modifiers`, `validate`), storing and reading them (`sql`, `relations`)
//! and showing them (`output` for one record's visible fields, `present`
//! for everything a requester gets back: visibility, `expand` and
//! `fields`).
//!
//! `api` holds the HTTP handlers (`batch` the batch API over them) and
//! `filter` the meaning of filter and rule identifiers for records; the
//! rest never speaks HTTP, hashes passwords or parses filter expressions.

pub mod api;
pub mod autogenerate;
pub mod batch;
pub mod cast;
pub mod expand;
pub mod fields;
pub mod filter;
pub mod formats;
pub mod modifiers;
pub mod output;
pub mod prepare;
pub mod present;
pub mod relations;
pub mod sql;
pub mod validate;
pub mod values;

pub use formats::is_email;
pub use output::{to_json, Viewer};
pub use prepare::{
    build_create, build_update, merge_errors, prepare_create, prepare_update, removed_files,
    Prepared, WriteOptions,
};
pub use present::{present, PresentOptions, Presenter};
pub use relations::{check_relations, delete_record, DeleteError, DeleteOutcome, SchemaLookup};
pub use sql::{Order, SqlParam, WhereSql, WriteError};
pub use values::RecordValues;

#[cfg(test)]
mod scenarios;
