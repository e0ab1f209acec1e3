//! Binding client listeners and accepting connections until shutdown.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

use super::connection;
use crate::broker::BrokerState;
use crate::config::Listener;
use crate::metrics as m;

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

/// Accept connections on `listener` until `shutdown` flips; connection tasks go into
/// `conns` so shutdown can wait for them.
pub async fn accept_loop(
    state: Arc<BrokerState>,
    listener: TcpListener,
    name: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    metrics::counter!(m::CONNECTIONS_ACCEPTED_TOTAL, "listener" => name.clone()).increment(1);
                    conns.spawn(connection::serve(state.clone(), stream, peer, name.clone(), shutdown.clone()));
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    warn!(error = %e, listener = %name, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
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
