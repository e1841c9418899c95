// SPDX-License-Identifier: GPL-2.0

//! A wait queue that completions may wake from any context.
//!
//! One of the files that hold zcsend's `unsafe` code. The kernel crate's
//! `CondVar` waits with a `Lock` held and re-checks nothing between queueing
//! itself and sleeping, so a waker that takes no lock (a completion in
//! softirq posting into the lock-free ring) could be missed. [`WaitQueue`]
//! waits with `wait_event_interruptible()`, which re-checks the condition
//! after queueing itself; [`WaitQueue::wake_after_barrier`] pairs with it
//! as `wq_has_sleeper()` does, through the waker's own full barrier.

use crate::atomic::{
    Atomic,
    Relaxed, //
};
use crate::ffi::{
    zcsend_waitq_init,
    zcsend_waitq_wait,
    zcsend_waitq_wake_all, //
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
    ///
    /// The caller has issued a full barrier (`smp_mb()`) after the stores
    /// the waiters' condition reads: this is `wq_has_sleeper()` without a
    /// barrier of its own (a waiter queues itself, then re-checks; the
    /// waker stores, then looks for waiters: one sees the other). Without
    /// that barrier a wake-up can be missed (a reader sleeps on), nothing
    /// worse. A completion has just issued one for the eventfd check, so
    /// nobody waiting costs no call into C and no second barrier.
    pub(crate) fn wake_after_barrier(&self) {
        let wq = self.wq.get();
        // SAFETY: `wq` is initialised and pinned (type invariant); the list
        // head's `next` is only read, atomically, as `waitqueue_active()`
        // reads it with `READ_ONCE()`; writers hold the queue's lock.
        let next = unsafe { Atomic::from_ptr(&raw mut (*wq).head.next) }.load(Relaxed);
        // SAFETY: as above; only the address of the list head is taken.
        let empty = core::ptr::eq(next, unsafe { &raw mut (*wq).head });
        if !empty {
            // SAFETY: initialised (type invariant).
            unsafe { zcsend_waitq_wake_all(wq) };
        }
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

/// Between the sends of one long system call (a batch, a fan-out's
/// destinations), as `__sys_sendmmsg()` does per message: a scheduling
/// point on kernels without full preemption; `true` if the task was killed
/// meanwhile (the call should stop where it is). Process context that may
/// sleep (no spinlock or RCU read-side section held).
pub(crate) fn resched_or_killed() -> bool {
    // SAFETY: `cond_resched()` may sleep: every caller (an ioctl's batch or
    // fan-out, `read()`) runs in process context holding at most a mutex.
    unsafe { crate::ffi::zcsend_resched_or_killed() }
}
