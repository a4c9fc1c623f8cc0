//! Gzip bombs against a real `cartograph` process, whose peak resident memory (VmHWM) tells
//! what decompression really allocated:
//!
//! - ~1 MB of gzip (1,024 members of 1 MiB of zeros: deflate's ratio tops out near 1,000:1)
//!   that would inflate to 1 GiB is refused with 413 naming the limit, and the process's peak
//!   memory grows by less than the configured decompressed limit (decompression keeps what
//!   the gzip trailer announces and only counts the rest);
//! - a ~1 KB body of gzip-in-gzip (1 GiB two layers deep) inflates one layer, as declared, to
//!   ~1 MB of bytes that are not protobuf: 400, nothing more inflated.
//!
//! Afterwards the process serves the next export.

use std::io::Write as _;

use crate::fixtures::{encode, span, trace_request};
use crate::process::{Options, start};

const MIB: u64 = 1024 * 1024;
/// The default `ingest.max_decompressed_bytes`.
const LIMIT: u64 = 64 * MIB;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).expect("gzip");
    encoder.finish().expect("gzip")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gigabyte_gzip_bombs_are_refused_within_the_decompressed_limit() {
    let server = start(Options::default()).await;
    // 1 GiB of zeros as 1,024 gzip members.
    let bomb: Vec<u8> = gzip(&vec![0; MIB as usize]).repeat(1024);
    assert!(bomb.len() < 2 * MIB as usize, "{} bytes", bomb.len());
    // Two layers: the bomb itself gzipped again.
    let nested = gzip(&bomb);
    assert!(nested.len() < 16 * 1024, "{} bytes", nested.len());
    println!(
        "bomb: {} bytes of gzip, nested: {} bytes",
        bomb.len(),
        nested.len()
    );

    let before = server.peak_rss_bytes();
    let (status, message) = server
        .post_traces_with(&[("content-encoding", "gzip")], bomb)
        .await;
    assert_eq!(status, 413, "{message}");
    assert!(message.contains(&LIMIT.to_string()), "{message}");
    let grown = server.peak_rss_bytes().saturating_sub(before);
    println!("peak RSS grew by {} KiB for a 1 GiB bomb", grown / 1024);
    assert!(
        grown < LIMIT,
        "peak RSS grew by {} MiB for a 1 GiB bomb",
        grown / MIB
    );

    let (status, message) = server
        .post_traces_with(&[("content-encoding", "gzip")], nested)
        .await;
    assert_eq!(status, 400, "{message}");
    let grown = server.peak_rss_bytes().saturating_sub(before);
    assert!(grown < LIMIT, "peak RSS grew by {} MiB", grown / MIB);

    let good = encode(&trace_request(
        Some("after-bombs"),
        vec![span(9, "GET /ok")],
    ));
    assert_eq!(server.post_traces(good).await, 200);
}
