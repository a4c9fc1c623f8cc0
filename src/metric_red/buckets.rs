//! One histogram point's counts in a form that can be subtracted (a cumulative point minus
//! the one before it) and turned into the map's latency sketch. Explicit-bucket and
//! exponential histograms are both kept in their own layout; an exponential one whose scale
//! went down since the previous point (the SDK re-bucketed to fit) has the previous counts
//! folded to the new scale first, which is exact.

use std::collections::BTreeMap;

use crate::model::{
    ExponentialHistogramValue, HistogramValue, LatencySketch, PointValue, bucket_index,
};

/// How the buckets are laid out.
#[derive(Debug, Clone, PartialEq)]
pub enum Layout {
    /// Upper bounds; one more bucket than bounds (the last is unbounded above).
    Explicit(Vec<f64>),
    /// Bucket `i` holds values in `(base^i, base^(i+1)]`, `base = 2^(2^-scale)`.
    Exponential { scale: i32 },
}

/// The counts of one point (or of the difference of two).
#[derive(Debug, Clone, PartialEq)]
pub struct Counts {
    pub count: u64,
    pub sum_opt: Option<f64>,
    /// Exact extremes, known only for a whole point (never for a difference).
    pub min_opt: Option<f64>,
    pub max_opt: Option<f64>,
    /// The whole point's extremes, kept by a difference: every value it counts lies within
    /// them, so bucket representatives are held inside.
    pub within_opt: Option<(f64, f64)>,
    /// Values of zero (and, for exponential histograms, negative ones: no duration is).
    pub num_zero: u64,
    pub layout: Layout,
    /// Explicit: bucket position → count. Exponential: bucket index → count.
    pub buckets: BTreeMap<i32, u64>,
}

/// The point is not a histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAHistogram;

impl Counts {
    pub fn of(value: &PointValue) -> Result<Self, NotAHistogram> {
        match value {
            PointValue::Histogram(histogram) => Ok(Self::explicit(histogram)),
            PointValue::ExponentialHistogram(histogram) => Ok(Self::exponential(histogram)),
            _ => Err(NotAHistogram),
        }
    }

    fn explicit(histogram: &HistogramValue) -> Self {
        let buckets = histogram
            .bucket_counts
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(position, count)| (i32::try_from(position).unwrap_or(i32::MAX), *count))
            .collect();
        Self {
            count: histogram.count,
            sum_opt: histogram.sum,
            min_opt: histogram.min,
            max_opt: histogram.max,
            within_opt: histogram.min.zip(histogram.max),
            num_zero: 0,
            layout: Layout::Explicit(histogram.explicit_bounds.clone()),
            buckets,
        }
    }

    fn exponential(histogram: &ExponentialHistogramValue) -> Self {
        let positive = &histogram.positive;
        let buckets = positive
            .bucket_counts
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(position, count)| {
                let position = i32::try_from(position).unwrap_or(i32::MAX);
                (positive.offset.saturating_add(position), *count)
            })
            .collect();
        let num_negative: u64 = histogram.negative.bucket_counts.iter().sum();
        Self {
            count: histogram.count,
            sum_opt: histogram.sum,
            min_opt: histogram.min,
            max_opt: histogram.max,
            within_opt: histogram.min.zip(histogram.max),
            num_zero: histogram.zero_count.saturating_add(num_negative),
            layout: Layout::Exponential {
                scale: histogram.scale,
            },
            buckets,
        }
    }

    /// `self − previous`, or `None` when `self` cannot follow `previous` in one series (a
    /// count went down or the explicit bounds changed: the series was reset).
    pub fn minus(&self, previous: &Counts) -> Option<Counts> {
        if self.count < previous.count || self.num_zero < previous.num_zero {
            return None;
        }
        let previous_buckets = match (&self.layout, &previous.layout) {
            (Layout::Explicit(bounds), Layout::Explicit(previous_bounds))
                if bounds == previous_bounds =>
            {
                previous.buckets.clone()
            }
            (
                Layout::Exponential { scale },
                Layout::Exponential {
                    scale: previous_scale,
                },
            ) if scale <= previous_scale => downscale(&previous.buckets, previous_scale - scale),
            _ => return None,
        };
        let mut buckets = self.buckets.clone();
        for (index, previous_count) in previous_buckets {
            let count = buckets.entry(index).or_default();
            *count = count.checked_sub(previous_count)?;
        }
        buckets.retain(|_, count| *count > 0);
        Some(Counts {
            count: self.count - previous.count,
            sum_opt: self
                .sum_opt
                .zip(previous.sum_opt)
                .map(|(now, then)| now - then),
            min_opt: None,
            max_opt: None,
            within_opt: self.within_opt,
            num_zero: self.num_zero - previous.num_zero,
            layout: self.layout.clone(),
            buckets,
        })
    }

    /// The bucket's representative value in the point's unit: the middle of an explicit
    /// bucket (the first from the known minimum or 0, the last at the known maximum or its
    /// lower bound), the geometric middle of an exponential one.
    fn representative(&self, index: i32) -> f64 {
        let value = self.bucket_middle(index);
        match self.within_opt {
            Some((min, max)) if min <= max => value.clamp(min, max),
            _ => value,
        }
    }

    fn bucket_middle(&self, index: i32) -> f64 {
        match &self.layout {
            Layout::Explicit(bounds) => {
                let position = usize::try_from(index).unwrap_or(usize::MAX);
                let lower = position
                    .checked_sub(1)
                    .and_then(|before| bounds.get(before).copied());
                match (lower, bounds.get(position).copied()) {
                    (Some(lower), Some(upper)) => (lower + upper) / 2.0,
                    (None, Some(upper)) => (self.min_opt.unwrap_or(0.0).min(upper) + upper) / 2.0,
                    (Some(lower), None) => self.max_opt.unwrap_or(lower).max(lower),
                    (None, None) => self.max_opt.or(self.sum_opt).unwrap_or(0.0),
                }
            }
            Layout::Exponential { scale } => {
                let exponent = (f64::from(index) + 0.5) * (-f64::from(*scale)).exp2();
                exponent.exp2()
            }
        }
    }

    /// The counts as a latency sketch, values scaled by `unit_nanos`. The sketch's count is
    /// the buckets' (a point's `count` should equal it; the requests are taken from `count`).
    pub fn sketch(&self, unit_nanos: f64) -> LatencySketch {
        let to_nanos = |value: f64| -> u64 {
            let nanos = value * unit_nanos;
            if nanos.is_finite() && nanos > 0.0 {
                // Saturating: durations beyond u64 nanoseconds (584 years) are not calls.
                nanos.round() as u64
            } else {
                0
            }
        };
        let mut sketch_buckets: BTreeMap<i32, u64> = BTreeMap::new();
        let mut num_zero = self.num_zero;
        let mut sum_nanos = 0.0;
        let mut extremes: Option<(u64, u64)> = (num_zero > 0).then_some((0, 0));
        for (&index, &count) in &self.buckets {
            let nanos = to_nanos(self.representative(index));
            sum_nanos += nanos as f64 * count as f64;
            extremes = Some(extremes.map_or((nanos, nanos), |(low, high)| {
                (low.min(nanos), high.max(nanos))
            }));
            if nanos == 0 {
                num_zero += count;
            } else {
                *sketch_buckets.entry(bucket_index(nanos)).or_default() += count;
            }
        }
        let Some((mut min_nanos, mut max_nanos)) = extremes else {
            return LatencySketch::default();
        };
        if let (Some(min), Some(max)) = (self.min_opt, self.max_opt) {
            let (min, max) = (to_nanos(min), to_nanos(max));
            if min <= max {
                (min_nanos, max_nanos) = (min, max);
            }
        }
        let sum_nanos = self
            .sum_opt
            .map(|sum| sum * unit_nanos)
            .filter(|sum| sum.is_finite() && *sum >= 0.0)
            .unwrap_or(sum_nanos);
        LatencySketch::from_parts(
            sketch_buckets.into_iter().collect(),
            num_zero,
            sum_nanos,
            min_nanos,
            max_nanos,
        )
        .unwrap_or_default()
    }
}

/// Exponential buckets folded `shift` scales down: index `i` becomes `i >> shift`.
fn downscale(buckets: &BTreeMap<i32, u64>, shift: i32) -> BTreeMap<i32, u64> {
    if shift == 0 {
        return buckets.clone();
    }
    let shift = shift.clamp(0, 31);
    let mut folded = BTreeMap::new();
    for (&index, &count) in buckets {
        *folded.entry(index >> shift).or_default() += count;
    }
    folded
}
