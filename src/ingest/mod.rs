//! OTLP receivers: decode what exporters send, convert it to the model, hand it to the
//! pipeline, and answer as the OTLP specification says. Nothing here stores or analyses data.

pub mod convert;
pub mod decode;
pub mod error;
pub mod grpc;
pub mod http;
mod service;
pub mod tenant;

pub use service::{ExportOutcome, Ingestor};
