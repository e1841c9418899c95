// SPDX-License-Identifier: GPL-2.0
//! Buffers that may be handed to the kernel for a zero-copy send.

use std::fmt;
use std::fs::File;
use std::io;
use std::ops::{Bound, Deref, RangeBounds};
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::Arc;

/// Memory whose bytes neither move nor change while the value is alive.
///
/// # Safety
///
/// An implementer promises that, from the moment the value is created until
/// it is dropped (and however often the value itself is moved):
///
/// - every call to [`bytes`](Self::bytes) returns the same pointer and length;
/// - those bytes are not written, by this process or anything it shares the
///   memory with, and the memory stays mapped.
///
/// This is what lets the kernel keep reading the bytes after the send call
/// has returned. Heap buffers owned by the value (`Vec<u8>`, `Box<[u8]>`,
/// `String`) qualify: moving the owner does not move the heap block, and
/// nobody else can reach it. `Arc<T>` qualifies because `Arc::get_mut` fails
/// while another clone (ours) exists. A type with interior mutability does not.
pub unsafe trait StableBytes: Send + Sync + 'static {
    /// The bytes.
    fn bytes(&self) -> &[u8];
}

// SAFETY: the heap block of a Vec does not move when the Vec moves, and only
// the owner (which never hands out `&mut` once it is inside a `Buf`) can write it.
unsafe impl StableBytes for Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }
}

// SAFETY: as for Vec<u8>.
unsafe impl StableBytes for String {
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

// SAFETY: an unsized slice cannot be moved; behind `&`, `Box` or `Arc` it is
// reached only through shared references here, and `[u8]` has no interior
// mutability.
unsafe impl StableBytes for [u8] {
    fn bytes(&self) -> &[u8] {
        self
    }
}

// SAFETY: as for [u8].
unsafe impl StableBytes for str {
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

// SAFETY: the boxed value stays where it is when the box moves.
unsafe impl<T: StableBytes + ?Sized> StableBytes for Box<T> {
    fn bytes(&self) -> &[u8] {
        (**self).bytes()
    }
}

// SAFETY: the value is shared and lives at least as long as this clone;
// `Arc::get_mut` on another clone fails while this one exists.
unsafe impl<T: StableBytes + ?Sized> StableBytes for Arc<T> {
    fn bytes(&self) -> &[u8] {
        (**self).bytes()
    }
}

// SAFETY: immutable and alive forever.
unsafe impl<T: StableBytes + ?Sized> StableBytes for &'static T {
    fn bytes(&self) -> &[u8] {
        (**self).bytes()
    }
}

/// A shared, immutable byte buffer (or a slice of one) that a send can own.
///
/// Cloning is cheap (a reference count). [`Device::send`](crate::Device::send)
/// keeps a clone of every `Buf` it is given until the send's completion has
/// been read, so the bytes stay allocated and unmodified for as long as the
/// kernel may read them, whatever the caller does with its own clones.
///
/// To reuse memory once a send is done, keep an `Arc` of your own and pass
/// [`Buf::from_arc`] a clone: `Arc::get_mut` on yours succeeds again only once
/// the library has dropped its clone, i.e. after the completion was read.
#[derive(Clone)]
pub struct Buf {
    owner: Arc<dyn StableBytes>,
    start: usize,
    end: usize,
}

impl Buf {
    /// Takes ownership of `bytes`.
    pub fn new<T: StableBytes>(bytes: T) -> Buf {
        Buf::from_arc(Arc::new(bytes))
    }

    /// Shares `arc` (see the type's documentation for buffer reuse).
    pub fn from_arc<T: StableBytes>(arc: Arc<T>) -> Buf {
        let end = arc.bytes().len();
        Buf {
            owner: arc,
            start: 0,
            end,
        }
    }

    /// A `Buf` of the bytes in `range` (relative to this one), sharing the
    /// same owner.
    ///
    /// # Panics
    ///
    /// If the range is out of bounds or decreasing.
    pub fn slice(&self, range: impl RangeBounds<usize>) -> Buf {
        let len = self.len();
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.checked_add(1).expect("Buf::slice: start overflows"),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => e.checked_add(1).expect("Buf::slice: end overflows"),
            Bound::Excluded(&e) => e,
            Bound::Unbounded => len,
        };
        assert!(
            start <= end && end <= len,
            "Buf::slice: range {start}..{end} out of bounds for length {len}"
        );
        Buf {
            owner: self.owner.clone(),
            start: self.start + start,
            end: self.start + end,
        }
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True when the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.owner.bytes()[self.start..self.end]
    }

    pub(crate) fn iovec(&self) -> libc::iovec {
        let b = self.as_bytes();
        libc::iovec {
            iov_base: b.as_ptr() as *mut libc::c_void,
            iov_len: b.len(),
        }
    }
}

impl Deref for Buf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for Buf {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for Buf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buf")
            .field("ptr", &self.as_bytes().as_ptr())
            .field("len", &self.len())
            .finish()
    }
}

impl From<Vec<u8>> for Buf {
    fn from(v: Vec<u8>) -> Buf {
        Buf::new(v)
    }
}

impl From<Box<[u8]>> for Buf {
    fn from(v: Box<[u8]>) -> Buf {
        Buf::new(v)
    }
}

impl From<String> for Buf {
    fn from(v: String) -> Buf {
        Buf::new(v)
    }
}

impl From<&'static [u8]> for Buf {
    fn from(v: &'static [u8]) -> Buf {
        Buf::new(v)
    }
}

impl From<&'static str> for Buf {
    fn from(v: &'static str) -> Buf {
        Buf::new(v)
    }
}

impl From<Arc<[u8]>> for Buf {
    fn from(v: Arc<[u8]>) -> Buf {
        Buf::new(v)
    }
}

impl From<Mmap> for Buf {
    fn from(v: Mmap) -> Buf {
        Buf::new(v)
    }
}

/// A read-only, shared memory mapping of a whole file.
///
/// The kernel module pins such pages read-only, so a file's page cache pages
/// can be sent without ever being copied into the process.
pub struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is read-only and owned by this value; see `map`.
unsafe impl Send for Mmap {}
// SAFETY: as above.
unsafe impl Sync for Mmap {}

impl Mmap {
    /// Maps all of `file` read-only (`PROT_READ`, `MAP_SHARED`, pre-faulted).
    ///
    /// # Safety
    ///
    /// The file must not be written or truncated, by this or any other
    /// process, while the mapping (or any [`Buf`] made from it) is alive:
    /// a write would change bytes that Rust treats as immutable (and that a
    /// send may be reading), a truncation makes the mapping fault (`SIGBUS`).
    /// A private copy on a tmpfs that nobody else opens is the usual way to
    /// be sure; [`read_file`] is the safe alternative.
    pub unsafe fn map(file: &File) -> io::Result<Mmap> {
        let len = file.metadata()?.len();
        let len = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file too large to map"))?;
        if len == 0 {
            return Ok(Mmap {
                ptr: NonNull::dangling(),
                len: 0,
            });
        }
        // SAFETY: a fresh mapping chosen by the kernel; nothing is aliased.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mmap {
            ptr: NonNull::new(p.cast()).expect("mmap returned NULL"),
            len,
        })
    }

    /// Length of the mapping.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty file.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

// SAFETY: the mapping stays at `ptr` until drop and is read-only; the
// contract of `Mmap::map` rules out writes through the file.
unsafe impl StableBytes for Mmap {
    fn bytes(&self) -> &[u8] {
        // SAFETY: `len` readable bytes at `ptr` (or a dangling pointer and 0).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        if self.len != 0 {
            // SAFETY: our own mapping, no references into it outlive `self`.
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        }
    }
}

impl fmt::Debug for Mmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mmap")
            .field("ptr", &self.ptr)
            .field("len", &self.len)
            .finish()
    }
}

/// Reads a whole file into an owned [`Buf`]: the safe alternative to
/// [`Mmap::map`], at the cost of one copy before the zero-copy sends.
pub fn read_file(path: impl AsRef<std::path::Path>) -> io::Result<Buf> {
    Ok(Buf::new(std::fs::read(path)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_share_the_owner() {
        let b = Buf::from(b"hello world".to_vec());
        let w = b.slice(6..);
        assert_eq!(&*w, b"world");
        // SAFETY: `b` holds 11 bytes, so offset 6 is inside it.
        assert_eq!(w.as_ptr(), unsafe { b.as_ptr().add(6) });
        let o = w.slice(..=1);
        assert_eq!(&*o, b"wo");
        assert_eq!(b.slice(..).len(), 11);
        assert!(b.slice(3..3).is_empty());
        let iov = o.iovec();
        assert_eq!(iov.iov_base as *const u8, o.as_ptr());
        assert_eq!(iov.iov_len, 2);
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn slice_out_of_bounds() {
        Buf::from("abc").slice(2..5);
    }

    #[test]
    fn arc_reuse_after_release() {
        let mut mine = Arc::new(vec![1u8; 4096]);
        let b = Buf::from_arc(mine.clone());
        assert!(
            Arc::get_mut(&mut mine).is_none(),
            "shared while a Buf exists"
        );
        drop(b);
        Arc::get_mut(&mut mine).unwrap()[0] = 2;
    }

    #[test]
    fn mmap_reads_the_file() {
        let path = std::env::temp_dir().join(format!("zcsend-rs-mmap-{}", std::process::id()));
        std::fs::write(&path, b"0123456789").unwrap();
        let f = File::open(&path).unwrap();
        // SAFETY: a file of our own that nobody writes while mapped.
        let m = unsafe { Mmap::map(&f) }.unwrap();
        std::fs::remove_file(&path).unwrap();
        let b = Buf::from(m);
        assert_eq!(&*b.slice(2..5), b"234");
    }
}
