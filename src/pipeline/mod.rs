//! The bounded hand-off between ingest and the consumers of accepted data.
//!
//! Capacity is counted in items (spans + metric points). A batch is accepted whole or not at
//! all: it is appended to the write-ahead log (when the store has one), queued for the store
//! writer in log order, and acknowledged only once the log has made it durable (group commit,
//! see [`crate::wal`]). The writer checkpoints the log after each commit, and replays what
//! follows the checkpoint at start, so a crash loses nothing acknowledged. Closing the
//! pipeline refuses new batches and lets the writer drain and commit everything accepted.

mod graph_feed;
mod writer;

use std::sync::{Arc, Mutex, PoisonError, mpsc};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::graph::ClosedMinutes;
use crate::model::Batch;
use crate::store::batch_codec;
use crate::telemetry::Telemetry;
use crate::wal::{Lsn, Wal, WalError};

pub use graph_feed::{GraphFeed, GraphFeedHandle, lock_engine, spawn_graph_feed};
pub use writer::{
    StoreWriterHandle, WriteStore, WriterGate, WriterLog, WriterSettings, replay_log,
    spawn_store_writer,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error(
        "ingest queue is full ({num_queued_items} of {capacity_items} items waiting to be stored); retry later"
    )]
    Full {
        num_queued_items: usize,
        capacity_items: usize,
    },
    #[error(
        "batch of {num_items} items exceeds the ingest queue capacity of {capacity_items} items; send smaller batches"
    )]
    TooLarge {
        num_items: usize,
        capacity_items: usize,
    },
    #[error("cartograph is shutting down; retry against another instance or later")]
    ShuttingDown,
    #[error(
        "write-ahead log is full ({used_bytes} of {max_bytes} bytes waiting to be stored); retry later"
    )]
    LogFull { used_bytes: u64, max_bytes: u64 },
    #[error("cannot make the export durable: {0}; retry later")]
    LogFailed(String),
}

/// An accepted batch with the queue capacity it holds until it is committed.
pub struct Accepted {
    pub(crate) batch: Batch,
    pub(crate) permit: OwnedSemaphorePermit,
    /// Where the batch ends in the write-ahead log, when there is one.
    pub(crate) lsn_opt: Option<Lsn>,
    /// The batch's spans as encoded for the log, when the store keeps them in that form
    /// (then `batch.spans` is empty).
    pub(crate) frame_opt: Option<Arc<batch_codec::EncodedFrame>>,
}

impl Accepted {
    /// Spans and points, the encoded spans included.
    pub(crate) fn num_items(&self) -> usize {
        self.batch.num_items()
            + self
                .frame_opt
                .as_ref()
                .map_or(0, |frame| frame.meta.num_spans)
    }
}

/// In what form accepted spans reach the store writer.
#[derive(Debug, Clone)]
pub enum SpanForm {
    /// As model spans.
    Model,
    /// As the write-ahead log frame's span section, with metadata for these indexed
    /// attribute keys (the embedded store keeps sections as they are).
    Encoded { indexed_keys: Arc<[String]> },
}

/// What the store writer is handed: accepted telemetry, or the graph's closed minutes.
pub enum WriterMessage {
    Batch(Accepted),
    Rollups(ClosedMinutes),
}

/// Cloneable handle used by every receiver to submit batches.
#[derive(Clone)]
pub struct Pipeline {
    capacity: Arc<Semaphore>,
    capacity_items: usize,
    sender: Arc<Mutex<Option<mpsc::Sender<WriterMessage>>>>,
    telemetry: Arc<Telemetry>,
    wal_opt: Option<Wal>,
    span_form: SpanForm,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("capacity_items", &self.capacity_items)
            .field("num_queued_items", &self.num_queued_items())
            .finish()
    }
}

impl Pipeline {
    /// Creates the pipeline and the receiving end for the store writer; with `wal_opt`, every
    /// batch is made durable in that log before it is acknowledged, and its spans reach the
    /// writer in `span_form` (model spans without a log).
    pub fn new(
        capacity_items: usize,
        telemetry: Arc<Telemetry>,
        wal_opt: Option<Wal>,
        span_form: SpanForm,
    ) -> (Self, mpsc::Receiver<WriterMessage>) {
        let (sender, receiver) = mpsc::channel();
        let pipeline = Self {
            capacity: Arc::new(Semaphore::new(capacity_items)),
            capacity_items,
            sender: Arc::new(Mutex::new(Some(sender))),
            telemetry,
            wal_opt,
            span_form,
        };
        pipeline.publish_depth();
        (pipeline, receiver)
    }

    /// Refuses early, before a request is even decoded, when the queue or the log is full:
    /// refused load then costs almost nothing. [`submit`](Pipeline::submit) checks exactly.
    pub fn admit(&self) -> Result<(), SubmitError> {
        if self.is_closed() {
            return Err(SubmitError::ShuttingDown);
        }
        if self.capacity.available_permits() == 0 {
            return Err(SubmitError::Full {
                num_queued_items: self.num_queued_items(),
                capacity_items: self.capacity_items,
            });
        }
        if let Some(wal) = &self.wal_opt
            && wal.is_full()
        {
            return Err(SubmitError::LogFull {
                used_bytes: wal.used_bytes(),
                max_bytes: wal.max_bytes(),
            });
        }
        Ok(())
    }

    /// Accepts `batch` whole, or refuses it. Blocks until the batch is durable in the log:
    /// call it from a blocking thread. When the log cannot sync, the batch may still be
    /// stored although the caller is told to retry (stores keep the first copy of a span).
    pub fn submit(&self, batch: Batch) -> Result<(), SubmitError> {
        let num_items = batch.num_items();
        if num_items > self.capacity_items {
            return Err(SubmitError::TooLarge {
                num_items,
                capacity_items: self.capacity_items,
            });
        }
        let num_permits = u32::try_from(num_items).unwrap_or(u32::MAX);
        let permit = match Arc::clone(&self.capacity).try_acquire_many_owned(num_permits) {
            Ok(permit) => permit,
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                return Err(SubmitError::Full {
                    num_queued_items: self.num_queued_items(),
                    capacity_items: self.capacity_items,
                });
            }
            Err(tokio::sync::TryAcquireError::Closed) => return Err(SubmitError::ShuttingDown),
        };
        let Some(wal) = &self.wal_opt else {
            let sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(sender) = sender.as_ref() else {
                return Err(SubmitError::ShuttingDown);
            };
            let accepted = Accepted {
                batch,
                permit,
                lsn_opt: None,
                frame_opt: None,
            };
            sender
                .send(WriterMessage::Batch(accepted))
                .map_err(|_| SubmitError::ShuttingDown)?;
            self.publish_depth();
            return Ok(());
        };
        let (batch, frame) = match &self.span_form {
            SpanForm::Model => {
                let mut bytes = Vec::with_capacity(batch.num_items() * 256);
                batch_codec::encode_batch(&mut bytes, &batch);
                (batch, Frame::Plain(bytes))
            }
            SpanForm::Encoded { indexed_keys } => {
                let frame = batch_codec::encode_frame(&batch, indexed_keys);
                // The writer stores the encoded spans; dropping the model here, on an ingest
                // thread, spares the writer thread the frees.
                let points_only = Batch {
                    spans: Vec::new(),
                    metric_points: batch.metric_points,
                };
                (points_only, Frame::Encoded(Arc::new(frame)))
            }
        };
        let payload = match &frame {
            Frame::Plain(bytes) => bytes.as_slice(),
            Frame::Encoded(frame) => frame.bytes.as_slice(),
        };
        let frame_opt = match &frame {
            Frame::Plain(_) => None,
            Frame::Encoded(frame) => Some(Arc::clone(frame)),
        };
        let guard = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(sender) = guard.as_ref() else {
            return Err(SubmitError::ShuttingDown);
        };
        // Queued while the log's append lock is held: the writer sees batches in log order,
        // so a checkpoint after a commit never skips a batch still waiting.
        let (lsn, sent) = wal
            .append(payload, |lsn| {
                sender.send(WriterMessage::Batch(Accepted {
                    batch,
                    permit,
                    lsn_opt: Some(lsn),
                    frame_opt,
                }))
            })
            .map_err(log_error)?;
        drop(guard);
        sent.map_err(|_| SubmitError::ShuttingDown)?;
        self.publish_depth();
        wal.wait_durable(lsn).map_err(log_error)
    }

    /// Hands the graph's closed minutes to the store writer. Rollups do not count against the
    /// queue capacity (they are small and bounded by the engine's limits); after [`close`]
    /// they are refused.
    ///
    /// [`close`]: Pipeline::close
    pub fn submit_rollups(&self, closed: ClosedMinutes) -> Result<(), SubmitError> {
        let sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(sender) = sender.as_ref() else {
            return Err(SubmitError::ShuttingDown);
        };
        sender
            .send(WriterMessage::Rollups(closed))
            .map_err(|_| SubmitError::ShuttingDown)
    }

    /// Items accepted and not yet committed by the store writer.
    pub fn num_queued_items(&self) -> usize {
        self.capacity_items - self.capacity.available_permits()
    }

    pub fn capacity_items(&self) -> usize {
        self.capacity_items
    }

    /// Refuses further batches; the writer drains what was accepted and then stops.
    pub fn close(&self) {
        self.sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    pub fn is_closed(&self) -> bool {
        self.sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }

    /// The write-ahead log in front of the store, if any.
    pub fn wal(&self) -> Option<&Wal> {
        self.wal_opt.as_ref()
    }

    pub(crate) fn publish_depth(&self) {
        self.telemetry
            .set_queue(self.num_queued_items() as u64, self.capacity_items as u64);
    }
}

/// A log frame, with its span metadata when the store keeps the encoded spans.
enum Frame {
    Plain(Vec<u8>),
    Encoded(Arc<batch_codec::EncodedFrame>),
}

fn log_error(err: WalError) -> SubmitError {
    match err {
        WalError::Full {
            used_bytes,
            max_bytes,
        } => SubmitError::LogFull {
            used_bytes,
            max_bytes,
        },
        WalError::Closed => SubmitError::ShuttingDown,
        other => SubmitError::LogFailed(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_of(num_spans: usize) -> Batch {
        let resource = Arc::new(crate::model::Resource::from_attributes(Vec::new(), 0));
        let span = crate::model::Span {
            resource,
            scope: Arc::default(),
            trace_id: crate::model::TraceId::from_bytes(&[1; 16]).expect("valid"),
            span_id: crate::model::SpanId::from_bytes(&[2; 8]).expect("valid"),
            parent_span_id: None,
            trace_state: String::new(),
            flags: 0,
            name: "op".to_owned(),
            kind: crate::model::SpanKind::Server,
            start_time_unix_nano: 1,
            end_time_unix_nano: 2,
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: Vec::new(),
            dropped_events_count: 0,
            links: Vec::new(),
            dropped_links_count: 0,
            status_code: crate::model::StatusCode::Unset,
            status_message: String::new(),
        };
        Batch {
            spans: vec![span; num_spans],
            metric_points: Vec::new(),
        }
    }

    #[test]
    fn refuses_when_full_and_accepts_after_release() {
        let (pipeline, receiver) =
            Pipeline::new(10, Arc::new(Telemetry::default()), None, SpanForm::Model);
        pipeline.submit(batch_of(6)).expect("fits");
        assert_eq!(
            pipeline.submit(batch_of(6)),
            Err(SubmitError::Full {
                num_queued_items: 6,
                capacity_items: 10
            })
        );
        drop(receiver.recv().expect("queued"));
        pipeline.submit(batch_of(6)).expect("fits after release");
    }

    #[test]
    fn refuses_oversized_batches_and_after_close() {
        let (pipeline, _receiver) =
            Pipeline::new(4, Arc::new(Telemetry::default()), None, SpanForm::Model);
        assert!(matches!(
            pipeline.submit(batch_of(5)),
            Err(SubmitError::TooLarge { num_items: 5, .. })
        ));
        pipeline.close();
        assert_eq!(pipeline.submit(batch_of(1)), Err(SubmitError::ShuttingDown));
    }
}
