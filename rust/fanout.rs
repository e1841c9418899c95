// SPDX-License-Identifier: GPL-2.0

//! `ZCSEND_IOC_FANOUT`: one payload to many sockets, pinned once (or copied
//! once, in stable mode), one notifier on every skb of every socket, one
//! completion record when the last of them is released.
//!
//! Safe Rust only, on the same abstractions as `send.rs`.
//!
//! Everything that can refuse the call is checked before the first byte is
//! sent: the arguments, every destination (descriptor, socket kind,
//! address, no socket twice), that the result fields can be written, the
//! completion slot, the pin limits. From then on each destination is tried
//! in order; one that fails gets its errno in its result field and the
//! others go on.

use core::mem::MaybeUninit;

use kernel::bindings;
use kernel::page::PAGE_SIZE;
use kernel::prelude::*;
use kernel::sync::ArcBorrow;
use kernel::transmute::AsBytes;
use kernel::uaccess::{
    UserPtr,
    UserSlice, //
};

use crate::context::{
    Context,
    SockTableCell, //
};
use crate::iovec;
use crate::net::{
    has_duplicate,
    FragTemplate,
    SendMsg,
    SockAddr,
    SockTable,
    Socket, //
};
use crate::pinned::StablePages;
use crate::send::{
    copy_path,
    post_copied,
    read_iovecs,
    FixedCache,
    FixedPayload,
    Held,
    InFlight,
    ALLOWED_FLAGS, //
};
use crate::smallbuf::SmallBuf;
use crate::uapi::{
    UserIovec,
    ZcsendDest,
    ZcsendFanout,
    ZCSEND_COMPL_FANOUT,
    ZCSEND_COMPL_STABLE,
    ZCSEND_FANOUT_STABLE,
    ZCSEND_MAX_FANOUT,
    ZCSEND_SEND_FIXED,
    ZCSEND_SEND_FIXED_SOCKET, //
};
use crate::ubuf::{
    Notif,
    Submission, //
};

/// One destination, resolved before anything is sent.
struct Target<'t> {
    sock: Socket<'t>,
    /// Its address, if it names one: an index into [`Targets::addrs`]
    /// (kept apart: most destinations are connected sockets, and a 132-byte
    /// address per destination would be moved for nothing).
    addr: Option<u32>,
}

/// The destinations of one call, in the caller's order.
struct Targets<'t> {
    list: KVVec<Target<'t>>,
    addrs: KVVec<SockAddr>,
}

/// What the fan-outs of one system call reuse from one payload to the
/// next (a batch of them, `ZCSEND_SUBMIT_FANOUT`): the destinations read
/// from user space, the resolved targets and the duplicate check's set, in
/// storage allocated (when it does not fit inline) once per call, not per
/// payload. Holds no socket between payloads; the file's registered
/// sockets, once one is named ([`ZCSEND_SEND_FIXED_SOCKET`]), until the
/// call returns.
pub(crate) struct Scratch<'t> {
    dests: SmallBuf<ZcsendDest, INLINE_DESTS>,
    targets: Targets<'t>,
    set: SmallBuf<usize, 32>,
    table: &'t SockTableCell,
}

impl<'t> Scratch<'t> {
    /// Nothing allocated yet; the registered sockets go in `table`.
    pub(crate) fn new(table: &'t SockTableCell) -> Self {
        Self {
            table,
            dests: SmallBuf::empty(),
            targets: Targets {
                list: KVVec::new(),
                addrs: KVVec::new(),
            },
            set: SmallBuf::empty(),
        }
    }
}

/// Where the bytes of a fan-out come from.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// Below the copy threshold: each destination copies from user memory.
    User(&'a [UserIovec]),
    /// Frags the notifier keeps alive (pinned, stable or registered pages).
    Frags(&'a [bindings::bio_vec], usize, &'a Submission<InFlight>),
}

/// Smallest address a destination may name (`struct sockaddr_in`).
const MIN_ADDRLEN: u32 = 16;

/// Handles `ZCSEND_IOC_FANOUT`; returns how many destinations' sends
/// succeeded. See the header for the errors.
pub(crate) fn fanout(
    ctx: ArcBorrow<'_, Context>,
    arg: &ZcsendFanout,
    copy_threshold: usize,
    scratch: &mut Scratch<'_>,
) -> Result<usize> {
    let res = fanout_in(ctx, arg, copy_threshold, scratch);
    // The sockets go back now, whatever happened; the storage stays.
    scratch.targets.list.clear();
    res
}

/// [`fanout`], in `scratch`.
fn fanout_in<'t>(
    ctx: ArcBorrow<'_, Context>,
    arg: &ZcsendFanout,
    copy_threshold: usize,
    scratch: &mut Scratch<'t>,
) -> Result<usize> {
    let fixed = arg.flags & ZCSEND_SEND_FIXED != 0;
    let stable = arg.flags & ZCSEND_FANOUT_STABLE != 0;
    if arg.flags
        & !(ALLOWED_FLAGS | ZCSEND_SEND_FIXED | ZCSEND_FANOUT_STABLE | ZCSEND_SEND_FIXED_SOCKET)
        != 0
        || (fixed && stable)
        || arg.resv != 0
        || arg.nr == 0
        || arg.nr > ZCSEND_MAX_FANOUT
    {
        return Err(EINVAL);
    }
    let msg_flags = arg.flags & ALLOWED_FLAGS;
    let Scratch {
        dests,
        targets,
        set,
        table,
    } = scratch;
    dests.read_user_in(arg.dests, arg.nr as usize)?;
    // Registered sockets: the table is looked up once per call.
    let table = if arg.flags & ZCSEND_SEND_FIXED_SOCKET != 0 {
        Some(ctx.sockets_in(table)?)
    } else {
        None
    };
    resolve(dests, table, targets, set)?;
    // The result fields must be writable before anything is sent: write the
    // array back as it was read, results zeroed.
    for d in dests.iter_mut() {
        d.result = 0;
    }
    write_results(arg.dests, dests)?;

    let mut flags = ZCSEND_COMPL_FANOUT;
    if stable {
        flags |= ZCSEND_COMPL_STABLE;
    }
    let mut reservation = ctx.reserve()?;
    // Holds the registered buffers in use until the send is in flight.
    let mut lookup = FixedCache::default();
    // What the notifier will hold: the stable copy, or (`to_pin`) the pages
    // of these iovecs, pinned into it; or (`from_fixed`) nothing but the
    // claim on the registered buffers ([`Held::Fixed`]).
    let (keep, from_fixed, to_pin, total) = if fixed {
        let p = FixedPayload::resolve(ctx, arg.iov, arg.iovcnt, &mut lookup, 1)?;
        let total = p.total;
        (Held::Fixed, Some(p), None, total)
    } else {
        let count = iovec::check_count(arg.iovcnt)?;
        let iovs = read_iovecs(arg.iov, count)?;
        let total = iovec::total_len(&iovs)?;
        if stable {
            reservation.add_pinned(total.div_ceil(PAGE_SIZE))?;
            let copy = StablePages::copy(&iovs, total)?;
            (Held::Stable(copy), None, None, total)
        } else if total < copy_threshold {
            // Each destination copies from user memory: nothing to pin,
            // nothing to wait for.
            let (ok, sum) = send_all(targets, dests, Source::User(&iovs), total, msg_flags);
            post_copied(reservation, arg.user_data, sum, flags);
            crate::trace::fanout(arg.user_data, targets.list.len(), ok, sum, stable);
            // The caller saw the fields writable; if it unmapped them since,
            // the results are lost, the sends and the record are not.
            let _ = write_results(arg.dests, dests);
            return Ok(ok);
        } else {
            let nr_pages = iovec::total_pages(&iovs)?;
            reservation.add_pinned(nr_pages)?;
            (Held::Nothing, None, Some((iovs, nr_pages)), total)
        }
    };

    // Located before the notifier exists: past it, an error would both
    // post the record and fail the call.
    let fixed_frags = match &from_fixed {
        Some(f) => Some(f.ranges.frags(f.buf)?),
        None => None,
    };
    let owner = reservation.owner();
    let submission = Notif::submit(owner, true, ctx.notifs(), |p| {
        match (&to_pin, &from_fixed) {
            (Some((iovs, nr)), _) => p.start_pinned(iovs, *nr, reservation, arg.user_data, flags),
            (None, Some(f)) => p.start_fixed(reservation, f.held, arg.user_data, flags),
            (None, None) => {
                p.start(keep, reservation, arg.user_data, flags);
                Ok(())
            }
        }
    })?;
    let (ok, sum) = {
        let (bvecs, skip) = fixed_frags.unwrap_or_else(|| (submission.payload().bvecs(), 0));
        send_all(
            targets,
            dests,
            Source::Frags(bvecs, skip, &submission),
            total,
            msg_flags,
        )
    };
    submission.set_result(&Ok(sum));
    crate::trace::fanout(arg.user_data, targets.list.len(), ok, sum, stable);
    // The completion follows once every skb on every socket is gone.
    drop(submission);
    let _ = write_results(arg.dests, dests);
    Ok(ok)
}

/// Looks up every destination into `targets` (emptied first; `set` is the
/// duplicate check's), by descriptor or, given `table`, by index in the
/// registered sockets: `EBADF`, `ENOTSOCK` and the other errors of
/// [`Socket::from_fd`] (`EBADF` for an index past the table), `EFAULT` for
/// an unreadable address, `EINVAL` for a bad address length or a socket
/// named twice.
fn resolve<'t>(
    dests: &[ZcsendDest],
    table: Option<&'t SockTable>,
    targets: &mut Targets<'t>,
    set: &mut SmallBuf<usize, 32>,
) -> Result {
    let Targets { list, addrs } = targets;
    list.clear();
    addrs.clear();
    list.reserve(dests.len(), GFP_KERNEL_ACCOUNT)?;
    let addressed = dests.iter().filter(|d| d.addrlen != 0).count();
    addrs.reserve(addressed, GFP_KERNEL_ACCOUNT)?;
    if let Some(t) = table {
        // A bit per registered socket (at most 1024: inline).
        set.reset(t.len().div_ceil(usize::BITS as usize))?;
        set.fill(0);
    }
    for d in dests {
        if d.addrlen != 0 && d.addrlen < MIN_ADDRLEN {
            return Err(EINVAL);
        }
        let sock = match table {
            Some(t) => {
                let s = t.get(d.fd)?;
                // A table holds each socket once: an index named twice is
                // the only way to name a socket twice.
                if !mark_index(set, d.fd as usize) {
                    return Err(EINVAL);
                }
                s
            }
            None => Socket::from_fd(d.fd)?,
        };
        let addr = if d.addrlen != 0 {
            // `addrs` has room for every addressed destination.
            let i = addrs.len();
            addrs
                .push_within_capacity(SockAddr::empty())
                .map_err(|_| ENOMEM)?;
            addrs[i].read_user(d.addr, d.addrlen)?;
            Some(i as u32)
        } else {
            None
        };
        list.push_within_capacity(Target { sock, addr })
            .map_err(|_| ENOMEM)?;
    }
    if table.is_none() && has_duplicate(list.len(), list.iter().map(|t| t.sock.id()), set)? {
        return Err(EINVAL);
    }
    Ok(())
}

/// Marks `index` (of a registered socket: below the table's length, for
/// which `set` has a bit) in the bitmap `set`; `false` if it was marked.
fn mark_index(set: &mut [usize], index: usize) -> bool {
    let (word, bit) = (
        index / usize::BITS as usize,
        1 << (index % usize::BITS as usize),
    );
    match set.get_mut(word) {
        Some(w) if *w & bit == 0 => {
            *w |= bit;
            true
        }
        _ => false,
    }
}

/// Destinations read from user space onto the stack (more: the heap).
const INLINE_DESTS: usize = 16;

/// Writes `dests` (with their results) back to the user array at `ptr`.
fn write_results(ptr: u64, dests: &[ZcsendDest]) -> Result {
    let uptr = usize::try_from(ptr).map_err(|_| EFAULT)?;
    UserSlice::new(UserPtr::from_addr(uptr), core::mem::size_of_val(dests))
        .writer()
        .write_slice(dests.as_bytes())
}

/// Sends the payload to every target in order, each result into its
/// `dests` entry; returns how many succeeded and the bytes accepted in all.
fn send_all(
    targets: &mut Targets<'_>,
    dests: &mut [ZcsendDest],
    src: Source<'_>,
    total: usize,
    flags: u32,
) -> (usize, usize) {
    let (mut ok, mut sum) = (0, 0);
    // The payload's frags, described once and copied into the skb of every
    // destination that takes the whole payload in one (a datagram); the
    // message built once and copied for each destination.
    let mut slot = MaybeUninit::uninit();
    let zerocopy = match src {
        Source::Frags(bvecs, skip, zc) => {
            let mut m = SendMsg::new(flags, None);
            m.zerocopy(zc, bvecs, skip, total);
            m.set_frags(FragTemplate::new_in(&mut slot, &m));
            Some(m)
        }
        Source::User(_) => None,
    };
    let every = crate::send::RESCHED_EVERY;
    let mut killed_at = None;
    for (k, (ts, ds)) in targets
        .list
        .chunks(every)
        .zip(dests.chunks_mut(every))
        .enumerate()
    {
        // A scheduling point every so many destinations (as
        // `__sys_sendmmsg()` has per message); a killed task tries no more
        // of them (their result: EINTR; the record still follows).
        if k != 0 && crate::wait::resched_or_killed() {
            killed_at = Some(k * every);
            break;
        }
        let (o, s) = send_some(ts, &mut targets.addrs, ds, src, &zerocopy, total, flags);
        ok += o;
        sum += s;
    }
    if let Some(from) = killed_at {
        for d in dests.iter_mut().skip(from) {
            d.result = i64::from(EINTR.to_errno());
        }
    }
    (ok, sum)
}

/// [`send_all`]'s sends to `targets` (results into `dests`), with the
/// message built once (`zerocopy`); returns how many succeeded and the
/// bytes accepted.
#[inline(always)]
fn send_some(
    targets: &[Target<'_>],
    addrs: &mut KVVec<SockAddr>,
    dests: &mut [ZcsendDest],
    src: Source<'_>,
    zerocopy: &Option<SendMsg<'_>>,
    total: usize,
    flags: u32,
) -> (usize, usize) {
    let (mut ok, mut sum) = (0, 0);
    for (t, d) in targets.iter().zip(dests.iter_mut()) {
        let addr = t.addr.and_then(|i| addrs.get_mut(i as usize));
        let res = match (src, zerocopy) {
            (Source::User(iovs), _) => t
                .sock
                .sendmsg(&mut SendMsg::from_user_iovecs(iovs, total, flags, addr)),
            // The threshold was applied to the whole payload already.
            (Source::Frags(bvecs, ..), Some(m))
                if copy_path(&t.sock, 0, 0, || bvecs.len()).is_none() =>
            {
                t.sock.sendmsg(m.again_in(&mut MaybeUninit::uninit(), addr))
            }
            (Source::Frags(bvecs, skip, zc), _) => {
                // This destination copies (a socket that takes no user
                // pages, a local one, a datagram over the frag limit): the
                // record will say COPIED.
                zc.mark_copied();
                let mut m = SendMsg::new(flags, addr);
                m.copy_bvecs(bvecs, skip, total);
                t.sock.sendmsg(&mut m)
            }
        };
        d.result = match res {
            Ok(n) => {
                ok += 1;
                sum += n;
                n as i64
            }
            Err(e) => i64::from(e.to_errno()),
        };
    }
    (ok, sum)
}
