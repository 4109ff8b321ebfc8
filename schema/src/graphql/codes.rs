//! Gives every error that async-graphql itself raises a stable `extensions.code`,
//! so clients can branch on codes for *all* errors, not only ours:
//!
//! - `GRAPHQL_PARSE_FAILED`: the query is not valid GraphQL syntax;
//! - `BAD_USER_INPUT`: an argument or variable has the wrong type or an
//!   impossible value (e.g. `"2023-02-30"` for a `Date`);
//! - `GRAPHQL_VALIDATION_FAILED`: anything else the schema rejects before
//!   execution (unknown field, depth or complexity limit …).

use std::sync::Arc;

use async_graphql::{
    ServerError, ServerResult, ValidationResult, Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation},
    parser::types::ExecutableDocument,
};

pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodesExtension)
    }
}

struct ErrorCodesExtension;

fn with_code(mut err: ServerError, code: &'static str) -> ServerError {
    let ext = err.extensions.get_or_insert_with(Default::default);
    if ext.get("code").is_none() {
        ext.set("code", code);
    }
    err
}

#[async_graphql::async_trait::async_trait]
impl Extension for ErrorCodesExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables)
            .await
            .map_err(|e| with_code(e, "GRAPHQL_PARSE_FAILED"))
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|e| {
                    // async-graphql words every input-coercion failure this way
                    // (validation/rules/arguments_of_correct_type.rs).
                    let Some(field) = e
                        .message
                        .strip_prefix("Invalid value for argument \"")
                        .and_then(|rest| rest.split_once('"'))
                        .map(|(argument, _)| field_of(argument))
                    else {
                        return with_code(e, "GRAPHQL_VALIDATION_FAILED");
                    };
                    let mut e = with_code(e, "BAD_USER_INPUT");
                    // Where the value is, as the hub's own refusals name it.
                    let ext = e.extensions.get_or_insert_with(Default::default);
                    if ext.get("field").is_none() {
                        ext.set("field", field);
                    }
                    e
                })
                .collect()
        })
    }
}

/// An argument's path as async-graphql words it (`input.records.3.data`)
/// as the hub names fields (`input.records[3].data`).
fn field_of(argument: &str) -> String {
    let mut field = String::with_capacity(argument.len() + 4);
    for segment in argument.split('.') {
        if !field.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) && !segment.is_empty() {
            field.push('[');
            field.push_str(segment);
            field.push(']');
        } else {
            if !field.is_empty() {
                field.push('.');
            }
            field.push_str(segment);
        }
    }
    field
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_arguments_path_is_named_as_the_hub_names_fields() {
        assert_eq!(super::field_of("input.birthDate"), "input.birthDate");
        assert_eq!(
            super::field_of("input.records.3.data.vitalSigns"),
            "input.records[3].data.vitalSigns"
        );
        assert_eq!(super::field_of("ids.0.1"), "ids[0][1]");
        assert_eq!(super::field_of("first"), "first");
    }
}
