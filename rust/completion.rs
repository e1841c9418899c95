// SPDX-License-Identifier: GPL-2.0

//! The completion ring of one open file: bounded, allocated once, posted
//! into by completions from any context without a lock, and shared with
//! user space, which may `mmap` it and consume records without a system
//! call (`read()` consumes the same ring).
//!
//! One of the files that hold zcsend's `unsafe` code: the ring lives in
//! pages that user space maps, so the kernel reads and writes it through
//! raw pointers into their direct-map addresses (`page_address`; not a
//! `vmap`, whose `vunmap` could not run where the last completion may drop
//! the ring: in softirq). A slot never straddles two pages.
//!
//! Layout (`include/uapi/linux/zcsend.h`): a header page whose `head` the
//! consumer advances (user space may write it: mapped read-write), then
//! `ZCSEND_RING_ENTRIES` slots of `struct zcsend_ring_slot` (mapped
//! read-only). A producer claims position `p` with one `fetch_add` on the
//! kernel-private `tail`, writes the record into slot `p % entries`, then
//! publishes `seq = p + 1`; the consumer at `head` takes records while
//! `slots[head % entries].seq == head + 1`.
//!
//! Nothing user space writes can make the kernel misbehave: `head` is only
//! used to compute how full the ring is (clamped to its size), so a lying
//! consumer can only make its own sends fail with `EBUSY` or have its own
//! unread records overwritten; `seq` is read-only to user space.
//!
//! A send reserves room (`claimed`) before it is submitted; a send past
//! `reserved + queued == entries` (`reserved = claimed - tail`: claimed and
//! not posted) fails with `EBUSY` before anything is pinned
//! (back-pressure). Posting consumes the reservation just by advancing
//! `tail` (one atomic), so it never fails, never allocates and never
//! blocks.

use core::ptr::NonNull;

use crate::atomic::{
    Acquire,
    Atomic,
    Relaxed,
    Release, //
};
use kernel::page::{
    Page,
    PAGE_SIZE, //
};
use kernel::prelude::*;

use crate::ffi::zcsend_page_address;
use crate::uapi::{
    ZcsendCompletion,
    ZcsendRingHdr,
    ZcsendRingSlot,
    ZCSEND_MAX_COMPLETIONS,
    ZCSEND_WAKEUP_ARMED,
    ZCSEND_WAKEUP_ON_REQUEST, //
};

/// Slots of one ring.
pub(crate) const MAX_RECORDS: usize = ZCSEND_MAX_COMPLETIONS as usize;
const _: () = assert!(MAX_RECORDS.is_power_of_two());
/// Pages of slots after the header page.
pub(crate) const SLOT_PAGES: usize =
    MAX_RECORDS * core::mem::size_of::<ZcsendRingSlot>() / PAGE_SIZE;
const _: () = assert!(core::mem::size_of::<ZcsendRingHdr>() <= PAGE_SIZE);

const SLOT_SIZE: usize = core::mem::size_of::<ZcsendRingSlot>();
const SLOTS_PER_PAGE: usize = PAGE_SIZE / SLOT_SIZE;
const _: () = assert!(PAGE_SIZE % SLOT_SIZE == 0);

/// A bounded ring of completion records in pages user space can map.
///
/// # Invariants
///
/// - `pages` holds `1 + SLOT_PAGES` zeroed order-0 lowmem pages (the header,
///   then the slots) and `addrs[i]` is the kernel address of `pages[i]`.
/// - `claimed` counts the reservations taken and not given back
///   ([`Self::unreserve`]), posted ones included: `claimed - tail` are the
///   reservations not posted yet (`claimed >= tail`), and
///   `claimed - tail + min(tail - head, MAX_RECORDS) <= MAX_RECORDS`
///   whenever a reservation is taken, so an honest consumer never has a
///   slot it has not consumed overwritten.
/// - A slot's `seq` is only written by the producer of its position, after
///   the record.
pub(crate) struct CompletionRing {
    pages: KVVec<Page>,
    addrs: KVVec<NonNull<u8>>,
    claimed: Atomic<u64>,
    tail: Atomic<u64>,
}

// SAFETY: the ring memory is accessed with atomics (`head`, `seq`) and
// volatile copies of plain records; everything else is atomic. Dropping it
// (freeing pages; user mappings hold their own references) is allowed in
// softirq, where the last completion may drop it.
unsafe impl Sync for CompletionRing {}
// SAFETY: as above.
unsafe impl Send for CompletionRing {}

/// The right to consume a ring (`read()`), kept under the reader lock so
/// that one reader at a time moves `head`.
pub(crate) struct ReadSide(());

impl ReadSide {
    pub(crate) const fn new() -> Self {
        Self(())
    }
}

impl CompletionRing {
    /// Allocates the ring (`ENOMEM`), charged to the caller's memory cgroup.
    pub(crate) fn new() -> Result<Self> {
        let n = 1 + SLOT_PAGES;
        let mut pages = KVVec::with_capacity(n, GFP_KERNEL_ACCOUNT)?;
        let mut addrs = KVVec::with_capacity(n, GFP_KERNEL_ACCOUNT)?;
        for _ in 0..n {
            // GFP_KERNEL: never highmem, so always in the direct map.
            let p = Page::alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO)?;
            // SAFETY: `p` is a valid lowmem page.
            let a = unsafe { zcsend_page_address(p.as_ptr()) };
            addrs.push(
                NonNull::new(a.cast::<u8>()).ok_or(ENOMEM)?,
                GFP_KERNEL_ACCOUNT,
            )?;
            pages.push(p, GFP_KERNEL_ACCOUNT)?;
        }
        let this = Self {
            pages,
            addrs,
            claimed: Atomic::new(0),
            tail: Atomic::new(0),
        };
        // SAFETY: the header is the first page of the mapping, ours alone.
        unsafe {
            let h = this.hdr();
            (*h).entries = MAX_RECORDS as u32;
            (*h).mask = MAX_RECORDS as u32 - 1;
            (*h).slots_offset = crate::uapi::ZCSEND_RING_OFF_SLOTS;
        }
        // INVARIANT: zeroed pages, mapped; nothing reserved or posted; the
        // zero `seq`s mean "not ready" for every position (ready is p + 1).
        Ok(this)
    }

    fn hdr(&self) -> *mut ZcsendRingHdr {
        self.addrs[0].as_ptr().cast()
    }

    fn slot(&self, pos: u64) -> *mut ZcsendRingSlot {
        let i = (pos as usize) & (MAX_RECORDS - 1);
        let page = self.addrs[1 + i / SLOTS_PER_PAGE];
        // SAFETY: `i % SLOTS_PER_PAGE` slots of `SLOT_SIZE` fit in the page.
        unsafe {
            page.as_ptr()
                .cast::<ZcsendRingSlot>()
                .add(i % SLOTS_PER_PAGE)
        }
    }

    fn seq(&self, pos: u64) -> &Atomic<u64> {
        // SAFETY: the slot is valid and 8-byte aligned for the ring's life;
        // `seq` is only accessed atomically.
        unsafe { Atomic::from_ptr(&raw mut (*self.slot(pos)).seq) }
    }

    fn head_atomic(&self) -> &Atomic<u64> {
        // SAFETY: `head` is valid and aligned for the ring's life; user
        // space may write it at any time, so it is only accessed atomically.
        unsafe { Atomic::from_ptr(&raw mut (*self.hdr()).head) }
    }

    /// The consumer's position, as user space or `read()` left it.
    fn head(&self) -> u64 {
        self.head_atomic().load(Acquire)
    }

    /// Records posted and not consumed, clamped to the ring's size (a
    /// consumer may have written anything into `head`).
    pub(crate) fn queued(&self) -> usize {
        self.queued_at(self.tail.load(Relaxed))
    }

    /// [`Self::queued`] with `tail` as read by the caller.
    fn queued_at(&self, tail: u64) -> usize {
        let q = tail.wrapping_sub(self.head());
        q.min(MAX_RECORDS as u64) as usize
    }

    /// Reserves room for up to `want` records (at least one) in one update,
    /// for the sends of one system call: how many it reserved, `EBUSY` when
    /// the ring is full of records and reservations.
    #[inline]
    pub(crate) fn reserve_many(&self, want: u64) -> Result<u64> {
        let mut cur = self.claimed.load(Relaxed);
        loop {
            // Read after `claimed`: posts only ever lower `claimed - tail`.
            let tail = self.tail.load(Acquire);
            let used = cur.saturating_sub(tail) + self.queued_at(tail) as u64;
            let room = (MAX_RECORDS as u64).saturating_sub(used);
            if room == 0 {
                return Err(EBUSY);
            }
            let n = want.clamp(1, room);
            match self.claimed.cmpxchg(cur, cur + n, Relaxed) {
                Ok(_) => return Ok(n),
                Err(now) => cur = now,
            }
        }
    }

    /// Gives back `n` reservations that will not be posted.
    pub(crate) fn unreserve(&self, n: u64) {
        self.claimed.fetch_sub(n, Release);
    }

    /// Reservations not posted or given back yet: the sends in flight.
    pub(crate) fn reserved(&self) -> u64 {
        // `tail` first: every post it counts was claimed before it was
        // posted (release/acquire on `tail`), so `claimed` read after it
        // is not below it.
        let tail = self.tail.load(Acquire);
        self.claimed.load(Relaxed).saturating_sub(tail)
    }

    /// Records posted so far (`tail`).
    pub(crate) fn posted(&self) -> u64 {
        self.tail.load(Acquire)
    }

    /// Posts a record into the room of a reservation, which this consumes.
    /// Any context but NMI.
    pub(crate) fn post(&self, rec: ZcsendCompletion) {
        // Consumes the reservation (`claimed - tail` drops by one) and counts
        // the record in `tail` at once, before it is published: whoever sees
        // the record (its `seq`, with acquire) finds the send no longer
        // reserved. Release: the claim is ordered before it (`reserved`).
        let pos = self.tail.fetch_add(1, Release);
        // SAFETY: position `pos` is ours alone (claimed above); by the type
        // invariant an honest consumer is done with this slot.
        unsafe { core::ptr::write_volatile(&raw mut (*self.slot(pos)).rec, rec) };
        self.seq(pos).store(pos + 1, Release);
    }

    fn wakeup_atomic(&self) -> &Atomic<u32> {
        // SAFETY: `wakeup` is valid and aligned for the ring's life; user
        // space may write it at any time, so it is only accessed atomically.
        unsafe { Atomic::from_ptr(&raw mut (*self.hdr()).wakeup) }
    }

    /// After a post: whether the consumer wants the eventfd signalled for
    /// it. Always, unless it chose `ZCSEND_WAKEUP_ON_REQUEST`; then only if
    /// it armed a wake-up, which this disarms. The full barrier orders the
    /// record's publication before the look at `wakeup`, as the consumer
    /// orders its arming before its look at the ring: one of the two sees
    /// the other, so no wake-up is lost. Any value user space writes only
    /// means "signal" or "do not". The barrier is unconditional: the
    /// caller's look for sleeping readers relies on it too.
    pub(crate) fn wants_signal(&self) -> bool {
        let w = self.wakeup_atomic();
        crate::atomic::smp_mb();
        let mut cur = w.load(Relaxed);
        loop {
            if cur & ZCSEND_WAKEUP_ON_REQUEST == 0 {
                return true;
            }
            if cur & ZCSEND_WAKEUP_ARMED == 0 {
                return false;
            }
            match w.cmpxchg(cur, cur & !ZCSEND_WAKEUP_ARMED, Relaxed) {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
    }

    /// Whether the record at position `pos` is published (`seq == pos + 1`).
    /// Positions wrap: user space may have written any `head`, `u64::MAX`
    /// included (an overflow check would panic); that position is never
    /// posted (`tail` would have to count 2^64 records), and its wrapped
    /// `pos + 1`, 0, is every unwritten slot's `seq`: not ready.
    fn published(&self, pos: u64) -> bool {
        let want = pos.wrapping_add(1);
        want != 0 && self.seq(pos).load(Acquire) == want
    }

    /// Whether the record at the consumer's position is ready.
    pub(crate) fn ready(&self) -> bool {
        self.published(self.head())
    }

    /// Copies up to `out.len()` ready records from the consumer's position
    /// into `out`, without consuming them; returns the position and how
    /// many.
    pub(crate) fn peek(&self, _rd: &mut ReadSide, out: &mut [ZcsendCompletion]) -> (u64, usize) {
        let head = self.head();
        let mut n = 0;
        for o in out.iter_mut() {
            let pos = head.wrapping_add(n as u64);
            if !self.published(pos) {
                break;
            }
            // SAFETY: published record of a valid slot; a volatile copy, as
            // a lying consumer may let a producer rewrite it meanwhile.
            *o = unsafe { core::ptr::read_volatile(&raw const (*self.slot(pos)).rec) };
            n += 1;
        }
        (head, n)
    }

    /// Consumes the records `[head, head + n)` that [`Self::peek`] returned.
    pub(crate) fn consume(&self, _rd: &mut ReadSide, head: u64, n: usize) {
        if n != 0 {
            self.head_atomic()
                .store(head.wrapping_add(n as u64), Release);
        }
    }

    /// The page behind byte `off` of the mapping (header page first).
    pub(crate) fn page(&self, index: usize) -> Option<&Page> {
        self.pages.get(index)
    }
}

#[kunit_tests(zcsend_completion)]
mod tests {
    use super::*;

    /// Room for one record, as a send reserves it.
    fn reserve(r: &CompletionRing) -> Result {
        r.reserve_many(1).map(|_| ())
    }

    fn rec(n: u64) -> ZcsendCompletion {
        ZcsendCompletion {
            user_data: n,
            bytes: n * 10,
            flags: 1,
            result: 0,
        }
    }

    fn take(r: &CompletionRing, rd: &mut ReadSide, out: &mut [ZcsendCompletion]) -> usize {
        let (head, n) = r.peek(rd, out);
        r.consume(rd, head, n);
        n
    }

    #[test]
    fn fifo_order_and_wraparound() -> Result {
        let r = CompletionRing::new()?;
        let mut rd = ReadSide::new();
        let mut out = [ZcsendCompletion::default(); 64];
        let mut next = 0u64;
        let mut expect = 0u64;
        // Enough rounds to wrap the ring several times.
        for _ in 0..(3 * MAX_RECORDS / 40) {
            for _ in 0..41 {
                reserve(&r)?;
                r.post(rec(next));
                next += 1;
            }
            let n = take(&r, &mut rd, &mut out[..40]);
            assert_eq!(n, 40);
            for o in &out[..n] {
                assert_eq!(o.user_data, expect);
                expect += 1;
            }
        }
        while r.ready() {
            let n = take(&r, &mut rd, &mut out);
            for o in &out[..n] {
                assert_eq!(o.user_data, expect);
                expect += 1;
            }
        }
        assert_eq!(expect, next);
        Ok(())
    }

    #[test]
    fn peek_without_consume_keeps_records() -> Result {
        let r = CompletionRing::new()?;
        let mut rd = ReadSide::new();
        for i in 0..100 {
            reserve(&r)?;
            r.post(rec(i));
        }
        assert_eq!(r.queued(), 100);
        reserve(&r)?;
        r.unreserve(1);
        let mut out = [ZcsendCompletion::default(); 3];
        assert_eq!(r.peek(&mut rd, &mut out).1, 3);
        assert_eq!(r.queued(), 100);
        assert_eq!(take(&r, &mut rd, &mut out[..1]), 1);
        assert_eq!(out[0].user_data, 0);
        Ok(())
    }

    #[test]
    fn reserve_many_takes_what_fits() -> Result {
        let r = CompletionRing::new()?;
        assert_eq!(r.reserve_many(0)?, 1);
        assert_eq!(r.reserve_many(10)?, 10);
        for i in 0..5 {
            r.post(rec(i));
        }
        // 6 reserved, 5 queued: room for the rest, no more.
        let room = (MAX_RECORDS - 11) as u64;
        assert_eq!(r.reserve_many(u64::MAX)?, room);
        assert_eq!(r.reserve_many(1), Err(EBUSY));
        assert_eq!(r.reserved(), 6 + room);
        r.unreserve(room);
        assert_eq!(r.reserve_many(2)?, 2);
        r.unreserve(2 + 6);
        assert_eq!(r.reserved(), 0);
        Ok(())
    }

    #[test]
    fn bounded_and_lying_consumer_contained() -> Result {
        let r = CompletionRing::new()?;
        let mut rd = ReadSide::new();
        for i in 0..MAX_RECORDS {
            reserve(&r)?;
            r.post(rec(i as u64));
        }
        assert_eq!(reserve(&r), Err(EBUSY));
        let mut out = [ZcsendCompletion::default(); 4];
        assert_eq!(take(&r, &mut rd, &mut out), 4);
        reserve(&r)?;
        r.unreserve(1);
        // A consumer that writes nonsense into `head` only fills its ring.
        r.head_atomic().store(u64::MAX / 2, Release);
        assert_eq!(r.queued(), MAX_RECORDS);
        assert_eq!(reserve(&r), Err(EBUSY));
        assert!(!r.ready());
        // Positions at the very end of the range wrap (no overflow panic):
        // whatever the slots hold is the lying consumer's own problem.
        for head in [u64::MAX, u64::MAX - 1] {
            r.head_atomic().store(head, Release);
            // Slots MAX_RECORDS - 1 and - 2 hold records, not these.
            assert!(!r.ready());
            let (at, n) = r.peek(&mut rd, &mut out);
            assert_eq!((at, n), (head, 0));
            r.consume(&mut rd, at, n);
            assert!(r.queued() <= MAX_RECORDS);
        }
        Ok(())
    }
}
