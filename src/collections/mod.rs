//! Collections: the schema of the data API. `model` holds the types; the
//! rest turns them into JSON (`json`, `auth_options`), checks them
//! (`validate`), keeps a snapshot of them (`registry`), and applies them to
//! SQLite (`ddl`, `system`, `view`, `index`).

pub mod api;
pub mod auth_options;
pub mod ddl;
pub mod defaults;
pub mod ids;
pub mod index;
pub mod json;
pub mod model;
pub mod registry;
pub mod system;
pub mod validate;
pub mod view;

pub use index::{unique_indexes, UniqueIndex};
pub use model::{Collection, CollectionType, Field, FieldKind};
pub use registry::Schema;
pub use validate::{build_new, build_update, RuleCheck};

#[cfg(test)]
mod reference_tests;
