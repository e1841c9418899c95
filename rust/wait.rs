// SPDX-License-Identifier: GPL-2.0

//! A wait queue that completions may wake from any context.
//!
//! One of the files that hold zcsend's `unsafe` code. The kernel crate's
//! `CondVar` waits with a `Lock` held and re-checks nothing between queueing
//! itself and sleeping, so a waker that takes no lock (a completion in
//! softirq posting into the lock-free ring) could be missed. [`WaitQueue`]
//! waits with `wait_event_interruptible()`, which re-checks the condition
//! after queueing itself; [`WaitQueue::wake`] pairs with it through
//! `wq_has_sleeper()`'s barrier.

use crate::ffi::{
    zcsend_waitq_init,
    zcsend_waitq_wait,
    zcsend_waitq_wake, //
};
use kernel::bindings;
use kernel::prelude::*;
use kernel::types::Opaque;

/// A `wait_queue_head`.
///
/// # Invariants
///
/// `wq` was initialised by `init_waitqueue_head` and is never moved.
#[pin_data]
pub(crate) struct WaitQueue {
    #[pin]
    wq: Opaque<bindings::wait_queue_head>,
}

// SAFETY: a wait queue head is used from any thread and context; its own
// spinlock protects it.
unsafe impl Send for WaitQueue {}
// SAFETY: as above.
unsafe impl Sync for WaitQueue {}

/// Calls the `Fn() -> bool` behind `arg`.
///
/// # Safety
///
/// `arg` points at a live `F`.
unsafe extern "C" fn call_cond<F: Fn() -> bool>(arg: *mut c_void) -> bool {
    // SAFETY: by the function's contract.
    unsafe { (*arg.cast::<F>())() }
}

impl WaitQueue {
    /// An empty wait queue.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `init_waitqueue_head` initialises the pinned slot.
            // INVARIANT: initialised in place, pinned.
            wq <- Opaque::ffi_init(|p| unsafe { zcsend_waitq_init(p) }),
        })
    }

    /// Wakes every waiter, if there is one. Any context but NMI.
    pub(crate) fn wake(&self) {
        // SAFETY: initialised (type invariant).
        unsafe { zcsend_waitq_wake(self.wq.get()) };
    }

    /// Sleeps until `cond()` holds; `EINTR` if a signal comes first.
    /// Process context, no spinlock held.
    pub(crate) fn wait_until<F: Fn() -> bool>(&self, cond: &F) -> Result {
        // SAFETY: initialised (type invariant); `cond` outlives the call.
        let ret = unsafe {
            zcsend_waitq_wait(
                self.wq.get(),
                call_cond::<F>,
                core::ptr::from_ref(cond).cast_mut().cast(),
            )
        };
        if ret < 0 {
            return Err(EINTR);
        }
        Ok(())
    }
}
