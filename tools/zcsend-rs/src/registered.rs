// SPDX-License-Identifier: GPL-2.0
//! Registered buffers (`ZCSEND_IOC_REGISTER_BUFFERS`) and [`Fixed`] ranges
//! inside them (`ZCSEND_SEND_FIXED`).
//!
//! Ownership: the memory belongs to the [`Registered`] handle's shared
//! state, which every [`Fixed`] keeps alive; a send from a `Fixed` keeps a
//! clone of it until its completion has been read. Each buffer counts the
//! `Fixed`s that refer to it, so [`Registered::get_mut`] hands out a
//! `&mut [u8]` only while no range of that buffer exists anywhere (in user
//! code or in flight), and [`Device::unregister`](crate::Device::unregister)
//! gives the memory back only when no `Fixed` at all exists and the module
//! agreed to unregister.

use std::fmt;
use std::io;
use std::mem::ManuallyDrop;
use std::ops::{Bound, Deref, RangeBounds};
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::buf::Buf;
use crate::sys;

/// One buffer to register with [`Device::register`](crate::Device::register),
/// as [`Device::unregister`](crate::Device::unregister) gives it back.
pub enum RegBuf {
    /// Memory the registration owns: safe code may rewrite it with
    /// [`Registered::get_mut`] between sends, while no [`Fixed`] range of
    /// it exists, and later sends carry the new bytes. (Every page is
    /// written once before the module pins it, so the pins are of this
    /// process's own pages, which later writes reach.)
    Owned(Box<[u8]>),
    /// Shared, immutable bytes (a read-only file [`Mmap`](crate::Mmap), an
    /// `Arc<[u8]>`, ...): never written while registered.
    Shared(Buf),
}

impl RegBuf {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            RegBuf::Owned(b) => b,
            RegBuf::Shared(b) => b,
        }
    }
}

impl From<Vec<u8>> for RegBuf {
    fn from(v: Vec<u8>) -> RegBuf {
        RegBuf::Owned(v.into_boxed_slice())
    }
}

impl From<Box<[u8]>> for RegBuf {
    fn from(v: Box<[u8]>) -> RegBuf {
        RegBuf::Owned(v)
    }
}

impl From<Buf> for RegBuf {
    fn from(v: Buf) -> RegBuf {
        RegBuf::Shared(v)
    }
}

impl fmt::Debug for RegBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            RegBuf::Owned(_) => "Owned",
            RegBuf::Shared(_) => "Shared",
        };
        f.debug_struct("RegBuf")
            .field("kind", &kind)
            .field("len", &self.as_bytes().len())
            .finish()
    }
}

/// One registered buffer's memory, reached through raw pointers only, so
/// that a `&mut` to one buffer never aliases a reference to the state.
enum Mem {
    /// From `Box::into_raw`; freed by `Drop` or given back by `into_buf`.
    Owned(NonNull<[u8]>),
    /// Kept alive (and immutable) by the `Buf`.
    Shared(Buf),
}

impl Mem {
    fn new(b: RegBuf) -> Mem {
        match b {
            RegBuf::Owned(b) => {
                let b = Box::leak(b);
                prefault(b);
                Mem::Owned(NonNull::from(b))
            }
            RegBuf::Shared(b) => Mem::Shared(b),
        }
    }

    fn ptr(&self) -> *mut u8 {
        match self {
            Mem::Owned(p) => p.as_ptr().cast(),
            Mem::Shared(b) => b.as_ptr().cast_mut(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Mem::Owned(p) => p.len(),
            Mem::Shared(b) => b.len(),
        }
    }

    fn into_buf(self) -> RegBuf {
        let me = ManuallyDrop::new(self);
        match &*me {
            // SAFETY: from `Box::leak` in `new`; `me` is not dropped, so
            // the box is rebuilt exactly once.
            Mem::Owned(p) => RegBuf::Owned(unsafe { Box::from_raw(p.as_ptr()) }),
            // SAFETY: moved out of `me`, which is never dropped or used again.
            Mem::Shared(b) => RegBuf::Shared(unsafe { std::ptr::read(b) }),
        }
    }
}

/// Writes every page of `b` (with the byte it holds), so that each is a
/// private page of this process before the module pins it. Fresh heap
/// memory (`vec![0; n]`, calloc) may be untouched, and a read-only pin of an
/// untouched page could pin the shared zero page, which later writes
/// through [`Registered::get_mut`] would then not reach.
fn prefault(b: &mut [u8]) {
    let page = 4096;
    let p = b.as_mut_ptr();
    let mut i = 0;
    while i < b.len() {
        // SAFETY: `i < len`; a volatile read and write of our own byte, so
        // the compiler cannot drop the write.
        unsafe {
            let q = p.add(i);
            q.write_volatile(q.read_volatile());
        }
        i += page;
    }
    if let Some(last) = b.last_mut() {
        // SAFETY: as above, for the last page when `len` is not a page
        // multiple past the last step.
        unsafe { std::ptr::write_volatile(last, std::ptr::read_volatile(last)) };
    }
}

impl Drop for Mem {
    fn drop(&mut self) {
        if let Mem::Owned(p) = self {
            // SAFETY: from `Box::leak`, dropped once.
            drop(unsafe { Box::from_raw(p.as_ptr()) });
        }
    }
}

/// The state shared by a [`Registered`] and its [`Fixed`] ranges.
pub(crate) struct RegState {
    /// The `/dev/zcsend` file the buffers are registered with.
    fd: Arc<OwnedFd>,
    mems: Vec<Mem>,
    /// Live `Fixed`s per buffer (in user code or held by in-flight sends).
    users: Box<[AtomicUsize]>,
    segments: usize,
    /// Registered with the module (cleared by a successful unregister).
    registered: bool,
}

// SAFETY: the memory is owned (or kept by a `Buf`, itself Send + Sync);
// shared access is read-only, and the only write access, `get_mut`, is
// exclusive by the `users` count (see there).
unsafe impl Send for RegState {}
// SAFETY: as above.
unsafe impl Sync for RegState {}

impl Drop for RegState {
    /// The last handle is gone, so no send from the buffers is in flight
    /// (each holds a `Fixed`): unregister, then free. If the module refuses,
    /// the memory is leaked, never freed under a registration.
    fn drop(&mut self) {
        if !self.registered {
            return;
        }
        // SAFETY: an argument-less ioctl on our own file.
        let r = unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                sys::ZCSEND_IOC_UNREGISTER_BUFFERS as _,
                0,
            )
        };
        if r < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::ENXIO) {
            std::mem::forget(std::mem::take(&mut self.mems));
        }
    }
}

/// Buffers registered with one [`Device`](crate::Device)
/// ([`Device::register`](crate::Device::register)): pinned once, sent from
/// by [`Fixed`] ranges without any per-send pinning.
///
/// The handle owns the memory. It is freed or handed back only once no send
/// from it can be in flight: [`Device::unregister`](crate::Device::unregister)
/// returns it when no [`Fixed`] exists any more (`EBUSY` otherwise), and
/// dropping the handle unregisters and frees it when the last `Fixed`
/// (possibly one held by an in-flight send, until its completion has been
/// read) is gone.
pub struct Registered {
    state: Arc<RegState>,
}

impl Registered {
    /// `ZCSEND_IOC_REGISTER_BUFFERS` on `fd`.
    pub(crate) fn register(
        fd: &Arc<OwnedFd>,
        bufs: Vec<RegBuf>,
    ) -> Result<Registered, RegisterError> {
        let mems: Vec<Mem> = bufs.into_iter().map(Mem::new).collect();
        let give_back = |error: io::Error, mems: Vec<Mem>| RegisterError {
            error,
            bufs: mems.into_iter().map(Mem::into_buf).collect(),
        };
        let Ok(nr) = u32::try_from(mems.len()) else {
            return Err(give_back(io::Error::from_raw_os_error(libc::EINVAL), mems));
        };
        let raw: Vec<sys::zcsend_buffer> = mems
            .iter()
            .map(|m| sys::zcsend_buffer {
                addr: m.ptr() as u64,
                len: m.len() as u64,
            })
            .collect();
        let mut req = sys::zcsend_register {
            bufs: raw.as_ptr() as u64,
            nr,
            flags: 0,
        };
        // SAFETY: a `struct zcsend_register` pointing at `nr` buffer
        // descriptors, which describe memory `mems` owns or keeps alive.
        let r = unsafe {
            libc::ioctl(
                fd.as_raw_fd(),
                sys::ZCSEND_IOC_REGISTER_BUFFERS as _,
                &mut req as *mut sys::zcsend_register,
            )
        };
        if r < 0 {
            return Err(give_back(io::Error::last_os_error(), mems));
        }
        Ok(Registered::from_parts(fd.clone(), mems, r as usize, true))
    }

    fn from_parts(
        fd: Arc<OwnedFd>,
        mems: Vec<Mem>,
        segments: usize,
        registered: bool,
    ) -> Registered {
        let users = mems.iter().map(|_| AtomicUsize::new(0)).collect();
        Registered {
            state: Arc::new(RegState {
                fd,
                mems,
                users,
                segments,
                registered,
            }),
        }
    }

    /// `ZCSEND_IOC_UNREGISTER_BUFFERS`, if nothing refers to the buffers.
    pub(crate) fn unregister(mut self) -> Result<Vec<RegBuf>, UnregisterError> {
        if Arc::get_mut(&mut self.state).is_none() {
            // A `Fixed` exists: in user code, or held by a send whose
            // completion has not been read.
            return Err(UnregisterError {
                error: io::Error::from_raw_os_error(libc::EBUSY),
                registered: self,
            });
        }
        if self.state.registered {
            // SAFETY: an argument-less ioctl on our own file.
            let r = unsafe {
                libc::ioctl(
                    self.state.fd.as_raw_fd(),
                    sys::ZCSEND_IOC_UNREGISTER_BUFFERS as _,
                    0,
                )
            };
            if r < 0 {
                return Err(UnregisterError {
                    error: io::Error::last_os_error(),
                    registered: self,
                });
            }
        }
        // Still unique: nothing could clone the state meanwhile (`self` is
        // ours and there is no `Fixed` to clone).
        let st = Arc::get_mut(&mut self.state).expect("registration shared");
        st.registered = false;
        Ok(std::mem::take(&mut st.mems)
            .into_iter()
            .map(Mem::into_buf)
            .collect())
    }

    /// Whether this registration belongs to the file `fd`.
    pub(crate) fn is_of(&self, fd: &Arc<OwnedFd>) -> bool {
        Arc::ptr_eq(&self.state.fd, fd)
    }

    /// Number of buffers (indexes `0..len()`).
    pub fn len(&self) -> usize {
        self.state.mems.len()
    }

    /// True when no buffer is registered (never, for a successful
    /// registration).
    pub fn is_empty(&self) -> bool {
        self.state.mems.is_empty()
    }

    /// Segments the module coalesced the buffers into (the ioctl's return
    /// value: runs of pages inside one folio, so a huge page counts one).
    pub fn segments(&self) -> usize {
        self.state.segments
    }

    /// The bytes of buffer `index`.
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        let m = self.state.mems.get(index)?;
        // SAFETY: `len` readable bytes; no `&mut` to them exists while
        // `self` is borrowed shared (`get_mut` takes `&mut self`).
        Some(unsafe { std::slice::from_raw_parts(m.ptr(), m.len()) })
    }

    /// The bytes of buffer `index`, writable: `Some` only for a
    /// [`RegBuf::Owned`] buffer of which no [`Fixed`] range exists, neither
    /// in user code nor held by a send whose completion has not been read
    /// (read completions first, e.g. with
    /// [`Device::wait_idle`](crate::Device::wait_idle)). Later sends from
    /// the buffer send the new bytes; nothing is pinned again.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut [u8]> {
        let st = &*self.state;
        let m = st.mems.get(index)?;
        let Mem::Owned(_) = m else { return None };
        // Acquire: pairs with the Release of the last `Fixed` dropped, so
        // every read through it (and the kernel's, which ended before its
        // completion was read) happens before our writes.
        if st.users[index].load(Ordering::Acquire) != 0 {
            return None;
        }
        // SAFETY: no `Fixed` of this buffer exists and none can be made
        // while `self` is borrowed mutably (`fixed` takes `&self`, and a
        // `Fixed` is only cloned or sliced from an existing one), so no
        // send from it is in flight and nothing else reads it. The memory
        // is a separate allocation reached by raw pointer, not part of
        // `RegState`, so this does not alias the `&RegState` others hold.
        Some(unsafe { std::slice::from_raw_parts_mut(m.ptr(), m.len()) })
    }

    /// Whether a [`Fixed`] range of buffer `index` exists (in user code or
    /// in flight).
    pub fn in_use(&self, index: usize) -> bool {
        self.state
            .users
            .get(index)
            .is_some_and(|u| u.load(Ordering::Acquire) != 0)
    }

    /// The bytes `range` of buffer `index`, to send with
    /// [`Device::send_fixed`](crate::Device::send_fixed) and friends.
    ///
    /// # Panics
    ///
    /// If `index` is not a buffer or the range is out of its bounds.
    pub fn fixed(&self, index: usize, range: impl RangeBounds<usize>) -> Fixed {
        let len = self
            .state
            .mems
            .get(index)
            .unwrap_or_else(|| panic!("Registered::fixed: no buffer {index}"))
            .len();
        let (start, end) = bounds(range, len, "Registered::fixed");
        Fixed::new(&self.state, index, start, end - start)
    }
}

impl fmt::Debug for Registered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registered")
            .field("buffers", &self.len())
            .field("segments", &self.segments())
            .field("fd", &self.state.fd.as_raw_fd())
            .finish()
    }
}

/// `start..end` of `range` within `0..len`, or a panic naming `what`.
fn bounds(range: impl RangeBounds<usize>, len: usize, what: &str) -> (usize, usize) {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.checked_add(1).expect("range start overflows"),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.checked_add(1).expect("range end overflows"),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => len,
    };
    assert!(
        start <= end && end <= len,
        "{what}: range {start}..{end} out of bounds for length {len}"
    );
    (start, end)
}

/// A range inside one registered buffer: what a `ZCSEND_SEND_FIXED` send
/// names (`struct zcsend_range`). Made by [`Registered::fixed`]; cheap to
/// clone.
///
/// While a `Fixed` exists its buffer cannot be written
/// ([`Registered::get_mut`] is `None`) or unregistered; a send keeps clones
/// of its `Fixed`s until its completion has been read.
pub struct Fixed {
    state: Arc<RegState>,
    index: usize,
    offset: usize,
    len: usize,
}

impl Fixed {
    fn new(state: &Arc<RegState>, index: usize, offset: usize, len: usize) -> Fixed {
        state.users[index].fetch_add(1, Ordering::Relaxed);
        Fixed {
            state: state.clone(),
            index,
            offset,
            len,
        }
    }

    /// Index of the registered buffer.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Offset inside that buffer.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty range.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The sub-range `range` (relative to this one).
    ///
    /// # Panics
    ///
    /// If the range is out of bounds.
    pub fn slice(&self, range: impl RangeBounds<usize>) -> Fixed {
        let (start, end) = bounds(range, self.len, "Fixed::slice");
        Fixed::new(&self.state, self.index, self.offset + start, end - start)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        let m = &self.state.mems[self.index];
        // SAFETY: inside the buffer (checked when made); while this
        // `Fixed` exists `get_mut` cannot hand out the buffer.
        unsafe { std::slice::from_raw_parts(m.ptr().add(self.offset), self.len) }
    }

    /// Whether this range is of a registration of the file `fd`.
    pub(crate) fn is_of(&self, fd: &Arc<OwnedFd>) -> bool {
        Arc::ptr_eq(&self.state.fd, fd)
    }

    /// Whether `self` and `other` name the same registered buffer.
    pub(crate) fn same_buffer(&self, other: &Fixed) -> bool {
        Arc::ptr_eq(&self.state, &other.state) && self.index == other.index
    }

    /// The `struct zcsend_range` for the module.
    pub(crate) fn raw(&self) -> sys::zcsend_range {
        sys::zcsend_range {
            buf_index: self.index as u32,
            reserved: 0,
            offset: self.offset as u64,
            len: self.len as u64,
        }
    }

    /// `(iov, iovcnt)` of a `ZCSEND_SEND_FIXED | ZCSEND_SEND_BUF` send of
    /// this range alone: `ZCSEND_FIXED_RANGE(index, offset)` and the length
    /// ([`inline_range`]); `None` if either does not fit (then the send
    /// names it in a `struct zcsend_range`).
    pub(crate) fn inline(&self) -> Option<(u64, u32)> {
        inline_range(self.index, self.offset, self.len)
    }
}

/// `ZCSEND_FIXED_RANGE(index, offset)` and `len` as a `u32`, or `None`
/// when one of them does not fit its 32 bits. Never the case for a range
/// of a registered buffer (at most `ZCSEND_MAX_BUFFER_LEN`, 1 GiB, long),
/// but a truncated offset would send other bytes, so it is checked.
pub(crate) fn inline_range(index: usize, offset: usize, len: usize) -> Option<(u64, u32)> {
    let index = u32::try_from(index).ok()?;
    let offset = u32::try_from(offset).ok()?;
    let len = u32::try_from(len).ok()?;
    Some((sys::zcsend_fixed_range(index, offset), len))
}

impl Clone for Fixed {
    fn clone(&self) -> Fixed {
        Fixed::new(&self.state, self.index, self.offset, self.len)
    }
}

impl Drop for Fixed {
    fn drop(&mut self) {
        // Release: our reads (and the send's) happen before a later
        // `get_mut` that sees the count at 0.
        self.state.users[self.index].fetch_sub(1, Ordering::Release);
    }
}

impl Deref for Fixed {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for Fixed {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fixed")
            .field("index", &self.index)
            .field("offset", &self.offset)
            .field("len", &self.len)
            .finish()
    }
}

/// A failed [`Device::register`](crate::Device::register): the error and
/// the buffers, given back. Converts into the [`io::Error`] (`?`).
pub struct RegisterError {
    error: io::Error,
    bufs: Vec<RegBuf>,
}

impl RegisterError {
    /// The error: `EBUSY` (buffers registered already), `EINVAL` (count,
    /// length), `EFAULT`, `ENOBUFS` (over `RLIMIT_MEMLOCK`).
    pub fn error(&self) -> &io::Error {
        &self.error
    }

    /// The buffers that were to be registered, in order.
    pub fn into_bufs(self) -> Vec<RegBuf> {
        self.bufs
    }

    /// Both.
    pub fn into_parts(self) -> (io::Error, Vec<RegBuf>) {
        (self.error, self.bufs)
    }
}

impl fmt::Debug for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisterError")
            .field("error", &self.error)
            .field("bufs", &self.bufs.len())
            .finish()
    }
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ZCSEND_IOC_REGISTER_BUFFERS: {}", self.error)
    }
}

impl std::error::Error for RegisterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl From<RegisterError> for io::Error {
    fn from(e: RegisterError) -> io::Error {
        e.error
    }
}

/// A refused [`Device::unregister`](crate::Device::unregister): the error
/// and the registration, still registered. Converts into the [`io::Error`]
/// (`?`), dropping the handle (which then unregisters when it can).
pub struct UnregisterError {
    error: io::Error,
    registered: Registered,
}

impl UnregisterError {
    /// The error: `EBUSY` while a [`Fixed`] of the registration exists (in
    /// user code, or held by a send whose completion has not been read), or
    /// the module's own refusal; `EINVAL` for a registration of another
    /// [`Device`](crate::Device).
    pub fn error(&self) -> &io::Error {
        &self.error
    }

    /// The registration, to try again later.
    pub fn into_registered(self) -> Registered {
        self.registered
    }

    /// Both.
    pub fn into_parts(self) -> (io::Error, Registered) {
        (self.error, self.registered)
    }
}

impl fmt::Debug for UnregisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnregisterError")
            .field("error", &self.error)
            .field("registered", &self.registered)
            .finish()
    }
}

impl fmt::Display for UnregisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ZCSEND_IOC_UNREGISTER_BUFFERS: {}", self.error)
    }
}

impl std::error::Error for UnregisterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl From<UnregisterError> for io::Error {
    fn from(e: UnregisterError) -> io::Error {
        e.error
    }
}

impl UnregisterError {
    pub(crate) fn new(error: io::Error, registered: Registered) -> UnregisterError {
        UnregisterError { error, registered }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A registration that the module never saw (so dropping it issues no
    /// ioctl), on `fd`.
    pub(crate) fn unregistered(fd: &Arc<OwnedFd>, bufs: Vec<RegBuf>) -> Registered {
        let mems: Vec<Mem> = bufs.into_iter().map(Mem::new).collect();
        Registered::from_parts(fd.clone(), mems, 0, false)
    }

    pub(crate) fn null_fd() -> Arc<OwnedFd> {
        Arc::new(std::fs::File::open("/dev/null").unwrap().into())
    }

    /// A range of `reg`'s buffer `index` that is not checked against the
    /// buffer, such as no registration can have (an offset past 4 GiB): to
    /// be encoded only, never read.
    pub(crate) fn fixed_unchecked(
        reg: &Registered,
        index: usize,
        offset: usize,
        len: usize,
    ) -> Fixed {
        Fixed::new(&reg.state, index, offset, len)
    }

    /// `ZCSEND_FIXED_RANGE(index, offset)` and the length, or `None` (the
    /// array form) rather than a truncated value.
    #[test]
    fn inline_range_packs_or_declines() {
        assert_eq!(inline_range(0, 0, 0), Some((0, 0)));
        assert_eq!(inline_range(2, 4096, 100), Some(((2 << 32) | 4096, 100)));
        let max = u32::MAX as usize;
        assert_eq!(
            inline_range(max, max, max),
            Some((u64::MAX, u32::MAX)),
            "32 bits each"
        );
        #[cfg(target_pointer_width = "64")]
        {
            assert_eq!(inline_range(0, 1 << 32, 1), None, "offset past 32 bits");
            assert_eq!(inline_range(0, 0, 1 << 32), None, "length past 32 bits");
            assert_eq!(inline_range(1 << 32, 0, 1), None, "index past 32 bits");
        }
        let reg = unregistered(
            &null_fd(),
            vec![vec![0u8; 16].into(), vec![0u8; 8192].into()],
        );
        let f = reg.fixed(1, 4000..5000);
        assert_eq!(f.inline(), Some(((1 << 32) | 4000, 1000)));
        assert_eq!(f.slice(10..20).inline(), Some(((1 << 32) | 4010, 10)));
        assert_eq!(reg.fixed(0, 16..).inline(), Some((16, 0)), "empty");
        #[cfg(target_pointer_width = "64")]
        assert_eq!(fixed_unchecked(&reg, 1, 1 << 32, 8).inline(), None);
    }

    #[test]
    fn fixed_ranges_and_bounds() {
        let fd = null_fd();
        let shared = Buf::from(b"shared bytes".to_vec());
        let reg = unregistered(
            &fd,
            vec![b"0123456789".to_vec().into(), shared.clone().into()],
        );
        assert_eq!(reg.len(), 2);
        assert_eq!(reg.get(0), Some(&b"0123456789"[..]));
        assert_eq!(reg.get(1), Some(&b"shared bytes"[..]));
        assert!(reg.get(2).is_none());
        let f = reg.fixed(0, 2..8);
        assert_eq!((f.index(), f.offset(), f.len()), (0, 2, 6));
        assert_eq!(&*f, b"234567");
        let g = f.slice(1..=2);
        assert_eq!((g.offset(), &*g), (3, &b"34"[..]));
        let r = g.raw();
        assert_eq!((r.buf_index, r.reserved, r.offset, r.len), (0, 0, 3, 2));
        assert!(f.same_buffer(&g) && !f.same_buffer(&reg.fixed(1, ..)));
        assert_eq!(&*reg.fixed(1, 7..), b"bytes");
        assert!(reg.fixed(1, 3..3).is_empty());
        // Shared bytes are registered where they are.
        assert_eq!(reg.fixed(1, ..).as_ptr(), shared.as_ptr());
        assert!(f.is_of(&fd) && !f.is_of(&null_fd()));
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn fixed_out_of_bounds() {
        let reg = unregistered(&null_fd(), vec![vec![0u8; 4].into()]);
        let _ = reg.fixed(0, 2..5);
    }

    #[test]
    #[should_panic(expected = "no buffer 1")]
    fn fixed_bad_index() {
        let reg = unregistered(&null_fd(), vec![vec![0u8; 4].into()]);
        let _ = reg.fixed(1, ..);
    }

    #[test]
    fn get_mut_only_without_ranges() {
        let mut reg = unregistered(
            &null_fd(),
            vec![
                vec![1u8; 8].into(),
                vec![2u8; 8].into(),
                Buf::from("ro").into(),
            ],
        );
        reg.get_mut(0).unwrap()[0] = 9;
        let f = reg.fixed(0, ..4);
        let g = f.clone();
        assert!(reg.in_use(0) && !reg.in_use(1));
        assert!(reg.get_mut(0).is_none(), "a range of buffer 0 exists");
        // Other buffers stay writable.
        reg.get_mut(1).unwrap()[7] = 3;
        drop(f);
        assert!(reg.get_mut(0).is_none(), "its clone still exists");
        let h = g.slice(1..);
        drop(g);
        assert!(reg.get_mut(0).is_none(), "a slice of it still exists");
        assert_eq!(&*h, &[1, 1, 1]);
        drop(h);
        assert!(!reg.in_use(0));
        assert_eq!(reg.get_mut(0).unwrap()[..2], [9, 1]);
        // Shared buffers are never writable.
        assert!(reg.get_mut(2).is_none());
        assert!(reg.get_mut(3).is_none());
        assert_eq!(reg.get(1).unwrap()[7], 3);
    }

    #[test]
    fn unregister_refused_while_a_range_exists() {
        let fd = null_fd();
        let reg = unregistered(&fd, vec![vec![5u8; 16].into()]);
        let f = reg.fixed(0, ..);
        let e = reg.unregister().unwrap_err();
        assert_eq!(e.error().raw_os_error(), Some(libc::EBUSY));
        let reg = e.into_registered();
        drop(f);
        // Never registered with a module: nothing to ask, the memory comes back.
        let back = reg.unregister().unwrap();
        assert_eq!(back.len(), 1);
        match &back[0] {
            RegBuf::Owned(b) => assert_eq!(&b[..], &[5u8; 16]),
            RegBuf::Shared(_) => panic!("owned buffer came back shared"),
        }
    }

    #[test]
    fn register_failure_gives_the_buffers_back() {
        let fd = null_fd();
        let mine = Arc::new(vec![7u8; 64]);
        let r = Registered::register(
            &fd,
            vec![Buf::from_arc(mine.clone()).into(), vec![1u8, 2, 3].into()],
        );
        let e = r.unwrap_err();
        assert_eq!(e.error().raw_os_error(), Some(libc::ENOTTY));
        let bufs = e.into_bufs();
        assert_eq!(bufs.len(), 2);
        assert_eq!(bufs[1].as_bytes(), &[1, 2, 3]);
        assert!(format!("{:?}", bufs[0]).contains("Shared"));
        drop(bufs);
        assert_eq!(Arc::strong_count(&mine), 1);
        // Into io::Error for `?`.
        let e = Registered::register(&fd, vec![RegBuf::from(vec![0u8; 1])]).unwrap_err();
        assert_eq!(io::Error::from(e).raw_os_error(), Some(libc::ENOTTY));
    }

    #[test]
    fn registration_outlives_handle_through_ranges() {
        let mine = Arc::new(vec![4u8; 32]);
        let reg = unregistered(&null_fd(), vec![Buf::from_arc(mine.clone()).into()]);
        let f = reg.fixed(0, 8..16);
        drop(reg);
        // The range keeps the memory alive and unchanged.
        assert_eq!(&*f, &[4u8; 8]);
        assert_eq!(Arc::strong_count(&mine), 2);
        drop(f);
        assert_eq!(Arc::strong_count(&mine), 1);
    }
}
