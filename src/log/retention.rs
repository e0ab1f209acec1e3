//! Retention: which of a partition's oldest segments may go.
//!
//! Only whole, closed segments are ever deleted, oldest first, and only below the high
//! watermark. A segment goes when it lies wholly below the log start offset (after
//! DeleteRecords), or, for topics whose cleanup.policy includes `delete`, when its largest
//! timestamp is older than retention.ms or the partition is larger than retention.bytes
//! without it. The periodic task lives in the log manager; the deletion itself (rename to
//! `.deleted`, removal after file.delete.delay.ms) in the partition log.

use crate::config::TopicConfig;

/// What retention needs to know about one segment.
#[derive(Debug, Clone, Copy)]
pub struct SegmentInfo {
    pub size: u64,
    /// Largest record timestamp (or the file time when no record has one).
    pub largest_timestamp: i64,
    /// First offset past the segment (the next segment's base; `i64::MAX` for the
    /// active one).
    pub end_offset: i64,
}

/// How many of the oldest segments may be deleted now. The last (active) segment never
/// is, nor any segment holding offsets at or past the high watermark.
pub fn deletable(
    segments: &[SegmentInfo],
    cfg: &TopicConfig,
    now_ms: i64,
    high_watermark: i64,
    log_start: i64,
) -> usize {
    let closed = segments.len().saturating_sub(1);
    let mut n = 0;
    while n < closed && segments[n].end_offset <= log_start {
        n += 1;
    }
    if !cfg.delete {
        return n;
    }
    let below_hw = |s: &SegmentInfo| s.end_offset <= high_watermark;
    if cfg.retention_ms >= 0 {
        while n < closed
            && below_hw(&segments[n])
            && now_ms.saturating_sub(segments[n].largest_timestamp) > cfg.retention_ms
        {
            n += 1;
        }
    }
    if cfg.retention_bytes >= 0 {
        let mut remaining: u64 = segments[n..].iter().map(|s| s.size).sum();
        while n < closed
            && below_hw(&segments[n])
            && remaining.saturating_sub(segments[n].size) >= cfg.retention_bytes as u64
            && remaining >= segments[n].size
        {
            remaining -= segments[n].size;
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(size: u64, ts: i64, end: i64) -> SegmentInfo {
        SegmentInfo {
            size,
            largest_timestamp: ts,
            end_offset: end,
        }
    }

    fn cfg(ms: i64, bytes: i64) -> TopicConfig {
        TopicConfig {
            retention_ms: ms,
            retention_bytes: bytes,
            ..TopicConfig::default()
        }
    }

    #[test]
    fn time_retention_keeps_active_and_unreplicated() {
        let segs = [seg(10, 100, 10), seg(10, 200, 20), seg(10, 300, i64::MAX)];
        assert_eq!(deletable(&segs, &cfg(50, -1), 1000, 100, 0), 2);
        assert_eq!(deletable(&segs, &cfg(850, -1), 1000, 100, 0), 1);
        // Data above the high watermark stays.
        assert_eq!(deletable(&segs, &cfg(50, -1), 1000, 15, 0), 1);
        assert_eq!(deletable(&segs, &cfg(50, -1), 1000, 9, 0), 0);
        assert_eq!(deletable(&segs, &cfg(-1, -1), 1000, 100, 0), 0);
    }

    #[test]
    fn size_retention_and_log_start() {
        let segs = [
            seg(10, 0, 10),
            seg(10, 0, 20),
            seg(10, 0, 30),
            seg(5, 0, i64::MAX),
        ];
        assert_eq!(deletable(&segs, &cfg(-1, 15), 0, 100, 0), 2);
        assert_eq!(deletable(&segs, &cfg(-1, 5), 0, 100, 0), 3);
        assert_eq!(deletable(&segs, &cfg(-1, 0), 0, 100, 0), 3);
        assert_eq!(deletable(&segs, &cfg(-1, 100), 0, 100, 0), 0);
        assert_eq!(deletable(&segs, &cfg(-1, -1), 0, 100, 20), 2);
        let compact_only = TopicConfig {
            delete: false,
            ..cfg(1, 1)
        };
        assert_eq!(deletable(&segs, &compact_only, 1000, 100, 10), 1);
    }
}
