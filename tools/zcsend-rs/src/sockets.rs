// SPDX-License-Identifier: GPL-2.0
//! Registered sockets (`ZCSEND_IOC_REGISTER_SOCKETS`) and the socket
//! argument of every send, [`SockRef`]: a descriptor, or an index into
//! them (`ZCSEND_SEND_FIXED_SOCKET`).
//!
//! An index is only ever made by [`Sockets::get`], which borrows the
//! handle: while a [`SockRef`] of the table exists the table can be neither
//! unregistered nor dropped, so every index a send names is in its table.
//! A send checks that an index is of its own [`Device`]'s table
//! (`EINVAL` before the system call otherwise), and the library never takes
//! `ZCSEND_SEND_FIXED_SOCKET` from a caller's flags.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;

use crate::device::Device;
use crate::sys;

/// Most sockets of one registration (`ZCSEND_MAX_SOCKETS`).
pub const MAX_SOCKETS: usize = sys::ZCSEND_MAX_SOCKETS as usize;

/// The socket a send goes to: a descriptor (`BorrowedFd`, or a reference
/// to anything [`AsFd`], such as a `&TcpStream`), or a registered socket
/// ([`Sockets::get`]), named by its index with `ZCSEND_SEND_FIXED_SOCKET`,
/// which saves the kernel the descriptor lookup per send.
///
/// Every send method takes `impl Into<SockRef>`, so `sock.as_fd()` works as
/// before. A `SockRef` of a registered socket borrows its [`Sockets`]
/// handle: the table stays registered while it exists.
#[derive(Clone, Copy)]
pub struct SockRef<'a>(Sock<'a>);

#[derive(Clone, Copy)]
enum Sock<'a> {
    Fd(BorrowedFd<'a>),
    /// Index `index` into the table registered with the file `file` (the
    /// inside of the [`Sockets`]' and its `Device`'s `Arc<OwnedFd>`: its
    /// address identifies the file).
    Index {
        index: u32,
        file: &'a OwnedFd,
    },
}

impl<'a> SockRef<'a> {
    /// The socket `fd`, named by its descriptor.
    pub fn fd(fd: BorrowedFd<'a>) -> SockRef<'a> {
        SockRef(Sock::Fd(fd))
    }

    /// The descriptor, or `None` for a registered socket.
    pub fn as_fd(&self) -> Option<BorrowedFd<'a>> {
        match self.0 {
            Sock::Fd(fd) => Some(fd),
            Sock::Index { .. } => None,
        }
    }

    /// The index in its [`Sockets`], or `None` for a descriptor.
    pub fn index(&self) -> Option<usize> {
        match self.0 {
            Sock::Fd(_) => None,
            Sock::Index { index, .. } => Some(index as usize),
        }
    }

    /// True for a registered socket (named by index).
    pub fn is_registered(&self) -> bool {
        matches!(self.0, Sock::Index { .. })
    }

    /// `zcsend_send.fd` (`zcsend_dest.fd`) and the flag that says how to
    /// read it (`ZCSEND_SEND_FIXED_SOCKET` for an index, else 0) for a send
    /// through the file `file`: `EINVAL` for an index of another file's
    /// table.
    pub(crate) fn raw(&self, file: &Arc<OwnedFd>) -> io::Result<(RawFd, u32)> {
        match self.0 {
            Sock::Fd(fd) => Ok((fd.as_raw_fd(), 0)),
            Sock::Index { index, file: of } if std::ptr::eq(of, &**file) => {
                // At most MAX_SOCKETS: fits.
                Ok((index as RawFd, sys::ZCSEND_SEND_FIXED_SOCKET))
            }
            Sock::Index { .. } => Err(io::Error::from_raw_os_error(libc::EINVAL)),
        }
    }
}

impl<'a> From<BorrowedFd<'a>> for SockRef<'a> {
    fn from(fd: BorrowedFd<'a>) -> SockRef<'a> {
        SockRef::fd(fd)
    }
}

impl<'a, T: AsFd + ?Sized> From<&'a T> for SockRef<'a> {
    fn from(sock: &'a T) -> SockRef<'a> {
        SockRef::fd(sock.as_fd())
    }
}

impl fmt::Debug for SockRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Sock::Fd(fd) => f.debug_tuple("SockRef::Fd").field(&fd.as_raw_fd()).finish(),
            Sock::Index { index, .. } => f.debug_tuple("SockRef::Index").field(&index).finish(),
        }
    }
}

/// Sockets registered with one [`Device`]
/// ([`Device::register_sockets`]): indexes `0..len()`, named by the
/// [`SockRef`]s of [`get`](Self::get) in any send, fan-out or batch of that
/// device.
///
/// The module holds a reference on each socket, so closing (dropping) the
/// descriptors it was registered from does not close them: they stay open
/// until the table is unregistered ([`unregister`](Self::unregister), or
/// dropping the handle) or the device is closed. Sends in flight are not
/// affected by unregistering (their skbs hold their sockets).
///
/// The handle keeps the device's file open (as a [`Registered`] does), so
/// it may be kept beside the [`Device`] and outlive it; the `SockRef`s
/// borrow the handle, so none outlives the registration:
///
/// ```compile_fail,E0505
/// # use std::{net::TcpStream, os::fd::AsFd};
/// # use zcsend::{Buf, Device, MsgFlags};
/// # fn f(dev: &Device, sock: &TcpStream) -> std::io::Result<()> {
/// let socks = dev.register_sockets([sock.as_fd()])?;
/// let s = socks.get(0).unwrap();
/// socks.unregister()?;
/// dev.send(s, &[Buf::from("late")], MsgFlags::NONE, None, 1)?; // no table
/// # Ok(()) }
/// ```
///
/// [`Registered`]: crate::Registered
pub struct Sockets {
    /// The `/dev/zcsend` file the table is registered with.
    fd: Arc<OwnedFd>,
    len: u32,
    /// Registered with the module (cleared by `unregister`).
    registered: bool,
}

impl Sockets {
    /// `ZCSEND_IOC_REGISTER_SOCKETS` of `fds` on `dev`.
    pub(crate) fn register(dev: &Device, fds: Vec<RawFd>) -> io::Result<Sockets> {
        let nr =
            u32::try_from(fds.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let mut req = sys::zcsend_register_sockets {
            fds: fds.as_ptr() as u64,
            nr,
            flags: 0,
        };
        // SAFETY: a `struct zcsend_register_sockets` pointing at `nr`
        // descriptors (`__s32`) in `fds`, alive until the call returns; the
        // module only reads them.
        unsafe { dev.ioctl(sys::ZCSEND_IOC_REGISTER_SOCKETS, &mut req) }?;
        Ok(Sockets {
            fd: dev.file().clone(),
            len: nr,
            registered: true,
        })
    }

    /// Number of sockets (indexes `0..len()`).
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when no socket is registered (never, for a successful
    /// registration).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Registered socket `index` (the position of its descriptor in the
    /// list given to [`Device::register_sockets`]), or `None` past the
    /// table. Sends through another [`Device`] refuse it with `EINVAL`.
    pub fn get(&self, index: usize) -> Option<SockRef<'_>> {
        let index = u32::try_from(index).ok().filter(|&i| i < self.len)?;
        Some(SockRef(Sock::Index {
            index,
            file: &self.fd,
        }))
    }

    /// Every registered socket, in index order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = SockRef<'_>> + '_ {
        (0..self.len).map(move |index| {
            SockRef(Sock::Index {
                index,
                file: &self.fd,
            })
        })
    }

    /// Unregisters the sockets (`ZCSEND_IOC_UNREGISTER_SOCKETS`): the
    /// module drops its references at once (a socket whose descriptors are
    /// all closed closes now), without waiting for sends in flight, which
    /// hold their sockets themselves. The device can then register a new
    /// table. No [`SockRef`] of the table can exist (they borrow it).
    ///
    /// Errors are the module's (`ENXIO` if the table is not registered any
    /// more, which the library does not do); the handle is gone either way.
    pub fn unregister(mut self) -> io::Result<()> {
        self.registered = false;
        unregister(&self.fd)
    }
}

/// `ZCSEND_IOC_UNREGISTER_SOCKETS` on `fd`.
fn unregister(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: an argument-less ioctl (`_IO`) on our own file.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), sys::ZCSEND_IOC_UNREGISTER_SOCKETS as _, 0) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl Drop for Sockets {
    /// Unregisters, ignoring errors (see [`Sockets::unregister`]).
    fn drop(&mut self) {
        if self.registered {
            let _ = unregister(&self.fd);
        }
    }
}

impl fmt::Debug for Sockets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sockets")
            .field("len", &self.len)
            .field("fd", &self.fd.as_raw_fd())
            .finish()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A table of `len` sockets that the module never saw (dropping it
    /// issues no ioctl), on the file `fd`.
    pub(crate) fn unregistered(fd: &Arc<OwnedFd>, len: u32) -> Sockets {
        Sockets {
            fd: fd.clone(),
            len,
            registered: false,
        }
    }

    #[test]
    fn indexes_and_identity() {
        let fd = crate::registered::tests::null_fd();
        let other = crate::registered::tests::null_fd();
        let socks = unregistered(&fd, 3);
        assert_eq!((socks.len(), socks.is_empty()), (3, false));
        assert!(socks.get(3).is_none() && socks.get(usize::MAX).is_none());
        let s = socks.get(2).unwrap();
        assert!(s.is_registered());
        assert_eq!((s.index(), s.as_fd().is_none()), (Some(2), true));
        assert_eq!(
            s.raw(&fd).unwrap(),
            (2, sys::ZCSEND_SEND_FIXED_SOCKET),
            "an index, with the flag that says so"
        );
        // Another file's table: refused, whatever the index.
        let e = s.raw(&other).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        let all: Vec<Option<usize>> = socks.iter().map(|s| s.index()).collect();
        assert_eq!(all, [Some(0), Some(1), Some(2)]);
        assert_eq!(socks.iter().len(), 3);
        assert_eq!(format!("{s:?}"), "SockRef::Index(2)");

        // A descriptor is itself, on any file, without the flag.
        let f = std::fs::File::open("/dev/null").unwrap();
        for d in [SockRef::from(f.as_fd()), SockRef::from(&f)] {
            assert!(!d.is_registered() && d.index().is_none());
            assert_eq!(d.as_fd().unwrap().as_raw_fd(), f.as_raw_fd());
            assert_eq!(d.raw(&fd).unwrap(), (f.as_raw_fd(), 0));
            assert_eq!(d.raw(&other).unwrap(), (f.as_raw_fd(), 0));
        }
    }

    /// Without the module (/dev/null: ENOTTY) nothing is registered, and
    /// the handle of a table that is gone reports the module's error.
    #[test]
    fn register_and_unregister_errors() {
        let dev = Device::open_path("/dev/null").unwrap();
        let f = std::fs::File::open("/dev/null").unwrap();
        let e = dev.register_sockets([f.as_fd()]).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOTTY));
        let socks = Sockets {
            fd: dev.file().clone(),
            len: 1,
            registered: true,
        };
        let e = socks.unregister().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOTTY));
    }
}
