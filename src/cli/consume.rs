//! `weir consume`: read records for a quick check, as `kafka-console-consumer.sh` and
//! `kcat -C` do: from the beginning, the end, an offset or a timestamp, from every
//! partition or chosen ones, printed with a kcat-style format (`%k %v`) or as JSON lines,
//! until a count is reached or, with `--exit`, the end of every partition. With
//! `--group`, it joins the group as a consumer-protocol member (KIP-848, see
//! [`super::member`]): the coordinator assigns its partitions (several `weir consume`
//! processes in one group split them), it starts from the group's committed offsets and
//! commits what it printed before it leaves.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Record, RecordBatchDecoder};
use serde_json::json;

use super::member::{Change, GroupMember};
use super::topic::offsets;
use super::{check, error_text, Admin, CliError, Format, Report};

#[derive(Debug, Clone, clap::Args)]
pub struct ConsumeArgs {
    pub topic: String,
    /// Only these partitions (repeatable); default: all.
    #[arg(long = "partition", short = 'p')]
    pub partitions: Vec<i32>,
    /// Where to start: beginning, end, an offset, or @MS (the first record at or after
    /// that Unix time in milliseconds). With --group, the group's committed offsets
    /// come first and this applies where the group has none.
    #[arg(long, default_value = "beginning", allow_hyphen_values = true)]
    pub from: String,
    /// Stop after this many records.
    #[arg(long, short = 'n')]
    pub count: Option<u64>,
    /// Stop at the end of every partition instead of waiting for more.
    #[arg(long, short = 'e')]
    pub exit: bool,
    /// kcat's format tokens: %t topic, %p partition, %o offset, %k key, %v value,
    /// %h headers, %T timestamp (ms), \n, \t.
    #[arg(long, short = 'f', default_value = "%v\\n")]
    pub format: String,
    /// Read as a member of this consumer group (KIP-848): the group's coordinator
    /// assigns the partitions; start from the group's committed offsets and commit.
    #[arg(long, short = 'g')]
    pub group: Option<String>,
}

/// Where one partition starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Start {
    Beginning,
    End,
    Offset(i64),
    Time(i64),
}

pub fn parse_start(s: &str) -> Result<Start, CliError> {
    match s {
        "beginning" | "earliest" | "start" => Ok(Start::Beginning),
        "end" | "latest" => Ok(Start::End),
        _ => {
            if let Some(ms) = s.strip_prefix('@') {
                return ms
                    .parse()
                    .map(Start::Time)
                    .map_err(|_| CliError::Usage(format!("--from {s}: @ needs milliseconds")));
            }
            match s.parse::<i64>() {
                Ok(o) if o >= 0 => Ok(Start::Offset(o)),
                _ => Err(CliError::Usage(format!(
                    "--from {s}: use beginning, end, an offset or @MS"
                ))),
            }
        }
    }
}

fn text(b: &Option<Bytes>) -> String {
    b.as_ref()
        .map_or(String::new(), |b| String::from_utf8_lossy(b).into_owned())
}

/// One record in kcat's format language.
pub fn render(fmt: &str, topic: &str, partition: i32, r: &Record) -> String {
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek().copied()) {
            ('%', Some(n)) => {
                chars.next();
                match n {
                    't' => out.push_str(topic),
                    'p' => out.push_str(&partition.to_string()),
                    'o' => out.push_str(&r.offset.to_string()),
                    'k' => out.push_str(&text(&r.key)),
                    'v' => out.push_str(&text(&r.value)),
                    'T' => out.push_str(&r.timestamp.to_string()),
                    'h' => {
                        let hs: Vec<String> = r
                            .headers
                            .iter()
                            .map(|(k, v)| format!("{k}={}", text(v)))
                            .collect();
                        out.push_str(&hs.join(","));
                    }
                    '%' => out.push('%'),
                    other => {
                        out.push('%');
                        out.push(other);
                    }
                }
            }
            ('\\', Some('n')) => {
                chars.next();
                out.push('\n');
            }
            ('\\', Some('t')) => {
                chars.next();
                out.push('\t');
            }
            _ => out.push(c),
        }
    }
    out
}

fn record_json(topic: &str, partition: i32, r: &Record) -> serde_json::Value {
    json!({
        "topic": topic,
        "partition": partition,
        "offset": r.offset,
        "timestamp": r.timestamp,
        "key": r.key.as_ref().map(|k| String::from_utf8_lossy(k).into_owned()),
        "value": r.value.as_ref().map(|v| String::from_utf8_lossy(v).into_owned()),
        "headers": r.headers.iter().map(|(k, v)| (k.to_string(), json!(v.as_ref().map(|v| String::from_utf8_lossy(v).into_owned())))).collect::<serde_json::Map<_, _>>(),
    })
}

/// The group's committed offsets for `topic`.
async fn group_offsets(
    admin: &mut Admin,
    coordinator: i32,
    group: &str,
    topic: &str,
    partitions: Vec<i32>,
) -> Result<BTreeMap<i32, i64>, CliError> {
    let v = admin.version(ApiKey::OffsetFetch, 1, 7)?;
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_topics(Some(vec![
            kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partition_indexes(partitions),
        ]));
    let r: OffsetFetchResponse = admin
        .call_node(coordinator, ApiKey::OffsetFetch, v, &req)
        .await?;
    check(r.error_code, None)?;
    Ok(r.topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .filter(|p| p.error_code == 0 && p.committed_offset >= 0)
        .map(|p| (p.partition_index, p.committed_offset))
        .collect())
}

/// Where partition `p` starts: the group's committed offset, else `--from`.
fn start_position(
    p: i32,
    topic: &str,
    committed: &BTreeMap<i32, i64>,
    start: Start,
    found: &Found,
    ends: &Found,
) -> Result<i64, CliError> {
    if let Some(o) = committed.get(&p) {
        return Ok(*o);
    }
    if let Start::Offset(o) = start {
        return Ok(o);
    }
    Ok(match found.get(&(topic.to_string(), p)) {
        // No record at or after the time: start at the end.
        Some(Ok(o)) if *o >= 0 => *o,
        Some(Ok(_)) => match ends.get(&(topic.to_string(), p)) {
            Some(Ok(e)) => *e,
            _ => 0,
        },
        Some(Err(e)) => return Err(CliError::Kafka(format!("partition {p}: {e}"))),
        None => 0,
    })
}

/// ListOffsets answers by (topic, partition).
type Found = BTreeMap<(String, i32), Result<i64, String>>;

pub async fn run(
    admin: &mut Admin,
    args: &ConsumeArgs,
    format: Format,
) -> Result<Report, CliError> {
    let start = parse_start(&args.from)?;
    if args.group.is_some() && !args.partitions.is_empty() {
        return Err(CliError::Usage(
            "--partition and --group do not combine: the group's coordinator assigns partitions"
                .into(),
        ));
    }
    let mut all_leaders = admin.leaders(&args.topic).await?;
    all_leaders.retain(|p, _| args.partitions.is_empty() || args.partitions.contains(p));
    for p in &args.partitions {
        if !all_leaders.contains_key(p) {
            return Err(CliError::Usage(format!(
                "{} has no partition {p}",
                args.topic
            )));
        }
    }
    let keys: Vec<(String, i32, i32)> = all_leaders
        .iter()
        .map(|(p, l)| (args.topic.clone(), *p, *l))
        .collect();
    let lookup = match start {
        Start::Beginning => Some(-2),
        Start::End => Some(-1),
        Start::Time(ms) => Some(ms),
        Start::Offset(_) => None,
    };
    let found: Found = match lookup {
        Some(ts) => offsets(admin, &keys, ts).await?,
        None => BTreeMap::new(),
    };
    let ends: Found = offsets(admin, &keys, -1).await?;
    // In a group the coordinator decides which partitions are read (KIP-848).
    let mut member = None;
    let mut leaders: BTreeMap<i32, i32> = BTreeMap::new();
    let mut positions: BTreeMap<i32, i64> = BTreeMap::new();
    let mut pending = Change::default();
    match &args.group {
        Some(g) => {
            let md = admin.metadata(Some(vec![args.topic.clone()])).await?;
            let topic_id = md.topics.first().map(|t| t.topic_id).unwrap_or_default();
            let (m, change) = GroupMember::join(admin, g, &args.topic, topic_id).await?;
            member = Some(m);
            pending = change;
        }
        None => {
            for p in all_leaders.keys() {
                let pos = start_position(*p, &args.topic, &BTreeMap::new(), start, &found, &ends)?;
                positions.insert(*p, pos);
            }
            leaders = all_leaders.clone();
        }
    }
    // Ctrl-C or SIGTERM ends the read like the end of input: a group member commits
    // and leaves instead of lingering until its session expires.
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                },
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
            stop.store(true, Ordering::Relaxed);
        });
    }
    let v = admin.version(ApiKey::Fetch, 4, 12)?;
    let mut printed: u64 = 0;
    let mut at_end: BTreeMap<i32, bool> = BTreeMap::new();
    let mut stdout = std::io::stdout().lock();
    let limit = args.count.unwrap_or(u64::MAX);
    'outer: while printed < limit && !stop.load(Ordering::Relaxed) {
        if let (Some(m), Some(g)) = (member.as_mut(), &args.group) {
            let change = std::mem::take(&mut pending);
            let change = if change == Change::default() {
                m.heartbeat(admin, false).await?
            } else {
                change
            };
            let revoked: BTreeMap<i32, i64> = change
                .revoked
                .iter()
                .filter_map(|p| positions.get(p).map(|o| (*p, *o)))
                .collect();
            m.commit(admin, &revoked).await?;
            for p in &change.revoked {
                leaders.remove(p);
                positions.remove(p);
                at_end.remove(p);
            }
            if !change.added.is_empty() {
                let committed =
                    group_offsets(admin, m.coordinator(), g, &args.topic, change.added.clone())
                        .await?;
                for p in &change.added {
                    let pos = start_position(*p, &args.topic, &committed, start, &found, &ends)?;
                    positions.insert(*p, pos);
                    leaders.insert(*p, all_leaders.get(p).copied().unwrap_or(-1));
                }
            }
        }
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for (p, l) in &leaders {
            by_leader.entry(*l).or_default().push(*p);
        }
        let mut refresh = false;
        for (leader, parts) in by_leader {
            if leader < 0 {
                refresh = true;
                continue;
            }
            let req = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(if args.exit { 100 } else { 500 })
                .with_min_bytes(1)
                .with_max_bytes(16 << 20)
                .with_isolation_level(1)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(args.topic.clone())))
                    .with_partitions(
                        parts
                            .iter()
                            .map(|p| {
                                FetchPartition::default()
                                    .with_partition(*p)
                                    .with_fetch_offset(positions[p])
                                    .with_partition_max_bytes(4 << 20)
                            })
                            .collect(),
                    )]);
            let r: FetchResponse = admin.call_node(leader, ApiKey::Fetch, v, &req).await?;
            check(r.error_code, None)?;
            for rt in &r.responses {
                for pd in &rt.partitions {
                    let p = pd.partition_index;
                    match pd.error_code {
                        0 => {}
                        6 | 74 | 75 | 5 => {
                            // NOT_LEADER_OR_FOLLOWER, FENCED/UNKNOWN_LEADER_EPOCH,
                            // LEADER_NOT_AVAILABLE: find the new leader.
                            refresh = true;
                            continue;
                        }
                        code => {
                            return Err(CliError::Kafka(format!(
                                "partition {p} at offset {}: {}",
                                positions[&p],
                                error_text(code, None)
                            )))
                        }
                    }
                    let mut records: Vec<Record> = Vec::new();
                    if let Some(bytes) = &pd.records {
                        let mut b = bytes.clone();
                        while bytes::Buf::has_remaining(&b) {
                            match RecordBatchDecoder::decode(&mut b) {
                                Ok(set) => records.extend(set.records),
                                // A partial batch at the end of the response.
                                Err(_) => break,
                            }
                        }
                    }
                    for rec in records {
                        if rec.offset < positions[&p] || rec.control {
                            continue;
                        }
                        let line = match format {
                            Format::Json => format!("{}\n", record_json(&args.topic, p, &rec)),
                            Format::Text => render(&args.format, &args.topic, p, &rec),
                        };
                        let _ = stdout.write_all(line.as_bytes());
                        positions.insert(p, rec.offset + 1);
                        printed += 1;
                        if printed >= limit {
                            break 'outer;
                        }
                    }
                    at_end.insert(p, positions[&p] >= pd.high_watermark);
                }
            }
        }
        let _ = stdout.flush();
        if refresh {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let md = admin.metadata(Some(vec![args.topic.clone()])).await?;
            if let Some(t) = md.topics.first() {
                for p in &t.partitions {
                    all_leaders.insert(p.partition_index, p.leader_id.0);
                    if let Some(l) = leaders.get_mut(&p.partition_index) {
                        *l = p.leader_id.0;
                    }
                }
            }
        }
        // In a group, the end is known once the coordinator has said what is ours.
        let assigned = member.as_ref().is_none_or(|m| m.owned().is_some());
        if args.exit
            && assigned
            && leaders
                .keys()
                .all(|p| at_end.get(p).copied().unwrap_or(false))
        {
            break;
        }
        if leaders.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let _ = stdout.flush();
    if let Some(mut m) = member {
        m.commit(admin, &positions).await?;
        m.leave(admin).await?;
    }
    Ok(Report::new(String::new(), serde_json::Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_positions() {
        assert_eq!(parse_start("beginning").unwrap(), Start::Beginning);
        assert_eq!(parse_start("end").unwrap(), Start::End);
        assert_eq!(parse_start("42").unwrap(), Start::Offset(42));
        assert_eq!(
            parse_start("@1700000000000").unwrap(),
            Start::Time(1_700_000_000_000)
        );
        assert!(parse_start("-3").is_err());
        assert!(parse_start("@soon").is_err());
    }

    #[test]
    fn kcat_format_tokens() {
        let mut headers = kafka_protocol::indexmap::IndexMap::new();
        headers.insert(
            StrBytes::from_static_str("h"),
            Some(Bytes::from_static(b"1")),
        );
        let r = Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: kafka_protocol::records::TimestampType::Creation,
            offset: 7,
            sequence: -1,
            timestamp: 99,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v")),
            headers,
        };
        assert_eq!(
            render("%t/%p@%o %k=%v [%h] %T 100%%\\n", "t", 2, &r),
            "t/2@7 k=v [h=1] 99 100%\n"
        );
    }
}
