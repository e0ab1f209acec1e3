//! One client connection, over plain TCP or TLS ([`Transport`]).
//!
//! One task reads frames, decodes each request, starts it *in arrival order* (so appends
//! to a partition happen in the order the client sent them), and queues its completion.
//! Completions may overlap (several acks=all produces share one fsync) but responses are
//! written strictly in request order, as the Kafka protocol requires.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use futures::stream::{FuturesOrdered, StreamExt};
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncRead, AsyncWriteExt, WriteHalf};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::server::TlsStream;
use tracing::{debug, info, warn};

use super::session::{Admit, Session};
use crate::handlers::{self, Ctx, Outcome};
use crate::metrics as m;
use crate::protocol::response::Response;
use crate::protocol::{decode_header, FrameReader};
use crate::state::BrokerState;

/// A started request: its outcome, (API, correlation id) and stage times.
type PendingResponse = std::pin::Pin<
    Box<dyn std::future::Future<Output = (Outcome, (ApiKey, i32), StageTimes)> + Send>,
>;

/// Requests a client may have in flight on one connection before we stop reading.
const MAX_IN_FLIGHT: usize = 64;

/// A client connection's byte stream.
pub enum Transport {
    Plain(TcpStream),
    /// TLS, the handshake done.
    Tls(Box<TlsStream<TcpStream>>),
}

/// The sending half of a connection: plain TCP sends file chunks with `sendfile`; TLS
/// has to read them and encrypt them in this process.
enum Writer {
    Plain(OwnedWriteHalf),
    Tls(WriteHalf<TlsStream<TcpStream>>),
}

impl Writer {
    async fn send(&mut self, response: &Response) -> std::io::Result<()> {
        match self {
            Writer::Plain(w) => response.write_to_socket(w).await,
            Writer::Tls(w) => {
                response.write_to(w).await?;
                w.flush().await
            }
        }
    }

    async fn shutdown(&mut self) {
        let _ = match self {
            Writer::Plain(w) => w.shutdown().await,
            Writer::Tls(w) => w.shutdown().await,
        };
    }
}

pub async fn serve(
    state: Arc<BrokerState>,
    transport: Transport,
    peer: SocketAddr,
    listener: Arc<str>,
    principal: Arc<str>,
    mut shutdown: watch::Receiver<bool>,
) {
    let gauge = metrics::gauge!(m::CONNECTIONS_OPEN, "listener" => listener.to_string());
    gauge.increment(1.0);
    info!(%peer, %listener, %principal, "connection opened");
    let (rd, mut wr): (Box<dyn AsyncRead + Send + Unpin>, Writer) = match transport {
        Transport::Plain(stream) => {
            let (rd, wr) = stream.into_split();
            (Box::new(rd), Writer::Plain(wr))
        }
        Transport::Tls(stream) => {
            let (rd, wr) = tokio::io::split(*stream);
            (Box::new(rd), Writer::Tls(wr))
        }
    };
    let request_max = state.config.socket_request_max_bytes;
    let mut frames = FrameReader::new(rd, request_max);
    // On a SASL listener nothing but ApiVersions and the exchange is served until the
    // client authenticates, and frames are kept small until then.
    let mut session = state
        .config
        .security
        .sasl
        .listeners
        .get(&*listener)
        .map(|s| Session::new(Arc::new(s.clone()), state.bearer.get(&*listener).cloned()));
    if session.is_some() {
        frames.set_max(request_max.min(state.config.security.sasl.max_receive_size));
    }
    // A TLS client certificate's principal, until SASL (if any) names the user.
    let mut principal = principal;
    let host: Arc<str> = Arc::from(peer.ip().to_string());
    let mut histograms: std::collections::HashMap<ApiKey, RequestHistograms> = Default::default();
    let mut client_id = String::new();
    let software = crate::handlers::ClientSoftware::default();
    let mut pending = FuturesOrdered::new();
    let mut input_open = true;
    let close_reason: Option<String> = loop {
        tokio::select! {
            frame = frames.next(), if input_open && pending.len() < MAX_IN_FLIGHT => {
                let arrived = Instant::now();
                let frame = match frame {
                    Ok(Some(f)) => f,
                    Err(e) => break Some(e.to_string()),
                    Ok(None) => {
                        input_open = false;
                        if pending.is_empty() {
                            break None;
                        }
                        continue;
                    }
                };
                let started = Instant::now();
                let ctx = |api_key, version, correlation_id, client_id: &str, principal: &Arc<str>| Ctx {
                    state: state.clone(),
                    api_key,
                    version,
                    correlation_id,
                    client_id: client_id.to_string(),
                    peer,
                    listener: listener.clone(),
                    software: software.clone(),
                    principal: principal.clone(),
                    host: host.clone(),
                };
                if let Some(s) = session.as_mut().filter(|s| s.expects_legacy_token()) {
                    // The legacy exchange: a bare token, answered bare (no correlation).
                    let c = ctx(ApiKey::SaslAuthenticate, 0, 0, &client_id, &principal);
                    let a = handlers::sasl_authenticate::legacy_token(&c, &frame, s);
                    let pause = state.config.security.sasl.failed_authentication_delay;
                    pending.push_back(Box::pin(async move {
                        let outcome = match (a.response, a.failed) {
                            (Some(r), _) => Outcome::Respond(r),
                            (None, reason) => {
                                tokio::time::sleep(pause).await;
                                Outcome::Close(reason.unwrap_or_default())
                            }
                        };
                        let times = StageTimes { arrived, started, handled: Instant::now() };
                        (outcome, (ApiKey::SaslAuthenticate, 0), times)
                    }) as PendingResponse);
                    adopt_session(s, &mut principal, &mut frames, request_max);
                    continue;
                }
                let req = match decode_header(frame) {
                    Ok(r) => r,
                    Err(e) => break Some(e.to_string()),
                };
                if let Some(id) = &req.header.client_id {
                    if client_id != id.as_str() {
                        client_id = id.to_string();
                    }
                }
                let ctx = ctx(req.api_key, req.api_version, req.header.correlation_id, &client_id, &principal);
                let sasl = match session.as_mut() {
                    None => None,
                    Some(s) => match s.admit(req.api_key, Instant::now()) {
                        Admit::Serve => None,
                        Admit::Sasl => Some(s),
                        Admit::Close(reason) => break Some(reason),
                        Admit::Expired(reason) => {
                            metrics::counter!(m::SASL_SESSIONS_EXPIRED_TOTAL, "listener" => listener.to_string()).increment(1);
                            break Some(reason);
                        }
                    },
                };
                let api = req.api_key;
                let correlation_id = req.header.correlation_id;
                let started_request = match sasl {
                    None => handlers::start(ctx, req.body),
                    Some(s) => {
                        let r = handlers::start_sasl(ctx, req.body, s);
                        adopt_session(s, &mut principal, &mut frames, request_max);
                        r
                    }
                };
                match started_request {
                    Ok(fut) => pending.push_back(Box::pin(async move {
                        let outcome = fut.await;
                        let times = StageTimes { arrived, started, handled: Instant::now() };
                        (outcome, (api, correlation_id), times)
                    }) as PendingResponse),
                    Err(reason) => break Some(reason),
                }
            }
            Some((outcome, (api, correlation_id), times)) = pending.next(), if !pending.is_empty() => {
                match outcome {
                    Outcome::Respond(response) => {
                        if let Err(e) = wr.send(&response).await {
                            break Some(format!("write failed: {e}"));
                        }
                        debug!(api = ?api, correlation_id, %peer, "response written");
                    }
                    Outcome::NoResponse => {}
                    Outcome::Close(reason) => break Some(reason),
                    Outcome::RespondThenClose(response, reason) => {
                        let _ = wr.send(&response).await;
                        tokio::time::sleep(state.config.security.sasl.failed_authentication_delay).await;
                        break Some(reason);
                    }
                }
                times.record(histograms.entry(api).or_insert_with(|| RequestHistograms::new(api)));
                if !input_open && pending.is_empty() {
                    break None;
                }
            }
            _ = shutdown.changed() => break None,
            else => break None,
        }
    };
    // Drain what was already started so an acknowledged write is answered when possible.
    if close_reason.is_none() {
        while let Some((outcome, _, _)) = pending.next().await {
            if let Outcome::Respond(response) | Outcome::RespondThenClose(response, _) = outcome {
                if wr.send(&response).await.is_err() {
                    break;
                }
            }
        }
    }
    wr.shutdown().await;
    gauge.decrement(1.0);
    metrics::counter!(m::CONNECTIONS_CLOSED_TOTAL, "listener" => listener.to_string()).increment(1);
    match close_reason {
        Some(reason) => warn!(%peer, client_id = %client_id, %reason, "closing connection"),
        None => info!(%peer, client_id = %client_id, "connection closed"),
    }
}

/// Once the session has a user, the connection acts as `User:<name>` and takes frames up
/// to `socket.request.max.bytes` again.
fn adopt_session<R: AsyncRead + Unpin>(
    s: &Session,
    principal: &mut Arc<str>,
    frames: &mut FrameReader<R>,
    request_max: usize,
) {
    if let Some(user) = s.user() {
        *principal = Arc::from(format!("User:{user}"));
        frames.set_max(request_max);
    }
}

/// When a request was read, started and answered by its handler; recorded once its
/// response is written. Stages (Kafka's request metrics, folded to three): `queue`
/// from read to handler start (waiting behind the connection's in-flight limit),
/// `handle` in the handler (acks=all and long-poll waits included), `send` until the
/// response is written (behind earlier responses of the connection, then the write).
struct StageTimes {
    arrived: Instant,
    started: Instant,
    handled: Instant,
}

impl StageTimes {
    fn record(&self, h: &RequestHistograms) {
        let now = Instant::now();
        h.total.record((now - self.arrived).as_secs_f64());
        h.queue.record((self.started - self.arrived).as_secs_f64());
        h.handle.record((self.handled - self.started).as_secs_f64());
        h.send.record((now - self.handled).as_secs_f64());
    }
}

/// One API's latency histograms, looked up once per connection rather than by name and
/// labels on every request.
struct RequestHistograms {
    total: metrics::Histogram,
    queue: metrics::Histogram,
    handle: metrics::Histogram,
    send: metrics::Histogram,
}

impl RequestHistograms {
    fn new(api: ApiKey) -> RequestHistograms {
        let name = api_name(api);
        let stage = |stage: &'static str| metrics::histogram!(m::REQUEST_STAGE_SECONDS, "api" => name.clone(), "stage" => stage);
        RequestHistograms {
            total: metrics::histogram!(m::REQUEST_DURATION_SECONDS, "api" => name.clone()),
            queue: stage("queue"),
            handle: stage("handle"),
            send: stage("send"),
        }
    }
}

pub fn api_name(api: ApiKey) -> String {
    format!("{api:?}")
}
