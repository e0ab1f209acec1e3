//! SaslHandshake (key 17), v0–1: the client names its mechanism. v1 is followed by
//! SaslAuthenticate requests (KIP-43); v0 by bare tokens in size-prefixed frames (the
//! legacy exchange). On a listener without SASL the answer is ILLEGAL_SASL_STATE, as
//! Kafka's; on a SASL listener the connection's session decides
//! (`crate::server::session`).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};

use super::Ctx;
use crate::server::session::Session;

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

/// A listener that does not speak SASL.
pub async fn handle(ctx: &Ctx, _req: SaslHandshakeRequest) -> SaslHandshakeResponse {
    ctx.note_error(ResponseError::IllegalSaslState.code());
    SaslHandshakeResponse::default().with_error_code(ResponseError::IllegalSaslState.code())
}

/// A SASL listener: the answer, and the reason to close after it, if any.
pub fn handle_in_session(
    ctx: &Ctx,
    req: SaslHandshakeRequest,
    session: &mut Session,
) -> (SaslHandshakeResponse, Option<String>) {
    let answer = session.handshake(ctx.version, req.mechanism.as_str());
    let code = answer.error.map_or(0, |e| e.code());
    ctx.note_error(code);
    let resp = SaslHandshakeResponse::default()
        .with_error_code(code)
        .with_mechanisms(
            answer
                .mechanisms
                .into_iter()
                .map(StrBytes::from_static_str)
                .collect(),
        );
    (resp, answer.close)
}
