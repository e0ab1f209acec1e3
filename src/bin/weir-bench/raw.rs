//! A minimal Kafka client that costs next to no CPU, to measure the broker's own share.
//!
//! On this 2-CPU machine librdkafka and the broker share the CPUs, and librdkafka spends
//! more CPU per GB than the broker (building and parsing records one by one). The rows
//! of these children tell what the broker does when the client costs almost nothing:
//! `raw-produce` sends one pre-encoded record batch over and over (a few requests in
//! flight, as librdkafka pipelines), `raw-consume` fetches a partition from the start
//! with librdkafka's fetch sizes and counts records from the batch headers without
//! parsing them. They are not Kafka clients anyone would use; the librdkafka rows remain
//! the benchmark, these rows explain them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use bytes::{Bytes, BytesMut};
use clap::Args;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, FetchRequest, FetchResponse, ProduceRequest, ProduceResponse, RequestHeader,
    ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use serde::{Deserialize, Serialize};
use weir::log::batch::{self, BatchBuilder};

use crate::stats::{mono_ns, ns_to_us, percentiles_us, self_cpu_secs, Lat};

const PRODUCE_VERSION: i16 = 9;
const FETCH_VERSION: i16 = 12;

#[derive(Args, Debug)]
pub struct RawProduceArgs {
    #[arg(long)]
    pub bootstrap: String,
    #[arg(long)]
    pub topic: String,
    /// Record value size in bytes.
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// Bytes per batch, framing included (librdkafka's batch.size in the other rows).
    #[arg(long, default_value_t = 1 << 20)]
    pub batch_bytes: usize,
    /// 0, 1 or -1 (all).
    #[arg(long, default_value_t = 1)]
    pub acks: i16,
    /// Requests in flight on the connection.
    #[arg(long, default_value_t = 5)]
    pub in_flight: usize,
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    #[arg(long, default_value_t = 0.5)]
    pub warmup: f64,
}

#[derive(Args, Debug)]
pub struct RawConsumeArgs {
    #[arg(long)]
    pub bootstrap: String,
    #[arg(long)]
    pub topic: String,
    /// Stop once this many records were read.
    #[arg(long)]
    pub expect: u64,
    /// Record value size of the topic (all records the same size, as the producers write).
    #[arg(long, default_value_t = 1024)]
    pub size: u64,
    /// Per-partition fetch size (librdkafka's max.partition.fetch.bytes default).
    #[arg(long, default_value_t = 1 << 20)]
    pub partition_max_bytes: i32,
    #[arg(long, default_value_t = 120.0)]
    pub deadline: f64,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct RawResult {
    /// produce: acknowledged inside the measured window; consume: read.
    pub msgs: u64,
    /// produce: acknowledged in all (warm-up and drain included), what a consumer finds.
    pub total_msgs: u64,
    /// Record value bytes (what the librdkafka rows count as MB).
    pub bytes: u64,
    pub secs: f64,
    pub msgs_per_s: f64,
    pub mb_per_s: f64,
    /// produce: request to response.
    pub lat: Option<Lat>,
    pub cpu_s: f64,
    pub errors: u64,
    pub first_error: Option<String>,
}

/// One connection speaking frames: a size prefix, then the bytes.
struct Conn {
    stream: TcpStream,
}

impl Conn {
    fn open(bootstrap: &str) -> anyhow::Result<Conn> {
        let stream =
            TcpStream::connect(bootstrap).with_context(|| format!("connecting to {bootstrap}"))?;
        stream.set_nodelay(true)?;
        Ok(Conn { stream })
    }

    /// The next response frame (without its size prefix).
    fn read_frame(&mut self) -> anyhow::Result<Bytes> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len)?;
        let len = i32::from_be_bytes(len);
        if !(0..=256 << 20).contains(&len) {
            bail!("response frame of {len} bytes");
        }
        let mut buf = vec![0u8; len as usize];
        self.stream.read_exact(&mut buf)?;
        Ok(Bytes::from(buf))
    }
}

/// A request frame (size prefix included) whose correlation id sits at bytes 8..12.
fn frame<T: Encodable>(api: ApiKey, version: i16, body: &T) -> anyhow::Result<Vec<u8>> {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_client_id(Some(StrBytes::from_static_str("weir-bench-raw")));
    let hv = api.request_header_version(version);
    let mut out = BytesMut::new();
    out.extend_from_slice(&[0; 4]);
    header.encode(&mut out, hv)?;
    body.encode(&mut out, version)?;
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    Ok(out.to_vec())
}

fn set_correlation(frame: &mut [u8], id: i32) {
    frame[8..12].copy_from_slice(&id.to_be_bytes());
}

fn response<T: Decodable>(api: ApiKey, version: i16, mut frame: Bytes) -> anyhow::Result<(i32, T)> {
    let header = ResponseHeader::decode(&mut frame, api.response_header_version(version))?;
    Ok((header.correlation_id, T::decode(&mut frame, version)?))
}

pub fn produce(args: RawProduceArgs) -> anyhow::Result<()> {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    // The whole batch (header, and up to about 20 bytes of framing per record) fits in
    // batch_bytes, as librdkafka's batch.size and the broker's max.message.bytes count.
    let per_batch = (args.batch_bytes.saturating_sub(61) / (args.size + 20)).max(1);
    let value: Vec<u8> = (0..args.size).map(|i| b'a' + (i % 26) as u8).collect();
    let mut builder = BatchBuilder::new(0);
    for _ in 0..per_batch {
        builder = builder.record(None, Some(&value), now_ms);
    }
    let batch = Bytes::from(builder.build());
    let req = ProduceRequest::default()
        .with_acks(args.acks)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(args.topic.clone())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch))])]);
    let mut request = frame(ApiKey::Produce, PRODUCE_VERSION, &req)?;
    let mut conn = Conn::open(&args.bootstrap)?;
    let start = mono_ns();
    let window_start = start + (args.warmup * 1e9) as u64;
    let end = window_start + (args.seconds * 1e9) as u64;
    let mut sent_at = std::collections::VecDeque::new();
    let mut next_id = 0i32;
    let mut result = RawResult::default();
    let mut lat_us = Vec::new();
    let cpu0 = self_cpu_secs();
    loop {
        let now = mono_ns();
        if now < end && sent_at.len() < args.in_flight.max(1) {
            set_correlation(&mut request, next_id);
            conn.stream.write_all(&request)?;
            sent_at.push_back((next_id, now));
            next_id = next_id.wrapping_add(1);
            continue;
        }
        let Some((id, at)) = sent_at.pop_front() else {
            break;
        };
        if args.acks == 0 {
            continue;
        }
        let (corr, resp): (i32, ProduceResponse) =
            response(ApiKey::Produce, PRODUCE_VERSION, conn.read_frame()?)?;
        if corr != id {
            bail!("response to request {corr} where {id} was next");
        }
        let done = mono_ns();
        let code = resp
            .responses
            .iter()
            .flat_map(|t| t.partition_responses.iter())
            .map(|p| p.error_code)
            .find(|c| *c != 0);
        if code.is_none() {
            result.total_msgs += per_batch as u64;
        }
        if let Some(code) = code {
            result.errors += 1;
            result
                .first_error
                .get_or_insert(format!("error code {code}"));
        } else if at >= window_start && done <= end {
            result.msgs += per_batch as u64;
            lat_us.push(ns_to_us(done - at));
        }
    }
    result.secs = args.seconds;
    result.bytes = result.msgs * args.size as u64;
    result.msgs_per_s = result.msgs as f64 / result.secs;
    result.mb_per_s = result.bytes as f64 / 1e6 / result.secs;
    result.lat = Some(percentiles_us(&mut lat_us));
    result.cpu_s = self_cpu_secs() - cpu0;
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}

pub fn consume(args: RawConsumeArgs) -> anyhow::Result<()> {
    let mut conn = Conn::open(&args.bootstrap)?;
    let topic = TopicName(StrBytes::from_string(args.topic.clone()));
    let mut offset = 0i64;
    let mut result = RawResult::default();
    let cpu0 = self_cpu_secs();
    let start = mono_ns();
    let mut first: Option<u64> = None;
    let mut last = start;
    let mut id = 0i32;
    while result.msgs < args.expect {
        if mono_ns() - start > (args.deadline * 1e9) as u64 {
            result.first_error = Some(format!(
                "deadline: {} of {} records",
                result.msgs, args.expect
            ));
            result.errors += 1;
            break;
        }
        let req = FetchRequest::default()
            .with_replica_id(kafka_protocol::messages::BrokerId(-1))
            .with_max_wait_ms(500)
            .with_min_bytes(1)
            .with_max_bytes(50 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(topic.clone())
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(args.partition_max_bytes)])]);
        let mut request = frame(ApiKey::Fetch, FETCH_VERSION, &req)?;
        set_correlation(&mut request, id);
        id = id.wrapping_add(1);
        conn.stream.write_all(&request)?;
        let (_, resp): (i32, FetchResponse) =
            response(ApiKey::Fetch, FETCH_VERSION, conn.read_frame()?)?;
        let Some(p) = resp.responses.first().and_then(|t| t.partitions.first()) else {
            bail!("fetch response without the partition");
        };
        if p.error_code != 0 {
            bail!("fetch error code {}", p.error_code);
        }
        let records = p.records.clone().unwrap_or_default();
        let (n, next) = walk(&records);
        if n > 0 {
            first.get_or_insert_with(mono_ns);
            last = mono_ns();
        }
        result.msgs += n;
        result.bytes += n * args.size;
        offset = next.unwrap_or(offset);
    }
    result.secs = (last - first.unwrap_or(last)) as f64 / 1e9;
    result.msgs_per_s = result.msgs as f64 / result.secs.max(1e-9);
    result.mb_per_s = result.bytes as f64 / 1e6 / result.secs.max(1e-9);
    result.cpu_s = self_cpu_secs() - cpu0;
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}

/// Records in the whole batches of `bytes` (from the headers) and the offset after the
/// last one.
fn walk(bytes: &[u8]) -> (u64, Option<i64>) {
    let (mut count, mut next) = (0u64, None);
    for (h, _) in batch::batches(bytes, false).map_while(Result::ok) {
        count += h.record_count.max(0) as u64;
        next = Some(h.last_offset() + 1);
    }
    (count, next)
}
