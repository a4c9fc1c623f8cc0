//! A mergeable, log-bucketed latency sketch in the manner of DDSketch: quantiles within a
//! fixed relative error, and bucket counts that add up across sketches (so ClickHouse can merge
//! them with `sumMap`, and SQLite rollups can be summed in Rust).
//!
//! Bucket `i` (≥ 0) holds the values in `(γ^(i-1), γ^i]` nanoseconds with
//! `γ = (1 + α) / (1 − α)`; its representative value `2γ^i / (γ + 1)` is within `α` of every
//! value in it. A value of 0 ns goes to a separate zero bucket, so every `u64` is representable
//! and at most [`MAX_BUCKET_INDEX`] + 1 buckets exist. The mapping is fixed: sketches from any
//! version, process or backend merge by adding counts of equal indices.

use serde::{Deserialize, Serialize};

mod sum;
pub use sum::SketchSum;

/// Relative accuracy of quantile estimates (0.5 %, comfortably inside the 1 % promised).
pub const RELATIVE_ACCURACY: f64 = 0.005;

/// `γ = (1 + α) / (1 − α)`, the ratio between consecutive bucket bounds.
const GAMMA: f64 = 1.010_050_251_256_281_2;
/// `1 / ln γ`, so a bucket index is `ceil(ln(x) · INV_LN_GAMMA)`.
const INV_LN_GAMMA: f64 = 99.999_166_661_112_81;
/// `ln γ`.
const LN_GAMMA: f64 = 0.010_000_083_334_583_179;

/// The bucket of `u64::MAX` nanoseconds: no index is larger.
pub const MAX_BUCKET_INDEX: i32 = 4437;

/// Why a sketch read back from storage was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SketchError {
    #[error("sketch bucket indices must be strictly increasing, got {index} after {previous}")]
    UnsortedBuckets { previous: i32, index: i32 },
    #[error("sketch bucket {index} is outside 0..={MAX_BUCKET_INDEX}")]
    IndexOutOfRange { index: i32 },
    #[error("sketch bucket {index} has a zero count")]
    EmptyBucket { index: i32 },
    #[error("sketch count {count} does not match its buckets ({num_in_buckets})")]
    CountMismatch { count: u64, num_in_buckets: u64 },
    #[error("sketch minimum {min_nanos} ns exceeds its maximum {max_nanos} ns")]
    MinAboveMax { min_nanos: u64, max_nanos: u64 },
}

/// Latency distribution in nanoseconds. Cheap to clone while small; sparse buckets.
///
/// Deserialisation checks the invariants (sorted non-empty buckets, counts that add up), so a
/// sketch read from storage is as trustworthy as one built by [`LatencySketch::record`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "SketchParts")]
pub struct LatencySketch {
    /// Sorted by bucket index; counts are never zero.
    buckets: Vec<(i32, u64)>,
    /// Observations of exactly zero.
    zero_count: u64,
    count: u64,
    sum_nanos: f64,
    min_nanos: u64,
    max_nanos: u64,
}

/// The serialised form, validated into a [`LatencySketch`].
#[derive(Deserialize)]
struct SketchParts {
    buckets: Vec<(i32, u64)>,
    zero_count: u64,
    count: u64,
    sum_nanos: f64,
    min_nanos: u64,
    max_nanos: u64,
}

impl TryFrom<SketchParts> for LatencySketch {
    type Error = SketchError;

    fn try_from(parts: SketchParts) -> Result<Self, SketchError> {
        let sketch = LatencySketch::from_parts(
            parts.buckets,
            parts.zero_count,
            parts.sum_nanos,
            parts.min_nanos,
            parts.max_nanos,
        )?;
        if sketch.count != parts.count {
            return Err(SketchError::CountMismatch {
                count: parts.count,
                num_in_buckets: sketch.count,
            });
        }
        Ok(sketch)
    }
}

/// The bucket a non-zero duration falls in.
pub fn bucket_index(nanos: u64) -> i32 {
    debug_assert!(nanos > 0, "zero has its own bucket");
    // ln(u64::MAX) · INV_LN_GAMMA < 4438, so the cast cannot truncate.
    let index = ((nanos as f64).ln() * INV_LN_GAMMA).ceil() as i32;
    index.clamp(0, MAX_BUCKET_INDEX)
}

/// The representative value of bucket `index`: within [`RELATIVE_ACCURACY`] of all its values.
pub fn bucket_value_nanos(index: i32) -> f64 {
    (f64::from(index) * LN_GAMMA).exp() * (2.0 / (GAMMA + 1.0))
}

impl LatencySketch {
    /// Rebuilds a sketch from stored parts (e.g. a ClickHouse `sumMap` of bucket counts).
    /// `count` is derived from the buckets.
    pub fn from_parts(
        buckets: Vec<(i32, u64)>,
        zero_count: u64,
        sum_nanos: f64,
        min_nanos: u64,
        max_nanos: u64,
    ) -> Result<Self, SketchError> {
        let mut previous: Option<i32> = None;
        let mut num_in_buckets = zero_count;
        for &(index, bucket_count) in &buckets {
            if let Some(before) = previous.filter(|before| *before >= index) {
                return Err(SketchError::UnsortedBuckets {
                    previous: before,
                    index,
                });
            }
            if !(0..=MAX_BUCKET_INDEX).contains(&index) {
                return Err(SketchError::IndexOutOfRange { index });
            }
            if bucket_count == 0 {
                return Err(SketchError::EmptyBucket { index });
            }
            num_in_buckets = num_in_buckets.saturating_add(bucket_count);
            previous = Some(index);
        }
        if num_in_buckets > 0 && min_nanos > max_nanos {
            return Err(SketchError::MinAboveMax {
                min_nanos,
                max_nanos,
            });
        }
        Ok(Self {
            buckets,
            zero_count,
            count: num_in_buckets,
            sum_nanos,
            min_nanos,
            max_nanos,
        })
    }

    pub fn record(&mut self, nanos: u64) {
        self.record_n(nanos, 1);
    }

    /// Records `count` observations of `nanos` (a sampled call standing for `count`); none
    /// when `count` is 0.
    pub fn record_n(&mut self, nanos: u64, count: u64) {
        if count == 0 {
            return;
        }
        self.note_extremes(nanos, nanos);
        self.count += count;
        self.sum_nanos += nanos as f64 * count as f64;
        if nanos == 0 {
            self.zero_count += count;
            return;
        }
        let index = bucket_index(nanos);
        match self.find(index) {
            Ok(position) => self.buckets[position].1 += count,
            Err(position) => self.buckets.insert(position, (index, count)),
        }
        self.debug_check();
    }

    /// `binary_search` for a bucket index, but first where a dense run would put it: indices
    /// strictly increase, so `index` sits at position `index − first` or before, by at most the
    /// gap between the index found there and `index`. Busy sketches are nearly dense, so this
    /// is usually one load instead of a chain of dependent cache misses.
    fn find(&self, index: i32) -> Result<usize, usize> {
        let Some(&(first, _)) = self.buckets.first() else {
            return Err(0);
        };
        if index < first {
            return Err(0);
        }
        let guess = ((index - first) as usize).min(self.buckets.len() - 1);
        let at_guess = self.buckets[guess].0;
        if at_guess <= index {
            // At most one position per index: beyond the guess only when it is the last.
            return if at_guess == index {
                Ok(guess)
            } else {
                Err(guess + 1)
            };
        }
        let low = guess.saturating_sub((at_guess - index) as usize);
        match self.buckets[low..guess].binary_search_by_key(&index, |&(i, _)| i) {
            Ok(offset) => Ok(low + offset),
            Err(offset) => Err(low + offset),
        }
    }

    /// Adds `other`'s observations: the result equals recording both inputs into one sketch.
    pub fn merge(&mut self, other: &LatencySketch) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            self.clone_from(other);
            return;
        }
        self.note_extremes(other.min_nanos, other.max_nanos);
        self.count += other.count;
        self.sum_nanos += other.sum_nanos;
        self.zero_count += other.zero_count;
        if !add_in_place(&mut self.buckets, &other.buckets) {
            self.buckets = merge_buckets(&self.buckets, &other.buckets);
        }
        self.debug_check();
    }

    /// `sketches` merged: equal to merging them one by one in order (sums add in that order),
    /// in one pass over their buckets, where merging one by one copies the growing bucket list
    /// each time (an hour of minutes: 60 copies).
    pub fn merge_all<'a, I>(sketches: I) -> LatencySketch
    where
        I: IntoIterator<Item = &'a LatencySketch>,
        I::IntoIter: Clone,
    {
        let sketches = sketches.into_iter().filter(|sketch| sketch.count > 0);
        let mut merged = LatencySketch::default();
        let (mut low, mut high) = (i32::MAX, i32::MIN);
        let mut num_merged = 0_usize;
        for sketch in sketches.clone() {
            merged.note_extremes(sketch.min_nanos, sketch.max_nanos);
            merged.count += sketch.count;
            merged.sum_nanos += sketch.sum_nanos;
            merged.zero_count += sketch.zero_count;
            if let (Some(first), Some(last)) = (sketch.buckets.first(), sketch.buckets.last()) {
                low = low.min(first.0);
                high = high.max(last.0);
            }
            num_merged += 1;
        }
        if num_merged == 1 {
            return sketches.clone().next().cloned().unwrap_or_default();
        }
        if low <= high {
            let mut dense = vec![0_u64; high.abs_diff(low) as usize + 1];
            for sketch in sketches {
                for &(index, count) in &sketch.buckets {
                    dense[index.abs_diff(low) as usize] += count;
                }
            }
            merged.buckets = (low..=high)
                .zip(dense)
                .filter(|(_, count)| *count > 0)
                .collect();
        }
        merged.debug_check();
        merged
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Non-empty buckets as `(index, count)`, sorted by index; see [`bucket_value_nanos`].
    pub fn buckets(&self) -> &[(i32, u64)] {
        &self.buckets
    }

    /// Observations of exactly 0 ns (kept apart from the log buckets).
    pub fn zero_count(&self) -> u64 {
        self.zero_count
    }

    /// Exact sum of the observations (exact while it stays below 2^53 ns, about 104 days).
    pub fn sum_nanos(&self) -> f64 {
        self.sum_nanos
    }

    /// Exact smallest observation; 0 when empty.
    pub fn min_nanos(&self) -> u64 {
        self.min_nanos
    }

    /// Exact largest observation; 0 when empty.
    pub fn max_nanos(&self) -> u64 {
        self.max_nanos
    }

    pub fn mean_nanos(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_nanos / self.count as f64)
    }

    /// The `q`-quantile (0..=1) in nanoseconds, `None` when empty or `q` is outside 0..=1.
    ///
    /// Estimates the lower quantile, the observation of rank `⌊q · (count − 1)⌋`, within
    /// [`RELATIVE_ACCURACY`]; `q = 0` and `q = 1` give the exact minimum and maximum.
    pub fn quantile_nanos(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        if q == 0.0 {
            return Some(self.min_nanos as f64);
        }
        if q == 1.0 {
            return Some(self.max_nanos as f64);
        }
        let rank = (q * (self.count - 1) as f64).floor() as u64;
        if rank < self.zero_count {
            return Some(0.0);
        }
        // The bucket holding the rank-th value, counted from whichever end is nearer (a p95
        // of a wide sketch is a few buckets from the top).
        let found = if rank >= self.count / 2 {
            let num_after = self.count - 1 - rank;
            let mut num_seen = 0;
            self.buckets.iter().rev().find(|&&(_, bucket_count)| {
                num_seen += bucket_count;
                num_seen > num_after
            })
        } else {
            let mut num_seen = self.zero_count;
            self.buckets.iter().find(|&&(_, bucket_count)| {
                num_seen += bucket_count;
                num_seen > rank
            })
        };
        let Some(&(index, _)) = found else {
            debug_assert!(false, "the ranks are covered by the buckets");
            return Some(self.max_nanos as f64);
        };
        let estimate = bucket_value_nanos(index);
        Some(estimate.clamp(self.min_nanos as f64, self.max_nanos as f64))
    }

    fn note_extremes(&mut self, min_nanos: u64, max_nanos: u64) {
        if self.count == 0 {
            self.min_nanos = min_nanos;
            self.max_nanos = max_nanos;
        } else {
            self.min_nanos = self.min_nanos.min(min_nanos);
            self.max_nanos = self.max_nanos.max(max_nanos);
        }
    }

    fn debug_check(&self) {
        debug_assert_eq!(
            self.count,
            self.zero_count + self.buckets.iter().map(|(_, c)| c).sum::<u64>(),
            "count matches the buckets"
        );
        debug_assert!(self.buckets.windows(2).all(|pair| pair[0].0 < pair[1].0));
    }
}

/// Adds two sorted bucket lists index by index.
/// Adds `right`'s counts to `left`'s buckets when `left` has every bucket `right` has (the
/// usual case when a window's minutes are merged: no allocation); returns whether it did.
fn add_in_place(left: &mut [(i32, u64)], right: &[(i32, u64)]) -> bool {
    let mut left_pos = 0;
    for &(right_index, _) in right {
        while left_pos < left.len() && left[left_pos].0 < right_index {
            left_pos += 1;
        }
        if left_pos == left.len() || left[left_pos].0 != right_index {
            return false;
        }
    }
    let mut left_pos = 0;
    for &(right_index, right_count) in right {
        while left[left_pos].0 < right_index {
            left_pos += 1;
        }
        left[left_pos].1 += right_count;
    }
    true
}

fn merge_buckets(left: &[(i32, u64)], right: &[(i32, u64)]) -> Vec<(i32, u64)> {
    let mut merged = Vec::with_capacity(left.len() + right.len());
    let (mut left_pos, mut right_pos) = (0, 0);
    while left_pos < left.len() && right_pos < right.len() {
        let (left_index, left_count) = left[left_pos];
        let (right_index, right_count) = right[right_pos];
        if left_index == right_index {
            merged.push((left_index, left_count + right_count));
            left_pos += 1;
            right_pos += 1;
        } else if left_index < right_index {
            merged.push(left[left_pos]);
            left_pos += 1;
        } else {
            merged.push(right[right_pos]);
            right_pos += 1;
        }
    }
    merged.extend_from_slice(&left[left_pos..]);
    merged.extend_from_slice(&right[right_pos..]);
    merged
}

#[cfg(test)]
mod tests;
