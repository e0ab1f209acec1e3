//! Metric handles resolved once and reused on the request path.
//!
//! `metrics::counter!(name, labels)` hashes the name and labels and looks the series up
//! in the registry on every call, allocating the label strings first. Produce and fetch
//! count bytes and records per topic for every partition of every request, so at small
//! batch sizes those lookups were a visible share of the broker's CPU. The handles here
//! are looked up once per topic (or per API and version) and then only incremented.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use kafka_protocol::messages::ApiKey;
use metrics::Counter;
use parking_lot::RwLock;

use crate::metrics as m;

/// A topic's traffic counters.
pub struct TopicCounters {
    pub bytes_in: Counter,
    pub records_in: Counter,
    pub bytes_out: Counter,
    pub records_out: Counter,
}

/// Topics seen since start. Entries of deleted topics stay, as their series do in the
/// exporter: a few hundred bytes per topic name.
static TOPICS: LazyLock<RwLock<HashMap<String, Arc<TopicCounters>>>> =
    LazyLock::new(Default::default);

/// The counters of `topic`, created on first use.
pub fn topic(topic: &str) -> Arc<TopicCounters> {
    if let Some(c) = TOPICS.read().get(topic) {
        return c.clone();
    }
    let label = || topic.to_string();
    let counters = Arc::new(TopicCounters {
        bytes_in: metrics::counter!(m::BYTES_IN_TOTAL, "topic" => label()),
        records_in: metrics::counter!(m::RECORDS_IN_TOTAL, "topic" => label()),
        bytes_out: metrics::counter!(m::BYTES_OUT_TOTAL, "topic" => label()),
        records_out: metrics::counter!(m::RECORDS_OUT_TOTAL, "topic" => label()),
    });
    TOPICS
        .write()
        .entry(topic.to_string())
        .or_insert(counters)
        .clone()
}

/// `weir_requests_total` by API and version.
pub fn requests(api: ApiKey, version: i16) -> Counter {
    static CACHE: LazyLock<RwLock<HashMap<(i16, i16), Counter>>> = LazyLock::new(Default::default);
    let key = (api as i16, version);
    if let Some(c) = CACHE.read().get(&key) {
        return c.clone();
    }
    let c = metrics::counter!(m::REQUESTS_TOTAL, "api" => format!("{api:?}"), "version" => version.to_string());
    CACHE.write().entry(key).or_insert(c).clone()
}

/// `weir_log_appended_bytes_total` (no labels, but still a registry lookup per call).
pub fn appended_bytes() -> &'static Counter {
    static C: LazyLock<Counter> = LazyLock::new(|| metrics::counter!(m::LOG_APPENDED_BYTES_TOTAL));
    &C
}
