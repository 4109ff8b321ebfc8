//! The access log: one line per HTTP request, and one per GraphQL
//! operation over WebSocket, at `info` under the target `access`.
//!
//! A line says who (the caller's organisation, when authenticated), what
//! (method, route, operation name), how it went (status, outcome code) and
//! how long it took — never a query's text, its variables or anything read
//! from the database, so no patient data reaches the logs. Paths are logged
//! as their route (`/patients/{id}/emergency-sheet`, not the patient's id).

use std::time::Duration;

use uuid::Uuid;

/// One line of the access log.
pub struct Line<'a> {
    pub transport: &'static str,
    pub method: &'a str,
    pub path: &'a str,
    pub operation: Option<&'a str>,
    /// The HTTP status; none for an operation over WebSocket.
    pub status: Option<u16>,
    pub outcome: &'a str,
    pub duration: Duration,
    pub request_id: &'a str,
    pub organization: Option<Uuid>,
}

impl Line<'_> {
    pub fn write(&self) {
        // Milliseconds with microsecond precision.
        let duration_ms = (self.duration.as_secs_f64() * 1e6).round() / 1e3;
        tracing::info!(
            target: "access",
            transport = self.transport,
            method = self.method,
            path = self.path,
            operation = self.operation,
            status = self.status,
            outcome = self.outcome,
            duration_ms,
            request_id = self.request_id,
            organization = self.organization.map(tracing::field::display),
            "{}",
            if self.status.is_some() { "request" } else { "operation" },
        );
    }
}

/// The route a path belongs to, for the log and the metrics' `route` label.
pub fn route_of(path: &str) -> Option<&'static str> {
    Some(match path {
        "/" => "/",
        "/graphql" => "/graphql",
        "/graphql/ws" => "/graphql/ws",
        "/health" => "/health",
        "/ready" => "/ready",
        "/metrics" => "/metrics",
        "/emergency-sheets" => "/emergency-sheets",
        "/directory" => "/directory",
        "/vacancies" => "/vacancies",
        "/indicators" => "/indicators",
        "/indicators.csv" => "/indicators.csv",
        "/disaster-register.csv" => "/disaster-register.csv",
        "/fhir" | "/fhir/" => "/fhir",
        "/fhir/metadata" => "/fhir/metadata",
        "/fhir/Patient" => "/fhir/Patient",
        _ if path.starts_with("/patients/") && path.ends_with("/emergency-sheet") => {
            "/patients/{id}/emergency-sheet"
        }
        // A patient's id is in these paths: the log names the route only
        // (the audit log says whose data was read, to those who may know).
        _ if path.starts_with("/fhir/Patient/") && path.ends_with("/$everything") => {
            "/fhir/Patient/{id}/$everything"
        }
        _ if path.starts_with("/fhir/Patient/") && path.ends_with("/$summary") => {
            "/fhir/Patient/{id}/$summary"
        }
        _ if path.starts_with("/fhir/") => "/fhir/{unserved}",
        _ if path.starts_with("/graphiql/assets/") => "/graphiql/assets/{digest}/{name}",
        _ => return None,
    })
}

/// The longest first segment of an unknown path logged.
const MAX_SEGMENT: usize = 32;

/// Whether a path's segment reads as a word of a route (`graphq`, `api`,
/// `v1`, `favicon.ico`, `.well-known`) rather than a client's data: ASCII
/// letters, `.`, `_`, `-` and at most two digits, [`MAX_SEGMENT`] bytes at
/// most. A local patient ID (`P-0012345`), an id, a name (percent-escaped)
/// is not.
fn route_word(segment: &str) -> bool {
    !segment.is_empty()
        && segment.len() <= MAX_SEGMENT
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && segment.bytes().filter(u8::is_ascii_digit).count() <= 2
}

/// What the log shows of a path: its route, or for a path of no route
/// (answered 404) its first segment alone when it reads as a route's word
/// (else `{…}`), with `/{…}` when more followed. The rest of an unknown path
/// is whatever the client put there — a patient's id, a local patient ID, a
/// name — and the first segment is enough to see a client calling the
/// wrong place (`/graphq`, `/api/…`).
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    if let Some(route) = route_of(path) {
        return route.into();
    }
    let rest = path.strip_prefix('/').unwrap_or(path);
    let (first, more) = match rest.split_once('/') {
        Some((first, after)) => (first, !after.is_empty()),
        None => (rest, false),
    };
    let first = if first.is_empty() || route_word(first) {
        first
    } else {
        "{…}"
    };
    if more {
        format!("/{first}/{{…}}").into()
    } else if rest.ends_with('/') && !rest.is_empty() {
        format!("/{first}/").into()
    } else {
        format!("/{first}").into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patient_ids_in_paths_are_not_logged() {
        let id = Uuid::now_v7();
        assert_eq!(
            loggable_path(&format!("/patients/{id}/emergency-sheet")),
            "/patients/{id}/emergency-sheet"
        );
        assert_eq!(loggable_path("/emergency-sheets"), "/emergency-sheets");
        for (path, route) in [
            (
                format!("/fhir/Patient/{id}/$everything"),
                "/fhir/Patient/{id}/$everything",
            ),
            (
                format!("/fhir/Patient/{id}/$summary"),
                "/fhir/Patient/{id}/$summary",
            ),
            (format!("/fhir/Patient/{id}"), "/fhir/{unserved}"),
            ("/fhir/Patient".to_string(), "/fhir/Patient"),
        ] {
            assert_eq!(loggable_path(&path), route);
        }
        assert_eq!(loggable_path("/nope"), "/nope");
        assert_eq!(loggable_path("/api/"), "/api/");
        assert_eq!(loggable_path("/favicon.ico"), "/favicon.ico");
        assert_eq!(loggable_path("/"), "/");
        // What follows the first segment of an unknown path is the client's:
        // an id, a local patient ID, a name.
        assert_eq!(loggable_path(&format!("/patients/{id}")), "/patients/{…}");
        assert_eq!(
            loggable_path("/api/patients/P-0012345/%E5%B1%B1%E7%94%B0"),
            "/api/{…}"
        );
        // And so may the first segment be.
        for data in [
            format!("/{id}"),
            "/P-0012345".to_string(),
            "/%E5%B1%B1%E7%94%B0".to_string(),
            format!("/{}", "é".repeat(100)),
            format!("/{}", "a".repeat(33)),
        ] {
            assert_eq!(loggable_path(&data), "/{…}", "{data}");
        }
        assert_eq!(loggable_path(&"/é".repeat(100)), "/{…}/{…}");
    }
}
