//! Many sketches added into one through a dense array of counts, bucket by bucket as they are
//! read: an edge's minutes over a range, summed straight from stored bytes without building a
//! [`LatencySketch`] for each (`store::totals`).

use super::{LatencySketch, MAX_BUCKET_INDEX, SketchError};

/// Indices of room added beyond the one asked for when the array grows, so that a sum whose
/// range widens a little at a time does not move its counts each time.
const SLACK: i32 = 64;

/// A sum of sketches: equal to [`LatencySketch::merge_all`] of them, added in the same order
/// (the order only moves the float sum's rounding, none while it is a sum of whole
/// nanoseconds below 2^53).
#[derive(Debug, Clone, Default)]
pub struct SketchSum {
    /// The bucket index of `dense[0]`.
    low: i32,
    dense: Vec<u64>,
    /// Everything but the buckets.
    totals: LatencySketch,
}

impl SketchSum {
    /// Adds a whole sketch.
    pub fn add(&mut self, sketch: &LatencySketch) {
        for &(index, count) in &sketch.buckets {
            *self.slot(index) += count;
        }
        let num_in_buckets = sketch.count - sketch.zero_count;
        let (sum, min, max) = (sketch.sum_nanos, sketch.min_nanos, sketch.max_nanos);
        // A sketch's own parts were checked when it was built.
        let _ = self.add_rest(num_in_buckets, sketch.zero_count, sum, min, max);
    }

    /// Adds one bucket of a sketch being read; its other parts follow through
    /// [`SketchSum::add_rest`]. Refuses what [`LatencySketch::from_parts`] refuses.
    #[inline]
    pub fn add_bucket(&mut self, index: i32, count: u64) -> Result<(), SketchError> {
        if count == 0 {
            return Err(SketchError::EmptyBucket { index });
        }
        // The array only ever covers valid indices: one inside it needs no other check (an
        // index below `low` wraps to a position past the end).
        let at = index.wrapping_sub(self.low) as u32 as usize;
        if let Some(slot) = self.dense.get_mut(at) {
            *slot += count;
            return Ok(());
        }
        if !(0..=MAX_BUCKET_INDEX).contains(&index) {
            return Err(SketchError::IndexOutOfRange { index });
        }
        *self.slot(index) += count;
        Ok(())
    }

    /// Adds the slots of a dense sketch: `bytes` holds one count per index from `low`, each
    /// `width` bytes little-endian (1, 2, 4 or 8), the indices checked by the caller to lie in
    /// `0..=MAX_BUCKET_INDEX`. Returns the number of observations added; its other parts
    /// follow through [`SketchSum::add_rest`].
    pub fn add_dense(&mut self, low: i32, width: usize, bytes: &[u8]) -> u64 {
        let num_slots = bytes.len() / width;
        if num_slots == 0 {
            return 0;
        }
        self.slot(low);
        self.slot(low + num_slots as i32 - 1);
        let at = (low - self.low) as usize;
        let slots = &mut self.dense[at..at + num_slots];
        match width {
            1 => add_widened::<1>(slots, bytes),
            2 => add_widened::<2>(slots, bytes),
            4 => add_widened::<4>(slots, bytes),
            _ => add_widened::<8>(slots, bytes),
        }
    }

    /// The rest of a sketch whose buckets (holding `num_in_buckets` observations) were added:
    /// its zero count, sum and extremes. A sketch of no observations adds nothing, as
    /// `merge_all` skips it.
    pub fn add_rest(
        &mut self,
        num_in_buckets: u64,
        zero_count: u64,
        sum_nanos: f64,
        min_nanos: u64,
        max_nanos: u64,
    ) -> Result<(), SketchError> {
        let count = num_in_buckets.saturating_add(zero_count);
        if count == 0 {
            return Ok(());
        }
        if min_nanos > max_nanos {
            return Err(SketchError::MinAboveMax {
                min_nanos,
                max_nanos,
            });
        }
        let totals = &mut self.totals;
        totals.note_extremes(min_nanos, max_nanos);
        totals.count += count;
        totals.sum_nanos += sum_nanos;
        totals.zero_count += zero_count;
        Ok(())
    }

    /// The sum as one sketch.
    pub fn into_sketch(self) -> LatencySketch {
        let mut sketch = self.totals;
        sketch.buckets = (self.low..)
            .zip(self.dense)
            .filter(|(_, count)| *count > 0)
            .collect();
        sketch.debug_check();
        sketch
    }

    fn slot(&mut self, index: i32) -> &mut u64 {
        if self.dense.is_empty() {
            self.low = (index - SLACK).max(0);
        } else if index < self.low {
            let low = (index - SLACK).max(0);
            let num_added = (self.low - low) as usize;
            self.dense.splice(0..0, std::iter::repeat_n(0, num_added));
            self.low = low;
        }
        let at = (index - self.low) as usize;
        if at >= self.dense.len() {
            let high = (index + SLACK).min(MAX_BUCKET_INDEX);
            self.dense.resize((high - self.low) as usize + 1, 0);
        }
        &mut self.dense[at]
    }
}

/// Adds counts of `WIDTH` bytes each to `slots`; returns their total. No branch on a count: the
/// loop vectorises.
fn add_widened<const WIDTH: usize>(slots: &mut [u64], bytes: &[u8]) -> u64 {
    let mut total = 0_u64;
    for (slot, count) in slots.iter_mut().zip(bytes.chunks_exact(WIDTH)) {
        let mut le = [0_u8; 8];
        le[..WIDTH].copy_from_slice(count);
        let count = u64::from_le_bytes(le);
        // As `add_bucket`'s sum would, without a check on each count.
        *slot = slot.wrapping_add(count);
        total = total.saturating_add(count);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sketch_of(values: impl IntoIterator<Item = u64>) -> LatencySketch {
        let mut sketch = LatencySketch::default();
        for value in values {
            sketch.record(value);
        }
        sketch
    }

    #[test]
    fn a_sum_equals_merge_all_in_the_same_order() {
        let sketches = [
            sketch_of([]),
            sketch_of([5_000, 7_000, 0]),
            // Far above, then far below: the array grows at both ends.
            sketch_of((0..300).map(|no| 1_000_000 + no * 9_973)),
            sketch_of([1, 2, 3]),
            sketch_of([0, 0]),
            sketch_of([u64::MAX]),
        ];
        let mut sum = SketchSum::default();
        for sketch in &sketches {
            sum.add(sketch);
        }
        assert_eq!(sum.into_sketch(), LatencySketch::merge_all(&sketches));
        assert_eq!(SketchSum::default().into_sketch(), LatencySketch::default());
    }

    #[test]
    fn buckets_added_one_by_one_equal_the_sketch_and_bad_parts_are_refused() {
        let sketch = sketch_of([0, 10, 10, 2_000, 3_000_000]);
        let mut sum = SketchSum::default();
        for &(index, count) in sketch.buckets() {
            sum.add_bucket(index, count).expect("a bucket");
        }
        let num_in_buckets = sketch.count() - sketch.zero_count();
        sum.add_rest(
            num_in_buckets,
            sketch.zero_count(),
            sketch.sum_nanos(),
            sketch.min_nanos(),
            sketch.max_nanos(),
        )
        .expect("the rest");
        assert_eq!(sum.clone().into_sketch(), sketch);

        assert_eq!(
            sum.add_bucket(MAX_BUCKET_INDEX + 1, 1),
            Err(SketchError::IndexOutOfRange {
                index: MAX_BUCKET_INDEX + 1
            })
        );
        assert_eq!(
            sum.add_bucket(-1, 1),
            Err(SketchError::IndexOutOfRange { index: -1 })
        );
        assert_eq!(
            sum.add_bucket(7, 0),
            Err(SketchError::EmptyBucket { index: 7 })
        );
        assert_eq!(
            sum.add_rest(1, 0, 1.0, 9, 3),
            Err(SketchError::MinAboveMax {
                min_nanos: 9,
                max_nanos: 3
            })
        );
    }
}
