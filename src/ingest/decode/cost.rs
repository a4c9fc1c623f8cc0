//! What decoding a request will allocate, estimated from its wire form before anything is
//! decoded, so that a small body that decodes into a great many tiny objects (millions of
//! empty attributes or spans: 2 bytes each on the wire, 60 to 250 bytes each once decoded) is
//! refused instead of materialised.
//!
//! The estimate charges, for every message the body holds, twice its decoded struct (a list
//! grows by doubling, so its capacity is at most twice its length); for every string and bytes
//! field, its length plus [`STRING_OVERHEAD`]; for every number of a repeated number field,
//! twice its decoded size. Scalar fields live inside their struct; unknown fields are skipped
//! by the decoder and cost nothing. OTLP/JSON costs more than protobuf to decode the same
//! content (`serde` buffers the flattened `AnyValue` and `Metric` oneofs), so its charges are
//! multiplied by [`JSON_FACTOR`]. `tests/decode_memory.rs` checks the estimate against what
//! decoding really allocates, for typical and hostile bodies of both encodings.

use super::schema::{Field, Message};

/// Extra bytes charged per string or bytes field: its header in a list, and the allocator's
/// minimum chunk.
pub(super) const STRING_OVERHEAD: usize = 32;
/// How much more decoding OTLP/JSON allocates than decoding the same content from protobuf.
pub(super) const JSON_FACTOR: usize = 2;
/// prost's own limit on message nesting.
const RECURSION_LIMIT: usize = 100;

/// Memory charged against a limit; over it, the request is refused.
#[derive(Debug)]
pub(super) struct Budget {
    spent: usize,
    limit: usize,
    factor: usize,
}

impl Budget {
    pub(super) fn protobuf(limit: usize) -> Self {
        Self {
            spent: 0,
            limit,
            factor: 1,
        }
    }

    pub(super) fn json(limit: usize) -> Self {
        Self {
            spent: 0,
            limit,
            factor: JSON_FACTOR,
        }
    }

    pub(super) fn charge_message(&mut self, message: Message) {
        self.charge(2 * message.struct_bytes());
    }

    pub(super) fn charge_bytes(&mut self, len: usize) {
        self.charge(len + STRING_OVERHEAD);
    }

    pub(super) fn charge_numbers(&mut self, count: usize, decoded_bytes: usize) {
        self.charge(count.saturating_mul(2 * decoded_bytes));
    }

    fn charge(&mut self, bytes: usize) {
        self.spent = self.spent.saturating_add(bytes.saturating_mul(self.factor));
    }

    pub(super) fn is_exceeded(&self) -> bool {
        self.spent > self.limit
    }

    pub(super) fn spent(&self) -> usize {
        self.spent
    }
}

/// Whether a body of `body_len` bytes could be charged more than `limit` at all, whatever it
/// holds: no byte is charged more than the largest struct (a message takes at least 2 bytes on
/// the wire, its tag and length, or `{}` in JSON, and is charged twice its struct) or 16 bytes
/// (a string takes at least 2 bytes and is charged 32; a number at least 1, charged 16). Bodies
/// that cannot (typical exports of up to about a megabyte) need no walk.
pub(super) fn could_exceed(body_len: usize, root: Message, budget: &Budget) -> bool {
    let per_byte = Message::MAX_STRUCT_BYTES.max(STRING_OVERHEAD / 2);
    let bound = body_len
        .saturating_mul(per_byte)
        .saturating_add(2 * root.struct_bytes())
        .saturating_mul(budget.factor);
    bound > budget.limit
}

/// Walks a protobuf body of `root` messages without decoding it, charging `budget`; stops as
/// soon as the budget is exceeded. `Err` says how the body is malformed.
pub(super) fn walk_protobuf(body: &[u8], root: Message, budget: &mut Budget) -> Result<(), String> {
    budget.charge_message(root);
    walk_message(body, root, budget, 0)
}

fn walk_message(
    mut body: &[u8],
    message: Message,
    budget: &mut Budget,
    depth: usize,
) -> Result<(), String> {
    while !body.is_empty() && !budget.is_exceeded() {
        let key = read_varint(&mut body)?;
        let number = key >> 3;
        if number == 0 {
            return Err("invalid field number 0".to_owned());
        }
        let field = message.field(number);
        match key & 7 {
            0 => {
                read_varint(&mut body)?;
                charge_number(field, budget);
            }
            1 => {
                skip(&mut body, 8)?;
                charge_number(field, budget);
            }
            5 => {
                skip(&mut body, 4)?;
                charge_number(field, budget);
            }
            2 => {
                let len = usize::try_from(read_varint(&mut body)?).unwrap_or(usize::MAX);
                let payload = take(&mut body, len)?;
                match field {
                    Field::Message(child) => {
                        if depth + 1 >= RECURSION_LIMIT {
                            return Err("recursion limit reached".to_owned());
                        }
                        budget.charge_message(child);
                        walk_message(payload, child, budget, depth + 1)?;
                    }
                    Field::Bytes => budget.charge_bytes(len),
                    Field::Numbers {
                        decoded_bytes,
                        min_wire_bytes,
                    } => budget.charge_numbers(len / min_wire_bytes, decoded_bytes),
                    Field::Scalar => {}
                }
            }
            wire_type => {
                return Err(format!(
                    "unsupported wire type {wire_type} for field {number}"
                ));
            }
        }
    }
    Ok(())
}

/// One unpacked element of a repeated number field.
fn charge_number(field: Field, budget: &mut Budget) {
    if let Field::Numbers { decoded_bytes, .. } = field {
        budget.charge_numbers(1, decoded_bytes);
    }
}

fn read_varint(body: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0_u64;
    for (index, &byte) in body.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            *body = &body[index + 1..];
            return Ok(value);
        }
    }
    Err(if body.len() < 10 {
        "buffer underflow".to_owned()
    } else {
        "invalid varint".to_owned()
    })
}

fn take<'a>(body: &mut &'a [u8], len: usize) -> Result<&'a [u8], String> {
    if body.len() < len {
        return Err("buffer underflow".to_owned());
    }
    let (taken, rest) = body.split_at(len);
    *body = rest;
    Ok(taken)
}

fn skip(body: &mut &[u8], len: usize) -> Result<(), String> {
    take(body, len).map(|_| ())
}
