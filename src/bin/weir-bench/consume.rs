//! The consumer process: assigns every partition of a topic from the beginning (no
//! group, so no rebalance in the measurement) and reads until it has the expected
//! number of messages. With --e2e it reads each payload's send stamp (CLOCK_MONOTONIC,
//! shared by all processes) and reports produce-to-consume latency.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::stats::{mono_ns, ns_to_us, percentiles_us, self_cpu_secs, Lat};

#[derive(Args, Debug, Clone)]
pub struct ConsumeArgs {
    #[arg(long)]
    pub bootstrap: String,
    /// Extra librdkafka properties, name=value (repeatable).
    #[arg(long = "set")]
    pub set: Vec<String>,
    #[arg(long)]
    pub topic: String,
    /// Partitions 0..N are assigned.
    #[arg(long, default_value_t = 1)]
    pub partitions: u32,
    /// Stop after this many messages (0: only on idle or deadline).
    #[arg(long, default_value_t = 0)]
    pub expect: u64,
    /// Read the send stamp of each payload and report end-to-end latency.
    #[arg(long)]
    pub e2e: bool,
    /// With --e2e: messages stamped within this many seconds of the first are not sampled.
    #[arg(long, default_value_t = 0.5)]
    pub warmup: f64,
    /// Stop after this long without a message, once one has arrived.
    #[arg(long, default_value_t = 3.0)]
    pub idle: f64,
    /// Give up after this many seconds in all.
    #[arg(long, default_value_t = 300.0)]
    pub deadline: f64,
    /// Give up when no message has arrived this many seconds after assign.
    #[arg(long, default_value_t = 30.0)]
    pub first_timeout: f64,
    /// Print READY on stdout once assigned and polling (before the result line).
    #[arg(long)]
    pub ready: bool,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct ConsumeResult {
    pub msgs: u64,
    pub bytes: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// From assign to the first message.
    pub startup_s: f64,
    /// From the first message to the last.
    pub secs: f64,
    pub msgs_per_s: f64,
    /// Payload MB (10^6 bytes) per second.
    pub mb_per_s: f64,
    /// With --e2e: scheduled send time to receipt.
    pub lat: Option<Lat>,
    pub cpu_s: f64,
    /// Stopped by the deadline, the first-message timeout or idleness before `expect`
    /// messages.
    pub incomplete: bool,
}

struct Ctx;

impl ClientContext for Ctx {
    fn error(&self, error: KafkaError, reason: &str) {
        eprintln!("weir-bench consume: client error: {error}: {reason}");
    }
}

impl ConsumerContext for Ctx {}

pub fn main(args: ConsumeArgs) -> anyhow::Result<()> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.bootstrap)
        .set("client.id", "weir-bench-consumer")
        .set("group.id", format!("weir-bench-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false");
    for kv in &args.set {
        let (k, v) = kv.split_once('=').context("--set takes name=value")?;
        config.set(k, v);
    }
    let consumer: BaseConsumer<Ctx> = config
        .create_with_context(Ctx)
        .context("creating the consumer")?;
    consumer
        .client()
        .fetch_metadata(Some(&args.topic), Duration::from_secs(30))
        .context("metadata")?;
    let mut tpl = TopicPartitionList::with_capacity(args.partitions as usize);
    for p in 0..args.partitions as i32 {
        tpl.add_partition_offset(&args.topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl).context("assign")?;
    let assigned = mono_ns();
    if args.ready {
        consumer.poll(Duration::from_millis(100));
        println!("READY");
        std::io::stdout().flush()?;
    }
    let mut r = ConsumeResult::default();
    let (mut first, mut last, mut first_stamp) = (0u64, 0u64, 0u64);
    let warmup_ns = (args.warmup * 1e9) as u64;
    let mut lat_us: Vec<u32> = Vec::new();
    let deadline = assigned + (args.deadline * 1e9) as u64;
    let idle_ns = (args.idle * 1e9) as u64;
    loop {
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(m)) => {
                let now = mono_ns();
                let payload = m.payload().unwrap_or_default();
                if r.msgs == 0 {
                    first = now;
                }
                last = now;
                r.msgs += 1;
                r.bytes += payload.len() as u64;
                if args.e2e && payload.len() >= 8 {
                    let stamp = u64::from_le_bytes(payload[..8].try_into().unwrap());
                    if first_stamp == 0 {
                        first_stamp = stamp;
                    }
                    if stamp >= first_stamp + warmup_ns {
                        lat_us.push(ns_to_us(now.saturating_sub(stamp)));
                    }
                }
                if args.expect > 0 && r.msgs >= args.expect {
                    break;
                }
            }
            Some(Err(e)) => {
                r.errors += 1;
                if r.first_error.is_none() {
                    r.first_error = Some(e.to_string());
                }
            }
            None => {}
        }
        let now = mono_ns();
        let first_late = r.msgs == 0 && now - assigned >= (args.first_timeout * 1e9) as u64;
        if now >= deadline || first_late || (r.msgs > 0 && now - last >= idle_ns) {
            r.incomplete = args.expect > 0;
            break;
        }
    }
    r.startup_s = first.saturating_sub(assigned) as f64 / 1e9;
    r.secs = last.saturating_sub(first) as f64 / 1e9;
    if r.secs > 0.0 {
        r.msgs_per_s = r.msgs.saturating_sub(1) as f64 / r.secs;
        r.mb_per_s =
            r.bytes as f64 * (r.msgs.saturating_sub(1) as f64 / r.msgs as f64) / r.secs / 1e6;
    }
    if args.e2e {
        r.lat = Some(percentiles_us(&mut lat_us));
    }
    r.cpu_s = self_cpu_secs();
    println!("{}", serde_json::to_string(&r)?);
    Ok(())
}
