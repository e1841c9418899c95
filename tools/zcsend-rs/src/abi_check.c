// SPDX-License-Identifier: GPL-2.0
/*
 * What the C compiler makes of include/uapi/linux/zcsend.h: the ioctl
 * numbers (function-like macros bindgen cannot evaluate) and the layout of
 * the structs. The unit tests in src/sys.rs compare these with the Rust
 * side, which computes the numbers itself and takes the structs from
 * bindgen. Only the tests refer to these symbols.
 */
#include <stddef.h>
#include <linux/zcsend.h>

const unsigned int zcsend_c_ioc_version = ZCSEND_IOC_VERSION;
const unsigned int zcsend_c_ioc_send = ZCSEND_IOC_SEND;
const unsigned int zcsend_c_ioc_set_eventfd = ZCSEND_IOC_SET_EVENTFD;
const unsigned int zcsend_c_ioc_stats = ZCSEND_IOC_STATS;
const unsigned int zcsend_c_ioc_register_buffers = ZCSEND_IOC_REGISTER_BUFFERS;
const unsigned int zcsend_c_ioc_unregister_buffers = ZCSEND_IOC_UNREGISTER_BUFFERS;
const unsigned int zcsend_c_ioc_submit = ZCSEND_IOC_SUBMIT;
const unsigned int zcsend_c_ioc_fanout = ZCSEND_IOC_FANOUT;
const unsigned int zcsend_c_ioc_register_sockets = ZCSEND_IOC_REGISTER_SOCKETS;
const unsigned int zcsend_c_ioc_unregister_sockets = ZCSEND_IOC_UNREGISTER_SOCKETS;
const unsigned int zcsend_c_ioc_features = ZCSEND_IOC_FEATURES;

/* { sizeof, alignof, then the offset of every member in declaration order } */
const unsigned long zcsend_c_send_layout[] = {
	sizeof(struct zcsend_send), _Alignof(struct zcsend_send),
	offsetof(struct zcsend_send, fd),
	offsetof(struct zcsend_send, flags),
	offsetof(struct zcsend_send, iov),
	offsetof(struct zcsend_send, iovcnt),
	offsetof(struct zcsend_send, addrlen),
	offsetof(struct zcsend_send, addr),
	offsetof(struct zcsend_send, user_data),
};

const unsigned long zcsend_c_completion_layout[] = {
	sizeof(struct zcsend_completion), _Alignof(struct zcsend_completion),
	offsetof(struct zcsend_completion, user_data),
	offsetof(struct zcsend_completion, bytes),
	offsetof(struct zcsend_completion, flags),
	offsetof(struct zcsend_completion, result),
};

const unsigned long zcsend_c_stats_layout[] = {
	sizeof(struct zcsend_stats), _Alignof(struct zcsend_stats),
	offsetof(struct zcsend_stats, sends),
	offsetof(struct zcsend_stats, inflight),
	offsetof(struct zcsend_stats, pinned_pages),
	offsetof(struct zcsend_stats, zerocopy),
	offsetof(struct zcsend_stats, copied),
	offsetof(struct zcsend_stats, queued),
	offsetof(struct zcsend_stats, copy_threshold),
	offsetof(struct zcsend_stats, linked),
};

const unsigned long zcsend_c_range_layout[] = {
	sizeof(struct zcsend_range), _Alignof(struct zcsend_range),
	offsetof(struct zcsend_range, buf_index),
	offsetof(struct zcsend_range, reserved),
	offsetof(struct zcsend_range, offset),
	offsetof(struct zcsend_range, len),
};

const unsigned long zcsend_c_buffer_layout[] = {
	sizeof(struct zcsend_buffer), _Alignof(struct zcsend_buffer),
	offsetof(struct zcsend_buffer, addr),
	offsetof(struct zcsend_buffer, len),
};

const unsigned long zcsend_c_register_layout[] = {
	sizeof(struct zcsend_register), _Alignof(struct zcsend_register),
	offsetof(struct zcsend_register, bufs),
	offsetof(struct zcsend_register, nr),
	offsetof(struct zcsend_register, flags),
};

const unsigned long zcsend_c_register_sockets_layout[] = {
	sizeof(struct zcsend_register_sockets), _Alignof(struct zcsend_register_sockets),
	offsetof(struct zcsend_register_sockets, fds),
	offsetof(struct zcsend_register_sockets, nr),
	offsetof(struct zcsend_register_sockets, flags),
};

const unsigned long zcsend_c_submit_layout[] = {
	sizeof(struct zcsend_submit), _Alignof(struct zcsend_submit),
	offsetof(struct zcsend_submit, sends),
	offsetof(struct zcsend_submit, nr),
	offsetof(struct zcsend_submit, flags),
};

const unsigned long zcsend_c_dest_layout[] = {
	sizeof(struct zcsend_dest), _Alignof(struct zcsend_dest),
	offsetof(struct zcsend_dest, fd),
	offsetof(struct zcsend_dest, addrlen),
	offsetof(struct zcsend_dest, addr),
	offsetof(struct zcsend_dest, result),
};

const unsigned long zcsend_c_fanout_layout[] = {
	sizeof(struct zcsend_fanout), _Alignof(struct zcsend_fanout),
	offsetof(struct zcsend_fanout, flags),
	offsetof(struct zcsend_fanout, iovcnt),
	offsetof(struct zcsend_fanout, iov),
	offsetof(struct zcsend_fanout, dests),
	offsetof(struct zcsend_fanout, nr),
	offsetof(struct zcsend_fanout, resv),
	offsetof(struct zcsend_fanout, user_data),
};

const unsigned long zcsend_c_ring_hdr_layout[] = {
	sizeof(struct zcsend_ring_hdr), _Alignof(struct zcsend_ring_hdr),
	offsetof(struct zcsend_ring_hdr, head),
	offsetof(struct zcsend_ring_hdr, resv0),
	offsetof(struct zcsend_ring_hdr, entries),
	offsetof(struct zcsend_ring_hdr, mask),
	offsetof(struct zcsend_ring_hdr, slots_offset),
	offsetof(struct zcsend_ring_hdr, wakeup),
	offsetof(struct zcsend_ring_hdr, resv2),
	offsetof(struct zcsend_ring_hdr, resv1),
};

const unsigned long zcsend_c_ring_slot_layout[] = {
	sizeof(struct zcsend_ring_slot), _Alignof(struct zcsend_ring_slot),
	offsetof(struct zcsend_ring_slot, seq),
	offsetof(struct zcsend_ring_slot, rec),
};

/*
 * ZCSEND_FIXED_RANGE(index, offset), the iov of a ZCSEND_SEND_FIXED |
 * ZCSEND_SEND_BUF send, over these { index, offset } pairs.
 */
#define ZCSEND_C_FIXED_RANGE_ARGS(X) \
	X(0, 0) \
	X(1, 4096) \
	X(7, 0x3fffffff) \
	X(255, 0x40000000) \
	X(0x12345678, 0x9abcdef0) \
	X(0xffffffff, 0xffffffff)
#define ZCSEND_C_ARGS(i, o) { i, o },
#define ZCSEND_C_RANGE(i, o) ZCSEND_FIXED_RANGE(i, o),
const unsigned int zcsend_c_fixed_range_args[][2] = {
	ZCSEND_C_FIXED_RANGE_ARGS(ZCSEND_C_ARGS)
};
const unsigned long long zcsend_c_fixed_range[] = {
	ZCSEND_C_FIXED_RANGE_ARGS(ZCSEND_C_RANGE)
};
/* src/sys.rs declares 6 of each. */
_Static_assert(sizeof(zcsend_c_fixed_range) / sizeof(zcsend_c_fixed_range[0]) == 6,
	       "update the Rust declaration of zcsend_c_fixed_range");

/* The 64-bit constants (ULL in the header). */
const unsigned long long zcsend_c_consts64[] = {
	ZCSEND_RING_OFF_HDR,
	ZCSEND_RING_OFF_SLOTS,
	ZCSEND_MAX_BUFFER_LEN,
	ZCSEND_FEAT_SEND_BUF,
	ZCSEND_FEAT_FIXED_BUFFERS,
	ZCSEND_FEAT_FIXED_INLINE,
	ZCSEND_FEAT_FIXED_SOCKETS,
	ZCSEND_FEAT_SUBMIT,
	ZCSEND_FEAT_FANOUT,
	ZCSEND_FEAT_FANOUT_STABLE,
	ZCSEND_FEAT_RING_MMAP,
};
/* src/sys.rs declares 11. */
_Static_assert(sizeof(zcsend_c_consts64) / sizeof(zcsend_c_consts64[0]) == 11,
	       "update the Rust declaration of zcsend_c_consts64");

const unsigned int zcsend_c_consts[] = {
	ZCSEND_ABI_VERSION,
	ZCSEND_IOC_MAGIC,
	ZCSEND_COMPL_ZEROCOPY,
	ZCSEND_COMPL_COPIED,
	ZCSEND_COMPL_COPY_PATH,
	ZCSEND_COMPL_FANOUT,
	ZCSEND_COMPL_STABLE,
	ZCSEND_SEND_FIXED,
	ZCSEND_SEND_BUF,
	ZCSEND_FANOUT_STABLE,
	ZCSEND_MAX_FANOUT,
	ZCSEND_MAX_BATCH,
	ZCSEND_MAX_BUFFERS,
	ZCSEND_MAX_COMPLETIONS,
	ZCSEND_MAX_PINNED_PAGES,
	ZCSEND_WAKEUP_ON_REQUEST,
	ZCSEND_WAKEUP_ARMED,
	ZCSEND_SEND_FIXED_SOCKET,
	ZCSEND_MAX_SOCKETS,
};
