//! `weir reassign`: partition reassignment as `kafka-reassign-partitions.sh` does it,
//! from a plan in Kafka's JSON format (`{"version":1,"partitions":[{"topic":"t",
//! "partition":0,"replicas":[1,2,3],"log_dirs":["any","/data2","any"]}]}`): `--execute`
//! starts it (AlterPartitionReassignments, and AlterReplicaLogDirs on each broker for
//! the replicas given a directory), `--verify` checks that every partition has its target
//! replicas in their directories and nothing is still moving (exit code 4 while not), `--cancel` stops it, and
//! `--list` shows what is moving now (ListPartitionReassignments).

use std::collections::BTreeMap;
use std::path::PathBuf;

use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use serde::Deserialize;
use serde_json::json;

use super::table::{ids, render};
use super::{check, error_text, Admin, CliError, Report};

#[derive(Debug, Clone, clap::Args)]
pub struct ReassignArgs {
    /// The plan, in kafka-reassign-partitions.sh's JSON format.
    #[arg(long = "plan", value_name = "FILE", required_unless_present = "list")]
    pub plan: Option<PathBuf>,
    /// What to do with it.
    #[command(flatten)]
    pub action: Action,
}

#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
pub struct Action {
    /// Start moving the replicas.
    #[arg(long)]
    pub execute: bool,
    /// Check whether the plan is complete.
    #[arg(long)]
    pub verify: bool,
    /// Stop the plan's reassignments where they are.
    #[arg(long)]
    pub cancel: bool,
    /// Show every reassignment in progress.
    #[arg(long)]
    pub list: bool,
}

/// One entry of a plan.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Move {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<i32>,
    /// The log directory of each replica ("any": the broker chooses), as in Kafka's
    /// plans; moved with AlterReplicaLogDirs on each broker.
    #[serde(default)]
    pub log_dirs: Option<Vec<String>>,
}

impl Move {
    /// (broker, directory) for every replica given a directory.
    fn dirs(&self) -> Vec<(i32, &str)> {
        self.log_dirs
            .iter()
            .flat_map(|d| {
                self.replicas
                    .iter()
                    .copied()
                    .zip(d.iter().map(String::as_str))
            })
            .filter(|(_, d)| *d != "any")
            .collect()
    }
}

#[derive(Debug, Deserialize)]
struct Plan {
    version: i32,
    partitions: Vec<Move>,
}

/// Parse and check a plan.
pub fn parse_plan(text: &str) -> Result<Vec<Move>, CliError> {
    let plan: Plan = serde_json::from_str(text).map_err(|e| {
        CliError::Usage(format!("the plan is not valid JSON of Kafka's format: {e}"))
    })?;
    if plan.version != 1 {
        return Err(CliError::Usage(format!(
            "plan version {} (only version 1 exists)",
            plan.version
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    for m in &plan.partitions {
        if !seen.insert((m.topic.clone(), m.partition)) {
            return Err(CliError::Usage(format!(
                "{}-{} appears twice in the plan",
                m.topic, m.partition
            )));
        }
        if m.replicas.is_empty() {
            return Err(CliError::Usage(format!(
                "{}-{}: an empty replica list",
                m.topic, m.partition
            )));
        }
        if m.log_dirs
            .as_ref()
            .is_some_and(|d| d.len() != m.replicas.len())
        {
            return Err(CliError::Usage(format!(
                "{}-{}: log_dirs must name one directory (or \"any\") per replica",
                m.topic, m.partition
            )));
        }
        let mut r = m.replicas.clone();
        r.sort_unstable();
        r.dedup();
        if r.len() != m.replicas.len() {
            return Err(CliError::Usage(format!(
                "{}-{}: a broker is listed twice in {:?}",
                m.topic, m.partition, m.replicas
            )));
        }
    }
    Ok(plan.partitions)
}

pub async fn run(admin: &mut Admin, args: &ReassignArgs) -> Result<Report, CliError> {
    if args.action.list {
        return list(admin).await;
    }
    let path = args.plan.as_ref().expect("clap requires --plan");
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    let plan = parse_plan(&text)?;
    if args.action.verify {
        return verify(admin, &plan).await;
    }
    alter(admin, &plan, args.action.cancel).await
}

async fn alter(admin: &mut Admin, plan: &[Move], cancel: bool) -> Result<Report, CliError> {
    let v = admin.version(ApiKey::AlterPartitionReassignments, 0, 0)?;
    let mut by_topic: BTreeMap<&str, Vec<ReassignablePartition>> = BTreeMap::new();
    for m in plan {
        by_topic.entry(&m.topic).or_default().push(
            ReassignablePartition::default()
                .with_partition_index(m.partition)
                .with_replicas(
                    (!cancel).then(|| m.replicas.iter().map(|r| BrokerId(*r)).collect()),
                ),
        );
    }
    let req = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(admin.timeout.as_millis() as i32)
        .with_topics(
            by_topic
                .into_iter()
                .map(|(t, ps)| {
                    ReassignableTopic::default()
                        .with_name(TopicName(StrBytes::from_string(t.to_string())))
                        .with_partitions(ps)
                })
                .collect(),
        );
    let r: AlterPartitionReassignmentsResponse = admin
        .call(ApiKey::AlterPartitionReassignments, v, &req)
        .await?;
    check(r.error_code, r.error_message)?;
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for t in &r.responses {
        for p in &t.partitions {
            let outcome = match p.error_code {
                0 if cancel => "cancelled".to_string(),
                0 => "started".to_string(),
                code => {
                    let e = error_text(code, p.error_message.as_deref());
                    failed.push(format!("{}-{}: {e}", t.name.as_str(), p.partition_index));
                    e
                }
            };
            rows.push(vec![
                t.name.to_string(),
                p.partition_index.to_string(),
                outcome,
            ]);
        }
    }
    if !cancel {
        for m in plan {
            for (broker, dir) in m.dirs() {
                if let Err(e) = move_dir(admin, broker, m, dir).await {
                    failed.push(format!(
                        "{}-{} to {dir} on broker {broker}: {e}",
                        m.topic, m.partition
                    ));
                }
            }
        }
    }
    if !failed.is_empty() {
        return Err(CliError::Kafka(failed.join("\n")));
    }
    let json = json!(rows
        .iter()
        .map(|r| json!({"topic": r[0], "partition": r[1].parse::<i32>().unwrap_or(-1), "outcome": r[2]}))
        .collect::<Vec<_>>());
    Ok(Report::new(
        render(&["TOPIC", "PARTITION", "OUTCOME"], &rows),
        json,
    ))
}

/// Asks `broker` to keep its replica of `m` in `dir` (AlterReplicaLogDirs).
async fn move_dir(admin: &mut Admin, broker: i32, m: &Move, dir: &str) -> Result<(), CliError> {
    use kafka_protocol::messages::alter_replica_log_dirs_request::{
        AlterReplicaLogDir, AlterReplicaLogDirTopic,
    };
    let v = admin.version(ApiKey::AlterReplicaLogDirs, 1, 2)?;
    let req = AlterReplicaLogDirsRequest::default().with_dirs(vec![AlterReplicaLogDir::default()
        .with_path(StrBytes::from_string(dir.to_string()))
        .with_topics(vec![AlterReplicaLogDirTopic::default()
            .with_name(TopicName(StrBytes::from_string(m.topic.clone())))
            .with_partitions(vec![m.partition])])]);
    let r: AlterReplicaLogDirsResponse = admin
        .call_node(broker, ApiKey::AlterReplicaLogDirs, v, &req)
        .await?;
    for p in r.results.iter().flat_map(|t| &t.partitions) {
        check(p.error_code, None)?;
    }
    Ok(())
}

/// Whether every replica of `m` given a directory is there and not moving.
async fn dirs_settled(admin: &mut Admin, m: &Move) -> Result<bool, CliError> {
    use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
    for (broker, dir) in m.dirs() {
        let v = admin.version(ApiKey::DescribeLogDirs, 1, 4)?;
        let req = DescribeLogDirsRequest::default().with_topics(Some(vec![
            DescribableLogDirTopic::default()
                .with_topic(TopicName(StrBytes::from_string(m.topic.clone())))
                .with_partitions(vec![m.partition]),
        ]));
        let r: DescribeLogDirsResponse = admin
            .call_node(broker, ApiKey::DescribeLogDirs, v, &req)
            .await?;
        let mut in_place = false;
        for d in &r.results {
            for p in d.topics.iter().flat_map(|t| &t.partitions) {
                if p.is_future_key {
                    return Ok(false);
                }
                in_place |= d.log_dir.as_str() == dir;
            }
        }
        if !in_place {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Reassignments in progress: (topic, partition) → (replicas, adding, removing).
async fn ongoing(
    admin: &mut Admin,
) -> Result<BTreeMap<(String, i32), (Vec<i32>, Vec<i32>, Vec<i32>)>, CliError> {
    let v = admin.version(ApiKey::ListPartitionReassignments, 0, 0)?;
    let req = ListPartitionReassignmentsRequest::default()
        .with_timeout_ms(admin.timeout.as_millis() as i32)
        .with_topics(None);
    let r: ListPartitionReassignmentsResponse = admin
        .call(ApiKey::ListPartitionReassignments, v, &req)
        .await?;
    check(r.error_code, r.error_message)?;
    let b = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<_>>();
    Ok(r.topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| {
                (
                    (t.name.to_string(), p.partition_index),
                    (
                        b(&p.replicas),
                        b(&p.adding_replicas),
                        b(&p.removing_replicas),
                    ),
                )
            })
        })
        .collect())
}

async fn list(admin: &mut Admin) -> Result<Report, CliError> {
    let moving = ongoing(admin).await?;
    let rows: Vec<Vec<String>> = moving
        .iter()
        .map(|((t, p), (r, a, rm))| vec![t.clone(), p.to_string(), ids(r), ids(a), ids(rm)])
        .collect();
    let json = json!(moving
        .iter()
        .map(|((t, p), (r, a, rm))| json!({"topic": t, "partition": p, "replicas": r, "adding": a, "removing": rm}))
        .collect::<Vec<_>>());
    Ok(Report::new(
        render(
            &["TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING"],
            &rows,
        ),
        json,
    ))
}

async fn verify(admin: &mut Admin, plan: &[Move]) -> Result<Report, CliError> {
    let moving = ongoing(admin).await?;
    let topics: Vec<String> = plan
        .iter()
        .map(|m| m.topic.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let md = admin.metadata(Some(topics)).await?;
    let mut rows = Vec::new();
    let mut json = Vec::new();
    let mut complete = true;
    for m in plan {
        let current: Option<Vec<i32>> = md
            .topics
            .iter()
            .find(|t| t.name.as_deref().map(|n| n.as_str()) == Some(m.topic.as_str()))
            .and_then(|t| {
                t.partitions
                    .iter()
                    .find(|p| p.partition_index == m.partition)
            })
            .map(|p| p.replica_nodes.iter().map(|b| b.0).collect());
        let status = if moving.contains_key(&(m.topic.clone(), m.partition)) {
            "in progress"
        } else if current.as_ref() == Some(&m.replicas) && !dirs_settled(admin, m).await? {
            "moving between log directories"
        } else if current.as_ref() == Some(&m.replicas) {
            "complete"
        } else if current.is_none() {
            "unknown partition"
        } else {
            "not started or cancelled"
        };
        complete &= status == "complete";
        rows.push(vec![
            m.topic.clone(),
            m.partition.to_string(),
            ids(&m.replicas),
            current.as_deref().map_or("-".into(), ids),
            status.to_string(),
        ]);
        json.push(json!({
            "topic": m.topic, "partition": m.partition, "target": m.replicas,
            "current": current, "status": status,
        }));
    }
    let mut report = Report::new(
        render(
            &["TOPIC", "PARTITION", "TARGET", "CURRENT", "STATUS"],
            &rows,
        ),
        json!({"complete": complete, "partitions": json}),
    );
    report.failed_check = !complete;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_in_kafkas_format_parse_and_bad_ones_are_refused() {
        let plan = parse_plan(
            r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[2,3],"log_dirs":["any","/d2"]}]}"#,
        )
        .unwrap();
        assert_eq!(
            plan,
            vec![Move {
                topic: "t".into(),
                partition: 0,
                replicas: vec![2, 3],
                log_dirs: Some(vec!["any".into(), "/d2".into()]),
            }]
        );
        assert_eq!(plan[0].dirs(), vec![(3, "/d2")]);
        for bad in [
            "not json",
            r#"{"version":2,"partitions":[]}"#,
            r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[]}]}"#,
            r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,1]}]}"#,
            r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2],"log_dirs":["any"]}]}"#,
            r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1]},{"topic":"t","partition":0,"replicas":[2]}]}"#,
        ] {
            assert!(matches!(parse_plan(bad), Err(CliError::Usage(_))), "{bad}");
        }
    }
}
