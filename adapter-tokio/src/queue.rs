//! The bounded event queue between the driver and the application. The driver never waits:
//! when the queue is full the oldest notification is dropped, and the drops are reported as
//! one overflow gap before the next event the application reads.

use std::collections::{BTreeSet, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures_util::Stream;
use genesys_notify_core::{Event, GapReason, Instant, Topic};
use tokio::sync::mpsc;

use crate::Command;

struct Overflow {
    topics: BTreeSet<Topic>,
    from: Instant,
    to: Instant,
}

struct Inner {
    items: VecDeque<(Instant, Event)>,
    capacity: usize,
    overflow: Option<Overflow>,
    closed: bool,
}

#[derive(Clone)]
pub(crate) struct Sender {
    inner: Arc<Mutex<Inner>>,
    bell: mpsc::Sender<()>,
}

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Sender {
    /// Queues an event that arrived at `at`, dropping the oldest notification if full.
    pub(crate) fn push(&self, at: Instant, event: Event) {
        {
            let mut q = lock(&self.inner);
            if q.items.len() >= q.capacity {
                let oldest = q
                    .items
                    .iter()
                    .position(|(_, e)| matches!(e, Event::Notification { .. }));
                if let Some((when, Event::Notification { topic, .. })) =
                    oldest.and_then(|i| q.items.remove(i))
                {
                    let o = q.overflow.get_or_insert(Overflow {
                        topics: BTreeSet::new(),
                        from: when,
                        to: when,
                    });
                    o.to = o.to.max(when);
                    if let Ok(t) = Topic::new(topic) {
                        o.topics.insert(t);
                    }
                }
            }
            q.items.push_back((at, event));
        }
        let _ = self.bell.try_send(());
    }

    /// No more events will come.
    pub(crate) fn close(&self) {
        lock(&self.inner).closed = true;
        let _ = self.bell.try_send(());
    }
}

/// The session's events, in order. Ends after the session is closed and every event was read.
/// Dropping it (together with every [`Handle`](crate::Handle)) closes the session.
pub struct EventStream {
    inner: Arc<Mutex<Inner>>,
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
    commands: mpsc::UnboundedSender<Command>,
) -> (Sender, EventStream) {
    let inner = Arc::new(Mutex::new(Inner {
        items: VecDeque::new(),
        capacity,
        overflow: None,
        closed: false,
    }));
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

    fn pop(&self) -> Option<Result<Event, ()>> {
        let mut q = lock(&self.inner);
        if let Some(o) = q.overflow.take() {
            let topics = o.topics.into_iter().collect();
            return Some(Ok(Event::Gap {
                topics,
                from: o.from,
                to: o.to,
                reason: GapReason::Overflow,
            }));
        }
        match q.items.pop_front() {
            Some((_, e)) => Some(Ok(e)),
            None if q.closed => Some(Err(())),
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
