//! The one error type of the GraphQL boundary.
//!
//! Every variant maps to exactly one stable `extensions.code`; clients branch on
//! the code, people read the message. The list is documented in `docs/errors.md`
//! and must stay in step with [`ApiError::code`].
//!
//! Internal failures (database, I/O) are logged here with their cause and reach
//! the client only as an opaque message plus the request's id, so database text
//! never leaves the server.

use async_graphql::ErrorExtensions;

/// Deliberately not `Display`: async-graphql converts any `Display` type into an
/// error *without* extensions, so keeping `Display` off makes every conversion go
/// through [`From<ApiError>`] below, which sets the code.
#[derive(Debug, Clone)]
pub enum ApiError {
    /// `UNAUTHENTICATED`: no credentials, or credentials that are invalid,
    /// expired or belong to a suspended member / revoked key.
    Unauthenticated(String),
    /// `FORBIDDEN`: the caller is known but may not perform this operation.
    Forbidden(String),
    /// `FORBIDDEN` of an act on a patient's data the caller may otherwise
    /// reach (a write, a withdrawal, naming the care team): the same answer
    /// as [`ApiError::Forbidden`], and recorded in the audit log as a
    /// `DENIED` entry naming the patient and categories
    /// (`graphql::audit_extension::RefusalAudit`). Made by the policy's
    /// checks on a `PatientAccess`, or by [`ApiError::about`].
    ForbiddenAbout { message: String, refusal: Refusal },
    /// `NOT_FOUND`: the object does not exist *or the caller may not know that it
    /// exists* (a patient outside the caller's relationships).
    NotFound(String),
    /// `BAD_USER_INPUT`: the input is well-formed GraphQL but its values are not
    /// acceptable (empty name, impossible date, malformed kana …). `field` names
    /// the offending input field.
    BadUserInput { field: String, message: String },
    /// `CONFLICT`: the request contradicts existing data (a local ID already
    /// linked to another patient, ending a membership twice …).
    Conflict(String),
    /// `CONFLICT` found at one place of the input — in a batch, one item
    /// (`input.records[3].sourceRecordId`): `field` names it, as for
    /// `BAD_USER_INPUT`. Made from a [`ApiError::Conflict`] by
    /// [`ApiError::in_field`], or directly with [`ApiError::conflict_in`].
    ConflictIn { field: String, message: String },
    /// `IMPLAUSIBLE_VALUE`: a measurement no patient can have — a negative
    /// HbA1c, an SpO2 over 100 % — refused by the table of plausible values
    /// (`docs/plausible-values.md`). `field` names it. Distinct from
    /// `BAD_USER_INPUT` so a sending system can route it to the person who
    /// entered the result rather than treat it as a bug of its own.
    ImplausibleValue { field: String, message: String },
    /// `ACCESS_ENDED`: a subscription ends because the caller lost access
    /// (consent withdrawn, off the care team, account suspended); the message
    /// says which.
    AccessEnded(String),
    /// `EVENTS_MISSED`: a subscription fell behind and missed events; it goes
    /// on, and the client should refetch what it shows.
    EventsMissed(String),
    /// `EMERGENCY_SEARCH_LIMIT`: the member made as many emergency patient
    /// searches as its window allows (`RENKEI_EMERGENCY_SEARCH_LIMIT`); the
    /// message says when the window ends. Decided before any patient is
    /// looked at, so it says nothing about who exists.
    EmergencySearchLimit(String),
    /// `EMERGENCY_SEARCH_TOO_MANY_MATCHES`: more patients match an emergency
    /// search than it may list; the caller is asked for more criteria (sex,
    /// area, the reading beside the kanji) instead of shown a list.
    EmergencySearchTooManyMatches(String),
    /// `INTERNAL`: something failed inside the hub. The cause is logged, the
    /// client sees only an opaque message.
    Internal(String),
    /// `DATABASE_UNAVAILABLE`: the database cannot be reached (down,
    /// restarting, or no pooled connection within
    /// `RENKEI_DATABASE_ACQUIRE_TIMEOUT_MS`). Nothing was done; the same
    /// request may be sent again later (over HTTP: `503` with
    /// `Retry-After`). The cause is logged, the client sees an opaque message.
    DatabaseUnavailable(String),
}

/// What a refused act concerned: recorded with its `DENIED` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub patient_id: uuid::Uuid,
    pub categories: Vec<crate::domain::DataCategory>,
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated(_) => "UNAUTHENTICATED",
            ApiError::Forbidden(_) | ApiError::ForbiddenAbout { .. } => "FORBIDDEN",
            ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::BadUserInput { .. } => "BAD_USER_INPUT",
            ApiError::Conflict(_) | ApiError::ConflictIn { .. } => "CONFLICT",
            ApiError::ImplausibleValue { .. } => "IMPLAUSIBLE_VALUE",
            ApiError::AccessEnded(_) => "ACCESS_ENDED",
            ApiError::EventsMissed(_) => "EVENTS_MISSED",
            ApiError::EmergencySearchLimit(_) => "EMERGENCY_SEARCH_LIMIT",
            ApiError::EmergencySearchTooManyMatches(_) => "EMERGENCY_SEARCH_TOO_MANY_MATCHES",
            ApiError::Internal(_) => "INTERNAL",
            ApiError::DatabaseUnavailable(_) => DATABASE_UNAVAILABLE,
        }
    }

    /// The message a client (or a CLI user) sees. Internal causes are never in it.
    pub fn message(&self) -> String {
        match self {
            ApiError::Internal(_) => {
                "internal error: the hub could not complete the request; it has been logged"
                    .to_string()
            }
            ApiError::DatabaseUnavailable(_) => {
                "the database is unavailable: nothing was done; try again shortly".to_string()
            }
            ApiError::Unauthenticated(m)
            | ApiError::Forbidden(m)
            | ApiError::NotFound(m)
            | ApiError::Conflict(m)
            | ApiError::AccessEnded(m)
            | ApiError::EventsMissed(m)
            | ApiError::EmergencySearchLimit(m)
            | ApiError::EmergencySearchTooManyMatches(m) => m.clone(),
            ApiError::ForbiddenAbout { message, .. } => message.clone(),
            ApiError::BadUserInput { field, message }
            | ApiError::ConflictIn { field, message }
            | ApiError::ImplausibleValue { field, message } => format!("{field}: {message}"),
        }
    }

    /// A refusal of an act on `patient_id`'s data of `categories`, so that
    /// it is recorded as `DENIED` ([`ApiError::ForbiddenAbout`]); any other
    /// error as it is.
    pub fn about(self, patient_id: uuid::Uuid, categories: &[crate::domain::DataCategory]) -> Self {
        match self {
            ApiError::Forbidden(message) => ApiError::ForbiddenAbout {
                message,
                refusal: Refusal {
                    patient_id,
                    categories: categories.to_vec(),
                },
            },
            other => other,
        }
    }

    /// The same error with its message rewritten (`FORBIDDEN` of either
    /// kind): to say which item of a batch it concerns.
    pub fn reworded(self, f: impl FnOnce(String) -> String) -> Self {
        match self {
            ApiError::Forbidden(m) => ApiError::Forbidden(f(m)),
            ApiError::ForbiddenAbout { message, refusal } => ApiError::ForbiddenAbout {
                message: f(message),
                refusal,
            },
            other => other,
        }
    }

    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::BadUserInput {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn conflict_in(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::ConflictIn {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn implausible(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::ImplausibleValue {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The input field an error names (`extensions.field`), if it names one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ApiError::BadUserInput { field, .. }
            | ApiError::ConflictIn { field, .. }
            | ApiError::ImplausibleValue { field, .. } => Some(field),
            _ => None,
        }
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::NotFound(format!("{what} not found"))
    }

    /// Logs the cause and returns the opaque `INTERNAL` error.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        ApiError::Internal(cause.to_string())
    }

    /// Prefixes the field path of an error that names a field
    /// (`BAD_USER_INPUT`, `IMPLAUSIBLE_VALUE`, a `CONFLICT` about one
    /// field); a `CONFLICT` that named none now names `prefix` — the batch
    /// item it was found in.
    pub fn in_field(self, prefix: &str) -> Self {
        let under = |field: String| format!("{prefix}.{field}");
        match self {
            ApiError::BadUserInput { field, message } => ApiError::BadUserInput {
                field: under(field),
                message,
            },
            ApiError::ImplausibleValue { field, message } => ApiError::ImplausibleValue {
                field: under(field),
                message,
            },
            ApiError::ConflictIn { field, message } => ApiError::ConflictIn {
                field: under(field),
                message,
            },
            ApiError::Conflict(message) => ApiError::ConflictIn {
                field: prefix.to_string(),
                message,
            },
            other => other,
        }
    }
}

/// The code of [`ApiError::DatabaseUnavailable`], for the layers that
/// recognise it in a response (the HTTP status, the WebSocket close code).
pub const DATABASE_UNAVAILABLE: &str = "DATABASE_UNAVAILABLE";

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        if database_unavailable(&err) {
            // Every request fails this way during an outage: a warning, not
            // an error per request's worth of alarm.
            tracing::warn!(error = %err, "database unavailable");
            return ApiError::DatabaseUnavailable(err.to_string());
        }
        ApiError::internal(format_args!("database: {err}"))
    }
}

/// Whether `err` says the database cannot be reached, rather than that a
/// statement failed: no pooled connection in time (the server is down, so
/// connecting is refused until the acquire timeout), an error in opening a
/// connection (`DbErr::Conn`: the server up but refusing this database's
/// connections — not accepting them while it is restored or maintained,
/// too many clients — before any statement ran; not a misconfiguration,
/// which is an internal error, logged), a connection that was
/// closed or reset under the statement, or PostgreSQL shutting down or
/// starting up (SQLSTATE class 57P, connection exceptions class 08), or a
/// lock not granted within the hub's `lock_timeout` (55P03: another session
/// holds it — an instance stalled inside a transaction) — nothing was done,
/// and the same request may succeed shortly.
pub fn database_unavailable(err: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    match err {
        DbErr::ConnectionAcquire(_) => true,
        // Opening a connection failed: the server is unreachable or refuses
        // it for now — but not for the hub's own configuration (a bad URL,
        // TLS, credentials refused: SQLSTATE class 28), which no retry mends.
        DbErr::Conn(RuntimeErr::SqlxError(e)) => {
            !matches!(
                &**e,
                sea_orm::sqlx::Error::Configuration(_) | sea_orm::sqlx::Error::Tls(_)
            ) && !matches!(&**e, sea_orm::sqlx::Error::Database(d) if d.code().is_some_and(|c| c.starts_with("28")))
        }
        DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            sqlx_unavailable(e)
        }
        _ => false,
    }
}

fn sqlx_unavailable(err: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error;
    match err {
        Error::PoolTimedOut | Error::PoolClosed | Error::WorkerCrashed | Error::Io(_) => true,
        Error::Database(e) => e.code().is_some_and(|code| {
            code.starts_with("57P") || code.starts_with("08") || code == "55P03"
        }),
        _ => false,
    }
}

impl ErrorExtensions for ApiError {
    fn extend(&self) -> async_graphql::Error {
        let message = self.message();
        let mut error = async_graphql::Error::new(message).extend_with(|_, ext| {
            ext.set("code", self.code());
            if let Some(field) = self.field() {
                ext.set("field", field);
            }
        });
        // Never serialised: read by the audit extension only.
        if let ApiError::ForbiddenAbout { refusal, .. } = self {
            error.source = Some(std::sync::Arc::new(refusal.clone()));
        }
        error
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(err: ApiError) -> Self {
        err.extend()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sea_orm::{DbErr, RuntimeErr, sqlx};

    use super::database_unavailable;

    #[test]
    fn a_connection_refused_for_the_hubs_configuration_is_no_outage() {
        let conn = |e: sqlx::Error| DbErr::Conn(RuntimeErr::SqlxError(Arc::new(e)));
        assert!(database_unavailable(&conn(sqlx::Error::PoolTimedOut)));
        assert!(database_unavailable(&conn(sqlx::Error::Io(
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused)
        ))));
        assert!(!database_unavailable(&conn(sqlx::Error::Configuration(
            "bad url".into()
        ))));
        assert!(!database_unavailable(&conn(sqlx::Error::Tls(
            "no certificate".into()
        ))));
    }
}
