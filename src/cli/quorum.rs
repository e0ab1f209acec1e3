//! `weir quorum ...`: the operator's side of growing and shrinking a cluster, the way
//! Kafka's `kafka-metadata-quorum.sh` and `kafka-cluster.sh unregister` do it — by
//! sending DescribeQuorum, AddRaftVoter, RemoveRaftVoter and UnregisterBroker to any
//! broker's client listener, which forwards them to the Raft leader. (Kafka's own tools
//! work against Weir too; this one needs no Java.)

use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use super::{check, Admin, CliError, Report};

/// What to ask the quorum.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum QuorumCommand {
    /// Leader, term, voters and observers (learners) with their log end offsets.
    Describe,
    /// Promote node ID, which follows the metadata log as a learner, to voter.
    AddVoter { id: i32 },
    /// Demote voter ID to learner (it stays a broker).
    RemoveVoter { id: i32 },
    /// Forget stopped broker ID (no replicas left, not a voter).
    UnregisterBroker { id: i32 },
}

/// Run `cmd` through the bootstrap broker, which forwards it to the Raft leader.
pub async fn run(c: &mut Admin, cmd: &QuorumCommand) -> Result<Report, CliError> {
    let timeout_ms = c.timeout.as_millis() as i32;
    let (code, message) = match cmd {
        QuorumCommand::Describe => return describe(c).await,
        QuorumCommand::AddVoter { id } => {
            let req = AddRaftVoterRequest::default()
                .with_voter_id(*id)
                .with_timeout_ms(timeout_ms);
            let r: AddRaftVoterResponse = c.call(ApiKey::AddRaftVoter, 0, &req).await?;
            (r.error_code, r.error_message)
        }
        QuorumCommand::RemoveVoter { id } => {
            let req = RemoveRaftVoterRequest::default().with_voter_id(*id);
            let r: RemoveRaftVoterResponse = c.call(ApiKey::RemoveRaftVoter, 0, &req).await?;
            (r.error_code, r.error_message)
        }
        QuorumCommand::UnregisterBroker { id } => {
            let req = UnregisterBrokerRequest::default().with_broker_id(BrokerId(*id));
            let r: UnregisterBrokerResponse = c.call(ApiKey::UnregisterBroker, 0, &req).await?;
            (r.error_code, r.error_message)
        }
    };
    check(code, message)?;
    Ok(Report::new("done", json!({"ok": true})))
}

async fn describe(c: &mut Admin) -> Result<Report, CliError> {
    let req = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
        .with_partitions(vec![PartitionData::default()])]);
    let v = c.version(ApiKey::DescribeQuorum, 2, 2)?;
    let r: DescribeQuorumResponse = c.call(ApiKey::DescribeQuorum, v, &req).await?;
    check(r.error_code, r.error_message)?;
    let p = r
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or_else(|| CliError::Kafka("empty DescribeQuorum response".into()))?;
    check(p.error_code, p.error_message.clone())?;
    let addr = |id: i32| {
        r.nodes
            .iter()
            .find(|n| n.node_id.0 == id)
            .and_then(|n| n.listeners.first())
            .map(|l| format!("{}:{}", l.host, l.port))
            .unwrap_or_else(|| "?".into())
    };
    let mut out = format!(
        "leader {}  term {}  high watermark {}\n",
        p.leader_id.0, p.leader_epoch, p.high_watermark
    );
    let mut replicas = Vec::new();
    for (role, list) in [("voter", &p.current_voters), ("observer", &p.observers)] {
        for v in list {
            out.push_str(&format!(
                "{role:<9} {:>4}  {:<22} log end offset {}\n",
                v.replica_id.0,
                addr(v.replica_id.0),
                v.log_end_offset
            ));
            replicas.push(json!({
                "role": role,
                "id": v.replica_id.0,
                "address": addr(v.replica_id.0),
                "log_end_offset": v.log_end_offset,
            }));
        }
    }
    let json = json!({
        "leader": p.leader_id.0,
        "term": p.leader_epoch,
        "high_watermark": p.high_watermark,
        "replicas": replicas,
    });
    Ok(Report::new(out.trim_end(), json))
}
