//! OTLP receivers: decode what exporters send, convert it to the model, hand it to the
//! pipeline, and answer as the OTLP specification says. Nothing here stores or analyses data.

pub mod convert;
pub mod decode;
pub mod error;
pub mod grpc;
pub mod http;
mod limits;
mod service;
pub mod tenant;

pub use limits::IngestLimits;
pub use service::{ExportOutcome, Ingestor};
