// SPDX-License-Identifier: GPL-2.0

//! Sockets: look one up from a file descriptor (or in the file's registered
//! sockets) and send a message on it.
//!
//! One of the abstraction files that hold zcsend's `unsafe` code (listed in
//! `zcsend_main.rs`). Everything above it sees [`Socket`] and [`SendMsg`].

use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ptr::{
    self,
    NonNull, //
};

use kernel::bindings;
use kernel::fs::file::{
    File,
    LocalFile, //
};
use kernel::prelude::*;
use kernel::sync::aref::ARef;
use kernel::uaccess::UserPtr;

use crate::ffi::{
    sk,
    zcsend_frags_build,
    zcsend_nofile_limit,
    zcsend_sock_lookup,
    zcsend_sock_state, //
};
use crate::smallbuf::SmallBuf;
use crate::uapi::UserIovec;
use kernel::uaccess::UserSlice;

/// Errnos `kernel::error::code` does not name.
fn errno(e: u32) -> Error {
    Error::from_errno(-(e as i32))
}

/// A file descriptor of the calling task held for the system call that
/// looked it up, as `fdget()` holds it: with a reference on the file only
/// when the task's file table is shared (a single-threaded caller pays no
/// atomic; the kernel's own `sendto()` looks its socket up so).
///
/// # Invariants
///
/// `word` is a non-empty `struct fd` that `fdget()` returned to the current
/// task in the current system call, not yet `fdput()` (that is `Drop`):
/// its file stays open until then. Not `Send`: it cannot leave the task,
/// and nothing that outlives the system call can hold it (the file's
/// context and notifiers are `Send`).
struct FdRef {
    word: usize,
    _task: PhantomData<*mut ()>,
}

impl FdRef {
    /// `fdget(fd)`; `EBADF` if `fd` is not open.
    fn get(fd: u32) -> Result<Self> {
        // SAFETY: any descriptor number; process context.
        let f = unsafe { bindings::fdget(fd) };
        if f.word == 0 {
            return Err(EBADF);
        }
        // INVARIANT: a non-empty `fdget()` result of this task, this call.
        Ok(Self {
            word: f.word as usize,
            _task: PhantomData,
        })
    }

    /// The file (`fd_file()`), open while `self` lives.
    fn file(&self) -> *mut bindings::file {
        (self.word & !((bindings::FDPUT_FPUT | bindings::FDPUT_POS_UNLOCK) as usize)) as *mut _
    }
}

impl Drop for FdRef {
    /// `fdput()`: drops the reference `fdget()` took, if it took one.
    fn drop(&mut self) {
        if self.word & bindings::FDPUT_FPUT as usize != 0 {
            // SAFETY: `fdget()` took this reference for us (type invariant);
            // given back once, here.
            unsafe { bindings::fput(self.file()) };
        }
    }
}

/// A TCP or UDP socket of the calling process, for the system call that
/// looked it up: by descriptor ([`Self::from_fd`]) or in the file's
/// registered sockets ([`SockTable::get`]), borrowed for `'t`.
///
/// # Invariants
///
/// `sock` is the socket of the file `hold` keeps open (`sock_from_file()`),
/// so it stays valid for as long as this value lives.
pub(crate) struct Socket<'t> {
    _hold: Hold<'t>,
    sock: NonNull<bindings::socket>,
    datagram: bool,
    takes_user_pages: bool,
    local: bool,
}

/// What keeps a [`Socket`]'s file open.
enum Hold<'t> {
    /// The descriptor, held as `fdget()` holds it (put back on drop).
    Fd { _ref: FdRef },
    /// A registered socket: the table, borrowed for `'t`, holds the file.
    Table(PhantomData<&'t SockTable>),
}

impl Socket<'static> {
    /// Looks up the socket behind `fd` in the current task.
    ///
    /// Fails with `EBADF` for a bad descriptor, `ENOTSOCK` if it is not a
    /// socket, `EAFNOSUPPORT` for a family other than IPv4/IPv6 and
    /// `EPROTONOSUPPORT` for a transport other than TCP/UDP.
    pub(crate) fn from_fd(fd: i32) -> Result<Self> {
        let fd = FdRef::get(u32::try_from(fd).map_err(|_| EBADF)?)?;
        let file = fd.file();
        // SAFETY: `file` is open for as long as `fd` lives, which the result
        // holds.
        unsafe { Self::of_file(file, Hold::Fd { _ref: fd }) }
    }
}

impl<'t> Socket<'t> {
    /// The socket of `file`, checked as [`Socket::from_fd`] checks it, with
    /// its state sampled now.
    ///
    /// # Safety
    ///
    /// `hold` keeps `file` open for as long as the result lives.
    unsafe fn of_file(file: *mut bindings::file, hold: Hold<'t>) -> Result<Self> {
        let mut kind = 0;
        // SAFETY: `file` is a valid open file (caller's contract); a socket
        // obtained from a file always has its `sk`.
        let sock = unsafe { zcsend_sock_lookup(file, &mut kind) };
        let sock = NonNull::new(sock).ok_or_else(|| errno(bindings::ENOTSOCK))?;
        if kind & sk::INET == 0 {
            return Err(errno(bindings::EAFNOSUPPORT));
        }
        let (tcp, udp) = (kind & sk::TCP != 0, kind & sk::UDP != 0);
        if !tcp && !udp {
            return Err(errno(bindings::EPROTONOSUPPORT));
        }
        // SAFETY: `sock` came from `sock_from_file()` of the file `hold`
        // keeps open (caller's contract).
        Ok(unsafe { Self::with_state(hold, sock, udp, kind) })
    }

    /// A TCP (`!datagram`) or UDP socket whose state bits (`ZC`,
    /// `ESTABLISHED`, `LOCAL`) are `kind`'s.
    ///
    /// # Safety
    ///
    /// `sock` is the socket of the file `hold` keeps open.
    #[inline]
    unsafe fn with_state(
        hold: Hold<'t>,
        sock: NonNull<bindings::socket>,
        datagram: bool,
        kind: u32,
    ) -> Self {
        // INVARIANT: `sock` is the socket of the file `hold` keeps open
        // (caller's contract).
        Self {
            _hold: hold,
            sock,
            datagram,
            takes_user_pages: kind & sk::ZC != 0 && (datagram || kind & sk::ESTABLISHED != 0),
            local: kind & sk::LOCAL != 0,
        }
    }

    /// Whether the stack would send pinned user pages as frags on this
    /// socket: `SOCK_SUPPORT_ZC` is set (no ULP such as kTLS, no sockmap),
    /// and a TCP socket is established (a Fast Open SYN's data is copied).
    /// The state is sampled here, without the socket lock: a socket that
    /// changes state in between errs towards the stack's own handling.
    pub(crate) fn takes_user_pages(&self) -> bool {
        self.takes_user_pages
    }

    /// Whether the socket's cached route is local (out a loopback device):
    /// local delivery copies every frag (`skb_orphan_frags_rx`), so pinning
    /// would be pure cost. Sampled without the socket lock; a socket without
    /// a cached route (unconnected UDP) is not local.
    pub(crate) fn is_local(&self) -> bool {
        self.local
    }

    /// The socket's identity: two descriptors of one socket (`dup()`) give
    /// the same value.
    pub(crate) fn id(&self) -> usize {
        self.sock.as_ptr() as usize
    }

    /// Whether this is a UDP socket: one send is one datagram, which must fit
    /// in one skb.
    pub(crate) fn is_datagram(&self) -> bool {
        self.datagram
    }

    /// Sends `msg`; returns the bytes the stack accepted.
    #[inline]
    pub(crate) fn sendmsg(&self, msg: &mut SendMsg<'_>) -> Result<usize> {
        // SAFETY: `self.sock` is valid by the type invariant; `msg.raw` is a
        // fully initialised msghdr whose iterator, name and ubuf outlive this
        // call (`SendMsg`'s lifetime ties them to the caller's borrows).
        let ret = unsafe { bindings::sock_sendmsg(self.sock.as_ptr(), &mut msg.raw) };
        if ret < 0 {
            return Err(Error::from_errno(ret));
        }
        Ok(ret as usize)
    }
}

/// The sockets a file registered (`ZCSEND_IOC_REGISTER_SOCKETS`), by
/// index: a send that names one ([`Self::get`]) does no descriptor lookup.
///
/// # Invariants
///
/// Each entry holds a reference on the file of an IPv4 or IPv6 TCP or UDP
/// socket ([`Registered`]), and no socket is in two entries (one index per
/// socket). A TCP or UDP socket holds no file of its own (it cannot carry
/// descriptors), so the table forms no reference cycle by itself; what a
/// send in flight holds (a notifier: zcsend's, whose hold on the table
/// `Context::close` breaks, or
/// io_uring's) is released when the stack lets go of its skbs.
pub(crate) struct SockTable {
    entries: KVVec<Registered>,
}

/// One registered socket: its file, held, and what [`SockTable::get`]
/// needs that never changes.
///
/// # Invariants
///
/// `sock` is the socket of `_file` (`sock_from_file()`), an IPv4 or IPv6
/// socket (it stays one: `IPV6_ADDRFORM` only turns IPv6 into IPv4), UDP if
/// `datagram`, else TCP (a socket's type and protocol never change).
struct Registered {
    /// Held for its reference: it keeps `sock` alive.
    _file: ARef<File>,
    sock: NonNull<bindings::socket>,
    datagram: bool,
}

// SAFETY: `_file`, an `ARef<File>` (`Send` and `Sync`), keeps `sock` alive;
// the kernel's `struct socket` is used from any thread (concurrent sends
// and state reads are the stack's to serialise), and nothing here writes it.
unsafe impl Send for Registered {}
// SAFETY: as above.
unsafe impl Sync for Registered {}

impl SockTable {
    /// Takes a reference on the file of every socket in `fds`, checked as
    /// [`Socket::from_fd`] checks one (with its errors). `EMFILE` for more
    /// than the caller's `RLIMIT_NOFILE`: a registered socket outlives its
    /// descriptor, and the limit bounds how many one table keeps (as
    /// io_uring bounds its registered files).
    pub(crate) fn register(fds: &[i32]) -> Result<Self> {
        // SAFETY: reads the current task's limit; process context.
        if fds.len() > unsafe { zcsend_nofile_limit() } {
            return Err(EMFILE);
        }
        let mut entries = KVVec::with_capacity(fds.len(), GFP_KERNEL_ACCOUNT)?;
        for &fd in fds {
            let file = LocalFile::fget(u32::try_from(fd).map_err(|_| EBADF)?)?;
            // SAFETY: inside an ioctl system call, which takes no
            // `fdget_pos()`: none is active on this thread.
            let file = unsafe { LocalFile::assume_no_fdget_pos(file) };
            // SAFETY: `file` is open while the reference lives, past this
            // check.
            let s = unsafe { Socket::of_file(file.as_ptr(), Hold::Table(PhantomData)) }?;
            let (sock, datagram) = (s.sock, s.datagram);
            drop(s);
            // INVARIANT: `sock` is `file`'s, checked to be an IPv4/IPv6 TCP
            // or UDP socket by `of_file`.
            entries.push(
                Registered {
                    _file: file,
                    sock,
                    datagram,
                },
                GFP_KERNEL_ACCOUNT,
            )?;
        }
        let mut set = SmallBuf::empty();
        if has_duplicate(
            entries.len(),
            entries.iter().map(|e| e.sock.as_ptr() as usize),
            &mut set,
        )? {
            return Err(EINVAL);
        }
        // INVARIANT: every file checked above, no socket twice.
        Ok(Self { entries })
    }

    /// The socket registered at `index`, its state sampled now; `EBADF`
    /// past the table. Only the state is looked at: the kind of socket was
    /// checked when it was registered and does not change.
    #[inline]
    pub(crate) fn get(&self, index: i32) -> Result<Socket<'_>> {
        let e = usize::try_from(index)
            .ok()
            .and_then(|i| self.entries.get(i))
            .ok_or(EBADF)?;
        // SAFETY: `e.sock` is the socket of the file the table holds open
        // (`Registered` invariant) for as long as it is borrowed.
        let kind = unsafe { zcsend_sock_state(e.sock.as_ptr()) };
        // SAFETY: `e.sock` is the socket of `e._file`, which the table,
        // borrowed for the result's lifetime, keeps open.
        Ok(unsafe { Socket::with_state(Hold::Table(PhantomData), e.sock, e.datagram, kind) })
    }

    /// How many sockets are registered.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

const _: () = {
    assert!(core::mem::size_of::<UserIovec>() == core::mem::size_of::<bindings::iovec>());
    assert!(core::mem::align_of::<UserIovec>() == core::mem::align_of::<bindings::iovec>());
    assert!(
        core::mem::offset_of!(UserIovec, base) == core::mem::offset_of!(bindings::iovec, iov_base)
    );
    assert!(
        core::mem::offset_of!(UserIovec, len) == core::mem::offset_of!(bindings::iovec, iov_len)
    );
};

/// A destination address copied from user space.
#[repr(C, align(8))]
pub(crate) struct SockAddr {
    bytes: [u8; 128],
    len: usize,
}

impl SockAddr {
    /// No address yet (filled by [`Self::read_user`]).
    pub(crate) fn empty() -> Self {
        Self {
            bytes: [0; 128],
            len: 0,
        }
    }

    /// Copies `len` bytes of address from `ptr` into `self`, in place.
    ///
    /// Fails with `EINVAL` if `len` exceeds `sizeof(struct sockaddr_storage)`
    /// and with `EFAULT` if the memory cannot be read.
    pub(crate) fn read_user(&mut self, ptr: u64, len: u32) -> Result {
        let len = len as usize;
        if len > self.bytes.len() {
            return Err(EINVAL);
        }
        let ptr = usize::try_from(ptr).map_err(|_| EFAULT)?;
        UserSlice::new(UserPtr::from_addr(ptr), len)
            .reader()
            .read_slice(&mut self.bytes[..len])?;
        self.len = len;
        Ok(())
    }
}

/// A `struct msghdr` ready for [`Socket::sendmsg`], borrowing its data.
///
/// `#[repr(C)]` with `raw` first: [`frags_of`] finds the message's
/// [`FragTemplate`] from the `msghdr` the stack hands back.
#[repr(C)]
pub(crate) struct SendMsg<'a> {
    raw: bindings::msghdr,
    /// The frags of the payload, described already, or null.
    frags: *const FragTemplate<'a>,
    _data: PhantomData<&'a ()>,
}

/// The frags of one payload, described once for all its sends (`struct
/// zcsend_frags` in `shim.h`): a fan-out's skbs get a copy of the
/// description instead of walking the payload's segments once per
/// destination.
///
/// # Invariants
///
/// Filled by `zcsend_frags_build()` from the iterator of a message over
/// bvecs borrowed for `'a` (so the segments it describes, and the pages
/// they name, stay as they are while it lives); `nr == 0` if it cannot be
/// used.
#[repr(C)]
pub(crate) struct FragTemplate<'a> {
    bvec: *const bindings::bio_vec,
    offset: usize,
    len: usize,
    end: *const bindings::bio_vec,
    end_offset: usize,
    end_segs: c_ulong,
    truesize: c_ulong,
    nr: c_uint,
    /// The first `nr` are written; C copies them all, Rust reads none.
    frags: MaybeUninit<[bindings::skb_frag_t; bindings::MAX_SKB_FRAGS as usize]>,
    _bvecs: PhantomData<&'a [bindings::bio_vec]>,
}

// `shim.c` asserts the same offset.
const _: () = assert!(core::mem::offset_of!(FragTemplate<'static>, frags) == 64);

impl<'a> FragTemplate<'a> {
    /// Describes, in `slot`, the frags of `msg`'s payload from where its
    /// iterator stands, as `zcsend_fill_frags()` would attach them to an
    /// skb without frags. In place: the description is a few hundred bytes.
    pub(crate) fn new_in<'s>(slot: &'s mut MaybeUninit<Self>, msg: &SendMsg<'a>) -> &'s Self {
        // SAFETY: `slot` has the layout of `struct zcsend_frags` (`repr(C)`,
        // the same fields; the offset of `frags` asserted on both sides),
        // and `zcsend_frags_build()` writes every field but `frags` past
        // `nr`, which stays `MaybeUninit` (C copies it, Rust never reads
        // it); `msg.raw.msg_iter` is a valid iterator over data borrowed
        // for `'a`, only read (C describes nothing but bvecs). INVARIANT:
        // built by `zcsend_frags_build()`.
        unsafe {
            zcsend_frags_build(slot.as_mut_ptr().cast(), &msg.raw.msg_iter);
            slot.assume_init_ref()
        }
    }
}

/// The [`FragTemplate`] (or null) of the message whose `msghdr` is at `msg`.
///
/// # Safety
///
/// `msg` is the `raw` field of a live [`SendMsg`].
pub(crate) unsafe fn frags_of(msg: *const bindings::msghdr) -> *const c_void {
    // SAFETY: `SendMsg` is `repr(C)` with `raw` first, so `msg` is the
    // address of the live `SendMsg` that holds it (caller's contract).
    unsafe { (*msg.cast::<SendMsg<'_>>()).frags.cast() }
}

impl<'a> SendMsg<'a> {
    /// A message without data yet, to `addr` if any: [`Self::copy_bvecs`]
    /// or [`Self::zerocopy`] give it its bytes.
    #[inline(always)]
    pub(crate) fn new(flags: u32, addr: Option<&'a mut SockAddr>) -> Self {
        // SAFETY: all-zero is a valid `msghdr`: null pointers, empty iterator.
        let mut raw: bindings::msghdr = unsafe { core::mem::zeroed() };
        if let Some(a) = addr {
            raw.msg_name = a.bytes.as_mut_ptr().cast();
            raw.msg_namelen = a.len as c_int;
        }
        raw.msg_flags = flags;
        Self {
            raw,
            frags: ptr::null(),
            _data: PhantomData,
        }
    }

    /// This message again, unsent, to `addr`, built in `slot`: a copy of the
    /// `msghdr` as it was built (a fan-out's next destination; cheaper than
    /// building it anew). Only for a message not yet handed to
    /// [`Socket::sendmsg`], whose iterator still stands where it was built.
    ///
    /// In place and a word at a time: the compiler's copy of a `msghdr` is a
    /// `rep movsq` or a call to `memcpy()` (under QEMU TCG a block per
    /// word), once per destination.
    #[inline(always)]
    pub(crate) fn again_in<'s, 'b>(
        &self,
        slot: &'s mut MaybeUninit<SendMsg<'b>>,
        addr: Option<&'b mut SockAddr>,
    ) -> &'s mut SendMsg<'b>
    where
        'a: 'b,
    {
        const WORDS: usize = core::mem::size_of::<bindings::msghdr>() / 8;
        const _: () = assert!(core::mem::size_of::<bindings::msghdr>() % 8 == 0);
        let src = ptr::from_ref(&self.raw).cast::<MaybeUninit<u64>>();
        let dst = slot.as_mut_ptr().cast::<MaybeUninit<u64>>();
        for i in 0..WORDS {
            // SAFETY: `raw` is the first field of both (`repr(C)`), a
            // `msghdr` of `WORDS` whole words aligned to 8 (it holds
            // pointers); each is copied as it is, padding included
            // (`MaybeUninit`). Volatile, so that the moves stay moves.
            unsafe { dst.add(i).write_volatile(src.add(i).read_volatile()) };
        }
        // SAFETY: `raw` now holds a copy of `self.raw`: plain data (pointers
        // and integers, no drop glue) referring to the same data as `self`,
        // borrowed for `'a`, which outlives `'b`; the other fields are
        // written here before the value is used.
        unsafe {
            let m = slot.as_mut_ptr();
            (*m).raw.msg_name = ptr::null_mut();
            (*m).raw.msg_namelen = 0;
            if let Some(a) = addr {
                (*m).raw.msg_name = a.bytes.as_mut_ptr().cast();
                (*m).raw.msg_namelen = a.len as c_int;
            }
            ptr::addr_of_mut!((*m).frags).write(self.frags);
            ptr::addr_of_mut!((*m)._data).write(PhantomData);
            slot.assume_init_mut()
        }
    }

    /// Has the stack attach `t`'s frags to an skb that takes the whole
    /// payload from where `t` describes it (checked when they are attached:
    /// a template that does not match the iterator is not used).
    pub(crate) fn set_frags(&mut self, t: &'a FragTemplate<'a>) {
        self.frags = t;
    }

    /// A message that copies from user iovecs (the plain copy path).
    pub(crate) fn from_user_iovecs(
        iovs: &'a [UserIovec],
        total: usize,
        flags: u32,
        addr: Option<&'a mut SockAddr>,
    ) -> Self {
        let mut m = Self::new(flags, addr);
        if let [one] = iovs {
            // One buffer (`ZCSEND_SEND_BUF`, or an array of one): an
            // `ITER_UBUF` iterator, as send(2) builds with `import_ubuf()`;
            // each copy out of it takes the short path (no segment walk).
            m.set_user_buf(one.base, total);
            return m;
        }
        // SAFETY: `UserIovec` has the layout of the kernel's `struct iovec`
        // (checked below: a user address and a length, 8 bytes each), so
        // `iovs` is a kernel array of `iovs.len()` user iovecs; it outlives
        // `m`, and `total` is their validated sum.
        unsafe {
            bindings::iov_iter_init(
                &mut m.raw.msg_iter,
                bindings::ITER_SOURCE,
                iovs.as_ptr().cast::<bindings::iovec>(),
                iovs.len() as c_ulong,
                total,
            )
        };
        m
    }

    /// Makes the message's iterator an `ITER_UBUF` source of the `len` user
    /// bytes at `base`: what `iov_iter_ubuf()` (a C inline) builds. Neither
    /// it nor `import_ubuf()` checks more than `access_ok()`, which every
    /// copy out of a user iterator checks again ([`Self::new`]'s message
    /// has the rest zeroed: no offset, not `nofault`).
    #[inline(always)]
    fn set_user_buf(&mut self, base: u64, len: usize) {
        let it = &mut self.raw.msg_iter;
        it.iter_type = bindings::iter_type_ITER_UBUF as u8;
        it.data_source = bindings::ITER_SOURCE != 0;
        // SAFETY: writing plain data into the iterator's unions: for
        // `ITER_UBUF` the kernel reads `ubuf` and `count` (the second
        // anonymous struct of the first union) and `nr_segs` (1).
        unsafe {
            let d = it.__bindgen_anon_1.__bindgen_anon_1.as_mut();
            d.__bindgen_anon_1.ubuf = base as usize as *mut c_void;
            d.count = len;
        }
        it.__bindgen_anon_2.nr_segs = 1;
    }

    /// Gives the message the `total` bytes of `bvecs` that start `skip`
    /// bytes into them, bytes of pages the caller keeps pinned; the stack
    /// copies them (registered buffers below the copy threshold). In place,
    /// on a message from [`Self::new`]: the iterator's address goes to C,
    /// so a message built this way and then returned would be copied whole
    /// into the caller's frame.
    #[inline(always)]
    pub(crate) fn copy_bvecs(&mut self, bvecs: &'a [bindings::bio_vec], skip: usize, total: usize) {
        debug_assert!(bvecs.iter().map(|b| b.bv_len as usize).sum::<usize>() >= skip + total);
        // SAFETY: `bvecs` outlives `self` (lifetime `'a`) and covers `skip +
        // total` bytes (caller's contract, checked by `debug_assert`) of
        // pages kept pinned by the caller for at least that long; the
        // iterator is advanced within them.
        unsafe {
            bindings::iov_iter_bvec(
                &mut self.raw.msg_iter,
                bindings::ITER_SOURCE,
                bvecs.as_ptr(),
                bvecs.len() as c_ulong,
                skip + total,
            );
            if skip != 0 {
                bindings::iov_iter_advance(&mut self.raw.msg_iter, skip);
            }
        }
    }

    /// As [`Self::copy_bvecs`], zero-copy: pages whose pins `zc`'s notifier
    /// keeps until the stack releases them.
    #[inline(always)]
    pub(crate) fn zerocopy<P: crate::ubuf::Payload>(
        &mut self,
        zc: &'a crate::ubuf::Submission<P>,
        bvecs: &'a [bindings::bio_vec],
        skip: usize,
        total: usize,
    ) {
        self.copy_bvecs(bvecs, skip, total);
        self.raw.msg_flags |= bindings::MSG_ZEROCOPY;
        self.raw.msg_ubuf = zc.as_raw();
        self.raw.sg_from_iter = Some(crate::ubuf::sg_from_iter);
    }
}

/// Whether a socket is named twice among the `n` identities `ids`
/// ([`Socket::id`]): a set of them (in `set`), open addressing in twice as
/// many slots (a power of two; inline for up to 16 sockets), so each costs
/// one hash and a probe or two, where sorting them cost tens of comparisons
/// each.
pub(crate) fn has_duplicate(
    n: usize,
    ids: impl Iterator<Item = usize>,
    set: &mut SmallBuf<usize, 32>,
) -> Result<bool> {
    // Fibonacci hashing: the golden ratio's multiple spreads the identities
    // (addresses of `struct socket`) over the top bits.
    const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;
    let slots = (n * 2).next_power_of_two().max(2);
    let shift = u64::BITS - slots.trailing_zeros();
    set.reset(slots)?;
    set.fill(0);
    for id in ids {
        // Never 0 (a pointer), the empty slot.
        let mut i = ((id as u64).wrapping_mul(GOLDEN) >> shift) as usize;
        loop {
            match set[i] {
                0 => {
                    set[i] = id;
                    break;
                }
                v if v == id => return Ok(true),
                _ => i = (i + 1) & (slots - 1),
            }
        }
    }
    Ok(false)
}
