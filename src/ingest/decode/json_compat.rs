//! Makes the OTLP/JSON that real exporters send acceptable to `opentelemetry-proto`'s serde
//! impls, which reject two forms the OTLP/JSON (proto3 JSON) mapping allows:
//!
//! - An empty `arrayValue` / `kvlistValue` written as `{}` (proto3 JSON omits empty repeated
//!   fields; the Python SDK does this for an empty list attribute). The crate requires
//!   `"values"`, so the pre-pass writes `{"values":[]}`.
//! - Non-finite doubles: `"NaN"`, `"Infinity"`, `"-Infinity"` (proto3 JSON; the Python SDK sends
//!   them for `asDouble`, `doubleValue`, `sum`, `min`, `max`, `zeroThreshold`, `explicitBounds`)
//!   and `null` (what `serde_json`, and so the Rust exporter, writes for a non-finite `f64`). The
//!   crate accepts these only for summary quantiles. The pre-pass writes an integer placeholder,
//!   which `serde_json` turns into one exact `f64`, and [`restore_non_finite_traces`] /
//!   [`restore_non_finite_metrics`] put the non-finite value back after deserialising.
//!
//! The same scan charges the request's decoding cost to a [`Budget`] (see [`super::cost`]): it
//! knows, from the keys, which message each object is, and stops once the budget is spent.
//!
//! The scan is one pass over the bytes and allocates only when it rewrites something. A body
//! that is not valid JSON passes through unchanged, so `serde_json` reports the error. Error
//! positions after a rewrite on the same line shift by the rewrite's length difference.

use std::borrow::Cow;

use super::cost::Budget;
use super::schema::{Field, Message};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, NumberDataPoint, exemplar, metric::Data, number_data_point,
};

/// `u64::MAX`, which `serde_json` parses as a `u64` and serde casts to 2^64.
const NAN_PLACEHOLDER: &[u8] = b"18446744073709551615";
/// `i64::MAX`, cast to 2^63.
const INFINITY_PLACEHOLDER: &[u8] = b"9223372036854775807";
/// `i64::MIN`, cast to -2^63.
const NEG_INFINITY_PLACEHOLDER: &[u8] = b"-9223372036854775808";

// The casts are the point: these are the exact values serde produces from the placeholders.
const NAN_STAND_IN: f64 = u64::MAX as f64;
const INFINITY_STAND_IN: f64 = i64::MAX as f64;
const NEG_INFINITY_STAND_IN: f64 = i64::MIN as f64;

const EMPTY_VALUE_LIST: &[u8] = br#"{"values":[]}"#;

/// Keys whose value is a double and may be a special string.
const DOUBLE_KEYS: [&[u8]; 6] = [
    b"asDouble",
    b"doubleValue",
    b"sum",
    b"min",
    b"max",
    b"zeroThreshold",
];
/// Keys whose non-optional double may be written as `null` for a non-finite value. (`sum`,
/// `min` and `max` are optional in histograms, where `null` rightly means "absent".)
const NULLABLE_DOUBLE_KEYS: [&[u8]; 3] = [b"asDouble", b"doubleValue", b"zeroThreshold"];
const BOUNDS_KEY: &[u8] = b"explicitBounds";
const VALUE_LIST_KEYS: [&[u8]; 2] = [b"arrayValue", b"kvlistValue"];

/// A body ready for `serde_json`, and whether placeholders must be turned back into non-finite
/// doubles after deserialising.
#[derive(Debug)]
pub(super) struct Normalized<'a> {
    pub body: Cow<'a, [u8]>,
    pub has_non_finite: bool,
}

/// Normalizes `body`, a JSON `root` message, charging what decoding it will cost to `budget`
/// (the scan stops early, leaving the body partly normalized, once the budget is exceeded).
pub(super) fn normalize<'a>(body: &'a [u8], root: Message, budget: &mut Budget) -> Normalized<'a> {
    let mut scanner = Scanner::new(body, root, budget);
    scanner.run();
    let has_non_finite = scanner.has_non_finite;
    Normalized {
        body: scanner.finish(),
        has_non_finite,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    /// An object, and which message it is (`None`: a field the schema does not know).
    Object { message_opt: Option<Message> },
    /// An array, whether it holds histogram bounds, and what its elements are.
    Array { holds_bounds: bool, element: Field },
}

struct Scanner<'a, 'b> {
    input: &'a [u8],
    pos: usize,
    root: Message,
    budget: &'b mut Budget,
    stack: Vec<Container>,
    /// True between `{` or `,` and the next key inside an object.
    expect_key: bool,
    last_key: &'a [u8],
    output_opt: Option<Vec<u8>>,
    copied_up_to: usize,
    has_non_finite: bool,
}

impl<'a, 'b> Scanner<'a, 'b> {
    fn new(input: &'a [u8], root: Message, budget: &'b mut Budget) -> Self {
        budget.charge_message(root);
        Self {
            input,
            pos: 0,
            root,
            budget,
            stack: Vec::new(),
            expect_key: false,
            last_key: b"",
            output_opt: None,
            copied_up_to: 0,
            has_non_finite: false,
        }
    }

    fn run(&mut self) {
        while let Some(&byte) = self.input.get(self.pos) {
            if self.budget.is_exceeded() {
                return;
            }
            match byte {
                b'"' => self.on_string(),
                b'{' => self.on_open_object(),
                b'[' => {
                    let holds_bounds = self.in_value_of(&[BOUNDS_KEY]);
                    let element = self.value_field();
                    self.charge_number(element);
                    self.stack.push(Container::Array {
                        holds_bounds,
                        element,
                    });
                    self.pos += 1;
                }
                b'}' | b']' => {
                    self.stack.pop();
                    self.pos += 1;
                }
                b',' => {
                    match self.stack.last() {
                        Some(Container::Object { .. }) => self.expect_key = true,
                        Some(Container::Array { element, .. }) => {
                            self.expect_key = false;
                            self.charge_number(*element);
                        }
                        None => self.expect_key = false,
                    }
                    self.pos += 1;
                }
                b':' => {
                    self.expect_key = false;
                    self.pos += 1;
                }
                b'n' if self.input[self.pos..].starts_with(b"null") => self.on_null(),
                _ => self.pos += 1,
            }
        }
    }

    fn on_string(&mut self) {
        let start = self.pos;
        let end = string_end(self.input, start);
        self.pos = end;
        if self.expect_key {
            // A well-formed string token has its closing quote at `end - 1`.
            self.last_key = self.input.get(start + 1..end - 1).unwrap_or_default();
            return;
        }
        if self.value_field() == Field::Bytes {
            self.budget.charge_bytes(end - start);
        }
        if !self.in_double_position(&DOUBLE_KEYS) {
            return;
        }
        let placeholder = match &self.input[start..end] {
            b"\"NaN\"" => NAN_PLACEHOLDER,
            b"\"Infinity\"" => INFINITY_PLACEHOLDER,
            b"\"-Infinity\"" => NEG_INFINITY_PLACEHOLDER,
            _ => return,
        };
        self.has_non_finite = true;
        self.replace(start, end, placeholder);
    }

    fn on_open_object(&mut self) {
        let start = self.pos;
        let message_opt = match self.value_field() {
            Field::Message(message) => Some(message),
            _ if self.stack.is_empty() => Some(self.root),
            _ => None,
        };
        if let Some(message) = message_opt
            && !self.stack.is_empty()
        {
            self.budget.charge_message(message);
        }
        if self.in_value_of(&VALUE_LIST_KEYS) {
            let close = skip_whitespace(self.input, start + 1);
            if self.input.get(close) == Some(&b'}') {
                self.pos = close + 1;
                self.replace(start, close + 1, EMPTY_VALUE_LIST);
                return;
            }
        }
        self.stack.push(Container::Object { message_opt });
        self.expect_key = true;
        self.pos += 1;
    }

    fn on_null(&mut self) {
        let start = self.pos;
        self.pos += b"null".len();
        if self.in_double_position(&NULLABLE_DOUBLE_KEYS) {
            self.has_non_finite = true;
            self.replace(start, self.pos, NAN_PLACEHOLDER);
        }
    }

    /// At a value in an object whose key is one of `keys`.
    fn in_value_of(&self, keys: &[&[u8]]) -> bool {
        matches!(self.stack.last(), Some(Container::Object { .. }))
            && !self.expect_key
            && keys.contains(&self.last_key)
    }

    /// What the value at the current position decodes into.
    fn value_field(&self) -> Field {
        match self.stack.last() {
            Some(Container::Object {
                message_opt: Some(message),
            }) if !self.expect_key => message.json_field(self.last_key),
            Some(Container::Array { element, .. }) => *element,
            _ => Field::Scalar,
        }
    }

    /// One element of a list of numbers.
    fn charge_number(&mut self, field: Field) {
        if let Field::Numbers { decoded_bytes, .. } = field {
            self.budget.charge_numbers(1, decoded_bytes);
        }
    }

    /// At a double that may be non-finite: a value of one of `keys`, or an element of
    /// `explicitBounds`.
    fn in_double_position(&self, keys: &[&[u8]]) -> bool {
        match self.stack.last() {
            Some(Container::Array { holds_bounds, .. }) => *holds_bounds,
            Some(Container::Object { .. }) => !self.expect_key && keys.contains(&self.last_key),
            None => false,
        }
    }

    fn replace(&mut self, start: usize, end: usize, with: &[u8]) {
        let output = self
            .output_opt
            .get_or_insert_with(|| Vec::with_capacity(self.input.len() + 64));
        output.extend_from_slice(&self.input[self.copied_up_to..start]);
        output.extend_from_slice(with);
        self.copied_up_to = end;
    }

    fn finish(self) -> Cow<'a, [u8]> {
        match self.output_opt {
            None => Cow::Borrowed(self.input),
            Some(mut output) => {
                output.extend_from_slice(&self.input[self.copied_up_to..]);
                Cow::Owned(output)
            }
        }
    }
}

/// The index just past the string token that starts at `start` (a `"`), or the input's end.
fn string_end(input: &[u8], start: usize) -> usize {
    let mut pos = start + 1;
    while let Some(&byte) = input.get(pos) {
        match byte {
            b'\\' => pos += 2,
            b'"' => return pos + 1,
            _ => pos += 1,
        }
    }
    input.len()
}

fn skip_whitespace(input: &[u8], start: usize) -> usize {
    let num_whitespace = input
        .get(start..)
        .unwrap_or_default()
        .iter()
        .take_while(|byte| matches!(byte, b' ' | b'\t' | b'\n' | b'\r'))
        .count();
    start + num_whitespace
}

// Exact comparison: the stand-ins are exact casts, never results of arithmetic.
#[allow(clippy::float_cmp)]
fn restore(value: &mut f64) {
    if *value == NAN_STAND_IN {
        *value = f64::NAN;
    } else if *value == INFINITY_STAND_IN {
        *value = f64::INFINITY;
    } else if *value == NEG_INFINITY_STAND_IN {
        *value = f64::NEG_INFINITY;
    }
}

fn restore_opt(value_opt: &mut Option<f64>) {
    if let Some(value) = value_opt {
        restore(value);
    }
}

fn restore_key_values(key_values: &mut [KeyValue]) {
    for key_value in key_values {
        if let Some(value) = &mut key_value.value {
            restore_any_value(value);
        }
    }
}

fn restore_any_value(value: &mut AnyValue) {
    match &mut value.value {
        Some(any_value::Value::DoubleValue(double)) => restore(double),
        Some(any_value::Value::ArrayValue(array)) => {
            array.values.iter_mut().for_each(restore_any_value);
        }
        Some(any_value::Value::KvlistValue(list)) => restore_key_values(&mut list.values),
        _ => {}
    }
}

/// Turns placeholders written by [`normalize`] back into non-finite doubles.
pub(super) fn restore_non_finite_traces(request: &mut ExportTraceServiceRequest) {
    for resource_spans in &mut request.resource_spans {
        if let Some(resource) = &mut resource_spans.resource {
            restore_key_values(&mut resource.attributes);
        }
        for scope_spans in &mut resource_spans.scope_spans {
            if let Some(scope) = &mut scope_spans.scope {
                restore_key_values(&mut scope.attributes);
            }
            for span in &mut scope_spans.spans {
                restore_key_values(&mut span.attributes);
                for event in &mut span.events {
                    restore_key_values(&mut event.attributes);
                }
                for link in &mut span.links {
                    restore_key_values(&mut link.attributes);
                }
            }
        }
    }
}

/// Turns placeholders written by [`normalize`] back into non-finite doubles.
pub(super) fn restore_non_finite_metrics(request: &mut ExportMetricsServiceRequest) {
    for resource_metrics in &mut request.resource_metrics {
        if let Some(resource) = &mut resource_metrics.resource {
            restore_key_values(&mut resource.attributes);
        }
        for scope_metrics in &mut resource_metrics.scope_metrics {
            if let Some(scope) = &mut scope_metrics.scope {
                restore_key_values(&mut scope.attributes);
            }
            for metric in &mut scope_metrics.metrics {
                restore_key_values(&mut metric.metadata);
                if let Some(data) = &mut metric.data {
                    restore_metric_data(data);
                }
            }
        }
    }
}

fn restore_metric_data(data: &mut Data) {
    match data {
        Data::Gauge(gauge) => gauge.data_points.iter_mut().for_each(restore_number_point),
        Data::Sum(sum) => sum.data_points.iter_mut().for_each(restore_number_point),
        Data::Histogram(histogram) => {
            for point in &mut histogram.data_points {
                restore_key_values(&mut point.attributes);
                restore_opt(&mut point.sum);
                restore_opt(&mut point.min);
                restore_opt(&mut point.max);
                point.explicit_bounds.iter_mut().for_each(restore);
                point.exemplars.iter_mut().for_each(restore_exemplar);
            }
        }
        Data::ExponentialHistogram(histogram) => {
            for point in &mut histogram.data_points {
                restore_key_values(&mut point.attributes);
                restore_opt(&mut point.sum);
                restore_opt(&mut point.min);
                restore_opt(&mut point.max);
                restore(&mut point.zero_threshold);
                point.exemplars.iter_mut().for_each(restore_exemplar);
            }
        }
        Data::Summary(summary) => {
            for point in &mut summary.data_points {
                restore_key_values(&mut point.attributes);
                restore(&mut point.sum);
            }
        }
    }
}

fn restore_number_point(point: &mut NumberDataPoint) {
    restore_key_values(&mut point.attributes);
    if let Some(number_data_point::Value::AsDouble(value)) = &mut point.value {
        restore(value);
    }
    point.exemplars.iter_mut().for_each(restore_exemplar);
}

fn restore_exemplar(exemplar: &mut Exemplar) {
    restore_key_values(&mut exemplar.filtered_attributes);
    if let Some(exemplar::Value::AsDouble(value)) = &mut exemplar.value {
        restore(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalize(body: &[u8]) -> Normalized<'_> {
        super::normalize(body, Message::TraceRequest, &mut Budget::json(usize::MAX))
    }

    fn normalized_text(body: &str) -> (String, bool) {
        let normalized = normalize(body.as_bytes());
        let text = String::from_utf8(normalized.body.into_owned()).expect("utf-8 stays utf-8");
        (text, normalized.has_non_finite)
    }

    #[test]
    fn leaves_ordinary_json_borrowed() {
        let body = br#"{"a":{"arrayValue":{"values":[{"doubleValue":1.5}]}},"s":"NaN"}"#;
        let normalized = normalize(body);
        assert!(matches!(normalized.body, Cow::Borrowed(_)));
        assert!(!normalized.has_non_finite);
    }

    #[test]
    fn fills_empty_value_lists() {
        let (text, has_non_finite) =
            normalized_text(r#"{"value":{"arrayValue": { } },"v":{"kvlistValue":{}}}"#);
        assert_eq!(
            text,
            r#"{"value":{"arrayValue": {"values":[]} },"v":{"kvlistValue":{"values":[]}}}"#
        );
        assert!(!has_non_finite);
    }

    #[test]
    fn replaces_special_doubles_only_where_a_double_belongs() {
        let (text, has_non_finite) = normalized_text(
            r#"{"asDouble":"NaN","min":"-Infinity","explicitBounds":[1,"Infinity"],
                "stringValue":"NaN","name":"Infinity","doubleValue":null,"sum":null}"#,
        );
        assert!(has_non_finite);
        assert!(text.contains(r#""asDouble":18446744073709551615"#));
        assert!(text.contains(r#""min":-9223372036854775808"#));
        assert!(text.contains(r#""explicitBounds":[1,9223372036854775807]"#));
        assert!(text.contains(r#""stringValue":"NaN""#));
        assert!(text.contains(r#""name":"Infinity""#));
        assert!(text.contains(r#""doubleValue":18446744073709551615"#));
        assert!(
            text.contains(r#""sum":null"#),
            "optional sum keeps null: {text}"
        );
    }

    #[test]
    fn ignores_keys_inside_strings_with_escapes() {
        let body = r#"{"stringValue":"\"arrayValue\":{}","k\"asDouble":"NaN"}"#;
        let (text, has_non_finite) = normalized_text(body);
        assert_eq!(text, body);
        assert!(!has_non_finite);
    }

    #[test]
    fn survives_truncated_and_malformed_input() {
        for body in [
            &b"{\"asDouble\":\"Na"[..],
            b"{\"arrayValue\":{",
            b"\"",
            b"\"\\",
            b"]]]}}}{{{[[[",
            b"{\"explicitBounds\":[null",
            b"nul",
        ] {
            // Malformed input passes through for serde_json to report; it must not panic.
            let _ = normalize(body);
        }
    }

    #[test]
    fn placeholders_parse_to_the_stand_ins() {
        let parse = |text: &[u8]| serde_json::from_slice::<f64>(text).expect("an integer");
        assert_eq!(parse(NAN_PLACEHOLDER).to_bits(), NAN_STAND_IN.to_bits());
        assert_eq!(
            parse(INFINITY_PLACEHOLDER).to_bits(),
            INFINITY_STAND_IN.to_bits()
        );
        assert_eq!(
            parse(NEG_INFINITY_PLACEHOLDER).to_bits(),
            NEG_INFINITY_STAND_IN.to_bits()
        );
    }
}
