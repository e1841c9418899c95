// SPDX-License-Identifier: GPL-2.0

//! Pinned user pages and their `RLIMIT_MEMLOCK` charge.
//!
//! One of the files that hold zcsend's `unsafe` code. A [`PinnedPages`]
//! owns FOLL_PIN | FOLL_LONGTERM references on the pages behind a user iovec array, the
//! `bio_vec` array that describes the bytes in them, and the memlock charge
//! that pays for them; dropping it unpins and uncharges. Dropping is allowed
//! in any process context (the completion work runs it).
//!
//! `kernel::page::Page` is not used: for pinned pages its `Drop` would free
//! pages that belong to the user's mapping and must only be unpinned, and
//! [`StablePages`], the module's own copy, is made of compound pages of up
//! to 64 KiB, which `Page` (order 0) cannot hold.

use core::ptr::NonNull;

use kernel::bindings;
use kernel::page::PAGE_SIZE;
use kernel::prelude::*;
use kernel::uaccess::{
    UserPtr,
    UserSlice, //
};

use crate::ffi::{
    zcsend_account_pinned,
    zcsend_alloc_chunk,
    zcsend_folio_next,
    zcsend_free_chunk,
    zcsend_page_address,
    zcsend_put_user,
    zcsend_unaccount_pinned, //
};
use crate::iovec;
use crate::smallbuf::SmallBuf;
use crate::uapi::UserIovec;

/// A charge of exactly the pages pinned against the caller's
/// `RLIMIT_MEMLOCK` (`CAP_IPC_LOCK` and an unlimited rlimit are exempt), on
/// the user's `locked_vm` that MSG_ZEROCOPY and io_uring charge too.
///
/// # Invariants
///
/// Either `user` is null (exempt: nothing charged), or it holds a reference
/// on the user whose `locked_vm` carries `pages` pages of this charge.
struct MemlockCharge {
    user: *mut bindings::user_struct,
    pages: usize,
}

impl MemlockCharge {
    /// No charge.
    const fn none() -> Self {
        // INVARIANT: null: nothing charged.
        Self {
            user: core::ptr::null_mut(),
            pages: 0,
        }
    }

    /// Charges `pages` pages to the current user; fails with `ENOBUFS` over
    /// the limit, as MSG_ZEROCOPY does.
    fn charge(pages: usize) -> Result<Self> {
        let mut user = core::ptr::null_mut();
        // SAFETY: `user` is a valid out pointer; process context.
        let ret = unsafe { zcsend_account_pinned(&mut user, pages as c_ulong) };
        if ret < 0 {
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: on success `user` is null or charged `pages` pages.
        Ok(Self { user, pages })
    }

    /// Gives back `n` of the charged pages.
    fn release(&mut self, n: usize) {
        let n = n.min(self.pages);
        if !self.user.is_null() && n != 0 {
            // SAFETY: `user` carries at least `n` pages of ours (invariant).
            unsafe { zcsend_unaccount_pinned(self.user, n as c_ulong) };
        }
        // INVARIANT: the `n` pages were given back.
        self.pages -= n;
    }
}

impl Drop for MemlockCharge {
    fn drop(&mut self) {
        if self.user.is_null() {
            return;
        }
        self.release(self.pages);
        // SAFETY: we hold a reference on `user` (type invariant), dropped
        // once here.
        unsafe { zcsend_put_user(self.user) };
    }
}

// SAFETY: the charge is an atomic counter and a user reference, both of
// which may be given back from any thread.
unsafe impl Send for MemlockCharge {}

/// A page pointer with a `Default` (null), for page arrays that may live
/// inline.
#[repr(transparent)]
#[derive(Clone, Copy, Default)]
pub(crate) struct PagePtr(*mut bindings::page);

/// Pins `slots.len()` pages from page-aligned user address `start`
/// read-only and long-term into `slots`. `*pinned` counts the entries of
/// `slots` (from the start) that hold a pin the caller now owns, also when
/// this fails with `EFAULT` (or GUP's error) part way.
fn pin_range(slots: &mut [PagePtr], start: u64, pinned: &mut usize) -> Result {
    while *pinned < slots.len() {
        let want = c_int::try_from(slots.len() - *pinned).unwrap_or(c_int::MAX);
        // SAFETY: `slots[*pinned..]` has room for the `want` page pointers
        // asked for (`PagePtr` is a transparent `*mut page`). No FOLL_WRITE:
        // read-only pins, so PROT_READ mappings work; FOLL_LONGTERM: a peer
        // that stops reading can hold them for as long as it likes.
        let got = unsafe {
            bindings::pin_user_pages_fast(
                (start + (*pinned * PAGE_SIZE) as u64) as c_ulong,
                want,
                bindings::FOLL_LONGTERM,
                slots.as_mut_ptr().add(*pinned).cast(),
            )
        };
        if got <= 0 {
            return Err(if got < 0 {
                Error::from_errno(got)
            } else {
                EFAULT
            });
        }
        // `pin_user_pages_fast` filled `got` more entries, each with one pin.
        *pinned += got as usize;
    }
    Ok(())
}

/// Unpins `pages`.
///
/// # Safety
///
/// Every entry holds one pin owned by the caller, which it gives up.
unsafe fn unpin(pages: &mut [PagePtr]) {
    if !pages.is_empty() {
        // SAFETY: pins owned by the caller (function contract); `PagePtr` is
        // a transparent `*mut page`.
        unsafe { bindings::unpin_user_pages(pages.as_mut_ptr().cast(), pages.len() as c_ulong) };
    }
}

/// Pages of a send kept inline (in the notifier, which files reuse): a
/// 64 KiB send's 16 pages plus a partial one cost no allocation.
const INLINE_PAGES: usize = 17;

/// User pages pinned for reading, with the `bio_vec`s that cover the bytes.
///
/// It lives in a send's notifier, which files reuse, and is filled and
/// emptied in place ([`Self::pin`], [`Self::release`]): never moved, its
/// arrays never rewritten whole (a 64 KiB send's pages inline are a few
/// hundred bytes, and under QEMU TCG every copy of them costs the send).
///
/// # Invariants
///
/// - `pages[..npages]` each hold one FOLL_PIN reference taken by
///   `pin_user_pages_fast` and not yet released.
/// - Every `bio_vec` in `bvecs[..nbv]` points into one of those pages,
///   within it.
/// - `charge` covers exactly `npages` pages.
pub(crate) struct PinnedPages {
    pages: SmallBuf<PagePtr, INLINE_PAGES>,
    npages: usize,
    bvecs: SmallBuf<Bvec, INLINE_PAGES>,
    nbv: usize,
    charge: MemlockCharge,
}

// SAFETY: the pins are plain references on struct pages; they may be
// released from any thread.
unsafe impl Send for PinnedPages {}
// SAFETY: shared access only reads the arrays.
unsafe impl Sync for PinnedPages {}

impl Default for PinnedPages {
    /// Nothing pinned.
    fn default() -> Self {
        // INVARIANT: no pages, no bvecs, no charge.
        Self {
            pages: SmallBuf::empty(),
            npages: 0,
            bvecs: SmallBuf::empty(),
            nbv: 0,
            charge: MemlockCharge::none(),
        }
    }
}

impl PinnedPages {
    /// Pins the `nr` pages (`iovec::total_pages`) behind `iovs` read-only,
    /// `FOLL_LONGTERM`, into `self`, which holds nothing afterwards if this
    /// fails: the pins last until the stack lets go of the data, which a
    /// peer that stops reading can delay without bound.
    ///
    /// Charges `RLIMIT_MEMLOCK` one page per page pinned. Fails with
    /// `ENOBUFS` over it, `EFAULT` for unmapped, `PROT_NONE` or kernel
    /// addresses, `ENOMEM` when out of memory.
    pub(crate) fn pin(&mut self, iovs: &[UserIovec], nr: usize) -> Result {
        // A notifier's payload comes emptied ([`Self::release`] ran when its
        // last send ended); only pins left here would need giving back (an
        // old charge is given back as the new one replaces it).
        if self.npages != 0 {
            self.release();
        }
        // INVARIANT: the charge covers the pins once `fill` returns (or
        // `release` drops both).
        self.charge = MemlockCharge::charge(nr)?;
        let res = self.fill(iovs, nr);
        if res.is_err() {
            self.release();
        }
        res
    }

    /// [`Self::pin`]'s work, on an empty `self` charged for `nr` pages.
    fn fill(&mut self, iovs: &[UserIovec], nr: usize) -> Result {
        self.pages.reset(nr)?;
        // Merging only ever joins bvecs: at most one per page.
        self.bvecs.reset(nr)?;
        for v in iovs.iter().filter(|v| v.len != 0) {
            self.pin_one(v)?;
        }
        // Pages that were charged but not pinned (a short pin fails above):
        // the charge follows the pins.
        let unpinned = self.charge.pages - self.npages;
        self.charge.release(unpinned);
        Ok(())
    }

    /// Unpins and uncharges everything, leaving `self` empty for the next
    /// [`Self::pin`].
    pub(crate) fn release(&mut self) {
        // SAFETY: by the type invariant every entry of the prefix holds a
        // pin we own; the bvecs that point into them are forgotten below.
        unsafe { unpin(&mut self.pages[..self.npages]) };
        self.npages = 0;
        self.nbv = 0;
        // INVARIANT: nothing pinned, nothing charged (the old charge is
        // given back as it drops).
        self.charge = MemlockCharge::none();
        self.pages.clear();
        self.bvecs.clear();
    }

    /// Keeps only the first `keep` pages (`iovec::pages_for_prefix`) and the
    /// `bio_vec`s of the first `bytes` bytes, unpinning and uncharging the
    /// rest: after a partial send, the stack never saw them.
    pub(crate) fn trim(&mut self, keep: usize, bytes: usize) {
        if keep >= self.npages {
            return;
        }
        let mut start = 0usize;
        let mut nbv = 0;
        for bv in self.bvecs() {
            if start >= bytes {
                break;
            }
            start += bv.bv_len as usize;
            nbv += 1;
        }
        self.nbv = nbv;
        let drop = self.npages - keep;
        // SAFETY: entries `keep..npages` hold pins we own (type invariant);
        // no remaining `bio_vec` points into them (the kept ones cover the
        // first `bytes` bytes, which lie in the first `keep` pages), and
        // they leave the pinned prefix right after.
        unsafe { unpin(&mut self.pages[keep..self.npages]) };
        self.npages = keep;
        // INVARIANT: the charge follows the pins.
        self.charge.release(drop);
    }

    /// Pins one non-empty iovec entry and appends its `bio_vec`s.
    fn pin_one(&mut self, v: &UserIovec) -> Result {
        let nr = iovec::pages_spanned(v.base, v.len).ok_or(EFAULT)?;
        let first = self.npages;
        let slots = self.pages.get_mut(first..first + nr).ok_or(EINVAL)?;
        let mut pinned = 0;
        let res = pin_range(slots, v.base & !(PAGE_SIZE as u64 - 1), &mut pinned);
        // INVARIANT: the new entries carry pins owned by `self`.
        self.npages += pinned;
        res?;

        let pages = &self.pages[first..self.npages];
        let bvecs = &mut self.bvecs[..];
        let mut nbv = self.nbv;
        let mut off = iovec::page_offset(v.base);
        let mut left = v.len as usize;
        let mut rest = pages.iter();
        // The first page: bytes that continue the previous entry in the
        // same page (the next iovec of a contiguous buffer) extend its
        // `bio_vec`: fewer frags.
        if let Some(&PagePtr(page)) = rest.next() {
            let len = left.min(PAGE_SIZE - off);
            match nbv.checked_sub(1).map(|l| &mut bvecs[l].0) {
                Some(last)
                    if last.bv_page == page && (last.bv_offset + last.bv_len) as usize == off =>
                {
                    last.bv_len += len as u32;
                }
                _ => {
                    bvecs.get_mut(nbv).ok_or(EINVAL)?.0 = bindings::bio_vec {
                        bv_page: page,
                        bv_len: len as u32,
                        bv_offset: off as u32,
                    };
                    nbv += 1;
                }
            }
            left -= len;
            off = 0;
        }
        // The others start at their page's first byte and extend nothing:
        // one `bio_vec` each (this runs for every page of every send).
        let n = rest.len();
        let out = bvecs.get_mut(nbv..nbv + n).ok_or(EINVAL)?;
        for (b, &PagePtr(page)) in out.iter_mut().zip(rest) {
            let len = left.min(PAGE_SIZE);
            b.0 = bindings::bio_vec {
                bv_page: page,
                bv_len: len as u32,
                bv_offset: off as u32,
            };
            left -= len;
        }
        // INVARIANT: the new `bio_vec`s lie within the pages just pinned.
        self.nbv = nbv + n;
        Ok(())
    }

    /// The `bio_vec`s covering the pinned bytes, in iovec order.
    pub(crate) fn bvecs(&self) -> &[bindings::bio_vec] {
        as_bio_vecs(&self.bvecs[..self.nbv])
    }

    /// Number of pages pinned.
    pub(crate) fn nr_pages(&self) -> usize {
        self.npages
    }
}

impl Drop for PinnedPages {
    fn drop(&mut self) {
        // SAFETY: by the type invariant every entry of the prefix holds a
        // pin we own; the bvecs that point into them go with `self`.
        unsafe { unpin(&mut self.pages[..self.npages]) };
    }
}

/// A `bio_vec` with a `Default` (empty, no page), for on-stack arrays.
#[repr(transparent)]
#[derive(Clone, Copy)]
pub(crate) struct Bvec(pub(crate) bindings::bio_vec);

impl Default for Bvec {
    fn default() -> Self {
        Self(bindings::bio_vec {
            bv_page: core::ptr::null_mut(),
            bv_len: 0,
            bv_offset: 0,
        })
    }
}

// SAFETY: a `bio_vec` is a page pointer and two integers; sending it to
// another thread sends no ownership.
unsafe impl Send for Bvec {}

/// `v` as the `bio_vec` array it is.
pub(crate) fn as_bio_vecs(v: &[Bvec]) -> &[bindings::bio_vec] {
    // SAFETY: `Bvec` is `repr(transparent)` over `bio_vec`: same layout.
    unsafe { core::slice::from_raw_parts(v.as_ptr().cast(), v.len()) }
}

/// A range of a registered buffer as [`PinnedBuffer::locate`] found it: its
/// segments `first..=last`, starting `skip` bytes into the first.
#[derive(Clone, Copy)]
pub(crate) struct Segments {
    first: usize,
    last: usize,
    skip: usize,
}

/// A registered buffer: one user range pinned once, for many sends.
///
/// Pages that follow each other inside one folio (a transparent huge page,
/// a hugetlb page, a large shmem folio) are described by one multi-page
/// `bio_vec`, so one skb frag can carry far more than a page, as io_uring's
/// coalesced registered buffers do.
///
/// # Invariants
///
/// - Every entry of `pages` holds one FOLL_PIN | FOLL_LONGTERM reference not
///   yet released, and `charge` covers `pages.len()` pages.
/// - `bvecs` cover the `len` bytes of the range in order, each within one
///   folio of pinned pages; `starts[i]` is the byte offset of `bvecs[i]`.
/// - `page_seg[k]` is the index of the segment (`bvecs`) holding the bytes
///   of `pages[k]`; byte `at` of the range is in page
///   `(at + first_off) / PAGE_SIZE`.
pub(crate) struct PinnedBuffer {
    pages: KVVec<PagePtr>,
    bvecs: KVVec<bindings::bio_vec>,
    starts: KVVec<u64>,
    page_seg: KVVec<u32>,
    first_off: u64,
    len: u64,
    _charge: MemlockCharge,
}

// SAFETY: pins on struct pages may be released from any thread; shared
// access only reads the arrays.
unsafe impl Send for PinnedBuffer {}
// SAFETY: as above.
unsafe impl Sync for PinnedBuffer {}

impl PinnedBuffer {
    /// Pins `[addr, addr + len)` read-only and long-term, charging memlock by
    /// the pages pinned. `EFAULT` for memory that cannot be pinned,
    /// `ENOBUFS` over `RLIMIT_MEMLOCK`, `ENOMEM`.
    pub(crate) fn pin(addr: u64, len: u64) -> Result<Self> {
        let nr = iovec::pages_spanned(addr, len).ok_or(EFAULT)?;
        let charge = MemlockCharge::charge(nr)?;
        let mut this = Self {
            pages: KVVec::new(),
            bvecs: KVVec::new(),
            starts: KVVec::new(),
            page_seg: KVVec::with_capacity(nr, GFP_KERNEL_ACCOUNT)?,
            first_off: iovec::page_offset(addr) as u64,
            len,
            _charge: charge,
        };
        let mut slots = KVVec::with_capacity(nr, GFP_KERNEL_ACCOUNT)?;
        slots.resize(nr, PagePtr::default(), GFP_KERNEL_ACCOUNT)?;
        let mut pinned = 0;
        let res = pin_range(&mut slots, addr & !(PAGE_SIZE as u64 - 1), &mut pinned);
        slots.truncate(pinned);
        // INVARIANT: the entries carry pins owned by `this`.
        this.pages = slots;
        res?;

        let mut off = iovec::page_offset(addr);
        let mut left = len as usize;
        let mut pos = 0u64;
        let mut prev: *mut bindings::page = core::ptr::null_mut();
        for &PagePtr(page) in this.pages.iter() {
            let piece = left.min(PAGE_SIZE - off);
            // SAFETY: both pages are pinned (`prev` when not null).
            let joins = !prev.is_null() && off == 0 && unsafe { zcsend_folio_next(prev, page) };
            match this.bvecs.last_mut() {
                Some(last) if joins => last.bv_len += piece as u32,
                _ => {
                    this.bvecs.push(
                        bindings::bio_vec {
                            bv_page: page,
                            bv_len: piece as u32,
                            bv_offset: off as u32,
                        },
                        GFP_KERNEL_ACCOUNT,
                    )?;
                    this.starts.push(pos, GFP_KERNEL_ACCOUNT)?;
                }
            }
            // Never more segments than pages (`nr` fits a `u32`: a buffer
            // is at most `ZCSEND_MAX_BUFFER_LEN`).
            this.page_seg
                .push((this.bvecs.len() - 1) as u32, GFP_KERNEL_ACCOUNT)?;
            pos += piece as u64;
            left -= piece;
            off = 0;
            prev = page;
        }
        Ok(this)
    }

    /// Number of `bio_vec`s (largest frags) the buffer is made of.
    pub(crate) fn nr_segments(&self) -> usize {
        self.bvecs.len()
    }

    /// Number of pages pinned (and charged).
    pub(crate) fn nr_pages(&self) -> usize {
        self.pages.len()
    }

    /// Where bytes `[off, off + len)` are: the buffer's own segments that
    /// hold them, a send iterates over in place (as `io_import_fixed` does),
    /// no per-send copy of `bio_vec`s. `EINVAL` outside the buffer or for an
    /// empty range.
    pub(crate) fn locate(&self, off: u64, len: u64) -> Result<Segments> {
        let end = off.checked_add(len).ok_or(EINVAL)?;
        if end > self.len || len == 0 {
            return Err(EINVAL);
        }
        let first = self.segment_of(off)?;
        Ok(Segments {
            first,
            last: self.segment_of(end - 1)?,
            skip: (off - self.starts[first]) as usize,
        })
    }

    /// The segment holding byte `at` (< `len`), by its page: no search.
    fn segment_of(&self, at: u64) -> Result<usize> {
        let page = (at + self.first_off) / PAGE_SIZE as u64;
        let seg = self.page_seg.get(page as usize).ok_or(EINVAL)?;
        Ok(*seg as usize)
    }

    /// The `bio_vec`s of `s` (from [`Self::locate`] on this buffer) and how
    /// far into the first one the bytes start.
    pub(crate) fn segments(&self, s: Segments) -> Result<(&[bindings::bio_vec], usize)> {
        Ok((self.bvecs.get(s.first..=s.last).ok_or(EINVAL)?, s.skip))
    }

    /// Appends the `bio_vec`s of bytes `[off, off + len)` to `out` starting
    /// at `out[*n]`; `EINVAL` outside the buffer, `EMSGSIZE` if `out` is too
    /// short.
    pub(crate) fn slice_into(&self, off: u64, len: u64, out: &mut [Bvec], n: &mut usize) -> Result {
        let end = off.checked_add(len).ok_or(EINVAL)?;
        if end > self.len {
            return Err(EINVAL);
        }
        if len == 0 {
            return Ok(());
        }
        let mut i = self.segment_of(off)?;
        let mut pos = off;
        while pos < end {
            let bv = &self.bvecs[i];
            let seg_start = self.starts[i];
            let skip = (pos - seg_start) as u32;
            let take = (u64::from(bv.bv_len - skip)).min(end - pos) as u32;
            let slot = out.get_mut(*n).ok_or(EMSGSIZE)?;
            // Start at the page that holds the first byte, with an offset
            // inside it: the stack charges a frag `PAGE_ALIGN(offset + len)`
            // of truesize, so an offset deep into a huge folio would make a
            // 1 KiB send cost megabytes of send buffer.
            let abs = (bv.bv_offset + skip) as usize;
            // INVARIANT (of the output): within the pinned segment `bv`,
            // whose pages are consecutive `struct page`s of one folio.
            slot.0 = bindings::bio_vec {
                bv_page: bv.bv_page.wrapping_add(abs / PAGE_SIZE),
                bv_len: take,
                bv_offset: (abs % PAGE_SIZE) as u32,
            };
            *n += 1;
            pos += u64::from(take);
            i += 1;
        }
        Ok(())
    }
}

impl Drop for PinnedBuffer {
    fn drop(&mut self) {
        // SAFETY: every entry holds a pin we own (type invariant).
        unsafe { unpin(&mut self.pages) };
    }
}

/// A compound page of `2^order` pages the module owns, freed on drop.
///
/// # Invariants
///
/// `page` came from `zcsend_alloc_chunk(order)` and is freed only by `Drop`;
/// it is lowmem (GFP_KERNEL), so its pages are contiguous in the direct map.
struct Chunk {
    page: NonNull<bindings::page>,
    order: u32,
}

impl Chunk {
    /// Bytes in the chunk.
    fn len(&self) -> usize {
        PAGE_SIZE << self.order
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        // SAFETY: allocated with this order and not freed yet (invariant).
        unsafe { zcsend_free_chunk(self.page.as_ptr(), self.order) };
    }
}

/// Largest chunk a stable copy is made of: 64 KiB, one frag for a datagram
/// of up to 64 KiB, and an order the page allocator usually has at hand.
const CHUNK_MAX_ORDER: u32 = 4;

/// A stable copy of a payload in pages of the module's own, charged to the
/// caller's `RLIMIT_MEMLOCK` as pinned pages are: what a stable fan-out
/// sends, so every destination carries the same bytes whatever the
/// application does to its buffer once the copy is made. Made of compound
/// pages of up to 64 KiB (one frag each), falling back to single pages.
///
/// # Invariants
///
/// `bvecs[i]` covers the first bytes of `chunks[i]` (whole chunks, the last
/// one possibly short): the copied bytes in order. `charge` covers the
/// pages of all chunks.
pub(crate) struct StablePages {
    /// Owns the pages `bvecs` point into; freed on drop.
    _chunks: KVVec<Chunk>,
    bvecs: KVVec<bindings::bio_vec>,
    _charge: MemlockCharge,
}

// SAFETY: the pages are the module's own; they may be freed from any thread
// and shared access only reads the arrays.
unsafe impl Send for StablePages {}
// SAFETY: as above.
unsafe impl Sync for StablePages {}

impl StablePages {
    /// Copies the `total` bytes behind `iovs` (`iovec::total_len`) into new
    /// pages. `ENOBUFS` over `RLIMIT_MEMLOCK`, `EFAULT`, `ENOMEM`.
    pub(crate) fn copy(iovs: &[UserIovec], total: usize) -> Result<Self> {
        let nr = total.div_ceil(PAGE_SIZE);
        // Chunks are powers of two no larger than what is left: exactly
        // `nr` pages in all, so the charge is exact.
        let charge = MemlockCharge::charge(nr)?;
        let mut chunks =
            KVVec::with_capacity(nr.div_ceil(1 << CHUNK_MAX_ORDER), GFP_KERNEL_ACCOUNT)?;
        let mut bvecs = KVVec::with_capacity(chunks.capacity(), GFP_KERNEL_ACCOUNT)?;
        let mut left_pages = nr;
        let mut left_bytes = total;
        while left_pages != 0 {
            let mut order = CHUNK_MAX_ORDER.min(usize::BITS - 1 - left_pages.leading_zeros());
            let page = loop {
                // SAFETY: no preconditions.
                if let Some(p) = NonNull::new(unsafe { zcsend_alloc_chunk(order) }) {
                    break p;
                }
                if order == 0 {
                    return Err(ENOMEM);
                }
                order -= 1;
            };
            // INVARIANT: allocated with `order` just above.
            let chunk = Chunk { page, order };
            let len = chunk.len().min(left_bytes);
            bvecs.push(
                bindings::bio_vec {
                    bv_page: page.as_ptr(),
                    bv_len: len as u32,
                    bv_offset: 0,
                },
                GFP_KERNEL_ACCOUNT,
            )?;
            chunks.push(chunk, GFP_KERNEL_ACCOUNT)?;
            left_pages -= 1 << order;
            left_bytes -= len;
        }
        // Fill the chunks in order from the iovecs.
        let (mut c, mut off) = (0usize, 0usize);
        for v in iovs.iter().filter(|v| v.len != 0) {
            let base = usize::try_from(v.base).map_err(|_| EFAULT)?;
            let mut reader = UserSlice::new(UserPtr::from_addr(base), v.len as usize).reader();
            while !reader.is_empty() {
                let chunk = chunks.get(c).ok_or(EFAULT)?;
                let take = reader.len().min(chunk.len() - off);
                // SAFETY: the chunk is lowmem, `chunk.len()` contiguous bytes
                // in the direct map from its first page's address (type
                // invariant), allocated above and not reachable by anyone
                // else yet; `off + take <= chunk.len()`.
                let dst = unsafe {
                    let base = zcsend_page_address(chunk.page.as_ptr()).cast::<u8>();
                    core::slice::from_raw_parts_mut(
                        base.add(off).cast::<core::mem::MaybeUninit<u8>>(),
                        take,
                    )
                };
                reader.read_raw(dst)?;
                off += take;
                if off == chunk.len() {
                    c += 1;
                    off = 0;
                }
            }
        }
        // INVARIANT: `total` bytes filled from the first chunk on; one bvec
        // per chunk; the chunks hold `nr` pages, as charged.
        Ok(Self {
            _chunks: chunks,
            bvecs,
            _charge: charge,
        })
    }

    /// The `bio_vec`s covering the copy, in order.
    pub(crate) fn bvecs(&self) -> &[bindings::bio_vec] {
        &self.bvecs
    }
}
