//! Cases for metric points: exact round trip of every type, filters, order and limit.

use crate::model::MetricPoint;
use crate::store::{MetricQuery, MetricReader, StoreWriter, TraceReader};

use super::fixtures::{
    BASE_NANOS, HOUR_NANOS, MINUTE_NANOS, all_points, point_batch, points_of_every_type, resource,
};

fn by_time_then_name(mut points: Vec<MetricPoint>) -> Vec<MetricPoint> {
    points.sort_by(|left, right| {
        (left.time_unix_nano, &left.name).cmp(&(right.time_unix_nano, &right.name))
    });
    points
}

/// Points of every type, at ordinary and extreme times, come back exactly.
pub fn metric_round_trip<W: StoreWriter, R: TraceReader + MetricReader>(
    (mut writer, reader): (W, R),
) {
    let orders = resource("orders");
    let billing = resource("billing");
    let mut points = points_of_every_type(&orders, "orders", BASE_NANOS + 5 * MINUTE_NANOS);
    points.extend(points_of_every_type(
        &billing,
        "billing",
        BASE_NANOS + 2 * HOUR_NANOS,
    ));
    points.extend(points_of_every_type(&billing, "edge", 0));
    points.extend(points_of_every_type(&orders, "edge", u64::MAX - 1));
    writer
        .write_batch(&point_batch(points.clone()))
        .expect("write_batch");

    let stored = reader
        .metric_points(&all_points(1000))
        .expect("metric_points");
    assert_eq!(stored, by_time_then_name(points));
}

/// Name, service and time filters; `from` inclusive, `to` exclusive; ordered by time then name.
pub fn metric_filters_and_order<W: StoreWriter, R: TraceReader + MetricReader>(
    (mut writer, reader): (W, R),
) {
    let orders = resource("orders");
    let billing = resource("billing");
    let at = |minutes: u64| BASE_NANOS + minutes * MINUTE_NANOS;
    let mut points = points_of_every_type(&orders, "orders", at(1));
    points.extend(points_of_every_type(&orders, "orders", at(2)));
    points.extend(points_of_every_type(&billing, "billing", at(2)));
    points.extend(points_of_every_type(&billing, "billing", at(180)));
    // Written newest first: the order of results must not depend on the order of writes.
    points.reverse();
    writer
        .write_batch(&point_batch(points.clone()))
        .expect("write_batch");
    let query = |edit: &dyn Fn(&mut MetricQuery)| {
        let mut query = all_points(1000);
        edit(&mut query);
        reader.metric_points(&query).expect("metric_points")
    };
    let expect = |keep: &dyn Fn(&MetricPoint) -> bool| {
        by_time_then_name(points.iter().filter(|point| keep(point)).cloned().collect())
    };

    assert_eq!(query(&|_| {}), expect(&|_| true));
    assert_eq!(
        query(&|q| q.name = Some("orders.sum".into())),
        expect(&|p| p.name == "orders.sum")
    );
    assert_eq!(query(&|q| q.name = Some("orders.sum".into())).len(), 2);
    assert_eq!(
        query(&|q| q.service = Some("billing".into())),
        expect(&|p| p.service_name() == "billing")
    );
    assert_eq!(
        query(&|q| {
            q.from_unix_nano = at(2);
            q.to_unix_nano = at(180);
        }),
        expect(&|p| p.time_unix_nano == at(2))
    );
    assert_eq!(
        query(&|q| {
            q.service = Some("orders".into());
            q.from_unix_nano = at(2);
        }),
        expect(&|p| p.service_name() == "orders" && p.time_unix_nano == at(2))
    );
    assert_eq!(
        query(&|q| {
            q.name = Some("billing.histogram".into());
            q.service = Some("orders".into());
        }),
        []
    );
    assert_eq!(query(&|q| q.limit = 3), expect(&|_| true)[..3]);
    assert_eq!(query(&|q| q.limit = 0), []);
    assert_eq!(query(&|q| q.to_unix_nano = q.from_unix_nano), []);
}
