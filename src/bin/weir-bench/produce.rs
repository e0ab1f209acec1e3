//! The producer process: librdkafka batching as applications do (linger.ms 5, batch.size
//! 1 MiB), as fast as it can or at a fixed rate, latency from send to delivery report.
//!
//! Every payload starts with the CLOCK_MONOTONIC nanoseconds it was (meant to be) sent
//! at, so the consumer process can measure end-to-end latency. At a fixed rate that is
//! the scheduled time, not the time the send happened, so a stalled producer shows up
//! as latency instead of hiding it (no coordinated omission).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use serde::{Deserialize, Serialize};

use crate::stats::{mono_ns, ns_to_us, percentiles_us, self_cpu_secs, Lat, Rng};

#[derive(Args, Debug, Clone)]
pub struct ProduceArgs {
    #[arg(long)]
    pub bootstrap: String,
    #[arg(long)]
    pub topic: String,
    /// Record value size in bytes (no key).
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// 0, 1 or all.
    #[arg(long, default_value = "1")]
    pub acks: String,
    /// compression.type: none, lz4, zstd, ...
    #[arg(long, default_value = "none")]
    pub compression: String,
    /// Seconds measured, after the warm-up.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Seconds sent before the measured window (not counted).
    #[arg(long, default_value_t = 0.5)]
    pub warmup: f64,
    /// Stop sending after this many payload bytes (warm-up included).
    #[arg(long)]
    pub max_bytes: Option<u64>,
    /// Messages per second (default: as fast as possible).
    #[arg(long)]
    pub rate: Option<f64>,
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u32,
    /// Seconds to wait for outstanding deliveries after sending stops.
    #[arg(long, default_value_t = 60)]
    pub flush_timeout: u64,
    /// Extra librdkafka properties, name=value (repeatable).
    #[arg(long = "set")]
    pub set: Vec<String>,
}

/// What the producer process prints (one JSON line).
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct ProduceResult {
    /// Messages handed to librdkafka.
    pub sent: u64,
    /// Delivery reports without error, all of them (warm-up and drain included).
    pub delivered: u64,
    pub delivered_bytes: u64,
    /// Failed deliveries, and messages still undelivered when the producer gave up.
    pub errors: u64,
    pub first_error: Option<String>,
    /// The measured window: from the end of the warm-up until sending stopped.
    pub window_s: f64,
    /// Successful deliveries reported inside the window.
    pub window_msgs: u64,
    pub msgs_per_s: f64,
    /// Payload bytes per second, MB = 10^6 bytes.
    pub mb_per_s: f64,
    /// Send to delivery report of the messages delivered inside the window.
    pub lat: Lat,
    /// Times librdkafka's queue was full and the producer had to wait.
    pub queue_full: u64,
    /// CPU seconds of this process.
    pub cpu_s: f64,
    /// Wall seconds from the first send to the last delivery report.
    pub total_s: f64,
}

#[derive(Default)]
struct State {
    window_start: u64,
    window_end: u64,
    delivered: u64,
    delivered_bytes: u64,
    window_msgs: u64,
    errors: u64,
    first_error: Option<String>,
    lat_us: Vec<u32>,
    last_delivery: u64,
}

struct Ctx {
    size: u64,
    state: Mutex<State>,
    /// Delivery reports served (any outcome), to tell when a poll found none.
    reports: AtomicU64,
}

impl ClientContext for Ctx {
    fn error(&self, error: KafkaError, reason: &str) {
        eprintln!("weir-bench produce: client error: {error}: {reason}");
    }
}

impl ProducerContext for Ctx {
    /// The send time, CLOCK_MONOTONIC nanoseconds.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_ns: usize) {
        self.reports.fetch_add(1, Ordering::Relaxed);
        let now = mono_ns();
        let mut s = self.state.lock().unwrap();
        match result {
            Ok(_) => {
                s.delivered += 1;
                s.delivered_bytes += self.size;
                s.last_delivery = now;
                if now >= s.window_start && now <= s.window_end {
                    s.window_msgs += 1;
                    s.lat_us.push(ns_to_us(now.saturating_sub(sent_ns as u64)));
                }
            }
            Err((e, _)) => {
                s.errors += 1;
                if s.first_error.is_none() {
                    s.first_error = Some(e.to_string());
                }
            }
        }
    }
}

/// Payloads shaped like application events (JSON-ish text with varying fields), so
/// that lz4 finds what it finds in real data rather than a run of one byte. A pool of
/// distinct payloads is cycled through; their first 8 bytes are overwritten by the
/// send-time stamp.
pub fn payload_pool(size: usize, count: usize) -> Vec<Vec<u8>> {
    const WORDS: &[&str] = &[
        "checkout", "view", "click", "search", "cart", "login", "logout", "refund", "mobile",
        "desktop", "eu-west", "us-east", "premium", "basic", "trial", "campaign", "organic",
        "referral", "shoes", "books", "garden", "kitchen", "toys", "music",
    ];
    let mut rng = Rng::new(42);
    (0..count)
        .map(|i| {
            let mut s = format!(
                "STAMP___{{\"seq\":{i},\"user\":\"u{:06}\",\"event\":\"{}\",\"item\":\"sku-{:07}\",\
                 \"price\":{}.{:02},\"region\":\"{}\",\"tags\":[",
                rng.below(1_000_000),
                WORDS[rng.below(WORDS.len() as u64) as usize],
                rng.below(10_000_000),
                rng.below(500),
                rng.below(100),
                WORDS[rng.below(WORDS.len() as u64) as usize],
            );
            while s.len() < size {
                s.push_str(&format!(
                    "\"{}:{}\",",
                    WORDS[rng.below(WORDS.len() as u64) as usize],
                    rng.below(100_000)
                ));
            }
            let mut v = s.into_bytes();
            v.truncate(size);
            v.resize(size, b' ');
            v
        })
        .collect()
}

fn config(args: &ProduceArgs) -> anyhow::Result<ClientConfig> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &args.bootstrap)
        .set("client.id", "weir-bench-producer")
        .set("linger.ms", args.linger_ms.to_string())
        .set("batch.size", (1 << 20).to_string())
        .set("acks", &args.acks)
        .set("compression.type", &args.compression)
        // Bound the client's queue (default 1 GiB / 100,000 messages) to 32 MiB, so that
        // at full speed latency is not mostly time spent queued in the client.
        .set("queue.buffering.max.kbytes", "32768");
    for kv in &args.set {
        let (k, v) = kv.split_once('=').context("--set takes name=value")?;
        c.set(k, v);
    }
    Ok(c)
}

/// Serve every delivery report waiting. One `poll` serves one report event (one produce
/// response); polling once per pass let reports pile up in the client at linger.ms 0
/// (10k+ responses a second), and send-to-delivery latency then measured this loop, not
/// the broker (p50 5.3 ms, 0.18 ms when drained, at 50 MB/s).
fn serve_reports(producer: &BaseProducer<Ctx>) {
    loop {
        let before = producer.context().reports.load(Ordering::Relaxed);
        producer.poll(Duration::ZERO);
        if producer.context().reports.load(Ordering::Relaxed) == before {
            return;
        }
    }
}

pub fn main(args: ProduceArgs) -> anyhow::Result<()> {
    let r = produce(&args)?;
    println!("{}", serde_json::to_string(&r)?);
    Ok(())
}

pub fn produce(args: &ProduceArgs) -> anyhow::Result<ProduceResult> {
    if args.size < 8 {
        bail!("--size must be at least 8 (the timestamp)");
    }
    let ctx = Ctx {
        size: args.size as u64,
        state: Mutex::new(State::default()),
        reports: AtomicU64::new(0),
    };
    let producer: BaseProducer<Ctx> = config(args)?
        .create_with_context(ctx)
        .context("creating the producer")?;
    // Connect and learn the topic before the clock starts.
    producer
        .client()
        .fetch_metadata(Some(&args.topic), Duration::from_secs(30))
        .context("metadata")?;

    let pool = payload_pool(args.size, (4 << 20) / args.size.max(1));
    let mut buf = vec![0u8; args.size];
    let start = mono_ns();
    let window_start = start + (args.warmup * 1e9) as u64;
    let deadline = window_start + (args.seconds * 1e9) as u64;
    {
        let mut s = producer.context().state.lock().unwrap();
        s.window_start = window_start;
        s.window_end = u64::MAX;
        s.lat_us.reserve(1 << 20);
    }
    let max_bytes = args.max_bytes.unwrap_or(u64::MAX);
    let ns_per_msg = args.rate.map(|r| 1e9 / r);
    let (mut sent, mut sent_bytes, mut queue_full) = (0u64, 0u64, 0u64);
    let stop = loop {
        let now = mono_ns();
        if now >= deadline || sent_bytes >= max_bytes {
            break now.min(deadline);
        }
        let stamp = match ns_per_msg {
            Some(ns) => {
                let due = start + (sent as f64 * ns) as u64;
                if due > now {
                    // librdkafka's poll timeouts are whole milliseconds (a shorter one
                    // spins), so serve delivery reports without waiting and sleep.
                    serve_reports(&producer);
                    std::thread::sleep(Duration::from_nanos((due - now).min(1_000_000)));
                    continue;
                }
                due
            }
            None => now,
        };
        buf.copy_from_slice(&pool[(sent as usize) % pool.len()]);
        buf[..8].copy_from_slice(&stamp.to_le_bytes());
        let record = BaseRecord::<(), [u8], usize>::with_opaque_to(&args.topic, stamp as usize)
            .payload(&buf[..]);
        match producer.send(record) {
            Ok(()) => {
                sent += 1;
                sent_bytes += args.size as u64;
                if sent % 64 == 0 {
                    serve_reports(&producer);
                }
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                // Retried with a new stamp at full speed (latency counts from the
                // successful send), with the scheduled one at a fixed rate.
                queue_full += 1;
                producer.poll(Duration::from_millis(1));
            }
            Err((e, _)) => bail!("send: {e}"),
        }
    };
    producer.context().state.lock().unwrap().window_end = stop;
    // A broker that stops answering must not hang the run: give up after a while and
    // report what was not delivered.
    let flush = producer.flush(Duration::from_secs(args.flush_timeout));
    let undelivered = producer.in_flight_count().max(0) as u64;
    let cpu_s = self_cpu_secs();
    if let Err(e) = flush {
        let mut s = producer.context().state.lock().unwrap();
        s.errors += undelivered;
        if s.first_error.is_none() {
            s.first_error = Some(format!(
                "{undelivered} messages still undelivered {} s after sending stopped: {e}",
                args.flush_timeout
            ));
        }
    }

    let mut s = producer.context().state.lock().unwrap();
    let window_s = stop.saturating_sub(window_start) as f64 / 1e9;
    let lat = percentiles_us(&mut s.lat_us);
    Ok(ProduceResult {
        sent,
        delivered: s.delivered,
        delivered_bytes: s.delivered_bytes,
        errors: s.errors,
        first_error: s.first_error.clone(),
        window_s,
        window_msgs: s.window_msgs,
        msgs_per_s: s.window_msgs as f64 / window_s.max(1e-9),
        mb_per_s: s.window_msgs as f64 * args.size as f64 / window_s.max(1e-9) / 1e6,
        lat,
        queue_full,
        cpu_s,
        total_s: s.last_delivery.saturating_sub(start) as f64 / 1e9,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_have_the_size_and_differ() {
        for size in [100, 1024] {
            let pool = payload_pool(size, 64);
            assert!(pool.iter().all(|p| p.len() == size));
            assert_ne!(pool[0], pool[1]);
        }
    }
}
