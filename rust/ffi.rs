// SPDX-License-Identifier: GPL-2.0

//! The C side of the module: every function of `rust/shim.c` and
//! `rust/trace.c`, declared once, in the order and with the types of
//! `rust/shim.h` (kernel types from `bindings::`). Nothing else in `rust/`
//! declares a foreign function. The wrappers exist only for what Rust cannot
//! reach: static inlines and macros (`skb_zcopy`, `in_compat_syscall`,
//! `smp_store_release`, `wait_event_interruptible`, `TRACE_EVENT`s,
//! per-CPU counters); everything the bindings export is called directly.

use kernel::bindings;
use kernel::prelude::*;

// `page` and `sk_buff` hold bindgen array types rustc cannot prove FFI-safe;
// only pointers to them cross.
#[allow(improper_ctypes)]
extern "C" {
    pub(crate) fn zcsend_skb_zcopy_attach(
        skb: *mut bindings::sk_buff,
        uarg: *mut bindings::ubuf_info,
    ) -> *mut bindings::ubuf_info;
    pub(crate) fn zcsend_alloc_workqueue(name: *const c_char) -> *mut bindings::workqueue_struct;
    #[cfg_attr(not(CONFIG_COMPAT), allow(dead_code))]
    pub(crate) fn zcsend_in_compat_syscall() -> bool;
    pub(crate) fn zcsend_kiocb_nowait(iocb: *const bindings::kiocb) -> bool;
    /// `t`: a `struct zcsend_frags` ([`crate::net::FragTemplate`]).
    pub(crate) fn zcsend_frags_build(t: *mut c_void, from: *const bindings::iov_iter);
    /// `t`: a `struct zcsend_frags` or null.
    pub(crate) fn zcsend_fill_frags(
        skb: *mut bindings::sk_buff,
        from: *mut bindings::iov_iter,
        length: usize,
        t: *const c_void,
    ) -> c_int;
    /// `kind`: the `ZCSEND_SK_*` bits below.
    pub(crate) fn zcsend_sock_lookup(
        file: *mut bindings::file,
        kind: *mut c_uint,
    ) -> *mut bindings::socket;
    /// The `ZC`, `ESTABLISHED` and `LOCAL` bits of [`sk`] alone.
    pub(crate) fn zcsend_sock_state(sock: *mut bindings::socket) -> c_uint;
    pub(crate) fn zcsend_account_pinned(
        user: *mut *mut bindings::user_struct,
        nr: c_ulong,
    ) -> c_int;
    pub(crate) fn zcsend_unaccount_pinned(user: *mut bindings::user_struct, nr: c_ulong);
    pub(crate) fn zcsend_put_user(user: *mut bindings::user_struct);
    pub(crate) fn zcsend_nofile_limit() -> c_ulong;
    pub(crate) fn zcsend_publish_fops(
        misc: *mut bindings::miscdevice,
        fops: *const bindings::file_operations,
    );
    pub(crate) fn zcsend_synchronize_rcu_tasks();
    pub(crate) fn zcsend_folio_next(prev: *mut bindings::page, next: *mut bindings::page) -> bool;
    pub(crate) fn zcsend_waitq_init(wq: *mut bindings::wait_queue_head);
    pub(crate) fn zcsend_waitq_wake_all(wq: *mut bindings::wait_queue_head);
    pub(crate) fn zcsend_waitq_wait(
        wq: *mut bindings::wait_queue_head,
        cond: unsafe extern "C" fn(*mut c_void) -> bool,
        arg: *mut c_void,
    ) -> c_int;
    pub(crate) fn zcsend_can_complete_inline() -> bool;
    pub(crate) fn zcsend_resched_or_killed() -> bool;
    pub(crate) fn zcsend_page_address(page: *mut bindings::page) -> *mut c_void;
    pub(crate) fn zcsend_alloc_chunk(order: c_uint) -> *mut bindings::page;
    pub(crate) fn zcsend_free_chunk(page: *mut bindings::page, order: c_uint);
    pub(crate) fn zcsend_eventfd_signal_rcu(slot: *mut *mut bindings::eventfd_ctx);
    pub(crate) fn zcsend_eventfd_swap(
        slot: *mut *mut bindings::eventfd_ctx,
        new: *mut bindings::eventfd_ctx,
    ) -> *mut bindings::eventfd_ctx;
    /// The `struct zcsend_inflight *`s below are opaque to Rust.
    pub(crate) fn zcsend_inflight_new(idle: unsafe extern "C" fn(*mut c_void)) -> *mut c_void;
    pub(crate) fn zcsend_inflight_tryget(i: *mut c_void) -> bool;
    pub(crate) fn zcsend_inflight_put(i: *mut c_void);
    pub(crate) fn zcsend_inflight_close(i: *mut c_void, owner: *mut c_void);
    pub(crate) fn zcsend_inflight_free(i: *mut c_void);

    // rust/trace.c
    /// `zcsend:zcsend_send` (`TRACE_EVENT` in `zcsend_trace.h`); only
    /// with tracepoints.
    #[cfg(CONFIG_TRACEPOINTS)]
    pub(crate) static __tracepoint_zcsend_send: bindings::tracepoint;
    pub(crate) fn zcsend_count(idx: c_uint, delta: i64);
    pub(crate) fn zcsend_note_reserve() -> u64;
    pub(crate) fn zcsend_note_post(
        user_data: u64,
        bytes: u64,
        flags: u32,
        stamp: u64,
        chain_len: u32,
        pinned_pages: u64,
        linked: bool,
        zerocopy: bool,
    );
    #[cfg(zcsend_stages)]
    pub(crate) fn zcsend_stage_now() -> u64;
    #[cfg(zcsend_stages)]
    pub(crate) fn zcsend_stage_add(idx: c_uint, ticks: u64);
    #[cfg(zcsend_stages)]
    pub(crate) fn zcsend_in_task() -> bool;
    pub(crate) fn zcsend_debugfs_init();
    pub(crate) fn zcsend_debugfs_exit();
    pub(crate) fn zcsend_trace_send(
        user_data: u64,
        result: i64,
        bytes: u32,
        pages: u32,
        frags: u32,
        path: u32,
    );
    pub(crate) fn zcsend_trace_register(buffers: u32, pages: u64, segments: u64);
    pub(crate) fn zcsend_trace_fanout(
        user_data: u64,
        dests: u32,
        ok: u32,
        bytes: u64,
        stable: bool,
    );
}

/// `zcsend_sock_lookup()`'s `kind` bits (`ZCSEND_SK_*` in `shim.h`).
pub(crate) mod sk {
    /// IPv4 or IPv6.
    pub(crate) const INET: u32 = 0x01;
    /// A TCP stream socket.
    pub(crate) const TCP: u32 = 0x02;
    /// A UDP datagram socket.
    pub(crate) const UDP: u32 = 0x04;
    /// `SOCK_SUPPORT_ZC`.
    pub(crate) const ZC: u32 = 0x08;
    /// TCP established (or close-wait): data segments can go now.
    pub(crate) const ESTABLISHED: u32 = 0x10;
    /// The cached route goes out a loopback device.
    pub(crate) const LOCAL: u32 = 0x20;
}
