//! Client telemetry (KIP-714): clients push their own metrics to the broker, which
//! exports them on `/metrics` next to its own (Kafka needs a plugin for that step).
//!
//! What clients send is decided by client-metrics subscriptions, Kafka's CLIENT_METRICS
//! config resources (`kafka-client-metrics.sh`, `weir client-metrics`): a name with
//! `metrics` (name prefixes, `*` for all), `interval.ms` and `match` (`client_id=regex`,
//! `client_software_name=regex`, ... all of which must match). They live in the
//! replicated metadata. GetTelemetrySubscriptions answers a client with the union of the
//! prefixes of the subscriptions matching it, the shortest of their intervals and an id
//! derived from both; with no match it asks for nothing and the client pushes nothing.
//! PushTelemetry checks the id and the pace, decompresses and decodes the OTLP payload
//! ([`otlp`]), and keeps the latest value of every number per client. The values are
//! rendered as Prometheus series (the metric name with dots as underscores, labelled
//! with the client's instance id, client id, software and the point's attributes) until
//! the client says it terminates or stays silent for three push intervals.

pub mod otlp;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use uuid::Uuid;

use crate::cluster::MetadataImage;

/// Kafka's `telemetry.max.bytes` default: the largest payload a client may push.
pub const MAX_BYTES: i32 = 1 << 20;
/// Push interval when a subscription does not set `interval.ms` (Kafka's default).
pub const DEFAULT_INTERVAL_MS: i32 = 300_000;
/// The `interval.ms` range Kafka accepts.
pub const INTERVAL_RANGE: (i32, i32) = (100, 3_600_000);
/// Codecs a client may compress pushes with, in Kafka's order of preference (zstd, lz4,
/// gzip, snappy).
pub const ACCEPTED_COMPRESSION: [i8; 4] = [4, 3, 1, 2];
/// The `match` keys of a subscription.
pub const MATCH_KEYS: &[&str] = &[
    "client_instance_id",
    "client_id",
    "client_software_name",
    "client_software_version",
    "client_source_address",
    "client_source_port",
];
/// The settings of a CLIENT_METRICS resource.
pub const SETTINGS: &[&str] = &["interval.ms", "match", "metrics"];

/// Who a client is, as the subscriptions' `match` sees it.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub client_id: String,
    pub software_name: String,
    pub software_version: String,
    pub source_address: String,
    pub source_port: u16,
}

/// What a client is asked to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub subscription_id: i32,
    /// Metric name prefixes; empty: push nothing; one empty prefix: everything.
    pub metrics: Vec<String>,
    pub interval_ms: i32,
}

/// Checks one CLIENT_METRICS setting, with Kafka's messages.
pub fn check_setting(name: &str, value: &str) -> Result<(), String> {
    match name {
        "metrics" => Ok(()),
        "interval.ms" => match value.parse::<i32>() {
            Ok(v) if (INTERVAL_RANGE.0..=INTERVAL_RANGE.1).contains(&v) => Ok(()),
            _ => Err(format!(
                "Invalid value {value} for interval.ms: expected {} to {}",
                INTERVAL_RANGE.0, INTERVAL_RANGE.1
            )),
        },
        "match" => {
            for pattern in list(value) {
                let (key, re) = pattern
                    .split_once('=')
                    .ok_or_else(|| format!("Illegal client matching pattern: {pattern}"))?;
                if !MATCH_KEYS.contains(&key) {
                    return Err(format!("Illegal client matching pattern: {pattern}"));
                }
                regex::Regex::new(re).map_err(|e| format!("Illegal regex pattern {re:?}: {e}"))?;
            }
            Ok(())
        }
        other => Err(format!("Unknown client metrics config: {other}")),
    }
}

fn list(value: &str) -> Vec<&str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// The subscriptions of `image` that match a client, merged.
pub fn select(image: &MetadataImage, instance: Uuid, client: &ClientInfo) -> Selection {
    let mut metrics: Vec<String> = Vec::new();
    let mut interval: Option<i32> = None;
    for configs in image.client_metrics.values() {
        let get = |k: &str| configs.get(k).map(String::as_str).unwrap_or("");
        if !matches(get("match"), instance, client) {
            continue;
        }
        for m in list(get("metrics")) {
            let prefix = if m == "*" { "" } else { m };
            if !metrics.iter().any(|p| p == prefix) {
                metrics.push(prefix.to_string());
            }
        }
        let i = get("interval.ms").parse().unwrap_or(DEFAULT_INTERVAL_MS);
        interval = Some(interval.map_or(i, |cur| cur.min(i)));
    }
    if metrics.iter().any(String::is_empty) {
        metrics = vec![String::new()];
    }
    metrics.sort();
    let interval_ms = interval.unwrap_or(DEFAULT_INTERVAL_MS);
    let id = crc32c::crc32c(format!("{}|{interval_ms}", metrics.join(",")).as_bytes());
    Selection {
        subscription_id: id as i32,
        metrics,
        interval_ms,
    }
}

fn matches(patterns: &str, instance: Uuid, client: &ClientInfo) -> bool {
    list(patterns).iter().all(|p| {
        let Some((key, re)) = p.split_once('=') else {
            return false;
        };
        let value = match key {
            "client_instance_id" => instance.to_string(),
            "client_id" => client.client_id.clone(),
            "client_software_name" => client.software_name.clone(),
            "client_software_version" => client.software_version.clone(),
            "client_source_address" => client.source_address.clone(),
            "client_source_port" => client.source_port.to_string(),
            _ => return false,
        };
        // Kafka matches the whole value.
        regex::Regex::new(&format!("^(?:{re})$")).is_ok_and(|r| r.is_match(&value))
    })
}

/// Why a push is refused; the handler maps each to Kafka's error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushError {
    /// No GetTelemetrySubscriptions seen from this instance, or an old subscription id.
    UnknownSubscription,
    /// Sooner than the push interval after the previous push.
    TooSoon,
    TooLarge,
    UnsupportedCompression,
    /// The payload does not decompress or decode.
    Invalid(String),
}

/// A pushed series: metric name and attributes.
type SeriesKey = (String, Vec<(String, String)>);

/// One client's state on this broker.
struct Client {
    info: ClientInfo,
    selection: Selection,
    last_push: Option<Instant>,
    last_seen: Instant,
    /// (metric name, attributes) -> (monotonic, value).
    values: BTreeMap<SeriesKey, (bool, f64)>,
}

/// The clients known to this broker and their latest pushed values.
#[derive(Default)]
pub struct ClientTelemetry {
    clients: Mutex<HashMap<Uuid, Client>>,
}

impl ClientTelemetry {
    /// GetTelemetrySubscriptions: the instance id (a new one when the client has none)
    /// and what it is asked to push.
    pub fn subscribe(
        &self,
        image: &MetadataImage,
        instance: Uuid,
        info: ClientInfo,
    ) -> (Uuid, Selection) {
        let instance = if instance.is_nil() {
            Uuid::new_v4()
        } else {
            instance
        };
        let selection = select(image, instance, &info);
        let now = Instant::now();
        let mut clients = self.clients.lock();
        self.expire(&mut clients, now);
        let c = clients.entry(instance).or_insert_with(|| Client {
            info: info.clone(),
            selection: selection.clone(),
            last_push: None,
            last_seen: now,
            values: BTreeMap::new(),
        });
        if c.selection != selection {
            // Another subscription: the values asked for before may no longer come.
            c.values.clear();
        }
        c.info = info;
        c.selection = selection.clone();
        c.last_seen = now;
        (instance, selection)
    }

    /// PushTelemetry with an already checked size and codec: decodes `payload`
    /// (decompressed) and keeps its numbers; `terminating` forgets the client after.
    pub fn push(
        &self,
        instance: Uuid,
        subscription_id: i32,
        terminating: bool,
        payload: &[u8],
    ) -> Result<usize, PushError> {
        let now = Instant::now();
        let mut clients = self.clients.lock();
        let c = clients
            .get_mut(&instance)
            .filter(|c| c.selection.subscription_id == subscription_id)
            .ok_or(PushError::UnknownSubscription)?;
        // Half an interval of slack for clients' jitter; a terminating client may
        // always send its last values.
        let min_gap = Duration::from_millis(c.selection.interval_ms.max(0) as u64 / 2);
        if !terminating && c.last_push.is_some_and(|t| now.duration_since(t) < min_gap) {
            return Err(PushError::TooSoon);
        }
        let points = otlp::decode(payload).map_err(|e| PushError::Invalid(e.to_string()))?;
        c.last_push = Some(now);
        c.last_seen = now;
        let n = points.len();
        for p in points {
            c.values
                .insert((p.name, p.attributes), (p.counter, p.value));
        }
        if terminating {
            clients.remove(&instance);
        }
        Ok(n)
    }

    /// Clients silent for three push intervals are forgotten.
    fn expire(&self, clients: &mut HashMap<Uuid, Client>, now: Instant) {
        clients.retain(|_, c| {
            let ttl = Duration::from_millis(c.selection.interval_ms.max(1000) as u64 * 3);
            now.duration_since(c.last_seen) <= ttl
        });
    }

    /// Clients known, for the broker's own gauge.
    pub fn clients(&self) -> usize {
        let mut clients = self.clients.lock();
        self.expire(&mut clients, Instant::now());
        clients.len()
    }

    /// The pushed values in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut clients = self.clients.lock();
        self.expire(&mut clients, Instant::now());
        // family -> (counter, lines)
        let mut families: BTreeMap<String, (bool, Vec<String>)> = BTreeMap::new();
        for (instance, c) in clients.iter() {
            for ((name, attrs), (counter, value)) in &c.values {
                let family = prometheus_name(name);
                let mut labels = vec![
                    ("client_instance_id".to_string(), instance.to_string()),
                    ("client_id".to_string(), c.info.client_id.clone()),
                    (
                        "client_software_name".to_string(),
                        c.info.software_name.clone(),
                    ),
                    (
                        "client_software_version".to_string(),
                        c.info.software_version.clone(),
                    ),
                ];
                for (k, v) in attrs {
                    let k = prometheus_name(k);
                    if !labels.iter().any(|(l, _)| *l == k) {
                        labels.push((k, v.clone()));
                    }
                }
                let rendered: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                let entry = families.entry(family.clone()).or_insert((*counter, vec![]));
                entry
                    .1
                    .push(format!("{family}{{{}}} {value}", rendered.join(",")));
            }
        }
        let mut out = String::new();
        for (family, (counter, lines)) in families {
            let kind = if counter { "counter" } else { "gauge" };
            let _ = writeln!(
                out,
                "# HELP {family} Pushed by clients (KIP-714 client telemetry)."
            );
            let _ = writeln!(out, "# TYPE {family} {kind}");
            for l in lines {
                let _ = writeln!(out, "{l}");
            }
        }
        out
    }
}

/// A metric or label name as Prometheus accepts it: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn prometheus_name(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(subs: &[(&str, &[(&str, &str)])]) -> MetadataImage {
        let mut img = MetadataImage::default();
        for (name, configs) in subs {
            img.client_metrics.insert(
                name.to_string(),
                configs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            );
        }
        img
    }

    fn client(id: &str) -> ClientInfo {
        ClientInfo {
            client_id: id.into(),
            software_name: "librdkafka".into(),
            ..ClientInfo::default()
        }
    }

    #[test]
    fn matching_subscriptions_merge_and_others_do_not_apply() {
        let img = image(&[
            (
                "producers",
                &[
                    ("metrics", "org.apache.kafka.producer."),
                    ("interval.ms", "5000"),
                    ("match", "client_id=app-.*"),
                ],
            ),
            (
                "all",
                &[
                    ("metrics", "org.apache.kafka.consumer."),
                    ("interval.ms", "60000"),
                ],
            ),
        ]);
        let s = select(&img, Uuid::nil(), &client("app-1"));
        assert_eq!(
            s.metrics,
            vec!["org.apache.kafka.consumer.", "org.apache.kafka.producer."]
        );
        assert_eq!(s.interval_ms, 5000);
        let other = select(&img, Uuid::nil(), &client("batch"));
        assert_eq!(other.metrics, vec!["org.apache.kafka.consumer."]);
        assert_ne!(other.subscription_id, s.subscription_id);
        // Nothing subscribed: nothing asked for, the default interval.
        let none = select(&MetadataImage::default(), Uuid::nil(), &client("x"));
        assert!(none.metrics.is_empty());
        assert_eq!(none.interval_ms, DEFAULT_INTERVAL_MS);
        // `*` asks for everything.
        let star = select(
            &image(&[("s", &[("metrics", "*")])]),
            Uuid::nil(),
            &client("x"),
        );
        assert_eq!(star.metrics, vec![""]);
    }

    #[test]
    fn settings_are_checked() {
        assert!(check_setting("interval.ms", "1000").is_ok());
        assert!(check_setting("interval.ms", "50").is_err());
        assert!(check_setting("match", "client_id=a.*,client_software_name=x").is_ok());
        assert!(check_setting("match", "host=a").is_err());
        assert!(check_setting("match", "client_id=(").is_err());
        assert!(check_setting("colour", "red").is_err());
    }

    #[test]
    fn pushes_need_the_current_subscription_and_respect_the_interval() {
        use prost::Message;
        let img = image(&[("s", &[("metrics", "*"), ("interval.ms", "60000")])]);
        let t = ClientTelemetry::default();
        let (id, sel) = t.subscribe(&img, Uuid::nil(), client("app"));
        assert!(!id.is_nil());
        let payload = otlp::MetricsData {
            resource_metrics: vec![otlp::ResourceMetrics {
                resource: None,
                scope_metrics: vec![otlp::ScopeMetrics {
                    metrics: vec![otlp::Metric {
                        name: "org.apache.kafka.producer.record.queue.time.avg".into(),
                        data: Some(otlp::Data::Gauge(otlp::Gauge {
                            data_points: vec![otlp::NumberDataPoint {
                                attributes: vec![],
                                value: Some(otlp::Number::AsDouble(2.5)),
                            }],
                        })),
                    }],
                }],
            }],
        }
        .encode_to_vec();
        assert_eq!(
            t.push(id, sel.subscription_id + 1, false, &payload),
            Err(PushError::UnknownSubscription)
        );
        assert_eq!(
            t.push(Uuid::new_v4(), sel.subscription_id, false, &payload),
            Err(PushError::UnknownSubscription)
        );
        assert_eq!(t.push(id, sel.subscription_id, false, &payload), Ok(1));
        assert_eq!(
            t.push(id, sel.subscription_id, false, &payload),
            Err(PushError::TooSoon)
        );
        let text = t.render();
        assert!(text.contains("# TYPE org_apache_kafka_producer_record_queue_time_avg gauge"));
        assert!(text.contains(&format!("client_instance_id=\"{id}\"")));
        assert!(text.contains("client_id=\"app\""));
        assert!(text.contains("} 2.5\n"), "{text}");
        assert!(matches!(
            t.push(id, sel.subscription_id, true, b"\xff\xff"),
            Err(PushError::Invalid(_))
        ));
        // The last push of a terminating client is kept no longer than the client.
        assert_eq!(t.push(id, sel.subscription_id, true, &payload), Ok(1));
        assert_eq!(t.clients(), 0);
        assert!(t.render().is_empty());
    }
}
