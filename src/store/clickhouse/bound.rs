//! Values bound into a query: the crate escapes them, so nothing is formatted into SQL.

use crate::model::MinuteRange;
use crate::store::Instances;

/// One value for a `?` of a statement.
#[derive(Debug, Clone)]
pub(super) enum Bound {
    Text(String),
    Number(u64),
    /// An array of (minute, instance) tuples, for `(bucket, instance) IN ?` (never empty: an
    /// empty array has no tuple type).
    Pairs(Vec<(i64, u32)>),
}

impl Bound {
    /// A minute (never negative in a stored row: a negative bound reads as 0).
    pub(super) fn minute(minute: i64) -> Bound {
        Bound::Number(u64::try_from(minute.max(0)).unwrap_or(0))
    }
}

/// `sql` with `binds` bound in order.
pub(super) fn bound_query(
    client: &clickhouse::Client,
    sql: &str,
    binds: Vec<Bound>,
) -> clickhouse::query::Query {
    let mut query = client.query(sql);
    for bound in binds {
        query = match bound {
            Bound::Text(text) => query.bind(text),
            Bound::Number(number) => query.bind(number),
            Bound::Pairs(pairs) => query.bind(pairs),
        };
    }
    query
}

/// The condition on `column` for `range` (`column >= ? AND column < ?`), then on `instances`.
pub(super) fn rollup_condition(
    column: &str,
    range: MinuteRange,
    instances: Instances,
) -> (String, Vec<Bound>) {
    let mut condition = format!("{column} >= ? AND {column} < ?");
    let mut binds = vec![
        Bound::minute(range.from().get()),
        Bound::minute(range.to().get()),
    ];
    match instances {
        Instances::AllBut(Some(instance)) => {
            condition.push_str(" AND instance != ?");
            binds.push(Bound::Number(u64::from(instance)));
        }
        Instances::AllBut(None) => {}
        Instances::Only(instance) => {
            condition.push_str(" AND instance = ?");
            binds.push(Bound::Number(u64::from(instance)));
        }
    }
    (condition, binds)
}
