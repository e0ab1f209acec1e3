//! Checks of single values (topic settings, kinds, roles, voter lists, listeners, group
//! settings), each error naming the setting at fault.

use std::collections::BTreeMap;

use super::defs::topic_def;
use super::{ConfigError, GroupSettings, Kind, Listener, TxnSettings};
use crate::log::codec;

/// Validate one topic-level setting (CreateTopics configs, AlterConfigs).
pub fn check_topic_value(name: &str, value: &str) -> Result<(), ConfigError> {
    let def = topic_def(name).ok_or_else(|| ConfigError::Unknown(name.to_string()))?;
    check_value(name, def.kind, value)?;
    match name {
        "cleanup.policy" => {
            let parts = split_list(value);
            if parts.is_empty() || parts.iter().any(|p| p != "delete" && p != "compact") {
                return Err(invalid(
                    name,
                    value,
                    "expected delete, compact or compact,delete",
                ));
            }
        }
        "message.timestamp.type" if value != "CreateTime" && value != "LogAppendTime" => {
            return Err(invalid(name, value, "expected CreateTime or LogAppendTime"));
        }
        "compression.type" if !codec::TYPES.contains(&value) => {
            return Err(invalid(
                name,
                value,
                "expected producer, uncompressed, gzip, snappy, lz4 or zstd",
            ));
        }
        "compression.gzip.level" => {
            let level = value.parse::<i32>().unwrap_or(0);
            let (low, high) = codec::GZIP_LEVELS;
            if level != -1 && !(low..=high).contains(&level) {
                return Err(invalid(
                    name,
                    value,
                    "expected 1 to 9, or -1 for the default",
                ));
            }
        }
        "compression.lz4.level" | "compression.zstd.level" => {
            let level = value.parse::<i32>().unwrap_or(i32::MIN);
            let (low, high) = if name == "compression.lz4.level" {
                codec::LZ4_LEVELS
            } else {
                codec::ZSTD_LEVELS
            };
            if !(low..=high).contains(&level) {
                return Err(invalid(name, value, &format!("expected {low} to {high}")));
            }
        }
        "flush.policy" if value != "durable" && value != "background" => {
            return Err(invalid(name, value, "expected durable or background"));
        }
        "segment.bytes" if value.parse::<i64>().unwrap_or(0) < 14 => {
            return Err(invalid(name, value, "must be at least 14"));
        }
        "max.message.bytes" | "segment.index.bytes" | "min.insync.replicas"
            if value.parse::<i64>().unwrap_or(0) < 1 =>
        {
            return Err(invalid(name, value, "must be at least 1"));
        }
        "segment.ms" if value.parse::<i64>().unwrap_or(0) < 1 => {
            return Err(invalid(name, value, "must be at least 1"));
        }
        "retention.ms" | "retention.bytes" if value.parse::<i64>().unwrap_or(0) < -1 => {
            return Err(invalid(name, value, "must be -1 (unlimited) or more"));
        }
        "min.cleanable.dirty.ratio" => {
            let r: f64 = value.parse().unwrap_or(-1.0);
            if !(0.0..=1.0).contains(&r) {
                return Err(invalid(name, value, "must be between 0 and 1"));
            }
        }
        _ => {}
    }
    Ok(())
}

pub(super) fn check_value(name: &str, kind: Kind, value: &str) -> Result<(), ConfigError> {
    let ok = match kind {
        Kind::Bool => value == "true" || value == "false",
        Kind::Int => value.parse::<i32>().is_ok(),
        Kind::Long => value.parse::<i64>().is_ok(),
        Kind::Double => value.parse::<f64>().is_ok(),
        Kind::String | Kind::List | Kind::Password => true,
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(
            name,
            value,
            &format!("expected {kind:?}").to_lowercase(),
        ))
    }
}

pub(super) fn scale_synonym(syn: &str, v: &str) -> String {
    let factor = match syn {
        "log.retention.minutes" => 60_000,
        "log.retention.hours" | "log.roll.hours" => 3_600_000,
        _ => return v.to_string(),
    };
    match v.parse::<i64>() {
        Ok(n) if n >= 0 => (n.saturating_mul(factor)).to_string(),
        _ => v.to_string(),
    }
}

pub(super) fn invalid(name: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        name: name.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

pub(super) fn rename(e: ConfigError, name: &str) -> ConfigError {
    match e {
        ConfigError::Invalid { value, reason, .. } => ConfigError::Invalid {
            name: name.into(),
            value,
            reason,
        },
        other => other,
    }
}

pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// `process.roles`: `broker,controller` (a voter, or a learner that AddRaftVoter can
/// promote) or `broker` (a learner for good: it follows the metadata log and never
/// votes). Returns whether the node is broker-only. A controller without client
/// listeners is not supported: refused rather than pretended.
pub(super) fn check_roles(value: &str) -> Result<bool, ConfigError> {
    let mut roles = split_list(value);
    roles.sort();
    roles.dedup();
    match roles
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["broker", "controller"] => Ok(false),
        ["broker"] => Ok(true),
        ["controller"] => Err(invalid(
            "process.roles",
            value,
            "controller-only nodes are not supported yet; use broker,controller",
        )),
        _ => Err(invalid(
            "process.roles",
            value,
            "expected broker,controller",
        )),
    }
}

/// `controller.quorum.voters`: `1@host:port,2@host:port`, ids unique and non-negative.
pub(super) fn parse_voters(value: &str) -> Result<BTreeMap<i32, String>, ConfigError> {
    let mut voters = BTreeMap::new();
    for v in split_list(value) {
        let bad = |reason: &str| invalid("controller.quorum.voters", &v, reason);
        let (id, addr) = v
            .split_once('@')
            .ok_or_else(|| bad("expected id@host:port"))?;
        let id: i32 = id
            .trim()
            .parse()
            .ok()
            .filter(|id| *id >= 0)
            .ok_or_else(|| bad("the id is not a non-negative integer"))?;
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| bad("expected id@host:port"))?;
        if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(bad("expected id@host:port with a host and a port 1-65535"));
        }
        if voters.insert(id, addr.to_string()).is_some() {
            return Err(bad("the id is listed twice"));
        }
    }
    Ok(voters)
}

pub(super) fn parse_listeners(setting: &str, s: &str) -> Result<Vec<Listener>, ConfigError> {
    split_list(s)
        .iter()
        .map(|l| Listener::parse(setting, l))
        .collect()
}

/// Read a TOML file (nested tables flatten to dotted names) or a `server.properties` file.
pub(super) fn group_settings(
    get: &dyn Fn(&str) -> String,
    positive: &dyn Fn(&str) -> Result<i64, ConfigError>,
) -> Result<GroupSettings, ConfigError> {
    let min_session = positive("group.min.session.timeout.ms")?;
    let max_session = positive("group.max.session.timeout.ms")?;
    if min_session > max_session {
        return Err(invalid(
            "group.min.session.timeout.ms",
            &min_session.to_string(),
            "must not exceed group.max.session.timeout.ms",
        ));
    }
    let delay: i64 = get("group.initial.rebalance.delay.ms")
        .parse()
        .unwrap_or(-1);
    if delay < 0 {
        return Err(invalid(
            "group.initial.rebalance.delay.ms",
            &delay.to_string(),
            "must not be negative",
        ));
    }
    let assignors = split_list(&get("group.consumer.assignors"));
    for a in &assignors {
        if a != "uniform" && a != "range" {
            return Err(invalid(
                "group.consumer.assignors",
                a,
                "known assignors are uniform and range",
            ));
        }
    }
    if assignors.is_empty() {
        return Err(invalid(
            "group.consumer.assignors",
            "",
            "at least one assignor is required",
        ));
    }
    Ok(GroupSettings {
        offsets_topic_partitions: positive("offsets.topic.num.partitions")? as i32,
        offsets_topic_replication_factor: positive("offsets.topic.replication.factor")?
            .min(i16::MAX as i64) as i16,
        offsets_topic_segment_bytes: positive("offsets.topic.segment.bytes")?,
        offsets_retention_ms: (positive("offsets.retention.minutes")? as u64)
            .saturating_mul(60_000),
        offsets_retention_check_interval_ms: positive("offsets.retention.check.interval.ms")?
            as u64,
        offsets_commit_timeout_ms: positive("offsets.commit.timeout.ms")? as u64,
        offset_metadata_max_bytes: positive("offset.metadata.max.bytes")? as usize,
        initial_rebalance_delay_ms: delay as u64,
        min_session_timeout_ms: min_session as i32,
        max_session_timeout_ms: max_session as i32,
        max_size: positive("group.max.size")? as usize,
        consumer_session_timeout_ms: positive("group.consumer.session.timeout.ms")? as i32,
        consumer_heartbeat_interval_ms: positive("group.consumer.heartbeat.interval.ms")? as i32,
        consumer_max_size: positive("group.consumer.max.size")? as usize,
        consumer_assignors: assignors,
    })
}

pub(super) fn txn_settings(
    positive: &dyn Fn(&str) -> Result<i64, ConfigError>,
) -> Result<TxnSettings, ConfigError> {
    let small = |name: &str, max: i64| -> Result<i64, ConfigError> {
        let v = positive(name)?;
        if v > max {
            return Err(invalid(
                name,
                &v.to_string(),
                &format!("must be at most {max}"),
            ));
        }
        Ok(v)
    };
    Ok(TxnSettings {
        log_partitions: small("transaction.state.log.num.partitions", i32::MAX as i64)? as i32,
        log_replication_factor: positive("transaction.state.log.replication.factor")?
            .min(i16::MAX as i64) as i16,
        log_min_isr: positive("transaction.state.log.min.isr")?.min(i16::MAX as i64) as i16,
        log_segment_bytes: positive("transaction.state.log.segment.bytes")?,
        max_timeout_ms: small("transaction.max.timeout.ms", i32::MAX as i64)? as i32,
        id_expiration_ms: positive("transactional.id.expiration.ms")?,
        abort_check_interval_ms: positive(
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        )? as u64,
    })
}

/// A settings lookup over `pairs`, as the resolvers take one (for tests).
#[cfg(test)]
pub(super) fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}
