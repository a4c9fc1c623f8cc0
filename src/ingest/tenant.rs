//! Tenancy on the wire: the resource attribute `cartograph.tenant` is Cartograph's to set.
//! A request admitted on a tenant's token has it set on every resource (whatever the sender
//! claimed); one admitted on a shared token has any claim removed; with no tenants configured
//! resources are left as sent.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;

use crate::auth::Tenancy;

/// The resource attribute naming the tenant.
pub const TENANT_ATTRIBUTE: &str = "cartograph.tenant";

pub fn stamp_traces(request: &mut ExportTraceServiceRequest, tenancy: &Tenancy) {
    for resource_spans in &mut request.resource_spans {
        stamp(&mut resource_spans.resource, tenancy);
    }
}

pub fn stamp_metrics(request: &mut ExportMetricsServiceRequest, tenancy: &Tenancy) {
    for resource_metrics in &mut request.resource_metrics {
        stamp(&mut resource_metrics.resource, tenancy);
    }
}

fn stamp(resource: &mut Option<Resource>, tenancy: &Tenancy) {
    if *tenancy == Tenancy::Off {
        return;
    }
    let resource = resource.get_or_insert_with(Resource::default);
    resource
        .attributes
        .retain(|attribute| attribute.key != TENANT_ATTRIBUTE);
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
    use opentelemetry_proto::tonic::trace::v1::ResourceSpans;

    fn claimed(tenant: &str) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![KeyValue {
                            key: TENANT_ATTRIBUTE.to_owned(),
                            value: Some(AnyValue {
                                value: Some(any_value::Value::StringValue(tenant.to_owned())),
                            }),
                            ..KeyValue::default()
                        }],
                        ..Resource::default()
                    }),
                    ..ResourceSpans::default()
                },
                ResourceSpans::default(),
            ],
        }
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

        let mut request = claimed("billing");
        stamp_traces(&mut request, &Tenancy::Shared);
        assert_eq!(tenants(&request), [Vec::<String>::new(), Vec::new()]);

        let mut request = claimed("billing");
        stamp_traces(&mut request, &Tenancy::Off);
        assert_eq!(tenants(&request), [vec!["billing"], Vec::new()]);
    }
}
