//! Spans with their resource and instrumentation scope.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Attributes, SpanId, TraceId, attr_get};

/// The SDK's rule for a resource without `service.name`.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// The entity that produced telemetry. Shared by every span and point of one resource block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    /// `service.name`, or [`UNKNOWN_SERVICE`] when the exporter sent none.
    pub service_name: String,
    pub service_namespace: Option<String>,
    pub service_version: Option<String>,
    /// `deployment.environment.name`, else the older `deployment.environment`.
    pub deployment_environment: Option<String>,
    /// Every resource attribute as sent, including the ones lifted above.
    pub attributes: Attributes,
    pub dropped_attributes_count: u32,
}

impl Resource {
    /// Builds a resource from its attributes, lifting the well-known service fields.
    pub fn from_attributes(attributes: Attributes, dropped_attributes_count: u32) -> Self {
        let text = |key: &str| {
            attr_get(&attributes, key)
                .and_then(|value| value.as_str())
                .filter(|value| !value.is_empty())
                .map(str::to_owned)
        };
        Self {
            service_name: text("service.name").unwrap_or_else(|| UNKNOWN_SERVICE.to_owned()),
            service_namespace: text("service.namespace"),
            service_version: text("service.version"),
            deployment_environment: text("deployment.environment.name")
                .or_else(|| text("deployment.environment")),
            attributes,
            dropped_attributes_count,
        }
    }

    pub fn has_service_name(&self) -> bool {
        attr_get(&self.attributes, "service.name")
            .and_then(|value| value.as_str())
            .is_some_and(|value| !value.is_empty())
    }
}

/// The instrumentation library that recorded the telemetry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Scope {
    pub name: String,
    pub version: String,
    pub attributes: Attributes,
    pub dropped_attributes_count: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    /// Maps the OTLP enum number; unknown numbers are `Unspecified`, as the spec asks.
    pub fn from_otlp(value: i32) -> Self {
        match value {
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }

    pub fn to_otlp(self) -> i32 {
        match self {
            SpanKind::Unspecified => 0,
            SpanKind::Internal => 1,
            SpanKind::Server => 2,
            SpanKind::Client => 3,
            SpanKind::Producer => 4,
            SpanKind::Consumer => 5,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusCode {
    Unset,
    Ok,
    Error,
}

impl StatusCode {
    pub fn from_otlp(value: i32) -> Self {
        match value {
            1 => StatusCode::Ok,
            2 => StatusCode::Error,
            _ => StatusCode::Unset,
        }
    }

    pub fn to_otlp(self) -> i32 {
        match self {
            StatusCode::Unset => 0,
            StatusCode::Ok => 1,
            StatusCode::Error => 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub time_unix_nano: u64,
    pub name: String,
    pub attributes: Attributes,
    pub dropped_attributes_count: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub trace_state: String,
    pub attributes: Attributes,
    pub dropped_attributes_count: u32,
    pub flags: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub resource: Arc<Resource>,
    pub scope: Arc<Scope>,
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_span_id: Option<SpanId>,
    pub trace_state: String,
    pub flags: u32,
    pub name: String,
    pub kind: SpanKind,
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    pub attributes: Attributes,
    pub dropped_attributes_count: u32,
    pub events: Vec<Event>,
    pub dropped_events_count: u32,
    pub links: Vec<Link>,
    pub dropped_links_count: u32,
    pub status_code: StatusCode,
    pub status_message: String,
}

impl Span {
    pub fn duration_nanos(&self) -> u64 {
        self.end_time_unix_nano
            .saturating_sub(self.start_time_unix_nano)
    }

    pub fn service_name(&self) -> &str {
        &self.resource.service_name
    }

    pub fn is_error(&self) -> bool {
        self.status_code == StatusCode::Error
    }
}
