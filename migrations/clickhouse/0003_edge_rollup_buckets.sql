-- Ten-minute sums of each instance's edge rollups, so that the map's read of a long range takes
-- one row per edge and ten minutes instead of one per minute (src/store/clickhouse/buckets.rs).
-- Derived data: the rows of one (bucket, instance) are a set written in one insert, sharing
-- the version `written_at`; `num_keys` is the set's number of rows, and `source_rows` and
-- `source_versions` are the count and the sum of `written_at` of the minute rows it summed.
-- A read uses a set only while those still match the minute rows; otherwise it reads the
-- minutes. `minute` is the first minute of the edge's rows in the bucket (its placements come
-- from that row).
CREATE TABLE IF NOT EXISTS {db}.{table:edge_rollup_buckets:cityHash64(bucket, instance)}{on_cluster}
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
ENGINE = {engine:edge_rollup_buckets:ReplacingMergeTree(written_at)}
PARTITION BY intDiv(bucket, 1440)
ORDER BY (bucket, instance, key);
