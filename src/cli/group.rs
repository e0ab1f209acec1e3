//! `weir group ...`: what `kafka-consumer-groups.sh` does. Lists groups from every
//! broker (each coordinator knows only its own), describes one (state, members and
//! their assignments, committed offset, log end offset and lag per partition) through its
//! coordinator with DescribeGroups or, for KIP-848 groups, ConsumerGroupDescribe; resets
//! committed offsets of an inactive group (a dry run unless `--execute`); deletes groups.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Buf;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};
use serde_json::json;

use super::table::render;
use super::topic::offsets;
use super::{check, error_name, error_text, Admin, CliError, Report};

#[derive(Debug, Clone, clap::Subcommand)]
pub enum GroupCommand {
    /// Every group in the cluster with its state and type.
    List,
    /// A group's state, members, assignments, committed offsets and lag.
    Describe { group: String },
    /// Move an inactive group's committed offsets (a dry run unless --execute).
    ResetOffsets {
        group: String,
        /// TOPIC or TOPIC:P,P,... (repeatable); default: every topic the group has
        /// committed offsets for.
        #[arg(long = "topic", short = 't')]
        topics: Vec<String>,
        /// Where to move the offsets.
        #[command(flatten)]
        to: ResetTo,
        /// Commit the new offsets (without it, only show them).
        #[arg(long)]
        execute: bool,
    },
    /// Delete groups (they must have no members).
    Delete {
        #[arg(required = true)]
        groups: Vec<String>,
    },
}

/// The target of `reset-offsets`: exactly one.
#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
pub struct ResetTo {
    /// To each partition's log start offset.
    #[arg(long)]
    pub to_earliest: bool,
    /// To each partition's log end offset.
    #[arg(long)]
    pub to_latest: bool,
    /// To this offset (clamped to the partition's range).
    #[arg(long, value_name = "OFFSET")]
    pub to_offset: Option<i64>,
    /// To the first offset with a timestamp at or after MS (Unix milliseconds).
    #[arg(long, value_name = "MS")]
    pub to_timestamp: Option<i64>,
    /// By N from the committed offset (negative: back), clamped to the range.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub shift_by: Option<i64>,
}

pub async fn run(admin: &mut Admin, cmd: &GroupCommand) -> Result<Report, CliError> {
    match cmd {
        GroupCommand::List => list(admin).await,
        GroupCommand::Describe { group } => describe(admin, group).await,
        GroupCommand::ResetOffsets {
            group,
            topics,
            to,
            execute,
        } => reset(admin, group, topics, to, *execute).await,
        GroupCommand::Delete { groups } => delete(admin, groups).await,
    }
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

async fn list(admin: &mut Admin) -> Result<Report, CliError> {
    let md = admin.metadata(Some(Vec::new())).await?;
    let v = admin.version(ApiKey::ListGroups, 0, 5)?;
    let mut groups = BTreeMap::new();
    for b in &md.brokers {
        let r: ListGroupsResponse = admin
            .call_node(
                b.node_id.0,
                ApiKey::ListGroups,
                v,
                &ListGroupsRequest::default(),
            )
            .await?;
        check(r.error_code, None)?;
        for g in r.groups {
            groups.insert(g.group_id.to_string(), (g, b.node_id.0));
        }
    }
    let mut rows = Vec::new();
    let mut json = Vec::new();
    for (id, (g, coordinator)) in &groups {
        let kind = if g.group_type.is_empty() {
            "classic".to_string()
        } else {
            g.group_type.to_lowercase()
        };
        rows.push(vec![
            id.clone(),
            g.group_state.to_string(),
            kind.clone(),
            g.protocol_type.to_string(),
            coordinator.to_string(),
        ]);
        json.push(json!({
            "group": id,
            "state": g.group_state.to_string(),
            "type": kind,
            "protocol_type": g.protocol_type.to_string(),
            "coordinator": coordinator,
        }));
    }
    Ok(Report::new(
        render(
            &["GROUP", "STATE", "TYPE", "PROTOCOL-TYPE", "COORDINATOR"],
            &rows,
        ),
        json!(json),
    ))
}

/// A member and the partitions assigned to it.
struct Member {
    id: String,
    instance_id: Option<String>,
    client_id: String,
    host: String,
    assigned: Vec<(String, i32)>,
}

/// What a coordinator says of a group.
struct Described {
    state: String,
    kind: &'static str,
    protocol: String,
    members: Vec<Member>,
}

/// The partitions of a classic `consumer` member's assignment bytes.
fn decode_assignment(bytes: &bytes::Bytes) -> Vec<(String, i32)> {
    let mut b = bytes.clone();
    if b.remaining() < 2 {
        return Vec::new();
    }
    let version = b.get_i16();
    match ConsumerProtocolAssignment::decode(&mut b, version.clamp(0, 3)) {
        Ok(a) => a
            .assigned_partitions
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| (t.topic.to_string(), *p)))
            .collect(),
        Err(_) => Vec::new(),
    }
}

async fn describe_group(
    admin: &mut Admin,
    coordinator: i32,
    group: &str,
) -> Result<Described, CliError> {
    let v = admin.version(ApiKey::DescribeGroups, 0, 5)?;
    let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(sb(group))]);
    let r: DescribeGroupsResponse = admin
        .call_node(coordinator, ApiKey::DescribeGroups, v, &req)
        .await?;
    let g = r
        .groups
        .first()
        .ok_or_else(|| CliError::Kafka("empty DescribeGroups answer".into()))?;
    let classic_unknown = g.error_code == 69 || g.group_state.as_str() == "Dead";
    if g.error_code != 0 && !classic_unknown {
        return Err(CliError::Kafka(error_text(
            g.error_code,
            g.error_message.as_deref(),
        )));
    }
    if !classic_unknown {
        let consumer = g.protocol_type.as_str() == "consumer";
        return Ok(Described {
            state: g.group_state.to_string(),
            kind: "classic",
            protocol: g.protocol_data.to_string(),
            members: g
                .members
                .iter()
                .map(|m| Member {
                    id: m.member_id.to_string(),
                    instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
                    client_id: m.client_id.to_string(),
                    host: m.client_host.to_string(),
                    assigned: if consumer {
                        decode_assignment(&m.member_assignment)
                    } else {
                        Vec::new()
                    },
                })
                .collect(),
        });
    }
    // Not a classic group: a KIP-848 consumer group, or none at all.
    let Ok(v) = admin.version(ApiKey::ConsumerGroupDescribe, 0, 1) else {
        return Ok(dead());
    };
    let req = ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(sb(group))]);
    let r: ConsumerGroupDescribeResponse = admin
        .call_node(coordinator, ApiKey::ConsumerGroupDescribe, v, &req)
        .await?;
    let Some(g) = r.groups.first() else {
        return Ok(dead());
    };
    if g.error_code == 69 {
        return Ok(dead());
    }
    check(g.error_code, g.error_message.clone())?;
    Ok(Described {
        state: g.group_state.to_string(),
        kind: "consumer",
        protocol: g.assignor_name.to_string(),
        members: g
            .members
            .iter()
            .map(|m| Member {
                id: m.member_id.to_string(),
                instance_id: m.instance_id.as_ref().map(|s| s.to_string()),
                client_id: m.client_id.to_string(),
                host: m.client_host.to_string(),
                assigned: m
                    .assignment
                    .topic_partitions
                    .iter()
                    .flat_map(|t| {
                        t.partitions
                            .iter()
                            .map(move |p| (t.topic_name.to_string(), *p))
                    })
                    .collect(),
            })
            .collect(),
    })
}

fn dead() -> Described {
    Described {
        state: "Dead".into(),
        kind: "none",
        protocol: String::new(),
        members: Vec::new(),
    }
}

/// The group's committed offsets, by partition.
async fn committed(
    admin: &mut Admin,
    coordinator: i32,
    group: &str,
) -> Result<BTreeMap<(String, i32), i64>, CliError> {
    let v = admin.version(ApiKey::OffsetFetch, 1, 7)?;
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_topics(if v >= 2 { None } else { Some(Vec::new()) });
    let r: OffsetFetchResponse = admin
        .call_node(coordinator, ApiKey::OffsetFetch, v, &req)
        .await?;
    check(r.error_code, None)?;
    let mut out = BTreeMap::new();
    for t in r.topics {
        for p in t.partitions {
            if p.error_code == 0 && p.committed_offset >= 0 {
                out.insert((t.name.to_string(), p.partition_index), p.committed_offset);
            }
        }
    }
    Ok(out)
}

/// (topic, partition, leader) for every partition of `topics` that exists.
async fn leaders(
    admin: &mut Admin,
    topics: &BTreeSet<String>,
) -> Result<Vec<(String, i32, i32)>, CliError> {
    if topics.is_empty() {
        return Ok(Vec::new());
    }
    let md = admin
        .metadata(Some(topics.iter().cloned().collect()))
        .await?;
    Ok(md
        .topics
        .iter()
        .filter(|t| t.error_code == 0)
        .flat_map(|t| {
            let name = t.name.as_deref().map(|n| n.to_string()).unwrap_or_default();
            t.partitions
                .iter()
                .map(move |p| (name.clone(), p.partition_index, p.leader_id.0))
        })
        .collect())
}

async fn describe(admin: &mut Admin, group: &str) -> Result<Report, CliError> {
    let coordinator = admin.coordinator(group).await?;
    let d = describe_group(admin, coordinator, group).await?;
    let commits = committed(admin, coordinator, group).await?;
    if d.state == "Dead" && commits.is_empty() {
        return Err(CliError::Kafka(format!(
            "GROUP_ID_NOT_FOUND: group {group} does not exist"
        )));
    }
    let mut owner: BTreeMap<(String, i32), &Member> = BTreeMap::new();
    for m in &d.members {
        for tp in &m.assigned {
            owner.insert(tp.clone(), m);
        }
    }
    let keys: BTreeSet<(String, i32)> = commits.keys().chain(owner.keys()).cloned().collect();
    let topics: BTreeSet<String> = keys.iter().map(|(t, _)| t.clone()).collect();
    let parts = leaders(admin, &topics).await?;
    let wanted: Vec<_> = parts
        .into_iter()
        .filter(|(t, p, _)| keys.contains(&(t.clone(), *p)))
        .collect();
    let ends = offsets(admin, &wanted, -1).await?;
    let mut rows = Vec::new();
    let mut pjson = Vec::new();
    for key in &keys {
        let current = commits.get(key).copied();
        let end = ends.get(key).and_then(|r| r.as_ref().ok().copied());
        let lag = match (current, end) {
            (Some(c), Some(e)) => Some((e - c).max(0)),
            (None, Some(e)) => Some(e),
            _ => None,
        };
        let m = owner.get(key);
        let show = |o: Option<i64>| o.map_or("-".to_string(), |o| o.to_string());
        rows.push(vec![
            key.0.clone(),
            key.1.to_string(),
            show(current),
            show(end),
            show(lag),
            m.map_or("-".into(), |m| m.id.clone()),
            m.map_or("-".into(), |m| m.client_id.clone()),
            m.map_or("-".into(), |m| m.host.clone()),
        ]);
        pjson.push(json!({
            "topic": key.0,
            "partition": key.1,
            "committed_offset": current,
            "log_end_offset": end,
            "lag": lag,
            "member_id": m.map(|m| m.id.clone()),
        }));
    }
    let total_lag: i64 = pjson.iter().filter_map(|p| p["lag"].as_i64()).sum();
    let members_json: Vec<_> = d
        .members
        .iter()
        .map(|m| {
            json!({
                "member_id": m.id,
                "instance_id": m.instance_id,
                "client_id": m.client_id,
                "host": m.host,
                "assignment": m.assigned.iter().map(|(t, p)| json!({"topic": t, "partition": p})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut text = format!(
        "GROUP        {group}\nCOORDINATOR  {coordinator}\nSTATE        {}\nTYPE         {}\nPROTOCOL     {}\nMEMBERS      {}\nTOTAL-LAG    {total_lag}\n",
        d.state,
        d.kind,
        if d.protocol.is_empty() { "-" } else { &d.protocol },
        d.members.len()
    );
    if !rows.is_empty() {
        text.push('\n');
        text.push_str(&render(
            &[
                "TOPIC",
                "PARTITION",
                "CURRENT-OFFSET",
                "LOG-END-OFFSET",
                "LAG",
                "MEMBER-ID",
                "CLIENT-ID",
                "HOST",
            ],
            &rows,
        ));
    }
    Ok(Report::new(
        text.trim_end(),
        json!({
            "group": group,
            "coordinator": coordinator,
            "state": d.state,
            "type": d.kind,
            "protocol": d.protocol,
            "members": members_json,
            "partitions": pjson,
            "total_lag": total_lag,
        }),
    ))
}

/// `TOPIC` or `TOPIC:P,P,...`.
fn parse_topic_spec(spec: &str) -> Result<(String, Option<Vec<i32>>), CliError> {
    match spec.split_once(':') {
        None => Ok((spec.to_string(), None)),
        Some((t, ps)) => {
            let ps = ps
                .split(',')
                .map(|p| {
                    p.trim()
                        .parse::<i32>()
                        .map_err(|_| CliError::Usage(format!("bad partition {p:?} in {spec:?}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((t.to_string(), Some(ps)))
        }
    }
}

/// The new offset of one partition, within `[earliest, latest]`.
fn target(
    to: &ResetTo,
    current: Option<i64>,
    earliest: i64,
    latest: i64,
    at_time: Option<i64>,
) -> i64 {
    let want = if to.to_earliest {
        earliest
    } else if to.to_latest {
        latest
    } else if let Some(o) = to.to_offset {
        o
    } else if to.to_timestamp.is_some() {
        // No record at or after the time: the end of the log, as Kafka's tool does.
        at_time.filter(|o| *o >= 0).unwrap_or(latest)
    } else if let Some(n) = to.shift_by {
        current.unwrap_or(latest).saturating_add(n)
    } else {
        latest
    };
    want.clamp(earliest, latest.max(earliest))
}

async fn reset(
    admin: &mut Admin,
    group: &str,
    specs: &[String],
    to: &ResetTo,
    execute: bool,
) -> Result<Report, CliError> {
    let coordinator = admin.coordinator(group).await?;
    let d = describe_group(admin, coordinator, group).await?;
    if !matches!(d.state.as_str(), "Empty" | "Dead") {
        return Err(CliError::Kafka(format!(
            "the group is {} with {} member(s): offsets can only be reset while it has no members (stop its consumers first)",
            d.state,
            d.members.len()
        )));
    }
    let commits = committed(admin, coordinator, group).await?;
    let mut wanted: BTreeMap<String, Option<Vec<i32>>> = BTreeMap::new();
    for s in specs {
        let (t, ps) = parse_topic_spec(s)?;
        wanted.insert(t, ps);
    }
    if wanted.is_empty() {
        for (t, _) in commits.keys() {
            wanted.insert(t.clone(), None);
        }
    }
    if wanted.is_empty() {
        return Err(CliError::Usage(
            "the group has no committed offsets: name the topics with --topic".into(),
        ));
    }
    let topics: BTreeSet<String> = wanted.keys().cloned().collect();
    let parts = leaders(admin, &topics).await?;
    for t in &topics {
        if !parts.iter().any(|(pt, _, _)| pt == t) {
            return Err(CliError::Kafka(format!(
                "UNKNOWN_TOPIC_OR_PARTITION: topic {t} does not exist"
            )));
        }
    }
    let chosen: Vec<(String, i32, i32)> = parts
        .into_iter()
        .filter(|(t, p, _)| match wanted.get(t) {
            Some(Some(ps)) => ps.contains(p),
            Some(None) => true,
            None => false,
        })
        .collect();
    let earliest = offsets(admin, &chosen, -2).await?;
    let latest = offsets(admin, &chosen, -1).await?;
    let at_time = match to.to_timestamp {
        Some(ms) => Some(offsets(admin, &chosen, ms).await?),
        None => None,
    };
    let mut plan = Vec::new();
    for (t, p, _) in &chosen {
        let key = (t.clone(), *p);
        let get = |m: &BTreeMap<(String, i32), Result<i64, String>>| -> Result<i64, CliError> {
            match m.get(&key) {
                Some(Ok(o)) => Ok(*o),
                Some(Err(e)) => Err(CliError::Kafka(format!("{t}-{p}: {e}"))),
                None => Err(CliError::Kafka(format!("{t}-{p}: no offsets"))),
            }
        };
        let (lo, hi) = (get(&earliest)?, get(&latest)?);
        let ts = match &at_time {
            Some(m) => Some(get(m)?),
            None => None,
        };
        let current = commits.get(&key).copied();
        plan.push((key, current, target(to, current, lo, hi, ts)));
    }
    if execute {
        let v = admin.version(ApiKey::OffsetCommit, 2, 8)?;
        let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for ((t, p), _, new) in &plan {
            by_topic.entry(t).or_default().push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(*p)
                    .with_committed_offset(*new),
            );
        }
        let req = OffsetCommitRequest::default()
            .with_group_id(GroupId(sb(group)))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(StrBytes::default())
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(t, ps)| {
                        OffsetCommitRequestTopic::default()
                            .with_name(TopicName(sb(t)))
                            .with_partitions(ps)
                    })
                    .collect(),
            );
        let r: OffsetCommitResponse = admin
            .call_node(coordinator, ApiKey::OffsetCommit, v, &req)
            .await?;
        let failed: Vec<String> = r
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .filter(|p| p.error_code != 0)
                    .map(move |p| {
                        format!(
                            "{}-{}: {}",
                            t.name.as_str(),
                            p.partition_index,
                            error_text(p.error_code, None)
                        )
                    })
            })
            .collect();
        if !failed.is_empty() {
            return Err(CliError::Kafka(failed.join("\n")));
        }
    }
    let show = |o: Option<i64>| o.map_or("-".to_string(), |o| o.to_string());
    let rows: Vec<Vec<String>> = plan
        .iter()
        .map(|((t, p), cur, new)| vec![t.clone(), p.to_string(), show(*cur), new.to_string()])
        .collect();
    let mut text = render(
        &["TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"],
        &rows,
    );
    text.push_str(if execute {
        "\n\nOffsets committed."
    } else {
        "\n\nDry run: nothing committed. Add --execute to commit these offsets."
    });
    let json = json!({
        "group": group,
        "executed": execute,
        "partitions": plan.iter().map(|((t, p), cur, new)| json!({
            "topic": t, "partition": p, "current_offset": cur, "new_offset": new,
        })).collect::<Vec<_>>(),
    });
    Ok(Report::new(text, json))
}

async fn delete(admin: &mut Admin, groups: &[String]) -> Result<Report, CliError> {
    let v = admin.version(ApiKey::DeleteGroups, 0, 2)?;
    let mut items = Vec::new();
    for g in groups {
        let coordinator = admin.coordinator(g).await?;
        let req = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(sb(g))]);
        let r: DeleteGroupsResponse = admin
            .call_node(coordinator, ApiKey::DeleteGroups, v, &req)
            .await?;
        for res in r.results {
            let outcome = match res.error_code {
                0 => Ok("deleted".to_string()),
                code => Err(match code {
                    68 => format!("{}: the group still has members", error_name(code)),
                    _ => error_text(code, None),
                }),
            };
            items.push((res.group_id.to_string(), outcome));
        }
    }
    let failed: Vec<String> = items
        .iter()
        .filter_map(|(n, r)| r.as_ref().err().map(|e| format!("{n}: {e}")))
        .collect();
    if !failed.is_empty() {
        return Err(CliError::Kafka(failed.join("\n")));
    }
    let text = items
        .iter()
        .map(|(n, _)| format!("{n}: deleted"))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(Report::new(
        text,
        json!(items
            .iter()
            .map(|(n, _)| json!({"group": n, "ok": true}))
            .collect::<Vec<_>>()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(f: impl FnOnce(&mut ResetTo)) -> ResetTo {
        let mut t = ResetTo {
            to_earliest: false,
            to_latest: false,
            to_offset: None,
            to_timestamp: None,
            shift_by: None,
        };
        f(&mut t);
        t
    }

    #[test]
    fn reset_targets_stay_within_the_log() {
        assert_eq!(
            target(&to(|t| t.to_earliest = true), Some(5), 2, 9, None),
            2
        );
        assert_eq!(target(&to(|t| t.to_latest = true), Some(5), 2, 9, None), 9);
        assert_eq!(
            target(&to(|t| t.to_offset = Some(100)), None, 2, 9, None),
            9
        );
        assert_eq!(target(&to(|t| t.to_offset = Some(0)), None, 2, 9, None), 2);
        assert_eq!(
            target(&to(|t| t.shift_by = Some(-2)), Some(5), 2, 9, None),
            3
        );
        assert_eq!(
            target(&to(|t| t.shift_by = Some(-9)), Some(5), 2, 9, None),
            2
        );
        assert_eq!(
            target(&to(|t| t.to_timestamp = Some(1)), None, 2, 9, Some(4)),
            4
        );
        // No record that late: the end of the log.
        assert_eq!(
            target(&to(|t| t.to_timestamp = Some(1)), None, 2, 9, Some(-1)),
            9
        );
    }

    #[test]
    fn topic_specs() {
        assert_eq!(parse_topic_spec("t").unwrap(), ("t".into(), None));
        assert_eq!(
            parse_topic_spec("t:0,2").unwrap(),
            ("t".into(), Some(vec![0, 2]))
        );
        assert!(parse_topic_spec("t:x").is_err());
    }
}
