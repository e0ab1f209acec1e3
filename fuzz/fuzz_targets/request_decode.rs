//! Fuzzes what the broker does with a request frame before any handler runs: header
//! decoding (including the KIP-511 path for unknown ApiVersions versions) and body
//! decoding for every API and version Weir advertises. Nothing may panic or allocate
//! without bound; errors are fine.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use weir::handlers::APIS;
use weir::protocol::decode_header;

fuzz_target!(|data: &[u8]| {
    // The first two bytes pick an advertised (api, version) so that most inputs reach a
    // body decoder; the rest is the frame after the api key and version.
    if data.len() < 2 {
        let _ = decode_header(Bytes::copy_from_slice(data));
        return;
    }
    let (api, range) = APIS[data[0] as usize % APIS.len()];
    let span = (range.max - range.min + 1) as u8;
    let version = range.min + (data[1] % span) as i16;
    let mut frame = Vec::with_capacity(data.len() + 2);
    frame.extend_from_slice(&(api as i16).to_be_bytes());
    frame.extend_from_slice(&version.to_be_bytes());
    frame.extend_from_slice(&data[2..]);
    if let Ok(req) = decode_header(Bytes::from(frame)) {
        let mut body = req.body;
        let _ = kafka_protocol::messages::RequestKind::decode(api, &mut body, version);
    }
});
