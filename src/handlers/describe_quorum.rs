//! DescribeQuorum (key 55), v0–v2: the metadata quorum as the Raft leader sees it
//! (`kafka-metadata-quorum.sh describe --status / --replication`). The metadata log is
//! Kafka's `__cluster_metadata`-0: leader id, leader epoch (the Raft term), high
//! watermark (one past the last committed index), and per voter and observer
//! (learner) its log end offset (one past the last index replicated to it, -1 if
//! unknown). Weir does not time replication, so the fetch and caught-up timestamps are
//! -1 (Kafka's "unknown"). v2 adds each node's CONTROLLER listener. Any other topic or
//! partition gets UNKNOWN_TOPIC_OR_PARTITION; without a reachable leader the request
//! gets NOT_CONTROLLER.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{
    BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName,
};
use kafka_protocol::protocol::VersionRange;

use super::util::s;
use super::Ctx;
use crate::cluster::QuorumStatus;
use crate::errors::KafkaError;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

const METADATA_TOPIC: &str = "__cluster_metadata";

pub async fn handle(ctx: &Ctx, req: DescribeQuorumRequest) -> DescribeQuorumResponse {
    if !ctx.authorize_cluster(crate::authorizer::Operation::Describe) {
        let code = kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code();
        ctx.note_error(code);
        return DescribeQuorumResponse::default().with_error_code(code);
    }
    let status = match ctx.state.controller.describe_quorum().await {
        Ok(st) => st,
        Err(e) => {
            let e = KafkaError::from(&e);
            ctx.note_error(e.code);
            return DescribeQuorumResponse::default()
                .with_error_code(e.code)
                .with_error_message(e.message.as_deref().map(s));
        }
    };
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    if t.topic_name.0.as_str() == METADATA_TOPIC && p.partition_index == 0 {
                        partition(&status)
                    } else {
                        let code = ResponseError::UnknownTopicOrPartition.code();
                        ctx.note_error(code);
                        PartitionData::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(code)
                    }
                })
                .collect();
            TopicData::default()
                .with_topic_name(TopicName(t.topic_name.0.clone()))
                .with_partitions(partitions)
        })
        .collect();
    let nodes = if ctx.version >= 2 {
        status
            .voters
            .iter()
            .chain(status.learners.iter())
            .map(|(id, (addr, _))| {
                let listeners = addr
                    .rsplit_once(':')
                    .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
                    .map(|(host, port)| {
                        vec![Listener::default()
                            .with_name(s("CONTROLLER"))
                            .with_host(s(host))
                            .with_port(port)]
                    })
                    .unwrap_or_default();
                Node::default()
                    .with_node_id(BrokerId(*id as i32))
                    .with_listeners(listeners)
            })
            .collect()
    } else {
        Vec::new()
    };
    DescribeQuorumResponse::default()
        .with_error_message(None)
        .with_topics(topics)
        .with_nodes(nodes)
}

fn partition(st: &QuorumStatus) -> PartitionData {
    let replica = |(id, (_, matched)): (&u64, &(String, Option<u64>))| {
        ReplicaState::default()
            .with_replica_id(BrokerId(*id as i32))
            .with_log_end_offset(matched.map_or(-1, |i| i as i64 + 1))
            .with_last_fetch_timestamp(-1)
            .with_last_caught_up_timestamp(-1)
    };
    PartitionData::default()
        .with_partition_index(0)
        .with_error_message(None)
        .with_leader_id(BrokerId(st.leader as i32))
        .with_leader_epoch(st.term as i32)
        .with_high_watermark(st.committed.map_or(0, |i| i as i64 + 1))
        .with_current_voters(st.voters.iter().map(replica).collect())
        .with_observers(st.learners.iter().map(replica).collect())
}
