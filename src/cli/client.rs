//! The operator commands' connection to a cluster: bootstrap through the first reachable
//! address, negotiate versions with ApiVersions, learn the brokers from Metadata, and
//! send each request where it belongs (any broker, a partition leader, a group
//! coordinator). It speaks only the Kafka protocol, so it works against any Kafka broker.

use std::collections::HashMap;
use std::time::Duration;

use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use tokio_rustls::TlsConnector;

use super::CliError;
use crate::replica::client::BrokerClient;
use crate::sasl::ClientSasl;

/// The client id the commands send.
const CLIENT_ID: &str = "weir-cli";

/// A connection pool to one cluster.
pub struct Admin {
    bootstrap: BrokerClient,
    /// Highest version per API key that the bootstrap broker accepts.
    versions: HashMap<i16, (i16, i16)>,
    /// Broker id → host:port, from the last Metadata answer.
    brokers: HashMap<i32, String>,
    conns: HashMap<i32, BrokerClient>,
    pub timeout: Duration,
    /// TLS for every connection, when the brokers' listener is SSL.
    tls: Option<TlsConnector>,
    /// SASL for every connection, when the brokers' listener is SASL_*.
    sasl: Option<ClientSasl>,
}

/// Connect to `addr` and authenticate when SASL is asked for.
async fn open(
    addr: &str,
    timeout: Duration,
    tls: Option<&TlsConnector>,
    sasl: Option<&ClientSasl>,
) -> Result<BrokerClient, String> {
    let mut c = BrokerClient::connect_with(addr, CLIENT_ID.into(), timeout, tls)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(sasl) = sasl {
        c.authenticate(sasl, timeout)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(c)
}

impl Admin {
    /// Connect to the first of the comma-separated `bootstrap` addresses that answers.
    pub async fn connect(
        bootstrap: &str,
        timeout: Duration,
        tls: Option<TlsConnector>,
        sasl: Option<ClientSasl>,
    ) -> Result<Admin, CliError> {
        let mut last = String::from("no bootstrap address given");
        for addr in bootstrap
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            match open(addr, timeout, tls.as_ref(), sasl.as_ref()).await {
                Ok(mut c) => {
                    let r: ApiVersionsResponse = c
                        .call(
                            ApiKey::ApiVersions,
                            0,
                            &ApiVersionsRequest::default(),
                            timeout,
                        )
                        .await
                        .map_err(|e| CliError::Connect(format!("{addr}: {e}")))?;
                    let versions = r
                        .api_keys
                        .iter()
                        .map(|k| (k.api_key, (k.min_version, k.max_version)))
                        .collect();
                    return Ok(Admin {
                        bootstrap: c,
                        versions,
                        brokers: HashMap::new(),
                        conns: HashMap::new(),
                        timeout,
                        tls,
                        sasl,
                    });
                }
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        Err(CliError::Connect(last))
    }

    /// The version to use for `api`: `preferred`, or the broker's highest if lower, as
    /// long as it is at least `oldest` (the oldest version the command can work with).
    pub fn version(&self, api: ApiKey, oldest: i16, preferred: i16) -> Result<i16, CliError> {
        let (min, max) = self
            .versions
            .get(&(api as i16))
            .copied()
            .ok_or_else(|| CliError::Unsupported(format!("{api:?}")))?;
        let v = preferred.min(max);
        if v < oldest.max(min) {
            return Err(CliError::Unsupported(format!(
                "{api:?} v{oldest}-v{preferred} (the broker has v{min}-v{max})"
            )));
        }
        Ok(v)
    }

    /// Send to the bootstrap broker.
    pub async fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        req: &Req,
    ) -> Result<Resp, CliError> {
        self.bootstrap
            .call(api, version, req, self.timeout)
            .await
            .map_err(|e| CliError::Connect(e.to_string()))
    }

    /// Send to broker `node` (learned from the last Metadata answer).
    pub async fn call_node<Req: Encodable, Resp: Decodable>(
        &mut self,
        node: i32,
        api: ApiKey,
        version: i16,
        req: &Req,
    ) -> Result<Resp, CliError> {
        if !self.brokers.contains_key(&node) {
            self.metadata(Some(Vec::new())).await?;
        }
        if !self.conns.contains_key(&node) {
            let addr = self
                .brokers
                .get(&node)
                .ok_or_else(|| CliError::Connect(format!("broker {node} is not in the cluster")))?
                .clone();
            let c = open(&addr, self.timeout, self.tls.as_ref(), self.sasl.as_ref())
                .await
                .map_err(|e| CliError::Connect(format!("broker {node} at {addr}: {e}")))?;
            self.conns.insert(node, c);
        }
        let c = self.conns.get_mut(&node).expect("inserted above");
        let r = c.call(api, version, req, self.timeout).await;
        if r.is_err() {
            self.conns.remove(&node);
        }
        r.map_err(|e| CliError::Connect(format!("broker {node}: {e}")))
    }

    /// Metadata for `topics` (None: every topic; Some(empty): brokers only).
    pub async fn metadata(
        &mut self,
        topics: Option<Vec<String>>,
    ) -> Result<MetadataResponse, CliError> {
        let v = self.version(ApiKey::Metadata, 1, 12)?;
        let req = MetadataRequest::default()
            .with_topics(topics.map(|ts| {
                ts.into_iter()
                    .map(|t| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(t))))
                    })
                    .collect()
            }))
            .with_allow_auto_topic_creation(false);
        let r: MetadataResponse = self.call(ApiKey::Metadata, v, &req).await?;
        self.brokers = r
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port)))
            .collect();
        Ok(r)
    }

    /// Partition → leader of one topic, or the Kafka error Metadata gives for it.
    pub async fn leaders(
        &mut self,
        topic: &str,
    ) -> Result<std::collections::BTreeMap<i32, i32>, CliError> {
        let md = self.metadata(Some(vec![topic.to_string()])).await?;
        let t = md
            .topics
            .first()
            .ok_or_else(|| CliError::Kafka("empty Metadata answer".into()))?;
        if t.error_code != 0 {
            return Err(CliError::Kafka(format!(
                "{topic}: {}",
                super::error_text(t.error_code, None)
            )));
        }
        Ok(t.partitions
            .iter()
            .map(|p| (p.partition_index, p.leader_id.0))
            .collect())
    }

    /// The broker that coordinates `group`.
    /// The group's coordinator. COORDINATOR_NOT_AVAILABLE (no leader elected yet for its
    /// `__consumer_offsets` partition, as right after the topic's creation) is asked again,
    /// 100 ms doubling to 1 s apart, for up to 30 s, as Kafka clients do.
    pub async fn coordinator(&mut self, group: &str) -> Result<i32, CliError> {
        const NOT_AVAILABLE: i16 = 15;
        let v = self.version(ApiKey::FindCoordinator, 0, 3)?;
        let req = FindCoordinatorRequest::default()
            .with_key(StrBytes::from_string(group.to_string()))
            .with_key_type(0);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut pause = std::time::Duration::from_millis(100);
        loop {
            let r: FindCoordinatorResponse = self.call(ApiKey::FindCoordinator, v, &req).await?;
            if r.error_code == NOT_AVAILABLE && std::time::Instant::now() + pause < deadline {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(1));
                continue;
            }
            super::check(r.error_code, r.error_message)?;
            return Ok(r.node_id.0);
        }
    }
}
