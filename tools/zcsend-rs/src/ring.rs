// SPDX-License-Identifier: GPL-2.0
//! The mmap'ed completion ring: `tools/include/zcsend_ring.h` in Rust.
//!
//! Crate-private on purpose: records taken from the ring must be filed by the
//! [`Device`](crate::Device) (which releases the buffers of the sends they
//! complete), so user code reaches the ring only through
//! [`Device::map_ring`](crate::Device::map_ring) and the completion methods.
//!
//! Layout (`include/uapi/linux/zcsend.h`): a header page mapped read-write
//! at `ZCSEND_RING_OFF_HDR` (`head`, advanced by the consumer; `wakeup`),
//! then `entries` slots of `struct zcsend_ring_slot` mapped read-only at
//! `ZCSEND_RING_OFF_SLOTS`. The record at position `p` is ready when
//! `slots[p & mask].seq == p + 1` (acquire); the consumer copies records from
//! `head` on and then stores `head` past them (release).

use std::io;
use std::os::fd::RawFd;
use std::ptr::{addr_of, addr_of_mut, NonNull};
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

use crate::sys;

/// Most slots a header may claim before we refuse to map it (the module
/// has `ZCSEND_MAX_COMPLETIONS`; this only bounds the mapping's size).
const MAX_ENTRIES: u32 = 1 << 24;

/// One mapped ring. Single consumer: the [`Device`](crate::Device) calls
/// [`peek`](Self::peek)/[`advance`](Self::advance) only under its reader
/// lock (the same lock that serialises `read(2)`, which moves the same
/// `head`).
pub(crate) struct Ring {
    hdr: NonNull<sys::zcsend_ring_hdr>,
    slots: NonNull<sys::zcsend_ring_slot>,
    mask: u64,
    hdr_len: usize,
    slots_len: usize,
}

// SAFETY: the ring is shared memory accessed only through atomics (`head`,
// `wakeup`, `seq`) and volatile copies of published records; the mapping
// lives as long as the value. Consumers are serialised by the owner.
unsafe impl Send for Ring {}
// SAFETY: as above.
unsafe impl Sync for Ring {}

fn page_size() -> usize {
    // SAFETY: plain libc call.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(p).ok().filter(|&p| p > 0).unwrap_or(4096)
}

impl Ring {
    /// Maps the ring of the `/dev/zcsend` file `fd` (`zcsend_ring_map()`):
    /// the header page read-write at `ZCSEND_RING_OFF_HDR`, then
    /// `entries * 32` bytes read-only at the header's `slots_offset`.
    pub(crate) fn map(fd: RawFd) -> io::Result<Ring> {
        let page = page_size();
        // SAFETY: a fresh shared mapping chosen by the kernel; checked.
        let h = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                sys::ZCSEND_RING_OFF_HDR as libc::off_t,
            )
        };
        if h == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let hdr = NonNull::new(h.cast::<sys::zcsend_ring_hdr>()).expect("mmap returned NULL");
        let unmap_hdr = || {
            // SAFETY: the mapping made above, not referenced elsewhere.
            unsafe { libc::munmap(h, page) };
        };
        // SAFETY: the header page is mapped; these fields are written once
        // by the module before the file is handed out.
        let (entries, mask, slots_offset) = unsafe {
            let p = hdr.as_ptr();
            (
                addr_of!((*p).entries).read_volatile(),
                addr_of!((*p).mask).read_volatile(),
                addr_of!((*p).slots_offset).read_volatile(),
            )
        };
        if let Err(e) = check_geometry(entries, mask, slots_offset) {
            unmap_hdr();
            return Err(e);
        }
        let slots_len = entries as usize * size_of::<sys::zcsend_ring_slot>();
        // SAFETY: as above; read-only, the records are the kernel's.
        let s = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                slots_len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd,
                slots_offset as libc::off_t,
            )
        };
        if s == libc::MAP_FAILED {
            let e = io::Error::last_os_error();
            unmap_hdr();
            return Err(e);
        }
        Ok(Ring {
            hdr,
            slots: NonNull::new(s.cast()).expect("mmap returned NULL"),
            mask: u64::from(mask),
            hdr_len: page,
            slots_len,
        })
    }

    /// The `head` word, advanced by the consumer (us or `read(2)`).
    fn head(&self) -> &AtomicU64 {
        // SAFETY: `head` is 8-aligned at the start of the page-aligned
        // header, mapped read-write for our lifetime, and only ever
        // accessed atomically (by us and by the kernel).
        unsafe { AtomicU64::from_ptr(addr_of_mut!((*self.hdr.as_ptr()).head)) }
    }

    /// The `wakeup` word (`ZCSEND_WAKEUP_*`).
    fn wakeup(&self) -> &AtomicU32 {
        // SAFETY: as for `head`; the kernel clears ARMED with a cmpxchg.
        unsafe { AtomicU32::from_ptr(addr_of_mut!((*self.hdr.as_ptr()).wakeup)) }
    }

    fn slot(&self, pos: u64) -> *mut sys::zcsend_ring_slot {
        // SAFETY: `pos & mask` < entries, so inside the slots mapping.
        unsafe { self.slots.as_ptr().add((pos & self.mask) as usize) }
    }

    /// The `seq` word of the slot of position `pos`. Only loaded: the
    /// slots are mapped read-only.
    fn seq(&self, pos: u64) -> &AtomicU64 {
        // SAFETY: `seq` is 8-aligned (slots are 32 bytes in a page-aligned
        // mapping), mapped for our lifetime and written by the kernel with
        // atomic stores; we only `load` it.
        unsafe { AtomicU64::from_ptr(addr_of_mut!((*self.slot(pos)).seq)) }
    }

    /// Whether a record is ready (`zcsend_ring_ready()`).
    pub(crate) fn ready(&self) -> bool {
        let head = self.head().load(Ordering::Relaxed);
        self.seq(head).load(Ordering::Acquire) == head.wrapping_add(1)
    }

    /// Copies up to `out.len()` ready records, oldest first, without
    /// consuming them (`zcsend_ring_peek()`).
    pub(crate) fn peek(&self, out: &mut [sys::zcsend_completion]) -> usize {
        let head = self.head().load(Ordering::Relaxed);
        let mut n = 0;
        for o in out.iter_mut() {
            let pos = head.wrapping_add(n as u64);
            if self.seq(pos).load(Ordering::Acquire) != pos.wrapping_add(1) {
                break;
            }
            // SAFETY: a published record (acquire above) in a mapped slot;
            // volatile because the memory is shared with the kernel.
            *o = unsafe { addr_of!((*self.slot(pos)).rec).read_volatile() };
            n += 1;
        }
        n
    }

    /// Consumes `n` records returned by [`peek`](Self::peek)
    /// (`zcsend_ring_advance()`): hands their slots back to the kernel.
    pub(crate) fn advance(&self, n: usize) {
        if n == 0 {
            return;
        }
        let head = self.head().load(Ordering::Relaxed);
        self.head()
            .store(head.wrapping_add(n as u64), Ordering::Release);
    }

    /// Whether the eventfd is signalled only on request.
    pub(crate) fn wakeup_on_request(&self) -> bool {
        self.wakeup().load(Ordering::Relaxed) & sys::ZCSEND_WAKEUP_ON_REQUEST != 0
    }

    /// Switches wake-ups on request on (`zcsend_ring_wakeup_on_request()`)
    /// or back to one signal per record.
    pub(crate) fn set_wakeup_on_request(&self, on: bool) {
        if on {
            self.wakeup()
                .fetch_or(sys::ZCSEND_WAKEUP_ON_REQUEST, Ordering::SeqCst);
        } else {
            self.wakeup().fetch_and(
                !(sys::ZCSEND_WAKEUP_ON_REQUEST | sys::ZCSEND_WAKEUP_ARMED),
                Ordering::SeqCst,
            );
        }
    }

    /// Arms one eventfd signal and says whether a record is ready after all
    /// (`zcsend_ring_arm()`). The full barrier orders the arming before the
    /// second look at the ring, as the module orders its post before its
    /// look at `wakeup`: one side always sees the other.
    pub(crate) fn arm(&self) -> bool {
        self.wakeup()
            .fetch_or(sys::ZCSEND_WAKEUP_ARMED, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        self.ready()
    }

    /// Number of slots.
    pub(crate) fn entries(&self) -> usize {
        self.mask as usize + 1
    }
}

/// The header's geometry must describe what `Ring` indexes with.
fn check_geometry(entries: u32, mask: u32, slots_offset: u64) -> io::Result<()> {
    if !entries.is_power_of_two()
        || entries > MAX_ENTRIES
        || mask != entries - 1
        || slots_offset != u64::from(sys::ZCSEND_RING_OFF_SLOTS)
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "zcsend ring header: entries {entries}, mask {mask:#x}, slots_offset {slots_offset:#x}"
            ),
        ));
    }
    Ok(())
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: our own two mappings; no reference into them outlives
        // `self` (every accessor borrows `self`).
        unsafe {
            libc::munmap(self.slots.as_ptr().cast(), self.slots_len);
            libc::munmap(self.hdr.as_ptr().cast(), self.hdr_len);
        }
    }
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("entries", &self.entries())
            .field("head", &self.head().load(Ordering::Relaxed))
            .field("wakeup", &self.wakeup().load(Ordering::Relaxed))
            .finish()
    }
}

/// A stand-in for the kernel side of a ring, in anonymous memory, for the
/// unit tests of this module and of the device's use of it.
#[cfg(test)]
pub(crate) mod fake {
    use super::*;
    use std::os::fd::{AsRawFd, BorrowedFd};

    /// The producer: posts records the way `completion.rs` in the module
    /// does (claim, write, publish `seq`, full barrier, look at `wakeup`).
    pub(crate) struct Kernel {
        hdr: NonNull<sys::zcsend_ring_hdr>,
        slots: NonNull<sys::zcsend_ring_slot>,
        mask: u64,
        tail: AtomicU64,
    }

    // SAFETY: shared memory accessed as the real module does.
    unsafe impl Send for Kernel {}
    // SAFETY: as above; `tail` is atomic.
    unsafe impl Sync for Kernel {}

    fn anon(len: usize) -> *mut libc::c_void {
        // SAFETY: a fresh anonymous mapping; checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED, "anonymous mmap");
        p
    }

    /// A ring of `entries` slots and its producer. The `Ring` owns (and
    /// unmaps) the memory: the `Kernel` must not be used after it.
    pub(crate) fn ring(entries: u32) -> (Ring, Kernel) {
        let page = page_size();
        let slots_len = entries as usize * size_of::<sys::zcsend_ring_slot>();
        let hdr = NonNull::new(anon(page).cast::<sys::zcsend_ring_hdr>()).unwrap();
        let slots = NonNull::new(anon(slots_len).cast::<sys::zcsend_ring_slot>()).unwrap();
        // SAFETY: fresh zeroed memory of the right size.
        unsafe {
            let h = hdr.as_ptr();
            (*h).entries = entries;
            (*h).mask = entries - 1;
            (*h).slots_offset = u64::from(sys::ZCSEND_RING_OFF_SLOTS);
        }
        let r = Ring {
            hdr,
            slots,
            mask: u64::from(entries - 1),
            hdr_len: page,
            slots_len,
        };
        let k = Kernel {
            hdr,
            slots,
            mask: u64::from(entries - 1),
            tail: AtomicU64::new(0),
        };
        (r, k)
    }

    impl Kernel {
        fn head(&self) -> &AtomicU64 {
            // SAFETY: as in `Ring::head`.
            unsafe { AtomicU64::from_ptr(addr_of_mut!((*self.hdr.as_ptr()).head)) }
        }

        /// Records posted and not consumed.
        pub(crate) fn queued(&self) -> u64 {
            self.tail.load(Ordering::Relaxed) - self.head().load(Ordering::Acquire)
        }

        /// Posts `rec`; returns whether the eventfd is to be signalled
        /// (the module's `wants_signal()`), and signals `efd` if so.
        pub(crate) fn post(
            &self,
            rec: sys::zcsend_completion,
            efd: Option<BorrowedFd<'_>>,
        ) -> bool {
            assert!(self.queued() <= self.mask, "fake ring overflow");
            let pos = self.tail.fetch_add(1, Ordering::Relaxed);
            // SAFETY: slot `pos & mask` is ours until published.
            unsafe {
                let s = self.slots.as_ptr().add((pos & self.mask) as usize);
                addr_of_mut!((*s).rec).write_volatile(rec);
                AtomicU64::from_ptr(addr_of_mut!((*s).seq)).store(pos + 1, Ordering::Release);
            }
            fence(Ordering::SeqCst);
            // SAFETY: as in `Ring::wakeup`.
            let w = unsafe { AtomicU32::from_ptr(addr_of_mut!((*self.hdr.as_ptr()).wakeup)) };
            let mut cur = w.load(Ordering::Relaxed);
            let signal = loop {
                if cur & sys::ZCSEND_WAKEUP_ON_REQUEST == 0 {
                    break true;
                }
                if cur & sys::ZCSEND_WAKEUP_ARMED == 0 {
                    break false;
                }
                match w.compare_exchange(
                    cur,
                    cur & !sys::ZCSEND_WAKEUP_ARMED,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break true,
                    Err(now) => cur = now,
                }
            };
            if let (true, Some(efd)) = (signal, efd) {
                let one = 1u64;
                // SAFETY: writes 8 bytes to an eventfd.
                let r = unsafe { libc::write(efd.as_raw_fd(), (&one as *const u64).cast(), 8) };
                assert_eq!(r, 8, "eventfd write");
            }
            signal
        }

        /// The raw `wakeup` word.
        pub(crate) fn wakeup(&self) -> u32 {
            // SAFETY: as in `Ring::wakeup`.
            unsafe { AtomicU32::from_ptr(addr_of_mut!((*self.hdr.as_ptr()).wakeup)) }
                .load(Ordering::Relaxed)
        }
    }

    /// A record with `flags` ZEROCOPY.
    pub(crate) fn rec(user_data: u64, bytes: u64) -> sys::zcsend_completion {
        sys::zcsend_completion {
            user_data,
            bytes,
            flags: sys::ZCSEND_COMPL_ZEROCOPY,
            result: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::{rec, ring};
    use super::*;

    #[test]
    fn geometry_checks() {
        let off = u64::from(sys::ZCSEND_RING_OFF_SLOTS);
        assert!(check_geometry(4096, 4095, off).is_ok());
        assert!(check_geometry(1, 0, off).is_ok());
        for (e, m, o) in [
            (0, 0, off),
            (3, 2, off),
            (8, 8, off),
            (8, 7, 0),
            (1 << 30, (1 << 30) - 1, off),
        ] {
            let err = check_geometry(e, m, o).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{e} {m} {o}");
        }
    }

    #[test]
    fn peek_does_not_consume_advance_does() {
        let (r, k) = ring(8);
        assert_eq!(r.entries(), 8);
        let mut out = [sys::zcsend_completion::default(); 4];
        assert!(!r.ready());
        assert_eq!(r.peek(&mut out), 0);
        for i in 0..3 {
            k.post(rec(i, 100 + i), None);
        }
        assert!(r.ready());
        assert_eq!(r.peek(&mut out[..2]), 2);
        assert_eq!((out[0].user_data, out[1].user_data), (0, 1));
        // Again: nothing was consumed.
        assert_eq!(r.peek(&mut out), 3);
        assert_eq!(out[2].bytes, 102);
        r.advance(2);
        assert_eq!(k.queued(), 1);
        assert_eq!(r.peek(&mut out), 1);
        assert_eq!(out[0].user_data, 2);
        r.advance(1);
        assert!(!r.ready());
        assert_eq!(k.queued(), 0);
    }

    #[test]
    fn wraps_around() {
        let (r, k) = ring(4);
        let mut out = [sys::zcsend_completion::default(); 4];
        let mut next = 0;
        for round in 0..10u64 {
            let n = 1 + round % 4;
            for _ in 0..n {
                k.post(rec(next, 0), None);
                next += 1;
            }
            let got = r.peek(&mut out);
            assert_eq!(got as u64, n);
            for (i, c) in out[..got].iter().enumerate() {
                assert_eq!(c.user_data, next - n + i as u64);
            }
            r.advance(got);
        }
        // A stale slot (seq of the previous lap) is not ready.
        assert!(!r.ready());
    }

    #[test]
    fn arm_then_recheck() {
        let (r, k) = ring(4);
        // Default: a signal per record.
        assert!(!r.wakeup_on_request());
        assert!(k.post(rec(1, 0), None));
        r.advance(r.peek(&mut [sys::zcsend_completion::default(); 4]));
        r.set_wakeup_on_request(true);
        assert!(r.wakeup_on_request());
        // Not armed: no signal.
        assert!(!k.post(rec(2, 0), None));
        // Arming finds the record that came meanwhile.
        assert!(r.arm());
        r.advance(1);
        // Armed and empty: the next post signals once and disarms.
        assert!(!r.arm());
        assert!(k.post(rec(3, 0), None));
        assert_eq!(k.wakeup() & sys::ZCSEND_WAKEUP_ARMED, 0);
        assert!(!k.post(rec(4, 0), None));
        r.set_wakeup_on_request(false);
        assert_eq!(k.wakeup(), 0);
        assert!(k.post(rec(5, 0), None));
    }
}
