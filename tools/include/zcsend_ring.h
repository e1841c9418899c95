/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * zcsend_ring.h: user-space helpers for zcsend's mmap'ed completion ring,
 * in the manner of liburing's CQ helpers. Header only, C99, no allocation.
 *
 *	struct zcsend_ring r;
 *	struct zcsend_completion c[64];
 *	unsigned int n;
 *
 *	zcsend_ring_map(zfd, &r);
 *	n = zcsend_ring_peek(&r, c, 64);	// ready records, oldest first
 *	...use them...
 *	zcsend_ring_advance(&r, n);		// hand their slots back
 *	zcsend_ring_wait(&r, efd, -1);		// sleep on the eventfd
 *
 * One consumer per ring: the ring is single-consumer, as read(2) on the same
 * file is (both move the same head).
 */
#ifndef ZCSEND_RING_H
#define ZCSEND_RING_H

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/zcsend.h>

struct zcsend_ring {
	struct zcsend_ring_hdr *hdr;
	const struct zcsend_ring_slot *slots;
	size_t slots_len;
	uint32_t mask;
};

/* Maps the ring of /dev/zcsend file @zfd. 0, or -errno. */
static inline int zcsend_ring_map(int zfd, struct zcsend_ring *r)
{
	long page = sysconf(_SC_PAGESIZE);
	void *h, *s;

	h = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, zfd,
		 ZCSEND_RING_OFF_HDR);
	if (h == MAP_FAILED)
		return -errno;
	r->hdr = h;
	r->mask = r->hdr->mask;
	r->slots_len = (size_t)r->hdr->entries * sizeof(struct zcsend_ring_slot);
	s = mmap(NULL, r->slots_len, PROT_READ, MAP_SHARED, zfd,
		 r->hdr->slots_offset);
	if (s == MAP_FAILED) {
		int err = -errno;

		munmap(h, page);
		return err;
	}
	r->slots = s;
	return 0;
}

static inline void zcsend_ring_unmap(struct zcsend_ring *r)
{
	munmap((void *)r->slots, r->slots_len);
	munmap(r->hdr, sysconf(_SC_PAGESIZE));
}

/* Copies up to @max ready records into @out without consuming them. */
static inline unsigned int zcsend_ring_peek(const struct zcsend_ring *r,
					    struct zcsend_completion *out,
					    unsigned int max)
{
	uint64_t head = __atomic_load_n(&r->hdr->head, __ATOMIC_RELAXED);
	unsigned int n;

	for (n = 0; n < max; n++) {
		const struct zcsend_ring_slot *s = &r->slots[(head + n) & r->mask];

		if (__atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) != head + n + 1)
			break;
		out[n] = s->rec;
	}
	return n;
}

/* Consumes @n records returned by zcsend_ring_peek(). */
static inline void zcsend_ring_advance(struct zcsend_ring *r, unsigned int n)
{
	uint64_t head = __atomic_load_n(&r->hdr->head, __ATOMIC_RELAXED);

	__atomic_store_n(&r->hdr->head, head + n, __ATOMIC_RELEASE);
}

/* Whether a record is ready. */
static inline int zcsend_ring_ready(const struct zcsend_ring *r)
{
	uint64_t head = __atomic_load_n(&r->hdr->head, __ATOMIC_RELAXED);

	return __atomic_load_n(&r->slots[head & r->mask].seq,
			       __ATOMIC_ACQUIRE) == head + 1;
}

/*
 * Asks for eventfd signals only on request (ZCSEND_WAKEUP_ON_REQUEST):
 * zcsend_ring_wait() then arms one wake-up before each sleep, and records
 * posted while nobody waits cost no signal.
 */
static inline void zcsend_ring_wakeup_on_request(struct zcsend_ring *r)
{
	__atomic_fetch_or(&r->hdr->wakeup, ZCSEND_WAKEUP_ON_REQUEST,
			  __ATOMIC_SEQ_CST);
}

/*
 * Arms one eventfd signal (with ZCSEND_WAKEUP_ON_REQUEST) and says whether a
 * record is ready after all: the full barrier orders the arming before the
 * look at the ring, as the module orders its post before its look at ARMED.
 */
static inline int zcsend_ring_arm(struct zcsend_ring *r)
{
	__atomic_fetch_or(&r->hdr->wakeup, ZCSEND_WAKEUP_ARMED, __ATOMIC_SEQ_CST);
	return zcsend_ring_ready(r);
}

/*
 * Waits up to @timeout_ms (-1: forever) for a record, sleeping on @efd, an
 * eventfd registered with ZCSEND_IOC_SET_EVENTFD (O_NONBLOCK). 1 when one is
 * ready, 0 on timeout, -errno. Arms a wake-up before each sleep when the
 * ring is in ZCSEND_WAKEUP_ON_REQUEST mode.
 */
static inline int zcsend_ring_wait(struct zcsend_ring *r, int efd,
				   int timeout_ms)
{
	struct pollfd p = { .fd = efd, .events = POLLIN };
	uint64_t ticks;
	int ret;

	while (!zcsend_ring_ready(r)) {
		if ((__atomic_load_n(&r->hdr->wakeup, __ATOMIC_RELAXED) &
		     ZCSEND_WAKEUP_ON_REQUEST) && zcsend_ring_arm(r))
			break;
		ret = poll(&p, 1, timeout_ms);
		if (ret < 0 && errno != EINTR)
			return -errno;
		if (ret == 0)
			return 0;
		if (read(efd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
			return -errno;
	}
	return 1;
}

#endif /* ZCSEND_RING_H */
