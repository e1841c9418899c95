// SPDX-License-Identifier: GPL-2.0

//! zcsend's `struct ubuf_info` provider: the completion notifier attached to
//! every skb that carries a send's pinned pages.
//!
//! One of the abstraction files that hold zcsend's `unsafe` code (listed in
//! `zcsend_main.rs`). Modelled on
//! `io_uring/notif.c`; see `Documentation/zcsend.rst` for the design.
//!
//! # Lifetime of a [`Notif`]
//!
//! `ubuf_info.refcnt` counts the submitter (one reference, held by
//! [`Submission`] across `sock_sendmsg`) and every skb that points at the
//! notif. [`link_skb`] lets a later send on the same socket share an skb that
//! already carries an earlier notif: the later one joins the earlier one's
//! chain and holds one reference on the chain head, so the head completes
//! last and completes the whole chain. A chain is capped at [`MAX_CHAIN`]
//! members: a stream of sends would otherwise link every send to the first
//! one, and no completion would arrive until the socket went idle.
//!
//! # Contexts
//!
//! - [`link_skb`] and [`sg_from_iter`] run in process context under the
//!   socket lock, inside `sock_sendmsg`.
//! - [`complete`] runs in any context: process, softirq, or hard IRQ (skb
//!   freed by a driver). It only touches atomics and queues work; no lock.
//! - The last reference hands the chain to `Notif::run` on zcsend's own
//!   workqueue (process context), which unpins, posts the completion records
//!   and drops the module reference. Module exit destroys that workqueue, so
//!   no completion work runs after the module's code is gone.

use core::mem::offset_of;
use core::ptr::{
    self,
    NonNull, //
};

use kernel::bindings;
use kernel::prelude::*;
use kernel::sync::atomic::{
    Atomic,
    Relaxed, //
};
use kernel::types::Opaque;
use kernel::workqueue::{
    impl_has_work,
    new_work,
    Work,
    WorkItem, //
};

use crate::ffi::{
    zcsend_can_complete_inline,
    zcsend_fill_frags,
    zcsend_skb_zcopy,
    zcsend_skb_zcopy_init, //
};
use crate::send::InFlight;

/// Wrapper making the `ubuf_info_ops` table `Sync`, as binder does for its
/// `vm_operations_struct`.
struct AssertSync<T>(T);
// SAFETY: the table is never written after compile time.
unsafe impl<T> Sync for AssertSync<T> {}

static OPS: AssertSync<bindings::ubuf_info_ops> = AssertSync(bindings::ubuf_info_ops {
    complete: Some(complete),
    link_skb: Some(link_skb),
});

/// Most notifs one chain may hold; a send that would exceed it gets an skb
/// of its own (`-EEXIST` makes TCP start a new segment).
const MAX_CHAIN: u32 = 16;

const UBUF_FLAGS: u8 = (bindings::SKBFL_ZEROCOPY_ENABLE
    | bindings::SKBFL_SHARED_FRAG
    | bindings::SKBFL_DONT_ORPHAN) as u8;

/// One send's notifier: the `ubuf_info` the stack sees, plus what the
/// completion needs.
///
/// # Invariants
///
/// - `ubuf` is the first field (`#[repr(C)]`), so a `*mut ubuf_info` whose
///   `ops` is `&OPS` points at a `Notif`.
/// - Once submitted, a `Notif` is owned by its references (`ubuf.refcnt`):
///   it was leaked from a `Pin<KBox<Notif>>` and is turned back into one
///   exactly once, when the last reference of its chain head goes.
/// - `head` points at the chain head (itself when not linked); `next` at the
///   next member of the head's chain, or is null; the head's `chain_len`
///   counts its members, itself included, at most [`MAX_CHAIN`]. All three
///   only change in [`link_skb`] under the socket lock, before the head can
///   complete. Every member of a chain has the same `owner`.
/// - `payload` is accessed only through the [`Submission`] (while it lives)
///   and by the chain head's final run (after the last reference).
#[repr(C)]
#[pin_data]
pub(crate) struct Notif {
    ubuf: Opaque<bindings::ubuf_info>,
    head: Atomic<*mut Notif>,
    next: Atomic<*mut Notif>,
    chain_len: Atomic<u32>,
    copied: Atomic<bool>,
    frags_attached: Atomic<bool>,
    /// Joined an earlier notif's chain.
    linked: Atomic<bool>,
    /// Never in a chain, as member or head: a fan-out's notif rides on
    /// skbs of many sockets, and a later send on one of them must not wait
    /// for all the others.
    solo: bool,
    accepted: Atomic<i64>,
    /// Opaque identity of the open file that submitted this send.
    owner: usize,
    #[pin]
    work: Work<Notif>,
    payload: InFlight,
}

// SAFETY: a `Notif` is handed between the submitting task, softirq/IRQ
// completions and the completion work; every field shared among them is an
// atomic or the `ubuf_info`, which the stack accesses with its own atomics;
// `payload` is only touched by the submitter (read-only) and by the final
// work item, after the last reference.
unsafe impl Send for Notif {}
// SAFETY: see `Send`; `&Notif` only allows atomic access and reads.
unsafe impl Sync for Notif {}

impl_has_work! {
    impl HasWork<Self> for Notif { self.work }
}

/// The submitter's reference on a [`Notif`], held across `sock_sendmsg`.
///
/// # Invariants
///
/// `notif` points at a live, leaked `Notif` on which this value owns one
/// reference (`ubuf.refcnt`); dropping it releases that reference.
pub(crate) struct Submission {
    notif: NonNull<Notif>,
}

// SAFETY: the submitter's reference may be dropped from any thread; the
// shared fields are atomics and `payload` is only read through `&`.
unsafe impl Send for Submission {}

impl Notif {
    /// Allocates a notifier for `payload`, sent on behalf of the file
    /// identified by `owner`, and returns the submitter's reference on it.
    /// A `solo` notif never shares a chain (fan-out).
    pub(crate) fn submit(payload: InFlight, owner: usize, solo: bool) -> Result<Submission> {
        let boxed = KBox::pin_init(
            pin_init!(Notif {
                ubuf: Opaque::new(bindings::ubuf_info {
                    ops: &OPS.0,
                    // The submitter's reference.
                    // SAFETY: plain constructor of a `refcount_t` value.
                    refcnt: unsafe { bindings::REFCOUNT_INIT(1) },
                    flags: UBUF_FLAGS,
                }),
                head: Atomic::new(ptr::null_mut()),
                next: Atomic::new(ptr::null_mut()),
                chain_len: Atomic::new(1),
                copied: Atomic::new(false),
                frags_attached: Atomic::new(false),
                linked: Atomic::new(false),
                solo,
                accepted: Atomic::new(0),
                owner,
                work <- new_work!("zcsend::Notif::work"),
                payload,
            }),
            GFP_KERNEL_ACCOUNT,
        )?;
        // SAFETY: the notif is never moved out of its box; it is turned back
        // into a `Pin<KBox<_>>` in `put`, by its last reference.
        let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(boxed) });
        // SAFETY: `raw` is valid and not shared yet.
        unsafe { (*raw).head.store(raw, Relaxed) };
        // INVARIANT: the refcount of 1 is the submitter's.
        Ok(Submission {
            // SAFETY: `KBox::into_raw` never returns null.
            notif: unsafe { NonNull::new_unchecked(raw) },
        })
    }
}

impl Submission {
    fn notif(&self) -> &Notif {
        // SAFETY: by the type invariant our reference keeps the notif alive.
        unsafe { self.notif.as_ref() }
    }

    /// The `ubuf_info` to put in `msghdr.msg_ubuf`.
    pub(crate) fn as_raw(&self) -> *mut bindings::ubuf_info {
        self.notif().ubuf.get()
    }

    /// The send's payload.
    pub(crate) fn payload(&self) -> &InFlight {
        &self.notif().payload
    }

    /// The send's payload, for the submitter to adjust after `sock_sendmsg`
    /// (release what the stack did not take).
    pub(crate) fn payload_mut(&mut self) -> &mut InFlight {
        // SAFETY: our reference keeps the notif alive (type invariant), and
        // only the submission and the final run touch `payload` (`Notif`
        // invariant); the run cannot start while we hold our reference, and
        // `&mut self` excludes the `bvecs()` borrow a `SendMsg` holds.
        // `payload` is not structurally pinned.
        unsafe { &mut (*self.notif.as_ptr()).payload }
    }

    /// Records what `sock_sendmsg` returned, before the reference goes.
    pub(crate) fn set_result(&self, res: &Result<usize>) {
        let v = match res {
            Ok(n) => *n as i64,
            Err(e) => i64::from(e.to_errno()),
        };
        self.notif().accepted.store(v, Relaxed);
    }

    /// Marks the send copied: some of its bytes went out of another path
    /// than its pinned frags (a fan-out destination that copies).
    pub(crate) fn mark_copied(&self) {
        self.notif().copied.store(true, Relaxed);
    }
}

impl Drop for Submission {
    fn drop(&mut self) {
        // SAFETY: we own one reference on a live notif (type invariant); this
        // gives it up exactly once, as an skb free would.
        if let Some(head) = unsafe { put(self.as_raw(), true) } {
            // No skb kept the data (it was copied, or the send failed): we
            // are in process context, so complete right here rather than
            // wait for the workqueue. The caller's open file keeps the
            // module loaded across the module reference dropped in here.
            Notif::run(head);
        }
    }
}

/// `net_zcopy_get()`: one more reference on `uarg`.
///
/// # Safety
///
/// `uarg` is a live `ubuf_info` on which the caller holds a reference.
unsafe fn net_zcopy_get(uarg: *mut bindings::ubuf_info) {
    // SAFETY: `uarg` is live (function contract).
    unsafe { bindings::refcount_inc(&raw mut (*uarg).refcnt) };
}

/// Drops one reference on `uarg`; returns the chain head when that was the
/// last reference of the whole chain.
///
/// # Safety
///
/// `uarg` is the `ubuf` of a live [`Notif`] and the caller owns one of its
/// references, which this call consumes.
unsafe fn put(uarg: *mut bindings::ubuf_info, zerocopy_success: bool) -> Option<Pin<KBox<Notif>>> {
    let n = uarg.cast::<Notif>();
    // SAFETY: by the function's safety contract `n` is live while we hold
    // our reference.
    let notif = unsafe { &*n };
    if !zerocopy_success {
        notif.copied.store(true, Relaxed);
    }
    // SAFETY: `uarg` is valid and we own one reference.
    if !unsafe { bindings::refcount_dec_and_test(&raw mut (*uarg).refcnt) } {
        return None;
    }
    let head = notif.head.load(Relaxed);
    if head != n {
        // A linked notif holds one reference on its chain head; the head
        // completes the whole chain.
        // SAFETY: `head` is live: our chain reference on it was taken in
        // `link_skb` and is the one we pass on now.
        return unsafe { put((*head).ubuf.get(), zerocopy_success) };
    }
    // SAFETY: the last reference of a chain head: nobody else can reach it,
    // and it came from a `Pin<KBox<Notif>>` (type invariant).
    Some(unsafe { Pin::new_unchecked(KBox::from_raw(n)) })
}

/// `ubuf_info_ops.complete`: one reference on `uarg` is gone.
///
/// # Safety
///
/// `uarg` is the `ubuf` of a live [`Notif`] and the caller owns one of its
/// references, which this call consumes.
unsafe extern "C" fn complete(
    _skb: *mut bindings::sk_buff,
    uarg: *mut bindings::ubuf_info,
    zerocopy_success: bool,
) {
    // SAFETY: same contract as ours. Our reference keeps the module loaded
    // until it is put (the payload holds the file's context, which holds a
    // module reference).
    let Some(head) = (unsafe { put(uarg, zerocopy_success) }) else {
        return;
    };
    // SAFETY: no precondition.
    if unsafe { zcsend_can_complete_inline() } {
        // Process context or softirq: everything the completion does
        // (unpin, uncharge, post into the lock-free ring, signal, wake,
        // free; possibly sleeping in vfree() when preemptible, so outside
        // any RCU read-side section) is allowed here: no hop to a worker.
        Notif::run(head);
        return;
    }
    // Hard IRQ or interrupts off: finish on the workqueue. Module exit
    // waits for a grace period after the last completion work (`wq.rs`),
    // so this function is not unloaded under our feet after it hands the
    // notif to that work.
    let _rcu = kernel::sync::rcu::read_lock();
    // A `Pin<KBox<_>>` work item cannot be queued twice, so this cannot
    // fail: a notif is enqueued once, by its last reference.
    // SAFETY: `head`'s payload holds the file's context, and so a module
    // reference, until its work item has run.
    unsafe { crate::wq::completion_queue() }.enqueue(head);
}

/// `ubuf_info_ops.link_skb`: attach `uarg` to `skb`, sharing it with the
/// notif already there when that is one of ours (after `io_link_skb`).
///
/// # Safety
///
/// Called by the stack under the socket lock with a live `skb` and the
/// `uarg` of the send in progress (a [`Notif`] held by its [`Submission`]).
unsafe extern "C" fn link_skb(
    skb: *mut bindings::sk_buff,
    uarg: *mut bindings::ubuf_info,
) -> c_int {
    let n = uarg.cast::<Notif>();
    // SAFETY: `skb` is live (function contract).
    let prev = unsafe { zcsend_skb_zcopy(skb) };
    if prev.is_null() {
        // SAFETY: `uarg` is live; the new reference is the skb's.
        unsafe {
            net_zcopy_get(uarg);
            zcsend_skb_zcopy_init(skb, uarg);
        }
        return 0;
    }
    if prev == uarg {
        return 0;
    }
    // SAFETY: `n` is live, held by its submission.
    let notif = unsafe { &*n };
    // A notif already in a chain cannot join a second one.
    if notif.solo || notif.head.load(Relaxed) != n || !notif.next.load(Relaxed).is_null() {
        return EEXIST.to_errno();
    }
    // SAFETY: `prev` is the live uarg of `skb`; `ops` is set by its owner.
    if !ptr::eq(unsafe { (*prev).ops }, &OPS.0) {
        return EEXIST.to_errno();
    }
    // SAFETY: `prev` is one of ours (same ops), kept alive by `skb`.
    if unsafe { (*prev.cast::<Notif>()).solo } {
        return EEXIST.to_errno();
    }
    // Only sends of the same open file share a chain (as `io_link_skb`
    // requires the same ring): one file's pins and records never wait on
    // another's skbs, and one file's ioctl never completes another's chain.
    // SAFETY: `prev` is one of ours (same ops), kept alive by `skb`.
    if unsafe { (*prev.cast::<Notif>()).owner } != notif.owner {
        return EEXIST.to_errno();
    }
    // SAFETY: `prev` is one of ours (same ops), so it is a live `Notif`
    // kept alive by `skb`'s reference; we hold the socket lock, which
    // serialises every `link_skb` that could touch these chains.
    unsafe {
        let p = &*prev.cast::<Notif>();
        let head = p.head.load(Relaxed);
        let len = &(*head).chain_len;
        if len.load(Relaxed) >= MAX_CHAIN {
            crate::trace::count(crate::trace::Counter::ChainCapHits, 1);
            return EEXIST.to_errno();
        }
        len.store(len.load(Relaxed) + 1, Relaxed);
        notif.head.store(head, Relaxed);
        notif.next.store(p.next.load(Relaxed), Relaxed);
        notif.linked.store(true, Relaxed);
        p.next.store(n, Relaxed);
        // The chain reference on the head, released when `n` completes.
        net_zcopy_get((*head).ubuf.get());
    }
    0
}

/// `msghdr.sg_from_iter`: attach the send's pinned pages as skb frags.
///
/// # Safety
///
/// Called by `__zerocopy_sg_from_iter` with `from` being the `msg_iter` of the
/// `msghdr` that [`crate::net::SendMsg::zerocopy`] built.
pub(crate) unsafe extern "C" fn sg_from_iter(
    skb: *mut bindings::sk_buff,
    from: *mut bindings::iov_iter,
    length: usize,
) -> c_int {
    // SAFETY: `from` is the `msg_iter` field of a live `msghdr`.
    let msg =
        unsafe { from.byte_sub(offset_of!(bindings::msghdr, msg_iter)) }.cast::<bindings::msghdr>();
    // SAFETY: `msg` is live; its `msg_ubuf` is our notif, held by its
    // submission for the duration of `sock_sendmsg`.
    unsafe {
        let uarg = (*msg).msg_ubuf;
        if !uarg.is_null() && ptr::eq((*uarg).ops, &OPS.0) {
            (*uarg.cast::<Notif>()).frags_attached.store(true, Relaxed);
        }
        zcsend_fill_frags(skb, from, length)
    }
}

impl WorkItem for Notif {
    type Pointer = Pin<KBox<Notif>>;

    /// Completes a chain head and every notif linked to it, in order.
    fn run(head: Pin<KBox<Notif>>) {
        // Any copy anywhere in the chain may have hit any member's bytes
        // (an skb carries the head's uarg for all of them): report it for all.
        let mut copied = false;
        let mut p = head.next.load(Relaxed);
        while !p.is_null() {
            // SAFETY: chain members stay alive until completed below.
            unsafe {
                copied |= (*p).copied.load(Relaxed);
                p = (*p).next.load(Relaxed);
            }
        }
        copied |= head.copied.load(Relaxed);
        let chain_len = head.chain_len.load(Relaxed);

        let mut p = head.next.load(Relaxed);
        head.finish(copied, chain_len);
        while !p.is_null() {
            // SAFETY: a linked member whose own count reached zero, leaked
            // from a `Pin<KBox<Notif>>`; only its head's run reclaims it.
            let member = unsafe { Pin::new_unchecked(KBox::from_raw(p)) };
            p = member.next.load(Relaxed);
            member.finish(copied, chain_len);
        }
    }
}

impl Notif {
    fn finish(self: Pin<KBox<Self>>, chain_copied: bool, chain_len: u32) {
        let copied =
            chain_copied || self.copied.load(Relaxed) || !self.frags_attached.load(Relaxed);
        let accepted = self.accepted.load(Relaxed);
        let linked = self.linked.load(Relaxed);
        // SAFETY: `payload` is not structurally pinned; we own the box.
        let this = unsafe { Pin::into_inner_unchecked(self) };
        let Notif { payload, .. } = KBox::into_inner(this);
        payload.finish(accepted, copied, linked, chain_len);
    }
}
