//! Collections: the schema of the data API. `model` holds the types; the
//! rest turns them into JSON, SQL tables and API responses.

pub mod model;

pub use model::{Collection, CollectionType, Field, FieldKind};
