//! Latency sketches inside rollup stats blobs (both stores).
//!
//! Blobs written since the compact form (edge layout 3, operation layout 4) hold each sketch
//! as: a tag (0: the empty default sketch, nothing follows), the number of buckets, each
//! bucket as the gap to the previous index (the first: its index) and its count, all varints,
//! then the zero count, the sum's bits and min and max. Bucket indices are sorted and close
//! together, so most gaps and counts take one byte: about two bytes a bucket, against three
//! for the postcard form older layouts hold (zig-zag absolute indices), which is still read.
//! The count is not stored: it is the buckets' and the zero count's sum.

use crate::model::LatencySketch;
use crate::model::sketch::{MAX_BUCKET_INDEX, SketchError, SketchSum};
use crate::store::StoreError;

use super::codec::{Decoder, corrupt, put_f64, put_varint};

/// How a blob holds its sketches: fixed by the blob's layout byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SketchForm {
    /// Length-prefixed postcard of the serde form (edge layouts 1–2, operation 1–3).
    Postcard,
    /// Gaps and counts as varints (this module's header).
    Compact,
}

const EMPTY: u8 = 0;
const BUCKETS: u8 = 1;

/// Appends `sketch` in the compact form.
pub(super) fn put_sketch(buf: &mut Vec<u8>, sketch: &LatencySketch) {
    if *sketch == LatencySketch::default() {
        buf.push(EMPTY);
        return;
    }
    buf.push(BUCKETS);
    let buckets = sketch.buckets();
    put_varint(buf, buckets.len() as u64);
    let mut next_index = 0_i32;
    for &(index, count) in buckets {
        // Sorted, distinct and non-negative (the sketch's invariants): the gap is never negative.
        put_varint(buf, u64::from(index.abs_diff(next_index)));
        put_varint(buf, count);
        next_index = index + 1;
    }
    put_varint(buf, sketch.zero_count());
    put_f64(buf, sketch.sum_nanos());
    put_varint(buf, sketch.min_nanos());
    put_varint(buf, sketch.max_nanos());
}

/// Reads one sketch in `form`, checking it as [`LatencySketch::from_parts`] does.
pub(super) fn sketch(
    decoder: &mut Decoder<'_>,
    form: SketchForm,
) -> Result<LatencySketch, StoreError> {
    match form {
        SketchForm::Postcard => postcard_sketch(decoder),
        SketchForm::Compact => compact_sketch(decoder),
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
    let rest = compact_parts(decoder, |index, count| {
        num_in_buckets = num_in_buckets.saturating_add(count);
        sum.add_bucket(index, count)
    })?;
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

fn compact_sketch(decoder: &mut Decoder<'_>) -> Result<LatencySketch, StoreError> {
    let mut buckets = Vec::new();
    let rest = compact_parts(decoder, |index, count| {
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

/// Reads a compact sketch: each bucket (sorted, distinct, in range) given to `bucket`, then
/// the rest; `None` for the empty sketch's tag.
fn compact_parts(
    decoder: &mut Decoder<'_>,
    mut bucket: impl FnMut(i32, u64) -> Result<(), SketchError>,
) -> Result<Option<Rest>, StoreError> {
    match decoder.u8()? {
        EMPTY => return Ok(None),
        BUCKETS => {}
        _ => return Err(corrupt("bad latency sketch tag")),
    }
    // Each bucket takes two bytes at least: the count is bounded by what is left.
    let num_buckets = decoder.count()?;
    if num_buckets > MAX_BUCKET_INDEX as usize + 1 {
        return Err(corrupt("more sketch buckets than indices"));
    }
    let mut next_index = 0_u64;
    for _ in 0..num_buckets {
        let index = next_index
            .checked_add(decoder.varint()?)
            .filter(|index| *index <= MAX_BUCKET_INDEX as u64)
            .ok_or_else(|| corrupt("sketch bucket index out of range"))?;
        // At most MAX_BUCKET_INDEX: fits.
        bucket(index as i32, decoder.varint()?).map_err(bad_sketch)?;
        next_index = index + 1;
    }
    Ok(Some(Rest {
        zero_count: decoder.varint()?,
        sum_nanos: decoder.f64()?,
        min_nanos: decoder.varint()?,
        max_nanos: decoder.varint()?,
    }))
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
        ]
    }

    #[test]
    fn both_forms_round_trip_exactly() {
        for sample in samples() {
            let mut compact = Vec::new();
            put_sketch(&mut compact, &sample);
            assert_eq!(
                read(&compact, SketchForm::Compact).expect("compact"),
                sample
            );
            let mut postcard = Vec::new();
            put_postcard_sketch(&mut postcard, &sample);
            assert_eq!(
                read(&postcard, SketchForm::Postcard).expect("postcard"),
                sample
            );
            assert!(
                compact.len() <= postcard.len() + 1,
                "compact {} > postcard {}",
                compact.len(),
                postcard.len()
            );
        }
    }

    #[test]
    fn compact_form_takes_about_two_bytes_a_bucket() {
        let sketch = samples().pop().expect("spread");
        let mut compact = Vec::new();
        put_sketch(&mut compact, &sketch);
        let mut postcard = Vec::new();
        put_postcard_sketch(&mut postcard, &sketch);
        let num_buckets = sketch.buckets().len();
        assert!(num_buckets > 500, "{num_buckets} buckets");
        assert!(
            compact.len() < num_buckets * 2 + 32,
            "{} bytes",
            compact.len()
        );
        assert!(compact.len() * 4 < postcard.len() * 3);
    }

    #[test]
    fn damage_is_reported_not_misread() {
        let sample = sketch_of(&[3, 4_000, 5_000_000, 5_000_000]);
        let mut compact = Vec::new();
        put_sketch(&mut compact, &sample);
        for len in 0..compact.len() {
            assert!(read(&compact[..len], SketchForm::Compact).is_err(), "{len}");
        }
        let mut bad_tag = compact.clone();
        bad_tag[0] = 2;
        assert!(read(&bad_tag, SketchForm::Compact).is_err());
        // A zero count in a bucket, an index past the last bucket, an absurd bucket count.
        let mut zero_count = compact.clone();
        zero_count[3] = 0;
        assert!(read(&zero_count, SketchForm::Compact).is_err());
        let mut beyond = vec![BUCKETS, 1];
        put_varint(&mut beyond, MAX_BUCKET_INDEX as u64 + 1);
        beyond.extend([1, 0]);
        put_f64(&mut beyond, 1.0);
        beyond.extend([1, 1]);
        assert!(read(&beyond, SketchForm::Compact).is_err());
        let mut huge = vec![BUCKETS];
        put_varint(&mut huge, u64::MAX);
        assert!(read(&huge, SketchForm::Compact).is_err());
    }

    #[test]
    fn sketches_read_into_a_sum_equal_merging_them() {
        for form in [SketchForm::Compact, SketchForm::Postcard] {
            let mut bytes = Vec::new();
            for sample in samples() {
                match form {
                    SketchForm::Compact => put_sketch(&mut bytes, &sample),
                    SketchForm::Postcard => put_postcard_sketch(&mut bytes, &sample),
                }
            }
            let mut decoder = Decoder::new(&bytes);
            let mut sum = SketchSum::default();
            for _ in samples() {
                add_sketch(&mut decoder, form, &mut sum).expect("a sketch");
            }
            assert!(decoder.is_empty(), "every sketch is read");
            assert_eq!(sum.into_sketch(), LatencySketch::merge_all(&samples()));
        }
        let mut zero_count = Vec::new();
        put_sketch(&mut zero_count, &sketch_of(&[3, 4_000]));
        zero_count[3] = 0;
        let mut sum = SketchSum::default();
        let read = add_sketch(
            &mut Decoder::new(&zero_count),
            SketchForm::Compact,
            &mut sum,
        );
        assert!(read.is_err());
    }
}
