/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * zcsend: zero-copy socket send through /dev/zcsend.
 *
 * An application hands the module a socket and a list of buffers with
 * ZCSEND_IOC_SEND. The module pins the pages, sends them as skb frags and,
 * once the network stack has released every skb that referenced them, posts
 * one struct zcsend_completion to the file it was sent through. Completions
 * are read with read(2); an eventfd registered with ZCSEND_IOC_SET_EVENTFD is
 * signalled for each one (or only when armed: ZCSEND_WAKEUP_ON_REQUEST), so
 * poll(2)/epoll(7) work on that eventfd.
 *
 * See Documentation/zcsend.rst.
 */
#ifndef _UAPI_LINUX_ZCSEND_H
#define _UAPI_LINUX_ZCSEND_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* ABI version returned by ZCSEND_IOC_VERSION. */
#define ZCSEND_ABI_VERSION	1

#define ZCSEND_DEVICE		"/dev/zcsend"

/**
 * struct zcsend_send - argument of ZCSEND_IOC_SEND
 * @fd:        socket to send on (TCP or UDP, IPv4 or IPv6)
 * @flags:     MSG_* flags passed to the socket: MSG_DONTWAIT, MSG_MORE,
 *             MSG_NOSIGNAL, MSG_EOR, MSG_CONFIRM, MSG_DONTROUTE
 * @iov:       user pointer to an array of struct iovec (ZCSEND_SEND_BUF:
 *             the bytes' address; ZCSEND_SEND_FIXED: to an array of struct
 *             zcsend_range; both: ZCSEND_FIXED_RANGE(index, offset))
 * @iovcnt:    number of entries in @iov, 1 to UIO_MAXIOV (1024)
 *             (ZCSEND_SEND_BUF: the bytes' length, with ZCSEND_SEND_FIXED
 *             too the range's)
 * @addrlen:   size of *@addr, 0 when there is no destination address
 * @addr:      user pointer to a struct sockaddr_in or sockaddr_in6, or 0
 * @user_data: opaque value returned in the completion record
 *
 * All pointers are carried as __u64 so that 32-bit processes use the same
 * layout.
 */
struct zcsend_send {
	__s32 fd;
	__u32 flags;
	__u64 iov;
	__u32 iovcnt;
	__u32 addrlen;
	__u64 addr;
	__u64 user_data;
};

/*
 * ZCSEND_SEND_BUF in zcsend_send.flags: one buffer, named in the request
 * itself as send(2) names it: @iov is its address and @iovcnt its length in
 * bytes (0 to 0x7ffff000), instead of an iovec array to read.
 *
 * With ZCSEND_SEND_FIXED: one range of a registered buffer, named in the
 * request itself (no struct zcsend_range to read): @iov is
 * ZCSEND_FIXED_RANGE(buffer index, byte offset in that buffer) and @iovcnt
 * the range's length in bytes; checked as a struct zcsend_range is.
 */
#define ZCSEND_SEND_BUF		(1U << 28)

/*
 * @iov of a ZCSEND_SEND_FIXED | ZCSEND_SEND_BUF send: registered buffer
 * @index (high 32 bits), byte @offset in it (low 32 bits: a registered
 * buffer is at most ZCSEND_MAX_BUFFER_LEN bytes). @offset must be below
 * 2^32: the macro keeps only its low 32 bits (a larger one would name
 * another offset, not fail); name such a range with a struct zcsend_range.
 */
#define ZCSEND_FIXED_RANGE(index, offset) \
	(((__u64)(__u32)(index) << 32) | (__u32)(offset))

/*
 * ZCSEND_SEND_FIXED_SOCKET in zcsend_send.flags (in zcsend_fanout.flags: for
 * every destination): @fd is an index into the sockets registered with
 * ZCSEND_IOC_REGISTER_SOCKETS, not a descriptor: the send looks up no
 * descriptor. EBADF for an index past the table, ENXIO if none are
 * registered.
 */
#define ZCSEND_SEND_FIXED_SOCKET	(1U << 24)

/*
 * ZCSEND_SEND_FIXED in zcsend_send.flags: @iov points to @iovcnt struct
 * zcsend_range, ranges inside one buffer registered with
 * ZCSEND_IOC_REGISTER_BUFFERS, instead of struct iovec. Nothing is pinned or
 * charged per send.
 */
#define ZCSEND_SEND_FIXED	(1U << 31)

/**
 * struct zcsend_range - one piece of a ZCSEND_SEND_FIXED send
 * @buf_index: index of the registered buffer (the same in every range of
 *             one send)
 * @reserved:  must be 0
 * @offset:    byte offset inside that buffer
 * @len:       bytes; @offset + @len must not exceed the buffer's length
 */
struct zcsend_range {
	__u32 buf_index;
	__u32 reserved;
	__u64 offset;
	__u64 len;
};

/**
 * struct zcsend_buffer - one user range to register
 * @addr: start address (any alignment)
 * @len:  bytes, 1 to ZCSEND_MAX_BUFFER_LEN
 */
struct zcsend_buffer {
	__u64 addr;
	__u64 len;
};

/**
 * struct zcsend_register - argument of ZCSEND_IOC_REGISTER_BUFFERS
 * @bufs:  user pointer to @nr struct zcsend_buffer
 * @nr:    1 to ZCSEND_MAX_BUFFERS
 * @flags: must be 0
 */
struct zcsend_register {
	__u64 bufs;
	__u32 nr;
	__u32 flags;
};

/**
 * struct zcsend_register_sockets - argument of ZCSEND_IOC_REGISTER_SOCKETS
 * @fds:   user pointer to @nr __s32 socket descriptors (TCP or UDP, IPv4 or
 *         IPv6), each socket at most once
 * @nr:    1 to ZCSEND_MAX_SOCKETS
 * @flags: must be 0
 */
struct zcsend_register_sockets {
	__u64 fds;
	__u32 nr;
	__u32 flags;
};

#define ZCSEND_MAX_SOCKETS	1024

/**
 * struct zcsend_submit - argument of ZCSEND_IOC_SUBMIT
 * @sends: user pointer to @nr struct zcsend_send (plain or ZCSEND_SEND_FIXED),
 *         or with ZCSEND_SUBMIT_FANOUT to @nr struct zcsend_fanout
 * @nr:    1 to ZCSEND_MAX_BATCH
 * @flags: 0 or ZCSEND_SUBMIT_FANOUT
 */
struct zcsend_submit {
	__u64 sends;
	__u32 nr;
	__u32 flags;
};

#define ZCSEND_MAX_BATCH	256

/*
 * ZCSEND_SUBMIT_FANOUT in zcsend_submit.flags: @sends holds fan-outs, each
 * handled as ZCSEND_IOC_FANOUT would (its results written to its own dests
 * array, one record each), in order, with SUBMIT's return convention: many
 * payloads to many sockets in one system call.
 */
#define ZCSEND_SUBMIT_FANOUT	(1U << 0)

/**
 * struct zcsend_dest - one destination of ZCSEND_IOC_FANOUT
 * @fd:      socket (TCP or UDP, IPv4 or IPv6); each socket at most once
 * @addrlen: size of *@addr, 0 when there is no destination address
 * @addr:    user pointer to a struct sockaddr_in or sockaddr_in6, or 0
 * @result:  written back: bytes this socket accepted, or a negative errno
 */
struct zcsend_dest {
	__s32 fd;
	__u32 addrlen;
	__u64 addr;
	__s64 result;
};

/**
 * struct zcsend_fanout - argument of ZCSEND_IOC_FANOUT
 * @flags:     MSG_* flags as in struct zcsend_send, plus ZCSEND_SEND_FIXED
 *             (@iov holds struct zcsend_range) or ZCSEND_FANOUT_STABLE, and
 *             ZCSEND_SEND_FIXED_SOCKET (every zcsend_dest.fd is an index)
 * @iovcnt:    entries at @iov, 1 to UIO_MAXIOV
 * @iov:       user pointer to struct iovec (or struct zcsend_range)
 * @dests:     user pointer to @nr struct zcsend_dest
 * @nr:        1 to ZCSEND_MAX_FANOUT
 * @resv:      must be 0
 * @user_data: returned in the one completion record
 *
 * One payload to @nr sockets: pinned once (not at all from a registered
 * buffer), every skb on every socket carries the same notifier, and one
 * record (flag ZCSEND_COMPL_FANOUT) is posted once every skb on every
 * socket has released it. Its @bytes is the sum accepted over all
 * destinations; it says ZEROCOPY only if no destination copied.
 */
struct zcsend_fanout {
	__u32 flags;
	__u32 iovcnt;
	__u64 iov;
	__u64 dests;
	__u32 nr;
	__u32 resv;
	__u64 user_data;
};

/*
 * ZCSEND_FANOUT_STABLE in zcsend_fanout.flags: the module copies the payload
 * once into pages of its own (charged to RLIMIT_MEMLOCK as pinned pages
 * are) and sends those: every destination gets the same bytes, and the
 * caller's buffer is free for reuse as soon as the ioctl returns. The
 * completion (flag ZCSEND_COMPL_STABLE) says when the module's copy was
 * released. Not with ZCSEND_SEND_FIXED.
 */
#define ZCSEND_FANOUT_STABLE	(1U << 30)

#define ZCSEND_MAX_FANOUT	1024

#define ZCSEND_MAX_BUFFERS	1024
#define ZCSEND_MAX_BUFFER_LEN	(1ULL << 30)

/*
 * Completion flags: exactly one of ZEROCOPY and COPIED is set.
 * See "What COPIED means" in Documentation/zcsend.rst for the exact promise.
 */
/*
 * The application's pages were attached as frags and no skb carrying them
 * reported a copy. Copies the stack makes without reporting them (device or
 * qdisc linearisation, software segmentation, TCP MTU probes) are not seen.
 */
#define ZCSEND_COMPL_ZEROCOPY	(1U << 0)
/* At least part of the data was copied by the stack (or never pinned). */
#define ZCSEND_COMPL_COPIED	(1U << 1)
/*
 * The send took the plain copy path: it was below the copy threshold, a UDP
 * datagram whose buffers need more than MAX_SKB_FRAGS (17) frags, a socket
 * that cannot carry user pages (kTLS, sockmap: no SOCK_SUPPORT_ZC), or a TCP
 * socket not yet established (Fast Open data rides in the SYN, copied), or a
 * connected socket routed out a loopback device (local delivery copies every
 * frag anyway; module parameter local_copy=0 pins them regardless).
 */
#define ZCSEND_COMPL_COPY_PATH	(1U << 2)
/* The record of a ZCSEND_IOC_FANOUT: @bytes is summed over destinations. */
#define ZCSEND_COMPL_FANOUT	(1U << 3)
/* ZCSEND_FANOUT_STABLE: the bytes sent were the module's own copy. */
#define ZCSEND_COMPL_STABLE	(1U << 4)

/**
 * struct zcsend_completion - one record read from /dev/zcsend
 * @user_data: the value given in struct zcsend_send
 * @bytes:     bytes the send accepted (the ioctl's return value)
 * @flags:     ZCSEND_COMPL_*
 * @result:    0; reserved for a negative errno reported after acceptance
 */
struct zcsend_completion {
	__u64 user_data;
	__u64 bytes;
	__u32 flags;
	__s32 result;
};

/**
 * struct zcsend_stats - counters of one open file, ZCSEND_IOC_STATS
 * @sends:        completion records posted on this file
 * @inflight:     sends whose completion has not been posted yet
 * @pinned_pages: user pages pinned right now by this file's sends
 * @zerocopy:     completions posted with ZCSEND_COMPL_ZEROCOPY
 * @copied:       completions posted with ZCSEND_COMPL_COPIED
 * @queued:       completions posted and not read yet
 * @copy_threshold: sends shorter than this many bytes take the copy path
 *                (module parameter copy_threshold, fixed at load time)
 * @linked:       completed zero-copy sends that shared an skb with an
 *                earlier send of this file on the same TCP socket (joined its
 *                notifier chain). Sends of different files never share one.
 */
struct zcsend_stats {
	__u64 sends;
	__u64 inflight;
	__u64 pinned_pages;
	__u64 zerocopy;
	__u64 copied;
	__u64 queued;
	__u64 copy_threshold;
	__u64 linked;
};

/*
 * Limits of one open file. A send that would exceed one fails before
 * anything is pinned or sent:
 * - ZCSEND_MAX_COMPLETIONS: records queued (posted, not read) plus sends in
 *   flight. Over it ZCSEND_IOC_SEND fails with EBUSY: read completions first.
 * - ZCSEND_MAX_PINNED_PAGES: user pages pinned by the file's sends in flight
 *   (on top of the caller's RLIMIT_MEMLOCK, which is charged one page per
 *   page pinned). Over either, ENOBUFS.
 */
#define ZCSEND_MAX_COMPLETIONS	4096
#define ZCSEND_MAX_PINNED_PAGES	65536

/*
 * The completion ring, mmap'able (see "Completion ring" in
 * Documentation/zcsend.rst). Map ZCSEND_RING_OFF_HDR (one page, read-write)
 * and ZCSEND_RING_OFF_SLOTS (entries * 32 bytes, read-only). The record at
 * position p is ready when slots[p & mask].seq == p + 1; the consumer takes
 * records from head on and stores head past them (release). read(2) consumes
 * the same ring.
 */
struct zcsend_ring_hdr {
	__u64 head;		/* consumer position; user space may advance it */
	__u64 resv0[7];		/* head alone on its cache line */
	__u32 entries;		/* number of slots, a power of two */
	__u32 mask;		/* entries - 1 */
	__u64 slots_offset;	/* ZCSEND_RING_OFF_SLOTS */
	__u32 wakeup;		/* ZCSEND_WAKEUP_*, written by user space */
	__u32 resv2;
	__u64 resv1[5];
};

/*
 * Wake-ups on request (zcsend_ring_hdr.wakeup). By default the eventfd is
 * signalled for every record. With ZCSEND_WAKEUP_ON_REQUEST set it is
 * signalled only for a record posted while ZCSEND_WAKEUP_ARMED is set, and
 * the module clears ARMED when it signals: a consumer that found the ring
 * empty sets ARMED, issues a full barrier, looks at the ring once more, and
 * only then waits on the eventfd (zcsend_ring_wait() in zcsend_ring.h).
 * A blocked read(2) is woken only when a reader is waiting.
 */
#define ZCSEND_WAKEUP_ON_REQUEST	(1U << 0)
#define ZCSEND_WAKEUP_ARMED		(1U << 1)

struct zcsend_ring_slot {
	__u64 seq;		/* position + 1 once rec is written */
	struct zcsend_completion rec;
};

#define ZCSEND_RING_OFF_HDR	0ULL
#define ZCSEND_RING_OFF_SLOTS	0x10000000ULL

#define ZCSEND_IOC_MAGIC	0xE5

/* Returns ZCSEND_ABI_VERSION in the __u32 pointed to. */
#define ZCSEND_IOC_VERSION	_IOR(ZCSEND_IOC_MAGIC, 0x00, __u32)
/* Sends; returns the number of bytes accepted or -1 with errno. */
#define ZCSEND_IOC_SEND		_IOW(ZCSEND_IOC_MAGIC, 0x01, struct zcsend_send)
/*
 * Registers an eventfd (>= 0) signalled per completion (or on request, see
 * ZCSEND_WAKEUP_ON_REQUEST); -1 unregisters.
 */
#define ZCSEND_IOC_SET_EVENTFD	_IOW(ZCSEND_IOC_MAGIC, 0x02, __s32)
/* Copies this file's counters out. */
#define ZCSEND_IOC_STATS	_IOR(ZCSEND_IOC_MAGIC, 0x03, struct zcsend_stats)
/*
 * Pins the buffers once (read-only, FOLL_LONGTERM), charging RLIMIT_MEMLOCK
 * by the pages pinned; they are buffer indexes 0..nr-1. Returns the number
 * of segments they were coalesced into (runs of pages inside one folio: a
 * huge page is one segment, so one skb frag). EBUSY if buffers are
 * registered already, ENOBUFS over memlock, EINVAL for a bad count, length
 * or flags, EFAULT for unmapped memory.
 */
#define ZCSEND_IOC_REGISTER_BUFFERS	_IOW(ZCSEND_IOC_MAGIC, 0x04, struct zcsend_register)
/*
 * Unpins and uncharges the registered buffers. EBUSY while a send from them
 * is in flight (read its completion first); ENXIO if none are registered.
 */
#define ZCSEND_IOC_UNREGISTER_BUFFERS	_IO(ZCSEND_IOC_MAGIC, 0x05)
/*
 * Submits @nr sends in order in one system call; each accepted one posts
 * exactly one completion record (its bytes say how much a stream took).
 * Returns how many were submitted; if the first fails, -1 with its errno;
 * if a later one fails, the count before it (as sendmmsg(2)): the failed
 * one and those after it were not submitted and post nothing.
 */
#define ZCSEND_IOC_SUBMIT	_IOW(ZCSEND_IOC_MAGIC, 0x06, struct zcsend_submit)
/*
 * Sends one payload to every destination (struct zcsend_fanout). Before
 * anything is sent it fails with -1 and: EINVAL (nr 0 or over
 * ZCSEND_MAX_FANOUT, bad flags, resv, iovcnt or address length, a socket
 * named twice), EFAULT (unreadable array, payload or address, or a result
 * field that cannot be written), EBADF, ENOTSOCK, and the limits of
 * ZCSEND_IOC_SEND (EBUSY, ENOBUFS). Otherwise every destination is tried in
 * order, a failing one does not stop the others, each result is written
 * back, exactly one completion record is posted, and the ioctl returns how
 * many destinations' sends succeeded (result >= 0; 0 if none did). Sockets
 * are sent to one after another from the calling thread: a blocking TCP
 * socket with a full send buffer holds up the ones after it, so pass
 * MSG_DONTWAIT and send the rest later where that matters. Destinations
 * below the copy threshold copy from the caller's memory (COPY_PATH, no
 * pin); a destination that cannot take user pages copies from the pinned
 * ones (the record then says COPIED).
 */
#define ZCSEND_IOC_FANOUT	_IOW(ZCSEND_IOC_MAGIC, 0x07, struct zcsend_fanout)
/*
 * Registers the sockets (struct zcsend_register_sockets) as indexes
 * 0..nr-1 for ZCSEND_SEND_FIXED_SOCKET. The file holds a reference on each
 * socket (closing its descriptor does not close it) until
 * ZCSEND_IOC_UNREGISTER_SOCKETS or the file's release. EBUSY if sockets are
 * registered already; EINVAL for a bad count or flags or a socket named
 * twice; EMFILE for more than the caller's RLIMIT_NOFILE (a registered
 * socket outlives its descriptor); EFAULT, and a send's errors for a
 * descriptor that is not an IPv4 or IPv6 TCP or UDP socket (EBADF,
 * ENOTSOCK, EAFNOSUPPORT, EPROTONOSUPPORT).
 */
#define ZCSEND_IOC_REGISTER_SOCKETS	_IOW(ZCSEND_IOC_MAGIC, 0x08, struct zcsend_register_sockets)
/*
 * Drops the registered sockets at once; ENXIO if none are registered. Sends
 * in flight on them are unaffected (their skbs hold the sockets), and a
 * system call that already named one keeps the table until it returns.
 */
#define ZCSEND_IOC_UNREGISTER_SOCKETS	_IO(ZCSEND_IOC_MAGIC, 0x09)
/*
 * Writes to the __u64 pointed to the ZCSEND_FEAT_* bits of what this module
 * implements, so that a program built against a newer header can fall back
 * on an older module instead of reading EINVAL as a bad argument. A module
 * that fails this with ENOTTY predates it: it offers ZCSEND_IOC_SEND of an
 * iovec array, read(2) of the records and the eventfd (ABI version 1) and
 * any of the rest only as far as a probe shows. Bits are only ever added.
 */
#define ZCSEND_IOC_FEATURES	_IOR(ZCSEND_IOC_MAGIC, 0x0a, __u64)

/* ZCSEND_SEND_BUF: one buffer named in the request. */
#define ZCSEND_FEAT_SEND_BUF		(1ULL << 0)
/* ZCSEND_IOC_REGISTER_BUFFERS and ZCSEND_SEND_FIXED with struct zcsend_range. */
#define ZCSEND_FEAT_FIXED_BUFFERS	(1ULL << 1)
/* ZCSEND_SEND_FIXED | ZCSEND_SEND_BUF: one range inline (ZCSEND_FIXED_RANGE). */
#define ZCSEND_FEAT_FIXED_INLINE	(1ULL << 2)
/* ZCSEND_IOC_REGISTER_SOCKETS and ZCSEND_SEND_FIXED_SOCKET. */
#define ZCSEND_FEAT_FIXED_SOCKETS	(1ULL << 3)
/* ZCSEND_IOC_SUBMIT. */
#define ZCSEND_FEAT_SUBMIT		(1ULL << 4)
/* ZCSEND_IOC_FANOUT, and ZCSEND_SUBMIT_FANOUT batches of them. */
#define ZCSEND_FEAT_FANOUT		(1ULL << 5)
/* ZCSEND_FANOUT_STABLE. */
#define ZCSEND_FEAT_FANOUT_STABLE	(1ULL << 6)
/* mmap(2) of the completion ring and ZCSEND_WAKEUP_ON_REQUEST. */
#define ZCSEND_FEAT_RING_MMAP		(1ULL << 7)

#endif /* _UAPI_LINUX_ZCSEND_H */
