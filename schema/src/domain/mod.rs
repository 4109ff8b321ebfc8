//! Domain types: closed enumerations and validated values.
//!
//! GraphQL input is parsed into these types at the edge (`TryFrom` in the
//! `graphql` module); past the edge a value of one of these types is valid by
//! construction, so services never re-check it.

mod consent;
mod emergency;
mod emergency_search;
mod enums;
mod time;
mod values;

pub use consent::*;
pub use emergency::*;
pub use emergency_search::*;
pub use enums::*;
pub use time::*;
pub use values::*;

pub use crate::domain_enum;
