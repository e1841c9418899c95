// SPDX-License-Identifier: GPL-2.0

//! One send: validate the request, then take the copy path or the zero-copy
//! path, and arrange for exactly one completion record per accepted send.
//!
//! Safe Rust only: sockets, pinned pages and the notifier come from
//! `net.rs`, `pinned.rs` and `ubuf.rs`.

use kernel::bindings;
use kernel::prelude::*;
use kernel::sync::ArcBorrow;
use kernel::transmute::{
    AsBytes,
    FromBytes, //
};
use kernel::uaccess::{
    UserPtr,
    UserSlice, //
};

use crate::context::{
    Context,
    FixedRef,
    Reservation,
    SlotPool,
    SockTableCell, //
};
use crate::iovec;
use crate::net::{
    SendMsg,
    SockAddr,
    Socket, //
};
use crate::pinned::{
    as_bio_vecs,
    Bvec,
    PinnedBuffer,
    PinnedPages,
    Segments,
    StablePages, //
};
use crate::smallbuf::SmallBuf;
use crate::trace::{
    self,
    Path,
    Stage,
    Stages, //
};
use crate::uapi::{
    self,
    CompatIovec,
    UserIovec,
    ZcsendCompletion,
    ZcsendRange,
    ZcsendSend,
    ZCSEND_COMPL_COPIED,
    ZCSEND_COMPL_COPY_PATH,
    ZCSEND_COMPL_ZEROCOPY,
    ZCSEND_SEND_BUF,
    ZCSEND_SEND_FIXED,
    ZCSEND_SEND_FIXED_SOCKET, //
};
use crate::ubuf::{
    Inline,
    Notif,
    Outcome,
    Payload,
    Recycle, //
};
use kernel::page::PAGE_SIZE;
use kernel::sync::Arc;

/// `MSG_*` flags a send may pass through to the socket.
pub(crate) const ALLOWED_FLAGS: u32 = bindings::MSG_DONTWAIT
    | bindings::MSG_MORE
    | bindings::MSG_NOSIGNAL
    | bindings::MSG_EOR
    | bindings::MSG_CONFIRM
    | bindings::MSG_DONTROUTE;

/// Frags one skb can carry (`MAX_SKB_FRAGS`).
pub(crate) const MAX_DATAGRAM_FRAGS: usize = bindings::MAX_SKB_FRAGS as usize;

/// What a zero-copy send keeps until the stack lets go of its pages.
///
/// It lives in the send's notifier, which files reuse: filled in place
/// when the send starts ([`Self::start`], [`Self::start_pinned`]), emptied
/// in place when it ends ([`Payload::end`]), never moved.
///
/// The reservation holds the file's [`Context`], which holds the module
/// reference that keeps this code loaded until the last send completes.
#[derive(Default)]
pub(crate) struct InFlight {
    /// The pages of a send that pinned its own (else empty).
    pinned: PinnedPages,
    /// What else keeps a send's bytes alive.
    held: Held,
    /// Taken out only when the send completes ([`Payload::end`]).
    reservation: Option<Reservation>,
    user_data: u64,
    /// `ZCSEND_COMPL_*` flags the record carries besides ZEROCOPY/COPIED.
    flags: u32,
}

/// What keeps the bytes of a send alive that did not pin them itself.
#[derive(Default)]
pub(crate) enum Held {
    /// Nothing: the send pinned its pages ([`InFlight::start_pinned`]), or
    /// the payload is empty.
    #[default]
    Nothing,
    /// The module's own stable copy (stable fan-out).
    Stable(StablePages),
    /// Registered buffers ([`InFlight::start_fixed`]). Nothing to hold:
    /// the send's [`Reservation`] counts it as a send from registered
    /// buffers until it completes, so they stay registered (unregister:
    /// `EBUSY`), and the file's [`Context`], which owns them, lives as long
    /// as the reservation: their pins outlive every skb that refers to them.
    /// (No reference count per send.)
    Fixed,
}

impl InFlight {
    /// Starts a send of the bytes `held` keeps alive: `reservation` gets
    /// its record, with `user_data` and `flags` (`ZCSEND_COMPL_*` besides
    /// ZEROCOPY/COPIED).
    pub(crate) fn start(
        &mut self,
        held: Held,
        reservation: Reservation,
        user_data: u64,
        flags: u32,
    ) {
        // The payload comes emptied (`Held::Nothing`, see `end`); written
        // over without a call to the out-of-line drop glue on every send.
        if !matches!(self.held, Held::Nothing) {
            self.held = Held::Nothing;
        }
        core::mem::forget(core::mem::replace(&mut self.held, held));
        // Likewise the reservation, taken out when the last send ended.
        if self.reservation.is_some() {
            self.reservation = None;
        }
        core::mem::forget(self.reservation.replace(reservation));
        self.user_data = user_data;
        self.flags = flags;
    }

    /// Starts a send from the file's registered buffers, which `held`
    /// proves are held; as [`Self::start`] otherwise. `EINVAL` if `held`
    /// is another file's ([`Reservation::claim_fixed`]).
    pub(crate) fn start_fixed(
        &mut self,
        mut reservation: Reservation,
        held: &FixedRef,
        user_data: u64,
        flags: u32,
    ) -> Result {
        reservation.claim_fixed(held)?;
        self.start(Held::Fixed, reservation, user_data, flags);
        Ok(())
    }

    /// Starts a send of the `nr` pages (`iovec::total_pages`) behind `iovs`,
    /// pinned here (see [`PinnedPages::pin`]); as [`Self::start`] otherwise.
    pub(crate) fn start_pinned(
        &mut self,
        iovs: &[UserIovec],
        nr: usize,
        reservation: Reservation,
        user_data: u64,
        flags: u32,
    ) -> Result {
        self.start(Held::Nothing, reservation, user_data, flags);
        self.pinned.pin(iovs, nr)
    }

    /// The bytes of a send that pinned its own pages or sends the module's
    /// stable copy.
    #[inline]
    pub(crate) fn bvecs(&self) -> &[bindings::bio_vec] {
        match &self.held {
            Held::Nothing => self.pinned.bvecs(),
            Held::Stable(p) => p.bvecs(),
            Held::Fixed => &[],
        }
    }

    /// After a partial send of `accepted` bytes: unpin (and uncharge) the
    /// pages past the accepted prefix, which no skb refers to, so a socket
    /// that takes part of a send does not keep all of it pinned.
    fn trim(&mut self, iovs: &[UserIovec], accepted: usize) {
        let keep = iovec::pages_for_prefix(iovs, accepted);
        let before = self.pinned.nr_pages();
        if keep < before {
            self.pinned.trim(keep, accepted);
            if let Some(r) = &mut self.reservation {
                r.remove_pinned(before - keep);
            }
        }
    }
}

impl Payload for InFlight {
    /// The reservation, `user_data` and flags.
    type Rest = (Option<Reservation>, u64, u32);

    /// Unpins the pages (or lets go of the stable copy or the registered
    /// buffer) before the record can be posted.
    fn end(&mut self) -> Self::Rest {
        // Only a send that pinned its own pages ([`Self::start_pinned`],
        // `Held::Nothing`) has any: the others' are empty since their
        // payload last ended.
        // Emptied in place: `Held` is as big as a `StablePages`, and moving
        // it out to look at it is a copy of every word; only a stable copy
        // has anything to drop.
        match &self.held {
            Held::Nothing => self.pinned.release(),
            Held::Fixed => core::mem::forget(core::mem::replace(&mut self.held, Held::Nothing)),
            Held::Stable(_) => self.held = Held::Nothing,
        }
        (self.reservation.take(), self.user_data, self.flags)
    }

    /// Called once, in process context or softirq, when no skb refers to
    /// the pages any more and they are unpinned: post the record (none if
    /// the ioctl returned an error instead).
    /// Inline in a batch ([`Inline`]), the notifier is kept for the
    /// submitter's next send and the wake-ups are left to the end of the
    /// call ([`Lookups`]).
    fn finish(
        rest: Self::Rest,
        outcome: Outcome,
        notif: Recycle<Self>,
        inline: Option<&mut Inline<Self>>,
    ) {
        let Outcome {
            accepted,
            copied,
            linked,
            chain_len,
        } = outcome;
        let (Some(reservation), user_data, flags) = rest else {
            // Only taken once, here.
            drop(notif);
            return;
        };
        let span = trace::span();
        // Back to the file's cache while the reservation still holds the
        // file's context (the context may go with the reservation); or to
        // the submitter, whose call holds it.
        let quiet = match inline {
            Some(i) => {
                match &mut i.spare {
                    s @ None => *s = Some(notif),
                    Some(_) => reservation.recycle(notif),
                }
                i.owed |= accepted >= 0;
                true
            }
            None => {
                reservation.recycle(notif);
                false
            }
        };
        if accepted >= 0 {
            let post = if quiet {
                Reservation::post_quiet
            } else {
                Reservation::post
            };
            post(
                reservation,
                ZcsendCompletion {
                    user_data,
                    bytes: accepted as u64,
                    flags: flags
                        | if copied {
                            ZCSEND_COMPL_COPIED
                        } else {
                            ZCSEND_COMPL_ZEROCOPY
                        },
                    result: 0,
                },
                linked,
                chain_len,
            );
            span.end(Stage::Post);
        } else {
            // The ioctl returned the error; no record is owed.
            drop(reservation);
        }
    }
}

/// Iovec entries kept on the stack; more go to the heap.
const INLINE_IOVECS: usize = 8;

/// Reads `count` iovecs from user space, in the caller's ABI.
pub(crate) fn read_iovecs(ptr: u64, count: usize) -> Result<SmallBuf<UserIovec, INLINE_IOVECS>> {
    if !uapi::in_compat_syscall() {
        // One user copy for the whole array (not one per entry).
        return SmallBuf::read_user(ptr, count);
    }
    let ptr = usize::try_from(ptr).map_err(|_| EFAULT)?;
    let size = core::mem::size_of::<CompatIovec>();
    let mut reader = UserSlice::new(UserPtr::from_addr(ptr), count * size).reader();
    let mut iovs = SmallBuf::new(count)?;
    for v in iovs.iter_mut() {
        let c = reader.read::<CompatIovec>()?;
        *v = UserIovec {
            base: c.base.into(),
            len: c.len.into(),
        };
    }
    Ok(iovs)
}

/// The one iovec of a send with `count == 1` in the native ABI, read from
/// user space; `None` for the others (read them with [`read_iovecs`]).
fn read_single_iovec(ptr: u64, count: usize) -> Result<Option<UserIovec>> {
    if count != 1 || uapi::in_compat_syscall() {
        return Ok(None);
    }
    let ptr = usize::try_from(ptr).map_err(|_| EFAULT)?;
    let v = UserSlice::new(UserPtr::from_addr(ptr), core::mem::size_of::<UserIovec>())
        .reader()
        .read()?;
    Ok(Some(v))
}

/// The optional address at `addr` (`addrlen` bytes; none if 0) into `slot`
/// (`None` on entry), in place: an `Option<SockAddr>`
/// returned by value is copied whole (132 bytes) even when it is `None`,
/// which is most sends.
#[inline]
fn read_address(slot: &mut Option<SockAddr>, addr: u64, addrlen: u32) -> Result {
    if addrlen != 0 {
        slot.insert(SockAddr::empty()).read_user(addr, addrlen)?;
    }
    Ok(())
}

/// What the sends of one system call look up once: the socket of a run of
/// sends on the same descriptor, and the registered buffer of a run of
/// sends from the same one (as `sendmmsg` looks its socket up once). The
/// socket's state (`Socket::takes_user_pages`, `Socket::is_local`) is
/// sampled at the run's first send; a descriptor closed or replaced during
/// the call is used as it was at that send.
///
/// It also holds what the call reserves at once for all its sends: the
/// completion slots ([`SlotPool`]) and the count of sends from registered
/// buffers ([`FixedCache`]); what is left goes back when it drops. And what
/// its sends that complete inside it leave ([`Inline`]): a notifier for the
/// next send, and the wake-ups of the consumer, done once when it drops.
pub(crate) struct Lookups<'a> {
    ctx: ArcBorrow<'a, Context>,
    socks: SockCache<'a>,
    fixed: FixedCache,
    slots: SlotPool<'a>,
    inline: Inline<InFlight>,
    /// The sends the system call has left, this one included (0: one).
    left: usize,
    /// The ioctl's stage profile (`ZCSEND_STAGES=1` builds only).
    stages: Stages,
}

impl<'a> Lookups<'a> {
    /// For a system call on `ctx`'s file; its registered sockets, if a send
    /// names one, go in `table`.
    pub(crate) fn new(ctx: ArcBorrow<'a, Context>, table: &'a SockTableCell) -> Self {
        Self {
            ctx,
            socks: SockCache { last: None, table },
            fixed: FixedCache::default(),
            slots: SlotPool::default(),
            inline: Inline::default(),
            left: 0,
            stages: Stages::default(),
        }
    }
}

impl Drop for Lookups<'_> {
    fn drop(&mut self) {
        if self.inline.owed {
            self.ctx.wake_readers();
        }
        if let Some(n) = self.inline.spare.take() {
            self.ctx.notifs().put(n);
        }
    }
}

/// The socket of the previous send (see [`Lookups`]), and where the file's
/// registered sockets are kept once a send names one.
pub(crate) struct SockCache<'a> {
    /// The socket, the send's `fd` and whether that is an index in the
    /// registered sockets (`ZCSEND_SEND_FIXED_SOCKET`).
    last: Option<(i32, bool, Socket<'a>)>,
    table: &'a SockTableCell,
}

impl<'a> SockCache<'a> {
    /// The socket `fd` (with `fixed`, registered socket `fd`), looked up
    /// if it is not the previous send's. Inlined: in a batch, every send
    /// but a run's first only compares.
    #[inline(always)]
    fn get(&mut self, ctx: &Context, fd: i32, fixed: bool) -> Result<&Socket<'a>> {
        if !matches!(&self.last, Some((f, x, _)) if *f == fd && *x == fixed) {
            self.lookup(ctx, fd, fixed)?;
        }
        match &self.last {
            Some((.., s)) => Ok(s),
            None => Err(EBADF),
        }
    }

    /// [`Self::get`]'s lookup, in place of the previous socket.
    fn lookup(&mut self, ctx: &Context, fd: i32, fixed: bool) -> Result {
        // The previous socket goes before the lookup can fail.
        self.last = None;
        let sock = if fixed {
            ctx.sockets_in(self.table)?.get(fd)?
        } else {
            Socket::from_fd(fd)?
        };
        self.last = Some((fd, fixed, sock));
        Ok(())
    }
}

/// The registered buffer of the previous send, and with it the file's
/// registered buffers held in use (unregister: `EBUSY`) for as long as
/// this lives; see [`Lookups`].
#[derive(Default)]
pub(crate) struct FixedCache(Option<(u32, Arc<PinnedBuffer>, FixedRef)>);

impl FixedCache {
    /// Registered buffer `index`, looked up if it is not the previous
    /// send's, and the proof that the file's registered buffers are held
    /// (for [`InFlight::start_fixed`]). A lookup counts the `left` sends
    /// the system call has left (this one included; 0 counts one) as
    /// sends from the registered buffers at once
    /// ([`Context::fixed_buffer`]).
    fn buffer(
        &mut self,
        ctx: ArcBorrow<'_, Context>,
        index: u32,
        left: usize,
    ) -> Result<(&PinnedBuffer, &FixedRef)> {
        if !matches!(&self.0, Some((i, _, _)) if *i == index) {
            self.0 = None;
            let (buf, held) = ctx.fixed_buffer(index, left.max(1))?;
            self.0 = Some((index, buf, held));
        }
        match &self.0 {
            Some((_, buf, held)) => Ok((buf, held)),
            None => Err(EINVAL),
        }
    }
}

/// Handles `ZCSEND_IOC_SEND`: returns the bytes accepted.
///
/// Sends of fewer than `copy_threshold` bytes are copied by the stack and
/// complete at once, and so are sends on sockets that cannot carry user
/// pages (`COPY_PATH`); larger ones are sent from pinned pages and complete
/// when the stack releases them.
///
/// Everything that can refuse a send (completion slot, per-file pin cap,
/// memlock) is checked before any page is pinned.
pub(crate) fn send<'a>(
    ctx: ArcBorrow<'a, Context>,
    arg: &ZcsendSend,
    copy_threshold: usize,
    lookups: &mut Lookups<'a>,
) -> Result<usize> {
    if arg.flags & !(ALLOWED_FLAGS | ZCSEND_SEND_FIXED | ZCSEND_SEND_BUF | ZCSEND_SEND_FIXED_SOCKET)
        != 0
    {
        return Err(EINVAL);
    }
    lookups.stages.mark(Stage::Entry);
    if arg.flags & ZCSEND_SEND_FIXED != 0 {
        return send_fixed(ctx, arg, copy_threshold, lookups);
    }
    let fixed_sock = arg.flags & ZCSEND_SEND_FIXED_SOCKET != 0;
    let sock = lookups.socks.get(&ctx, arg.fd, fixed_sock)?;
    lookups.stages.mark(Stage::Socket);
    // The common single iovec is read onto the stack and not moved again
    // (a `SmallBuf` returned by value is copied whole, twice per send);
    // ZCSEND_SEND_BUF names the one buffer in the request itself, as
    // send(2) does: nothing more to read.
    let (one, many);
    let iovs: &[UserIovec] = if arg.flags & ZCSEND_SEND_BUF != 0 {
        one = UserIovec {
            base: arg.iov,
            len: arg.iovcnt.into(),
        };
        core::slice::from_ref(&one)
    } else {
        let count = iovec::check_count(arg.iovcnt)?;
        match read_single_iovec(arg.iov, count)? {
            Some(v) => {
                one = v;
                core::slice::from_ref(&one)
            }
            None => {
                many = read_iovecs(arg.iov, count)?;
                &many
            }
        }
    };
    let flags = arg.flags & ALLOWED_FLAGS;
    let total = iovec::total_len(iovs)?;
    let mut addr = None;
    read_address(&mut addr, arg.addr, arg.addrlen)?;
    lookups.stages.mark(Stage::Resolve);

    // A datagram's frags: one iovec (the common case) needs one per page
    // it spans, which is also what it pins (counted once, and only if
    // asked: a stream's copy path never needs it); several may share pages.
    let mut one_pages = None;
    let frags = || match iovs {
        [one] => one_pages
            .insert(iovec::pages_spanned(one.base, one.len))
            .unwrap_or(usize::MAX),
        _ => iovec::frags_needed(iovs),
    };
    let copy = copy_path(sock, total, copy_threshold, frags);
    if let Some(path) = copy {
        let reservation = ctx.reserve_in(&mut lookups.slots, lookups.left)?;
        let res = send_copy(
            reservation,
            sock,
            iovs,
            total,
            flags,
            arg.user_data,
            addr.as_mut(),
        );
        trace::send(arg.user_data, &res, total, 0, 0, path);
        return res;
    }

    // `total_len` refused a range that wraps: neither count fails here.
    let nr_pages = match one_pages {
        Some(n) => n.ok_or(EFAULT)?,
        None => iovec::total_pages(iovs)?,
    };
    let mut reservation = ctx.reserve_in(&mut lookups.slots, lookups.left)?;
    lookups.stages.mark(Stage::Reserve);
    reservation.add_pinned(nr_pages)?;
    let owner = reservation.owner();
    // The pages are pinned into the notifier's payload, in place.
    let mut submission = Notif::submit_from(
        owner,
        false,
        ctx.notifs(),
        Some(&mut lookups.inline.spare),
        |p| p.start_pinned(iovs, nr_pages, reservation, arg.user_data, 0),
    )?;
    lookups.stages.mark(Stage::Pin);
    let res = {
        let bvecs = submission.payload().bvecs();
        let mut msg = SendMsg::new(flags, addr.as_mut());
        msg.zerocopy(&submission, bvecs, 0, total);
        lookups.stages.mark(Stage::Msghdr);
        let res = sock.sendmsg(&mut msg);
        lookups.stages.mark(Stage::Sendmsg);
        trace::send(
            arg.user_data,
            &res,
            total,
            nr_pages,
            bvecs.len(),
            Path::Zerocopy,
        );
        res
    };
    match res {
        // A partial send: unpin what the stack did not take.
        Ok(n) if n < total => submission.payload_mut().trim(iovs, n),
        _ => {}
    }
    submission.set_result(&res);
    lookups.stages.mark(Stage::Result);
    // Gives up the submitter's reference: the completion follows once
    // every skb carrying the pages is gone (possibly right here).
    submission.complete_in(&mut lookups.inline);
    lookups.stages.mark(Stage::Release);
    res
}

/// Why a send of `total` bytes in `frags()` frags (counted only for a
/// datagram) on `sock` takes the copy path, if it does.
///
/// Below the threshold pinning costs more than copying. A socket without
/// SOCK_SUPPORT_ZC (a ULP such as kTLS, a sockmap) would copy anyway, and a
/// TCP socket that is not established would put the data in a Fast Open
/// SYN, which the stack copies: both are the copy path they are. Local
/// delivery copies every frag anyway: do it now, unpinned. A datagram
/// cannot span skbs, and one that needs more frags than an skb holds is
/// copied rather than failed with EMSGSIZE.
#[inline]
pub(crate) fn copy_path(
    sock: &Socket<'_>,
    total: usize,
    copy_threshold: usize,
    frags: impl FnOnce() -> usize,
) -> Option<Path> {
    if total < copy_threshold {
        Some(Path::CopyThreshold)
    } else if !sock.takes_user_pages() {
        Some(Path::UnsupportedSocket)
    } else if sock.is_local() && crate::local_copy() {
        Some(Path::Local)
    } else if sock.is_datagram() && frags() > MAX_DATAGRAM_FRAGS {
        Some(Path::FragLimit)
    } else {
        None
    }
}

/// Posts the record of a send the stack copied before returning; `flags`
/// are added to COPIED | COPY_PATH.
pub(crate) fn post_copied(reservation: Reservation, user_data: u64, bytes: usize, flags: u32) {
    reservation.post(
        ZcsendCompletion {
            user_data,
            bytes: bytes as u64,
            flags: flags | ZCSEND_COMPL_COPIED | ZCSEND_COMPL_COPY_PATH,
            result: 0,
        },
        false,
        1,
    );
}

/// The plain copy path: the stack copies the bytes before returning.
fn send_copy(
    reservation: Reservation,
    sock: &Socket<'_>,
    iovs: &[UserIovec],
    total: usize,
    flags: u32,
    user_data: u64,
    addr: Option<&mut SockAddr>,
) -> Result<usize> {
    let mut msg = SendMsg::from_user_iovecs(iovs, total, flags, addr);
    let n = sock.sendmsg(&mut msg)?;
    post_copied(reservation, user_data, n, 0);
    Ok(n)
}

/// `bio_vec`s kept inline for a registered-buffer send of several ranges;
/// more go to the heap. Small on purpose: the resolved ranges are moved by
/// value, and under QEMU TCG moving a large inline array costs more than it
/// saves (a one-range send, the common case, needs none:
/// `FixedRanges::One`).
const INLINE_SEGMENTS: usize = 2;

/// Reads the `count` ranges of a `ZCSEND_SEND_FIXED` send.
fn read_ranges(ptr: u64, count: usize) -> Result<SmallBuf<ZcsendRange, INLINE_IOVECS>> {
    SmallBuf::read_user(ptr, count)
}

/// The payload of a `ZCSEND_SEND_FIXED` send: its ranges inside one
/// registered buffer, borrowed from the system call's [`FixedCache`].
pub(crate) struct FixedPayload<'a> {
    pub(crate) buf: &'a PinnedBuffer,
    /// The registered buffers held, for [`InFlight::start_fixed`].
    pub(crate) held: &'a FixedRef,
    pub(crate) ranges: FixedRanges,
    pub(crate) total: usize,
}

/// Where a registered-buffer send's bytes are.
pub(crate) enum FixedRanges {
    /// One non-empty range: sent straight from the buffer's own segments,
    /// nothing copied per send (as io_uring's `io_import_fixed`), located
    /// once.
    One(Segments),
    /// Several: their segments sliced into an array of the send's own.
    Many {
        bv: SmallBuf<Bvec, INLINE_SEGMENTS>,
        n: usize,
    },
}

impl FixedRanges {
    /// The segments to send from and how far into the first one the bytes
    /// start; `buf` is the buffer the ranges were resolved in.
    pub(crate) fn frags<'a>(
        &'a self,
        buf: &'a PinnedBuffer,
    ) -> Result<(&'a [bindings::bio_vec], usize)> {
        match self {
            Self::One(s) => buf.segments(*s),
            Self::Many { bv, n } => Ok((as_bio_vecs(&bv[..*n]), 0)),
        }
    }
}

impl<'a> FixedPayload<'a> {
    /// Reads the `count` ranges at `ptr` and resolves them in the file's
    /// registered buffers. `EINVAL` for ranges of different buffers,
    /// reserved bits, a bad index or bytes outside the buffer; `ENXIO` if
    /// no buffers are registered. `fixed` holds the buffers in use, for
    /// this send and the `left - 1` after it in the system call.
    /// Inlined: a `FixedPayload` returned from a call is copied whole into
    /// the caller's frame, on every send.
    #[inline(always)]
    pub(crate) fn resolve(
        ctx: ArcBorrow<'_, Context>,
        ptr: u64,
        iovcnt: u32,
        fixed: &'a mut FixedCache,
        left: usize,
    ) -> Result<Self> {
        let count = iovec::check_count(iovcnt)?;
        if count == 1 {
            // The common case, read straight onto the stack (no array).
            let r: ZcsendRange = UserSlice::new(
                UserPtr::from_addr(usize::try_from(ptr).map_err(|_| EFAULT)?),
                core::mem::size_of::<ZcsendRange>(),
            )
            .reader()
            .read()?;
            return Self::resolve_in(ctx, core::slice::from_ref(&r), fixed, left);
        }
        Self::resolve_in(ctx, &read_ranges(ptr, count)?, fixed, left)
    }

    /// Resolves the one range a `ZCSEND_SEND_FIXED | ZCSEND_SEND_BUF` send
    /// names in the request itself: `iov` is `ZCSEND_FIXED_RANGE(index,
    /// offset)`, `len` its length in bytes; otherwise as [`Self::resolve`]
    /// (nothing read from user space).
    #[inline(always)]
    pub(crate) fn resolve_inline(
        ctx: ArcBorrow<'_, Context>,
        iov: u64,
        len: u32,
        fixed: &'a mut FixedCache,
        left: usize,
    ) -> Result<Self> {
        let r = ZcsendRange {
            buf_index: (iov >> 32) as u32,
            reserved: 0,
            offset: iov & u64::from(u32::MAX),
            len: len.into(),
        };
        Self::resolve_in(ctx, core::slice::from_ref(&r), fixed, left)
    }

    /// Resolves `ranges` (at least one) in the file's registered buffers.
    #[inline(always)]
    fn resolve_in(
        ctx: ArcBorrow<'_, Context>,
        ranges: &[ZcsendRange],
        fixed: &'a mut FixedCache,
        left: usize,
    ) -> Result<Self> {
        let index = ranges.first().ok_or(EINVAL)?.buf_index;
        let mut total: usize = 0;
        for r in ranges {
            if r.buf_index != index || r.reserved != 0 {
                return Err(EINVAL);
            }
            let len = usize::try_from(r.len).map_err(|_| EINVAL)?;
            total = total.checked_add(len).ok_or(EINVAL)?;
            if total > iovec::MAX_BYTES {
                return Err(EINVAL);
            }
        }
        let (buf, held) = fixed.buffer(ctx, index, left)?;
        let ranges = match ranges {
            [r] if r.len != 0 => FixedRanges::One(buf.locate(r.offset, r.len)?),
            _ => {
                // A range touches at most one segment per page (plus a
                // partial first one), and never more than the buffer has.
                let segments = ranges
                    .iter()
                    .map(|r| (r.len as usize / PAGE_SIZE + 2).min(buf.nr_segments()))
                    .sum();
                let mut bv = SmallBuf::<Bvec, INLINE_SEGMENTS>::new(segments)?;
                let mut n = 0;
                for r in ranges {
                    buf.slice_into(r.offset, r.len, &mut bv, &mut n)?;
                }
                FixedRanges::Many { bv, n }
            }
        };
        Ok(Self {
            buf,
            held,
            ranges,
            total,
        })
    }
}

/// A send from a registered buffer (`ZCSEND_SEND_FIXED`): no pinning, no
/// memlock charge, no per-page work; the buffer's coalesced segments become
/// the frags.
fn send_fixed<'a>(
    ctx: ArcBorrow<'a, Context>,
    arg: &ZcsendSend,
    copy_threshold: usize,
    lookups: &mut Lookups<'a>,
) -> Result<usize> {
    let Lookups {
        socks,
        fixed,
        slots,
        inline,
        left,
        stages,
        ..
    } = lookups;
    let FixedPayload {
        buf,
        held,
        ranges,
        total,
    } = if arg.flags & ZCSEND_SEND_BUF != 0 {
        FixedPayload::resolve_inline(ctx, arg.iov, arg.iovcnt, fixed, *left)
    } else {
        FixedPayload::resolve(ctx, arg.iov, arg.iovcnt, fixed, *left)
    }?;
    stages.mark(Stage::Resolve);
    let sock = socks.get(&ctx, arg.fd, arg.flags & ZCSEND_SEND_FIXED_SOCKET != 0)?;
    let mut addr = None;
    read_address(&mut addr, arg.addr, arg.addrlen)?;
    stages.mark(Stage::Socket);
    let reservation = ctx.reserve_in(slots, *left)?;
    stages.mark(Stage::Reserve);

    // The buffer's segments, borrowed for the system call; once the send is
    // in flight its reservation keeps them registered ([`Held::Fixed`]).
    let (bvecs, skip) = ranges.frags(buf)?;
    let copy = copy_path(sock, total, copy_threshold, || bvecs.len());
    stages.mark(Stage::Pin);
    if let Some(path) = copy {
        // The stack copies straight out of the registered pages.
        let mut msg = SendMsg::new(arg.flags & ALLOWED_FLAGS, addr.as_mut());
        msg.copy_bvecs(bvecs, skip, total);
        let res = sock.sendmsg(&mut msg);
        trace::send(arg.user_data, &res, total, 0, 0, path);
        let sent = res?;
        post_copied(reservation, arg.user_data, sent, 0);
        return Ok(sent);
    }

    let owner = reservation.owner();
    let submission =
        Notif::submit_from(owner, false, ctx.notifs(), Some(&mut inline.spare), |p| {
            p.start_fixed(reservation, held, arg.user_data, 0)
        })?;
    stages.mark(Stage::Notif);
    let res = {
        let mut msg = SendMsg::new(arg.flags & ALLOWED_FLAGS, addr.as_mut());
        msg.zerocopy(&submission, bvecs, skip, total);
        stages.mark(Stage::Msghdr);
        let res = sock.sendmsg(&mut msg);
        stages.mark(Stage::Sendmsg);
        trace::send(arg.user_data, &res, total, 0, bvecs.len(), Path::Fixed);
        res
    };
    submission.set_result(&res);
    stages.mark(Stage::Result);
    submission.complete_in(inline);
    stages.mark(Stage::Release);
    res
}

/// Descriptors of a batch read with one copy and kept on the stack.
const INLINE_BATCH: usize = 16;

/// Handles `ZCSEND_IOC_SUBMIT`: `nr` descriptors from the user array at
/// `ptr` (read with one copy), each handed to `one` in order. Returns how
/// many were submitted: the first one's error if it fails, else the count
/// before the first failure (as `sendmmsg`).
pub(crate) fn submit_each<T: AsBytes + FromBytes + Copy + Default>(
    ptr: u64,
    nr: usize,
    resched_every: usize,
    mut one: impl FnMut(&T) -> Result<usize>,
) -> Result<usize> {
    let uptr = usize::try_from(ptr).map_err(|_| EFAULT)?;
    let mut descs = SmallBuf::<T, INLINE_BATCH>::new(nr)?;
    UserSlice::new(UserPtr::from_addr(uptr), nr * core::mem::size_of::<T>())
        .reader()
        .read_slice(<[T] as AsBytes>::as_bytes_mut(&mut descs))?;
    // The next descriptor before which the call reschedules: a compare per
    // send, not a division.
    let mut next = resched_every;
    for (i, d) in descs.iter().enumerate() {
        // A scheduling point every `resched_every` descriptors (a batch of
        // fan-outs may make 256 x 1024 sends); a killed task stops here.
        if i == next {
            next += resched_every;
            if crate::wait::resched_or_killed() {
                return Ok(i);
            }
        }
        if let Err(e) = one(d) {
            return if i == 0 { Err(e) } else { Ok(i) };
        }
    }
    Ok(nr)
}

/// Sends of a batch between two scheduling points of the system call
/// ([`crate::wait::resched_or_killed`]); a batch of fan-outs has one
/// between every two fan-outs.
pub(crate) const RESCHED_EVERY: usize = 16;

/// Handles `ZCSEND_IOC_SUBMIT` of sends (see [`submit_each`]); sockets and
/// registered buffers are looked up once per run ([`Lookups`]).
pub(crate) fn submit(
    ctx: ArcBorrow<'_, Context>,
    ptr: u64,
    nr: usize,
    copy_threshold: usize,
) -> Result<usize> {
    let table = SockTableCell::new();
    let mut lookups = Lookups::new(ctx, &table);
    let mut left = nr;
    submit_each::<ZcsendSend>(ptr, nr, RESCHED_EVERY, |s| {
        lookups.left = left;
        left -= 1;
        send(ctx, s, copy_threshold, &mut lookups)
    })
}
