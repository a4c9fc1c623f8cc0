//! Hostile connections against a real `cartograph` process: 10,000 idle connections on each
//! OTLP port do not stop a new exporter from being served; a client that sends its request
//! head slowly (slowloris) is cut off; a client that disconnects mid-body loses only its own
//! request. The server runs as its own process so the 10,000 sockets of each side do not
//! share one file-descriptor limit.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::process::{Options, Server, start};

async fn start_server() -> Server {
    start(Options::default()).await
}

/// One small OTLP/JSON export; returns the status and how long it took.
async fn export(server: &Server, trace: u64) -> (u16, Duration) {
    let body = serde_json::json!({ "resourceSpans": [{
        "resource": { "attributes": [{ "key": "service.name", "value": { "stringValue": "probe" } }] },
        "scopeSpans": [{ "spans": [{
            "traceId": format!("{trace:032x}"), "spanId": "00000000000000aa", "name": "probe",
            "kind": 2, "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000001000000"
        }] }]
    }] });
    let started = Instant::now();
    let status = server
        .client
        .post(format!("http://127.0.0.1:{}/v1/traces", server.otlp_http))
        .header("content-type", "application/json")
        .body(body.to_string())
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_or(0, |response| response.status().as_u16());
    (status, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_idle_connections_do_not_stop_a_new_exporter() {
    const IDLE: usize = 10_000;
    let server = start_server().await;
    let (http, grpc) = (server.otlp_http, server.otlp_grpc);
    let idle = tokio::task::spawn_blocking(move || {
        let mut sockets = Vec::with_capacity(IDLE);
        for index in 0..IDLE {
            let port = if index % 2 == 0 { http } else { grpc };
            sockets.push(TcpStream::connect(("127.0.0.1", port)).expect("idle connection"));
        }
        sockets
    })
    .await
    .expect("join");
    assert_eq!(idle.len(), IDLE);
    let (status, took) = export(&server, 1).await;
    assert_eq!(
        status, 200,
        "a new exporter is served beside {IDLE} idle connections"
    );
    assert!(took < Duration::from_secs(5), "served in {took:?}");
    // And over gRPC, through the real SDK's transport.
    let mut client = opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient::connect(
        format!("http://127.0.0.1:{grpc}"),
    )
    .await
    .expect("grpc connects");
    client
        .export(
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::default(),
        )
        .await
        .expect("grpc export served");
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_head_is_cut_off_and_a_dropped_body_loses_only_itself() {
    let server = start_server().await;
    let port = server.otlp_http;
    let cut_after = tokio::task::spawn_blocking(move || {
        let mut slow = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        slow.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let started = Instant::now();
        let head =
            b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n";
        for byte in head.iter().cycle() {
            if slow.write_all(&[*byte]).is_err() {
                return started.elapsed();
            }
            let mut buffer = [0_u8; 256];
            match slow.read(&mut buffer) {
                Ok(0) => return started.elapsed(),
                Ok(_) => return started.elapsed(),
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(err) if err.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return started.elapsed(),
            }
            assert!(started.elapsed() < Duration::from_secs(30), "never cut off");
        }
        unreachable!("the head cycles forever")
    })
    .await
    .expect("join");
    assert!(
        cut_after < Duration::from_secs(15),
        "cut off after {cut_after:?}"
    );

    // A body that stops half-way: the server drops that request and serves the next.
    tokio::task::spawn_blocking(move || {
        let mut partial = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        partial
            .write_all(
                b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"resourceSpans\": [",
            )
            .expect("write");
    })
    .await
    .expect("join");
    let (status, _) = export(&server, 2).await;
    assert_eq!(status, 200);
    assert_eq!(
        server
            .metric("cartograph_accepted_items_total{signal=\"traces\"}")
            .await,
        1.0,
        "only the whole export counted"
    );
}
