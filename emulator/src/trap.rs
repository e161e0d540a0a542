//! The trap: a TLS listener on another port of 127.0.0.1 that a broken Key Vault `nextLink` points at. It
//! records who connects (and whether a request or an `Authorization` header arrived) and answers nothing,
//! so a test can assert that a client never follows a link to another origin.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// What reached the trap so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrapStats {
    /// The trap's port on 127.0.0.1.
    pub port: u16,
    /// TCP connections accepted.
    pub connections: u64,
    /// Whether any byte arrived on any connection (a TLS handshake counts).
    pub bytes_received: bool,
    /// Whether an HTTP request arrived (after a completed TLS handshake).
    pub request_received: bool,
    /// Whether a request carried an `Authorization` header.
    pub authorization_seen: bool,
}

/// The trap's live counters.
#[derive(Default)]
pub(crate) struct Trap {
    pub port: u16,
    connections: AtomicU64,
    bytes_received: AtomicBool,
    request_received: AtomicBool,
    authorization_seen: AtomicBool,
}

impl Trap {
    pub(crate) fn new(port: u16) -> Self {
        Self {
            port,
            ..Self::default()
        }
    }

    pub(crate) fn stats(&self) -> TrapStats {
        TrapStats {
            port: self.port,
            connections: self.connections.load(Ordering::SeqCst),
            bytes_received: self.bytes_received.load(Ordering::SeqCst),
            request_received: self.request_received.load(Ordering::SeqCst),
            authorization_seen: self.authorization_seen.load(Ordering::SeqCst),
        }
    }
}

const WAIT: Duration = Duration::from_secs(2);

/// Accepts connections until shutdown, records them, and closes each without an answer.
pub(crate) async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    trap: Arc<Trap>,
    shutdown: watch::Receiver<bool>,
) {
    crate::server::accept_until_shutdown(listener, shutdown, move |stream| {
        trap.connections.fetch_add(1, Ordering::SeqCst);
        let trap = Arc::clone(&trap);
        let acceptor = acceptor.clone();
        async move {
            let mut probe = [0_u8; 1];
            if let Ok(Ok(n)) = tokio::time::timeout(WAIT, stream.peek(&mut probe)).await
                && n > 0
            {
                trap.bytes_received.store(true, Ordering::SeqCst);
            }
            let Ok(Ok(mut tls)) = tokio::time::timeout(WAIT, acceptor.accept(stream)).await else {
                return;
            };
            let mut buffer = vec![0_u8; 16 * 1024];
            if let Ok(Ok(n)) = tokio::time::timeout(WAIT, tls.read(&mut buffer)).await
                && n > 0
            {
                trap.request_received.store(true, Ordering::SeqCst);
                let head = String::from_utf8_lossy(&buffer[..n]).to_ascii_lowercase();
                if head.contains("\nauthorization:") {
                    trap.authorization_seen.store(true, Ordering::SeqCst);
                }
            }
        }
    })
    .await;
}
