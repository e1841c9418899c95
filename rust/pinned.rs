// SPDX-License-Identifier: GPL-2.0

//! Pinned user pages and their `RLIMIT_MEMLOCK` charge.
//!
//! One of the three files that hold zcsend's `unsafe` code. A [`PinnedPages`]
//! owns FOLL_PIN references on the pages behind a user iovec array, the
//! `bio_vec` array that describes the bytes in them, and the memlock charge
//! that pays for them; dropping it unpins and uncharges. Dropping is allowed
//! in any process context (the completion work runs it).
//!
//! `kernel::page::Page` is not used: its `Drop` frees the page, while these
//! pages belong to the user's mapping and must only be unpinned.

use kernel::bindings;
use kernel::page::PAGE_SIZE;
use kernel::prelude::*;

use crate::iovec;
use crate::uapi::UserIovec;

/// A charge against the caller's `RLIMIT_MEMLOCK`, as MSG_ZEROCOPY takes it
/// (`CAP_IPC_LOCK` and an unlimited rlimit are exempt).
///
/// # Invariants
///
/// `mmp` was filled by `mm_account_pinned_pages` (or is zero: no charge) and
/// has not been released.
struct MemlockCharge {
    mmp: bindings::ubuf_info_msgzc_mmpin,
}

impl MemlockCharge {
    /// Charges `bytes` to the current user; fails with `ENOBUFS` over the
    /// limit, as MSG_ZEROCOPY does.
    fn charge(bytes: usize) -> Result<Self> {
        // SAFETY: all-zero is the "nothing charged yet" state of `mmpin`.
        let mut mmp: bindings::ubuf_info_msgzc_mmpin = unsafe { core::mem::zeroed() };
        // SAFETY: `mmp` is a valid, zeroed `mmpin` owned by us.
        kernel::error::to_result(unsafe { bindings::mm_account_pinned_pages(&mut mmp, bytes) })?;
        // INVARIANT: filled by `mm_account_pinned_pages`.
        Ok(Self { mmp })
    }
}

impl Drop for MemlockCharge {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the charge is live; a zeroed `mmp`
        // (no charge) is accepted too.
        unsafe { bindings::mm_unaccount_pinned_pages(&mut self.mmp) };
    }
}

/// User pages pinned for reading, with the `bio_vec`s that cover the bytes.
///
/// # Invariants
///
/// - Every entry of `pages` holds one FOLL_PIN reference taken by
///   `pin_user_pages_fast` and not yet released.
/// - Every `bio_vec` in `bvecs` points into a page of `pages`, within it.
pub(crate) struct PinnedPages {
    pages: KVVec<*mut bindings::page>,
    bvecs: KVVec<bindings::bio_vec>,
    _charge: MemlockCharge,
}

// SAFETY: the pins are plain references on struct pages; they may be
// released from any thread.
unsafe impl Send for PinnedPages {}
// SAFETY: shared access only reads the arrays.
unsafe impl Sync for PinnedPages {}

impl PinnedPages {
    /// Pins the pages behind `iovs` (which hold `total` bytes) read-only.
    ///
    /// Fails with `ENOBUFS` over `RLIMIT_MEMLOCK`, `EFAULT` for unmapped,
    /// `PROT_NONE` or kernel addresses, `ENOMEM` when out of memory.
    pub(crate) fn pin(iovs: &[UserIovec], total: usize) -> Result<Self> {
        let nr = iovec::total_pages(iovs)?;
        let charge = MemlockCharge::charge(total)?;
        let mut this = Self {
            pages: KVVec::with_capacity(nr, GFP_KERNEL)?,
            bvecs: KVVec::with_capacity(nr, GFP_KERNEL)?,
            _charge: charge,
        };
        for v in iovs.iter().filter(|v| v.len != 0) {
            this.pin_one(v)?;
        }
        Ok(this)
    }

    /// Pins one non-empty iovec entry and appends its `bio_vec`s.
    fn pin_one(&mut self, v: &UserIovec) -> Result {
        let nr = iovec::pages_spanned(v.base, v.len).ok_or(EFAULT)?;
        let first = self.pages.len();
        let start = v.base & !(PAGE_SIZE as u64 - 1);
        let mut done = 0;
        while done < nr {
            let want = c_int::try_from(nr - done).unwrap_or(c_int::MAX);
            let addr = start + (done * PAGE_SIZE) as u64;
            let spare = self.pages.spare_capacity_mut();
            if spare.len() < (nr - done) {
                return Err(EINVAL);
            }
            // SAFETY: `spare` has room for `want` page pointers; gup_flags 0
            // pins for reading (no FOLL_WRITE), so PROT_READ mappings work.
            let got = unsafe {
                bindings::pin_user_pages_fast(addr as c_ulong, want, 0, spare.as_mut_ptr().cast())
            };
            if got <= 0 {
                return Err(if got < 0 {
                    Error::from_errno(got)
                } else {
                    EFAULT
                });
            }
            // SAFETY: `pin_user_pages_fast` initialised `got` entries past
            // the current length, within the capacity.
            // INVARIANT: each new entry carries one pin we now own.
            unsafe { self.pages.inc_len(got as usize) };
            done += got as usize;
        }

        let mut off = iovec::page_offset(v.base);
        let mut left = v.len as usize;
        for &page in &self.pages[first..] {
            let len = left.min(PAGE_SIZE - off);
            // Bytes that continue the previous entry in the same page (the
            // next iovec of a contiguous buffer) extend it: fewer frags.
            if let Some(last) = self.bvecs.last_mut() {
                if last.bv_page == page && (last.bv_offset + last.bv_len) as usize == off {
                    last.bv_len += len as u32;
                    left -= len;
                    off = 0;
                    continue;
                }
            }
            self.bvecs.push(
                bindings::bio_vec {
                    bv_page: page,
                    bv_len: len as u32,
                    bv_offset: off as u32,
                },
                GFP_KERNEL,
            )?;
            left -= len;
            off = 0;
        }
        Ok(())
    }

    /// The `bio_vec`s covering the pinned bytes, in iovec order.
    pub(crate) fn bvecs(&self) -> &[bindings::bio_vec] {
        &self.bvecs
    }

    /// Number of pages pinned.
    pub(crate) fn nr_pages(&self) -> usize {
        self.pages.len()
    }
}

impl Drop for PinnedPages {
    fn drop(&mut self) {
        if self.pages.is_empty() {
            return;
        }
        // SAFETY: by the type invariant every entry holds a pin we own; the
        // bvecs that point into them are dropped with `self`.
        unsafe { bindings::unpin_user_pages(self.pages.as_mut_ptr(), self.pages.len() as c_ulong) };
    }
}
