//! Shared records: the medical, dental, pharmacy and care data that the network
//! exchanges (`shared/domain.md`, "What is shared"), one schema for all four worlds.
//!
//! A record's content is a [`RecordData`]: one variant per [`RecordKind`], each
//! holding a plain data struct that is at once the GraphQL output object
//! (`ConditionData`), the GraphQL input object (`ConditionDataInput`) and the JSON
//! stored in the database. The envelope (patient, source organisation, author,
//! times, version, status) is not here: it is the same for every kind.
//!
//! - [`kinds`]: the one list of kinds, each kind's data category (what the access
//!   policy decides on) and how the patient summary treats it ([`SummaryRule`]);
//! - [`payloads`]: the per-kind structs, their closed lists and their validation;
//! - [`RecordData`] methods: the category actually governing a record (sensitive
//!   content overrides the kind's default), storage, summary series and currency.

/// A closed list of record content: a [`crate::domain_enum!`] (GraphQL enum and
/// database string, with the GraphQL name forced equal to the database string)
/// that also (de)serialises as that string for JSON storage.
macro_rules! record_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $db:literal ),+ $(,)?
        }
    ) => {
        $crate::domain_enum! {
            $(#[$meta])*
            pub enum $name {
                $( $(#[$vmeta])* #[graphql(name = $db)] $variant = $db ),+
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                Self::parse(&s).ok_or_else(|| {
                    serde::de::Error::custom(format_args!(
                        "unknown {} value {s:?}",
                        stringify!($name)
                    ))
                })
            }
        }
    };
}

pub(crate) mod checks;
mod data;
pub mod kinds;
pub mod payloads;
pub mod plausible;

#[cfg(test)]
mod tests;

pub use data::{FOREVER, is_hiv_test, names_hiv};
pub use kinds::{RecordData, RecordDataInput, RecordKind, SummaryRule};
pub use payloads::*;
