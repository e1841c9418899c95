// SPDX-License-Identifier: GPL-2.0

//! The completion queue of one open file: a ring of records with room
//! reserved up front, so that posting a completion never allocates and never
//! fails.
//!
//! A send reserves its slot (process context, may sleep) before it hands data
//! to the stack; the completion work later fills that slot. The ring never
//! holds more than [`MAX_RECORDS`] records and reservations together: a send
//! past that fails with `EBUSY` before anything is pinned (back-pressure: the
//! application reads completions first), so one file's queue is bounded.
//! Pure data structure: the lock that protects it lives in `context.rs`.

use kernel::prelude::*;

use crate::uapi::{
    ZcsendCompletion,
    ZCSEND_MAX_COMPLETIONS, //
};

/// Most records queued plus reserved in one ring.
pub(crate) const MAX_RECORDS: usize = ZCSEND_MAX_COMPLETIONS as usize;

/// A ring of completion records.
///
/// # Invariants
///
/// - `head < buf.len()` whenever `buf` is not empty, and `len <= buf.len()`.
/// - `len + reserved <= buf.len() <= MAX_RECORDS` (rounded up to a power of
///   two): every reserved slot has room.
pub(crate) struct CompletionRing {
    buf: KVVec<ZcsendCompletion>,
    head: usize,
    len: usize,
    reserved: usize,
}

impl CompletionRing {
    /// Creates an empty ring.
    pub(crate) const fn new() -> Self {
        // INVARIANT: empty buffer, nothing queued or reserved.
        Self {
            buf: KVVec::new(),
            head: 0,
            len: 0,
            reserved: 0,
        }
    }

    /// Number of records waiting to be read.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Returns whether no record is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reserves room for one more record; the reservation is used by
    /// [`Self::post`] or returned by [`Self::unreserve`].
    ///
    /// Fails with `EBUSY` when [`MAX_RECORDS`] records are queued or
    /// reserved, and with `ENOMEM` if the ring cannot grow.
    pub(crate) fn reserve(&mut self) -> Result {
        let need = self.len + self.reserved + 1;
        if need > MAX_RECORDS {
            return Err(EBUSY);
        }
        if need > self.buf.len() {
            self.grow(need)?;
        }
        // INVARIANT: `grow` made `buf.len() >= len + reserved + 1`.
        self.reserved += 1;
        Ok(())
    }

    /// Gives back a reservation that will not be posted.
    pub(crate) fn unreserve(&mut self) {
        // INVARIANT: `len + reserved` only shrinks.
        self.reserved = self.reserved.saturating_sub(1);
    }

    /// Posts a record into a reserved slot. Never allocates.
    ///
    /// Returns `false`, dropping the record, if no slot was reserved: a bug
    /// in the caller, since every send reserves before it is submitted.
    #[must_use]
    pub(crate) fn post(&mut self, rec: ZcsendCompletion) -> bool {
        if self.reserved == 0 || self.buf.is_empty() {
            return false;
        }
        let cap = self.buf.len();
        let tail = (self.head + self.len) % cap;
        self.buf[tail] = rec;
        // INVARIANT: one reserved slot became a queued one.
        self.reserved -= 1;
        self.len += 1;
        true
    }

    /// Moves up to `out.len()` records, oldest first, into `out`.
    ///
    /// Their slots stay held, as reservations, until the caller either
    /// [`Self::release`]s them (the records were delivered) or puts the
    /// records back with [`Self::unpop`] (they were not): the lock may be
    /// dropped in between, and the records can always go back.
    pub(crate) fn pop_into(&mut self, out: &mut [ZcsendCompletion]) -> usize {
        let n = out.len().min(self.len);
        let cap = self.buf.len();
        for slot in out.iter_mut().take(n) {
            *slot = self.buf[self.head];
            self.head = (self.head + 1) % cap;
        }
        // INVARIANT: `n <= len`, and `head` stays below `cap`; the `n`
        // slots move from `len` to `reserved`, so their sum is unchanged.
        self.len -= n;
        self.reserved += n;
        n
    }

    /// Frees the slots of `n` records taken by [`Self::pop_into`] and
    /// delivered.
    pub(crate) fn release(&mut self, n: usize) {
        // INVARIANT: `len + reserved` only shrinks.
        self.reserved = self.reserved.saturating_sub(n);
    }

    /// Puts records taken by [`Self::pop_into`] back at the front, when the
    /// copy to user space failed. Never allocates: their slots are held.
    pub(crate) fn unpop(&mut self, recs: &[ZcsendCompletion]) {
        let cap = self.buf.len();
        if cap == 0 || recs.len() > self.reserved {
            return;
        }
        self.reserved -= recs.len();
        for rec in recs.iter().rev() {
            self.head = (self.head + cap - 1) % cap;
            self.buf[self.head] = *rec;
        }
        // INVARIANT: checked above that the records fit beside the reservations.
        self.len += recs.len();
    }

    /// Grows the buffer to at least `need` slots, keeping the queued records
    /// in order.
    fn grow(&mut self, need: usize) -> Result {
        let new_cap = need.max(16).checked_next_power_of_two().ok_or(ENOMEM)?;
        let mut buf = KVVec::with_capacity(new_cap, GFP_KERNEL_ACCOUNT)?;
        let cap = self.buf.len();
        for i in 0..self.len {
            buf.push(self.buf[(self.head + i) % cap], GFP_KERNEL_ACCOUNT)?;
        }
        buf.resize(new_cap, ZcsendCompletion::default(), GFP_KERNEL_ACCOUNT)?;
        // INVARIANT: records now start at 0 and `new_cap >= need`.
        self.buf = buf;
        self.head = 0;
        Ok(())
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
        let mut r = CompletionRing::new();
        let mut out = [ZcsendCompletion::default(); 4];
        let mut next = 0u64;
        let mut expect = 0u64;
        // Enough rounds to wrap the 16-slot ring several times.
        for _ in 0..20 {
            for _ in 0..3 {
                r.reserve()?;
            }
            for _ in 0..3 {
                assert!(r.post(rec(next)));
                next += 1;
            }
            let n = r.pop_into(&mut out[..2]);
            assert_eq!(n, 2);
            r.release(n);
            for o in &out[..n] {
                assert_eq!(o.user_data, expect);
                expect += 1;
            }
        }
        while !r.is_empty() {
            let n = r.pop_into(&mut out);
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
        let mut r = CompletionRing::new();
        for _ in 0..100 {
            r.reserve()?;
        }
        for i in 0..100 {
            assert!(r.post(rec(i)));
        }
        assert_eq!(r.len(), 100);
        r.reserve()?;
        r.unreserve();
        let mut out = [ZcsendCompletion::default(); 3];
        assert_eq!(r.pop_into(&mut out), 3);
        r.unpop(&out);
        assert_eq!(r.len(), 100);
        assert_eq!(r.pop_into(&mut out[..1]), 1);
        assert_eq!(out[0].user_data, 0);
        Ok(())
    }

    #[test]
    fn bounded_and_popped_slots_held() -> Result {
        let mut r = CompletionRing::new();
        for i in 0..MAX_RECORDS {
            r.reserve()?;
            assert!(r.post(rec(i as u64)));
        }
        assert_eq!(r.reserve(), Err(EBUSY));
        let mut out = [ZcsendCompletion::default(); 4];
        // Popped but not yet delivered: the slots stay taken.
        assert_eq!(r.pop_into(&mut out), 4);
        assert_eq!(r.reserve(), Err(EBUSY));
        // The copy failed: the records go back, oldest first.
        r.unpop(&out);
        assert_eq!(r.len(), MAX_RECORDS);
        assert_eq!(r.pop_into(&mut out[..1]), 1);
        assert_eq!(out[0].user_data, 0);
        r.release(1);
        r.reserve()?;
        assert_eq!(r.reserve(), Err(EBUSY));
        Ok(())
    }

    #[test]
    fn post_without_reservation_is_dropped_not_corrupting() {
        let mut r = CompletionRing::new();
        assert!(!r.post(rec(1)));
        assert!(r.is_empty());
    }
}
