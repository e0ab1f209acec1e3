//! The targets the README and docs/performance.md state, checked against a report's
//! rows: met, missed, or not measured in this run.

use super::*;

/// The targets, checked against this run.
pub(super) fn targets(rep: &Report) -> Vec<TargetCheck> {
    let l = &rep.limits;
    let mut out = vec![];
    let mut check = |target: &str, v: Option<(String, bool)>| {
        out.push(TargetCheck {
            target: target.into(),
            figure: v.as_ref().map_or("-".into(), |(f, _)| f.clone()),
            met: v.map(|(_, m)| m),
        });
    };
    // The broker alone, as the raw client rows measure it (full run), beside a target
    // the librdkafka row misses.
    let raw = |kind: &str, size: usize| {
        let mut s = spec(kind, 1, size, "1", "background");
        s.linger_ms = 0;
        find(rep, &s)
    };
    let pct = |r: &Row| format!("{:.0} MB/s = {:.0}%", r.mb_per_s, r.ratios.mb * 100.0);
    let base = find(rep, &spec("produce", 1, KIB, "1", "background"));
    check(
        "produce, background flush (acks=1, 1 KiB) ≥ 50% of loopback",
        base.map(|r| {
            let mut f = pct(r);
            if let Some(b) = raw("produce-raw", KIB) {
                f += &format!("; raw client {}", pct(b));
            }
            if let Some(s) = raw("produce-raw-sustained", KIB) {
                f += &format!(
                    "; sustained past the dirty-page limit {:.0} MB/s = {:.0}% of disk",
                    s.mb_per_s,
                    s.ratios.mb * 100.0
                );
            }
            (f, r.ratios.mb >= 0.5)
        }),
    );
    check(
        "produce acks=all, fsync before the ack ≥ 70% of fdatasync-every-4MiB write",
        find(rep, &spec("produce", 1, KIB, "all", "durable")).map(|r| {
            (
                format!("{:.0} MB/s = {:.0}%", r.mb_per_s, r.ratios.mb * 100.0),
                r.ratios.mb >= 0.7,
            )
        }),
    );
    check(
        "consume ≥ 60% of loopback",
        find(rep, &spec("consume", 1, KIB, "1", "background")).map(|r| {
            let mut f = pct(r);
            if let Some(c) = raw("consume-raw", KIB) {
                f += &format!("; raw client {}", pct(c));
            }
            (f, r.ratios.mb >= 0.6)
        }),
    );
    check(
        "100-byte records ≥ 1,500,000 msgs/s (acks=1, background)",
        find(rep, &spec("produce", 1, 100, "1", "background")).map(|r| {
            let mut f = format!("{:.0} msgs/s", r.msgs_per_s);
            if let Some(b) = raw("produce-raw", 100) {
                f += &format!("; raw client {:.0} msgs/s", b.msgs_per_s);
            }
            (f, r.msgs_per_s >= 1.5e6)
        }),
    );
    let e2e = |policy: &str| {
        let mut s = spec("e2e", 1, KIB, "all", policy);
        s.rate_mb_s = Some(50.0);
        find(rep, &s).and_then(|r| r.lat)
    };
    check(
        "end-to-end p99 at 50 MB/s < 5 ms, background flush",
        e2e("background").map(|lat| (format!("p99 {:.2} ms", lat.p99_ms), lat.p99_ms < 5.0)),
    );
    check(
        "end-to-end p99 at 50 MB/s < 2× fdatasync p99, fsync before the ack",
        e2e("durable").map(|lat| {
            (
                format!(
                    "p99 {:.2} ms = {:.1}× fdatasync p99 ({:.2} ms)",
                    lat.p99_ms,
                    lat.p99_ms / l.fdatasync.p99_ms.max(1e-6),
                    l.fdatasync.p99_ms
                ),
                lat.p99_ms < 2.0 * l.fdatasync.p99_ms,
            )
        }),
    );
    check(
        "idle RSS < 20 MB",
        rep.brokers
            .first()
            .filter(|b| b.nodes == 1)
            .map(|b| (format!("{:.1} MB", b.idle_rss_mb), b.idle_rss_mb < 20.0)),
    );
    let failed_10k = rep.problems.iter().any(|p| p.contains("10000 partitions"));
    check(
        "10,000 partitions on one node ≥ half of 1-partition throughput (acks=1, background)",
        find(rep, &spec("produce", 10_000, KIB, "1", "background"))
            .zip(base)
            .filter(|(p, _)| p.errors == 0)
            .map(|(p, b)| {
                let r = p.msgs_per_s / b.msgs_per_s.max(1e-9);
                (
                    format!(
                        "{:.0} vs {:.0} msgs/s = {:.0}%",
                        p.msgs_per_s,
                        b.msgs_per_s,
                        r * 100.0
                    ),
                    r >= 0.5,
                )
            }),
    );
    if failed_10k
        && out
            .last()
            .is_some_and(|c| c.met.is_none() || c.met == Some(true))
    {
        let last = out.last_mut().unwrap();
        last.figure = "failed at 10,000 partitions (see problems)".into();
        last.met = Some(false);
    }
    let mut check = |target: &str, v: Option<(String, bool)>| {
        out.push(TargetCheck {
            target: target.into(),
            figure: v.as_ref().map_or("-".into(), |(f, _)| f.clone()),
            met: v.map(|(_, m)| m),
        });
    };
    check(
        "start-up with 10 GB of data < 2 s after clean shutdown",
        rep.startup.as_ref().map(|s| {
            (
                format!("{:.2} s with {:.1} GB", s.startup_s, s.stored_gb),
                s.startup_s < 2.0 && s.stored_gb >= 10.0,
            )
        }),
    );
    out
}
