//! Every metric a Grafana dashboard queries is one the broker defines (in
//! `src/metrics.rs`), and every dashboard is valid JSON with the fields Grafana needs.
//! (Issue 5 adds the check of each query against a live Prometheus.)

use std::collections::BTreeSet;

fn metric_names_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("weir_") {
        let start = i + pos;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        // Histogram series carry suffixes the exporter adds.
        let name = text[start..end]
            .trim_end_matches("_bucket")
            .trim_end_matches("_count")
            .trim_end_matches("_sum");
        out.insert(name.to_string());
        i = end;
    }
    out
}

#[test]
fn dashboards_query_only_metrics_the_broker_defines() {
    let root = env!("CARGO_MANIFEST_DIR");
    let defined =
        metric_names_in(&std::fs::read_to_string(format!("{root}/src/metrics.rs")).unwrap());
    let mut checked = 0;
    for entry in std::fs::read_dir(format!("{root}/grafana/dashboards")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let dash: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
        for field in ["title", "uid", "panels", "schemaVersion"] {
            assert!(dash.get(field).is_some(), "{}: no {field}", path.display());
        }
        for panel in dash["panels"].as_array().unwrap() {
            let targets = panel["targets"].as_array().expect("panel targets");
            assert!(
                !targets.is_empty(),
                "{}: panel without query",
                path.display()
            );
            for t in targets {
                let expr = t["expr"].as_str().expect("prometheus expr");
                let used = metric_names_in(expr);
                assert!(
                    !used.is_empty(),
                    "{}: {expr} queries no weir metric",
                    path.display()
                );
                for name in used {
                    assert!(
                        defined.contains(&name),
                        "{}: {name} is not defined in src/metrics.rs",
                        path.display()
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 0, "no dashboard queries found");
}
