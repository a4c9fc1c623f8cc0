//! The command line: subcommands and the flags that override the config file and environment.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError, StoreKind};

/// Cartograph: a live service dependency map fed by OpenTelemetry.
///
/// Point your services' OTLP exporters at it (gRPC :4317, HTTP :4318) and open the UI (:8080).
/// Settings come from the config file, then CARTOGRAPH_* environment variables, then flags.
#[derive(Debug, Parser)]
#[command(name = "cartograph", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// TOML config file; fields it leaves out keep their defaults (see `cartograph example-config`).
    #[arg(long, global = true, env = "CARTOGRAPH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address for OTLP/gRPC [default: 127.0.0.1:4317].
    #[arg(long, global = true, env = "CARTOGRAPH_OTLP_GRPC", value_name = "ADDR")]
    pub otlp_grpc: Option<SocketAddr>,

    /// Address for OTLP/HTTP (/v1/traces, /v1/metrics) [default: 127.0.0.1:4318].
    #[arg(long, global = true, env = "CARTOGRAPH_OTLP_HTTP", value_name = "ADDR")]
    pub otlp_http: Option<SocketAddr>,

    /// Address for the UI, JSON API, /health and /metrics [default: 127.0.0.1:8080].
    #[arg(long, global = true, env = "CARTOGRAPH_UI", value_name = "ADDR")]
    pub ui: Option<SocketAddr>,

    /// Directory of the embedded store [default: ./cartograph-data].
    #[arg(long, global = true, env = "CARTOGRAPH_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Where telemetry is stored [default: sqlite].
    #[arg(long, global = true, env = "CARTOGRAPH_STORE", value_name = "KIND")]
    pub store: Option<StoreKind>,

    /// ClickHouse HTTP URL, for --store clickhouse.
    #[arg(
        long,
        global = true,
        env = "CARTOGRAPH_CLICKHOUSE_URL",
        value_name = "URL"
    )]
    pub clickhouse_url: Option<String>,

    /// Delete stored data older than this many hours [default: 72].
    #[arg(
        long,
        global = true,
        env = "CARTOGRAPH_RETENTION_HOURS",
        value_name = "HOURS"
    )]
    pub retention_hours: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Receive OTLP, keep the map, serve the UI (the default when no command is given).
    Serve(ServeArgs),
    /// Print the example config file with every field, its default and what it means.
    ExampleConfig,
    /// Drive OTLP trace load at an endpoint; report accepted spans/s, refusals and latency.
    Loadgen(LoadgenArgs),
    /// Send the demo shop's traces and metrics to any OTLP/gRPC endpoint.
    Demo(DemoArgs),
    /// Apply pending ClickHouse migrations (`--clickhouse-url`, `[clickhouse]` in the config)
    /// and exit; `--print` shows the DDL instead.
    Migrate(MigrateArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct MigrateArgs {
    /// Print every statement for an empty server (with the config's database and cluster)
    /// instead of running anything.
    #[arg(long)]
    pub print: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// OTLP/gRPC endpoint to send to (`https://…` with `--ca-file`).
    #[arg(long, default_value = "http://127.0.0.1:4317")]
    pub endpoint: String,
    /// Ingest token, sent as `authorization: Bearer TOKEN` (prefer the environment variable:
    /// flags show in `ps`).
    #[arg(long, env = "CARTOGRAPH_DEMO_TOKEN", hide_env_values = true)]
    pub token: Option<crate::auth::Secret>,
    /// PEM CA certificate(s) to trust for a TLS endpoint.
    #[arg(long)]
    pub ca_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub shop: DemoShopArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DemoShopArgs {
    /// Orders per second placed in the shop (each ~15 spans).
    #[arg(long = "demo-rate", default_value_t = 10.0)]
    pub rate: f64,
    /// Stop after this many seconds (default: run until interrupted).
    #[arg(long = "demo-duration")]
    pub duration: Option<u64>,
    /// Seed of the simulated traffic.
    #[arg(long = "demo-seed", default_value_t = 1)]
    pub seed: u64,
    /// Schedule speed-up: 10 plays the minute-long cycle of failures, bursts and spikes in 6 s.
    #[arg(long = "demo-speed", default_value_t = 1.0)]
    pub speed: f64,
}

impl DemoShopArgs {
    pub fn settings(
        &self,
        endpoint: String,
        access: crate::demo::ExporterAccess,
    ) -> crate::demo::DemoSettings {
        crate::demo::DemoSettings {
            endpoint,
            access,
            orders_per_sec: self.rate,
            duration_opt: self.duration.map(std::time::Duration::from_secs),
            seed: self.seed,
            speed: self.speed,
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Also run the demo shop against this instance: a living map within seconds (the pairing
    /// TTL is then at most 5 s, so uninstrumented peers show sooner).
    #[arg(long)]
    pub demo: bool,
    #[command(flatten)]
    pub shop: DemoShopArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct LoadgenArgs {
    /// Base URL of the OTLP receiver (gRPC :4317, HTTP :4318; `/v1/traces` is added for HTTP).
    #[arg(long, default_value = "http://127.0.0.1:4317")]
    pub endpoint: String,
    /// OTLP transport.
    #[arg(long, value_enum, default_value_t = crate::loadgen::Protocol::Grpc)]
    pub protocol: crate::loadgen::Protocol,
    /// Target spans per second over all connections; 0 sends as fast as answers come.
    #[arg(long, default_value_t = 50_000)]
    pub rate: u64,
    /// How long to send, in seconds.
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// Connections sending at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Distinct services the spans come from.
    #[arg(long, default_value_t = 20)]
    pub services: usize,
    /// Spans per trace: a root server span, then client/server pairs down a call tree.
    #[arg(long, default_value_t = 8)]
    pub spans_per_trace: usize,
    /// Spans per export request.
    #[arg(long, default_value_t = 512)]
    pub spans_per_request: usize,
    /// Seed of the generated traffic.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write one encoded request body (OTLP/protobuf) to this file and exit (e.g. for h2load -d).
    #[arg(long, value_name = "FILE")]
    pub write_request: Option<PathBuf>,
}

impl LoadgenArgs {
    pub fn settings(&self) -> crate::loadgen::LoadSettings {
        crate::loadgen::LoadSettings {
            endpoint: self.endpoint.clone(),
            protocol: self.protocol,
            rate_spans_per_sec: self.rate,
            duration: std::time::Duration::from_secs(self.duration),
            concurrency: self.concurrency,
            shape: crate::loadgen::Shape {
                num_services: self.services,
                spans_per_trace: self.spans_per_trace,
                spans_per_request: self.spans_per_request,
                seed: self.seed,
            },
        }
    }
}

impl Cli {
    /// The effective config: file (if any), then environment and flags (clap merges those two,
    /// flags winning), then validation.
    pub fn load_config(&self) -> Result<Config, ConfigError> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        let listen = &mut config.listen;
        listen.otlp_grpc = self.otlp_grpc.unwrap_or(listen.otlp_grpc);
        listen.otlp_http = self.otlp_http.unwrap_or(listen.otlp_http);
        listen.ui = self.ui.unwrap_or(listen.ui);
        let storage = &mut config.storage;
        if let Some(data_dir) = &self.data_dir {
            storage.data_dir.clone_from(data_dir);
        }
        storage.store = self.store.unwrap_or(storage.store);
        if let Some(url) = &self.clickhouse_url {
            storage.clickhouse_url.clone_from(url);
        }
        storage.retention_hours = self.retention_hours.unwrap_or(storage.retention_hours);
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_config_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cartograph.toml");
        std::fs::write(
            &path,
            "[storage]\nretention_hours = 5\nstore = \"memory\"\n",
        )
        .expect("write");
        let cli = Cli::parse_from([
            "cartograph",
            "--config",
            path.to_str().expect("utf-8"),
            "--retention-hours",
            "7",
            "--ui",
            "127.0.0.1:9999",
        ]);
        let config = cli.load_config().expect("valid");
        assert_eq!(config.storage.retention_hours, 7);
        assert_eq!(config.storage.store, StoreKind::Memory);
        assert_eq!(config.listen.ui, "127.0.0.1:9999".parse().expect("addr"));
    }

    #[test]
    fn help_explains_every_flag() {
        use clap::CommandFactory;
        let help = Cli::command().render_long_help().to_string();
        for flag in [
            "--config",
            "--otlp-grpc",
            "--otlp-http",
            "--ui",
            "--data-dir",
            "--store",
            "--clickhouse-url",
            "--retention-hours",
        ] {
            assert!(help.contains(flag), "--help lacks {flag}");
        }
        assert!(help.contains("CARTOGRAPH_DATA_DIR"));
    }
}
