//! GraphQL over WebSocket at `/graphql/ws`: the connection protocol
//! (`graphql-transport-ws`, and the legacy `graphql-ws` of
//! subscriptions-transport-ws), the caps on subscriptions, and the end of a
//! session when its caller's credentials end.
//!
//! The hub speaks the connection protocol itself and hands each operation to
//! the schema (`execute_stream_with_session_data`), where the policy checks
//! of every event and the audit happen (`renkei_schema::graphql::
//! subscription`, `audit_extension`). async-graphql's own `GraphQLWebSocket`
//! does not do what the protocol asks of a server: it closes a refused
//! `connection_init` with 1002 instead of 4403 and a malformed message with
//! 1002 instead of 4400, has no initialisation timeout (4408), lets a second
//! `subscribe` with an id in use replace the first (4409), and has no place
//! to refuse one subscription without ending the connection.
//!
//! Close codes, on both protocols (the legacy one is sent a
//! `connection_error` message with the reason first, as its clients expect):
//!
//! | code | when |
//! |---|---|
//! | 4400 | a message that is not JSON, or not a message of the protocol |
//! | 4401 | `subscribe` (`start`) before the connection was acknowledged |
//! | 4403 | `connection_init` refused (no or bad credentials); later, the token expired or the member was suspended / the key revoked |
//! | 4406 | no subprotocol this hub speaks was asked for |
//! | 4408 | no `connection_init` within `RENKEI_WS_INIT_TIMEOUT_SECONDS` |
//! | 4409 | `subscribe` with an id that is still running (`graphql-transport-ws`) |
//! | 4429 | a second `connection_init` |
//! | 4500 | the hub could not check the credentials (logged) |
//! | 1013 | the database is unavailable at `connection_init` (try again later; see `crate::outage`) |
//! | 1009 | a message larger than the hub takes (`RENKEI_MAX_BODY_BYTES`, as for a request body) |
//! | 1001 | the hub shuts down (SIGTERM, SIGINT) |

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::parser::types::{DocumentOperations, OperationType};
use axum::{
    extract::{
        State, WebSocketUpgrade,
        ws::{CloseFrame, Message, WebSocket, rejection::WebSocketUpgradeRejection},
    },
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};
use futures_util::StreamExt;
use renkei_schema::events::HubEvent;
use renkei_schema::graphql::audit_extension::WebSocketSession;
use renkei_schema::{Principal, RequestContext, error::ApiError};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tower_http::request_id::RequestId;
use tracing::Instrument;
use uuid::Uuid;

use crate::auth::Authenticated;
use crate::http::AppState;
use crate::query_cache::Unprepared;

/// The `extensions.code` of a subscription refused because its connection
/// or its caller holds as many as it may; the connection stays open.
pub const TOO_MANY_SUBSCRIPTIONS: &str = "TOO_MANY_SUBSCRIPTIONS";

/// Close codes of `graphql-transport-ws` (PROTOCOL.md of the `graphql-ws`
/// library); the hub uses them for the legacy protocol too.
mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const BAD_REQUEST: u16 = 4400;
    pub const UNAUTHORIZED: u16 = 4401;
    pub const FORBIDDEN: u16 = 4403;
    pub const SUBPROTOCOL_NOT_ACCEPTABLE: u16 = 4406;
    pub const INIT_TIMEOUT: u16 = 4408;
    pub const SUBSCRIBER_ALREADY_EXISTS: u16 = 4409;
    pub const TOO_MANY_INIT: u16 = 4429;
    pub const INTERNAL: u16 = 4500;
    /// RFC 6455 "Try Again Later": the database is down (crate::outage).
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// RFC 6455 "Message Too Big": a message over the hub's limit.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// RFC 6455 "Going Away": the hub shuts down.
    pub const GOING_AWAY: u16 = 1001;
}

/// Completes when the hub starts shutting down ([`WebSocketLimits::close_all`]).
async fn hub_closing(closing: &mut tokio::sync::watch::Receiver<bool>) {
    if closing.wait_for(|c| *c).await.is_err() {
        // The hub's state is gone: nothing will ever say so.
        std::future::pending::<()>().await;
    }
}

/// Whether a read failed because the message (or a frame of it) is larger
/// than `max_message_size`: the socket is still open, so the client is told
/// with 1009 instead of seeing the connection drop.
fn too_big(error: &axum::Error) -> bool {
    // axum's error is a box around the layer's: its source.
    std::error::Error::source(error)
        .and_then(|e| e.downcast_ref::<tungstenite::Error>())
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)))
}

/// How long a session whose credentials ended stays open, so that its
/// subscriptions' `ACCESS_ENDED` reaches the client first.
const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// How long the hub waits for the client to answer its close frame before
/// it drops the connection. Dropping it at once could reset the TCP
/// connection before the client has read the close code.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(1);

/// Results queued between the operations of a connection and its socket.
const OUTGOING_QUEUE: usize = 64;

/// The longest close reason a close frame can carry (RFC 6455: 125 bytes of
/// payload, 2 of them the code).
const MAX_CLOSE_REASON: usize = 123;

/// The WebSocket settings of an instance, and the subscriptions its callers
/// hold.
pub struct WebSocketLimits {
    /// How long a connection may wait before `connection_init`.
    pub init_timeout: Duration,
    /// Subscriptions one connection may hold at once.
    pub per_connection: usize,
    /// Subscriptions one member (or API key) may hold at once on this
    /// instance, across its connections.
    per_member: Arc<SubscriptionSlots>,
    /// Set when the hub shuts down: every connection closes with 1001.
    closing: tokio::sync::watch::Sender<bool>,
    /// Connections being served, so that the hub waits for their close
    /// frames before the process ends ([`WebSocketLimits::drained`]).
    open: Arc<std::sync::atomic::AtomicUsize>,
}

/// Counts a connection as open while it lives.
struct Open(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl WebSocketLimits {
    pub fn new(init_timeout: Duration, per_connection: usize, per_member: usize) -> Self {
        WebSocketLimits {
            init_timeout,
            per_connection,
            per_member: Arc::new(SubscriptionSlots {
                limit: per_member,
                held: Mutex::new(HashMap::new()),
            }),
            closing: tokio::sync::watch::channel(false).0,
            open: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        }
    }

    /// Waits, at most `within`, until every connection has closed (after
    /// [`WebSocketLimits::close_all`]): the runtime would otherwise end
    /// their tasks mid-frame when the process exits.
    pub async fn drained(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.open.load(std::sync::atomic::Ordering::Acquire) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Closes every open connection with 1001 (Going Away): the hub shuts
    /// down. An upgraded connection is no longer the listener's, whose
    /// graceful shutdown lets requests finish: without this, clients saw
    /// the socket drop (1006) and could not tell a planned stop.
    pub fn close_all(&self) {
        self.closing.send_replace(true);
    }

    pub fn per_member(&self) -> usize {
        self.per_member.limit
    }
}

/// Who holds subscriptions: a member, or an organisation's system by its
/// API key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Holder {
    Member(Uuid),
    ApiKey(Uuid),
}

impl Holder {
    fn of(principal: &Principal) -> Self {
        match principal {
            Principal::Member { member_id, .. } => Holder::Member(*member_id),
            Principal::System { api_key_id, .. } => Holder::ApiKey(*api_key_id),
        }
    }
}

/// The subscriptions each caller holds on this instance. Counted in memory:
/// a caller connected to several instances may hold this many on each.
struct SubscriptionSlots {
    limit: usize,
    held: Mutex<HashMap<Holder, usize>>,
}

impl SubscriptionSlots {
    /// A slot for one more subscription of `holder`, or `None` when it holds
    /// as many as it may.
    fn take(self: &Arc<Self>, holder: Holder) -> Option<Slot> {
        let mut held = self.lock();
        let count = held.entry(holder).or_default();
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(Slot {
            slots: self.clone(),
            holder,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Holder, usize>> {
        // Each change is one increment or decrement: a panic elsewhere
        // cannot leave the map half-changed.
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One running subscription's place in its caller's count, given back when
/// the subscription ends, is completed by the client or its connection
/// closes (whichever drops the [`Operation`] holding it).
struct Slot {
    slots: Arc<SubscriptionSlots>,
    holder: Holder,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.slots.lock();
        if let Some(count) = held.get_mut(&self.holder) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.holder);
            }
        }
    }
}

/// The WebSocket read buffer (see [`graphql_ws`]).
const WS_READ_BUFFER_BYTES: usize = 8 * 1024;

/// A request to `/graphql/ws` that is not a WebSocket handshake (a
/// browser or `curl` opening the address, a proxy that dropped the upgrade
/// headers), answered as every refusal of the hub is — JSON with a stable
/// code — instead of axum's plain text: `426 UPGRADE_REQUIRED` with the
/// `Upgrade` header RFC 9110 asks for (and `Sec-WebSocket-Version: 13` for
/// another version, RFC 6455 §4.4), `400 BAD_REQUEST` for a handshake
/// without its key. (Over HTTP/2 a WebSocket would open with CONNECT,
/// which the route does not take: a GET there is told to upgrade too.)
fn not_a_handshake(rejection: &WebSocketUpgradeRejection) -> Response {
    let detail = rejection.body_text();
    let (status, code, message) = match rejection {
        WebSocketUpgradeRejection::WebSocketKeyHeaderMissing(_)
        | WebSocketUpgradeRejection::InvalidProtocolPseudoheader(_) => (
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            format!("not a valid WebSocket handshake: {detail}"),
        ),
        WebSocketUpgradeRejection::MethodNotGet(_) => return crate::http::ws_wrong_method(),
        _ => (
            StatusCode::UPGRADE_REQUIRED,
            "UPGRADE_REQUIRED",
            format!(
                "/graphql/ws speaks GraphQL over WebSocket (graphql-transport-ws): open it as a WebSocket; \
                 queries and mutations over plain HTTP go to /graphql ({detail})"
            ),
        ),
    };
    let mut response = crate::http::error_response(status, code, &message);
    if status == StatusCode::UPGRADE_REQUIRED {
        let headers = response.headers_mut();
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert("sec-websocket-version", HeaderValue::from_static("13"));
    }
    response
}

/// `GET /graphql/ws`: GraphQL over WebSocket — subscriptions, and queries
/// and mutations too.
///
/// Browsers cannot set headers on a WebSocket, so the token travels in the
/// `connection_init` payload — `{"Authorization": "Bearer …"}` (or
/// `{"token": "…"}`); other clients may send the `Authorization` header with
/// the upgrade request instead. Every operation is audited like an HTTP
/// request (see `renkei_schema::graphql::audit_extension`).
pub async fn graphql_ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    request_id: Option<axum::Extension<RequestId>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return not_a_handshake(&rejection),
    };
    let header_token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let request_id = crate::http::request_id_text(request_id);
    let span = tracing::info_span!("websocket", request_id = %request_id);
    upgrade
        // In this order of preference when a client offers both.
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        // The request body limit does not reach WebSocket messages.
        .max_message_size(state.max_message_bytes)
        // tungstenite zero-fills its read buffer up to this size before every
        // read of the socket — also the reads that find nothing — and keeps
        // it: at the default 128 KiB, 1,000 subscribers held 128 MB and an
        // event to them spent a quarter of the hub's CPU in `memset`. Clients
        // send little (operations, pongs); a larger message is read in more
        // than one chunk.
        .read_buffer_size(WS_READ_BUFFER_BYTES)
        .on_upgrade(move |mut socket| {
            async move {
                let _open = state.observe.metrics.websocket_opened();
                match Protocol::of(&socket) {
                    Some(protocol) => {
                        let (connection, outcomes) =
                            Connection::new(state, protocol, header_token, request_id);
                        connection.serve(&mut socket, outcomes).await
                    }
                    None => {
                        let close = Close::new(
                            close_code::SUBPROTOCOL_NOT_ACCEPTABLE,
                            "Subprotocol not acceptable: ask for graphql-transport-ws (or the legacy graphql-ws)",
                        );
                        finish(&mut socket, None, &close).await;
                    }
                }
            }
            .instrument(span)
        })
}

/// The subprotocol a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    /// `graphql-transport-ws` (the `graphql-ws` library).
    TransportWs,
    /// `graphql-ws` (subscriptions-transport-ws, deprecated by its authors).
    Legacy,
}

impl Protocol {
    /// The protocol the upgrade agreed on, if any.
    fn of(socket: &WebSocket) -> Option<Self> {
        match socket.protocol()?.to_str().ok()? {
            "graphql-transport-ws" => Some(Protocol::TransportWs),
            "graphql-ws" => Some(Protocol::Legacy),
            _ => None,
        }
    }

    /// The type of the message that carries a result.
    fn result_type(self) -> &'static str {
        match self {
            Protocol::TransportWs => "next",
            Protocol::Legacy => "data",
        }
    }
}

/// Why and how the hub closes a connection.
#[derive(Debug)]
struct Close {
    code: u16,
    /// For people; cut to what a close frame carries when sent.
    reason: String,
}

impl Close {
    fn new(code: u16, reason: impl Into<String>) -> Self {
        Close {
            code,
            reason: reason.into(),
        }
    }

    fn bad_request(why: &str) -> Self {
        Close::new(
            close_code::BAD_REQUEST,
            format!("Invalid message received: {why}"),
        )
    }
}

/// What ends the handling of a message early.
enum Stop {
    /// The hub closes the connection.
    Close(Close),
    /// The client is gone; nothing more can be sent.
    Gone,
}

impl From<Close> for Stop {
    fn from(close: Close) -> Self {
        Stop::Close(close)
    }
}

/// A message from the client, checked against its protocol.
#[derive(Debug)]
enum ClientMessage {
    ConnectionInit {
        payload: Value,
    },
    Ping {
        payload: Option<Value>,
    },
    Pong,
    /// `subscribe` (`start` in the legacy protocol).
    Subscribe {
        id: String,
        request: Box<async_graphql::Request>,
    },
    /// `complete` (`stop` in the legacy protocol).
    Complete {
        id: String,
    },
    /// `connection_terminate` (legacy protocol only).
    Terminate,
}

impl ClientMessage {
    /// Reads a message, or says why it is not one of `protocol`'s.
    fn parse(protocol: Protocol, text: &str) -> Result<Self, String> {
        let value: Value = crate::strict_json::from_slice(text.as_bytes()).map_err(|e| {
            if e.is_data() {
                format!("a message repeats a key ({e})")
            } else {
                format!("not a JSON message ({e})")
            }
        })?;
        let Value::Object(mut message) = value else {
            return Err("a message must be a JSON object".into());
        };
        let kind = match message.get("type") {
            Some(Value::String(kind)) => kind.clone(),
            _ => return Err("a message must have a string `type`".into()),
        };
        let payload = message.remove("payload").filter(|p| !p.is_null());
        let id = || match message.get("id") {
            Some(Value::String(id)) if !id.is_empty() => Ok(id.clone()),
            _ => Err(format!("`{kind}` needs a non-empty string `id`")),
        };
        let object_or_none = |payload: Option<Value>| match payload {
            None | Some(Value::Object(_)) => Ok(payload),
            Some(_) => Err(format!("the payload of `{kind}` must be an object")),
        };
        match (protocol, kind.as_str()) {
            (Protocol::TransportWs, "connection_init") => Ok(ClientMessage::ConnectionInit {
                payload: object_or_none(payload)?.unwrap_or_default(),
            }),
            // The legacy protocol takes any payload; without credentials in
            // it the connection is refused.
            (Protocol::Legacy, "connection_init") => Ok(ClientMessage::ConnectionInit {
                payload: payload.unwrap_or_default(),
            }),
            (Protocol::TransportWs, "ping") => Ok(ClientMessage::Ping {
                payload: object_or_none(payload)?,
            }),
            (Protocol::TransportWs, "pong") => {
                object_or_none(payload)?;
                Ok(ClientMessage::Pong)
            }
            (Protocol::TransportWs, "subscribe") | (Protocol::Legacy, "start") => {
                let id = id()?;
                let request = operation(payload).map_err(|why| format!("`{kind}` {why}"))?;
                Ok(ClientMessage::Subscribe {
                    id,
                    request: Box::new(request),
                })
            }
            (Protocol::TransportWs, "complete") | (Protocol::Legacy, "stop") => {
                Ok(ClientMessage::Complete { id: id()? })
            }
            (Protocol::Legacy, "connection_terminate") => Ok(ClientMessage::Terminate),
            // The client's text, quoted and cut: it goes into the close
            // reason and the log, where a line break or a terminal code of
            // the client's would forge a line of its own.
            _ => Err(format!(
                "`{}` is not a message a client sends",
                kind.chars()
                    .take(40)
                    .flat_map(char::escape_debug)
                    .collect::<String>()
            )),
        }
    }
}

/// The GraphQL request of a `subscribe` payload: `query` a string,
/// `variables` and `extensions` objects, `operationName` a string (each of
/// the last three may be absent or null).
fn operation(payload: Option<Value>) -> Result<async_graphql::Request, String> {
    let Some(Value::Object(mut payload)) = payload else {
        return Err("needs an object `payload`".into());
    };
    payload.retain(|_, v| !v.is_null());
    if !payload.get("query").is_some_and(Value::is_string) {
        return Err("needs a string `payload.query`".into());
    }
    for field in ["variables", "extensions"] {
        if payload.get(field).is_some_and(|v| !v.is_object()) {
            return Err(format!("needs `payload.{field}` to be an object"));
        }
    }
    if payload.get("operationName").is_some_and(|v| !v.is_string()) {
        return Err("needs `payload.operationName` to be a string".into());
    }
    let mut payload = Value::Object(payload);
    crate::strict_json::plain_numbers(&mut payload);
    serde_json::from_value(payload).map_err(|e| format!("has a bad payload ({e})"))
}

/// Whether the request is a subscription (and so holds a slot while it
/// runs). A request that does not parse, or names no operation of its
/// document, is left to the executor, which reports it.
fn is_subscription(request: &mut async_graphql::Request) -> bool {
    let name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        return false;
    };
    let operation = match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name.as_str()),
        // A document's one named operation runs without `operationName`
        // (the parser keeps named operations as `Multiple`): without this
        // arm `subscription S { … }` escaped the subscription caps.
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        (DocumentOperations::Multiple(_), None) => None,
    };
    operation.is_some_and(|op| op.node.ty == OperationType::Subscription)
}

/// The caller of an acknowledged connection.
struct Caller {
    holder: Holder,
    /// Whose rate limits each operation counts against.
    principal: Principal,
    /// What every operation of the connection runs with.
    data: Arc<async_graphql::Data>,
}

/// An operation running on a connection.
struct Operation {
    /// Tells this operation's results from those of an earlier operation
    /// that had the same id.
    generation: u64,
    task: tokio::task::AbortHandle,
    /// A subscription's place in its caller's count.
    slot: Option<Slot>,
}

impl Drop for Operation {
    fn drop(&mut self) {
        // A completed, stopped or closed operation stops costing policy
        // checks and audit entries at once.
        self.task.abort();
    }
}

/// What an operation's task reports to its connection: a result, or (with
/// none) that the operation is over.
struct Outcome {
    id: String,
    generation: u64,
    response: Option<async_graphql::Response>,
}

/// One WebSocket connection.
struct Connection {
    state: AppState,
    protocol: Protocol,
    header_token: Option<String>,
    request_id: String,
    /// A `connection_init` arrived (accepted or not).
    init_received: bool,
    caller: Option<Caller>,
    operations: HashMap<String, Operation>,
    generations: u64,
    /// Where the connection's operations send what they produce.
    outcomes: mpsc::Sender<Outcome>,
}

/// When the session must end because of its caller's credentials.
type SessionEnd = Pin<Box<dyn Future<Output = Close> + Send>>;

impl Connection {
    fn new(
        state: AppState,
        protocol: Protocol,
        header_token: Option<String>,
        request_id: String,
    ) -> (Self, mpsc::Receiver<Outcome>) {
        let (outcomes, outcomes_rx) = mpsc::channel(OUTGOING_QUEUE);
        let connection = Connection {
            state,
            protocol,
            header_token,
            request_id,
            init_received: false,
            caller: None,
            operations: HashMap::new(),
            generations: 0,
            outcomes,
        };
        (connection, outcomes_rx)
    }

    /// Serves the connection until the client leaves or the hub closes it.
    async fn serve(mut self, socket: &mut WebSocket, mut outcomes: mpsc::Receiver<Outcome>) {
        // Listen before the caller is authenticated: a suspension or
        // revocation published between the (possibly cached) login and the
        // watch would otherwise be missed.
        let mut events = Some(self.state.events.subscribe());
        let init_deadline = tokio::time::sleep(self.state.websocket.init_timeout);
        tokio::pin!(init_deadline);
        let mut session_end: Option<SessionEnd> = None;
        let mut closing = self.state.websocket.closing.subscribe();
        let open = &self.state.websocket.open;
        open.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let _open = Open(open.clone());
        let close = loop {
            let step = tokio::select! {
                () = hub_closing(&mut closing) => Err(Stop::Close(Close::new(
                    close_code::GOING_AWAY,
                    "Going Away: the hub is shutting down",
                ))),
                () = &mut init_deadline, if !self.init_received => Err(Stop::Close(Close::new(
                    close_code::INIT_TIMEOUT,
                    "Connection initialisation timeout",
                ))),
                close = wait_for(&mut session_end) => Err(Stop::Close(close)),
                message = socket.recv() => match message {
                    Some(Ok(Message::Text(text))) => self.on_text(socket, text.as_str()).await,
                    Some(Ok(Message::Binary(bytes))) => match std::str::from_utf8(&bytes) {
                        Ok(text) => self.on_text(socket, text).await,
                        Err(_) => Err(Stop::Close(Close::bad_request(
                            "a binary message that is not UTF-8 text",
                        ))),
                    },
                    // Answered by the WebSocket layer itself.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(None),
                    Some(Err(e)) if too_big(&e) => Err(Stop::Close(Close::new(
                        close_code::MESSAGE_TOO_BIG,
                        format!(
                            "Message Too Big: at most {} bytes",
                            self.state.max_message_bytes
                        ),
                    ))),
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => Err(Stop::Gone),
                },
                Some(outcome) = outcomes.recv() => {
                    self.on_outcome(socket, outcome).await.map(|()| None)
                }
            };
            match step {
                Ok(None) => {}
                // Acknowledged: from now on the session ends with the
                // caller's credentials.
                Ok(Some(caller)) => {
                    let state = self.state.clone();
                    let events = events.take().unwrap_or_else(|| state.events.subscribe());
                    session_end = Some(Box::pin(credentials_end(state, caller, events)));
                }
                Err(stop) => break stop,
            }
        };
        // Give back the connection's subscription slots before anything
        // else: the client may reconnect at once.
        self.operations.clear();
        match close {
            Stop::Gone => tracing::debug!("WebSocket closed by the client"),
            Stop::Close(close) => {
                // Cut as the close frame cuts it: a reason may quote the
                // client's message (a repeated key), which the log keeps
                // short.
                tracing::info!(
                    code = close.code,
                    reason = ?cut(&close.reason, MAX_CLOSE_REASON),
                    "WebSocket closed"
                );
                finish(socket, Some(self.protocol), &close).await;
            }
        }
    }

    /// Handles one message. Returns the caller when it acknowledged the
    /// connection.
    async fn on_text(
        &mut self,
        socket: &mut WebSocket,
        text: &str,
    ) -> Result<Option<Authenticated>, Stop> {
        let message = ClientMessage::parse(self.protocol, text)
            .map_err(|why| Stop::Close(Close::bad_request(&why)))?;
        match message {
            ClientMessage::ConnectionInit { payload } => {
                if self.init_received {
                    return Err(Close::new(
                        close_code::TOO_MANY_INIT,
                        "Too many initialisation requests",
                    )
                    .into());
                }
                self.init_received = true;
                let caller = self.initialise(&payload).await?;
                send(socket, json!({ "type": "connection_ack" })).await?;
                return Ok(Some(caller));
            }
            ClientMessage::Ping { payload } => {
                let pong = match payload {
                    Some(payload) => json!({ "type": "pong", "payload": payload }),
                    None => json!({ "type": "pong" }),
                };
                send(socket, pong).await?;
            }
            ClientMessage::Pong => {}
            ClientMessage::Subscribe { id, request } => self.start(socket, id, *request).await?,
            ClientMessage::Complete { id } => {
                let stopped = self.operations.remove(&id).is_some();
                // The legacy protocol confirms a stop; graphql-transport-ws
                // does not answer the client's own `complete`.
                if stopped && self.protocol == Protocol::Legacy {
                    send(socket, json!({ "type": "complete", "id": id })).await?;
                }
            }
            ClientMessage::Terminate => {
                return Err(Close::new(close_code::NORMAL, "Normal Closure").into());
            }
        }
        Ok(None)
    }

    /// Authenticates the caller of `connection_init`.
    async fn initialise(&mut self, payload: &Value) -> Result<Authenticated, Close> {
        let token = token_in_payload(payload).or_else(|| self.header_token.clone());
        let caller = match self.state.auth.authenticate_until(token.as_deref()).await {
            Ok(caller) => caller,
            Err(ApiError::Unauthenticated(why)) => {
                return Err(Close::new(close_code::FORBIDDEN, why));
            }
            Err(e @ ApiError::DatabaseUnavailable(_)) => {
                return Err(Close::new(close_code::TRY_AGAIN_LATER, e.message()));
            }
            // Logged where it arose.
            Err(_) => {
                return Err(Close::new(
                    close_code::INTERNAL,
                    "internal error: the hub could not check the credentials; it has been logged",
                ));
            }
        };
        let mut data = async_graphql::Data::default();
        data.insert(RequestContext {
            principal: caller.principal.clone(),
            request_id: self.request_id.clone(),
        });
        data.insert(WebSocketSession);
        self.caller = Some(Caller {
            holder: Holder::of(&caller.principal),
            principal: caller.principal.clone(),
            data: Arc::new(data),
        });
        Ok(caller)
    }

    /// Starts an operation, unless a cap refuses it.
    async fn start(
        &mut self,
        socket: &mut WebSocket,
        id: String,
        mut request: async_graphql::Request,
    ) -> Result<(), Stop> {
        let Some(caller) = &self.caller else {
            return Err(Close::new(
                close_code::UNAUTHORIZED,
                "Unauthorized: send connection_init and wait for connection_ack first",
            )
            .into());
        };
        if self.operations.contains_key(&id) {
            match self.protocol {
                Protocol::TransportWs => {
                    return Err(Close::new(
                        close_code::SUBSCRIBER_ALREADY_EXISTS,
                        format!("Subscriber for {id} already exists"),
                    )
                    .into());
                }
                // subscriptions-transport-ws replaces the running operation.
                Protocol::Legacy => {
                    self.operations.remove(&id);
                }
            }
        }
        // Every operation counts against its caller's rate limits, and a
        // document too long to parse is refused; the connection stays open.
        let refused = match self.state.rate_limits.check(&caller.principal).await {
            Err(limited) => {
                self.state.observe.metrics.rate_limited(
                    limited.scope.as_str(),
                    crate::observe::metrics::Transport::WebSocket,
                );
                Some(limited.error())
            }
            Ok(()) => None,
        };
        let prepared = match refused {
            Some(error) => Err(error),
            None => {
                self.state.queries.prepare(&mut request).await.map_err(
                    |unprepared| match unprepared {
                        Unprepared::TooLarge(r) => {
                            json!({ "message": r.message, "extensions": { "code": r.code } })
                        }
                        Unprepared::TooDeep(e) => json!({
                            "message": e.message,
                            "extensions": { "code": "GRAPHQL_PARSE_FAILED" }
                        }),
                    },
                )
            }
        };
        // A text that does not parse is left to the executor, which reports
        // it; it is no subscription.
        let parsed = match prepared {
            Ok(parsed) => parsed,
            Err(error) => {
                let code = error["extensions"]["code"]
                    .as_str()
                    .unwrap_or("INTERNAL")
                    .to_string();
                self.state
                    .observe
                    .websocket_operation(
                        None,
                        false,
                        &self.request_id,
                        Some(caller.principal.organization_id()),
                    )
                    .refused(&code);
                return send(
                    socket,
                    json!({ "type": "error", "id": id, "payload": [error] }),
                )
                .await
                .map_err(|_| Stop::Gone);
            }
        };
        let subscription = parsed && is_subscription(&mut request);
        // Counted and logged when the operation ends (see crate::observe).
        let mut record = self.state.observe.websocket_operation(
            crate::observe::operation_name(&mut request, parsed),
            subscription,
            &self.request_id,
            Some(caller.principal.organization_id()),
        );
        let slot = if subscription {
            match self.take_slot(caller.holder) {
                Ok(slot) => Some(slot),
                Err(refusal) => {
                    record.refused(TOO_MANY_SUBSCRIPTIONS);
                    let errors = json!([{
                        "message": refusal.message,
                        "extensions": {
                            "code": TOO_MANY_SUBSCRIPTIONS,
                            "scope": refusal.scope,
                            "limit": refusal.limit,
                        },
                    }]);
                    return send(
                        socket,
                        json!({ "type": "error", "id": id, "payload": errors }),
                    )
                    .await
                    .map_err(|_| Stop::Gone);
                }
            }
        } else {
            None
        };
        let stream = self
            .state
            .schema
            .execute_stream_with_session_data(request, caller.data.clone());
        self.generations += 1;
        let generation = self.generations;
        let outcomes = self.outcomes.clone();
        let task_id = id.clone();
        let task = tokio::spawn(
            async move {
                let mut stream = stream;
                while let Some(response) = stream.next().await {
                    record.response(&response);
                    let result = Outcome {
                        id: task_id.clone(),
                        generation,
                        response: Some(response),
                    };
                    if outcomes.send(result).await.is_err() {
                        return;
                    }
                }
                let done = Outcome {
                    id: task_id,
                    generation,
                    response: None,
                };
                let _ = outcomes.send(done).await;
            }
            .in_current_span(),
        );
        self.operations.insert(
            id,
            Operation {
                generation,
                task: task.abort_handle(),
                slot,
            },
        );
        Ok(())
    }

    /// A slot for one more subscription, or why there is none.
    fn take_slot(&self, holder: Holder) -> Result<Slot, Refusal> {
        let limits = &self.state.websocket;
        let held = self
            .operations
            .values()
            .filter(|o| o.slot.is_some())
            .count();
        if held >= limits.per_connection {
            tracing::info!(
                limit = limits.per_connection,
                "subscription refused: the connection holds as many as it may"
            );
            return Err(Refusal {
                scope: "CONNECTION",
                limit: limits.per_connection,
                message: format!(
                    "too many subscriptions: this connection already holds {}, the most one connection may; complete one before starting another",
                    limits.per_connection
                ),
            });
        }
        limits.per_member.take(holder).ok_or_else(|| {
            tracing::info!(limit = limits.per_member(), ?holder, "subscription refused: the caller holds as many as it may");
            Refusal {
                scope: "MEMBER",
                limit: limits.per_member(),
                message: format!(
                    "too many subscriptions: you already hold {}, across your connections, the most one member (or API key) may; complete one before starting another",
                    limits.per_member()
                ),
            }
        })
    }

    /// Forwards what an operation produced, unless the operation is no
    /// longer running (completed by the client meanwhile).
    async fn on_outcome(&mut self, socket: &mut WebSocket, outcome: Outcome) -> Result<(), Stop> {
        let Outcome {
            id,
            generation,
            response,
        } = outcome;
        if !self.is_running(&id, generation) {
            return Ok(());
        }
        match response {
            Some(response) => {
                let message =
                    json!({ "type": self.protocol.result_type(), "id": id, "payload": response });
                send(socket, message).await?;
            }
            None => {
                // Removed before the client hears of it: it may reuse the id
                // as soon as it does.
                self.operations.remove(&id);
                send(socket, json!({ "type": "complete", "id": id })).await?;
            }
        }
        Ok(())
    }

    fn is_running(&self, id: &str, generation: u64) -> bool {
        self.operations
            .get(id)
            .is_some_and(|o| o.generation == generation)
    }
}

/// A subscription refused by a cap.
struct Refusal {
    /// `CONNECTION` or `MEMBER`: which cap refused it.
    scope: &'static str,
    limit: usize,
    message: String,
}

/// Completes when `session_end` does; never when there is none yet.
async fn wait_for(session_end: &mut Option<SessionEnd>) -> Close {
    match session_end {
        Some(end) => end.await,
        None => std::future::pending().await,
    }
}

async fn send(socket: &mut WebSocket, message: Value) -> Result<(), Stop> {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .map_err(|_| Stop::Gone)
}

/// Closes the connection with `close` (after a `connection_error` on the
/// legacy protocol, whose clients read the reason there) and waits briefly
/// for the client's answer.
async fn finish(socket: &mut WebSocket, protocol: Option<Protocol>, close: &Close) {
    if protocol == Some(Protocol::Legacy)
        && (close.code >= 4000 || close.code == close_code::TRY_AGAIN_LATER)
    {
        let error = json!({ "type": "connection_error", "payload": { "message": close.reason } });
        let _ = socket.send(Message::Text(error.to_string().into())).await;
    }
    let frame = CloseFrame {
        code: close.code,
        reason: cut(&close.reason, MAX_CLOSE_REASON).into(),
    };
    if socket.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_HANDSHAKE, async {
        while let Some(Ok(_)) = socket.recv().await {}
    })
    .await;
}

/// `text` cut to at most `max` bytes, at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Completes when an acknowledged session must end, saying why: the token
/// expired, or the caller's credentials no longer hold (a member suspended,
/// a key revoked — here or, through Redis, on another instance). Until then
/// it waits.
async fn credentials_end(
    state: AppState,
    caller: Authenticated,
    mut events: broadcast::Receiver<Arc<HubEvent>>,
) -> Close {
    use broadcast::error::RecvError;
    let ended = |why: &str| Close::new(close_code::FORBIDDEN, why);
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
            _ = &mut expiry => return ended("the token expired"),
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
                    return ended("the caller's credentials no longer hold");
                }
            }
        }
    }
}

/// The bearer token of a `connection_init` payload: `Authorization` (any
/// case) holding `Bearer …`, or `token` holding the bare token.
fn token_in_payload(payload: &Value) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_checked_against_their_protocol() {
        use Protocol::*;
        let ok = |p, text: &str| ClientMessage::parse(p, text).expect(text);
        assert!(matches!(
            ok(TransportWs, r#"{"type":"connection_init"}"#),
            ClientMessage::ConnectionInit { .. }
        ));
        assert!(matches!(
            ok(
                TransportWs,
                r#"{"id":"1","type":"subscribe","payload":{"query":"{ me { kind } }","variables":null}}"#
            ),
            ClientMessage::Subscribe { .. }
        ));
        assert!(matches!(
            ok(
                Legacy,
                r#"{"id":"1","type":"start","payload":{"query":"{ me { kind } }"}}"#
            ),
            ClientMessage::Subscribe { .. }
        ));
        assert!(matches!(
            ok(Legacy, r#"{"id":"1","type":"stop"}"#),
            ClientMessage::Complete { .. }
        ));
        for (protocol, bad) in [
            (TransportWs, "not json"),
            (TransportWs, "[]"),
            (TransportWs, r#"{"type":1}"#),
            (
                TransportWs,
                r#"{"type":"start","id":"1","payload":{"query":"{}"}}"#,
            ),
            (
                TransportWs,
                r#"{"type":"subscribe","payload":{"query":"{}"}}"#,
            ),
            (
                TransportWs,
                r#"{"type":"subscribe","id":"","payload":{"query":"{}"}}"#,
            ),
            (
                TransportWs,
                r#"{"type":"subscribe","id":"1","payload":{"query":1}}"#,
            ),
            (
                TransportWs,
                r#"{"type":"subscribe","id":"1","payload":{"query":"{}","variables":[]}}"#,
            ),
            (
                TransportWs,
                r#"{"type":"subscribe","id":"1","payload":{"query":"{}","operationName":2}}"#,
            ),
            (
                TransportWs,
                r#"{"type":"connection_init","payload":"token"}"#,
            ),
            (TransportWs, r#"{"type":"next","id":"1","payload":{}}"#),
            (
                Legacy,
                r#"{"type":"subscribe","id":"1","payload":{"query":"{}"}}"#,
            ),
            (Legacy, r#"{"type":"ping"}"#),
        ] {
            assert!(
                ClientMessage::parse(protocol, bad).is_err(),
                "{protocol:?} accepted {bad}"
            );
        }
    }

    #[test]
    fn an_unknown_type_is_named_escaped_and_cut() {
        // The reason reaches the close frame and the log: a line break or
        // a terminal code of the client's must not forge a line there.
        let forged = format!(
            r#"{{"type":"x\n2026-12-07 INFO access: request forged\u001b[31m{}"}}"#,
            "y".repeat(900)
        );
        let Err(why) = ClientMessage::parse(Protocol::TransportWs, &forged) else {
            panic!("accepted");
        };
        assert!(!why.contains('\n') && !why.contains('\u{1b}'), "{why}");
        assert!(why.contains("\\n2026"), "{why}");
        assert!(why.len() < 120, "{why}");
    }

    #[test]
    fn subscriptions_are_told_from_queries_by_the_operation_that_runs() {
        let mut sub = async_graphql::Request::new("subscription { notifications { kind } }");
        assert!(is_subscription(&mut sub));
        let mut query = async_graphql::Request::new("{ me { kind } }");
        assert!(!is_subscription(&mut query));
        let doc = "query A { me { kind } } subscription B { notifications { kind } }";
        assert!(is_subscription(
            &mut async_graphql::Request::new(doc).operation_name("B")
        ));
        assert!(!is_subscription(
            &mut async_graphql::Request::new(doc).operation_name("A")
        ));
        assert!(!is_subscription(&mut async_graphql::Request::new(doc)));
        assert!(is_subscription(&mut async_graphql::Request::new(
            "subscription Named { notifications { kind } }"
        )));
        assert!(!is_subscription(&mut async_graphql::Request::new(
            "subscription {"
        )));
    }

    #[test]
    fn a_members_slots_are_given_back_when_dropped() {
        let limits = WebSocketLimits::new(Duration::from_secs(1), 10, 2);
        let member = Holder::Member(Uuid::now_v7());
        let other = Holder::Member(Uuid::now_v7());
        let a = limits.per_member.take(member).expect("first");
        let _b = limits.per_member.take(member).expect("second");
        assert!(limits.per_member.take(member).is_none());
        assert!(limits.per_member.take(other).is_some());
        drop(a);
        assert!(limits.per_member.take(member).is_some());
    }

    #[test]
    fn close_reasons_fit_a_close_frame() {
        let long = "あ".repeat(100);
        let reason = cut(&long, MAX_CLOSE_REASON);
        assert!(reason.len() <= MAX_CLOSE_REASON);
        assert_eq!(reason.len(), 123);
        assert_eq!(cut("short", MAX_CLOSE_REASON), "short");
    }
}
