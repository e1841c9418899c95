// SPDX-License-Identifier: GPL-2.0

//! A short array of `Copy` items that lives on the stack when it fits in
//! `N` entries and on the heap otherwise: most sends carry one iovec, and a
//! heap allocation per send is measurable on the small-send path.

use core::ops::{
    Deref,
    DerefMut, //
};

use kernel::prelude::*;
use kernel::transmute::{
    AsBytes,
    FromBytes, //
};
use kernel::uaccess::{
    UserPtr,
    UserSlice, //
};

/// `len` items, inline when `len <= N`.
///
/// # Invariants
///
/// For `Inline { len, .. }`, `len <= N`.
pub(crate) enum SmallBuf<T: Copy + Default, const N: usize> {
    Inline { items: [T; N], len: usize },
    Heap(KVVec<T>),
}

impl<T: Copy + Default, const N: usize> SmallBuf<T, N> {
    /// `len` default items; on the heap charged to the caller's memory
    /// cgroup, as everything a system call allocates on a user's behalf.
    pub(crate) fn new(len: usize) -> Result<Self> {
        if len <= N {
            // INVARIANT: checked `len <= N`.
            return Ok(Self::Inline {
                items: [T::default(); N],
                len,
            });
        }
        let mut v = KVVec::with_capacity(len, GFP_KERNEL_ACCOUNT)?;
        v.resize(len, T::default(), GFP_KERNEL_ACCOUNT)?;
        Ok(Self::Heap(v))
    }

    /// No items, inline.
    pub(crate) fn empty() -> Self {
        // INVARIANT: `0 <= N`.
        Self::Inline {
            items: [T::default(); N],
            len: 0,
        }
    }

    /// Makes this `len` items long for reuse, in place: the inline storage
    /// when they fit, or a heap array with room for them, neither rewritten
    /// (its items are whatever earlier use left there, plain `Copy` values
    /// the caller overwrites before it reads them, defaults past the old
    /// length), else `len` default items in a new heap array.
    pub(crate) fn reset(&mut self, len: usize) -> Result {
        match self {
            Self::Inline { len: l, .. } if len <= N => {
                // INVARIANT: checked `len <= N`.
                *l = len;
                Ok(())
            }
            Self::Heap(v) if v.capacity() >= len => {
                // Within capacity: no allocation.
                v.resize(len, T::default(), GFP_KERNEL_ACCOUNT)?;
                Ok(())
            }
            _ => {
                *self = Self::new(len)?;
                Ok(())
            }
        }
    }

    /// No items; a heap array is freed and the inline storage used again.
    pub(crate) fn clear(&mut self) {
        match self {
            Self::Inline { len, .. } => *len = 0,
            Self::Heap(_) => *self = Self::empty(),
        }
    }
}

impl<T: Copy + Default + AsBytes + FromBytes, const N: usize> SmallBuf<T, N> {
    /// The `len` items at user address `ptr`, read with one user copy;
    /// `EFAULT` if they cannot be read.
    pub(crate) fn read_user(ptr: u64, len: usize) -> Result<Self> {
        let mut buf = Self::empty();
        buf.read_user_in(ptr, len)?;
        Ok(buf)
    }

    /// [`Self::read_user`] into `self`, reused as [`Self::reset`] does (the
    /// same storage for every payload of a batch, never moved).
    pub(crate) fn read_user_in(&mut self, ptr: u64, len: usize) -> Result {
        let ptr = usize::try_from(ptr).map_err(|_| EFAULT)?;
        self.reset(len)?;
        UserSlice::new(UserPtr::from_addr(ptr), core::mem::size_of_val::<[T]>(self))
            .reader()
            .read_slice(<[T] as AsBytes>::as_bytes_mut(self))
    }
}

impl<T: Copy + Default, const N: usize> Deref for SmallBuf<T, N> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match self {
            Self::Inline { items, len } => &items[..*len],
            Self::Heap(v) => v,
        }
    }
}

impl<T: Copy + Default, const N: usize> DerefMut for SmallBuf<T, N> {
    fn deref_mut(&mut self) -> &mut [T] {
        match self {
            Self::Inline { items, len } => &mut items[..*len],
            Self::Heap(v) => v,
        }
    }
}

#[kunit_tests(zcsend_smallbuf)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_heap() -> Result {
        let mut a = SmallBuf::<u32, 4>::new(3)?;
        assert!(matches!(a, SmallBuf::Inline { .. }));
        a[2] = 7;
        assert_eq!(&a[..], &[0, 0, 7]);
        let mut b = SmallBuf::<u32, 4>::new(9)?;
        assert!(matches!(b, SmallBuf::Heap(_)));
        b[8] = 1;
        assert_eq!(b.len(), 9);
        assert_eq!(b[8], 1);
        assert_eq!(SmallBuf::<u32, 4>::new(0)?.len(), 0);
        Ok(())
    }

    #[test]
    fn reset_reuses_inline_and_clear_frees_heap() -> Result {
        let mut a = SmallBuf::<u32, 4>::empty();
        assert_eq!(a.len(), 0);
        a.reset(2)?;
        a[1] = 5;
        a.clear();
        a.reset(4)?;
        assert!(matches!(a, SmallBuf::Inline { .. }));
        // The inline storage is reused as it was left.
        assert_eq!(a[1], 5);
        a.reset(6)?;
        assert!(matches!(a, SmallBuf::Heap(_)));
        assert_eq!(&a[..], &[0; 6]);
        // A heap array with room is kept: shorter, then as long again.
        a[5] = 9;
        a.reset(5)?;
        assert!(matches!(a, SmallBuf::Heap(_)));
        a.reset(6)?;
        assert_eq!(&a[..], &[0, 0, 0, 0, 0, 0]);
        a.clear();
        assert!(matches!(a, SmallBuf::Inline { len: 0, .. }));
        Ok(())
    }
}
