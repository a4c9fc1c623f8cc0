//! Cuts off request bodies that stall or trickle, on every port: a client that declares a large
//! body and then sends nothing (or a byte now and then) would otherwise hold its connection,
//! its buffered bytes and a worker's attention for as long as it likes.
//!
//! A body must keep arriving: no pause longer than `body_timeout`, and once it has been arriving
//! for `body_timeout`, an average rate of at least `min_bytes_per_sec`. A body that breaks either
//! rule ends in an error (the HTTP ports answer 408 and close the connection; gRPC answers
//! `DEADLINE_EXCEEDED` and resets the stream) and is counted at `/metrics` as
//! `cartograph_stalled_bodies_total`.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::error::PayloadError;
use bytes::Bytes;
use futures_util::Stream;
use tokio::time::{Instant, Sleep};

use crate::telemetry::Telemetry;

/// The rules for bodies on one server, and where cut-off bodies are counted.
#[derive(Debug, Clone)]
pub struct BodyDeadline {
    pub body_timeout: Duration,
    pub min_bytes_per_sec: u64,
    pub telemetry: Arc<Telemetry>,
}

impl BodyDeadline {
    pub fn from_config(config: &crate::config::ListenConfig, telemetry: Arc<Telemetry>) -> Self {
        Self {
            body_timeout: Duration::from_secs(config.body_timeout_secs),
            min_bytes_per_sec: config.body_min_bytes_per_sec,
            telemetry,
        }
    }

    /// A clock for one body, starting now.
    pub fn start(&self) -> BodyClock {
        let now = Instant::now();
        BodyClock {
            rules: self.clone(),
            started: now,
            last_progress: now,
            num_received: 0,
            sleep: Box::pin(tokio::time::sleep_until(now + self.body_timeout)),
        }
    }
}

/// The deadline of one body as it arrives.
#[derive(Debug)]
pub struct BodyClock {
    rules: BodyDeadline,
    started: Instant,
    last_progress: Instant,
    num_received: u64,
    sleep: Pin<Box<Sleep>>,
}

impl BodyClock {
    /// Notes `num_bytes` more of the body. The timer is not touched here (that would cost a
    /// timer-wheel update per chunk): when it fires, [`Self::poll_expired`] moves it to the
    /// deadline the progress made since allows.
    pub fn on_bytes(&mut self, num_bytes: usize) {
        self.last_progress = Instant::now();
        self.num_received = self.num_received.saturating_add(num_bytes as u64);
    }

    /// The earlier of: the end of the longest allowed pause, and the moment the average rate
    /// would fall below the minimum.
    fn deadline(&self) -> Instant {
        let pause_ends = self.last_progress + self.rules.body_timeout;
        let rate_seconds = self.num_received as f64 / self.rules.min_bytes_per_sec.max(1) as f64;
        let rate_ends =
            self.started + self.rules.body_timeout + Duration::from_secs_f64(rate_seconds.min(1e9));
        pause_ends.min(rate_ends)
    }

    /// Ready with the error once the deadline has passed (and registers the waker until then);
    /// the cut-off is counted.
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<String> {
        loop {
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let deadline = self.deadline();
            if deadline <= Instant::now() {
                break;
            }
            self.sleep.as_mut().reset(deadline);
        }
        self.rules.telemetry.record_stalled_body();
        let elapsed = self.started.elapsed().as_secs_f64();
        Poll::Ready(format!(
            "request body stalled: {} bytes in {elapsed:.1} s (limits: pauses up to {} s, then \
             at least {} bytes/s; listen.body_timeout_secs, listen.body_min_bytes_per_sec)",
            self.num_received,
            self.rules.body_timeout.as_secs(),
            self.rules.min_bytes_per_sec,
        ))
    }
}

/// An HTTP request body under a [`BodyClock`]; a stalled body ends in a `TimedOut` I/O error.
pub struct TimedPayload<S> {
    inner: S,
    clock: BodyClock,
    done: bool,
}

impl<S> TimedPayload<S> {
    pub fn new(inner: S, clock: BodyClock) -> Self {
        Self {
            inner,
            clock,
            done: false,
        }
    }
}

impl<S> Stream for TimedPayload<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.clock.on_bytes(chunk.len());
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(other) => {
                this.done = other.is_none();
                Poll::Ready(other)
            }
            Poll::Pending => match this.clock.poll_expired(cx) {
                Poll::Ready(message) => {
                    this.done = true;
                    Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        message,
                    )))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// Whether a body read failed because [`TimedPayload`] cut it off.
pub fn is_stalled(err: &PayloadError) -> bool {
    matches!(err, PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use futures_util::StreamExt as _;
    use tokio_stream::wrappers::UnboundedReceiverStream;

    use super::*;

    fn rules() -> BodyDeadline {
        BodyDeadline {
            body_timeout: Duration::from_secs(10),
            min_bytes_per_sec: 1000,
            telemetry: Arc::new(Telemetry::default()),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_longer_than_the_timeout_cuts_the_body_off() {
        let rules = rules();
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        let mut payload = TimedPayload::new(UnboundedReceiverStream::new(receiver), rules.start());
        sender.send(Ok(Bytes::from_static(b"abc"))).unwrap();
        assert_eq!(payload.next().await.unwrap().unwrap().len(), 3);
        let started = Instant::now();
        let err = payload.next().await.unwrap().unwrap_err();
        assert!(is_stalled(&err), "{err}");
        assert!(err.to_string().contains("3 bytes"), "{err}");
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        assert!(payload.next().await.is_none());
        drop(sender);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_below_the_minimum_rate_is_cut_off_and_a_steady_body_is_not() {
        let rules = rules();
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        let mut payload = TimedPayload::new(UnboundedReceiverStream::new(receiver), rules.start());
        // 100 bytes every 5 s: never a long pause, but 20 bytes/s.
        let mut num_chunks = 0;
        let err = loop {
            sender.send(Ok(Bytes::from_static(&[0; 100]))).unwrap();
            match payload.next().await.unwrap() {
                Ok(_) => num_chunks += 1,
                Err(err) => break err,
            }
            match tokio::time::timeout(Duration::from_secs(5), payload.next()).await {
                Err(_) => {}
                Ok(item) => break item.unwrap().unwrap_err(),
            }
        };
        assert!(is_stalled(&err), "{err}");
        // The rate deadline: 10 s + received / 1000 bytes/s, reached after about 2 chunks.
        assert!(num_chunks <= 3, "{num_chunks}");
        assert_eq!(rules.telemetry.stalled_bodies(), 1);

        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        let mut payload = TimedPayload::new(UnboundedReceiverStream::new(receiver), rules.start());
        for _ in 0..60 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            sender.send(Ok(Bytes::from_static(&[0; 2000]))).unwrap();
            assert!(payload.next().await.unwrap().is_ok());
        }
        drop(sender);
        assert!(payload.next().await.is_none());
    }
}
