//! Pages for people (issue 15): server-rendered HTML from askama templates
//! (`server/templates/`, escaping by default), Japanese first, readable on a
//! phone and printable, with no script and a Content-Security-Policy that
//! would stop one.
//!
//! Like the printable emergency sheet ([`crate::print`]), a page never reads
//! the database itself: it runs GraphQL queries against the schema — as the
//! caller, under the one policy, with an audit trail written before the page
//! leaves — and renders what came back. The public directory runs its query
//! with no caller at all, so it can only reach what the schema serves
//! without one.

// A page's refusal is its response (an error page with its status):
// returned by value, as axum handlers return responses.
#![allow(clippy::result_large_err)]

pub mod chart;
pub mod directory;
pub mod disaster;
pub mod indicators;
pub mod labels;

use std::sync::Arc;

use askama::Template;
use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use renkei_schema::audit::AuditTrail;
use renkei_schema::error::ApiError;
use renkei_schema::{Principal, RequestContext};
use serde_json::{Value, json};

use crate::http::AppState;

/// Who may cache a page.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    /// Shows what only its caller may see: never kept by a browser or proxy.
    Private,
    /// The same for everyone (the public directory): kept for a minute.
    Public,
}

/// An HTML response with the headers every page carries.
pub fn html_response(status: StatusCode, html: String, caching: Caching) -> Response {
    let mut response = (status, html).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(match caching {
            Caching::Private => "no-store",
            Caching::Public => "public, max-age=60",
        }),
    );
    // No script runs on a page even if one were injected; only the inline
    // style is allowed, and forms submit to the hub alone.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if status == StatusCode::UNAUTHORIZED {
        h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// A page rendered, or an internal error page when the template fails.
pub fn render(status: StatusCode, page: &impl Template, caching: Caching) -> Response {
    match page.render() {
        Ok(html) => html_response(status, html, caching),
        Err(e) => {
            tracing::error!(error = %e, "a page did not render");
            error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "内部エラー / Internal error",
                "internal error: the page could not be rendered; it has been logged",
            )
        }
    }
}

/// An error page: the status, a title, the hub's message; never data.
#[derive(Template)]
#[template(path = "page_error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    status: u16,
}

pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let page = ErrorPage {
        title,
        message,
        status: status.as_u16(),
    };
    match page.render() {
        Ok(html) => html_response(status, html, Caching::Private),
        Err(e) => {
            tracing::error!(error = %e, "an error page did not render");
            html_response(
                status,
                format!("HTTP {}\n", status.as_u16()),
                Caching::Private,
            )
        }
    }
}

/// The caller of a page that needs one: authenticated as `/graphql` does it
/// and counted against the same rate limits — or the page that says why not.
pub async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Principal, Response> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let principal = match state.auth.authenticate(authorization).await {
        Ok(p) => p,
        Err(ApiError::Unauthenticated(message)) => {
            return Err(error_page(
                StatusCode::UNAUTHORIZED,
                "ログインが必要です / Sign-in required",
                &message,
            ));
        }
        Err(e @ ApiError::DatabaseUnavailable(_)) => return Err(unavailable_page(&e.message())),
        Err(_) => {
            return Err(error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "内部エラー / Internal error",
                "internal error: the hub could not check the credentials; it has been logged",
            ));
        }
    };
    if let Err(limited) = state.rate_limits.check(&principal).await {
        let mut page = error_page(
            StatusCode::TOO_MANY_REQUESTS,
            "リクエストが多すぎます / Too many requests",
            &limited.message(),
        );
        page.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(limited.retry_after_seconds()),
        );
        state.observe.metrics.rate_limited(
            limited.scope.as_str(),
            crate::observe::metrics::Transport::Http,
        );
        crate::observe::set_outcome(&mut page, "RATE_LIMITED");
        return Err(page);
    }
    Ok(principal)
}

/// The page while the database is down: 503 with `Retry-After`, as the
/// GraphQL endpoint answers ([`crate::outage`]).
pub fn unavailable_page(message: &str) -> Response {
    let mut page = error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "一時的に利用できません / Temporarily unavailable",
        message,
    );
    page.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(crate::outage::RETRY_AFTER_SECONDS),
    );
    crate::observe::set_outcome(&mut page, renkei_schema::error::DATABASE_UNAVAILABLE);
    page
}

/// Runs one GraphQL query for a page: as `principal` (with its audit trail
/// written before the answer is used — no entry, no page), or with no
/// caller at all for a public page.
pub async fn query(
    state: &AppState,
    principal: Option<&Principal>,
    request_id: &str,
    query: &str,
    variables: Value,
) -> Result<Value, Response> {
    let trail = Arc::new(AuditTrail::new());
    let mut request = async_graphql::Request::new(query)
        .variables(async_graphql::Variables::from_json(variables))
        .data(trail.clone());
    if let Some(p) = principal {
        request = request.data(RequestContext {
            principal: p.clone(),
            request_id: request_id.to_string(),
        });
    }
    let response = state.schema.execute(request).await;
    let body = serde_json::to_value(&response).unwrap_or_else(|e| {
        tracing::error!(error = %e, "a GraphQL response did not serialise");
        json!({ "errors": [{ "extensions": { "code": "INTERNAL" } }] })
    });
    if let Some(p) = principal {
        let entries = trail.drain(p, request_id);
        if let Err(e) = state.audit.append(entries).await {
            tracing::error!(error = ?e, "audit entries could not be written; page withheld");
            if matches!(e, ApiError::DatabaseUnavailable(_)) {
                return Err(unavailable_page(
                    "the database is unavailable: the access could not be recorded in the audit log; try again shortly",
                ));
            }
            return Err(error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "内部エラー / Internal error",
                "internal error: the access could not be recorded in the audit log, so no data is returned; it has been logged",
            ));
        }
    }
    refuse_on_errors(&body)?;
    Ok(body)
}

/// An error in a page's query ends with an error page; the status says
/// which. (A page asks only for what its reader may see, so any error —
/// a withheld field included — is one.)
fn refuse_on_errors(body: &Value) -> Result<(), Response> {
    let Some(e) = body["errors"].as_array().and_then(|e| e.first()) else {
        return Ok(());
    };
    let code = e["extensions"]["code"].as_str().unwrap_or("INTERNAL");
    let message = e["message"].as_str().unwrap_or_default();
    Err(match code {
        "BAD_USER_INPUT" => error_page(
            StatusCode::BAD_REQUEST,
            "入力に誤りがあります / Bad input",
            message,
        ),
        "FORBIDDEN" | "FORBIDDEN_FIELD" => error_page(
            StatusCode::FORBIDDEN,
            "閲覧権限がありません / Not permitted",
            message,
        ),
        "UNAUTHENTICATED" => error_page(
            StatusCode::UNAUTHORIZED,
            "ログインが必要です / Sign-in required",
            message,
        ),
        "NOT_FOUND" => error_page(StatusCode::NOT_FOUND, "見つかりません / Not found", message),
        renkei_schema::error::DATABASE_UNAVAILABLE => unavailable_page(message),
        _ => {
            tracing::error!(code, message, "a page's query failed");
            error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "内部エラー / Internal error",
                "internal error: the hub could not complete the request; it has been logged",
            )
        }
    })
}
