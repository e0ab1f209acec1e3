//! Request headers in, responses out.
//!
//! The header version depends on (api key, version): flexible versions use header v2 with
//! tagged fields. ApiVersions responses always use header v0 so that a client can read
//! our answer even when it asked with a version we do not know (KIP-511).

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::buf::ByteBufMut;
use kafka_protocol::protocol::{Decodable, Encodable};
use thiserror::Error;

use super::file_chunk::FileChunks;
use super::response::{Response, SplicingBuf};

#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("request shorter than a header")]
    Short,
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    #[error("malformed request header: {0}")]
    Header(String),
    #[error("malformed {api:?} v{version} request body: {reason}")]
    Body {
        api: ApiKey,
        version: i16,
        reason: String,
    },
}

/// A request split into its decoded header and undecoded body.
#[derive(Debug)]
pub struct RequestFrame {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub header: RequestHeader,
    pub body: Bytes,
}

/// The (api key, version, correlation id) of a frame, readable even when the rest is not.
pub fn peek_ids(frame: &[u8]) -> Option<(i16, i16, i32)> {
    if frame.len() < 8 {
        return None;
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let corr = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    Some((key, version, corr))
}

/// Decode the request header. For an ApiVersions request of a version newer than we know
/// the header is decoded as v1 (the KIP-511 rule), so we can still answer it.
pub fn decode_header(frame: Bytes) -> Result<RequestFrame, DecodeError> {
    let (key, version, _) = peek_ids(&frame).ok_or(DecodeError::Short)?;
    let api_key = ApiKey::try_from(key).map_err(|_| DecodeError::UnknownApiKey(key))?;
    let range = api_key.valid_versions();
    let header_version = if api_key == ApiKey::ApiVersions && version > range.max {
        1
    } else if version < range.min || version > range.max {
        // Outside what the schema knows: the caller answers or closes; decode as v1 so
        // the client id can be logged.
        1
    } else {
        api_key.request_header_version(version)
    };
    let mut buf = frame;
    let header = RequestHeader::decode(&mut buf, header_version)
        .map_err(|e| DecodeError::Header(e.to_string()))?;
    Ok(RequestFrame {
        api_key,
        api_version: version,
        header,
        body: buf,
    })
}

/// Decode a request body of a known version, rejecting trailing garbage.
pub fn decode_body<T: Decodable>(
    api: ApiKey,
    version: i16,
    body: &mut Bytes,
) -> Result<T, DecodeError> {
    let body_err = |reason: String| DecodeError::Body {
        api,
        version,
        reason,
    };
    // The crate can panic on some malformed inputs in older releases; we never let
    // network input take the broker down.
    let decoded =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| T::decode(body, version)))
            .map_err(|_| body_err("decoder panicked".into()))?
            .map_err(|e| body_err(e.to_string()))?;
    Ok(decoded)
}

/// Encode a response with its size prefix and header, into one buffer.
pub fn encode_response<T: Encodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Result<Response, String> {
    let (header, header_version, total) = response_header(api_key, version, correlation_id, body)?;
    let mut out = BytesMut::with_capacity(4 + total);
    encode_into(&mut out, &header, header_version, total, body, version)?;
    Ok(Response::from(out.freeze()))
}

/// Encode a response whose body holds the record sets `records` (in message order),
/// keeping those by reference instead of copying them and putting `files` in place of
/// their placeholders (see [`SplicingBuf`]).
pub fn encode_response_splicing<T: Encodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
    records: Vec<Bytes>,
    files: FileChunks,
) -> Result<Response, String> {
    let (header, header_version, total) = response_header(api_key, version, correlation_id, body)?;
    let record_bytes: usize = records.iter().map(Bytes::len).sum();
    let mut out = SplicingBuf::new(4 + total.saturating_sub(record_bytes), records, files);
    encode_into(&mut out, &header, header_version, total, body, version)?;
    out.finish()
}

/// The response header, its version and the encoded size of header plus body.
fn response_header<T: Encodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Result<(ResponseHeader, i16, usize), String> {
    let header_version = if api_key == ApiKey::ApiVersions {
        0
    } else {
        api_key.response_header_version(version)
    };
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let hsize = header
        .compute_size(header_version)
        .map_err(|e| e.to_string())?;
    let bsize = body.compute_size(version).map_err(|e| e.to_string())?;
    Ok((header, header_version, hsize + bsize))
}

fn encode_into<B: ByteBufMut, T: Encodable>(
    out: &mut B,
    header: &ResponseHeader,
    header_version: i16,
    total: usize,
    body: &T,
    version: i16,
) -> Result<(), String> {
    let size =
        i32::try_from(total).map_err(|_| format!("response of {total} bytes is too large"))?;
    out.put_i32(size);
    header
        .encode(out, header_version)
        .map_err(|e| e.to_string())?;
    body.encode(out, version).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::APIS;
    use bytes::BufMut;
    use kafka_protocol::protocol::StrBytes;
    use proptest::prelude::*;

    fn frame(api: i16, version: i16, tail: &[u8]) -> Bytes {
        let mut b = BytesMut::new();
        b.put_i16(api);
        b.put_i16(version);
        b.put_i32(1);
        b.put_slice(tail);
        b.freeze()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4000, .. ProptestConfig::default() })]

        /// Arbitrary bytes after a valid (api, version) prefix never panic the header or
        /// body decoders: they decode or return an error.
        #[test]
        fn request_decoding_never_panics(idx in 0usize..64, version in -1i16..20, tail in proptest::collection::vec(any::<u8>(), 0..256)) {
            let (api, _) = APIS[idx % APIS.len()];
            if let Ok(req) = decode_header(frame(api as i16, version, &tail)) {
                let range = api.valid_versions();
                if version >= range.min && version <= range.max {
                    let mut body = req.body;
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        kafka_protocol::messages::RequestKind::decode(api, &mut body, version)
                    })).map_err(|_| TestCaseError::fail(format!("{api:?} v{version} decoder panicked")))?;
                }
            }
        }

        #[test]
        fn header_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_header(Bytes::from(bytes));
        }
    }

    /// Eight bytes claiming 54 million Metadata topics: an error, not an abort.
    #[test]
    fn huge_array_lengths_are_decode_errors() {
        let req = decode_header(Bytes::from_static(&[
            0, 3, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 3, 0x3c, 0x0c, 0, 0xb6,
        ]))
        .unwrap();
        let mut body = req.body;
        assert!(decode_body::<kafka_protocol::messages::MetadataRequest>(
            ApiKey::Metadata,
            0,
            &mut body
        )
        .is_err());
        let req = decode_header(Bytes::from_static(&[
            0, 3, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0,
        ]))
        .unwrap();
        let mut body = req.body;
        assert!(decode_body::<kafka_protocol::messages::MetadataRequest>(
            ApiKey::Metadata,
            0,
            &mut body
        )
        .is_err());
    }

    /// A Fetch response with record sets kept by reference is byte for byte the one
    /// encoded into a single buffer, at every version.
    #[test]
    fn spliced_fetch_responses_match_copied_ones() {
        use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
        use kafka_protocol::messages::{FetchResponse, TopicName};
        let sets: Vec<Bytes> = [9000usize, 0, 100, 70_000]
            .iter()
            .enumerate()
            .map(|(i, n)| Bytes::from((0..*n).map(|b| (b * 7 + i) as u8).collect::<Vec<u8>>()))
            .collect();
        let partitions = |from: usize| -> Vec<PartitionData> {
            (from..from + 2)
                .map(|i| {
                    PartitionData::default()
                        .with_partition_index(i as i32)
                        .with_high_watermark(1000 + i as i64)
                        .with_records(Some(sets[i].clone()))
                })
                .collect()
        };
        let resp = FetchResponse::default().with_responses(vec![
            FetchableTopicResponse::default()
                .with_topic(TopicName(StrBytes::from_static_str("a")))
                .with_partitions(partitions(0)),
            FetchableTopicResponse::default()
                .with_topic(TopicName(StrBytes::from_static_str("b")))
                .with_partitions(partitions(2)),
        ]);
        for version in 4..=18 {
            let copied = encode_response(ApiKey::Fetch, version, 42, &resp).unwrap();
            let spliced = encode_response_splicing(
                ApiKey::Fetch,
                version,
                42,
                &resp,
                sets.clone(),
                FileChunks::default(),
            )
            .unwrap();
            assert_eq!(
                copied.to_bytes().unwrap(),
                spliced.to_bytes().unwrap(),
                "v{version}"
            );
            // The two large sets went by reference, between copied stretches (and before
            // the trailing tagged fields of flexible versions).
            let chunks = if version >= 12 { 5 } else { 4 };
            assert_eq!(
                (copied.chunk_count(), spliced.chunk_count()),
                (1, chunks),
                "v{version}"
            );
        }
    }

    /// Record sets sent from a file encode to the same bytes as the same sets in memory.
    #[test]
    fn file_chunks_encode_like_the_bytes_they_name() {
        use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
        use kafka_protocol::messages::{FetchResponse, TopicName};
        use std::io::Write;
        use std::sync::Arc;

        use crate::protocol::file_chunk::FileChunk;

        let sets: Vec<Vec<u8>> = [40_000usize, 100, 70_000, 9_000]
            .iter()
            .enumerate()
            .map(|(i, n)| (0..*n).map(|b| (b * 13 + i) as u8).collect())
            .collect();
        let mut tmp = tempfile::tempfile().unwrap();
        tmp.write_all(b"junk").unwrap();
        let mut at = 4u64;
        let mut places = Vec::new();
        for set in &sets {
            tmp.write_all(set).unwrap();
            places.push((at, set.len()));
            at += set.len() as u64;
        }
        let file = Arc::new(tmp);
        let response = |records: Vec<Bytes>| {
            let partitions = records
                .into_iter()
                .enumerate()
                .map(|(i, r)| {
                    PartitionData::default()
                        .with_partition_index(i as i32)
                        .with_records(Some(r))
                })
                .collect();
            FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
                .with_topic(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(partitions)])
        };
        let in_memory = response(sets.iter().map(|s| Bytes::from(s.clone())).collect());
        for version in 4..=18 {
            // Sets 0 and 2 from the file, 1 and 3 from memory.
            let mut files = FileChunks::default();
            let records: Vec<Bytes> = sets
                .iter()
                .zip(&places)
                .enumerate()
                .map(|(i, (set, (pos, len)))| {
                    if i % 2 == 0 {
                        files
                            .add(FileChunk {
                                file: file.clone(),
                                pos: *pos,
                                len: *len,
                            })
                            .unwrap()
                    } else {
                        Bytes::from(set.clone())
                    }
                })
                .collect();
            let by_file = response(records.clone());
            let copied = encode_response(ApiKey::Fetch, version, 7, &in_memory).unwrap();
            let sent =
                encode_response_splicing(ApiKey::Fetch, version, 7, &by_file, records, files)
                    .unwrap();
            assert_eq!(sent.file_chunk_count(), 2, "v{version}");
            assert_eq!(
                copied.to_bytes().unwrap(),
                sent.to_bytes().unwrap(),
                "v{version}"
            );
        }
    }

    /// A placeholder the encoder never meets, or meets unannounced, fails the encoding
    /// instead of putting zeros on the wire.
    #[test]
    fn misplaced_placeholders_fail_the_encoding() {
        use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
        use kafka_protocol::messages::FetchResponse;
        use std::sync::Arc;

        use crate::protocol::file_chunk::FileChunk;

        let file = Arc::new(tempfile::tempfile().unwrap());
        let chunk = FileChunk {
            file,
            pos: 0,
            len: 5000,
        };
        let with = |records: Bytes| {
            FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
                .with_partitions(vec![PartitionData::default().with_records(Some(records))])])
        };
        // Announced but not in the message.
        let mut files = FileChunks::default();
        files.add(chunk.clone()).unwrap();
        let empty = with(Bytes::new());
        assert!(encode_response_splicing(ApiKey::Fetch, 12, 1, &empty, vec![], files).is_err());
        // In the message but not announced in the record list: written as bytes.
        let mut files = FileChunks::default();
        let placeholder = files.add(chunk).unwrap();
        let resp = with(placeholder);
        assert!(encode_response_splicing(ApiKey::Fetch, 12, 1, &resp, vec![], files).is_err());
    }

    #[test]
    fn short_and_unknown_frames_are_errors() {
        assert!(matches!(
            decode_header(Bytes::from_static(&[0, 1])),
            Err(DecodeError::Short)
        ));
        assert!(matches!(
            decode_header(frame(999, 0, &[0, 0])),
            Err(DecodeError::UnknownApiKey(999))
        ));
    }
}
