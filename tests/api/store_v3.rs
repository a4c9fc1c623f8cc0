//! Upgrade from the previous release: a data directory written by the schema v3 store
//! (`tests/fixtures/store_v3/`, made by commit 76d1e74 as its README says) opens, and every
//! trace in it reads back exactly, before and after a restart on the same directory.

use std::collections::BTreeSet;
use std::path::Path;

use cartograph::config::{Config, StoreKind};
use serde::Deserialize;
use serde_json::Value;

use crate::helpers::{TestApp, spawn_app_with, test_config};

const FIXTURE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/store_v3");
/// Far longer than the fixture's age will ever be, so retention keeps all of it.
const RETENTION_HOURS: u64 = 100 * 365 * 24;
/// Above the fixture's number of traces, so a search returns all it matches.
const SEARCH_LIMIT: usize = 1000;

/// What the previous release answered for the fixture (`manifest.json`).
#[derive(Deserialize)]
struct Manifest {
    /// RFC 3339 bounds around every span of the fixture.
    search_from: String,
    search_to: String,
    num_spans: u64,
    num_traces: usize,
    traces: Vec<ManifestTrace>,
    correlation_ids: Vec<CorrelationId>,
    service_search: ServiceSearch,
    /// Traces whose whole `/api/v1/traces/{id}` answer is in `expected/{id}.json`.
    expected_bodies: Vec<String>,
}

#[derive(Deserialize)]
struct ManifestTrace {
    trace_id: String,
    num_spans: usize,
    services: BTreeSet<String>,
}

#[derive(Deserialize)]
struct CorrelationId {
    key: String,
    value: String,
    trace_id: String,
}

#[derive(Deserialize)]
struct ServiceSearch {
    service: String,
    num_traces: usize,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("read {}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("parse {}: {err}", path.display()))
}

/// The fixture's store files copied to `to`: opening may migrate them, and the committed
/// fixture must stay as the previous release left it.
fn copy_fixture_data(to: &Path) {
    let from = Path::new(FIXTURE_DIR).join("data");
    for entry in std::fs::read_dir(&from).expect("fixture data dir") {
        let path = entry.expect("fixture entry").path();
        let name = path.file_name().expect("file name");
        std::fs::copy(&path, to.join(name))
            .unwrap_or_else(|err| panic!("copy {}: {err}", path.display()));
    }
}

fn v3_config(data_dir: &Path) -> Config {
    let mut config = test_config();
    config.storage.store = StoreKind::Sqlite;
    config.storage.data_dir = data_dir.to_path_buf();
    config.storage.retention_hours = RETENTION_HOURS;
    config
}

fn trace_ids(search: &Value) -> Vec<&str> {
    search["traces"]
        .as_array()
        .unwrap_or_else(|| panic!("no traces array in {search}"))
        .iter()
        .map(|summary| summary["trace_id"].as_str().expect("trace_id"))
        .collect()
}

async fn assert_fixture_readable(app: &TestApp, manifest: &Manifest) {
    let range = format!("from={}&to={}", manifest.search_from, manifest.search_to);

    for expected in &manifest.traces {
        let (status, trace) = app.trace(&expected.trace_id).await;
        assert_eq!(status, 200, "trace {}: {trace}", expected.trace_id);
        let spans = trace["spans"].as_array().expect("spans");
        assert_eq!(
            spans.len(),
            expected.num_spans,
            "spans of {}",
            expected.trace_id
        );
        let services: BTreeSet<String> = spans
            .iter()
            .map(|span| {
                span["resource"]["service_name"]
                    .as_str()
                    .expect("service")
                    .to_owned()
            })
            .collect();
        assert_eq!(
            services, expected.services,
            "services of {}",
            expected.trace_id
        );
    }

    for trace_id in &manifest.expected_bodies {
        let path = Path::new(FIXTURE_DIR).join(format!("expected/{trace_id}.json"));
        let expected: Value = read_json(&path);
        let (status, mut trace) = app.trace(trace_id).await;
        assert_eq!(status, 200, "trace {trace_id}");
        // The old release had no pages: one page holds every span, and says so.
        assert_eq!(trace["offset"], 0, "trace {trace_id}");
        assert_eq!(trace["truncated"], false, "trace {trace_id}");
        assert_eq!(
            trace["num_spans"],
            expected["spans"].as_array().expect("spans").len(),
            "trace {trace_id}"
        );
        let page = trace.as_object_mut().expect("object");
        for key in ["num_spans", "offset", "truncated"] {
            page.remove(key);
        }
        assert_eq!(
            trace,
            expected,
            "trace {trace_id} differs from {}",
            path.display()
        );
    }

    for correlation in &manifest.correlation_ids {
        let query = format!("attr={}%3D{}&{range}", correlation.key, correlation.value);
        let (status, search) = app.search_traces(&query).await;
        assert_eq!(status, 200, "{query}: {search}");
        assert_eq!(
            trace_ids(&search),
            [correlation.trace_id.as_str()],
            "{query}"
        );
    }

    let first = &manifest.traces[0];
    let service = &manifest.service_search.service;
    assert!(
        first.services.contains(service),
        "the manifest searches a service of its first trace"
    );
    let query = format!("service={service}&limit={SEARCH_LIMIT}&{range}");
    let (status, search) = app.search_traces(&query).await;
    assert_eq!(status, 200, "{query}: {search}");
    let found = trace_ids(&search);
    assert!(
        found.contains(&first.trace_id.as_str()),
        "{query} misses {}",
        first.trace_id
    );
    assert_eq!(found.len(), manifest.service_search.num_traces, "{query}");

    // Every span of the fixture, not only the sampled traces: the summaries of all traces
    // count each trace's spans.
    let query = format!("limit={SEARCH_LIMIT}&{range}");
    let (status, search) = app.search_traces(&query).await;
    assert_eq!(status, 200, "{query}: {search}");
    let summaries = search["traces"].as_array().expect("traces");
    assert_eq!(
        summaries.len(),
        manifest.num_traces,
        "traces in the fixture"
    );
    let num_spans: u64 = summaries
        .iter()
        .map(|summary| summary["num_spans"].as_u64().expect("num_spans"))
        .sum();
    assert_eq!(num_spans, manifest.num_spans, "spans in the fixture");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_of_the_v3_store_opens_and_its_traces_stay_readable() {
    let manifest: Manifest = read_json(&Path::new(FIXTURE_DIR).join("manifest.json"));
    let dir = tempfile::tempdir().expect("tempdir");
    copy_fixture_data(dir.path());

    let app = spawn_app_with(v3_config(dir.path())).await;
    assert_fixture_readable(&app, &manifest).await;
    app.shutdown().await;

    // Whatever the first start converted must be what the second one finds.
    let app = spawn_app_with(v3_config(dir.path())).await;
    assert_fixture_readable(&app, &manifest).await;
    app.shutdown().await;
}
