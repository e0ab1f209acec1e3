//! The Grafana dashboards (`grafana/dashboards/*.json`) and the alerting rules
//! (`deploy/prometheus/alerts.yml`) query only metrics the broker defines (the `weir_`
//! and `process_` names in `src/metrics.rs`), and every dashboard has the structure
//! current Grafana imports: unique uids and panel ids, gridPos on the 24-column grid
//! without overlaps, the provisioned Prometheus data source, a refId and an expression
//! per target, and template variables that exist before they are used.
//! `scripts/test-monitoring` runs every one of these queries against a live Prometheus.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// Metric name prefixes of the broker's own series.
const PREFIXES: [&str; 2] = ["weir_", "process_"];
/// Grafana's built-in variables a query may use.
const BUILTIN_VARS: [&str; 7] = [
    "__rate_interval",
    "__interval",
    "__interval_ms",
    "__range",
    "__range_s",
    "__range_ms",
    "__all",
];
const PANEL_TYPES: [&str; 9] = [
    "timeseries",
    "stat",
    "table",
    "gauge",
    "bargauge",
    "state-timeline",
    "heatmap",
    "text",
    "row",
];

fn metric_names_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    for prefix in PREFIXES {
        let mut i = 0;
        while let Some(pos) = text[i..].find(prefix) {
            let start = i + pos;
            let mut end = start;
            while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
                end += 1;
            }
            i = end;
            // Part of a longer identifier (e.g. `my_process_x`): not a name of ours.
            if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
                continue;
            }
            // Histogram series carry suffixes the exporter adds.
            let name = text[start..end]
                .trim_end_matches("_bucket")
                .trim_end_matches("_count")
                .trim_end_matches("_sum");
            out.insert(name.to_string());
        }
    }
    out
}

fn defined_metrics() -> BTreeSet<String> {
    let src = std::fs::read_to_string(format!("{ROOT}/src/metrics.rs")).unwrap();
    // Only the string constants: `pub const X: &str = "name";`.
    src.lines()
        .filter(|l| l.trim_start().starts_with("pub const ") && l.contains("&str"))
        .flat_map(metric_names_in)
        .collect()
}

/// Checks one PromQL expression: the metrics it names are defined, and it names one
/// (a `weir_`/`process_` metric, or `up` of the scrape job).
fn check_expr(where_: &str, expr: &str, defined: &BTreeSet<String>) -> usize {
    let used = metric_names_in(expr);
    assert!(
        !used.is_empty() || expr.contains("up{"),
        "{where_}: `{expr}` queries no metric of the broker"
    );
    for name in &used {
        assert!(
            defined.contains(name),
            "{where_}: {name} is not defined in src/metrics.rs"
        );
    }
    used.len().max(1)
}

/// Variables a query references: `$name`, `${name}`, `${name:format}`, `[[name]]`.
fn vars_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = text.as_bytes();
    let ident = |from: usize| {
        let mut end = from;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
            end += 1;
        }
        text[from..end].to_string()
    };
    for (i, c) in text.char_indices() {
        match c {
            '$' if b.get(i + 1) == Some(&b'{') => out.insert(ident(i + 2)),
            '$' => out.insert(ident(i + 1)),
            '[' if b.get(i + 1) == Some(&b'[') => out.insert(ident(i + 2)),
            _ => continue,
        };
    }
    out.remove("");
    out
}

/// The uid of the Prometheus data source of grafana/provisioning/datasources.
fn provisioned_prometheus_uid() -> String {
    let dir = format!("{ROOT}/grafana/provisioning/datasources");
    let mut uids = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        // Each `- name:` item of the `datasources:` list is one data source.
        for item in text.split("\n  - ").skip(1) {
            let field = |key: &str| {
                item.lines()
                    .map(|l| l.trim())
                    .find_map(|l| l.strip_prefix(key))
                    .map(|v| v.trim().trim_matches('"').to_string())
            };
            if field("type:").as_deref() == Some("prometheus") {
                uids.push(field("uid:").expect("the Prometheus data source has no uid"));
            }
        }
    }
    assert_eq!(
        uids.len(),
        1,
        "expected one provisioned Prometheus data source, found uids {uids:?}"
    );
    uids.pop().unwrap()
}

/// A panel or target datasource must be the provisioned Prometheus, directly by uid or
/// through the dashboard's `datasource` variable.
fn check_datasource(where_: &str, ds: &Value, uid: &str, ds_var: bool) {
    assert_eq!(
        ds["type"], "prometheus",
        "{where_}: datasource type {}",
        ds["type"]
    );
    let got = ds["uid"].as_str().unwrap_or_default();
    let ok = got == uid || (ds_var && (got == "${datasource}" || got == "$datasource"));
    assert!(
        ok,
        "{where_}: datasource uid {got:?}: use {uid:?} (provisioned) or ${{datasource}}"
    );
}

fn all_panels(panels: &[Value]) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in panels {
        out.push(p);
        if let Some(inner) = p["panels"].as_array() {
            out.extend(all_panels(inner));
        }
    }
    out
}

#[test]
fn dashboards_are_well_formed_and_query_only_defined_metrics() {
    let defined = defined_metrics();
    assert!(defined.len() > 40, "src/metrics.rs: found only {defined:?}");
    let uid = provisioned_prometheus_uid();
    let mut uids = BTreeSet::new();
    let mut checked = 0;
    let mut files = 0;
    for entry in std::fs::read_dir(format!("{ROOT}/grafana/dashboards")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        files += 1;
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let dash: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: not JSON: {e}"));
        for field in ["title", "uid", "panels", "schemaVersion", "templating"] {
            assert!(dash.get(field).is_some(), "{file}: no {field}");
        }
        let schema = dash["schemaVersion"]
            .as_u64()
            .expect("schemaVersion number");
        assert!(
            (39..=41).contains(&schema),
            "{file}: schemaVersion {schema}: current Grafana (10.4-11) writes 39-41"
        );
        assert!(
            uids.insert(dash["uid"].as_str().unwrap().to_string()),
            "{file}: uid {} used twice",
            dash["uid"]
        );
        assert!(
            dash["uid"].as_str().unwrap().len() <= 40,
            "{file}: uid longer than Grafana's 40 characters"
        );

        // Template variables, in order: each may only use those defined before it.
        let mut vars: BTreeMap<String, Value> = BTreeMap::new();
        let mut used_vars = BTreeSet::new();
        for v in dash["templating"]["list"]
            .as_array()
            .expect("templating.list")
        {
            let name = v["name"].as_str().expect("variable name").to_string();
            let where_ = format!("{file}: variable {name}");
            match v["type"].as_str() {
                Some("datasource") => {
                    assert_eq!(
                        v["query"], "prometheus",
                        "{where_}: not a Prometheus picker"
                    );
                    if let Some(cur) = v["current"]["value"].as_str() {
                        assert_eq!(cur, uid, "{where_}: default is not the provisioned uid");
                    }
                }
                Some("query") => {
                    check_datasource(
                        &where_,
                        &v["datasource"],
                        &uid,
                        vars.contains_key("datasource"),
                    );
                    let q = v["query"]["query"]
                        .as_str()
                        .or(v["query"].as_str())
                        .expect("variable query");
                    assert_eq!(
                        v["definition"].as_str(),
                        Some(q),
                        "{where_}: definition differs from the query"
                    );
                    assert!(
                        q.starts_with("label_values(") || q.starts_with("query_result("),
                        "{where_}: {q}"
                    );
                    checked += check_expr(&where_, q, &defined);
                    for r in vars_in(q) {
                        assert!(
                            vars.contains_key(&r) || BUILTIN_VARS.contains(&r.as_str()),
                            "{where_}: uses ${r}, which is not defined before it"
                        );
                        used_vars.insert(r);
                    }
                    if v["includeAll"] == true {
                        assert_eq!(v["allValue"], ".*", "{where_}: All must be the regex .*");
                    }
                }
                other => panic!("{where_}: unexpected type {other:?}"),
            }
            assert!(
                vars.insert(name.clone(), v.clone()).is_none(),
                "{file}: variable {name} defined twice"
            );
        }
        let ds_var = vars.contains_key("datasource");

        let panels = all_panels(dash["panels"].as_array().expect("panels"));
        assert!(!panels.is_empty(), "{file}: no panels");
        let mut ids = BTreeSet::new();
        let mut boxes: Vec<(u64, u64, u64, u64, String)> = Vec::new();
        for panel in panels {
            let title = panel["title"].as_str().unwrap_or_default();
            let where_ = format!("{file}: panel {title:?}");
            let id = panel["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("{where_}: no id"));
            assert!(ids.insert(id), "{where_}: id {id} used twice");
            let kind = panel["type"].as_str().unwrap_or_default();
            assert!(PANEL_TYPES.contains(&kind), "{where_}: type {kind:?}");
            let g = &panel["gridPos"];
            let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| {
                g[k].as_u64()
                    .unwrap_or_else(|| panic!("{where_}: gridPos.{k}"))
            });
            assert!(w >= 1 && h >= 1 && x + w <= 24, "{where_}: gridPos {g}");
            for (bx, by, bw, bh, other) in &boxes {
                let overlap = x < bx + bw && *bx < x + w && y < by + bh && *by < y + h;
                assert!(!overlap, "{where_}: overlaps panel {other:?}");
            }
            boxes.push((x, y, w, h, title.to_string()));
            if kind == "row" {
                assert!(
                    panel.get("targets").is_none(),
                    "{where_}: a row has no queries"
                );
                continue;
            }
            assert!(!title.is_empty(), "{file}: panel {id} has no title");
            check_datasource(&where_, &panel["datasource"], &uid, ds_var);
            let targets = panel["targets"].as_array().expect("panel targets");
            assert!(!targets.is_empty(), "{where_}: no query");
            let mut refs = BTreeSet::new();
            for t in targets {
                let r = t["refId"].as_str().unwrap_or_default();
                assert!(!r.is_empty(), "{where_}: a target has no refId");
                assert!(refs.insert(r.to_string()), "{where_}: refId {r} twice");
                if !t["datasource"].is_null() {
                    check_datasource(&where_, &t["datasource"], &uid, ds_var);
                }
                let expr = t["expr"].as_str().expect("prometheus expr");
                checked += check_expr(&where_, expr, &defined);
                for v in vars_in(expr) {
                    assert!(
                        vars.contains_key(&v) || BUILTIN_VARS.contains(&v.as_str()),
                        "{where_}: `{expr}` uses ${v}, which the dashboard does not define"
                    );
                    used_vars.insert(v);
                }
            }
        }
        for name in vars.keys() {
            assert!(
                name == "datasource" || used_vars.contains(name),
                "{file}: variable {name} is used by no query"
            );
        }
    }
    assert!(files >= 4, "expected the four dashboards, found {files}");
    assert!(checked > 0, "no dashboard queries found");
}

/// The `expr:` values of a Prometheus rule file (plain, or a `>-`/`|` block).
fn rule_exprs(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(pos) = line.find("expr:") else {
            continue;
        };
        if line.trim_start().starts_with('#') {
            continue;
        }
        let value = line[pos + 5..].trim();
        if value.starts_with('>') || value.starts_with('|') {
            let indent = line.len() - line.trim_start().len();
            let block: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
                .map(|l| l.trim())
                .collect();
            out.push(block.join(" "));
        } else {
            out.push(value.trim_matches(['\'', '"']).to_string());
        }
    }
    out
}

#[test]
fn alert_rules_query_only_defined_metrics() {
    let defined = defined_metrics();
    let path = format!("{ROOT}/deploy/prometheus/alerts.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let exprs = rule_exprs(&text);
    let alerts = text.matches("- alert: ").count();
    assert!(alerts >= 8, "alerts.yml: only {alerts} alerts");
    assert_eq!(exprs.len(), alerts, "alerts.yml: an alert without expr");
    for expr in &exprs {
        assert!(!expr.is_empty(), "alerts.yml: empty expr");
        check_expr("deploy/prometheus/alerts.yml", expr, &defined);
    }
}
