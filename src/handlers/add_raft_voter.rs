//! AddRaftVoter (key 80), v0 (KIP-853): promote a node that follows the metadata log
//! (a learner, Kafka's observer) to a voter of the metadata quorum. The node must have
//! started with `process.roles=broker,controller` and registered; the change is
//! forwarded to the Raft leader and answered once committed. A `cluster_id` that is
//! not this cluster's gets INCONSISTENT_CLUSTER_ID. The listeners in the request are
//! not needed: the node gave its CONTROLLER address when it joined as a learner.

use kafka_protocol::messages::{AddRaftVoterRequest, AddRaftVoterResponse};
use kafka_protocol::protocol::VersionRange;

use super::util::change_voter;
use super::Ctx;
use crate::cluster::QuorumChange;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(ctx: &Ctx, req: AddRaftVoterRequest) -> AddRaftVoterResponse {
    let change = |id| QuorumChange::AddVoter { id };
    let (code, message) = change_voter(ctx, req.cluster_id.as_deref(), req.voter_id, change).await;
    AddRaftVoterResponse::default()
        .with_error_code(code)
        .with_error_message(message)
}
