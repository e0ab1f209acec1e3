//! `weir-bench`: drives Weir with a real Kafka client (librdkafka through `rdkafka`) and
//! reports throughput, latency, broker RSS and CPU, each also as a ratio to the
//! machine's own limits measured in the same run. `scripts/bench` builds it and runs
//! `weir-bench run`; see docs/performance.md for the method.
//!
//! The driver (`run`) spawns itself for the measured clients, so that the producer and
//! the consumer are separate processes, as are the two ends of the loopback test:
//! `produce`, `consume`, `tcp-server` and `tcp-client` print one JSON line on stdout.

mod broker;
mod consume;
mod dirty;
mod machine;
mod produce;
mod raw;
mod report;
mod run;
mod stats;
mod tls;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "weir-bench",
    about = "Benchmark driver for Weir (see scripts/bench)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the benchmark: machine limits, then the selected scenarios; print the table.
    Run(RunArgs),
    /// (child) Produce to a topic, print a JSON result line.
    Produce(produce::ProduceArgs),
    /// (child) Consume a topic, print a JSON result line.
    Consume(consume::ConsumeArgs),
    /// (child) Produce one pre-encoded batch over and over: the broker's own ceiling.
    RawProduce(raw::RawProduceArgs),
    /// (child) Fetch a partition from the start without parsing records.
    RawConsume(raw::RawConsumeArgs),
    /// (child) Loopback limit: accept one connection and sink or echo it.
    TcpServer,
    /// (child) Loopback limit: stream to or ping-pong with a tcp-server.
    TcpClient(machine::TcpClientArgs),
    /// Re-print the table of a JSON file written by `run`.
    Show {
        /// The JSON file.
        file: PathBuf,
    },
}

/// What `run` measures.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// A small subset with short durations (under a minute).
    #[arg(long)]
    pub quick: bool,
    /// Scenario kinds to run, comma-separated: produce, consume, e2e, cluster, startup,
    /// tls, acl (default: all; machine limits are always measured).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Partition counts of the single-node produce and consume scenarios
    /// (default 1,100,1000,10000; --quick: 1).
    #[arg(long, value_delimiter = ',')]
    pub partitions: Vec<u32>,
    /// Measured seconds of each produce scenario (default 5; --quick 2).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// GB (10^9 bytes) of data for the start-up scenario.
    #[arg(long, default_value_t = 10.0)]
    pub startup_gb: f64,
    /// Target rate of the end-to-end latency scenarios, MB/s (1 MB = 10^6 bytes).
    #[arg(long, default_value_t = 50.0)]
    pub e2e_mbps: f64,
    /// Write the results as JSON to this file ("-" for stdout, after the table).
    #[arg(long)]
    pub json: Option<String>,
    /// The weir binary (default: next to this one).
    #[arg(long)]
    pub weir: Option<PathBuf>,
    /// scripts/cluster, for the 3-node scenario.
    #[arg(long, default_value = "scripts/cluster")]
    pub cluster_script: PathBuf,
    /// Directory for broker data and logs (default: a new directory under $TMPDIR).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the data directory afterwards (it is removed otherwise).
    #[arg(long)]
    pub keep: bool,
    /// The command line to record in the report (scripts/bench passes its own).
    #[arg(long)]
    pub command: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Run(args) => run::run(args),
        Cmd::Produce(args) => produce::main(args),
        Cmd::Consume(args) => consume::main(args),
        Cmd::RawProduce(args) => raw::produce(args),
        Cmd::RawConsume(args) => raw::consume(args),
        Cmd::TcpServer => machine::tcp_server(),
        Cmd::TcpClient(args) => machine::tcp_client(args),
        Cmd::Show { file } => report::show(&file),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weir-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
