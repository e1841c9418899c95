// SPDX-License-Identifier: GPL-2.0

//! Watching zcsend: its tracepoints (`zcsend:zcsend_send`,
//! `zcsend:zcsend_complete`, `zcsend:zcsend_register`,
//! `zcsend:zcsend_fanout`, defined in C in `rust/zcsend_trace.h`) and its
//! module-wide counters in `/sys/kernel/debug/zcsend/stats`, both in
//! `rust/trace.c`. Safe wrappers: every C function here takes plain values.

#[cfg(CONFIG_TRACEPOINTS)]
use crate::ffi::__tracepoint_zcsend_send;
use crate::ffi::{
    zcsend_count,
    zcsend_debugfs_exit,
    zcsend_debugfs_init,
    zcsend_note_post,
    zcsend_note_reserve,
    zcsend_trace_fanout,
    zcsend_trace_register,
    zcsend_trace_send, //
};
use crate::uapi::{
    ZcsendCompletion,
    ZCSEND_COMPL_ZEROCOPY, //
};
use kernel::prelude::*;

/// A module-wide counter; the order is `enum zcsend_counter`'s (`shim.h`).
/// The ones a completion moves are counted in C, by [`posted`].
#[derive(Clone, Copy)]
#[allow(dead_code)]
#[repr(u32)]
pub(crate) enum Counter {
    Sends = 0,
    Bytes,
    Zerocopy,
    Copied,
    FallbackThreshold,
    FallbackFragLimit,
    FallbackSocket,
    PinnedPages,
    Inflight,
    ChainCapHits,
    Linked,
    Fanouts,
    FanoutDests,
    RegisteredPages,
    FallbackLocal,
}

/// Adds `delta` to counter `c` (per CPU: no shared cache line).
#[inline]
pub(crate) fn count(c: Counter, delta: i64) {
    // SAFETY: plain values; `c` is in range of the C table.
    unsafe { zcsend_count(c as c_uint, delta) };
}

/// A stage of a send, as `/sys/kernel/debug/zcsend/stages` shows it; the
/// order is `enum zcsend_stage`'s (`shim.h`).
#[derive(Clone, Copy)]
#[repr(u32)]
pub(crate) enum Stage {
    /// From the ioctl's entry to the first send (the request read).
    Entry = 0,
    /// The iovecs or registered ranges read and resolved (in a batch, with
    /// the loop from the previous send).
    Resolve,
    /// The socket looked up (or taken from the batch's cache), the address.
    Socket,
    /// The completion slot reserved.
    Reserve,
    /// Plain sends: the notifier taken and the pages charged and pinned
    /// into its payload; registered sends: the copy-path checks.
    Pin,
    /// Registered sends: the notifier taken, the send counted as one from
    /// registered buffers, its payload filled.
    Notif,
    /// The `msghdr` built.
    Msghdr,
    /// `sock_sendmsg` (the stack, our callbacks, backlog processing).
    Sendmsg,
    /// The result recorded, the `zcsend_send` event.
    Result,
    /// The submitter's reference dropped (an inline completion included).
    Release,
    /// A notifier chain completed in task context (span).
    ChainTask,
    /// A notifier chain completed in softirq (span).
    ChainSoftirq,
    /// One record posted: recycle, counters, ring, wake (span).
    Post,
}

/// The stage profile of one ioctl: each [`Self::mark`] charges the time since
/// the previous mark to a stage. Only in a module built with
/// `ZCSEND_STAGES=1` (`--cfg zcsend_stages`); otherwise every method is an
/// empty inline function.
pub(crate) struct Stages {
    #[cfg(zcsend_stages)]
    last: u64,
}

impl Stages {
    /// Starts the clock.
    #[inline(always)]
    pub(crate) fn new() -> Self {
        Self {
            #[cfg(zcsend_stages)]
            last: now(),
        }
    }

    /// Charges the time since the previous mark to `s`.
    #[inline(always)]
    pub(crate) fn mark(&mut self, _s: Stage) {
        #[cfg(zcsend_stages)]
        {
            let t = now();
            add(_s, t.wrapping_sub(self.last));
            self.last = t;
        }
    }
}

impl Default for Stages {
    fn default() -> Self {
        Self::new()
    }
}

/// A span measured apart from the ioctl's marks (completions, which run in
/// any context): started by [`span`], charged by [`Span::end`].
pub(crate) struct Span {
    #[cfg(zcsend_stages)]
    start: u64,
}

/// Starts a [`Span`].
#[inline(always)]
pub(crate) fn span() -> Span {
    Span {
        #[cfg(zcsend_stages)]
        start: now(),
    }
}

impl Span {
    /// Charges the span to `s`.
    #[inline(always)]
    pub(crate) fn end(self, _s: Stage) {
        #[cfg(zcsend_stages)]
        add(_s, now().wrapping_sub(self.start));
    }

    /// Charges the span to `task` or `softirq` by the context it ends in.
    #[inline(always)]
    pub(crate) fn end_by_context(self, _task: Stage, _softirq: Stage) {
        #[cfg(zcsend_stages)]
        {
            // SAFETY: no precondition.
            let s = if unsafe { crate::ffi::zcsend_in_task() } {
                _task
            } else {
                _softirq
            };
            self.end(s);
        }
    }
}

#[cfg(zcsend_stages)]
fn now() -> u64 {
    // SAFETY: no precondition.
    unsafe { crate::ffi::zcsend_stage_now() }
}

#[cfg(zcsend_stages)]
fn add(s: Stage, ticks: u64) {
    // SAFETY: plain values; `s` is in range of the C table.
    unsafe { crate::ffi::zcsend_stage_add(s as c_uint, ticks) };
}

/// How a send left, as `zcsend_send`'s `path` shows it.
#[derive(Clone, Copy)]
#[repr(u32)]
pub(crate) enum Path {
    /// Pinned for this send, attached as frags.
    Zerocopy = 0,
    /// From a registered buffer, attached as frags.
    Fixed,
    /// Below the copy threshold: copied.
    CopyThreshold,
    /// A datagram needing more frags than an skb holds: copied.
    FragLimit,
    /// A socket that cannot take user pages: copied.
    UnsupportedSocket,
    /// A socket whose route is local (loopback): copied up front.
    Local,
}

impl Path {
    /// The counter of a copy path.
    fn counter(self) -> Option<Counter> {
        match self {
            Path::Zerocopy | Path::Fixed => None,
            Path::CopyThreshold => Some(Counter::FallbackThreshold),
            Path::FragLimit => Some(Counter::FallbackFragLimit),
            Path::UnsupportedSocket => Some(Counter::FallbackSocket),
            Path::Local => Some(Counter::FallbackLocal),
        }
    }
}

/// Whether `zcsend:zcsend_send` is enabled: the kernel crate's
/// `static_branch_unlikely!`, as `declare_trace!` checks a tracepoint
/// (patched code with `CONFIG_JUMP_LABEL`, a read of the key without).
#[cfg(all(CONFIG_TRACEPOINTS, CONFIG_JUMP_LABEL))]
#[inline]
fn send_enabled() -> bool {
    // SAFETY: `__tracepoint_zcsend_send` is a real static key defined by C
    // (`trace.c`), the macro's one requirement.
    unsafe {
        kernel::jump_label::static_branch_unlikely!(
            __tracepoint_zcsend_send,
            kernel::bindings::tracepoint,
            key
        )
    }
}

/// Without jump labels the key's count is read, as `static_key_count()`
/// does, but inline (the macro calls that C helper out of line).
#[cfg(all(CONFIG_TRACEPOINTS, not(CONFIG_JUMP_LABEL)))]
#[inline]
fn send_enabled() -> bool {
    // SAFETY: `__tracepoint_zcsend_send` is a static C defines (`trace.c`),
    // alive as long as the module; its key's count is only changed with
    // atomic operations (`static_key_enable()` and friends).
    let enabled = unsafe {
        crate::atomic::Atomic::from_ptr(
            &raw mut (*(&raw const __tracepoint_zcsend_send).cast_mut())
                .key
                .key
                .enabled
                .counter,
        )
    };
    let n: i32 = enabled.load(crate::atomic::Relaxed);
    n > 0
}

/// Without tracepoints (the UML kernel) there is no event to emit.
#[cfg(not(CONFIG_TRACEPOINTS))]
#[inline]
fn send_enabled() -> bool {
    false
}

/// A send was handed to the socket: `zcsend_send` and the fallback
/// counters. Inline: a zero-copy send with the event off costs a patched
/// jump over the event's code, not a call.
#[inline(always)]
pub(crate) fn send(
    user_data: u64,
    res: &Result<usize>,
    bytes: usize,
    pages: usize,
    frags: usize,
    path: Path,
) {
    if let Some(c) = path.counter() {
        count(c, 1);
    }
    if !send_enabled() {
        return;
    }
    let result = match res {
        Ok(n) => *n as i64,
        Err(e) => i64::from(e.to_errno()),
    };
    // SAFETY: plain values.
    unsafe {
        zcsend_trace_send(
            user_data,
            result,
            bytes as u32,
            pages as u32,
            frags as u32,
            path as u32,
        )
    };
}

/// A send took a completion slot (`inflight`). Returns the stamp to give
/// [`posted`]: a timestamp for the send-to-completion latency, or 0 when
/// nobody traces completions (no clock read on the fast path).
pub(crate) fn reserved() -> u64 {
    // SAFETY: no preconditions; any context.
    unsafe { zcsend_note_reserve() }
}

/// A record is about to be posted: the module-wide counters it moves
/// (sends, bytes, zerocopy or copied, linked, pinned pages and in flight
/// given back) and `zcsend_complete`, in one call to C. `stamp` from
/// [`reserved`].
pub(crate) fn posted(
    rec: &ZcsendCompletion,
    stamp: u64,
    chain_len: u32,
    pinned: u64,
    linked: bool,
) {
    // SAFETY: plain values; any context but NMI.
    unsafe {
        zcsend_note_post(
            rec.user_data,
            rec.bytes,
            rec.flags,
            stamp,
            chain_len,
            pinned,
            linked,
            rec.flags & ZCSEND_COMPL_ZEROCOPY != 0,
        )
    };
}

/// Buffers were registered: `zcsend_register`.
pub(crate) fn register(buffers: usize, pages: usize, segments: usize) {
    // SAFETY: plain values.
    unsafe { zcsend_trace_register(buffers as u32, pages as u64, segments as u64) };
}

/// A fan-out was sent: `zcsend_fanout` and its counters.
pub(crate) fn fanout(user_data: u64, dests: usize, ok: usize, bytes: usize, stable: bool) {
    count(Counter::Fanouts, 1);
    count(Counter::FanoutDests, dests as i64);
    // SAFETY: plain values.
    unsafe { zcsend_trace_fanout(user_data, dests as u32, ok as u32, bytes as u64, stable) };
}

/// `/sys/kernel/debug/zcsend/`, present while this value lives.
pub(crate) struct Debugfs(());

impl Debugfs {
    pub(crate) fn new() -> Self {
        // SAFETY: no preconditions (a second call does nothing).
        unsafe { zcsend_debugfs_init() };
        Self(())
    }
}

impl Drop for Debugfs {
    fn drop(&mut self) {
        // SAFETY: created in `new`; removal waits for open readers.
        unsafe { zcsend_debugfs_exit() };
    }
}
