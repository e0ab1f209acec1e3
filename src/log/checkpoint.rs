//! Kafka's offset-checkpoint text files (`recovery-point-offset-checkpoint`,
//! `log-start-offset-checkpoint`, `replication-offset-checkpoint` for high
//! watermarks): a version line `0`, a count line, then one
//! `<topic> <partition> <offset>` line per partition.
//!
//! They are rewritten whole through a temporary file and a rename, so a crash leaves the
//! previous or the new version. A malformed file is reported and read as empty: the cost
//! is more recovery work, never wrong data.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use super::epoch::write_atomically;

pub const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";
pub const LOG_START_FILE: &str = "log-start-offset-checkpoint";
pub const HIGH_WATERMARK_FILE: &str = "replication-offset-checkpoint";

/// Offsets by (topic, partition).
pub type Offsets = BTreeMap<(String, i32), i64>;

/// Read a checkpoint; missing is empty, malformed is logged and empty.
pub fn read(path: &Path) -> Offsets {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Offsets::new();
    };
    parse(&text).unwrap_or_else(|| {
        tracing::warn!(file = %path.display(), "malformed offset checkpoint ignored");
        Offsets::new()
    })
}

fn parse(text: &str) -> Option<Offsets> {
    let mut lines = text.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    let mut out = Offsets::new();
    for _ in 0..count {
        let mut parts = lines.next()?.split_whitespace();
        let topic = parts.next()?.to_string();
        let partition: i32 = parts.next()?.parse().ok()?;
        let offset: i64 = parts.next()?.parse().ok()?;
        out.insert((topic, partition), offset);
    }
    Some(out)
}

/// Replace the checkpoint at `path` with `offsets`.
pub fn write(path: &Path, offsets: &Offsets) -> io::Result<()> {
    let mut text = format!("0\n{}\n", offsets.len());
    for ((topic, partition), offset) in offsets {
        text.push_str(&format!("{topic} {partition} {offset}\n"));
    }
    write_atomically(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_malformed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(RECOVERY_POINT_FILE);
        assert!(read(&p).is_empty());
        let mut m = Offsets::new();
        m.insert(("orders".into(), 3), 42);
        m.insert(("a-b".into(), 0), 7);
        write(&p, &m).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "0\n2\na-b 0 7\norders 3 42\n"
        );
        assert_eq!(read(&p), m);
        std::fs::write(&p, "0\n3\nx 1 2\n").unwrap();
        assert!(read(&p).is_empty());
    }
}
