//! The shape of the OTLP trace and metrics requests, as far as [`super::cost`] needs it: which
//! fields hold messages, strings or lists of numbers, under their protobuf numbers and their
//! OTLP/JSON names, and how large each message's decoded struct is. Scalar fields are left
//! out: they live inside their message's struct and allocate nothing.

use std::mem::size_of;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint, exponential_histogram_data_point::Buckets,
    summary_data_point::ValueAtQuantile,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};

/// A message type of the trace or metrics request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Message {
    TraceRequest,
    ResourceSpans,
    ScopeSpans,
    Span,
    Event,
    Link,
    Status,
    MetricsRequest,
    ResourceMetrics,
    ScopeMetrics,
    Metric,
    Gauge,
    Sum,
    Histogram,
    ExponentialHistogram,
    Summary,
    NumberPoint,
    HistogramPoint,
    ExponentialHistogramPoint,
    Buckets,
    SummaryPoint,
    Quantile,
    Exemplar,
    Resource,
    Scope,
    EntityRef,
    KeyValue,
    AnyValue,
    ArrayValue,
    KeyValueList,
}

/// What a field decodes into, beyond its place in its message's struct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    /// A message (an element of a list, or a singular sub-message).
    Message(Message),
    /// A string or bytes, allocated at its length.
    Bytes,
    /// A list of numbers, each `decoded_bytes` in memory and at least `min_wire_bytes` on the
    /// wire when packed.
    Numbers {
        decoded_bytes: usize,
        min_wire_bytes: usize,
    },
    /// A number or an unknown field: nothing beyond the struct.
    Scalar,
}

struct FieldDef {
    number: u64,
    json_name: &'static [u8],
    field: Field,
}

const fn message(number: u64, json_name: &'static [u8], message: Message) -> FieldDef {
    FieldDef {
        number,
        json_name,
        field: Field::Message(message),
    }
}

const fn bytes(number: u64, json_name: &'static [u8]) -> FieldDef {
    FieldDef {
        number,
        json_name,
        field: Field::Bytes,
    }
}

/// A repeated `fixed64`/`double` (`min_wire_bytes` 8) or varint (1) field.
const fn numbers(number: u64, json_name: &'static [u8], min_wire_bytes: usize) -> FieldDef {
    FieldDef {
        number,
        json_name,
        field: Field::Numbers {
            decoded_bytes: 8,
            min_wire_bytes,
        },
    }
}

impl Message {
    pub(super) const ALL: [Message; 30] = [
        Message::TraceRequest,
        Message::ResourceSpans,
        Message::ScopeSpans,
        Message::Span,
        Message::Event,
        Message::Link,
        Message::Status,
        Message::MetricsRequest,
        Message::ResourceMetrics,
        Message::ScopeMetrics,
        Message::Metric,
        Message::Gauge,
        Message::Sum,
        Message::Histogram,
        Message::ExponentialHistogram,
        Message::Summary,
        Message::NumberPoint,
        Message::HistogramPoint,
        Message::ExponentialHistogramPoint,
        Message::Buckets,
        Message::SummaryPoint,
        Message::Quantile,
        Message::Exemplar,
        Message::Resource,
        Message::Scope,
        Message::EntityRef,
        Message::KeyValue,
        Message::AnyValue,
        Message::ArrayValue,
        Message::KeyValueList,
    ];

    /// The largest decoded struct of all.
    pub(super) const MAX_STRUCT_BYTES: usize = {
        let mut max = 0;
        let mut index = 0;
        while index < Message::ALL.len() {
            let bytes = Message::ALL[index].struct_bytes();
            if bytes > max {
                max = bytes;
            }
            index += 1;
        }
        max
    };

    /// The size of the decoded struct.
    pub(super) const fn struct_bytes(self) -> usize {
        match self {
            Message::TraceRequest => size_of::<ExportTraceServiceRequest>(),
            Message::ResourceSpans => size_of::<ResourceSpans>(),
            Message::ScopeSpans => size_of::<ScopeSpans>(),
            Message::Span => size_of::<Span>(),
            Message::Event => size_of::<span::Event>(),
            Message::Link => size_of::<span::Link>(),
            Message::Status => size_of::<Status>(),
            Message::MetricsRequest => size_of::<ExportMetricsServiceRequest>(),
            Message::ResourceMetrics => size_of::<ResourceMetrics>(),
            Message::ScopeMetrics => size_of::<ScopeMetrics>(),
            Message::Metric => size_of::<Metric>(),
            Message::Gauge => size_of::<Gauge>(),
            Message::Sum => size_of::<Sum>(),
            Message::Histogram => size_of::<Histogram>(),
            Message::ExponentialHistogram => size_of::<ExponentialHistogram>(),
            Message::Summary => size_of::<Summary>(),
            Message::NumberPoint => size_of::<NumberDataPoint>(),
            Message::HistogramPoint => size_of::<HistogramDataPoint>(),
            Message::ExponentialHistogramPoint => size_of::<ExponentialHistogramDataPoint>(),
            Message::Buckets => size_of::<Buckets>(),
            Message::SummaryPoint => size_of::<SummaryDataPoint>(),
            Message::Quantile => size_of::<ValueAtQuantile>(),
            Message::Exemplar => size_of::<Exemplar>(),
            Message::Resource => size_of::<Resource>(),
            Message::Scope => size_of::<InstrumentationScope>(),
            Message::EntityRef => size_of::<EntityRef>(),
            Message::KeyValue => size_of::<KeyValue>(),
            Message::AnyValue => size_of::<AnyValue>(),
            Message::ArrayValue => size_of::<ArrayValue>(),
            Message::KeyValueList => size_of::<KeyValueList>(),
        }
    }

    /// The field with protobuf number `number`.
    pub(super) fn field(self, number: u64) -> Field {
        self.fields()
            .iter()
            .find(|def| def.number == number)
            .map_or(Field::Scalar, |def| def.field)
    }

    /// The field with OTLP/JSON name `name`.
    pub(super) fn json_field(self, name: &[u8]) -> Field {
        self.fields()
            .iter()
            .find(|def| def.json_name == name)
            .map_or(Field::Scalar, |def| def.field)
    }

    // One table of every message's fields, read as one: split, it would hide nothing.
    #[allow(clippy::too_many_lines)]
    fn fields(self) -> &'static [FieldDef] {
        use Message as M;
        match self {
            M::TraceRequest => const { &[message(1, b"resourceSpans", M::ResourceSpans)] },
            M::ResourceSpans => {
                const {
                    &[
                        message(1, b"resource", M::Resource),
                        message(2, b"scopeSpans", M::ScopeSpans),
                        bytes(3, b"schemaUrl"),
                    ]
                }
            }
            M::ScopeSpans => {
                const {
                    &[
                        message(1, b"scope", M::Scope),
                        message(2, b"spans", M::Span),
                        bytes(3, b"schemaUrl"),
                    ]
                }
            }
            M::Span => {
                const {
                    &[
                        bytes(1, b"traceId"),
                        bytes(2, b"spanId"),
                        bytes(3, b"traceState"),
                        bytes(4, b"parentSpanId"),
                        bytes(5, b"name"),
                        message(9, b"attributes", M::KeyValue),
                        message(11, b"events", M::Event),
                        message(13, b"links", M::Link),
                        message(15, b"status", M::Status),
                    ]
                }
            }
            M::Event => const { &[bytes(2, b"name"), message(3, b"attributes", M::KeyValue)] },
            M::Link => {
                const {
                    &[
                        bytes(1, b"traceId"),
                        bytes(2, b"spanId"),
                        bytes(3, b"traceState"),
                        message(4, b"attributes", M::KeyValue),
                    ]
                }
            }
            M::Status => const { &[bytes(2, b"message")] },
            M::MetricsRequest => const { &[message(1, b"resourceMetrics", M::ResourceMetrics)] },
            M::ResourceMetrics => {
                const {
                    &[
                        message(1, b"resource", M::Resource),
                        message(2, b"scopeMetrics", M::ScopeMetrics),
                        bytes(3, b"schemaUrl"),
                    ]
                }
            }
            M::ScopeMetrics => {
                const {
                    &[
                        message(1, b"scope", M::Scope),
                        message(2, b"metrics", M::Metric),
                        bytes(3, b"schemaUrl"),
                    ]
                }
            }
            M::Metric => {
                const {
                    &[
                        bytes(1, b"name"),
                        bytes(2, b"description"),
                        bytes(3, b"unit"),
                        message(5, b"gauge", M::Gauge),
                        message(7, b"sum", M::Sum),
                        message(9, b"histogram", M::Histogram),
                        message(10, b"exponentialHistogram", M::ExponentialHistogram),
                        message(11, b"summary", M::Summary),
                        message(12, b"metadata", M::KeyValue),
                    ]
                }
            }
            M::Gauge | M::Sum => const { &[message(1, b"dataPoints", M::NumberPoint)] },
            M::Histogram => const { &[message(1, b"dataPoints", M::HistogramPoint)] },
            M::ExponentialHistogram => {
                const { &[message(1, b"dataPoints", M::ExponentialHistogramPoint)] }
            }
            M::Summary => const { &[message(1, b"dataPoints", M::SummaryPoint)] },
            M::NumberPoint => {
                const {
                    &[
                        message(7, b"attributes", M::KeyValue),
                        message(5, b"exemplars", M::Exemplar),
                    ]
                }
            }
            M::HistogramPoint => {
                const {
                    &[
                        message(9, b"attributes", M::KeyValue),
                        numbers(6, b"bucketCounts", 8),
                        numbers(7, b"explicitBounds", 8),
                        message(8, b"exemplars", M::Exemplar),
                    ]
                }
            }
            M::ExponentialHistogramPoint => {
                const {
                    &[
                        message(1, b"attributes", M::KeyValue),
                        message(8, b"positive", M::Buckets),
                        message(9, b"negative", M::Buckets),
                        message(11, b"exemplars", M::Exemplar),
                    ]
                }
            }
            M::Buckets => const { &[numbers(2, b"bucketCounts", 1)] },
            M::SummaryPoint => {
                const {
                    &[
                        message(7, b"attributes", M::KeyValue),
                        message(6, b"quantileValues", M::Quantile),
                    ]
                }
            }
            M::Quantile => const { &[] },
            M::Exemplar => {
                const {
                    &[
                        message(7, b"filteredAttributes", M::KeyValue),
                        bytes(4, b"spanId"),
                        bytes(5, b"traceId"),
                    ]
                }
            }
            M::Resource => {
                const {
                    &[
                        message(1, b"attributes", M::KeyValue),
                        message(3, b"entityRefs", M::EntityRef),
                    ]
                }
            }
            M::Scope => {
                const {
                    &[
                        bytes(1, b"name"),
                        bytes(2, b"version"),
                        message(3, b"attributes", M::KeyValue),
                    ]
                }
            }
            M::EntityRef => {
                const {
                    &[
                        bytes(1, b"schemaUrl"),
                        bytes(2, b"type"),
                        bytes(3, b"idKeys"),
                        bytes(4, b"descriptionKeys"),
                    ]
                }
            }
            M::KeyValue => const { &[bytes(1, b"key"), message(2, b"value", M::AnyValue)] },
            M::AnyValue => {
                const {
                    &[
                        bytes(1, b"stringValue"),
                        message(5, b"arrayValue", M::ArrayValue),
                        message(6, b"kvlistValue", M::KeyValueList),
                        bytes(7, b"bytesValue"),
                    ]
                }
            }
            M::ArrayValue => const { &[message(1, b"values", M::AnyValue)] },
            M::KeyValueList => const { &[message(1, b"values", M::KeyValue)] },
        }
    }
}
