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
//! - The last reference completes the chain (`Notif::run`) right there in
//!   process context or softirq, or on zcsend's own workqueue from hard IRQ;
//!   each member's [`Payload`] is handed back with its [`Outcome`]. Module
//!   exit destroys that workqueue, so no completion work runs after the
//!   module's code is gone.
//!
//! The notifier owns its payload opaquely (a [`Payload`]): this file knows
//! nothing of what a send pins or where its record goes.

use core::mem::offset_of;
use core::ptr::{
    self,
    NonNull, //
};

use crate::atomic::{
    self,
    Acquire,
    Atomic,
    Relaxed,
    Release, //
};
use kernel::bindings;
use kernel::prelude::*;
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
    zcsend_skb_zcopy_attach, //
};
use crate::trace::Stage;

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

/// What a notifier carries for its send: handed back, once, when no skb
/// refers to the send's pages any more. The notifier knows nothing else of
/// it (the logic above implements this; `send::InFlight` does).
///
/// A payload lives in its notifier as long as the notifier does, across
/// the sends that reuse it, and never moves: each send fills it in place
/// (the `fill` of [`Notif::submit`]) and [`Payload::end`] empties it in
/// place. Under QEMU TCG a move of a few hundred bytes costs a send
/// ~0.3 us, and a payload that keeps a send's pages inline is that big.
pub(crate) trait Payload: Default + Send + Sync + Sized + 'static {
    /// What [`Payload::finish`] needs once the payload is emptied.
    type Rest;

    /// The send is over: take out what the completion needs and release
    /// everything else the payload holds (unpin its pages), leaving it
    /// empty for the next send. Called once per filled payload, in process
    /// context or softirq; also after a `fill` that failed.
    fn end(&mut self) -> Self::Rest;

    /// Then, with the payload emptied: `notif` is the emptied notifier: put
    /// it back in its file's [`NotifCache`] for the next send, or drop it
    /// to free it. `inline` when the send completes inside its submitter's
    /// system call ([`Submission::complete_in`]): the notifier may go to
    /// its `spare` instead, and work left for the end of the call is noted
    /// in `owed`.
    fn finish(
        rest: Self::Rest,
        outcome: Outcome,
        notif: Recycle<Self>,
        inline: Option<&mut Inline<Self>>,
    );
}

/// What a submitter keeps across the sends of one system call, for those
/// that complete inside it (the stack let go of their pages before
/// `sock_sendmsg` returned: a datagram sent out at once).
pub(crate) struct Inline<P: Payload> {
    /// A notifier one of its sends released, for its next send: taken and
    /// given back without the cache's atomics.
    pub(crate) spare: Option<Recycle<P>>,
    /// Work a completion left for the end of the call (the payload's).
    pub(crate) owed: bool,
}

impl<P: Payload> Default for Inline<P> {
    fn default() -> Self {
        Self {
            spare: None,
            owed: false,
        }
    }
}

/// How a send ended, as its notifier saw it.
pub(crate) struct Outcome {
    /// What `sock_sendmsg` returned (bytes, or a negative errno).
    pub(crate) accepted: i64,
    /// Some of the bytes were copied (or never attached as frags).
    pub(crate) copied: bool,
    /// The send joined an earlier send's chain.
    pub(crate) linked: bool,
    /// Sends its chain completed together.
    pub(crate) chain_len: u32,
}

/// The part of a notifier the stack's callbacks work on, whatever its
/// payload: the `ubuf_info` plus the chain and the outcome.
///
/// # Invariants
///
/// - `ubuf` is the first field of `Header`, and `Header` the first field of
///   [`Notif<P>`] (both `#[repr(C)]`), so a `*mut ubuf_info` whose `ops` is
///   `&OPS` points at a `Header` at the start of some `Notif<P>`, and
///   `run_chain` is `run_chain::<P>` for that same `P`.
/// - Once submitted, a notif is owned by its references (`ubuf.refcnt`): it
///   was leaked from a `Pin<KBox<Notif<P>>>` and is turned back into one
///   exactly once, when the last reference of its chain head goes.
/// - `head` points at the chain head (itself when not linked); `next` at the
///   next member of the head's chain, or is null; the head's `chain_len`
///   counts its members, itself included, at most [`MAX_CHAIN`]. All three
///   only change in [`link_skb`] under the socket lock, before the head can
///   complete. Every member of a chain has the same `owner` and the same
///   `run_chain` (so the same payload type).
#[repr(C)]
struct Header {
    ubuf: Opaque<bindings::ubuf_info>,
    head: Atomic<*mut Header>,
    next: Atomic<*mut Header>,
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
    /// Completes the chain this header heads: `run_chain::<P>`.
    run_chain: unsafe fn(*mut Header, bool),
}

/// One send's notifier: the [`Header`] the stack's callbacks see, and the
/// send's payload.
///
/// # Invariants
///
/// `hdr` is the first field (`#[repr(C)]`; see [`Header`]). `payload` is
/// filled from submission until the chain head's final run empties it
/// ([`Payload::end`]; a cached notif holds an empty one), and accessed only
/// through the [`Submission`] (while it lives) and by that run (after the
/// last reference).
#[repr(C)]
#[pin_data]
pub(crate) struct Notif<P: Payload> {
    hdr: Header,
    #[pin]
    work: Work<Notif<P>>,
    payload: P,
}

// SAFETY: a `Notif` is handed between the submitting task, softirq/IRQ
// completions and the completion work; every field shared among them is an
// atomic or the `ubuf_info`, which the stack accesses with its own atomics;
// `payload` (`Send + Sync`) is only touched by the submitter (filling it
// before anything else can see the notif, then read-only) and by the final
// run, after the last reference.
unsafe impl<P: Payload> Send for Notif<P> {}
// SAFETY: see `Send`; `&Notif` only allows atomic access and reads.
unsafe impl<P: Payload> Sync for Notif<P> {}

impl_has_work! {
    impl{P: Payload} HasWork<Self> for Notif<P> { self.work }
}

/// The submitter's reference on a [`Notif`], held across `sock_sendmsg`.
///
/// # Invariants
///
/// `notif` points at a live, leaked `Notif` on which this value owns one
/// reference (`ubuf.refcnt`); dropping it releases that reference.
pub(crate) struct Submission<P: Payload> {
    notif: NonNull<Notif<P>>,
}

// SAFETY: the submitter's reference may be dropped from any thread; the
// shared fields are atomics and `payload` is only read through `&`.
unsafe impl<P: Payload> Send for Submission<P> {}

/// The header of a fresh submission: one reference (the submitter's), not
/// in a chain. `head` is set by the caller, once the address is known.
fn new_header<P: Payload>(owner: usize, solo: bool) -> Header {
    Header {
        ubuf: Opaque::new(bindings::ubuf_info {
            ops: &OPS.0,
            // The submitter's reference (`REFCOUNT_INIT(1)`, written out:
            // the binding is a C helper called out of line).
            refcnt: bindings::refcount_t {
                refs: bindings::atomic_t { counter: 1 },
            },
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
        run_chain: run_chain::<P>,
    }
}

/// Notifiers a file keeps for reuse: no allocation per send in the steady
/// state (after io_uring's notif cache). Lock-free, usable from any
/// context: a bounded multi-producer multi-consumer queue (D. Vyukov's),
/// so taking and giving back cost one compare-exchange each whatever the
/// number of slots, and a TCP sender with many sends in flight, whose
/// notifiers come back in bursts as ACKs arrive, finds them here instead of
/// allocating. A take that finds none (or a slot still being filled)
/// allocates; a give-back that finds no room frees.
///
/// # Invariants
///
/// - `slots[i].seq` starts at `i`. A slot whose `seq == pos + 1` holds, in
///   `item`, an emptied notif (payload empty, nothing referring to it)
///   leaked from a `Pin<KBox<Notif<P>>>`, owned by the cache, for the take
///   at position `pos`; one whose `seq == pos` is free for the give-back at
///   position `pos`.
/// - `head <= tail`: positions `head..tail` were claimed by give-backs and
///   not yet taken.
pub(crate) struct NotifCache<P: Payload> {
    head: Atomic<u64>,
    tail: Atomic<u64>,
    slots: [CacheSlot<P>; NOTIF_CACHE_SLOTS],
}

struct CacheSlot<P: Payload> {
    seq: Atomic<u64>,
    item: Atomic<*mut Notif<P>>,
}

/// Notifiers kept per file: enough for the sends of a busy TCP socket in
/// flight; beyond it they are freed and allocated again. A power of two.
const NOTIF_CACHE_SLOTS: usize = 128;
const _: () = assert!(NOTIF_CACHE_SLOTS.is_power_of_two());

// SAFETY: the slots are atomics; the notifs they own are `Send`.
unsafe impl<P: Payload> Send for NotifCache<P> {}
// SAFETY: as above; shared access only moves notifs through the atomics.
unsafe impl<P: Payload> Sync for NotifCache<P> {}

impl<P: Payload> NotifCache<P> {
    pub(crate) const fn new() -> Self {
        let mut slots = [const {
            CacheSlot {
                seq: Atomic::new(0),
                item: Atomic::new(ptr::null_mut()),
            }
        }; NOTIF_CACHE_SLOTS];
        let mut i = 0;
        while i < NOTIF_CACHE_SLOTS {
            slots[i].seq = Atomic::new(i as u64);
            i += 1;
        }
        // INVARIANT: every slot free for the give-back at its own index.
        Self {
            head: Atomic::new(0),
            tail: Atomic::new(0),
            slots,
        }
    }

    fn slot(&self, pos: u64) -> &CacheSlot<P> {
        &self.slots[pos as usize & (NOTIF_CACHE_SLOTS - 1)]
    }

    /// An emptied notif, if one is cached.
    fn take(&self) -> Option<NonNull<Notif<P>>> {
        let mut pos = self.head.load(Relaxed);
        loop {
            let s = self.slot(pos);
            // Acquire: the give-back's writes to the notif are seen.
            let seq = s.seq.load(Acquire);
            match (seq as i64).wrapping_sub(pos as i64 + 1) {
                0 => match self.head.cmpxchg(pos, pos + 1, Relaxed) {
                    Ok(_) => {
                        let n = s.item.load(Relaxed);
                        // The slot is free for the give-back one lap on.
                        s.seq.store(pos + NOTIF_CACHE_SLOTS as u64, Release);
                        return NonNull::new(n);
                    }
                    Err(now) => pos = now,
                },
                // Not filled yet: empty (or being filled: allocate).
                d if d < 0 => return None,
                _ => pos = self.head.load(Relaxed),
            }
        }
    }

    /// Keeps `notif` for the next send, or frees it when there is no room.
    pub(crate) fn put(&self, notif: Recycle<P>) {
        // SAFETY: `Recycle` owns an emptied notif; a slot takes over that
        // ownership (type invariant) or we give it back to the box.
        let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(notif.into_box()) });
        let mut pos = self.tail.load(Relaxed);
        loop {
            let s = self.slot(pos);
            let seq = s.seq.load(Acquire);
            match (seq as i64).wrapping_sub(pos as i64) {
                0 => match self.tail.cmpxchg(pos, pos + 1, Relaxed) {
                    Ok(_) => {
                        s.item.store(raw, Relaxed);
                        // INVARIANT: published for the take at `pos`;
                        // release: the notif's emptied state goes with it.
                        s.seq.store(pos + 1, Release);
                        return;
                    }
                    Err(now) => pos = now,
                },
                // Still holding a notif from a lap ago: full.
                d if d < 0 => break,
                _ => pos = self.tail.load(Relaxed),
            }
        }
        // SAFETY: `raw` came from `KBox::into_raw` just above and was not
        // stored anywhere.
        drop(unsafe { KBox::from_raw(raw) });
    }
}

impl<P: Payload> Drop for NotifCache<P> {
    fn drop(&mut self) {
        while let Some(n) = self.take() {
            // SAFETY: an emptied notif the cache owned (type invariant); its
            // payload is empty, so nothing but memory is freed.
            drop(unsafe { KBox::from_raw(n.as_ptr()) });
        }
    }
}

/// An emptied notifier (its payload ended), handed to
/// [`Payload::finish`]: into a [`NotifCache`], or freed when dropped.
///
/// # Invariants
///
/// Owns a notif nothing else refers to, whose payload is empty.
pub(crate) struct Recycle<P: Payload>(Pin<KBox<Notif<P>>>);

impl<P: Payload> Recycle<P> {
    fn into_box(self) -> Pin<KBox<Notif<P>>> {
        self.0
    }
}

impl<P: Payload> Notif<P> {
    /// Returns the submitter's reference on a notifier whose payload `fill`
    /// filled in place (one from `cache` when it has one, else a new one),
    /// sent on behalf of the file identified by `owner`. A `solo` notif never
    /// shares a chain (fan-out). If `fill` fails, whatever it put in the
    /// payload is released ([`Payload::end`]) and the notifier goes back to
    /// `cache`.
    pub(crate) fn submit(
        owner: usize,
        solo: bool,
        cache: &NotifCache<P>,
        fill: impl FnOnce(&mut P) -> Result,
    ) -> Result<Submission<P>> {
        Self::submit_from(owner, solo, cache, None, fill)
    }

    /// As [`Self::submit`], taking `spare`'s notifier first when it has one.
    pub(crate) fn submit_from(
        owner: usize,
        solo: bool,
        cache: &NotifCache<P>,
        spare: Option<&mut Option<Recycle<P>>>,
        fill: impl FnOnce(&mut P) -> Result,
    ) -> Result<Submission<P>> {
        let raw = match spare.and_then(Option::take) {
            Some(n) => KBox::into_raw(
                // SAFETY: a `Recycle` owns an emptied notif nothing else
                // refers to (type invariant). Leaked here as the cache
                // leaks the ones it keeps; turned back into a box after
                // its last reference (`run_chain`), as theirs are.
                unsafe { Pin::into_inner_unchecked(n.into_box()) },
            ),
            None => match cache.take() {
                Some(n) => n.as_ptr(),
                None => Self::alloc()?,
            },
        };
        // SAFETY: an emptied notif the cache owned and handed to us, or a new
        // one: nothing else refers to it. `payload` is not structurally
        // pinned.
        let payload = unsafe { &mut (*raw).payload };
        if let Err(e) = fill(payload) {
            drop(payload.end());
            // SAFETY: `raw` came from a `Pin<KBox<_>>` (cache invariant, or
            // `alloc`), nothing refers to it and its payload is empty.
            cache.put(Recycle(unsafe { Pin::new_unchecked(KBox::from_raw(raw)) }));
            return Err(e);
        }
        // SAFETY: as above. The header is rewritten as a fresh one; the work
        // item has run (or never was queued) and can be queued again.
        unsafe {
            ptr::write(&raw mut (*raw).hdr, new_header::<P>(owner, solo));
            (*raw).hdr.head.store(raw.cast::<Header>(), Relaxed);
        }
        // INVARIANT: the refcount of 1 is the submitter's; the payload is
        // filled.
        Ok(Submission {
            // SAFETY: never null (a cached `NonNull`, or `KBox::into_raw`).
            notif: unsafe { NonNull::new_unchecked(raw) },
        })
    }

    /// A new emptied notif (its header is written by [`Self::submit`]).
    fn alloc() -> Result<*mut Self> {
        let boxed = KBox::pin_init(
            pin_init!(Notif {
                hdr: new_header::<P>(0, false),
                work <- new_work!("zcsend::Notif::work"),
                payload: P::default(),
            }),
            GFP_KERNEL_ACCOUNT,
        )?;
        // SAFETY: the notif is never moved out of its box; it is turned back
        // into a `Pin<KBox<_>>` in `run_chain`, after its last reference.
        Ok(KBox::into_raw(unsafe { Pin::into_inner_unchecked(boxed) }))
    }
}

impl<P: Payload> Submission<P> {
    fn notif(&self) -> &Notif<P> {
        // SAFETY: by the type invariant our reference keeps the notif alive.
        unsafe { self.notif.as_ref() }
    }

    /// The `ubuf_info` to put in `msghdr.msg_ubuf`.
    pub(crate) fn as_raw(&self) -> *mut bindings::ubuf_info {
        self.notif().hdr.ubuf.get()
    }

    /// The send's payload.
    pub(crate) fn payload(&self) -> &P {
        &self.notif().payload
    }

    /// The send's payload, for the submitter to adjust after `sock_sendmsg`
    /// (release what the stack did not take).
    pub(crate) fn payload_mut(&mut self) -> &mut P {
        // SAFETY: our reference keeps the notif alive (type invariant), and
        // only the submission and the final run touch `payload` (`Notif`
        // invariant); the run cannot start while we hold our reference, and
        // `&mut self` excludes the `payload()` borrow a `SendMsg` holds.
        // `payload` is not structurally pinned.
        unsafe { &mut (*self.notif.as_ptr()).payload }
    }

    /// Records what `sock_sendmsg` returned, before the reference goes.
    pub(crate) fn set_result(&self, res: &Result<usize>) {
        let v = match res {
            Ok(n) => *n as i64,
            Err(e) => i64::from(e.to_errno()),
        };
        self.notif().hdr.accepted.store(v, Relaxed);
    }

    /// Marks the send copied: some of its bytes went out of another path
    /// than its pinned frags (a fan-out destination that copies).
    pub(crate) fn mark_copied(&self) {
        self.notif().hdr.copied.store(true, Relaxed);
    }
}

impl<P: Payload> Submission<P> {
    /// Gives up the submitter's reference, as dropping it does; a send
    /// that completes right here hands its payload `inline`
    /// ([`Payload::finish`]).
    pub(crate) fn complete_in(self, inline: &mut Inline<P>) {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: we own one reference on a live notif (type invariant);
        // this gives it up exactly once (`this` is not dropped), as an skb
        // free would.
        if let Some(head) = unsafe { put(this.as_raw(), true) } {
            // SAFETY: as in `drop`: a chain head whose last reference we
            // own, in process context; `run_chain` is `run_chain::<P>`
            // for the notif's payload type (`Header` invariant), whose
            // `Notif<P>` it reclaims.
            unsafe { run_chain_in::<P>(head, Some(inline)) };
        }
    }
}

impl<P: Payload> Drop for Submission<P> {
    fn drop(&mut self) {
        // SAFETY: we own one reference on a live notif (type invariant); this
        // gives it up exactly once, as an skb free would.
        if let Some(head) = unsafe { put(self.as_raw(), true) } {
            // No skb kept the data (it was copied, or the send failed): we
            // are in process context, so complete right here rather than
            // wait for the workqueue. The caller's open file keeps the
            // module loaded across the references dropped in here.
            // SAFETY: `head` is a chain head whose last reference we own
            // (`put`); `run_chain` matches its payload type (invariant).
            unsafe { ((*head).run_chain)(head, true) };
        }
    }
}

/// Completes the chain headed by `head` right here, handing its payloads
/// `inline`.
///
/// # Safety
///
/// As [`run_chain`] with `inline` true; `head` is the header of a
/// `Notif<P>` (whose chain holds `P`s only).
unsafe fn run_chain_in<P: Payload>(head: *mut Header, inline: Option<&mut Inline<P>>) {
    // SAFETY: nobody else can reach the chain any more, and `head` came from
    // a `Pin<KBox<Notif<P>>>` (function contract, `Header` invariant).
    let head = unsafe { Pin::new_unchecked(KBox::from_raw(head.cast::<Notif<P>>())) };
    Notif::run_in(head, inline);
}

/// The `refcount_t` of `uarg` as the atomic it is.
///
/// # Safety
///
/// `uarg` is a live `ubuf_info` for `'a`.
unsafe fn refs<'a>(uarg: *mut bindings::ubuf_info) -> &'a Atomic<i32> {
    // SAFETY: `refcnt.refs.counter` is valid while `uarg` lives (function
    // contract) and, as a `refcount_t`, only ever accessed atomically.
    unsafe { Atomic::from_ptr(&raw mut (*uarg).refcnt.refs.counter) }
}

/// `net_zcopy_get()`: one more reference on `uarg`. `refcount_inc()`
/// written out (the binding is a C helper called out of line): a relaxed
/// increment, and the C side's warning and saturation on a count that was
/// zero or overflows.
///
/// # Safety
///
/// `uarg` is a live `ubuf_info` on which the caller holds a reference.
unsafe fn net_zcopy_get(uarg: *mut bindings::ubuf_info) {
    // SAFETY: `uarg` is live (function contract).
    let old = unsafe { refs(uarg) }.fetch_add(1, Relaxed);
    if old <= 0 || old == i32::MAX {
        let t = if old == 0 {
            bindings::refcount_saturation_type_REFCOUNT_ADD_UAF
        } else {
            bindings::refcount_saturation_type_REFCOUNT_ADD_OVF
        };
        // SAFETY: `uarg` is live; the C function saturates the count.
        unsafe { bindings::refcount_warn_saturate(&raw mut (*uarg).refcnt, t) };
    }
}

/// `refcount_dec_and_test()` on `uarg`, written out as
/// `__refcount_sub_and_test()` is (the binding is a C helper called out of
/// line): a release decrement; acquire ordering when it was the last
/// reference; the C side's warning and saturation on underflow.
///
/// # Safety
///
/// `uarg` is a live `ubuf_info` and the caller owns one of its references,
/// which this call gives up.
unsafe fn refcount_put(uarg: *mut bindings::ubuf_info) -> bool {
    // SAFETY: `uarg` is live (function contract).
    let old = unsafe { refs(uarg) }.fetch_sub(1, Release);
    if old == 1 {
        // `smp_acquire__after_ctrl_dep()`: whoever frees the notif sees
        // every access made under the other references.
        atomic::acquire_fence();
        return true;
    }
    if old <= 0 {
        // SAFETY: `uarg` is live; the C function saturates the count.
        unsafe {
            bindings::refcount_warn_saturate(
                &raw mut (*uarg).refcnt,
                bindings::refcount_saturation_type_REFCOUNT_SUB_UAF,
            )
        };
    }
    false
}

/// Drops one reference on `uarg`; returns the chain head, and with it the
/// ownership of the whole chain, when that was the chain's last reference.
///
/// # Safety
///
/// `uarg` is the `ubuf` of a live notif [`Header`] and the caller owns one of
/// its references, which this call consumes.
unsafe fn put(uarg: *mut bindings::ubuf_info, zerocopy_success: bool) -> Option<*mut Header> {
    let n = uarg.cast::<Header>();
    // SAFETY: by the function's safety contract `n` is live while we hold
    // our reference.
    let hdr = unsafe { &*n };
    if !zerocopy_success {
        hdr.copied.store(true, Relaxed);
    }
    // SAFETY: `uarg` is valid and we own one reference.
    if !unsafe { refcount_put(uarg) } {
        return None;
    }
    let head = hdr.head.load(Relaxed);
    if head != n {
        // A linked notif holds one reference on its chain head; the head
        // completes the whole chain.
        // SAFETY: `head` is live: our chain reference on it was taken in
        // `link_skb` and is the one we pass on now.
        return unsafe { put((*head).ubuf.get(), zerocopy_success) };
    }
    Some(n)
}

/// Completes the chain headed by `head`: right here when `inline`, else on
/// the completion workqueue.
///
/// # Safety
///
/// `head` is the [`Header`] of a chain head, at the start of a
/// `Notif<P>` leaked from a `Pin<KBox<_>>`, whose last reference (and so
/// the whole chain) the caller owns and gives up. Unless `inline`, the
/// caller holds no lock and may be in hard IRQ.
unsafe fn run_chain<P: Payload>(head: *mut Header, inline: bool) {
    if inline {
        // SAFETY: the function's contract, `inline` true.
        unsafe { run_chain_in::<P>(head, None) };
        return;
    }
    // SAFETY: nobody else can reach the chain any more, and `head` came from
    // a `Pin<KBox<Notif<P>>>` (function contract, `Header` invariant).
    let head = unsafe { Pin::new_unchecked(KBox::from_raw(head.cast::<Notif<P>>())) };
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

/// `ubuf_info_ops.complete`: one reference on `uarg` is gone.
///
/// # Safety
///
/// `uarg` is the `ubuf` of a live notif [`Header`] and the caller owns one of
/// its references, which this call consumes.
unsafe extern "C" fn complete(
    _skb: *mut bindings::sk_buff,
    uarg: *mut bindings::ubuf_info,
    zerocopy_success: bool,
) {
    // The stage profile's span (`ZCSEND_STAGES=1` builds only: it is
    // charged after the chain ran, when only a grace period or the module's
    // in-flight count keeps this code loaded, as for the return itself).
    let span = crate::trace::span();
    // SAFETY: same contract as ours. Our reference keeps the module loaded
    // until it is put (the payload holds the file's context, which holds a
    // module reference).
    let Some(head) = (unsafe { put(uarg, zerocopy_success) }) else {
        return;
    };
    // Process context or softirq: everything the completion does (unpin,
    // uncharge, post into the lock-free ring, signal, wake, free; possibly
    // sleeping in vfree() when preemptible, so outside any RCU read-side
    // section) is allowed here: no hop to a worker.
    // SAFETY: no precondition.
    let inline = unsafe { zcsend_can_complete_inline() };
    // SAFETY: we own the chain's last reference (`put`); `run_chain` matches
    // the head's payload type (`Header` invariant).
    unsafe { ((*head).run_chain)(head, inline) };
    span.end_by_context(Stage::ChainTask, Stage::ChainSoftirq);
}

/// `ubuf_info_ops.link_skb`: attach `uarg` to `skb`, sharing it with the
/// notif already there when that is one of ours (after `io_link_skb`).
///
/// # Safety
///
/// Called by the stack under the socket lock with a live `skb` and the
/// `uarg` of the send in progress (a notif held by its [`Submission`]).
unsafe extern "C" fn link_skb(
    skb: *mut bindings::sk_buff,
    uarg: *mut bindings::ubuf_info,
) -> c_int {
    let n = uarg.cast::<Header>();
    // SAFETY: `skb` and `uarg` are live (function contract); if the skb had
    // no notifier, the new reference on `uarg` is the skb's.
    let prev = unsafe { zcsend_skb_zcopy_attach(skb, uarg) };
    if prev.is_null() || prev == uarg {
        return 0;
    }
    // SAFETY: `n` is live, held by its submission.
    let hdr = unsafe { &*n };
    // A notif already in a chain cannot join a second one.
    if hdr.solo || hdr.head.load(Relaxed) != n || !hdr.next.load(Relaxed).is_null() {
        return EEXIST.to_errno();
    }
    // SAFETY: `prev` is the live uarg of `skb`; `ops` is set by its owner.
    if !ptr::eq(unsafe { (*prev).ops }, &OPS.0) {
        return EEXIST.to_errno();
    }
    // SAFETY: `prev` is one of ours (same ops), a live `Header` kept alive
    // by `skb`.
    let p = unsafe { &*prev.cast::<Header>() };
    // Only sends of the same open file share a chain (as `io_link_skb`
    // requires the same ring): one file's pins and records never wait on
    // another's skbs, and one file's ioctl never completes another's chain.
    // A chain holds one payload type (compared by its completion function:
    // a mismatch only refuses to link).
    if p.solo || p.owner != hdr.owner || p.run_chain as usize != hdr.run_chain as usize {
        return EEXIST.to_errno();
    }
    // SAFETY: `p`'s head is live (it holds `p`'s chain reference, or is
    // `p`); we hold the socket lock, which serialises every `link_skb` that
    // could touch these chains.
    unsafe {
        let head = p.head.load(Relaxed);
        let len = &(*head).chain_len;
        if len.load(Relaxed) >= MAX_CHAIN {
            crate::trace::count(crate::trace::Counter::ChainCapHits, 1);
            return EEXIST.to_errno();
        }
        len.store(len.load(Relaxed) + 1, Relaxed);
        hdr.head.store(head, Relaxed);
        hdr.next.store(p.next.load(Relaxed), Relaxed);
        hdr.linked.store(true, Relaxed);
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
/// `msghdr` that [`crate::net::SendMsg::zerocopy`] set up (or
/// [`crate::net::SendMsg::again_in`] copied from one), the `raw` field of a
/// live `SendMsg`: only those install this function.
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
            (*uarg.cast::<Header>()).frags_attached.store(true, Relaxed);
        }
        // `msg` is the `raw` field of that `SendMsg`.
        zcsend_fill_frags(skb, from, length, crate::net::frags_of(msg))
    }
}

impl<P: Payload> WorkItem for Notif<P> {
    type Pointer = Pin<KBox<Notif<P>>>;

    /// Completes a chain head and every notif linked to it, in order.
    fn run(head: Pin<KBox<Notif<P>>>) {
        Notif::run_in(head, None);
    }
}

impl<P: Payload> Notif<P> {
    /// [`WorkItem::run`], handing the payloads `inline` when the chain
    /// completes inside its submitter's call.
    fn run_in(head: Pin<KBox<Notif<P>>>, mut inline: Option<&mut Inline<P>>) {
        // Any copy anywhere in the chain may have hit any member's bytes
        // (an skb carries the head's uarg for all of them): report it for all.
        let mut copied = false;
        let mut p = head.hdr.next.load(Relaxed);
        while !p.is_null() {
            // SAFETY: chain members stay alive until completed below.
            unsafe {
                copied |= (*p).copied.load(Relaxed);
                p = (*p).next.load(Relaxed);
            }
        }
        copied |= head.hdr.copied.load(Relaxed);
        let chain_len = head.hdr.chain_len.load(Relaxed);

        let mut p = head.hdr.next.load(Relaxed);
        head.finish(copied, chain_len, inline.as_deref_mut());
        while !p.is_null() {
            // SAFETY: a linked member whose own count reached zero, leaked
            // from a `Pin<KBox<Notif<P>>>` (same payload type as its head,
            // `Header` invariant); only its head's run reclaims it.
            let member = unsafe { Pin::new_unchecked(KBox::from_raw(p.cast::<Notif<P>>())) };
            p = member.hdr.next.load(Relaxed);
            member.finish(copied, chain_len, inline.as_deref_mut());
        }
    }

    #[inline(always)]
    fn finish(
        self: Pin<KBox<Self>>,
        chain_copied: bool,
        chain_len: u32,
        inline: Option<&mut Inline<P>>,
    ) {
        let h = &self.hdr;
        let copied = chain_copied || h.copied.load(Relaxed) || !h.frags_attached.load(Relaxed);
        let outcome = Outcome {
            accepted: h.accepted.load(Relaxed),
            copied,
            linked: h.linked.load(Relaxed),
            chain_len,
        };
        let mut this = self;
        // SAFETY: the last run of this notif: nothing else refers to it.
        // `payload` is not structurally pinned.
        let rest = unsafe { this.as_mut().get_unchecked_mut() }.payload.end();
        // INVARIANT: nothing refers to the notif any more; payload emptied.
        P::finish(rest, outcome, Recycle(this), inline);
    }
}

#[kunit_tests(zcsend_notif_cache)]
mod tests {
    use super::*;

    /// A payload that holds nothing.
    #[derive(Default)]
    struct Empty;

    impl Payload for Empty {
        type Rest = ();
        fn end(&mut self) {}
        fn finish((): (), _: Outcome, notif: Recycle<Self>, _: Option<&mut Inline<Self>>) {
            drop(notif);
        }
    }

    /// A new emptied notifier, as a completion hands it back.
    fn fresh() -> Result<(Recycle<Empty>, *mut Notif<Empty>)> {
        let raw = Notif::<Empty>::alloc()?;
        // SAFETY: a new notif from `alloc`, leaked from a `Pin<KBox<_>>`,
        // referred to by nothing; its payload is empty.
        let notif = unsafe { Pin::new_unchecked(KBox::from_raw(raw)) };
        Ok((Recycle(notif), raw))
    }

    /// Frees a notifier taken from the cache.
    fn free(n: NonNull<Notif<Empty>>) {
        // SAFETY: the cache gave up its ownership of this emptied notif.
        drop(unsafe { KBox::from_raw(n.as_ptr()) });
    }

    #[test]
    fn fifo_full_and_empty() -> Result {
        let cache = KBox::new(NotifCache::<Empty>::new(), GFP_KERNEL)?;
        assert!(cache.take().is_none());
        let mut put = KVVec::new();
        for _ in 0..NOTIF_CACHE_SLOTS {
            let (n, raw) = fresh()?;
            cache.put(n);
            put.push(raw, GFP_KERNEL)?;
        }
        // No room: this one is freed, not kept.
        let (extra, _) = fresh()?;
        cache.put(extra);
        for raw in put.iter() {
            let n = cache.take().ok_or(EINVAL)?;
            assert_eq!(n.as_ptr(), *raw);
            free(n);
        }
        assert!(cache.take().is_none());
        Ok(())
    }

    #[test]
    fn laps_keep_order_and_drop_frees() -> Result {
        let cache = KBox::new(NotifCache::<Empty>::new(), GFP_KERNEL)?;
        // Positions run past the slot count several times.
        for _ in 0..5 {
            let mut put = KVVec::new();
            for _ in 0..NOTIF_CACHE_SLOTS - 28 {
                let (n, raw) = fresh()?;
                cache.put(n);
                put.push(raw, GFP_KERNEL)?;
            }
            for raw in put.iter() {
                let n = cache.take().ok_or(EINVAL)?;
                assert_eq!(n.as_ptr(), *raw);
                free(n);
            }
            assert!(cache.take().is_none());
        }
        // Whatever is cached when the cache goes is freed with it.
        for _ in 0..3 {
            cache.put(fresh()?.0);
        }
        drop(cache);
        Ok(())
    }
}
