//! A gRPC request body as it arrives: cut off when it stalls (see `body_deadline`) or once more
//! than `ingest.max_message_bytes` have arrived, before tonic buffers the rest.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tonic::Status;

use crate::body_deadline::BodyClock;

/// gRPC's frame header before each message: a compression flag and a 4-byte length.
const FRAME_HEADER_BYTES: usize = 5;

pub(super) struct ReceivedBody<B> {
    inner: B,
    clock: BodyClock,
    num_received: usize,
    max_message_bytes: usize,
    failed: bool,
}

impl<B> ReceivedBody<B> {
    pub(super) fn new(inner: B, clock: BodyClock, max_message_bytes: usize) -> Self {
        Self {
            inner,
            clock,
            num_received: 0,
            max_message_bytes,
            failed: false,
        }
    }
}

impl<B> Body for ReceivedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<tonic::codegen::StdError>,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        if this.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.num_received += data.len();
                    this.clock.on_bytes(data.len());
                    if this.num_received > this.max_message_bytes + FRAME_HEADER_BYTES {
                        this.failed = true;
                        return Poll::Ready(Some(Err(Status::invalid_argument(format!(
                            "request exceeds the limit of {} bytes as received \
                             (ingest.max_message_bytes)",
                            this.max_message_bytes
                        )))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(Status::from_error(err.into())))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.clock.poll_expired(cx) {
                Poll::Ready(message) => {
                    this.failed = true;
                    Poll::Ready(Some(Err(Status::deadline_exceeded(message))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
