//! Where explicit settings come from besides `--set` and the environment: a TOML file
//! (nested tables flatten to dotted names) or a Kafka `server.properties` file.

use std::collections::BTreeMap;
use std::path::Path;

use super::ConfigError;

pub(super) fn read_file(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.into(),
        source,
    })?;
    let is_toml = path.extension().is_some_and(|e| e == "toml");
    if is_toml {
        parse_toml(path, &text)
    } else {
        Ok(parse_properties(&text))
    }
}

fn parse_toml(path: &Path, text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Parse {
            path: path.into(),
            reason: e.to_string(),
        })?;
    let mut out = BTreeMap::new();
    flatten_toml("", &toml::Value::Table(table), &mut out);
    Ok(out)
}

fn flatten_toml(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_toml(&key, v, out);
            }
        }
        toml::Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        toml::Value::Array(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|i| match i {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            out.insert(prefix.to_string(), parts.join(","));
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// Java properties: `key=value` or `key: value` or `key value`, `#`/`!` comments,
/// backslash line continuations.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut pending = String::new();
    for raw in text.lines() {
        let line = raw.trim_start();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        if let Some(stripped) = line.strip_suffix('\\') {
            pending.push_str(stripped);
            continue;
        }
        pending.push_str(line);
        let full = std::mem::take(&mut pending);
        let idx = full
            .find(['=', ':'])
            .or_else(|| full.find(char::is_whitespace));
        let (k, v) = match idx {
            Some(i) => (&full[..i], &full[i + 1..]),
            None => (full.as_str(), ""),
        };
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    out
}
