-- Spans, metric points and per-minute rollups. Rendered by src/store/clickhouse/migrate.rs:
-- {db} is the database, {on_cluster} is empty or ` ON CLUSTER 'name'`, {table:NAME:KEY} is
-- NAME (or NAME_local in cluster mode, with a Distributed NAME over it sharded by KEY, chosen
-- so that rows that must collapse land on one shard), {engine:NAME:ENGINE} is the engine
-- (Replicated* in cluster mode).

-- Spans: one row per span; the exact span (typed attributes, events, links, resource, scope)
-- in `payload`, the columns search and trace lookup need beside it. Partitioned by day,
-- ordered for "service in a time range" search; a re-sent span has the same sort key and
-- collapses to the copy stored first (`keep_first` = u64::MAX - insert time is the version;
-- reads also take one row per (trace_id, span_id)).
CREATE TABLE IF NOT EXISTS {db}.{table:spans:cityHash64(trace_id)}{on_cluster}
(
    trace_id FixedString(16) CODEC(ZSTD(1)),
    span_id FixedString(8) CODEC(ZSTD(1)),
    service LowCardinality(String) CODEC(ZSTD(1)),
    name LowCardinality(String) CODEC(ZSTD(1)),
    start_time_unix_nano UInt64 CODEC(DoubleDelta, ZSTD(1)),
    duration_nanos UInt64 CODEC(T64, ZSTD(1)),
    is_error UInt8 CODEC(T64, ZSTD(1)),
    -- Search text of span attributes and of resource attributes, for `key=value` search.
    attributes Map(LowCardinality(String), String) CODEC(ZSTD(3)),
    resource_attributes Map(LowCardinality(String), String) CODEC(ZSTD(3)),
    payload String CODEC(ZSTD(3)),
    keep_first UInt64 CODEC(ZSTD(1)),
    INDEX trace_id_bloom trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX attribute_values mapValues(attributes) TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = {engine:spans:ReplacingMergeTree(keep_first)}
PARTITION BY intDiv(start_time_unix_nano, 86400000000000)
ORDER BY (service, start_time_unix_nano, trace_id, span_id);

-- Trace lookup without scanning: where each trace's spans lie in time.
CREATE TABLE IF NOT EXISTS {db}.{table:trace_times:cityHash64(trace_id)}{on_cluster}
(
    trace_id FixedString(16) CODEC(ZSTD(1)),
    start_time_unix_nano UInt64 CODEC(DoubleDelta, ZSTD(1))
)
ENGINE = {engine:trace_times:MergeTree}
PARTITION BY intDiv(start_time_unix_nano, 86400000000000)
ORDER BY (trace_id, start_time_unix_nano);

-- Metric points, every OTLP type, exact in `payload`; `point_id` (a hash of the point)
-- makes a re-sent point collapse.
CREATE TABLE IF NOT EXISTS {db}.{table:metric_points:point_id}{on_cluster}
(
    name LowCardinality(String) CODEC(ZSTD(1)),
    service LowCardinality(String) CODEC(ZSTD(1)),
    time_unix_nano UInt64 CODEC(DoubleDelta, ZSTD(1)),
    point_id UInt64 CODEC(ZSTD(1)),
    payload String CODEC(ZSTD(3))
)
ENGINE = {engine:metric_points:ReplacingMergeTree}
PARTITION BY intDiv(time_unix_nano, 86400000000000)
ORDER BY (name, service, time_unix_nano, point_id);

-- Per-minute rollups of each instance: the edge's or operation's stats (counts and
-- latency sketches) exactly in `payload`, replaced whole when a minute is re-sent.
CREATE TABLE IF NOT EXISTS {db}.{table:edge_rollups:cityHash64(minute, instance, key)}{on_cluster}
(
    minute Int64 CODEC(DoubleDelta, ZSTD(1)),
    instance UInt32,
    key String CODEC(ZSTD(1)),
    num_requests UInt64 CODEC(T64, ZSTD(1)),
    num_errors UInt64 CODEC(T64, ZSTD(1)),
    written_at UInt64,
    payload String CODEC(ZSTD(3))
)
ENGINE = {engine:edge_rollups:ReplacingMergeTree(written_at)}
PARTITION BY intDiv(minute, 1440)
ORDER BY (minute, instance, key);

CREATE TABLE IF NOT EXISTS {db}.{table:operation_rollups:cityHash64(minute, service, operation, instance)}{on_cluster}
(
    minute Int64 CODEC(DoubleDelta, ZSTD(1)),
    instance UInt32,
    service LowCardinality(String) CODEC(ZSTD(1)),
    operation String CODEC(ZSTD(1)),
    written_at UInt64,
    payload String CODEC(ZSTD(3))
)
ENGINE = {engine:operation_rollups:ReplacingMergeTree(written_at)}
PARTITION BY intDiv(minute, 1440)
ORDER BY (minute, service, operation, instance);
