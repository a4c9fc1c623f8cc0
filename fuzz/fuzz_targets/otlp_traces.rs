//! OTLP trace exports as ingest sees them: the first byte picks gzip or not and protobuf or
//! JSON; the rest is the body. Decode, then convert: errors are fine, panics and unbounded
//! allocations are not.
#![no_main]

use cartograph::ingest::convert::{ConvertLimits, convert_traces};
use cartograph::ingest::decode::{Encoding, decode_traces, gunzip};
use libfuzzer_sys::fuzz_target;

/// Bounds what one input may make the decoder allocate.
const MAX_DECODED_BYTES: usize = 64 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let encoding = if mode & 1 == 0 {
        Encoding::Protobuf
    } else {
        Encoding::Json
    };
    let body = if mode & 2 == 0 {
        body.to_vec()
    } else {
        match gunzip(body, 1 << 20) {
            Ok(body) => body,
            Err(_) => return,
        }
    };
    if let Ok(request) = decode_traces(&body, encoding, MAX_DECODED_BYTES) {
        let _ = convert_traces(
            request,
            1_700_000_000_000_000_000,
            &ConvertLimits::default(),
        );
    }
});
