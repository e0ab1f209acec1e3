//! Log levels changed at runtime: Kafka's BROKER_LOGGER config resource.
//!
//! The process starts with one filter (`RUST_LOG`, or the built-in default). An operator
//! may then set the level of a target (a module path such as `weir::replica`, or `root`
//! for everything) with IncrementalAlterConfigs, and delete it to fall back to the
//! filter the process started with. As with Kafka's log4j levels, changes apply to this
//! process only and are gone after a restart. The binary installs the reload hook at
//! start; a process without one (a broker embedded in tests) refuses changes.

use std::collections::{BTreeMap, HashSet};
use std::sync::{LazyLock, OnceLock};

use parking_lot::Mutex;

/// The name Kafka gives the logger every other one inherits from.
pub const ROOT: &str = "root";

type Reload = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

struct Levels {
    /// The filter the process started with.
    base: String,
    /// Target -> level set at runtime (`root` included).
    set: BTreeMap<String, String>,
}

static LEVELS: LazyLock<Mutex<Levels>> = LazyLock::new(|| {
    Mutex::new(Levels {
        base: String::new(),
        set: BTreeMap::new(),
    })
});
static RELOAD: OnceLock<Reload> = OnceLock::new();

/// Called once by the binary: the start filter and how to replace it.
pub fn install(base: &str, reload: impl Fn(&str) -> Result<(), String> + Send + Sync + 'static) {
    LEVELS.lock().base = base.to_string();
    let _ = RELOAD.set(Box::new(reload));
}

/// Kafka's level names, mapped to tracing's (FATAL is ERROR, ALL is TRACE).
fn level_of(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_uppercase().as_str() {
        "TRACE" | "ALL" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        "OFF" => "off",
        _ => return None,
    })
}

/// Whether setting `target` to `level` (None: delete) is valid, with Kafka's message.
pub fn check(target: &str, level: Option<&str>) -> Result<(), String> {
    let name_ok = !target.is_empty()
        && target
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    if !name_ok {
        return Err(format!(
            "Invalid logger name {target:?}: expected a module path such as weir::replica, or root"
        ));
    }
    match level {
        None => Ok(()),
        Some(l) if level_of(l).is_some() => Ok(()),
        Some(l) => Err(format!(
            "Cannot set the log level of {target} to {l} as it is not a supported log level. \
             Valid log levels are DEBUG, ERROR, FATAL, INFO, OFF, TRACE, WARN"
        )),
    }
}

/// Applies checked changes (level `None` deletes) and reloads the filter.
pub fn apply(changes: &[(String, Option<String>)]) -> Result<(), String> {
    let reload = RELOAD
        .get()
        .ok_or("log levels cannot change in this process (no reloadable log filter)")?;
    let mut levels = LEVELS.lock();
    let mut set = levels.set.clone();
    for (target, level) in changes {
        match level.as_deref().and_then(level_of) {
            Some(l) => set.insert(target.clone(), l.to_string()),
            None => set.remove(target),
        };
    }
    reload(&filter(&levels.base, &set))?;
    for (target, level) in changes {
        tracing::info!(logger = %target, level = level.as_deref().unwrap_or("(start filter)"),
            "log level changed");
    }
    levels.set = set;
    Ok(())
}

/// The filter: the start filter, with the root level replaced when one is set, and each
/// target's level after it.
fn filter(base: &str, set: &BTreeMap<String, String>) -> String {
    let mut parts: Vec<String> = Vec::new();
    match set.get(ROOT) {
        Some(root) => {
            parts.push(root.clone());
            parts.extend(
                base.split(',')
                    .map(str::trim)
                    .filter(|d| d.contains('='))
                    .map(str::to_string),
            );
        }
        None => parts.extend(
            base.split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_string),
        ),
    }
    parts.extend(
        set.iter()
            .filter(|(t, _)| t.as_str() != ROOT)
            .map(|(t, l)| format!("{t}={l}")),
    );
    parts.join(",")
}

/// (logger, level) as DescribeConfigs lists them: `root` first, then every target set
/// at runtime.
pub fn levels() -> Vec<(String, String)> {
    let levels = LEVELS.lock();
    let root = levels.set.get(ROOT).cloned().unwrap_or_else(|| {
        levels
            .base
            .split(',')
            .map(str::trim)
            .find(|d| !d.is_empty() && !d.contains('='))
            .unwrap_or("info")
            .to_string()
    });
    let mut out = vec![(ROOT.to_string(), root.to_ascii_uppercase())];
    out.extend(
        levels
            .set
            .iter()
            .filter(|(t, _)| t.as_str() != ROOT)
            .map(|(t, l)| (t.clone(), l.to_ascii_uppercase())),
    );
    out
}

/// A `'static` copy of a logger name, made once per distinct name.
pub fn intern(name: &str) -> &'static str {
    static NAMES: LazyLock<Mutex<HashSet<&'static str>>> = LazyLock::new(Default::default);
    let mut names = NAMES.lock();
    if let Some(n) = names.get(name) {
        return n;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_filter_keeps_the_start_directives_and_adds_targets() {
        let base = "info,openraft=warn";
        assert_eq!(filter(base, &set(&[])), "info,openraft=warn");
        assert_eq!(
            filter(base, &set(&[("weir::replica", "debug")])),
            "info,openraft=warn,weir::replica=debug"
        );
        assert_eq!(
            filter(base, &set(&[("root", "warn"), ("weir", "trace")])),
            "warn,openraft=warn,weir=trace"
        );
    }

    #[test]
    fn kafka_level_names_are_accepted() {
        assert!(check("weir::replica", Some("DEBUG")).is_ok());
        assert!(check("root", Some("fatal")).is_ok());
        assert!(check("weir", None).is_ok());
        assert!(check("weir", Some("LOUD")).is_err());
        assert!(check("bad name", Some("INFO")).is_err());
        assert!(check("", Some("INFO")).is_err());
    }
}
