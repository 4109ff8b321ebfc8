//! The end-to-end tests, one module per area, built into one test binary.
//!
//! Each module spawns the real hub (`renkei_tests::TestApp`) with its own
//! database. They share a binary because every test binary links the whole
//! server: 42 binaries of ≈ 260 MB each made a clean `cargo test` write
//! ≈ 12 GB and link 42 times. Three areas keep binaries of their own:
//! `observability` installs the process's one tracing subscriber and reads
//! every line it captures, `faults` stops PostgreSQL and Redis and kills the
//! hub, and `connections` fills a hub's connection limit and times out its
//! readers — each is run by `cargo test` like the rest.
//!
//! One area alone: `cargo test -p renkei-tests --test e2e records::`.

mod access;
mod admission_discharge;
mod audit;
mod care_conferences;
mod consent_migration;
mod consents;
mod demo;
mod directory;
mod directory_functions;
mod disaster_register;
mod emergency;
mod emergency_categories;
mod emergency_information;
mod emergency_search;
mod emergency_sheet_pdf;
mod emergency_sheets;
mod everyday_records;
mod fair_use;
mod federation;
mod fhir_export;
mod fhir_identity;
mod fhir_import;
mod gateways;
mod graphiql;
mod graphql_over_http;
mod graphql_ws;
mod http;
mod indicators;
mod instances;
mod introspection;
mod jwks;
mod liaison;
mod outbreak_notices;
mod pages;
mod paging;
mod patients;
mod policy_rows;
mod practice_matrix;
mod records;
mod refusals;
mod subscriptions;
mod versions;
