//! [`Event`]: one dispatched event, as a receiver sees it.

use crate::str::Str;

/// An event dispatched by the [`Decoder`](crate::Decoder): what a browser's
/// `EventSource` hands to its `MessageEvent`.
///
/// ```
/// use sse_proto::Event;
///
/// let e = Event::new("update", "line 1\nline 2", "42");
/// assert_eq!((e.event_type(), e.data(), e.id()), ("update", "line 1\nline 2", "42"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Event {
    event_type: Str,
    data: Str,
    id: Str,
}

impl Event {
    /// Builds an event from its three parts.
    pub fn new(event_type: impl Into<Str>, data: impl Into<Str>, id: impl Into<Str>) -> Event {
        Event {
            event_type: event_type.into(),
            data: data.into(),
            id: id.into(),
        }
    }

    /// Builds an event from parts that are already [`Str`]s.
    #[inline]
    pub(crate) fn from_parts(event_type: Str, data: Str, id: Str) -> Event {
        Event {
            event_type,
            data,
            id,
        }
    }

    /// The event type: the `event` field's value, or `"message"` when the
    /// block had none (or an empty one).
    #[inline]
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// The data: every `data` field's value in the block, joined with LF.
    #[inline]
    pub fn data(&self) -> &str {
        &self.data
    }

    /// The last event ID in force when the event was dispatched (`""` when
    /// none has been set). It persists from event to event until an `id`
    /// field changes it.
    #[inline]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The data as a [`Str`], which converts to `Bytes` without a copy when
    /// it is shared with the input.
    #[inline]
    pub fn data_str(&self) -> &Str {
        &self.data
    }

    /// Splits the event into its event type, data and id.
    #[inline]
    pub fn into_parts(self) -> (Str, Str, Str) {
        (self.event_type, self.data, self.id)
    }
}

/// An event lent by [`Decoder::poll_event_ref`](crate::Decoder::poll_event_ref):
/// the same three parts as an [`Event`], borrowed from the decoder's
/// buffers (valid until the decoder is next used mutably).
///
/// ```
/// use sse_proto::{Decoder, Event};
///
/// let mut decoder = Decoder::new();
/// decoder.handle_bytes(b"event: add\ndata: 1\nid: a\n\n");
/// let lent = decoder.poll_event_ref().unwrap().unwrap();
/// assert_eq!((lent.event_type(), lent.data(), lent.id()), ("add", "1", "a"));
/// let kept: Event = lent.to_event();
/// assert_eq!(kept, Event::new("add", "1", "a"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EventRef<'a> {
    pub(crate) event_type: &'a str,
    pub(crate) data: &'a str,
    pub(crate) id: &'a str,
}

impl<'a> EventRef<'a> {
    /// The event type: the `event` field, or `"message"` when none was set.
    #[inline]
    pub fn event_type(&self) -> &'a str {
        self.event_type
    }

    /// The data: the `data` lines joined with `\n` (no final newline).
    #[inline]
    pub fn data(&self) -> &'a str {
        self.data
    }

    /// The last event ID when the event was dispatched (`""` if none).
    #[inline]
    pub fn id(&self) -> &'a str {
        self.id
    }

    /// An owned copy.
    pub fn to_event(&self) -> Event {
        Event::new(self.event_type, self.data, self.id)
    }
}
