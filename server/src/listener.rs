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
//!   once — WebSockets included, for as long as they live. Beyond it the hub
//!   stops accepting (new connections wait in the kernel's backlog) and
//!   logs a warning, at most once a minute;
//! - a client that sends nothing is closed after
//!   [`ConnectionLimits::header_read_timeout`]; an HTTP/1 request's headers
//!   must then arrive within the same time, or the connection is closed (the
//!   time also bounds how long an idle keep-alive connection is kept
//!   waiting for its next request);
//! - the body's deadline, [`ConnectionLimits::body_read_timeout`], is a
//!   layer of the served router (`RequestBodyDeadlineLayer`, in
//!   [`crate::Application`]).
//!
//! Otherwise it serves as `axum::serve` does: HTTP/1 and HTTP/2 (with the
//! extended CONNECT of HTTP/2 WebSockets), upgrades, `TCP_NODELAY`, and a
//! graceful shutdown that stops accepting and lets open requests finish.

use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

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

/// How often the limit's warning may repeat while it holds.
const WARN_EVERY: Duration = Duration::from_secs(60);

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
    // HTTP/2 WebSockets (RFC 8441) need the extended CONNECT, as in axum.
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
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut warned: Option<Instant> = None;

    loop {
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                // Once a minute at most: at the limit, every connection
                // that closes lets one more in and meets it again.
                if warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                    warned = Some(Instant::now());
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "the connection limit is reached (RENKEI_MAX_CONNECTIONS): \
                         new connections wait until one closes"
                    );
                }
                tokio::select! {
                    permit = slots.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                    _ = signal_tx.closed() => break,
                }
            }
        };
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
        // Sent at once: with Nagle's algorithm the last, partial segment
        // of a response (or a WebSocket frame) written while an earlier one
        // is unacknowledged waits for the client's delayed acknowledgement
        // — up to 40 ms on Linux.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY on a connection");
        }
        let service = TowerToHyperService::new(router.clone());
        let builder = builder.clone();
        let signal_tx = signal_tx.clone();
        let close_rx = close_rx.clone();
        tokio::spawn(async move {
            // Silent clients are closed too: hyper's header timeout starts
            // only once the connection knows its HTTP version, which it
            // learns from the client's first bytes.
            tokio::select! {
                spoke = tokio::time::timeout(limits.header_read_timeout, first_bytes(&stream)) => {
                    if !matches!(spoke, Ok(Ok(true))) {
                        return;
                    }
                }
                _ = signal_tx.closed() => return,
            }
            let io = TokioIo::new(Counted {
                stream,
                _slot: permit,
            });
            let mut connection = pin!(builder.serve_connection_with_upgrades(io, service));
            let mut signal = pin!(signal_tx.closed());
            let mut shutting_down = false;
            loop {
                tokio::select! {
                    served = connection.as_mut() => {
                        if let Err(e) = served {
                            tracing::trace!(error = %e, "a connection ended with an error");
                        }
                        break;
                    }
                    _ = &mut signal, if !shutting_down => {
                        shutting_down = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(close_rx);
        });
    }
    drop(close_rx);
    drop(listener);
    close_tx.closed().await;
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
