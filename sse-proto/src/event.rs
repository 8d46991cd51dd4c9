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
