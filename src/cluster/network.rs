//! The Raft transport: openraft's `RaftNetwork` over the internal protocol ([`super::rpc`]).
//!
//! One client per target, created by openraft for each replication stream and vote
//! round, each with its own connection that is reopened after any failure. Every call is
//! bounded by openraft's own deadline for it (`RPCOption::hard_ttl`), so a dead peer
//! costs a timeout, never a stuck replication stream. A node without an address (the
//! single self-bootstrapped node, whose membership predates addresses) is unreachable,
//! which is fine: a one-voter cluster never sends an RPC.

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Timeout,
    Unreachable,
};
use openraft::network::{RPCOption, RPCTypes};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{RaftNetwork, RaftNetworkFactory};
use serde::de::DeserializeOwned;
use thiserror::Error;

use super::rpc::{Request, Response, RpcClient, RpcError};
use super::types::{Node, NodeId, TypeConfig};
use crate::tls::TlsListener;

/// A peer answered with something that does not fit the request.
#[derive(Debug, Error)]
#[error("{0}")]
pub struct TransportError(pub String);

/// Creates a [`PeerClient`] per target from the address in the membership.
#[derive(Clone, Default)]
pub struct NetworkFactory {
    /// This node, to name the source of timeouts.
    pub node_id: NodeId,
    /// The CONTROLLER listener's TLS, when it has any: peers are dialled with it too.
    pub tls: Option<Arc<TlsListener>>,
}

/// openraft's client for one peer.
pub struct PeerClient {
    source: NodeId,
    target: NodeId,
    client: Option<RpcClient>,
    /// The last call failed because its request did not fit in a frame.
    last_too_large: bool,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> PeerClient {
        PeerClient {
            source: self.node_id,
            target,
            client: (!node.addr.is_empty())
                .then(|| RpcClient::new(node.addr.clone(), self.tls.clone())),
            last_too_large: false,
        }
    }
}

impl PeerClient {
    async fn call<E>(
        &mut self,
        req: Request,
        action: RPCTypes,
        ttl: Duration,
    ) -> Result<Response, RPCError<NodeId, Node, E>>
    where
        E: std::error::Error,
    {
        let Some(client) = self.client.as_mut() else {
            return Err(RPCError::Unreachable(Unreachable::new(&TransportError(
                format!("node {} has no address", self.target),
            ))));
        };
        let result = client.call(&req, ttl).await;
        self.last_too_large = matches!(result, Err(RpcError::TooLarge(_)));
        // openraft logs every failed call (many a second while a node is down); its
        // replication logs are off by default and this says it once.
        match &result {
            Ok(_) => crate::peer_log::reached("raft", self.target as i64),
            Err(RpcError::Connect(_) | RpcError::Timeout) => {
                crate::peer_log::failed("raft", self.target as i64, result.as_ref().err().unwrap())
            }
            Err(_) => {}
        }
        match result {
            Ok(resp) => Ok(resp),
            Err(RpcError::Timeout) => Err(RPCError::Timeout(Timeout {
                action,
                id: self.source,
                target: self.target,
                timeout: ttl,
            })),
            Err(e @ RpcError::Connect(_)) => Err(RPCError::Unreachable(Unreachable::new(&e))),
            Err(e) => Err(RPCError::Network(NetworkError::new(&e))),
        }
    }

    /// The remote Raft error, or a network error if it does not decode.
    fn remote<E>(&self, json: &str) -> RPCError<NodeId, Node, RaftError<NodeId, E>>
    where
        E: std::error::Error + DeserializeOwned,
    {
        match serde_json::from_str::<RaftError<NodeId, E>>(json) {
            Ok(e) => RPCError::RemoteError(RemoteError::new(self.target, e)),
            Err(d) => RPCError::Network(NetworkError::new(&TransportError(format!(
                "undecodable raft error from node {}: {d}",
                self.target
            )))),
        }
    }

    fn unexpected<E: std::error::Error>(&self, resp: &Response) -> RPCError<NodeId, Node, E> {
        RPCError::Network(NetworkError::new(&TransportError(format!(
            "unexpected answer from node {}: {}",
            self.target,
            variant_name(resp)
        ))))
    }
}

fn variant_name(resp: &Response) -> &'static str {
    match resp {
        Response::AppendEntries(_) => "AppendEntries",
        Response::Vote(_) => "Vote",
        Response::InstallSnapshot(_) => "InstallSnapshot",
        Response::RaftError(_) => "RaftError",
        Response::Proposed { .. } => "Proposed",
        Response::ReadIndex { .. } => "ReadIndex",
        Response::Heartbeat { .. } => "Heartbeat",
        Response::NotLeader { .. } => "NotLeader",
        Response::Error(_) => "Error",
        Response::QuorumChanged(_) => "QuorumChanged",
        Response::Quorum(_) => "Quorum",
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        let ttl = option.hard_ttl();
        let entries = rpc.entries.len() as u64;
        let resp = self
            .call(Request::AppendEntries(rpc), RPCTypes::AppendEntries, ttl)
            .await;
        // A batch that does not fit in a frame: openraft retries with fewer entries.
        if let Err(RPCError::Network(_)) = &resp {
            if self.last_too_large && entries > 1 {
                return Err(RPCError::PayloadTooLarge(
                    PayloadTooLarge::new_entries_hint(entries / 2),
                ));
            }
        }
        match resp? {
            Response::AppendEntries(r) => Ok(r),
            Response::RaftError(e) => Err(self.remote(&e)),
            other => Err(self.unexpected(&other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Node, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let ttl = option.hard_ttl();
        match self
            .call(
                Request::InstallSnapshot(rpc),
                RPCTypes::InstallSnapshot,
                ttl,
            )
            .await?
        {
            Response::InstallSnapshot(r) => Ok(r),
            Response::RaftError(e) => Err(self.remote(&e)),
            other => Err(self.unexpected(&other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        let ttl = option.hard_ttl();
        match self.call(Request::Vote(rpc), RPCTypes::Vote, ttl).await? {
            Response::Vote(r) => Ok(r),
            Response::RaftError(e) => Err(self.remote(&e)),
            other => Err(self.unexpected(&other)),
        }
    }
}
