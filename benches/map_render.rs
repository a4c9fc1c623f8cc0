//! Rendering the map for a large mesh: 500 services and 2,000 edges whose latency sketches hold
//! realistic spreads. `graph_json` is the body of `/api/v1/graph` (three quantiles per side and
//! edge, overlay, serialisation); `insights` runs every structural analysis (cycles, chains,
//! chatty pairs, fan-out, single points of failure) on the same view; `audit` every rule of
//! the communication-pattern audit, here and on loadgen's 300-service, 4,300-edge mesh (also
//! with every edge retrying: the chain search's worst case).
//!
//! `cargo bench --bench map_render`

use std::collections::HashMap;
use std::hint::black_box;

use cartograph::graph::analysis::{self, GraphView};
use cartograph::model::figures::{self, NodeTraffic};
use cartograph::model::graph::{
    EdgeKey, EdgeKind, EdgeStats, NodeKey, NodePlacement, OperationStats,
};
use cartograph::model::split_mix as mix;
use cartograph::query::SignalOverlay;
use cartograph::web::graph_json;
use cartograph::web::map::svg as map_svg;
use criterion::{Criterion, criterion_group, criterion_main};

const NUM_SERVICES: u64 = 500;
const NUM_EDGES: usize = 2_000;
/// The dashboard target's map: 300 nodes, 1,000 edges.
const PAGE_SERVICES: u64 = 300;
const PAGE_EDGES: usize = 1_000;

fn mesh() -> GraphView {
    mesh_of(NUM_SERVICES, NUM_EDGES, LAYERED_REACH)
}

/// How far downstream a call goes in the layered mesh (`reach` = the number of services: any
/// service calls any other, as `cartograph loadgen` does).
const LAYERED_REACH: u64 = 40;
/// `scripts/bench-pages.sh`'s map: loadgen's 300 services, each calling any other.
const LOADGEN_EDGES: usize = 4_300;

fn mesh_of(num_services: u64, num_edges: usize, reach: u64) -> GraphView {
    let service = |number: u64| NodeKey::service(format!("service-{number:03}"));
    let placement = NodePlacement {
        namespace: Some("shop".to_owned()),
        environment: Some("prod".to_owned()),
    };
    let nodes = (0..num_services)
        .map(|n| (service(n), placement.clone()))
        .collect();
    let mut edges = Vec::with_capacity(num_edges);
    let mut seen = std::collections::HashSet::new();
    let mut seed = 1;
    while edges.len() < num_edges {
        seed = mix(seed);
        // Mostly downstream calls (a layered mesh), a few back edges for cycles.
        let source = seed % num_services;
        let target = (source + 1 + mix(seed) % reach) % num_services;
        if !seen.insert((source, target)) {
            continue;
        }
        let mut stats = EdgeStats {
            num_requests: 6_000 + seed % 10_000,
            num_errors: seed % 50,
            num_traces: 3_000,
            max_calls_per_trace: 1 + seed % 12,
            ..EdgeStats::default()
        };
        for sample in 0..200 {
            let nanos = 1_000_000 + mix(seed ^ sample) % 80_000_000;
            stats.client_latency.record(nanos);
            stats.server_latency.record(nanos * 9 / 10);
        }
        let kind = if seed % 3 == 0 {
            EdgeKind::Grpc
        } else {
            EdgeKind::Http
        };
        edges.push((
            EdgeKey {
                source: service(source),
                target: service(target),
                kind,
            },
            stats,
        ));
    }
    GraphView {
        nodes,
        edges,
        window_secs: 900.0,
    }
}

/// Every node's figures, each service having served the calls into it.
fn traffic_of(view: &GraphView) -> HashMap<NodeKey, NodeTraffic> {
    let mut served: HashMap<&str, OperationStats> = HashMap::new();
    for (key, stats) in &view.edges {
        let operations = served.entry(key.target.name.as_str()).or_default();
        operations.num_requests += stats.num_requests;
        operations.num_errors += stats.num_errors;
    }
    figures::node_traffic(
        &view.edges,
        served.iter().map(|(name, stats)| (*name, stats)),
        &figures::LatencyTargets::default(),
    )
}

fn map_render(c: &mut Criterion) {
    let view = mesh();
    let traffic = traffic_of(&view);
    let overlay = SignalOverlay::default();
    let mut group = c.benchmark_group("map_500_services_2000_edges");
    let figures = cartograph::query::NodeFigures {
        traffic: traffic.clone(),
        versions: Default::default(),
    };
    group.bench_function("graph_json", |bencher| {
        bencher.iter(|| {
            let body = graph_json::graph(black_box(&view), &overlay, &figures);
            serde_json::to_vec(&body).expect("serialise")
        });
    });
    group.bench_function("insights", |bencher| {
        bencher.iter(|| analysis::insights(black_box(&view), &[]));
    });
    // The communication-pattern audit: every rule over the same view, the insights included.
    let input = cartograph::graph::audit::AuditInput::default();
    group.bench_function("audit", |bencher| {
        bencher.iter(|| {
            let insights = analysis::insights(black_box(&view), &[]);
            cartograph::graph::audit::audit(&view, &insights, &input)
        });
    });
    group.finish();
    audit_retrying_mesh(c);

    for (name, view) in [
        (
            "map_page_300_nodes_1000_edges",
            mesh_of(PAGE_SERVICES, PAGE_EDGES, LAYERED_REACH),
        ),
        (
            "map_page_loadgen_300_nodes_4300_edges",
            mesh_of(PAGE_SERVICES, LOADGEN_EDGES, PAGE_SERVICES),
        ),
    ] {
        map_page(c, name, &view);
    }
}

/// The audit of loadgen's 300-service, 4,300-edge mesh, as it is and with every edge retrying
/// a third of its calls (1.5× each): the worst case of the chain search, which its caps bound.
fn audit_retrying_mesh(c: &mut Criterion) {
    let calm = mesh_of(PAGE_SERVICES, LOADGEN_EDGES, PAGE_SERVICES);
    let mut retrying = calm.clone();
    for (_, stats) in &mut retrying.edges {
        stats.num_retries = stats.num_requests / 3;
    }
    let input = cartograph::graph::audit::AuditInput::default();
    let mut group = c.benchmark_group("map_300_services_4300_edges");
    for (name, view) in [("audit", &calm), ("audit_every_edge_retrying", &retrying)] {
        group.bench_function(name, |bencher| {
            bencher.iter(|| {
                let insights = analysis::insights(black_box(view), &[]);
                cartograph::graph::audit::audit(view, &insights, &input)
            });
        });
    }
    group.finish();
}

/// The map page's drawing of `view`: layout and SVG.
fn map_page(c: &mut Criterion, name: &str, view: &GraphView) {
    let traffic = traffic_of(view);
    let overlay = SignalOverlay::default();
    let alerts = map_svg::FiringAlerts::default();
    let groups = HashMap::new();
    let marks = map_svg::MapMarks {
        overlay: &overlay,
        traffic: &traffic,
        alerts: &alerts,
        targets: figures::LatencyTargets::default(),
        groups: &groups,
        changes: None,
    };
    let mut group = c.benchmark_group(name);
    group.bench_function("layout_and_svg", |bencher| {
        bencher.iter(|| map_svg::render(black_box(view), &marks, ""));
    });
    group.finish();
    let svg = map_svg::render(view, &marks, "");
    eprintln!("{name}: svg of {} bytes", svg.len());
    // CARTOGRAPH_BENCH_SVG=DIR keeps each drawing to look at.
    if let Some(dir) = std::env::var_os("CARTOGRAPH_BENCH_SVG") {
        std::fs::write(std::path::Path::new(&dir).join(format!("{name}.svg")), svg)
            .expect("write the map");
    }
}

criterion_group!(benches, map_render);
criterion_main!(benches);
