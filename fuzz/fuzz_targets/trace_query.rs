//! The trace search query string (`/api/v1/traces?…`): a query or a 400, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = cartograph::web::params::trace_query(text);
    }
});
