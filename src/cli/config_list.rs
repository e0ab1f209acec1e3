//! `weir config list`: every broker setting Weir accepts, with its type, default and
//! meaning, and the topic-level settings with the broker setting that supplies each
//! default — the reference that `weir --help` points to. It reads the same tables the
//! broker validates its configuration with, so it cannot drift from them.

use serde_json::json;

use super::table::render;
use super::Report;
use crate::config::{Kind, BROKER_DEFS, TOPIC_DEFS};

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Bool => "bool",
        Kind::Int => "int",
        Kind::Long => "long",
        Kind::Double => "double",
        Kind::String => "string",
        Kind::List => "list",
        Kind::Password => "password",
    }
}

/// The tables; `filter` keeps the settings whose name contains it.
pub fn list(filter: Option<&str>) -> Report {
    let keep = |name: &str| filter.is_none_or(|f| name.contains(f));
    let brokers: Vec<_> = BROKER_DEFS.iter().filter(|d| keep(d.name)).collect();
    let topics: Vec<_> = TOPIC_DEFS.iter().filter(|d| keep(d.name)).collect();
    let show_default = |d: &str| {
        if d.is_empty() {
            "\"\"".to_string()
        } else {
            d.to_string()
        }
    };
    let rows: Vec<Vec<String>> = brokers
        .iter()
        .map(|d| {
            vec![
                d.name.to_string(),
                kind_name(d.kind).to_string(),
                show_default(d.default),
                d.doc.to_string(),
            ]
        })
        .collect();
    let topic_rows: Vec<Vec<String>> = topics
        .iter()
        .map(|d| {
            vec![
                d.name.to_string(),
                kind_name(d.kind).to_string(),
                d.synonyms.join(", "),
            ]
        })
        .collect();
    let text = format!(
        "Broker settings (--set NAME=VALUE, WEIR_NAME_WITH_UNDERSCORES=VALUE, or a config file):\n\n{}\n\nTopic settings (weir topic create -c NAME=VALUE, weir topic alter-config); the default comes from the broker setting named:\n\n{}",
        render(&["NAME", "TYPE", "DEFAULT", "MEANING"], &rows),
        render(&["NAME", "TYPE", "BROKER DEFAULT FROM"], &topic_rows),
    );
    let json = json!({
        "broker": brokers.iter().map(|d| json!({
            "name": d.name, "type": kind_name(d.kind), "default": d.default, "doc": d.doc,
        })).collect::<Vec<_>>(),
        "topic": topics.iter().map(|d| json!({
            "name": d.name, "type": kind_name(d.kind), "default_from": d.synonyms,
        })).collect::<Vec<_>>(),
    });
    Report::new(text, json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_listed_and_filters_narrow_it() {
        let all = list(None);
        assert_eq!(
            all.json["broker"].as_array().unwrap().len(),
            BROKER_DEFS.len()
        );
        assert!(all.text.contains("log.retention.hours"));
        let some = list(Some("retention"));
        assert!(some.json["broker"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["name"].as_str().unwrap().contains("retention")));
        assert!(!some.text.contains("node.id"));
    }
}
