//! FHIR R4 for renkei (issue 13): JP Core / JP-CLINS resources in and out.
//!
//! The hub's own model stays the truth: this crate maps FHIR resources to
//! the hub's record kinds on the way in (through the same write path, policy
//! and audit as `writeRecords`) and the records a caller may read back to
//! JP Core-profiled resources on the way out. It speaks the R4 (4.0.1)
//! model of the `fhir` crate; the code systems and profiles it names are in
//! [`systems`].

pub mod inbound;
pub mod outbound;
pub mod outcome;
pub mod systems;

/// The FHIR JSON media type, for `Content-Type` and `Accept`.
pub const MEDIA_TYPE: &str = "application/fhir+json";
