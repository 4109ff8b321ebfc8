//! Apollo Federation: how the hub resolves the objects other subgraphs
//! reference (`_entities`), so that a gateway's entity fetch obeys the same
//! policy, leaves the same audit entries and answers a refusal the same way
//! as a direct query — and so that a refusal stays with its representation.
//!
//! async-graphql answers `_entities(representations: [_Any!]!): [_Entity]!`
//! itself and calls an entity resolver of [`super::Query`] once per
//! representation. Left alone, it (7.2.1)
//!
//! - resolves every entity's fields at the path `_entities.<field>`, without
//!   the representation's index. A gateway places a subgraph's error by
//!   that index (Apollo Gateway turns `_entities.<i>.summary` into the path
//!   of the i-th entity in its own response); without it, a care worker's
//!   `FORBIDDEN_FIELD` on lab results lands at a path that does not exist
//!   (or Hive Gateway reports an opaque "Unexpected error");
//! - fails the whole list when one resolver returns an error, and a list
//!   that is `[_Entity]!` then nulls the whole response.
//!
//! So each entity resolver returns an [`Entity`], built by [`resolve`]: it
//! knows its index in the representations, resolves its fields under
//! `_entities.<i>`, and a representation the caller may not see — or that
//! names nothing, or fails — is `null` at its index with the error at
//! `_entities.<i>` (a refusal: `NOT_FOUND`, the same whether the object
//! exists or not, recorded as `DENIED` by [`super::reach`] exactly as the
//! direct query records it). The other representations are answered.
//! What partners must declare so that the gateway keeps the refusal local
//! too is in `docs/federation.md`.
//!
//! Entity resolvers ignore guards (async-graphql issue #1651): each one
//! authorises inside, through the same policy path as the direct queries.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_graphql::{
    Context, ContextSelectionSet, ID, OutputType, Pos, Positioned, Request, Result, ServerResult,
    Value,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest},
    parser::types::Field,
    registry::Registry,
};
use uuid::Uuid;

use super::inputs::parse_id;
use crate::error::ApiError;

/// One answer of `_entities`: the object found for the representation at
/// `index`, or `None` (null there; [`resolve`] has put the error at the same
/// index).
pub struct Entity<T> {
    index: Option<usize>,
    found: Option<T>,
}

/// `Entity<Patient>` is `Patient` in the schema: the derive registers the
/// entity's `@key` under this type name.
impl<T: OutputType> OutputType for Entity<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::type_name().into_owned()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry);
        T::type_name().into_owned()
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        let Some(found) = &self.found else {
            return Ok(Value::Null);
        };
        // `with_index` is what async-graphql's own lists use to put an
        // item's index into the path of its fields (a doc-hidden API of
        // its derive macros: recheck it when upgrading async-graphql —
        // `federation.rs` and `gateways.rs` test the paths).
        let resolved = match self.index {
            Some(index) => found.resolve(&ctx.with_index(index), field).await,
            None => found.resolve(ctx, field).await,
        };
        // A non-null field of the entity that failed nulls this entity, as
        // in any list of nullable items — not the whole list.
        resolved.or_else(|error| {
            ctx.add_error(error);
            Ok(Value::Null)
        })
    }
}

/// Resolves the representation `typename` / `id` with `find`, which takes
/// the parsed id and must refuse as the direct query does (through
/// [`super::reach`]). Every entity the hub declares is keyed by `id`.
pub(crate) async fn resolve<T, F, Fut>(
    ctx: &Context<'_>,
    typename: &str,
    id: &ID,
    find: F,
) -> Result<Entity<T>>
where
    F: FnOnce(Uuid) -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let index = position(ctx, typename, id.as_str());
    let found = match parse_id("id", id) {
        Ok(id) => find(id).await,
        Err(e) => Err(e),
    };
    match found {
        Ok(found) => Ok(Entity {
            index,
            found: Some(found),
        }),
        Err(e) => {
            let mut error = async_graphql::Error::from(e).into_server_error(ctx.item.pos);
            error = ctx.set_error_path(error);
            error
                .path
                .extend(index.map(async_graphql::PathSegment::Index));
            ctx.add_error(error);
            Ok(Entity { index, found: None })
        }
    }
}

/// The index of this resolver's representation in the `_entities` list.
/// Representations that are alike (a gateway deduplicates them, a direct
/// caller may not) are handed out one index each, in order.
fn position(ctx: &Context<'_>, typename: &str, id: &str) -> Option<usize> {
    let key = (typename.to_string(), id.to_string());
    let Some(positions) = ctx.data_opt::<Positions>() else {
        // Not prepared by [`EntityPositions`]: the first alike is as good.
        return indexed(ctx).remove(&key).and_then(|mut at| at.pop_front());
    };
    let mut fields = positions.0.lock().unwrap_or_else(|e| e.into_inner());
    fields
        .entry(ctx.item.pos)
        .or_insert_with(|| indexed(ctx))
        .get_mut(&key)
        .and_then(VecDeque::pop_front)
}

type Indexed = HashMap<(String, String), VecDeque<usize>>;

/// The representations of the `_entities` field being resolved, by
/// typename and id.
fn indexed(ctx: &Context<'_>) -> Indexed {
    let mut out = Indexed::new();
    let Ok(arguments) = ctx.field().arguments() else {
        return out;
    };
    let Some(Value::List(representations)) = arguments
        .into_iter()
        .find_map(|(name, value)| (name.as_str() == "representations").then_some(value))
    else {
        return out;
    };
    for (index, representation) in representations.iter().enumerate() {
        let Value::Object(fields) = representation else {
            continue;
        };
        let (Some(Value::String(typename)), Some(id)) =
            (fields.get("__typename"), fields.get("id"))
        else {
            continue;
        };
        let id = match id {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => continue,
        };
        out.entry((typename.clone(), id))
            .or_default()
            .push_back(index);
    }
    out
}

/// The indexes still to hand out, per `_entities` field of the request (by
/// its place in the query: a request may alias several).
#[derive(Default)]
struct Positions(Mutex<HashMap<Pos, Indexed>>);

/// Gives every request the table [`position`] hands indexes out from.
pub struct EntityPositions;

impl ExtensionFactory for EntityPositions {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(EntityPositions)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for EntityPositions {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        next.run(ctx, request.data(Positions::default())).await
    }
}
