//! The storage conformance suite against the real ClickHouse engine: a server named by
//! `CARTOGRAPH_TEST_CLICKHOUSE_URL`, else the chDB bridge the test command starts
//! (`CARTOGRAPH_TEST_CHDB_URL`). Each case gets a database of its own.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{ClickHouseOptions, ClickHouseReader, ClickHouseWriter, open};

/// Options for a fresh database on the test server.
pub fn test_options() -> ClickHouseOptions {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let (url, compress) = match std::env::var("CARTOGRAPH_TEST_CLICKHOUSE_URL") {
        Ok(url) => (url, true),
        Err(_) => (
            std::env::var("CARTOGRAPH_TEST_CHDB_URL").unwrap_or_else(|_| {
                panic!(
                    "neither CARTOGRAPH_TEST_CLICKHOUSE_URL nor CARTOGRAPH_TEST_CHDB_URL is set: \
                     run the tests through scripts/test.sh, which starts the chDB bridge"
                )
            }),
            false,
        ),
    };
    let database = format!(
        "cartograph_test_{}_{}_{}",
        std::process::id(),
        crate::model::now_unix_nano() % 1_000_000_007,
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    ClickHouseOptions {
        url,
        database,
        user: None,
        password: None,
        compress,
        cluster: None,
        migrate: true,
    }
}

fn fresh() -> (ClickHouseWriter, ClickHouseReader) {
    open(&test_options()).expect("opens and migrates")
}

crate::store_conformance_tests!(fresh);
