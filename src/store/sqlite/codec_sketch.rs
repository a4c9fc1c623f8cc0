//! Latency sketches inside rollup stats blobs (both stores).
//!
//! Blobs written now (edge layout 4, operation layout 5) hold each sketch in the flagged form:
//! a tag (0: the empty default sketch, nothing follows), the number of buckets, each bucket as
//! twice the gap to the previous index (the first: its index) plus one when its count is 1,
//! then the count unless it is 1, all varints, then the zero count, the sum's bits and min and
//! max. Bucket indices are sorted and close together, and a minute of a quiet edge holds
//! mostly buckets of one call: most buckets take one byte. The compact form before it (edge
//! layout 3, operation layout 4) wrote gap and count always (about two bytes a bucket), the
//! postcard form before that zig-zag absolute indices (about three); both are still read. The
//! count is not stored: it is the buckets' and the zero count's sum. A sketch whose buckets
//! fill most of their span is written dense instead, when that is no longer
//! ([`super::codec_sketch_dense`]).

use crate::model::LatencySketch;
use crate::model::sketch::{MAX_BUCKET_INDEX, SketchError, SketchSum};
use crate::store::StoreError;

use super::codec::{Decoder, corrupt, put_f64, put_varint, split_varint, varint_error};
use super::codec_sketch_dense::{DENSE, dense_slots, make_dense_if_no_longer};

/// How a blob holds its sketches: fixed by the blob's layout byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SketchForm {
    /// Length-prefixed postcard of the serde form (edge layouts 1–2, operation 1–3).
    Postcard,
    /// Gaps and counts as varints (edge layout 3, operation layout 4).
    Compact,
    /// Gaps flagged when the count is 1, other counts after them (this module's header).
    Flagged,
}

const EMPTY: u8 = 0;
const BUCKETS: u8 = 1;

/// Appends `sketch` in the flagged form.
pub(super) fn put_sketch(buf: &mut Vec<u8>, sketch: &LatencySketch) {
    put_buckets_sketch(buf, sketch, SketchForm::Flagged);
}

/// Appends `sketch` in the compact form, as blobs of the previous layouts hold it (tests build
/// such blobs to check they are still read).
#[cfg(test)]
pub(super) fn put_compact_sketch(buf: &mut Vec<u8>, sketch: &LatencySketch) {
    put_buckets_sketch(buf, sketch, SketchForm::Compact);
}

fn put_buckets_sketch(buf: &mut Vec<u8>, sketch: &LatencySketch, form: SketchForm) {
    if *sketch == LatencySketch::default() {
        buf.push(EMPTY);
        return;
    }
    let start = buf.len();
    buf.push(BUCKETS);
    let buckets = sketch.buckets();
    put_varint(buf, buckets.len() as u64);
    let mut next_index = 0_i32;
    for &(index, count) in buckets {
        // Sorted, distinct and non-negative (the sketch's invariants): the gap is never negative.
        let gap = u64::from(index.abs_diff(next_index));
        if form == SketchForm::Compact {
            put_varint(buf, gap);
            put_varint(buf, count);
        } else if count == 1 {
            put_varint(buf, gap * 2 + 1);
        } else {
            put_varint(buf, gap * 2);
            put_varint(buf, count);
        }
        next_index = index + 1;
    }
    if form == SketchForm::Flagged {
        make_dense_if_no_longer(buf, start, sketch);
    }
    put_rest(buf, sketch);
}

fn put_rest(buf: &mut Vec<u8>, sketch: &LatencySketch) {
    put_varint(buf, sketch.zero_count());
    put_f64(buf, sketch.sum_nanos());
    put_varint(buf, sketch.min_nanos());
    put_varint(buf, sketch.max_nanos());
}

fn read_rest(decoder: &mut Decoder<'_>) -> Result<Rest, StoreError> {
    Ok(Rest {
        zero_count: decoder.varint()?,
        sum_nanos: decoder.f64()?,
        min_nanos: decoder.varint()?,
        max_nanos: decoder.varint()?,
    })
}

/// Reads one sketch in `form`, checking it as [`LatencySketch::from_parts`] does.
pub(super) fn sketch(
    decoder: &mut Decoder<'_>,
    form: SketchForm,
) -> Result<LatencySketch, StoreError> {
    match form {
        SketchForm::Postcard => postcard_sketch(decoder),
        SketchForm::Compact | SketchForm::Flagged => buckets_sketch(decoder, form),
    }
}

/// Reads one sketch in `form` into `sum`, bucket by bucket (checked as
/// [`LatencySketch::from_parts`] checks), without building it.
pub(super) fn add_sketch(
    decoder: &mut Decoder<'_>,
    form: SketchForm,
    sum: &mut SketchSum,
) -> Result<(), StoreError> {
    if form == SketchForm::Postcard {
        sum.add(&postcard_sketch(decoder)?);
        return Ok(());
    }
    let mut num_in_buckets = 0_u64;
    let rest = if form == SketchForm::Flagged && decoder.remaining().first() == Some(&DENSE) {
        // Added whole, not bucket by bucket.
        decoder.u8()?;
        let slots = dense_slots(decoder)?;
        num_in_buckets = sum.add_dense(slots.low, slots.width, slots.bytes);
        Some(read_rest(decoder)?)
    } else {
        bucket_parts(decoder, form, |index, count| {
            num_in_buckets = num_in_buckets.saturating_add(count);
            sum.add_bucket(index, count)
        })?
    };
    if let Some(Rest {
        zero_count,
        sum_nanos,
        min_nanos,
        max_nanos,
    }) = rest
    {
        sum.add_rest(num_in_buckets, zero_count, sum_nanos, min_nanos, max_nanos)
            .map_err(bad_sketch)?;
    }
    Ok(())
}

fn bad_sketch(err: SketchError) -> StoreError {
    StoreError::Corrupt(format!("bad latency sketch: {err}"))
}

/// What follows a compact sketch's buckets.
struct Rest {
    zero_count: u64,
    sum_nanos: f64,
    min_nanos: u64,
    max_nanos: u64,
}

fn buckets_sketch(
    decoder: &mut Decoder<'_>,
    form: SketchForm,
) -> Result<LatencySketch, StoreError> {
    let mut buckets = Vec::new();
    let rest = bucket_parts(decoder, form, |index, count| {
        buckets.push((index, count));
        Ok(())
    })?;
    let Some(rest) = rest else {
        return Ok(LatencySketch::default());
    };
    LatencySketch::from_parts(
        buckets,
        rest.zero_count,
        rest.sum_nanos,
        rest.min_nanos,
        rest.max_nanos,
    )
    .map_err(bad_sketch)
}

/// Reads a sketch in the compact or flagged form: each bucket (sorted, distinct, in range)
/// given to `bucket`, then the rest; `None` for the empty sketch's tag.
#[inline]
fn bucket_parts(
    decoder: &mut Decoder<'_>,
    form: SketchForm,
    mut bucket: impl FnMut(i32, u64) -> Result<(), SketchError>,
) -> Result<Option<Rest>, StoreError> {
    let flagged = form == SketchForm::Flagged;
    match decoder.u8()? {
        EMPTY => return Ok(None),
        BUCKETS => {}
        DENSE if flagged => {
            let slots = dense_slots(decoder)?;
            for (index, count) in slots.buckets() {
                bucket(index, count).map_err(bad_sketch)?;
            }
            return read_rest(decoder).map(Some);
        }
        _ => return Err(corrupt("bad latency sketch tag")),
    }
    // Each bucket takes two bytes at least: the count is bounded by what is left.
    let num_buckets = decoder.count()?;
    if num_buckets > MAX_BUCKET_INDEX as usize + 1 {
        return Err(corrupt("more sketch buckets than indices"));
    }
    let mut next_index = 0_u64;
    // Read from the bytes themselves: the hottest loop of a long range's totals.
    let mut bytes = decoder.remaining();
    for _ in 0..num_buckets {
        let (word, rest) = split_varint(bytes).ok_or_else(|| varint_error(bytes))?;
        let (gap, is_one) = match flagged {
            true => (word >> 1, word & 1 == 1),
            false => (word, false),
        };
        let index = next_index
            .checked_add(gap)
            .filter(|index| *index <= MAX_BUCKET_INDEX as u64)
            .ok_or_else(|| corrupt("sketch bucket index out of range"))?;
        let (count, rest) = match is_one {
            true => (1, rest),
            false => split_varint(rest).ok_or_else(|| varint_error(rest))?,
        };
        // At most MAX_BUCKET_INDEX: fits.
        bucket(index as i32, count).map_err(bad_sketch)?;
        next_index = index + 1;
        bytes = rest;
    }
    decoder.continue_at(bytes);
    read_rest(decoder).map(Some)
}

fn postcard_sketch(decoder: &mut Decoder<'_>) -> Result<LatencySketch, StoreError> {
    let bytes = decoder.bytes()?;
    if bytes.is_empty() {
        return Ok(LatencySketch::default());
    }
    match postcard::take_from_bytes(bytes) {
        Ok((sketch, [])) => Ok(sketch),
        Ok(_) => Err(corrupt("latency sketch followed by stray bytes")),
        Err(err) => Err(StoreError::Corrupt(format!("bad latency sketch: {err}"))),
    }
}

/// Appends `sketch` in the postcard form, as blobs of older layouts hold it (tests build such
/// blobs to check they are still read).
#[cfg(test)]
pub(super) fn put_postcard_sketch(buf: &mut Vec<u8>, sketch: &LatencySketch) {
    if *sketch == LatencySketch::default() {
        put_varint(buf, 0);
        return;
    }
    super::codec::put_bytes(
        buf,
        &postcard::to_allocvec(sketch).expect("a sketch encodes"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sketch_of(values: &[u64]) -> LatencySketch {
        let mut sketch = LatencySketch::default();
        for value in values {
            sketch.record(*value);
        }
        sketch
    }

    fn read(bytes: &[u8], form: SketchForm) -> Result<LatencySketch, StoreError> {
        let mut decoder = Decoder::new(bytes);
        let sketch = sketch(&mut decoder, form)?;
        assert!(decoder.is_empty(), "the whole sketch is read");
        Ok(sketch)
    }

    fn samples() -> Vec<LatencySketch> {
        let spread: Vec<u64> = (0..2_000).map(|no| 1_000 + no * no * 997).collect();
        vec![
            LatencySketch::default(),
            sketch_of(&[0]),
            sketch_of(&[0, 0, 1, 2, 3]),
            sketch_of(&[1, u64::MAX]),
            sketch_of(&[5_000_000; 300]),
            sketch_of(&spread),
            // Every bucket of a span filled: written dense.
            sketch_of(
                &(0..5_000)
                    .map(|no| 1_000_000 + no * 397)
                    .collect::<Vec<_>>(),
            ),
            wide_counts(1 << 40),
        ]
    }

    /// Twenty buckets side by side, each holding `count`.
    fn wide_counts(count: u64) -> LatencySketch {
        let buckets = (900..920).map(|index| (index, count)).collect();
        LatencySketch::from_parts(buckets, 1, 1.0e9, 0, 2_000_000).expect("a sketch")
    }

    /// `sketch` (buckets side by side) in the dense form with slots of `width` bytes.
    fn dense_bytes(sketch: &LatencySketch, width: usize) -> Vec<u8> {
        let buckets = sketch.buckets();
        let mut bytes = vec![DENSE];
        put_varint(&mut bytes, buckets[0].0 as u64);
        put_varint(&mut bytes, buckets.len() as u64);
        bytes.push(width as u8);
        for &(_, count) in buckets {
            bytes.extend_from_slice(&count.to_le_bytes()[..width]);
        }
        put_rest(&mut bytes, sketch);
        bytes
    }

    /// `sketch` written in `form`.
    fn written(sketch: &LatencySketch, form: SketchForm) -> Vec<u8> {
        let mut buf = Vec::new();
        match form {
            SketchForm::Postcard => put_postcard_sketch(&mut buf, sketch),
            SketchForm::Compact => put_compact_sketch(&mut buf, sketch),
            SketchForm::Flagged => put_sketch(&mut buf, sketch),
        }
        buf
    }

    const FORMS: [SketchForm; 3] = [
        SketchForm::Flagged,
        SketchForm::Compact,
        SketchForm::Postcard,
    ];

    #[test]
    fn every_form_round_trips_exactly() {
        for sample in samples() {
            for form in FORMS {
                let bytes = written(&sample, form);
                assert_eq!(read(&bytes, form).expect("read"), sample, "{form:?}");
            }
            let flagged = written(&sample, SketchForm::Flagged);
            let compact = written(&sample, SketchForm::Compact);
            let postcard = written(&sample, SketchForm::Postcard);
            assert!(flagged.len() <= compact.len());
            assert!(
                compact.len() <= postcard.len() + 1,
                "compact {} > postcard {}",
                compact.len(),
                postcard.len()
            );
        }
    }

    #[test]
    fn buckets_of_one_call_take_one_byte() {
        // A quiet minute: every call in a bucket of its own, a bucket or two apart.
        let values: Vec<u64> = (0..600)
            .map(|no| (1_000.0 * 1.021_f64.powi(no)) as u64)
            .collect();
        let sketch = sketch_of(&values);
        let num_buckets = sketch.buckets().len();
        assert_eq!(num_buckets, 600);
        assert!(sketch.buckets().iter().all(|(_, count)| *count == 1));
        let flagged = written(&sketch, SketchForm::Flagged);
        let compact = written(&sketch, SketchForm::Compact);
        let postcard = written(&sketch, SketchForm::Postcard);
        assert!(flagged.len() < num_buckets + 32, "{} bytes", flagged.len());
        assert!(
            compact.len() < num_buckets * 2 + 32,
            "{} bytes",
            compact.len()
        );
        assert!(compact.len() * 4 < postcard.len() * 3);
        // Many calls a bucket: a count after each gap, as in the compact form.
        let busy = sketch_of(&[5_000_000; 300]);
        let busy_flagged = written(&busy, SketchForm::Flagged);
        assert_eq!(
            busy_flagged.len(),
            written(&busy, SketchForm::Compact).len()
        );
    }

    #[test]
    fn a_filled_span_is_written_dense_in_the_narrowest_width() {
        for (count, width) in [(2, 1), (255, 1), (256, 2), (16_000, 2)] {
            let sketch = wide_counts(count);
            let bytes = written(&sketch, SketchForm::Flagged);
            assert_eq!(bytes[0], DENSE, "{count}");
            // Tag, first index (two bytes), twenty slots, their width.
            assert_eq!(bytes[4], width as u8, "{count}");
            assert_eq!(bytes, dense_bytes(&sketch, width));
        }
        // Every width reads back, as a sketch and into a sum (wider counts than these are
        // shorter in the flagged form, but any width is read).
        for (count, width) in [(2, 1), (300, 2), (70_000, 4), (1 << 40, 8), (3, 8)] {
            let sketch = wide_counts(count);
            let bytes = dense_bytes(&sketch, width);
            assert_eq!(read(&bytes, SketchForm::Flagged).expect("read"), sketch);
            let mut sum = SketchSum::default();
            add_sketch(&mut Decoder::new(&bytes), SketchForm::Flagged, &mut sum).expect("added");
            assert_eq!(sum.into_sketch(), sketch, "{count} in {width}");
        }
        // Sparse buckets stay in the flagged form.
        let sparse = sketch_of(&[1_000, 1_000_000_000]);
        assert_eq!(written(&sparse, SketchForm::Flagged)[0], BUCKETS);
        // Neither older form is ever dense.
        let filled = &samples()[6];
        assert_eq!(written(filled, SketchForm::Flagged)[0], DENSE);
        assert_eq!(written(filled, SketchForm::Compact)[0], BUCKETS);
    }

    #[test]
    fn damage_to_a_dense_sketch_is_reported() {
        let bytes = written(&wide_counts(2), SketchForm::Flagged);
        assert_eq!(bytes[0], DENSE);
        let read_both = |bytes: &[u8]| {
            let mut sum = SketchSum::default();
            let added = add_sketch(&mut Decoder::new(bytes), SketchForm::Flagged, &mut sum);
            (read(bytes, SketchForm::Flagged), added)
        };
        for len in 0..bytes.len() {
            let (read, added) = read_both(&bytes[..len]);
            assert!(read.is_err() && added.is_err(), "{len}");
        }
        let damaged = |at: usize, value: u8| {
            let mut copy = bytes.clone();
            copy[at] = value;
            copy
        };
        // Width 3; no slots; slots past the last index; an empty first or last slot.
        let last_slot = 5 + 19;
        for bad in [
            damaged(4, 3),
            damaged(3, 0),
            damaged(2, 0x7f),
            damaged(5, 0),
            damaged(last_slot, 0),
        ] {
            let (read, added) = read_both(&bad);
            assert!(read.is_err() && added.is_err());
        }
        // The dense tag means nothing in the compact form.
        assert!(read(&bytes, SketchForm::Compact).is_err());
    }

    #[test]
    fn damage_is_reported_not_misread() {
        let sample = sketch_of(&[3, 4_000, 5_000_000, 5_000_000]);
        for form in [SketchForm::Flagged, SketchForm::Compact] {
            let bytes = written(&sample, form);
            for len in 0..bytes.len() {
                assert!(read(&bytes[..len], form).is_err(), "{form:?} {len}");
            }
            let mut bad_tag = bytes.clone();
            bad_tag[0] = 3;
            assert!(read(&bad_tag, form).is_err());
            // An index past the last bucket, an absurd bucket count.
            let mut beyond = vec![BUCKETS, 1];
            let past = MAX_BUCKET_INDEX as u64 + 1;
            put_varint(
                &mut beyond,
                if form == SketchForm::Flagged {
                    past * 2 + 1
                } else {
                    past
                },
            );
            if form == SketchForm::Compact {
                beyond.push(1);
            }
            beyond.push(0);
            put_f64(&mut beyond, 1.0);
            beyond.extend([1, 1]);
            assert!(read(&beyond, form).is_err());
            let mut huge = vec![BUCKETS];
            put_varint(&mut huge, u64::MAX);
            assert!(read(&huge, form).is_err());
        }
        // A zero count: written out (the flag clear), or after a compact gap.
        let with_count = |count: u8| {
            let mut bytes = vec![BUCKETS, 1, 6, count, 0];
            put_f64(&mut bytes, 6.0);
            bytes.extend([1, 1]);
            bytes
        };
        assert!(read(&with_count(2), SketchForm::Flagged).is_ok());
        assert!(read(&with_count(0), SketchForm::Flagged).is_err());
        let mut compact = written(&sample, SketchForm::Compact);
        compact[3] = 0;
        assert!(read(&compact, SketchForm::Compact).is_err());
        let mut sum = SketchSum::default();
        let added = add_sketch(&mut Decoder::new(&compact), SketchForm::Compact, &mut sum);
        assert!(added.is_err());
    }

    #[test]
    fn sketches_read_into_a_sum_equal_merging_them() {
        for form in FORMS {
            let bytes: Vec<u8> = samples()
                .iter()
                .flat_map(|sample| written(sample, form))
                .collect();
            let mut decoder = Decoder::new(&bytes);
            let mut sum = SketchSum::default();
            for _ in samples() {
                add_sketch(&mut decoder, form, &mut sum).expect("a sketch");
            }
            assert!(decoder.is_empty(), "every sketch is read");
            assert_eq!(sum.into_sketch(), LatencySketch::merge_all(&samples()));
        }
    }
}
