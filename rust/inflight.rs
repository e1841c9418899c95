// SPDX-License-Identifier: GPL-2.0

//! A file's sends in flight, counted without an atomic per send.
//!
//! One of the abstraction files that hold zcsend's `unsafe` code (listed in
//! `zcsend_main.rs`). Every send in flight keeps its file's state alive
//! past `close()` until it completes. An `Arc` reference per send costs two
//! atomic operations on one shared counter (`refcount_inc` and
//! `refcount_dec_and_test`), on every send and from whichever CPU
//! completes it; [`Inflight`] is a `percpu_ref` instead (as io_uring counts
//! its requests against the ring, `ctx->refs`): a per-CPU count while the
//! file is open, switched to one atomic count by [`Inflight::close`], after
//! which the last send to end has the file's state dropped by a work item.

use core::marker::PhantomData;
use core::ops::Deref;
use core::ptr::NonNull;

use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::workqueue::{
    HasWork,
    WorkItem, //
};

use crate::ffi::{
    zcsend_inflight_close,
    zcsend_inflight_free,
    zcsend_inflight_new,
    zcsend_inflight_put,
    zcsend_inflight_tryget, //
};

/// What owns an [`Inflight`]: the state of an open file. Implemented with
/// [`impl_idle!`].
///
/// Once its file is closed and its last send has ended, it is queued on the
/// module's completion workqueue, whose work item (its `WorkItem::run`)
/// drops it: dropping it may sleep, and the count's release runs inside an
/// RCU read-side critical section.
///
/// # Safety
///
/// - [`Idle::inflight`] returns a field of `self`: the count whose
///   references keep `self` alive.
/// - A `T` holds a [`ModuleRef`](crate::wq::ModuleRef) for as long as it lives, so the module's
///   code stays loaded until that work item has dropped it.
pub(crate) unsafe trait Idle:
    WorkItem<Pointer = Arc<Self>> + HasWork<Self> + Send + Sync + Sized + 'static
{
    /// The count of `self`'s sends.
    fn inflight(&self) -> &Inflight<Self>;
}

/// Implements [`Idle`] for `$t`, whose field `$inflight` is its
/// `Inflight<$t>` and whose field `$module` its [`ModuleRef`](crate::wq::ModuleRef) (both checked
/// by their types).
macro_rules! impl_idle {
    ($t:ty { inflight: $inflight:ident, module: $module:ident }) => {
        // SAFETY: `inflight` returns `$t`'s own field `$inflight`, and `$t`
        // holds the `ModuleRef` `$module` for as long as it lives.
        unsafe impl $crate::inflight::Idle for $t {
            fn inflight(&self) -> &$crate::inflight::Inflight<Self> {
                let _: &$crate::wq::ModuleRef = &self.$module;
                &self.$inflight
            }
        }
    };
}
pub(crate) use impl_idle;

/// The count of the sends in flight of a `T` (the state of an open file).
///
/// # Invariants
///
/// `raw` is a live `struct zcsend_inflight` (`shim.c`) whose idle callback
/// is [`idle::<T>`], freed on drop. Until [`Inflight::close`] its initial
/// reference is the open file's; after it, its owner is the `Arc<T>` that
/// `close` leaked, which [`idle::<T>`] takes back once the count is zero.
pub(crate) struct Inflight<T: Idle> {
    raw: NonNull<c_void>,
    _owner: PhantomData<T>,
}

// SAFETY: the C side is a `percpu_ref`, usable from any CPU and context.
unsafe impl<T: Idle> Send for Inflight<T> {}
// SAFETY: as above; every operation on it through `&self` is one of the
// `percpu_ref`'s own, which synchronise themselves.
unsafe impl<T: Idle> Sync for Inflight<T> {}

/// The C side's idle callback: the file is closed and its last send ended.
///
/// # Safety
///
/// `owner` is the pointer [`Inflight::close`] leaked from an `Arc<T>`, and
/// this is the one call that takes it back.
unsafe extern "C" fn idle<T: Idle>(owner: *mut c_void) {
    // SAFETY: see the function's contract.
    let this = unsafe { Arc::from_raw(owner.cast_const().cast::<T>()) };
    // SAFETY: `this` holds a `ModuleRef` until its work item has run
    // (`Idle`'s contract), so the completion workqueue is alive.
    let queue = unsafe { crate::wq::completion_queue() };
    // Queued once, by the last reference of the closed count: it cannot
    // be pending already (the `Arc` would come back only then).
    let _ = queue.enqueue(this);
}

impl<T: Idle> Inflight<T> {
    /// A count with no send in flight, for a file being opened.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: `idle::<T>` has the C callback's signature.
        let raw = unsafe { zcsend_inflight_new(idle::<T>) };
        // INVARIANT: a new count, its initial reference the file's.
        Ok(Self {
            raw: NonNull::new(raw).ok_or(ENOMEM)?,
            _owner: PhantomData,
        })
    }

    /// The file `owner` is closed: no send can start any more
    /// ([`InflightRef::get`] fails), and `owner` is dropped on the
    /// completion workqueue once the last send in flight has ended (after
    /// an RCU grace period if none is).
    pub(crate) fn close(owner: Arc<T>) {
        let raw = Arc::into_raw(owner);
        // SAFETY: `raw` is live (the reference just leaked); the C side
        // keeps it for `idle::<T>`, which takes it back once (type
        // invariant), and drops the file's initial reference.
        unsafe { zcsend_inflight_close((*raw).inflight().raw.as_ptr(), raw.cast_mut().cast()) };
    }
}

impl<T: Idle> Drop for Inflight<T> {
    fn drop(&mut self) {
        // SAFETY: `raw` is live (type invariant) and, with its owner being
        // dropped, no reference on it is left (each holds the owner).
        unsafe { zcsend_inflight_free(self.raw.as_ptr()) };
    }
}

/// One send in flight of a `T`: keeps it alive until dropped.
///
/// # Invariants
///
/// Holds one reference of `ptr`'s [`Inflight`], which keeps `*ptr` alive:
/// the open file holds its `Arc<T>` until [`Inflight::close`], which
/// leaves one for [`idle::<T>`], called only once no reference is left.
pub(crate) struct InflightRef<T: Idle> {
    ptr: NonNull<T>,
}

// SAFETY: shares a `T` (`Sync`), and its reference may be put from any
// context.
unsafe impl<T: Idle> Send for InflightRef<T> {}
// SAFETY: `&InflightRef` only gives `&T`.
unsafe impl<T: Idle> Sync for InflightRef<T> {}

impl<T: Idle> InflightRef<T> {
    /// A reference for one more send of `owner`; `None` once `owner`'s file
    /// is closed.
    #[inline]
    pub(crate) fn get(owner: &T) -> Option<Self> {
        // SAFETY: `owner`'s count is live while `owner` is; a closed one
        // refuses (`percpu_ref_tryget_live`), so a count that reached zero
        // is never raised again.
        if !unsafe { zcsend_inflight_tryget(owner.inflight().raw.as_ptr()) } {
            return None;
        }
        // INVARIANT: we hold the reference just taken.
        Some(Self {
            ptr: NonNull::from(owner),
        })
    }

    /// The address of the `T`, as an identity.
    pub(crate) fn as_ptr(&self) -> *const T {
        self.ptr.as_ptr()
    }
}

impl<T: Idle> Deref for InflightRef<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: our reference keeps `*ptr` alive (type invariant).
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: Idle> Drop for InflightRef<T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own one reference (type invariant), given up here;
        // nothing touches `*ptr` through `self` after it.
        unsafe { zcsend_inflight_put(self.inflight().raw.as_ptr()) };
    }
}
