// SPDX-License-Identifier: GPL-2.0

//! A reference on an eventfd, signalled once per completion.
//!
//! `MiscDevice` in 7.2 has no `poll`; rather than re-implement the misc
//! file_operations, zcsend signals an eventfd the application registered
//! (the io_uring `IORING_REGISTER_EVENTFD` pattern), and poll/epoll work on
//! that eventfd.

use core::ptr::NonNull;

use kernel::bindings;
use kernel::error::from_err_ptr;
use kernel::prelude::*;

extern "C" {
    fn zcsend_eventfd_signal(ctx: *mut bindings::eventfd_ctx);
}

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

    /// Adds one to the eventfd counter and wakes its waiters.
    pub(crate) fn signal(&self) {
        // SAFETY: the context is live by the type invariant.
        unsafe { zcsend_eventfd_signal(self.0.as_ptr()) };
    }
}

impl Drop for EventFd {
    fn drop(&mut self) {
        // SAFETY: we own this reference (type invariant).
        unsafe { bindings::eventfd_ctx_put(self.0.as_ptr()) };
    }
}
