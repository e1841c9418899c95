// SPDX-License-Identifier: GPL-2.0

//! Rust mirror of `include/uapi/linux/zcsend.h`.
//!
//! Every size and field offset is asserted here at compile time, and the
//! same numbers are asserted from C against the header itself
//! (`_Static_assert`s in `selftests/zcsend/zcsend_helpers.h`).

use kernel::ioctl::{
    _IO,
    _IOR,
    _IOW, //
};
use kernel::transmute::{
    AsBytes,
    FromBytes, //
};

/// ABI version returned by [`ZCSEND_IOC_VERSION`].
pub(crate) const ZCSEND_ABI_VERSION: u32 = 1;

const ZCSEND_IOC_MAGIC: u32 = 0xE5;

/// Argument of [`ZCSEND_IOC_SEND`], `struct zcsend_send`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct ZcsendSend {
    pub(crate) fd: i32,
    pub(crate) flags: u32,
    pub(crate) iov: u64,
    pub(crate) iovcnt: u32,
    pub(crate) addrlen: u32,
    pub(crate) addr: u64,
    pub(crate) user_data: u64,
}

/// One completion record, `struct zcsend_completion`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(crate) struct ZcsendCompletion {
    pub(crate) user_data: u64,
    pub(crate) bytes: u64,
    pub(crate) flags: u32,
    pub(crate) result: i32,
}

/// Counters of one open file, `struct zcsend_stats`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct ZcsendStats {
    pub(crate) sends: u64,
    pub(crate) inflight: u64,
    pub(crate) pinned_pages: u64,
    pub(crate) zerocopy: u64,
    pub(crate) copied: u64,
    pub(crate) queued: u64,
    pub(crate) copy_threshold: u64,
    pub(crate) linked: u64,
}

/// A user `struct iovec` as a 64-bit process lays it out.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct UserIovec {
    pub(crate) base: u64,
    pub(crate) len: u64,
}

/// A user `struct compat_iovec` (32-bit process).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct ZcsendRange {
    pub(crate) buf_index: u32,
    pub(crate) reserved: u32,
    pub(crate) offset: u64,
    pub(crate) len: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct ZcsendBuffer {
    pub(crate) addr: u64,
    pub(crate) len: u64,
}

#[repr(C)]
pub(crate) struct ZcsendRingHdr {
    pub(crate) head: u64,
    pub(crate) resv0: [u64; 7],
    pub(crate) entries: u32,
    pub(crate) mask: u32,
    pub(crate) slots_offset: u64,
    pub(crate) wakeup: u32,
    pub(crate) resv2: u32,
    pub(crate) resv1: [u64; 5],
}

#[repr(C)]
pub(crate) struct ZcsendRingSlot {
    pub(crate) seq: u64,
    pub(crate) rec: ZcsendCompletion,
}

pub(crate) const ZCSEND_RING_OFF_HDR: u64 = 0;
pub(crate) const ZCSEND_RING_OFF_SLOTS: u64 = 0x1000_0000;

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct ZcsendSubmit {
    pub(crate) sends: u64,
    pub(crate) nr: u32,
    pub(crate) flags: u32,
}

/// Argument of [`ZCSEND_IOC_REGISTER_BUFFERS`], `struct zcsend_register`,
/// and of [`ZCSEND_IOC_REGISTER_SOCKETS`], `struct zcsend_register_sockets`
/// (the same layout, `fds` for `bufs`).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct ZcsendRegister {
    pub(crate) bufs: u64,
    pub(crate) nr: u32,
    pub(crate) flags: u32,
}

/// One destination of [`ZCSEND_IOC_FANOUT`], `struct zcsend_dest`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct ZcsendDest {
    pub(crate) fd: i32,
    pub(crate) addrlen: u32,
    pub(crate) addr: u64,
    pub(crate) result: i64,
}

/// Argument of [`ZCSEND_IOC_FANOUT`], `struct zcsend_fanout`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct ZcsendFanout {
    pub(crate) flags: u32,
    pub(crate) iovcnt: u32,
    pub(crate) iov: u64,
    pub(crate) dests: u64,
    pub(crate) nr: u32,
    pub(crate) resv: u32,
    pub(crate) user_data: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct CompatIovec {
    pub(crate) base: u32,
    pub(crate) len: u32,
}

// SAFETY: plain integers; every bit pattern is valid and there is no padding.
unsafe impl FromBytes for ZcsendSend {}
// SAFETY: plain integers; every bit pattern is valid and there is no padding.
unsafe impl AsBytes for ZcsendSend {}
// SAFETY: plain integers; every bit pattern is valid and there is no padding.
unsafe impl FromBytes for ZcsendSubmit {}
// SAFETY: plain integers; every bit pattern is valid and there is no padding.
unsafe impl FromBytes for ZcsendFanout {}
// SAFETY: as above (4 + 4 + 8 + 8 + 4 + 4 + 8 bytes).
unsafe impl AsBytes for ZcsendFanout {}
// SAFETY: plain integers (4 + 4 + 8 + 8 bytes); every bit pattern is valid
// and there is no padding.
unsafe impl FromBytes for ZcsendDest {}
// SAFETY: as above.
unsafe impl AsBytes for ZcsendDest {}
// SAFETY: plain integers; every bit pattern is valid and there is no padding.
unsafe impl FromBytes for UserIovec {}
// SAFETY: two `u64`s, no padding, no interior mutability.
unsafe impl AsBytes for UserIovec {}
// SAFETY: plain integers; every bit pattern is valid and there is no padding.
unsafe impl FromBytes for CompatIovec {}
// SAFETY: plain integers; every bit pattern is valid and there is no padding.
unsafe impl FromBytes for ZcsendRange {}
// SAFETY: as above.
unsafe impl AsBytes for ZcsendRange {}
// SAFETY: plain integers; every bit pattern is valid and there is no padding.
unsafe impl FromBytes for ZcsendBuffer {}
// SAFETY: as above.
unsafe impl AsBytes for ZcsendBuffer {}
// SAFETY: plain integers; every bit pattern is valid and there is no padding.
unsafe impl FromBytes for ZcsendRegister {}
// SAFETY: plain integers without padding (8 + 8 + 4 + 4 bytes).
unsafe impl AsBytes for ZcsendCompletion {}
// SAFETY: plain integers without padding.
unsafe impl AsBytes for ZcsendStats {}

const _: () = assert!(core::mem::size_of::<ZcsendSend>() == 40);
const _: () = assert!(core::mem::size_of::<ZcsendCompletion>() == 24);
const _: () = assert!(core::mem::size_of::<ZcsendStats>() == 64);
const _: () = assert!(core::mem::size_of::<ZcsendRange>() == 24);
const _: () = assert!(core::mem::size_of::<ZcsendBuffer>() == 16);
const _: () = assert!(core::mem::size_of::<ZcsendRegister>() == 16);
const _: () = assert!(core::mem::size_of::<ZcsendSubmit>() == 16);
const _: () = assert!(core::mem::size_of::<ZcsendDest>() == 24);
const _: () = assert!(core::mem::size_of::<ZcsendFanout>() == 40);
// Every field's offset, the same numbers `selftests/zcsend/zcsend_helpers.h`
// asserts from C with `_Static_assert` against the header itself.
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(ZcsendSend, fd) == 0);
    assert!(offset_of!(ZcsendSend, flags) == 4);
    assert!(offset_of!(ZcsendSend, iov) == 8);
    assert!(offset_of!(ZcsendSend, iovcnt) == 16);
    assert!(offset_of!(ZcsendSend, addrlen) == 20);
    assert!(offset_of!(ZcsendSend, addr) == 24);
    assert!(offset_of!(ZcsendSend, user_data) == 32);
    assert!(offset_of!(ZcsendCompletion, user_data) == 0);
    assert!(offset_of!(ZcsendCompletion, bytes) == 8);
    assert!(offset_of!(ZcsendCompletion, flags) == 16);
    assert!(offset_of!(ZcsendCompletion, result) == 20);
    assert!(offset_of!(ZcsendStats, sends) == 0);
    assert!(offset_of!(ZcsendStats, inflight) == 8);
    assert!(offset_of!(ZcsendStats, pinned_pages) == 16);
    assert!(offset_of!(ZcsendStats, zerocopy) == 24);
    assert!(offset_of!(ZcsendStats, copied) == 32);
    assert!(offset_of!(ZcsendStats, queued) == 40);
    assert!(offset_of!(ZcsendStats, copy_threshold) == 48);
    assert!(offset_of!(ZcsendStats, linked) == 56);
    assert!(offset_of!(ZcsendRange, buf_index) == 0);
    assert!(offset_of!(ZcsendRange, reserved) == 4);
    assert!(offset_of!(ZcsendRange, offset) == 8);
    assert!(offset_of!(ZcsendRange, len) == 16);
    assert!(offset_of!(ZcsendBuffer, addr) == 0);
    assert!(offset_of!(ZcsendBuffer, len) == 8);
    assert!(offset_of!(ZcsendRegister, bufs) == 0);
    assert!(offset_of!(ZcsendRegister, nr) == 8);
    assert!(offset_of!(ZcsendRegister, flags) == 12);
    assert!(offset_of!(ZcsendSubmit, sends) == 0);
    assert!(offset_of!(ZcsendSubmit, nr) == 8);
    assert!(offset_of!(ZcsendSubmit, flags) == 12);
    assert!(offset_of!(ZcsendRingHdr, head) == 0);
    assert!(offset_of!(ZcsendRingHdr, mask) == 68);
    assert!(offset_of!(ZcsendRingHdr, slots_offset) == 72);
    assert!(offset_of!(ZcsendRingHdr, wakeup) == 80);
    assert!(offset_of!(ZcsendRingSlot, seq) == 0);
    assert!(offset_of!(ZcsendDest, fd) == 0);
    assert!(offset_of!(ZcsendDest, addrlen) == 4);
    assert!(offset_of!(ZcsendDest, addr) == 8);
    assert!(offset_of!(ZcsendDest, result) == 16);
    assert!(offset_of!(ZcsendFanout, flags) == 0);
    assert!(offset_of!(ZcsendFanout, iovcnt) == 4);
    assert!(offset_of!(ZcsendFanout, iov) == 8);
    assert!(offset_of!(ZcsendFanout, dests) == 16);
    assert!(offset_of!(ZcsendFanout, nr) == 24);
    assert!(offset_of!(ZcsendFanout, resv) == 28);
    assert!(offset_of!(ZcsendFanout, user_data) == 32);
};
const _: () = assert!(core::mem::size_of::<ZcsendRingHdr>() == 128);
const _: () = assert!(core::mem::offset_of!(ZcsendRingHdr, entries) == 64);
const _: () = assert!(core::mem::size_of::<ZcsendRingSlot>() == 32);
const _: () = assert!(core::mem::offset_of!(ZcsendRingSlot, rec) == 8);

/// Every byte left the host from the application's own pages.
pub(crate) const ZCSEND_COMPL_ZEROCOPY: u32 = 1 << 0;
/// At least part of the data was copied on the way.
pub(crate) const ZCSEND_COMPL_COPIED: u32 = 1 << 1;
/// The send was below the copy threshold and took the plain copy path.
pub(crate) const ZCSEND_COMPL_COPY_PATH: u32 = 1 << 2;
/// The record of a fan-out: `bytes` summed over its destinations.
pub(crate) const ZCSEND_COMPL_FANOUT: u32 = 1 << 3;
/// A stable fan-out: the bytes sent were the module's own copy.
pub(crate) const ZCSEND_COMPL_STABLE: u32 = 1 << 4;

/// `zcsend_ring_hdr.wakeup`: signal the eventfd only when armed.
pub(crate) const ZCSEND_WAKEUP_ON_REQUEST: u32 = 1 << 0;
/// `zcsend_ring_hdr.wakeup`: a consumer asked for one signal.
pub(crate) const ZCSEND_WAKEUP_ARMED: u32 = 1 << 1;

pub(crate) const ZCSEND_FANOUT_STABLE: u32 = 1 << 30;
pub(crate) const ZCSEND_MAX_FANOUT: u32 = 1024;
/// `zcsend_submit.flags`: the array holds `struct zcsend_fanout`s.
pub(crate) const ZCSEND_SUBMIT_FANOUT: u32 = 1 << 0;

pub(crate) const ZCSEND_MAX_COMPLETIONS: u32 = 4096;
pub(crate) const ZCSEND_SEND_FIXED: u32 = 1 << 31;
/// `zcsend_send.flags`: `iov` is the bytes' address, `iovcnt` their length.
pub(crate) const ZCSEND_SEND_BUF: u32 = 1 << 28;
/// `zcsend_send.flags`, `zcsend_fanout.flags`: socket `fd`s are indexes in
/// the registered sockets.
pub(crate) const ZCSEND_SEND_FIXED_SOCKET: u32 = 1 << 24;
pub(crate) const ZCSEND_MAX_SOCKETS: u32 = 1024;
pub(crate) const ZCSEND_MAX_BUFFERS: u32 = 1024;
pub(crate) const ZCSEND_MAX_BATCH: u32 = 256;
pub(crate) const ZCSEND_MAX_BUFFER_LEN: u64 = 1 << 30;
pub(crate) const ZCSEND_MAX_PINNED_PAGES: u64 = 65536;

pub(crate) const ZCSEND_IOC_VERSION: u32 = _IOR::<u32>(ZCSEND_IOC_MAGIC, 0x00);
pub(crate) const ZCSEND_IOC_SEND: u32 = _IOW::<ZcsendSend>(ZCSEND_IOC_MAGIC, 0x01);
pub(crate) const ZCSEND_IOC_SET_EVENTFD: u32 = _IOW::<i32>(ZCSEND_IOC_MAGIC, 0x02);
pub(crate) const ZCSEND_IOC_STATS: u32 = _IOR::<ZcsendStats>(ZCSEND_IOC_MAGIC, 0x03);
/// `ZCSEND_IOC_STATS` as built against the first header, whose struct ended
/// at `copy_threshold` (56 bytes): still answered with that prefix.
pub(crate) const ZCSEND_IOC_STATS_V1: u32 = _IOR::<[u64; 7]>(ZCSEND_IOC_MAGIC, 0x03);
pub(crate) const ZCSEND_STATS_V1_SIZE: usize = 56;
pub(crate) const ZCSEND_IOC_REGISTER_BUFFERS: u32 = _IOW::<ZcsendRegister>(ZCSEND_IOC_MAGIC, 0x04);
pub(crate) const ZCSEND_IOC_UNREGISTER_BUFFERS: u32 = _IO(ZCSEND_IOC_MAGIC, 0x05);
pub(crate) const ZCSEND_IOC_SUBMIT: u32 = _IOW::<ZcsendSubmit>(ZCSEND_IOC_MAGIC, 0x06);
pub(crate) const ZCSEND_IOC_FANOUT: u32 = _IOW::<ZcsendFanout>(ZCSEND_IOC_MAGIC, 0x07);
/// Takes `struct zcsend_register_sockets`, [`ZcsendRegister`]'s layout
/// (`fds` where it has `bufs`; `zcsend_helpers.h` asserts both from C).
pub(crate) const ZCSEND_IOC_REGISTER_SOCKETS: u32 = _IOW::<ZcsendRegister>(ZCSEND_IOC_MAGIC, 0x08);
pub(crate) const ZCSEND_IOC_UNREGISTER_SOCKETS: u32 = _IO(ZCSEND_IOC_MAGIC, 0x09);
pub(crate) const ZCSEND_IOC_FEATURES: u32 = _IOR::<u64>(ZCSEND_IOC_MAGIC, 0x0a);

/// What `ZCSEND_IOC_FEATURES` reports: every `ZCSEND_FEAT_*` bit of the
/// header, each implemented here (`zcsend_dev.c`'s `features` test
/// compares this with the header's bits and probes one form of each).
pub(crate) const ZCSEND_FEATURES: u64 = (1 << 0) // SEND_BUF
    | (1 << 1) // FIXED_BUFFERS
    | (1 << 2) // FIXED_INLINE
    | (1 << 3) // FIXED_SOCKETS
    | (1 << 4) // SUBMIT
    | (1 << 5) // FANOUT
    | (1 << 6) // FANOUT_STABLE
    | (1 << 7); // RING_MMAP

/// Whether the current ioctl comes from a 32-bit process, whose `iovec`
/// array uses [`CompatIovec`].
#[cfg(CONFIG_COMPAT)]
pub(crate) fn in_compat_syscall() -> bool {
    // SAFETY: reads the current task's syscall state; always callable from
    // a syscall.
    unsafe { crate::ffi::zcsend_in_compat_syscall() }
}

/// Without `CONFIG_COMPAT` no process is 32-bit (and the check is no call).
#[cfg(not(CONFIG_COMPAT))]
#[inline]
pub(crate) fn in_compat_syscall() -> bool {
    false
}
