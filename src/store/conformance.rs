//! The storage conformance suite: every backend must pass these cases unchanged.
//!
//! Each case is a generic function taking a fresh, empty store (writer and reader of the same
//! store, the writer implementing [`StoreWriter`](crate::store::StoreWriter) and
//! [`RollupWriter`](crate::store::RollupWriter), the reader every reader trait);
//! [`store_conformance_tests!`](crate::store_conformance_tests) expands one `#[test]` per case
//! for a backend:
//!
//! ```ignore
//! mod memory {
//!     fn fresh() -> (SqliteWriter, SqliteReader) { /* open an empty store */ }
//!     crate::store_conformance_tests!(fresh);
//! }
//! ```
//!
//! Backends must index the attribute key `x-correlation-id` (as the default configuration
//! does) for the indexed-search cases to exercise their index; results must not depend on it.
//! The shared data lives in [`fixtures`] and [`rollup_fixtures`], which the benchmarks use too.
//!
//! Built for this crate's unit tests and, through the `conformance` feature (which the
//! integration tests and benchmarks enable as a dev-dependency), for them; never part of a
//! release build. The alert store's cases live with alerting's own storage.

pub mod fixtures;
mod log;
mod metrics;
mod retention;
pub mod rollup_fixtures;
mod rollup_lifecycle;
mod rollup_totals;
mod rollups;
mod search;
mod traces;

pub use log::{log_replay_after_torn_frame, retention_drops_by_time_not_write_order};
pub use metrics::{metric_filters_and_order, metric_round_trip};
pub use retention::{retention_by_age, retention_by_size};
pub use rollup_lifecycle::{rollup_late_merge, rollup_minutes_with_data, rollup_retention};
pub use rollup_totals::{rollup_reads_between_two_nodes, rollup_totals_per_edge};
pub use rollups::{
    rollup_hostile_strings, rollup_instances_side_by_side, rollup_minute_out_of_range,
    rollup_range_bounds, rollup_rewrite_replaces, rollup_round_trip, rollup_service_filter,
};
pub use search::{
    search_attribute_filters, search_hostile_strings, search_limit_and_order, search_span_filters,
    search_summary, search_trace_spans,
};
pub use traces::{idempotent_rewrite, reads_during_writes, span_round_trip, trace_not_found};

/// Expands one `#[test]` per conformance case; `$make` is a callable returning a fresh, empty
/// `(writer, reader)` pair.
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@cases $make;
            span_round_trip,
            trace_not_found,
            idempotent_rewrite,
            reads_during_writes,
            search_span_filters,
            search_attribute_filters,
            search_summary,
            search_limit_and_order,
            search_hostile_strings,
            search_trace_spans,
            metric_round_trip,
            metric_filters_and_order,
            retention_by_age,
            retention_by_size,
            retention_drops_by_time_not_write_order,
            log_replay_after_torn_frame,
            rollup_round_trip,
            rollup_minute_out_of_range,
            rollup_rewrite_replaces,
            rollup_instances_side_by_side,
            rollup_range_bounds,
            rollup_service_filter,
            rollup_minutes_with_data,
            rollup_retention,
            rollup_hostile_strings,
            rollup_late_merge,
            rollup_totals_per_edge,
            rollup_reads_between_two_nodes,
        );
    };
    (@cases $make:expr; $($case:ident),+ $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::store::conformance::$case(($make)());
            }
        )+
    };
}
