//! What the embedded store records about a run of spans besides their bytes: time range,
//! errors, longest duration, services, trace ids and the values of indexed attributes.
//! Computed where the spans are encoded (on the ingest threads, for write-ahead log frames)
//! so the store writer only merges and stores it.

use std::collections::BTreeSet;

use crate::model::{Span, StatusCode, TraceId};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockMeta {
    pub num_spans: usize,
    pub min_start_nanos: u64,
    pub max_start_nanos: u64,
    pub num_errors: u64,
    pub max_duration_nanos: u64,
    pub services: BTreeSet<String>,
    /// Distinct trace ids, sorted.
    pub trace_ids: Vec<TraceId>,
    /// Distinct `(key, search text)` of the indexed keys, from span attributes and their
    /// resources' attributes.
    pub indexed_values: BTreeSet<(String, String)>,
}

impl BlockMeta {
    /// The metadata of `spans` for the attribute keys `indexed_keys`.
    pub(crate) fn of(spans: &[&Span], indexed_keys: &[String]) -> Self {
        let mut meta = BlockMeta {
            min_start_nanos: u64::MAX,
            ..BlockMeta::default()
        };
        let mut seen_resources = Vec::new();
        for span in spans {
            meta.num_spans += 1;
            meta.min_start_nanos = meta.min_start_nanos.min(span.start_time_unix_nano);
            meta.max_start_nanos = meta.max_start_nanos.max(span.start_time_unix_nano);
            meta.num_errors += u64::from(span.status_code == StatusCode::Error);
            meta.max_duration_nanos = meta.max_duration_nanos.max(span.duration_nanos());
            if !meta.services.contains(span.service_name()) {
                meta.services.insert(span.service_name().to_owned());
            }
            meta.trace_ids.push(span.trace_id);
            if indexed_keys.is_empty() {
                continue;
            }
            let resource = std::sync::Arc::as_ptr(&span.resource);
            let resource_attributes = if seen_resources.contains(&resource) {
                None
            } else {
                seen_resources.push(resource);
                Some(&span.resource.attributes)
            };
            let attributes = span
                .attributes
                .iter()
                .chain(resource_attributes.into_iter().flatten());
            for (key, value) in attributes {
                if !indexed_keys.contains(key) {
                    continue;
                }
                if let Some(text) = value.to_search_text() {
                    meta.indexed_values.insert((key.clone(), text));
                }
            }
        }
        meta.trace_ids.sort_unstable();
        meta.trace_ids.dedup();
        meta
    }

    /// Adds `other`'s spans to these.
    pub(crate) fn merge(&mut self, other: &BlockMeta) {
        if other.num_spans == 0 {
            return;
        }
        if self.num_spans == 0 {
            *self = other.clone();
            return;
        }
        self.num_spans += other.num_spans;
        self.min_start_nanos = self.min_start_nanos.min(other.min_start_nanos);
        self.max_start_nanos = self.max_start_nanos.max(other.max_start_nanos);
        self.num_errors += other.num_errors;
        self.max_duration_nanos = self.max_duration_nanos.max(other.max_duration_nanos);
        self.services.extend(other.services.iter().cloned());
        self.trace_ids.extend_from_slice(&other.trace_ids);
        self.trace_ids.sort_unstable();
        self.trace_ids.dedup();
        self.indexed_values
            .extend(other.indexed_values.iter().cloned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AttrValue;
    use crate::store::conformance::fixtures::{BASE_NANOS, resource, typical_batch};

    #[test]
    fn merging_equals_computing_at_once() {
        let mut batch = typical_batch(&resource("frontend"), 0, 40, BASE_NANOS);
        batch.spans[3].status_code = StatusCode::Error;
        batch.spans[7]
            .attributes
            .push(("x-correlation-id".into(), AttrValue::Str("c-7".into())));
        let keys = ["x-correlation-id".to_owned()];
        let all: Vec<&Span> = batch.spans.iter().collect();
        let (left, right) = all.split_at(17);
        let mut merged = BlockMeta::of(left, &keys);
        merged.merge(&BlockMeta::of(right, &keys));
        assert_eq!(merged, BlockMeta::of(&all, &keys));
        assert_eq!(merged.num_errors, 1);
        let wanted = ("x-correlation-id".to_owned(), "c-7".to_owned());
        assert!(merged.indexed_values.contains(&wanted));
        assert_eq!(merged.trace_ids.len(), 5);
    }
}
