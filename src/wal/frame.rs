//! The frame format: `[u32 LE payload len][u32 LE crc32 of (len bytes ++ payload)][payload]`.
//! Encoding and validating frames; nothing here knows about files or positions.

use std::fmt;
use std::io::{self, Read};

/// Bytes of a frame's header (length + checksum).
pub(super) const HEADER_BYTES: u64 = 8;

/// Largest payload a frame may hold.
pub(super) const MAX_PAYLOAD_BYTES: u64 = 256 * 1024 * 1024;

/// Size on disk of a frame holding `payload_len` bytes.
pub(super) fn frame_bytes(payload_len: u64) -> u64 {
    HEADER_BYTES + payload_len
}

/// The whole frame for `payload`, ready for one `write_all`.
///
/// The caller has checked `payload.len() <= MAX_PAYLOAD_BYTES`, so the length fits a u32.
pub(super) fn encode(payload: &[u8]) -> Vec<u8> {
    debug_assert!(payload.len() as u64 <= MAX_PAYLOAD_BYTES);
    let len_bytes = (payload.len() as u32).to_le_bytes();
    let mut frame = Vec::with_capacity(payload.len() + HEADER_BYTES as usize);
    frame.extend_from_slice(&len_bytes);
    frame.extend_from_slice(&checksum(len_bytes, payload).to_le_bytes());
    frame.extend_from_slice(payload);
    frame
}

fn checksum(len_bytes: [u8; 4], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len_bytes);
    hasher.update(payload);
    hasher.finalize()
}

/// What reading at a frame boundary found.
#[derive(Debug)]
pub(super) enum ReadOutcome {
    /// A valid frame's payload; the frame took `frame_bytes(payload.len())` bytes.
    Frame(Vec<u8>),
    /// No byte at all: the clean end of the readable region.
    End,
    /// The bytes here are not a valid frame: torn by a crash, zero-filled, or corrupt.
    Invalid(InvalidFrame),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum InvalidFrame {
    PartialHeader {
        num_bytes: u64,
    },
    LengthOverLimit {
        payload_bytes: u64,
    },
    PartialPayload {
        payload_bytes: u64,
        available_bytes: u64,
    },
    ChecksumMismatch,
}

impl fmt::Display for InvalidFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidFrame::PartialHeader { num_bytes } => {
                write!(f, "partial frame header ({num_bytes} bytes)")
            }
            InvalidFrame::LengthOverLimit { payload_bytes } => {
                write!(f, "frame length {payload_bytes} exceeds the limit")
            }
            InvalidFrame::PartialPayload {
                payload_bytes,
                available_bytes,
            } => write!(
                f,
                "frame of {payload_bytes} payload bytes with only {available_bytes} bytes left"
            ),
            InvalidFrame::ChecksumMismatch => write!(f, "frame checksum mismatch"),
        }
    }
}

/// Reads the frame starting at the reader's position, where at most `available_bytes` remain
/// readable (so a corrupt length never makes us allocate or read past the region).
pub(super) fn read_frame(reader: &mut impl Read, available_bytes: u64) -> io::Result<ReadOutcome> {
    let mut header = [0u8; HEADER_BYTES as usize];
    let num_header_bytes = read_up_to(reader, &mut header)?;
    if num_header_bytes == 0 {
        return Ok(ReadOutcome::End);
    }
    if num_header_bytes < header.len() {
        return Ok(ReadOutcome::Invalid(InvalidFrame::PartialHeader {
            num_bytes: num_header_bytes as u64,
        }));
    }
    let len_bytes = [header[0], header[1], header[2], header[3]];
    let expected_crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let payload_bytes = u64::from(u32::from_le_bytes(len_bytes));
    if payload_bytes > MAX_PAYLOAD_BYTES {
        return Ok(ReadOutcome::Invalid(InvalidFrame::LengthOverLimit {
            payload_bytes,
        }));
    }
    let available_payload_bytes = available_bytes.saturating_sub(HEADER_BYTES);
    if payload_bytes > available_payload_bytes {
        return Ok(ReadOutcome::Invalid(InvalidFrame::PartialPayload {
            payload_bytes,
            available_bytes: available_payload_bytes,
        }));
    }
    let mut payload = vec![0u8; payload_bytes as usize];
    let num_payload_bytes = read_up_to(reader, &mut payload)?;
    if num_payload_bytes < payload.len() {
        return Ok(ReadOutcome::Invalid(InvalidFrame::PartialPayload {
            payload_bytes,
            available_bytes: num_payload_bytes as u64,
        }));
    }
    if checksum(len_bytes, &payload) != expected_crc {
        return Ok(ReadOutcome::Invalid(InvalidFrame::ChecksumMismatch));
    }
    Ok(ReadOutcome::Frame(payload))
}

/// Fills as much of `buf` as the reader has, stopping only at end of input.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8]) -> ReadOutcome {
        read_frame(&mut &bytes[..], bytes.len() as u64).unwrap()
    }

    #[test]
    fn encoded_frame_reads_back() {
        let frame = encode(b"hello");
        assert_eq!(frame.len() as u64, frame_bytes(5));
        assert!(matches!(read_all(&frame), ReadOutcome::Frame(p) if p == b"hello"));
        assert!(matches!(read_all(&encode(b"")), ReadOutcome::Frame(p) if p.is_empty()));
        assert!(matches!(read_all(&[]), ReadOutcome::End));
    }

    #[test]
    fn damaged_frames_are_invalid() {
        let frame = encode(b"hello");
        assert!(matches!(
            read_all(&frame[..5]),
            ReadOutcome::Invalid(InvalidFrame::PartialHeader { num_bytes: 5 })
        ));
        assert!(matches!(
            read_all(&frame[..10]),
            ReadOutcome::Invalid(InvalidFrame::PartialPayload { .. })
        ));
        let mut flipped = frame.clone();
        flipped[9] ^= 1;
        assert!(matches!(
            read_all(&flipped),
            ReadOutcome::Invalid(InvalidFrame::ChecksumMismatch)
        ));
        // Preallocated blocks after a crash: a zero length whose checksum cannot be zero.
        assert!(matches!(
            read_all(&[0u8; 64]),
            ReadOutcome::Invalid(InvalidFrame::ChecksumMismatch)
        ));
        let mut huge = frame;
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            read_all(&huge),
            ReadOutcome::Invalid(InvalidFrame::LengthOverLimit { .. })
        ));
    }
}
