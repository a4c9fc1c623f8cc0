//! The lag trend over sequences: a burst and the drain after it, steady climbs and drains,
//! noise, a spike, irregular spacing and too few samples.

use super::*;

/// A deterministic jitter of a few messages, as offsets sampled a moment apart give.
const JITTER: [f64; 16] = [
    0.0, 4.0, -2.0, 1.0, 0.0, -3.0, 2.0, -1.0, 3.0, -4.0, 1.0, 0.0, 2.0, -2.0, 4.0, -3.0,
];

/// Lag 0 every 10 s for four minutes (0 to 240 s), then `after` every 10 s from 250 s.
fn flat_then(after: &[f64]) -> Vec<(u64, f64)> {
    let flat = (0..=240).step_by(10).map(|secs| (secs, 0.0));
    let then = (250..).step_by(10).zip(after.iter().copied());
    flat.chain(then).collect()
}

fn group_at(mapper: &SignalMapper, secs: u64) -> GroupLag {
    only_group(mapper, T0 + secs * SEC)
}

fn assert_drain_close(group: &GroupLag, true_secs: f64) {
    assert_eq!(group.trend, Trend::Draining, "{group:?}");
    let drain = group.time_to_drain_secs.expect("time to drain");
    assert!(
        drain >= true_secs / 2.0 && drain <= true_secs * 2.0,
        "{drain} s to drain, truly {true_secs} s"
    );
}

fn assert_close(actual: Option<f64>, expected: f64, tolerance: f64) {
    let actual = actual.expect("a value");
    assert!(
        (actual - expected).abs() <= tolerance,
        "{actual}, expected {expected}"
    );
}

#[test]
fn a_burst_after_a_flat_stretch_is_growing_at_once() {
    let mapper = lag_series(&flat_then(&[495.0]));
    assert_eq!(group_at(&mapper, 240).trend, Trend::Stable);

    let group = group_at(&mapper, 250);
    assert_eq!((group.lag, group.trend), (495.0, Trend::Growing));
    assert_eq!(group.time_to_drain_secs, None);
}

#[test]
fn the_drain_after_a_burst_is_draining_at_each_step_and_stable_once_drained() {
    let mapper = lag_series(&flat_then(&[495.0, 330.0, 165.0, 0.0]));
    for (secs, lag) in [(260, 330.0), (270, 165.0)] {
        let group = group_at(&mapper, secs);
        assert_eq!(group.lag, lag);
        assert_drain_close(&group, (280 - secs) as f64);
    }
    let drained = group_at(&mapper, 280);
    assert_eq!(
        (drained.lag, drained.trend, drained.time_to_drain_secs),
        (0.0, Trend::Stable, None)
    );
}

#[test]
fn a_slower_drain_after_a_burst_is_draining_at_its_own_rate() {
    // The demo's shape: 495 messages drained at 5 per second.
    let draining: Vec<f64> = (0..10).map(|step| 495.0 - 50.0 * step as f64).collect();
    let mapper = lag_series(&flat_then(&draining));
    for step in 1..10 {
        let group = group_at(&mapper, 250 + 10 * step);
        assert_close(group.rate_per_s, -5.0, 0.5);
        assert_drain_close(&group, group.lag / 5.0);
    }
}

#[test]
fn steady_growth_and_drain_over_five_minutes() {
    let growing: Vec<f64> = (0..=30).map(|step| 20.0 * step as f64).collect();
    let group = group_at(&lag_sequence(&growing, 10), 300);
    assert_eq!(
        (group.trend, group.time_to_drain_secs),
        (Trend::Growing, None)
    );
    assert_close(group.rate_per_s, 2.0, 1e-9);

    // Sampled every second: thinned evenly for the fit, the trend is the same.
    let every_second: Vec<f64> = (0..240).map(|secs| 2.0 * secs as f64).collect();
    let group = group_at(&lag_sequence(&every_second, 1), 239);
    assert_eq!(group.trend, Trend::Growing);
    assert_close(group.rate_per_s, 2.0, 1e-9);

    let draining: Vec<f64> = (0..=30).map(|step| 1600.0 - 40.0 * step as f64).collect();
    let group = group_at(&lag_sequence(&draining, 10), 300);
    assert_eq!(group.lag, 400.0);
    assert_eq!(group.trend, Trend::Draining);
    assert_close(group.rate_per_s, -4.0, 1e-9);
    assert_close(group.time_to_drain_secs, 100.0, 1e-6);
}

#[test]
fn a_flat_lag_with_counter_noise_stays_stable() {
    let large: Vec<f64> = (0..40).map(|step| 1000.0 + JITTER[step % 16]).collect();
    let mapper = lag_sequence(&large, 10);
    for step in 1..40 {
        let group = group_at(&mapper, 10 * step);
        assert_eq!(
            (group.trend, group.time_to_drain_secs),
            (Trend::Stable, None)
        );
    }
    // Jitter far beyond 5 % of a small lag: stable once a minute of samples shows the noise.
    let small: Vec<f64> = (0..40).map(|step| 20.0 + JITTER[step % 16]).collect();
    let mapper = lag_sequence(&small, 10);
    for step in 6..40 {
        let group = group_at(&mapper, 10 * step);
        assert_eq!(
            (group.trend, group.time_to_drain_secs),
            (Trend::Stable, None)
        );
    }
}

#[test]
fn a_drain_too_slow_to_show_within_a_minute_is_read_from_the_window() {
    let values: Vec<f64> = (0..=30)
        .map(|step| 1000.0 - 2.0 * step as f64 + JITTER[step % 16])
        .collect();
    let group = group_at(&lag_sequence(&values, 10), 300);
    assert_close(group.rate_per_s, -0.2, 0.05);
    assert_drain_close(&group, group.lag / 0.2);
}

#[test]
fn a_level_reached_after_a_climb_is_stable_not_growing() {
    let mut values = vec![0.0; 15];
    values.extend([495.0; 25]);
    let mapper = lag_sequence(&values, 10);
    assert_eq!(group_at(&mapper, 150).trend, Trend::Growing);
    for secs in (160..400).step_by(10) {
        assert_eq!(group_at(&mapper, secs).trend, Trend::Stable, "at {secs} s");
    }
}

#[test]
fn a_single_spike_sample_grows_falls_and_settles() {
    let mut values = vec![100.0; 25];
    values.push(600.0);
    values.extend([100.0; 15]);
    let mapper = lag_sequence(&values, 10);
    assert_eq!(group_at(&mapper, 250).trend, Trend::Growing);
    assert_eq!(group_at(&mapper, 260).trend, Trend::Draining, "it did fall");
    for secs in (270..400).step_by(10) {
        let group = group_at(&mapper, secs);
        assert_eq!(
            (group.trend, group.time_to_drain_secs),
            (Trend::Stable, None)
        );
    }
}

#[test]
fn irregular_spacing_and_too_few_samples() {
    let single = group_at(&lag_series(&[(0, 40.0)]), 0);
    assert_eq!(
        (single.trend, single.rate_per_s, single.time_to_drain_secs),
        (Trend::Unknown, None, None)
    );

    let times = [0, 7, 19, 22, 41, 55, 58, 80, 95, 99, 130];
    let points: Vec<(u64, f64)> = times
        .iter()
        .map(|&secs| (secs, 900.0 - 3.0 * secs as f64))
        .collect();
    let mapper = lag_series(&points);
    for &secs in &times[2..] {
        let group = group_at(&mapper, secs);
        assert_eq!(group.trend, Trend::Draining, "at {secs} s");
        assert_close(group.rate_per_s, -3.0, 1e-9);
        assert_close(group.time_to_drain_secs, group.lag / 3.0, 1e-6);
    }

    // Two samples minutes apart are still a trend.
    let group = group_at(&lag_series(&[(0, 10.0), (120, 60.0)]), 120);
    assert_eq!(group.trend, Trend::Growing);
}

#[test]
fn partitions_reporting_at_different_times_are_summed_before_the_trend() {
    let mut mapper = mapper();
    for step in 0..=30 {
        for (partition, offset_secs) in [(0, 0), (1, 5)] {
            let secs = 10 * step + offset_secs;
            mapper.observe(&point(
                "collector",
                "kafka.consumer_group.lag",
                T0 + secs * SEC,
                attrs(&[
                    ("group", s("g")),
                    ("topic", s("t")),
                    ("partition", i(partition)),
                ]),
                gauge(400.0 - secs as f64),
            ));
        }
    }
    let group = group_at(&mapper, 305);
    assert_eq!(group.lag, 100.0 + 95.0);
    assert_eq!(group.trend, Trend::Draining);
    assert_close(group.rate_per_s, -2.0, 0.2);
}

#[test]
fn trend_follows_a_sequence_of_points() {
    let at = |count: usize| (count as u64 - 1) * 15;

    let growing = [0.0, 100.0, 200.0, 300.0, 400.0, 500.0];
    let group = group_at(&lag_sequence(&growing, 15), at(growing.len()));
    assert_eq!(group.trend, Trend::Growing);
    assert_close(group.rate_per_s, 100.0 / 15.0, 1e-9);
    assert_eq!(group.time_to_drain_secs, None);

    let draining = [600.0, 500.0, 400.0, 300.0];
    let group = group_at(&lag_sequence(&draining, 15), at(draining.len()));
    assert_eq!(group.trend, Trend::Draining);
    assert_close(group.time_to_drain_secs, 300.0 / (100.0 / 15.0), 1e-6);

    let stable = [1000.0, 1004.0, 998.0, 1001.0, 1000.0];
    let group = group_at(&lag_sequence(&stable, 15), at(stable.len()));
    assert_eq!(group.trend, Trend::Stable);

    // Drained: nothing waiting is stable, with nothing left to drain.
    let drained = [50.0, 20.0, 0.0];
    let group = group_at(&lag_sequence(&drained, 15), at(drained.len()));
    assert_eq!((group.lag, group.time_to_drain_secs), (0.0, None));
    assert_eq!(group.trend, Trend::Stable, "nothing waiting");

    // Only the trend window counts: an old climb does not make a flat present grow.
    let mut values = vec![0.0, 1000.0, 2000.0];
    values.extend([2000.0; 30]);
    let group = group_at(&lag_sequence(&values, 15), at(values.len()));
    assert_eq!(group.trend, Trend::Stable);
}

#[test]
fn a_lag_refreshed_every_five_seconds_but_reported_every_second_drains_between_its_steps() {
    // The demo's exporter reads the lag every second, the consumer's position moves every
    // five: the series is a staircase 0, 80, 282, 282, 232, 182, … in steps of five seconds.
    let levels = [
        0.0, 80.0, 282.0, 282.0, 232.0, 182.0, 132.0, 80.0, 31.0, 0.0,
    ];
    let mut points: Vec<(u64, f64)> = (0..240).map(|secs| (secs, 0.0)).collect();
    for (step, level) in levels.iter().enumerate() {
        let start = 240 + 5 * step as u64;
        points.extend((start..start + 5).map(|secs| (secs, *level)));
    }
    let mapper = lag_series(&points);
    // Every second of the drain, whether just after a step or just before the next one; the
    // time to drain within a factor of two while at least five seconds are left (it reaches 0
    // at 285 s).
    for secs in 261..285 {
        let group = group_at(&mapper, secs);
        assert_eq!(group.trend, Trend::Draining, "at {secs} s: {group:?}");
        if secs <= 280 {
            assert_drain_close(&group, (285 - secs) as f64);
        }
    }
    let drained = group_at(&mapper, 286);
    assert_eq!((drained.lag, drained.trend), (0.0, Trend::Stable));
}
