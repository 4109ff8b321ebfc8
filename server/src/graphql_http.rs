//! GraphQL over HTTP, as the graphql-over-http specification says and the
//! `graphql-http` server audit checks it (see `docs/graphql-over-http.md`):
//! which media type a response is sent as, how a GET or POST request becomes
//! an `async_graphql::Request`, and which status a GraphQL response gets.
//! The handler in [`crate::http`] strings these together around
//! authentication and the audit log.
//!
//! async-graphql-axum's `GraphQLRequest` extractor is not used to read
//! requests: it would parse before the caller is authenticated, reads the
//! body past the body limit, accepts any content type (multipart and
//! `text/plain` included), drops `operationName` from GET requests and loses
//! serde's explanation of a malformed request. The request type it yields
//! (`async_graphql::Request`, with its own deserializer) and its response type
//! ([`GraphQLResponse`]: cache hints, headers set by resolvers) are used.

use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql_axum::GraphQLResponse;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// The media types a GraphQL response is sent as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media {
    /// `application/graphql-response+json`: the status tells intermediaries
    /// whether the request ran — a request that fails before execution
    /// (parse, validation, variable coercion) is a 400 without `data`.
    GraphQLResponse,
    /// `application/json`, for legacy clients: every GraphQL response is a
    /// 200, as they have always been (errors in the body).
    Json,
}

impl Media {
    /// The media type a request's `Accept` header asks for, or `None` when it
    /// accepts neither (then the answer is 406).
    ///
    /// `application/graphql-response+json` answers when the client names it
    /// and ranks it at least as high as `application/json`; wildcards (`*/*`,
    /// `application/*`) and a missing `Accept` mean `application/json`, which
    /// the specification keeps as the default for the clients written before
    /// the new media type.
    pub fn negotiate(headers: &HeaderMap) -> Option<Media> {
        let ranges = MediaRanges::of(headers);
        if ranges.0.is_empty() {
            return Some(Media::Json);
        }
        let (response_q, named) = ranges.quality("application", "graphql-response+json");
        let (json_q, _) = ranges.quality("application", "json");
        if named && response_q > 0.0 && response_q >= json_q {
            Some(Media::GraphQLResponse)
        } else if json_q > 0.0 {
            Some(Media::Json)
        } else if response_q > 0.0 {
            Some(Media::GraphQLResponse)
        } else {
            None
        }
    }

    pub fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Media::GraphQLResponse => "application/graphql-response+json; charset=utf-8",
            Media::Json => "application/json; charset=utf-8",
        })
    }
}

/// Whether the request names `text/html` as acceptable: a browser opening
/// the endpoint, which gets GraphiQL.
pub fn accepts_html(headers: &HeaderMap) -> bool {
    let (q, named) = MediaRanges::of(headers).quality("text", "html");
    named && q > 0.0
}

/// The media ranges of the `Accept` headers with their weights.
struct MediaRanges(Vec<(String, String, f32)>);

impl MediaRanges {
    fn of(headers: &HeaderMap) -> MediaRanges {
        let mut ranges = Vec::new();
        for value in headers.get_all(header::ACCEPT) {
            // A header that is not text accepts nothing we could name.
            let Ok(value) = value.to_str() else { continue };
            for item in value.split(',') {
                let mut parts = item.split(';');
                let range = parts.next().unwrap_or_default().trim();
                let Some((ty, sub)) = range.split_once('/') else {
                    continue;
                };
                let q = parts
                    .filter_map(|p| p.split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                    // An unreadable weight counts as 0: not acceptable.
                    .map_or(1.0, |(_, v)| v.trim().parse::<f32>().unwrap_or(0.0))
                    .clamp(0.0, 1.0);
                ranges.push((
                    ty.trim().to_ascii_lowercase(),
                    sub.trim().to_ascii_lowercase(),
                    q,
                ));
            }
        }
        MediaRanges(ranges)
    }

    /// The weight of `ty/sub` — from the most specific range that matches it
    /// (RFC 9110 §12.5.1) — and whether a range names it exactly.
    fn quality(&self, ty: &str, sub: &str) -> (f32, bool) {
        let mut best: Option<(u8, f32)> = None;
        for (t, s, q) in &self.0 {
            let specificity = match (t.as_str(), s.as_str()) {
                (t, s) if t == ty && s == sub => 3,
                (t, "*") if t == ty => 2,
                ("*", "*") => 1,
                _ => continue,
            };
            if best.is_none_or(|(b, _)| specificity > b) {
                best = Some((specificity, *q));
            }
        }
        match best {
            Some((specificity, q)) => (q, specificity == 3),
            None => (0.0, false),
        }
    }
}

/// Why a request is refused before GraphQL sees it: the status, the
/// `extensions.code` and the message the client gets.
#[derive(Debug)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    fn bad_request(message: impl Into<String>) -> Refusal {
        Refusal {
            status: StatusCode::BAD_REQUEST,
            code: "BAD_REQUEST",
            message: message.into(),
        }
    }
}

/// A POST body must be JSON (`application/json`, in UTF-8 when a charset is
/// named): anything else — a form, `text/plain`, no content type at all — is
/// refused with 415 before the body is read. Browsers send forms and
/// `text/plain` across origins without asking first; executing them would let
/// any web page post mutations with a caller's credentials.
pub fn check_content_type(headers: &HeaderMap) -> Result<(), Refusal> {
    let refuse = |what: &str| Refusal {
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        code: "UNSUPPORTED_MEDIA_TYPE",
        message: format!(
            "{what}: send the request as JSON with the header `Content-Type: application/json`"
        ),
    };
    if let Some(coding) = unaccepted_coding(headers) {
        return Err(Refusal {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "UNSUPPORTED_MEDIA_TYPE",
            message: format!(
                "the Content-Encoding {coding:?} is not accepted: send the body uncompressed"
            ),
        });
    }
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(refuse("the request has no Content-Type"));
    };
    let value = value
        .to_str()
        .map_err(|_| refuse("the Content-Type is not readable"))?;
    let media = value.split(';').next().unwrap_or_default().trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(refuse(&format!(
            "the Content-Type {media:?} is not accepted"
        )));
    }
    if let Some(charset) = unaccepted_charset(value) {
        return Err(refuse(&format!(
            "the charset {charset:?} is not accepted (only utf-8)"
        )));
    }
    Ok(())
}

/// The `charset` a media type names, if it is not UTF-8 (`utf-8` or
/// `utf8`, in any case, quoted or not): JSON is UTF-8 (RFC 8259 §8.1), so
/// a body said to be in another is refused rather than misread. `/graphql`
/// and `/fhir` both ask here.
pub fn unaccepted_charset(content_type: &str) -> Option<String> {
    content_type
        .split(';')
        .skip(1)
        .filter_map(|p| p.split_once('='))
        .find_map(|(name, charset)| {
            let charset = charset.trim().trim_matches('"');
            (name.trim().eq_ignore_ascii_case("charset")
                && !charset.eq_ignore_ascii_case("utf-8")
                && !charset.eq_ignore_ascii_case("utf8"))
            .then(|| charset.to_string())
        })
}

/// The content coding of a request's body other than `identity`, if any
/// (RFC 9110 §8.4): the hub reads bodies as sent, so a compressed one would
/// otherwise be refused as "not JSON", telling the client the wrong thing.
pub fn unaccepted_coding(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .flat_map(|v| {
            v.to_str()
                .unwrap_or("(unreadable)")
                .split(',')
                .map(|c| c.trim().to_string())
                .collect::<Vec<_>>()
        })
        .find(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity"))
}

/// Whether the query string of a GET request carries a `query` parameter
/// (a GraphQL request) rather than none (a browser opening the endpoint).
pub fn has_query_parameter(raw: Option<&str>) -> bool {
    raw.is_some_and(|raw| url::form_urlencoded::parse(raw.as_bytes()).any(|(k, _)| k == "query"))
}

/// The GraphQL request in a GET request's query string: `query`, and
/// optionally `operationName` and `variables` / `extensions` as JSON text.
/// An empty parameter counts as absent, as the specification says.
pub fn read_get(raw: Option<&str>) -> Result<async_graphql::Request, Refusal> {
    let mut object = serde_json::Map::new();
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let name = match key.as_ref() {
            "query" => "query",
            "operationName" => "operationName",
            "variables" => "variables",
            "extensions" => "extensions",
            // Other parameters (a cache buster, say) are none of GraphQL's.
            _ => continue,
        };
        if object.contains_key(name) {
            return Err(Refusal::bad_request(format!(
                "the parameter `{name}` is given more than once"
            )));
        }
        if value.is_empty() {
            continue;
        }
        let value = match name {
            "variables" | "extensions" => crate::strict_json::from_slice(value.as_bytes())
                .map_err(|e| {
                    Refusal::bad_request(format!(
                        "the parameter `{name}` must be a JSON object: {e}"
                    ))
                })?,
            _ => Value::String(value.into_owned()),
        };
        object.insert(name.into(), value);
    }
    request_from_json(Value::Object(object))
}

/// [`read_post`], for a body longer than
/// `renkei_schema::graphql::fair_use::LARGE_DOCUMENT_BYTES` on the blocking
/// pool (decoding a 900 KB body is milliseconds of CPU the async workers
/// owe to other requests).
pub async fn read_post_body(body: axum::body::Bytes) -> Result<async_graphql::Request, Refusal> {
    use renkei_schema::graphql::fair_use;
    if body.len() <= fair_use::LARGE_DOCUMENT_BYTES {
        return read_post(&body);
    }
    fair_use::off_workers(move || read_post(&body))
        .await
        .unwrap_or_else(|| {
            Err(Refusal {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: "INTERNAL",
                message: "internal error: the hub could not read the request; it has been logged"
                    .into(),
            })
        })
}

/// The GraphQL request in a POST body (its content type checked already).
pub fn read_post(body: &[u8]) -> Result<async_graphql::Request, Refusal> {
    let value: Value = crate::strict_json::from_slice(body).map_err(|e| {
        Refusal::bad_request(format!(
            "the request body must be a JSON object {{\"query\": …, \"variables\": …}}: {e}"
        ))
    })?;
    request_from_json(value)
}

/// A request object, by async-graphql's own deserializer. Batches (a JSON
/// array of operations) are refused: one request is one operation, so the
/// depth and complexity limits bound what a request costs, its audit entries
/// share its request id, and a GET is one cacheable URL; HTTP/2 already lets
/// a client send many requests at once.
fn request_from_json(value: Value) -> Result<async_graphql::Request, Refusal> {
    match &value {
        Value::Array(_) => {
            return Err(Refusal::bad_request(
                "batched requests (a JSON array of operations) are not accepted: send one operation per request",
            ));
        }
        Value::Object(object) if object.get("query").is_none_or(Value::is_null) => {
            return Err(Refusal::bad_request(
                "the request has no `query`: send {\"query\": …, \"variables\": …}",
            ));
        }
        Value::Object(_) => {}
        _ => {
            return Err(Refusal::bad_request(
                "the request body must be a JSON object {\"query\": …, \"variables\": …}",
            ));
        }
    }
    let mut value = value;
    crate::strict_json::plain_numbers(&mut value);
    serde_json::from_value(value).map_err(|e| {
        Refusal::bad_request(format!(
            "the request must be {{\"query\": string, \"operationName\": string, \"variables\": object, \"extensions\": object}}: {e}"
        ))
    })
}

/// What the hub checks of the operation a request selects before it runs.
pub struct Operation {
    /// A GET must not run a mutation.
    pub is_mutation: bool,
    /// Errors for the variables the operation requires but the request
    /// does not give: GraphQL's variable coercion fails before execution (a
    /// request error), which async-graphql would report only when a field
    /// reads the variable, as a field error.
    pub missing_variables: Vec<async_graphql::ServerError>,
}

/// The operation the request selects, the same way async-graphql chooses
/// it when it executes the request. `None` when the document does not parse
/// or does not say which operation to run: the executor reports that.
pub fn selected_operation(request: &mut async_graphql::Request) -> Option<Operation> {
    let name = request.operation_name.clone();
    let given: Vec<String> = request.variables.keys().map(|k| k.to_string()).collect();
    let document = request.parsed_query().ok()?;
    let operation = match (&document.operations, name) {
        (DocumentOperations::Single(operation), None) => Some(operation),
        (DocumentOperations::Single(_), Some(_)) => None,
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name.as_str()),
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next()
        }
        (DocumentOperations::Multiple(_), None) => None,
    }?;
    let missing_variables = operation
        .node
        .variable_definitions
        .iter()
        .filter(|v| {
            !v.node.var_type.node.nullable
                && v.node.default_value.is_none()
                && !given.iter().any(|g| g == v.node.name.node.as_str())
        })
        .map(|v| {
            let mut error = async_graphql::ServerError::new(
                format!(
                    "the variable ${} of required type {} was not provided",
                    v.node.name.node, v.node.var_type.node
                ),
                Some(v.pos),
            );
            let mut extensions = async_graphql::ErrorExtensionValues::default();
            extensions.set("code", "BAD_USER_INPUT");
            error.extensions = Some(extensions);
            error
        })
        .collect();
    Some(Operation {
        is_mutation: operation.node.ty == OperationType::Mutation,
        missing_variables,
    })
}

/// Whether the response's errors came before execution — GraphQL's
/// *request errors*: the document did not parse or validate, the variables
/// did not coerce, no operation could be chosen. async-graphql then returns
/// no data and errors without a path; an error raised while executing (a
/// field error) always has the path of its field, even when it nulls `data`.
fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// The HTTP response for a GraphQL response, in the negotiated media type.
///
/// Under `application/graphql-response+json`, a request error is a 400
/// without the `data` entry; under `application/json` it stays a 200, as
/// legacy clients expect. Responses say `Cache-Control: no-store` unless the
/// schema gives cache hints: every read of patient data must pass the policy
/// and leave an audit entry, which a cache answering in the hub's place
/// would skip.
pub fn respond(media: Media, response: async_graphql::Response) -> Response {
    let outcome = crate::observe::graphql_outcome(&response);
    let mut http = if media == Media::GraphQLResponse && is_request_error(&response) {
        let mut body = match serde_json::to_value(&response) {
            Ok(Value::Object(body)) => body,
            // A response is a JSON object by construction.
            _ => serde_json::Map::new(),
        };
        body.remove("data");
        (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
    } else {
        GraphQLResponse::from(response).into_response()
    };
    let headers = http.headers_mut();
    headers.insert(header::CONTENT_TYPE, media.content_type());
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    headers.append(header::VARY, HeaderValue::from_static("accept"));
    crate::observe::set_outcome(&mut http, &outcome);
    http
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn the_new_media_type_answers_when_named_at_least_as_high_as_json() {
        use Media::*;
        for (value, media) in [
            ("application/graphql-response+json", Some(GraphQLResponse)),
            (
                "application/graphql-response+json, application/json",
                Some(GraphQLResponse),
            ),
            (
                "application/json, application/graphql-response+json",
                Some(GraphQLResponse),
            ),
            (
                "application/graphql-response+json, application/json;q=0.9",
                Some(GraphQLResponse),
            ),
            (
                "application/json;q=0.9, application/graphql-response+json",
                Some(GraphQLResponse),
            ),
            (
                "application/graphql-response+json;q=0.5, application/json",
                Some(Json),
            ),
            ("application/json", Some(Json)),
            ("application/json; charset=utf-8", Some(Json)),
            ("*/*", Some(Json)),
            ("application/*", Some(Json)),
            (
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                Some(Json),
            ),
            ("application/graphql-response+json;q=0, */*", Some(Json)),
            ("application/json, multipart/mixed", Some(Json)),
            ("APPLICATION/GRAPHQL-RESPONSE+JSON", Some(GraphQLResponse)),
            ("application/*, application/json;q=0", Some(GraphQLResponse)),
            ("text/html", None),
            ("application/xml", None),
            ("application/json;q=0", None),
            ("application/json;q=nonsense", None),
        ] {
            assert_eq!(Media::negotiate(&accept(value)), media, "{value}");
        }
        assert_eq!(Media::negotiate(&HeaderMap::new()), Some(Json));
        assert_eq!(Media::negotiate(&accept("")), Some(Json));
    }

    #[test]
    fn only_json_bodies_are_read() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
            check_content_type(&headers).map_err(|r| r.status)
        };
        assert!(with("application/json").is_ok());
        assert!(with("Application/JSON; charset=UTF-8").is_ok());
        assert!(with("application/json;charset=\"utf-8\"").is_ok());
        for refused in [
            "text/plain",
            "text/plain;charset=UTF-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/graphql",
            "application/json; charset=latin1",
            "application/jsonx",
        ] {
            assert_eq!(
                with(refused),
                Err(StatusCode::UNSUPPORTED_MEDIA_TYPE),
                "{refused}"
            );
        }
        assert_eq!(
            check_content_type(&HeaderMap::new()).map_err(|r| r.status),
            Err(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        );
    }

    #[test]
    fn a_get_request_reads_operation_name_and_json_variables() {
        let mut request = read_get(Some(
            "query=query%20A%20%7B%20__typename%20%7D%20mutation%20B%20%7B%20__typename%20%7D\
             &operationName=B&variables=%7B%22n%22%3A1%7D&extensions=&cacheBuster=7",
        ))
        .unwrap();
        assert_eq!(request.operation_name.as_deref(), Some("B"));
        assert_eq!(
            request.variables.get("n"),
            Some(&async_graphql::Value::from(1))
        );
        let is_mutation =
            |r: &mut async_graphql::Request| selected_operation(r).map(|o| o.is_mutation);
        assert_eq!(is_mutation(&mut request), Some(true));
        request.operation_name = Some("A".into());
        assert_eq!(is_mutation(&mut request), Some(false));
        request.operation_name = Some("C".into());
        assert_eq!(
            is_mutation(&mut request),
            None,
            "unknown: left to the executor"
        );
        request.operation_name = None;
        assert_eq!(
            is_mutation(&mut request),
            None,
            "ambiguous: left to the executor"
        );

        let mut anonymous = read_get(Some("query=mutation%20%7B%20__typename%20%7D")).unwrap();
        assert_eq!(is_mutation(&mut anonymous), Some(true));
        let mut broken = read_get(Some("query=mutation%20%7B")).unwrap();
        assert_eq!(is_mutation(&mut broken), None);
    }

    #[test]
    fn required_variables_without_a_value_are_named() {
        let mut request = async_graphql::Request::new(
            "query($a: ID!, $b: ID, $c: ID! = \"x\", $d: [ID!]!, $e: Int!) { f(a: $a, b: $b, c: $c, d: $d, e: $e) }",
        )
        .variables(async_graphql::Variables::from_json(serde_json::json!({ "e": 1 })));
        let missing: Vec<String> = selected_operation(&mut request)
            .unwrap()
            .missing_variables
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(
            missing,
            [
                "the variable $a of required type ID! was not provided",
                "the variable $d of required type [ID!]! was not provided"
            ]
        );

        for bad in [
            None,
            Some(""),
            Some("query="),
            Some("query=%7Ba%7D&query=%7Bb%7D"),
            Some("query=%7Ba%7D&variables=%5B1%5D"),
            Some("query=%7Ba%7D&variables=nonsense"),
            Some("query=%7Ba%7D&extensions=%22x%22"),
        ] {
            assert_eq!(
                read_get(bad).map(|_| ()).unwrap_err().code,
                "BAD_REQUEST",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_post_body_is_one_request_object() {
        assert!(
            read_post(
                br#"{"query":"{ a }","variables":null,"operationName":null,"extensions":null}"#
            )
            .is_ok()
        );
        for bad in [
            &b""[..],
            b"{",
            b"[]",
            br#"[{"query":"{ a }"}]"#,
            b"\"{ a }\"",
            br#"{"qeury":"{ a }"}"#,
            br#"{"query":null}"#,
            br#"{"query":1}"#,
            br#"{"query":"{ a }","variables":"{}"}"#,
            br#"{"query":"{ a }","operationName":false}"#,
            br#"{"query":"{ a }","extensions":[]}"#,
        ] {
            let refusal = read_post(bad).map(|_| ()).unwrap_err();
            assert_eq!(
                refusal.status,
                StatusCode::BAD_REQUEST,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let batch = read_post(br#"[{"query":"{ a }"}]"#)
            .map(|_| ())
            .unwrap_err();
        assert!(batch.message.contains("batched"), "{}", batch.message);
    }
}
