// SPDX-License-Identifier: GPL-2.0
//! The `/dev/zcsend` handle: sends, completions, eventfd, counters.

use std::collections::{HashMap, VecDeque};
use std::ffi::CString;
use std::io::{self, IoSlice};
use std::marker::PhantomData;
use std::mem::{size_of, size_of_val};
use std::net::SocketAddr;
use std::ops::{BitOr, BitOrAssign};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, TryLockError};
use std::time::{Duration, Instant};

use crate::batch::Batch;
use crate::buf::Buf;
use crate::eventfd::EventFd;
use crate::registered::{Fixed, RegBuf, RegisterError, Registered, UnregisterError};
use crate::ring::Ring;
use crate::sockets::{SockRef, Sockets};
use crate::sys;

/// Counters of one open file (`ZCSEND_IOC_STATS`), straight from the ABI.
pub type Stats = sys::zcsend_stats;

/// Records read from the kernel per `read(2)`.
const READ_BATCH: usize = 64;

/// `MSG_*` flags for a send. The module accepts `DONTWAIT`, `MORE`,
/// `NOSIGNAL`, `EOR`, `CONFIRM` and `DONTROUTE` and fails with `EINVAL` on
/// anything else.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MsgFlags(u32);

impl MsgFlags {
    /// No flag.
    pub const NONE: MsgFlags = MsgFlags(0);
    /// `MSG_DONTWAIT`: fail with `EAGAIN` instead of waiting for send buffer.
    pub const DONTWAIT: MsgFlags = MsgFlags(libc::MSG_DONTWAIT as u32);
    /// `MSG_MORE`: more data follows.
    pub const MORE: MsgFlags = MsgFlags(libc::MSG_MORE as u32);
    /// `MSG_NOSIGNAL`: `EPIPE` without `SIGPIPE`.
    pub const NOSIGNAL: MsgFlags = MsgFlags(libc::MSG_NOSIGNAL as u32);
    /// `MSG_EOR`.
    pub const EOR: MsgFlags = MsgFlags(libc::MSG_EOR as u32);
    /// `MSG_CONFIRM`.
    pub const CONFIRM: MsgFlags = MsgFlags(libc::MSG_CONFIRM as u32);
    /// `MSG_DONTROUTE`.
    pub const DONTROUTE: MsgFlags = MsgFlags(libc::MSG_DONTROUTE as u32);

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Any bits, unchecked (the kernel checks them).
    pub const fn from_bits_retain(bits: u32) -> MsgFlags {
        MsgFlags(bits)
    }
}

impl BitOr for MsgFlags {
    type Output = MsgFlags;
    fn bitor(self, rhs: MsgFlags) -> MsgFlags {
        MsgFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for MsgFlags {
    fn bitor_assign(&mut self, rhs: MsgFlags) {
        self.0 |= rhs.0;
    }
}

/// What the module implements (`ZCSEND_IOC_FEATURES`): a set of
/// `ZCSEND_FEAT_*` bits, from [`Device::features`].
///
/// The ABI version stays 1 while features are only added, so a program
/// that must also run on an older module asks here before it relies on a
/// form, rather than reading that module's `EINVAL` as a bad argument.
/// Bits are only ever added; a newer module may report bits this crate does
/// not name (kept, see [`bits`](Self::bits)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Features(u64);

impl Features {
    /// The empty set: a module older than `ZCSEND_IOC_FEATURES` (which
    /// fails it with `ENOTTY`). It offers the ABI-1 basics only:
    /// `ZCSEND_IOC_SEND` of an iovec array, `read(2)` of the records and
    /// the eventfd ([`Device::scope`], [`Device::send_borrowed`],
    /// [`Device::send`] of several [`Buf`]s, the reads,
    /// [`Device::set_eventfd`]), and any of the rest only as far as a probe
    /// shows.
    pub const LEGACY: Features = Features(0);
    /// `ZCSEND_FEAT_SEND_BUF`: one buffer named in the request itself
    /// (`ZCSEND_SEND_BUF`), which [`Device::send`] and [`Batch::send`] of
    /// one [`Buf`] use.
    pub const SEND_BUF: Features = Features(sys::ZCSEND_FEAT_SEND_BUF as u64);
    /// `ZCSEND_FEAT_FIXED_BUFFERS`: `ZCSEND_IOC_REGISTER_BUFFERS` and sends
    /// of `struct zcsend_range` arrays (`ZCSEND_SEND_FIXED`):
    /// [`Device::register`], [`Device::send_fixed`] of several ranges,
    /// [`Device::fanout_fixed`].
    pub const FIXED_BUFFERS: Features = Features(sys::ZCSEND_FEAT_FIXED_BUFFERS as u64);
    /// `ZCSEND_FEAT_FIXED_INLINE`: one registered range named in the
    /// request itself (`ZCSEND_SEND_FIXED | ZCSEND_SEND_BUF`), which
    /// [`Device::send_fixed`] and [`Batch::send_fixed`] of one [`Fixed`] use.
    pub const FIXED_INLINE: Features = Features(sys::ZCSEND_FEAT_FIXED_INLINE as u64);
    /// `ZCSEND_FEAT_FIXED_SOCKETS`: `ZCSEND_IOC_REGISTER_SOCKETS` and sends
    /// by index (`ZCSEND_SEND_FIXED_SOCKET`): [`Device::register_sockets`].
    pub const FIXED_SOCKETS: Features = Features(sys::ZCSEND_FEAT_FIXED_SOCKETS as u64);
    /// `ZCSEND_FEAT_SUBMIT`: `ZCSEND_IOC_SUBMIT`, [`Batch::submit`].
    pub const SUBMIT: Features = Features(sys::ZCSEND_FEAT_SUBMIT as u64);
    /// `ZCSEND_FEAT_FANOUT`: `ZCSEND_IOC_FANOUT` (and `ZCSEND_SUBMIT_FANOUT`
    /// batches of them): [`Device::fanout`], [`Scope::fanout`].
    pub const FANOUT: Features = Features(sys::ZCSEND_FEAT_FANOUT as u64);
    /// `ZCSEND_FEAT_FANOUT_STABLE`: `ZCSEND_FANOUT_STABLE`, a fan-out with
    /// `stable = true`.
    pub const FANOUT_STABLE: Features = Features(sys::ZCSEND_FEAT_FANOUT_STABLE as u64);
    /// `ZCSEND_FEAT_RING_MMAP`: the mapped completion ring and
    /// `ZCSEND_WAKEUP_ON_REQUEST`: [`Device::map_ring`],
    /// [`Device::set_wakeup_on_request`].
    pub const RING_MMAP: Features = Features(sys::ZCSEND_FEAT_RING_MMAP as u64);
    /// Every feature this crate knows (the `ZCSEND_FEAT_*` bits of the
    /// header it was built from).
    pub const ALL: Features = Features(
        Features::SEND_BUF.0
            | Features::FIXED_BUFFERS.0
            | Features::FIXED_INLINE.0
            | Features::FIXED_SOCKETS.0
            | Features::SUBMIT.0
            | Features::FANOUT.0
            | Features::FANOUT_STABLE.0
            | Features::RING_MMAP.0,
    );

    /// Whether every feature of `other` is in `self`.
    pub const fn contains(self, other: Features) -> bool {
        self.0 & other.0 == other.0
    }

    /// The raw `ZCSEND_FEAT_*` bits, those this crate does not name
    /// included.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Any bits, unchecked.
    pub const fn from_bits_retain(bits: u64) -> Features {
        Features(bits)
    }
}

impl BitOr for Features {
    type Output = Features;
    fn bitor(self, rhs: Features) -> Features {
        Features(self.0 | rhs.0)
    }
}

impl BitOrAssign for Features {
    fn bitor_assign(&mut self, rhs: Features) {
        self.0 |= rhs.0;
    }
}

/// One completed send: its buffers are free again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Completion {
    /// The `user_data` given to the send.
    pub user_data: u64,
    /// Bytes the send accepted (what the send call returned).
    pub bytes: u64,
    /// Every byte left from the application's own pages
    /// (`ZCSEND_COMPL_ZEROCOPY`); false: the stack copied at least part of it
    /// (`ZCSEND_COMPL_COPIED`).
    pub zerocopy: bool,
    /// The send took the plain copy path (`ZCSEND_COMPL_COPY_PATH`): below the
    /// module's copy threshold, or a UDP datagram with too many fragments.
    pub copy_path: bool,
    /// The record of a [`Device::fanout`] (`ZCSEND_COMPL_FANOUT`): `bytes` is
    /// summed over its destinations, and `zerocopy` holds only if none of
    /// them copied.
    pub fanout: bool,
    /// A stable fan-out (`ZCSEND_COMPL_STABLE`): the bytes sent were the
    /// module's own copy of the payload, and this record says when that copy
    /// was released.
    pub stable: bool,
    /// 0; reserved by the ABI for a negative errno reported after acceptance.
    pub result: i32,
}

impl Completion {
    /// Decodes a kernel record. `user_data` replaces the record's own (which
    /// the library uses for its internal send id).
    ///
    /// The ABI says exactly one of `ZEROCOPY` and `COPIED` is set; a record
    /// that breaks this is reported as copied, never as zero-copy.
    pub fn from_raw(raw: &sys::zcsend_completion, user_data: u64) -> Completion {
        let kind = raw.flags & (sys::ZCSEND_COMPL_ZEROCOPY | sys::ZCSEND_COMPL_COPIED);
        Completion {
            user_data,
            bytes: raw.bytes,
            zerocopy: kind == sys::ZCSEND_COMPL_ZEROCOPY,
            copy_path: raw.flags & sys::ZCSEND_COMPL_COPY_PATH != 0,
            fanout: raw.flags & sys::ZCSEND_COMPL_FANOUT != 0,
            stable: raw.flags & sys::ZCSEND_COMPL_STABLE != 0,
            result: raw.result,
        }
    }
}

/// One destination of a fan-out ([`Device::fanout`], [`Scope::fanout`]).
///
/// The socket is a descriptor or a registered socket ([`Sockets::get`]);
/// the module reads every destination of one fan-out the same way
/// (`ZCSEND_SEND_FIXED_SOCKET` is a flag of the whole call), so one
/// fan-out's destinations must be all descriptors or all registered
/// sockets: a mix is refused with `EINVAL` before the system call.
#[derive(Clone, Copy, Debug)]
pub struct Dest<'a> {
    /// The socket (TCP or UDP, IPv4 or IPv6). One fan-out may name a socket
    /// only once (`EINVAL`).
    pub sock: SockRef<'a>,
    /// Where to send on an unconnected UDP socket, as `dest` of
    /// [`Device::send`]; `None` for connected sockets.
    pub addr: Option<SocketAddr>,
}

impl<'a> Dest<'a> {
    /// A connected socket: a `BorrowedFd` (or `&` anything [`AsFd`]), or a
    /// registered socket's [`SockRef`].
    pub fn new(sock: impl Into<SockRef<'a>>) -> Dest<'a> {
        Dest {
            sock: sock.into(),
            addr: None,
        }
    }

    /// An unconnected UDP socket (descriptor or registered) and the
    /// address to send to.
    pub fn to(sock: impl Into<SockRef<'a>>, addr: SocketAddr) -> Dest<'a> {
        Dest {
            sock: sock.into(),
            addr: Some(addr),
        }
    }
}

impl<'a> From<BorrowedFd<'a>> for Dest<'a> {
    fn from(sock: BorrowedFd<'a>) -> Dest<'a> {
        Dest::new(sock)
    }
}

impl<'a> From<SockRef<'a>> for Dest<'a> {
    fn from(sock: SockRef<'a>) -> Dest<'a> {
        Dest::new(sock)
    }
}

/// What a send in flight keeps alive: clones of the caller's handles to
/// the memory the kernel may still read.
pub(crate) enum Held {
    /// Borrowed memory (a scope, or the unsafe raw send), or memory the
    /// module copied (a stable fan-out).
    Nothing,
    /// Owned buffers. (Never read: held for their `Drop`.)
    Bufs(#[allow(dead_code)] Vec<Buf>),
    /// Ranges of registered buffers: while they exist the buffers can be
    /// neither written ([`Registered::get_mut`]) nor unregistered.
    Fixed(#[allow(dead_code)] Vec<Fixed>),
}

/// A send the kernel accepted and has not reported complete yet.
struct InFlight {
    user_data: u64,
    /// Dropped when the completion is read (leaked if it never is).
    keep: Held,
    /// The [`Scope`] that waits for this send, if any.
    scope: Option<u64>,
}

#[derive(Default)]
struct State {
    inflight: HashMap<u64, InFlight>,
    /// Records read before their send call had registered them.
    orphans: HashMap<u64, sys::zcsend_completion>,
    /// Decoded completions not handed out yet.
    pending: VecDeque<Completion>,
    /// Sends still in flight per open scope.
    scopes: HashMap<u64, usize>,
}

impl State {
    /// Files the kernel's records: releases their buffers and queues the
    /// completions on `pending`.
    fn absorb(&mut self, raw: &[sys::zcsend_completion]) {
        for r in raw {
            match self.inflight.remove(&r.user_data) {
                Some(f) => self.finish(f, r),
                None => {
                    self.orphans.insert(r.user_data, *r);
                }
            }
        }
    }

    fn finish(&mut self, f: InFlight, raw: &sys::zcsend_completion) {
        if let Some(s) = f.scope {
            let left = self.scopes.get_mut(&s).expect("scope of an in-flight send");
            *left -= 1;
        }
        // Only now may the buffers go: the kernel is done with them.
        drop(f.keep);
        self.pending
            .push_back(Completion::from_raw(raw, f.user_data));
    }

    fn take_pending(&mut self, out: &mut [Completion]) -> usize {
        let n = out.len().min(self.pending.len());
        for (slot, c) in out.iter_mut().zip(self.pending.drain(..n)) {
            *slot = c;
        }
        n
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An open `/dev/zcsend`: one completion queue.
///
/// `Device` is `Send` and `Sync`: sends and reads may come from several
/// threads. Every send made through it is tracked until its completion record
/// has been read (by any of the `read_*`/`wait_*` methods, which all file the
/// records they see), so the library always knows which buffers the kernel
/// may still be reading. See the [crate documentation](crate) for why that
/// matters.
pub struct Device {
    /// Shared with a [`Registered`] of this file, which unregisters through
    /// it and may outlive the `Device`.
    fd: Arc<OwnedFd>,
    next_id: AtomicU64,
    next_scope: AtomicU64,
    state: Mutex<State>,
    /// Held while taking records from the file (`read(2)` or the mapped
    /// ring, which move the same `head`): the one consumer. The bool mirrors
    /// the file's `O_NONBLOCK`.
    reader: Mutex<bool>,
    /// The completion ring, once mapped ([`Device::map_ring`]).
    ring: OnceLock<Ring>,
    /// Serialises mapping the ring.
    ring_init: Mutex<()>,
}

impl Device {
    /// Opens [`DEVICE_PATH`](crate::DEVICE_PATH) read-write with `O_CLOEXEC`.
    pub fn open() -> io::Result<Device> {
        Device::open_path(crate::DEVICE_PATH)
    }

    /// Opens a zcsend device at another path.
    pub fn open_path(path: &str) -> io::Result<Device> {
        let c = CString::new(path).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: a NUL-terminated path; the result is checked.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Device {
            // SAFETY: a descriptor we just opened and own.
            fd: Arc::new(unsafe { OwnedFd::from_raw_fd(fd) }),
            next_id: AtomicU64::new(0),
            next_scope: AtomicU64::new(0),
            state: Mutex::new(State::default()),
            reader: Mutex::new(true),
            ring: OnceLock::new(),
            ring_init: Mutex::new(()),
        })
    }

    /// `n` fresh ids for the kernel records' `user_data`.
    pub(crate) fn new_ids(&self, n: usize) -> u64 {
        self.next_id.fetch_add(n as u64, Ordering::Relaxed)
    }

    /// `ioctl(2)` number `req` on this file with `arg` as its argument;
    /// the call's non-negative return value, or the error.
    ///
    /// # Safety
    ///
    /// The kernel reads and writes `*arg` as the argument type that `req`
    /// encodes, and follows the user addresses stored in it. The caller
    /// guarantees:
    ///
    /// - `T` is that type, with every field valid for the ioctl
    ///   (`_IOC_SIZE(req)` equals `size_of::<T>()`, asserted in debug
    ///   builds);
    /// - every user address in `*arg` (the iovec, range, destination and send
    ///   arrays, socket addresses, and the arrays those point to in turn) is
    ///   valid for the reads and writes the ioctl makes, with the length and
    ///   element type given beside it, until the call returns;
    /// - for a send the kernel accepts (`ZCSEND_IOC_SEND`, `_FANOUT` without
    ///   `ZCSEND_FANOUT_STABLE`, each send of `_SUBMIT`), the payload memory
    ///   stays allocated, mapped and unmodified until its completion record
    ///   has been read from this `Device`, and forever if it never is (see
    ///   the [crate documentation](crate)).
    pub(crate) unsafe fn ioctl<T>(&self, req: u32, arg: &mut T) -> io::Result<libc::c_int> {
        debug_assert_eq!(
            sys::ioc_size(req),
            size_of::<T>(),
            "ioctl {req:#x} with an argument of another size"
        );
        // SAFETY: `arg` is a live, exclusive `T`; the caller guarantees that
        // `T` and the memory it refers to are what `req` expects.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), req as _, arg as *mut T) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }

    /// The module's ABI version (`ZCSEND_IOC_VERSION`); this crate speaks
    /// [`ABI_VERSION`](crate::ABI_VERSION).
    pub fn version(&self) -> io::Result<u32> {
        let mut v: u32 = 0;
        // SAFETY: `_IOR(.., __u32)`: the kernel writes one u32, no pointer.
        unsafe { self.ioctl(sys::ZCSEND_IOC_VERSION, &mut v) }?;
        Ok(v)
    }

    /// What the module implements (`ZCSEND_IOC_FEATURES`).
    ///
    /// A module older than this ioctl fails it with `ENOTTY`, reported as
    /// `Ok(`[`Features::LEGACY`]`)`, the empty set: only the ABI-1 basics
    /// are known to work (any other file that does not know the ioctl, say
    /// `/dev/null` opened with [`open_path`](Self::open_path), answers the
    /// same; [`version`](Self::version) tells them apart). Other errors are
    /// returned.
    ///
    /// This crate does not consult the bits itself: it always uses the
    /// shortest form of the module in this tree. [`send`](Self::send) and
    /// [`Batch::send`] of one [`Buf`] name it inline ([`Features::SEND_BUF`]),
    /// [`send_fixed`](Self::send_fixed) and [`Batch::send_fixed`] of one
    /// [`Fixed`] name it inline ([`Features::FIXED_INLINE`]); a module
    /// without the bit fails those with `EINVAL`. A caller targeting older
    /// modules checks these bits and, without them, sends two pieces (e.g.
    /// halves made with [`Buf::slice`], or two ranges), which go in an
    /// iovec or range array, or uses [`scope`](Self::scope), which always
    /// passes an iovec array; the other bits name the calls that need them
    /// (see [`Features`]).
    pub fn features(&self) -> io::Result<Features> {
        let mut f: u64 = 0;
        // SAFETY: `_IOR(.., __u64)`: the kernel writes one u64, no pointer.
        match unsafe { self.ioctl(sys::ZCSEND_IOC_FEATURES, &mut f) } {
            Ok(_) => Ok(Features(f)),
            // A module that predates the ioctl.
            Err(e) if e.raw_os_error() == Some(libc::ENOTTY) => Ok(Features::LEGACY),
            Err(e) => Err(e),
        }
    }

    /// This file's counters (`ZCSEND_IOC_STATS`).
    pub fn stats(&self) -> io::Result<Stats> {
        let mut s = Stats::default();
        // SAFETY: `_IOR(.., struct zcsend_stats)`: the kernel writes `s`,
        // which holds no pointer.
        unsafe { self.ioctl(sys::ZCSEND_IOC_STATS, &mut s) }?;
        Ok(s)
    }

    /// Registers an eventfd that the module signals once per completion
    /// record, or unregisters it (`None`). Poll it, then call
    /// [`try_read_completions`](Self::try_read_completions).
    pub fn set_eventfd(&self, efd: Option<BorrowedFd<'_>>) -> io::Result<()> {
        let mut fd: i32 = efd.map_or(-1, |f| f.as_raw_fd());
        // SAFETY: `_IOW(.., __s32)`: the kernel reads one descriptor number
        // (an eventfd or -1), no pointer.
        unsafe { self.ioctl(sys::ZCSEND_IOC_SET_EVENTFD, &mut fd) }?;
        Ok(())
    }

    /// Sends `bufs` on `sock` (TCP or UDP, IPv4 or IPv6) without copying
    /// them, and returns the bytes the socket accepted, as `send(2)` does (a
    /// stream socket may take only part).
    ///
    /// The library keeps a clone of each [`Buf`] until the send's completion
    /// has been read, which is what makes this safe: the bytes cannot be
    /// freed or changed while the network stack may still read them. Every
    /// `Ok` (even `Ok(0)`) is followed by exactly one [`Completion`] carrying
    /// `user_data`; an `Err` by none.
    ///
    /// `sock` is a descriptor (`sock.as_fd()`, or `&sock`) or a registered
    /// socket ([`Sockets::get`], sent by index with
    /// `ZCSEND_SEND_FIXED_SOCKET`: no descriptor lookup).
    ///
    /// `dest` is for unconnected UDP sockets. Errors are the module's (see
    /// Documentation/zcsend.rst): `EINVAL` for no buffer or more than 1024,
    /// `ENOBUFS` past `RLIMIT_MEMLOCK`, `EAGAIN` with
    /// [`MsgFlags::DONTWAIT`], and the socket's own; `EINVAL` also, before
    /// the system call, when `flags` carries the module's own bits
    /// (`ZCSEND_SEND_FIXED`, `ZCSEND_SEND_BUF`, `ZCSEND_SEND_FIXED_SOCKET`,
    /// `ZCSEND_FANOUT_STABLE`), which only the library sets, or when `sock`
    /// is a registered socket of another `Device`.
    pub fn send<'s>(
        &self,
        sock: impl Into<SockRef<'s>>,
        bufs: &[Buf],
        flags: MsgFlags,
        dest: Option<&SocketAddr>,
        user_data: u64,
    ) -> io::Result<usize> {
        let sock = sock.into();
        let flags = send_flags(flags, false)?;
        // One buffer is named in the request itself (`ZCSEND_SEND_BUF`):
        // the module reads no iovec array.
        if let [one] = bufs {
            let bytes = one.as_bytes();
            // SAFETY: `ZCSEND_SEND_BUF` with the bytes of `one`, borrowed
            // until we return; the clone taken on success keeps them
            // afterwards (a `Buf` is never written while shared).
            return unsafe {
                self.send_raw(
                    sock,
                    Payload::bytes(bytes),
                    flags | sys::ZCSEND_SEND_BUF,
                    dest,
                    user_data,
                    None,
                    || Held::Bufs(vec![one.clone()]),
                )
            };
        }
        let iov: Vec<libc::iovec> = bufs.iter().map(Buf::iovec).collect();
        // SAFETY: iovecs (no `ZCSEND_SEND_FIXED` in `flags`) over `bufs`,
        // borrowed until we return, so the bytes stay put during the ioctl;
        // the clones taken on success keep them afterwards (a `Buf` is never
        // written while shared).
        unsafe {
            self.send_raw(
                sock,
                Payload::of(&iov),
                flags,
                dest,
                user_data,
                None,
                || Held::Bufs(bufs.to_vec()),
            )
        }
    }

    /// Sends `ranges` of one registered buffer on `sock`
    /// (`ZCSEND_SEND_FIXED`): nothing is pinned or charged per send, the
    /// buffer's segments become the frags. Otherwise as [`send`](Self::send):
    /// returns the bytes accepted, and every `Ok` is followed by exactly one
    /// [`Completion`] carrying `user_data`. One range is named in the
    /// request itself (`ZCSEND_SEND_FIXED | ZCSEND_SEND_BUF`, `iov` =
    /// `ZCSEND_FIXED_RANGE(index, offset)`, `iovcnt` = its length), so the
    /// module reads no `struct zcsend_range`; several go in an array.
    ///
    /// The library keeps a clone of each [`Fixed`] until the completion has
    /// been read, so until then the buffer can be neither written
    /// ([`Registered::get_mut`]) nor unregistered.
    ///
    /// `EINVAL` before anything is sent if `ranges` is empty, names more than
    /// one buffer, or comes from a registration of another `Device`, and for
    /// `sock` and `flags` as in `send`; then the module's errors (`ENXIO` if
    /// nothing is registered, those of `send`).
    pub fn send_fixed<'s>(
        &self,
        sock: impl Into<SockRef<'s>>,
        ranges: &[Fixed],
        flags: MsgFlags,
        dest: Option<&SocketAddr>,
        user_data: u64,
    ) -> io::Result<usize> {
        // SAFETY: `send_fixed_with` passes the `struct zcsend_send` it built
        // over `ranges` (checked to be of this file's registration, named
        // inline or in an array alive until the call returns), and files
        // clones of the `Fixed`s, which keep the buffer registered and
        // unwritable until the completion, if the send is accepted.
        self.send_fixed_with(sock.into(), ranges, flags, dest, user_data, |req| unsafe {
            self.ioctl(sys::ZCSEND_IOC_SEND, req)
        })
    }

    /// [`send_fixed`](Self::send_fixed) with the ioctl passed in (tests
    /// fake it).
    fn send_fixed_with(
        &self,
        sock: SockRef<'_>,
        ranges: &[Fixed],
        flags: MsgFlags,
        dest: Option<&SocketAddr>,
        user_data: u64,
        ioctl: impl FnOnce(&mut sys::zcsend_send) -> io::Result<libc::c_int>,
    ) -> io::Result<usize> {
        let flags = send_flags(flags, true)?;
        self.check_fixed(ranges)?;
        let arg = FixedArg::new(ranges);
        let (payload, inline) = arg.payload();
        // SAFETY: ranges (`ZCSEND_SEND_FIXED` in `flags`, with
        // `ZCSEND_SEND_BUF` when `arg` names its one range inline) of a
        // buffer this file registered (`check_fixed`); the clones of the
        // `Fixed`s taken on success keep it registered and unwritable until
        // the completion.
        unsafe {
            self.send_raw_with(
                sock,
                payload,
                flags | inline,
                dest,
                user_data,
                None,
                || Held::Fixed(ranges.to_vec()),
                ioctl,
            )
        }
    }

    /// Sends the same `bufs` to every socket in `dests` with one
    /// `ZCSEND_IOC_FANOUT`: the payload is pinned once and shared by the skbs
    /// of all the sockets, and **one** [`Completion`] (with
    /// [`fanout`](Completion::fanout) set) reports when the last of them
    /// released it.
    ///
    /// `Err`: the call failed before anything was sent (`EINVAL` for no or
    /// more than [`MAX_FANOUT`](crate::MAX_FANOUT) destinations, a socket
    /// named twice, bad flags or no buffer, and before the system call for
    /// registered sockets mixed with descriptors or of another `Device`'s
    /// table (see [`Dest`]); `EBADF`, `ENOTSOCK`, `EFAULT`;
    /// the limits of [`send`](Self::send), `EBUSY` and `ENOBUFS`), and no
    /// completion follows. `Ok`: one result per destination, in the order of
    /// `dests`: the bytes that socket accepted, which a stream socket may
    /// take only part of (send the rest to it alone), or that socket's error;
    /// a failing destination does not stop the others. Exactly one
    /// [`Completion`] carrying `user_data` follows, also when no destination
    /// accepted anything; its `bytes` is the sum of the accepted bytes.
    ///
    /// Buffers, as for [`send`](Self::send): the library keeps a clone of
    /// each [`Buf`] until the completion has been read. With `stable`
    /// (`ZCSEND_FANOUT_STABLE`) the module sends a copy of its own, taken
    /// during the call (charged to `RLIMIT_MEMLOCK` like pinned pages), so
    /// the library lets go of its clones as soon as the call returns and the
    /// caller may reuse the memory at once; the completion, with
    /// [`stable`](Completion::stable) set, then says when the module's copy
    /// was freed.
    ///
    /// `flags` are those of [`send`](Self::send), applied to every socket;
    /// the stable mode is chosen by `stable` only (`EINVAL` if `flags`
    /// carries the module's own bits, as for `send`).
    pub fn fanout(
        &self,
        dests: &[Dest<'_>],
        bufs: &[Buf],
        flags: MsgFlags,
        stable: bool,
        user_data: u64,
    ) -> io::Result<Vec<io::Result<usize>>> {
        let flags = fanout_flags(flags, stable, false)?;
        let iov: Vec<libc::iovec> = bufs.iter().map(Buf::iovec).collect();
        // SAFETY: as in `send`: iovecs over `bufs`, borrowed during the
        // ioctl, cloned on success (unless `stable`: the module copied them).
        unsafe {
            self.fanout_raw(dests, Payload::of(&iov), flags, user_data, None, || {
                if stable {
                    Held::Nothing
                } else {
                    Held::Bufs(bufs.to_vec())
                }
            })
        }
    }

    /// [`fanout`](Self::fanout) from `ranges` of one registered buffer
    /// (`ZCSEND_SEND_FIXED`): nothing is pinned at all. One [`Completion`]
    /// follows an `Ok`; the library keeps clones of the [`Fixed`]s until it
    /// has been read. Not stable (the module does not copy registered
    /// memory). `EINVAL` for `ranges` as in [`send_fixed`](Self::send_fixed).
    pub fn fanout_fixed(
        &self,
        dests: &[Dest<'_>],
        ranges: &[Fixed],
        flags: MsgFlags,
        user_data: u64,
    ) -> io::Result<Vec<io::Result<usize>>> {
        let flags = fanout_flags(flags, false, true)?;
        self.check_fixed(ranges)?;
        // Always an array: `ZCSEND_IOC_FANOUT` refuses `ZCSEND_SEND_BUF`,
        // so even one range is not named inline.
        let raw: Vec<sys::zcsend_range> = ranges.iter().map(Fixed::raw).collect();
        // SAFETY: as in `send_fixed`: ranges of this file's registration,
        // whose `Fixed`s are kept until the completion (never stable).
        unsafe {
            self.fanout_raw(dests, Payload::of(&raw), flags, user_data, None, || {
                Held::Fixed(ranges.to_vec())
            })
        }
    }

    /// [`send`](Self::send) over borrowed memory, with nothing to keep it
    /// alive: the caller's job.
    ///
    /// # Safety
    ///
    /// If this returns `Ok`, the memory of every slice in `bufs` must stay
    /// allocated, mapped and unmodified until the send's [`Completion`] has
    /// been read from this `Device`; and if the `Device` is dropped before
    /// that, forever. Prefer [`send`](Self::send) or [`scope`](Self::scope).
    pub unsafe fn send_borrowed<'s>(
        &self,
        sock: impl Into<SockRef<'s>>,
        bufs: &[IoSlice<'_>],
        flags: MsgFlags,
        dest: Option<&SocketAddr>,
        user_data: u64,
    ) -> io::Result<usize> {
        let flags = send_flags(flags, false)?;
        let iov = as_iovecs(bufs);
        // SAFETY: iovecs over `bufs`; past the call, this function's caller
        // keeps them (its `# Safety`).
        unsafe {
            self.send_raw(
                sock.into(),
                Payload::of(iov),
                flags,
                dest,
                user_data,
                None,
                || Held::Nothing,
            )
        }
    }

    /// `EINVAL` unless `ranges` are ranges of one buffer registered with
    /// this file. This is what lets [`Registered::get_mut`] trust its
    /// counts: a send can only name memory whose `Fixed`s it holds.
    pub(crate) fn check_fixed(&self, ranges: &[Fixed]) -> io::Result<()> {
        let ok = match ranges.split_first() {
            None => false,
            Some((first, rest)) => {
                first.is_of(&self.fd) && rest.iter().all(|r| r.same_buffer(first))
            }
        };
        if ok {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(libc::EINVAL))
        }
    }

    /// One `ZCSEND_IOC_SEND` of `payload` (iovecs, or ranges with
    /// `ZCSEND_SEND_FIXED` in `flags`) on `sock` (with
    /// `ZCSEND_SEND_FIXED_SOCKET` added for a registered socket: `EINVAL`
    /// if it is of another file's table), filed with `keep` on success.
    ///
    /// # Safety
    ///
    /// `payload` is an array of `struct iovec` (without `ZCSEND_SEND_FIXED`
    /// or `ZCSEND_SEND_BUF` in `flags`), of `struct zcsend_range` (with
    /// `ZCSEND_SEND_FIXED`), the bytes themselves (with `ZCSEND_SEND_BUF`:
    /// `len` counts bytes) or one registered range (with both:
    /// [`Payload::inline_range`]), and if the send is accepted, the memory
    /// it describes stays allocated, mapped and unmodified until the
    /// completion has been read (see [`ioctl`](Self::ioctl)): held by what
    /// `keep` returns, by a scope (`scope`) that waits for the completion,
    /// or by the caller.
    #[allow(clippy::too_many_arguments)]
    unsafe fn send_raw(
        &self,
        sock: SockRef<'_>,
        payload: Payload<'_>,
        flags: u32,
        dest: Option<&SocketAddr>,
        user_data: u64,
        scope: Option<u64>,
        keep: impl FnOnce() -> Held,
    ) -> io::Result<usize> {
        // SAFETY: `send_raw_with` passes the request it built from
        // `payload` and `flags`, which this function's caller vouches for.
        unsafe {
            self.send_raw_with(sock, payload, flags, dest, user_data, scope, keep, |req| {
                self.ioctl(sys::ZCSEND_IOC_SEND, req)
            })
        }
    }

    /// [`send_raw`](Self::send_raw) with the ioctl passed in: `ioctl` is
    /// called once, with the request, while `payload` and the address are
    /// alive; `keep` is filed if it returns `Ok`.
    ///
    /// # Safety
    ///
    /// As for [`send_raw`](Self::send_raw).
    #[allow(clippy::too_many_arguments)]
    unsafe fn send_raw_with(
        &self,
        sock: SockRef<'_>,
        payload: Payload<'_>,
        flags: u32,
        dest: Option<&SocketAddr>,
        user_data: u64,
        scope: Option<u64>,
        keep: impl FnOnce() -> Held,
        ioctl: impl FnOnce(&mut sys::zcsend_send) -> io::Result<libc::c_int>,
    ) -> io::Result<usize> {
        let (fd, sock_flag) = sock.raw(&self.fd)?;
        let iovcnt =
            u32::try_from(payload.len).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let (addr, addrlen) = match dest {
            Some(a) => sockaddr(a),
            None => (SockAddr::none(), 0),
        };
        let id = self.new_ids(1);
        let mut req = sys::zcsend_send {
            fd,
            flags: flags | sock_flag,
            iov: payload.ptr,
            iovcnt,
            addrlen,
            addr: if addrlen == 0 {
                0
            } else {
                addr.as_ptr() as u64
            },
            user_data: id,
        };
        // A `struct zcsend_send` whose pointers stay valid for the call:
        // `payload` borrows its array (of the kind `flags` says, per this
        // function's contract) and `addr` holds the address. Past the call,
        // this function's caller keeps the payload.
        let n = ioctl(&mut req)?;
        self.track(id, user_data, scope, keep);
        Ok(n as usize)
    }

    /// One `ZCSEND_IOC_FANOUT`; `flags` as made by [`fanout_flags`], plus
    /// `ZCSEND_SEND_FIXED_SOCKET` when `dests` are registered sockets
    /// (`EINVAL` for a mix, or for another file's table).
    ///
    /// # Safety
    ///
    /// As for [`send_raw`](Self::send_raw): `payload` matches `flags`, and
    /// unless `flags` has `ZCSEND_FANOUT_STABLE` (the module copies the
    /// payload during the call), its memory stays put until the completion
    /// has been read.
    unsafe fn fanout_raw(
        &self,
        dests: &[Dest<'_>],
        payload: Payload<'_>,
        flags: u32,
        user_data: u64,
        scope: Option<u64>,
        keep: impl FnOnce() -> Held,
    ) -> io::Result<Vec<io::Result<usize>>> {
        let einval = |_| io::Error::from_raw_os_error(libc::EINVAL);
        let iovcnt = u32::try_from(payload.len).map_err(einval)?;
        let nr = u32::try_from(dests.len()).map_err(einval)?;
        // `_addrs` holds the addresses `raw` points to until we return.
        let (_addrs, mut raw, sock_flag) = fanout_dests(dests, &self.fd)?;
        let id = self.new_ids(1);
        let mut req = sys::zcsend_fanout {
            flags: flags | sock_flag,
            iovcnt,
            iov: payload.ptr,
            dests: raw.as_mut_ptr() as u64,
            nr,
            resv: 0,
            user_data: id,
        };
        // SAFETY: a `struct zcsend_fanout` whose pointers stay valid for the
        // call: `payload` borrows its array, `raw` (written back with the
        // results) holds `nr` destinations and `_addrs` their addresses.
        // Past the call, this function's caller keeps the payload.
        unsafe { self.ioctl(sys::ZCSEND_IOC_FANOUT, &mut req) }?;
        self.track(id, user_data, scope, keep);
        Ok(raw.iter().map(|d| dest_result(d.result)).collect())
    }

    /// Files a call the kernel accepted (`id` in its record's `user_data`):
    /// in flight with clones of its buffers until its record is read, or done
    /// at once if another thread read the record already.
    pub(crate) fn track(
        &self,
        id: u64,
        user_data: u64,
        scope: Option<u64>,
        keep: impl FnOnce() -> Held,
    ) {
        let mut st = lock(&self.state);
        if let Some(s) = scope {
            *st.scopes.entry(s).or_default() += 1;
        }
        let f = InFlight {
            user_data,
            keep: Held::Nothing,
            scope,
        };
        match st.orphans.remove(&id) {
            // Already completed (and read by another thread): done.
            Some(raw) => st.finish(f, &raw),
            None => {
                st.inflight.insert(id, InFlight { keep: keep(), ..f });
            }
        }
    }

    /// Registers `bufs` with the module (`ZCSEND_IOC_REGISTER_BUFFERS`): they
    /// are pinned once, read-only, charged to `RLIMIT_MEMLOCK` once, and
    /// become buffer indexes `0..n` for [`Registered::fixed`] ranges, sent
    /// with [`send_fixed`](Self::send_fixed),
    /// [`fanout_fixed`](Self::fanout_fixed) or in a [`Batch`].
    ///
    /// The returned handle owns the memory; see [`Registered`] for when it
    /// can be written or given back. On failure the buffers come back in the
    /// [`RegisterError`]: `EBUSY` if this file has buffers registered
    /// already, `EINVAL` for no buffer, more than `ZCSEND_MAX_BUFFERS` (1024)
    /// or a length outside 1 byte to 1 GiB, `EFAULT`, `ENOBUFS` over
    /// memlock.
    pub fn register<I>(&self, bufs: I) -> Result<Registered, RegisterError>
    where
        I: IntoIterator,
        I::Item: Into<RegBuf>,
    {
        Registered::register(&self.fd, bufs.into_iter().map(Into::into).collect())
    }

    /// Unregisters `reg` (`ZCSEND_IOC_UNREGISTER_BUFFERS`) and gives its
    /// buffers back, in order.
    ///
    /// Completions that are ready are filed first (without waiting). Then,
    /// if any [`Fixed`] of the registration still exists (in user code, or
    /// held by a send whose completion has not been read) it fails with
    /// `EBUSY` and hands `reg` back in the [`UnregisterError`]: drop the
    /// ranges, read the completions (e.g. [`wait_idle`](Self::wait_idle))
    /// and try again. `EINVAL` for a registration of another `Device`.
    pub fn unregister(&self, reg: Registered) -> Result<Vec<RegBuf>, UnregisterError> {
        if !reg.is_of(&self.fd) {
            return Err(UnregisterError::new(
                io::Error::from_raw_os_error(libc::EINVAL),
                reg,
            ));
        }
        // Let go of the ranges held by sends that completed already.
        let _ = self.reap(false);
        reg.unregister()
    }

    /// Registers `socks` with the module (`ZCSEND_IOC_REGISTER_SOCKETS`):
    /// they become indexes `0..n`, in order, whose [`SockRef`]s
    /// ([`Sockets::get`]) name them in any send, fan-out or batch of this
    /// device with no descriptor lookup per send
    /// (`ZCSEND_SEND_FIXED_SOCKET`).
    ///
    /// The module holds a reference on each socket: closing the descriptors
    /// afterwards does not close the sockets until the table is
    /// unregistered ([`Sockets::unregister`], or dropping the handle) or the
    /// device is closed. One table per device at a time.
    ///
    /// Fails whole, registering nothing: `EBUSY` if this file has sockets
    /// registered already, `EINVAL` for no socket, more than
    /// [`MAX_SOCKETS`](crate::MAX_SOCKETS) (1024) or a socket named twice
    /// (by one descriptor or two of the same socket), `EMFILE` for more
    /// sockets than the caller's `RLIMIT_NOFILE`, and for a descriptor that
    /// is not an IPv4 or IPv6 TCP or UDP socket `EBADF`, `ENOTSOCK`,
    /// `EAFNOSUPPORT` or `EPROTONOSUPPORT`.
    pub fn register_sockets<I>(&self, socks: I) -> io::Result<Sockets>
    where
        I: IntoIterator,
        I::Item: AsFd,
    {
        let fds = socks.into_iter().map(|s| s.as_fd().as_raw_fd()).collect();
        Sockets::register(self, fds)
    }

    /// A builder of sends submitted together with one `ZCSEND_IOC_SUBMIT`.
    pub fn batch<'fd>(&self) -> Batch<'_, 'fd> {
        Batch::new(self)
    }

    /// The file (its address identifies it: [`Fixed`] ranges and
    /// [`SockRef`]s of registered sockets compare it).
    pub(crate) fn file(&self) -> &Arc<OwnedFd> {
        &self.fd
    }

    /// Files records as if read from the module.
    #[cfg(test)]
    pub(crate) fn file_raw_for_tests(&self, raw: &[sys::zcsend_completion]) {
        lock(&self.state).absorb(raw);
    }

    /// Runs `f` with a [`Scope`] whose sends may borrow memory from outside
    /// the scope, and returns only once every send made through the scope has
    /// completed (also when `f` panics), like `std::thread::scope`.
    ///
    /// Completions of the scope's sends are reported like any other, by the
    /// `read_*` methods, inside or after the scope.
    ///
    /// If waiting fails (reading `/dev/zcsend` fails with anything but
    /// `EINTR`), the process aborts: returning would release memory the
    /// kernel may still read.
    pub fn scope<'env, F, R>(&'env self, f: F) -> R
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
    {
        let scope = Scope {
            dev: self,
            id: self.next_scope.fetch_add(1, Ordering::Relaxed),
            _scope: PhantomData,
            _env: PhantomData,
        };
        // Waits when dropped, also while unwinding. Not reachable by `f`, so
        // it cannot be leaked.
        let _guard = ScopeWait {
            dev: self,
            id: scope.id,
        };
        f(&scope)
    }

    /// Sends made through this `Device` whose completion has not been read.
    pub fn in_flight(&self) -> usize {
        lock(&self.state).inflight.len()
    }

    /// Reads completions into `out`, waiting until there is at least one.
    /// Returns how many were stored; `Ok(0)` if `out` is empty or no send is
    /// in flight (waiting would never end). With the ring mapped, ready
    /// records are taken from it first; the wait is a blocking `read(2)`.
    ///
    /// Fails with [`io::ErrorKind::Interrupted`] when a signal interrupts the
    /// wait.
    pub fn read_completions(&self, out: &mut [Completion]) -> io::Result<usize> {
        self.read_completions_inner(out, false)
    }

    /// Reads the completions that are there, without waiting: `Ok(0)` if
    /// there are none (yet). [`peek_completions`](Self::peek_completions)
    /// plus [`advance_completions`](Self::advance_completions); no system
    /// call once the ring is mapped.
    pub fn try_read_completions(&self, out: &mut [Completion]) -> io::Result<usize> {
        self.read_completions_inner(out, true)
    }

    fn read_completions_inner(&self, out: &mut [Completion], nonblock: bool) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let mut rd = if nonblock {
            match self.reader.try_lock() {
                Ok(g) => g,
                Err(TryLockError::Poisoned(e)) => e.into_inner(),
                // Another thread is reading: what it files lands in `pending`.
                Err(TryLockError::WouldBlock) => return Ok(lock(&self.state).take_pending(out)),
            }
        } else {
            lock(&self.reader)
        };
        loop {
            {
                let mut st = lock(&self.state);
                let n = st.take_pending(out);
                if n > 0 || st.inflight.is_empty() {
                    return Ok(n);
                }
            }
            // What is there, from the mapped ring without a system call (or
            // a non-blocking read(2) without one).
            if nonblock || self.ring.get().is_some() {
                if self.reap_locked(&mut rd)? > 0 {
                    continue;
                }
                if nonblock {
                    return Ok(0);
                }
            }
            // Nothing: sleep in read(2), which takes from the same ring.
            let mut raw = [sys::zcsend_completion::default(); READ_BATCH];
            let want = out.len().min(READ_BATCH);
            let got = self.read_raw(&mut rd, &mut raw[..want], false)?;
            if got == 0 {
                return Ok(0);
            }
            lock(&self.state).absorb(&raw[..got]);
        }
    }

    /// Files every record that is ready now, without waiting: from the
    /// mapped ring (no system call) or with non-blocking `read(2)`s. Returns
    /// how many. Needs the reader lock: one consumer at a time.
    fn reap_locked(&self, rd: &mut MutexGuard<'_, bool>) -> io::Result<usize> {
        let mut raw = [sys::zcsend_completion::default(); READ_BATCH];
        let mut total = 0;
        loop {
            let got = match self.ring.get() {
                Some(ring) => {
                    let n = ring.peek(&mut raw);
                    // Copied out: the slots can go back to the kernel.
                    ring.advance(n);
                    n
                }
                None => self.read_raw(rd, &mut raw, true)?,
            };
            if got == 0 {
                return Ok(total);
            }
            // The kernel is done with these sends: release their buffers.
            lock(&self.state).absorb(&raw[..got]);
            total += got;
        }
    }

    /// [`reap_locked`](Self::reap_locked) if the reader lock is free (or
    /// `wait` says to wait for it); `Ok(0)` if another thread is reading,
    /// which files what it reads.
    fn reap(&self, wait: bool) -> io::Result<usize> {
        let mut rd = match self.reader.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) if wait => lock(&self.reader),
            Err(TryLockError::WouldBlock) => return Ok(0),
        };
        self.reap_locked(&mut rd)
    }

    /// Maps the file's completion ring (`mmap` of the header page at
    /// `ZCSEND_RING_OFF_HDR`, read-write, and of the slots at
    /// `ZCSEND_RING_OFF_SLOTS`, read-only, as `zcsend_ring_map()` does).
    /// From then on [`try_read_completions`](Self::try_read_completions),
    /// [`peek_completions`](Self::peek_completions) and
    /// [`wait_completion`](Self::wait_completion) take ready records from it
    /// without a system call; the blocking reads still sleep in `read(2)`,
    /// which consumes the same ring. Mapping twice is a no-op.
    pub fn map_ring(&self) -> io::Result<()> {
        let _init = lock(&self.ring_init);
        if self.ring.get().is_none() {
            let ring = Ring::map(self.fd.as_raw_fd())?;
            // Cannot fail: set only here, under `ring_init`.
            let _ = self.ring.set(ring);
        }
        Ok(())
    }

    /// Whether the completion ring is mapped.
    pub fn ring_mapped(&self) -> bool {
        self.ring.get().is_some()
    }

    /// Slots of the mapped ring (`ZCSEND_MAX_COMPLETIONS`), if mapped.
    pub fn ring_entries(&self) -> Option<usize> {
        self.ring.get().map(Ring::entries)
    }

    /// Asks the module to signal the eventfd only on request
    /// (`ZCSEND_WAKEUP_ON_REQUEST`; maps the ring first if needed), or again
    /// for every record. On request, records posted while the consumer is
    /// busy cost no signal: [`wait_completion`](Self::wait_completion) arms
    /// one wake-up before each sleep. Do not wait on the eventfd yourself in
    /// this mode, it stays silent unless armed.
    pub fn set_wakeup_on_request(&self, on: bool) -> io::Result<()> {
        self.map_ring()?;
        self.ring
            .get()
            .expect("ring mapped above")
            .set_wakeup_on_request(on);
        Ok(())
    }

    /// Copies up to `out.len()` completions, oldest first, into `out`
    /// without consuming them (`zcsend_ring_peek()`); returns how many.
    /// Ready records are filed first, from the mapped ring without a system
    /// call if [`map_ring`](Self::map_ring) was called (else with a
    /// non-blocking `read(2)`): the buffers of their sends are released by
    /// then, as the kernel is done with them.
    ///
    /// One consumer at a time, as for the C ring: another thread that reads
    /// completions between this and [`advance_completions`] takes the ones
    /// seen here.
    ///
    /// [`advance_completions`]: Self::advance_completions
    pub fn peek_completions(&self, out: &mut [Completion]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let have = lock(&self.state).pending.len();
        if have < out.len() {
            self.reap(false)?;
        }
        let st = lock(&self.state);
        let n = out.len().min(st.pending.len());
        for (o, c) in out.iter_mut().zip(st.pending.iter()) {
            *o = *c;
        }
        Ok(n)
    }

    /// Consumes the first `n` completions that
    /// [`peek_completions`](Self::peek_completions) returned
    /// (`zcsend_ring_advance()`); at most as many as are queued.
    pub fn advance_completions(&self, n: usize) {
        let mut st = lock(&self.state);
        let n = n.min(st.pending.len());
        st.pending.drain(..n);
    }

    /// Waits until a completion can be read, sleeping on `efd` (the eventfd
    /// registered with [`set_eventfd`](Self::set_eventfd)) for at most
    /// `timeout` (`None`: no limit): `Ok(true)` when one is ready (take it
    /// with [`peek_completions`](Self::peek_completions) or
    /// [`try_read_completions`](Self::try_read_completions)), `Ok(false)` on
    /// timeout. Like `zcsend_ring_wait()`: with wake-ups on request
    /// ([`set_wakeup_on_request`](Self::set_wakeup_on_request)) it arms one
    /// wake-up, issues a full barrier and looks at the ring once more before
    /// each sleep, so a record posted meanwhile is never missed. Signals do
    /// not end the wait early.
    pub fn wait_completion(&self, efd: &EventFd, timeout: Option<Duration>) -> io::Result<bool> {
        let end = timeout.map(|t| Instant::now() + t);
        loop {
            if !lock(&self.state).pending.is_empty() || self.reap(false)? > 0 {
                return Ok(true);
            }
            if let Some(ring) = self.ring.get() {
                if ring.wakeup_on_request() && ring.arm() {
                    continue;
                }
            }
            let left = end.map(|e| e.saturating_duration_since(Instant::now()));
            if !efd.wait(left)? {
                // One last look: a record may have come without a signal
                // (another consumer took the signal, or it was not armed).
                return Ok(!lock(&self.state).pending.is_empty() || self.reap(false)? > 0);
            }
            efd.reset()?;
        }
    }

    /// Waits until no send is in flight; the completions read meanwhile are
    /// kept for the `read_*` methods. Fails with
    /// [`io::ErrorKind::Interrupted`] on a signal.
    pub fn wait_idle(&self) -> io::Result<()> {
        self.wait_until(false, |st| st.inflight.is_empty())
    }

    /// Reads records (waiting for them) until `done` holds; they go to
    /// `pending`.
    fn wait_until(&self, retry_eintr: bool, done: impl Fn(&State) -> bool) -> io::Result<()> {
        let mut rd = lock(&self.reader);
        loop {
            if done(&lock(&self.state)) {
                return Ok(());
            }
            let mut raw = [sys::zcsend_completion::default(); READ_BATCH];
            match self.read_raw(&mut rd, &mut raw, false) {
                Ok(got) => lock(&self.state).absorb(&raw[..got]),
                Err(e) if retry_eintr && e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// One `read(2)` of whole records. `nonblock` selects `O_NONBLOCK` on the
    /// file (only the holder of `reader` reads or changes it); `Ok(0)` when
    /// non-blocking and nothing is queued.
    fn read_raw(
        &self,
        nonblock_now: &mut MutexGuard<'_, bool>,
        buf: &mut [sys::zcsend_completion],
        nonblock: bool,
    ) -> io::Result<usize> {
        let fd = self.fd.as_raw_fd();
        if **nonblock_now != nonblock {
            set_nonblock(fd, nonblock)?;
            **nonblock_now = nonblock;
        }
        // SAFETY: `buf` is writable for its whole size.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), size_of_val(buf)) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if nonblock && e.kind() == io::ErrorKind::WouldBlock {
                return Ok(0);
            }
            return Err(e);
        }
        let rec = size_of::<sys::zcsend_completion>();
        if n as usize % rec != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("read of /dev/zcsend returned {n} bytes, not whole records"),
            ));
        }
        Ok(n as usize / rec)
    }
}

impl Drop for Device {
    /// Files the records already queued, then leaks the buffers of sends that
    /// are still in flight: once the file is closed their completions can no
    /// longer be read, and freeing the memory could put other data on the
    /// wire. Call [`wait_idle`](Device::wait_idle) first to avoid the leak.
    fn drop(&mut self) {
        let mut rd = lock(&self.reader);
        let mut raw = [sys::zcsend_completion::default(); READ_BATCH];
        while let Ok(got @ 1..) = self.read_raw(&mut rd, &mut raw, true) {
            lock(&self.state).absorb(&raw[..got]);
        }
        drop(rd);
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        for (_, f) in st.inflight.drain() {
            std::mem::forget(f.keep);
        }
    }
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("fd", &self.fd.as_raw_fd())
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

/// Sends over memory borrowed for the whole [`Device::scope`] call.
pub struct Scope<'scope, 'env: 'scope> {
    dev: &'env Device,
    id: u64,
    _scope: PhantomData<&'scope mut &'scope ()>,
    _env: PhantomData<&'env mut &'env ()>,
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// [`Device::send`] over slices borrowed for `'scope`: they can only come
    /// from outside the scope and stay borrowed (so unmodified) until
    /// [`Device::scope`] has seen every completion of the scope and returns.
    pub fn send<'s>(
        &self,
        sock: impl Into<SockRef<'s>>,
        bufs: &[IoSlice<'scope>],
        flags: MsgFlags,
        dest: Option<&SocketAddr>,
        user_data: u64,
    ) -> io::Result<usize> {
        let flags = send_flags(flags, false)?;
        let iov = as_iovecs(bufs);
        // SAFETY: iovecs over slices borrowed for `'scope`, which the
        // caller cannot touch before `Device::scope` has seen this send's
        // completion (filed under `self.id`) and returned.
        unsafe {
            self.dev.send_raw(
                sock.into(),
                Payload::of(iov),
                flags,
                dest,
                user_data,
                Some(self.id),
                || Held::Nothing,
            )
        }
    }

    /// [`Device::fanout`] over slices borrowed for `'scope`, like
    /// [`send`](Self::send): one payload to every socket in `dests`, one
    /// completion, and [`Device::scope`] returns only after it.
    pub fn fanout(
        &self,
        dests: &[Dest<'_>],
        bufs: &[IoSlice<'scope>],
        flags: MsgFlags,
        stable: bool,
        user_data: u64,
    ) -> io::Result<Vec<io::Result<usize>>> {
        let flags = fanout_flags(flags, stable, false)?;
        let iov = as_iovecs(bufs);
        // SAFETY: as in `send`: borrowed for `'scope`, and `Device::scope`
        // returns only after the completion.
        unsafe {
            self.dev.fanout_raw(
                dests,
                Payload::of(iov),
                flags,
                user_data,
                Some(self.id),
                || Held::Nothing,
            )
        }
    }

    /// The device, for its other methods.
    pub fn device(&self) -> &'env Device {
        self.dev
    }
}

struct ScopeWait<'a> {
    dev: &'a Device,
    id: u64,
}

impl Drop for ScopeWait<'_> {
    fn drop(&mut self) {
        let id = self.id;
        let r = self
            .dev
            .wait_until(true, |st| st.scopes.get(&id).copied().unwrap_or(0) == 0);
        if let Err(e) = r {
            eprintln!("zcsend: cannot wait for the sends of a scope: {e}; aborting");
            std::process::abort();
        }
        lock(&self.dev.state).scopes.remove(&id);
    }
}

fn as_iovecs<'a>(bufs: &'a [IoSlice<'_>]) -> &'a [libc::iovec] {
    // SAFETY: `IoSlice` is guaranteed ABI-compatible with `struct iovec` on
    // Unix.
    unsafe { std::slice::from_raw_parts(bufs.as_ptr().cast(), bufs.len()) }
}

/// The module's own bits of `zcsend_send.flags`/`zcsend_fanout.flags`:
/// set by the library only, never taken from a caller's [`MsgFlags`].
const MODULE_BITS: u32 = sys::ZCSEND_SEND_FIXED
    | sys::ZCSEND_FANOUT_STABLE
    | sys::ZCSEND_SEND_BUF
    | sys::ZCSEND_SEND_FIXED_SOCKET;

/// `zcsend_send.flags`: the `MSG_*` flags, plus `ZCSEND_SEND_FIXED` for a
/// send of registered ranges. A caller's flags with the module's bits are
/// refused: a `FIXED` bit on iovecs would make the module read them as
/// ranges and send registered memory that no [`Fixed`] of ours holds; a
/// `BUF` bit would make it send the iovec array itself, which is freed
/// when the call returns; a `FIXED_SOCKET` bit would make it read a
/// descriptor as an index into a table it may not be of. The socket's bit
/// comes from the [`SockRef`] only.
pub(crate) fn send_flags(flags: MsgFlags, fixed: bool) -> io::Result<u32> {
    if flags.bits() & MODULE_BITS != 0 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    Ok(flags.bits() | if fixed { sys::ZCSEND_SEND_FIXED } else { 0 })
}

/// `zcsend_fanout.flags`: the `MSG_*` flags plus `ZCSEND_FANOUT_STABLE` when
/// `stable` and `ZCSEND_SEND_FIXED` when `fixed`. The module's own bits are
/// not taken from `flags`: the library must know whether the module copies
/// (stable) and whether the payload is ranges of registered buffers.
fn fanout_flags(flags: MsgFlags, stable: bool, fixed: bool) -> io::Result<u32> {
    if flags.bits() & MODULE_BITS != 0 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    Ok(flags.bits()
        | if stable { sys::ZCSEND_FANOUT_STABLE } else { 0 }
        | if fixed { sys::ZCSEND_SEND_FIXED } else { 0 })
}

/// The payload of one send as the module reads it: a user pointer to
/// `len` `struct iovec` or (with `ZCSEND_SEND_FIXED`) `struct zcsend_range`;
/// with `ZCSEND_SEND_BUF`, the bytes themselves or (with both) one
/// registered range. Borrows the array so that it outlives the ioctl.
#[derive(Clone, Copy)]
pub(crate) struct Payload<'a> {
    pub(crate) ptr: u64,
    pub(crate) len: usize,
    _array: PhantomData<&'a ()>,
}

impl<'a> Payload<'a> {
    pub(crate) fn of<T>(array: &'a [T]) -> Payload<'a> {
        Payload {
            ptr: array.as_ptr() as u64,
            len: array.len(),
            _array: PhantomData,
        }
    }

    /// The bytes themselves (`ZCSEND_SEND_BUF`): `len` counts bytes.
    pub(crate) fn bytes(bytes: &'a [u8]) -> Payload<'a> {
        Self::of(bytes)
    }

    /// One registered range named in the request
    /// (`ZCSEND_SEND_FIXED | ZCSEND_SEND_BUF`): `iov` is
    /// `ZCSEND_FIXED_RANGE(index, offset)`, `len` the range's bytes. Points
    /// to nothing.
    pub(crate) fn inline_range(iov: u64, len: u32) -> Payload<'static> {
        Payload {
            ptr: iov,
            len: len as usize,
            _array: PhantomData,
        }
    }
}

/// How one send names its [`Fixed`] ranges (of one buffer, checked by
/// [`Device::check_fixed`]) to the module.
pub(crate) enum FixedArg {
    /// The one range in the request itself (`ZCSEND_SEND_FIXED |
    /// ZCSEND_SEND_BUF`): `iov` is `ZCSEND_FIXED_RANGE(index, offset)` and
    /// `len` its length, so the module reads no `struct zcsend_range`.
    Inline { iov: u64, len: u32 },
    /// An array of `struct zcsend_range` (`ZCSEND_SEND_FIXED`): several
    /// ranges, or one whose offset or length does not fit 32 bits (none
    /// does: a registered buffer is at most 1 GiB; never truncated).
    Ranges(Vec<sys::zcsend_range>),
}

impl FixedArg {
    pub(crate) fn new(ranges: &[Fixed]) -> FixedArg {
        if let [one] = ranges {
            if let Some((iov, len)) = one.inline() {
                return FixedArg::Inline { iov, len };
            }
        }
        FixedArg::Ranges(ranges.iter().map(Fixed::raw).collect())
    }

    /// The send's payload, and the bit to add to `ZCSEND_SEND_FIXED` in its
    /// flags: `ZCSEND_SEND_BUF` for the inline form, else 0.
    pub(crate) fn payload(&self) -> (Payload<'_>, u32) {
        match self {
            FixedArg::Inline { iov, len } => {
                (Payload::inline_range(*iov, *len), sys::ZCSEND_SEND_BUF)
            }
            FixedArg::Ranges(r) => (Payload::of(r), 0),
        }
    }
}

/// A fan-out's `struct zcsend_dest` array and the socket addresses it
/// points into (keep them until the ioctl has returned), and the call's
/// `ZCSEND_SEND_FIXED_SOCKET` bit: set when every destination is a
/// registered socket of the file `file`. The module reads every
/// destination's `fd` the same way, so a mix of indexes and descriptors is
/// refused (`EINVAL`), as are indexes of another file's table.
#[allow(clippy::type_complexity)]
fn fanout_dests(
    dests: &[Dest<'_>],
    file: &Arc<OwnedFd>,
) -> io::Result<(Vec<(SockAddr, u32)>, Vec<sys::zcsend_dest>, u32)> {
    let socks: Vec<(RawFd, u32)> = dests
        .iter()
        .map(|d| d.sock.raw(file))
        .collect::<io::Result<_>>()?;
    let sock_flag = socks.first().map_or(0, |&(_, f)| f);
    if socks.iter().any(|&(_, f)| f != sock_flag) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let addrs: Vec<(SockAddr, u32)> = dests
        .iter()
        .map(|d| match &d.addr {
            Some(a) => sockaddr(a),
            None => (SockAddr::none(), 0),
        })
        .collect();
    // The addresses live in `addrs`' heap block, which moving the Vec out
    // does not move.
    let raw = socks
        .iter()
        .zip(&addrs)
        .map(|(&(fd, _), (a, len))| sys::zcsend_dest {
            fd,
            addrlen: *len,
            addr: if *len == 0 { 0 } else { a.as_ptr() as u64 },
            result: 0,
        })
        .collect();
    Ok((addrs, raw, sock_flag))
}

/// One `zcsend_dest.result`: bytes accepted, or a negative errno.
fn dest_result(r: i64) -> io::Result<usize> {
    if r >= 0 {
        // At most the payload's length, which fits a usize.
        Ok(usize::try_from(r).unwrap_or(usize::MAX))
    } else {
        let errno = r
            .checked_neg()
            .and_then(|e| i32::try_from(e).ok())
            .unwrap_or(libc::EIO);
        Err(io::Error::from_raw_os_error(errno))
    }
}

fn set_nonblock(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: plain fcntl on our own descriptor.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl < 0 {
            return Err(io::Error::last_os_error());
        }
        let new = if on {
            fl | libc::O_NONBLOCK
        } else {
            fl & !libc::O_NONBLOCK
        };
        if new != fl && libc::fcntl(fd, libc::F_SETFL, new) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A `sockaddr_in` or `sockaddr_in6`.
pub(crate) struct SockAddr(libc::sockaddr_storage);

impl SockAddr {
    pub(crate) fn none() -> SockAddr {
        // SAFETY: all-zero is a valid sockaddr_storage.
        SockAddr(unsafe { std::mem::zeroed() })
    }

    pub(crate) fn as_ptr(&self) -> *const libc::sockaddr_storage {
        &self.0
    }
}

pub(crate) fn sockaddr(a: &SocketAddr) -> (SockAddr, u32) {
    let mut s = SockAddr::none();
    let p: *mut libc::sockaddr_storage = &mut s.0;
    match a {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger and more aligned.
            unsafe { p.cast::<libc::sockaddr_in>().write(sin) };
            (s, size_of::<libc::sockaddr_in>() as u32)
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo().to_be(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above.
            unsafe { p.cast::<libc::sockaddr_in6>().write(sin6) };
            (s, size_of::<libc::sockaddr_in6>() as u32)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{ZCSEND_COMPL_COPIED, ZCSEND_COMPL_COPY_PATH, ZCSEND_COMPL_ZEROCOPY};
    use std::os::fd::AsFd;

    fn raw(id: u64, bytes: u64, flags: u32) -> sys::zcsend_completion {
        sys::zcsend_completion {
            user_data: id,
            bytes,
            flags,
            result: 0,
        }
    }

    #[test]
    fn decode_flags() {
        let c = Completion::from_raw(&raw(7, 4096, ZCSEND_COMPL_ZEROCOPY), 42);
        assert_eq!(
            c,
            Completion {
                user_data: 42,
                bytes: 4096,
                zerocopy: true,
                copy_path: false,
                fanout: false,
                stable: false,
                result: 0
            }
        );
        let c = Completion::from_raw(
            &raw(7, 100, ZCSEND_COMPL_COPIED | ZCSEND_COMPL_COPY_PATH),
            1,
        );
        assert!(!c.zerocopy && c.copy_path && c.bytes == 100);
        let c = Completion::from_raw(&raw(7, 1, ZCSEND_COMPL_COPIED), 1);
        assert!(!c.zerocopy && !c.copy_path);
        // Malformed: never claim zero-copy.
        let both = ZCSEND_COMPL_ZEROCOPY | ZCSEND_COMPL_COPIED;
        assert!(!Completion::from_raw(&raw(7, 1, both), 1).zerocopy);
        assert!(!Completion::from_raw(&raw(7, 1, 0), 1).zerocopy);
    }

    #[test]
    fn decode_from_bytes() {
        // A record as read(2) delivers it: native endian, 24 bytes.
        let mut bytes = [0u8; 24];
        bytes[..8].copy_from_slice(&9u64.to_ne_bytes());
        bytes[8..16].copy_from_slice(&65536u64.to_ne_bytes());
        bytes[16..20].copy_from_slice(&(ZCSEND_COMPL_ZEROCOPY).to_ne_bytes());
        let mut r = sys::zcsend_completion::default();
        // SAFETY: plain-old-data of the same size.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                (&mut r as *mut sys::zcsend_completion).cast(),
                24,
            )
        };
        assert_eq!(r.user_data, 9);
        let c = Completion::from_raw(&r, 5);
        assert_eq!((c.user_data, c.bytes, c.zerocopy), (5, 65536, true));
    }

    fn bufs() -> Vec<Buf> {
        vec![Buf::from(vec![0u8; 16])]
    }

    #[test]
    fn bookkeeping_releases_buffers_on_completion() {
        let mut st = State::default();
        let mine = std::sync::Arc::new(vec![1u8; 64]);
        st.inflight.insert(
            3,
            InFlight {
                user_data: 100,
                keep: Held::Bufs(vec![Buf::from_arc(mine.clone())]),
                scope: None,
            },
        );
        st.inflight.insert(
            4,
            InFlight {
                user_data: 101,
                keep: Held::Bufs(bufs()),
                scope: None,
            },
        );
        assert_eq!(std::sync::Arc::strong_count(&mine), 2);
        st.absorb(&[raw(3, 64, ZCSEND_COMPL_ZEROCOPY)]);
        assert_eq!(std::sync::Arc::strong_count(&mine), 1, "released");
        let mut out = [Completion::default(); 4];
        assert_eq!(st.take_pending(&mut out), 1);
        assert_eq!(out[0].user_data, 100);
        assert!(out[0].zerocopy);
        assert_eq!(st.inflight.len(), 1);
        // A record for a send not registered yet is parked.
        st.absorb(&[raw(9, 1, ZCSEND_COMPL_COPIED)]);
        assert!(st.orphans.contains_key(&9));
        assert_eq!(st.take_pending(&mut out), 0);
    }

    #[test]
    fn bookkeeping_counts_scopes() {
        let mut st = State::default();
        st.scopes.insert(1, 2);
        for id in [10, 11] {
            st.inflight.insert(
                id,
                InFlight {
                    user_data: id,
                    keep: Held::Nothing,
                    scope: Some(1),
                },
            );
        }
        st.absorb(&[raw(11, 5, ZCSEND_COMPL_COPIED)]);
        assert_eq!(st.scopes[&1], 1);
        st.absorb(&[raw(10, 5, ZCSEND_COMPL_COPIED)]);
        assert_eq!(st.scopes[&1], 0);
        let mut out = [Completion::default(); 1];
        assert_eq!(st.take_pending(&mut out), 1);
        assert_eq!(out[0].user_data, 11, "oldest first");
        assert_eq!(st.take_pending(&mut out), 1);
        assert_eq!(out[0].user_data, 10);
    }

    #[test]
    fn sockaddr_encoding() {
        let (s, len) = sockaddr(&"10.77.0.1:7878".parse().unwrap());
        assert_eq!(len as usize, size_of::<libc::sockaddr_in>());
        // SAFETY: written as a sockaddr_in above.
        let sin = unsafe { &*s.as_ptr().cast::<libc::sockaddr_in>() };
        assert_eq!(sin.sin_family as i32, libc::AF_INET);
        assert_eq!(u16::from_be(sin.sin_port), 7878);
        assert_eq!(sin.sin_addr.s_addr.to_ne_bytes(), [10, 77, 0, 1]);

        let (s, len) = sockaddr(&"[fd77::1%3]:7879".parse().unwrap());
        assert_eq!(len as usize, size_of::<libc::sockaddr_in6>());
        // SAFETY: written as a sockaddr_in6 above.
        let sin6 = unsafe { &*s.as_ptr().cast::<libc::sockaddr_in6>() };
        assert_eq!(sin6.sin6_family as i32, libc::AF_INET6);
        assert_eq!(u16::from_be(sin6.sin6_port), 7879);
        assert_eq!(sin6.sin6_addr.s6_addr[0], 0xfd);
        assert_eq!(sin6.sin6_addr.s6_addr[15], 1);
        assert_eq!(sin6.sin6_scope_id, 3);
    }

    #[test]
    fn decode_fanout_flags() {
        use crate::sys::{ZCSEND_COMPL_FANOUT, ZCSEND_COMPL_STABLE};
        let c = Completion::from_raw(
            &raw(1, 3 << 18, ZCSEND_COMPL_ZEROCOPY | ZCSEND_COMPL_FANOUT),
            9,
        );
        assert!(c.fanout && !c.stable && c.zerocopy && !c.copy_path);
        assert_eq!((c.user_data, c.bytes), (9, 3 << 18));
        let c = Completion::from_raw(
            &raw(
                1,
                10,
                ZCSEND_COMPL_COPIED | ZCSEND_COMPL_FANOUT | ZCSEND_COMPL_STABLE,
            ),
            9,
        );
        assert!(c.fanout && c.stable && !c.zerocopy);
        // A plain send's record says neither.
        let c = Completion::from_raw(&raw(1, 10, ZCSEND_COMPL_ZEROCOPY), 9);
        assert!(!c.fanout && !c.stable);
    }

    /// The set operations, and a file that does not know
    /// `ZCSEND_IOC_FEATURES` (an older module; here /dev/null, `ENOTTY`)
    /// reads as the empty set rather than an error.
    #[test]
    fn features_bits_and_legacy() {
        let named = [
            Features::SEND_BUF,
            Features::FIXED_BUFFERS,
            Features::FIXED_INLINE,
            Features::FIXED_SOCKETS,
            Features::SUBMIT,
            Features::FANOUT,
            Features::FANOUT_STABLE,
            Features::RING_MMAP,
        ];
        // One bit each, in the header's order, and ALL is all of them.
        for (i, f) in named.iter().enumerate() {
            assert_eq!(f.bits(), 1 << i);
            assert!(Features::ALL.contains(*f));
            assert!(!Features::LEGACY.contains(*f));
        }
        let mut all = Features::LEGACY;
        for f in named {
            all |= f;
        }
        assert_eq!(all, Features::ALL);
        assert_eq!(Features::ALL.bits(), 0xff);
        assert_eq!(Features::default(), Features::LEGACY);
        let some = Features::SEND_BUF | Features::SUBMIT;
        assert!(some.contains(Features::SUBMIT));
        assert!(some.contains(some) && some.contains(Features::LEGACY));
        assert!(!some.contains(Features::SUBMIT | Features::FANOUT));
        // Unknown bits of a newer module are kept.
        let newer = Features::from_bits_retain(Features::ALL.bits() | (1 << 40));
        assert!(newer.contains(Features::ALL));
        assert_eq!(newer.bits() >> 40, 1);

        let dev = Device::open_path("/dev/null").unwrap();
        assert_eq!(dev.features().unwrap(), Features::LEGACY);
        assert_eq!(
            dev.version().unwrap_err().raw_os_error(),
            Some(libc::ENOTTY)
        );
    }

    #[test]
    fn fanout_flag_bits() {
        let f = MsgFlags::NOSIGNAL | MsgFlags::DONTWAIT;
        assert_eq!(fanout_flags(f, false, false).unwrap(), f.bits());
        assert_eq!(
            fanout_flags(f, true, false).unwrap(),
            f.bits() | sys::ZCSEND_FANOUT_STABLE
        );
        assert_eq!(
            fanout_flags(f, false, true).unwrap(),
            f.bits() | sys::ZCSEND_SEND_FIXED
        );
        assert_eq!(send_flags(f, false).unwrap(), f.bits());
        assert_eq!(
            send_flags(f, true).unwrap(),
            f.bits() | sys::ZCSEND_SEND_FIXED
        );
        // The module's own bits come from the library, never from `flags`.
        for bit in [
            sys::ZCSEND_FANOUT_STABLE,
            sys::ZCSEND_SEND_FIXED,
            sys::ZCSEND_SEND_BUF,
            sys::ZCSEND_SEND_FIXED_SOCKET,
        ] {
            let e = fanout_flags(MsgFlags::from_bits_retain(bit), true, false).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
            for fixed in [false, true] {
                let e = send_flags(MsgFlags::from_bits_retain(bit), fixed).unwrap_err();
                assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
            }
        }
    }

    #[test]
    fn fanout_dest_array() {
        let a = std::fs::File::open("/dev/null").unwrap();
        let b = std::fs::File::open("/dev/null").unwrap();
        let v4: SocketAddr = "10.77.0.1:7880".parse().unwrap();
        let v6: SocketAddr = "[fd77::1]:7880".parse().unwrap();
        let dests = [
            Dest::new(a.as_fd()),
            Dest::to(b.as_fd(), v4),
            Dest::from(a.as_fd()),
            Dest::to(b.as_fd(), v6),
        ];
        let (addrs, raw, flag) =
            fanout_dests(&dests, &crate::registered::tests::null_fd()).unwrap();
        assert_eq!(flag, 0, "descriptors");
        assert_eq!(raw.len(), 4);
        assert_eq!(raw[0].fd, a.as_raw_fd());
        assert_eq!((raw[0].addrlen, raw[0].addr, raw[0].result), (0, 0, 0));
        assert_eq!(raw[2].fd, a.as_raw_fd());
        assert_eq!((raw[2].addrlen, raw[2].addr), (0, 0));
        assert_eq!(raw[1].fd, b.as_raw_fd());
        assert_eq!(raw[1].addrlen as usize, size_of::<libc::sockaddr_in>());
        assert_eq!(raw[3].addrlen as usize, size_of::<libc::sockaddr_in6>());
        // Each address points at its own encoding, which stays in `addrs`.
        assert_eq!(raw[1].addr, addrs[1].0.as_ptr() as u64);
        assert_eq!(raw[3].addr, addrs[3].0.as_ptr() as u64);
        // SAFETY: written as a sockaddr_in by `sockaddr`, alive in `addrs`.
        let sin = unsafe { &*(raw[1].addr as *const libc::sockaddr_in) };
        assert_eq!(sin.sin_family as i32, libc::AF_INET);
        assert_eq!(u16::from_be(sin.sin_port), 7880);
        assert_eq!(sin.sin_addr.s_addr.to_ne_bytes(), [10, 77, 0, 1]);
        // SAFETY: written as a sockaddr_in6, alive in `addrs`.
        let sin6 = unsafe { &*(raw[3].addr as *const libc::sockaddr_in6) };
        assert_eq!(sin6.sin6_family as i32, libc::AF_INET6);
        assert_eq!(sin6.sin6_addr.s6_addr[0], 0xfd);
        assert!(fanout_dests(&[], &crate::registered::tests::null_fd())
            .unwrap()
            .1
            .is_empty());
    }

    /// Registered sockets in a fan-out: indexes with the call's
    /// `ZCSEND_SEND_FIXED_SOCKET` bit, all of one table of this file.
    #[test]
    fn fanout_dest_indexes() {
        use crate::registered::tests::null_fd;
        use crate::sockets::tests::unregistered;
        let file = null_fd();
        let socks = unregistered(&file, 3);
        let theirs = unregistered(&null_fd(), 3);
        let v4: SocketAddr = "10.77.0.1:7880".parse().unwrap();
        let dests = [
            Dest::new(socks.get(2).unwrap()),
            Dest::to(socks.get(0).unwrap(), v4),
            Dest::from(socks.get(1).unwrap()),
        ];
        let (addrs, raw, flag) = fanout_dests(&dests, &file).unwrap();
        assert_eq!(flag, sys::ZCSEND_SEND_FIXED_SOCKET);
        let fds: Vec<i32> = raw.iter().map(|d| d.fd).collect();
        assert_eq!(fds, [2, 0, 1], "the indexes, in order");
        assert_eq!((raw[0].addrlen, raw[0].addr), (0, 0));
        assert_eq!(raw[1].addrlen as usize, size_of::<libc::sockaddr_in>());
        assert_eq!(raw[1].addr, addrs[1].0.as_ptr() as u64);
        // One kind per call: a descriptor among indexes (either order).
        let f = std::fs::File::open("/dev/null").unwrap();
        for mixed in [
            [Dest::new(socks.get(0).unwrap()), Dest::new(f.as_fd())],
            [Dest::new(&f), Dest::new(socks.get(0).unwrap())],
        ] {
            let Err(e) = fanout_dests(&mixed, &file) else {
                panic!("accepted");
            };
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        }
        // Another file's table, alone or among ours.
        for other in [
            vec![Dest::new(theirs.get(0).unwrap())],
            vec![
                Dest::new(socks.get(0).unwrap()),
                Dest::new(theirs.get(1).unwrap()),
            ],
        ] {
            let Err(e) = fanout_dests(&other, &file) else {
                panic!("accepted");
            };
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        }
    }

    /// Sends, fan-outs and scopes refuse registered sockets of another
    /// device's table and mixed fan-outs before the system call (EINVAL,
    /// where this "module", /dev/null, would say ENOTTY), and keep nothing.
    #[test]
    fn registered_sockets_checked_before_the_call() {
        use crate::sockets::tests::unregistered;
        let dev = Device::open_path("/dev/null").unwrap();
        let other = Device::open_path("/dev/null").unwrap();
        let socks = unregistered(dev.file(), 2);
        let theirs = unregistered(other.file(), 2);
        let f = std::fs::File::open("/dev/null").unwrap();
        let mine = std::sync::Arc::new(vec![5u8; 4096]);
        let b = [Buf::from_arc(mine.clone())];
        let errno = |r: io::Result<usize>| r.unwrap_err().raw_os_error().unwrap();
        let ours = socks.get(1).unwrap();
        let alien = theirs.get(1).unwrap();
        assert_eq!(
            errno(dev.send(ours, &b, MsgFlags::NONE, None, 1)),
            libc::ENOTTY
        );
        assert_eq!(
            errno(dev.send(alien, &b, MsgFlags::NONE, None, 1)),
            libc::EINVAL
        );
        assert_eq!(
            errno(other.send(alien, &b, MsgFlags::NONE, None, 1)),
            libc::ENOTTY
        );
        // The socket's bit comes from the SockRef, never from the flags.
        let bit = MsgFlags::from_bits_retain(sys::ZCSEND_SEND_FIXED_SOCKET);
        assert_eq!(errno(dev.send(ours, &b, bit, None, 1)), libc::EINVAL);
        assert_eq!(errno(dev.send(&f, &b, bit, None, 1)), libc::EINVAL);
        let reg = crate::registered::tests::unregistered(&dev.fd, vec![vec![0u8; 64].into()]);
        let r = [reg.fixed(0, ..)];
        assert_eq!(
            errno(dev.send_fixed(ours, &r, MsgFlags::NONE, None, 1)),
            libc::ENOTTY
        );
        assert_eq!(
            errno(dev.send_fixed(alien, &r, MsgFlags::NONE, None, 1)),
            libc::EINVAL
        );
        let fan = |dests: &[Dest<'_>]| {
            dev.fanout(dests, &b, MsgFlags::NONE, false, 2)
                .unwrap_err()
                .raw_os_error()
                .unwrap()
        };
        assert_eq!(
            fan(&[Dest::new(ours), Dest::new(socks.get(0).unwrap())]),
            libc::ENOTTY
        );
        assert_eq!(fan(&[Dest::new(ours), Dest::new(&f)]), libc::EINVAL);
        assert_eq!(fan(&[Dest::new(alien)]), libc::EINVAL);
        let e = dev
            .fanout_fixed(&[Dest::new(&f), Dest::new(ours)], &r, MsgFlags::NONE, 3)
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        let payload = [7u8; 100];
        dev.scope(|s| {
            let one = [IoSlice::new(&payload)];
            assert_eq!(
                errno(s.send(alien, &one, MsgFlags::NONE, None, 4)),
                libc::EINVAL
            );
            assert_eq!(
                errno(s.send(ours, &one, MsgFlags::NONE, None, 4)),
                libc::ENOTTY
            );
            let e = s
                .fanout(
                    &[Dest::new(&f), Dest::new(ours)],
                    &one,
                    MsgFlags::NONE,
                    true,
                    5,
                )
                .unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        });
        drop(r);
        assert_eq!(dev.in_flight(), 0);
        assert!(!reg.in_use(0));
        drop(b);
        assert_eq!(std::sync::Arc::strong_count(&mine), 1);
    }

    #[test]
    fn fanout_dest_results() {
        assert_eq!(dest_result(0).unwrap(), 0);
        assert_eq!(dest_result(262_144).unwrap(), 262_144);
        let e = dest_result(-i64::from(libc::EPIPE)).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPIPE));
        let e = dest_result(-i64::from(libc::EAGAIN)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        // Nonsense from the kernel does not panic.
        assert_eq!(
            dest_result(i64::MIN).unwrap_err().raw_os_error(),
            Some(libc::EIO)
        );
        assert_eq!(
            dest_result(-(1i64 << 40)).unwrap_err().raw_os_error(),
            Some(libc::EIO)
        );
    }

    /// A failed fan-out (here: a device that is not zcsend, so `ENOTTY`)
    /// posts no completion, so the library must keep nothing in flight and
    /// hold on to no buffer.
    #[test]
    fn failed_fanout_keeps_nothing() {
        let dev = Device::open_path("/dev/null").unwrap();
        let sock = std::fs::File::open("/dev/null").unwrap();
        let mine = std::sync::Arc::new(vec![3u8; 4096]);
        for stable in [false, true] {
            let e = dev
                .fanout(
                    &[Dest::new(sock.as_fd())],
                    &[Buf::from_arc(mine.clone())],
                    MsgFlags::NOSIGNAL,
                    stable,
                    5,
                )
                .unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ENOTTY));
        }
        // Refused before the ioctl.
        let e = dev
            .fanout(
                &[Dest::new(sock.as_fd())],
                &[Buf::from_arc(mine.clone())],
                MsgFlags::from_bits_retain(sys::ZCSEND_SEND_FIXED),
                false,
                6,
            )
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        let r = dev.scope(|s| {
            s.fanout(
                &[Dest::new(sock.as_fd())],
                &[IoSlice::new(&mine[..])],
                MsgFlags::NONE,
                false,
                7,
            )
        });
        assert!(r.is_err());
        assert_eq!(dev.in_flight(), 0);
        assert_eq!(std::sync::Arc::strong_count(&mine), 1);
    }

    /// A device on /dev/null with a fake ring: the module's side is played
    /// by `ring::fake::Kernel`.
    fn ring_dev(entries: u32) -> (Device, crate::ring::fake::Kernel) {
        let dev = Device::open_path("/dev/null").unwrap();
        let (ring, kernel) = crate::ring::fake::ring(entries);
        dev.ring.set(ring).unwrap();
        assert!(dev.ring_mapped());
        assert_eq!(dev.ring_entries(), Some(entries as usize));
        (dev, kernel)
    }

    /// Completions come from the mapped ring: peek does not consume,
    /// advance does, and a send's buffers are released when its record is
    /// taken from the ring, not before.
    #[test]
    fn ring_peek_advance_release() {
        let (dev, kernel) = ring_dev(8);
        let mine = std::sync::Arc::new(vec![1u8; 4096]);
        for id in 0..3 {
            dev.track(id, 100 + id, None, || {
                Held::Bufs(vec![Buf::from_arc(mine.clone())])
            });
        }
        let mut out = [Completion::default(); 8];
        assert_eq!(dev.peek_completions(&mut out).unwrap(), 0);
        assert_eq!(std::sync::Arc::strong_count(&mine), 4, "nothing completed");
        kernel.post(raw(0, 10, ZCSEND_COMPL_ZEROCOPY), None);
        kernel.post(raw(1, 11, ZCSEND_COMPL_COPIED), None);
        assert_eq!(std::sync::Arc::strong_count(&mine), 4, "not seen yet");
        assert_eq!(dev.peek_completions(&mut out[..1]).unwrap(), 1);
        // Both records were taken from the ring and filed: the kernel's
        // slots are free and so are the two sends' buffers.
        assert_eq!(kernel.queued(), 0);
        assert_eq!(std::sync::Arc::strong_count(&mine), 2);
        assert_eq!(dev.in_flight(), 1);
        assert_eq!(dev.peek_completions(&mut out).unwrap(), 2, "peek again");
        assert_eq!(
            (out[0].user_data, out[0].bytes, out[0].zerocopy),
            (100, 10, true)
        );
        assert_eq!((out[1].user_data, out[1].zerocopy), (101, false));
        dev.advance_completions(1);
        assert_eq!(dev.peek_completions(&mut out).unwrap(), 1);
        assert_eq!(out[0].user_data, 101);
        dev.advance_completions(5);
        assert_eq!(dev.peek_completions(&mut out).unwrap(), 0);
        // try_read_completions takes from the ring too (no read(2): this
        // is /dev/null, which would say end of file).
        kernel.post(raw(2, 12, ZCSEND_COMPL_ZEROCOPY), None);
        assert_eq!(dev.try_read_completions(&mut out).unwrap(), 1);
        assert_eq!(out[0].user_data, 102);
        assert_eq!(std::sync::Arc::strong_count(&mine), 1);
        assert_eq!(dev.in_flight(), 0);
    }

    /// The ring wraps many times under a consumer that takes a few records
    /// at a time.
    #[test]
    fn ring_many_laps() {
        let (dev, kernel) = ring_dev(4);
        let mut out = [Completion::default(); 3];
        let mut next = 0u64;
        let mut seen = 0u64;
        while seen < 50 {
            while kernel.queued() < 4 && next < 50 {
                dev.track(next, next * 2, None, || Held::Nothing);
                kernel.post(raw(next, 1, ZCSEND_COMPL_ZEROCOPY), None);
                next += 1;
            }
            let n = dev.peek_completions(&mut out).unwrap();
            for c in &out[..n] {
                assert_eq!(c.user_data, seen * 2, "in order");
                seen += 1;
            }
            dev.advance_completions(n);
        }
        assert_eq!(dev.in_flight(), 0);
    }

    /// Wake-ups on request against a producer thread: every record is
    /// found, none waits for a signal that never comes, and records posted
    /// while the consumer is busy are not signalled.
    #[test]
    fn ring_wakeup_on_request_loses_nothing() {
        const N: u64 = 2000;
        let (dev, kernel) = ring_dev(64);
        let efd = EventFd::new().unwrap();
        dev.set_wakeup_on_request(true).unwrap();
        for id in 0..N {
            dev.track(id, id, None, || Held::Nothing);
        }
        let signals = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            s.spawn(|| {
                for id in 0..N {
                    while kernel.queued() >= 64 {
                        std::thread::yield_now();
                    }
                    if kernel.post(raw(id, 1, ZCSEND_COMPL_ZEROCOPY), Some(efd.as_fd())) {
                        signals.fetch_add(1, Ordering::Relaxed);
                    }
                    if id % 7 == 0 {
                        std::thread::sleep(Duration::from_micros(50));
                    }
                }
            });
            let mut out = [Completion::default(); 16];
            let mut seen = 0;
            while seen < N {
                assert!(
                    dev.wait_completion(&efd, Some(Duration::from_secs(20)))
                        .unwrap(),
                    "lost wake-up after {seen} records"
                );
                let n = dev.peek_completions(&mut out).unwrap();
                assert!(n > 0, "woken without a record");
                for c in &out[..n] {
                    assert_eq!(c.user_data, seen);
                    seen += 1;
                }
                dev.advance_completions(n);
            }
        });
        assert_eq!(dev.in_flight(), 0);
        let signals = signals.load(Ordering::Relaxed);
        assert!(signals < N, "on request, yet every record signalled");
        // Back to a signal per record.
        dev.set_wakeup_on_request(false).unwrap();
        dev.track(N, 0, None, || Held::Nothing);
        assert!(kernel.post(raw(N, 1, ZCSEND_COMPL_ZEROCOPY), Some(efd.as_fd())));
        assert!(dev.wait_completion(&efd, Some(Duration::ZERO)).unwrap());
    }

    #[test]
    fn wait_completion_times_out() {
        let (dev, kernel) = ring_dev(4);
        let efd = EventFd::new().unwrap();
        for on_request in [false, true] {
            dev.set_wakeup_on_request(on_request).unwrap();
            let t = std::time::Instant::now();
            assert!(!dev
                .wait_completion(&efd, Some(Duration::from_millis(20)))
                .unwrap());
            assert!(t.elapsed() >= Duration::from_millis(20));
        }
        // The wait that timed out left a wake-up armed: the next record is
        // signalled, and disarms it.
        dev.track(0, 5, None, || Held::Nothing);
        assert!(kernel.post(raw(0, 1, ZCSEND_COMPL_COPIED), None));
        // A record that comes without a signal is still found.
        dev.track(1, 6, None, || Held::Nothing);
        assert!(!kernel.post(raw(1, 1, ZCSEND_COMPL_COPIED), None));
        assert!(dev.wait_completion(&efd, Some(Duration::ZERO)).unwrap());
        let mut out = [Completion::default(); 4];
        assert_eq!(dev.try_read_completions(&mut out).unwrap(), 2);
    }

    /// Registered ranges in flight: the buffer is neither writable nor
    /// unregistrable until the completion was taken, and sends refuse
    /// ranges that are not this device's.
    #[test]
    fn fixed_sends_hold_their_buffer() {
        use crate::registered::tests::unregistered;
        let (dev, kernel) = ring_dev(8);
        let other = Device::open_path("/dev/null").unwrap();
        let mut reg = unregistered(&dev.fd, vec![vec![0u8; 64].into()]);
        let theirs = unregistered(&other.fd, vec![vec![0u8; 64].into()]);
        let sock = std::fs::File::open("/dev/null").unwrap();
        let einval = |r: io::Result<usize>| {
            assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EINVAL));
        };
        einval(dev.send_fixed(
            sock.as_fd(),
            &[theirs.fixed(0, ..)],
            MsgFlags::NONE,
            None,
            1,
        ));
        einval(dev.send_fixed(sock.as_fd(), &[], MsgFlags::NONE, None, 1));
        einval(dev.send(
            sock.as_fd(),
            &[Buf::from("x")],
            MsgFlags::from_bits_retain(sys::ZCSEND_SEND_FIXED),
            None,
            1,
        ));
        // Passes the checks, then the "module" (/dev/null) refuses:
        // nothing is held.
        let e = dev
            .send_fixed(sock.as_fd(), &[reg.fixed(0, ..8)], MsgFlags::NONE, None, 1)
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOTTY));
        let e = dev
            .fanout_fixed(
                &[Dest::new(sock.as_fd())],
                &[reg.fixed(0, ..)],
                MsgFlags::NONE,
                1,
            )
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOTTY));
        assert!(reg.get_mut(0).is_some());
        // As an accepted send would: filed with its ranges.
        let ranges = [reg.fixed(0, ..16), reg.fixed(0, 32..)];
        dev.track(7, 70, None, || Held::Fixed(ranges.to_vec()));
        drop(ranges);
        assert!(reg.get_mut(0).is_none(), "in flight");
        let e = dev.unregister(reg).unwrap_err();
        assert_eq!(e.error().raw_os_error(), Some(libc::EBUSY));
        let reg = e.into_registered();
        // Another device's registration.
        let e = other.unregister(reg).unwrap_err();
        assert_eq!(e.error().raw_os_error(), Some(libc::EINVAL));
        let mut reg = e.into_registered();
        // The completion arrives; unregister files it first.
        kernel.post(raw(7, 48, ZCSEND_COMPL_ZEROCOPY), None);
        assert!(reg.get_mut(0).is_none(), "not taken from the ring yet");
        let mut out = [Completion::default(); 2];
        assert_eq!(dev.peek_completions(&mut out).unwrap(), 1);
        reg.get_mut(0).unwrap()[0] = 1;
        let back = dev.unregister(reg).unwrap();
        assert_eq!(back[0].as_bytes()[0], 1);
        drop(theirs);
    }

    /// `send_fixed` names one range in the request itself
    /// (`ZCSEND_SEND_FIXED | ZCSEND_SEND_BUF`, `iov` =
    /// `ZCSEND_FIXED_RANGE(index, offset)`, `iovcnt` = length), several in a
    /// `struct zcsend_range` array, and one that does not fit 32 bits in
    /// the array too, untruncated; either way the ranges are held until the
    /// completion.
    #[test]
    fn send_fixed_encoding() {
        use crate::registered::tests::{fixed_unchecked, unregistered};
        use crate::sockets::tests::unregistered as sockets;
        use std::os::fd::AsRawFd;
        let dev = Device::open_path("/dev/null").unwrap();
        let reg = unregistered(&dev.fd, vec![vec![0u8; 64].into(), vec![1u8; 8192].into()]);
        let socks = sockets(dev.file(), 2);
        let sock = std::fs::File::open("/dev/null").unwrap();
        let to: SocketAddr = "10.77.0.1:7879".parse().unwrap();
        // What the "module" sees: the request, and the ranges it points to
        // (read during the call, while they exist).
        let send = |s: SockRef<'_>, ranges: &[Fixed], dest: Option<&SocketAddr>, ud: u64| {
            let mut seen = None;
            let n = dev
                .send_fixed_with(s, ranges, MsgFlags::NOSIGNAL, dest, ud, |req| {
                    let array = if req.flags & sys::ZCSEND_SEND_BUF != 0 {
                        Vec::new()
                    } else {
                        // SAFETY: `iovcnt` ranges, alive during the call.
                        unsafe {
                            std::slice::from_raw_parts(
                                req.iov as *const sys::zcsend_range,
                                req.iovcnt as usize,
                            )
                        }
                        .to_vec()
                    };
                    seen = Some((*req, array));
                    Ok(3)
                })
                .unwrap();
            assert_eq!(n, 3);
            seen.unwrap()
        };
        let fixed = libc::MSG_NOSIGNAL as u32 | sys::ZCSEND_SEND_FIXED;
        let inline = fixed | sys::ZCSEND_SEND_BUF;
        let mut ids = Vec::new();

        // One range, by descriptor, to an address.
        let (req, _) = send(
            sock.as_fd().into(),
            &[reg.fixed(1, 4000..4100)],
            Some(&to),
            1,
        );
        assert_eq!((req.fd, req.flags), (sock.as_raw_fd(), inline));
        assert_eq!((req.iov, req.iovcnt), ((1 << 32) | 4000, 100));
        assert_eq!(req.addrlen as usize, size_of::<libc::sockaddr_in>());
        assert!(reg.in_use(1), "the library holds the range in flight");
        ids.push(req.user_data);
        // One range, by registered socket, no address.
        let (req, _) = send(socks.get(1).unwrap(), &[reg.fixed(0, ..)], None, 2);
        assert_eq!(
            (req.fd, req.flags),
            (1, inline | sys::ZCSEND_SEND_FIXED_SOCKET)
        );
        assert_eq!((req.iov, req.iovcnt, req.addrlen, req.addr), (0, 64, 0, 0));
        ids.push(req.user_data);
        // One empty range: still inline, length 0 (checked by the module as
        // a struct zcsend_range of length 0 would be).
        let (req, _) = send(sock.as_fd().into(), &[reg.fixed(0, 64..)], None, 3);
        assert_eq!((req.flags, req.iov, req.iovcnt), (inline, 64, 0));
        ids.push(req.user_data);
        // Two ranges: the array form.
        let (req, array) = send(
            sock.as_fd().into(),
            &[reg.fixed(1, 16..32), reg.fixed(1, 100..)],
            None,
            4,
        );
        assert_eq!((req.flags, req.iovcnt), (fixed, 2));
        let got: Vec<_> = array
            .iter()
            .map(|r| (r.buf_index, r.reserved, r.offset, r.len))
            .collect();
        assert_eq!(got, [(1, 0, 16, 16), (1, 0, 100, 8092)]);
        ids.push(req.user_data);
        // An offset past 32 bits (no registration has one): the array
        // form, not a truncated ZCSEND_FIXED_RANGE.
        #[cfg(target_pointer_width = "64")]
        {
            let far = fixed_unchecked(&reg, 1, (1 << 32) + 5, 8);
            let (req, array) = send(sock.as_fd().into(), &[far], None, 5);
            assert_eq!((req.flags, req.iovcnt), (fixed, 1));
            assert_eq!((array[0].buf_index, array[0].offset), (1, (1 << 32) + 5));
            assert_eq!(array[0].len, 8);
            ids.push(req.user_data);
        }

        assert_eq!(dev.in_flight(), ids.len());
        assert!(reg.in_use(0) && reg.in_use(1));
        let recs: Vec<_> = ids
            .iter()
            .map(|&id| crate::ring::fake::rec(id, 3))
            .collect();
        dev.file_raw_for_tests(&recs);
        assert_eq!(dev.in_flight(), 0);
        assert!(!reg.in_use(0) && !reg.in_use(1), "released by completions");
        let mut out = [Completion::default(); 8];
        let n = dev.try_read_completions(&mut out).unwrap();
        let mut uds: Vec<u64> = out[..n].iter().map(|c| c.user_data).collect();
        uds.sort_unstable();
        assert_eq!(uds, (1..=ids.len() as u64).collect::<Vec<_>>());
    }

    #[test]
    fn flags() {
        let f = MsgFlags::NOSIGNAL | MsgFlags::MORE;
        assert_eq!(f.bits(), (libc::MSG_NOSIGNAL | libc::MSG_MORE) as u32);
        assert_eq!(MsgFlags::default(), MsgFlags::NONE);
    }
}
