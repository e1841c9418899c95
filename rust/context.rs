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
//! - `state`: the registered buffers and sockets, taken by the ioctls;
//!   never held across a copy to or from user space.
//! - `reader`: one `read()` at a time moves the ring's consumer head. It is
//!   held across the copy to user space, so a reader whose copy faults on a
//!   FUSE or userfaultfd mapping and waits forever stalls only the other
//!   readers of this file: never a completion, never another file.
//!
//! # Lifetime
//!
//! A `Context` is an `Arc` the open file holds. Every in-flight send holds
//! it too, through its [`Reservation`], as one reference of the context's
//! [`Inflight`] count (per CPU while the file is open: no atomic per send).
//! `close()` hands the file's `Arc` to that count, and the last send to
//! complete drops it (on the completion workqueue): the queue outlives
//! `close()` until the last send has completed.

use crate::atomic::{
    Atomic,
    Relaxed, //
};
use core::cell::{
    Cell,
    OnceCell, //
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
use crate::inflight::{
    Inflight,
    InflightRef, //
};
use crate::net::SockTable;
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
use kernel::workqueue::{
    impl_has_work,
    new_work,
    Work,
    WorkItem, //
};

/// Records moved to user space per lock hold in `read()`.
const READ_BATCH: usize = 32;

struct State {
    /// Registered buffers (`ZCSEND_IOC_REGISTER_BUFFERS`), by index.
    buffers: KVVec<Arc<PinnedBuffer>>,
    /// Registered sockets (`ZCSEND_IOC_REGISTER_SOCKETS`). A system call
    /// that names one holds the table ([`Context::sockets_in`]) until it
    /// returns; unregistering drops this reference only.
    sockets: Option<Arc<SockTable>>,
}

/// Where a system call keeps the file's registered sockets once it names
/// one ([`Context::sockets_in`]), looked up once per call: the sockets it
/// borrows from them live as long as the call.
pub(crate) type SockTableCell = OnceCell<Arc<SockTable>>;

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
    /// The sends in flight, each holding the context ([`Reservation`]).
    inflight: Inflight<Context>,
    /// Drops the context once closed and idle (`inflight.rs`).
    #[pin]
    release: Work<Context>,
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
                    sockets: None,
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
                inflight: Inflight::new()?,
                release <- new_work!("zcsend::Context::release"),
                _module: ModuleRef::get()?,
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// The file is closed: the context goes once its last send in flight
    /// has completed.
    pub(crate) fn close(this: Arc<Self>) {
        // The registered sockets go now, not with the context: a send in
        // flight on one of them holds the context until the socket lets go
        // of its skbs, which a socket only the table keeps open (corked
        // data, a peer that stopped reading) would never do: a cycle.
        let sockets = this.state.lock().sockets.take();
        drop(sockets);
        Inflight::close(this);
    }

    /// Wakes whoever waits for the records posted: the eventfd if the
    /// consumer asked for it, a reader blocked in `read()`.
    pub(crate) fn wake_readers(&self) {
        // A full barrier, then a look at what the consumer asked for.
        if self.ring.wants_signal() {
            self.eventfd.signal();
        }
        // Only when a reader sleeps in `read()`; `wants_signal()`'s barrier
        // is the one `wq_has_sleeper()` would issue.
        self.readable.wake_after_barrier();
    }

    /// The file's cache of notifiers.
    pub(crate) fn notifs(&self) -> &NotifCache<InFlight> {
        &self.notifs
    }

    /// Reserves the completion slot of a send about to be submitted.
    #[inline(always)]
    pub(crate) fn reserve(self: ArcBorrow<'_, Self>) -> Result<Reservation> {
        let ctx = self.hold()?;
        self.ring.reserve_many(1)?;
        Ok(self.reserved(ctx))
    }

    /// The context held for one more send in flight; `EBADF` once the file
    /// is closed (an ioctl runs on an open file: not seen).
    #[inline(always)]
    fn hold(&self) -> Result<InflightRef<Context>> {
        InflightRef::get(self).ok_or(EBADF)
    }

    /// Reserves the completion slot of a send about to be submitted, from
    /// `pool`: when it holds none, up to `want` (the sends the system call
    /// has left, this one included) are reserved at once, so a batch
    /// updates the ring's reservations once, not once per send.
    #[inline(always)]
    pub(crate) fn reserve_in<'a>(
        self: ArcBorrow<'a, Self>,
        pool: &mut SlotPool<'a>,
        want: usize,
    ) -> Result<Reservation> {
        let ctx = self.hold()?;
        if pool.left == 0 {
            pool.left = self.ring.reserve_many(want as u64)?;
            pool.ctx = Some(self);
        }
        pool.left -= 1;
        Ok(self.reserved(ctx))
    }

    /// The reservation of a slot reserved in the ring.
    #[inline(always)]
    fn reserved(&self, ctx: InflightRef<Context>) -> Reservation {
        Reservation {
            ctx,
            pinned_pages: 0,
            fixed: false,
            posted: false,
            stamp: trace::reserved(),
        }
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

    /// Registers the sockets `fds` (indexes `0..fds.len()`): `EBUSY` if
    /// some are registered already, `EINVAL` if one is named twice, and the
    /// errors of a send's lookup ([`crate::net::Socket::from_fd`]).
    pub(crate) fn register_sockets(&self, fds: &[i32]) -> Result {
        if self.state.lock().sockets.is_some() {
            return Err(EBUSY);
        }
        let table = SockTable::register(fds)?;
        let table = Arc::new(table, GFP_KERNEL_ACCOUNT)?;
        let mut state = self.state.lock();
        if state.sockets.is_some() {
            // Another thread registered meanwhile.
            return Err(EBUSY);
        }
        state.sockets = Some(table);
        Ok(())
    }

    /// Drops the registered sockets (`ENXIO` if there are none). Sends in
    /// flight on them are unaffected: their skbs hold the sockets; a call
    /// that looked the table up keeps it until it returns.
    pub(crate) fn unregister_sockets(&self) -> Result {
        let old = self.state.lock().sockets.take().ok_or(ENXIO)?;
        // The files are put outside the lock.
        drop(old);
        Ok(())
    }

    /// The registered sockets, kept in `cell` for the rest of the system
    /// call (looked up by its first use); `ENXIO` if there are none.
    pub(crate) fn sockets_in<'c>(&self, cell: &'c SockTableCell) -> Result<&'c SockTable> {
        if let Some(t) = cell.get() {
            return Ok(t);
        }
        let table = self.state.lock().sockets.clone().ok_or(ENXIO)?;
        Ok(cell.get_or_init(|| table))
    }

    /// Registered buffer `index`, held until the system call returns
    /// ([`FixedRef`]). `EINVAL` for a bad index, `ENXIO` if none are
    /// registered.
    ///
    /// The count of sends from the registered buffers is raised here for
    /// the lookup and, at once, for up to `budget` sends that will claim
    /// it ([`Reservation::claim_fixed`]): a batch updates it once, not
    /// once per send. What is not claimed goes back with the [`FixedRef`].
    pub(crate) fn fixed_buffer(
        self: ArcBorrow<'_, Self>,
        index: u32,
        budget: usize,
    ) -> Result<(Arc<PinnedBuffer>, FixedRef)> {
        let state = self.state.lock();
        if state.buffers.is_empty() {
            return Err(ENXIO);
        }
        let buf = state.buffers.get(index as usize).ok_or(EINVAL)?.clone();
        let budget = budget as u64;
        self.fixed_inflight.fetch_add(1 + budget, Relaxed);
        Ok((
            buf,
            FixedRef {
                ctx: self.into(),
                budget: Cell::new(budget),
            },
        ))
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
            // A user that rewinds `head` from another thread keeps this
            // loop going for as long as `out` has room: a scheduling point
            // per batch, and a killed task stops.
            if whole < n || done == want || crate::wait::resched_or_killed() {
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
///
/// # Invariants
///
/// Holds `1 + budget` of the file's count of sends from registered buffers:
/// one for the lookup, `budget` for sends of this system call still to
/// claim one ([`Reservation::claim_fixed`]). So the count stays above the
/// sends in flight from the buffers for as long as this lives.
pub(crate) struct FixedRef {
    ctx: Arc<Context>,
    budget: Cell<u64>,
}

impl Drop for FixedRef {
    fn drop(&mut self) {
        self.ctx
            .fixed_inflight
            .fetch_sub(1 + self.budget.get(), Relaxed);
    }
}

/// Completion slots reserved at once for the sends of one system call
/// ([`Context::reserve_in`]); those left unused when it drops are given
/// back.
///
/// # Invariants
///
/// `left` slots of `ctx`'s ring are reserved and belong to this pool (none
/// when `ctx` is `None`).
#[derive(Default)]
pub(crate) struct SlotPool<'a> {
    ctx: Option<ArcBorrow<'a, Context>>,
    left: u64,
}

impl Drop for SlotPool<'_> {
    fn drop(&mut self) {
        if let Some(ctx) = self.ctx {
            if self.left != 0 {
                ctx.ring.unreserve(self.left);
            }
        }
    }
}

/// A send's reserved completion slot and its share of the counters.
///
/// Posting fills the slot; dropping it unposted gives the slot back (the send
/// failed and returned an error instead). Either way the send is no longer
/// in flight (the ring's reservations are the file's `inflight`) and its
/// share of `pinned_pages` ends.
pub(crate) struct Reservation {
    ctx: InflightRef<Context>,
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
        if !core::ptr::eq(Arc::as_ptr(&held.ctx), self.ctx.as_ptr()) {
            return Err(EINVAL);
        }
        if !self.fixed {
            match held.budget.get() {
                // INVARIANT (`FixedRef`): the lookup raised the count for
                // this send already; the claim moves to the reservation.
                n @ 1.. => held.budget.set(n - 1),
                0 => {
                    self.ctx.fixed_inflight.fetch_add(1, Relaxed);
                }
            }
            self.fixed = true;
        }
        Ok(())
    }

    /// The identity of the file this send belongs to: sends of different
    /// files never share a notifier chain.
    pub(crate) fn owner(&self) -> usize {
        self.ctx.as_ptr() as usize
    }

    /// Posts the completion record and wakes readers and the eventfd.
    /// `linked`: the send shared an skb with an earlier one (`linked` stat);
    /// `chain_len`: the sends its notifier chain completed together.
    pub(crate) fn post(mut self, rec: ZcsendCompletion, linked: bool, chain_len: u32) {
        self.publish(rec, linked, chain_len);
        self.ctx.wake_readers();
    }

    /// Posts the record as [`Self::post`] does, leaving the wake-ups to a
    /// [`Context::wake_readers`] the caller owes before its system call
    /// returns (a batch's sends completing inside it: one barrier and one
    /// look at the consumer for the call, not one per record).
    pub(crate) fn post_quiet(mut self, rec: ZcsendCompletion, linked: bool, chain_len: u32) {
        self.publish(rec, linked, chain_len);
    }

    /// [`Self::post`] without the wake-ups.
    #[inline(always)]
    fn publish(&mut self, rec: ZcsendCompletion, linked: bool, chain_len: u32) {
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
        self.ctx.ring.post(rec);
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
            self.ctx.ring.unreserve(1);
            trace::count(Counter::PinnedPages, -(self.pinned_pages as i64));
            trace::count(Counter::Inflight, -1);
            self.end_counts();
        }
    }
}

crate::inflight::impl_idle!(Context {
    inflight: inflight,
    module: _module
});

impl_has_work! {
    impl HasWork<Self> for Context { self.release }
}

impl WorkItem for Context {
    type Pointer = Arc<Context>;

    /// Drops the last reference of a closed, idle context.
    fn run(this: Arc<Context>) {
        drop(this);
    }
}
