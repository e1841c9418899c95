// SPDX-License-Identifier: GPL-2.0
//! Tests against the real module. Each one returns early when /dev/zcsend is
//! absent (the module is not loaded), so `cargo test` passes on a build
//! machine; libtest has no run-time skip, so it reports such a test as "ok",
//! and the test says so on stderr with one line
//! `SKIP <test name>: <reason>`, which `scripts/static-checks.sh` (run with
//! `--nocapture`) counts as skipped rather than passed. Where the module is
//! loaded they run for real: build with `cargo test --no-run` (statically,
//! see README.md) and run the `device-*` binary there. `make check` runs
//! them so in its guest (`selftests/zcsend/run_tests.sh`, program
//! `zcsend_rs`, which reads the same SKIP lines). They need only loopback
//! (127.0.0.1) sockets besides the device.

use std::io::{IoSlice, Read};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use zcsend::{Buf, Completion, Dest, Device, EventFd, Features, MsgFlags, RegBuf};

fn device() -> Option<Device> {
    match Device::open() {
        Ok(d) => Some(d),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // libtest runs each test on a thread named after it.
            let thread = std::thread::current();
            eprintln!(
                "SKIP {}: {} is absent (zcsend.ko not loaded)",
                thread.name().unwrap_or("device-test"),
                zcsend::DEVICE_PATH
            );
            None
        }
        Err(e) => panic!("open {}: {e}", zcsend::DEVICE_PATH),
    }
}

/// A loopback TCP sink: returns the client socket and a thread that yields
/// everything the server side received.
fn tcp_pair() -> (TcpStream, thread::JoinHandle<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let rx = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        all
    });
    (TcpStream::connect(addr).unwrap(), rx)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 4096) as u8).collect()
}

/// Waits for completions with the eventfd until nothing is in flight.
fn drain(dev: &Device, efd: &EventFd) -> Vec<Completion> {
    let mut all = Vec::new();
    let mut buf = [Completion::default(); 8];
    while dev.in_flight() > 0 {
        assert!(
            efd.wait(Some(Duration::from_secs(20))).unwrap(),
            "no completion within 20 s"
        );
        efd.reset().unwrap();
        loop {
            let n = dev.try_read_completions(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
    }
    all
}

#[test]
fn version_and_stats() {
    let Some(dev) = device() else { return };
    assert_eq!(dev.version().unwrap(), zcsend::ABI_VERSION);
    let st = dev.stats().unwrap();
    assert_eq!((st.sends, st.inflight, st.queued), (0, 0, 0));
    let mut out = [Completion::default(); 1];
    assert_eq!(
        dev.read_completions(&mut out).unwrap(),
        0,
        "nothing in flight"
    );
    assert_eq!(dev.try_read_completions(&mut out).unwrap(), 0);
}

/// `features()` names every feature of the header this crate was built
/// from, and the forms behind the bits are understood: a send whose only
/// fault is that nothing is registered fails with `ENXIO`, not with the
/// `EINVAL` of a form the module does not know, and the library's inline
/// forms (one `Buf`, one `Fixed`) and the ring work. (zcsend_dev.c's
/// `features` test probes one form of each bit from C.)
#[test]
fn features_reports_what_works() {
    let Some(dev) = device() else { return };
    let f = dev.features().unwrap();
    for (name, bit) in [
        ("SEND_BUF", Features::SEND_BUF),
        ("FIXED_BUFFERS", Features::FIXED_BUFFERS),
        ("FIXED_INLINE", Features::FIXED_INLINE),
        ("FIXED_SOCKETS", Features::FIXED_SOCKETS),
        ("SUBMIT", Features::SUBMIT),
        ("FANOUT", Features::FANOUT),
        ("FANOUT_STABLE", Features::FANOUT_STABLE),
        ("RING_MMAP", Features::RING_MMAP),
    ] {
        assert!(
            f.contains(bit),
            "ZCSEND_FEAT_{name} missing from {:#x}",
            f.bits()
        );
    }
    assert!(f.contains(Features::ALL));

    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.connect(rx.local_addr().unwrap()).unwrap();

    // FIXED_INLINE and FIXED_BUFFERS, raw, on a file of its own with
    // nothing registered: ENXIO for both forms of a registered range.
    {
        use zcsend::sys;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(zcsend::DEVICE_PATH)
            .unwrap();
        let range = sys::zcsend_range {
            buf_index: 0,
            reserved: 0,
            offset: 0,
            len: 4096,
        };
        let inline = sys::zcsend_send {
            fd: tx.as_raw_fd(),
            flags: sys::ZCSEND_SEND_FIXED | sys::ZCSEND_SEND_BUF,
            iov: sys::zcsend_fixed_range(0, 0),
            iovcnt: 4096,
            ..Default::default()
        };
        let array = sys::zcsend_send {
            flags: sys::ZCSEND_SEND_FIXED,
            iov: &range as *const sys::zcsend_range as u64,
            iovcnt: 1,
            ..inline
        };
        for (form, mut req) in [("one range inline", inline), ("range array", array)] {
            // SAFETY: `ZCSEND_IOC_SEND` with a `struct zcsend_send`; its one
            // user pointer (`range`, for the array form) outlives the call,
            // and with no buffer registered nothing can be sent.
            let r = unsafe { libc::ioctl(file.as_raw_fd(), sys::ZCSEND_IOC_SEND as _, &mut req) };
            let e = std::io::Error::last_os_error();
            assert_eq!(r, -1, "{form}: accepted with nothing registered");
            assert_eq!(e.raw_os_error(), Some(libc::ENXIO), "{form}: {e}");
        }
    }

    // SEND_BUF and FIXED_INLINE through the library, which names one `Buf`
    // and one `Fixed` in the request itself.
    let efd = EventFd::new().unwrap();
    dev.set_eventfd(Some(efd.as_fd())).unwrap();
    let data = pattern(3000);
    let n = dev
        .send(
            tx.as_fd(),
            &[Buf::from(data.clone())],
            MsgFlags::NONE,
            None,
            1,
        )
        .unwrap();
    assert_eq!(n, data.len());
    let reg = dev.register([RegBuf::from(pattern(8192))]).unwrap();
    let n = dev
        .send_fixed(
            tx.as_fd(),
            &[reg.fixed(0, 100..3100)],
            MsgFlags::NONE,
            None,
            2,
        )
        .unwrap();
    assert_eq!(n, 3000);
    let done = drain(&dev, &efd);
    let mut ids: Vec<u64> = done.iter().map(|c| c.user_data).collect();
    ids.sort_unstable();
    assert_eq!(ids, [1, 2]);
    let mut got = vec![0u8; 65536];
    let len = rx.recv(&mut got).unwrap();
    assert_eq!(&got[..len], &data[..], "SEND_BUF datagram");
    let len = rx.recv(&mut got).unwrap();
    assert_eq!(
        &got[..len],
        &pattern(8192)[100..3100],
        "FIXED_INLINE datagram"
    );
    dev.unregister(reg).unwrap();

    // RING_MMAP.
    dev.map_ring().unwrap();
    assert!(dev.ring_mapped());
}

#[test]
fn tcp_owned_buffers() {
    let Some(dev) = device() else { return };
    let efd = EventFd::new().unwrap();
    dev.set_eventfd(Some(efd.as_fd())).unwrap();
    let (sock, rx) = tcp_pair();

    let data = pattern(1 << 20);
    let mine = Arc::new(data.clone());
    let whole = Buf::from_arc(mine.clone());
    let mut off = 0;
    let mut sends = 0u64;
    while off < whole.len() {
        let end = (off + (256 << 10)).min(whole.len());
        // Two iovecs per send, to exercise the iovec array.
        let mid = (off + end) / 2;
        let n = dev
            .send(
                sock.as_fd(),
                &[whole.slice(off..mid), whole.slice(mid..end)],
                MsgFlags::NOSIGNAL,
                None,
                sends,
            )
            .unwrap();
        off += n;
        sends += 1;
    }
    drop(whole);
    let done = drain(&dev, &efd);
    assert_eq!(done.len() as u64, sends);
    let mut ids: Vec<u64> = done.iter().map(|c| c.user_data).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..sends).collect::<Vec<_>>());
    assert_eq!(done.iter().map(|c| c.bytes).sum::<u64>(), data.len() as u64);
    // Every completion read: the library let go of its clones.
    assert_eq!(Arc::strong_count(&mine), 1);
    let st = dev.stats().unwrap();
    assert_eq!(st.sends, sends);
    assert_eq!(st.zerocopy + st.copied, sends);
    assert_eq!(st.inflight, 0);

    drop(sock);
    assert_eq!(rx.join().unwrap(), data, "received bytes differ");
}

#[test]
fn scoped_udp_and_blocking_read() {
    let Some(dev) = device() else { return };
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dest = rx.local_addr().unwrap();
    let header = *b"zcsend-rs scoped ";
    let payload = pattern(30000);

    let sent = dev
        .scope(|s| {
            let bufs = [IoSlice::new(&header), IoSlice::new(&payload)];
            s.send(tx.as_fd(), &bufs, MsgFlags::NONE, Some(&dest), 77)
        })
        .unwrap();
    assert_eq!(sent, header.len() + payload.len());
    // The scope returned: its send completed, and the record waits for us.
    assert_eq!(dev.in_flight(), 0);
    let mut out = [Completion::default(); 4];
    let n = dev.read_completions(&mut out).unwrap();
    assert_eq!(n, 1);
    assert_eq!(out[0].user_data, 77);
    assert_eq!(out[0].bytes as usize, sent);

    let mut got = vec![0u8; 65536];
    let len = rx.recv(&mut got).unwrap();
    assert_eq!(&got[..header.len()], &header);
    assert_eq!(&got[header.len()..len], &payload[..]);
}

#[test]
fn failed_send_posts_nothing() {
    let Some(dev) = device() else { return };
    let (sock, rx) = tcp_pair();
    let b = Buf::from(vec![1u8; 4096]);
    // Not a MSG_* flag the module accepts.
    let bad = MsgFlags::from_bits_retain(libc::MSG_OOB as u32);
    let e = dev
        .send(sock.as_fd(), std::slice::from_ref(&b), bad, None, 1)
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(22), "EINVAL, got {e}");
    // No iovec at all.
    let e = dev
        .send(sock.as_fd(), &[], MsgFlags::NONE, None, 2)
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(22));
    assert_eq!(dev.in_flight(), 0);
    drop(sock);
    rx.join().unwrap();
}

#[test]
fn wait_idle_then_drop() {
    let Some(dev) = device() else { return };
    let (sock, rx) = tcp_pair();
    for i in 0..4 {
        dev.send(
            sock.as_fd(),
            &[Buf::from(pattern(100_000))],
            MsgFlags::NOSIGNAL,
            None,
            i,
        )
        .unwrap();
    }
    dev.wait_idle().unwrap();
    assert_eq!(dev.in_flight(), 0);
    let mut out = [Completion::default(); 8];
    assert_eq!(dev.try_read_completions(&mut out).unwrap(), 4);
    drop(dev);
    drop(sock);
    assert_eq!(rx.join().unwrap().len(), 400_000);
}

/// Sends `chunks` chunks of `len` bytes to three loopback TCP sinks with one
/// fan-out each (plus a fan-out of one per short socket), from one reusable
/// `Arc` buffer; returns the completions and what each sink received. With
/// `by_index` the sockets are registered with `dev` and named by index
/// (the table is unregistered before the sinks are told the end).
fn fanout_stream(
    dev: &Device,
    efd: &EventFd,
    stable: bool,
    by_index: bool,
    chunks: usize,
    len: usize,
) -> (Vec<Completion>, u64, Vec<Vec<u8>>) {
    let pairs: Vec<_> = (0..3).map(|_| tcp_pair()).collect();
    let socks = by_index.then(|| dev.register_sockets(pairs.iter().map(|(s, _)| s)).unwrap());
    let dests: Vec<Dest> = match &socks {
        Some(t) => t.iter().map(Dest::new).collect(),
        None => pairs.iter().map(|(s, _)| Dest::new(s.as_fd())).collect(),
    };
    assert!(dests.iter().all(|d| d.sock.is_registered() == by_index));
    let stream = pattern(chunks * len);
    let mut mine = Arc::new(vec![0u8; len]);
    let mut calls = 0u64;
    let mut accepted = 0u64;
    let mut all = Vec::new();
    for k in 0..chunks {
        // Refill only when the library has let go of the buffer: with a
        // stable fan-out right away, otherwise after the completions.
        if !stable {
            all.extend(drain(dev, efd));
        }
        Arc::get_mut(&mut mine)
            .expect("buffer still shared after its completions")
            .copy_from_slice(&stream[k * len..(k + 1) * len]);
        let buf = Buf::from_arc(mine.clone());
        let res = dev
            .fanout(
                &dests,
                std::slice::from_ref(&buf),
                MsgFlags::NOSIGNAL,
                stable,
                calls,
            )
            .unwrap();
        calls += 1;
        assert_eq!(res.len(), dests.len());
        for (d, r) in dests.iter().zip(res) {
            let mut done = r.expect("destination failed");
            accepted += done as u64;
            while done < len {
                let rest = dev
                    .fanout(
                        &[*d],
                        &[buf.slice(done..)],
                        MsgFlags::NOSIGNAL,
                        stable,
                        calls,
                    )
                    .unwrap();
                calls += 1;
                let n = rest.into_iter().next().unwrap().expect("remainder failed");
                accepted += n as u64;
                done += n;
            }
        }
        drop(buf);
        if stable {
            // The module sent its own copy: the caller's buffer is free.
            assert_eq!(
                Arc::strong_count(&mine),
                1,
                "stable fan-out kept the buffer"
            );
        }
    }
    all.extend(drain(dev, efd));
    assert_eq!(all.len() as u64, calls, "one completion per fan-out call");
    assert_eq!(Arc::strong_count(&mine), 1);
    // The table holds the sockets too: let go of it (the dests borrowed
    // it) before the descriptors close.
    drop(dests);
    if let Some(t) = socks {
        t.unregister().unwrap();
    }
    let got = pairs
        .into_iter()
        .map(|(s, rx)| {
            drop(s);
            rx.join().unwrap()
        })
        .collect::<Vec<_>>();
    for g in &got {
        assert!(g == &stream, "a subscriber received other bytes");
    }
    (all, accepted, got)
}

#[test]
fn tcp_fanout_owned() {
    let Some(dev) = device() else { return };
    let efd = EventFd::new().unwrap();
    dev.set_eventfd(Some(efd.as_fd())).unwrap();
    let (done, accepted, _) = fanout_stream(&dev, &efd, false, false, 8, 256 << 10);
    assert!(done.iter().all(|c| c.fanout && !c.stable && c.result == 0));
    assert_eq!(done.iter().map(|c| c.bytes).sum::<u64>(), accepted);
    assert_eq!(accepted, 3 * 8 * (256 << 10));
    let st = dev.stats().unwrap();
    assert_eq!((st.inflight, st.pinned_pages), (0, 0));
}

#[test]
fn tcp_fanout_stable() {
    let Some(dev) = device() else { return };
    let efd = EventFd::new().unwrap();
    dev.set_eventfd(Some(efd.as_fd())).unwrap();
    let (done, accepted, _) = fanout_stream(&dev, &efd, true, false, 8, 256 << 10);
    assert!(done.iter().all(|c| c.fanout && c.stable && c.result == 0));
    assert_eq!(done.iter().map(|c| c.bytes).sum::<u64>(), accepted);
    assert_eq!(accepted, 3 * 8 * (256 << 10));
}

/// `n` receiving and `n` sending UDP sockets on loopback.
fn udp_pairs(n: usize) -> (Vec<UdpSocket>, Vec<UdpSocket>) {
    let bind = || UdpSocket::bind("127.0.0.1:0").unwrap();
    (
        (0..n).map(|_| bind()).collect(),
        (0..n).map(|_| bind()).collect(),
    )
}

/// One fan-out destination per pair: each sender to its receiver.
fn udp_dests<'a>(rxs: &[UdpSocket], txs: &'a [UdpSocket]) -> Vec<Dest<'a>> {
    txs.iter()
        .zip(rxs)
        .map(|(tx, rx)| Dest::to(tx.as_fd(), rx.local_addr().unwrap()))
        .collect()
}

#[test]
fn scoped_udp_fanout() {
    let Some(dev) = device() else { return };
    let (rxs, txs) = udp_pairs(2);
    let dests = udp_dests(&rxs, &txs);
    let payload = pattern(20000);
    let res = dev
        .scope(|s| s.fanout(&dests, &[IoSlice::new(&payload)], MsgFlags::NONE, false, 5))
        .unwrap();
    assert_eq!(res.len(), 2);
    for r in res {
        assert_eq!(r.unwrap(), payload.len());
    }
    let mut out = [Completion::default(); 4];
    assert_eq!(
        dev.read_completions(&mut out).unwrap(),
        1,
        "one record for both"
    );
    assert!(out[0].fanout && out[0].user_data == 5);
    assert_eq!(out[0].bytes as usize, 2 * payload.len());
    for rx in &rxs {
        let mut got = vec![0u8; 65536];
        let n = rx.recv(&mut got).unwrap();
        assert_eq!(&got[..n], &payload[..]);
    }
}

#[test]
fn fanout_refused_posts_nothing() {
    let Some(dev) = device() else { return };
    let (sock, rx) = tcp_pair();
    let b = Buf::from(vec![1u8; 4096]);
    let one = std::slice::from_ref(&b);
    let einval = |r: std::io::Result<Vec<std::io::Result<usize>>>| {
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EINVAL));
    };
    // No destination; the same socket twice; no buffer.
    einval(dev.fanout(&[], one, MsgFlags::NONE, false, 1));
    let d = Dest::new(sock.as_fd());
    einval(dev.fanout(&[d, d], one, MsgFlags::NONE, false, 2));
    einval(dev.fanout(&[d], &[], MsgFlags::NONE, false, 3));
    // Not a socket.
    let efd = EventFd::new().unwrap();
    let e = dev
        .fanout(&[d, Dest::new(efd.as_fd())], one, MsgFlags::NONE, false, 4)
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTSOCK));
    assert_eq!(dev.in_flight(), 0);
    assert_eq!(dev.stats().unwrap().sends, 0);
    drop(sock);
    assert!(
        rx.join().unwrap().is_empty(),
        "a refused fan-out sent bytes"
    );
}

/// Takes completions with `wait_completion` + peek/advance (from the mapped
/// ring when there is one) until nothing is in flight.
fn drain_ring(dev: &Device, efd: &EventFd) -> Vec<Completion> {
    let mut all = Vec::new();
    let mut buf = [Completion::default(); 16];
    while dev.in_flight() > 0 || dev.peek_completions(&mut buf).unwrap() > 0 {
        assert!(
            dev.wait_completion(efd, Some(Duration::from_secs(20)))
                .unwrap(),
            "no completion within 20 s"
        );
        let n = dev.peek_completions(&mut buf).unwrap();
        all.extend_from_slice(&buf[..n]);
        dev.advance_completions(n);
    }
    all
}

/// Sends `data` on a fresh loopback TCP connection in `chunk`-byte owned
/// sends; returns the number of sends and what the peer received.
fn tcp_stream_sends(
    dev: &Device,
    data: &Buf,
    chunk: usize,
) -> (u64, TcpStream, thread::JoinHandle<Vec<u8>>) {
    let (sock, rx) = tcp_pair();
    let mut off = 0;
    let mut sends = 0;
    while off < data.len() {
        let end = (off + chunk).min(data.len());
        off += dev
            .send(
                sock.as_fd(),
                &[data.slice(off..end)],
                MsgFlags::NOSIGNAL,
                None,
                sends,
            )
            .unwrap();
        sends += 1;
    }
    (sends, sock, rx)
}

#[test]
fn ring_completions_and_read_still_works() {
    let Some(dev) = device() else { return };
    let efd = EventFd::new().unwrap();
    dev.set_eventfd(Some(efd.as_fd())).unwrap();
    dev.map_ring().unwrap();
    dev.map_ring().unwrap();
    assert!(dev.ring_mapped());
    assert_eq!(
        dev.ring_entries(),
        Some(zcsend::sys::ZCSEND_MAX_COMPLETIONS as usize)
    );

    let data = pattern(1 << 20);
    let mine = Arc::new(data.clone());
    let (sends, sock, rx) = tcp_stream_sends(&dev, &Buf::from_arc(mine.clone()), 128 << 10);
    let done = drain_ring(&dev, &efd);
    assert_eq!(done.len() as u64, sends);
    let mut ids: Vec<u64> = done.iter().map(|c| c.user_data).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..sends).collect::<Vec<_>>());
    assert_eq!(done.iter().map(|c| c.bytes).sum::<u64>(), data.len() as u64);
    assert_eq!(
        Arc::strong_count(&mine),
        1,
        "buffers released with the ring's records"
    );
    let st = dev.stats().unwrap();
    assert_eq!((st.sends, st.inflight, st.queued), (sends, 0, 0));

    // read(2) consumes the same ring: the blocking read still works.
    let n = dev
        .send(
            sock.as_fd(),
            &[Buf::from(pattern(100_000))],
            MsgFlags::NOSIGNAL,
            None,
            99,
        )
        .unwrap();
    let mut out = [Completion::default(); 4];
    assert_eq!(dev.read_completions(&mut out).unwrap(), 1);
    assert_eq!((out[0].user_data, out[0].bytes as usize), (99, n));
    assert_eq!(dev.stats().unwrap().queued, 0);
    drop(sock);
    let got = rx.join().unwrap();
    assert_eq!(&got[..data.len()], &data[..]);
    assert_eq!(got.len(), data.len() + n);
}

#[test]
fn ring_wakeup_on_request() {
    let Some(dev) = device() else { return };
    let efd = EventFd::new().unwrap();
    dev.set_eventfd(Some(efd.as_fd())).unwrap();
    dev.set_wakeup_on_request(true).unwrap();
    assert!(dev.ring_mapped());
    let data = Buf::from(pattern(4 << 20));
    let (sends, sock, rx) = tcp_stream_sends(&dev, &data, 64 << 10);
    // Every record is found, none waits for a signal that never comes.
    let done = drain_ring(&dev, &efd);
    assert_eq!(done.len() as u64, sends);
    assert!(done.iter().all(|c| c.result == 0));
    // Nothing is in flight: a bounded wait times out.
    assert!(!dev
        .wait_completion(&efd, Some(Duration::from_millis(50)))
        .unwrap());
    dev.set_wakeup_on_request(false).unwrap();
    drop(sock);
    assert!(rx.join().unwrap() == *data);
}

#[test]
fn registered_buffers_fixed_sends() {
    let Some(dev) = device() else { return };
    let efd = EventFd::new().unwrap();
    dev.set_eventfd(Some(efd.as_fd())).unwrap();
    let len = 1 << 20;
    let shared = Arc::new(pattern(len));
    let mut reg = dev
        .register([
            RegBuf::from(vec![0u8; len]),
            Buf::from_arc(shared.clone()).into(),
        ])
        .unwrap();
    assert_eq!(reg.len(), 2);
    assert!(reg.segments() >= 2);
    // One registration per file; the buffers come back.
    let e = dev.register([vec![1u8; 4096]]).unwrap_err();
    assert_eq!(e.error().raw_os_error(), Some(libc::EBUSY));
    assert_eq!(e.into_bufs()[0].as_bytes().len(), 4096);

    // Fill the owned buffer in place: nothing refers to it yet.
    let first = pattern(len).iter().map(|b| b ^ 0x5a).collect::<Vec<u8>>();
    reg.get_mut(0).unwrap().copy_from_slice(&first);
    assert!(
        reg.get_mut(1).is_none(),
        "shared buffers are never writable"
    );

    let (sock, rx) = tcp_pair();
    let send_all = |reg: &zcsend::Registered, index: usize, id: u64| {
        let mut off = 0;
        let mut id = id;
        while off < len {
            let end = (off + (256 << 10)).min(len);
            // Sends of two ranges of one buffer (a struct zcsend_range
            // array) alternate with sends of one range, which the library
            // names in the request itself (ZCSEND_SEND_FIXED |
            // ZCSEND_SEND_BUF).
            let mid = (off + end) / 2;
            let ranges = if id % 2 == 0 {
                vec![reg.fixed(index, off..mid), reg.fixed(index, mid..end)]
            } else {
                vec![reg.fixed(index, off..end)]
            };
            off += dev
                .send_fixed(sock.as_fd(), &ranges, MsgFlags::NOSIGNAL, None, id)
                .unwrap();
            id += 1;
        }
        id
    };
    let mut id = send_all(&reg, 0, 0);
    // In flight (or completed but not read): neither writable nor unregistrable.
    let held = reg.fixed(0, ..1);
    assert!(reg.get_mut(0).is_none());
    let e = dev.unregister(reg).unwrap_err();
    assert_eq!(e.error().raw_os_error(), Some(libc::EBUSY));
    let mut reg = e.into_registered();
    drop(held);
    // (unregister filed the records that were there: they are queued.)
    let done = drain_ring(&dev, &efd);
    assert_eq!(done.len() as u64, id);
    assert_eq!(done.iter().map(|c| c.bytes).sum::<u64>(), len as u64);
    // Every completion read: refill the same pinned buffer and send again.
    let second = pattern(len);
    reg.get_mut(0)
        .expect("writable after the completions")
        .copy_from_slice(&second);
    id = send_all(&reg, 0, id);
    id = send_all(&reg, 1, id);
    let done = drain_ring(&dev, &efd);
    assert!(done.iter().all(|c| c.result == 0));
    assert!(id > 0);

    // A fan-out of one range to two UDP sockets.
    let (rxs, txs) = udp_pairs(2);
    let dests = udp_dests(&rxs, &txs);
    let res = dev
        .fanout_fixed(&dests, &[reg.fixed(1, 1000..21000)], MsgFlags::NONE, 500)
        .unwrap();
    assert!(res.iter().all(|r| matches!(r, Ok(20000))));
    let done = drain_ring(&dev, &efd);
    assert_eq!(done.len(), 1);
    assert!(done[0].fanout && done[0].user_data == 500);
    for rx in &rxs {
        let mut got = vec![0u8; 65536];
        let n = rx.recv(&mut got).unwrap();
        assert_eq!(&got[..n], &shared[1000..21000]);
    }

    // Nothing refers to the buffers: they come back, in order.
    let back = dev.unregister(reg).unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(back[0].as_bytes(), &second[..]);
    drop(back);
    assert_eq!(Arc::strong_count(&shared), 1);
    // A new registration is possible again.
    drop(dev.register([vec![0u8; 4096]]).unwrap());
    let st = dev.stats().unwrap();
    assert_eq!((st.inflight, st.pinned_pages), (0, 0));

    drop(sock);
    let got = rx.join().unwrap();
    let mut want = first;
    want.extend_from_slice(&second);
    want.extend_from_slice(&shared);
    assert!(got == want, "received bytes differ");
}

/// One batch on a TCP and a UDP socket: plain entries of one buffer (named
/// in the descriptor, `ZCSEND_SEND_BUF`) and of two (an iovec array), fixed
/// entries of one range (inline) and of two (an array); the stream and the
/// datagrams arrive intact.
#[test]
fn batch_submits_plain_and_fixed() {
    let Some(dev) = device() else { return };
    let efd = EventFd::new().unwrap();
    dev.set_eventfd(Some(efd.as_fd())).unwrap();
    dev.map_ring().unwrap();
    let reg = dev.register([pattern(256 << 10)]).unwrap();
    let plain = Buf::from(pattern(300_000));
    let (sock, rx) = tcp_pair();
    let udp_rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = udp_rx.local_addr().unwrap();

    let mut batch = dev.batch();
    let mut want = Vec::new();
    for i in 0..8u64 {
        if i % 2 == 0 {
            // One buffer (named in the descriptor itself), or, for the
            // last one, two (an iovec array).
            let (a, b) = (i as usize * 1000, i as usize * 1000 + 30_000);
            let bufs = if i == 6 {
                vec![plain.slice(a..a + 7000), plain.slice(a + 7000..b)]
            } else {
                vec![plain.slice(a..b)]
            };
            want.extend_from_slice(&plain[a..b]);
            batch
                .send(sock.as_fd(), &bufs, MsgFlags::NOSIGNAL, None, i)
                .unwrap();
        } else {
            // One range (named in the descriptor itself), or, for the last
            // one, two (a struct zcsend_range array): one batch mixes both.
            let (a, b) = (i as usize * 4096, (i as usize + 8) * 4096);
            let ranges = if i == 7 {
                vec![reg.fixed(0, a..a + 5000), reg.fixed(0, a + 5000..b)]
            } else {
                vec![reg.fixed(0, a..b)]
            };
            want.extend_from_slice(&reg.get(0).unwrap()[a..b]);
            batch
                .send_fixed(sock.as_fd(), &ranges, MsgFlags::NOSIGNAL, None, i)
                .unwrap();
        }
    }
    batch
        .send_fixed(
            udp_tx.as_fd(),
            &[reg.fixed(0, ..20000)],
            MsgFlags::NONE,
            Some(&to),
            8,
        )
        .unwrap();
    let datagram = plain.slice(1000..2400);
    batch
        .send(
            udp_tx.as_fd(),
            std::slice::from_ref(&datagram),
            MsgFlags::NONE,
            Some(&to),
            9,
        )
        .unwrap();
    assert_eq!(batch.len(), 10);
    assert_eq!(batch.submit().unwrap(), 10, "one ioctl, all submitted");
    assert!(batch.is_empty());
    let done = drain_ring(&dev, &efd);
    assert_eq!(done.len(), 10);
    let mut ids: Vec<u64> = done.iter().map(|c| c.user_data).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..10).collect::<Vec<_>>());
    let tcp_bytes: u64 = done
        .iter()
        .filter(|c| c.user_data < 8)
        .map(|c| c.bytes)
        .sum();
    assert_eq!(
        tcp_bytes as usize,
        want.len(),
        "a stream took part of a send"
    );
    let mut got = vec![0u8; 65536];
    let n = udp_rx.recv(&mut got).unwrap();
    assert_eq!(&got[..n], &reg.get(0).unwrap()[..20000]);
    let n = udp_rx.recv(&mut got).unwrap();
    assert_eq!(&got[..n], &datagram[..]);

    drop(batch);
    dev.unregister(reg).unwrap();
    drop(sock);
    assert!(rx.join().unwrap() == want, "received bytes differ");
}

#[test]
fn batch_sendmmsg_semantics() {
    let Some(dev) = device() else { return };
    let (sock, rx) = tcp_pair();
    let bad = MsgFlags::from_bits_retain(libc::MSG_OOB as u32);
    let mine = Arc::new(pattern(8192));
    let b = || Buf::from_arc(mine.clone());
    let mut batch = dev.batch();
    batch
        .send(sock.as_fd(), &[b()], MsgFlags::NOSIGNAL, None, 0)
        .unwrap();
    batch
        .send(sock.as_fd(), &[b()], MsgFlags::NOSIGNAL, None, 1)
        .unwrap();
    // Refused by the module (a flag it does not take): stops the batch.
    batch.send(sock.as_fd(), &[b()], bad, None, 2).unwrap();
    batch
        .send(sock.as_fd(), &[b()], MsgFlags::NOSIGNAL, None, 3)
        .unwrap();
    assert_eq!(batch.submit().unwrap(), 2, "the count before the failure");
    assert_eq!(
        batch.len(),
        2,
        "the failed send and the one after stay queued"
    );
    // Now the failing one is first: its error.
    let e = batch.submit().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    assert_eq!(batch.len(), 2);
    batch.clear();
    dev.wait_idle().unwrap();
    let mut out = [Completion::default(); 8];
    assert_eq!(
        dev.try_read_completions(&mut out).unwrap(),
        2,
        "only the submitted ones"
    );
    assert_eq!(Arc::strong_count(&mine), 1);
    assert_eq!(dev.stats().unwrap().sends, 2);
    drop(batch);
    drop(sock);
    assert_eq!(rx.join().unwrap().len(), 2 * 8192);
}

/// Sends by index (`ZCSEND_SEND_FIXED_SOCKET`) on a TCP and a UDP socket
/// whose descriptors were closed after registering: owned buffers, ranges
/// of a registered buffer and a scoped datagram, one completion each. The
/// table keeps the sockets open; unregistering lets the TCP one close, and
/// the peer then has the whole stream, intact. One table per device
/// (EBUSY); after unregistering (or dropping the handle) a new one can be
/// registered.
#[test]
fn registered_sockets_send_by_index() {
    let Some(dev) = device() else { return };
    let efd = EventFd::new().unwrap();
    dev.set_eventfd(Some(efd.as_fd())).unwrap();
    let (tcp, rx) = tcp_pair();
    let udp_rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = udp_rx.local_addr().unwrap();
    let socks = dev.register_sockets([udp_tx.as_fd(), tcp.as_fd()]).unwrap();
    assert_eq!(socks.len(), 2);
    assert!(socks.get(2).is_none());
    let e = dev.register_sockets([udp_rx.as_fd()]).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EBUSY), "one table at a time");
    let (udp, stream) = (socks.get(0).unwrap(), socks.get(1).unwrap());
    assert_eq!((udp.index(), stream.index()), (Some(0), Some(1)));
    // The descriptors go; the registered sockets stay open.
    drop(tcp);
    drop(udp_tx);

    let data = pattern(1 << 20);
    let whole = Buf::from(data.clone());
    let mut off = 0;
    let mut id = 0u64;
    while off < whole.len() {
        let end = (off + (256 << 10)).min(whole.len());
        off += dev
            .send(
                stream,
                &[whole.slice(off..end)],
                MsgFlags::NOSIGNAL,
                None,
                id,
            )
            .unwrap();
        id += 1;
    }
    let fixed: Vec<u8> = pattern(256 << 10).iter().map(|b| b ^ 0x5a).collect();
    let reg = dev.register([fixed.clone()]).unwrap();
    let mut off = 0;
    while off < fixed.len() {
        off += dev
            .send_fixed(stream, &[reg.fixed(0, off..)], MsgFlags::NOSIGNAL, None, id)
            .unwrap();
        id += 1;
    }
    let n = dev
        .send(
            udp,
            &[Buf::from(pattern(1500))],
            MsgFlags::NONE,
            Some(&to),
            id,
        )
        .unwrap();
    assert_eq!(n, 1500);
    id += 1;
    let mut got = vec![0u8; 65536];
    let len = udp_rx.recv(&mut got).unwrap();
    assert_eq!(&got[..len], &pattern(1500)[..]);
    let header = *b"scoped by index ";
    let n = dev
        .scope(|s| {
            s.send(
                udp,
                &[IoSlice::new(&header), IoSlice::new(&data[..20000])],
                MsgFlags::NONE,
                Some(&to),
                id,
            )
        })
        .unwrap();
    assert_eq!(n, header.len() + 20000);
    id += 1;
    let len = udp_rx.recv(&mut got).unwrap();
    assert_eq!(&got[..header.len()], &header);
    assert_eq!(&got[header.len()..len], &data[..20000]);

    // The scope's wait filed the records it read: drain_ring takes those
    // queued too, not only the ones still in flight.
    let done = drain_ring(&dev, &efd);
    let mut ids: Vec<u64> = done.iter().map(|c| c.user_data).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..id).collect::<Vec<_>>(), "one record per send");
    assert!(done.iter().all(|c| c.result == 0 && !c.fanout));
    let st = dev.stats().unwrap();
    assert_eq!((st.sends, st.inflight), (id, 0));

    // The table held the TCP socket's last reference: the stream ends now.
    socks.unregister().unwrap();
    let got = rx.join().unwrap();
    assert_eq!(got.len(), data.len() + fixed.len());
    assert!(got[..data.len()] == data[..], "bytes sent by index differ");
    assert!(
        got[data.len()..] == fixed[..],
        "ranges sent by index differ"
    );
    dev.unregister(reg).unwrap();

    // A new table can be registered; dropping its handle unregisters it.
    let again = dev.register_sockets([udp_rx.as_fd()]).unwrap();
    assert_eq!(again.len(), 1);
    drop(again);
    dev.register_sockets([&udp_rx])
        .unwrap()
        .unregister()
        .unwrap();
}

/// One payload to three UDP sockets named by index (`ZCSEND_SEND_FIXED_SOCKET`
/// on the fan-out): every receiver gets it, one record for all; then TCP
/// streams by index, owned and stable, verified at the sinks.
#[test]
fn registered_sockets_fanout() {
    let Some(dev) = device() else { return };
    let efd = EventFd::new().unwrap();
    dev.set_eventfd(Some(efd.as_fd())).unwrap();
    let (rxs, txs) = udp_pairs(3);
    let socks = dev.register_sockets(&txs).unwrap();
    drop(txs);
    let dests: Vec<Dest> = socks
        .iter()
        .zip(&rxs)
        .map(|(s, rx)| Dest::to(s, rx.local_addr().unwrap()))
        .collect();
    let payload = pattern(20000);
    let mine = Arc::new(payload.clone());
    let res = dev
        .fanout(
            &dests,
            &[Buf::from_arc(mine.clone())],
            MsgFlags::NONE,
            false,
            9,
        )
        .unwrap();
    assert_eq!(res.len(), 3);
    assert!(res.iter().all(|r| matches!(r, Ok(20000))), "{res:?}");
    let done = drain(&dev, &efd);
    assert_eq!(done.len(), 1, "one record for all destinations");
    assert!(done[0].fanout && done[0].user_data == 9);
    assert_eq!(done[0].bytes, 3 * 20000);
    assert_eq!(Arc::strong_count(&mine), 1);
    for rx in &rxs {
        let mut got = vec![0u8; 65536];
        let n = rx.recv(&mut got).unwrap();
        assert_eq!(&got[..n], &payload[..]);
    }
    drop(dests);
    socks.unregister().unwrap();

    // TCP streams, each fan-out's destinations by index.
    for stable in [false, true] {
        let (done, accepted, _) = fanout_stream(&dev, &efd, stable, true, 4, 256 << 10);
        assert!(done.iter().all(|c| c.fanout && c.stable == stable));
        assert_eq!(done.iter().map(|c| c.bytes).sum::<u64>(), accepted);
        assert_eq!(accepted, 3 * 4 * (256 << 10));
    }
    let st = dev.stats().unwrap();
    assert_eq!((st.inflight, st.pinned_pages), (0, 0));
}

/// A batch mixing sends by index and by descriptor on one TCP socket, owned
/// buffers and registered ranges: one system call, one record each, the
/// stream intact.
#[test]
fn registered_sockets_batch_mixed() {
    let Some(dev) = device() else { return };
    let efd = EventFd::new().unwrap();
    dev.set_eventfd(Some(efd.as_fd())).unwrap();
    let (sock, rx) = tcp_pair();
    let socks = dev.register_sockets([&sock]).unwrap();
    let reg = dev.register([pattern(256 << 10)]).unwrap();
    let plain = Buf::from(pattern(300_000));
    let mut batch = dev.batch();
    let mut want = Vec::new();
    for i in 0..8u64 {
        let by_index = i % 2 == 1;
        let s = if by_index {
            socks.get(0).unwrap()
        } else {
            sock.as_fd().into()
        };
        if i % 4 < 2 {
            let b = plain.slice(i as usize * 1000..i as usize * 1000 + 30_000);
            want.extend_from_slice(&b);
            batch.send(s, &[b], MsgFlags::NOSIGNAL, None, i).unwrap();
        } else {
            let f = reg.fixed(0, i as usize * 4096..(i as usize + 8) * 4096);
            want.extend_from_slice(&f);
            batch
                .send_fixed(s, &[f], MsgFlags::NOSIGNAL, None, i)
                .unwrap();
        }
    }
    assert_eq!(batch.submit().unwrap(), 8, "one ioctl, all submitted");
    drop(batch);
    let done = drain(&dev, &efd);
    let mut ids: Vec<u64> = done.iter().map(|c| c.user_data).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..8).collect::<Vec<_>>());
    assert_eq!(
        done.iter().map(|c| c.bytes).sum::<u64>() as usize,
        want.len(),
        "a stream took part of a send"
    );
    socks.unregister().unwrap();
    dev.unregister(reg).unwrap();
    drop(sock);
    assert!(rx.join().unwrap() == want, "received bytes differ");
}

/// What registering refuses (the module: nothing registered), and what the
/// library refuses before the system call: a registered socket of another
/// device's table, and a fan-out mixing indexes and descriptors. Nothing is
/// sent or posted for any of it.
#[test]
fn registered_sockets_refused() {
    let Some(dev) = device() else { return };
    let (tcp, rx) = tcp_pair();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = udp_rx.local_addr().unwrap();
    let errno = |r: std::io::Result<zcsend::Sockets>| r.unwrap_err().raw_os_error();
    assert_eq!(
        errno(dev.register_sockets(&[] as &[BorrowedFd])),
        Some(libc::EINVAL)
    );
    let many = vec![tcp.as_fd(); zcsend::MAX_SOCKETS + 1];
    assert_eq!(errno(dev.register_sockets(&many)), Some(libc::EINVAL));
    assert_eq!(
        errno(dev.register_sockets([tcp.as_fd(), tcp.as_fd()])),
        Some(libc::EINVAL),
        "one socket twice"
    );
    let efd = EventFd::new().unwrap();
    assert_eq!(
        errno(dev.register_sockets([tcp.as_fd(), efd.as_fd()])),
        Some(libc::ENOTSOCK)
    );
    let (un, _un2) = std::os::unix::net::UnixStream::pair().unwrap();
    assert_eq!(errno(dev.register_sockets([&un])), Some(libc::EAFNOSUPPORT));

    let socks = dev.register_sockets([tcp.as_fd(), udp.as_fd()]).unwrap();
    assert_eq!(socks.len(), 2);
    let other = Device::open().unwrap();
    let b = [Buf::from(vec![1u8; 4096])];
    let einval = |r: std::io::Result<usize>| {
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EINVAL));
    };
    let s = socks.get(0).unwrap();
    // Another device: its table (none) is not this one.
    einval(other.send(s, &b, MsgFlags::NOSIGNAL, None, 1));
    let e = other
        .fanout(&[Dest::new(s)], &b, MsgFlags::NOSIGNAL, false, 2)
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    let mut batch = other.batch();
    let e = batch.send(s, &b, MsgFlags::NOSIGNAL, None, 3).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    assert!(batch.is_empty());
    drop(batch);
    // The socket's bit is the library's: not from the flags.
    let bit = MsgFlags::from_bits_retain(zcsend::sys::ZCSEND_SEND_FIXED_SOCKET);
    einval(dev.send(tcp.as_fd(), &b, bit, None, 4));
    // One fan-out: all indexes or all descriptors.
    for dests in [
        [Dest::new(s), Dest::to(udp_rx.as_fd(), to)],
        [Dest::to(udp_rx.as_fd(), to), Dest::new(s)],
    ] {
        let e = dev
            .fanout(&dests, &b, MsgFlags::NOSIGNAL, false, 5)
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    }
    // Indexes of one table, named twice: the module's EINVAL.
    let e = dev
        .fanout(
            &[Dest::new(s), Dest::new(s)],
            &b,
            MsgFlags::NOSIGNAL,
            false,
            6,
        )
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    assert_eq!((dev.in_flight(), other.in_flight()), (0, 0));
    assert_eq!(dev.stats().unwrap().sends, 0);
    assert_eq!(other.stats().unwrap().sends, 0);

    // Unregistered, the device takes a new table.
    socks.unregister().unwrap();
    let again = dev.register_sockets([&udp]).unwrap();
    assert_eq!(again.len(), 1);
    again.unregister().unwrap();
    drop(tcp);
    assert!(rx.join().unwrap().is_empty(), "a refused call sent bytes");
    let mut got = [0u8; 16];
    udp_rx.set_nonblocking(true).unwrap();
    assert!(
        udp_rx.recv(&mut got).is_err(),
        "a refused fan-out sent a datagram"
    );
}
