//! PushTelemetry (key 72), v0: a client's metrics, OTLP-encoded (KIP-714), kept for
//! `/metrics` (see `crate::telemetry`). Refusals are Kafka's: an unknown instance or an
//! old subscription id UNKNOWN_SUBSCRIPTION_ID (the client asks for its subscription
//! again), a push before the interval THROTTLING_QUOTA_EXCEEDED, a payload over
//! `telemetry_max_bytes` TELEMETRY_TOO_LARGE, a codec not offered
//! UNSUPPORTED_COMPRESSION_TYPE, and a payload that does not decode INVALID_RECORD.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{PushTelemetryRequest, PushTelemetryResponse};
use kafka_protocol::protocol::VersionRange;

use super::Ctx;
use crate::log::batch;
use crate::metrics as m;
use crate::telemetry::{PushError, ACCEPTED_COMPRESSION, MAX_BYTES};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

pub async fn handle(ctx: &Ctx, req: PushTelemetryRequest) -> PushTelemetryResponse {
    let outcome = push(ctx, &req);
    let (code, result) = match &outcome {
        Ok(_) => (0, "accepted"),
        Err(PushError::UnknownSubscription) => (
            ResponseError::UnknownSubscriptionId.code(),
            "unknown_subscription",
        ),
        Err(PushError::TooSoon) => (ResponseError::ThrottlingQuotaExceeded.code(), "too_soon"),
        Err(PushError::TooLarge) => (ResponseError::TelemetryTooLarge.code(), "too_large"),
        Err(PushError::UnsupportedCompression) => (
            ResponseError::UnsupportedCompressionType.code(),
            "unsupported_compression",
        ),
        Err(PushError::Invalid(e)) => {
            tracing::debug!(client_id = %ctx.client_id, peer = %ctx.peer, error = %e,
                "undecodable client telemetry");
            (ResponseError::InvalidRecord.code(), "invalid")
        }
    };
    metrics::counter!(m::CLIENT_TELEMETRY_PUSHES_TOTAL, "result" => result).increment(1);
    ctx.note_error(code);
    PushTelemetryResponse::default().with_error_code(code)
}

fn push(ctx: &Ctx, req: &PushTelemetryRequest) -> Result<usize, PushError> {
    if req.metrics.len() > MAX_BYTES as usize {
        return Err(PushError::TooLarge);
    }
    let codec = req.compression_type;
    if codec != 0 && !ACCEPTED_COMPRESSION.contains(&codec) {
        return Err(PushError::UnsupportedCompression);
    }
    let payload = batch::decompress(i16::from(codec), &req.metrics, MAX_BYTES as u64 * 8)
        .map_err(|e| PushError::Invalid(e.to_string()))?;
    ctx.state.telemetry.push(
        req.client_instance_id,
        req.subscription_id,
        req.terminating,
        &payload,
    )
}
