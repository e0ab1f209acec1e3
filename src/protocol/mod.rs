//! The Kafka wire protocol: length-prefixed frames, request headers, response encoding
//! and the ApiVersions table.
//!
//! Message bodies are decoded and encoded by the `kafka-protocol` crate; this module adds
//! what the crate leaves to the broker: frame limits, picking the header version for an
//! (api key, version) pair, and Kafka's KIP-511 ApiVersions fallback.

pub mod codec;
pub mod file_chunk;
pub mod flex;
pub mod frame;
pub mod response;

pub use codec::{
    decode_header, encode_response, encode_response_splicing, DecodeError, RequestFrame,
};
pub use frame::{FrameError, FrameReader};
pub use response::Response;
