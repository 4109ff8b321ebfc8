//! Operations whose text is compiled into the hub — the FHIR endpoints'
//! bundle write and patient lookups (`server/src/fhir`) — run without the
//! validation a client's document gets.
//!
//! Validation checks a document against the schema: its fields, fragments,
//! variables, and the values given for its arguments. For a client's
//! document that is the first line of defence. For a text fixed at compile
//! time it says the same thing at every request, and its last rule is
//! costly: `ArgumentsOfCorrectType` copies each argument's value out of
//! the variables and walks it — for a bundle's `writeRecords` the whole
//! input of up to 500 records, ≈ 6 % of a FHIR import's CPU
//! (`bench/RESULTS.md`, issue 13, eleventh pass). The values themselves
//! are still parsed into their types when the field runs
//! (`InputType::parse`), so a wrong one is still refused, as
//! `BAD_USER_INPUT`; and the end-to-end tests run every such text, so a
//! text that no longer fits the schema fails them.
//!
//! Only the server marks an operation as fixed, by putting [`FixedOperation`]
//! into the request's data from Rust — which no client can — and only for a
//! `&'static str`.

use std::sync::Arc;

use async_graphql::{
    ServerError, ValidationResult,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextValidation},
};

/// Marks a request whose document is a text compiled into the hub.
pub struct FixedOperation;

/// Skips validation for requests marked [`FixedOperation`].
pub struct FixedOperations;

impl ExtensionFactory for FixedOperations {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(FixedOperationsExtension)
    }
}

struct FixedOperationsExtension;

#[async_graphql::async_trait::async_trait]
impl Extension for FixedOperationsExtension {
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        if ctx.data_opt::<FixedOperation>().is_some() {
            return Ok(ValidationResult {
                cache_control: Default::default(),
                complexity: 0,
                depth: 0,
            });
        }
        next.run(ctx).await
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Request, Schema, Variables};
    use serde_json::json;

    use super::*;

    struct Query;

    #[Object]
    impl Query {
        async fn double(&self, n: i32) -> i32 {
            n * 2
        }
    }

    fn schema() -> Schema<Query, EmptyMutation, EmptySubscription> {
        Schema::build(Query, EmptyMutation, EmptySubscription)
            .extension(FixedOperations)
            .finish()
    }

    fn request(n: serde_json::Value, fixed: bool) -> Request {
        let r = Request::new("query($n: Int!) { double(n: $n) }")
            .variables(Variables::from_json(json!({ "n": n })));
        if fixed { r.data(FixedOperation) } else { r }
    }

    #[tokio::test]
    async fn a_fixed_operation_runs_and_its_values_are_still_parsed() {
        let schema = schema();
        for fixed in [false, true] {
            let ok = schema.execute(request(json!(21), fixed)).await;
            assert!(ok.errors.is_empty(), "{:?}", ok.errors);
            assert_eq!(ok.data.into_json().unwrap(), json!({ "double": 42 }));
            // A value of the wrong type: refused by validation for a
            // client's document, by the argument's parse for a fixed one.
            let bad = schema.execute(request(json!("21"), fixed)).await;
            assert_eq!(bad.errors.len(), 1, "fixed: {fixed}");
            assert_eq!(bad.data.into_json().unwrap(), serde_json::Value::Null);
        }
    }

    #[tokio::test]
    async fn only_a_marked_request_skips_validation() {
        // An unused variable is a validation error, and nothing else.
        let text = "query($unused: Int) { double(n: 1) }";
        let client = schema().execute(Request::new(text)).await;
        assert_eq!(client.errors.len(), 1);
        let fixed = schema()
            .execute(Request::new(text).data(FixedOperation))
            .await;
        assert!(fixed.errors.is_empty(), "{:?}", fixed.errors);
    }
}
