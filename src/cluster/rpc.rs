//! The internal control-plane protocol: messages, framing, a client.
//!
//! Every node of a quorum binds its CONTROLLER listener and speaks this protocol on it.
//! A frame is a 4-byte big-endian length `n` followed by `n` bytes: one version byte
//! ([`PROTOCOL_VERSION`]) and a bincode-encoded [`Request`] or [`Response`]. A connection
//! carries one request at a time, answered in order, so no correlation id is needed.
//! Frames over [`MAX_FRAME`] bytes are refused before anything is allocated, and bincode
//! decodes with the same limit, so a hostile peer can make us close the connection but
//! never make us allocate without bound or panic.
//!
//! Raft errors travel JSON-encoded inside the bincode frame: they are rare and their serde
//! shape is openraft's business, so the self-describing format keeps them decodable.

use std::time::Duration;

use bincode::Options;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use thiserror::Error;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;

use super::membership::{QuorumChange, QuorumRefusal, QuorumStatus};
use super::state::{CommandResult, MetadataCommand};
use super::types::{NodeId, TypeConfig};
use crate::tls::TlsListener;

/// Bumped on any incompatible change of [`Request`] / [`Response`].
pub const PROTOCOL_VERSION: u8 = 1;
/// Largest frame either side accepts. Snapshot chunks are kept well below it (see the
/// controller's Raft config), AppendEntries batches of metadata commands are small.
pub const MAX_FRAME: usize = 32 << 20;
/// How long a connection attempt may take before the peer counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// What one node asks another.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// Commit a metadata command; only the Raft leader accepts (no second hop).
    Propose(MetadataCommand),
    /// The leader's commit index, confirmed with a quorum (a linearizable read point).
    ReadIndex,
    /// A broker is alive. Sent to the Raft leader every `broker.heartbeat.interval.ms`.
    BrokerHeartbeat {
        broker_id: i32,
        /// The last metadata log index the broker has applied: a fenced broker is
        /// unfenced only once it has caught up (its image is not stale).
        applied: u64,
    },
    /// A membership change (joining learner, AddRaftVoter, ...), executed by the leader.
    ChangeQuorum(QuorumChange),
    /// The quorum's state as the leader sees it.
    DescribeQuorum,
}

/// The answer to a [`Request`].
#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    AppendEntries(AppendEntriesResponse<NodeId>),
    Vote(VoteResponse<NodeId>),
    InstallSnapshot(InstallSnapshotResponse<NodeId>),
    /// The Raft call failed on the peer; JSON of the matching `RaftError`.
    RaftError(String),
    /// The command is committed and applied on the leader at log index `index`.
    Proposed {
        index: u64,
        result: CommandResult,
    },
    ReadIndex {
        index: u64,
    },
    /// `registered: false` asks the broker to register again (its registration is not
    /// in the applied metadata, e.g. it was never committed).
    Heartbeat {
        registered: bool,
    },
    /// This node is not the Raft leader; `leader` is who it thinks is.
    NotLeader {
        leader: Option<NodeId>,
    },
    /// The request could not be served (shutting down, a failed proposal).
    Error(String),
    QuorumChanged(Result<(), QuorumRefusal>),
    Quorum(QuorumStatus),
}

/// Why a frame or a call failed.
#[derive(Debug, Error)]
pub enum RpcError {
    /// The request was never sent: it is safe to send it elsewhere.
    #[error("cannot connect to {0}")]
    Connect(String),
    /// The connection failed after the request was (perhaps) sent: outcome unknown.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("timed out")]
    Timeout,
    #[error("bad frame: {0}")]
    BadFrame(String),
    /// The request does not fit in a frame (never sent): send less at a time.
    #[error("message of {0} bytes exceeds the frame limit")]
    TooLarge(usize),
}

fn codec() -> impl Options {
    bincode::DefaultOptions::new().with_limit(MAX_FRAME as u64)
}

fn encode_err(e: bincode::Error) -> RpcError {
    match e.as_ref() {
        bincode::ErrorKind::SizeLimit => RpcError::TooLarge(MAX_FRAME + 1),
        other => RpcError::BadFrame(format!("encode: {other}")),
    }
}

/// Encode a message as one frame (length, version, body).
pub fn encode_frame<T: Serialize>(msg: &T) -> Result<Vec<u8>, RpcError> {
    let body = codec().serialize(msg).map_err(encode_err)?;
    let len = body.len() + 1;
    if len > MAX_FRAME {
        return Err(RpcError::TooLarge(len));
    }
    let mut out = Vec::with_capacity(4 + len);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.push(PROTOCOL_VERSION);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decode the payload of one frame (what follows the length prefix).
pub fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, RpcError> {
    match payload.split_first() {
        Some((&PROTOCOL_VERSION, body)) => codec()
            .deserialize(body)
            .map_err(|e| RpcError::BadFrame(format!("decode: {e}"))),
        Some((v, _)) => Err(RpcError::BadFrame(format!(
            "protocol version {v}, expected {PROTOCOL_VERSION}"
        ))),
        None => Err(RpcError::BadFrame("empty frame".into())),
    }
}

/// Read one frame's payload; `Ok(None)` on a clean end of stream between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Vec<u8>>, RpcError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(RpcError::BadFrame(format!(
            "frame length {len} outside 1..={MAX_FRAME}"
        )));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    Ok(Some(payload))
}

pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, frame: &[u8]) -> Result<(), RpcError> {
    w.write_all(frame).await?;
    w.flush().await?;
    Ok(())
}

type Reader = BufReader<Box<dyn AsyncRead + Send + Sync + Unpin>>;
type Writer = BufWriter<Box<dyn AsyncWrite + Send + Sync + Unpin>>;

/// A connection to one peer's internal listener, opened on first use and again after
/// any failure (the next call reconnects). With `tls`, the connection is TLS: the peer's
/// certificate is verified with the CONTROLLER listener's truststore and this node
/// presents its own.
pub struct RpcClient {
    addr: String,
    tls: Option<Arc<TlsListener>>,
    conn: Option<(Reader, Writer)>,
}

impl RpcClient {
    pub fn new(addr: impl Into<String>, tls: Option<Arc<TlsListener>>) -> Self {
        RpcClient {
            addr: addr.into(),
            tls,
            conn: None,
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Send one request and wait for its answer, all within `timeout`. Any failure drops
    /// the connection: a late answer must never be read as the next call's.
    pub async fn call(&mut self, req: &Request, timeout: Duration) -> Result<Response, RpcError> {
        let frame = encode_frame(req)?;
        let result = tokio::time::timeout(timeout, self.call_inner(&frame)).await;
        match result {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => {
                self.conn = None;
                Err(e)
            }
            Err(_) => {
                self.conn = None;
                Err(RpcError::Timeout)
            }
        }
    }

    async fn call_inner(&mut self, frame: &[u8]) -> Result<Response, RpcError> {
        if self.conn.is_none() {
            let stream =
                match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.addr)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => return Err(RpcError::Connect(format!("{}: {e}", self.addr))),
                    Err(_) => return Err(RpcError::Connect(format!("{}: timed out", self.addr))),
                };
            // Raft heartbeats are tiny and latency-bound.
            let _ = stream.set_nodelay(true);
            let (r, w): (
                Box<dyn AsyncRead + Send + Sync + Unpin>,
                Box<dyn AsyncWrite + Send + Sync + Unpin>,
            ) = match &self.tls {
                None => {
                    let (r, w) = stream.into_split();
                    (Box::new(r), Box::new(w))
                }
                Some(tls) => {
                    let connector = tls.connector().ok_or_else(|| {
                        RpcError::Connect(format!(
                            "{}: TLS without a truststore to verify the peer",
                            self.addr
                        ))
                    })?;
                    let tls = crate::tls::connect(&connector, &self.addr, stream)
                        .await
                        .map_err(|e| RpcError::Connect(format!("{}: TLS: {e}", self.addr)))?;
                    let (r, w) = tokio::io::split(tls);
                    (Box::new(r), Box::new(w))
                }
            };
            self.conn = Some((BufReader::new(r), BufWriter::new(w)));
        }
        let Some((r, w)) = self.conn.as_mut() else {
            return Err(RpcError::Connect(self.addr.clone()));
        };
        write_frame(w, frame).await?;
        match read_frame(r).await? {
            Some(payload) => decode_payload(&payload),
            None => Err(RpcError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "peer closed the connection",
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Membership, SnapshotMeta, Vote};

    use super::*;

    fn round_trip_request(req: Request) -> Request {
        let frame = encode_frame(&req).expect("encode");
        let len = u32::from_be_bytes(frame[..4].try_into().expect("4 bytes")) as usize;
        assert_eq!(len, frame.len() - 4);
        decode_payload(&frame[4..]).expect("decode")
    }

    #[test]
    fn openraft_messages_round_trip() {
        let log_id = LogId::new(CommittedLeaderId::new(3, 1), 7);
        let membership = Membership::new(
            vec![[1u64, 2, 3].into()],
            BTreeMap::from([(1u64, openraft::BasicNode::new("127.0.0.1:1"))]),
        );
        let entries: Vec<Entry<TypeConfig>> = vec![
            Entry {
                log_id,
                payload: EntryPayload::Normal(MetadataCommand::FenceBroker { id: 2 }),
            },
            Entry {
                log_id,
                payload: EntryPayload::Membership(membership.clone()),
            },
            Entry {
                log_id,
                payload: EntryPayload::Blank,
            },
        ];
        let req = Request::AppendEntries(AppendEntriesRequest {
            vote: Vote::new_committed(3, 1),
            prev_log_id: Some(log_id),
            leader_commit: None,
            entries: entries.clone(),
        });
        match round_trip_request(req) {
            Request::AppendEntries(a) => {
                assert_eq!(a.entries.len(), 3);
                assert_eq!(a.prev_log_id, Some(log_id));
                assert_eq!(a.entries[0].payload, entries[0].payload);
            }
            other => panic!("unexpected {other:?}"),
        }
        let snap = Request::InstallSnapshot(InstallSnapshotRequest {
            vote: Vote::new(3, 1),
            meta: SnapshotMeta {
                last_log_id: Some(log_id),
                last_membership: openraft::StoredMembership::new(Some(log_id), membership),
                snapshot_id: "7-x".into(),
            },
            offset: 5,
            data: vec![1, 2, 3],
            done: true,
        });
        assert!(
            matches!(round_trip_request(snap), Request::InstallSnapshot(s) if s.data == vec![1, 2, 3] && s.done)
        );
        let resp = Response::Proposed {
            index: 9,
            result: CommandResult::ProducerIds { first: 5 },
        };
        let frame = encode_frame(&resp).expect("encode");
        assert!(matches!(
            decode_payload::<Response>(&frame[4..]),
            Ok(Response::Proposed { index: 9, .. })
        ));
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        assert!(decode_payload::<Request>(&[]).is_err());
        assert!(decode_payload::<Request>(&[99, 0]).is_err());
        // A huge length prefix inside the body must not allocate it.
        let mut huge = vec![PROTOCOL_VERSION, 0];
        huge.extend_from_slice(&[0xff; 16]);
        assert!(decode_payload::<Request>(&huge).is_err());
        // Deterministic pseudo-random bodies.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..2000usize {
            let mut body = vec![PROTOCOL_VERSION];
            for _ in 0..(len % 97) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                body.push(x as u8);
            }
            let _ = decode_payload::<Request>(&body);
            let _ = decode_payload::<Response>(&body);
        }
    }

    #[tokio::test]
    async fn oversized_and_truncated_frames_are_refused() {
        let mut too_big: &[u8] = &((MAX_FRAME as u32 + 1).to_be_bytes());
        assert!(matches!(
            read_frame(&mut too_big).await,
            Err(RpcError::BadFrame(_))
        ));
        let mut empty: &[u8] = &[0, 0, 0, 0];
        assert!(read_frame(&mut empty).await.is_err());
        let mut truncated: &[u8] = &[0, 0, 0, 9, 1, 2];
        assert!(matches!(
            read_frame(&mut truncated).await,
            Err(RpcError::Io(_))
        ));
        let mut eof: &[u8] = &[];
        assert!(matches!(read_frame(&mut eof).await, Ok(None)));
    }

    #[test]
    fn messages_over_the_limit_are_refused_before_sending() {
        let big = Request::InstallSnapshot(InstallSnapshotRequest {
            vote: Vote::new(1, 1),
            meta: SnapshotMeta::default(),
            offset: 0,
            data: vec![0; MAX_FRAME],
            done: true,
        });
        assert!(matches!(encode_frame(&big), Err(RpcError::TooLarge(_))));
    }
}
