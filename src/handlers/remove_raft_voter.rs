//! RemoveRaftVoter (key 81), v0 (KIP-853): demote a voter of the metadata quorum to a
//! learner. The node keeps following the metadata log and stays a broker; to take it
//! out of the cluster, stop it and unregister it (UnregisterBroker). Removing the last
//! voter is refused; removing the Raft leader makes it step down once the change is
//! committed. Unknown voters get VOTER_NOT_FOUND.

use kafka_protocol::messages::{RemoveRaftVoterRequest, RemoveRaftVoterResponse};
use kafka_protocol::protocol::VersionRange;

use super::util::change_voter;
use super::Ctx;
use crate::cluster::QuorumChange;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(ctx: &Ctx, req: RemoveRaftVoterRequest) -> RemoveRaftVoterResponse {
    let change = |id| QuorumChange::RemoveVoter { id };
    let (code, message) = change_voter(ctx, req.cluster_id.as_deref(), req.voter_id, change).await;
    RemoveRaftVoterResponse::default()
        .with_error_code(code)
        .with_error_message(message)
}
