// SPDX-License-Identifier: GPL-2.0
//! Safe Rust userspace API for `/dev/zcsend`, the zero-copy socket send path
//! of the zcsend kernel module.
//!
//! The ABI types come from `include/uapi/linux/zcsend.h` itself: `build.rs`
//! runs bindgen over the header, and the ioctl numbers, which are
//! function-like macros bindgen cannot evaluate, are computed in [`sys`] from
//! the `_IOR`/`_IOW` encoding and checked by a unit test against the values
//! the C compiler produces from the same header. C and Rust programs therefore
//! share one definition of the ABI.
//!
//! ```no_run
//! use std::net::TcpStream;
//! use std::os::fd::AsFd;
//! use zcsend::{Buf, Completion, Device, EventFd, MsgFlags};
//!
//! # fn main() -> std::io::Result<()> {
//! let dev = Device::open()?;
//! let efd = EventFd::new()?;
//! dev.set_eventfd(Some(efd.as_fd()))?;
//! let sock = TcpStream::connect("10.77.0.1:7878")?;
//!
//! let data = Buf::from(vec![0x5a; 1 << 20]);
//! let n = dev.send(sock.as_fd(), &[data.clone()], MsgFlags::NOSIGNAL, None, 1)?;
//!
//! let mut done = [Completion::default(); 16];
//! while dev.in_flight() > 0 {
//!     efd.wait(None)?;
//!     efd.reset()?;
//!     let n = dev.try_read_completions(&mut done)?;
//!     for c in &done[..n] {
//!         println!("send {} of {} bytes: zero-copy {}", c.user_data, c.bytes, c.zerocopy);
//!     }
//! }
//! # let _ = n; Ok(()) }
//! ```
//!
//! # Buffer lifetime: why `send` does not take a `&[u8]`
//!
//! `ZCSEND_IOC_SEND` returns as soon as the socket has *accepted* the bytes;
//! the pages are then attached to skbs as frags and read by the stack, the
//! qdisc and finally the NIC's DMA engine, possibly several times (TCP
//! retransmits read them again), until the last skb is freed and the module
//! posts the completion record. Only then may the memory be written or freed.
//!
//! An API like `fn send(&self, sock, bufs: &[IoSlice<'_>]) -> io::Result<usize>`
//! ends the borrow of the buffers when `send` returns. Safe code could then
//! write to the buffer, or drop it and let the allocator hand the same memory
//! to a new allocation that gets written, while the kernel and the device
//! still read it. That is a data race between the program's writes and the
//! stack's reads. The kernel tolerates it: the pages stay pinned (`FOLL_PIN`),
//! so it never touches freed memory and nothing in the kernel breaks. The
//! application is hurt instead:
//!
//! - the bytes on the wire are whatever the memory holds when each packet is
//!   built or DMA'd, so one send can mix old and new contents, and a
//!   retransmitted segment can differ from the first copy;
//! - with checksum offload the NIC checksums the mixed bytes, so the receiver
//!   accepts corrupted data; without it the checksum was computed earlier
//!   over other bytes, and the receiver drops the segment;
//! - if the memory was freed and reused, unrelated data of the process (keys,
//!   other users' requests) is sent to the peer;
//! - and the completion still says `ZEROCOPY`: "every byte left from your
//!   pages", true, but not the bytes the caller passed. Zero-copy's promise
//!   is that the send is equivalent to a copy taken at call time as long as
//!   the buffer is left alone until the completion; safe Rust must not be able
//!   to break that.
//!
//! In Rust terms, a `&mut [u8]` (or a new owner) would exist while another
//! agent still reads the memory: the aliasing guarantee that makes safe code
//! race-free would be false.
//!
//! A guard returned by `send`, say `InFlight<'buf>`, that borrows the buffers
//! and blocks in `Drop` until the completion is seen, is **not** enough
//! either: `std::mem::forget(guard)` is safe, ends the borrow and skips the
//! wait (the reason `std::thread::scoped` was withdrawn before Rust 1.0).
//!
//! This crate offers two sound ways instead, and one unsafe escape hatch:
//!
//! 1. **Owned, shared buffers** ([`Device::send`] with [`Buf`]). A `Buf` is an
//!    immutable, reference-counted view of memory that implements
//!    [`StableBytes`] (`Vec<u8>`, `Box<[u8]>`, `String`, `Arc<[u8]>`,
//!    `&'static [u8]`, a read-only [`Mmap`] of a file, ...). The device keeps
//!    a clone of every `Buf` of a send in its in-flight table and drops it
//!    only when it reads that send's completion. While the clone exists
//!    nobody can get a `&mut` to the bytes (`Arc::get_mut` fails) or free
//!    them. Leaking things stays sound: if the `Device` is forgotten, so are
//!    its clones, and the memory is never freed. If the `Device` is dropped
//!    with sends in flight, their completions can no longer be read, so it
//!    leaks those buffers rather than free them (call [`Device::wait_idle`]
//!    first). Buffer reuse: keep your own `Arc`, pass [`Buf::from_arc`] a
//!    clone; once the completion has been read, `Arc::get_mut` works again.
//!
//! 2. **Scoped borrows** ([`Device::scope`], [`Scope::send`]), the
//!    `std::thread::scope` pattern: sends made inside the closure may borrow
//!    plain `&[u8]`s from outside it, and `scope` does not return (nor unwind)
//!    before every one of those sends has completed. The wait is done by
//!    `scope` itself, not by a value the closure could forget, so the borrow
//!    provably outlives the kernel's use of the memory. If the wait cannot be
//!    done the process aborts rather than return.
//!
//!    ```no_run
//!    # use std::{io::IoSlice, net::UdpSocket, os::fd::AsFd};
//!    # use zcsend::{Device, MsgFlags};
//!    # fn f(dev: &Device, sock: &UdpSocket) -> std::io::Result<()> {
//!    let header = [0u8; 24];
//!    let payload = vec![7u8; 60000];
//!    dev.scope(|s| {
//!        let bufs = [IoSlice::new(&header), IoSlice::new(&payload)];
//!        s.send(sock.as_fd(), &bufs, MsgFlags::NONE, None, 1)
//!    })?; // every send of the scope has completed here
//!    # Ok(()) }
//!    ```
//!
//!    The borrow checker enforces the rest. Writing to a buffer before the
//!    scope has ended does not compile:
//!
//!    ```compile_fail,E0502
//!    # use std::{io::IoSlice, net::UdpSocket, os::fd::AsFd};
//!    # use zcsend::{Device, MsgFlags};
//!    # fn f(dev: &Device, sock: &UdpSocket) {
//!    let mut data = vec![0u8; 4096];
//!    dev.scope(|s| {
//!        s.send(sock.as_fd(), &[IoSlice::new(&data)], MsgFlags::NONE, None, 1).unwrap();
//!        data[0] = 1; // still in flight
//!    });
//!    # }
//!    ```
//!
//!    nor does sending a buffer that dies inside the scope:
//!
//!    ```compile_fail,E0597
//!    # use std::{io::IoSlice, net::UdpSocket, os::fd::AsFd};
//!    # use zcsend::{Device, MsgFlags};
//!    # fn f(dev: &Device, sock: &UdpSocket) {
//!    dev.scope(|s| {
//!        let local = vec![0u8; 4096];
//!        s.send(sock.as_fd(), &[IoSlice::new(&local)], MsgFlags::NONE, None, 1).unwrap();
//!    });
//!    # }
//!    ```
//!
//! 3. [`Device::send_borrowed`] is `unsafe`: the caller promises the
//!    lifetime by hand, as in C.
//!
//! # One payload to many sockets
//!
//! [`Device::fanout`] (`ZCSEND_IOC_FANOUT`) sends the same buffers to up to
//! [`MAX_FANOUT`] sockets in one call: the pages are pinned once, every skb
//! of every socket refers to them, and one [`Completion`] (`fanout` set)
//! comes once the last of them is gone. Ownership is that of
//! [`Device::send`]: the library keeps clones of the [`Buf`]s until that
//! completion has been read, and [`Scope::fanout`] is the borrowing form.
//! The result is per destination, and a stream socket may take only part of
//! the payload; the caller sends the rest to that socket alone (another
//! fan-out of one, or a send). With `stable` the module sends a copy of its
//! own, taken during the call, and the library releases the buffers when
//! the call returns: the memory can be refilled right away.
//!
//! ```no_run
//! # use std::{net::TcpStream, os::fd::AsFd, sync::Arc};
//! # use zcsend::{Buf, Dest, Device, MsgFlags};
//! # fn f(dev: &Device, subscribers: &[TcpStream]) -> std::io::Result<()> {
//! let mut chunk = Arc::new(vec![0u8; 256 << 10]);
//! let dests: Vec<Dest> = subscribers.iter().map(|s| Dest::new(s.as_fd())).collect();
//! let results = dev.fanout(&dests, &[Buf::from_arc(chunk.clone())], MsgFlags::NOSIGNAL, false, 1)?;
//! for (sub, r) in subscribers.iter().zip(&results) {
//!     match r {
//!         Ok(n) if *n < chunk.len() => { /* send chunk[n..] to `sub` alone */ }
//!         Ok(_) => {}
//!         Err(e) => eprintln!("subscriber {:?}: {e}", sub.peer_addr()),
//!     }
//! }
//! // Not stable: `Arc::get_mut(&mut chunk)` is `None` until the completion
//! // of user_data 1 has been read; with `stable` it is `Some` already.
//! # let _ = Arc::get_mut(&mut chunk); Ok(()) }
//! ```
//!
//! # Registered buffers
//!
//! [`Device::register`] (`ZCSEND_IOC_REGISTER_BUFFERS`) pins buffers once;
//! sends then name [`Fixed`] ranges inside them (`ZCSEND_SEND_FIXED`) and
//! nothing is pinned or charged per send. A send (or [`Batch`] entry) of one
//! range names it in the request itself (`ZCSEND_SEND_FIXED |
//! ZCSEND_SEND_BUF`, `iov` = `ZCSEND_FIXED_RANGE(index, offset)`, `iovcnt` =
//! its length), so the module reads no `struct zcsend_range`; several
//! ranges, and fan-outs, pass an array. The [`Registered`] handle owns the
//! memory, [`RegBuf::Owned`] heap buffers or immutable [`RegBuf::Shared`]
//! [`Buf`]s (a read-only file [`Mmap`] for a file server), and the rule is
//! the same as for `Buf`s, enforced the same way:
//!
//! - a [`Fixed`] keeps the registration alive, and a send keeps clones of its
//!   `Fixed`s until its completion has been read;
//! - [`Registered::get_mut`] gives a `&mut [u8]` to an owned buffer only
//!   while no `Fixed` of that buffer exists (none in user code, none in
//!   flight): it takes `&mut Registered`, and new ranges are made from
//!   `&Registered`, so none can appear meanwhile. Later sends carry the new
//!   bytes; nothing is pinned again;
//! - [`Device::unregister`] gives the buffers back only when no `Fixed` at all
//!   exists (`EBUSY` otherwise, with the handle returned in the error) and the
//!   module agreed; dropping the handle unregisters and frees once the last
//!   `Fixed` is gone, and leaks the memory if the module refuses;
//! - a send checks that its ranges are of this device's registration, and the
//!   module's `ZCSEND_SEND_FIXED` bit is never taken from a caller's
//!   [`MsgFlags`], so no send can read registered memory that the library
//!   does not know to be in flight.
//!
//! ```no_run
//! # use std::{net::TcpStream, os::fd::AsFd};
//! # use zcsend::{Device, MsgFlags};
//! # fn f(dev: &Device, sock: &TcpStream) -> std::io::Result<()> {
//! let mut reg = dev.register([vec![0u8; 1 << 20]])?;     // pinned once
//! reg.get_mut(0).unwrap().fill(b'a');                     // nothing in flight
//! dev.send_fixed(sock.as_fd(), &[reg.fixed(0, ..4096)], MsgFlags::NOSIGNAL, None, 1)?;
//! assert!(reg.get_mut(0).is_none());                      // until the completion is read
//! dev.wait_idle()?;
//! reg.get_mut(0).unwrap().fill(b'b');                     // same pinned pages, new bytes
//! let bufs = dev.unregister(reg)?;                        // EBUSY while a range exists
//! # let _ = bufs; Ok(()) }
//! ```
//!
//! And a writable buffer cannot be sent from while the `&mut` lives: making
//! a range borrows the handle.
//!
//! ```compile_fail,E0502
//! # use std::{net::TcpStream, os::fd::AsFd};
//! # use zcsend::{Device, MsgFlags};
//! # fn f(dev: &Device, sock: &TcpStream) -> std::io::Result<()> {
//! let mut reg = dev.register([vec![0u8; 4096]])?;
//! let bytes = reg.get_mut(0).unwrap();
//! let range = reg.fixed(0, ..);
//! dev.send_fixed(sock.as_fd(), &[range], MsgFlags::NONE, None, 1)?;
//! bytes[0] = 1; // would race with the send
//! # Ok(()) }
//! ```
//!
//! # Batches
//!
//! [`Device::batch`] builds a [`Batch`] of up to [`MAX_BATCH`] sends, owned
//! `Buf`s and `Fixed` ranges mixed, on any sockets, and [`Batch::submit`]
//! hands them to the module with one `ZCSEND_IOC_SUBMIT`. It returns how many
//! were submitted, as `sendmmsg(2)` does: `Err` if the first failed, else the
//! count before the first failure, which stays queued with the ones after it.
//! Submitted sends' buffers move to the device until their completions.
//!
//! # Registered sockets
//!
//! [`Device::register_sockets`] (`ZCSEND_IOC_REGISTER_SOCKETS`) registers up
//! to [`MAX_SOCKETS`] sockets with the device, as io_uring registers files:
//! a send then names one by its index (`ZCSEND_SEND_FIXED_SOCKET`) and the
//! kernel looks up no descriptor. Every send method takes its socket as
//! `impl Into<`[`SockRef`]`>`: a descriptor (`sock.as_fd()` or `&sock`), or a
//! registered socket from [`Sockets::get`]. The module holds a reference on
//! each registered socket, so it stays open after its descriptors are
//! closed, until [`Sockets::unregister`] (or dropping the handle).
//!
//! - A `SockRef` of a registered socket borrows the [`Sockets`] handle, so
//!   none outlives the registration: unregistering (or dropping) the table
//!   while one exists does not compile, and only indexes inside the table
//!   can be made.
//! - Sends, fan-outs and batches check that an index is of their own
//!   device's table (`EINVAL` before the system call otherwise), and the
//!   library never takes `ZCSEND_SEND_FIXED_SOCKET` from a caller's flags.
//! - The module reads one fan-out's destinations all as indexes or all as
//!   descriptors: a [`Dest`] list mixing both is refused with `EINVAL`
//!   before the system call. A [`Batch`] may mix them (each send carries
//!   its own flag).
//!
//! ```no_run
//! # use std::{net::{TcpStream, UdpSocket}, os::fd::AsFd};
//! # use zcsend::{Buf, Dest, Device, MsgFlags};
//! # fn f(dev: &Device, subscribers: Vec<TcpStream>) -> std::io::Result<()> {
//! let socks = dev.register_sockets(&subscribers)?;         // indexes 0..n
//! drop(subscribers);                                       // the table keeps them open
//! let first = socks.get(0).unwrap();
//! dev.send(first, &[Buf::from("hello\n")], MsgFlags::NOSIGNAL, None, 1)?;
//! let dests: Vec<Dest> = socks.iter().map(Dest::new).collect();
//! dev.fanout(&dests, &[Buf::from(vec![0u8; 65536])], MsgFlags::NOSIGNAL, false, 2)?;
//! drop(dests);
//! socks.unregister()?;                                     // the sockets close now
//! # Ok(()) }
//! ```
//!
//! # The completion ring
//!
//! [`Device::map_ring`] maps the file's completion ring (the header page and
//! the slots, at `ZCSEND_RING_OFF_HDR` and `ZCSEND_RING_OFF_SLOTS`, as
//! `tools/include/zcsend_ring.h` does). From then on
//! [`Device::peek_completions`] / [`Device::advance_completions`] (and
//! [`Device::try_read_completions`]) take ready records from shared memory
//! without a system call, and [`Device::wait_completion`] sleeps on the
//! eventfd only when the ring is empty. With
//! [`Device::set_wakeup_on_request`] the module signals the eventfd only
//! when asked: before each sleep `wait_completion` arms a wake-up, issues a
//! full barrier and looks at the ring once more, so no record is missed and
//! records that arrive while the consumer is busy cost no signal. Records
//! taken from the ring are filed like those of `read(2)`, which keeps working
//! on the same ring (the blocking reads sleep in it): a send's buffers are
//! released when its record is taken.
//!
//! ```no_run
//! # use zcsend::{Completion, Device, EventFd};
//! # fn f(dev: &Device, efd: &EventFd) -> std::io::Result<()> {
//! dev.map_ring()?;
//! dev.set_wakeup_on_request(true)?;
//! let mut c = [Completion::default(); 64];
//! while dev.in_flight() > 0 {
//!     dev.wait_completion(efd, None)?;
//!     let n = dev.peek_completions(&mut c)?;   // no system call
//!     for done in &c[..n] { /* ... */ }
//!     dev.advance_completions(n);
//! }
//! # Ok(()) }
//! ```
//!
//! Completions are tracked by an id the library puts in the kernel record's
//! `user_data`; the caller's own `user_data` comes back in [`Completion`].
//! Every method that reads the device (`read_completions`,
//! `try_read_completions`, `wait_idle`, the end of a scope) files all the
//! records it reads, so no completion is lost between threads.
//!
//! The remaining trust is in the memory itself: a file mapped with
//! [`Mmap::map`] (`unsafe`) must not be written by anyone while mapped,
//! exactly as for any `mmap`-backed `&[u8]`.

#![warn(missing_docs)]

mod batch;
mod buf;
mod device;
mod eventfd;
mod registered;
mod ring;
mod sockets;
pub mod sys;

pub use batch::{Batch, MAX_BATCH};
pub use buf::{read_file, Buf, Mmap, StableBytes};
pub use device::{Completion, Dest, Device, Features, MsgFlags, Scope, Stats};
pub use eventfd::EventFd;
pub use registered::{Fixed, RegBuf, RegisterError, Registered, UnregisterError};
pub use sockets::{SockRef, Sockets, MAX_SOCKETS};

/// The ABI version this crate was built against (`ZCSEND_ABI_VERSION`).
pub const ABI_VERSION: u32 = sys::ZCSEND_ABI_VERSION;

/// Path of the character device (`ZCSEND_DEVICE`).
pub const DEVICE_PATH: &str = sys::DEVICE_PATH;

/// Most destinations of one [`Device::fanout`] (`ZCSEND_MAX_FANOUT`).
pub const MAX_FANOUT: usize = sys::ZCSEND_MAX_FANOUT as usize;
