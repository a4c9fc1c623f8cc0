CREATE DATABASE IF NOT EXISTS `cartograph`;

CREATE TABLE IF NOT EXISTS `cartograph`.schema_migrations
(
    version UInt32,
    name String,
    applied_at_unix_nano UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY version;

-- 0001_tables
CREATE TABLE IF NOT EXISTS `cartograph`.spans
(
    trace_id FixedString(16) CODEC(ZSTD(1)),
    span_id FixedString(8) CODEC(ZSTD(1)),
    service LowCardinality(String) CODEC(ZSTD(1)),
    name LowCardinality(String) CODEC(ZSTD(1)),
    start_time_unix_nano UInt64 CODEC(DoubleDelta, ZSTD(1)),
    duration_nanos UInt64 CODEC(T64, ZSTD(1)),
    is_error UInt8 CODEC(T64, ZSTD(1)),
    attributes Map(LowCardinality(String), String) CODEC(ZSTD(3)),
    resource_attributes Map(LowCardinality(String), String) CODEC(ZSTD(3)),
    payload String CODEC(ZSTD(3)),
    keep_first UInt64 CODEC(ZSTD(1)),
    INDEX trace_id_bloom trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX attribute_values mapValues(attributes) TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree(keep_first)
PARTITION BY intDiv(start_time_unix_nano, 86400000000000)
ORDER BY (service, start_time_unix_nano, trace_id, span_id);

CREATE TABLE IF NOT EXISTS `cartograph`.trace_times
(
    trace_id FixedString(16) CODEC(ZSTD(1)),
    start_time_unix_nano UInt64 CODEC(DoubleDelta, ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY intDiv(start_time_unix_nano, 86400000000000)
ORDER BY (trace_id, start_time_unix_nano);

CREATE TABLE IF NOT EXISTS `cartograph`.metric_points
(
    name LowCardinality(String) CODEC(ZSTD(1)),
    service LowCardinality(String) CODEC(ZSTD(1)),
    time_unix_nano UInt64 CODEC(DoubleDelta, ZSTD(1)),
    point_id UInt64 CODEC(ZSTD(1)),
    payload String CODEC(ZSTD(3))
)
ENGINE = ReplacingMergeTree
PARTITION BY intDiv(time_unix_nano, 86400000000000)
ORDER BY (name, service, time_unix_nano, point_id);

CREATE TABLE IF NOT EXISTS `cartograph`.edge_rollups
(
    minute Int64 CODEC(DoubleDelta, ZSTD(1)),
    instance UInt32,
    key String CODEC(ZSTD(1)),
    num_requests UInt64 CODEC(T64, ZSTD(1)),
    num_errors UInt64 CODEC(T64, ZSTD(1)),
    written_at UInt64,
    payload String CODEC(ZSTD(3))
)
ENGINE = ReplacingMergeTree(written_at)
PARTITION BY intDiv(minute, 1440)
ORDER BY (minute, instance, key);

CREATE TABLE IF NOT EXISTS `cartograph`.operation_rollups
(
    minute Int64 CODEC(DoubleDelta, ZSTD(1)),
    instance UInt32,
    service LowCardinality(String) CODEC(ZSTD(1)),
    operation String CODEC(ZSTD(1)),
    written_at UInt64,
    payload String CODEC(ZSTD(3))
)
ENGINE = ReplacingMergeTree(written_at)
PARTITION BY intDiv(minute, 1440)
ORDER BY (minute, service, operation, instance);

-- 0002_edge_operations
ALTER TABLE `cartograph`.edge_rollups
    ADD COLUMN IF NOT EXISTS operations String DEFAULT '' CODEC(ZSTD(3));

ALTER TABLE `cartograph`.edge_rollups
    ADD COLUMN IF NOT EXISTS operations String DEFAULT '';

ALTER TABLE `cartograph`.edge_rollups
    MODIFY COLUMN payload String CODEC(LZ4);

-- 0003_edge_rollup_buckets
CREATE TABLE IF NOT EXISTS `cartograph`.edge_rollup_buckets
(
    bucket Int64 CODEC(DoubleDelta, ZSTD(1)),
    instance UInt32,
    key String CODEC(ZSTD(1)),
    minute Int64 CODEC(DoubleDelta, ZSTD(1)),
    written_at UInt64,
    num_keys UInt32,
    source_rows UInt32,
    source_versions UInt64,
    payload String CODEC(LZ4)
)
ENGINE = ReplacingMergeTree(written_at)
PARTITION BY intDiv(bucket, 1440)
ORDER BY (bucket, instance, key);

