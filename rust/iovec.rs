// SPDX-License-Identifier: GPL-2.0

//! Validation of a user iovec array and the page-range math of pinning.
//!
//! Pure functions, no user memory access: `send.rs` reads the array, this
//! file decides whether it is acceptable and how many pages it spans.

use kernel::page::{
    PAGE_SHIFT,
    PAGE_SIZE, //
};
use kernel::prelude::*;

use crate::uapi::UserIovec;

/// Most iovec entries one send may carry (`UIO_MAXIOV`).
pub(crate) const MAX_IOVCNT: u32 = kernel::bindings::UIO_MAXIOV;

/// Largest byte count one send may carry, as for `send(2)` (`MAX_RW_COUNT`).
pub(crate) const MAX_BYTES: usize = (i32::MAX as usize) & !(PAGE_SIZE - 1);

/// Checks an iovec count before the array is read.
///
/// Fails with `EINVAL` for 0 or more than `UIO_MAXIOV` entries.
pub(crate) fn check_count(iovcnt: u32) -> Result<usize> {
    if iovcnt == 0 || iovcnt > MAX_IOVCNT {
        return Err(EINVAL);
    }
    Ok(iovcnt as usize)
}

/// Returns the total length of `iovs`.
///
/// Fails with `EINVAL` if the sum overflows or exceeds [`MAX_BYTES`], and
/// with `EFAULT` if an entry wraps around the address space.
pub(crate) fn total_len(iovs: &[UserIovec]) -> Result<usize> {
    let mut total: usize = 0;
    for v in iovs {
        let len = usize::try_from(v.len).map_err(|_| EINVAL)?;
        if len > MAX_BYTES {
            return Err(EINVAL);
        }
        if len != 0 && v.base.checked_add(v.len).is_none() {
            return Err(EFAULT);
        }
        total = total.checked_add(len).ok_or(EINVAL)?;
        if total > MAX_BYTES {
            return Err(EINVAL);
        }
    }
    Ok(total)
}

/// Number of pages the byte range `[addr, addr + len)` touches.
///
/// Returns 0 for an empty range and `None` if the range wraps.
#[inline]
pub(crate) fn pages_spanned(addr: u64, len: u64) -> Option<usize> {
    if len == 0 {
        return Some(0);
    }
    let end = addr.checked_add(len)?;
    let first = addr >> PAGE_SHIFT;
    let last = (end - 1) >> PAGE_SHIFT;
    usize::try_from(last - first + 1).ok()
}

/// Total number of pages `iovs` spans; entries are counted separately even
/// when two of them share a page, since each is pinned on its own.
#[inline]
pub(crate) fn total_pages(iovs: &[UserIovec]) -> Result<usize> {
    let mut pages: usize = 0;
    for v in iovs {
        let n = pages_spanned(v.base, v.len).ok_or(EFAULT)?;
        pages = pages.checked_add(n).ok_or(EINVAL)?;
    }
    Ok(pages)
}

/// Pages (counted as [`total_pages`] does, in iovec order) that hold the
/// first `bytes` bytes of `iovs`: after a partial send, the pages past this
/// prefix were never handed to the stack.
pub(crate) fn pages_for_prefix(iovs: &[UserIovec], bytes: usize) -> usize {
    let mut left = bytes as u64;
    let mut pages = 0;
    for v in iovs {
        if left == 0 {
            break;
        }
        let take = v.len.min(left);
        pages += pages_spanned(v.base, take).unwrap_or(0);
        left -= take;
    }
    pages
}

/// Number of `bio_vec`s (skb frags) pinning `iovs` yields: one per page an
/// entry touches, less one wherever an entry continues the previous
/// non-empty one inside the same page (`pinned.rs` merges those).
#[inline]
pub(crate) fn frags_needed(iovs: &[UserIovec]) -> usize {
    let mut frags: usize = 0;
    let mut prev_end: Option<u64> = None;
    for v in iovs.iter().filter(|v| v.len != 0) {
        frags += pages_spanned(v.base, v.len).unwrap_or(usize::MAX / 2);
        if prev_end == Some(v.base) && page_offset(v.base) != 0 {
            frags -= 1;
        }
        prev_end = v.base.checked_add(v.len);
    }
    frags
}

/// Offset of `addr` within its page.
pub(crate) fn page_offset(addr: u64) -> usize {
    (addr as usize) & (PAGE_SIZE - 1)
}

#[kunit_tests(zcsend_iovec)]
mod tests {
    use super::*;

    fn iov(base: u64, len: u64) -> UserIovec {
        UserIovec { base, len }
    }

    #[test]
    fn count_bounds() {
        assert_eq!(check_count(0), Err(EINVAL));
        assert_eq!(check_count(1), Ok(1));
        assert_eq!(check_count(1024), Ok(1024));
        assert_eq!(check_count(1025), Err(EINVAL));
    }

    #[test]
    fn total_len_sums_and_rejects_overflow() {
        assert_eq!(total_len(&[iov(0x1000, 10), iov(0x3000, 20)]), Ok(30));
        assert_eq!(total_len(&[iov(0x1000, 0)]), Ok(0));
        assert_eq!(total_len(&[iov(0x1000, u64::MAX)]), Err(EINVAL));
        let half = (MAX_BYTES / 2 + PAGE_SIZE) as u64;
        assert_eq!(
            total_len(&[iov(0x1000, half), iov(0x1000, half)]),
            Err(EINVAL)
        );
        assert_eq!(total_len(&[iov(u64::MAX - 4, 10)]), Err(EFAULT));
    }

    #[test]
    fn page_math() {
        let ps = PAGE_SIZE as u64;
        assert_eq!(pages_spanned(0x1000, 0), Some(0));
        assert_eq!(pages_spanned(0, 1), Some(1));
        assert_eq!(pages_spanned(0, ps), Some(1));
        assert_eq!(pages_spanned(0, ps + 1), Some(2));
        assert_eq!(pages_spanned(ps - 1, 2), Some(2));
        assert_eq!(pages_spanned(u64::MAX, 2), None);
        assert_eq!(total_pages(&[iov(ps - 1, 2), iov(0, ps)]), Ok(3));
        assert_eq!(page_offset(ps + 5), 5);
    }

    #[test]
    fn prefix_pages() {
        let ps = PAGE_SIZE as u64;
        let v = [iov(ps - 8, 16), iov(3 * ps, 2 * ps), iov(9 * ps, 1)];
        assert_eq!(pages_for_prefix(&v, 0), 0);
        assert_eq!(pages_for_prefix(&v, 8), 1);
        assert_eq!(pages_for_prefix(&v, 9), 2);
        assert_eq!(pages_for_prefix(&v, 16), 2);
        assert_eq!(pages_for_prefix(&v, 17), 3);
        assert_eq!(pages_for_prefix(&v, 16 + 2 * ps as usize), 4);
        assert_eq!(pages_for_prefix(&v, usize::MAX), 5);
        assert_eq!(Ok(pages_for_prefix(&v, usize::MAX)), total_pages(&v));
    }

    #[test]
    fn frag_count_merges_contiguous_entries() {
        let ps = PAGE_SIZE as u64;
        // Two halves of one page: one frag.
        assert_eq!(frags_needed(&[iov(0, ps / 2), iov(ps / 2, ps / 2)]), 1);
        // Contiguous at a page boundary: nothing to merge.
        assert_eq!(frags_needed(&[iov(0, ps), iov(ps, ps)]), 2);
        // A gap, and empty entries that do not break contiguity.
        assert_eq!(frags_needed(&[iov(0, 10), iov(20, 10)]), 2);
        assert_eq!(frags_needed(&[iov(0, 10), iov(5, 0), iov(10, 10)]), 1);
        // Page-crossing pieces.
        assert_eq!(frags_needed(&[iov(ps - 1, 2), iov(ps + 1, ps)]), 3);
    }
}
