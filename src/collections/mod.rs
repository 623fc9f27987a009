//! Collections: the schema of the data API. `model` holds the types; the
//! rest turns them into JSON, SQL tables and API responses.

pub mod auth_options;
pub mod ids;
pub mod index;
pub mod json;
pub mod model;
pub mod registry;
pub mod view;

pub use model::{Collection, CollectionType, Field, FieldKind};
pub use registry::Schema;
