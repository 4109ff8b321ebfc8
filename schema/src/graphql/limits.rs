//! How much a request may ask for, checked as soon as it is parsed: before
//! async-graphql's own checks and validation rules walk the document — they
//! follow fragment spreads without bound, and 22 fragments that each spread
//! the next twice kept the hub's CPU busy for 24 s before it answered, each
//! fragment more doubling that — and long before execution:
//!
//! - **depth**: fields nested more than [`MAX_DEPTH`] deep (fragments
//!   counted where they are spread) are refused. Introspection (`__schema`,
//!   `__type`) counts as one level: the standard introspection query every
//!   tool sends (GraphiQL, Apollo, graphql-core, code generators) nests its
//!   `ofType { ofType { … } }` chains 15 deep, and refusing it left GraphiQL
//!   without docs or completion. Its own shape is bounded instead, by
//!   graphql-js's `MaxIntrospectionDepthRule`: inside introspection the list
//!   fields `fields`, `inputFields`, `interfaces` and `possibleTypes` may nest
//!   at most [`MAX_INTROSPECTION_LISTS`] deep, which is what the standard
//!   query needs and what keeps `fields { type { fields { type { … } } } }`
//!   from multiplying the answer.
//! - **complexity**: more than [`MAX_COMPLEXITY`] field selections (spread
//!   fragments counted each time) are refused — introspection included: the
//!   standard query selects about 230.
//! - **introspection** itself, when the deployment switched it off
//!   (`RENKEI_INTROSPECTION=false`): any `__schema` or `__type` is refused
//!   with `INTROSPECTION_DISABLED`. `__typename` is not introspection (clients
//!   use it to tell types apart) and federation's `_service { sdl }` still
//!   answers: a gateway needs it.
//!
//! async-graphql's own `limit_depth` counts introspection like data, and a
//! validation rule of ours cannot be plugged into it, hence this extension.
//! - **entity representations**: federation's `_entities` resolves each
//!   representation it is given with everything selected under it, so its
//!   list multiplies the operation's cost as no other argument does (3,000
//!   copies of one patient with its timeline held every database connection
//!   for seconds, and 15,000 unknown ids wrote 15,000 audit entries): an
//!   operation may name at most [`MAX_REPRESENTATIONS`] in all, as
//!   `patientsByLocalIds` takes at most that many ids (`BAD_USER_INPUT`,
//!   before anything runs).
//!
//! - **list lengths**: no list in the arguments or variables may hold more
//!   than [`MAX_LIST_ITEMS`] items (`BAD_USER_INPUT`). The batch fields take
//!   at most 500 anyway and say so; a filter's list of 40,000 statuses went
//!   into an SQL `IN` and past SQLite's limit on parameters (an internal
//!   error, where it is the input that is wrong).
//!
//! Each operation of the document is measured on its own (only one runs).
//! A fragment spread inside itself is refused here too (the walk would not
//! end). Every error carries `extensions.code`: `GRAPHQL_VALIDATION_FAILED`
//! for the limits and cycles, `INTROSPECTION_DISABLED` for the switch.

use std::sync::Arc;

use async_graphql::{
    ErrorExtensionValues, Pos, Request, ServerError, ServerResult,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest},
    parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet},
};

/// Deepest field nesting accepted: generous for real clients (the deepest
/// legitimate query, patient → care team → organisation → members, is 5
/// deep), tight enough that a hostile query is refused before it runs.
pub const MAX_DEPTH: usize = 12;

/// Most field selections in one operation.
pub const MAX_COMPLEXITY: usize = 2_000;

/// How deep introspection's list fields may nest (graphql-js's
/// `MaxIntrospectionDepthRule` refuses a third level; so does this).
pub const MAX_INTROSPECTION_LISTS: usize = 2;

/// Most `_entities` representations in one operation (all its `_entities`
/// fields together).
pub const MAX_REPRESENTATIONS: usize = super::MAX_LOOKUPS;

/// Most items of any one list in a request's arguments or variables.
pub const MAX_LIST_ITEMS: usize = 1_000;

/// Selections (fields, fragment spreads, inline fragments) looked at before
/// the measuring gives up: fragments that spread each other twice over
/// expand exponentially, and the walk must stay cheap whatever it is sent.
const MAX_STEPS: usize = 10 * MAX_COMPLEXITY;

/// Nesting of selection sets and fragments the walk follows, to bound its
/// own stack. async-graphql refuses more than 32 later on
/// (`limit_recursive_depth`'s default).
const MAX_NESTING: usize = 64;

/// The introspection lists [`MAX_INTROSPECTION_LISTS`] counts.
const INTROSPECTION_LISTS: [&str; 4] = ["fields", "inputFields", "interfaces", "possibleTypes"];

/// Fields that open introspection.
fn is_introspection(field: &str) -> bool {
    field == "__schema" || field == "__type"
}

/// The query limits and the introspection switch, as a schema extension.
pub struct QueryLimits {
    /// Whether `__schema` and `__type` are answered.
    pub introspection: bool,
}

impl ExtensionFactory for QueryLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(QueryLimitsExtension {
            introspection: self.introspection,
        })
    }
}

struct QueryLimitsExtension {
    introspection: bool,
}

#[async_graphql::async_trait::async_trait]
impl Extension for QueryLimitsExtension {
    /// The first hook a request passes. The document parsed here (unless the
    /// server's query cache parsed it already) stays with the request, so
    /// it is parsed once; text that does not parse is left to async-graphql,
    /// which reports it as usual.
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let variables = std::mem::take(&mut request.variables);
        let checked = match request.parsed_query() {
            Ok(document) => check(document, self.introspection)
                .and_then(|()| check_subscription_roots(document))
                .and_then(|()| check_lists(document, &variables))
                .and_then(|()| check_representations(document, &variables)),
            Err(_) => Ok(()),
        };
        request.variables = variables;
        checked?;
        next.run(ctx, request).await
    }
}

/// Why a document is refused.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    TooDeep,
    TooComplex,
    IntrospectionTooDeep,
    IntrospectionDisabled,
    /// A fragment spread (directly or not) inside itself, by name.
    FragmentCycle(String),
}

/// Refuses a document that asks for more than the limits allow, or for
/// introspection when it is switched off.
fn check(document: &ExecutableDocument, introspection: bool) -> ServerResult<()> {
    for (_, operation) in document.operations.iter() {
        if let Err((refusal, pos)) = Walk::new(document, introspection).operation(operation) {
            return Err(refusal_error(refusal, pos));
        }
    }
    Ok(())
}

/// The GraphQL spec's "single root field" rule (§5.2.3.1), which
/// async-graphql does not check: a subscription selects exactly one root
/// field, and not an introspection one. Its `next` messages each answer one
/// event; more root fields (aliases of one field, through fragments too)
/// would each follow the events: one subscription counted against the
/// WebSocket's caps (per connection and per member) as many streams.
fn check_subscription_roots(document: &ExecutableDocument) -> ServerResult<()> {
    for (name, operation) in document.operations.iter() {
        if operation.node.ty != OperationType::Subscription {
            continue;
        }
        let mut keys = Vec::new();
        let mut spread = Vec::new();
        root_keys(
            document,
            &operation.node.selection_set.node,
            &mut keys,
            &mut spread,
        );
        let introspection = keys.iter().find(|(_, field, _)| field.starts_with("__"));
        let mut distinct: Vec<&str> = keys.iter().map(|(key, _, _)| *key).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let named = match name {
            Some(name) => format!("Subscription \"{name}\""),
            None => "Anonymous Subscription".to_string(),
        };
        let refusal = if let Some((_, field, pos)) = introspection {
            Some((
                format!("{named} must not select an introspection top level field (\"{field}\")."),
                *pos,
            ))
        } else if distinct.len() > 1 {
            Some((
                format!("{named} must select only one top level field."),
                keys.iter()
                    .find(|(key, _, _)| *key != keys[0].0)
                    .map_or(operation.pos, |(_, _, pos)| *pos),
            ))
        } else {
            None
        };
        if let Some((message, pos)) = refusal {
            let mut error = ServerError::new(message, Some(pos));
            let mut extensions = ErrorExtensionValues::default();
            extensions.set("code", "GRAPHQL_VALIDATION_FAILED");
            error.extensions = Some(extensions);
            return Err(error);
        }
    }
    Ok(())
}

/// The root fields of a selection set (response key, field name, where),
/// through fragments; each fragment expanded once (cycles were refused by
/// [`check`] before; an unknown fragment is validation's to report).
fn root_keys<'a>(
    document: &'a ExecutableDocument,
    set: &'a SelectionSet,
    keys: &mut Vec<(&'a str, &'a str, Pos)>,
    spread: &mut Vec<&'a str>,
) {
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                let name = field.node.name.node.as_str();
                let key = field.node.alias.as_ref().map_or(name, |a| a.node.as_str());
                keys.push((key, name, selection.pos));
            }
            Selection::FragmentSpread(s) => {
                let name = s.node.fragment_name.node.as_str();
                if spread.contains(&name) {
                    continue;
                }
                spread.push(name);
                if let Some(fragment) = document.fragments.get(name) {
                    root_keys(document, &fragment.node.selection_set.node, keys, spread);
                }
            }
            Selection::InlineFragment(inline) => {
                root_keys(document, &inline.node.selection_set.node, keys, spread);
            }
        }
    }
}

/// Refuses a request with a list longer than [`MAX_LIST_ITEMS`] in its
/// variables or in an argument written in the document.
fn check_lists(
    document: &ExecutableDocument,
    variables: &async_graphql::Variables,
) -> ServerResult<()> {
    fn longest(value: &async_graphql::Value, nesting: usize) -> usize {
        if nesting > MAX_NESTING {
            return 0;
        }
        match value {
            async_graphql::Value::List(items) => items
                .iter()
                .map(|v| longest(v, nesting + 1))
                .max()
                .unwrap_or(0)
                .max(items.len()),
            async_graphql::Value::Object(fields) => fields
                .values()
                .map(|v| longest(v, nesting + 1))
                .max()
                .unwrap_or(0),
            _ => 0,
        }
    }
    fn in_set(set: &SelectionSet, nesting: usize) -> Option<(String, Pos)> {
        if nesting > MAX_NESTING {
            return None;
        }
        set.items
            .iter()
            .find_map(|selection| match &selection.node {
                Selection::Field(field) => field
                    .node
                    .arguments
                    .iter()
                    .find_map(|(name, value)| {
                        let value = value
                            .node
                            .clone()
                            .into_const_with(|_| Ok::<_, ()>(async_graphql::Value::Null))
                            .ok()?;
                        (longest(&value, 0) > MAX_LIST_ITEMS)
                            .then(|| (name.node.to_string(), name.pos))
                    })
                    .or_else(|| in_set(&field.node.selection_set.node, nesting + 1)),
                Selection::FragmentSpread(_) => None,
                Selection::InlineFragment(inline) => {
                    in_set(&inline.node.selection_set.node, nesting + 1)
                }
            })
    }
    let too_long = |what: String, pos: Option<Pos>| {
        let mut error = ServerError::new(
            format!("{what}: a list may hold at most {MAX_LIST_ITEMS} items"),
            pos,
        );
        let mut extensions = ErrorExtensionValues::default();
        extensions.set("code", "BAD_USER_INPUT");
        extensions.set("field", what);
        error.extensions = Some(extensions);
        error
    };
    for (name, value) in variables.iter() {
        if longest(value, 0) > MAX_LIST_ITEMS {
            return Err(too_long(format!("${name}"), None));
        }
    }
    // A default written in the document is a value like any other: the
    // executor fills it in for a variable the request leaves out.
    for (_, operation) in document.operations.iter() {
        for definition in &operation.node.variable_definitions {
            if let Some(default) = &definition.node.default_value
                && longest(&default.node, 0) > MAX_LIST_ITEMS
            {
                return Err(too_long(
                    format!("${}", definition.node.name.node),
                    Some(default.pos),
                ));
            }
        }
    }
    let sets = document
        .operations
        .iter()
        .map(|(_, o)| &o.node.selection_set.node)
        .chain(
            document
                .fragments
                .values()
                .map(|f| &f.node.selection_set.node),
        );
    for set in sets {
        if let Some((name, pos)) = in_set(set, 0) {
            return Err(too_long(name, Some(pos)));
        }
    }
    Ok(())
}

/// Refuses an operation whose `_entities` fields name more than
/// [`MAX_REPRESENTATIONS`] representations together. `_entities` is a
/// field of `Query`: only the operation's own selections, and the
/// fragments spread among them, are looked at (cycles were refused by
/// [`check`]; the nesting is bounded all the same).
fn check_representations(
    document: &ExecutableDocument,
    variables: &async_graphql::Variables,
) -> ServerResult<()> {
    /// A variable's value: the request's, else the operation's default.
    type Lookup<'a> = dyn Fn(&async_graphql::Name) -> Option<async_graphql::Value> + 'a;
    fn count(
        document: &ExecutableDocument,
        variables: &Lookup<'_>,
        set: &SelectionSet,
        nesting: usize,
    ) -> usize {
        if nesting > MAX_NESTING {
            return 0;
        }
        set.items
            .iter()
            .map(|selection| match &selection.node {
                Selection::Field(field) if field.node.name.node == "_entities" => field
                    .node
                    .get_argument("representations")
                    .and_then(|value| {
                        value
                            .node
                            .clone()
                            .into_const_with(|name| variables(&name).ok_or(()))
                            .ok()
                    })
                    .map_or(0, |value| match value {
                        async_graphql::Value::List(items) => items.len(),
                        _ => 0,
                    }),
                Selection::Field(_) => 0,
                Selection::FragmentSpread(spread) => document
                    .fragments
                    .get(&spread.node.fragment_name.node)
                    .map_or(0, |fragment| {
                        count(
                            document,
                            variables,
                            &fragment.node.selection_set.node,
                            nesting + 1,
                        )
                    }),
                Selection::InlineFragment(inline) => count(
                    document,
                    variables,
                    &inline.node.selection_set.node,
                    nesting + 1,
                ),
            })
            .sum()
    }
    for (_, operation) in document.operations.iter() {
        let lookup = |name: &async_graphql::Name| {
            variables.get(name).cloned().or_else(|| {
                operation
                    .node
                    .variable_definitions
                    .iter()
                    .find(|d| d.node.name.node == *name)
                    .and_then(|d| d.node.default_value.as_ref())
                    .map(|d| d.node.clone())
            })
        };
        let named = count(document, &lookup, &operation.node.selection_set.node, 0);
        if named > MAX_REPRESENTATIONS {
            let mut error = ServerError::new(
                format!(
                    "representations: at most {MAX_REPRESENTATIONS} entities in one operation, got {named}: split the fetch"
                ),
                Some(operation.pos),
            );
            let mut extensions = ErrorExtensionValues::default();
            extensions.set("code", "BAD_USER_INPUT");
            extensions.set("field", "representations");
            error.extensions = Some(extensions);
            return Err(error);
        }
    }
    Ok(())
}

fn refusal_error(refusal: Refusal, pos: Pos) -> ServerError {
    let (message, code) = match refusal {
        Refusal::TooDeep => (
            format!("Query is nested too deep: this hub accepts fields nested at most {MAX_DEPTH} deep."),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        Refusal::TooComplex => (
            format!("Query is too complex: this hub accepts at most {MAX_COMPLEXITY} field selections in one operation (fragments counted where spread)."),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        Refusal::IntrospectionTooDeep => (
            format!("Maximum introspection depth exceeded: `fields`, `inputFields`, `interfaces` and `possibleTypes` may nest at most {MAX_INTROSPECTION_LISTS} deep."),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        Refusal::IntrospectionDisabled => (
            "Introspection is switched off on this hub (RENKEI_INTROSPECTION); the schema is published as schema.graphql.".to_string(),
            "INTROSPECTION_DISABLED",
        ),
        Refusal::FragmentCycle(name) => (
            format!("Cannot spread fragment \"{name}\" within itself."),
            "GRAPHQL_VALIDATION_FAILED",
        ),
    };
    let mut error = ServerError::new(message, Some(pos));
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code);
    error.extensions = Some(extensions);
    error
}

/// Measures one operation, stopping at the first limit it passes.
struct Walk<'a> {
    document: &'a ExecutableDocument,
    introspection: bool,
    complexity: usize,
    steps: usize,
    /// The fragments being expanded, outermost first.
    open_fragments: Vec<&'a str>,
}

impl<'a> Walk<'a> {
    fn new(document: &'a ExecutableDocument, introspection: bool) -> Self {
        Walk {
            document,
            introspection,
            complexity: 0,
            steps: 0,
            open_fragments: Vec::new(),
        }
    }

    fn operation(
        &mut self,
        operation: &'a async_graphql::Positioned<async_graphql::parser::types::OperationDefinition>,
    ) -> Result<(), (Refusal, Pos)> {
        self.selection_set(&operation.node.selection_set.node, 0, None, 0)
    }

    /// `depth`: data fields above this selection set; `lists`: `None`
    /// outside introspection, else the introspection lists above it;
    /// `nesting`: selection sets and fragments above it.
    fn selection_set(
        &mut self,
        set: &'a SelectionSet,
        depth: usize,
        lists: Option<usize>,
        nesting: usize,
    ) -> Result<(), (Refusal, Pos)> {
        for selection in &set.items {
            let pos = selection.pos;
            self.steps += 1;
            if self.steps > MAX_STEPS {
                return Err((Refusal::TooComplex, pos));
            }
            if nesting >= MAX_NESTING {
                return Err((Refusal::TooDeep, pos));
            }
            match &selection.node {
                Selection::Field(field) => {
                    self.complexity += 1;
                    if self.complexity > MAX_COMPLEXITY {
                        return Err((Refusal::TooComplex, pos));
                    }
                    let name = field.node.name.node.as_str();
                    let (depth, lists) = match lists {
                        None => {
                            let depth = depth + 1;
                            if depth > MAX_DEPTH {
                                return Err((Refusal::TooDeep, pos));
                            }
                            if is_introspection(name) {
                                if !self.introspection {
                                    return Err((Refusal::IntrospectionDisabled, pos));
                                }
                                (depth, Some(0))
                            } else {
                                (depth, None)
                            }
                        }
                        Some(lists) if INTROSPECTION_LISTS.contains(&name) => {
                            if lists + 1 > MAX_INTROSPECTION_LISTS {
                                return Err((Refusal::IntrospectionTooDeep, pos));
                            }
                            (depth, Some(lists + 1))
                        }
                        Some(lists) => (depth, Some(lists)),
                    };
                    self.selection_set(&field.node.selection_set.node, depth, lists, nesting + 1)?;
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    if self.open_fragments.contains(&name) {
                        return Err((Refusal::FragmentCycle(name.to_string()), pos));
                    }
                    // An unknown fragment is the validation rules' to report.
                    if let Some(fragment) = self.document.fragments.get(name) {
                        self.open_fragments.push(name);
                        self.selection_set(
                            &fragment.node.selection_set.node,
                            depth,
                            lists,
                            nesting + 1,
                        )?;
                        self.open_fragments.pop();
                    }
                }
                Selection::InlineFragment(inline) => {
                    self.selection_set(&inline.node.selection_set.node, depth, lists, nesting + 1)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(query: &str, introspection: bool) -> Option<Refusal> {
        let document = async_graphql::parser::parse_query(query).expect("the test query parses");
        for (_, operation) in document.operations.iter() {
            if let Err((r, _)) = Walk::new(&document, introspection).operation(operation) {
                return Some(r);
            }
        }
        None
    }

    /// `a { a { … x … } }`, `levels` fields deep.
    fn chain(levels: usize) -> String {
        format!("{}x{}", "a { ".repeat(levels - 1), " }".repeat(levels - 1))
    }

    #[test]
    fn depth_counts_fields_through_fragments_and_stops_at_the_limit() {
        assert_eq!(refusal(&format!("{{ {} }}", chain(MAX_DEPTH)), true), None);
        assert_eq!(
            refusal(&format!("{{ {} }}", chain(MAX_DEPTH + 1)), true),
            Some(Refusal::TooDeep)
        );
        // Fragments add no level of their own; their fields do.
        let through_fragments = format!(
            "query {{ a {{ ...F }} }} fragment F on A {{ ... on A {{ {} }} }}",
            chain(MAX_DEPTH)
        );
        assert_eq!(refusal(&through_fragments, true), Some(Refusal::TooDeep));
    }

    #[test]
    fn introspection_counts_one_level_of_depth_but_its_lists_are_bounded() {
        let deep_type_refs = format!(
            "{{ __schema {{ types {{ fields {{ type {{ {}name{} }} }} }} }} }}",
            "ofType { ".repeat(20),
            " }".repeat(20)
        );
        assert_eq!(refusal(&deep_type_refs, true), None);
        assert_eq!(
            refusal(
                "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }",
                true
            ),
            Some(Refusal::IntrospectionTooDeep)
        );
        assert_eq!(
            refusal(
                "query { __type(name: \"A\") { ...T } } fragment T on __Type { fields { type { interfaces { name } } } }",
                true
            ),
            None
        );
        // Data beside introspection is measured as ever.
        assert_eq!(
            refusal(
                &format!(
                    "{{ __schema {{ queryType {{ name }} }} {} }}",
                    chain(MAX_DEPTH + 1)
                ),
                true
            ),
            Some(Refusal::TooDeep)
        );
    }

    #[test]
    fn switched_off_introspection_is_refused_wherever_it_is_asked() {
        assert_eq!(
            refusal("{ __schema { queryType { name } } }", false),
            Some(Refusal::IntrospectionDisabled)
        );
        assert_eq!(
            refusal(
                "query { ...F } fragment F on Query { __type(name: \"A\") { name } }",
                false
            ),
            Some(Refusal::IntrospectionDisabled)
        );
        assert_eq!(refusal("{ __typename _service { sdl } }", false), None);
    }

    #[test]
    fn complexity_counts_every_selection_and_fragments_each_time_they_are_spread() {
        let wide = |n: usize| {
            let fields: Vec<String> = (0..n).map(|i| format!("f{i}: x")).collect();
            format!("{{ {} }}", fields.join(" "))
        };
        assert_eq!(refusal(&wide(MAX_COMPLEXITY), true), None);
        assert_eq!(
            refusal(&wide(MAX_COMPLEXITY + 1), true),
            Some(Refusal::TooComplex)
        );
        // Each fragment spreads the next twice: 2^30 fields if expanded.
        let mut query = String::from("query { ...F0 }");
        for i in 0..30 {
            query.push_str(&format!(
                " fragment F{i} on Q {{ ...F{n} ...F{n} }}",
                n = i + 1
            ));
        }
        query.push_str(" fragment F30 on Q { x }");
        let started = std::time::Instant::now();
        assert_eq!(refusal(&query, true), Some(Refusal::TooComplex));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn a_fragment_spread_inside_itself_is_refused_by_name() {
        assert_eq!(
            refusal(
                "query { ...A } fragment A on Q { x ...B } fragment B on Q { ...A }",
                true
            ),
            Some(Refusal::FragmentCycle("A".into()))
        );
        // The same fragment twice side by side is no cycle.
        assert_eq!(
            refusal("query { ...A a { ...A } } fragment A on Q { x }", true),
            None
        );
    }
}
