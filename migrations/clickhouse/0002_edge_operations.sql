-- The operation splits of edge rollups in a column of their own, so that the map's totals
-- read `payload` alone (src/store/clickhouse/totals.rs). Rows written before keep their splits
-- in `payload`, and reads take them from either place. In cluster mode the Distributed table
-- gets the column too (without a codec: it stores nothing); on one server both statements
-- name the same table and the second does nothing.
ALTER TABLE {db}.{local:edge_rollups}{on_cluster}
    ADD COLUMN IF NOT EXISTS operations String DEFAULT '' CODEC(ZSTD(3));

ALTER TABLE {db}.edge_rollups{on_cluster}
    ADD COLUMN IF NOT EXISTS operations String DEFAULT '';
