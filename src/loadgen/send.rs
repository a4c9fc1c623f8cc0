//! Sends pre-encoded export requests: over gRPC through a pass-through codec (no re-encoding),
//! or as OTLP/HTTP protobuf bodies. Each send returns how it ended, for the report.

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message as _;
use tonic::codegen::http::uri::PathAndQuery;

use crate::ingest::grpc::RawCodec;
use tonic::transport::{Channel, Endpoint};

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted, with the spans the server said it rejected (`partial_success`).
    Accepted { num_rejected_spans: u64 },
    /// Refused whole: a gRPC code name or an HTTP status.
    Refused(String),
    /// No answer: connection or transport error.
    Failed(String),
}

fn rejected_spans(body: &[u8]) -> u64 {
    ExportTraceServiceResponse::decode(body)
        .ok()
        .and_then(|response| response.partial_success)
        .map_or(0, |partial| {
            u64::try_from(partial.rejected_spans).unwrap_or(0)
        })
}

/// A connection to an OTLP endpoint.
#[derive(Debug, Clone)]
pub enum Sender {
    Grpc(tonic::client::Grpc<Channel>),
    Http {
        client: reqwest::Client,
        url: String,
    },
}

impl Sender {
    /// `endpoint` is the base URL, e.g. `http://127.0.0.1:4317` (gRPC) or
    /// `http://127.0.0.1:4318` (HTTP; `/v1/traces` is appended).
    pub async fn connect(endpoint: &str, is_grpc: bool) -> Result<Self, String> {
        if is_grpc {
            let channel = Endpoint::from_shared(endpoint.to_owned())
                .map_err(|err| format!("invalid endpoint {endpoint:?}: {err}"))?
                .connect()
                .await
                .map_err(|err| format!("cannot connect to {endpoint}: {err}"))?;
            return Ok(Sender::Grpc(
                tonic::client::Grpc::new(channel).max_decoding_message_size(usize::MAX),
            ));
        }
        crate::tls::install_provider();
        let client = reqwest::Client::builder()
            .build()
            .map_err(|err| format!("http client: {err}"))?;
        Ok(Sender::Http {
            client,
            url: format!("{}/v1/traces", endpoint.trim_end_matches('/')),
        })
    }

    pub async fn send(&mut self, body: Vec<u8>) -> Outcome {
        match self {
            Sender::Grpc(grpc) => {
                if let Err(err) = grpc.ready().await {
                    return Outcome::Failed(err.to_string());
                }
                let path = PathAndQuery::from_static(EXPORT_PATH);
                match grpc
                    .unary(tonic::Request::new(Bytes::from(body)), path, RawCodec)
                    .await
                {
                    Ok(response) => Outcome::Accepted {
                        num_rejected_spans: rejected_spans(response.get_ref()),
                    },
                    Err(status) if status.code() == tonic::Code::Unknown => {
                        Outcome::Failed(status.message().to_owned())
                    }
                    Err(status) => Outcome::Refused(format!("{:?}", status.code())),
                }
            }
            Sender::Http { client, url } => {
                let sent = client
                    .post(url.as_str())
                    .header("content-type", "application/x-protobuf")
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status().is_success() => {
                        let body = response.bytes().await.unwrap_or_default();
                        Outcome::Accepted {
                            num_rejected_spans: rejected_spans(&body),
                        }
                    }
                    Ok(response) => Outcome::Refused(response.status().as_u16().to_string()),
                    Err(err) => Outcome::Failed(err.to_string()),
                }
            }
        }
    }
}
