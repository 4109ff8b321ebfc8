//! What the HTTP surface answers while the database is down.
//!
//! A request that needs the database fails within the pool's acquire
//! timeout (`RENKEI_DATABASE_ACQUIRE_TIMEOUT_MS`) with the code
//! `DATABASE_UNAVAILABLE` (`renkei_schema::error`). Over HTTP such an answer
//! is a `503 Service Unavailable` with `Retry-After`, in every media type,
//! so clients, proxies and load balancers see at once that the hub is
//! unable to work for now and that the request may be sent again — whether
//! the outage showed while authenticating, while executing, or while
//! writing the audit entries (then the data is withheld: no data leaves
//! without its audit entry). `/ready` asks the database with a short
//! timeout of its own, so it answers `503` within a second.
//!
//! Nothing here holds state: when the database is back, the next request
//! gets a connection (the pool tests each before handing it out), with no
//! restart.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use renkei_schema::error::{ApiError, DATABASE_UNAVAILABLE};
use sea_orm::DatabaseConnection;

use crate::graphql_http::{self, Media};

/// Seconds a client is asked to wait before sending the request again: about
/// what PostgreSQL takes to restart, short enough not to prolong an outage
/// that is already over.
pub const RETRY_AFTER_SECONDS: u64 = 2;

/// How long `/ready` waits for the database to answer. Below a load
/// balancer's usual health-check timeout (1–2 s): a hub whose database is
/// down is reported unready rather than timing the check out.
pub const READY_PING_TIMEOUT: Duration = Duration::from_millis(500);

/// Whether a GraphQL response carries `DATABASE_UNAVAILABLE`.
pub fn carries_outage(response: &async_graphql::Response) -> bool {
    response.errors.iter().any(|e| {
        e.extensions
            .as_ref()
            .and_then(|ext| ext.get("code"))
            .is_some_and(
                |code| matches!(code, async_graphql::Value::String(c) if c == DATABASE_UNAVAILABLE),
            )
    })
}

/// [`graphql_http::respond`], as `503` with `Retry-After` when the response
/// carries `DATABASE_UNAVAILABLE`. The body is the GraphQL response as it
/// is (what could be read and audited, and the errors).
pub fn respond(media: Media, response: async_graphql::Response) -> Response {
    let unavailable = carries_outage(&response);
    let mut http = graphql_http::respond(media, response);
    if unavailable {
        mark(&mut http);
    }
    http
}

/// The answer to a request whose credentials could not be checked because
/// the database is unavailable; `None` for any other error, which the
/// caller answers as before.
pub fn refusal(media: Media, error: &ApiError) -> Option<Response> {
    if !matches!(error, ApiError::DatabaseUnavailable(_)) {
        return None;
    }
    let mut ext = async_graphql::ErrorExtensionValues::default();
    ext.set("code", error.code());
    let mut error = async_graphql::ServerError::new(error.message(), None);
    error.extensions = Some(ext);
    Some(respond(
        media,
        async_graphql::Response::from_errors(vec![error]),
    ))
}

/// The answer to a request whose audit entries could not be written because
/// the database is unavailable: the data is withheld (no data leaves
/// without its audit entry). `None` for any other error.
pub fn withheld(media: Media, error: &ApiError) -> Option<Response> {
    if !matches!(error, ApiError::DatabaseUnavailable(_)) {
        return None;
    }
    // The error the WebSocket sends in the same case.
    let error = renkei_schema::graphql::audit_extension::withheld(error);
    Some(respond(
        media,
        async_graphql::Response::from_errors(vec![error]),
    ))
}

/// Turns a response into `503 Service Unavailable` with `Retry-After`.
fn mark(response: &mut Response) {
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
}

/// Pings the database for `/ready`, within [`READY_PING_TIMEOUT`]; the
/// error says why it is unreachable.
pub async fn ping(db: &DatabaseConnection) -> Result<(), String> {
    match tokio::time::timeout(READY_PING_TIMEOUT, db.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "no answer within {} ms",
            READY_PING_TIMEOUT.as_millis()
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use renkei_schema::error::database_unavailable;
    use sea_orm::{ConnAcquireErr, DbErr, RuntimeErr, sqlx};

    use super::*;

    fn sqlx_err(e: sqlx::Error) -> DbErr {
        DbErr::Exec(RuntimeErr::SqlxError(Arc::new(e)))
    }

    #[test]
    fn an_unreachable_database_is_told_from_a_failed_statement() {
        for unreachable in [
            DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
            DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
            sqlx_err(sqlx::Error::PoolTimedOut),
            sqlx_err(sqlx::Error::Io(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused,
            ))),
            sqlx_err(sqlx::Error::Io(std::io::Error::from(
                std::io::ErrorKind::UnexpectedEof,
            ))),
        ] {
            assert!(database_unavailable(&unreachable), "{unreachable}");
            let error = ApiError::from(unreachable);
            assert_eq!(error.code(), "DATABASE_UNAVAILABLE");
            assert!(!error.message().contains("pool"), "{}", error.message());
        }
        for failed in [
            DbErr::RecordNotFound("audit_head".into()),
            DbErr::Custom("no audit key".into()),
            sqlx_err(sqlx::Error::RowNotFound),
            sqlx_err(sqlx::Error::Protocol("unexpected message".into())),
        ] {
            assert!(!database_unavailable(&failed), "{failed}");
            assert_eq!(ApiError::from(failed).code(), "INTERNAL");
        }
    }

    #[test]
    fn a_response_carrying_the_code_is_a_503_with_retry_after() {
        let error = |code: &str| {
            let mut e = async_graphql::ServerError::new("x", None);
            let mut ext = async_graphql::ErrorExtensionValues::default();
            ext.set("code", code);
            e.extensions = Some(ext);
            e
        };
        let outage = async_graphql::Response::from_errors(vec![
            error("FORBIDDEN_FIELD"),
            error(DATABASE_UNAVAILABLE),
        ]);
        let http = respond(Media::Json, outage);
        assert_eq!(http.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(http.headers()[header::RETRY_AFTER], "2");
        let other = async_graphql::Response::from_errors(vec![error("NOT_FOUND")]);
        let http = respond(Media::Json, other);
        assert_eq!(http.status(), StatusCode::OK);
        assert!(!http.headers().contains_key(header::RETRY_AFTER));
        // Other failures are answered as before.
        assert!(refusal(Media::Json, &ApiError::Internal("x".into())).is_none());
        assert!(withheld(Media::Json, &ApiError::Internal("x".into())).is_none());
    }

    #[test]
    fn the_acquire_timeout_is_bounded() {
        let config = |ms| crate::config::DatabaseConfig {
            database_url: "sqlite::memory:".into(),
            database_max_connections: 1,
            database_acquire_timeout_ms: ms,
        };
        assert_eq!(
            config(1500).acquire_timeout().unwrap(),
            Duration::from_millis(1500)
        );
        for bad in [0, 99, 60_001] {
            let e = config(bad).acquire_timeout().unwrap_err().to_string();
            assert!(e.contains("RENKEI_DATABASE_ACQUIRE_TIMEOUT_MS"), "{e}");
            assert!(e.contains(&bad.to_string()), "{e}");
        }
    }
}
