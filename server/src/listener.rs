//! The listener's loop: accepts connections and serves the router on them,
//! with the bounds `axum::serve` does not set.
//!
//! `axum::serve` reads a request's headers for as long as the client takes
//! and accepts connections until the process runs out of file descriptors.
//! A client that opens connections and sends a header byte now and then
//! (slowloris) then held every descriptor the hub has: accepts failed, and
//! so did the database's and Redis's new connections. Here:
//!
//! - at most [`ConnectionLimits::max_connections`] connections are open at
//!   once — WebSockets included, for as long as they live. At the limit a
//!   new client closes the connection that has waited longest for a request
//!   (see [`Book`]): slow clients cannot keep others out by filling the
//!   slots, as they could if the hub merely stopped accepting. Only when
//!   every connection is busy does a new one wait. A warning is logged, at
//!   most once a minute;
//! - a client that sends nothing is closed after
//!   [`ConnectionLimits::header_read_timeout`]; an HTTP/1 request's headers
//!   must then arrive within the same time, or the connection is closed (the
//!   time also bounds how long an idle keep-alive connection is kept
//!   waiting for its next request);
//! - the body's deadline, [`ConnectionLimits::body_read_timeout`], is a
//!   layer of the served router (`RequestBodyDeadlineLayer`, in
//!   [`crate::Application`]).
//!
//! Otherwise it serves as `axum::serve` does: HTTP/1 and HTTP/2 (cleartext,
//! with prior knowledge), upgrades (WebSockets over HTTP/1.1),
//! `TCP_NODELAY`, and a graceful shutdown that stops accepting and lets open
//! requests finish.

use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use std::collections::HashMap;
use std::sync::Mutex;

use std::convert::Infallible;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::http::{Method, Request, StatusCode};
use axum::response::Response;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt;

/// What one listener allows its clients.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Time a client has to send an HTTP/1 request's headers.
    pub header_read_timeout: Duration,
    /// Time a client has to send a request's body, from its headers:
    /// applied by the router's `RequestBodyDeadlineLayer`.
    pub body_read_timeout: Duration,
}

/// File descriptors left to the rest of the process — the database pool,
/// Redis, the audit checkpoint file, the metrics listener — by the default
/// connection limit.
pub const RESERVED_FILES: u64 = 256;

/// The process's (soft) limit of open files, where the system says
/// (`/proc/self/limits` on Linux).
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `RENKEI_MAX_CONNECTIONS` when not set: the open-files limit less
/// [`RESERVED_FILES`], at least 64 and at most 10,000 (a container's limit
/// of a million descriptors is no reason to hold a million connections'
/// buffers), or 1,000 where the limit is unknown.
pub fn default_max_connections(open_files: Option<u64>) -> usize {
    match open_files {
        Some(limit) => limit.saturating_sub(RESERVED_FILES).clamp(64, 10_000) as usize,
        None => 1000,
    }
}

/// How often the limit's warning may repeat while it holds.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// How often a client waiting for a slot looks again for a connection
/// that can be closed, when every one is busy.
const RECHECK: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` until `shutdown` completes, then lets the
/// open connections finish their requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    // As axum::serve does; `/graphql/ws` is routed for GET, so WebSockets
    // are opened over HTTP/1.1.
    builder.http2().enable_connect_protocol();

    // Dropping `signal_rx` tells every connection to shut down gracefully;
    // each connection holds a `close_rx`, so `close_tx.closed()` is the end
    // of the last one.
    let (signal_tx, signal_rx) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(signal_rx);
    });
    let (close_tx, close_rx) = watch::channel(());
    // Sent when the shutdown's grace is over: every connection still open
    // is closed.
    let (kill_tx, _) = watch::channel(false);
    let book = Arc::new(Book::new(limits.max_connections, limits.body_read_timeout));
    let mut warned: Option<Instant> = None;

    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            _ = signal_tx.closed() => break,
        };
        let slot = match book.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                // Once a minute at most: at the limit, every connection
                // that closes lets one more in and meets it again.
                if warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                    warned = Some(Instant::now());
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "the connection limit is reached (RENKEI_MAX_CONNECTIONS): \
                         the connections longest idle are closed for new ones"
                    );
                }
                tokio::select! {
                    slot = book.make_room() => match slot {
                        Some(slot) => slot,
                        None => break,
                    },
                    _ = signal_tx.closed() => break,
                }
            }
        };
        // Sent at once: with Nagle's algorithm the last, partial segment
        // of a response (or a WebSocket frame) written while an earlier one
        // is unacknowledged waits for the client's delayed acknowledgement
        // — up to 40 ms on Linux.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY on a connection");
        }
        let (id, evicted) = book.open();
        let open = Open {
            book: book.clone(),
            id,
        };
        let service = Tracked {
            router: router.clone(),
            book: book.clone(),
            id,
        };
        let builder = builder.clone();
        let signal_tx = signal_tx.clone();
        let close_rx = close_rx.clone();
        let mut kill = kill_tx.subscribe();
        tokio::spawn(async move {
            // Silent clients are closed too: hyper's header timeout starts
            // only once the connection knows its HTTP version, which it
            // learns from the client's first bytes.
            let spoke = tokio::select! {
                biased;
                _ = evicted.notified() => false,
                _ = signal_tx.closed() => false,
                spoke = tokio::time::timeout(limits.header_read_timeout, first_bytes(&stream)) => {
                    matches!(spoke, Ok(Ok(true)))
                }
            };
            if !spoke {
                drop(open);
                return;
            }
            let io = TokioIo::new(Counted {
                stream,
                _slot: slot,
            });
            let mut connection = pin!(builder.serve_connection_with_upgrades(io, service));
            let mut signal = pin!(signal_tx.closed());
            let mut shutting_down = false;
            loop {
                tokio::select! {
                    // First: once told, no new request is read from it.
                    biased;
                    // Closed for a new client while waiting for a request.
                    _ = evicted.notified() => break,
                    _ = kill.changed() => break,
                    _ = &mut signal, if !shutting_down => {
                        shutting_down = true;
                        connection.as_mut().graceful_shutdown();
                    }
                    served = connection.as_mut() => {
                        if let Err(e) = served {
                            tracing::trace!(error = %e, "a connection ended with an error");
                        }
                        break;
                    }
                }
            }
            // Out of the books before its slot is free (the slot goes with
            // `connection`, dropped at the end of the task): a connection
            // that has closed is never the one chosen to make room.
            drop(open);
            drop(close_rx);
        });
    }
    drop(close_rx);
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, close_tx.closed())
        .await
        .is_err()
    {
        // A client that reads nothing (or trickles a body) would otherwise
        // keep the process from ever exiting, and from writing its last
        // audit checkpoint.
        tracing::warn!(
            open = close_tx.receiver_count(),
            "connections still open {}s after the shutdown began are closed, their answers cut off",
            SHUTDOWN_GRACE.as_secs()
        );
        let _ = kill_tx.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(1), close_tx.closed()).await;
    }
}

/// How long a shutdown waits for open connections to finish their
/// requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The open connections: the slots they hold, and which of them may be
/// closed when a new client finds every slot taken — the one that has
/// given way longest first. A connection gives way while it waits for a
/// request (from its accept until its first request's headers are read,
/// and between requests), while every request of it is still *sending its
/// body* to the hub (a body trickled in holds a slot no longer than
/// headers trickled in), and once every answer of it has been *sent for
/// longer than [`ConnectionLimits::body_read_timeout`]* (a reader that
/// takes no data — an HTTP/2 window of zero — would hold it for ever).
/// It never gives way while a request of it is being handled, in its
/// answer's first moments, or once it is a WebSocket. So clients that
/// trickle headers or bodies, send nothing or read nothing cannot keep
/// others out: each newcomer closes one of them.
struct Book {
    slots: Arc<Semaphore>,
    /// How long an answer being sent holds its connection.
    sending_grace: Duration,
    state: Mutex<BookState>,
}

#[derive(Default)]
struct BookState {
    next_id: u64,
    connections: HashMap<u64, Connection>,
}

struct Connection {
    /// When it last began to give way (accepted, or its last request
    /// ended); for a connection busy with requests, its accept.
    since: Instant,
    /// Its requests in the hub (HTTP/2 has several at once), by id.
    requests: HashMap<u64, Phase>,
    /// It carried a WebSocket (a 101, or a 2xx to an HTTP/2 CONNECT): the
    /// tunnel's slot is held until it closes, and the connection is never
    /// closed for another.
    upgraded: bool,
    /// Told to close for a new client.
    evicted: bool,
    /// Tells the connection's task to close it.
    told: Arc<Notify>,
}

/// Where a request is.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    /// Its body is still arriving.
    Receiving,
    /// The hub is working on it.
    Handling,
    /// Its answer is being sent, since then.
    Sending(Instant),
}

impl Connection {
    /// Whether it may be closed for a new client now, and since when it
    /// could be (the earliest first).
    fn gives_way(&self, now: Instant, grace: Duration) -> Option<Instant> {
        if self.upgraded || self.evicted {
            return None;
        }
        let mut since = self.since;
        for phase in self.requests.values() {
            match phase {
                Phase::Receiving => {}
                Phase::Handling => return None,
                Phase::Sending(at) => {
                    let stale = *at + grace;
                    if stale > now {
                        return None;
                    }
                    since = since.max(stale);
                }
            }
        }
        Some(since)
    }
}

impl Book {
    fn new(max_connections: usize, sending_grace: Duration) -> Book {
        Book {
            slots: Arc::new(Semaphore::new(max_connections.max(1))),
            sending_grace,
            state: Mutex::new(BookState::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, BookState> {
        // Nothing panics while holding the lock; a poisoned one still
        // holds consistent books.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new connection, waiting for its first request: its id, and what
    /// tells it it is closed for another.
    fn open(&self) -> (u64, Arc<Notify>) {
        let mut state = self.state();
        let id = state.next_id;
        state.next_id += 1;
        let told = Arc::new(Notify::new());
        state.connections.insert(
            id,
            Connection {
                since: Instant::now(),
                requests: HashMap::new(),
                upgraded: false,
                evicted: false,
                told: told.clone(),
            },
        );
        (id, told)
    }

    fn close(&self, id: u64) {
        self.state().connections.remove(&id);
    }

    /// A request of connection `id` enters the hub; its id.
    fn begin(&self, id: u64, phase: Phase) -> u64 {
        let state = &mut *self.state();
        let request = state.next_id;
        state.next_id += 1;
        if let Some(c) = state.connections.get_mut(&id) {
            c.requests.insert(request, phase);
        }
        request
    }

    fn set(&self, id: u64, request: u64, phase: Phase) {
        if let Some(c) = self.state().connections.get_mut(&id)
            && let Some(p) = c.requests.get_mut(&request)
        {
            *p = phase;
        }
    }

    /// The request's body has arrived: the hub works on it.
    fn received(&self, id: u64, request: u64) {
        if let Some(c) = self.state().connections.get_mut(&id)
            && let Some(p) = c.requests.get_mut(&request)
            && *p == Phase::Receiving
        {
            *p = Phase::Handling;
        }
    }

    fn end(&self, id: u64, request: u64, upgraded: bool) {
        if let Some(c) = self.state().connections.get_mut(&id) {
            let ended = c.requests.remove(&request);
            c.upgraded |= upgraded;
            // Answered (or the last of its requests gone): the connection
            // is in use now, not one that has long given way — an HTTP/2
            // gateway's connection whose requests overlap included.
            if c.requests.is_empty() || ended.is_some_and(|p| p != Phase::Receiving) {
                c.since = Instant::now();
            }
        }
    }

    /// Closes the connection that has given way longest, if one has;
    /// `true` if one was told to close. A scan of the open connections:
    /// it runs only at the limit.
    fn evict_one(&self) -> bool {
        let now = Instant::now();
        let state = &mut *self.state();
        let chosen = state
            .connections
            .iter()
            .filter_map(|(id, c)| {
                c.gives_way(now, self.sending_grace)
                    .map(|since| (since, *id))
            })
            .min();
        let Some((_, id)) = chosen else {
            return false;
        };
        if let Some(c) = state.connections.get_mut(&id) {
            c.evicted = true;
            c.told.notify_one();
        }
        true
    }

    /// A slot for a new connection when none is free: a connection that
    /// gives way is closed for it, or, every connection busy, the first to
    /// close or to give way makes room. The slot of a connection told to
    /// close comes back when its task ends; should it not (an upgrade in
    /// the same instant takes the socket on), another is told after
    /// [`RECHECK`]. `None` only if the slots are gone.
    async fn make_room(&self) -> Option<OwnedSemaphorePermit> {
        loop {
            if let Ok(slot) = self.slots.clone().try_acquire_owned() {
                return Some(slot);
            }
            self.evict_one();
            tokio::select! {
                slot = self.slots.clone().acquire_owned() => return slot.ok(),
                _ = tokio::time::sleep(RECHECK) => {}
            }
        }
    }
}

/// A connection's entry in the [`Book`], removed when its task ends.
struct Open {
    book: Arc<Book>,
    id: u64,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.book.close(self.id);
    }
}

/// The router, as hyper calls it for each request of one connection:
/// follows the request through the [`Book`] — its body arriving, the hub
/// handling it, its answer being sent — from the moment hyper hands it a
/// request (`call` runs on the connection's task, also for an HTTP/2
/// stream, whose future is spawned) until the answer's body is sent or
/// dropped.
#[derive(Clone)]
struct Tracked {
    router: Router,
    book: Arc<Book>,
    id: u64,
}

impl hyper::service::Service<Request<Incoming>> for Tracked {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let phase = if request.body().is_end_stream() {
            Phase::Handling
        } else {
            Phase::Receiving
        };
        let mut busy = Busy::begin(self.book.clone(), self.id, phase);
        let connect = request.method() == Method::CONNECT;
        let request = request.map(|body| {
            Body::new(Arriving {
                body,
                book: self.book.clone(),
                id: self.id,
                request: busy.request,
                told: false,
            })
        });
        let router = self.router.clone();
        Box::pin(async move {
            let response = router.oneshot(request).await?;
            busy.upgraded = response.status() == StatusCode::SWITCHING_PROTOCOLS
                || (connect && response.status().is_success());
            busy.sending();
            Ok(response.map(|body| Body::new(Sending { body, busy })))
        })
    }
}

/// A request of a connection in the hub, until its answer is sent (or
/// dropped).
struct Busy {
    book: Arc<Book>,
    id: u64,
    request: u64,
    /// The answer opened a tunnel (WebSocket).
    upgraded: bool,
}

impl Busy {
    fn begin(book: Arc<Book>, id: u64, phase: Phase) -> Busy {
        let request = book.begin(id, phase);
        Busy {
            book,
            id,
            request,
            upgraded: false,
        }
    }

    /// The answer is being sent, or has just made progress: its grace
    /// counts from now (a slow reader that reads is not one that reads
    /// nothing).
    fn sending(&self) {
        self.book
            .set(self.id, self.request, Phase::Sending(Instant::now()));
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.book.end(self.id, self.request, self.upgraded);
    }
}

/// A request's body as the hub reads it: tells the [`Book`] when it has all
/// arrived.
struct Arriving {
    body: Incoming,
    book: Arc<Book>,
    id: u64,
    request: u64,
    /// The book was told it has all arrived.
    told: bool,
}

impl HttpBody for Arriving {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if !this.told && (matches!(polled, Poll::Ready(None)) || this.body.is_end_stream()) {
            this.told = true;
            this.book.received(this.id, this.request);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// An answer's body, holding its request's [`Busy`] until it is sent: a
/// large bundle written to a slow reader is a request still in the hub
/// (for [`ConnectionLimits::body_read_timeout`], see [`Book`]).
struct Sending {
    body: Body,
    busy: Busy,
}

impl HttpBody for Sending {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        // hyper asks for more only once the client has taken what it sent.
        if matches!(polled, Poll::Ready(Some(Ok(_)))) {
            this.busy.sending();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The HTTP/2 connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Waits, without consuming them, for enough of the client's first bytes
/// to tell HTTP/1 from HTTP/2 — what hyper's version detection reads
/// before any of its own timeouts apply. `false`: the client closed first.
async fn first_bytes(stream: &TcpStream) -> io::Result<bool> {
    let mut seen = [0u8; H2_PREFACE.len()];
    loop {
        let n = stream.peek(&mut seen).await?;
        if n == 0 {
            return Ok(false);
        }
        if seen[..n] != H2_PREFACE[..n] || n == H2_PREFACE.len() {
            return Ok(true);
        }
        // Part of the HTTP/2 preface: peeking again at once would only
        // see the same bytes, so the rest is given a moment to arrive.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An accept that failed. A connection reset before it was accepted
/// concerns that client alone; anything else (out of file descriptors) is
/// logged and waited out for a second, as `axum::serve` does, rather than
/// spinning.
async fn accept_failed(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// A connection holding its slot: the slot is free again when the socket
/// is dropped — after an upgrade, when the WebSocket is.
struct Counted {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_limit_leaves_room_for_the_rest_of_the_process() {
        assert_eq!(default_max_connections(Some(20_000)), 10_000);
        assert_eq!(default_max_connections(Some(4096)), 3840);
        assert_eq!(default_max_connections(Some(1024)), 768);
        assert_eq!(default_max_connections(Some(100)), 64);
        assert_eq!(default_max_connections(Some(u64::MAX)), 10_000);
        assert_eq!(default_max_connections(None), 1000);
    }

    #[test]
    fn the_books_close_the_connection_that_gave_way_longest_and_never_a_busy_one() {
        use futures_util::FutureExt;
        let told = |n: &Arc<Notify>| n.notified().now_or_never().is_some();
        let grace = Duration::from_millis(200);
        let book = Book::new(3, grace);
        let (a, a_told) = book.open();
        let (b, b_told) = book.open();
        let handling = book.begin(a, Phase::Handling);
        // `a` is busy: `b` has waited longest.
        assert!(book.evict_one());
        assert!(told(&b_told) && !told(&a_told));
        // Told once: a request read in the same instant does not put it back.
        let late = book.begin(b, Phase::Handling);
        book.end(b, late, false);
        book.close(b);
        assert!(!book.evict_one(), "nothing gives way");
        // A request whose body is still arriving gives way.
        let (c, c_told) = book.open();
        let receiving = book.begin(c, Phase::Receiving);
        assert!(book.evict_one());
        assert!(told(&c_told));
        book.end(c, receiving, false);
        book.close(c);
        // An answer being sent holds its connection for the grace only.
        book.set(a, handling, Phase::Sending(Instant::now()));
        assert!(!book.evict_one(), "an answer just begun");
        std::thread::sleep(grace + Duration::from_millis(50));
        assert!(book.evict_one(), "an answer nobody reads");
        assert!(told(&a_told));
        book.end(a, handling, false);
        book.close(a);
        // A WebSocket never gives way.
        let (d, d_told) = book.open();
        let upgrade = book.begin(d, Phase::Handling);
        book.end(d, upgrade, true);
        assert!(!book.evict_one(), "a WebSocket is never closed for another");
        assert!(!told(&d_told));
    }
}
