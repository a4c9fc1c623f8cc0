//! The typical spans both insert benchmarks write: nine attributes, an event on one span in
//! fifty, random trace ids, eight spans to a trace, one resource per batch.

use std::sync::Arc;

use cartograph::model::split_mix as mix;
use cartograph::model::{AttrValue, Batch, Event, Resource, Scope, SpanId, SpanKind, TraceId};
use cartograph::store::conformance::fixtures::{BASE_NANOS, resource, scope, typical_span};

const SPANS_PER_TRACE: u64 = 8;
/// Simulated arrival: 100k spans/s, so a run crosses hourly partitions like production would.
const NANOS_BETWEEN_SPANS: u64 = 10_000;
const NUM_SERVICES: u64 = 12;

/// Typical spans with random trace ids, eight to a trace, twelve services in turn.
pub struct SpanSource {
    pub next_no: u64,
    resources: Vec<Arc<Resource>>,
    scope: Arc<Scope>,
}

impl SpanSource {
    pub fn new() -> Self {
        Self {
            next_no: 0,
            resources: (0..NUM_SERVICES)
                .map(|no| resource(&format!("service-{no}")))
                .collect(),
            scope: scope(),
        }
    }

    pub fn next_batch(&mut self, num_spans: u64) -> Batch {
        let first_no = self.next_no;
        self.next_no += num_spans;
        let resource = &self.resources[((first_no / num_spans) % NUM_SERVICES) as usize];
        let spans = (first_no..first_no + num_spans)
            .map(|no| {
                let trace_no = no / SPANS_PER_TRACE;
                let start_nanos = BASE_NANOS + no * NANOS_BETWEEN_SPANS;
                let mut span = typical_span(resource, &self.scope, 1, 1, start_nanos);
                let mut trace_bytes = [0_u8; 16];
                trace_bytes[..8].copy_from_slice(&mix(trace_no).to_le_bytes());
                trace_bytes[8..].copy_from_slice(&mix(!trace_no).to_le_bytes());
                span.trace_id = TraceId::from_bytes(&trace_bytes).expect("random trace id");
                span.span_id = SpanId::from_bytes(&mix(no | 1 << 63).to_le_bytes()).expect("id");
                if no % SPANS_PER_TRACE != 0 {
                    let root_no = no - no % SPANS_PER_TRACE;
                    span.parent_span_id = Some(
                        SpanId::from_bytes(&mix(root_no | 1 << 63).to_le_bytes()).expect("id"),
                    );
                    span.kind = SpanKind::Client;
                    span.name = format!("SELECT orders {}", no % 16);
                }
                if no % 50 == 0 {
                    span.events.push(Event {
                        time_unix_nano: start_nanos + 1_000,
                        name: "exception".to_owned(),
                        attributes: vec![(
                            "exception.type".to_owned(),
                            AttrValue::Str("java.net.SocketTimeoutException".to_owned()),
                        )],
                        dropped_attributes_count: 0,
                    });
                }
                span
            })
            .collect();
        Batch {
            spans,
            metric_points: Vec::new(),
        }
    }
}
