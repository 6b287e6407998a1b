//! The bounded event queue between the driver and the application: the policy every adapter
//! shares ([`EventQueue`]) behind a lock, with a bell that wakes the reader. The driver never
//! waits: when the queue is full the oldest notifications are dropped, and the drops are
//! reported as one overflow gap before the next event the application reads.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures_util::Stream;
use genesys_notify_adapter_common::EventQueue;
use genesys_notify_core::{Event, Instant, Topic};
use tokio::sync::mpsc;

use crate::Command;

#[derive(Clone)]
pub(crate) struct Sender {
    inner: Arc<Mutex<EventQueue>>,
    bell: mpsc::Sender<()>,
}

fn lock(m: &Mutex<EventQueue>) -> MutexGuard<'_, EventQueue> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Sender {
    /// Queues an event that arrived at `at`, applying the overflow policy.
    pub(crate) fn push(&self, at: Instant, event: Event) {
        lock(&self.inner).push(at, event);
        let _ = self.bell.try_send(());
    }

    /// The application's topics now (an overflow gap names only these).
    pub(crate) fn set_topics<'t>(&self, topics: impl IntoIterator<Item = &'t Topic>) {
        lock(&self.inner).set_topics(topics);
    }

    /// No more events will come.
    pub(crate) fn close(&self) {
        lock(&self.inner).close();
        let _ = self.bell.try_send(());
    }
}

/// The session's events, in order. Ends after the session is closed and every event was read.
/// Dropping it (together with every [`Handle`](crate::Handle)) closes the session.
pub struct EventStream {
    inner: Arc<Mutex<EventQueue>>,
    bell: mpsc::Receiver<()>,
    _keepalive: mpsc::UnboundedSender<Command>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream").finish_non_exhaustive()
    }
}

pub(crate) fn channel(
    capacity: usize,
    bytes: usize,
    commands: mpsc::UnboundedSender<Command>,
) -> (Sender, EventStream) {
    let inner = Arc::new(Mutex::new(
        EventQueue::new(capacity).with_byte_budget(bytes),
    ));
    let (tx, rx) = mpsc::channel(1);
    (
        Sender {
            inner: Arc::clone(&inner),
            bell: tx,
        },
        EventStream {
            inner,
            bell: rx,
            _keepalive: commands,
        },
    )
}

impl EventStream {
    /// The next event; `None` once the session has ended and everything was read.
    pub async fn next_event(&mut self) -> Option<Event> {
        futures_util::StreamExt::next(self).await
    }

    /// For an application that is exiting and can no longer deliver notifications: every
    /// event not read yet, with the queued notifications given up as one overflow gap.
    pub fn take_unread(&mut self) -> Vec<Event> {
        let mut q = lock(&self.inner);
        q.abandon_notifications();
        std::iter::from_fn(|| q.pop()).collect()
    }

    fn pop(&self) -> Option<Result<Event, ()>> {
        let mut q = lock(&self.inner);
        match q.pop() {
            Some(e) => Some(Ok(e)),
            None if q.is_finished() => Some(Err(())),
            None => None,
        }
    }
}

impl Stream for EventStream {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        loop {
            match self.pop() {
                Some(Ok(e)) => return Poll::Ready(Some(e)),
                Some(Err(())) => return Poll::Ready(None),
                None => {}
            }
            match self.bell.poll_recv(cx) {
                Poll::Ready(Some(())) => continue,
                Poll::Ready(None) => {
                    return Poll::Ready(match self.pop() {
                        Some(Ok(e)) => Some(e),
                        Some(Err(())) | None => None,
                    })
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
