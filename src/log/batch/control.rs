//! Transaction markers: the control batches (COMMIT or ABORT) a partition leader writes
//! when a transaction ends. Each holds one record whose key is the control record type
//! (version i16 = 0, type i16: 0 abort, 1 commit) and whose value is Kafka's
//! EndTransactionMarker (version i16 = 0, coordinator epoch i32).

use super::{parse_records, stored_records, BatchBuilder, BatchHeader};
use crate::log::LogError;

/// Control record type of an abort marker.
pub const ABORT: i16 = 0;
/// Control record type of a commit marker.
pub const COMMIT: i16 = 1;

/// What a transaction marker says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    pub commit: bool,
    /// The epoch of the transaction coordinator that wrote it: a marker from an older
    /// coordinator than one already seen is refused.
    pub coordinator_epoch: i32,
}

/// The control batch of `marker` for one producer, at offset 0 (the log assigns it).
pub fn marker_batch(
    producer_id: i64,
    producer_epoch: i16,
    marker: TxnMarker,
    timestamp: i64,
) -> Result<Vec<u8>, LogError> {
    let kind = if marker.commit { COMMIT } else { ABORT };
    let mut key = [0u8; 4];
    key[2..].copy_from_slice(&kind.to_be_bytes());
    let mut value = [0u8; 6];
    value[2..].copy_from_slice(&marker.coordinator_epoch.to_be_bytes());
    BatchBuilder::new(0)
        .producer(producer_id, producer_epoch, -1)
        .transactional(true)
        .control(true)
        .record(Some(&key), Some(&value), timestamp)
        .try_build()
}

/// The marker of a stored control batch. A control batch whose type is neither commit
/// nor abort (Kafka reserves other types) or whose records do not parse is `Corrupt`.
pub fn parse_marker(batch: &[u8]) -> Result<(BatchHeader, TxnMarker), LogError> {
    let bad = |m: String| LogError::Corrupt(format!("transaction marker: {m}"));
    let (hdr, records) = stored_records(batch)?;
    if !hdr.is_control() {
        return Err(bad("not a control batch".into()));
    }
    let parsed = parse_records(&hdr, &records)?;
    let record = parsed.first().ok_or_else(|| bad("no record".into()))?;
    let key = record.key.unwrap_or_default();
    let kind = match key {
        [_, _, a, b] => i16::from_be_bytes([*a, *b]),
        _ => return Err(bad(format!("key of {} bytes", key.len()))),
    };
    let commit = match kind {
        COMMIT => true,
        ABORT => false,
        other => return Err(bad(format!("control type {other}"))),
    };
    let coordinator_epoch = match record.value.unwrap_or_default() {
        [_, _, a, b, c, d, ..] => i32::from_be_bytes([*a, *b, *c, *d]),
        v => return Err(bad(format!("value of {} bytes", v.len()))),
    };
    Ok((
        hdr,
        TxnMarker {
            commit,
            coordinator_epoch,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_bad_ones_are_corrupt() {
        for commit in [true, false] {
            let m = TxnMarker {
                commit,
                coordinator_epoch: 7,
            };
            let b = marker_batch(42, 3, m, 1_700_000_000_000).unwrap();
            let (h, got) = parse_marker(&b).unwrap();
            assert_eq!(got, m);
            assert!(h.is_control() && h.is_transactional());
            assert_eq!((h.producer_id, h.producer_epoch), (42, 3));
        }
        let data = BatchBuilder::new(0)
            .record(Some(b"k"), Some(b"v"), 1)
            .build();
        assert!(matches!(parse_marker(&data), Err(LogError::Corrupt(_))));
        let odd = BatchBuilder::new(0)
            .control(true)
            .record(Some(&[0, 0, 0, 5]), Some(&[0; 6]), 1)
            .build();
        assert!(matches!(parse_marker(&odd), Err(LogError::Corrupt(_))));
        assert!(parse_marker(&[1, 2, 3]).is_err());
    }
}
