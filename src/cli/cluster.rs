//! `weir cluster info|health|describe-config|alter-config|log-level`: the cluster at a glance
//! (DescribeCluster, Metadata), a health check that scripts can gate on (fenced brokers,
//! offline and under-replicated partitions, quorum lag; exit code 4 when unhealthy, as
//! `rpk cluster health` is used), and broker settings and log levels as `kafka-configs.sh
//! --entity-type brokers|broker-loggers` shows and changes them.

use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use super::table::{ids, render};
use super::topic::{alter, describe_config};
use super::{check, parse_pairs, Admin, CliError, Report};

/// Kafka's ConfigResource types for brokers and their loggers.
pub const RESOURCE_BROKER: i8 = 4;
pub const RESOURCE_BROKER_LOGGER: i8 = 8;

#[derive(Debug, Clone, clap::Subcommand)]
pub enum ClusterCommand {
    /// Cluster id, controller and brokers.
    Info,
    /// Fenced brokers, offline and under-replicated partitions, quorum; exit code 4 when
    /// anything is wrong.
    Health,
    /// A broker's settings (BROKER "" is the cluster-wide default).
    DescribeConfig {
        /// Broker id; omit for the cluster-wide dynamic defaults.
        #[arg(long)]
        broker: Option<i32>,
        /// Only the settings changed dynamically.
        #[arg(long)]
        overrides: bool,
    },
    /// A broker's log levels (BROKER_LOGGER, as `kafka-configs.sh --entity-type
    /// broker-loggers`): lists them, or sets TARGET=LEVEL (TRACE, DEBUG, INFO, WARN,
    /// ERROR, OFF; TARGET a module path such as weir::replica, or root) and deletes
    /// targets back to the start filter. Not kept across restarts.
    LogLevel {
        /// Broker id.
        #[arg(long)]
        broker: i32,
        /// TARGET=LEVEL to set.
        #[arg(value_name = "TARGET=LEVEL")]
        set: Vec<String>,
        #[arg(long = "delete", short = 'd', value_name = "TARGET")]
        delete: Vec<String>,
    },
    /// Change broker settings at runtime (IncrementalAlterConfigs).
    AlterConfig {
        /// Broker id; omit to change the cluster-wide default.
        #[arg(long)]
        broker: Option<i32>,
        #[arg(long = "set", short = 's', value_name = "NAME=VALUE")]
        set: Vec<String>,
        #[arg(long = "delete", short = 'd', value_name = "NAME")]
        delete: Vec<String>,
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn run(admin: &mut Admin, cmd: &ClusterCommand) -> Result<Report, CliError> {
    match cmd {
        ClusterCommand::Info => info(admin).await,
        ClusterCommand::Health => health(admin).await,
        ClusterCommand::DescribeConfig { broker, overrides } => {
            let name = broker.map(|b| b.to_string()).unwrap_or_default();
            describe_config(admin, RESOURCE_BROKER, &name, *overrides).await
        }
        ClusterCommand::LogLevel {
            broker,
            set,
            delete,
        } => {
            let name = broker.to_string();
            if set.is_empty() && delete.is_empty() {
                return describe_config(admin, RESOURCE_BROKER_LOGGER, &name, false).await;
            }
            let set = parse_pairs(set)?;
            alter(admin, RESOURCE_BROKER_LOGGER, &name, &set, delete, false).await
        }
        ClusterCommand::AlterConfig {
            broker,
            set,
            delete,
            dry_run,
        } => {
            let name = broker.map(|b| b.to_string()).unwrap_or_default();
            let set = parse_pairs(set)?;
            alter(admin, RESOURCE_BROKER, &name, &set, delete, *dry_run).await
        }
    }
}

/// A broker as the cluster describes it.
struct Broker {
    id: i32,
    addr: String,
    rack: Option<String>,
    fenced: bool,
}

/// Cluster id, controller and brokers (fenced ones included where the broker says so).
async fn brokers(admin: &mut Admin) -> Result<(String, i32, Vec<Broker>), CliError> {
    if let Ok(v) = admin.version(ApiKey::DescribeCluster, 0, 2) {
        let req = DescribeClusterRequest::default().with_include_fenced_brokers(v >= 2);
        let r: DescribeClusterResponse = admin.call(ApiKey::DescribeCluster, v, &req).await?;
        check(r.error_code, r.error_message)?;
        let mut list: Vec<Broker> = r
            .brokers
            .iter()
            .map(|b| Broker {
                id: b.broker_id.0,
                addr: format!("{}:{}", b.host, b.port),
                rack: b.rack.as_ref().map(|r| r.to_string()),
                fenced: b.is_fenced,
            })
            .collect();
        list.sort_by_key(|b| b.id);
        return Ok((r.cluster_id.to_string(), r.controller_id.0, list));
    }
    let md = admin.metadata(Some(Vec::new())).await?;
    let mut list: Vec<Broker> = md
        .brokers
        .iter()
        .map(|b| Broker {
            id: b.node_id.0,
            addr: format!("{}:{}", b.host, b.port),
            rack: b.rack.as_ref().map(|r| r.to_string()),
            fenced: false,
        })
        .collect();
    list.sort_by_key(|b| b.id);
    let id = md.cluster_id.map(|c| c.to_string()).unwrap_or_default();
    Ok((id, md.controller_id.0, list))
}

async fn info(admin: &mut Admin) -> Result<Report, CliError> {
    let (cluster_id, controller, list) = brokers(admin).await?;
    let md = admin.metadata(None).await?;
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|b| {
            vec![
                format!("{}{}", b.id, if b.id == controller { "*" } else { "" }),
                b.addr.clone(),
                b.rack.clone().unwrap_or_else(|| "-".into()),
                if b.fenced { "fenced" } else { "active" }.into(),
            ]
        })
        .collect();
    let partitions: usize = md.topics.iter().map(|t| t.partitions.len()).sum();
    let text = format!(
        "CLUSTER     {cluster_id}\nCONTROLLER  {controller}\nTOPICS      {}\nPARTITIONS  {partitions}\n\n{}",
        md.topics.len(),
        render(&["ID", "ADDRESS", "RACK", "STATUS"], &rows)
    );
    let json = json!({
        "cluster_id": cluster_id,
        "controller": controller,
        "topics": md.topics.len(),
        "partitions": partitions,
        "brokers": list.iter().map(|b| json!({
            "id": b.id, "address": b.addr, "rack": b.rack, "fenced": b.fenced,
        })).collect::<Vec<_>>(),
    });
    Ok(Report::new(text, json))
}

/// The metadata quorum: (leader, voters, voters whose log trails the leader's).
async fn quorum(admin: &mut Admin) -> Option<(i32, Vec<i32>, Vec<i32>)> {
    let v = admin.version(ApiKey::DescribeQuorum, 0, 2).ok()?;
    let req = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
        .with_partitions(vec![PartitionData::default()])]);
    let r: DescribeQuorumResponse = admin.call(ApiKey::DescribeQuorum, v, &req).await.ok()?;
    let p = r.topics.first()?.partitions.first()?;
    if r.error_code != 0 || p.error_code != 0 {
        return None;
    }
    let leader_end = p
        .current_voters
        .iter()
        .find(|v| v.replica_id.0 == p.leader_id.0)
        .map_or(p.high_watermark, |v| v.log_end_offset);
    let voters = p.current_voters.iter().map(|v| v.replica_id.0).collect();
    // A voter more than a few records behind (or unknown, -1) is lagging.
    let lagging = p
        .current_voters
        .iter()
        .filter(|v| v.log_end_offset < 0 || leader_end - v.log_end_offset > 100)
        .map(|v| v.replica_id.0)
        .collect();
    Some((p.leader_id.0, voters, lagging))
}

async fn health(admin: &mut Admin) -> Result<Report, CliError> {
    let (_, controller, list) = brokers(admin).await?;
    let md = admin.metadata(None).await?;
    let live: Vec<i32> = list.iter().filter(|b| !b.fenced).map(|b| b.id).collect();
    let mut down: Vec<i32> = list.iter().filter(|b| b.fenced).map(|b| b.id).collect();
    let mut offline = Vec::new();
    let mut under = Vec::new();
    for t in &md.topics {
        let name = t.name.as_deref().map(|n| n.to_string()).unwrap_or_default();
        for p in &t.partitions {
            for r in &p.replica_nodes {
                if !live.contains(&r.0) && !down.contains(&r.0) {
                    down.push(r.0);
                }
            }
            if p.leader_id.0 < 0 {
                offline.push(format!("{name}-{}", p.partition_index));
            } else if p.isr_nodes.len() < p.replica_nodes.len() {
                under.push(format!("{name}-{}", p.partition_index));
            }
        }
    }
    down.sort_unstable();
    offline.sort();
    under.sort();
    let q = quorum(admin).await;
    let lagging = q.as_ref().map(|q| q.2.clone()).unwrap_or_default();
    let healthy = down.is_empty() && offline.is_empty() && under.is_empty() && lagging.is_empty();
    let list_or_none = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(" ")
        }
    };
    let ids_or_none = |v: &[i32]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            ids(v)
        }
    };
    let mut text = format!(
        "HEALTHY                      {}\nCONTROLLER                   {controller}\nBROKERS                      {}\nBROKERS DOWN                 {}\nOFFLINE PARTITIONS           {}\nUNDER-REPLICATED PARTITIONS  {}",
        if healthy { "yes" } else { "no" },
        ids(&live),
        ids_or_none(&down),
        list_or_none(&offline),
        list_or_none(&under),
    );
    if let Some((leader, voters, _)) = &q {
        text.push_str(&format!(
            "\nQUORUM LEADER                {leader}\nQUORUM VOTERS                {}\nQUORUM VOTERS LAGGING        {}",
            ids(voters),
            ids_or_none(&lagging)
        ));
    }
    let json = json!({
        "healthy": healthy,
        "controller": controller,
        "brokers": live,
        "brokers_down": down,
        "offline_partitions": offline,
        "under_replicated_partitions": under,
        "quorum": q.as_ref().map(|(l, v, lag)| json!({"leader": l, "voters": v, "lagging": lag})),
    });
    let mut report = Report::new(text, json);
    report.failed_check = !healthy;
    Ok(report)
}
