//! A minimal async Kafka client for broker-to-broker requests (follower fetches and
//! OffsetForLeaderEpoch) and the `weir` operator commands: one TCP connection (TLS over
//! it when given a connector), one request in flight at a time, bodies encoded and
//! decoded with kafka-protocol. Everything that comes back is untrusted
//! input: oversized frames, mismatched correlation ids and undecodable bodies are
//! errors, never panics, and the caller drops the connection.

use std::time::Duration;

use bytes::BytesMut;
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::protocol::frame::{FrameError, FrameReader};

/// Responses larger than this are refused (a fetch response is bounded by the
/// request's `max_bytes`; this only guards against a corrupt length prefix).
const MAX_RESPONSE_BYTES: usize = 256 << 20;

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("TLS with {addr}: {source}")]
    Tls {
        addr: String,
        source: std::io::Error,
    },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("connection closed by the peer")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    #[error("cannot encode the request: {0}")]
    Encode(String),
    #[error("cannot decode the response: {0}")]
    Decode(String),
    #[error("response correlation id {got}, expected {expected}")]
    Correlation { got: i32, expected: i32 },
    #[error("SASL authentication failed: {0}")]
    Auth(String),
}

/// One connection to a broker's client listener.
pub struct BrokerClient {
    writer: Box<dyn AsyncWrite + Send + Sync + Unpin>,
    frames: FrameReader<Box<dyn AsyncRead + Send + Sync + Unpin>>,
    correlation: i32,
    client_id: StrBytes,
}

impl BrokerClient {
    pub async fn connect(
        addr: &str,
        client_id: String,
        timeout: Duration,
    ) -> Result<BrokerClient, ClientError> {
        BrokerClient::connect_with(addr, client_id, timeout, None).await
    }

    /// Connects to `addr` (`host:port`), over TLS when `tls` is given: the server's
    /// certificate must be valid for `host`.
    pub async fn connect_with(
        addr: &str,
        client_id: String,
        timeout: Duration,
        tls: Option<&TlsConnector>,
    ) -> Result<BrokerClient, ClientError> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(source)) => {
                return Err(ClientError::Connect {
                    addr: addr.to_string(),
                    source,
                })
            }
            Err(_) => return Err(ClientError::Timeout(timeout)),
        };
        // Fetch round trips are latency-bound (acks=all waits on them).
        stream.set_nodelay(true)?;
        let (rd, writer): (
            Box<dyn AsyncRead + Send + Sync + Unpin>,
            Box<dyn AsyncWrite + Send + Sync + Unpin>,
        ) = match tls {
            None => {
                let (rd, wr) = stream.into_split();
                (Box::new(rd), Box::new(wr))
            }
            Some(connector) => {
                let handshake = crate::tls::connect(connector, addr, stream);
                let tls = match tokio::time::timeout(timeout, handshake).await {
                    Ok(r) => r.map_err(|source| ClientError::Tls {
                        addr: addr.to_string(),
                        source,
                    })?,
                    Err(_) => return Err(ClientError::Timeout(timeout)),
                };
                let (rd, wr) = tokio::io::split(tls);
                (Box::new(rd), Box::new(wr))
            }
        };
        Ok(BrokerClient {
            writer,
            frames: FrameReader::new(rd, MAX_RESPONSE_BYTES),
            correlation: 0,
            client_id: StrBytes::from_string(client_id),
        })
    }

    /// Authenticate with SASL (SaslHandshake v1, then SaslAuthenticate), as the first
    /// thing on a connection to a SASL listener.
    pub async fn authenticate(
        &mut self,
        sasl: &crate::sasl::ClientSasl,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        use kafka_protocol::messages::{
            SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
            SaslHandshakeResponse,
        };
        let hs: SaslHandshakeResponse = self
            .call(
                ApiKey::SaslHandshake,
                1,
                &SaslHandshakeRequest::default()
                    .with_mechanism(StrBytes::from_static_str(sasl.mechanism.name())),
                timeout,
            )
            .await?;
        if hs.error_code != 0 {
            let offered: Vec<&str> = hs.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(ClientError::Auth(format!(
                "the broker does not accept {} (it offers {})",
                sasl.mechanism.name(),
                offered.join(", ")
            )));
        }
        let mut exchange = sasl.start();
        let mut token = exchange.first();
        loop {
            let resp: SaslAuthenticateResponse = self
                .call(
                    ApiKey::SaslAuthenticate,
                    1,
                    &SaslAuthenticateRequest::default().with_auth_bytes(token.into()),
                    timeout,
                )
                .await?;
            if resp.error_code != 0 {
                return Err(ClientError::Auth(resp.error_message.map_or_else(
                    || format!("error {}", resp.error_code),
                    |m| m.to_string(),
                )));
            }
            match exchange.next(&resp.auth_bytes).map_err(ClientError::Auth)? {
                Some(t) => token = t,
                None => return Ok(()),
            }
        }
    }

    /// Send one request and wait for its response, at most `timeout`.
    pub async fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, ClientError> {
        match tokio::time::timeout(timeout, self.call_inner(api, version, req)).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Timeout(timeout)),
        }
    }

    async fn call_inner<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        req: &Req,
    ) -> Result<Resp, ClientError> {
        self.correlation = self.correlation.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(self.client_id.clone()));
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[0; 4]);
        header
            .encode(&mut buf, api.request_header_version(version))
            .map_err(|e| ClientError::Encode(e.to_string()))?;
        req.encode(&mut buf, version)
            .map_err(|e| ClientError::Encode(e.to_string()))?;
        let len = i32::try_from(buf.len() - 4)
            .map_err(|_| ClientError::Encode("request too large".into()))?;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        self.writer.write_all(&buf).await?;
        self.writer.flush().await?;
        let mut body = self.frames.next().await?.ok_or(ClientError::Closed)?;
        let header = ResponseHeader::decode(&mut body, api.response_header_version(version))
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        if header.correlation_id != self.correlation {
            return Err(ClientError::Correlation {
                got: header.correlation_id,
                expected: self.correlation,
            });
        }
        Resp::decode(&mut body, version).map_err(|e| ClientError::Decode(e.to_string()))
    }
}
