use super::*;

/// SplitMix64: deterministic, well-spread test data without a dependency.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut value = self.0;
        value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        value ^ (value >> 31)
    }

    /// Uniform in (0, 1].
    fn next_unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn next_normal(&mut self) -> f64 {
        let radius = (-2.0 * self.next_unit().ln()).sqrt();
        radius * (std::f64::consts::TAU * self.next_unit()).cos()
    }
}

const QUANTILES: [f64; 12] = [
    0.0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0,
];

fn sketch_of(samples: &[u64]) -> LatencySketch {
    let mut sketch = LatencySketch::default();
    for &nanos in samples {
        sketch.record(nanos);
    }
    sketch
}

/// Every checked quantile is within 1 % of the exact lower quantile of the sorted data.
fn assert_accurate(samples: &[u64]) {
    let sketch = sketch_of(samples);
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    for q in QUANTILES {
        let rank = (q * (sorted.len() - 1) as f64).floor() as usize;
        let exact = sorted[rank] as f64;
        let estimate = sketch.quantile_nanos(q).expect("not empty");
        let relative_error = if exact == 0.0 {
            estimate
        } else {
            (estimate - exact).abs() / exact
        };
        assert!(
            relative_error <= 0.01,
            "q={q}: estimate {estimate} vs exact {exact} (error {relative_error})"
        );
        assert!(relative_error <= RELATIVE_ACCURACY + 1e-9, "within α");
    }
    assert_eq!(sketch.count(), samples.len() as u64);
    assert_eq!(sketch.min_nanos(), sorted[0]);
    assert_eq!(sketch.max_nanos(), sorted[sorted.len() - 1]);
}

#[test]
fn constants_match_the_relative_accuracy() {
    let gamma = (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY);
    assert!((GAMMA - gamma).abs() < 1e-15);
    assert!((LN_GAMMA - gamma.ln()).abs() < 1e-15);
    assert!((INV_LN_GAMMA - 1.0 / gamma.ln()).abs() < 1e-9);
    assert_eq!(bucket_index(u64::MAX), MAX_BUCKET_INDEX);
    assert_eq!(bucket_index(1), 0);
}

#[test]
fn every_value_is_within_alpha_of_its_bucket_value() {
    let mut rng = Rng(7);
    let values = (0..20_000).map(|_| rng.next_u64() >> (rng.next_u64() % 64));
    for nanos in values.chain([1, 2, 3, 999, 1_000, 1_000_000, u64::MAX]) {
        if nanos == 0 {
            continue;
        }
        let estimate = bucket_value_nanos(bucket_index(nanos));
        let relative_error = (estimate - nanos as f64).abs() / nanos as f64;
        assert!(relative_error <= RELATIVE_ACCURACY + 1e-12, "{nanos}");
    }
}

#[test]
fn quantiles_of_uniform_latencies_are_within_one_percent() {
    let mut rng = Rng(1);
    // 1 µs .. 2 s, like a mix of cache hits and slow calls.
    let samples: Vec<u64> = (0..50_000)
        .map(|_| 1_000 + rng.next_u64() % 2_000_000_000)
        .collect();
    assert_accurate(&samples);
}

#[test]
fn quantiles_of_lognormal_latencies_are_within_one_percent() {
    let mut rng = Rng(2);
    // Median 20 ms, σ = 1.2: the long tail real services show.
    let samples: Vec<u64> = (0..50_000)
        .map(|_| (20_000_000.0 * (1.2 * rng.next_normal()).exp()) as u64)
        .collect();
    assert_accurate(&samples);
}

#[test]
fn zero_durations_use_the_zero_bucket() {
    let samples = [0, 0, 0, 5_000, 10_000];
    let sketch = sketch_of(&samples);
    assert_eq!(sketch.zero_count(), 3);
    assert_eq!(sketch.buckets().len(), 2);
    assert_eq!(sketch.quantile_nanos(0.5), Some(0.0));
    assert_accurate(&samples);
}

#[test]
fn empty_sketch_and_bad_quantiles_give_none() {
    let empty = LatencySketch::default();
    assert!(empty.is_empty());
    assert_eq!(empty.quantile_nanos(0.5), None);
    assert_eq!(empty.mean_nanos(), None);
    let sketch = sketch_of(&[10, 20]);
    assert_eq!(sketch.quantile_nanos(-0.1), None);
    assert_eq!(sketch.quantile_nanos(1.5), None);
    assert_eq!(sketch.quantile_nanos(f64::NAN), None);
    assert_eq!(sketch.mean_nanos(), Some(15.0));
}

#[test]
fn merge_equals_recording_everything_in_one_sketch() {
    let mut rng = Rng(3);
    let samples: Vec<u64> = (0..9_000)
        .map(|index| match index % 7 {
            0 => 0,
            _ => rng.next_u64() % 5_000_000_000,
        })
        .collect();
    let whole = sketch_of(&samples);
    let mut merged = LatencySketch::default();
    for part in samples.chunks(2_500) {
        merged.merge(&sketch_of(part));
    }
    merged.merge(&LatencySketch::default());
    assert_eq!(merged, whole);

    let mut from_empty = LatencySketch::default();
    from_empty.merge(&whole);
    assert_eq!(from_empty, whole);
}

#[test]
fn merge_all_equals_merging_one_by_one() {
    let mut rng = Rng(5);
    // Parts of different spreads, empty ones and one of zeros only among them.
    let parts: Vec<LatencySketch> = (0..40)
        .map(|part| match part % 9 {
            0 => LatencySketch::default(),
            1 => sketch_of(&[0, 0]),
            _ => {
                let scale = 1_000_u64 << (part % 20);
                let values: Vec<u64> = (0..part * 13).map(|_| rng.next_u64() % scale).collect();
                sketch_of(&values)
            }
        })
        .collect();
    let mut one_by_one = LatencySketch::default();
    for part in &parts {
        one_by_one.merge(part);
    }
    assert_eq!(LatencySketch::merge_all(&parts), one_by_one);
    assert_eq!(
        LatencySketch::merge_all(&parts[..0]),
        LatencySketch::default()
    );
    assert_eq!(
        LatencySketch::merge_all(&parts[..1]),
        LatencySketch::default()
    );
    assert_eq!(LatencySketch::merge_all(&parts[1..3]), {
        let mut two = parts[1].clone();
        two.merge(&parts[2]);
        two
    });
    assert_eq!(
        LatencySketch::merge_all(&parts[..3]),
        LatencySketch::merge_all(&parts[1..3])
    );
}

#[test]
fn merging_into_the_same_buckets_or_new_ones_equals_recording_both() {
    let wide = [0, 1_000, 2_000, 50_000, 3_000_000];
    // Into buckets the sketch has (added in place), into new ones and between them (merged).
    for other in [
        &[1_000, 50_000, 50_000][..],
        &[500, 1_000],
        &[9_000_000],
        &[2_100, 0],
    ] {
        let mut merged = sketch_of(&wide);
        merged.merge(&sketch_of(other));
        let both: Vec<u64> = wide.iter().chain(other).copied().collect();
        assert_eq!(merged, sketch_of(&both), "{other:?}");
    }
}

#[test]
fn serde_round_trip_is_exact() {
    let mut rng = Rng(4);
    let samples: Vec<u64> = (0..1_000).map(|_| rng.next_u64() % 10_000_000).collect();
    let sketch = sketch_of(&samples);
    let json = serde_json::to_string(&sketch).expect("serialises");
    let back: LatencySketch = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(back, sketch);
    assert_eq!(
        serde_json::from_str::<LatencySketch>(
            &serde_json::to_string(&LatencySketch::default()).expect("serialises")
        )
        .expect("deserialises"),
        LatencySketch::default()
    );
}

#[test]
fn stored_parts_are_validated() {
    let sketch = sketch_of(&[0, 7, 7_000, 7_000_000]);
    let rebuilt = LatencySketch::from_parts(
        sketch.buckets().to_vec(),
        sketch.zero_count(),
        sketch.sum_nanos(),
        sketch.min_nanos(),
        sketch.max_nanos(),
    );
    assert_eq!(rebuilt, Ok(sketch));

    let unsorted = LatencySketch::from_parts(vec![(5, 1), (3, 1)], 0, 0.0, 1, 2);
    assert_eq!(
        unsorted,
        Err(SketchError::UnsortedBuckets {
            previous: 5,
            index: 3
        })
    );
    let empty_bucket = LatencySketch::from_parts(vec![(5, 0)], 0, 0.0, 0, 0);
    assert_eq!(empty_bucket, Err(SketchError::EmptyBucket { index: 5 }));
    let out_of_range = LatencySketch::from_parts(vec![(-1, 1)], 0, 0.0, 0, 0);
    assert_eq!(
        out_of_range,
        Err(SketchError::IndexOutOfRange { index: -1 })
    );

    let wrong_count = r#"{"buckets":[[3,2]],"zero_count":0,"count":5,"sum_nanos":6.0,"min_nanos":3,"max_nanos":3}"#;
    let error = serde_json::from_str::<LatencySketch>(wrong_count).expect_err("count mismatch");
    assert!(error.to_string().contains("does not match"), "{error}");
}

#[test]
fn find_agrees_with_binary_search() {
    let mut rng = Rng(5);
    for _ in 0..200 {
        let mut sketch = LatencySketch::default();
        let spread = 1 + rng.next_u64() % 60;
        for _ in 0..(rng.next_u64() % 300) {
            sketch.record(1 + (rng.next_u64() % (1 << spread)));
        }
        for index in -2..=MAX_BUCKET_INDEX + 2 {
            let expected = sketch.buckets.binary_search_by_key(&index, |&(i, _)| i);
            assert_eq!(sketch.find(index), expected, "index {index}");
        }
    }
}

#[test]
fn every_rank_reads_the_bucket_that_holds_it_from_either_end() {
    let mut samples: Vec<u64> = vec![0, 0, 0];
    samples.extend((1..=400u64).map(|i| i * i * 997 % 5_000_000 + 1));
    samples.extend([7_000_000_000, 7_000_000_000, 12]);
    let sketch = sketch_of(&samples);
    samples.sort_unstable();
    let (min, max) = (samples[0] as f64, samples[samples.len() - 1] as f64);
    for rank in 0..samples.len() {
        let q = rank as f64 / (samples.len() - 1) as f64;
        let rank = (q * (samples.len() - 1) as f64).floor() as usize;
        let value = samples[rank];
        // The ends are the recorded extremes themselves.
        let expected = if q == 1.0 {
            max
        } else if value == 0 {
            0.0
        } else {
            bucket_value_nanos(bucket_index(value)).clamp(min, max)
        };
        assert_eq!(sketch.quantile_nanos(q), Some(expected), "rank {rank}");
    }
}
