//! `weir client-metrics list|describe|alter|delete`: client-metrics subscriptions
//! (KIP-714), as `kafka-client-metrics.sh` manages them: which clients push which of
//! their metrics, and how often. Pushed metrics appear on the brokers' `/metrics`.

use kafka_protocol::messages::*;
use serde_json::json;

use super::table::render;
use super::topic::{alter, describe_config};
use super::{check, Admin, CliError, Report};

/// Kafka's ConfigResource type for client-metrics subscriptions.
pub const RESOURCE_CLIENT_METRICS: i8 = 16;

#[derive(Debug, Clone, clap::Subcommand)]
pub enum ClientMetricsCommand {
    /// Every subscription.
    List,
    /// One subscription's settings.
    Describe { name: String },
    /// Create or change a subscription.
    Alter {
        name: String,
        /// Metric name prefixes, comma-separated (`*` for all).
        #[arg(long)]
        metrics: Option<String>,
        /// Push interval in milliseconds (100 to 3600000).
        #[arg(long)]
        interval_ms: Option<i32>,
        /// Which clients, comma-separated KEY=REGEX (client_id, client_software_name,
        /// client_software_version, client_instance_id, client_source_address,
        /// client_source_port); all of them when omitted.
        #[arg(long = "match")]
        matching: Option<String>,
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove a subscription: its clients stop pushing what it asked for.
    Delete { name: String },
}

pub async fn run(admin: &mut Admin, cmd: &ClientMetricsCommand) -> Result<Report, CliError> {
    match cmd {
        ClientMetricsCommand::List => list(admin).await,
        ClientMetricsCommand::Describe { name } => {
            describe_config(admin, RESOURCE_CLIENT_METRICS, name, false).await
        }
        ClientMetricsCommand::Alter {
            name,
            metrics,
            interval_ms,
            matching,
            dry_run,
        } => {
            let mut set = Vec::new();
            if let Some(m) = metrics {
                set.push(("metrics".to_string(), m.clone()));
            }
            if let Some(i) = interval_ms {
                set.push(("interval.ms".to_string(), i.to_string()));
            }
            if let Some(m) = matching {
                set.push(("match".to_string(), m.clone()));
            }
            alter(admin, RESOURCE_CLIENT_METRICS, name, &set, &[], *dry_run).await
        }
        ClientMetricsCommand::Delete { name } => {
            let all: Vec<String> = ["metrics", "interval.ms", "match"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            alter(admin, RESOURCE_CLIENT_METRICS, name, &[], &all, false).await
        }
    }
}

async fn list(admin: &mut Admin) -> Result<Report, CliError> {
    let v = admin.version(ApiKey::ListConfigResources, 0, 1)?;
    let req = ListConfigResourcesRequest::default().with_resource_types(if v >= 1 {
        vec![RESOURCE_CLIENT_METRICS]
    } else {
        vec![]
    });
    let r: ListConfigResourcesResponse = admin.call(ApiKey::ListConfigResources, v, &req).await?;
    check(r.error_code, None)?;
    let mut names: Vec<String> = r
        .config_resources
        .iter()
        .map(|c| c.resource_name.to_string())
        .collect();
    names.sort();
    let rows: Vec<Vec<String>> = names.iter().map(|n| vec![n.clone()]).collect();
    Ok(Report::new(render(&["NAME"], &rows), json!(names)))
}
