//! Compression the broker applies itself: a topic's `compression.type`.
//!
//! Kafka's default, `producer`, stores every batch in the codec its producer chose and
//! costs nothing. Any other value (`uncompressed`, `gzip`, `snappy`, `lz4`, `zstd`) makes
//! the leader rewrite each produced batch whose codec differs: the records are
//! decompressed and compressed again with the topic's codec and level
//! (`compression.gzip.level`, `compression.lz4.level`, `compression.zstd.level`), and the
//! header keeps everything else (producer id, epoch, sequence, timestamps). Batches
//! already in the target codec are stored untouched, as Kafka does. Followers copy what
//! the leader stored, so the rewrite happens once per batch.
//!
//! The encoders write the framings every Kafka client reads: gzip and zstd streams,
//! snappy in the xerial framing the Java client writes (32 KiB blocks), and LZ4 frames
//! with Kafka's flags (64 KiB independent blocks, no checksums, no content size).

use std::io::{self, Write};

use super::batch;
use super::LogError;

/// Codec ids of a batch's attributes.
pub const NONE: i16 = 0;
pub const GZIP: i16 = 1;
pub const SNAPPY: i16 = 2;
pub const LZ4: i16 = 3;
pub const ZSTD: i16 = 4;

/// Kafka's defaults: gzip's own default (6), LZ4 HC level 9, zstd level 3.
pub const GZIP_DEFAULT_LEVEL: i32 = -1;
pub const LZ4_DEFAULT_LEVEL: i32 = 9;
pub const ZSTD_DEFAULT_LEVEL: i32 = 3;

/// The level ranges Kafka accepts (`-1` is gzip's default).
pub const GZIP_LEVELS: (i32, i32) = (1, 9);
pub const LZ4_LEVELS: (i32, i32) = (1, 17);
pub const ZSTD_LEVELS: (i32, i32) = (-131_072, 22);

const XERIAL_HEADER: &[u8] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
const XERIAL_BLOCK: usize = 32 << 10;

/// What a topic's `compression.type` asks of the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TopicCompression {
    /// Keep the producer's codec.
    #[default]
    Producer,
    /// Store in this codec (`NONE` for `uncompressed`) at this level.
    Codec { codec: i16, level: i32 },
}

impl TopicCompression {
    /// From a validated `compression.type` and the three level settings.
    pub fn from_config(kind: &str, gzip: i32, lz4: i32, zstd: i32) -> TopicCompression {
        let (codec, level) = match kind {
            "uncompressed" => (NONE, 0),
            "gzip" => (GZIP, gzip),
            "snappy" => (SNAPPY, 0),
            "lz4" => (LZ4, lz4),
            "zstd" => (ZSTD, zstd),
            _ => return TopicCompression::Producer,
        };
        TopicCompression::Codec { codec, level }
    }

    /// The codec a batch arriving in `source` must be stored in, if it must change.
    pub fn rewrite_to(&self, source: i16) -> Option<(i16, i32)> {
        match *self {
            TopicCompression::Codec { codec, level } if codec != source => Some((codec, level)),
            _ => None,
        }
    }
}

/// The names `compression.type` accepts, Kafka's.
pub const TYPES: &[&str] = &["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"];

/// `batch` (one validated produce batch) with its records in `codec` at `level`: the
/// same header but for codec, length and CRC. Fails like validation when the records do
/// not decompress (Corrupt) or decompress to more than the cap.
pub fn recompress(batch: &[u8], codec: i16, level: i32) -> Result<Vec<u8>, LogError> {
    let (header, plain) = batch::stored_records(batch)?;
    let records = compress(codec, level, &plain)
        .map_err(|e| LogError::Io(io::Error::other(format!("cannot compress batch: {e}"))))?;
    Ok(batch::with_records(batch, &header, codec, &records))
}

/// [`recompress`] from the produce path: compressing a large batch takes milliseconds
/// of CPU, so on a multi-threaded runtime the worker hands its other tasks to the rest
/// of the pool meanwhile (elsewhere, such as single-threaded tests, it just runs).
pub fn recompress_off_runtime(batch: &[u8], codec: i16, level: i32) -> Result<Vec<u8>, LogError> {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| recompress(batch, codec, level))
        }
        _ => recompress(batch, codec, level),
    }
}

/// `plain` compressed with `codec` (`NONE`: a copy).
pub fn compress(codec: i16, level: i32, plain: &[u8]) -> io::Result<Vec<u8>> {
    match codec {
        NONE => Ok(plain.to_vec()),
        GZIP => {
            let level = if level < 0 { 6 } else { level.clamp(0, 9) } as u32;
            let out = Vec::with_capacity(plain.len() / 2 + 64);
            let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::new(level));
            enc.write_all(plain)?;
            enc.finish()
        }
        SNAPPY => {
            let mut out = Vec::with_capacity(XERIAL_HEADER.len() + plain.len() / 2 + 64);
            out.extend_from_slice(XERIAL_HEADER);
            let mut enc = snap::raw::Encoder::new();
            for block in plain.chunks(XERIAL_BLOCK) {
                let at = out.len();
                out.extend_from_slice(&[0; 4]);
                out.resize(at + 4 + snap::raw::max_compress_len(block.len()), 0);
                let n = enc
                    .compress(block, &mut out[at + 4..])
                    .map_err(io::Error::other)?;
                out.truncate(at + 4 + n);
                out[at..at + 4].copy_from_slice(&(n as u32).to_be_bytes());
            }
            Ok(out)
        }
        LZ4 => {
            let out = Vec::with_capacity(plain.len() / 2 + 64);
            let mut enc = lz4::EncoderBuilder::new()
                .level(level.max(0) as u32)
                .block_size(lz4::BlockSize::Max64KB)
                .block_mode(lz4::BlockMode::Independent)
                .block_checksum(lz4::liblz4::BlockChecksum::NoBlockChecksum)
                .checksum(lz4::ContentChecksum::NoChecksum)
                .build(out)?;
            enc.write_all(plain)?;
            let (out, result) = enc.finish();
            result.map(|()| out)
        }
        ZSTD => zstd::stream::encode_all(plain, level),
        c => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown compression codec {c}"),
        )),
    }
}

/// Kafka's default level of `codec` (0 where the codec has no levels).
pub fn default_level(codec: i16) -> i32 {
    match codec {
        GZIP => GZIP_DEFAULT_LEVEL,
        LZ4 => LZ4_DEFAULT_LEVEL,
        ZSTD => ZSTD_DEFAULT_LEVEL,
        _ => 0,
    }
}

/// The codec name of a batch's codec id, as `compression.type` spells it.
pub fn name(codec: i16) -> &'static str {
    match codec {
        NONE => "uncompressed",
        GZIP => "gzip",
        SNAPPY => "snappy",
        LZ4 => "lz4",
        ZSTD => "zstd",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::{stored_records, BatchBuilder, Compression};

    fn sample() -> Vec<u8> {
        let mut b = BatchBuilder::new(0).producer(7, 2, 40);
        for i in 0..500 {
            let v = format!("value {i} {}", "x".repeat(i % 90));
            b = b.record(
                Some(format!("k{i}").as_bytes()),
                Some(v.as_bytes()),
                1000 + i as i64,
            );
        }
        b.build()
    }

    #[test]
    fn every_codec_round_trips_through_every_other() {
        let codecs = [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ];
        for source in codecs {
            let mut b = BatchBuilder::new(0).producer(7, 2, 40).compression(source);
            for i in 0..300 {
                b = b.record(Some(b"k"), Some(format!("v{i}").as_bytes()), 5 + i);
            }
            let original = b.build();
            let (h0, plain0) = stored_records(&original).unwrap();
            for target in [NONE, GZIP, SNAPPY, LZ4, ZSTD] {
                let level = match target {
                    GZIP => 9,
                    LZ4 => 1,
                    ZSTD => -5,
                    _ => 0,
                };
                let out = recompress(&original, target, level).unwrap();
                let (h, plain) = stored_records(&out).unwrap();
                assert_eq!(h.compression(), target, "{source:?} -> {target}");
                assert_eq!(plain, plain0, "{source:?} -> {target}");
                assert_eq!(
                    (h.producer_id, h.producer_epoch, h.base_sequence),
                    (7, 2, 40)
                );
                assert_eq!(
                    (h.record_count, h.last_offset_delta, h.max_timestamp),
                    (h0.record_count, h0.last_offset_delta, h0.max_timestamp)
                );
                assert_eq!(h.size(), out.len());
                // The rewritten batch passes the produce path's own checks (CRC included).
                crate::log::batch::validate_produce(&out, &crate::log::batch::tests::opts())
                    .unwrap();
            }
        }
    }

    /// kafka-protocol's decoder, an implementation independent of ours, reads what the
    /// encoders here write (snappy as xerial, lz4 as Kafka's frames).
    #[test]
    fn an_independent_decoder_reads_every_rewritten_batch() {
        let original = sample();
        for target in [GZIP, SNAPPY, LZ4, ZSTD] {
            let out = recompress(&original, target, default_level(target)).unwrap();
            let mut buf = bytes::Bytes::from(out);
            let records = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf).unwrap();
            assert_eq!(records.records.len(), 500, "codec {target}");
            assert_eq!(records.records[499].key.as_deref(), Some(&b"k499"[..]));
        }
    }

    #[test]
    fn snappy_output_uses_the_xerial_framing_in_32k_blocks() {
        let plain = vec![7u8; 100 << 10];
        let out = compress(SNAPPY, 0, &plain).unwrap();
        assert!(out.starts_with(b"\x82SNAPPY\x00"));
        let mut at = XERIAL_HEADER.len();
        let mut blocks = 0;
        while at < out.len() {
            let n = u32::from_be_bytes(out[at..at + 4].try_into().unwrap()) as usize;
            at += 4 + n;
            blocks += 1;
        }
        assert_eq!((at, blocks), (out.len(), 4));
    }

    #[test]
    fn lz4_frames_carry_kafkas_flags() {
        let out = compress(LZ4, 9, b"hello hello hello").unwrap();
        assert_eq!(&out[..4], &[0x04, 0x22, 0x4d, 0x18]);
        // FLG: version 01, independent blocks, no block checksum, no content size or
        // checksum; BD: 64 KiB blocks.
        assert_eq!(out[4], 0b0110_0000);
        assert_eq!(out[5], 0b0100_0000);
    }

    #[test]
    fn producer_and_same_codec_need_no_rewrite() {
        assert_eq!(TopicCompression::Producer.rewrite_to(GZIP), None);
        let zstd = TopicCompression::from_config("zstd", -1, 9, 3);
        assert_eq!(zstd.rewrite_to(ZSTD), None);
        assert_eq!(zstd.rewrite_to(NONE), Some((ZSTD, 3)));
        let plain = TopicCompression::from_config("uncompressed", -1, 9, 3);
        assert_eq!(plain.rewrite_to(LZ4), Some((NONE, 0)));
        assert_eq!(plain.rewrite_to(NONE), None);
    }
}
