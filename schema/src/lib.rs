//! renkei's GraphQL schema, domain services and access policy.
//!
//! A newcomer's map:
//! - [`domain`]: closed enumerations and validated values — what the data *is*;
//! - [`policy`]: the one module that decides access; resolvers obtain a
//!   capability from it before they touch patient data;
//! - [`services`]: the rules (register, link, end a membership …), one module
//!   per aggregate, free of GraphQL;
//! - [`graphql`]: the schema — thin resolvers that parse input, ask the policy,
//!   call a service and wrap the result;
//! - [`demo`]: the fictional demo region;
//! - [`error`]: the error type of the GraphQL boundary and its stable codes.

pub mod audit;
pub mod cache;
pub mod clock;
pub mod demo;
pub mod domain;
pub mod error;
pub mod events;
pub mod graphql;
pub mod policy;
pub mod principal;
pub mod records;
pub mod services;

pub use graphql::{RenkeiSchema, SchemaDeps, build_schema, sdl};
pub use principal::{Principal, RequestContext};
