//! Binary encoding of rollup rows: the `stats` blob of edge and operation rollups (the codes
//! of node and edge kinds in key columns are [`super::codec_kinds`]'s).
//!
//! A stats blob is a layout byte, the counters as varints (primitives of [`super::codec`]),
//! each latency sketch in the form its layout fixes ([`super::codec_sketch`]), then any lists
//! (consumer groups, operation splits, versions). Decoding checks every length and the layout
//! byte, so damage or a blob of another layout is reported as [`StoreError::Corrupt`], never
//! misread.
//! Owns the byte layout only; it does not touch SQL.

use crate::model::graph::{EdgeStats, MAX_VERSIONS, OperationSplit, OperationStats, VersionStats};
use crate::store::totals::EdgeSum;
use crate::store::{Splits, StoreError};

use super::codec::{Decoder, corrupt, put_str, put_varint};
pub(super) use super::codec_kinds::{
    edge_kind_code, edge_kind_from_code, node_kind_code, node_kind_from_code,
};
use super::codec_sketch::{SketchForm, add_sketch, put_sketch, sketch};
use super::codec_splits::{add_splits, put_splits, splits};

/// The first layout of edge and operation stats blobs.
const LAYOUT_V1: u8 = 1;
/// Edge blobs: V1, then `num_unobserved` (sampling) and the operation splits. Operation
/// blobs: V1, then
/// `instance_minutes` and `instance_requests`.
const LAYOUT_V2: u8 = 2;
/// Edge blobs: V2 with compact sketches. Operation blobs: V2, then `num_unobserved` and the
/// versions.
const LAYOUT_V3: u8 = 3;
/// Edge blobs written by this build: V3 with flagged sketches. Operation blobs: V3 with compact
/// sketches.
const LAYOUT_V4: u8 = 4;
/// Operation blobs written by this build: V4 with flagged sketches.
const LAYOUT_V5: u8 = 5;
/// A version's figures are the operation's (its only version served every request): stored
/// as the name alone.
const VERSION_IS_OPERATION: u8 = 1;
/// A version's figures follow its name.
const VERSION_FIGURES: u8 = 0;

pub(crate) fn encode_edge_stats(buf: &mut Vec<u8>, stats: &EdgeStats) -> Result<(), StoreError> {
    encode_edge_stats_with(buf, stats, &stats.operations)
}

/// [`encode_edge_stats`] with `splits` in place of the stats' own (ClickHouse keeps them in a
/// column of their own and writes none here).
pub(crate) fn encode_edge_stats_with(
    buf: &mut Vec<u8>,
    stats: &EdgeStats,
    splits: &[OperationSplit],
) -> Result<(), StoreError> {
    // Destructured whole so that a new field fails to compile here instead of being lost.
    let EdgeStats {
        num_requests,
        num_unobserved,
        num_errors,
        num_retries,
        num_short_circuited,
        num_client_only,
        num_server_only,
        client_latency,
        server_latency,
        publish_consume_latency,
        num_traces,
        max_calls_per_trace,
        consumer_groups,
        operations: _,
    } = stats;
    buf.push(LAYOUT_V4);
    for counter in [
        num_requests,
        num_errors,
        num_retries,
        num_short_circuited,
        num_client_only,
        num_server_only,
        num_traces,
        max_calls_per_trace,
    ] {
        put_varint(buf, *counter);
    }
    for sketch in [client_latency, server_latency, publish_consume_latency] {
        put_sketch(buf, sketch);
    }
    put_varint(buf, consumer_groups.len() as u64);
    for group in consumer_groups {
        put_str(buf, group);
    }
    put_varint(buf, *num_unobserved);
    put_splits(buf, splits);
    Ok(())
}

/// An edge blob's layout, its sketches' form and its counters (the stats without sketches,
/// consumer groups or splits), with a decoder at its first sketch.
fn edge_counters(blob: &[u8]) -> Result<(u8, SketchForm, EdgeStats, Decoder<'_>), StoreError> {
    let (layout, mut decoder) = layout_of(blob, LAYOUT_V4)?;
    let form = match layout {
        LAYOUT_V4 => SketchForm::Flagged,
        LAYOUT_V3 => SketchForm::Compact,
        _ => SketchForm::Postcard,
    };
    let mut stats = EdgeStats::default();
    for counter in [
        &mut stats.num_requests,
        &mut stats.num_errors,
        &mut stats.num_retries,
        &mut stats.num_short_circuited,
        &mut stats.num_client_only,
        &mut stats.num_server_only,
        &mut stats.num_traces,
        &mut stats.max_calls_per_trace,
    ] {
        *counter = decoder.varint()?;
    }
    Ok((layout, form, stats, decoder))
}

/// Decodes V4, V3 (compact sketches), V2 (postcard sketches) and V1 (written before sampling
/// was weighed: nothing unobserved, no splits).
pub(crate) fn decode_edge_stats(blob: &[u8]) -> Result<EdgeStats, StoreError> {
    let (layout, form, mut stats, mut decoder) = edge_counters(blob)?;
    stats.client_latency = sketch(&mut decoder, form)?;
    stats.server_latency = sketch(&mut decoder, form)?;
    stats.publish_consume_latency = sketch(&mut decoder, form)?;
    stats.consumer_groups = strings(&mut decoder)?;
    if layout >= LAYOUT_V2 {
        stats.num_unobserved = decoder.varint()?;
        stats.operations = splits(&mut decoder, form)?;
    }
    finished(&decoder)?;
    Ok(stats)
}

/// Adds an edge blob's figures to `sum`, its latencies bucket by bucket, and its operation
/// splits (the blob's end) when `splits` asks for them; returns how many splits were added.
pub(crate) fn add_edge_stats(
    blob: &[u8],
    sum: &mut EdgeSum,
    splits: Splits,
) -> Result<usize, StoreError> {
    let (layout, form, mut counts, mut decoder) = edge_counters(blob)?;
    add_sketch(&mut decoder, form, &mut sum.client_latency)?;
    add_sketch(&mut decoder, form, &mut sum.server_latency)?;
    add_sketch(&mut decoder, form, &mut sum.publish_consume_latency)?;
    counts.consumer_groups = strings(&mut decoder)?;
    if layout >= LAYOUT_V2 {
        counts.num_unobserved = decoder.varint()?;
    }
    sum.counts.add_counts(&counts);
    if splits == Splits::Skipped {
        return Ok(0);
    }
    let num_splits = if layout >= LAYOUT_V2 {
        add_splits(&mut decoder, form, &mut sum.operations)?
    } else {
        0
    };
    finished(&decoder)?;
    Ok(num_splits)
}

pub(crate) fn encode_operation_stats(
    buf: &mut Vec<u8>,
    stats: &OperationStats,
) -> Result<(), StoreError> {
    let OperationStats {
        num_requests,
        num_unobserved,
        num_errors,
        latency,
        instance_minutes,
        instance_requests,
        versions,
    } = stats;
    buf.push(LAYOUT_V5);
    put_varint(buf, *num_requests);
    put_varint(buf, *num_errors);
    put_sketch(buf, latency);
    put_varint(buf, *instance_minutes);
    put_varint(buf, *instance_requests);
    put_varint(buf, *num_unobserved);
    put_varint(buf, versions.len() as u64);
    for version in versions {
        put_str(buf, &version.version);
        let is_operation = versions.len() == 1
            && version.num_requests == *num_requests
            && version.num_errors == *num_errors
            && version.latency == *latency;
        if is_operation {
            buf.push(VERSION_IS_OPERATION);
        } else {
            buf.push(VERSION_FIGURES);
            put_varint(buf, version.num_requests);
            put_varint(buf, version.num_errors);
            put_sketch(buf, &version.latency);
        }
    }
    Ok(())
}

/// The versions of an operation blob, after its other figures.
fn versions(
    decoder: &mut Decoder<'_>,
    operation: &OperationStats,
    form: SketchForm,
) -> Result<Vec<VersionStats>, StoreError> {
    let count = decoder.count()?;
    if count > MAX_VERSIONS {
        return Err(corrupt("more versions than an operation keeps"));
    }
    let mut versions: Vec<VersionStats> = Vec::with_capacity(count);
    for _ in 0..count {
        let name = decoder.string()?;
        if versions.last().is_some_and(|last| last.version >= name) {
            return Err(corrupt("operation versions out of order"));
        }
        let version = match decoder.u8()? {
            VERSION_IS_OPERATION if count == 1 => VersionStats {
                version: name,
                num_requests: operation.num_requests,
                num_errors: operation.num_errors,
                latency: operation.latency.clone(),
            },
            VERSION_FIGURES => VersionStats {
                version: name,
                num_requests: decoder.varint()?,
                num_errors: decoder.varint()?,
                latency: sketch(decoder, form)?,
            },
            _ => return Err(corrupt("bad operation version")),
        };
        versions.push(version);
    }
    Ok(versions)
}

/// Decodes V5, V4 (compact sketches), V3 (postcard sketches), V2 (written before sampling was
/// weighed: nothing unobserved) and V1 (before instances were counted: no instance figures
/// either).
pub(crate) fn decode_operation_stats(blob: &[u8]) -> Result<OperationStats, StoreError> {
    let (layout, mut decoder) = layout_of(blob, LAYOUT_V5)?;
    let form = match layout {
        LAYOUT_V5 => SketchForm::Flagged,
        LAYOUT_V4 => SketchForm::Compact,
        _ => SketchForm::Postcard,
    };
    let mut stats = OperationStats {
        num_requests: decoder.varint()?,
        num_errors: decoder.varint()?,
        latency: sketch(&mut decoder, form)?,
        ..OperationStats::default()
    };
    if layout >= LAYOUT_V2 {
        stats.instance_minutes = decoder.varint()?;
        stats.instance_requests = decoder.varint()?;
    }
    if layout >= LAYOUT_V3 {
        stats.num_unobserved = decoder.varint()?;
        stats.versions = versions(&mut decoder, &stats, form)?;
    }
    finished(&decoder)?;
    Ok(stats)
}

fn strings(decoder: &mut Decoder<'_>) -> Result<Vec<String>, StoreError> {
    let count = decoder.count()?;
    (0..count).map(|_| decoder.string()).collect()
}

/// The layout byte, from [`LAYOUT_V1`] to `newest`, and a decoder past it.
fn layout_of(blob: &[u8], newest: u8) -> Result<(u8, Decoder<'_>), StoreError> {
    let mut decoder = Decoder::new(blob);
    match decoder.u8()? {
        layout @ LAYOUT_V1..=LAYOUT_V5 if layout <= newest => Ok((layout, decoder)),
        other => Err(StoreError::Corrupt(format!(
            "unknown rollup stats layout {other}"
        ))),
    }
}

fn finished(decoder: &Decoder<'_>) -> Result<(), StoreError> {
    if decoder.is_empty() {
        Ok(())
    } else {
        Err(corrupt("rollup stats followed by stray bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::codec_sketch::{put_compact_sketch, put_postcard_sketch};
    use super::*;
    use crate::model::LatencySketch;
    use crate::model::graph::{EdgeKind, NodeKind};

    const NODE_KINDS: [NodeKind; 5] = [
        NodeKind::Service,
        NodeKind::Database,
        NodeKind::Topic,
        NodeKind::External,
        NodeKind::Client,
    ];
    const EDGE_KINDS: [EdgeKind; 5] = [
        EdgeKind::Http,
        EdgeKind::Grpc,
        EdgeKind::Messaging,
        EdgeKind::Database,
        EdgeKind::Other,
    ];

    #[test]
    fn kind_codes_round_trip_in_model_order() {
        let mut by_ord = NODE_KINDS;
        by_ord.sort();
        let mut by_code = NODE_KINDS;
        by_code.sort_by_key(|kind| node_kind_code(*kind));
        assert_eq!(by_ord, by_code);
        for kind in NODE_KINDS {
            assert_eq!(node_kind_from_code(node_kind_code(kind)).ok(), Some(kind));
        }

        let mut by_ord = EDGE_KINDS;
        by_ord.sort();
        let mut by_code = EDGE_KINDS;
        by_code.sort_by_key(|kind| edge_kind_code(*kind));
        assert_eq!(by_ord, by_code);
        for kind in EDGE_KINDS {
            assert_eq!(edge_kind_from_code(edge_kind_code(kind)).ok(), Some(kind));
        }
        assert!(node_kind_from_code(5).is_err());
        assert!(edge_kind_from_code(-1).is_err());
    }

    fn sketch_of(values: &[u64]) -> LatencySketch {
        let mut sketch = LatencySketch::default();
        for value in values {
            sketch.record(*value);
        }
        sketch
    }

    fn full_edge_stats() -> EdgeStats {
        EdgeStats {
            num_requests: u64::MAX,
            num_unobserved: u64::MAX - 9,
            num_errors: 1,
            num_retries: 0,
            num_short_circuited: 3,
            num_client_only: 4,
            num_server_only: 5,
            client_latency: sketch_of(&[0, 1, 999, 1_000_000, u64::MAX]),
            server_latency: sketch_of(&[12_345]),
            publish_consume_latency: LatencySketch::default(),
            num_traces: 7,
            max_calls_per_trace: 8,
            consumer_groups: vec![String::new(), "billing".to_owned(), "ünï\0".to_owned()],
            operations: vec![
                OperationSplit {
                    caller: String::new(),
                    callee: "SELECT orders".to_owned(),
                    num_requests: 7,
                    num_errors: 1,
                    latency: sketch_of(&[3, 4]),
                },
                OperationSplit {
                    caller: "GET /".to_owned(),
                    callee: "\0'".to_owned(),
                    num_requests: u64::MAX,
                    ..OperationSplit::default()
                },
            ],
        }
    }

    #[test]
    fn edge_stats_round_trip_exactly() {
        for stats in [EdgeStats::default(), full_edge_stats()] {
            let mut buf = Vec::new();
            encode_edge_stats(&mut buf, &stats).expect("encode");
            assert_eq!(decode_edge_stats(&buf).expect("decode"), stats);
        }
    }

    #[test]
    fn operation_stats_round_trip_exactly() {
        let full = OperationStats {
            num_requests: 10,
            num_unobserved: 6,
            num_errors: u64::MAX,
            latency: sketch_of(&[5, 5, 5, 70_000_000_000]),
            instance_minutes: 42,
            instance_requests: u64::MAX - 1,
            versions: Vec::new(),
        };
        let version = |name: &str, num_requests: u64, values: &[u64]| VersionStats {
            version: name.to_owned(),
            num_requests,
            num_errors: 1,
            latency: sketch_of(values),
        };
        let mut only_version = full.clone();
        only_version.versions = vec![VersionStats {
            num_errors: u64::MAX,
            ..version("1.2.3", 10, &[5, 5, 5, 70_000_000_000])
        }];
        let mut rollout = full.clone();
        rollout.versions = vec![version("1.2.3", 4, &[5]), version("1.3.0\u{0}'<", 6, &[7])];
        let mut only_some = full.clone();
        only_some.versions = vec![version("9", 3, &[5])];
        for stats in [OperationStats::default(), full, rollout, only_some] {
            let mut buf = Vec::new();
            encode_operation_stats(&mut buf, &stats).expect("encode");
            assert_eq!(decode_operation_stats(&buf).expect("decode"), stats);
        }
        // One version that served everything is stored as its name alone.
        let mut with_name = Vec::new();
        encode_operation_stats(&mut with_name, &only_version).expect("encode");
        let mut without = Vec::new();
        let mut no_version = only_version.clone();
        no_version.versions.clear();
        encode_operation_stats(&mut without, &no_version).expect("encode");
        assert_eq!(with_name.len(), without.len() + "1.2.3".len() + 2);
        assert_eq!(
            decode_operation_stats(&with_name).expect("decode"),
            only_version
        );
    }

    #[test]
    fn operation_stats_of_older_layouts_still_read() {
        let stats = OperationStats {
            num_requests: 10,
            num_errors: 2,
            latency: sketch_of(&[5, 7_000_000]),
            instance_minutes: 3,
            instance_requests: 9,
            num_unobserved: 4,
            versions: Vec::new(),
        };
        // Layouts 1–4 as they were written: the sketch in the postcard form, in 4 compact.
        let older = |layout: u8| {
            let mut buf = vec![layout, 10, 2];
            if layout == LAYOUT_V4 {
                put_compact_sketch(&mut buf, &stats.latency);
            } else {
                put_postcard_sketch(&mut buf, &stats.latency);
            }
            if layout >= LAYOUT_V2 {
                buf.extend([3, 9]);
            }
            if layout >= LAYOUT_V3 {
                buf.extend([4, 0]);
            }
            buf
        };
        for layout in [LAYOUT_V4, LAYOUT_V3] {
            assert_eq!(
                decode_operation_stats(&older(layout)).expect("v4, v3"),
                stats
            );
        }
        let no_sampling = OperationStats {
            num_unobserved: 0,
            ..stats.clone()
        };
        assert_eq!(
            decode_operation_stats(&older(LAYOUT_V2)).expect("v2"),
            no_sampling
        );
        let no_instances = OperationStats {
            instance_minutes: 0,
            instance_requests: 0,
            ..no_sampling
        };
        assert_eq!(
            decode_operation_stats(&older(LAYOUT_V1)).expect("v1"),
            no_instances
        );
        let mut unknown = older(LAYOUT_V1);
        unknown[0] = LAYOUT_V5 + 1;
        assert!(decode_operation_stats(&unknown).is_err(), "unknown layout");
        // The current layout holds the sketch in the flagged form: read as postcard, refused.
        let mut current = Vec::new();
        encode_operation_stats(&mut current, &stats).expect("encode");
        current[0] = LAYOUT_V3;
        assert!(decode_operation_stats(&current).is_err());
    }

    #[test]
    fn edge_stats_of_older_layouts_still_read() {
        let stats = EdgeStats {
            num_requests: 9,
            client_latency: sketch_of(&[5, 7_000_000]),
            consumer_groups: vec!["billing".to_owned()],
            num_unobserved: 2,
            operations: vec![OperationSplit {
                caller: "GET /".to_owned(),
                callee: "POST /pay".to_owned(),
                num_requests: 9,
                num_errors: 0,
                latency: sketch_of(&[6]),
            }],
            ..EdgeStats::default()
        };
        // Layouts 1–3 as they were written: sketches in the postcard form, in 3 compact.
        let older = |layout: u8| {
            let put = |buf: &mut Vec<u8>, sketch: &LatencySketch| match layout {
                LAYOUT_V3 => put_compact_sketch(buf, sketch),
                _ => put_postcard_sketch(buf, sketch),
            };
            let mut buf = vec![layout, 9, 0, 0, 0, 0, 0, 0, 0];
            put(&mut buf, &stats.client_latency);
            // The empty sketches: the compact form's tag, postcard's empty bytes, both 0.
            buf.extend([0, 0, 1]);
            put_str(&mut buf, "billing");
            if layout >= LAYOUT_V2 {
                buf.extend([2, 1]);
                put_str(&mut buf, "GET /");
                put_str(&mut buf, "POST /pay");
                buf.extend([9, 0]);
                put(&mut buf, &stats.operations[0].latency);
            }
            buf
        };
        for layout in [LAYOUT_V3, LAYOUT_V2] {
            assert_eq!(decode_edge_stats(&older(layout)).expect("v3, v2"), stats);
        }
        let before_sampling = EdgeStats {
            num_unobserved: 0,
            operations: Vec::new(),
            ..stats.clone()
        };
        assert_eq!(
            decode_edge_stats(&older(LAYOUT_V1)).expect("v1"),
            before_sampling
        );
        let mut unknown = older(LAYOUT_V2);
        unknown[0] = LAYOUT_V5;
        assert!(decode_edge_stats(&unknown).is_err(), "no edge layout 5");
        // The current layout holds flagged sketches: read as compact, refused.
        let mut current = Vec::new();
        encode_edge_stats(&mut current, &stats).expect("encode");
        current[0] = LAYOUT_V3;
        assert!(decode_edge_stats(&current).is_err());
    }

    #[test]
    fn damage_is_reported_not_misread() {
        let mut buf = Vec::new();
        encode_edge_stats(&mut buf, &full_edge_stats()).expect("encode");
        for len in 0..buf.len() {
            assert!(
                decode_edge_stats(&buf[..len]).is_err(),
                "prefix of {len} bytes"
            );
        }
        let mut longer = buf.clone();
        longer.push(0);
        assert!(decode_edge_stats(&longer).is_err());
        let mut other_layout = buf;
        other_layout[0] = LAYOUT_V2;
        assert!(decode_edge_stats(&other_layout).is_err());
    }

    #[test]
    fn empty_stats_are_small() {
        let mut buf = Vec::new();
        encode_edge_stats(&mut buf, &EdgeStats::default()).expect("encode");
        assert_eq!(buf.len(), 1 + 8 + 3 + 1 + 1 + 1);
    }
}
