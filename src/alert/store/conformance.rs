//! Conformance cases of [`AlertStore`]: state and outbox committed together, per-receiver
//! order, retries, bounds, silences.

use super::{AlertStore, Attempt, DeliveryState, NewDelivery, Outcome};
use crate::alert::silence::{Matcher, Silence};

const T0: u64 = 1_700_000_000_000_000_000;
const SEC: u64 = 1_000_000_000;

fn new(receiver: &str, body: &str) -> NewDelivery {
    NewDelivery {
        receiver: receiver.to_owned(),
        url: format!("http://127.0.0.1:9/{receiver}"),
        body: body.to_owned(),
        idempotency_key: format!("key-{body}"),
    }
}

fn attempt(delivery_id: i64, at: u64, status: Option<u16>) -> Attempt {
    Attempt {
        delivery_id,
        receiver: "ops".to_owned(),
        at_unix_nano: at,
        status,
        latency_ms: 3,
        error: status.is_none().then(|| "connection refused".to_owned()),
    }
}

fn bodies(store: &impl AlertStore, at: u64) -> Vec<String> {
    store
        .due_deliveries(at, 100)
        .expect("due")
        .into_iter()
        .map(|delivery| delivery.body)
        .collect()
}

pub fn alert_state_and_outbox_commit_together((store, _guard): (impl AlertStore, impl Sized)) {
    assert_eq!(store.load_state().expect("load"), None);
    assert_eq!(store.next_due().expect("next"), None);
    let failed = store
        .commit(
            "{\"v\":1}",
            &[new("ops", "a1"), new("ops", "a2"), new("dev", "b1")],
            T0,
            100,
        )
        .expect("commit");
    assert_eq!(failed, 0);
    assert_eq!(
        store.load_state().expect("load").as_deref(),
        Some("{\"v\":1}")
    );
    store
        .commit("{\"v\":2}", &[], T0 + SEC, 100)
        .expect("commit");
    assert_eq!(
        store.load_state().expect("load").as_deref(),
        Some("{\"v\":2}")
    );
    assert_eq!(bodies(&store, T0), ["a1", "b1"], "oldest per receiver");
    assert!(
        bodies(&store, T0 - 1).is_empty(),
        "not due before it was queued"
    );
    assert_eq!(store.next_due().expect("next"), Some(T0));
    let due = store.due_deliveries(T0, 100).expect("due");
    assert_eq!(due[0].state, DeliveryState::Pending);
    assert_eq!(due[0].idempotency_key, "key-a1");
    assert_eq!(due[0].url, "http://127.0.0.1:9/ops");
}

pub fn alert_outbox_retries_keep_receiver_order((store, _guard): (impl AlertStore, impl Sized)) {
    store
        .commit(
            "{}",
            &[new("ops", "a1"), new("ops", "a2"), new("dev", "b1")],
            T0,
            100,
        )
        .expect("commit");
    let a1 = store.due_deliveries(T0, 100).expect("due")[0].id;
    store
        .record_attempt(&attempt(a1, T0, None), Outcome::RetryAt(T0 + 10 * SEC), 100)
        .expect("record");
    assert_eq!(bodies(&store, T0 + SEC), ["b1"], "a2 waits behind a1");
    assert_eq!(bodies(&store, T0 + 10 * SEC), ["a1", "b1"]);
    store
        .record_attempt(
            &attempt(a1, T0 + 10 * SEC, Some(200)),
            Outcome::Delivered,
            100,
        )
        .expect("record");
    assert_eq!(bodies(&store, T0 + 10 * SEC), ["a2", "b1"]);
    let listed = store.deliveries(10).expect("deliveries");
    let first = listed
        .iter()
        .find(|delivery| delivery.id == a1)
        .expect("a1");
    assert_eq!(
        (first.state, first.num_attempts, first.last_status),
        (DeliveryState::Delivered, 2, Some(200))
    );
    assert_eq!(first.finished_at_unix_nano, Some(T0 + 10 * SEC));
    let attempts = store.attempts(10).expect("attempts");
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].status, Some(200), "newest first");
    assert_eq!(attempts[1].error.as_deref(), Some("connection refused"));
}

pub fn alert_outbox_and_log_are_bounded((store, _guard): (impl AlertStore, impl Sized)) {
    let many: Vec<NewDelivery> = (0..5).map(|n| new("ops", &format!("n{n}"))).collect();
    assert_eq!(store.commit("{}", &many, T0, 3).expect("commit"), 2);
    let listed = store.deliveries(10).expect("deliveries");
    let failed: Vec<&str> = listed
        .iter()
        .filter(|delivery| delivery.state == DeliveryState::Failed)
        .map(|delivery| delivery.body.as_str())
        .collect();
    assert_eq!(failed, ["n1", "n0"], "the oldest are given up");
    assert_eq!(bodies(&store, T0), ["n2"]);
    for round in 0..6 {
        let id = store.due_deliveries(T0 + 10 * SEC, 1).expect("due")[0].id;
        store
            .record_attempt(&attempt(id, T0 + round, Some(503)), Outcome::RetryAt(T0), 4)
            .expect("record");
    }
    assert_eq!(store.attempts(100).expect("attempts").len(), 4);
}

pub fn alert_silences_round_trip((store, _guard): (impl AlertStore, impl Sized)) {
    let silence = |id: &str, ends: u64| Silence {
        id: id.to_owned(),
        matchers: vec![Matcher {
            name: "target".to_owned(),
            value: "'; DROP TABLE silences; -- <b>\u{0}".to_owned(),
            is_regex: false,
            is_equal: true,
        }],
        starts_at_unix_nano: T0,
        ends_at_unix_nano: ends,
        created_by: "ana \"ops\"".to_owned(),
        comment: "deploy ✓".to_owned(),
        updated_at_unix_nano: ends,
    };
    assert!(store.silences().expect("silences").is_empty());
    store.put_silence(&silence("a", T0 + SEC)).expect("put");
    store.put_silence(&silence("b", T0 + 2 * SEC)).expect("put");
    let mut expired = silence("a", T0 + 3 * SEC);
    expired.comment = "expired early".to_owned();
    store.put_silence(&expired).expect("replace");
    let kept = store.silences().expect("silences");
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[0], expired, "replaced by id, newest first");
    assert_eq!(kept[1], silence("b", T0 + 2 * SEC));
}

/// Expands one `#[test]` per alert store case; `$make` returns a fresh, empty store and
/// whatever must live as long as it (a temporary directory).
#[macro_export]
macro_rules! alert_store_conformance_tests {
    ($make:expr) => {
        $crate::alert_store_conformance_tests!(@cases $make;
            alert_state_and_outbox_commit_together,
            alert_outbox_retries_keep_receiver_order,
            alert_outbox_and_log_are_bounded,
            alert_silences_round_trip,
        );
    };
    (@cases $make:expr; $($case:ident),+ $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::alert::store::conformance::$case(($make)());
            }
        )+
    };
}
