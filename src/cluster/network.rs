//! The Raft transport. For now there is none: this factory answers every RPC with
//! `Unreachable`.
//!
//! That is enough for the single-node cluster, where the only voter never sends an RPC.
//! It is not enough for several nodes: a multi-voter membership would keep trying to
//! reach its peers and never commit. The internal listener of DESIGN decision 8
//! (length-prefixed frames over the internal port) replaces this module in issue 4.

use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{RaftNetwork, RaftNetworkFactory};
use thiserror::Error;

use super::types::{Node, NodeId, TypeConfig};

/// Why every RPC fails: there is no transport yet.
#[derive(Debug, Error)]
#[error("no Raft transport to node {0}: the internal listener is not implemented yet")]
pub struct NoTransport(pub NodeId);

/// Creates [`Disconnected`] clients for every peer.
#[derive(Debug, Clone, Default)]
pub struct NetworkFactory;

/// A client whose every RPC fails with `Unreachable`, so openraft backs off and retries.
#[derive(Debug)]
pub struct Disconnected {
    target: NodeId,
}

impl Disconnected {
    fn unreachable<E: std::error::Error>(&self) -> RPCError<NodeId, Node, E> {
        RPCError::Unreachable(Unreachable::new(&NoTransport(self.target)))
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = Disconnected;

    async fn new_client(&mut self, target: NodeId, _node: &Node) -> Disconnected {
        Disconnected { target }
    }
}

impl RaftNetwork<TypeConfig> for Disconnected {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        Err(self.unreachable())
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Node, RaftError<NodeId, InstallSnapshotError>>,
    > {
        Err(self.unreachable())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        Err(self.unreachable())
    }
}
