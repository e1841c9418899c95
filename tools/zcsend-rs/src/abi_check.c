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

const unsigned int zcsend_c_consts[] = {
	ZCSEND_ABI_VERSION,
	ZCSEND_IOC_MAGIC,
	ZCSEND_COMPL_ZEROCOPY,
	ZCSEND_COMPL_COPIED,
	ZCSEND_COMPL_COPY_PATH,
};
