//! `weir elect`: leader elections as `kafka-leader-election.sh` runs them (ElectLeaders):
//! preferred (move leadership back to the first replica) or unclean (let an out-of-sync
//! replica lead a partition that has no in-sync leader, accepting data loss).

use std::collections::BTreeMap;

use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use super::table::render;
use super::{check, error_text, Admin, CliError, Report};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ElectionType {
    Preferred,
    Unclean,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ElectArgs {
    /// The kind of election.
    #[arg(long = "type", value_enum, default_value_t = ElectionType::Preferred)]
    pub kind: ElectionType,
    /// TOPIC or TOPIC:P,P,... (repeatable).
    #[arg(long = "topic", short = 't')]
    pub topics: Vec<String>,
    /// Every partition of the cluster.
    #[arg(long, conflicts_with = "topics")]
    pub all: bool,
}

pub async fn run(admin: &mut Admin, args: &ElectArgs) -> Result<Report, CliError> {
    if args.topics.is_empty() && !args.all {
        return Err(CliError::Usage(
            "name partitions with --topic TOPIC[:P,P] or give --all".into(),
        ));
    }
    let v = admin.version(ApiKey::ElectLeaders, 1, 2)?;
    let partitions = if args.all {
        None
    } else {
        let mut wanted: BTreeMap<String, Option<Vec<i32>>> = BTreeMap::new();
        for spec in &args.topics {
            let (t, ps) = match spec.split_once(':') {
                None => (spec.clone(), None),
                Some((t, ps)) => (
                    t.to_string(),
                    Some(
                        ps.split(',')
                            .map(|p| {
                                p.trim().parse::<i32>().map_err(|_| {
                                    CliError::Usage(format!("bad partition {p:?} in {spec:?}"))
                                })
                            })
                            .collect::<Result<Vec<_>, _>>()?,
                    ),
                ),
            };
            wanted.insert(t, ps);
        }
        // A whole topic: every partition Metadata knows for it.
        let md = admin
            .metadata(Some(wanted.keys().cloned().collect()))
            .await?;
        let mut out = Vec::new();
        for (t, ps) in wanted {
            let ps = match ps {
                Some(ps) => ps,
                None => {
                    let topic = md
                        .topics
                        .iter()
                        .find(|mt| mt.name.as_deref().map(|n| n.as_str()) == Some(t.as_str()));
                    match topic {
                        Some(mt) if mt.error_code == 0 => {
                            mt.partitions.iter().map(|p| p.partition_index).collect()
                        }
                        Some(mt) => {
                            return Err(CliError::Kafka(format!(
                                "{t}: {}",
                                error_text(mt.error_code, None)
                            )))
                        }
                        None => Vec::new(),
                    }
                }
            };
            out.push(
                TopicPartitions::default()
                    .with_topic(TopicName(StrBytes::from_string(t)))
                    .with_partitions(ps),
            );
        }
        Some(out)
    };
    let req = ElectLeadersRequest::default()
        .with_election_type(match args.kind {
            ElectionType::Preferred => 0,
            ElectionType::Unclean => 1,
        })
        .with_topic_partitions(partitions)
        .with_timeout_ms(admin.timeout.as_millis() as i32);
    let r: ElectLeadersResponse = admin.call(ApiKey::ElectLeaders, v, &req).await?;
    check(r.error_code, None)?;
    let mut rows = Vec::new();
    let mut json = Vec::new();
    let mut failed = Vec::new();
    for t in &r.replica_election_results {
        for p in &t.partition_result {
            // ELECTION_NOT_NEEDED: the right leader leads already.
            let outcome = match p.error_code {
                0 => "elected".to_string(),
                84 => "not needed".to_string(),
                code => {
                    let e = error_text(code, p.error_message.as_deref());
                    failed.push(format!("{}-{}: {e}", t.topic.as_str(), p.partition_id));
                    e
                }
            };
            rows.push(vec![
                t.topic.to_string(),
                p.partition_id.to_string(),
                outcome.clone(),
            ]);
            json.push(json!({"topic": t.topic.to_string(), "partition": p.partition_id, "outcome": outcome}));
        }
    }
    rows.sort();
    if !failed.is_empty() {
        return Err(CliError::Kafka(failed.join("\n")));
    }
    Ok(Report::new(
        render(&["TOPIC", "PARTITION", "OUTCOME"], &rows),
        json!(json),
    ))
}
