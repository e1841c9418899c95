// SPDX-License-Identifier: GPL-2.0

//! Per-open state of `/dev/zcsend`: the completion queue, the registered
//! eventfd and the counters.
//!
//! # Locks and contexts
//!
//! Completions, which run in process context or softirq (hard IRQ hands
//! them to the workqueue, `ubuf.rs`), take no lock: they post into the
//! lock-free ring (`completion.rs`), signal the RCU-published eventfd and
//! wake the wait queue. Two mutexes, process context only:
//!
//! - `state`: the registered buffers, taken by the ioctls; never held across
//!   a copy to or from user space.
//! - `reader`: one `read()` at a time moves the ring's consumer head. It is
//!   held across the copy to user space, so a reader whose copy faults on a
//!   FUSE or userfaultfd mapping and waits forever stalls only the other
//!   readers of this file: never a completion, never another file.
//!
//! # Lifetime
//!
//! A `Context` is an `Arc`: the open file holds one reference and every
//! in-flight send (through its [`Reservation`]) holds another, so the queue
//! outlives `close()` until the last send has completed.

use crate::atomic::{
    Atomic,
    Relaxed, //
};
use kernel::iov::IovIterDest;
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{
    Arc,
    ArcBorrow,
    Mutex, //
};
use kernel::transmute::AsBytes;

use crate::completion::{
    CompletionRing,
    ReadSide, //
};
use crate::eventfd::{
    EventFd,
    EventFdSlot, //
};
use crate::pinned::PinnedBuffer;
use crate::send::InFlight;
use crate::trace::{
    self,
    Counter, //
};
use crate::uapi::{
    ZcsendBuffer,
    ZcsendCompletion,
    ZcsendStats,
    ZCSEND_COMPL_ZEROCOPY,
    ZCSEND_MAX_BUFFER_LEN,
    ZCSEND_MAX_PINNED_PAGES, //
};
use crate::ubuf::{
    NotifCache,
    Recycle, //
};
use crate::wait::WaitQueue;
use crate::wq::ModuleRef;

/// Records moved to user space per lock hold in `read()`.
const READ_BATCH: usize = 32;

struct State {
    /// Registered buffers (`ZCSEND_IOC_REGISTER_BUFFERS`), by index.
    buffers: KVVec<Arc<PinnedBuffer>>,
}

/// The state of one open file of `/dev/zcsend`.
#[pin_data]
pub(crate) struct Context {
    #[pin]
    state: Mutex<State>,
    /// The reader lock: one `read()` at a time consumes the ring. Held
    /// across the copy to user space; nothing else takes it.
    #[pin]
    reader: Mutex<ReadSide>,
    /// Completions post here from any context, without a lock.
    ring: CompletionRing,
    /// Readers blocked in `read()` wait here for `ring`.
    #[pin]
    readable: WaitQueue,
    eventfd: EventFdSlot,
    // Sends in flight are the ring's reservations (`CompletionRing::reserved`);
    // completed sends are its records posted (`CompletionRing::posted`), of
    // which `copied` were copied and the rest zero-copy: no counter of
    // their own, no atomic per zero-copy send.
    pinned_pages: Atomic<u64>,
    copied: Atomic<u64>,
    linked: Atomic<u64>,
    /// Sends from registered buffers not completed yet.
    fixed_inflight: Atomic<u64>,
    /// Notifiers of completed sends, for the next ones.
    notifs: NotifCache<InFlight>,
    /// Keeps the module loaded while the context lives: past `close()`,
    /// until the last in-flight send (each holds the context) completes.
    /// One module reference per open file instead of one per send.
    _module: ModuleRef,
}

impl Context {
    /// Creates the state of a newly opened file.
    pub(crate) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            try_pin_init!(Context {
                state <- new_mutex!(State {
                    buffers: KVVec::new(),
                }),
                reader <- new_mutex!(ReadSide::new()),
                ring: CompletionRing::new()?,
                readable <- WaitQueue::new(),
                eventfd: EventFdSlot::new(),
                pinned_pages: Atomic::new(0),
                copied: Atomic::new(0),
                linked: Atomic::new(0),
                fixed_inflight: Atomic::new(0),
                notifs: NotifCache::new(),
                _module: ModuleRef::get()?,
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// The file's cache of notifiers.
    pub(crate) fn notifs(&self) -> &NotifCache<InFlight> {
        &self.notifs
    }

    /// Reserves the completion slot of a send about to be submitted.
    #[inline(always)]
    pub(crate) fn reserve(self: ArcBorrow<'_, Self>) -> Result<Reservation> {
        self.ring.reserve()?;
        Ok(Reservation {
            ctx: self.into(),
            pinned_pages: 0,
            fixed: false,
            posted: false,
            stamp: trace::reserved(),
        })
    }

    /// The ring's page `index` (0: header, then the slots), to map.
    pub(crate) fn ring_page(&self, index: usize) -> Option<&kernel::page::Page> {
        self.ring.page(index)
    }

    /// Pins `bufs` as this file's registered buffers; `EBUSY` if some are
    /// registered already. Returns how many segments (largest possible
    /// frags: runs of pages inside one folio) they were coalesced into.
    pub(crate) fn register_buffers(&self, bufs: &[ZcsendBuffer]) -> Result<usize> {
        if !self.state.lock().buffers.is_empty() {
            return Err(EBUSY);
        }
        // Pinned without the lock: pinning faults pages in and may sleep.
        let mut table = KVVec::with_capacity(bufs.len(), GFP_KERNEL_ACCOUNT)?;
        for b in bufs {
            if b.len == 0 || b.len > ZCSEND_MAX_BUFFER_LEN {
                return Err(EINVAL);
            }
            table.push(
                Arc::new(PinnedBuffer::pin(b.addr, b.len)?, GFP_KERNEL_ACCOUNT)?,
                GFP_KERNEL_ACCOUNT,
            )?;
        }
        let mut state = self.state.lock();
        if !state.buffers.is_empty() {
            // Another thread registered meanwhile; ours are unpinned on drop.
            return Err(EBUSY);
        }
        let segments = table.iter().map(|b| b.nr_segments()).sum();
        let pages: usize = table.iter().map(|b| b.nr_pages()).sum();
        state.buffers = table;
        drop(state);
        trace::count(Counter::RegisteredPages, pages as i64);
        trace::register(bufs.len(), pages, segments);
        Ok(segments)
    }

    /// Unpins the registered buffers: `EBUSY` while a send from them is in
    /// flight, `ENXIO` if there are none.
    pub(crate) fn unregister_buffers(&self) -> Result {
        let old = {
            let mut state = self.state.lock();
            if state.buffers.is_empty() {
                return Err(ENXIO);
            }
            // Counted under this lock when a send takes its buffer.
            if self.fixed_inflight.load(Relaxed) != 0 {
                return Err(EBUSY);
            }
            core::mem::take(&mut state.buffers)
        };
        let pages: usize = old.iter().map(|b| b.nr_pages()).sum();
        drop(old);
        trace::count(Counter::RegisteredPages, -(pages as i64));
        Ok(())
    }

    /// Registered buffer `index`, held for one send until it completes
    /// ([`FixedRef`]). `EINVAL` for a bad index, `ENXIO` if none are
    /// registered.
    pub(crate) fn fixed_buffer(
        self: ArcBorrow<'_, Self>,
        index: u32,
    ) -> Result<(Arc<PinnedBuffer>, FixedRef)> {
        let state = self.state.lock();
        if state.buffers.is_empty() {
            return Err(ENXIO);
        }
        let buf = state.buffers.get(index as usize).ok_or(EINVAL)?.clone();
        self.fixed_inflight.fetch_add(1, Relaxed);
        Ok((buf, FixedRef { ctx: self.into() }))
    }

    /// Registers `fd` as the eventfd to signal (`fd < 0` unregisters).
    pub(crate) fn set_eventfd(&self, fd: i32) -> Result {
        let new = if fd < 0 {
            None
        } else {
            Some(EventFd::from_fd(fd)?)
        };
        self.eventfd.set(new);
        Ok(())
    }

    /// A snapshot of the counters.
    pub(crate) fn stats(&self, copy_threshold: u64) -> ZcsendStats {
        // Posted first: a copied send is counted in `copied` before it is
        // posted, so `copied` read after is not below the posted ones'.
        let sends = self.ring.posted();
        let copied = self.copied.load(Relaxed).min(sends);
        let zerocopy = sends - copied;
        ZcsendStats {
            sends,
            inflight: self.ring.reserved(),
            pinned_pages: self.pinned_pages.load(Relaxed),
            zerocopy,
            copied,
            queued: self.ring.queued() as u64,
            copy_threshold,
            linked: self.linked.load(Relaxed),
        }
    }

    /// Moves whole completion records into `out`.
    ///
    /// Blocks until one is there unless `nonblock`; `EAGAIN` then. `EINVAL`
    /// if `out` cannot hold one record, `EINTR` on a signal, `EFAULT` if
    /// nothing could be copied.
    pub(crate) fn read(&self, out: &mut IovIterDest<'_>, nonblock: bool) -> Result<usize> {
        let rec = core::mem::size_of::<ZcsendCompletion>();
        let want = out.len() / rec;
        if want == 0 {
            return Err(EINVAL);
        }
        let mut done = 0;
        let mut batch = [ZcsendCompletion::default(); READ_BATCH];
        let mut rd = self.reader.lock();
        loop {
            let (head, n) = self
                .ring
                .peek(&mut rd, &mut batch[..(want - done).min(READ_BATCH)]);
            if n == 0 {
                if done != 0 {
                    break;
                }
                drop(rd);
                if nonblock {
                    return Err(EAGAIN);
                }
                self.readable.wait_until(&|| self.ring.ready())?;
                rd = self.reader.lock();
                continue;
            }
            // The copy may fault and sleep as long as the mapping's owner
            // wants: only other readers of this file wait for the reader
            // lock; completions post without it.
            let copied = out.copy_to_iter(batch[..n].as_bytes());
            let whole = copied / rec;
            // A torn record is not consumed (its bytes may be in the
            // buffer, unaccounted): it is read again next time.
            self.ring.consume(&mut rd, head, whole);
            done += whole;
            if whole < n || done == want {
                break;
            }
        }
        drop(rd);
        if done == 0 {
            return Err(EFAULT);
        }
        Ok(done * rec)
    }
}

/// The file's registered buffers held in use (unregister refuses while one
/// exists): by a lookup, until the system call returns.
pub(crate) struct FixedRef {
    ctx: Arc<Context>,
}

impl Drop for FixedRef {
    fn drop(&mut self) {
        self.ctx.fixed_inflight.fetch_sub(1, Relaxed);
    }
}

/// A send's reserved completion slot and its share of the counters.
///
/// Posting fills the slot; dropping it unposted gives the slot back (the send
/// failed and returned an error instead). Either way the send is no longer
/// in flight (the ring's reservations are the file's `inflight`) and its
/// share of `pinned_pages` ends.
pub(crate) struct Reservation {
    ctx: Arc<Context>,
    pinned_pages: u64,
    /// Counted as a send from registered buffers ([`Self::claim_fixed`]).
    fixed: bool,
    posted: bool,
    /// [`trace::reserved`] at reservation, for the completion latency.
    stamp: u64,
}

impl Reservation {
    /// Accounts `n` pages about to be pinned for this send until it
    /// completes; `ENOBUFS` if the file would hold more than
    /// `ZCSEND_MAX_PINNED_PAGES`.
    pub(crate) fn add_pinned(&mut self, n: usize) -> Result {
        let n = n as u64;
        let prev = self.ctx.pinned_pages.fetch_add(n, Relaxed);
        if prev.saturating_add(n) > ZCSEND_MAX_PINNED_PAGES {
            self.ctx.pinned_pages.fetch_sub(n, Relaxed);
            return Err(Error::from_errno(-(kernel::bindings::ENOBUFS as i32)));
        }
        self.pinned_pages += n;
        trace::count(Counter::PinnedPages, n as i64);
        Ok(())
    }

    /// Gives back `n` of the pages accounted by [`Self::add_pinned`].
    pub(crate) fn remove_pinned(&mut self, n: usize) {
        let n = (n as u64).min(self.pinned_pages);
        self.pinned_pages -= n;
        self.ctx.pinned_pages.fetch_sub(n, Relaxed);
        trace::count(Counter::PinnedPages, -(n as i64));
    }

    /// Counts this send as one from the file's registered buffers until it
    /// completes (unregister refuses while one exists). `held` proves the
    /// count is not zero now, so unregister cannot slip in between; a proof
    /// from another file's buffers is refused (`EINVAL`), never ignored.
    pub(crate) fn claim_fixed(&mut self, held: &FixedRef) -> Result {
        if !Arc::ptr_eq(&held.ctx, &self.ctx) {
            return Err(EINVAL);
        }
        if !self.fixed {
            self.ctx.fixed_inflight.fetch_add(1, Relaxed);
            self.fixed = true;
        }
        Ok(())
    }

    /// The identity of the file this send belongs to: sends of different
    /// files never share a notifier chain.
    pub(crate) fn owner(&self) -> usize {
        Arc::as_ptr(&self.ctx) as usize
    }

    /// Posts the completion record and wakes readers and the eventfd.
    /// `linked`: the send shared an skb with an earlier one (`linked` stat);
    /// `chain_len`: the sends its notifier chain completed together.
    pub(crate) fn post(mut self, rec: ZcsendCompletion, linked: bool, chain_len: u32) {
        let ctx = &self.ctx;
        if linked {
            ctx.linked.fetch_add(1, Relaxed);
        }
        // Zero-copy sends are the posted ones not counted here.
        if rec.flags & ZCSEND_COMPL_ZEROCOPY == 0 {
            ctx.copied.fetch_add(1, Relaxed);
        }
        // The send is over before its record can be seen: whoever reads it
        // finds it neither pinned nor (`CompletionRing::post` gives the
        // reservation back before publishing) in flight.
        trace::posted(&rec, self.stamp, chain_len, self.pinned_pages, linked);
        self.end_counts();
        self.posted = true;
        let ctx = &self.ctx;
        ctx.ring.post(rec);
        // A full barrier, then a look at what the consumer asked for.
        if ctx.ring.wants_signal() {
            ctx.eventfd.signal();
        }
        // Only when a reader sleeps in `read()`; `wants_signal()`'s barrier
        // is the one `wq_has_sleeper()` would issue.
        ctx.readable.wake_after_barrier();
    }

    /// Gives a completed send's notifier back to its file's cache.
    pub(crate) fn recycle(&self, notif: Recycle<InFlight>) {
        self.ctx.notifs.put(notif);
    }

    /// Ends the send's share of the file's `pinned_pages` and of its sends
    /// from registered buffers (the module-wide counters are the caller's).
    fn end_counts(&mut self) {
        if self.pinned_pages != 0 {
            self.ctx.pinned_pages.fetch_sub(self.pinned_pages, Relaxed);
        }
        if self.fixed {
            self.ctx.fixed_inflight.fetch_sub(1, Relaxed);
            self.fixed = false;
        }
        self.pinned_pages = 0;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.posted {
            // Failed and reported by the ioctl: no record, room given back.
            self.ctx.ring.unreserve();
            trace::count(Counter::PinnedPages, -(self.pinned_pages as i64));
            trace::count(Counter::Inflight, -1);
            self.end_counts();
        }
    }
}
