//! The log's statistics in the Prometheus text format, for `/metrics`.

use std::fmt::Write;

use super::Wal;

/// Appends the log's gauges, counters and histograms (`cartograph_wal_*`) to `out`.
pub fn render_prometheus(wal: &Wal, out: &mut String) {
    let stats = wal.stats();
    let scalars = [
        (
            "cartograph_wal_used_bytes",
            "Bytes written to the write-ahead log and not yet checkpointed.",
            "gauge",
            wal.used_bytes(),
        ),
        (
            "cartograph_wal_max_bytes",
            "Most bytes the write-ahead log holds before refusing appends.",
            "gauge",
            wal.max_bytes(),
        ),
        (
            "cartograph_wal_disk_bytes",
            "Bytes of write-ahead log segment files on disk.",
            "gauge",
            wal.disk_bytes(),
        ),
        (
            "cartograph_wal_segments",
            "Write-ahead log segment files on disk.",
            "gauge",
            wal.num_segments(),
        ),
        (
            "cartograph_wal_frames_appended_total",
            "Frames appended to the write-ahead log.",
            "counter",
            stats.num_frames_appended,
        ),
        (
            "cartograph_wal_bytes_appended_total",
            "Bytes appended to the write-ahead log, frame headers included.",
            "counter",
            stats.num_bytes_appended,
        ),
        (
            "cartograph_wal_frames_refused_full_total",
            "Frames refused because the write-ahead log was full.",
            "counter",
            stats.num_frames_refused_full,
        ),
        (
            "cartograph_wal_syncs_total",
            "Write-ahead log sync rounds, failed ones included.",
            "counter",
            stats.num_syncs,
        ),
        (
            "cartograph_wal_sync_errors_total",
            "Write-ahead log sync rounds that failed.",
            "counter",
            stats.num_sync_errors,
        ),
    ];
    for (name, help, kind, value) in scalars {
        header(out, name, help, kind);
        let _ = writeln!(out, "{name} {value}");
    }
    let group_size_sum = stats.group_size_sum as f64;
    histogram(
        out,
        "cartograph_wal_sync_seconds",
        "Duration of write-ahead log sync rounds.",
        &stats.sync_seconds_buckets,
        stats.sync_seconds_sum,
    );
    histogram(
        out,
        "cartograph_wal_sync_group_frames",
        "Frames made durable by one write-ahead log sync round.",
        &stats.group_size_buckets,
        group_size_sum,
    );
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn histogram(out: &mut String, name: &str, help: &str, buckets: &[(f64, u64)], sum: f64) {
    header(out, name, help, "histogram");
    for (bound, count) in buckets {
        if bound.is_infinite() {
            let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        } else {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {count}");
        }
    }
    let count = buckets.last().map_or(0, |(_, count)| *count);
    let _ = writeln!(out, "{name}_sum {sum}");
    let _ = writeln!(out, "{name}_count {count}");
}
