//! The files of a partition directory besides segments: producer-state snapshots, the
//! `partition.metadata` file with the topic id, and deferred removal of deleted segment
//! files.

use std::path::{Path, PathBuf};

use super::*;

/// Index of the segment holding `offset`: the last one whose base offset is <= it.
pub(super) fn segment_index(segments: &[Segment], offset: i64) -> usize {
    segments
        .partition_point(|s| s.base_offset() <= offset)
        .saturating_sub(1)
}

pub(super) fn list_segments(dir: &Path) -> std::io::Result<Vec<i64>> {
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(base) = segment::parse_log_name(name) {
            bases.push(base);
        } else if name.ends_with(".deleted") || name.ends_with(".tmp") || name.ends_with(".swap") {
            // Leftovers of a run that died before finishing a delete or a rewrite.
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(bases)
}

/// `<offset, 20 digits>.snapshot` files in `dir`, newest first.
pub(super) fn list_snapshots(dir: &Path) -> Vec<(i64, PathBuf)> {
    let mut out: Vec<(i64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let stem = name.to_str()?.strip_suffix(".snapshot")?;
            if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some((stem.parse().ok()?, e.path()))
        })
        .collect();
    out.sort_unstable_by_key(|s| std::cmp::Reverse(s.0));
    out
}

/// Write the producer state as `<end offset>.snapshot` and drop old snapshots.
pub(super) fn write_snapshot(dir: &Path, producers: &ProducerStateManager) -> std::io::Result<()> {
    let path = dir.join(segment::file_name(producers.end_offset(), "snapshot"));
    epoch::write_atomically(&path, &producers.encode_snapshot())?;
    for (_, old) in list_snapshots(dir).into_iter().skip(SNAPSHOTS_KEPT) {
        let _ = std::fs::remove_file(old);
    }
    Ok(())
}

/// Rebuild the producer state: the newest readable snapshot at or below both the log end
/// and `replay_from`, then the headers of every batch after it. Snapshots past the log
/// end (their batches were truncated away) are deleted.
///
/// The aborted-transaction indexes of the replayed range are rebuilt on the way: entries
/// whose marker lies at or past the replay's start are forgotten and the markers found
/// record them again. A caller that cannot trust a segment's index (recovered, or its file
/// lost) passes that segment's base as `replay_from`. Markers at or past `high_watermark`
/// count as not yet replicated.
pub(super) fn load_producer_state(
    dir: &Path,
    segments: &mut [Segment],
    log_start: i64,
    log_end: i64,
    replay_from: i64,
    high_watermark: i64,
) -> Result<ProducerStateManager, LogError> {
    let mut state = ProducerStateManager::new();
    let mut from = log_start;
    for (offset, path) in list_snapshots(dir) {
        if offset > log_end || offset < log_start {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        if offset > replay_from {
            continue;
        }
        match std::fs::read(&path)
            .map_err(LogError::from)
            .and_then(|b| ProducerStateManager::decode_snapshot(&b))
        {
            Ok(s) => {
                from = s.end_offset().max(log_start);
                state = s;
                break;
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "producer snapshot unreadable");
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    let first = segment_index(segments, from);
    for seg in &mut segments[first..] {
        if seg.next_offset() <= from {
            continue;
        }
        seg.forget_aborted_from(from);
        let view = seg.view();
        let mut cursor = segment::Cursor::new(&view, seg.position_hint(from));
        let mut aborted = Vec::new();
        while let Some((p, pos)) = cursor.next_header()? {
            if p.last_offset < from {
                continue;
            }
            let header = cursor.full_header()?;
            if !header.is_control() {
                state.update(&header);
                continue;
            }
            let bytes = view.read_batch(pos, p.size)?;
            match batch::control::parse_marker(&bytes) {
                Ok((_, marker)) => {
                    if let Some(done) = state.complete(&header, &marker, high_watermark) {
                        if done.aborted {
                            aborted.push(aborted_entry(&done));
                        }
                    }
                }
                // A control batch that is not a marker (Kafka reserves other types) ends
                // nothing; skipping it is what a consumer does too.
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), offset = p.base_offset, error = %e,
                        "skipping an unreadable control batch");
                    state.update(&header);
                }
            }
        }
        for t in aborted {
            seg.push_aborted(t);
        }
    }
    state.truncate_head(log_start);
    Ok(state)
}

/// The aborted-transaction index entry of a completed transaction.
pub(super) fn aborted_entry(done: &CompletedTxn) -> AbortedTxn {
    AbortedTxn {
        producer_id: done.producer_id,
        first_offset: done.first_offset,
        last_offset: done.last_offset,
        last_stable_offset: done.last_stable_offset,
    }
}

pub(super) fn remove_segment_files(dir: &Path, base: i64) {
    for ext in ["log", "index", "timeindex", "txnindex"] {
        let _ = std::fs::remove_file(dir.join(segment::file_name(base, ext)));
    }
}

/// Remove files after `delay_ms` (on the runtime when there is one).
pub(super) fn remove_later(paths: Vec<PathBuf>, delay_ms: i64) {
    let remove = move |paths: Vec<PathBuf>| {
        for p in paths {
            if let Err(e) = std::fs::remove_file(&p) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(file = %p.display(), error = %e, "cannot remove deleted file");
                }
            }
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(rt) if delay_ms > 0 => {
            rt.spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(delay_ms as u64)).await;
                let _ = tokio::task::spawn_blocking(move || remove(paths)).await;
            });
        }
        _ => remove(paths),
    }
}

pub(super) const B64: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A topic id as Kafka prints it: URL-safe base64 of the 16 bytes, no padding.
pub fn topic_id_to_string(id: Uuid) -> String {
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (b as u32) << (16 - 8 * i));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Parse a topic id written as Kafka's base64 or as a hyphenated UUID.
pub fn parse_topic_id(s: &str) -> Option<Uuid> {
    if let Ok(u) = Uuid::parse_str(s) {
        return Some(u);
    }
    if s.len() != 22 {
        return None;
    }
    let mut bits: u128 = 0;
    for (i, c) in s.bytes().enumerate() {
        let v = B64.iter().position(|&b| b == c)? as u128;
        // 22 characters carry 132 bits: the last character holds 2 bits and 4 padding.
        bits = if i < 21 {
            (bits << 6) | v
        } else {
            (bits << 2) | (v >> 4)
        };
    }
    Some(Uuid::from_u128(bits))
}

pub(super) fn read_partition_metadata(dir: &Path) -> Option<Uuid> {
    let text = std::fs::read_to_string(dir.join(PARTITION_METADATA_FILE)).ok()?;
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("topic_id:"))
        .map(str::trim)?;
    parse_topic_id(id)
}

pub(super) fn partition_metadata_text(id: Uuid) -> String {
    format!("version: 0\ntopic_id: {}\n", topic_id_to_string(id))
}

pub(super) fn write_partition_metadata(dir: &Path, id: Uuid) -> std::io::Result<()> {
    epoch::write_atomically(
        &dir.join(PARTITION_METADATA_FILE),
        partition_metadata_text(id).as_bytes(),
    )
}
