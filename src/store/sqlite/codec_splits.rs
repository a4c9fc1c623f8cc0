//! An edge's operation splits: the list that ends an edge stats blob (layouts 2 and 3), and
//! the blob of ClickHouse's `operations` column, which holds the same list apart so that a
//! read of the map's totals need not read it.

use crate::model::graph::SplitSums;
use crate::model::graph::{MAX_OPERATION_SPLITS, OperationSplit};
use crate::store::StoreError;

use super::codec::{Decoder, corrupt, put_str, put_varint};
use super::codec_sketch::{SketchForm, add_sketch, put_sketch, sketch};

/// The only layout of a splits blob so far (flagged sketches).
const SPLITS_LAYOUT_V1: u8 = 1;

/// Appends the list: its length, then each split.
pub(super) fn put_splits(buf: &mut Vec<u8>, splits: &[OperationSplit]) {
    put_varint(buf, splits.len() as u64);
    for split in splits {
        put_str(buf, &split.caller);
        put_str(buf, &split.callee);
        put_varint(buf, split.num_requests);
        put_varint(buf, split.num_errors);
        put_sketch(buf, &split.latency);
    }
}

/// One split as read, but for its latency sketch, which follows in the decoder.
struct SplitHead<'a> {
    caller: &'a str,
    callee: &'a str,
    num_requests: u64,
    num_errors: u64,
}

/// Walks the list, checking its bound and order: each split's head is given to `split`,
/// which reads its sketch. Returns how many there were.
fn each_split<'a>(
    decoder: &mut Decoder<'a>,
    mut split: impl FnMut(SplitHead<'a>, &mut Decoder<'a>) -> Result<(), StoreError>,
) -> Result<usize, StoreError> {
    let count = decoder.count()?;
    if count > MAX_OPERATION_SPLITS + 1 {
        return Err(corrupt("more operation splits than an edge keeps"));
    }
    let mut last: Option<(&str, &str)> = None;
    for _ in 0..count {
        let (caller, callee) = (decoder.str()?, decoder.str()?);
        if last.is_some_and(|last| last >= (caller, callee)) {
            return Err(corrupt("operation splits out of order"));
        }
        last = Some((caller, callee));
        let head = SplitHead {
            caller,
            callee,
            num_requests: decoder.varint()?,
            num_errors: decoder.varint()?,
        };
        split(head, decoder)?;
    }
    Ok(count)
}

/// Reads the list, checking its bound and order.
pub(super) fn splits(
    decoder: &mut Decoder<'_>,
    form: SketchForm,
) -> Result<Vec<OperationSplit>, StoreError> {
    let mut splits = Vec::new();
    each_split(decoder, |head, decoder| {
        splits.push(OperationSplit {
            caller: head.caller.to_owned(),
            callee: head.callee.to_owned(),
            num_requests: head.num_requests,
            num_errors: head.num_errors,
            latency: sketch(decoder, form)?,
        });
        Ok(())
    })?;
    Ok(splits)
}

/// Adds the list to `sums`, checking it as [`splits`] does; returns how many splits it held.
pub(super) fn add_splits(
    decoder: &mut Decoder<'_>,
    form: SketchForm,
    sums: &mut SplitSums,
) -> Result<usize, StoreError> {
    each_split(decoder, |head, decoder| {
        let latency = sums.add(head.caller, head.callee, head.num_requests, head.num_errors);
        add_sketch(decoder, form, latency)
    })
}

/// A splits blob: empty when there are none.
pub(crate) fn encode_splits(splits: &[OperationSplit]) -> Vec<u8> {
    let mut buf = Vec::new();
    if !splits.is_empty() {
        buf.push(SPLITS_LAYOUT_V1);
        put_splits(&mut buf, splits);
    }
    buf
}

/// Reads a splits blob; an empty one (no splits, or a row written before the column) is none.
pub(crate) fn decode_splits(blob: &[u8]) -> Result<Vec<OperationSplit>, StoreError> {
    let mut splits = Vec::new();
    read_blob(blob, |decoder| {
        splits = self::splits(decoder, SketchForm::Flagged)?;
        Ok(())
    })?;
    Ok(splits)
}

/// Adds a splits blob to `sums` (in the order [`decode_splits`] reads it).
pub(crate) fn add_splits_blob(blob: &[u8], sums: &mut SplitSums) -> Result<(), StoreError> {
    read_blob(blob, |decoder| {
        add_splits(decoder, SketchForm::Flagged, sums).map(|_| ())
    })
}

/// Checks a non-empty blob's layout, lets `read` read its list, and refuses what follows.
fn read_blob(
    blob: &[u8],
    read: impl FnOnce(&mut Decoder<'_>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    if blob.is_empty() {
        return Ok(());
    }
    let mut decoder = Decoder::new(blob);
    if decoder.u8()? != SPLITS_LAYOUT_V1 {
        return Err(corrupt("unknown operation splits layout"));
    }
    read(&mut decoder)?;
    if !decoder.is_empty() {
        return Err(corrupt("operation splits followed by stray bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::rollup_fixtures::spread_sketch;

    fn split(caller: &str, callee: &str, seed: u64) -> OperationSplit {
        OperationSplit {
            caller: caller.to_owned(),
            callee: callee.to_owned(),
            num_requests: 10 + seed,
            num_errors: seed,
            latency: spread_sketch(seed, 10 + seed),
        }
    }

    #[test]
    fn a_blob_round_trips_and_damage_is_reported() {
        assert!(encode_splits(&[]).is_empty());
        assert_eq!(decode_splits(&[]).expect("none"), Vec::new());
        let splits = vec![split("", "GET /a", 1), split("GET /x", "\u{0}<b>", 2)];
        let blob = encode_splits(&splits);
        assert_eq!(decode_splits(&blob).expect("splits"), splits);
        for len in 1..blob.len() {
            assert!(decode_splits(&blob[..len]).is_err(), "{len}");
        }
        let mut stray = blob.clone();
        stray.push(0);
        assert!(decode_splits(&stray).is_err());
        let mut layout = blob.clone();
        layout[0] = 9;
        assert!(decode_splits(&layout).is_err());
        let unordered = encode_splits(&[split("b", "", 1), split("a", "", 2)]);
        assert!(decode_splits(&unordered).is_err());
    }
}
