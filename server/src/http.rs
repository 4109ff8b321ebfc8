//! The HTTP surface: routes, the GraphQL handler, health checks, and the
//! layers around them (request ids, body limit, tracing, panic catcher).
//!
//! Request path: request id → CORS (when configured) → body limit →
//! [`graphql_get`] / [`graphql_post`]: authenticate → read the request
//! (`crate::graphql_http`: content type, JSON, GET parameters) → execute the
//! schema with a `RequestContext` → write the audit entries → the response in
//! the media type the client accepts.

use std::sync::Arc;

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, RawQuery, State, rejection::BytesRejection},
    http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use renkei_schema::audit::{AuditTrail, AuditWriter};
use renkei_schema::graphql::audit_extension::ensure_codes;
use renkei_schema::{RenkeiSchema, RequestContext, error::ApiError};
use sea_orm::DatabaseConnection;
use serde_json::json;
use tower_http::{
    catch_panic::CatchPanicLayer,
    cors::{AllowOrigin, CorsLayer},
    request_id::{PropagateRequestIdLayer, RequestId},
    trace::TraceLayer,
};

use crate::auth::Authenticator;
use crate::config::AllowedOrigin;
use crate::graphql_http::{self, Media, Refusal};
use crate::query_cache::Unprepared;

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
    /// GraphQL over WebSocket: its timeout and caps, and the subscriptions
    /// each caller holds (see [`crate::ws`]).
    pub websocket: Arc<crate::ws::WebSocketLimits>,
    /// Rate limits per member, organisation and API key ([`crate::rate_limit`]).
    pub rate_limits: Arc<crate::rate_limit::RateLimiter>,
    /// Metrics, access log, request ids (see [`crate::observe`]).
    pub observe: Arc<crate::observe::Observe>,
    /// The policy's clock: what the edges check against "today" (a consent
    /// dated in the future) is the day the policy keeps.
    pub clock: renkei_schema::clock::SharedClock,
}

pub fn router(state: AppState, max_body_bytes: usize, cors_origins: &[AllowedOrigin]) -> Router {
    let request_id = header::HeaderName::from_static("x-request-id");
    let observe = state.observe.clone();
    let mut router = Router::new();
    // `/metrics` on this listener only when a token is configured; otherwise
    // it is a path like any other the hub does not serve.
    if state.observe.public() {
        router = router.route("/metrics", get(crate::observe::public_metrics));
    }
    let router = router
        .route("/", get(graphiql))
        .route(
            "/graphql",
            get(graphql_get)
                .post(graphql_post)
                .fallback(graphql_method_not_allowed),
        )
        .route(
            "/graphql/ws",
            get(crate::ws::graphql_ws).fallback(ws_method_not_allowed),
        )
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route(
            "/patients/{id}/emergency-sheet",
            get(crate::print::emergency_sheet),
        )
        .route("/emergency-sheets", get(crate::print::emergency_sheets))
        .route("/directory", get(crate::pages::directory::public_directory))
        .route("/vacancies", get(crate::pages::directory::vacancy_board))
        .route("/indicators", get(crate::pages::indicators::dashboard))
        .route("/indicators.csv", get(crate::pages::indicators::csv))
        .route("/disaster-register.csv", get(crate::pages::disaster::csv))
        .nest("/fhir", crate::fhir::routes())
        // The base with a trailing slash is no FHIR route (the nest's
        // fallback covers what follows `/fhir/`): say so in FHIR too.
        .route("/fhir/", axum::routing::any(crate::fhir::not_served))
        .merge(crate::graphiql::routes())
        // What is not served answers as every error does, with a code, not
        // with the router's empty body (`/fhir` has its own, in FHIR).
        .fallback(not_served)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(max_body_bytes));
    // Without configured origins there is no CORS layer at all: a preflight
    // is an OPTIONS request like any other (405), and browsers refuse
    // cross-origin calls.
    let router = match cors(cors_origins) {
        Some(cors) => router
            .layer(cors)
            .layer(axum::middleware::map_response(only_allowed_cors)),
        None => router,
    };
    router
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::map_response(no_sniffing))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            // The route, not the path: a path may hold a patient's id.
            let path = crate::observe::access_log::loggable_path(req.uri().path());
            tracing::info_span!("request", method = %req.method(), path = %path, request_id = %id)
        }))
        // Outermost: settles the request id (a caller's only when short
        // and safe), writes the access log line and counts the request.
        .layer(axum::middleware::from_fn_with_state(
            observe,
            crate::observe::layer,
        ))
}

/// `X-Content-Type-Options: nosniff` on every answer, errors and panics
/// included: a browser must take a JSON answer (which may echo what a
/// caller sent) as JSON, never sniff it into HTML or script.
pub(crate) async fn no_sniffing(mut response: Response) -> Response {
    response
        .headers_mut()
        .entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    response
}

/// How long a browser may reuse a preflight's answer (10 minutes; Chromium
/// caps it at 2 hours, Firefox at 24).
const CORS_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(600);

/// The CORS layer for the configured origins, `None` when there are none.
/// Tokens travel in the `Authorization` header, never in cookies, so
/// credentials are not allowed (and a page of an allowed origin must hold
/// a token to get anything).
fn cors(origins: &[AllowedOrigin]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let origins = origins
        .iter()
        .map(|o| HeaderValue::from_str(o.as_str()))
        .collect::<Result<Vec<_>, _>>()
        // An AllowedOrigin is ASCII by construction.
        .expect("origins are valid header values");
    let request_id = header::HeaderName::from_static("x-request-id");
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                request_id.clone(),
            ])
            // A portal can quote the request id when it reports an error.
            .expose_headers([request_id])
            .max_age(CORS_MAX_AGE),
    )
}

/// Drops the CORS headers from a response that does not allow the request's
/// origin (tower-http adds some, e.g. the allowed methods, to every
/// preflight): an origin not listed gets no CORS headers at all.
async fn only_allowed_cors(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if !headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        let cors: Vec<_> = headers
            .keys()
            .filter(|k| k.as_str().starts_with("access-control-"))
            .cloned()
            .collect();
        for name in cors {
            headers.remove(name);
        }
    }
    response
}

/// An error response outside GraphQL execution, in the GraphQL response shape so
/// that clients read every error the same way.
/// Any other method on `/graphql` (PUT, DELETE, PATCH, OPTIONS without a
/// CORS layer): 405 with `Allow`, as a GraphQL error with its code.
async fn graphql_method_not_allowed() -> Response {
    let mut response = error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "/graphql answers GET (queries) and POST",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("GET, POST"));
    response
}

/// A path the hub does not serve. The path is not repeated: it may hold a
/// patient's id.
async fn not_served() -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "not served here: GraphQL is at /graphql (WebSocket: /graphql/ws), FHIR at /fhir",
    )
}

/// A method a served path does not answer; the router adds `Allow` with
/// the methods it does.
async fn method_not_allowed() -> Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "this method is not served at this path (the Allow header lists those that are)",
    )
}

/// Any method but GET on `/graphql/ws`: a WebSocket opens with a GET.
async fn ws_method_not_allowed() -> Response {
    ws_wrong_method()
}

/// [`ws_method_not_allowed`]'s answer.
pub(crate) fn ws_wrong_method() -> Response {
    let mut response = error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "/graphql/ws opens a WebSocket with GET; queries and mutations over plain HTTP go to /graphql",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("GET"));
    response
}

pub(crate) fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    error_response_as(Media::Json, status, code, message)
}

/// [`error_response`] in the media type the client accepts.
fn error_response_as(media: Media, status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = (
        status,
        axum::Json(json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, media.content_type());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    crate::observe::set_outcome(&mut response, code);
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

/// GraphiQL, from the binary's own files (see [`crate::graphiql`]).
async fn graphiql() -> Response {
    crate::graphiql::page()
}

/// `GET /graphql`: a GraphQL query in the URL's `query` parameter — or,
/// for a browser opening the endpoint (no `query`, `text/html` accepted),
/// GraphiQL. A GET never runs a mutation (405).
async fn graphql_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    request_id: Option<axum::Extension<RequestId>>,
    RawQuery(query): RawQuery,
) -> Response {
    if !graphql_http::has_query_parameter(query.as_deref()) && graphql_http::accepts_html(&headers)
    {
        return graphiql().await.into_response();
    }
    graphql(state, headers, request_id, Incoming::Get(query)).await
}

/// `POST /graphql`: a GraphQL query or mutation as a JSON body.
async fn graphql_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    request_id: Option<axum::Extension<RequestId>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    graphql(state, headers, request_id, Incoming::Post(body)).await
}

/// Where a GraphQL request arrives.
enum Incoming {
    /// The URL's query string.
    Get(Option<String>),
    Post(Result<Bytes, BytesRejection>),
}

async fn graphql(
    state: AppState,
    headers: HeaderMap,
    request_id: Option<axum::Extension<RequestId>>,
    body: Incoming,
) -> Response {
    crate::observe::note_graphql();
    let request_id = crate::http::request_id_text(request_id);
    let media = Media::negotiate(&headers);
    let as_media = media.unwrap_or(Media::Json);
    // Without a token, only the public directory is answered
    // (docs/directory.md); anything else is refused as before.
    if headers.get(header::AUTHORIZATION).is_none() {
        return public_graphql(state, headers, media, body).await;
    }
    // Authenticate first: an anonymous caller learns nothing, not even whether
    // its query would have parsed.
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let principal = match state.auth.authenticate(authorization).await {
        Ok(p) => {
            crate::observe::note_caller(p.organization_id());
            p
        }
        Err(ApiError::Unauthenticated(message)) => {
            return error_response_as(
                as_media,
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                &message,
            );
        }
        Err(e) => {
            // The database is down: 503, try again (crate::outage).
            if let Some(response) = crate::outage::refusal(as_media, &e) {
                return response;
            }
            return error_response_as(
                as_media,
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "internal error: the hub could not check the credentials; it has been logged",
            );
        }
    };
    let Some(media) = media else {
        return error_response(
            StatusCode::NOT_ACCEPTABLE,
            "NOT_ACCEPTABLE",
            "the Accept header names no media type the hub answers in: accept application/graphql-response+json or application/json",
        );
    };
    if let Err(limited) = state.rate_limits.check(&principal).await {
        state.observe.metrics.rate_limited(
            limited.scope.as_str(),
            crate::observe::metrics::Transport::Http,
        );
        let mut response = limited.response(media.content_type());
        crate::observe::set_outcome(&mut response, "RATE_LIMITED");
        return response;
    }
    let refused = |r: Refusal| error_response_as(media, r.status, r.code, &r.message);
    let is_get = matches!(body, Incoming::Get(_));
    let request = read_request(&headers, body).await;
    let mut request = match request {
        Ok(r) => r,
        Err(refusal) => return refused(refusal),
    };
    // A text that does not parse is not inspected: the executor reports it.
    let parsed = match state.queries.prepare(&mut request).await {
        Err(Unprepared::TooLarge(too_large)) => return refused(too_large),
        Err(Unprepared::TooDeep(error)) => {
            return graphql_http::respond(media, async_graphql::Response::from_errors(vec![error]));
        }
        Ok(parsed) => parsed,
    };
    crate::observe::note_operation(&mut request, parsed);
    let operation = parsed
        .then(|| graphql_http::selected_operation(&mut request))
        .flatten();
    let is_mutation = operation.as_ref().is_some_and(|o| o.is_mutation);
    // GET is a safe method: caches, prefetchers and crawlers may send it
    // again. A mutation must come by POST.
    if is_get && operation.as_ref().is_some_and(|o| o.is_mutation) {
        let mut response = refused(Refusal {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "METHOD_NOT_ALLOWED",
            message: "a mutation cannot be sent with GET: send it with POST".into(),
        });
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    if let Some(operation) = operation
        && !operation.missing_variables.is_empty()
    {
        return graphql_http::respond(
            media,
            async_graphql::Response::from_errors(operation.missing_variables),
        );
    }
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
        // A mutation's change committed with its own entries before these
        // (of what its answer reads) were written: "try again" (503) would
        // have a system send it twice. Its answer is withheld as internal,
        // saying the change may have been made.
        if is_mutation {
            return error_response_as(
                media,
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "internal error: the answer could not be recorded in the audit log, so it is withheld; the change itself may have been made — read before sending it again; it has been logged",
            );
        }
        if let Some(response) = crate::outage::withheld(media, &e) {
            return response;
        }
        return error_response_as(
            media,
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "internal error: the access could not be recorded in the audit log, so no data is returned; it has been logged",
        );
    }
    // 503 with Retry-After when the database was unavailable (crate::outage).
    crate::outage::respond(media, response)
}

/// The GraphQL request a body (or query string) carries.
async fn read_request(
    headers: &HeaderMap,
    body: Incoming,
) -> Result<async_graphql::Request, Refusal> {
    match body {
        Incoming::Get(query) => graphql_http::read_get(query.as_deref()),
        Incoming::Post(body) => match graphql_http::check_content_type(headers) {
            Err(refusal) => Err(refusal),
            Ok(()) => match body {
                Ok(body) => graphql_http::read_post_body(body).await,
                Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    Err(Refusal {
                        status: StatusCode::PAYLOAD_TOO_LARGE,
                        code: "PAYLOAD_TOO_LARGE",
                        message: "the request body is larger than this hub accepts".into(),
                    })
                }
                Err(rejection) if body_timed_out(&rejection) => Err(Refusal {
                    status: StatusCode::REQUEST_TIMEOUT,
                    code: "REQUEST_TIMEOUT",
                    message:
                        "the request body did not arrive in time (RENKEI_BODY_READ_TIMEOUT_SECONDS)"
                            .into(),
                }),
                Err(rejection) => Err(Refusal {
                    status: rejection.status(),
                    code: "BAD_REQUEST",
                    message: rejection.body_text(),
                }),
            },
        },
    }
}

/// Whether the body failed because its deadline passed (the listener's
/// `RequestBodyDeadlineLayer`, [`crate::listener`]): axum reports that as a
/// body it could not buffer, with the timeout among its causes.
pub fn body_timed_out(rejection: &BytesRejection) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(error) = cause {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// The root fields a caller without a token may ask for: the public
/// directory, which is built from what organisations marked public and never
/// touches patient data.
const PUBLIC_ROOT_FIELDS: &[&str] = &["publicDirectory", "publicCommunityResources", "__typename"];

/// A request without a token: answered when it is a query that asks for
/// nothing but [`PUBLIC_ROOT_FIELDS`] (plain fields, no fragments at the
/// root); anything else gets the 401 every anonymous request got before —
/// an anonymous caller still learns nothing of other queries, not even
/// whether they would have parsed.
async fn public_graphql(
    state: AppState,
    headers: HeaderMap,
    media: Option<Media>,
    body: Incoming,
) -> Response {
    let as_media = media.unwrap_or(Media::Json);
    let unauthenticated = || {
        error_response_as(
            as_media,
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "authentication required: send `Authorization: Bearer <token>` (only the public directory, `publicDirectory` and `publicCommunityResources`, is answered without one)",
        )
    };
    let Ok(mut request) = read_request(&headers, body).await else {
        return unauthenticated();
    };
    match state.queries.prepare(&mut request).await {
        Ok(true) => {}
        _ => return unauthenticated(),
    }
    if !only_public_fields(&mut request) {
        return unauthenticated();
    }
    let Some(media) = media else {
        return error_response(
            StatusCode::NOT_ACCEPTABLE,
            "NOT_ACCEPTABLE",
            "the Accept header names no media type the hub answers in: accept application/graphql-response+json or application/json",
        );
    };
    if let Err(limited) = state.rate_limits.check_public().await {
        state.observe.metrics.rate_limited(
            limited.scope.as_str(),
            crate::observe::metrics::Transport::Http,
        );
        let mut response = limited.response(media.content_type());
        crate::observe::set_outcome(&mut response, "RATE_LIMITED");
        return response;
    }
    crate::observe::note_operation(&mut request, true);
    let request = request.data(Arc::new(AuditTrail::new()));
    let mut response = state.schema.execute(request).await;
    ensure_codes(&mut response);
    crate::outage::respond(media, response)
}

/// Whether the request's operation is a query whose root selection is
/// nothing but [`PUBLIC_ROOT_FIELDS`].
fn only_public_fields(request: &mut async_graphql::Request) -> bool {
    use async_graphql::parser::types::{DocumentOperations, OperationType, Selection};
    let name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        return false;
    };
    let operation = match (&document.operations, name) {
        (DocumentOperations::Single(op), None) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => match ops.get(name.as_str()) {
            Some(op) => op,
            None => return false,
        },
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => match ops.values().next() {
            Some(op) => op,
            None => return false,
        },
        _ => return false,
    };
    let fields: Option<Vec<&str>> = operation
        .node
        .selection_set
        .node
        .items
        .iter()
        .map(|s| match &s.node {
            Selection::Field(f) => Some(f.node.name.node.as_str()),
            _ => None,
        })
        .collect();
    // `__typename` alone stays refused, as every anonymous request was.
    operation.node.ty == OperationType::Query
        && fields.is_some_and(|f| {
            f.iter().all(|n| PUBLIC_ROOT_FIELDS.contains(n)) && f.iter().any(|n| *n != "__typename")
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
    // Within a second, even with the database down (crate::outage).
    match crate::outage::ping(&state.db).await {
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

/// The request's `x-request-id` (set by the request-id layer) as text, for
/// logs and audit entries; empty when there is none.
pub(crate) fn request_id_text(
    request_id: Option<axum::Extension<tower_http::request_id::RequestId>>,
) -> String {
    request_id
        .and_then(|r| r.0.header_value().to_str().ok().map(str::to_owned))
        .unwrap_or_default()
}
