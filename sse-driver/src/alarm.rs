//! [`Alarm`]: one runtime timer, re-armed for whatever deadline a machine's
//! `poll_timeout` gives, so that a loop never builds a timer per wait.

use std::task::{Context, Poll};
use std::time::Instant;

use crate::rt::{Runtime, Timer};

/// A lazily created timer and the deadline it is armed for.
pub(crate) struct Alarm<T> {
    timer: Option<T>,
    /// The deadline the timer is armed for (`None`: not armed, or spent).
    armed_at: Option<Instant>,
}

impl<T: Timer> Alarm<T> {
    /// No timer yet.
    pub(crate) fn new() -> Alarm<T> {
        Alarm {
            timer: None,
            armed_at: None,
        }
    }

    /// Waits for `deadline`: `Ready(now)` once it has passed, `now` being
    /// the runtime's time and never earlier than `deadline` (so that the
    /// machine sees its deadline as due). The timer is then spent: the
    /// next call re-arms it, even for an equal deadline.
    pub(crate) fn poll_at<R>(
        &mut self,
        runtime: &R,
        deadline: Instant,
        cx: &mut Context<'_>,
    ) -> Poll<Instant>
    where
        R: Runtime<Timer = T>,
    {
        let timer = match &mut self.timer {
            Some(timer) => {
                if self.armed_at != Some(deadline) {
                    timer.reset(deadline);
                }
                timer
            }
            None => self.timer.insert(runtime.timer(deadline)),
        };
        self.armed_at = Some(deadline);
        match timer.poll_fired(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                self.armed_at = None;
                Poll::Ready(runtime.now().max(deadline))
            }
        }
    }

    /// Drops the timer.
    pub(crate) fn clear(&mut self) {
        self.timer = None;
        self.armed_at = None;
    }
}
