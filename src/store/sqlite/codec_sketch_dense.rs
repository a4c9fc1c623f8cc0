//! The dense form of a latency sketch inside a stats blob ([`super::codec_sketch`]'s flagged
//! form may hold it): tag 2, the first bucket index, the number of slots and their width in
//! bytes (1, 2, 4 or 8), then each slot's count, little-endian (0 for an empty bucket; the
//! first and the last slot are not empty), then the sketch's rest as in the other forms.
//!
//! A sketch whose buckets fill most of their span (a busy edge's minute, ten minutes summed)
//! takes fewer bytes so, and a sum adds it slot by slot without a branch
//! ([`SketchSum::add_dense`](crate::model::sketch::SketchSum::add_dense)). It is written only
//! when it is no longer than the flagged buckets.

use crate::model::LatencySketch;
use crate::model::sketch::MAX_BUCKET_INDEX;
use crate::store::StoreError;

use super::codec::{Decoder, corrupt, put_varint};

pub(super) const DENSE: u8 = 2;

/// Bytes a dense slot may take.
const DENSE_WIDTHS: [usize; 4] = [1, 2, 4, 8];

fn varint_len(value: u64) -> usize {
    (64 - value.leading_zeros() as usize).max(1).div_ceil(7)
}

/// Replaces `buf[start..]`, `sketch`'s tag and buckets in the flagged form, with its dense tag
/// and slots when those take no more bytes.
pub(super) fn make_dense_if_no_longer(buf: &mut Vec<u8>, start: usize, sketch: &LatencySketch) {
    let buckets = sketch.buckets();
    let (Some(&(low, _)), Some(&(high, _))) = (buckets.first(), buckets.last()) else {
        return;
    };
    let max_count = buckets.iter().map(|&(_, count)| count).max().unwrap_or(1);
    let width = DENSE_WIDTHS
        .into_iter()
        .find(|&width| width == 8 || max_count < 1 << (8 * width))
        .unwrap_or(8);
    let num_slots = (high - low) as usize + 1;
    let header = 1 + varint_len(low as u64) + varint_len(num_slots as u64) + 1;
    if header + num_slots * width > buf.len() - start {
        return;
    }
    buf.truncate(start);
    buf.push(DENSE);
    put_varint(buf, low as u64);
    put_varint(buf, num_slots as u64);
    buf.push(width as u8);
    let slots_at = buf.len();
    buf.resize(slots_at + num_slots * width, 0);
    for &(index, count) in buckets {
        let at = slots_at + (index - low) as usize * width;
        buf[at..at + width].copy_from_slice(&count.to_le_bytes()[..width]);
    }
}

/// A dense sketch's slots, checked: the first index, the width and the slots' bytes.
pub(super) struct DenseSlots<'a> {
    pub low: i32,
    pub width: usize,
    pub bytes: &'a [u8],
}

/// Reads a dense sketch's header and slots (after its tag).
pub(super) fn dense_slots<'a>(decoder: &mut Decoder<'a>) -> Result<DenseSlots<'a>, StoreError> {
    let low = decoder.varint()?;
    let num_slots = decoder.varint()?;
    let width = usize::from(decoder.u8()?);
    let last = low.checked_add(num_slots).map(|end| end.wrapping_sub(1));
    if num_slots == 0 || last.is_none_or(|last| last > MAX_BUCKET_INDEX as u64) {
        return Err(corrupt("dense sketch slots out of range"));
    }
    if !DENSE_WIDTHS.contains(&width) {
        return Err(corrupt("bad dense sketch width"));
    }
    // At most MAX_BUCKET_INDEX + 1 slots of 8 bytes: no overflow.
    let len = num_slots as usize * width;
    let remaining = decoder.remaining();
    if remaining.len() < len {
        return Err(corrupt("truncated"));
    }
    let (bytes, rest) = remaining.split_at(len);
    decoder.continue_at(rest);
    let is_empty = |slot: &[u8]| slot.iter().all(|byte| *byte == 0);
    if is_empty(&bytes[..width]) || is_empty(&bytes[len - width..]) {
        return Err(corrupt("dense sketch starts or ends with an empty slot"));
    }
    Ok(DenseSlots {
        low: low as i32,
        width,
        bytes,
    })
}

impl DenseSlots<'_> {
    /// Each non-empty slot's index and count.
    pub(super) fn buckets(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        (self.low..)
            .zip(self.bytes.chunks_exact(self.width))
            .filter_map(|(index, slot)| {
                let mut le = [0_u8; 8];
                le[..slot.len()].copy_from_slice(slot);
                let count = u64::from_le_bytes(le);
                (count > 0).then_some((index, count))
            })
    }
}
