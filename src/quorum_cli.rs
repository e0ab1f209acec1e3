//! `weir quorum ...`: the operator's side of growing and shrinking a cluster, the way
//! Kafka's `kafka-metadata-quorum.sh` and `kafka-cluster.sh unregister` do it — by
//! sending DescribeQuorum, AddRaftVoter, RemoveRaftVoter and UnregisterBroker to any
//! broker's client listener, which forwards them to the Raft leader. (Kafka's own tools
//! work against Weir too; this one needs no Java.)

use std::time::Duration;

use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::errors::KafkaError;
use crate::replica::client::BrokerClient;

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

const TIMEOUT: Duration = Duration::from_secs(30);

/// Run `cmd` against the broker at `bootstrap` (`host:port`); the text to print, or why
/// it failed.
pub async fn run(bootstrap: &str, cmd: &QuorumCommand) -> Result<String, String> {
    let mut c = BrokerClient::connect(bootstrap, "weir-quorum".into(), TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    let (code, message) = match cmd {
        QuorumCommand::Describe => return describe(&mut c).await,
        QuorumCommand::AddVoter { id } => {
            let req = AddRaftVoterRequest::default()
                .with_voter_id(*id)
                .with_timeout_ms(TIMEOUT.as_millis() as i32);
            let r: AddRaftVoterResponse = c
                .call(ApiKey::AddRaftVoter, 0, &req, TIMEOUT)
                .await
                .map_err(|e| e.to_string())?;
            (r.error_code, r.error_message)
        }
        QuorumCommand::RemoveVoter { id } => {
            let req = RemoveRaftVoterRequest::default().with_voter_id(*id);
            let r: RemoveRaftVoterResponse = c
                .call(ApiKey::RemoveRaftVoter, 0, &req, TIMEOUT)
                .await
                .map_err(|e| e.to_string())?;
            (r.error_code, r.error_message)
        }
        QuorumCommand::UnregisterBroker { id } => {
            let req = UnregisterBrokerRequest::default().with_broker_id(BrokerId(*id));
            let r: UnregisterBrokerResponse = c
                .call(ApiKey::UnregisterBroker, 0, &req, TIMEOUT)
                .await
                .map_err(|e| e.to_string())?;
            (r.error_code, r.error_message)
        }
    };
    match code {
        0 => Ok("done".into()),
        _ => Err(error_text(code, message)),
    }
}

async fn describe(c: &mut BrokerClient) -> Result<String, String> {
    let req = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
        .with_partitions(vec![PartitionData::default()])]);
    let r: DescribeQuorumResponse = c
        .call(ApiKey::DescribeQuorum, 2, &req, TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    if r.error_code != 0 {
        return Err(error_text(r.error_code, r.error_message));
    }
    let p = r
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or("empty DescribeQuorum response")?;
    if p.error_code != 0 {
        return Err(error_text(p.error_code, p.error_message.clone()));
    }
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
    for (role, list) in [("voter", &p.current_voters), ("observer", &p.observers)] {
        for v in list {
            out.push_str(&format!(
                "{role:<9} {:>4}  {:<22} log end offset {}\n",
                v.replica_id.0,
                addr(v.replica_id.0),
                v.log_end_offset
            ));
        }
    }
    Ok(out.trim_end().to_string())
}

fn error_text(code: i16, message: Option<StrBytes>) -> String {
    let message = message.map(|m| m.to_string()).filter(|m| !m.is_empty());
    KafkaError { code, message }.to_string()
}
