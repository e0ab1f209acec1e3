//! SaslAuthenticate (key 36), v0–2: one token of the exchange the handshake chose, and
//! the server's token back; v1+ also carries the session lifetime (KIP-368), after which
//! the client must authenticate again. The legacy exchange (after a v0 handshake) sends
//! the same tokens as bare frames: [`legacy_token`]. A refusal is answered with
//! SASL_AUTHENTICATION_FAILED and Kafka's message, after
//! `connection.failed.authentication.delay.ms`, and the connection is closed.

use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslAuthenticateResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use tracing::{info, warn};

use super::Ctx;
use crate::metrics as m;
use crate::protocol::Response;
use crate::server::session::{Session, TokenAnswer};

pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

/// A listener that does not speak SASL.
pub async fn handle(ctx: &Ctx, _req: SaslAuthenticateRequest) -> SaslAuthenticateResponse {
    ctx.note_error(ResponseError::IllegalSaslState.code());
    SaslAuthenticateResponse::default()
        .with_error_code(ResponseError::IllegalSaslState.code())
        .with_error_message(Some(StrBytes::from_static_str(
            "SaslAuthenticate on a listener that does not speak SASL",
        )))
}

/// What became of a token: the answer, and whether to close after it (a failure).
pub struct Answered<T> {
    pub response: T,
    pub failed: Option<String>,
}

/// A SASL listener: feed the token to the session.
pub fn handle_in_session(
    ctx: &Ctx,
    req: SaslAuthenticateRequest,
    session: &mut Session,
) -> Answered<SaslAuthenticateResponse> {
    let answer = token(ctx, &req.auth_bytes, session);
    let resp = SaslAuthenticateResponse::default();
    match answer {
        TokenAnswer::Continue(t) => Answered {
            response: resp.with_auth_bytes(Bytes::from(t)),
            failed: None,
        },
        TokenAnswer::Done { token, lifetime } => Answered {
            response: resp
                .with_auth_bytes(Bytes::from(token))
                .with_session_lifetime_ms(
                    lifetime.map_or(0, |l| i64::try_from(l.as_millis()).unwrap_or(i64::MAX)),
                ),
            failed: None,
        },
        TokenAnswer::Failed {
            error,
            message,
            detail,
        } => {
            ctx.note_error(error.code());
            Answered {
                response: resp
                    .with_error_code(error.code())
                    .with_error_message(Some(StrBytes::from_string(message))),
                failed: Some(detail),
            }
        }
    }
}

/// A bare token of the legacy exchange: the bare answer (size-prefixed), or the reason
/// to close (the legacy exchange has no way to say why).
pub fn legacy_token(ctx: &Ctx, frame: &[u8], session: &mut Session) -> Answered<Option<Response>> {
    let (bytes, failed) = match token(ctx, frame, session) {
        TokenAnswer::Continue(t) | TokenAnswer::Done { token: t, .. } => (t, None),
        TokenAnswer::Failed { detail, .. } => (Vec::new(), Some(detail)),
    };
    if failed.is_some() {
        return Answered {
            response: None,
            failed,
        };
    }
    let mut out = BytesMut::with_capacity(4 + bytes.len());
    out.put_i32(bytes.len() as i32);
    out.put_slice(&bytes);
    Answered {
        response: Some(Response::from(out.freeze())),
        failed: None,
    }
}

/// One token through the session, counted and logged.
fn token(ctx: &Ctx, token: &[u8], session: &mut Session) -> TokenAnswer {
    let reauth = session.is_reauthenticating();
    let image = ctx.state.controller.image();
    let answer = session.token(token, &image, Instant::now());
    let mechanism = session.mechanism().map_or("none", |m| m.name());
    let count = |result: &'static str| {
        metrics::counter!(m::AUTHENTICATIONS_TOTAL, "listener" => ctx.listener.to_string(),
            "mechanism" => mechanism, "result" => result, "reauthentication" => if reauth { "true" } else { "false" })
        .increment(1);
    };
    let audit = |outcome: &'static str, principal: &str, reason: Option<&str>| {
        if let Some(a) = &ctx.state.audit {
            a.record(crate::audit::Event {
                kind: "authentication",
                outcome,
                principal,
                client: ctx.peer,
                listener: &ctx.listener,
                details: serde_json::json!({"mechanism": mechanism, "reauthentication": reauth, "reason": reason}),
            });
        }
    };
    match &answer {
        TokenAnswer::Continue(_) => {}
        TokenAnswer::Done { lifetime, .. } => {
            count("success");
            audit(
                "success",
                &format!("User:{}", session.user().unwrap_or_default()),
                None,
            );
            info!(peer = %ctx.peer, listener = %ctx.listener, mechanism, user = session.user().unwrap_or_default(),
                reauth, session_lifetime = ?lifetime, "authenticated");
        }
        TokenAnswer::Failed {
            detail, message, ..
        } => {
            count("failure");
            audit("failure", &ctx.principal, Some(detail));
            warn!(peer = %ctx.peer, listener = %ctx.listener, mechanism, client_id = %ctx.client_id,
                reauth, %detail, %message, "authentication failed");
        }
    }
    answer
}
