//! Watch streams: a cursor into the event history.
//!
//! A watcher owns no queue. It remembers the last revision it has looked at and, when woken,
//! reads the events after it from the shared history (the same ring `list_at` uses), keeping
//! those under its prefix. Order, exactly-once and no gaps follow from the history holding one
//! event per revision; writers never wait for watchers, and a watcher that falls so far behind
//! that its next event was compacted away ends with [`StoreError::Compacted`], so memory is
//! bounded by the history alone.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::{Stream, StreamExt};
use tokio::sync::watch;
use tokio_stream::wrappers::WatchStream;

use crate::state::Shared;
use crate::{Event, Revision, StoreError};

/// How many history entries one scan looks at, and how many matching events it buffers, before
/// letting go of the lock.
const SCAN_ENTRIES: usize = 4096;
const MAX_BUFFERED: usize = 256;

/// The events under a prefix, in revision order, from [`Store::watch`](crate::Store::watch).
///
/// A [`Stream`] of `Result<Arc<Event>, StoreError>`. It ends (`None`) when the store is shut
/// down; after an error (the watcher fell behind the history: [`StoreError::Compacted`]) it
/// ends too, and the caller should list again and watch from the list's revision.
pub struct Watch {
    shared: Arc<Shared>,
    prefix: String,
    /// Every event with a revision up to here has been looked at (and, if it matched, put in
    /// `buffer`).
    cursor: Revision,
    buffer: VecDeque<Arc<Event>>,
    wake: WatchStream<Revision>,
    error: Option<StoreError>,
    done: bool,
}

impl Watch {
    pub(crate) fn new(
        shared: Arc<Shared>,
        prefix: String,
        cursor: Revision,
        mut revisions: watch::Receiver<Revision>,
    ) -> Self {
        revisions.borrow_and_update();
        Watch {
            shared,
            prefix,
            cursor,
            buffer: VecDeque::new(),
            wake: WatchStream::from_changes(revisions),
            error: None,
            done: false,
        }
    }

    /// The prefix watched.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A revision R such that every event under the prefix with revision <= R has already been
    /// yielded by this stream: what a Kubernetes watch BOOKMARK carries. It keeps up with
    /// writes to other prefixes even when no event of this watch's own comes by; call it
    /// between polls (e.g. on a timer), it does not wait.
    pub fn progress_revision(&mut self) -> Revision {
        if !self.done && self.error.is_none() {
            self.scan();
        }
        match self.buffer.front() {
            Some(next) => next.revision() - 1,
            None => self.cursor,
        }
    }

    /// Looks at the history after the cursor; returns whether anything was found (an event, or
    /// the error that ends the watch).
    fn scan(&mut self) -> bool {
        let state = self.shared.read();
        if state.revision <= self.cursor {
            return false;
        }
        if let Err(e) = state.check_available(self.cursor) {
            self.error = Some(e);
            return true;
        }
        let before = self.buffer.len();
        for event in state.events_after(self.cursor).take(SCAN_ENTRIES) {
            if event.key().starts_with(&self.prefix) {
                self.buffer.push_back(event.clone());
            }
            self.cursor = event.revision();
            if self.buffer.len() >= MAX_BUFFERED {
                break;
            }
        }
        // Even without a match, the cursor moved: look again before sleeping.
        self.buffer.len() > before || state.revision > self.cursor
    }
}

impl Stream for Watch {
    type Item = Result<Arc<Event>, StoreError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(event) = this.buffer.pop_front() {
                return Poll::Ready(Some(Ok(event)));
            }
            if let Some(e) = this.error.take() {
                this.done = true;
                return Poll::Ready(Some(Err(e)));
            }
            if this.done {
                return Poll::Ready(None);
            }
            if this.scan() {
                continue;
            }
            // A write published after the scan above has already bumped the revision channel,
            // so this cannot sleep through it.
            match this.wake.poll_next_unpin(cx) {
                Poll::Ready(Some(_)) => continue,
                Poll::Ready(None) => {
                    // The writer is gone; everything it published has been scanned above.
                    if !this.scan() {
                        this.done = true;
                    }
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("prefix", &self.prefix)
            .field("cursor", &self.cursor)
            .field("buffered", &self.buffer.len())
            .finish()
    }
}
