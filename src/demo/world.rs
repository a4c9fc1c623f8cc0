//! The demo shop's state, apart from any telemetry: the schedule of trouble, the payments
//! circuit breaker (resilience4j's count-based rules) and the Kafka consumer queues whose lag
//! grows during bursts and drains after. Pure and clock-injected (schedule seconds).

use std::collections::VecDeque;

/// One cycle of the schedule, in schedule seconds.
pub const CYCLE_SECS: f64 = 60.0;
/// Partitions of `orders.created`.
pub const NUM_PARTITIONS: usize = 3;
/// Messages a consumer group holds before the oldest are counted as lag without spans.
const MAX_QUEUED: usize = 20_000;

/// SplitMix64 seeded random numbers: the same seed gives the same run.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(1);
        crate::model::split_mix(self.0)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, probability: f64) -> bool {
        self.unit() < probability
    }

    /// A latency around `median_ms` with a long right tail (log-normal-ish), in nanoseconds.
    pub fn latency_nanos(&mut self, median_ms: f64) -> u64 {
        let spread = (-2.0 * self.unit().max(1e-12).ln()).sqrt() * 0.45;
        let sign = if self.chance(0.5) { 1.0 } else { -0.6 };
        (median_ms * (sign * spread).exp() * 1e6) as u64
    }
}

/// Where in the schedule a moment falls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    /// The payment provider fails most calls.
    pub payment_failures: bool,
    /// Orders publish many more events than consumers can take.
    pub kafka_burst: bool,
    /// The users service answers slowly.
    pub latency_spike: bool,
}

impl Phase {
    /// The burst comes just before the payment failures, as trouble does in one incident:
    /// while the breaker is open, the consumers' lag is still high and draining.
    pub fn at(schedule_secs: f64) -> Self {
        let t = schedule_secs.rem_euclid(CYCLE_SECS);
        Self {
            payment_failures: (8.0..22.0).contains(&t),
            kafka_burst: (2.0..10.0).contains(&t),
            latency_spike: (40.0..48.0).contains(&t),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    /// resilience4j's `state` tag value.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// resilience4j's count-based breaker: opens when at least half of the last ten calls failed
/// (after five), waits, lets three trial calls through half-open, and closes if they succeed.
#[derive(Debug, Clone)]
pub struct Breaker {
    state: BreakerState,
    outcomes: VecDeque<bool>,
    opened_at: f64,
    num_trials: u32,
    num_trial_failures: u32,
}

const WINDOW_CALLS: usize = 10;
const MIN_CALLS: usize = 5;
const FAILURE_RATE: f64 = 0.5;
const OPEN_WAIT_SECS: f64 = 6.0;
const TRIAL_CALLS: u32 = 3;

impl Default for Breaker {
    fn default() -> Self {
        Self {
            state: BreakerState::Closed,
            outcomes: VecDeque::with_capacity(WINDOW_CALLS),
            opened_at: 0.0,
            num_trials: 0,
            num_trial_failures: 0,
        }
    }
}

impl Breaker {
    pub fn state(&self, schedule_secs: f64) -> BreakerState {
        if self.state == BreakerState::Open && schedule_secs - self.opened_at >= OPEN_WAIT_SECS {
            BreakerState::HalfOpen
        } else {
            self.state
        }
    }

    /// Whether a call may go through now (else it is short-circuited).
    pub fn permits(&mut self, schedule_secs: f64) -> bool {
        match self.state(schedule_secs) {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen => {
                if self.state == BreakerState::Open {
                    self.state = BreakerState::HalfOpen;
                    self.num_trials = 0;
                    self.num_trial_failures = 0;
                }
                self.num_trials < TRIAL_CALLS
            }
        }
    }

    /// Records the outcome of a permitted call.
    pub fn record(&mut self, succeeded: bool, schedule_secs: f64) {
        match self.state {
            BreakerState::Closed => {
                if self.outcomes.len() == WINDOW_CALLS {
                    self.outcomes.pop_front();
                }
                self.outcomes.push_back(succeeded);
                let failures = self.outcomes.iter().filter(|ok| !**ok).count();
                if self.outcomes.len() >= MIN_CALLS
                    && failures as f64 / self.outcomes.len() as f64 >= FAILURE_RATE
                {
                    self.open(schedule_secs);
                }
            }
            BreakerState::HalfOpen => {
                self.num_trials += 1;
                self.num_trial_failures += u32::from(!succeeded);
                if self.num_trial_failures * 2 >= TRIAL_CALLS && self.num_trial_failures > 0 {
                    self.open(schedule_secs);
                } else if self.num_trials >= TRIAL_CALLS {
                    self.state = BreakerState::Closed;
                    self.outcomes.clear();
                }
            }
            BreakerState::Open => {}
        }
    }

    fn open(&mut self, schedule_secs: f64) {
        self.state = BreakerState::Open;
        self.opened_at = schedule_secs;
        self.outcomes.clear();
    }
}

/// A message waiting for one consumer group, with what its consumer span needs.
#[derive(Debug, Clone)]
pub struct Message<C> {
    pub partition: usize,
    pub produced_unix_nano: u64,
    pub context: C,
}

/// One consumer group's backlog on `orders.created`.
#[derive(Debug)]
pub struct ConsumerGroup<C> {
    pub name: &'static str,
    /// Messages it processes per second at most.
    pub capacity_per_sec: f64,
    queue: VecDeque<Message<C>>,
    /// Messages beyond [`MAX_QUEUED`]: still lag, no longer tracked one by one.
    num_untracked: [u64; NUM_PARTITIONS],
    credit: f64,
}

impl<C> ConsumerGroup<C> {
    pub fn new(name: &'static str, capacity_per_sec: f64) -> Self {
        Self {
            name,
            capacity_per_sec,
            queue: VecDeque::new(),
            num_untracked: [0; NUM_PARTITIONS],
            credit: 0.0,
        }
    }

    pub fn publish(&mut self, message: Message<C>) {
        if self.queue.len() >= MAX_QUEUED {
            self.num_untracked[message.partition] += 1;
        } else {
            self.queue.push_back(message);
        }
    }

    /// The messages the group gets through in `elapsed_secs`, oldest first.
    pub fn consume(&mut self, elapsed_secs: f64) -> Vec<Message<C>> {
        self.credit =
            (self.credit + self.capacity_per_sec * elapsed_secs).min(self.capacity_per_sec);
        let mut taken = Vec::new();
        while self.credit >= 1.0 {
            if let Some(partition) = self.num_untracked.iter().position(|count| *count > 0) {
                self.num_untracked[partition] -= 1;
            } else if let Some(message) = self.queue.pop_front() {
                taken.push(message);
            } else {
                self.credit = 0.0;
                break;
            }
            self.credit -= 1.0;
        }
        taken
    }

    /// Messages waiting, per partition.
    pub fn lag(&self) -> [u64; NUM_PARTITIONS] {
        let mut lag = self.num_untracked;
        for message in &self.queue {
            lag[message.partition] += 1;
        }
        lag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_opens_on_failures_half_opens_after_the_wait_and_closes_on_success() {
        let mut breaker = Breaker::default();
        let mut t = 0.0;
        while breaker.state(t) == BreakerState::Closed {
            assert!(breaker.permits(t));
            breaker.record(false, t);
            t += 0.1;
        }
        assert_eq!(breaker.state(t), BreakerState::Open);
        assert!(!breaker.permits(t + 1.0));
        let later = t + OPEN_WAIT_SECS;
        assert_eq!(breaker.state(later), BreakerState::HalfOpen);
        for _ in 0..TRIAL_CALLS {
            assert!(breaker.permits(later));
            breaker.record(true, later);
        }
        assert_eq!(breaker.state(later), BreakerState::Closed);
    }

    #[test]
    fn lag_grows_while_publishing_beyond_capacity_and_drains_after() {
        let mut group: ConsumerGroup<()> = ConsumerGroup::new("g", 10.0);
        for step in 0..10 {
            for _ in 0..30 {
                group.publish(Message {
                    partition: step % NUM_PARTITIONS,
                    produced_unix_nano: 0,
                    context: (),
                });
            }
            group.consume(1.0);
        }
        let peak: u64 = group.lag().iter().sum();
        assert_eq!(peak, 200);
        for _ in 0..30 {
            group.consume(1.0);
        }
        assert_eq!(group.lag(), [0; NUM_PARTITIONS]);
    }

    #[test]
    fn the_schedule_has_each_kind_of_trouble_once_a_cycle() {
        let phases: Vec<Phase> = (0..60).map(|t| Phase::at(f64::from(t))).collect();
        assert_eq!(phases.iter().filter(|p| p.payment_failures).count(), 14);
        assert_eq!(phases.iter().filter(|p| p.kafka_burst).count(), 8);
        assert_eq!(phases.iter().filter(|p| p.latency_spike).count(), 8);
    }
}
