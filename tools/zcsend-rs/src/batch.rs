// SPDX-License-Identifier: GPL-2.0
//! Many sends in one system call (`ZCSEND_IOC_SUBMIT`).

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use crate::buf::Buf;
use crate::device::{send_flags, sockaddr, Device, FixedArg, Held, MsgFlags, SockAddr};
use crate::registered::Fixed;
use crate::sockets::SockRef;
use crate::sys;

/// Most sends of one [`Batch`] (`ZCSEND_MAX_BATCH`).
pub const MAX_BATCH: usize = sys::ZCSEND_MAX_BATCH as usize;

/// The memory of one queued send, owned by the batch until the send is
/// submitted, then by the device until its completion has been read.
enum Payload {
    Bufs(Vec<Buf>),
    Fixed(Vec<Fixed>),
}

struct Entry {
    /// A descriptor, or an index with `ZCSEND_SEND_FIXED_SOCKET` in `flags`.
    fd: RawFd,
    /// Final `zcsend_send.flags` (with `ZCSEND_SEND_FIXED` for ranges,
    /// `ZCSEND_SEND_FIXED_SOCKET` for a registered socket), but for
    /// `ZCSEND_SEND_BUF`, which [`Encoded`] adds for a buffer or a range
    /// named inline.
    flags: u32,
    dest: Option<SocketAddr>,
    user_data: u64,
    payload: Payload,
}

/// Sends queued to be submitted together with one `ZCSEND_IOC_SUBMIT`
/// ([`Device::batch`]): owned [`Buf`]s and registered [`Fixed`] ranges mixed,
/// on any sockets, up to [`MAX_BATCH`] at a time.
///
/// Ownership is that of [`Device::send`] and [`Device::send_fixed`]: the
/// batch keeps clones of the buffers while the sends are queued, and a
/// submitted send's clones move to the device, which drops them when the
/// send's completion has been read. `'fd` is the borrow of the sockets:
/// descriptors, or registered sockets ([`Sockets::get`]), whose table then
/// stays registered while the batch lives. Each send says by its own flags
/// whether its socket is an index, so one batch may mix both.
///
/// [`Sockets::get`]: crate::Sockets::get
///
/// ```no_run
/// # use std::{net::TcpStream, os::fd::AsFd};
/// # use zcsend::{Buf, Device, MsgFlags};
/// # fn f(dev: &Device, a: &TcpStream, b: &TcpStream) -> std::io::Result<()> {
/// let reg = dev.register([vec![0x42u8; 1 << 20]])?;
/// let mut batch = dev.batch();
/// batch.send(a.as_fd(), &[Buf::from("header\n")], MsgFlags::NOSIGNAL, None, 1)?;
/// batch.send_fixed(a.as_fd(), &[reg.fixed(0, ..65536)], MsgFlags::NOSIGNAL, None, 2)?;
/// batch.send_fixed(b.as_fd(), &[reg.fixed(0, ..)], MsgFlags::NOSIGNAL, None, 3)?;
/// while !batch.is_empty() {
///     let n = batch.submit()?; // sendmmsg(2) semantics, see `submit`
///     # let _ = n;
/// }
/// # Ok(()) }
/// ```
pub struct Batch<'d, 'fd> {
    dev: &'d Device,
    queue: VecDeque<Entry>,
    _fd: PhantomData<SockRef<'fd>>,
}

fn full() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("zcsend batch full ({MAX_BATCH} sends): submit first"),
    )
}

impl<'d, 'fd> Batch<'d, 'fd> {
    pub(crate) fn new(dev: &'d Device) -> Batch<'d, 'fd> {
        Batch {
            dev,
            queue: VecDeque::new(),
            _fd: PhantomData,
        }
    }

    /// Queues [`Device::send`] of `bufs` on `sock`, encoded as `send`
    /// encodes them (one buffer in the descriptor itself, several in an
    /// iovec array). Fails (queueing nothing) when the batch is full, or
    /// with `EINVAL` when `flags` has the module's own bits or `sock` is a
    /// registered socket of another [`Device`].
    pub fn send(
        &mut self,
        sock: impl Into<SockRef<'fd>>,
        bufs: &[Buf],
        flags: MsgFlags,
        dest: Option<&SocketAddr>,
        user_data: u64,
    ) -> io::Result<()> {
        let flags = send_flags(flags, false)?;
        self.push(
            sock.into(),
            flags,
            dest,
            user_data,
            Payload::Bufs(bufs.to_vec()),
        )
    }

    /// Queues [`Device::send_fixed`] of `ranges` on `sock`, encoded as
    /// `send_fixed` encodes them (one range in the descriptor itself,
    /// several in an array). Fails (queueing nothing) when the batch is
    /// full, or with `EINVAL` as `send_fixed` does for `sock`, `ranges` and
    /// `flags`.
    pub fn send_fixed(
        &mut self,
        sock: impl Into<SockRef<'fd>>,
        ranges: &[Fixed],
        flags: MsgFlags,
        dest: Option<&SocketAddr>,
        user_data: u64,
    ) -> io::Result<()> {
        let flags = send_flags(flags, true)?;
        self.dev.check_fixed(ranges)?;
        self.push(
            sock.into(),
            flags,
            dest,
            user_data,
            Payload::Fixed(ranges.to_vec()),
        )
    }

    fn push(
        &mut self,
        sock: SockRef<'fd>,
        flags: u32,
        dest: Option<&SocketAddr>,
        user_data: u64,
        payload: Payload,
    ) -> io::Result<()> {
        let (fd, sock_flag) = sock.raw(self.dev.file())?;
        if self.is_full() {
            return Err(full());
        }
        self.queue.push_back(Entry {
            fd,
            flags: flags | sock_flag,
            dest: dest.copied(),
            user_data,
            payload,
        });
        Ok(())
    }

    /// Sends queued.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// True when [`MAX_BATCH`] sends are queued.
    pub fn is_full(&self) -> bool {
        self.queue.len() >= MAX_BATCH
    }

    /// Drops the queued sends (and the batch's clones of their buffers).
    pub fn clear(&mut self) {
        self.queue.clear();
    }

    /// Submits the queued sends, in order, with one `ZCSEND_IOC_SUBMIT`,
    /// and returns how many were submitted, as `sendmmsg(2)` does:
    ///
    /// - `Ok(n)`, `n == len()`: all of them; the batch is empty.
    /// - `Ok(n)`, `n < len()`: send `n` failed (its error is not reported,
    ///   as with `sendmmsg`; submitting again reports it); the first `n` were
    ///   submitted and left the batch, the failed one and those after it
    ///   were not and stay queued, in order.
    /// - `Err(e)`: the first send failed with `e`; nothing was submitted and
    ///   everything stays queued.
    /// - `Ok(0)` for an empty batch, without a system call.
    ///
    /// Each submitted send is followed by exactly one [`Completion`]
    /// carrying its `user_data`, whose `bytes` says how much of it a stream
    /// socket took (the ioctl does not return it); the rest, if any, is the
    /// caller's to send again. Sends not submitted post nothing.
    ///
    /// [`Completion`]: crate::Completion
    pub fn submit(&mut self) -> io::Result<usize> {
        let dev = self.dev;
        // SAFETY: `submit_with` passes a `struct zcsend_submit` over the
        // encoded send array and the queued payloads, all alive until the
        // ioctl returns; it then moves the submitted sends' `Buf`s and
        // `Fixed`s to the device, which keeps them until their completions.
        self.submit_with(|req| unsafe { dev.ioctl(sys::ZCSEND_IOC_SUBMIT, req) })
    }

    /// [`submit`](Self::submit) with the ioctl passed in (tests fake it).
    fn submit_with(
        &mut self,
        ioctl: impl FnOnce(&mut sys::zcsend_submit) -> io::Result<libc::c_int>,
    ) -> io::Result<usize> {
        let n = self.queue.len();
        if n == 0 {
            return Ok(0);
        }
        let first = self.dev.new_ids(n);
        let raw = Encoded::new(self.queue.make_contiguous(), first);
        let mut req = sys::zcsend_submit {
            sends: raw.sends.as_ptr() as u64,
            nr: n as u32,
            flags: 0,
        };
        // `raw` (the send array and what it points to) and the queued
        // payloads live until the ioctl has returned.
        let done = ioctl(&mut req)?;
        let done = usize::try_from(done).unwrap_or(0).min(n);
        drop(raw);
        // The submitted sends' buffers go in flight: their clones move from
        // the batch to the device, which drops them with the completion.
        for (i, e) in self.queue.drain(..done).enumerate() {
            let keep = match e.payload {
                Payload::Bufs(b) => Held::Bufs(b),
                Payload::Fixed(f) => Held::Fixed(f),
            };
            self.dev.track(first + i as u64, e.user_data, None, || keep);
        }
        Ok(done)
    }
}

impl fmt::Debug for Batch<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("queued", &self.len())
            .finish()
    }
}

/// The `struct zcsend_send` array of a batch and the arrays and addresses
/// it points into. A send of one [`Fixed`] names it in its descriptor
/// (`ZCSEND_SEND_FIXED | ZCSEND_SEND_BUF`, [`FixedArg::Inline`]), and a
/// send of one [`Buf`] too, as [`Device::send`] does (`ZCSEND_SEND_BUF`,
/// [`inline_buf`]): no array, `iov` points to the bytes of the entry's own
/// `Buf`, which the queue holds.
struct Encoded {
    sends: Vec<sys::zcsend_send>,
    _iovs: Vec<Vec<libc::iovec>>,
    _ranges: Vec<FixedArg>,
    _addrs: Vec<(SockAddr, u32)>,
}

impl Encoded {
    /// Entry `i` gets the record id `first + i`.
    fn new(entries: &[Entry], first: u64) -> Encoded {
        // Every array is complete before a pointer into it is taken; moving
        // the outer vectors later does not move their heap blocks.
        let addrs: Vec<(SockAddr, u32)> = entries
            .iter()
            .map(|e| match &e.dest {
                Some(a) => sockaddr(a),
                None => (SockAddr::none(), 0),
            })
            .collect();
        let mut iovs = Vec::new();
        let mut ranges = Vec::new();
        // (iov, iovcnt, ZCSEND_SEND_BUF for a buffer or range named inline)
        let arrays: Vec<(u64, usize, u32)> = entries
            .iter()
            .map(|e| match &e.payload {
                Payload::Bufs(b) => match inline_buf(b) {
                    // The bytes of the queued `Buf`, alive until the ioctl
                    // has returned (then held by the device).
                    Some((ptr, len)) => (ptr, len as usize, sys::ZCSEND_SEND_BUF),
                    None => {
                        let v: Vec<libc::iovec> = b.iter().map(Buf::iovec).collect();
                        let a = (v.as_ptr() as u64, v.len(), 0);
                        iovs.push(v);
                        a
                    }
                },
                Payload::Fixed(f) => {
                    let v = FixedArg::new(f);
                    let (p, inline) = v.payload();
                    let a = (p.ptr, p.len, inline);
                    ranges.push(v);
                    a
                }
            })
            .collect();
        let sends = entries
            .iter()
            .zip(&addrs)
            .zip(&arrays)
            .enumerate()
            .map(
                |(i, ((e, (addr, addrlen)), &(iov, cnt, inline)))| sys::zcsend_send {
                    fd: e.fd,
                    flags: e.flags | inline,
                    iov,
                    // More than u32::MAX buffers cannot be allocated anyway;
                    // the module refuses anything over 1024 (EINVAL). An
                    // inline buffer's or range's length is a u32 already.
                    iovcnt: u32::try_from(cnt).unwrap_or(u32::MAX),
                    addrlen: *addrlen,
                    addr: if *addrlen == 0 {
                        0
                    } else {
                        addr.as_ptr() as u64
                    },
                    user_data: first + i as u64,
                },
            )
            .collect();
        Encoded {
            sends,
            _iovs: iovs,
            _ranges: ranges,
            _addrs: addrs,
        }
    }
}

/// `(iov, iovcnt)` of a plain entry named in its descriptor
/// (`ZCSEND_SEND_BUF`: the address and length of its one buffer), as
/// [`Device::send`] names one buffer; `None` for several buffers (or none),
/// which keep the iovec array.
fn inline_buf(bufs: &[Buf]) -> Option<(u64, u32)> {
    match bufs {
        [one] => inline_bytes(one.as_ptr() as u64, one.len()),
        _ => None,
    }
}

/// `(iov, iovcnt)` of `ZCSEND_SEND_BUF` for `len` bytes at `ptr`, or `None`
/// when `len` does not fit the 32-bit `iovcnt`. Such a buffer is refused
/// either way (`EINVAL`: longer than `MAX_RW_COUNT`): [`Device::send`]
/// before the system call, a batch entry (which cannot fail alone before
/// the call) by the module, from its iovec array, as before. Never a
/// truncated length. Lengths past `MAX_RW_COUNT` up to `u32::MAX` are named
/// inline and refused by the module (`EINVAL`), as `send` does.
fn inline_bytes(ptr: u64, len: usize) -> Option<(u64, u32)> {
    u32::try_from(len).ok().map(|len| (ptr, len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registered::tests::unregistered;
    use crate::registered::RegBuf;
    use crate::Completion;
    use std::os::fd::{AsFd, AsRawFd};
    use std::sync::Arc;

    fn null_dev() -> Device {
        Device::open_path("/dev/null").unwrap()
    }

    #[test]
    fn encodes_plain_and_fixed_sends() {
        let dev = null_dev();
        let sock = std::fs::File::open("/dev/null").unwrap();
        let reg = unregistered(dev.file(), vec![RegBuf::from(vec![9u8; 100])]);
        let a = Buf::from(b"hello ".to_vec());
        let b = Buf::from("world");
        let to: SocketAddr = "10.77.0.1:7879".parse().unwrap();
        let mut batch = dev.batch();
        batch
            .send(
                sock.as_fd(),
                &[a.clone(), b.clone()],
                MsgFlags::NOSIGNAL,
                None,
                10,
            )
            .unwrap();
        batch
            .send_fixed(
                sock.as_fd(),
                &[reg.fixed(0, 5..20), reg.fixed(0, 50..)],
                MsgFlags::DONTWAIT,
                Some(&to),
                11,
            )
            .unwrap();
        let raw = Encoded::new(batch.queue.make_contiguous(), 1000);
        assert_eq!(raw.sends.len(), 2);
        let s = &raw.sends[0];
        assert_eq!(
            (s.fd, s.flags, s.iovcnt),
            (sock.as_raw_fd(), libc::MSG_NOSIGNAL as u32, 2)
        );
        assert_eq!((s.addrlen, s.addr, s.user_data), (0, 0, 1000));
        // SAFETY: two iovecs alive in `raw`.
        let iov = unsafe { std::slice::from_raw_parts(s.iov as *const libc::iovec, 2) };
        assert_eq!(iov[0].iov_base as *const u8, a.as_ptr());
        assert_eq!((iov[0].iov_len, iov[1].iov_len), (6, 5));
        assert_eq!(iov[1].iov_base as *const u8, b.as_ptr());
        let s = &raw.sends[1];
        assert_eq!(
            s.flags,
            libc::MSG_DONTWAIT as u32 | sys::ZCSEND_SEND_FIXED,
            "ranges are sent FIXED"
        );
        assert_eq!((s.iovcnt, s.user_data), (2, 1001));
        assert_eq!(s.addrlen as usize, size_of::<libc::sockaddr_in>());
        // SAFETY: two ranges alive in `raw`.
        let r = unsafe { std::slice::from_raw_parts(s.iov as *const sys::zcsend_range, 2) };
        assert_eq!(
            (r[0].buf_index, r[0].reserved, r[0].offset, r[0].len),
            (0, 0, 5, 15)
        );
        assert_eq!((r[1].offset, r[1].len), (50, 50));
        // SAFETY: a sockaddr_in alive in `raw`.
        let sin = unsafe { &*(s.addr as *const libc::sockaddr_in) };
        assert_eq!(u16::from_be(sin.sin_port), 7879);
    }

    /// An entry of one range names it in its descriptor
    /// (`ZCSEND_SEND_FIXED | ZCSEND_SEND_BUF`, `iov` =
    /// `ZCSEND_FIXED_RANGE(index, offset)`, `iovcnt` = length); entries of
    /// several ranges keep the array; a plain entry of one buffer is named
    /// inline too (`ZCSEND_SEND_BUF` alone).
    #[test]
    fn encodes_one_range_inline() {
        let dev = null_dev();
        let sock = std::fs::File::open("/dev/null").unwrap();
        let reg = unregistered(
            dev.file(),
            vec![RegBuf::from(vec![9u8; 100]), vec![7u8; 8192].into()],
        );
        let to: SocketAddr = "[::1]:7879".parse().unwrap();
        let mut batch = dev.batch();
        let fd = sock.as_fd();
        batch
            .send_fixed(fd, &[reg.fixed(1, 4096..)], MsgFlags::NOSIGNAL, None, 1)
            .unwrap();
        batch
            .send_fixed(
                fd,
                &[reg.fixed(0, 5..20), reg.fixed(0, 50..)],
                MsgFlags::NONE,
                None,
                2,
            )
            .unwrap();
        let plain = Buf::from("plain");
        batch
            .send(fd, std::slice::from_ref(&plain), MsgFlags::NONE, None, 3)
            .unwrap();
        batch
            .send_fixed(fd, &[reg.fixed(0, 99..)], MsgFlags::MORE, Some(&to), 4)
            .unwrap();
        let raw = Encoded::new(batch.queue.make_contiguous(), 500);
        let one_range = sys::ZCSEND_SEND_FIXED | sys::ZCSEND_SEND_BUF;
        let s = &raw.sends[0];
        assert_eq!(s.flags, libc::MSG_NOSIGNAL as u32 | one_range);
        assert_eq!((s.iov, s.iovcnt), ((1 << 32) | 4096, 4096));
        assert_eq!(
            (s.fd, s.addrlen, s.addr, s.user_data),
            (sock.as_raw_fd(), 0, 0, 500)
        );
        let s = &raw.sends[1];
        assert_eq!((s.flags, s.iovcnt), (sys::ZCSEND_SEND_FIXED, 2), "array");
        // SAFETY: two ranges alive in `raw`.
        let r = unsafe { std::slice::from_raw_parts(s.iov as *const sys::zcsend_range, 2) };
        assert_eq!(
            (r[0].offset, r[0].len, r[1].offset, r[1].len),
            (5, 15, 50, 50)
        );
        let s = &raw.sends[2];
        assert_eq!(
            (s.flags, s.iov, s.iovcnt),
            (sys::ZCSEND_SEND_BUF, plain.as_ptr() as u64, 5),
            "one plain buffer: its address and length, no ZCSEND_SEND_FIXED"
        );
        let s = &raw.sends[3];
        assert_eq!(s.flags, libc::MSG_MORE as u32 | one_range);
        assert_eq!((s.iov, s.iovcnt, s.user_data), (99, 1, 503));
        assert_eq!(s.addrlen as usize, size_of::<libc::sockaddr_in6>());
        // SAFETY: a sockaddr_in6 alive in `raw`.
        let sin6 = unsafe { &*(s.addr as *const libc::sockaddr_in6) };
        assert_eq!(u16::from_be(sin6.sin6_port), 7879);
        drop(raw);
        // The batch holds the ranges it names inline, then the device.
        assert!(reg.in_use(0) && reg.in_use(1));
        assert_eq!(batch.submit_with(|_| Ok(4)).unwrap(), 4);
        assert!(reg.in_use(1), "in flight");
        let recs: Vec<_> = (0..4).map(|id| crate::ring::fake::rec(id, 1)).collect();
        dev.file_raw_for_tests(&recs);
        assert!(!reg.in_use(0) && !reg.in_use(1));
    }

    /// A plain entry of one buffer names it in its descriptor as
    /// `Device::send` does (`ZCSEND_SEND_BUF`, `iov` = the bytes' address,
    /// `iovcnt` = their length; an empty one too, length 0); entries of
    /// several buffers keep the iovec array. What the "module" reads during
    /// the call is the queued bytes, and the batch, then the device, holds
    /// each buffer until the completion.
    #[test]
    fn encodes_one_buf_inline() {
        let dev = null_dev();
        let sock = std::fs::File::open("/dev/null").unwrap();
        let fd = sock.as_fd();
        let mine = Arc::new(b"0123456789abcdef".to_vec());
        let whole = Buf::from_arc(mine.clone());
        let part = whole.slice(4..10);
        let (a, b) = (Buf::from("two "), Buf::from("bufs"));
        let empty = Buf::from(Vec::new());
        let to: SocketAddr = "10.77.0.1:7879".parse().unwrap();
        let mut batch = dev.batch();
        batch
            .send(
                fd,
                std::slice::from_ref(&whole),
                MsgFlags::NOSIGNAL,
                None,
                1,
            )
            .unwrap();
        batch
            .send(fd, &[a.clone(), b.clone()], MsgFlags::NOSIGNAL, None, 2)
            .unwrap();
        batch
            .send(
                fd,
                std::slice::from_ref(&part),
                MsgFlags::DONTWAIT,
                Some(&to),
                3,
            )
            .unwrap();
        batch
            .send(fd, std::slice::from_ref(&empty), MsgFlags::NONE, None, 4)
            .unwrap();
        drop((whole, part));
        let nosig = libc::MSG_NOSIGNAL as u32;
        let buf = sys::ZCSEND_SEND_BUF;
        let mut seen = Vec::new();
        let n = batch
            .submit_with(|req| {
                // SAFETY: `nr` sends, alive during the call.
                let sends =
                    unsafe { std::slice::from_raw_parts(req.sends as *const sys::zcsend_send, 4) };
                assert_eq!(req.nr, 4);
                for s in sends {
                    let bytes: Vec<u8> = if s.flags & buf != 0 {
                        // SAFETY: `iovcnt` bytes of a queued `Buf`.
                        unsafe { std::slice::from_raw_parts(s.iov as *const u8, s.iovcnt as _) }
                            .to_vec()
                    } else {
                        // SAFETY: `iovcnt` iovecs over queued `Buf`s.
                        let iov = unsafe {
                            std::slice::from_raw_parts(s.iov as *const libc::iovec, s.iovcnt as _)
                        };
                        iov.iter()
                            // SAFETY: each the bytes of a queued `Buf`.
                            .flat_map(|v| unsafe {
                                std::slice::from_raw_parts(v.iov_base as *const u8, v.iov_len)
                            })
                            .copied()
                            .collect()
                    };
                    seen.push((*s, bytes));
                }
                Ok(4)
            })
            .unwrap();
        assert_eq!(n, 4);
        let (s, bytes) = &seen[0];
        assert_eq!(
            (s.flags, s.iov, s.iovcnt),
            (nosig | buf, mine.as_ptr() as u64, 16)
        );
        assert_eq!((s.fd, s.addrlen, s.addr), (sock.as_raw_fd(), 0, 0));
        assert_eq!(bytes, b"0123456789abcdef");
        let (s, bytes) = &seen[1];
        assert_eq!((s.flags, s.iovcnt), (nosig, 2), "two buffers: iovecs");
        assert_eq!(bytes, b"two bufs");
        let (s, bytes) = &seen[2];
        assert_eq!(
            (s.flags, s.iov, s.iovcnt),
            (libc::MSG_DONTWAIT as u32 | buf, mine.as_ptr() as u64 + 4, 6),
            "a slice: its own address"
        );
        assert_eq!(bytes, b"456789");
        assert_eq!(s.addrlen as usize, size_of::<libc::sockaddr_in>());
        let (s, bytes) = &seen[3];
        assert_eq!((s.flags, s.iov, s.iovcnt), (buf, empty.as_ptr() as u64, 0));
        assert!(bytes.is_empty());
        let ids: Vec<u64> = seen.iter().map(|(s, _)| s.user_data).collect();
        assert_eq!(ids, [0, 1, 2, 3]);
        // In flight: the device holds the clones (two of `mine`).
        assert_eq!(Arc::strong_count(&mine), 3);
        let recs: Vec<_> = (0..4).map(|id| crate::ring::fake::rec(id, 1)).collect();
        dev.file_raw_for_tests(&recs);
        assert_eq!(Arc::strong_count(&mine), 1, "released by the completions");
    }

    /// One buffer is named inline while its length fits the 32-bit
    /// `iovcnt`; a longer one keeps its iovec (refused by the module, as it
    /// was), never a truncated length. None or several: the array.
    #[test]
    fn inline_buf_fits_or_declines() {
        assert_eq!(inline_bytes(0x1000, 0), Some((0x1000, 0)));
        assert_eq!(
            inline_bytes(0x1000, 0x7fff_f000),
            Some((0x1000, 0x7fff_f000))
        );
        assert_eq!(
            inline_bytes(0x1000, u32::MAX as usize),
            Some((0x1000, u32::MAX)),
            "past MAX_RW_COUNT: inline, refused by the module as by send"
        );
        #[cfg(target_pointer_width = "64")]
        {
            assert_eq!(inline_bytes(0x1000, 1 << 32), None, "not truncated to 0");
            assert_eq!(inline_bytes(0x1000, (1 << 32) + 5), None, "nor to 5");
        }
        let x = Buf::from("x");
        assert_eq!(
            inline_buf(std::slice::from_ref(&x)),
            Some((x.as_ptr() as u64, 1))
        );
        assert_eq!(inline_buf(&[]), None);
        assert_eq!(inline_buf(&[x.clone(), x]), None);
    }

    #[test]
    fn refuses_bad_entries() {
        let dev = null_dev();
        let other = null_dev();
        let sock = std::fs::File::open("/dev/null").unwrap();
        let reg = unregistered(
            dev.file(),
            vec![RegBuf::from(vec![0u8; 8]), vec![1u8; 8].into()],
        );
        let theirs = unregistered(other.file(), vec![RegBuf::from(vec![0u8; 8])]);
        let mut batch = dev.batch();
        let einval =
            |r: io::Result<()>| assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EINVAL));
        // The module's bits come from the library only.
        for bit in [
            sys::ZCSEND_SEND_FIXED,
            sys::ZCSEND_FANOUT_STABLE,
            sys::ZCSEND_SEND_BUF,
            sys::ZCSEND_SEND_FIXED_SOCKET,
        ] {
            let f = MsgFlags::from_bits_retain(bit);
            einval(batch.send(sock.as_fd(), &[Buf::from("x")], f, None, 1));
            einval(batch.send_fixed(sock.as_fd(), &[reg.fixed(0, ..)], f, None, 1));
        }
        // Ranges: none, of two buffers, of another device's registration.
        einval(batch.send_fixed(sock.as_fd(), &[], MsgFlags::NONE, None, 1));
        einval(batch.send_fixed(
            sock.as_fd(),
            &[reg.fixed(0, ..), reg.fixed(1, ..)],
            MsgFlags::NONE,
            None,
            1,
        ));
        einval(batch.send_fixed(
            sock.as_fd(),
            &[theirs.fixed(0, ..)],
            MsgFlags::NONE,
            None,
            1,
        ));
        assert!(batch.is_empty());
        assert!(
            !reg.in_use(0) && !theirs.in_use(0),
            "refused entries keep nothing"
        );
        // Full at MAX_BATCH.
        for i in 0..MAX_BATCH {
            batch
                .send(
                    sock.as_fd(),
                    &[Buf::from("x")],
                    MsgFlags::NONE,
                    None,
                    i as u64,
                )
                .unwrap();
        }
        assert!(batch.is_full());
        let e = batch
            .send(sock.as_fd(), &[Buf::from("x")], MsgFlags::NONE, None, 0)
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        batch.clear();
        assert!(batch.is_empty());
    }

    /// Sends by index and by descriptor in one batch: each carries its own
    /// `ZCSEND_SEND_FIXED_SOCKET` bit; another device's table is refused.
    #[test]
    fn encodes_registered_sockets() {
        use crate::sockets::tests::unregistered as sockets;
        let dev = null_dev();
        let other = null_dev();
        let socks = sockets(dev.file(), 4);
        let theirs = sockets(other.file(), 4);
        let reg = unregistered(dev.file(), vec![RegBuf::from(vec![9u8; 100])]);
        let sock = std::fs::File::open("/dev/null").unwrap();
        let to: SocketAddr = "10.77.0.1:7879".parse().unwrap();
        let mut batch = dev.batch();
        let b = || [Buf::from("x")];
        batch
            .send(socks.get(3).unwrap(), &b(), MsgFlags::NOSIGNAL, None, 1)
            .unwrap();
        batch
            .send(sock.as_fd(), &b(), MsgFlags::NOSIGNAL, None, 2)
            .unwrap();
        batch
            .send_fixed(
                socks.get(0).unwrap(),
                &[reg.fixed(0, ..)],
                MsgFlags::NONE,
                Some(&to),
                3,
            )
            .unwrap();
        batch.send(&sock, &b(), MsgFlags::NONE, None, 4).unwrap();
        for r in [
            batch.send(theirs.get(0).unwrap(), &b(), MsgFlags::NONE, None, 5),
            batch.send_fixed(
                theirs.get(0).unwrap(),
                &[reg.fixed(0, ..)],
                MsgFlags::NONE,
                None,
                5,
            ),
        ] {
            assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EINVAL));
        }
        assert_eq!(batch.len(), 4, "refused entries are not queued");
        let raw = Encoded::new(batch.queue.make_contiguous(), 0);
        let sent: Vec<(i32, u32)> = raw.sends.iter().map(|s| (s.fd, s.flags)).collect();
        let (fixed_sock, nosig) = (sys::ZCSEND_SEND_FIXED_SOCKET, libc::MSG_NOSIGNAL as u32);
        let one_buf = sys::ZCSEND_SEND_BUF;
        let one_range = sys::ZCSEND_SEND_FIXED | sys::ZCSEND_SEND_BUF;
        assert_eq!(
            sent,
            [
                (3, nosig | one_buf | fixed_sock),
                (sock.as_raw_fd(), nosig | one_buf),
                (0, one_range | fixed_sock),
                (sock.as_raw_fd(), one_buf),
            ]
        );
        assert!(
            [0, 1, 3].iter().all(|&i| raw.sends[i].iovcnt == 1),
            "one byte each, named inline"
        );
        assert_eq!(
            raw.sends[2].addrlen as usize,
            size_of::<libc::sockaddr_in>()
        );
    }

    /// A failed submit (the device is /dev/null: ENOTTY) keeps everything
    /// queued and nothing in flight.
    #[test]
    fn failed_submit_keeps_the_queue() {
        let dev = null_dev();
        let sock = std::fs::File::open("/dev/null").unwrap();
        let mine = Arc::new(vec![1u8; 64]);
        let mut batch = dev.batch();
        assert_eq!(batch.submit().unwrap(), 0, "empty: no system call");
        batch
            .send(
                sock.as_fd(),
                &[Buf::from_arc(mine.clone())],
                MsgFlags::NONE,
                None,
                1,
            )
            .unwrap();
        assert_eq!(Arc::strong_count(&mine), 2);
        let e = batch.submit().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOTTY));
        assert_eq!(batch.len(), 1);
        assert_eq!(dev.in_flight(), 0);
        drop(batch);
        assert_eq!(Arc::strong_count(&mine), 1);
    }

    /// sendmmsg semantics: the first `n` go in flight with their buffers,
    /// the rest stay queued; completions release what went.
    #[test]
    fn partial_submit() {
        let dev = null_dev();
        let sock = std::fs::File::open("/dev/null").unwrap();
        let mut reg = unregistered(dev.file(), vec![RegBuf::from(vec![0u8; 32])]);
        let mine: Vec<Arc<Vec<u8>>> = (0..3).map(|i| Arc::new(vec![i; 16])).collect();
        let mut batch = dev.batch();
        for (i, m) in mine.iter().enumerate() {
            batch
                .send(
                    sock.as_fd(),
                    &[Buf::from_arc(m.clone())],
                    MsgFlags::NONE,
                    None,
                    100 + i as u64,
                )
                .unwrap();
        }
        batch
            .send_fixed(
                sock.as_fd(),
                &[reg.fixed(0, ..8)],
                MsgFlags::NONE,
                None,
                200,
            )
            .unwrap();
        let mut seen = None;
        // The "module" takes two of four.
        let n = batch
            .submit_with(|req| {
                seen = Some((req.nr, req.flags));
                Ok(2)
            })
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(seen, Some((4, 0)));
        assert_eq!(batch.len(), 2);
        assert_eq!(dev.in_flight(), 2);
        // Submitted: held by the device only; queued: by the batch only.
        assert!(mine.iter().all(|m| Arc::strong_count(m) == 2));
        assert!(reg.get_mut(0).is_none());
        // The rest goes; its first id continues after the first call's.
        let n = batch.submit_with(|_| Ok(2)).unwrap();
        assert_eq!(n, 2);
        assert!(batch.is_empty());
        assert_eq!(dev.in_flight(), 4);
        // Completions of all four: each call takes ids for its whole queue.
        let recs: Vec<_> = [0, 1, 4, 5]
            .map(|id| crate::ring::fake::rec(id, 16))
            .to_vec();
        dev.file_raw_for_tests(&recs);
        assert_eq!(dev.in_flight(), 0);
        assert!(mine.iter().all(|m| Arc::strong_count(m) == 1));
        assert!(
            reg.get_mut(0).is_some(),
            "range released with its completion"
        );
        let mut out = [Completion::default(); 8];
        assert_eq!(dev.try_read_completions(&mut out).unwrap(), 4);
        let ids: Vec<u64> = out[..4].iter().map(|c| c.user_data).collect();
        assert_eq!(ids, [100, 101, 102, 200]);
        // A module returning nonsense cannot make the batch claim more.
        batch
            .send(sock.as_fd(), &[Buf::from("x")], MsgFlags::NONE, None, 1)
            .unwrap();
        assert_eq!(batch.submit_with(|_| Ok(7)).unwrap(), 1);
    }
}
