//! Configuration: one serde tree with defaults, loaded from a TOML file, then `CARTOGRAPH_*`
//! environment variables and command-line flags (see `cli`), and validated once at load.

mod example;
mod insights;

pub use insights::InsightsConfig;

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid config: {0}")]
    Alerts(crate::alert::config::InvalidAlertConfig),
    #[error("invalid config value `{field}`: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: ListenConfig,
    pub ingest: IngestConfig,
    pub pipeline: PipelineConfig,
    pub storage: StorageConfig,
    pub graph: GraphConfig,
    pub insights: InsightsConfig,
    pub signals: crate::signals::SignalSettings,
    pub alerts: crate::alert::config::AlertsConfig,
    pub clickhouse: ClickHouseConfig,
    pub security: crate::auth::SecurityConfig,
    pub tls: crate::tls::TlsConfig,
}

/// The ClickHouse store (`storage.store = "clickhouse"`, server at `storage.clickhouse_url`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseConfig {
    /// Database holding Cartograph's tables (created by the migrations).
    pub database: String,
    /// User; empty: the server's default user.
    pub user: String,
    /// Password; empty: none (or set `CARTOGRAPH_CLICKHOUSE_PASSWORD`).
    pub password: String,
    /// `lz4` (real servers) or `none` (the chDB test bridge).
    pub compression: ClickHouseCompression,
    /// Cluster name: ON CLUSTER DDL, Replicated tables, Distributed tables over them.
    pub cluster: String,
    /// Apply pending migrations at start (else run `cartograph migrate` first).
    pub migrate_on_start: bool,
}

impl std::fmt::Debug for ClickHouseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseConfig")
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &"redacted")
            .field("compression", &self.compression)
            .field("cluster", &self.cluster)
            .field("migrate_on_start", &self.migrate_on_start)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClickHouseCompression {
    Lz4,
    None,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        Self {
            database: "cartograph".to_owned(),
            user: String::new(),
            password: String::new(),
            compression: ClickHouseCompression::Lz4,
            cluster: String::new(),
            migrate_on_start: true,
        }
    }
}

impl Config {
    /// How to reach the ClickHouse store.
    pub fn clickhouse_options(&self) -> crate::store::clickhouse::ClickHouseOptions {
        let text = |value: &str| (!value.is_empty()).then(|| value.to_owned());
        let password = text(&self.clickhouse.password)
            .or_else(|| std::env::var("CARTOGRAPH_CLICKHOUSE_PASSWORD").ok());
        crate::store::clickhouse::ClickHouseOptions {
            url: self.storage.clickhouse_url.clone(),
            database: self.clickhouse.database.clone(),
            user: text(&self.clickhouse.user),
            password,
            compress: self.clickhouse.compression == ClickHouseCompression::Lz4,
            cluster: text(&self.clickhouse.cluster),
            migrate: self.clickhouse.migrate_on_start,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphConfig {
    /// How long a client or server span waits for its other half before it counts as unpaired.
    pub pairing_ttl_secs: u64,
    /// Spans waiting for their other half at most; beyond this the oldest are let go first.
    pub max_pending_spans: NonZeroUsize,
    /// Distinct edges kept per minute; calls on further edges are counted, not mapped.
    pub max_edges_per_minute: NonZeroUsize,
    /// Batches of spans waiting for the graph engine; beyond this spans skip the map (counted).
    pub queue_capacity_batches: NonZeroUsize,
    /// Calls are counted in the minute they started. One that arrives more than this many
    /// seconds after it started is too late for the map: counted at /metrics
    /// (`cartograph_graph_too_late_total`), its spans still stored. Later ones within the
    /// hour in memory join their minute there; older ones are merged into the stored minute.
    pub max_lateness_secs: u64,
    /// The p95 a synchronous call (HTTP, gRPC, database) should stay under, in milliseconds:
    /// above it an edge and the node it calls turn amber, above twice it red.
    pub target_sync_p95_ms: f64,
    /// The same for publishing an event (producer → topic).
    pub target_publish_p95_ms: f64,
    /// The same for processing an event (topic → consumer, the consumer's side).
    pub target_processing_p95_ms: f64,
    /// Spans whose `tracestate` carries a sampling threshold (`ot=th`) count for the calls
    /// they stand for. For samplers that write none: a span (else resource) attribute whose
    /// number (1 to 2^56) is how many spans one stands for, as Tempo's `span_multiplier_key`
    /// ("" for none)…
    pub span_multiplier_key: String,
    /// …and a fixed multiplier per service (e.g. `{ checkout = 10 }` for 10 % head
    /// sampling), used when neither `tracestate` nor the attribute says.
    pub service_multipliers: std::collections::BTreeMap<String, f64>,
}

impl Default for GraphConfig {
    fn default() -> Self {
        let defaults = crate::graph::GraphSettings::default();
        let targets = crate::model::figures::LatencyTargets::default();
        Self {
            pairing_ttl_secs: defaults.pairing_ttl.as_secs(),
            max_pending_spans: defaults.max_pending_items,
            max_edges_per_minute: defaults.max_edges_per_minute,
            queue_capacity_batches: NonZeroUsize::new(4096).expect("non-zero"),
            max_lateness_secs: defaults.max_lateness.as_secs(),
            target_sync_p95_ms: targets.sync_p95_ms,
            target_publish_p95_ms: targets.publish_p95_ms,
            target_processing_p95_ms: targets.processing_p95_ms,
            span_multiplier_key: String::new(),
            service_multipliers: std::collections::BTreeMap::new(),
        }
    }
}

impl GraphConfig {
    /// The first latency target that is not a positive number, if any.
    fn invalid_target(&self) -> Option<&'static str> {
        [
            ("graph.target_sync_p95_ms", self.target_sync_p95_ms),
            ("graph.target_publish_p95_ms", self.target_publish_p95_ms),
            (
                "graph.target_processing_p95_ms",
                self.target_processing_p95_ms,
            ),
        ]
        .into_iter()
        .find(|(_, target)| !(target.is_finite() && *target > 0.0))
        .map(|(field, _)| field)
    }

    pub fn targets(&self) -> crate::model::figures::LatencyTargets {
        crate::model::figures::LatencyTargets {
            sync_p95_ms: self.target_sync_p95_ms,
            publish_p95_ms: self.target_publish_p95_ms,
            processing_p95_ms: self.target_processing_p95_ms,
        }
    }

    /// The first service multiplier that is not a number from 1 to 2^56, if any.
    fn invalid_multiplier(&self) -> Option<&str> {
        self.service_multipliers
            .iter()
            .find(|(_, multiplier)| !crate::graph::sampling::is_multiplier(**multiplier))
            .map(|(service, _)| service.as_str())
    }

    pub fn sampling_rules(&self) -> crate::graph::sampling::SamplingRules {
        crate::graph::sampling::SamplingRules {
            multiplier_key: Some(self.span_multiplier_key.clone()).filter(|key| !key.is_empty()),
            service_multipliers: self.service_multipliers.clone(),
        }
    }

    /// The engine's settings: these fields over the engine's defaults.
    pub fn settings(&self) -> crate::graph::GraphSettings {
        crate::graph::GraphSettings {
            pairing_ttl: Duration::from_secs(self.pairing_ttl_secs),
            max_pending_items: self.max_pending_spans,
            max_edges_per_minute: self.max_edges_per_minute,
            max_lateness: Duration::from_secs(self.max_lateness_secs),
            ..crate::graph::GraphSettings::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenConfig {
    /// Address of the OTLP/gRPC receiver.
    pub otlp_grpc: SocketAddr,
    /// Address of the OTLP/HTTP receiver (`/v1/traces`, `/v1/metrics`).
    pub otlp_http: SocketAddr,
    /// Address of the dashboards, the JSON API, `/health/*` and `/metrics`.
    pub ui: SocketAddr,
    /// Longest pause, in seconds, while a request body arrives on any port; after it the
    /// request is refused (408, or gRPC `DEADLINE_EXCEEDED`), counted, and its connection or
    /// stream closed.
    pub body_timeout_secs: u64,
    /// Slowest average rate, in bytes per second, at which a body may arrive once it has been
    /// arriving for `body_timeout_secs`; a slower body is cut off like a stalled one.
    pub body_min_bytes_per_sec: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Largest accepted export request as received (gRPC message or HTTP body), in bytes.
    pub max_message_bytes: NonZeroUsize,
    /// Largest accepted request after gzip decompression, in bytes.
    pub max_decompressed_bytes: NonZeroUsize,
    /// Most memory one request may take once decoded, in bytes, estimated from its wire form
    /// before it is decoded; a request over it is refused (413, gRPC `INVALID_ARGUMENT`).
    pub max_decoded_bytes: NonZeroUsize,
    /// How far in the future a span or point may end before it is rejected as absurd.
    pub max_future_skew_secs: u64,
    /// Seconds a client is asked to wait (`Retry-After`, gRPC RetryInfo) when ingest is full.
    pub retry_after_secs: u64,
    /// Attributes kept per span, event, link, resource, scope and point; the rest are dropped
    /// (counted in `dropped_attributes_count` and at /metrics).
    pub max_attributes: NonZeroUsize,
    /// Longest string or bytes attribute value kept, in bytes; longer values are cut.
    pub max_attribute_value_bytes: NonZeroUsize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Spans and metric points accepted but not yet stored; beyond this, ingest pushes back.
    pub queue_capacity_items: NonZeroUsize,
    /// Most spans and points the store writer commits in one transaction.
    pub writer_batch_items: NonZeroUsize,
    /// When an export is acknowledged: `sync` after an fdatasync of the write-ahead log
    /// covering it (survives kill -9 and power loss), `os` once written to the log without
    /// fsync (survives kill -9, not power loss; for throwaway runs). Not used by the memory store.
    pub log_sync: crate::wal::SyncMode,
    /// Most bytes of the write-ahead log not yet in the store; beyond this, ingest pushes back.
    pub log_max_size_mb: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// Embedded SQLite in the data directory.
    Sqlite,
    /// The same SQLite engine held in memory: nothing survives a restart.
    Memory,
    /// A ClickHouse server (`clickhouse_url`).
    Clickhouse,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Which store keeps spans and metric points.
    pub store: StoreKind,
    /// Directory of the embedded store's files.
    pub data_dir: PathBuf,
    /// ClickHouse HTTP URL, used when `store = "clickhouse"`.
    pub clickhouse_url: String,
    /// Data older than this is deleted.
    pub retention_hours: u64,
    /// When the store grows beyond this, its oldest data is deleted.
    pub max_size_mb: u64,
    /// How often retention runs.
    pub retention_interval_secs: u64,
    /// Attribute keys with an index for exact-match search (correlation ids and the like).
    pub indexed_attributes: Vec<String>,
    /// Store raw spans (trace search and waterfalls); off keeps only the map, its rollups and
    /// metric points.
    pub store_spans: bool,
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            otlp_grpc: SocketAddr::from(([127, 0, 0, 1], 4317)),
            otlp_http: SocketAddr::from(([127, 0, 0, 1], 4318)),
            ui: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_timeout_secs: 10,
            body_min_bytes_per_sec: 16 * 1024,
        }
    }
}

const MIB: usize = 1024 * 1024;

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: NonZeroUsize::new(16 * MIB).expect("non-zero"),
            max_decompressed_bytes: NonZeroUsize::new(64 * MIB).expect("non-zero"),
            max_decoded_bytes: NonZeroUsize::new(256 * MIB).expect("non-zero"),
            max_future_skew_secs: 3600,
            retry_after_secs: 1,
            max_attributes: NonZeroUsize::new(crate::ingest::convert::DEFAULT_MAX_ATTRIBUTES)
                .expect("non-zero"),
            max_attribute_value_bytes: NonZeroUsize::new(
                crate::ingest::convert::DEFAULT_MAX_ATTRIBUTE_VALUE_BYTES,
            )
            .expect("non-zero"),
        }
    }
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            queue_capacity_items: NonZeroUsize::new(200_000).expect("non-zero"),
            writer_batch_items: NonZeroUsize::new(8192).expect("non-zero"),
            log_sync: crate::wal::SyncMode::Sync,
            log_max_size_mb: 1024,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            store: StoreKind::Sqlite,
            data_dir: PathBuf::from("./cartograph-data"),
            clickhouse_url: "http://127.0.0.1:8123".to_owned(),
            retention_hours: 72,
            max_size_mb: 10 * 1024,
            retention_interval_secs: 60,
            indexed_attributes: [
                "x-correlation-id",
                "correlation_id",
                "correlation.id",
                "http.request.header.x-correlation-id",
                "messaging.message.id",
                "enduser.id",
            ]
            .map(str::to_owned)
            .to_vec(),
            store_spans: true,
        }
    }
}

impl Config {
    /// Reads and validates a TOML file; fields it leaves out keep their defaults.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let config: Config = toml::from_str(&text).map_err(|err| ConfigError::Parse {
            path: path.display().to_string(),
            message: err.to_string(),
        })?;
        Ok(config)
    }

    /// Checks what types cannot: ranges and combinations.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, message: &str| {
            Err(ConfigError::Invalid {
                field,
                message: message.to_owned(),
            })
        };
        if self.ingest.max_decompressed_bytes < self.ingest.max_message_bytes {
            return invalid(
                "ingest.max_decompressed_bytes",
                "must be at least ingest.max_message_bytes",
            );
        }
        if self.listen.body_timeout_secs == 0 {
            return invalid("listen.body_timeout_secs", "must be at least 1");
        }
        if self.pipeline.writer_batch_items > self.pipeline.queue_capacity_items {
            return invalid(
                "pipeline.writer_batch_items",
                "must not exceed pipeline.queue_capacity_items",
            );
        }
        if u32::try_from(self.pipeline.queue_capacity_items.get()).is_err() {
            return invalid("pipeline.queue_capacity_items", "must be below 2^32");
        }
        if self.pipeline.log_max_size_mb == 0 {
            return invalid("pipeline.log_max_size_mb", "must be at least 1");
        }
        if self.storage.retention_hours == 0 {
            return invalid("storage.retention_hours", "must be at least 1");
        }
        if self.graph.pairing_ttl_secs == 0 {
            return invalid("graph.pairing_ttl_secs", "must be at least 1");
        }
        if let Some(field) = self.graph.invalid_target() {
            return invalid(field, "must be a positive number of milliseconds");
        }
        if let Some(service) = self.graph.invalid_multiplier() {
            return Err(ConfigError::Invalid {
                field: "graph.service_multipliers",
                message: format!("{service:?}: a multiplier is a number from 1 to 2^56"),
            });
        }
        self.insights.validate()?;
        if self.storage.retention_interval_secs == 0 {
            return invalid("storage.retention_interval_secs", "must be at least 1");
        }
        if let Err((field, message)) = self.signals.validate() {
            return Err(ConfigError::Invalid { field, message });
        }
        self.alerts.validate().map_err(ConfigError::Alerts)?;
        if !crate::store::clickhouse::migrate::is_plain_name(&self.clickhouse.database) {
            return invalid("clickhouse.database", "use letters, digits and _");
        }
        if self.storage.store == StoreKind::Clickhouse {
            match reqwest::Url::parse(&self.storage.clickhouse_url) {
                Err(_) => return invalid("storage.clickhouse_url", "is not a URL"),
                Ok(url) if url.scheme() != "http" => {
                    return invalid(
                        "storage.clickhouse_url",
                        "must be http:// (this build speaks to ClickHouse without TLS; \
                         put a TLS proxy beside it for an https server)",
                    );
                }
                Ok(_) => {}
            }
        }
        if let Err((field, message)) = self.security.validate() {
            return Err(ConfigError::Invalid { field, message });
        }
        if self.tls.is_incomplete() {
            return invalid(
                "tls.key_file",
                "set both tls.cert_file and tls.key_file, or neither",
            );
        }
        Ok(())
    }

    pub fn retention_max_age(&self) -> Duration {
        Duration::from_secs(self.storage.retention_hours * 3600)
    }

    /// The size limit retention enforces. An in-memory SQLite database cannot grow past 1 GiB,
    /// so the memory store keeps headroom below that whatever the configured size.
    pub fn retention_max_size_bytes(&self) -> u64 {
        const MEMORY_STORE_MAX_BYTES: u64 = 768 * 1024 * 1024;
        let configured = self.storage.max_size_mb.saturating_mul(1024 * 1024);
        match self.storage.store {
            StoreKind::Memory => configured.min(MEMORY_STORE_MAX_BYTES),
            StoreKind::Sqlite | StoreKind::Clickhouse => configured,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented() {
        Config::default().validate().expect("defaults validate");
        assert!(!Config::example_toml().contains("UNDOCUMENTED"));
    }

    #[test]
    fn example_config_is_committed() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("cartograph.example.toml");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        let generated = Config::example_toml();
        if committed != generated {
            if std::env::var_os("UPDATE_GOLDEN").is_some() {
                std::fs::write(&path, &generated).expect("write golden");
                return;
            }
            panic!(
                "cartograph.example.toml is out of date: commit the new version \
                 (run with UPDATE_GOLDEN=1 or `cartograph example-config > cartograph.example.toml`)"
            );
        }
    }

    #[test]
    fn example_config_parses_back_to_defaults() {
        let parsed: Config = toml::from_str(&Config::example_toml()).expect("example parses");
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_name() {
        let err =
            toml::from_str::<Config>("[storage]\nretention_hour = 3\n").expect_err("unknown field");
        assert!(err.to_string().contains("retention_hour"), "{err}");
    }

    #[test]
    fn validation_names_the_field() {
        let mut config = Config::default();
        config.storage.retention_hours = 0;
        let err = config.validate().expect_err("invalid");
        assert!(err.to_string().contains("storage.retention_hours"), "{err}");
    }

    #[test]
    fn a_service_multiplier_is_a_number_from_one() {
        for bad in [0.5, 0.0, -4.0, f64::NAN, f64::INFINITY, 1e18] {
            let mut config = Config::default();
            config
                .graph
                .service_multipliers
                .insert("checkout".to_owned(), bad);
            let err = config.validate().expect_err("invalid multiplier");
            let text = err.to_string();
            assert!(text.contains("graph.service_multipliers"), "{text}");
            assert!(text.contains("\"checkout\""), "{text}");
        }
        let mut config = Config::default();
        config
            .graph
            .service_multipliers
            .insert("checkout".to_owned(), 10.0);
        config.graph.span_multiplier_key = "sampling.multiplier".to_owned();
        config.validate().expect("valid");
        let rules = config.graph.sampling_rules();
        assert_eq!(rules.multiplier_key.as_deref(), Some("sampling.multiplier"));
        assert_eq!(rules.service_multipliers["checkout"], 10.0);
    }
}
