//! The audit log for operations over WebSocket.
//!
//! Over HTTP the handler gives each request an [`AuditTrail`] and writes it
//! before responding. Over WebSocket one connection carries many operations,
//! and a subscription answers many times: this extension gives every
//! operation of a WebSocket session its own trail and, for every response the
//! operation produces (each subscription event), writes the entries gathered
//! for it *before* the response leaves. If they cannot be written, the
//! response is replaced by an error (`DATABASE_UNAVAILABLE` when the
//! database is down, else `INTERNAL`): no patient data without its audit
//! entry.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextPrepareRequest, NextSubscribe,
};
use async_graphql::{Request, Response, ServerError, ServerResult};
use futures_util::stream::{BoxStream, StreamExt};

use crate::audit::{AuditTrail, AuditWriter};
use crate::error::{ApiError, Refusal};
use crate::principal::RequestContext;

/// Records the operation's refusals of acts on a patient's data — a write
/// the caller's role or the patient's consent does not allow, a withdrawal
/// of another organisation's record, naming the care team without reading
/// it ([`ApiError::ForbiddenAbout`]) — as `DENIED` entries of its trail,
/// naming the patient and the categories, as refused reads are. Read from
/// the response's errors once the operation has run (the refusal rides on
/// the error, never serialised), so it costs nothing per field.
pub struct RefusalAudit;

impl ExtensionFactory for RefusalAudit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RefusalAudit)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for RefusalAudit {
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let response = next.run(ctx, operation_name).await;
        if let Some(trail) = ctx.data_opt::<Arc<AuditTrail>>() {
            for error in &response.errors {
                if let Some(refusal) = error.source::<Refusal>() {
                    // Keyed by the message: the same refusal met twice in
                    // one operation (an error carried up to its parent) is
                    // one entry.
                    trail.refused(
                        Some(refusal.patient_id),
                        &refusal.categories,
                        format!("refused: {}", error.message),
                        format!("refused: {}", error.message),
                    );
                }
            }
        }
        response
    }
}

/// Marks a WebSocket session's data: its operations are audited by this
/// extension (HTTP requests are audited by the HTTP handler).
pub struct WebSocketSession;

pub struct WebSocketAudit {
    pub writer: AuditWriter,
}

impl ExtensionFactory for WebSocketAudit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(OperationAudit {
            writer: self.writer.clone(),
            trail: Arc::new(AuditTrail::new()),
        })
    }
}

/// One operation's trail (extensions are created per operation).
struct OperationAudit {
    writer: AuditWriter,
    trail: Arc<AuditTrail>,
}

#[async_graphql::async_trait::async_trait]
impl Extension for OperationAudit {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        if ctx.data_opt::<WebSocketSession>().is_none() {
            return next.run(ctx, request).await;
        }
        // A WebSocket session authenticated once, at `connection_init`; each
        // operation checks that the credentials still hold (a member
        // suspended, a key revoked since), from the database.
        if let (Some(caller), Some(db)) = (
            ctx.data_opt::<RequestContext>(),
            ctx.data_opt::<sea_orm::DatabaseConnection>(),
        ) && let Err(e) = crate::services::members::recheck(db, &caller.principal).await
        {
            let mut error = ServerError::new(e.message(), None);
            let mut ext = async_graphql::ErrorExtensionValues::default();
            ext.set("code", e.code());
            error.extensions = Some(ext);
            return Err(error);
        }
        next.run(ctx, request.data(self.trail.clone())).await
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let stream = next.run(ctx, stream);
        let (Some(_), Some(request)) = (
            ctx.data_opt::<WebSocketSession>(),
            ctx.data_opt::<RequestContext>(),
        ) else {
            return stream;
        };
        let request = request.clone();
        let trail = self.trail.clone();
        let writer = self.writer.clone();
        stream
            .then(move |response| {
                let entries = trail.drain(&request.principal, &request.request_id);
                let writer = writer.clone();
                async move {
                    match writer.append(entries).await {
                        Ok(()) => {
                            let mut response = response;
                            ensure_codes(&mut response);
                            response
                        }
                        Err(e) => {
                            tracing::error!(error = ?e, "audit entries of a WebSocket response could not be written; response withheld");
                            Response::from_errors(vec![withheld(&e)])
                        }
                    }
                }
            })
            .boxed()
    }
}

/// The error that replaces a response whose audit entries could not be
/// written: `DATABASE_UNAVAILABLE` when the database could not be reached
/// (the client may try again later), `INTERNAL` otherwise.
pub fn withheld(e: &ApiError) -> ServerError {
    let message = match e {
        ApiError::DatabaseUnavailable(_) => {
            "the database is unavailable, so the access could not be recorded in the audit log and no data is returned; try again shortly"
        }
        _ => {
            "internal error: the access could not be recorded in the audit log, so no data is returned; it has been logged"
        }
    };
    let mut error = ServerError::new(message, None);
    let mut ext = async_graphql::ErrorExtensionValues::default();
    let code = match e {
        ApiError::DatabaseUnavailable(_) => e.code(),
        _ => ApiError::Internal(String::new()).code(),
    };
    ext.set("code", code);
    error.extensions = Some(ext);
    error
}

/// Every error carries a code, over WebSocket as over HTTP: the few that
/// async-graphql raises during execution without one (an unknown
/// `_entities` typename) are the client's input.
pub fn ensure_codes(response: &mut Response) {
    for error in &mut response.errors {
        let ext = error.extensions.get_or_insert_with(Default::default);
        if ext.get("code").is_none() {
            ext.set("code", "BAD_USER_INPUT");
        }
    }
}
