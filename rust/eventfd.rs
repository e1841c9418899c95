// SPDX-License-Identifier: GPL-2.0

//! A reference on an eventfd, signalled once per completion.
//!
//! `MiscDevice` in 7.2 has no `poll`; rather than re-implement the misc
//! file_operations, zcsend signals an eventfd the application registered
//! (the io_uring `IORING_REGISTER_EVENTFD` pattern), and poll/epoll work on
//! that eventfd.

use core::ptr::NonNull;

use crate::ffi::{
    zcsend_eventfd_signal_rcu,
    zcsend_eventfd_swap, //
};
use kernel::bindings;
use kernel::error::from_err_ptr;
use kernel::prelude::*;
use kernel::types::Opaque;

/// An eventfd context.
///
/// # Invariants
///
/// `0` is a reference on an eventfd context owned by this value.
pub(crate) struct EventFd(NonNull<bindings::eventfd_ctx>);

// SAFETY: eventfd contexts are reference counted and thread-safe.
unsafe impl Send for EventFd {}
// SAFETY: `signal` takes the eventfd's own irq-safe lock.
unsafe impl Sync for EventFd {}

impl EventFd {
    /// Takes a reference on the eventfd behind `fd`; `EBADF` or `EINVAL` if
    /// it is not one.
    pub(crate) fn from_fd(fd: i32) -> Result<Self> {
        // SAFETY: any fd value is accepted; errors come back as ERR_PTR.
        let ctx = from_err_ptr(unsafe { bindings::eventfd_ctx_fdget(fd) })?;
        // INVARIANT: `eventfd_ctx_fdget` returned a new reference.
        Ok(Self(NonNull::new(ctx).ok_or(EINVAL)?))
    }

    /// Gives up ownership of the reference, as a raw pointer.
    fn into_raw(self) -> *mut bindings::eventfd_ctx {
        let p = self.0.as_ptr();
        core::mem::forget(self);
        p
    }
}

/// The eventfd an open file signals, replaceable while completions signal
/// it from any context (RCU).
///
/// # Invariants
///
/// `slot` is null or holds one reference on an eventfd context, published
/// with `rcu_assign_pointer` semantics; a replaced context is put only after
/// an RCU grace period.
pub(crate) struct EventFdSlot {
    slot: Opaque<*mut bindings::eventfd_ctx>,
}

// SAFETY: the slot is only accessed with atomic exchange and RCU reads.
unsafe impl Send for EventFdSlot {}
// SAFETY: as above.
unsafe impl Sync for EventFdSlot {}

impl EventFdSlot {
    /// No eventfd.
    pub(crate) fn new() -> Self {
        // INVARIANT: null.
        Self {
            slot: Opaque::new(core::ptr::null_mut()),
        }
    }

    /// Signals the eventfd, if one is set. Any context but NMI.
    pub(crate) fn signal(&self) {
        // SAFETY: `slot` is valid; the C side reads it under RCU.
        unsafe { zcsend_eventfd_signal_rcu(self.slot.get()) };
    }

    /// Installs `new` (or none). Process context: waits for an RCU grace
    /// period before putting the old one.
    pub(crate) fn set(&self, new: Option<EventFd>) {
        let raw = new.map_or(core::ptr::null_mut(), EventFd::into_raw);
        // SAFETY: `slot` is valid; we pass ownership of `raw` in and take
        // ownership of the old reference out.
        let old = unsafe { zcsend_eventfd_swap(self.slot.get(), raw) };
        if !old.is_null() {
            // SAFETY: process context (caller contract, an ioctl).
            unsafe { bindings::synchronize_rcu() };
            // SAFETY: our reference, and no RCU reader still sees it.
            unsafe { bindings::eventfd_ctx_put(old) };
        }
    }
}

impl Drop for EventFdSlot {
    fn drop(&mut self) {
        // SAFETY: `slot` is valid.
        let old = unsafe { zcsend_eventfd_swap(self.slot.get(), core::ptr::null_mut()) };
        if !old.is_null() {
            // SAFETY: our reference. The slot's owner is being dropped:
            // nobody signals through it any more.
            unsafe { bindings::eventfd_ctx_put(old) };
        }
    }
}

impl Drop for EventFd {
    fn drop(&mut self) {
        // SAFETY: we own this reference (type invariant).
        unsafe { bindings::eventfd_ctx_put(self.0.as_ptr()) };
    }
}
