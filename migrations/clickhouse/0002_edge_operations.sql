-- The operation splits of edge rollups in a column of their own, so that the map's totals
-- read `payload` alone (src/store/clickhouse/totals.rs). Rows written before keep their splits
-- in `payload`, and reads take them from either place. In cluster mode the Distributed table
-- gets the column too (without a codec: it stores nothing); on one server both statements
-- name the same table and the second does nothing.
ALTER TABLE {db}.{local:edge_rollups}{on_cluster}
    ADD COLUMN IF NOT EXISTS operations String DEFAULT '' CODEC(ZSTD(3));

ALTER TABLE {db}.edge_rollups{on_cluster}
    ADD COLUMN IF NOT EXISTS operations String DEFAULT '';

-- The map reads every payload of its range: LZ4 decompresses in about half ZSTD(3)'s time
-- for about 1.5 times the bytes on disk (an hour of a 2,000-edge mesh: 41 MB against 28 MB).
-- Parts written before keep ZSTD until merged.
ALTER TABLE {db}.{local:edge_rollups}{on_cluster}
    MODIFY COLUMN payload String CODEC(LZ4);
