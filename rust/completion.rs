// SPDX-License-Identifier: GPL-2.0

//! The completion queue of one open file: a bounded ring of records that
//! completions post into from any context (process, softirq) without a lock,
//! and that `read()` drains.
//!
//! A send reserves its slot (process context) before it hands data to the
//! stack; its completion later posts into the ring. Posting never allocates,
//! never fails and never blocks: the ring is allocated once with
//! [`MAX_RECORDS`] slots, and `used` (reservations, posted records and
//! records a reader has taken out but not yet delivered) never exceeds that.
//! A send past it fails with `EBUSY` before anything is pinned
//! (back-pressure: the application reads completions first).
//!
//! The ring is the bounded MPMC queue of Dmitry Vyukov reduced to many
//! producers and one consumer: every slot carries a sequence number saying
//! whether it waits for the producer of position `p` (`seq == p`) or holds
//! the record of position `p` for the consumer (`seq == p + 1`). Producers
//! claim positions with one `fetch_add`; the consumer is serialised by the
//! reader lock of `context.rs`, which owns the [`ReadSide`].

use core::cell::UnsafeCell;

use kernel::prelude::*;
use kernel::sync::atomic::{
    Acquire,
    Atomic,
    Relaxed,
    Release, //
};

use crate::uapi::{
    ZcsendCompletion,
    ZCSEND_MAX_COMPLETIONS, //
};

/// Slots of one ring: records queued, reserved and held together.
pub(crate) const MAX_RECORDS: usize = ZCSEND_MAX_COMPLETIONS as usize;
const _: () = assert!(MAX_RECORDS.is_power_of_two());

struct Slot {
    seq: Atomic<u64>,
    rec: UnsafeCell<ZcsendCompletion>,
}

/// A bounded ring of completion records.
///
/// # Invariants
///
/// - `slots.len() == MAX_RECORDS`; slot `i` starts with `seq == i`.
/// - `used` counts reservations not yet posted, posted records not yet taken
///   by the consumer, and records taken but neither released nor put back;
///   it never exceeds `MAX_RECORDS`. Hence the producer that claims
///   position `p` finds slot `p % MAX_RECORDS` released by the consumer
///   (its `seq` is `p`), and nobody else writes that slot until it
///   publishes `seq = p + 1`.
/// - Only the holder of the [`ReadSide`] reads a slot whose `seq` is
///   `p + 1`, or writes a slot it took out.
pub(crate) struct CompletionRing {
    slots: KVVec<Slot>,
    used: Atomic<usize>,
    tail: Atomic<u64>,
    /// The consumer's position, mirrored for lock-free readiness checks.
    head_hint: Atomic<u64>,
}

// SAFETY: slots are handed between producers and the consumer by the
// sequence protocol (type invariant); everything else is atomic.
unsafe impl Sync for CompletionRing {}
// SAFETY: as above; the records are plain data.
unsafe impl Send for CompletionRing {}

/// The consumer side of one ring: its position. Kept under the reader lock.
pub(crate) struct ReadSide {
    head: u64,
}

impl ReadSide {
    pub(crate) const fn new() -> Self {
        Self { head: 0 }
    }
}

impl CompletionRing {
    /// Allocates the ring (`ENOMEM`).
    pub(crate) fn new() -> Result<Self> {
        let mut slots = KVVec::with_capacity(MAX_RECORDS, GFP_KERNEL_ACCOUNT)?;
        for i in 0..MAX_RECORDS {
            slots.push(
                Slot {
                    seq: Atomic::new(i as u64),
                    rec: UnsafeCell::new(ZcsendCompletion::default()),
                },
                GFP_KERNEL_ACCOUNT,
            )?;
        }
        // INVARIANT: all slots free, nothing used.
        Ok(Self {
            slots,
            used: Atomic::new(0),
            tail: Atomic::new(0),
            head_hint: Atomic::new(0),
        })
    }

    fn slot(&self, pos: u64) -> &Slot {
        &self.slots[(pos as usize) & (MAX_RECORDS - 1)]
    }

    /// Reserves room for one record: `EBUSY` when [`MAX_RECORDS`] are
    /// queued, reserved or held.
    pub(crate) fn reserve(&self) -> Result {
        let mut cur = self.used.load(Relaxed);
        loop {
            if cur >= MAX_RECORDS {
                return Err(EBUSY);
            }
            match self.used.cmpxchg(cur, cur + 1, Relaxed) {
                Ok(_) => return Ok(()),
                Err(now) => cur = now,
            }
        }
    }

    /// Gives back a reservation that will not be posted.
    pub(crate) fn unreserve(&self) {
        self.used.fetch_sub(1, Release);
    }

    /// Posts a record into a reserved slot, from any context. The caller
    /// owns a reservation, which this consumes.
    pub(crate) fn post(&self, rec: ZcsendCompletion) {
        let pos = self.tail.fetch_add(1, Relaxed);
        let slot = self.slot(pos);
        // The consumer released this slot before the reservation that makes
        // room for it could be had (type invariant); wait for that store to
        // become visible, which on a coherent machine it already is.
        while slot.seq.load(Acquire) != pos {
            core::hint::spin_loop();
        }
        // SAFETY: `seq == pos`: this producer alone owns the slot until it
        // publishes below (type invariant).
        unsafe { *slot.rec.get() = rec };
        slot.seq.store(pos + 1, Release);
    }

    /// Whether a record is ready for the consumer (a hint without the
    /// reader lock).
    pub(crate) fn ready(&self) -> bool {
        let head = self.head_hint.load(Relaxed);
        self.slot(head).seq.load(Acquire) == head + 1
    }

    /// Records posted and not yet taken (a snapshot; `reserve`d slots whose
    /// producer is writing may count).
    pub(crate) fn queued(&self, rd: &ReadSide) -> usize {
        self.tail.load(Relaxed).wrapping_sub(rd.head) as usize
    }

    /// Takes up to `out.len()` records, oldest first, into `out`. Their
    /// slots stay counted in `used` until [`Self::release`] (delivered) or
    /// [`Self::unpop`] (put back).
    pub(crate) fn pop_into(&self, rd: &mut ReadSide, out: &mut [ZcsendCompletion]) -> usize {
        let mut n = 0;
        for o in out.iter_mut() {
            let slot = self.slot(rd.head);
            if slot.seq.load(Acquire) != rd.head + 1 {
                break;
            }
            // SAFETY: `seq == head + 1`: published for the consumer, whose
            // `ReadSide` we hold.
            *o = unsafe { *slot.rec.get() };
            // Free for the producer of the position one lap later, which
            // cannot claim it while this record is held (`used`).
            slot.seq.store(rd.head + MAX_RECORDS as u64, Release);
            rd.head += 1;
            n += 1;
        }
        self.head_hint.store(rd.head, Relaxed);
        n
    }

    /// Frees the slots of `n` records taken and delivered.
    pub(crate) fn release(&self, n: usize) {
        if n != 0 {
            self.used.fetch_sub(n, Release);
        }
    }

    /// Puts records taken by [`Self::pop_into`] back at the front, when the
    /// copy to user space failed: into the positions just before the
    /// consumer's, whatever reader took those. The put-back records are
    /// still counted in `used`, so no producer can reach those slots one lap
    /// later; the records taken from there were delivered by their reader.
    pub(crate) fn unpop(&self, rd: &mut ReadSide, recs: &[ZcsendCompletion]) {
        for rec in recs.iter().rev() {
            let pos = rd.head - 1;
            let slot = self.slot(pos);
            // SAFETY: the record of `pos` was taken by us and is still held
            // (`used`), so no producer can claim this slot one lap later.
            unsafe { *slot.rec.get() = *rec };
            slot.seq.store(pos + 1, Release);
            rd.head = pos;
        }
        self.head_hint.store(rd.head, Relaxed);
    }
}

#[kunit_tests(zcsend_completion)]
mod tests {
    use super::*;

    fn rec(n: u64) -> ZcsendCompletion {
        ZcsendCompletion {
            user_data: n,
            bytes: n * 10,
            flags: 1,
            result: 0,
        }
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
                r.reserve()?;
                r.post(rec(next));
                next += 1;
            }
            let n = r.pop_into(&mut rd, &mut out[..40]);
            assert_eq!(n, 40);
            r.release(n);
            for o in &out[..n] {
                assert_eq!(o.user_data, expect);
                expect += 1;
            }
        }
        while r.ready() {
            let n = r.pop_into(&mut rd, &mut out);
            r.release(n);
            for o in &out[..n] {
                assert_eq!(o.user_data, expect);
                expect += 1;
            }
        }
        assert_eq!(expect, next);
        Ok(())
    }

    #[test]
    fn reservations_guarantee_room() -> Result {
        let r = CompletionRing::new()?;
        let mut rd = ReadSide::new();
        for _ in 0..100 {
            r.reserve()?;
        }
        for i in 0..100 {
            r.post(rec(i));
        }
        assert_eq!(r.queued(&rd), 100);
        r.reserve()?;
        r.unreserve();
        let mut out = [ZcsendCompletion::default(); 3];
        assert_eq!(r.pop_into(&mut rd, &mut out), 3);
        r.unpop(&mut rd, &out);
        assert_eq!(r.queued(&rd), 100);
        assert_eq!(r.pop_into(&mut rd, &mut out[..1]), 1);
        assert_eq!(out[0].user_data, 0);
        Ok(())
    }

    #[test]
    fn bounded_and_popped_slots_held() -> Result {
        let r = CompletionRing::new()?;
        let mut rd = ReadSide::new();
        for i in 0..MAX_RECORDS {
            r.reserve()?;
            r.post(rec(i as u64));
        }
        assert_eq!(r.reserve(), Err(EBUSY));
        let mut out = [ZcsendCompletion::default(); 4];
        // Taken but not yet delivered: the slots stay used.
        assert_eq!(r.pop_into(&mut rd, &mut out), 4);
        assert_eq!(r.reserve(), Err(EBUSY));
        // The copy failed: the records go back, oldest first.
        r.unpop(&mut rd, &out);
        assert_eq!(r.queued(&rd), MAX_RECORDS);
        assert_eq!(r.pop_into(&mut rd, &mut out[..1]), 1);
        assert_eq!(out[0].user_data, 0);
        r.release(1);
        r.reserve()?;
        assert_eq!(r.reserve(), Err(EBUSY));
        Ok(())
    }
}
