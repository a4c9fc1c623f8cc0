//! Compact binary encoding of the nested parts of spans (attributes, events, links) and of
//! resources and scopes, as stored in BLOB columns.
//!
//! Exact by construction: integers stay integers, doubles keep their bits (NaN and infinities
//! included, which JSON cannot carry), bytes stay bytes. Varints (LEB128) keep typical spans
//! small; decoding never trusts lengths and reports damage as [`StoreError::Corrupt`].
//! This module owns the byte layout only; it does not touch SQL.

use std::sync::Arc;

use crate::model::{AttrValue, Attributes, Event, Link, Resource, Scope, SpanId, TraceId};
use crate::store::StoreError;

/// Nesting deeper than this is treated as corruption (OTLP decoding allows far less).
const MAX_DEPTH: usize = 128;

const TAG_EMPTY: u8 = 0;
const TAG_STR: u8 = 1;
const TAG_FALSE: u8 = 2;
const TAG_TRUE: u8 = 3;
const TAG_INT: u8 = 4;
const TAG_DOUBLE: u8 = 5;
const TAG_BYTES: u8 = 6;
const TAG_ARRAY: u8 = 7;
const TAG_MAP: u8 = 8;

pub(crate) fn put_varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        // Truncation keeps the low seven bits, which is the point of LEB128.
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

pub(crate) fn put_i64(buf: &mut Vec<u8>, value: i64) {
    // Zigzag keeps small negative numbers short.
    put_varint(buf, ((value << 1) ^ (value >> 63)) as u64);
}

pub(crate) fn put_f64(buf: &mut Vec<u8>, value: f64) {
    buf.extend_from_slice(&value.to_bits().to_le_bytes());
}

pub(crate) fn put_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

pub(crate) fn put_str(buf: &mut Vec<u8>, text: &str) {
    put_bytes(buf, text.as_bytes());
}

pub(crate) fn put_opt_str(buf: &mut Vec<u8>, text: Option<&str>) {
    match text {
        None => buf.push(0),
        Some(text) => {
            buf.push(1);
            put_str(buf, text);
        }
    }
}

/// A cursor over an encoded blob.
pub(crate) struct Decoder<'a> {
    bytes: &'a [u8],
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    #[inline]
    pub(crate) fn u8(&mut self) -> Result<u8, StoreError> {
        let (first, rest) = self.bytes.split_first().ok_or_else(truncated)?;
        self.bytes = rest;
        Ok(*first)
    }

    #[inline]
    pub(crate) fn varint(&mut self) -> Result<u64, StoreError> {
        let (value, rest) = split_varint(self.bytes).ok_or_else(|| varint_error(self.bytes))?;
        self.bytes = rest;
        Ok(value)
    }

    /// The bytes not read yet, for a hot loop that reads them itself ([`split_varint`]).
    pub(crate) fn remaining(&self) -> &'a [u8] {
        self.bytes
    }

    /// Continues after what a hot loop read: `rest` is the end of [`Decoder::remaining`].
    pub(crate) fn continue_at(&mut self, rest: &'a [u8]) {
        debug_assert!(rest.len() <= self.bytes.len());
        self.bytes = rest;
    }

    pub(crate) fn u32(&mut self) -> Result<u32, StoreError> {
        u32::try_from(self.varint()?).map_err(|_| corrupt("u32 out of range"))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, StoreError> {
        i32::try_from(self.i64()?).map_err(|_| corrupt("i32 out of range"))
    }

    #[inline]
    pub(crate) fn i64(&mut self) -> Result<i64, StoreError> {
        let raw = self.varint()?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    pub(crate) fn f64(&mut self) -> Result<f64, StoreError> {
        let bytes = self.take(8)?;
        let array: [u8; 8] = bytes.try_into().map_err(|_| truncated())?;
        Ok(f64::from_bits(u64::from_le_bytes(array)))
    }

    #[inline]
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let len = usize::try_from(self.varint()?).map_err(|_| truncated())?;
        self.take(len)
    }

    pub(crate) fn str(&mut self) -> Result<&'a str, StoreError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| corrupt("string is not utf-8"))
    }

    pub(crate) fn string(&mut self) -> Result<String, StoreError> {
        self.str().map(str::to_owned)
    }

    pub(crate) fn opt_string(&mut self) -> Result<Option<String>, StoreError> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.string().map(Some),
            _ => Err(corrupt("bad option tag")),
        }
    }

    /// A length prefix for a sequence, checked against the bytes left so a damaged length
    /// cannot make the caller reserve absurd amounts of memory.
    #[inline]
    pub(crate) fn count(&mut self) -> Result<usize, StoreError> {
        let count = usize::try_from(self.varint()?).map_err(|_| truncated())?;
        if count > self.bytes.len() {
            return Err(truncated());
        }
        Ok(count)
    }

    #[inline]
    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8], StoreError> {
        if len > self.bytes.len() {
            return Err(truncated());
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }
}

pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("bad blob: {what}"))
}

fn truncated() -> StoreError {
    corrupt("truncated")
}

/// Bytes a varint may take: 64 bits in groups of 7.
const MAX_VARINT_BYTES: usize = 10;

/// The varint at the start of `bytes` and the bytes after it; `None` when `bytes` ends inside
/// it or it runs past [`MAX_VARINT_BYTES`] ([`varint_error`] says which). Most are one byte
/// (lengths, counts, sketch gaps): sums and search read millions of them.
#[inline(always)]
pub(crate) fn split_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (&first, mut rest) = bytes.split_first()?;
    if first < 0x80 {
        return Some((u64::from(first), rest));
    }
    let mut value = u64::from(first & 0x7f);
    for shift in (7..64).step_by(7) {
        let (&byte, after) = rest.split_first()?;
        rest = after;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some((value, rest));
        }
    }
    None
}

/// Why [`split_varint`] read no varint from `bytes`.
#[cold]
pub(crate) fn varint_error(bytes: &[u8]) -> StoreError {
    if bytes.len() >= MAX_VARINT_BYTES {
        corrupt("varint longer than 64 bits")
    } else {
        truncated()
    }
}

pub(crate) fn put_attributes(buf: &mut Vec<u8>, attributes: &Attributes) {
    put_varint(buf, attributes.len() as u64);
    for (key, value) in attributes {
        put_str(buf, key);
        put_value(buf, value);
    }
}

fn put_value(buf: &mut Vec<u8>, value: &AttrValue) {
    match value {
        AttrValue::Empty => buf.push(TAG_EMPTY),
        AttrValue::Str(text) => {
            buf.push(TAG_STR);
            put_str(buf, text);
        }
        AttrValue::Bool(false) => buf.push(TAG_FALSE),
        AttrValue::Bool(true) => buf.push(TAG_TRUE),
        AttrValue::Int(number) => {
            buf.push(TAG_INT);
            put_i64(buf, *number);
        }
        AttrValue::Double(number) => {
            buf.push(TAG_DOUBLE);
            put_f64(buf, *number);
        }
        AttrValue::Bytes(bytes) => {
            buf.push(TAG_BYTES);
            put_bytes(buf, bytes);
        }
        AttrValue::Array(values) => {
            buf.push(TAG_ARRAY);
            put_varint(buf, values.len() as u64);
            for item in values {
                put_value(buf, item);
            }
        }
        AttrValue::Map(attributes) => {
            buf.push(TAG_MAP);
            put_attributes(buf, attributes);
        }
    }
}

impl Decoder<'_> {
    pub(crate) fn attributes(&mut self) -> Result<Attributes, StoreError> {
        self.attributes_at(0)
    }

    fn attributes_at(&mut self, depth: usize) -> Result<Attributes, StoreError> {
        let count = self.count()?;
        let mut attributes = Vec::with_capacity(count);
        for _ in 0..count {
            let key = self.string()?;
            let value = self.value_at(depth)?;
            attributes.push((key, value));
        }
        Ok(attributes)
    }

    fn value_at(&mut self, depth: usize) -> Result<AttrValue, StoreError> {
        if depth > MAX_DEPTH {
            return Err(corrupt("attribute nesting too deep"));
        }
        let value = match self.u8()? {
            TAG_EMPTY => AttrValue::Empty,
            TAG_STR => AttrValue::Str(self.string()?),
            TAG_FALSE => AttrValue::Bool(false),
            TAG_TRUE => AttrValue::Bool(true),
            TAG_INT => AttrValue::Int(self.i64()?),
            TAG_DOUBLE => AttrValue::Double(self.f64()?),
            TAG_BYTES => AttrValue::Bytes(self.bytes()?.to_vec()),
            TAG_ARRAY => {
                let count = self.count()?;
                let mut values = Vec::with_capacity(count);
                for _ in 0..count {
                    values.push(self.value_at(depth + 1)?);
                }
                AttrValue::Array(values)
            }
            TAG_MAP => AttrValue::Map(self.attributes_at(depth + 1)?),
            _ => return Err(corrupt("unknown attribute tag")),
        };
        Ok(value)
    }
}

impl<'a> Decoder<'a> {
    /// Moves past encoded attributes without decoding them, returning their bytes (for
    /// [`Decoder::attributes`] later, when a reader needs them after all).
    pub(crate) fn skip_attributes(&mut self) -> Result<&'a [u8], StoreError> {
        let start = self.bytes;
        self.skip_attributes_at(0)?;
        Ok(&start[..start.len() - self.bytes.len()])
    }

    fn skip_attributes_at(&mut self, depth: usize) -> Result<(), StoreError> {
        let count = self.count()?;
        for _ in 0..count {
            self.bytes()?;
            self.skip_value_at(depth)?;
        }
        Ok(())
    }

    fn skip_value_at(&mut self, depth: usize) -> Result<(), StoreError> {
        if depth > MAX_DEPTH {
            return Err(corrupt("attribute nesting too deep"));
        }
        match self.u8()? {
            TAG_EMPTY | TAG_FALSE | TAG_TRUE => {}
            TAG_STR | TAG_BYTES => {
                self.bytes()?;
            }
            TAG_INT => {
                self.varint()?;
            }
            TAG_DOUBLE => {
                self.take(8)?;
            }
            TAG_ARRAY => {
                let count = self.count()?;
                for _ in 0..count {
                    self.skip_value_at(depth + 1)?;
                }
            }
            TAG_MAP => self.skip_attributes_at(depth + 1)?,
            _ => return Err(corrupt("unknown attribute tag")),
        }
        Ok(())
    }

    /// Moves past events as [`encode_events`] wrote them, decoding nothing.
    pub(crate) fn skip_events(&mut self) -> Result<(), StoreError> {
        let count = self.count()?;
        for _ in 0..count {
            self.varint()?;
            self.bytes()?;
            self.skip_attributes()?;
            self.varint()?;
        }
        Ok(())
    }

    /// Moves past links as [`encode_links`] wrote them, decoding nothing.
    pub(crate) fn skip_links(&mut self) -> Result<(), StoreError> {
        let count = self.count()?;
        for _ in 0..count {
            self.take(TraceId::LEN + SpanId::LEN)?;
            self.bytes()?;
            self.skip_attributes()?;
            self.varint()?;
            self.varint()?;
        }
        Ok(())
    }
}

pub(crate) fn encode_events(buf: &mut Vec<u8>, events: &[Event]) {
    put_varint(buf, events.len() as u64);
    for event in events {
        put_varint(buf, event.time_unix_nano);
        put_str(buf, &event.name);
        put_attributes(buf, &event.attributes);
        put_varint(buf, u64::from(event.dropped_attributes_count));
    }
}

pub(crate) fn decode_events(blob: &[u8]) -> Result<Vec<Event>, StoreError> {
    decode_events_from(&mut Decoder::new(blob))
}

/// Events at the decoder's position, moving past them.
pub(crate) fn decode_events_from(decoder: &mut Decoder<'_>) -> Result<Vec<Event>, StoreError> {
    let count = decoder.count()?;
    let mut events = Vec::with_capacity(count);
    for _ in 0..count {
        events.push(Event {
            time_unix_nano: decoder.varint()?,
            name: decoder.string()?,
            attributes: decoder.attributes()?,
            dropped_attributes_count: decoder.u32()?,
        });
    }
    Ok(events)
}

pub(crate) fn encode_links(buf: &mut Vec<u8>, links: &[Link]) {
    put_varint(buf, links.len() as u64);
    for link in links {
        buf.extend_from_slice(link.trace_id.as_bytes());
        buf.extend_from_slice(link.span_id.as_bytes());
        put_str(buf, &link.trace_state);
        put_attributes(buf, &link.attributes);
        put_varint(buf, u64::from(link.dropped_attributes_count));
        put_varint(buf, u64::from(link.flags));
    }
}

pub(crate) fn decode_links(blob: &[u8]) -> Result<Vec<Link>, StoreError> {
    decode_links_from(&mut Decoder::new(blob))
}

/// Links at the decoder's position, moving past them.
pub(crate) fn decode_links_from(decoder: &mut Decoder<'_>) -> Result<Vec<Link>, StoreError> {
    let count = decoder.count()?;
    let mut links = Vec::with_capacity(count);
    for _ in 0..count {
        let trace_id = TraceId::from_bytes(decoder.take(TraceId::LEN)?)
            .map_err(|err| StoreError::Corrupt(err.to_string()))?;
        let span_id = SpanId::from_bytes(decoder.take(SpanId::LEN)?)
            .map_err(|err| StoreError::Corrupt(err.to_string()))?;
        links.push(Link {
            trace_id,
            span_id,
            trace_state: decoder.string()?,
            attributes: decoder.attributes()?,
            dropped_attributes_count: decoder.u32()?,
            flags: decoder.u32()?,
        });
    }
    Ok(links)
}

/// Every field, the lifted ones included, so a resource reads back exactly as written.
pub(crate) fn encode_resource(buf: &mut Vec<u8>, resource: &Resource) {
    put_str(buf, &resource.service_name);
    put_opt_str(buf, resource.service_namespace.as_deref());
    put_opt_str(buf, resource.service_version.as_deref());
    put_opt_str(buf, resource.deployment_environment.as_deref());
    put_attributes(buf, &resource.attributes);
    put_varint(buf, u64::from(resource.dropped_attributes_count));
}

/// The service name of an encoded resource (its first field), decoding nothing else and not
/// checked to be UTF-8 (a search compares it with the name it looks for).
pub(crate) fn resource_service_name(blob: &[u8]) -> Result<&[u8], StoreError> {
    Decoder::new(blob).bytes()
}

pub(crate) fn decode_resource(blob: &[u8]) -> Result<Arc<Resource>, StoreError> {
    let mut decoder = Decoder::new(blob);
    Ok(Arc::new(Resource {
        service_name: decoder.string()?,
        service_namespace: decoder.opt_string()?,
        service_version: decoder.opt_string()?,
        deployment_environment: decoder.opt_string()?,
        attributes: decoder.attributes()?,
        dropped_attributes_count: decoder.u32()?,
    }))
}

pub(crate) fn encode_scope(buf: &mut Vec<u8>, scope: &Scope) {
    put_str(buf, &scope.name);
    put_str(buf, &scope.version);
    put_attributes(buf, &scope.attributes);
    put_varint(buf, u64::from(scope.dropped_attributes_count));
}

pub(crate) fn decode_scope(blob: &[u8]) -> Result<Arc<Scope>, StoreError> {
    let mut decoder = Decoder::new(blob);
    Ok(Arc::new(Scope {
        name: decoder.string()?,
        version: decoder.string()?,
        attributes: decoder.attributes()?,
        dropped_attributes_count: decoder.u32()?,
    }))
}

/// FNV-1a: stable across builds and platforms, which the keys of stored rows need to be.
pub(crate) fn stable_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash: u64, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_value() -> Attributes {
        vec![
            ("s".into(), AttrValue::Str("héllo \u{0} 🚀".into())),
            ("t".into(), AttrValue::Bool(true)),
            ("f".into(), AttrValue::Bool(false)),
            ("i".into(), AttrValue::Int(i64::MIN)),
            ("j".into(), AttrValue::Int(-1)),
            ("d".into(), AttrValue::Double(f64::NEG_INFINITY)),
            ("x".into(), AttrValue::Bytes(vec![0, 255, 7])),
            ("n".into(), AttrValue::Empty),
            (
                "a".into(),
                AttrValue::Array(vec![AttrValue::Int(1), AttrValue::Array(vec![])]),
            ),
            (
                "m".into(),
                AttrValue::Map(vec![("k".into(), AttrValue::Double(0.5))]),
            ),
        ]
    }

    #[test]
    fn attributes_round_trip() {
        let mut buf = Vec::new();
        put_attributes(&mut buf, &every_value());
        assert_eq!(
            Decoder::new(&buf).attributes().expect("decodes"),
            every_value()
        );
    }

    #[test]
    fn skipping_steps_over_exactly_what_was_written() {
        let span = crate::store::conformance::fixtures::rich_span(
            &crate::store::conformance::fixtures::resource("frontend"),
            1,
            1,
            1,
        );
        let mut attributes = Vec::new();
        put_attributes(&mut attributes, &every_value());
        let mut buf = attributes.clone();
        encode_events(&mut buf, &span.events);
        encode_links(&mut buf, &span.links);
        buf.push(0xaa);
        let mut decoder = Decoder::new(&buf);
        assert_eq!(decoder.skip_attributes().expect("skips"), attributes);
        decoder.skip_events().expect("skips");
        decoder.skip_links().expect("skips");
        assert_eq!(decoder.u8().expect("the byte after"), 0xaa);
        assert!(decoder.is_empty());
        for len in 0..buf.len() - 1 {
            let mut decoder = Decoder::new(&buf[..len]);
            let skipped = decoder
                .skip_attributes()
                .and_then(|_| decoder.skip_events())
                .and_then(|()| decoder.skip_links());
            assert!(skipped.is_err(), "len {len}");
        }
    }

    #[test]
    fn nan_keeps_its_bits() {
        let mut buf = Vec::new();
        let nan = f64::from_bits(0x7ff8_0000_dead_beef);
        put_attributes(&mut buf, &vec![("d".into(), AttrValue::Double(nan))]);
        let decoded = Decoder::new(&buf).attributes().expect("decodes");
        let Some((_, AttrValue::Double(value))) = decoded.first() else {
            panic!("not a double: {decoded:?}");
        };
        assert_eq!(value.to_bits(), nan.to_bits());
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let mut buf = Vec::new();
        put_attributes(&mut buf, &every_value());
        for len in 0..buf.len() {
            assert!(Decoder::new(&buf[..len]).attributes().is_err(), "len {len}");
        }
        assert!(Decoder::new(&[0xff; 11]).attributes().is_err());
    }
}
