// SPDX-License-Identifier: GPL-2.0

//! zcsend: zero-copy socket sends from user pages, with completions.
//!
//! `/dev/zcsend` takes a socket and an iovec array (`ZCSEND_IOC_SEND`), pins
//! the pages, sends them as skb frags under zcsend's own `ubuf_info`, and
//! posts a completion record, readable with `read()`, once the stack has
//! released them. See `Documentation/zcsend.rst`.
//!
//! Where things are. The logic is safe Rust:
//! - `send.rs`: one send, from ioctl argument to completion.
//! - `fanout.rs`: one payload to many sockets, one completion.
//! - `context.rs`: per-open state, locks and contexts documented there.
//! - `iovec.rs`, `smallbuf.rs`: pure logic, with KUnit tests.
//!
//! It stands on small abstractions, the only files with `unsafe` code:
//! - `net.rs` (socket from fd, `msghdr`, sendmsg), `ubuf.rs` (the
//!   `ubuf_info` provider and skb frags), `pinned.rs` (pinned pages,
//!   registered buffers, stable copies, memlock), `completion.rs` (the
//!   mmap'able lock-free ring, KUnit-tested), `wait.rs`, `eventfd.rs`,
//!   `wq.rs` (workqueue, module references), `inflight.rs` (the count of
//!   a file's sends in flight), `misc.rs` (module-owned fops),
//!   `trace.rs` (tracepoints, debugfs counters), `uapi.rs` (byte-level
//!   ABI marker impls, compat check), `atomic.rs` (atomics as inline
//!   instructions), this file (ioctl/mmap glue);
//! - `ffi.rs`: every declaration of the C side, `shim.c` (static inlines
//!   and macros Rust cannot reach) and `trace.c` (`TRACE_EVENT`s,
//!   per-CPU counters, debugfs), mirroring `shim.h` one to one.

use kernel::fs::{
    File,
    Kiocb, //
};
use kernel::iov::IovIterDest;
use kernel::miscdevice::{
    MiscDevice,
    MiscDeviceOptions,
    MiscDeviceRegistration, //
};
use kernel::mm::virt::VmaNew;
use kernel::page::PAGE_SIZE;
use kernel::prelude::*;
use kernel::sync::{
    Arc,
    ArcBorrow, //
};
use kernel::uaccess::{
    UserPtr,
    UserSlice, //
};

mod atomic;
mod completion;
mod context;
mod eventfd;
mod fanout;
mod ffi;
mod inflight;
mod iovec;
mod misc;
mod net;
mod pinned;
mod send;
mod smallbuf;
mod trace;
mod uapi;
mod ubuf;
mod wait;
mod wq;

use crate::ffi::zcsend_kiocb_nowait;
use context::{
    Context,
    SockTableCell, //
};
use uapi::*;

module! {
    type: ZcsendModule,
    name: "zcsend",
    authors: ["The zcsend developers"],
    description: "Zero-copy socket send path with completion notification",
    license: "GPL",
    params: {
        copy_threshold: u32 {
            default: 16384,
            description: "Sends shorter than this many bytes take the copy path (0: never)",
        },
        local_copy: u32 {
            default: 1,
            description: "Sends on sockets routed out a loopback device take the copy path (0: pin them anyway)",
        },
    },
}

fn copy_threshold() -> usize {
    *module_parameters::copy_threshold.value() as usize
}

/// Whether sends to local destinations copy up front (`local_copy`).
pub(crate) fn local_copy() -> bool {
    *module_parameters::local_copy.value() != 0
}

#[pin_data]
struct ZcsendModule {
    // Dropped first: no new opens once exit begins.
    #[pin]
    _miscdev: MiscDeviceRegistration<ZcsendDevice>,
    // Dropped second: waits for the last completion work to return.
    _wq: wq::CompletionQueue,
    _debugfs: trace::Debugfs,
}

impl kernel::InPlaceModule for ZcsendModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let options = MiscDeviceOptions { name: c"zcsend" };
        try_pin_init!(Self {
            _wq: wq::CompletionQueue::new()?,
            _debugfs: trace::Debugfs::new(),
            _miscdev <- MiscDeviceRegistration::register(options),
        })
        .pin_chain(|this| {
            misc::own_fops(&this._miscdev);
            Ok(())
        })
    }
}

struct ZcsendDevice;

/// Reads `n` values of `T` from the user array at `ptr` in one copy.
pub(crate) fn read_user_array<
    T: kernel::transmute::FromBytes + kernel::transmute::AsBytes + Default + Clone,
>(
    ptr: u64,
    n: usize,
) -> Result<KVVec<T>> {
    let ptr = usize::try_from(ptr).map_err(|_| EFAULT)?;
    let mut v = KVVec::with_capacity(n, GFP_KERNEL_ACCOUNT)?;
    v.resize(n, T::default(), GFP_KERNEL_ACCOUNT)?;
    UserSlice::new(UserPtr::from_addr(ptr), n * core::mem::size_of::<T>())
        .reader()
        .read_slice(<[T] as kernel::transmute::AsBytes>::as_bytes_mut(&mut v))?;
    Ok(v)
}

/// The array of a registration (`struct zcsend_register` at `user`, or
/// `struct zcsend_register_sockets`, the same layout): `nr` (1 to `max`)
/// entries of `T`; `EINVAL` for a bad count or flags.
fn read_registration<
    T: kernel::transmute::FromBytes + kernel::transmute::AsBytes + Default + Clone,
>(
    user: UserPtr,
    max: u32,
) -> Result<KVVec<T>> {
    let req: ZcsendRegister = UserSlice::new(user, core::mem::size_of::<ZcsendRegister>())
        .reader()
        .read()?;
    if req.flags != 0 || req.nr == 0 || req.nr > max {
        return Err(EINVAL);
    }
    read_user_array::<T>(req.bufs, req.nr as usize)
}

#[vtable]
impl MiscDevice for ZcsendDevice {
    type Ptr = Arc<Context>;

    fn open(file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<Arc<Context>> {
        // Opened in the instant between registration and `own_fops`: such a
        // file would not keep the module loaded.
        if !misc::file_holds_module(file) {
            return Err(EAGAIN);
        }
        Context::new()
    }

    /// The file is closed: its state goes once its last send completes.
    fn release(ctx: Arc<Context>, _file: &File) {
        Context::close(ctx);
    }

    /// Maps the completion ring: the header page (`ZCSEND_RING_OFF_HDR`,
    /// read-write: the consumer's `head`) or the slots
    /// (`ZCSEND_RING_OFF_SLOTS`, read-only), each whole, never expandable.
    fn mmap(ctx: ArcBorrow<'_, Context>, _file: &File, vma: &VmaNew) -> Result {
        // SAFETY: `vma` is being set up by this mmap call; `vm_pgoff` is a
        // plain field the caller filled in.
        let pgoff = unsafe { (*vma.as_ptr()).vm_pgoff } as u64;
        let off = pgoff.checked_mul(PAGE_SIZE as u64).ok_or(EINVAL)?;
        let (first, npages) = match off {
            ZCSEND_RING_OFF_HDR => (0, 1),
            ZCSEND_RING_OFF_SLOTS => {
                // Records and their sequence numbers are the kernel's.
                if vma.writable() {
                    return Err(EACCES);
                }
                vma.try_clear_maywrite()?;
                (1, completion::SLOT_PAGES)
            }
            _ => return Err(EINVAL),
        };
        if vma.end() - vma.start() != npages * PAGE_SIZE {
            return Err(EINVAL);
        }
        if vma.executable() {
            return Err(EACCES);
        }
        vma.try_clear_mayexec()?;
        vma.set_dontexpand();
        let mm = vma.set_mixedmap();
        for i in 0..npages {
            let page = ctx.ring_page(first + i).ok_or(EINVAL)?;
            mm.vm_insert_page(vma.start() + i * PAGE_SIZE, page)?;
        }
        Ok(())
    }

    fn read_iter(kiocb: Kiocb<'_, Self::Ptr>, iov: &mut IovIterDest<'_>) -> Result<usize> {
        // SAFETY: `kiocb.as_raw()` is the live kiocb of this read.
        let nonblock = unsafe { zcsend_kiocb_nowait(kiocb.as_raw().cast()) };
        let ctx: ArcBorrow<'_, Context> = kiocb.file();
        ctx.read(iov, nonblock)
    }

    fn ioctl(ctx: ArcBorrow<'_, Context>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let user = UserPtr::from_addr(arg);
        match cmd {
            ZCSEND_IOC_VERSION => {
                UserSlice::new(user, 4)
                    .writer()
                    .write(&ZCSEND_ABI_VERSION)?;
                Ok(0)
            }
            ZCSEND_IOC_FEATURES => {
                UserSlice::new(user, 8).writer().write(&ZCSEND_FEATURES)?;
                Ok(0)
            }
            ZCSEND_IOC_SEND => {
                let req: ZcsendSend = UserSlice::new(user, core::mem::size_of::<ZcsendSend>())
                    .reader()
                    .read()?;
                let table = SockTableCell::new();
                let mut lookups = send::Lookups::new(ctx, &table);
                let n = send::send(ctx, &req, copy_threshold(), &mut lookups)?;
                Ok(n as isize)
            }
            ZCSEND_IOC_SUBMIT => {
                let req: ZcsendSubmit = UserSlice::new(user, core::mem::size_of::<ZcsendSubmit>())
                    .reader()
                    .read()?;
                if req.flags & !ZCSEND_SUBMIT_FANOUT != 0
                    || req.nr == 0
                    || req.nr > ZCSEND_MAX_BATCH
                {
                    return Err(EINVAL);
                }
                let (nr, thr) = (req.nr as usize, copy_threshold());
                let n = if req.flags & ZCSEND_SUBMIT_FANOUT != 0 {
                    let table = SockTableCell::new();
                    let mut scratch = fanout::Scratch::new(&table);
                    send::submit_each::<ZcsendFanout>(req.sends, nr, 1, |f| {
                        fanout::fanout(ctx, f, thr, &mut scratch)
                    })?
                } else {
                    send::submit(ctx, req.sends, nr, thr)?
                };
                Ok(n as isize)
            }
            ZCSEND_IOC_FANOUT => {
                let req: ZcsendFanout = UserSlice::new(user, core::mem::size_of::<ZcsendFanout>())
                    .reader()
                    .read()?;
                let table = SockTableCell::new();
                let mut scratch = fanout::Scratch::new(&table);
                let n = fanout::fanout(ctx, &req, copy_threshold(), &mut scratch)?;
                Ok(n as isize)
            }
            ZCSEND_IOC_SET_EVENTFD => {
                let fd: i32 = UserSlice::new(user, 4).reader().read()?;
                ctx.set_eventfd(fd)?;
                Ok(0)
            }
            ZCSEND_IOC_STATS | ZCSEND_IOC_STATS_V1 => {
                let stats = ctx.stats(copy_threshold() as u64);
                let len = if cmd == ZCSEND_IOC_STATS {
                    core::mem::size_of::<ZcsendStats>()
                } else {
                    ZCSEND_STATS_V1_SIZE
                };
                UserSlice::new(user, len)
                    .writer()
                    .write_slice(&kernel::transmute::AsBytes::as_bytes(&stats)[..len])?;
                Ok(0)
            }
            ZCSEND_IOC_REGISTER_BUFFERS => {
                let bufs = read_registration::<ZcsendBuffer>(user, ZCSEND_MAX_BUFFERS)?;
                let segments = ctx.register_buffers(&bufs)?;
                Ok(segments.min(isize::MAX as usize) as isize)
            }
            ZCSEND_IOC_UNREGISTER_BUFFERS => {
                ctx.unregister_buffers()?;
                Ok(0)
            }
            ZCSEND_IOC_REGISTER_SOCKETS => {
                let fds = read_registration::<i32>(user, ZCSEND_MAX_SOCKETS)?;
                ctx.register_sockets(&fds)?;
                Ok(0)
            }
            ZCSEND_IOC_UNREGISTER_SOCKETS => {
                ctx.unregister_sockets()?;
                Ok(0)
            }
            _ => Err(ENOTTY),
        }
    }
}
