//! The `weir` binary: command line → config → tracing and metrics → broker → wait for a
//! signal → ordered shutdown.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

use weir::broker::Broker;
use weir::config::Config;

/// A Kafka-wire-compatible message broker.
///
/// Settings use Kafka's names. Precedence: embedded defaults < --config FILE <
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
    /// Administer the metadata quorum of a running cluster (see README, "Adding and
    /// removing nodes"); without a subcommand, weir runs a broker.
    Quorum {
        /// A broker's client listener, host:port.
        #[arg(long, short = 'b', global = true, default_value = "127.0.0.1:9092")]
        bootstrap_server: String,
        #[command(subcommand)]
        what: weir::quorum_cli::QuorumCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Quorum {
        bootstrap_server,
        what,
    }) = &cli.command
    {
        return quorum(bootstrap_server, what);
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
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
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

/// `weir quorum ...`: one request, its outcome on stdout (or stderr and exit 1).
fn quorum(bootstrap: &str, what: &weir::quorum_cli::QuorumCommand) -> ExitCode {
    let Some(runtime) = runtime(tokio::runtime::Builder::new_current_thread()) else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(weir::quorum_cli::run(bootstrap, what)) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("weir quorum: {e}");
            ExitCode::FAILURE
        }
    }
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

fn init_tracing(json: bool) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,openraft=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
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
