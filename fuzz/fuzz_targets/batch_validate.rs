//! Fuzzes the code that reads record batches from clients and from disk:
//! `validate_produce`, `batches`, `record_timestamps`, `assign_offsets` and the
//! recompression of `compression.type` must never panic, and whatever they accept must
//! be self-consistent. Producer-state snapshots,
//! also read from disk, ride along.
//!
//! The first input byte picks how the rest is used. Raw mode feeds the bytes as they are;
//! fixed-up mode repairs the batch length and CRC first, because a fuzzer would otherwise
//! almost never get past the CRC check into record framing and decompression.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::log::batch::{
    assign_offsets, batches, record_timestamps, validate_produce, BatchHeader, ValidateOptions,
    HEADER_LEN, LOG_OVERHEAD,
};
use weir::log::producer_state::ProducerStateManager;

fn options(compacted: bool) -> ValidateOptions {
    ValidateOptions {
        max_message_bytes: 1 << 20,
        compacted,
        log_append_time: false,
        now_ms: 1_700_000_000_000,
        timestamp_before_max_ms: i64::MAX,
        timestamp_after_max_ms: 3_600_000,
        rewrite: false,
    }
}

/// Make `buf` one batch whose length and CRC fields agree with its bytes.
fn fix_up(buf: &mut [u8]) {
    if buf.len() < HEADER_LEN {
        return;
    }
    let batch_length = (buf.len() - LOG_OVERHEAD) as i32;
    buf[8..12].copy_from_slice(&batch_length.to_be_bytes());
    buf[16] = 2;
    let crc = crc32c::crc32c(&buf[21..]);
    buf[17..21].copy_from_slice(&crc.to_be_bytes());
}

fn check_one(buf: &[u8]) {
    let _ = BatchHeader::parse(buf);
    for compacted in [false, true] {
        if let Ok(header) = validate_produce(buf, &options(compacted)) {
            // Accepted batches are exactly one well-formed batch: the stored-batch reader
            // must agree, and assigning offsets must keep it valid.
            assert_eq!(header.size(), buf.len());
            let stored: Vec<_> = batches(buf, true).collect();
            assert_eq!(stored.len(), 1);
            assert!(stored[0].is_ok());
            let mut patched = buf.to_vec();
            assign_offsets(&mut patched, 1 << 40, 3, Some(1_700_000_000_001));
            assert!(batches(&patched, true).all(|b| b.is_ok()));
            if header.compression() == 0 || compacted {
                // Its records were walked during validation, so they must read back.
                let ts = record_timestamps(buf).expect("validated batch reads back");
                assert_eq!(ts.len(), header.record_count as usize);
                // A topic's compression.type rewrites it: the result validates too.
                for codec in [0i16, 1, 2, 3, 4] {
                    let out = weir::log::codec::recompress(buf, codec, 1)
                        .expect("a validated batch recompresses");
                    // Decompressed, it may outgrow max.message.bytes (refused, as Kafka).
                    if out.len() <= options(compacted).max_message_bytes {
                        let again = validate_produce(&out, &options(compacted))
                            .expect("a recompressed batch validates");
                        assert_eq!(again.record_count, header.record_count);
                    }
                }
            }
        }
    }
    let _ = record_timestamps(buf);
    let mut copy = buf.to_vec();
    assign_offsets(&mut copy, 5, 5, Some(5));
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => check_one(rest),
        1 => {
            let mut buf = rest.to_vec();
            fix_up(&mut buf);
            check_one(&buf);
        }
        3 => {
            let _ = ProducerStateManager::decode_snapshot(rest);
            // Framed with a valid version and CRC, so the body parser is reached.
            let mut framed = vec![1u8];
            framed.extend_from_slice(&crc32c::crc32c(rest).to_be_bytes());
            framed.extend_from_slice(rest);
            if let Ok(state) = ProducerStateManager::decode_snapshot(&framed) {
                assert_eq!(state.encode_snapshot(), framed);
            }
        }
        _ => {
            // A segment: every batch the reader yields lies inside the buffer, in order.
            let mut end = 0;
            for item in batches(rest, true).chain(batches(rest, false)) {
                match item {
                    Ok((header, range)) => {
                        assert!(range.end <= rest.len() && range.len() == header.size());
                        if range.start == 0 {
                            end = 0;
                        }
                        assert_eq!(range.start, end);
                        end = range.end;
                        let _ = record_timestamps(&rest[range]);
                    }
                    Err(_) => end = 0,
                }
            }
        }
    }
});
