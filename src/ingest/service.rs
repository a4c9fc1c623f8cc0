//! The transport-independent part of an export: convert, count, hand to the pipeline.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use super::convert::{ConvertLimits, Converted, convert_metrics, convert_traces};
use super::error::IngestError;
use crate::model::{Batch, MetricPoint, now_unix_nano};
use crate::pipeline::{GraphFeed, Pipeline, SubmitError};
use crate::signals::SharedSignals;
use crate::telemetry::{RejectReason, Signal, Telemetry};

/// What the client is told about an accepted request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportOutcome {
    pub num_rejected: u64,
    pub rejection_message: Option<String>,
}

/// Shared by the gRPC and HTTP receivers.
#[derive(Debug, Clone)]
pub struct Ingestor {
    pipeline: Pipeline,
    limits: ConvertLimits,
    telemetry: Arc<Telemetry>,
    retry_after: Duration,
    /// Where accepted spans go to update the live map, when the map is on.
    graph_opt: Option<GraphFeed>,
    /// Where accepted lag and breaker points go, when the map is on.
    signals_opt: Option<SharedSignals>,
    /// Whether spans go to the store; when not, only the map sees them.
    store_spans: bool,
}

impl Ingestor {
    pub fn new(
        pipeline: Pipeline,
        limits: ConvertLimits,
        telemetry: Arc<Telemetry>,
        retry_after: Duration,
        graph_opt: Option<GraphFeed>,
        signals_opt: Option<SharedSignals>,
        store_spans: bool,
    ) -> Self {
        Self {
            pipeline,
            limits,
            telemetry,
            retry_after,
            graph_opt,
            signals_opt,
            store_spans,
        }
    }

    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }

    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    /// Stamps a decoded request with its tenancy and exports it.
    pub fn export(
        &self,
        decoded: super::limits::Decoded,
        tenancy: &crate::auth::Tenancy,
    ) -> Result<ExportOutcome, IngestError> {
        match decoded {
            super::limits::Decoded::Traces(mut request) => {
                super::tenant::stamp_traces(&mut request, tenancy);
                self.export_traces(request)
            }
            super::limits::Decoded::Metrics(mut request) => {
                super::tenant::stamp_metrics(&mut request, tenancy);
                self.export_metrics(request)
            }
        }
    }

    pub fn export_traces(
        &self,
        request: ExportTraceServiceRequest,
    ) -> Result<ExportOutcome, IngestError> {
        let num_received: usize = request
            .resource_spans
            .iter()
            .flat_map(|resource| &resource.scope_spans)
            .map(|scope| scope.spans.len())
            .sum();
        self.telemetry
            .record_request(Signal::Traces, num_received as u64);
        let converted = convert_traces(request, now_unix_nano(), &self.limits);
        self.telemetry
            .record_limited_attributes(Signal::Traces, converted.num_limited_attributes);
        let graph_spans_opt = self
            .graph_opt
            .as_ref()
            .map(|graph| graph.classify(&converted.items));
        let outcome = if self.store_spans {
            self.submit(Signal::Traces, converted, |spans| Batch {
                spans,
                metric_points: Vec::new(),
            })?
        } else {
            // Nothing to store: accepted once converted; the map counts what it must skip.
            self.telemetry.record_accepted(
                Signal::Traces,
                converted.items.len() as u64,
                converted.num_unknown_service,
            );
            self.outcome(Signal::Traces, &converted)
        };
        if let (Some(graph), Some(graph_spans)) = (&self.graph_opt, graph_spans_opt) {
            graph.offer(graph_spans);
        }
        Ok(outcome)
    }

    pub fn export_metrics(
        &self,
        request: ExportMetricsServiceRequest,
    ) -> Result<ExportOutcome, IngestError> {
        let num_received = count_metric_points(&request);
        self.telemetry
            .record_request(Signal::Metrics, num_received as u64);
        let now = now_unix_nano();
        let converted = convert_metrics(request, now, &self.limits);
        self.telemetry
            .record_limited_attributes(Signal::Metrics, converted.num_limited_attributes);
        // Copies of the few points the mapper reads, observed once the batch is accepted.
        let recognised: Vec<MetricPoint> = match &self.signals_opt {
            Some(signals) => converted
                .items
                .iter()
                .filter(|point| signals.recognises(&point.name))
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        let outcome = self.submit(Signal::Metrics, converted, |metric_points| Batch {
            spans: Vec::new(),
            metric_points,
        })?;
        if let Some(signals) = &self.signals_opt {
            signals.offer(&recognised, now);
        }
        Ok(outcome)
    }

    /// Refuses a request before its body is read or decoded when what it would be handed to
    /// is full (counted as a refused request), so refused load costs almost nothing.
    pub fn admit(&self, signal: Signal) -> Result<(), IngestError> {
        if signal == Signal::Traces && !self.store_spans {
            return Ok(());
        }
        self.pipeline.admit().map_err(|err| {
            let error = IngestError::Submit(err);
            self.telemetry.record_request(signal, 0);
            self.telemetry
                .record_rejected(signal, error.reject_reason(), 0);
            error
        })
    }

    /// Counts a request refused before conversion (undecodable, wrong media type, too large).
    pub fn record_refused(&self, signal: Signal, error: &IngestError) {
        self.telemetry.record_request(signal, 0);
        self.telemetry
            .record_rejected(signal, error.reject_reason(), 0);
    }

    /// Counts the items conversion rejected and says so to the client.
    fn outcome<T>(&self, signal: Signal, converted: &Converted<T>) -> ExportOutcome {
        if converted.num_rejected > 0 {
            self.telemetry
                .record_rejected(signal, RejectReason::Invalid, converted.num_rejected);
        }
        ExportOutcome {
            num_rejected: converted.num_rejected,
            rejection_message: converted.rejection_message.clone(),
        }
    }

    fn submit<T>(
        &self,
        signal: Signal,
        converted: Converted<T>,
        into_batch: impl FnOnce(Vec<T>) -> Batch,
    ) -> Result<ExportOutcome, IngestError> {
        let num_items = converted.items.len() as u64;
        let outcome = self.outcome(signal, &converted);
        if num_items == 0 {
            return Ok(outcome);
        }
        match self.pipeline.submit(into_batch(converted.items)) {
            Ok(()) => {
                self.telemetry.set_log_failure(None);
                self.telemetry
                    .record_accepted(signal, num_items, converted.num_unknown_service);
                Ok(outcome)
            }
            Err(err) => {
                if let SubmitError::LogFailed(reason) = &err {
                    self.telemetry.set_log_failure(Some(reason.clone()));
                }
                let error = IngestError::Submit(err);
                self.telemetry
                    .record_rejected(signal, error.reject_reason(), num_items);
                Err(error)
            }
        }
    }
}

fn count_metric_points(request: &ExportMetricsServiceRequest) -> usize {
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    request
        .resource_metrics
        .iter()
        .flat_map(|resource| &resource.scope_metrics)
        .flat_map(|scope| &scope.metrics)
        .map(|metric| match &metric.data {
            Some(Data::Gauge(gauge)) => gauge.data_points.len(),
            Some(Data::Sum(sum)) => sum.data_points.len(),
            Some(Data::Histogram(histogram)) => histogram.data_points.len(),
            Some(Data::ExponentialHistogram(histogram)) => histogram.data_points.len(),
            Some(Data::Summary(summary)) => summary.data_points.len(),
            None => 1,
        })
        .sum()
}
