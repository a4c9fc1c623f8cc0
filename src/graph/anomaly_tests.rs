//! The method on synthetic series: a month of per-minute traffic with a daily curve and a
//! little noise, windows cut the way the query layer cuts them ([`history_range`]).

use std::f64::consts::TAU;

use super::*;

/// The start of the window judged: a month into the series.
const NOW: i64 = 30 * DAY_MINUTES + 9 * 60;
const LEN: i64 = 15;

/// ±5 %, the same for the same minute.
fn noise(minute: i64) -> f64 {
    1.0 + ((minute * 7919).rem_euclid(101) as f64 / 1000.0 - 0.05)
}

/// Calls per minute: 20 at night to 180 in the afternoon, every day alike.
fn daily(minute: i64) -> f64 {
    let phase = TAU * (minute.rem_euclid(DAY_MINUTES) as f64 / DAY_MINUTES as f64);
    100.0 * (1.0 + 0.8 * (phase - TAU / 4.0).sin()) * noise(minute)
}

fn window(from: i64) -> MinuteRange {
    MinuteRange::new(UnixMinute(from), UnixMinute(from + LEN))
}

/// A window's rate sample from calls per minute.
fn rate_sample(calls_per_minute: &dyn Fn(i64) -> f64, range: MinuteRange) -> Sample {
    let calls: f64 = (range.from().get()..range.to().get())
        .map(calls_per_minute)
        .sum();
    let secs = range.num_minutes() as f64 * 60.0;
    Sample {
        value: Some(calls.round() / secs),
        calls: calls.round() as u64,
        secs,
    }
}

/// A window's p95 sample from a p95 per minute (600 timed calls a window).
fn p95_sample(p95_ms: &dyn Fn(i64) -> f64, range: MinuteRange) -> Sample {
    let minutes = range.from().get()..range.to().get();
    let mean = minutes.map(p95_ms).sum::<f64>() / range.num_minutes() as f64;
    Sample {
        value: Some(mean),
        calls: 600,
        secs: range.num_minutes() as f64 * 60.0,
    }
}

/// The verdict on the window from `at` of `figure`, whose series starts at `since`.
fn verdict(figure: Figure, series: &dyn Fn(i64) -> f64, at: i64, since: i64) -> Verdict {
    let sample = |range: MinuteRange| match figure {
        Figure::P95Ms => p95_sample(series, range),
        _ => rate_sample(series, range),
    };
    let now = window(at);
    let samples = |reference| -> Vec<Option<Sample>> {
        history_range(now, reference)
            .chunks(LEN)
            .map(|range| (range.from().get() >= since).then(|| sample(range)))
            .collect()
    };
    judge(
        figure,
        &sample(now),
        &History {
            day_before: samples(Reference::DayBefore),
            week_before: samples(Reference::WeekBefore),
        },
    )
}

fn anomaly(verdict: Verdict) -> Departure {
    match verdict {
        Verdict::Anomaly(departure) => departure,
        other => panic!("expected an anomaly, got {other:?}"),
    }
}

fn is_usual(verdict: Verdict) -> bool {
    matches!(verdict, Verdict::Usual(_))
}

#[test]
fn a_spike_is_an_anomaly() {
    let spiking = |minute: i64| daily(minute) * if minute >= NOW { 5.0 } else { 1.0 };
    let found = anomaly(verdict(Figure::Rate, &spiking, NOW, 0));
    assert_eq!(found.direction(), Direction::Up);
    let ratio = found.ratio().expect("a baseline");
    assert!((4.5..5.5).contains(&ratio), "×{ratio}");
    assert!(found.score >= MIN_SCORE);

    let slow = |minute: i64| {
        if minute >= NOW {
            80.0
        } else {
            20.0 * noise(minute)
        }
    };
    let found = anomaly(verdict(Figure::P95Ms, &slow, NOW, 0));
    assert_eq!((found.direction(), found.now), (Direction::Up, 80.0));
    assert!((19.0..21.0).contains(&found.baseline), "{found:?}");

    // Traffic stopping is one too.
    let stopped = |minute: i64| if minute >= NOW { 0.0 } else { daily(minute) };
    assert_eq!(
        anomaly(verdict(Figure::Rate, &stopped, NOW, 0)).direction(),
        Direction::Down
    );
}

#[test]
fn a_level_shift_is_an_anomaly_at_its_start_not_before() {
    let shifted = |minute: i64| daily(minute) * if minute >= NOW { 3.0 } else { 1.0 };
    let found = anomaly(verdict(Figure::Rate, &shifted, NOW, 0));
    assert_eq!(found.direction(), Direction::Up);
    assert!(is_usual(verdict(Figure::Rate, &shifted, NOW - LEN, 0)));
    // A week after it started, yesterday and last week both have it: the new normal.
    assert!(is_usual(verdict(
        Figure::Rate,
        &shifted,
        NOW + WEEK_MINUTES,
        0
    )));
}

#[test]
fn a_daily_pattern_is_not_an_anomaly_at_any_hour() {
    for hour in 0..24 {
        let at = NOW + hour * 60;
        let found = verdict(Figure::Rate, &daily, at, 0);
        assert!(is_usual(found), "{hour}:00: {found:?}");
    }
    // Compared with three hours before instead, the morning would look like change: 100 → 170
    // calls a minute between 6:00 and 10:00.
    assert!(daily(NOW - 180) < daily(NOW + 60) * 0.65);
}

#[test]
fn a_quiet_yesterday_is_no_anomaly_when_last_week_agrees() {
    let yesterday = NOW / DAY_MINUTES - 1;
    let weekly = |minute: i64| {
        let quiet = minute / DAY_MINUTES == yesterday;
        daily(minute) * if quiet { 0.4 } else { 1.0 }
    };
    let found = verdict(Figure::Rate, &weekly, NOW, 0);
    match found {
        Verdict::Usual(departure) => assert_eq!(departure.reference, Reference::WeekBefore),
        other => panic!("expected usual, got {other:?}"),
    }
}

#[test]
fn too_little_history_gives_no_verdict() {
    let spiking = |minute: i64| daily(minute) * if minute >= NOW { 5.0 } else { 1.0 };
    assert_eq!(
        verdict(Figure::Rate, &spiking, NOW, NOW - 180),
        Verdict::NoBaseline
    );
    // Two windows of yesterday's five are not enough either.
    let partial = NOW - DAY_MINUTES + LEN;
    assert_eq!(
        verdict(Figure::Rate, &spiking, NOW, partial),
        Verdict::NoBaseline
    );
    // A day of history is: the spike stands out against yesterday alone.
    let found = anomaly(verdict(Figure::Rate, &spiking, NOW, NOW - DAY_MINUTES - 60));
    assert_eq!(found.reference, Reference::DayBefore);
}

#[test]
fn low_traffic_gives_no_verdict_and_noise_is_usual() {
    // 7 calls a window doubling to 15: too few to tell.
    let sparse = |minute: i64| if minute >= NOW { 1.0 } else { 0.5 };
    assert_eq!(verdict(Figure::Rate, &sparse, NOW, 0), Verdict::TooFewCalls);
    let errors = |failed: u64, calls: u64| Sample {
        value: Some(failed as f64 / calls as f64),
        calls,
        secs: 900.0,
    };
    let history = History {
        day_before: vec![Some(errors(10, 1000)); 5],
        week_before: vec![Some(errors(12, 1000)); 5],
    };
    // 1 % before; 1 of 10 calls failing is too few calls, 2.5 % of 1,000 within the floor.
    assert_eq!(
        judge(Figure::ErrorRate, &errors(1, 10), &history),
        Verdict::TooFewCalls
    );
    assert!(is_usual(judge(
        Figure::ErrorRate,
        &errors(25, 1000),
        &history
    )));
    let found = anomaly(judge(Figure::ErrorRate, &errors(150, 1000), &history));
    assert_eq!(found.direction(), Direction::Up);
    // Sub-millisecond p95s tripling stay within the absolute floor.
    let fast = |minute: i64| if minute >= NOW { 0.9 } else { 0.3 };
    assert!(is_usual(verdict(Figure::P95Ms, &fast, NOW, 0)));
}
