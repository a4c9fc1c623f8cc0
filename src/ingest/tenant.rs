//! Tenancy on the wire: the attribute `cartograph.tenant` is Cartograph's to set. With tenants
//! configured, a claim to it anywhere in a request (resource, scope, span, event, link, data
//! point) is removed, since a search by attribute would match any of them; a request admitted
//! on a tenant's token then has it set on every resource. With no tenants configured requests
//! are left as sent.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric};
use opentelemetry_proto::tonic::resource::v1::Resource;

use crate::auth::Tenancy;

/// The resource attribute naming the tenant.
pub const TENANT_ATTRIBUTE: &str = "cartograph.tenant";

pub fn stamp_traces(request: &mut ExportTraceServiceRequest, tenancy: &Tenancy) {
    if *tenancy == Tenancy::Off {
        return;
    }
    for resource_spans in &mut request.resource_spans {
        stamp(&mut resource_spans.resource, tenancy);
        for scope_spans in &mut resource_spans.scope_spans {
            if let Some(scope) = &mut scope_spans.scope {
                strip(&mut scope.attributes);
            }
            for span in &mut scope_spans.spans {
                strip(&mut span.attributes);
                span.events
                    .iter_mut()
                    .for_each(|event| strip(&mut event.attributes));
                span.links
                    .iter_mut()
                    .for_each(|link| strip(&mut link.attributes));
            }
        }
    }
}

pub fn stamp_metrics(request: &mut ExportMetricsServiceRequest, tenancy: &Tenancy) {
    if *tenancy == Tenancy::Off {
        return;
    }
    for resource_metrics in &mut request.resource_metrics {
        stamp(&mut resource_metrics.resource, tenancy);
        for scope_metrics in &mut resource_metrics.scope_metrics {
            if let Some(scope) = &mut scope_metrics.scope {
                strip(&mut scope.attributes);
            }
            for metric in &mut scope_metrics.metrics {
                strip_points(metric);
            }
        }
    }
}

fn strip_points(metric: &mut Metric) {
    match &mut metric.data {
        Some(metric::Data::Gauge(gauge)) => {
            for point in &mut gauge.data_points {
                strip(&mut point.attributes);
            }
        }
        Some(metric::Data::Sum(sum)) => {
            for point in &mut sum.data_points {
                strip(&mut point.attributes);
            }
        }
        Some(metric::Data::Histogram(histogram)) => {
            for point in &mut histogram.data_points {
                strip(&mut point.attributes);
            }
        }
        Some(metric::Data::ExponentialHistogram(histogram)) => {
            for point in &mut histogram.data_points {
                strip(&mut point.attributes);
            }
        }
        Some(metric::Data::Summary(summary)) => {
            for point in &mut summary.data_points {
                strip(&mut point.attributes);
            }
        }
        None => {}
    }
}

fn strip(attributes: &mut Vec<KeyValue>) {
    attributes.retain(|attribute| attribute.key != TENANT_ATTRIBUTE);
}

fn stamp(resource: &mut Option<Resource>, tenancy: &Tenancy) {
    let resource = resource.get_or_insert_with(Resource::default);
    strip(&mut resource.attributes);
    if let Tenancy::Tenant(tenant) = tenancy {
        resource.attributes.push(KeyValue {
            key: TENANT_ATTRIBUTE.to_owned(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(tenant.to_string())),
            }),
            ..KeyValue::default()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn claim(tenant: &str) -> KeyValue {
        KeyValue {
            key: TENANT_ATTRIBUTE.to_owned(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(tenant.to_owned())),
            }),
            ..KeyValue::default()
        }
    }

    /// Claims on the first resource and on a span of it.
    fn claimed(tenant: &str) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![claim(tenant)],
                        ..Resource::default()
                    }),
                    scope_spans: vec![ScopeSpans {
                        spans: vec![Span {
                            attributes: vec![claim(tenant)],
                            ..Span::default()
                        }],
                        ..ScopeSpans::default()
                    }],
                    ..ResourceSpans::default()
                },
                ResourceSpans::default(),
            ],
        }
    }

    fn span_claims(request: &ExportTraceServiceRequest) -> usize {
        request.resource_spans[0].scope_spans[0].spans[0]
            .attributes
            .iter()
            .filter(|attribute| attribute.key == TENANT_ATTRIBUTE)
            .count()
    }

    fn tenants(request: &ExportTraceServiceRequest) -> Vec<Vec<String>> {
        request
            .resource_spans
            .iter()
            .map(|resource_spans| {
                resource_spans
                    .resource
                    .iter()
                    .flat_map(|resource| &resource.attributes)
                    .filter(|attribute| attribute.key == TENANT_ATTRIBUTE)
                    .filter_map(|attribute| match &attribute.value.as_ref()?.value {
                        Some(any_value::Value::StringValue(text)) => Some(text.clone()),
                        _ => None,
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn the_token_decides_the_tenant_not_the_sender() {
        let mut request = claimed("billing");
        stamp_traces(&mut request, &Tenancy::Tenant("shop".into()));
        assert_eq!(tenants(&request), [vec!["shop"], vec!["shop"]]);
        assert_eq!(span_claims(&request), 0, "a span-level claim is removed");

        let mut request = claimed("billing");
        stamp_traces(&mut request, &Tenancy::Shared);
        assert_eq!(tenants(&request), [Vec::<String>::new(), Vec::new()]);
        assert_eq!(span_claims(&request), 0);

        let mut request = claimed("billing");
        stamp_traces(&mut request, &Tenancy::Off);
        assert_eq!(tenants(&request), [vec!["billing"], Vec::new()]);
        assert_eq!(span_claims(&request), 1, "no tenants: left as sent");
    }
}
