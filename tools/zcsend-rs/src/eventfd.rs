// SPDX-License-Identifier: GPL-2.0
//! A minimal eventfd, to be told when completions arrive.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// A non-blocking, close-on-exec eventfd (`eventfd(0, EFD_NONBLOCK |
/// EFD_CLOEXEC)`). Register it with
/// [`Device::set_eventfd`](crate::Device::set_eventfd); the module adds 1
/// per completion record.
#[derive(Debug)]
pub struct EventFd(OwnedFd);

impl EventFd {
    /// Creates the eventfd.
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a descriptor we just created and own.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Waits with `poll(2)` until the counter is non-zero or `timeout`
    /// passes (`None`: no limit). Returns whether it is readable. A signal
    /// does not end the wait early.
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<bool> {
        let end = timeout.map(|t| Instant::now() + t);
        loop {
            let ms = match end {
                None => -1,
                Some(end) => {
                    let left = end.saturating_duration_since(Instant::now());
                    // Round up so that a short wait does not spin.
                    left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
                }
            };
            let mut p = libc::pollfd {
                fd: self.0.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut p, 1, ms) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            return Ok(r > 0);
        }
    }

    /// Reads and clears the counter (0 if it was already 0). Do this before
    /// reading the completions: a record posted afterwards signals it again.
    pub fn reset(&self) -> io::Result<u64> {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into `v`.
        let r = unsafe { libc::read(self.0.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                return Ok(0);
            }
            return Err(e);
        }
        Ok(v)
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_and_reset() {
        let e = EventFd::new().unwrap();
        assert!(!e.wait(Some(Duration::from_millis(1))).unwrap());
        assert_eq!(e.reset().unwrap(), 0);
        let one = 2u64;
        // SAFETY: writes 8 bytes to our eventfd.
        assert_eq!(
            unsafe { libc::write(e.as_raw_fd(), (&one as *const u64).cast(), 8) },
            8
        );
        assert!(e.wait(None).unwrap());
        assert_eq!(e.reset().unwrap(), 2);
        assert!(!e.wait(Some(Duration::ZERO)).unwrap());
    }
}
