//! Circuit breakers per (reporting service, breaker name): current state, since when, and the
//! transitions seen. Bounded: breakers by number, transitions per breaker (oldest let go).

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use super::{Rejection, SignalCounters};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
    /// Held open by an operator (resilience4j `forced_open`, Polly isolation).
    ForcedOpen,
    Disabled,
    MetricsOnly,
}

impl BreakerState {
    pub const ALL: [BreakerState; 6] = [
        Self::Closed,
        Self::Open,
        Self::HalfOpen,
        Self::ForcedOpen,
        Self::Disabled,
        Self::MetricsOnly,
    ];

    /// resilience4j's `state` tag values (and ours), case- and separator-insensitive.
    pub fn from_name(name: &str) -> Option<Self> {
        let normal: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        match normal.as_str() {
            "closed" => Some(Self::Closed),
            "open" => Some(Self::Open),
            "halfopen" => Some(Self::HalfOpen),
            "forcedopen" | "isolated" => Some(Self::ForcedOpen),
            "disabled" => Some(Self::Disabled),
            "metricsonly" => Some(Self::MetricsOnly),
            _ => None,
        }
    }

    /// Our `circuit_breaker.state` numbers.
    pub fn from_number(value: f64) -> Option<Self> {
        match value {
            0.0 => Some(Self::Closed),
            1.0 => Some(Self::Open),
            2.0 => Some(Self::HalfOpen),
            _ => None,
        }
    }

    /// Polly's state-change events.
    pub fn from_polly_event(event: &str) -> Option<Self> {
        match event {
            "OnCircuitOpened" => Some(Self::Open),
            "OnCircuitClosed" => Some(Self::Closed),
            "OnCircuitHalfOpened" => Some(Self::HalfOpen),
            "OnCircuitIsolated" => Some(Self::ForcedOpen),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
            Self::ForcedOpen => "forced_open",
            Self::Disabled => "disabled",
            Self::MetricsOnly => "metrics_only",
        }
    }

    /// Rejects calls.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Open | Self::ForcedOpen)
    }

    /// Higher is worse: the badge an edge with several breakers shows.
    pub fn severity(self) -> u8 {
        match self {
            Self::Open | Self::ForcedOpen => 3,
            Self::HalfOpen => 2,
            Self::Closed => 1,
            Self::Disabled | Self::MetricsOnly => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BreakerKey {
    /// `service.name` of the resource that reports the breaker.
    pub service: String,
    pub name: String,
}

/// A breaker seen in a state at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerObservation {
    pub key: BreakerKey,
    /// What it guards, when the metric names it (`peer.service`).
    pub target: Option<String>,
    pub state: BreakerState,
    pub time_unix_nano: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    /// `None` for the first state seen.
    pub from: Option<BreakerState>,
    pub to: BreakerState,
    pub at_unix_nano: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Breaker {
    pub service: String,
    pub name: String,
    pub target: Option<String>,
    pub state: BreakerState,
    pub since_unix_nano: u64,
    pub last_seen_unix_nano: u64,
    /// Oldest first.
    pub transitions: VecDeque<Transition>,
    /// Transitions let go to stay within the limit.
    pub num_transitions_dropped: u64,
}

#[derive(Debug)]
pub struct BreakerTracker {
    breakers: BTreeMap<BreakerKey, Breaker>,
    max_breakers: usize,
    max_transitions: usize,
}

impl BreakerTracker {
    pub fn new(max_breakers: usize, max_transitions: usize) -> Self {
        Self {
            breakers: BTreeMap::new(),
            max_breakers,
            max_transitions,
        }
    }

    pub fn num_breakers(&self) -> usize {
        self.breakers.len()
    }

    pub fn record(&mut self, observation: BreakerObservation, counters: &mut SignalCounters) {
        let BreakerObservation {
            key,
            target,
            state,
            time_unix_nano,
        } = observation;
        if !self.breakers.contains_key(&key) && self.breakers.len() >= self.max_breakers {
            counters.reject(Rejection::TooManySeries);
            return;
        }
        counters.num_breaker_points += 1;
        let breaker = self.breakers.entry(key.clone()).or_insert_with(|| Breaker {
            service: key.service,
            name: key.name,
            target: None,
            state,
            since_unix_nano: time_unix_nano,
            last_seen_unix_nano: time_unix_nano,
            transitions: VecDeque::from([Transition {
                from: None,
                to: state,
                at_unix_nano: time_unix_nano,
            }]),
            num_transitions_dropped: 0,
        });
        if target.is_some() {
            breaker.target = target;
        }
        if time_unix_nano < breaker.last_seen_unix_nano {
            // Out of order: the state then is already superseded.
            counters.reject(Rejection::OutOfOrder);
            return;
        }
        breaker.last_seen_unix_nano = time_unix_nano;
        if breaker.state == state {
            return;
        }
        breaker.transitions.push_back(Transition {
            from: Some(breaker.state),
            to: state,
            at_unix_nano: time_unix_nano,
        });
        if breaker.transitions.len() > self.max_transitions {
            breaker.transitions.pop_front();
            breaker.num_transitions_dropped += 1;
        }
        breaker.state = state;
        breaker.since_unix_nano = time_unix_nano;
    }

    /// Forgets breakers not reported for longer than the history.
    pub fn expire(&mut self, cutoff_unix_nano: u64) {
        self.breakers
            .retain(|_, breaker| breaker.last_seen_unix_nano >= cutoff_unix_nano);
    }

    pub fn breakers(&self) -> impl Iterator<Item = &Breaker> {
        self.breakers.values()
    }
}
