//! Binding client listeners and accepting connections until shutdown. On a TLS listener
//! each connection's handshake runs in its own task, bounded by [`crate::tls::HANDSHAKE_TIMEOUT`], so a
//! client that stalls mid-handshake holds neither the accept loop nor a task for long.
//!
//! When accepting fails (the process is out of descriptors, say), the loop backs off,
//! 100 ms doubling to 1 s, and warns once per run of failures rather than once per
//! attempt; descriptors held by the segment handle cache are given back first, since a
//! client connection matters more than a cached file.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

use super::connection::{self, Transport};
use crate::config::Listener;
use crate::metrics as m;
use crate::state::BrokerState;
use crate::tls::TlsListener;

/// Bind a listener. SO_REUSEADDR lets a restarted broker bind at once even while old
/// connections sit in TIME_WAIT.
pub fn bind(l: &Listener) -> std::io::Result<TcpListener> {
    let addr: SocketAddr = l.bind_addr().to_socket_addrs()?.next().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "listener host resolves to nothing",
        )
    })?;
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// First pause after a failed accept; it doubles up to [`ACCEPT_BACKOFF_MAX`].
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(100);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A run of failed accepts: how long to pause next, and how many failed so far.
#[derive(Debug, Default)]
struct AcceptBackoff {
    next: Option<Duration>,
    failures: u64,
}

impl AcceptBackoff {
    /// Record a failure; returns the pause, and whether this failure starts a run.
    fn failed(&mut self) -> (Duration, bool) {
        let pause = self
            .next
            .map_or(ACCEPT_BACKOFF_MIN, |d| (d * 2).min(ACCEPT_BACKOFF_MAX));
        self.next = Some(pause);
        self.failures += 1;
        (pause, self.failures == 1)
    }

    /// An accept succeeded: the failures of the run that ended, if there was one.
    fn succeeded(&mut self) -> Option<u64> {
        let n = std::mem::take(&mut self.failures);
        self.next = None;
        (n > 0).then_some(n)
    }
}

/// Accept connections on `listener` until `shutdown` flips; connection tasks go into
/// `conns` so shutdown can wait for them.
pub async fn accept_loop(
    state: Arc<BrokerState>,
    listener: TcpListener,
    name: String,
    tls: Option<Arc<TlsListener>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let label: Arc<str> = Arc::from(name.as_str());
    let mut conns = JoinSet::new();
    let mut backoff = AcceptBackoff::default();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if let Some(failed) = backoff.succeeded() {
                        info!(listener = %name, failed, "accepting connections again");
                    }
                    let _ = stream.set_nodelay(true);
                    metrics::counter!(m::CONNECTIONS_ACCEPTED_TOTAL, "listener" => name.clone()).increment(1);
                    let (state, label, shutdown) = (state.clone(), label.clone(), shutdown.clone());
                    match &tls {
                        None => conns.spawn(connection::serve(state, Transport::Plain(stream), peer, label, Arc::from(crate::principal::ANONYMOUS), shutdown)),
                        Some(tls) => conns.spawn(handshake_then_serve(state, tls.clone(), stream, peer, label, shutdown)),
                    };
                }
                Err(e) => {
                    let out_of_fds = matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE));
                    let shed = if out_of_fds { state.logs.handles().shed() } else { 0 };
                    let (pause, first) = backoff.failed();
                    if first {
                        warn!(error = %e, listener = %name, segment_files_closed = shed,
                            "accept failed; backing off until it works again");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = shutdown.changed() => break,
                    }
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    // Connections see the same shutdown signal and finish their in-flight request.
    let deadline = tokio::time::sleep(std::time::Duration::from_secs(5));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = conns.join_next() => if next.is_none() { break },
            _ = &mut deadline => {
                info!(listener = %name, remaining = conns.len(), "closing connections that did not finish in time");
                conns.abort_all();
                break;
            }
        }
    }
}

/// The TLS handshake of one connection, then the connection.
async fn handshake_then_serve(
    state: Arc<BrokerState>,
    tls_listener: Arc<TlsListener>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    listener: Arc<str>,
    mut shutdown: watch::Receiver<bool>,
) {
    let tls = tokio::select! {
        r = crate::tls::accept(tls_listener.acceptor(), stream, peer, &listener) => match r {
            Some(tls) => tls,
            None => return,
        },
        _ = shutdown.changed() => return,
    };
    // The client certificate's name, mapped by ssl.principal.mapping.rules; a name no
    // rule applies to is refused, as Kafka refuses it.
    let principal = match tls_listener.principal(tls.get_ref().1.peer_certificates()) {
        Ok(p) => p,
        Err(reason) => {
            warn!(%peer, %listener, %reason, "client certificate refused");
            if let Some(audit) = &state.audit {
                audit.record(crate::audit::Event {
                    kind: "authentication",
                    outcome: "failure",
                    principal: crate::principal::ANONYMOUS,
                    client: peer,
                    listener: &listener,
                    details: serde_json::json!({"mechanism": "SSL", "reason": reason}),
                });
            }
            return;
        }
    };
    connection::serve(
        state,
        Transport::Tls(Box::new(tls)),
        peer,
        listener,
        Arc::from(principal.as_str()),
        shutdown,
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_backoff_grows_warns_once_and_resets() {
        let mut b = AcceptBackoff::default();
        assert_eq!(b.succeeded(), None);
        let pauses: Vec<(Duration, bool)> = (0..6).map(|_| b.failed()).collect();
        let ms: Vec<u128> = pauses.iter().map(|(d, _)| d.as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(pauses.iter().filter(|(_, first)| *first).count(), 1);
        assert_eq!(b.succeeded(), Some(6));
        assert_eq!(b.failed(), (ACCEPT_BACKOFF_MIN, true));
    }
}
