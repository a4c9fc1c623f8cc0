//! The hour of rollups both store benchmarks write before timing its read: per-minute edge
//! rollups of a mesh, starting at the fixtures' base minute.

use std::time::{Duration, Instant};

use cartograph::store::RollupWriter;
use cartograph::store::conformance::rollup_fixtures::{
    BASE_MINUTE, mesh_edge_rollups, mesh_operation_rollups,
};

pub const MINUTES_PER_HOUR: i64 = 60;

/// Writes an hour of a `num_edges`-edge mesh (edges split by operation pairs, and the
/// services' operations with their versions), one call per minute; the time spent writing
/// (building the rollups is not counted).
pub fn write_mesh_hour(writer: &mut impl RollupWriter, num_edges: u64) -> Duration {
    write_mesh_minutes(writer, num_edges, 0..MINUTES_PER_HOUR)
}

/// Writes the minutes `offsets` after the base minute of the mesh, as [`write_mesh_hour`].
pub fn write_mesh_minutes(
    writer: &mut impl RollupWriter,
    num_edges: u64,
    offsets: std::ops::Range<i64>,
) -> Duration {
    let mut elapsed = Duration::ZERO;
    for minute in BASE_MINUTE + offsets.start..BASE_MINUTE + offsets.end {
        let rollups = mesh_edge_rollups(minute, num_edges);
        let operations = mesh_operation_rollups(minute);
        let started = Instant::now();
        writer
            .write_rollups(1, &rollups, &operations)
            .expect("write_rollups");
        elapsed += started.elapsed();
    }
    elapsed
}
