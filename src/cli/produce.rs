//! `weir produce`: write records for a quick check, as `kafka-console-producer.sh` and
//! `kcat -P` do. Values come from the arguments or, one per line, from standard input; a
//! key separator splits each line into key and value. Records go to an explicit
//! partition, to Kafka's default partition for their key (murmur2, so keyed records land
//! where Kafka's own clients put them), or, unkeyed, all to one partition picked at
//! random (the sticky partitioner's choice for a single batch).

use std::collections::BTreeMap;
use std::io::BufRead;

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use serde_json::json;

use super::table::render;
use super::{error_text, parse_pairs, Admin, CliError, Report};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ProduceArgs {
    pub topic: String,
    /// Values to write; without any, one record per line of standard input.
    pub values: Vec<String>,
    /// The key of every record.
    #[arg(long, short = 'k', conflicts_with = "key_separator")]
    pub key: Option<String>,
    /// Split each line into key and value at the first SEP.
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// A header of every record (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME=VALUE")]
    pub headers: Vec<String>,
    /// Write to this partition.
    #[arg(long, short = 'p')]
    pub partition: Option<i32>,
    /// Batch compression.
    #[arg(long, value_enum, default_value_t = Codec::None)]
    pub compression: Codec,
    /// all (-1) or 1.
    #[arg(long, default_value = "all")]
    pub acks: String,
}

/// Kafka's murmur2 (`Utils.murmur2`), which its default partitioner applies to keys.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    if tail.len() >= 3 {
        h ^= (tail[2] as u32) << 16;
    }
    if tail.len() >= 2 {
        h ^= (tail[1] as u32) << 8;
    }
    if !tail.is_empty() {
        h ^= tail[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default partitioner picks for `key` among `count`.
pub fn key_partition(key: &[u8], count: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % count.max(1)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub async fn run(admin: &mut Admin, args: &ProduceArgs) -> Result<Report, CliError> {
    let acks: i16 = match args.acks.as_str() {
        "all" | "-1" => -1,
        "1" => 1,
        other => return Err(CliError::Usage(format!("--acks {other}: use all or 1"))),
    };
    let headers = parse_pairs(&args.headers)?;
    let lines: Vec<String> = if args.values.is_empty() {
        std::io::stdin()
            .lock()
            .lines()
            .collect::<Result<_, _>>()
            .map_err(|e| CliError::Usage(format!("cannot read standard input: {e}")))?
    } else {
        args.values.clone()
    };
    let records: Vec<(Option<String>, String)> = lines
        .into_iter()
        .map(|l| match &args.key_separator {
            Some(sep) => match l.split_once(sep.as_str()) {
                Some((k, v)) => (Some(k.to_string()), v.to_string()),
                None => (None, l),
            },
            None => (args.key.clone(), l),
        })
        .collect();
    let leaders = admin.leaders(&args.topic).await?;
    let count = leaders.len() as i32;
    if let Some(p) = args.partition {
        if !leaders.contains_key(&p) {
            return Err(CliError::Usage(format!(
                "{} has no partition {p} (it has {count})",
                args.topic
            )));
        }
    }
    let sticky = (now_ms().unsigned_abs() % count.max(1) as u64) as i32;
    let mut by_partition: BTreeMap<i32, Vec<Record>> = BTreeMap::new();
    let header_map: IndexMap<StrBytes, Option<Bytes>> = headers
        .iter()
        .map(|(k, v)| {
            (
                StrBytes::from_string(k.clone()),
                Some(Bytes::from(v.clone().into_bytes())),
            )
        })
        .collect();
    for (key, value) in records {
        let p = match (args.partition, &key) {
            (Some(p), _) => p,
            (None, Some(k)) => key_partition(k.as_bytes(), count),
            (None, None) => sticky,
        };
        let list = by_partition.entry(p).or_default();
        let i = list.len();
        list.push(Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // With no producer id, "no sequence" is -1 for the batch: the encoder takes
            // the base from the first record and splits batches where offset - sequence
            // changes.
            sequence: i as i32 - 1,
            timestamp: now_ms(),
            key: key.map(|k| Bytes::from(k.into_bytes())),
            value: Some(Bytes::from(value.into_bytes())),
            headers: header_map.clone(),
        });
    }
    let compression = match args.compression {
        Codec::None => Compression::None,
        Codec::Gzip => Compression::Gzip,
        Codec::Snappy => Compression::Snappy,
        Codec::Lz4 => Compression::Lz4,
        Codec::Zstd => Compression::Zstd,
    };
    let v = admin.version(ApiKey::Produce, 3, 9)?;
    let mut rows = Vec::new();
    let mut json = Vec::new();
    let mut failed = Vec::new();
    for (p, recs) in by_partition {
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &recs,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .map_err(|e| CliError::Usage(format!("cannot encode the records: {e}")))?;
        let leader = leaders.get(&p).copied().unwrap_or(-1);
        if leader < 0 {
            failed.push(format!("partition {p}: LEADER_NOT_AVAILABLE"));
            continue;
        }
        let req = ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(admin.timeout.as_millis() as i32)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(args.topic.clone())))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(p)
                    .with_records(Some(buf.freeze()))])]);
        let r: ProduceResponse = admin.call_node(leader, ApiKey::Produce, v, &req).await?;
        let pr = r
            .responses
            .first()
            .and_then(|t| t.partition_responses.first())
            .ok_or_else(|| CliError::Kafka("empty Produce answer".into()))?;
        if pr.error_code != 0 {
            failed.push(format!(
                "partition {p}: {}",
                error_text(pr.error_code, pr.error_message.as_deref())
            ));
            continue;
        }
        rows.push(vec![
            p.to_string(),
            recs.len().to_string(),
            pr.base_offset.to_string(),
        ]);
        json.push(json!({"partition": p, "records": recs.len(), "base_offset": pr.base_offset}));
    }
    if !failed.is_empty() {
        return Err(CliError::Kafka(failed.join("\n")));
    }
    Ok(Report::new(
        render(&["PARTITION", "RECORDS", "BASE-OFFSET"], &rows),
        json!(json),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafkas_partitioner() {
        // Kafka's own test vectors (UtilsTest.testMurmur2).
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58897971
        );
        assert_eq!(murmur2(b"abc"), 479470107);
        assert!((0..3).contains(&key_partition(b"any key", 3)));
    }
}
