// SPDX-License-Identifier: GPL-2.0

//! Atomics that compile to the instruction they stand for, for the send and
//! completion paths.
//!
//! One of the abstraction files that hold zcsend's `unsafe` code (listed in
//! `zcsend_main.rs`).
//!
//! 7.2's `kernel::sync::atomic::Atomic` performs every operation, a relaxed
//! load included, by calling a C helper out of line
//! (`rust_helper_atomic64_read()`...), unless the kernel is built with
//! `CONFIG_RUST_INLINE_HELPERS`, which needs rustc and clang on the same
//! LLVM (not so here: 22 and 19). A zero-copy send made ~35 such calls, and
//! under QEMU TCG a call into another page and its return cost far more
//! than the access itself (`tools/bench/README.rst`, "Instruction
//! profile"). This is the same interface (`Atomic<T>` with the kernel's
//! ordering markers, for the types the module uses) over the instructions
//! themselves: `core::sync::atomic`'s on x86-64 and arm64 are the ones the
//! kernel's C atomics use (a plain `mov` for a relaxed load or store,
//! `lock`-prefixed for read-modify-write; `ldar`/`stlr` and LSE or LL/SC
//! on arm64), ordering mapped one to one (`Full` to sequentially consistent
//! read-modify-write, which is fully ordered as LKMM's is).
//!
//! The kernel's crate asks Rust code to use its LKMM atomics; a kernel with
//! `CONFIG_RUST_INLINE_HELPERS` makes them as cheap, and the `Atomic` here
//! then becomes a re-export of the kernel's (its users need no change), as
//! `smp_mb()` becomes `kernel::sync::barrier::smp_mb()`.

use core::cell::UnsafeCell;
use core::sync::atomic::{
    AtomicBool,
    AtomicI32,
    AtomicI64,
    AtomicPtr,
    AtomicU32,
    AtomicU64,
    Ordering as Order, //
};

use kernel::sync::atomic::ordering::{
    AcquireOrRelaxed,
    Ordering,
    OrderingType,
    ReleaseOrRelaxed, //
};

/// The `core` ordering of a read-modify-write with LKMM ordering `O`.
const fn rmw<O: Ordering>() -> Order {
    match O::TYPE {
        OrderingType::Relaxed => Order::Relaxed,
        OrderingType::Acquire => Order::Acquire,
        OrderingType::Release => Order::Release,
        OrderingType::Full => Order::SeqCst,
    }
}

/// The `core` ordering of a load (relaxed or acquire) or a store (relaxed
/// or release) with LKMM ordering `O`.
const fn plain<O: Ordering>() -> Order {
    match O::TYPE {
        OrderingType::Acquire => Order::Acquire,
        OrderingType::Release => Order::Release,
        _ => Order::Relaxed,
    }
}

/// A value of type `T` accessed only atomically.
///
/// # Invariants
///
/// Every access to the cell's value is an atomic operation of the `core`
/// atomic type of the same size and alignment as `T` (`impl_atomic!`).
#[repr(transparent)]
pub(crate) struct Atomic<T>(UnsafeCell<T>);

/// The types an [`Atomic`] can hold: those `impl_atomic!` gives operations.
pub(crate) trait Value: private::Sealed {}

mod private {
    pub(crate) trait Sealed {}
}

// SAFETY: all accesses are atomic (type invariant), and the values
// (integers, `bool`, raw pointers as addresses, as `AtomicPtr` holds them)
// carry no ownership.
unsafe impl<T: Value> Send for Atomic<T> {}
// SAFETY: as above: shared access only performs atomic operations.
unsafe impl<T: Value> Sync for Atomic<T> {}

impl<T: Value> Atomic<T> {
    /// A new atomic holding `v`.
    pub(crate) const fn new(v: T) -> Self {
        Self(UnsafeCell::new(v))
    }

    /// An atomic view of the value at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` is valid and aligned for `'a`, and every access to it during
    /// `'a`, from Rust, C or user space, is atomic.
    pub(crate) unsafe fn from_ptr<'a>(ptr: *mut T) -> &'a Self {
        // SAFETY: `Atomic<T>` is a transparent `UnsafeCell<T>`; validity and
        // atomic-only access are the caller's (type invariant).
        unsafe { &*ptr.cast::<Self>() }
    }
}

/// The operations of `Atomic<$t>`, through `$core` (same size and
/// alignment as `$t`, checked at compile time).
macro_rules! impl_atomic {
    ($t:ty, $core:ty $(, $param:ident)?) => {
        impl$(<$param>)? private::Sealed for $t {}
        impl$(<$param>)? Value for $t {}

        impl$(<$param>)? Atomic<$t> {
            #[inline]
            fn core(&self) -> &$core {
                const {
                    assert!(
                        core::mem::size_of::<$t>() == core::mem::size_of::<$core>()
                            && core::mem::align_of::<$t>() == core::mem::align_of::<$core>()
                    )
                };
                // SAFETY: the cell is valid, aligned for `$core` (same size
                // and alignment, checked above) and only ever accessed
                // atomically (type invariant), as `from_ptr` requires.
                unsafe { <$core>::from_ptr(self.0.get()) }
            }

            #[inline]
            #[allow(dead_code)]
            pub(crate) fn load<O: AcquireOrRelaxed>(&self, _: O) -> $t {
                self.core().load(plain::<O>())
            }

            #[inline]
            #[allow(dead_code)]
            pub(crate) fn store<O: ReleaseOrRelaxed>(&self, v: $t, _: O) {
                self.core().store(v, plain::<O>())
            }

            #[inline]
            #[allow(dead_code)]
            pub(crate) fn xchg<O: Ordering>(&self, v: $t, _: O) -> $t {
                self.core().swap(v, rmw::<O>())
            }

            /// Replaces `old` by `new`: `Ok(old)`, or `Err(current)` if the
            /// value was not `old`.
            #[inline]
            #[allow(dead_code)]
            pub(crate) fn cmpxchg<O: Ordering>(&self, old: $t, new: $t, _: O) -> Result<$t, $t> {
                // A failed exchange has no ordering of its own (LKMM's
                // failed cmpxchg is a relaxed read).
                self.core().compare_exchange(old, new, rmw::<O>(), Order::Relaxed)
            }
        }
    };
}

/// Arithmetic of `Atomic<$t>`.
macro_rules! impl_arith {
    ($t:ty) => {
        impl Atomic<$t> {
            /// Adds `v` (wrapping); returns the old value.
            #[inline]
            pub(crate) fn fetch_add<O: Ordering>(&self, v: $t, _: O) -> $t {
                self.core().fetch_add(v, rmw::<O>())
            }

            /// Subtracts `v` (wrapping); returns the old value.
            #[inline]
            pub(crate) fn fetch_sub<O: Ordering>(&self, v: $t, _: O) -> $t {
                self.core().fetch_sub(v, rmw::<O>())
            }
        }
    };
}

impl_atomic!(u64, AtomicU64);
impl_atomic!(u32, AtomicU32);
impl_atomic!(i32, AtomicI32);
impl_atomic!(i64, AtomicI64);
impl_atomic!(bool, AtomicBool);
impl_atomic!(*mut P, AtomicPtr<P>, P);
impl_arith!(u64);
impl_arith!(i32);

/// A full memory barrier (`smp_mb()`): orders every access before it against
/// every access after it, on any CPU (a fence: `mfence` on x86-64, `dmb ish`
/// on arm64; the kernel's is a call to a C helper).
#[inline]
pub(crate) fn smp_mb() {
    core::sync::atomic::fence(Order::SeqCst);
}

/// An acquire fence (`smp_acquire__after_ctrl_dep()` after a read that
/// decided to go on): later accesses are ordered after earlier reads.
#[inline]
pub(crate) fn acquire_fence() {
    core::sync::atomic::fence(Order::Acquire);
}

pub(crate) use kernel::sync::atomic::{
    Acquire,
    Relaxed,
    Release, //
};
