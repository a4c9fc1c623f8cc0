//! Reading span sections (the layout in [`super`]) as cheaply as each reader allows.
//!
//! Parsing a section reads its directory only: resources and scopes stay encoded until a span
//! that refers to one is decoded, then each is decoded once per section (a section of a
//! request over hundreds of services holds hundreds of resources, and a reader looking for
//! one trace needs a few). A span can be read whole ([`Span`]) or as its [`SpanHead`]: the
//! fields trace search and summaries read, borrowed from the section's bytes, with its
//! attributes, events and links stepped over instead of decoded.

use std::cell::OnceCell;
use std::sync::Arc;

use crate::model::{Resource, Scope, Span, SpanId, SpanKind, StatusCode, TraceId};
use crate::store::StoreError;
use crate::store::sqlite::codec::{self, Decoder};

use super::{HAS_DROPPED, HAS_EVENTS, HAS_LINKS, HAS_PARENT, VERSION};

/// The span sections a block body holds back to back (one for a block written from model
/// spans, several for one made of write-ahead log frames).
pub(crate) fn parse_sections(bytes: &[u8]) -> Result<Vec<SpanSection<'_>>, StoreError> {
    let mut decoder = Decoder::new(bytes);
    let mut sections = Vec::new();
    while !decoder.is_empty() {
        sections.push(SpanSection::parse(&mut decoder)?);
    }
    Ok(sections)
}

/// An encoded resource or scope, decoded on first use.
struct Lazy<'a, T> {
    bytes: &'a [u8],
    decoded: OnceCell<Arc<T>>,
}

impl<'a, T> Lazy<'a, T> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            decoded: OnceCell::new(),
        }
    }

    fn get(&self, decode: fn(&[u8]) -> Result<Arc<T>, StoreError>) -> Result<Arc<T>, StoreError> {
        if let Some(decoded) = self.decoded.get() {
            return Ok(Arc::clone(decoded));
        }
        let decoded = decode(self.bytes)?;
        Ok(Arc::clone(self.decoded.get_or_init(|| decoded)))
    }
}

/// The resources and scopes of a section (or of a batch's metric points), referenced by index.
pub(super) struct Refs<'a> {
    resources: Vec<Lazy<'a, Resource>>,
    scopes: Vec<Lazy<'a, Scope>>,
}

impl<'a> Refs<'a> {
    pub(super) fn read(decoder: &mut Decoder<'a>) -> Result<Self, StoreError> {
        let count = decoder.count()?;
        let mut resources = Vec::with_capacity(count);
        for _ in 0..count {
            resources.push(Lazy::new(decoder.bytes()?));
        }
        let count = decoder.count()?;
        let mut scopes = Vec::with_capacity(count);
        for _ in 0..count {
            scopes.push(Lazy::new(decoder.bytes()?));
        }
        Ok(Self { resources, scopes })
    }

    pub(super) fn get(
        &self,
        resource: u64,
        scope: u64,
    ) -> Result<(Arc<Resource>, Arc<Scope>), StoreError> {
        let scope = usize::try_from(scope)
            .ok()
            .and_then(|index| self.scopes.get(index))
            .ok_or_else(out_of_range)?;
        Ok((self.resource(resource)?, scope.get(codec::decode_scope)?))
    }

    fn encoded_resource(&self, resource: u64) -> Result<&Lazy<'a, Resource>, StoreError> {
        usize::try_from(resource)
            .ok()
            .and_then(|index| self.resources.get(index))
            .ok_or_else(out_of_range)
    }

    fn resource(&self, resource: u64) -> Result<Arc<Resource>, StoreError> {
        self.encoded_resource(resource)?.get(codec::decode_resource)
    }

    fn service_name(&self, resource: u64) -> Result<&'a [u8], StoreError> {
        codec::resource_service_name(self.encoded_resource(resource)?.bytes)
    }
}

fn out_of_range() -> StoreError {
    codec::corrupt("resource or scope index out of range")
}

/// One trace's entry in a section's directory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TraceEntry {
    pub trace_id: TraceId,
    pub num_spans: usize,
    /// Where the trace's spans lie in the section's bodies.
    body_start: usize,
    body_end: usize,
}

/// A span's fields that trace search and summaries read, borrowed from its section. Its
/// resource is an index into the section's (see [`SpanSection::service_name`]); its
/// attributes stay encoded (see [`SpanHead::attributes`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpanHead<'a> {
    pub span_id: SpanId,
    pub parent_span_id: Option<SpanId>,
    pub resource: u64,
    scope: u64,
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    /// Checked to be UTF-8 only when read (see [`SpanHead::name`]).
    name: &'a [u8],
    pub kind: SpanKind,
    pub status_code: StatusCode,
    /// Checked to be UTF-8 only when the span is decoded whole.
    status_message: &'a [u8],
    trace_state: &'a [u8],
    flags: u32,
    /// Which optional parts follow the attributes.
    parts: u8,
    /// The encoded attributes (empty until [`SpanSection::heads`] steps over them).
    encoded_attributes: &'a [u8],
}

impl<'a> SpanHead<'a> {
    pub(crate) fn name(&self) -> Result<&'a str, StoreError> {
        utf8(self.name)
    }

    /// Whether the span's name is `name` (compared as bytes: a search need not check that the
    /// names it passes over are UTF-8).
    pub(crate) fn is_named(&self, name: &str) -> bool {
        self.name == name.as_bytes()
    }

    pub(crate) fn duration_nanos(&self) -> u64 {
        self.end_time_unix_nano
            .saturating_sub(self.start_time_unix_nano)
    }

    /// The span's own attributes, decoded.
    pub(crate) fn attributes(&self) -> Result<crate::model::Attributes, StoreError> {
        Decoder::new(self.encoded_attributes).attributes()
    }
}

/// A parsed span section: its directory read, resources and scopes kept encoded until used,
/// spans decoded on demand.
pub(crate) struct SpanSection<'a> {
    base: u64,
    refs: Refs<'a>,
    directory: Vec<TraceEntry>,
    bodies: &'a [u8],
}

impl<'a> SpanSection<'a> {
    /// Parses the section at the decoder's position and moves the decoder past it.
    pub(crate) fn parse(decoder: &mut Decoder<'a>) -> Result<Self, StoreError> {
        if decoder.u8()? != VERSION {
            return Err(codec::corrupt("unknown span section version"));
        }
        let base = decoder.varint()?;
        let refs = Refs::read(decoder)?;
        let num_traces = decoder.count()?;
        let mut directory = Vec::with_capacity(num_traces);
        let mut body_end = 0_usize;
        for _ in 0..num_traces {
            let trace_id = TraceId::from_bytes(decoder.take(TraceId::LEN)?)
                .map_err(|err| StoreError::Corrupt(err.to_string()))?;
            let num_spans =
                usize::try_from(decoder.varint()?).map_err(|_| codec::corrupt("span count"))?;
            let body_len = decoder.count()?;
            let body_start = body_end;
            body_end = body_end
                .checked_add(body_len)
                .ok_or_else(|| codec::corrupt("body length"))?;
            directory.push(TraceEntry {
                trace_id,
                num_spans,
                body_start,
                body_end,
            });
        }
        let bodies = decoder.take(body_end)?;
        Ok(Self {
            base,
            refs,
            directory,
            bodies,
        })
    }

    pub(crate) fn directory(&self) -> &[TraceEntry] {
        &self.directory
    }

    /// Which of the section's resources (by index) belong to `service`, from their names
    /// alone; none when the section holds no span of it.
    pub(crate) fn resources_of(&self, service: &str) -> Result<Option<Vec<bool>>, StoreError> {
        let mut any = false;
        let mut wanted = Vec::with_capacity(self.refs.resources.len());
        for resource in 0..self.refs.resources.len() as u64 {
            let is_wanted = self.refs.service_name(resource)? == service.as_bytes();
            any |= is_wanted;
            wanted.push(is_wanted);
        }
        Ok(any.then_some(wanted))
    }

    /// The service name of the section's resource number `resource`.
    pub(crate) fn service_name(&self, resource: u64) -> Result<&'a str, StoreError> {
        utf8(self.refs.service_name(resource)?)
    }

    /// The section's resource number `resource`, decoded (once per section).
    pub(crate) fn resource(&self, resource: u64) -> Result<Arc<Resource>, StoreError> {
        self.refs.resource(resource)
    }

    /// The spans of `trace_id` in this section (empty when it has none).
    pub(crate) fn spans_of(&self, trace_id: TraceId) -> Result<Vec<Span>, StoreError> {
        let mut spans = Vec::with_capacity(self.num_spans_of(trace_id));
        for entry in self.entries_of(trace_id) {
            self.decode_entry(entry, &mut spans)?;
        }
        Ok(spans)
    }

    /// How many spans of `trace_id` this section holds, from its directory alone.
    pub(crate) fn num_spans_of(&self, trace_id: TraceId) -> usize {
        self.entries_of(trace_id).map(|entry| entry.num_spans).sum()
    }

    // Blocks sort their traces; a frame's directory is sorted too (see encode_batch).
    pub(crate) fn entries_of(&self, trace_id: TraceId) -> impl Iterator<Item = &TraceEntry> {
        self.directory
            .iter()
            .filter(move |entry| entry.trace_id == trace_id)
    }

    /// Every span, trace by trace.
    pub(crate) fn all_spans(&self) -> Result<Vec<Span>, StoreError> {
        let mut spans = Vec::with_capacity(self.directory.iter().map(|e| e.num_spans).sum());
        for entry in &self.directory {
            self.decode_entry(entry, &mut spans)?;
        }
        Ok(spans)
    }

    pub(crate) fn decode_entry(
        &self,
        entry: &TraceEntry,
        spans: &mut Vec<Span>,
    ) -> Result<(), StoreError> {
        let mut decoder = Decoder::new(self.body_of(entry)?);
        for _ in 0..entry.num_spans {
            spans.push(self.read_span(&mut decoder, entry.trace_id)?);
        }
        if !decoder.is_empty() {
            return Err(codec::corrupt("bytes after a trace's spans"));
        }
        Ok(())
    }

    /// The heads of the spans of `entry`, in stored order, each handed to `visit`.
    pub(crate) fn heads(
        &self,
        entry: &TraceEntry,
        mut visit: impl FnMut(&SpanHead<'a>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut decoder = Decoder::new(self.body_of(entry)?);
        for _ in 0..entry.num_spans {
            let mut head = self.read_head(&mut decoder)?;
            head.encoded_attributes = decoder.skip_attributes()?;
            if head.parts & HAS_EVENTS != 0 {
                decoder.skip_events()?;
            }
            if head.parts & HAS_LINKS != 0 {
                decoder.skip_links()?;
            }
            if head.parts & HAS_DROPPED != 0 {
                for _ in 0..3 {
                    decoder.varint()?;
                }
            }
            visit(&head)?;
        }
        if !decoder.is_empty() {
            return Err(codec::corrupt("bytes after a trace's spans"));
        }
        Ok(())
    }

    fn body_of(&self, entry: &TraceEntry) -> Result<&'a [u8], StoreError> {
        self.bodies
            .get(entry.body_start..entry.body_end)
            .ok_or_else(|| codec::corrupt("trace body out of range"))
    }

    /// A span's fields up to its attributes, which the decoder is left at.
    fn read_head(&self, decoder: &mut Decoder<'a>) -> Result<SpanHead<'a>, StoreError> {
        let span_id = span_id_of(decoder)?;
        let parts = decoder.u8()?;
        let parent_span_id = if parts & HAS_PARENT != 0 {
            Some(span_id_of(decoder)?)
        } else {
            None
        };
        let resource = decoder.varint()?;
        let scope = decoder.varint()?;
        let start_time_unix_nano = self
            .base
            .checked_add(decoder.varint()?)
            .ok_or_else(|| codec::corrupt("start time"))?;
        // Bit reinterpretation: an end before the start is stored as a negative delta.
        let end_time_unix_nano = start_time_unix_nano.wrapping_add(decoder.i64()? as u64);
        let name = decoder.bytes()?;
        let kind = SpanKind::from_otlp(small_i32(decoder.i64()?)?);
        let status_code = StatusCode::from_otlp(small_i32(decoder.i64()?)?);
        let status_message = decoder.bytes()?;
        let trace_state = decoder.bytes()?;
        let flags = decoder.u32()?;
        Ok(SpanHead {
            span_id,
            parent_span_id,
            resource,
            scope,
            start_time_unix_nano,
            end_time_unix_nano,
            name,
            kind,
            status_code,
            status_message,
            trace_state,
            flags,
            parts,
            encoded_attributes: &[],
        })
    }

    fn read_span(&self, decoder: &mut Decoder<'a>, trace_id: TraceId) -> Result<Span, StoreError> {
        let head = self.read_head(decoder)?;
        let (resource, scope) = self.refs.get(head.resource, head.scope)?;
        let attributes = decoder.attributes()?;
        let events = if head.parts & HAS_EVENTS != 0 {
            codec::decode_events_from(decoder)?
        } else {
            Vec::new()
        };
        let links = if head.parts & HAS_LINKS != 0 {
            codec::decode_links_from(decoder)?
        } else {
            Vec::new()
        };
        let [
            dropped_attributes_count,
            dropped_events_count,
            dropped_links_count,
        ] = if head.parts & HAS_DROPPED != 0 {
            [decoder.u32()?, decoder.u32()?, decoder.u32()?]
        } else {
            [0; 3]
        };
        Ok(Span {
            resource,
            scope,
            trace_id,
            span_id: head.span_id,
            parent_span_id: head.parent_span_id,
            trace_state: utf8(head.trace_state)?.to_owned(),
            flags: head.flags,
            name: head.name()?.to_owned(),
            kind: head.kind,
            start_time_unix_nano: head.start_time_unix_nano,
            end_time_unix_nano: head.end_time_unix_nano,
            attributes,
            dropped_attributes_count,
            events,
            dropped_events_count,
            links,
            dropped_links_count,
            status_code: head.status_code,
            status_message: utf8(head.status_message)?.to_owned(),
        })
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, StoreError> {
    std::str::from_utf8(bytes).map_err(|_| codec::corrupt("string is not utf-8"))
}

fn small_i32(value: i64) -> Result<i32, StoreError> {
    i32::try_from(value).map_err(|_| codec::corrupt("enum out of range"))
}

fn span_id_of(decoder: &mut Decoder<'_>) -> Result<SpanId, StoreError> {
    SpanId::from_bytes(decoder.take(SpanId::LEN)?)
        .map_err(|err| StoreError::Corrupt(err.to_string()))
}
