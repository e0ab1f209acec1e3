//! `weir topic ...`: what `kafka-topics.sh` and `kafka-configs.sh --entity-type topics`
//! do (create, list, describe, delete, add partitions, alter and describe configs), with
//! CreateTopics, Metadata, ListOffsets, DeleteTopics, CreatePartitions,
//! IncrementalAlterConfigs and DescribeConfigs.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use serde_json::json;

use super::table::{ids, render};
use super::{check, error_text, parse_pairs, Admin, CliError, Report};

/// Kafka's ConfigResource type for topics.
pub const RESOURCE_TOPIC: i8 = 2;

#[derive(Debug, Clone, clap::Subcommand)]
pub enum TopicCommand {
    /// Create topics.
    Create {
        #[arg(required = true)]
        topics: Vec<String>,
        /// Partitions per topic (-1: the broker's num.partitions).
        #[arg(long, short = 'p', default_value_t = -1, allow_negative_numbers = true)]
        partitions: i32,
        /// Replication factor (-1: the broker's default.replication.factor).
        #[arg(long, short = 'r', default_value_t = -1, allow_negative_numbers = true)]
        replication_factor: i16,
        /// A topic setting, e.g. -c cleanup.policy=compact (repeatable).
        #[arg(long = "config", short = 'c', value_name = "NAME=VALUE")]
        configs: Vec<String>,
        /// Succeed when a topic exists already.
        #[arg(long)]
        if_not_exists: bool,
        /// Validate only: the broker checks the request and creates nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// List topics with their partition and replica counts.
    List {
        /// Include internal topics (__consumer_offsets).
        #[arg(long, short = 'i')]
        internal: bool,
    },
    /// Partitions of topics: leader, epoch, replicas, ISR, offline replicas and offsets.
    Describe {
        #[arg(required = true)]
        topics: Vec<String>,
    },
    /// Delete topics and their data.
    Delete {
        #[arg(required = true)]
        topics: Vec<String>,
    },
    /// Raise a topic's partition count to COUNT (partitions cannot be removed).
    AddPartitions {
        topic: String,
        /// The new total number of partitions.
        #[arg(long = "count", short = 'n')]
        count: i32,
    },
    /// Set or remove topic settings (IncrementalAlterConfigs).
    AlterConfig {
        topic: String,
        /// Set a setting (repeatable).
        #[arg(long = "set", short = 's', value_name = "NAME=VALUE")]
        set: Vec<String>,
        /// Remove a setting, back to the broker's default (repeatable).
        #[arg(long = "delete", short = 'd', value_name = "NAME")]
        delete: Vec<String>,
        /// Validate only.
        #[arg(long)]
        dry_run: bool,
    },
    /// A topic's settings with their values and where each comes from.
    DescribeConfig {
        topic: String,
        /// Only the settings set on the topic itself.
        #[arg(long)]
        overrides: bool,
    },
}

pub async fn run(admin: &mut Admin, cmd: &TopicCommand) -> Result<Report, CliError> {
    match cmd {
        TopicCommand::Create {
            topics,
            partitions,
            replication_factor,
            configs,
            if_not_exists,
            dry_run,
        } => {
            let configs = parse_pairs(configs)?;
            create(
                admin,
                topics,
                *partitions,
                *replication_factor,
                &configs,
                *if_not_exists,
                *dry_run,
            )
            .await
        }
        TopicCommand::List { internal } => list(admin, *internal).await,
        TopicCommand::Describe { topics } => describe(admin, topics).await,
        TopicCommand::Delete { topics } => delete(admin, topics).await,
        TopicCommand::AddPartitions { topic, count } => add_partitions(admin, topic, *count).await,
        TopicCommand::AlterConfig {
            topic,
            set,
            delete,
            dry_run,
        } => {
            let set = parse_pairs(set)?;
            alter_config(admin, topic, &set, delete, *dry_run).await
        }
        TopicCommand::DescribeConfig { topic, overrides } => {
            describe_config(admin, RESOURCE_TOPIC, topic, *overrides).await
        }
    }
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// Per-item outcomes: a report of them, or the first failure when any failed.
fn outcomes(verb: &str, items: Vec<(String, Result<String, String>)>) -> Result<Report, CliError> {
    let failed: Vec<String> = items
        .iter()
        .filter_map(|(n, r)| r.as_ref().err().map(|e| format!("{n}: {e}")))
        .collect();
    let json = json!(items
        .iter()
        .map(|(n, r)| match r {
            Ok(m) => json!({"name": n, "ok": true, "message": m}),
            Err(e) => json!({"name": n, "ok": false, "error": e}),
        })
        .collect::<Vec<_>>());
    if !failed.is_empty() {
        let done: Vec<&str> = items
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(n, _)| n.as_str())
            .collect();
        let mut text = failed.join("\n");
        if !done.is_empty() {
            text.push_str(&format!("\n({verb}: {})", done.join(", ")));
        }
        return Err(CliError::Kafka(text));
    }
    let text = items
        .iter()
        .map(|(n, r)| format!("{n}: {}", r.as_deref().unwrap_or("")))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(Report::new(text, json))
}

async fn create(
    admin: &mut Admin,
    topics: &[String],
    partitions: i32,
    replication_factor: i16,
    configs: &[(String, String)],
    if_not_exists: bool,
    dry_run: bool,
) -> Result<Report, CliError> {
    let v = admin.version(ApiKey::CreateTopics, 2, 7)?;
    let req = CreateTopicsRequest::default()
        .with_topics(
            topics
                .iter()
                .map(|t| {
                    CreatableTopic::default()
                        .with_name(TopicName(sb(t)))
                        .with_num_partitions(partitions)
                        .with_replication_factor(replication_factor)
                        .with_configs(
                            configs
                                .iter()
                                .map(|(k, val)| {
                                    CreatableTopicConfig::default()
                                        .with_name(sb(k))
                                        .with_value(Some(sb(val)))
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
        .with_timeout_ms(admin.timeout.as_millis() as i32)
        .with_validate_only(dry_run);
    let r: CreateTopicsResponse = admin.call(ApiKey::CreateTopics, v, &req).await?;
    let items = r
        .topics
        .iter()
        .map(|t| {
            let outcome = match t.error_code {
                0 if dry_run => Ok(format!(
                    "valid ({} partitions, replication factor {})",
                    t.num_partitions, t.replication_factor
                )),
                0 => Ok(format!(
                    "created ({} partitions, replication factor {})",
                    t.num_partitions, t.replication_factor
                )),
                36 if if_not_exists => Ok("exists already".into()),
                code => Err(error_text(code, t.error_message.as_deref())),
            };
            (t.name.to_string(), outcome)
        })
        .collect();
    outcomes("created", items)
}

async fn list(admin: &mut Admin, internal: bool) -> Result<Report, CliError> {
    let md = admin.metadata(None).await?;
    let mut rows = Vec::new();
    let mut json = Vec::new();
    let mut topics: Vec<_> = md
        .topics
        .iter()
        .filter(|t| internal || !t.is_internal)
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    for t in topics {
        let name = t.name.as_deref().map(|n| n.to_string()).unwrap_or_default();
        let rf = t.partitions.first().map_or(0, |p| p.replica_nodes.len());
        rows.push(vec![
            name.clone(),
            t.partitions.len().to_string(),
            rf.to_string(),
        ]);
        json.push(json!({
            "name": name,
            "id": t.topic_id.to_string(),
            "partitions": t.partitions.len(),
            "replicas": rf,
            "internal": t.is_internal,
        }));
    }
    Ok(Report::new(
        render(&["NAME", "PARTITIONS", "REPLICAS"], &rows),
        json!(json),
    ))
}

/// Earliest and latest offsets of `partitions` (topic, partition, leader), asked of each
/// leader; a partition whose leader does not answer gets none.
pub async fn offsets(
    admin: &mut Admin,
    partitions: &[(String, i32, i32)],
    timestamp: i64,
) -> Result<BTreeMap<(String, i32), Result<i64, String>>, CliError> {
    let v = admin.version(ApiKey::ListOffsets, 1, 7)?;
    let mut by_leader: BTreeMap<i32, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for (t, p, leader) in partitions {
        if *leader < 0 {
            out.insert((t.clone(), *p), Err("LEADER_NOT_AVAILABLE".to_string()));
            continue;
        }
        by_leader
            .entry(*leader)
            .or_default()
            .entry(t.clone())
            .or_default()
            .push(*p);
    }
    for (leader, topics) in by_leader {
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(
                topics
                    .iter()
                    .map(|(t, ps)| {
                        ListOffsetsTopic::default()
                            .with_name(TopicName(sb(t)))
                            .with_partitions(
                                ps.iter()
                                    .map(|p| {
                                        ListOffsetsPartition::default()
                                            .with_partition_index(*p)
                                            .with_timestamp(timestamp)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let r: Result<ListOffsetsResponse, _> =
            admin.call_node(leader, ApiKey::ListOffsets, v, &req).await;
        match r {
            Ok(r) => {
                for t in r.topics {
                    for p in t.partitions {
                        let o = if p.error_code == 0 {
                            Ok(p.offset)
                        } else {
                            Err(super::error_name(p.error_code))
                        };
                        out.insert((t.name.to_string(), p.partition_index), o);
                    }
                }
            }
            Err(e) => {
                for (t, ps) in topics {
                    for p in ps {
                        out.insert((t.clone(), p), Err(e.to_string()));
                    }
                }
            }
        }
    }
    Ok(out)
}

async fn describe(admin: &mut Admin, topics: &[String]) -> Result<Report, CliError> {
    let md = admin.metadata(Some(topics.to_vec())).await?;
    let mut text = String::new();
    let mut json = Vec::new();
    let mut errors = Vec::new();
    for t in &md.topics {
        let name = t.name.as_deref().map(|n| n.to_string()).unwrap_or_default();
        if t.error_code != 0 {
            errors.push(format!("{name}: {}", error_text(t.error_code, None)));
            continue;
        }
        let mut parts: Vec<_> = t.partitions.iter().collect();
        parts.sort_by_key(|p| p.partition_index);
        let keys: Vec<(String, i32, i32)> = parts
            .iter()
            .map(|p| (name.clone(), p.partition_index, p.leader_id.0))
            .collect();
        let earliest = offsets(admin, &keys, -2).await?;
        let latest = offsets(admin, &keys, -1).await?;
        let off = |m: &BTreeMap<(String, i32), Result<i64, String>>, p: i32| {
            m.get(&(name.clone(), p))
                .and_then(|o| o.as_ref().ok().copied())
        };
        let mut rows = Vec::new();
        let mut pjson = Vec::new();
        for p in &parts {
            let replicas: Vec<i32> = p.replica_nodes.iter().map(|b| b.0).collect();
            let isr: Vec<i32> = p.isr_nodes.iter().map(|b| b.0).collect();
            let offline: Vec<i32> = p.offline_replicas.iter().map(|b| b.0).collect();
            let (lo, hi) = (
                off(&earliest, p.partition_index),
                off(&latest, p.partition_index),
            );
            let show = |o: Option<i64>| o.map_or("-".to_string(), |o| o.to_string());
            rows.push(vec![
                p.partition_index.to_string(),
                p.leader_id.0.to_string(),
                p.leader_epoch.to_string(),
                ids(&replicas),
                ids(&isr),
                ids(&offline),
                show(lo),
                show(hi),
            ]);
            pjson.push(json!({
                "partition": p.partition_index,
                "leader": p.leader_id.0,
                "leader_epoch": p.leader_epoch,
                "replicas": replicas,
                "isr": isr,
                "offline_replicas": offline,
                "log_start_offset": lo,
                "high_watermark": hi,
                "error": (p.error_code != 0).then(|| super::error_name(p.error_code)),
            }));
        }
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(&format!(
            "NAME        {name}\nID          {}\nINTERNAL    {}\nPARTITIONS  {}\n\n",
            t.topic_id,
            t.is_internal,
            parts.len()
        ));
        text.push_str(&render(
            &[
                "PARTITION",
                "LEADER",
                "EPOCH",
                "REPLICAS",
                "ISR",
                "OFFLINE",
                "LOG-START",
                "HIGH-WATERMARK",
            ],
            &rows,
        ));
        json.push(json!({
            "name": name,
            "id": t.topic_id.to_string(),
            "internal": t.is_internal,
            "partitions": pjson,
        }));
    }
    if !errors.is_empty() {
        return Err(CliError::Kafka(errors.join("\n")));
    }
    Ok(Report::new(text, json!(json)))
}

async fn delete(admin: &mut Admin, topics: &[String]) -> Result<Report, CliError> {
    let v = admin.version(ApiKey::DeleteTopics, 1, 6)?;
    let mut req = DeleteTopicsRequest::default().with_timeout_ms(admin.timeout.as_millis() as i32);
    if v >= 6 {
        req.topics = topics
            .iter()
            .map(|t| DeleteTopicState::default().with_name(Some(TopicName(sb(t)))))
            .collect();
    } else {
        req.topic_names = topics.iter().map(|t| TopicName(sb(t))).collect();
    }
    let r: DeleteTopicsResponse = admin.call(ApiKey::DeleteTopics, v, &req).await?;
    let items = r
        .responses
        .iter()
        .map(|t| {
            let name = t.name.as_deref().map(|n| n.to_string()).unwrap_or_default();
            let outcome = match t.error_code {
                0 => Ok("deleted".to_string()),
                code => Err(error_text(code, t.error_message.as_deref())),
            };
            (name, outcome)
        })
        .collect();
    outcomes("deleted", items)
}

async fn add_partitions(admin: &mut Admin, topic: &str, count: i32) -> Result<Report, CliError> {
    let v = admin.version(ApiKey::CreatePartitions, 0, 3)?;
    let req = CreatePartitionsRequest::default()
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(TopicName(sb(topic)))
            .with_count(count)
            // Null: the broker places the new partitions.
            .with_assignments(None)])
        .with_timeout_ms(admin.timeout.as_millis() as i32);
    let r: CreatePartitionsResponse = admin.call(ApiKey::CreatePartitions, v, &req).await?;
    let items = r
        .results
        .iter()
        .map(|t| {
            let outcome = match t.error_code {
                0 => Ok(format!("now {count} partitions")),
                code => Err(error_text(code, t.error_message.as_deref())),
            };
            (t.name.to_string(), outcome)
        })
        .collect();
    outcomes("altered", items)
}

/// IncrementalAlterConfigs on one resource (a topic, or a broker for `weir cluster`).
pub async fn alter(
    admin: &mut Admin,
    resource_type: i8,
    name: &str,
    set: &[(String, String)],
    delete: &[String],
    dry_run: bool,
) -> Result<Report, CliError> {
    if set.is_empty() && delete.is_empty() {
        return Err(CliError::Usage(
            "nothing to change: give --set NAME=VALUE or --delete NAME".into(),
        ));
    }
    let v = admin.version(ApiKey::IncrementalAlterConfigs, 0, 1)?;
    let mut configs: Vec<AlterableConfig> = set
        .iter()
        .map(|(k, val)| {
            AlterableConfig::default()
                .with_name(sb(k))
                .with_config_operation(0)
                .with_value(Some(sb(val)))
        })
        .collect();
    configs.extend(delete.iter().map(|k| {
        AlterableConfig::default()
            .with_name(sb(k))
            .with_config_operation(1)
    }));
    let req = IncrementalAlterConfigsRequest::default()
        .with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(sb(name))
            .with_configs(configs)])
        .with_validate_only(dry_run);
    let r: IncrementalAlterConfigsResponse = call_for(
        admin,
        resource_type,
        name,
        ApiKey::IncrementalAlterConfigs,
        v,
        &req,
    )
    .await?;
    let items = r
        .responses
        .iter()
        .map(|res| {
            let outcome = match res.error_code {
                0 if dry_run => Ok("valid".to_string()),
                0 => Ok("altered".to_string()),
                code => Err(error_text(code, res.error_message.as_deref())),
            };
            (res.resource_name.to_string(), outcome)
        })
        .collect();
    outcomes("altered", items)
}

async fn alter_config(
    admin: &mut Admin,
    topic: &str,
    set: &[(String, String)],
    delete: &[String],
    dry_run: bool,
) -> Result<Report, CliError> {
    alter(admin, RESOURCE_TOPIC, topic, set, delete, dry_run).await
}

/// Kafka's names of DescribeConfigs config sources.
fn source_name(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

/// DescribeConfigs of one resource; `overrides` keeps only what is set on the resource.
/// Sends a config request where Kafka clients send it: a BROKER or BROKER_LOGGER
/// resource naming a broker goes to that broker, anything else to any broker.
async fn call_for<Req: Encodable, Resp: Decodable>(
    admin: &mut Admin,
    resource_type: i8,
    name: &str,
    api: ApiKey,
    version: i16,
    req: &Req,
) -> Result<Resp, CliError> {
    match name.parse::<i32>() {
        Ok(id) if matches!(resource_type, 4 | 8) => admin.call_node(id, api, version, req).await,
        _ => admin.call(api, version, req).await,
    }
}

pub async fn describe_config(
    admin: &mut Admin,
    resource_type: i8,
    name: &str,
    overrides: bool,
) -> Result<Report, CliError> {
    let v = admin.version(ApiKey::DescribeConfigs, 1, 4)?;
    let req = DescribeConfigsRequest::default()
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(sb(name))
            .with_configuration_keys(None)])
        .with_include_documentation(false);
    let r: DescribeConfigsResponse =
        call_for(admin, resource_type, name, ApiKey::DescribeConfigs, v, &req).await?;
    let res = r
        .results
        .first()
        .ok_or_else(|| CliError::Kafka("empty DescribeConfigs answer".into()))?;
    check(res.error_code, res.error_message.clone())?;
    let mut configs: Vec<_> = res
        .configs
        .iter()
        .filter(|c| !overrides || matches!(c.config_source, 1 | 2 | 3 | 6 | 8))
        .collect();
    configs.sort_by(|a, b| a.name.cmp(&b.name));
    let mut rows = Vec::new();
    let mut json = Vec::new();
    for c in configs {
        let value = if c.is_sensitive {
            "(sensitive)".to_string()
        } else {
            c.value
                .as_deref()
                .map_or("null".to_string(), |v| v.to_string())
        };
        rows.push(vec![
            c.name.to_string(),
            value.clone(),
            source_name(c.config_source).to_string(),
            if c.read_only { "yes" } else { "no" }.to_string(),
        ]);
        json.push(json!({
            "name": c.name.to_string(),
            "value": c.value.as_deref().map(|v| v.to_string()),
            "source": source_name(c.config_source),
            "read_only": c.read_only,
            "sensitive": c.is_sensitive,
        }));
    }
    Ok(Report::new(
        render(&["NAME", "VALUE", "SOURCE", "READ-ONLY"], &rows),
        json!(json),
    ))
}
