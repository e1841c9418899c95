// SPDX-License-Identifier: GPL-2.0

//! Module ownership of `/dev/zcsend`'s open files.
//!
//! A workaround for a known hole in 7.2's kernel crate: `MiscDeviceOptions`
//! leaves `file_operations.owner` unset (Rust-for-Linux issue 1182). Delete
//! this file, and the `own_fops`/`file_holds_module` calls in
//! `zcsend_main.rs`, once the kernel crate sets `owner` itself.
//!
//! 7.2's `MiscDeviceRegistration` builds its `file_operations` without an
//! `owner`, so an open file does not hold a reference on the module: `rmmod`
//! would succeed with `/dev/zcsend` open and the later `close()` would call
//! freed code. [`own_fops`] gives the registered device a copy of those
//! operations with `owner` set to this module, so the VFS takes (and, after
//! `release`, drops) the module reference for every open file, as it does
//! for C drivers. [`file_holds_module`] lets `open` refuse the rare file
//! opened in the instant before the swap, which would hold no reference.

use core::ptr;

use crate::ffi::zcsend_publish_fops;
use kernel::bindings;
use kernel::fs::File;
use kernel::miscdevice::{
    MiscDevice,
    MiscDeviceRegistration, //
};
use kernel::sync::atomic::{
    Atomic,
    Relaxed, //
};
use kernel::types::Opaque;

struct Fops(Opaque<bindings::file_operations>);
// SAFETY: written once by `own_fops` (guarded by `OWNED`), before it is
// published to the misc core; read-only afterwards.
unsafe impl Sync for Fops {}

static FOPS: Fops = Fops(Opaque::uninit());

/// Set by the one call of [`own_fops`] that fills `FOPS`.
static OWNED: Atomic<bool> = Atomic::new(false);

/// Points `reg`'s device at a copy of its file operations owned by this
/// module. Meant for module init, right after registration; only the first
/// call does anything (a second would rewrite a table `misc_open` may be
/// reading), so calling it again is harmless.
pub(crate) fn own_fops<T: MiscDevice>(reg: &MiscDeviceRegistration<T>) {
    if OWNED.xchg(true, Relaxed) {
        return;
    }
    let misc = reg.as_raw();
    let fops = FOPS.0.get();
    // SAFETY: `misc` is our registered miscdevice; its `fops` points at the
    // kernel crate's static table. `FOPS` is written only here, before the
    // pointer to it is published with a release store: `misc_open` (which
    // may run concurrently, the node is live) reads the pointer and then
    // the table through it, a dependent load, so it sees the filled table.
    unsafe {
        ptr::write(fops, ptr::read((*misc).fops));
        (*fops).owner = crate::THIS_MODULE.as_ptr();
        zcsend_publish_fops(misc, fops.cast_const());
    }
}

/// Whether `file` was opened through the owned operations (and so holds a
/// module reference until its last `fput`).
pub(crate) fn file_holds_module(file: &File) -> bool {
    // SAFETY: `file` is live; `f_op` is set before `open` is called and not
    // changed while it runs.
    unsafe { (*file.as_ptr()).f_op == FOPS.0.get().cast_const() }
}
