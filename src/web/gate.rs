//! What every request to an HTTP port passes first: authentication (when configured), the body
//! deadline (see `body_deadline`), `HEAD` served as `GET` without its body, and, on the UI
//! port, the security headers on every response, refusals included. One middleware for both
//! ports; which rules apply comes from the [`Gate`] the server was started with.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage as _, HttpResponse};

use crate::auth::{IngestAuth, UiAuth};
use crate::body_deadline::{BodyDeadline, TimedPayload};

type PayloadStream = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<bytes::Bytes, actix_web::error::PayloadError>>>,
>;

/// The rules of one port.
#[derive(Debug, Clone)]
pub enum Gate {
    Ingest(IngestAuth),
    Ui(UiAuth),
}

/// A port's rules and where refusals are counted.
#[derive(Debug, Clone)]
pub struct Guarded {
    pub gate: Gate,
    pub telemetry: std::sync::Arc<crate::telemetry::Telemetry>,
    pub body_deadline: BodyDeadline,
}

/// Scripts only from this origin (the vendored htmx and the pan/zoom script), no plugins, no
/// framing; styles may be inline because the trace waterfall positions its bars with them.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

fn header<'a>(request: &'a ServiceRequest, name: &str) -> Option<&'a str> {
    request
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
}

fn refuse(request: ServiceRequest, gate: &Gate) -> ServiceResponse<BoxBody> {
    let (message, challenge) = match gate {
        Gate::Ingest(_) => (
            "missing or wrong credentials: send `Authorization: Bearer TOKEN` or `x-service-auth: TOKEN`",
            "Bearer realm=\"cartograph-ingest\"",
        ),
        Gate::Ui(auth) if auth.has_users() => (
            "missing or wrong credentials: sign in, or send `Authorization: Bearer TOKEN`",
            "Basic realm=\"Cartograph\", charset=\"UTF-8\"",
        ),
        Gate::Ui(_) => (
            "missing or wrong credentials: send `Authorization: Bearer TOKEN`",
            "Bearer realm=\"Cartograph\"",
        ),
    };
    let response = HttpResponse::Unauthorized()
        .insert_header((header::WWW_AUTHENTICATE, challenge))
        .json(serde_json::json!({ "error": message }));
    request.into_response(response)
}

/// The middleware: refuses what the gate does not let through, puts the body under its
/// deadline, serves `HEAD` as `GET`, adds the UI's headers.
pub async fn guard(
    guarded: Guarded,
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let gate = guarded.gate;
    // Requests without a body (most of the UI's) need no clock.
    let payload = request.take_payload();
    if matches!(payload, actix_web::dev::Payload::None) {
        request.set_payload(payload);
    } else {
        let clock = guarded.body_deadline.start();
        let timed: PayloadStream = Box::pin(TimedPayload::new(payload, clock));
        request.set_payload(timed.into());
    }
    // actix-http decided at parsing that a HEAD response carries no body; routes need only GET.
    if request.method() == Method::HEAD {
        request.head_mut().method = Method::GET;
    }
    let allowed = match &gate {
        Gate::Ingest(auth) => {
            let tenancy = auth.admit(
                header(&request, "authorization"),
                header(&request, "x-service-auth"),
            );
            let admitted = tenancy.is_some();
            if let Some(tenancy) = tenancy {
                actix_web::HttpMessage::extensions_mut(&request).insert(tenancy);
            }
            admitted
        }
        // Liveness stays open for orchestrators; everything else, readiness included, is not.
        Gate::Ui(auth) => {
            request.path() == "/health/live" || auth.allows(header(&request, "authorization"))
        }
    };
    let mut response = if allowed {
        next.call(request).await?.map_into_boxed_body()
    } else {
        guarded.telemetry.record_unauthenticated();
        refuse(request, &gate)
    };
    if matches!(gate, Gate::Ui(_)) {
        let headers = response.headers_mut();
        for (name, value) in [
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    Ok(response)
}
