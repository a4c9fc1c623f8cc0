//! How values sit in SQLite columns: nanosecond times biased into `i64` so that every `u64`
//! orders correctly, and BLOB columns read as bytes (anything else is corruption).

use rusqlite::Row;
use rusqlite::types::ValueRef;

use crate::store::StoreError;

const SIGN_BIT: u64 = 1 << 63;

/// Maps `u64` onto `i64` preserving order: `0` becomes `i64::MIN`, `u64::MAX` becomes `i64::MAX`.
pub(super) fn nanos_to_sql(nanos: u64) -> i64 {
    // Flipping the top bit is the order-preserving bijection; the cast is a bit reinterpretation.
    (nanos ^ SIGN_BIT) as i64
}

pub(super) fn nanos_from_sql(value: i64) -> u64 {
    (value as u64) ^ SIGN_BIT
}

/// A BLOB column; anything else is corruption.
pub(super) fn blob<'row>(row: &'row Row<'_>, index: usize) -> Result<&'row [u8], StoreError> {
    opt_blob(row, index)?.ok_or_else(|| StoreError::Corrupt(format!("column {index} is NULL")))
}

/// A BLOB column that may be NULL.
pub(super) fn opt_blob<'row>(
    row: &'row Row<'_>,
    index: usize,
) -> Result<Option<&'row [u8]>, StoreError> {
    match row.get_ref(index)? {
        ValueRef::Blob(bytes) => Ok(Some(bytes)),
        ValueRef::Null => Ok(None),
        other => Err(StoreError::Corrupt(format!(
            "column {index} holds {:?}, not a blob",
            other.data_type()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanos_bias_keeps_order_and_round_trips() {
        let values = [
            0,
            1,
            i64::MAX as u64,
            (i64::MAX as u64) + 1,
            u64::MAX - 1,
            u64::MAX,
        ];
        for pair in values.windows(2) {
            assert!(nanos_to_sql(pair[0]) < nanos_to_sql(pair[1]));
        }
        for value in values {
            assert_eq!(nanos_from_sql(nanos_to_sql(value)), value);
        }
    }
}
