// SPDX-License-Identifier: GPL-2.0

//! zcsend's own workqueue and the module references of open files.
//!
//! Unload safety: every file's context holds a [`ModuleRef`] and lives until
//! the file is closed and its last in-flight send completed (each send holds
//! the context), so `rmmod` fails with `EBUSY` while a send is in flight,
//! and no send pays for a reference on the module's shared counter. A
//! context is dropped by a work item on [`CompletionQueue`] (queued by the
//! last reference of its closed in-flight count, `inflight.rs`); module exit destroys the queue, which waits for any
//! such work item to return, before the module's code is freed, then waits
//! for RCU grace periods so that the call that queued the work has returned
//! as well.

use core::ptr::{
    self,
    NonNull, //
};

use crate::ffi::{
    zcsend_alloc_workqueue,
    zcsend_synchronize_rcu_tasks, //
};
use kernel::bindings;
use kernel::prelude::*;
use kernel::sync::atomic::{
    Acquire,
    Atomic,
    Release, //
};
use kernel::workqueue::Queue;

/// The queue `completion_queue()` hands out; set while a [`CompletionQueue`]
/// exists.
static QUEUE: Atomic<*mut bindings::workqueue_struct> = Atomic::new(ptr::null_mut());

/// The module's completion workqueue.
///
/// # Invariants
///
/// `0` was allocated by `alloc_workqueue`, is published in `QUEUE`, and is
/// destroyed (after being unpublished) only in `Drop`.
pub(crate) struct CompletionQueue(NonNull<bindings::workqueue_struct>);

// SAFETY: a workqueue may be used and destroyed from any thread.
unsafe impl Send for CompletionQueue {}
// SAFETY: as above.
unsafe impl Sync for CompletionQueue {}

impl CompletionQueue {
    /// Allocates the queue and publishes it.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: the name is a NUL-terminated static string.
        let wq = unsafe { zcsend_alloc_workqueue(c"zcsend_complete".as_char_ptr()) };
        let wq = NonNull::new(wq).ok_or(ENOMEM)?;
        QUEUE.store(wq.as_ptr(), Release);
        // INVARIANT: allocated and published.
        Ok(Self(wq))
    }
}

impl Drop for CompletionQueue {
    fn drop(&mut self) {
        QUEUE.store(ptr::null_mut(), Release);
        // SAFETY: allocated by `alloc_workqueue` (type invariant); no send is
        // in flight (each holds a module reference, and exit runs only at
        // refcount zero), so nothing can enqueue any more. This waits for the
        // last completion work to return.
        unsafe { bindings::destroy_workqueue(self.0.as_ptr()) };
        // `complete()` in `ubuf.rs` queues the last work item inside an RCU
        // read-side section: wait until every such caller has left it.
        // SAFETY: process context, no locks held.
        unsafe { bindings::synchronize_rcu() };
        // A caller that left the section still runs a few instructions of
        // this module (`rcu_read_unlock()` returns into `complete()`, whose
        // epilogue returns to the stack), outside any RCU reader: if it was
        // preempted there, `synchronize_rcu()` above does not wait for it.
        // RCU Tasks waits until every task has voluntarily scheduled, which
        // a task preempted inside module text has not (the guarantee ftrace
        // and BPF trampolines rely on for the same problem). Where the
        // kernel has no RCU Tasks it is `synchronize_rcu()`: enough without
        // preemption, the one case left open otherwise (see "Lifetimes" in
        // Documentation/zcsend.rst).
        // SAFETY: process context, no locks held.
        unsafe { zcsend_synchronize_rcu_tasks() };
    }
}

/// The completion workqueue.
///
/// # Safety
///
/// The caller holds something that keeps module exit from starting: a
/// [`ModuleRef`] (every in-flight send holds its file's context, which
/// holds one, until its completion has been queued), so the
/// [`CompletionQueue`] is alive and published.
pub(crate) unsafe fn completion_queue() -> &'static Queue {
    let wq = QUEUE.load(Acquire);
    // SAFETY: published by a live `CompletionQueue` (function contract).
    unsafe { Queue::from_raw(wq) }
}

/// A reference on this module, held by every file's context.
///
/// # Invariants
///
/// This value owns one reference taken by `try_module_get`.
pub(crate) struct ModuleRef(());

impl ModuleRef {
    /// Takes a reference; `ENODEV` if the module is being unloaded.
    pub(crate) fn get() -> Result<Self> {
        // SAFETY: `THIS_MODULE` is this module, live while its code runs.
        if !unsafe { bindings::try_module_get(crate::THIS_MODULE.as_ptr()) } {
            return Err(ENODEV);
        }
        // INVARIANT: the reference was taken.
        Ok(Self(()))
    }
}

impl Drop for ModuleRef {
    fn drop(&mut self) {
        // SAFETY: we own one reference (type invariant).
        unsafe { bindings::module_put(crate::THIS_MODULE.as_ptr()) };
    }
}
