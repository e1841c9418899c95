// SPDX-License-Identifier: GPL-2.0

//! One send: validate the request, then take the copy path or the zero-copy
//! path, and arrange for exactly one completion record per accepted send.
//!
//! Safe Rust only: sockets, pinned pages and the notifier come from
//! `net.rs`, `pinned.rs` and `ubuf.rs`.

use kernel::bindings;
use kernel::prelude::*;
use kernel::sync::ArcBorrow;
use kernel::uaccess::{
    UserPtr,
    UserSlice, //
};

use crate::context::{
    Context,
    Reservation, //
};
use crate::iovec;
use crate::net::{
    SendMsg,
    SockAddr,
    Socket, //
};
use crate::pinned::PinnedPages;
use crate::smallbuf::SmallBuf;
use crate::uapi::{
    self,
    CompatIovec,
    UserIovec,
    ZcsendCompletion,
    ZcsendSend,
    ZCSEND_COMPL_COPIED,
    ZCSEND_COMPL_COPY_PATH,
    ZCSEND_COMPL_ZEROCOPY, //
};
use crate::ubuf::Notif;
use crate::wq::ModuleRef;

/// `MSG_*` flags a send may pass through to the socket.
pub(crate) const ALLOWED_FLAGS: u32 = bindings::MSG_DONTWAIT
    | bindings::MSG_MORE
    | bindings::MSG_NOSIGNAL
    | bindings::MSG_EOR
    | bindings::MSG_CONFIRM
    | bindings::MSG_DONTROUTE;

/// Frags one skb can carry (`MAX_SKB_FRAGS`).
const MAX_DATAGRAM_FRAGS: usize = bindings::MAX_SKB_FRAGS as usize;

/// What a zero-copy send keeps until the stack lets go of its pages.
///
/// Fields drop in declaration order: the pages are unpinned and the record
/// posted before the module reference, which must go last.
pub(crate) struct InFlight {
    pages: PinnedPages,
    reservation: Reservation,
    user_data: u64,
    _module: ModuleRef,
}

impl InFlight {
    /// The pinned bytes of this send.
    pub(crate) fn bvecs(&self) -> &[bindings::bio_vec] {
        self.pages.bvecs()
    }

    /// After a partial send of `accepted` bytes: unpin (and uncharge) the
    /// pages past the accepted prefix, which no skb refers to, so a socket
    /// that takes part of a send does not keep all of it pinned.
    fn trim(&mut self, iovs: &[UserIovec], accepted: usize) {
        let keep = iovec::pages_for_prefix(iovs, accepted);
        let before = self.pages.nr_pages();
        if keep < before {
            self.pages.trim(keep, accepted);
            self.reservation.remove_pinned(before - keep);
        }
    }

    /// Called once, in process context, when no skb refers to the pages any
    /// more. `accepted` is what `sock_sendmsg` returned (bytes or -errno).
    pub(crate) fn finish(self, accepted: i64, copied: bool, linked: bool) {
        let InFlight {
            pages,
            reservation,
            user_data,
            _module,
        } = self;
        drop(pages);
        if accepted >= 0 {
            reservation.post(
                ZcsendCompletion {
                    user_data,
                    bytes: accepted as u64,
                    flags: if copied {
                        ZCSEND_COMPL_COPIED
                    } else {
                        ZCSEND_COMPL_ZEROCOPY
                    },
                    result: 0,
                },
                linked,
            );
        } else {
            // The ioctl returned the error; no record is owed.
            drop(reservation);
        }
        drop(_module);
    }
}

/// Iovec entries kept on the stack; more go to the heap.
const INLINE_IOVECS: usize = 8;

/// Reads `count` iovecs from user space, in the caller's ABI.
fn read_iovecs(ptr: u64, count: usize) -> Result<SmallBuf<UserIovec, INLINE_IOVECS>> {
    let ptr = usize::try_from(ptr).map_err(|_| EFAULT)?;
    let compat = uapi::in_compat_syscall();
    let size = if compat {
        core::mem::size_of::<CompatIovec>()
    } else {
        core::mem::size_of::<UserIovec>()
    };
    let mut reader = UserSlice::new(UserPtr::from_addr(ptr), count * size).reader();
    let mut iovs = SmallBuf::new(count)?;
    for v in iovs.iter_mut() {
        *v = if compat {
            let c = reader.read::<CompatIovec>()?;
            UserIovec {
                base: c.base.into(),
                len: c.len.into(),
            }
        } else {
            reader.read::<UserIovec>()?
        };
    }
    Ok(iovs)
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
pub(crate) fn send(
    ctx: ArcBorrow<'_, Context>,
    arg: &ZcsendSend,
    copy_threshold: usize,
) -> Result<usize> {
    if arg.flags & !ALLOWED_FLAGS != 0 {
        return Err(EINVAL);
    }
    let count = iovec::check_count(arg.iovcnt)?;
    let iovs = read_iovecs(arg.iov, count)?;
    let total = iovec::total_len(&iovs)?;
    let sock = Socket::from_fd(arg.fd)?;
    let mut addr = match arg.addrlen {
        0 => None,
        len => Some(SockAddr::from_user(arg.addr, len)?),
    };

    if total < copy_threshold || !sock.takes_user_pages() {
        // Below the threshold pinning costs more than copying. A socket
        // without SOCK_SUPPORT_ZC (a ULP such as kTLS, a sockmap) would copy
        // anyway, and a TCP socket that is not established would put the
        // data in a Fast Open SYN, which the stack copies: report both as
        // the copy path they are.
        return send_copy(ctx, &sock, &iovs, total, arg, addr.as_mut());
    }

    if sock.is_datagram() && iovec::frags_needed(&iovs) > MAX_DATAGRAM_FRAGS {
        // A datagram cannot span skbs, and this one needs more frags than an
        // skb holds: let the stack copy it rather than fail with EMSGSIZE.
        return send_copy(ctx, &sock, &iovs, total, arg, addr.as_mut());
    }

    let mut reservation = ctx.reserve()?;
    let nr_pages = iovec::total_pages(&iovs)?;
    reservation.add_pinned(nr_pages)?;
    let module = ModuleRef::get()?;
    let pages = PinnedPages::pin(&iovs, nr_pages)?;
    let owner = reservation.owner();
    let mut submission = Notif::submit(
        InFlight {
            pages,
            reservation,
            user_data: arg.user_data,
            _module: module,
        },
        owner,
    )?;
    let res = {
        let mut msg = SendMsg::zerocopy(&submission, total, arg.flags, addr.as_mut());
        sock.sendmsg(&mut msg)
    };
    if let Ok(n) = res {
        submission.payload_mut().trim(&iovs, n);
    }
    submission.set_result(&res);
    // Drops the submitter's reference: the completion follows once every
    // skb carrying the pages is gone (possibly right here).
    drop(submission);
    res
}

/// The plain copy path: the stack copies the bytes before returning.
fn send_copy(
    ctx: ArcBorrow<'_, Context>,
    sock: &Socket,
    iovs: &[UserIovec],
    total: usize,
    arg: &ZcsendSend,
    addr: Option<&mut SockAddr>,
) -> Result<usize> {
    let reservation = ctx.reserve()?;
    let mut msg = SendMsg::from_user_iovecs(iovs, total, arg.flags, addr);
    let n = sock.sendmsg(&mut msg)?;
    reservation.post(
        ZcsendCompletion {
            user_data: arg.user_data,
            bytes: n as u64,
            flags: ZCSEND_COMPL_COPIED | ZCSEND_COMPL_COPY_PATH,
            result: 0,
        },
        false,
    );
    Ok(n)
}
