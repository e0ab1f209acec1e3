//! AddRaftVoter (key 80), v0 (KIP-853): promote a node that follows the metadata log
//! (a learner, Kafka's observer) to a voter of the metadata quorum. The node must have
//! started with `process.roles=broker,controller` and registered; the change is
//! forwarded to the Raft leader and answered once committed. A `cluster_id` that is
//! not this cluster's gets INCONSISTENT_CLUSTER_ID. The listeners in the request are
//! not needed: the node gave its CONTROLLER address when it joined as a learner.

use kafka_protocol::messages::{AddRaftVoterRequest, AddRaftVoterResponse};
use kafka_protocol::protocol::VersionRange;

use super::util::{check_cluster_id, node_id, s};
use super::Ctx;
use crate::cluster::QuorumChange;
use crate::errors::KafkaError;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(ctx: &Ctx, req: AddRaftVoterRequest) -> AddRaftVoterResponse {
    let outcome = match (
        check_cluster_id(ctx, req.cluster_id.as_deref()),
        node_id(req.voter_id),
    ) {
        (Err(e), _) | (_, Err(e)) => Err(e),
        (Ok(()), Ok(id)) => ctx
            .state
            .controller
            .change_quorum(QuorumChange::AddVoter { id })
            .await
            .map_err(|e| KafkaError::from(&e)),
    };
    match outcome {
        Ok(()) => AddRaftVoterResponse::default().with_error_message(None),
        Err(e) => {
            ctx.note_error(e.code);
            AddRaftVoterResponse::default()
                .with_error_code(e.code)
                .with_error_message(e.message.as_deref().map(s))
        }
    }
}
