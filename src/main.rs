//! The `weir` binary: command line → config → tracing and metrics → broker → wait for a
//! signal → ordered shutdown.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

use weir::broker::Broker;
use weir::cli;
use weir::config::Config;

/// A Kafka-wire-compatible message broker.
///
/// Without a subcommand, `weir` runs a broker; the subcommands administer any Kafka
/// cluster. Settings use Kafka's names (`weir config list` prints them all). Precedence: embedded defaults < --config FILE <
/// WEIR_<NAME> environment variables (WEIR_LOG_DIRS sets log.dirs) < --set name=value.
#[derive(Parser, Debug)]
#[command(name = "weir", version, about)]
struct Cli {
    /// TOML file or Kafka server.properties file.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// A setting, e.g. --set listeners=PLAINTEXT://127.0.0.1:19092 (repeatable).
    #[arg(long = "set", short = 's', value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Create, list, describe, delete topics; add partitions; topic settings.
    Topic {
        #[command(flatten)]
        conn: cli::Conn,
        #[command(subcommand)]
        what: cli::topic::TopicCommand,
    },
    /// List, describe (members, offsets, lag), reset offsets of, delete consumer groups.
    Group {
        #[command(flatten)]
        conn: cli::Conn,
        #[command(subcommand)]
        what: cli::group::GroupCommand,
    },
    /// Brokers, controller and health of a cluster; broker settings at runtime.
    Cluster {
        #[command(flatten)]
        conn: cli::Conn,
        #[command(subcommand)]
        what: cli::cluster::ClusterCommand,
    },
    /// Client-metrics subscriptions (KIP-714): which clients push which metrics.
    ClientMetrics {
        #[command(flatten)]
        conn: cli::Conn,
        #[command(subcommand)]
        what: cli::client_metrics::ClientMetricsCommand,
    },
    /// Write records (arguments, or lines of standard input).
    Produce {
        #[command(flatten)]
        conn: cli::Conn,
        #[command(flatten)]
        args: cli::produce::ProduceArgs,
    },
    /// Read records.
    Consume {
        #[command(flatten)]
        conn: cli::Conn,
        #[command(flatten)]
        args: cli::consume::ConsumeArgs,
    },
    /// Elect partition leaders (preferred or unclean).
    Elect {
        #[command(flatten)]
        conn: cli::Conn,
        #[command(flatten)]
        args: cli::elect::ElectArgs,
    },
    /// Move partition replicas between brokers from a plan in Kafka's JSON format.
    Reassign {
        #[command(flatten)]
        conn: cli::Conn,
        #[command(flatten)]
        args: cli::reassign::ReassignArgs,
    },
    /// Administer the metadata quorum of a running cluster (see README, "Adding and
    /// removing nodes").
    Quorum {
        #[command(flatten)]
        conn: cli::Conn,
        #[command(subcommand)]
        what: cli::quorum::QuorumCommand,
    },
    /// SCRAM users: list, create (or change the password), delete (see README,
    /// "Authentication").
    User {
        #[command(flatten)]
        conn: cli::Conn,
        #[command(subcommand)]
        what: cli::user::UserCommand,
    },
    /// ACLs: create, list, delete (see README, "Authorization").
    Acl {
        #[command(flatten)]
        conn: cli::Conn,
        #[command(subcommand)]
        what: cli::acl::AclCommand,
    },
    /// Every broker and topic setting with its type, default and meaning.
    Config {
        #[command(subcommand)]
        what: ConfigCommand,
    },
}

#[derive(clap::Subcommand, Debug)]
enum ConfigCommand {
    /// Print the settings (only those whose name contains FILTER, if given).
    List {
        filter: Option<String>,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = cli::Format::Text)]
        output: cli::Format,
    },
}

/// An operator command: connect, run, print, exit with its code.
fn operator_command(command: &Command) -> ExitCode {
    macro_rules! with_admin {
        ($name:expr, $conn:expr, |$admin:ident| $body:expr) => {
            cli::run($name, $conn.output, async {
                let mut $admin = $conn.admin().await?;
                $body.await
            })
        };
    }
    match command {
        Command::Topic { conn, what } => {
            with_admin!("topic", conn, |a| cli::topic::run(&mut a, what))
        }
        Command::Group { conn, what } => {
            with_admin!("group", conn, |a| cli::group::run(&mut a, what))
        }
        Command::Cluster { conn, what } => {
            with_admin!("cluster", conn, |a| cli::cluster::run(&mut a, what))
        }
        Command::ClientMetrics { conn, what } => {
            with_admin!("client-metrics", conn, |a| cli::client_metrics::run(
                &mut a, what
            ))
        }
        Command::Produce { conn, args } => {
            with_admin!("produce", conn, |a| cli::produce::run(&mut a, args))
        }
        Command::Consume { conn, args } => {
            with_admin!("consume", conn, |a| cli::consume::run(
                &mut a,
                args,
                conn.output
            ))
        }
        Command::Elect { conn, args } => {
            with_admin!("elect", conn, |a| cli::elect::run(&mut a, args))
        }
        Command::Reassign { conn, args } => {
            with_admin!("reassign", conn, |a| cli::reassign::run(&mut a, args))
        }
        Command::Quorum { conn, what } => {
            with_admin!("quorum", conn, |a| cli::quorum::run(&mut a, what))
        }
        Command::User { conn, what } => {
            with_admin!("user", conn, |a| cli::user::run(&mut a, what))
        }
        Command::Acl { conn, what } => {
            with_admin!("acl", conn, |a| cli::acl::run(&mut a, what))
        }
        Command::Config {
            what: ConfigCommand::List { filter, output },
        } => cli::run("config", *output, async {
            Ok(cli::config_list::list(filter.as_deref()))
        }),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(command) = &cli.command {
        return operator_command(command);
    }
    init_tracing(cli.log_json);
    let config = match Config::load(cli.config.as_deref(), std::env::vars(), &cli.set) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("weir: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(runtime) = runtime(tokio::runtime::Builder::new_multi_thread()) else {
        return ExitCode::FAILURE;
    };
    let outcome = runtime.block_on(run(config));
    // The runtime's remaining tasks and blocking threads are gone before the last line.
    runtime.shutdown_timeout(std::time::Duration::from_secs(10));
    match outcome {
        Ok(()) => {
            info!("shutdown complete");
            ExitCode::SUCCESS
        }
        Err(e) => {
            error!("{e:#}");
            eprintln!("weir: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Build a runtime, or say why not.
fn runtime(mut builder: tokio::runtime::Builder) -> Option<tokio::runtime::Runtime> {
    builder
        .enable_all()
        .build()
        .inspect_err(|e| eprintln!("weir: cannot start the runtime: {e}"))
        .ok()
}

/// Every partition keeps a few files open: take the whole descriptor allowance the
/// system grants (the soft limit up to the hard one), as the JVM does for Kafka.
fn raise_open_files_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 || lim.rlim_cur >= lim.rlim_max {
            return;
        }
        let before = lim.rlim_cur;
        lim.rlim_cur = lim.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
            info!(
                from = before,
                to = lim.rlim_max,
                "raised the open files limit"
            );
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    raise_open_files_limit();
    for name in &config.ignored_settings {
        tracing::warn!(setting = %name, "Kafka setting accepted but not acted on by Weir");
    }
    for var in &config.ignored_env {
        tracing::warn!(%var, "environment variable names no Weir setting; ignored");
    }
    if let Some(addr) = config.metrics_listen {
        weir::metrics::install(addr)
            .map_err(|e| anyhow::anyhow!("cannot serve metrics on {addr}: {e}"))?;
    }
    let broker = Broker::start(config).await?;
    wait_for_signal().await;
    info!("signal received");
    broker.shutdown().await
}

/// Info for Weir; openraft's warnings, but not its per-call replication failures, which
/// `weir::peer_log` reports once per unreachable peer instead.
const DEFAULT_LOG_FILTER: &str = "info,openraft=warn,openraft::replication=off,\
     openraft::engine::handler::replication_handler=error";

fn init_tracing(json: bool) {
    let base = std::env::var("RUST_LOG")
        .ok()
        .filter(|f| EnvFilter::try_new(f).is_ok())
        .unwrap_or_else(|| DEFAULT_LOG_FILTER.to_string());
    // Log levels change at runtime through the BROKER_LOGGER config resource, so the
    // filter is reloadable.
    macro_rules! init {
        ($builder:expr) => {{
            let builder = $builder
                .with_env_filter(EnvFilter::new(&base))
                .with_writer(std::io::stderr)
                // Colour codes only for a person at a terminal, never in files or pipes.
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_filter_reloading();
            let handle = builder.reload_handle();
            weir::log_levels::install(&base, move |f: &str| {
                let filter = EnvFilter::try_new(f).map_err(|e| e.to_string())?;
                handle.reload(filter).map_err(|e| e.to_string())
            });
            builder.init();
        }};
    }
    if json {
        init!(tracing_subscriber::fmt().json());
    } else {
        init!(tracing_subscriber::fmt());
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
