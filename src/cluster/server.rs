//! The internal listener: accepts peers' connections and serves [`super::rpc`] requests.
//!
//! Each connection is served by its own task, one request at a time, so a slow
//! InstallSnapshot from one peer never delays another peer's heartbeats. A frame that
//! does not decode closes that connection (with a log line): the peer reconnects and
//! retries, and nothing a peer sends can panic this node. All connection tasks live in a
//! `JoinSet` owned by the accept task, so aborting that task (controller shutdown) closes
//! the listener and every connection at once. On a TLS CONTROLLER listener the handshake
//! comes first, in the connection's task: a peer whose certificate the truststore does
//! not sign is refused there, so a node with a wrong certificate cannot take part.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, BufReader, BufWriter};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::controller::Controller;
use super::rpc::{decode_payload, encode_frame, read_frame, write_frame, Request, RpcError};
use crate::tls::TlsListener;

/// Accept peers until the task is aborted.
pub async fn accept_loop(
    listener: TcpListener,
    controller: Arc<Controller>,
    tls: Option<Arc<TlsListener>>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let controller = controller.clone();
                    let tls = tls.clone();
                    conns.spawn(async move {
                        let result = match tls {
                            None => serve(stream, controller).await,
                            Some(tls) => {
                                let acceptor = tls.acceptor();
                                let Some(stream) = crate::tls::accept(acceptor, stream, peer, tls.listener()).await else {
                                    return;
                                };
                                serve(stream, controller).await
                            }
                        };
                        if let Err(e) = result {
                            tracing::debug!(%peer, error = %e, "internal connection closed");
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "internal listener accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            // Reap finished connections so the set does not grow without bound.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn serve<S>(stream: S, controller: Arc<Controller>) -> Result<(), RpcError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin,
{
    let (r, w) = tokio::io::split(stream);
    let mut r = BufReader::new(r);
    let mut w = BufWriter::new(w);
    while let Some(payload) = read_frame(&mut r).await? {
        let req: Request = match decode_payload(&payload) {
            Ok(req) => req,
            Err(e) => {
                tracing::warn!(error = %e, "bad frame on the internal listener; closing");
                return Err(e);
            }
        };
        let resp = controller.handle_rpc(req).await;
        write_frame(&mut w, &encode_frame(&resp)?).await?;
    }
    Ok(())
}
