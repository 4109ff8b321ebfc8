//! The HTTP surface: routes, the GraphQL handler, health checks, and the
//! layers around them (request ids, body limit, tracing, panic catcher).
//!
//! Request path: request id → body limit → [`graphql`]: authenticate →
//! parse JSON → execute the schema with a `RequestContext` → JSON response.

use std::sync::Arc;

use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, GraphiQLSource};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State, WebSocketUpgrade, rejection::BytesRejection},
    http::{HeaderMap, HeaderValue, Request, StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use renkei_schema::audit::{AuditTrail, AuditWriter};
use renkei_schema::graphql::audit_extension::{WebSocketSession, ensure_codes};
use renkei_schema::{RenkeiSchema, RequestContext, error::ApiError};
use sea_orm::DatabaseConnection;
use serde_json::json;
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    trace::TraceLayer,
};

use crate::auth::Authenticator;

#[derive(Clone)]
pub struct AppState {
    pub schema: RenkeiSchema,
    pub auth: Arc<Authenticator>,
    pub audit: AuditWriter,
    pub db: DatabaseConnection,
    /// The Redis link between instances, when configured.
    pub relay: Option<Arc<crate::relay::RelayHealth>>,
    /// Parsed documents of the queries clients send again and again.
    pub queries: Arc<crate::query_cache::QueryCache>,
    /// The process's event bus (WebSocket sessions end on credential changes).
    pub events: renkei_schema::events::EventBus,
    /// The largest WebSocket message accepted (the request body limit).
    pub max_message_bytes: usize,
}

pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    let request_id = header::HeaderName::from_static("x-request-id");
    Router::new()
        .route("/", get(graphiql))
        .route("/graphql", get(graphiql).post(graphql))
        .route("/graphql/ws", get(graphql_ws))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route(
            "/patients/{id}/emergency-sheet",
            get(crate::print::emergency_sheet),
        )
        .with_state(state)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// An error response outside GraphQL execution, in the GraphQL response shape so
/// that clients read every error the same way.
fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = (
        status,
        axum::Json(json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL",
        "internal error: the hub could not complete the request; it has been logged",
    )
}

async fn graphiql() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .title("renkei GraphiQL — set the Authorization header below")
            .finish(),
    )
}

async fn graphql(
    State(state): State<AppState>,
    headers: HeaderMap,
    request_id: Option<axum::Extension<RequestId>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request_id = request_id
        .and_then(|r| r.0.header_value().to_str().ok().map(str::to_owned))
        .unwrap_or_default();
    // Authenticate first: an anonymous caller learns nothing, not even whether
    // its query would have parsed.
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let principal = match state.auth.authenticate(authorization).await {
        Ok(p) => p,
        Err(ApiError::Unauthenticated(message)) => {
            return error_response(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", &message);
        }
        Err(_) => {
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "internal error: the hub could not check the credentials; it has been logged",
            );
        }
    };
    let body = match body {
        Ok(b) => b,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                "the request body is larger than this hub accepts",
            );
        }
        Err(rejection) => {
            return error_response(rejection.status(), "BAD_REQUEST", &rejection.body_text());
        }
    };
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                &format!(
                    "the request body must be a JSON object {{\"query\": …, \"variables\": …}}: {e}"
                ),
            );
        }
    };
    let mut request = request;
    state.queries.prepare(&mut request);
    let trail = Arc::new(AuditTrail::new());
    let request = request.data(trail.clone()).data(RequestContext {
        principal: principal.clone(),
        request_id: request_id.clone(),
    });
    let mut response = state.schema.execute(request).await;
    ensure_codes(&mut response);
    // No patient data leaves before its audit entries are committed: if they
    // cannot be written, the client gets an error instead of the data.
    let entries = trail.drain(&principal, &request_id);
    if let Err(e) = state.audit.append(entries).await {
        tracing::error!(error = ?e, "audit entries could not be written; response withheld");
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "internal error: the access could not be recorded in the audit log, so no data is returned; it has been logged",
        );
    }
    axum::Json(response).into_response()
}

/// GraphQL over WebSocket (`graphql-transport-ws`, or the legacy
/// `graphql-ws`): subscriptions, and queries and mutations too.
///
/// Browsers cannot set headers on a WebSocket, so the token travels in the
/// `connection_init` payload — `{"Authorization": "Bearer …"}` (or
/// `{"token": "…"}`); other clients may send the `Authorization` header with
/// the upgrade request instead. An unauthenticated `connection_init` closes
/// the connection with the reason. Every operation is audited like an HTTP
/// request (see `renkei_schema::graphql::audit_extension`), and the
/// connection ends when the member's token expires.
async fn graphql_ws(
    State(state): State<AppState>,
    protocol: GraphQLProtocol,
    headers: HeaderMap,
    request_id: Option<axum::Extension<RequestId>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let header_token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let request_id = request_id
        .and_then(|r| r.0.header_value().to_str().ok().map(str::to_owned))
        .unwrap_or_default();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        // The request body limit does not reach WebSocket messages.
        .max_message_size(state.max_message_bytes)
        .on_upgrade(move |socket| async move {
            let (caller_tx, caller_rx) = tokio::sync::oneshot::channel();
            // Listen before the caller is authenticated: a suspension or
            // revocation published between the (possibly cached) login and
            // the watch would otherwise be missed.
            let events = state.events.subscribe();
            let auth = state.auth.clone();
            let serve = GraphQLWebSocket::new(socket, state.schema.clone(), protocol)
                .on_connection_init(move |payload| async move {
                    let token = token_in_payload(&payload).or(header_token);
                    let caller = auth
                        .authenticate_until(token.as_deref())
                        .await
                        .map_err(|e| async_graphql::Error::new(e.message()))?;
                    let mut data = async_graphql::Data::default();
                    data.insert(RequestContext {
                        principal: caller.principal.clone(),
                        request_id,
                    });
                    data.insert(WebSocketSession);
                    let _ = caller_tx.send(caller);
                    Ok(data)
                })
                .serve();
            tokio::select! {
                _ = serve => {}
                why = session_end(&state, caller_rx, events) => tracing::info!(why, "WebSocket closed"),
            }
        })
}

/// How long a session whose credentials ended stays open, so that its
/// subscriptions' `ACCESS_ENDED` reaches the client first.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// How long a WebSocket may stay open without `connection_init`.
const INIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Completes when a WebSocket session must end, saying why: no
/// `connection_init` in time, the token expired, or the caller's credentials
/// no longer hold (a member suspended, a key revoked — here or, through
/// Redis, on another instance). Until then it waits.
async fn session_end(
    state: &AppState,
    caller: tokio::sync::oneshot::Receiver<crate::auth::Authenticated>,
    mut events: tokio::sync::broadcast::Receiver<std::sync::Arc<renkei_schema::events::HubEvent>>,
) -> &'static str {
    use renkei_schema::events::HubEvent;
    use tokio::sync::broadcast::error::RecvError;
    let caller = match tokio::time::timeout(INIT_TIMEOUT, caller).await {
        Err(_) => return "no connection_init in time",
        Ok(Ok(caller)) => caller,
        // Refused at connection_init: the WebSocket protocol closes it.
        Ok(Err(_)) => return std::future::pending().await,
    };
    let expiry = async {
        match caller.expires_at {
            Some(at) => {
                let left = at
                    .duration_since(std::time::SystemTime::now())
                    .unwrap_or_default();
                tokio::time::sleep(left).await;
            }
            // An API key holds until it is revoked.
            None => std::future::pending::<()>().await,
        }
    };
    tokio::pin!(expiry);
    loop {
        tokio::select! {
            _ = &mut expiry => return "the token expired",
            event = events.recv() => {
                let recheck = match event {
                    Ok(e) => {
                        e.is_about_credentials_of(&caller.principal)
                            || matches!(&*e, HubEvent::RelayRecovered)
                    }
                    Err(RecvError::Lagged(_)) => true,
                    Err(RecvError::Closed) => return std::future::pending().await,
                };
                if recheck
                    && let Err(ApiError::Unauthenticated(_)) =
                        renkei_schema::services::members::recheck(&state.db, &caller.principal).await
                {
                    // The session's subscriptions see the same event and end
                    // with ACCESS_ENDED, saying why; let that reach the
                    // client before the connection goes.
                    tokio::time::sleep(CLOSE_GRACE).await;
                    return "the caller's credentials no longer hold";
                }
            }
        }
    }
}

/// The bearer token of a `connection_init` payload: `Authorization` (any
/// case) holding `Bearer …`, or `token` holding the bare token.
fn token_in_payload(payload: &serde_json::Value) -> Option<String> {
    let object = payload.as_object()?;
    object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, v)| v.as_str())
        .map(str::to_owned)
        .or_else(|| {
            object
                .get("token")
                .and_then(|v| v.as_str())
                .map(|t| format!("Bearer {t}"))
        })
}

/// Liveness: the process answers.
async fn health() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok" }))
}

/// Readiness: the database answers. Redis, when configured, is reported but
/// does not make the instance unready: without it the instance keeps serving
/// (its subscribers miss other instances' events until it is back).
async fn ready(State(state): State<AppState>) -> Response {
    let redis = match &state.relay {
        None => "not configured",
        Some(h) if h.is_up() => "ok",
        Some(_) => "unavailable",
    };
    match state.db.ping().await {
        Ok(()) => axum::Json(json!({
            "status": if redis == "unavailable" { "degraded" } else { "ready" },
            "database": "ok",
            "redis": redis,
        }))
        .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(
                    json!({ "status": "unavailable", "database": "unreachable", "redis": redis }),
                ),
            )
                .into_response()
        }
    }
}
