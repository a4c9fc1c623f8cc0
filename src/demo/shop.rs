//! The demo shop's traces, produced through the real OpenTelemetry SDK: one tracer per
//! service (each its own resource), parent/child through contexts, Kafka through a parent
//! (inventory) and through links (notifications' batches), semantic-convention attributes,
//! explicit timestamps so simulated latencies need no sleeping.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{
    Link, SpanContext, SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

use super::world::{Breaker, ConsumerGroup, Message, NUM_PARTITIONS, Phase, Rng};

pub const TOPIC: &str = "orders.created";
/// Orders writes an audit trail nobody consumes yet (the audit finds it orphaned).
pub const AUDIT_TOPIC: &str = "orders.audit";
pub const SERVICES: [&str; 6] = [
    "gateway",
    "users",
    "orders",
    "payments",
    "inventory",
    "notifications",
];
const SHORT_CIRCUIT_MESSAGE: &str = "io.github.resilience4j.circuitbreaker.CallNotPermittedException: \
     CircuitBreaker 'payments' is OPEN and does not permit further calls";
const MS: u64 = 1_000_000;

/// The tracers of the shop's services.
pub struct Tracers {
    gateway: SdkTracer,
    users: SdkTracer,
    orders: SdkTracer,
    payments: SdkTracer,
    inventory: SdkTracer,
    notifications: SdkTracer,
}

impl Tracers {
    /// `providers` in the order of [`SERVICES`].
    pub fn new(providers: &[SdkTracerProvider]) -> Self {
        let tracer = |index: usize| providers[index].tracer(format!("demo.{}", SERVICES[index]));
        Self {
            gateway: tracer(0),
            users: tracer(1),
            orders: tracer(2),
            payments: tracer(3),
            inventory: tracer(4),
            notifications: tracer(5),
        }
    }
}

fn time(unix_nano: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(unix_nano)
}

/// Starts a span under `parent`; the returned context carries it (end it with [`finish`]).
fn start(
    tracer: &SdkTracer,
    parent: &Context,
    name: impl Into<Cow<'static, str>>,
    kind: SpanKind,
    start_unix_nano: u64,
    attributes: Vec<KeyValue>,
) -> Context {
    let span = tracer
        .span_builder(name)
        .with_kind(kind)
        .with_start_time(time(start_unix_nano))
        .with_attributes(attributes)
        .start_with_context(tracer, parent);
    parent.with_span(span)
}

fn finish(cx: &Context, end_unix_nano: u64, error_opt: Option<&str>) {
    let span = cx.span();
    if let Some(message) = error_opt {
        span.set_status(Status::error(message.to_owned()));
    }
    span.end_with_timestamp(time(end_unix_nano));
}

fn http_client(
    peer: &'static str,
    method: &'static str,
    path: String,
    status: i64,
) -> Vec<KeyValue> {
    vec![
        KeyValue::new("http.request.method", method),
        KeyValue::new("url.full", format!("http://{peer}:8080{path}")),
        KeyValue::new("server.address", peer),
        KeyValue::new("server.port", 8080_i64),
        KeyValue::new("peer.service", peer),
        KeyValue::new("http.response.status_code", status),
    ]
}

fn http_server(
    method: &'static str,
    route: &'static str,
    path: String,
    status: i64,
) -> Vec<KeyValue> {
    vec![
        KeyValue::new("http.request.method", method),
        KeyValue::new("http.route", route),
        KeyValue::new("url.path", path),
        KeyValue::new("http.response.status_code", status),
    ]
}

fn database(
    system: &'static str,
    host: &'static str,
    port: i64,
    namespace: &'static str,
    operation: &'static str,
    query: &'static str,
) -> Vec<KeyValue> {
    vec![
        KeyValue::new("db.system.name", system),
        KeyValue::new("db.namespace", namespace),
        KeyValue::new("db.operation.name", operation),
        KeyValue::new("db.query.text", query),
        KeyValue::new("server.address", host),
        KeyValue::new("server.port", port),
    ]
}

fn kafka(topic: &'static str, operation: &'static str, partition: usize) -> Vec<KeyValue> {
    vec![
        KeyValue::new("messaging.system", "kafka"),
        KeyValue::new("messaging.destination.name", topic),
        KeyValue::new("messaging.operation.type", operation),
        KeyValue::new("messaging.destination.partition.id", partition.to_string()),
    ]
}

/// What one tick of the shop needs.
pub struct Shop {
    pub tracers: Tracers,
    pub rng: Rng,
    pub breaker: Breaker,
    pub inventory: ConsumerGroup<SpanContext>,
    pub notifications: ConsumerGroup<SpanContext>,
    pub num_orders: u64,
}

impl Shop {
    /// One order through the shop, as it happens at `now` (schedule time `schedule_secs`).
    pub fn place_order(&mut self, now: u64, schedule_secs: f64) {
        let phase = Phase::at(schedule_secs);
        self.num_orders += 1;
        let order_no = self.num_orders;
        let user_no = self.rng.next_u64() % 5_000;
        let begin = now.saturating_sub(2_000 * MS);
        let mut attributes = http_server("POST", "/api/orders", "/api/orders".to_owned(), 200);
        attributes.push(KeyValue::new(
            "x-correlation-id",
            format!("demo-{order_no:08}"),
        ));
        let gateway = start(
            &self.tracers.gateway,
            &Context::new(),
            "POST /api/orders",
            SpanKind::Server,
            begin,
            attributes,
        );
        let users_nanos = self.look_up_user(&gateway, begin, user_no, phase);
        let (end, paid) = self.take_order(
            &gateway,
            begin + 3 * MS + users_nanos,
            order_no,
            schedule_secs,
            phase,
        );
        let error = (!paid).then_some("payment failed; order cancelled");
        finish(&gateway, end + MS, error);
    }

    /// gateway → users (REST), users → redis, sometimes users → notifications. How long the
    /// users service took.
    fn look_up_user(&mut self, gateway: &Context, begin: u64, user_no: u64, phase: Phase) -> u64 {
        let users_median = if phase.latency_spike { 160.0 } else { 12.0 };
        let users_nanos = self.rng.latency_nanos(users_median);
        let path = format!("/v2/users/{user_no}");
        let t = &self.tracers;
        let call = start(
            &t.gateway,
            gateway,
            "GET",
            SpanKind::Client,
            begin + MS,
            http_client("users", "GET", path.clone(), 200),
        );
        let server = start(
            &t.users,
            &call,
            "GET /v2/users/{id}",
            SpanKind::Server,
            begin + MS + MS / 2,
            http_server("GET", "/v2/users/{id}", path, 200),
        );
        let cache = start(
            &t.users,
            &server,
            "GET",
            SpanKind::Client,
            begin + 2 * MS,
            database("redis", "users-cache", 6379, "0", "GET", "GET user:*"),
        );
        finish(&cache, begin + 2 * MS + self.rng.latency_nanos(0.4), None);
        if self.rng.chance(0.1) {
            let at = begin + 3 * MS;
            self.notify(&server, at, "POST", "/notifications/profile-viewed");
        }
        finish(&server, begin + MS + users_nanos, None);
        finish(&call, begin + 2 * MS + users_nanos, None);
        users_nanos
    }

    /// gateway → orders (gRPC) from `grpc_start`: insert, pay, then publish the order or
    /// compensate. When the gRPC call ended on the orders side, and whether it was paid.
    fn take_order(
        &mut self,
        gateway: &Context,
        grpc_start: u64,
        order_no: u64,
        schedule_secs: f64,
        phase: Phase,
    ) -> (u64, bool) {
        let t = &self.tracers;
        let grpc = vec![
            KeyValue::new("rpc.system", "grpc"),
            KeyValue::new("rpc.service", "shop.OrderService"),
            KeyValue::new("rpc.method", "PlaceOrder"),
            KeyValue::new("server.address", "orders"),
            KeyValue::new("server.port", 50051_i64),
        ];
        let call = start(
            &t.gateway,
            gateway,
            "shop.OrderService/PlaceOrder",
            SpanKind::Client,
            grpc_start,
            grpc.clone(),
        );
        let orders = start(
            &t.orders,
            &call,
            "shop.OrderService/PlaceOrder",
            SpanKind::Server,
            grpc_start + MS / 2,
            grpc,
        );
        let mut cursor = grpc_start + MS;
        let insert = start(
            &t.orders,
            &orders,
            "INSERT orders",
            SpanKind::Client,
            cursor,
            database(
                "postgresql",
                "orders-db",
                5432,
                "orders",
                "INSERT",
                "INSERT INTO orders (id, user_id, total) VALUES ($1, $2, $3)",
            ),
        );
        cursor += self.rng.latency_nanos(3.0);
        finish(&insert, cursor, None);
        let audit = start(
            &t.orders,
            &orders,
            format!("send {AUDIT_TOPIC}"),
            SpanKind::Producer,
            cursor,
            kafka(AUDIT_TOPIC, "send", (order_no as usize) % NUM_PARTITIONS),
        );
        cursor += self.rng.latency_nanos(1.0);
        finish(&audit, cursor, None);

        let paid = self.pay(&orders, &mut cursor, schedule_secs, phase);
        if paid {
            let partition = (order_no as usize) % NUM_PARTITIONS;
            self.publish(&orders, cursor, partition);
            cursor += MS;
        } else {
            self.compensate(&orders, &mut cursor, order_no);
        }
        let error = (!paid).then_some("payment failed; order cancelled");
        finish(&orders, cursor, error);
        finish(&call, cursor + MS / 2, error);
        (cursor, paid)
    }

    /// orders → payments behind the breaker, payments → the external provider. Whether the
    /// payment went through.
    fn pay(
        &mut self,
        orders: &Context,
        cursor: &mut u64,
        schedule_secs: f64,
        phase: Phase,
    ) -> bool {
        let t = &self.tracers;
        let path = "/payments".to_owned();
        if !self.breaker.permits(schedule_secs) {
            let call = start(
                &t.orders,
                orders,
                "POST",
                SpanKind::Client,
                *cursor,
                http_client("payments", "POST", path, 0),
            );
            call.span().add_event(
                "exception",
                vec![
                    KeyValue::new(
                        "exception.type",
                        "io.github.resilience4j.circuitbreaker.CallNotPermittedException",
                    ),
                    KeyValue::new(
                        "exception.message",
                        "CircuitBreaker 'payments' is OPEN and does not permit further calls",
                    ),
                ],
            );
            *cursor += MS / 10;
            finish(&call, *cursor, Some(SHORT_CIRCUIT_MESSAGE));
            return false;
        }
        let fails = phase.payment_failures && self.rng.chance(0.7);
        let status = if fails { 502 } else { 201 };
        let call = start(
            &t.orders,
            orders,
            "POST",
            SpanKind::Client,
            *cursor,
            http_client("payments", "POST", path.clone(), status),
        );
        let server = start(
            &t.payments,
            &call,
            "POST /payments",
            SpanKind::Server,
            *cursor + MS / 2,
            http_server("POST", "/payments", path, status),
        );
        let provider_start = *cursor + MS;
        let provider_nanos = if fails {
            self.rng.latency_nanos(900.0)
        } else {
            self.rng.latency_nanos(120.0)
        };
        let provider = start(
            &t.payments,
            &server,
            "POST",
            SpanKind::Client,
            provider_start,
            vec![
                KeyValue::new("http.request.method", "POST"),
                KeyValue::new(
                    "url.full",
                    "https://api.payment-provider.example/v1/charges",
                ),
                KeyValue::new("server.address", "api.payment-provider.example"),
                KeyValue::new("server.port", 443_i64),
                KeyValue::new("peer.service", "payment-provider"),
                KeyValue::new(
                    "http.response.status_code",
                    if fails { 504_i64 } else { 200 },
                ),
            ],
        );
        let error = fails.then_some("payment provider timed out");
        finish(&provider, provider_start + provider_nanos, error);
        finish(&server, provider_start + provider_nanos + MS, error);
        *cursor = provider_start + provider_nanos + 2 * MS;
        finish(&call, *cursor, error);
        self.breaker.record(!fails, schedule_secs);
        !fails
    }

    /// The saga's compensations: release the stock, cancel the order.
    fn compensate(&mut self, orders: &Context, cursor: &mut u64, order_no: u64) {
        let t = &self.tracers;
        let path = format!("/reservations/{order_no}/release");
        let call = start(
            &t.orders,
            orders,
            "POST",
            SpanKind::Client,
            *cursor,
            http_client("inventory", "POST", path.clone(), 200),
        );
        let server = start(
            &t.inventory,
            &call,
            "POST /reservations/{id}/release",
            SpanKind::Server,
            *cursor + MS / 2,
            http_server("POST", "/reservations/{id}/release", path, 200),
        );
        *cursor += self.rng.latency_nanos(6.0) + MS;
        finish(&server, *cursor, None);
        finish(&call, *cursor + MS / 2, None);
        let update = start(
            &t.orders,
            orders,
            "UPDATE orders",
            SpanKind::Client,
            *cursor + MS,
            database(
                "postgresql",
                "orders-db",
                5432,
                "orders",
                "UPDATE",
                "UPDATE orders SET status = 'cancelled' WHERE id = $1",
            ),
        );
        *cursor += self.rng.latency_nanos(2.0) + MS;
        finish(&update, *cursor, None);
    }

    /// orders publishes `orders.created`; both consumer groups get the message.
    pub fn publish(&mut self, parent: &Context, at: u64, partition: usize) {
        let producer = start(
            &self.tracers.orders,
            parent,
            format!("send {TOPIC}"),
            SpanKind::Producer,
            at,
            kafka(TOPIC, "send", partition),
        );
        let end = at + self.rng.latency_nanos(1.5);
        finish(&producer, end, None);
        let context = producer.span().span_context().clone();
        for group in [&mut self.inventory, &mut self.notifications] {
            group.publish(Message {
                partition,
                produced_unix_nano: end,
                context: context.clone(),
            });
        }
    }

    /// A backlog job in orders publishing `count` extra events (the Kafka burst).
    pub fn publish_backlog(&mut self, now: u64, count: usize) {
        if count == 0 {
            return;
        }
        let root = start(
            &self.tracers.orders,
            &Context::new(),
            "republish pending orders",
            SpanKind::Internal,
            now,
            vec![],
        );
        for index in 0..count {
            self.publish(&root, now + index as u64 * MS / 10, index % NUM_PARTITIONS);
        }
        finish(&root, now + count as u64 * MS / 10 + MS, None);
    }

    /// Inventory reads an order's lines straight from orders' database: a shared database, as
    /// many shops have (the audit finds it).
    fn read_order_lines(&mut self, parent: &Context, at: u64) {
        let read = start(
            &self.tracers.inventory,
            parent,
            "SELECT order_lines",
            SpanKind::Client,
            at,
            database(
                "postgresql",
                "orders-db",
                5432,
                "orders",
                "SELECT",
                "SELECT sku, quantity FROM order_lines WHERE order_id = $1",
            ),
        );
        finish(&read, at + self.rng.latency_nanos(1.5), None);
    }

    /// Both groups consume what their capacity allows in `elapsed_secs`.
    pub fn consume(&mut self, now: u64, elapsed_secs: f64) {
        for message in self.inventory.consume(elapsed_secs) {
            let parent = Context::new().with_remote_span_context(message.context.clone());
            let start_at = now.max(message.produced_unix_nano + MS);
            let mut attributes = kafka(TOPIC, "process", message.partition);
            attributes.push(KeyValue::new("messaging.consumer.group.name", "inventory"));
            let consumer = start(
                &self.tracers.inventory,
                &parent,
                format!("process {TOPIC}"),
                SpanKind::Consumer,
                start_at,
                attributes,
            );
            self.read_order_lines(&consumer, start_at + MS / 2);
            finish(&consumer, start_at + self.rng.latency_nanos(4.0) + MS, None);
        }
        // notifications takes batches: one span linked to every message in it.
        let batch = self.notifications.consume(elapsed_secs);
        for chunk in batch.chunks(20) {
            let start_at = chunk
                .iter()
                .map(|m| m.produced_unix_nano + MS)
                .max()
                .unwrap_or(now)
                .max(now);
            let links = chunk
                .iter()
                .map(|message| Link::with_context(message.context.clone()))
                .collect();
            let mut attributes = kafka(TOPIC, "process", chunk[0].partition);
            attributes.push(KeyValue::new(
                "messaging.consumer.group.name",
                "notifications",
            ));
            attributes.push(KeyValue::new(
                "messaging.batch.message_count",
                chunk.len() as i64,
            ));
            let span = self
                .tracers
                .notifications
                .span_builder(format!("process {TOPIC}"))
                .with_kind(SpanKind::Consumer)
                .with_start_time(time(start_at))
                .with_attributes(attributes)
                .with_links(links)
                .start_with_context(&self.tracers.notifications, &Context::new());
            let consumer = Context::new().with_span(span);
            // notifications → users for the contact details: half of the accidental cycle,
            // still on v1 of the users API the gateway has left for v2.
            let path = format!("/v1/users/{}", self.rng.next_u64() % 5_000);
            let call = start(
                &self.tracers.notifications,
                &consumer,
                "GET",
                SpanKind::Client,
                start_at + MS,
                http_client("users", "GET", path.clone(), 200),
            );
            let server = start(
                &self.tracers.users,
                &call,
                "GET /v1/users/{id}",
                SpanKind::Server,
                start_at + MS + MS / 2,
                http_server("GET", "/v1/users/{id}", path, 200),
            );
            let took = self.rng.latency_nanos(5.0);
            finish(&server, start_at + MS + took, None);
            finish(&call, start_at + 2 * MS + took, None);
            finish(&consumer, start_at + 3 * MS + took, None);
        }
    }

    /// users → notifications: the other half of the accidental cycle.
    fn notify(&mut self, users: &Context, at: u64, method: &'static str, path: &'static str) {
        let call = start(
            &self.tracers.users,
            users,
            method,
            SpanKind::Client,
            at,
            http_client("notifications", method, path.to_owned(), 202),
        );
        let server = start(
            &self.tracers.notifications,
            &call,
            "POST /notifications/{kind}",
            SpanKind::Server,
            at + MS / 2,
            http_server(method, "/notifications/{kind}", path.to_owned(), 202),
        );
        let took = self.rng.latency_nanos(2.0);
        finish(&server, at + took, None);
        finish(&call, at + took + MS / 2, None);
    }
}
