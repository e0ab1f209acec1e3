//! Proposing metadata commands: on the Raft leader directly, from any other node
//! forwarded to it over the internal listener, and the internal RPCs each node answers
//! (forwarded proposals, heartbeats, linearizable reads).

use super::*;

impl Controller {
    /// The leader's commit index, confirmed with a quorum.
    pub(super) async fn read_index(&self) -> Result<u64, String> {
        let leader = self.raft.metrics().borrow().current_leader;
        match leader {
            None => Err("no leader known".into()),
            Some(l) if l == self.node_id => match self.local_read_index().await {
                Response::ReadIndex { index } => Ok(index),
                other => Err(format!("{other:?}")),
            },
            Some(l) => match self.call_leader(l, Request::ReadIndex).await {
                Ok(Response::ReadIndex { index }) => Ok(index),
                Ok(other) => Err(format!("leader {l} answered {other:?}")),
                Err(e) => Err(format!("leader {l}: {e}")),
            },
        }
    }

    pub(super) async fn local_read_index(&self) -> Response {
        match self.raft.ensure_linearizable().await {
            Ok(log_id) => Response::ReadIndex {
                index: log_id.map_or(0, |l| l.index),
            },
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                Response::NotLeader {
                    leader: f.leader_id,
                }
            }
            Err(e) => Response::Error(e.to_string()),
        }
    }

    /// Commit a command through Raft and return its result once applied locally
    /// (the image returned by `image()` afterwards reflects it). On a follower the command
    /// is forwarded to the leader; while no leader is known this retries for a while and
    /// then fails with `NotLeader`.
    pub async fn propose(&self, cmd: MetadataCommand) -> Result<CommandResult, ClusterError> {
        let deadline = Instant::now() + PROPOSE_TIMEOUT;
        loop {
            let hint = match self.raft.client_write(cmd.clone()).await {
                Ok(resp) => return Ok(resp.data),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => f,
                Err(RaftError::APIError(e)) => return Err(ClusterError::Raft(e.to_string())),
                Err(RaftError::Fatal(f)) => return Err(fatal_err(f)),
            };
            if self.quorum.is_none() {
                return Err(ClusterError::NotLeader);
            }
            if let Some(leader) = hint.leader_id.filter(|l| *l != self.node_id) {
                match self
                    .call_leader(leader, Request::Propose(cmd.clone()))
                    .await
                {
                    Ok(Response::Proposed { index, result }) => {
                        let left = deadline
                            .saturating_duration_since(Instant::now())
                            .max(Duration::from_secs(1));
                        if let Err(e) = self
                            .raft
                            .wait(Some(left))
                            .applied_index_at_least(Some(index), "forwarded proposal applied")
                            .await
                        {
                            // Committed on the leader all the same: report its result.
                            tracing::warn!(index, error = %e, "forwarded proposal not applied here yet");
                        }
                        return Ok(result);
                    }
                    // Leadership moved, or the leader is down: ask again below.
                    Ok(Response::NotLeader { .. }) | Err(RpcError::Connect(_)) => {}
                    Ok(Response::Error(e)) => return Err(ClusterError::Raft(e)),
                    Ok(other) => {
                        return Err(ClusterError::Raft(format!(
                            "unexpected answer from the controller: {other:?}"
                        )))
                    }
                    // The command may or may not have been committed: never send it twice.
                    Err(RpcError::Timeout) => return Err(ClusterError::Timeout),
                    Err(e) => {
                        return Err(ClusterError::Raft(format!(
                            "lost the controller while proposing (outcome unknown): {e}"
                        )))
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(ClusterError::NotLeader);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Commit a decision this node took as the leader of `term` (fencing or unfencing a
    /// broker from its own heartbeat bookkeeping). Never forwarded: once this node has
    /// lost that leadership its view of broker liveness is stale, and a deposed
    /// controller that forwarded its decisions would fence brokers the new controller
    /// hears from (seen after a network partition healed: every broker fenced at once,
    /// and clients left with no broker in Metadata).
    pub(in crate::cluster) async fn propose_as_leader(
        &self,
        term: u64,
        cmd: MetadataCommand,
    ) -> Result<CommandResult, ClusterError> {
        let current = self.raft.metrics().borrow().current_term;
        if current != term {
            return Err(ClusterError::NotLeader);
        }
        match self.raft.client_write(cmd).await {
            Ok(resp) => Ok(resp.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                Err(ClusterError::NotLeader)
            }
            Err(RaftError::APIError(e)) => Err(ClusterError::Raft(e.to_string())),
            Err(RaftError::Fatal(f)) => Err(fatal_err(f)),
        }
    }

    /// Send a request to the node `leader` over a pooled connection.
    pub(in crate::cluster) async fn call_leader(
        &self,
        leader: NodeId,
        req: Request,
    ) -> Result<Response, RpcError> {
        let addr = {
            let m = self.raft.metrics();
            let m = m.borrow();
            m.membership_config
                .membership()
                .get_node(&leader)
                .map(|n| n.addr.clone())
        };
        let addr = match addr {
            Some(a) if !a.is_empty() => a,
            _ => return Err(RpcError::Connect(format!("node {leader} has no address"))),
        };
        let pooled = {
            let mut peers = self.peers.lock();
            peers
                .iter()
                .position(|c| c.addr() == addr)
                .map(|i| peers.swap_remove(i))
        };
        let mut client = pooled.unwrap_or_else(|| RpcClient::new(addr, self.rpc_tls()));
        let result = client.call(&req, FORWARD_TIMEOUT).await;
        if result.is_ok() {
            let mut peers = self.peers.lock();
            // A handful of idle connections is plenty: requests are short and rare.
            if peers.len() < 8 {
                peers.push(client);
            }
        }
        result
    }

    /// Serve one request from a peer (see [`super::server`]).
    pub(crate) async fn handle_rpc(&self, req: Request) -> Response {
        fn raft_error<E: serde::Serialize>(e: &E) -> Response {
            match serde_json::to_string(e) {
                Ok(json) => Response::RaftError(json),
                Err(e) => Response::Error(format!("cannot encode a raft error: {e}")),
            }
        }
        match req {
            Request::AppendEntries(r) => match self.raft.append_entries(r).await {
                Ok(r) => Response::AppendEntries(r),
                Err(e) => raft_error(&e),
            },
            Request::Vote(r) => match self.raft.vote(r).await {
                Ok(r) => Response::Vote(r),
                Err(e) => raft_error(&e),
            },
            Request::InstallSnapshot(r) => match self.raft.install_snapshot(r).await {
                Ok(r) => Response::InstallSnapshot(r),
                Err(e) => raft_error(&e),
            },
            Request::Propose(cmd) => match self.raft.client_write(cmd).await {
                Ok(resp) => Response::Proposed {
                    index: resp.log_id.index,
                    result: resp.data,
                },
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                    Response::NotLeader {
                        leader: f.leader_id,
                    }
                }
                Err(e) => Response::Error(e.to_string()),
            },
            Request::ReadIndex => self.local_read_index().await,
            Request::BrokerHeartbeat { broker_id, applied } => {
                self.on_heartbeat(broker_id, applied).await
            }
            Request::ChangeQuorum(change) => {
                match crate::cluster::membership::apply(&self.raft, &self.image(), &change).await {
                    Err(crate::cluster::membership::QuorumRefusal::NotLeader) => {
                        Response::NotLeader {
                            leader: self.raft.metrics().borrow().current_leader,
                        }
                    }
                    r => Response::QuorumChanged(r),
                }
            }
            Request::DescribeQuorum => match crate::cluster::membership::status(&self.raft) {
                Some(s) => Response::Quorum(s),
                None => Response::NotLeader {
                    leader: self.raft.metrics().borrow().current_leader,
                },
            },
        }
    }
}
