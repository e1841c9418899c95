/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the zcsend selftests: the /dev/zcsend calls, completion
 * bookkeeping, the pin counters of /proc/vmstat, loopback socket pairs, a
 * receiver thread that checks the data pattern, module load and unload, and
 * a dummy0 device in a network namespace of the test's own.
 *
 * Functions return a negative errno on failure; tests do the asserting.
 */
#ifndef ZCSEND_HELPERS_H
#define ZCSEND_HELPERS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/zcsend.h>

#include "kselftest_harness.h"

/*
 * The ABI from C: the header's sizes and offsets, the same numbers
 * rust/uapi.rs asserts for the module's mirror of it.
 */
#define ZC_ABI(t, f, o) _Static_assert(offsetof(struct t, f) == (o), #t "." #f)
_Static_assert(sizeof(struct zcsend_send) == 40, "zcsend_send");
ZC_ABI(zcsend_send, fd, 0);
ZC_ABI(zcsend_send, flags, 4);
ZC_ABI(zcsend_send, iov, 8);
ZC_ABI(zcsend_send, iovcnt, 16);
ZC_ABI(zcsend_send, addrlen, 20);
ZC_ABI(zcsend_send, addr, 24);
ZC_ABI(zcsend_send, user_data, 32);
_Static_assert(sizeof(struct zcsend_completion) == 24, "zcsend_completion");
ZC_ABI(zcsend_completion, user_data, 0);
ZC_ABI(zcsend_completion, bytes, 8);
ZC_ABI(zcsend_completion, flags, 16);
ZC_ABI(zcsend_completion, result, 20);
_Static_assert(sizeof(struct zcsend_stats) == 64, "zcsend_stats");
ZC_ABI(zcsend_stats, sends, 0);
ZC_ABI(zcsend_stats, inflight, 8);
ZC_ABI(zcsend_stats, pinned_pages, 16);
ZC_ABI(zcsend_stats, zerocopy, 24);
ZC_ABI(zcsend_stats, copied, 32);
ZC_ABI(zcsend_stats, queued, 40);
ZC_ABI(zcsend_stats, copy_threshold, 48);
ZC_ABI(zcsend_stats, linked, 56);
_Static_assert(sizeof(struct zcsend_range) == 24, "zcsend_range");
ZC_ABI(zcsend_range, buf_index, 0);
ZC_ABI(zcsend_range, reserved, 4);
ZC_ABI(zcsend_range, offset, 8);
ZC_ABI(zcsend_range, len, 16);
_Static_assert(sizeof(struct zcsend_buffer) == 16, "zcsend_buffer");
ZC_ABI(zcsend_buffer, addr, 0);
ZC_ABI(zcsend_buffer, len, 8);
_Static_assert(sizeof(struct zcsend_register) == 16, "zcsend_register");
ZC_ABI(zcsend_register, bufs, 0);
ZC_ABI(zcsend_register, nr, 8);
ZC_ABI(zcsend_register, flags, 12);
_Static_assert(sizeof(struct zcsend_register_sockets) == 16, "zcsend_register_sockets");
ZC_ABI(zcsend_register_sockets, fds, 0);
ZC_ABI(zcsend_register_sockets, nr, 8);
ZC_ABI(zcsend_register_sockets, flags, 12);
_Static_assert(sizeof(struct zcsend_submit) == 16, "zcsend_submit");
ZC_ABI(zcsend_submit, sends, 0);
ZC_ABI(zcsend_submit, nr, 8);
ZC_ABI(zcsend_submit, flags, 12);
_Static_assert(sizeof(struct zcsend_ring_hdr) == 128, "zcsend_ring_hdr");
ZC_ABI(zcsend_ring_hdr, head, 0);
ZC_ABI(zcsend_ring_hdr, entries, 64);
ZC_ABI(zcsend_ring_hdr, mask, 68);
ZC_ABI(zcsend_ring_hdr, slots_offset, 72);
ZC_ABI(zcsend_ring_hdr, wakeup, 80);
_Static_assert(sizeof(struct zcsend_ring_slot) == 32, "zcsend_ring_slot");
ZC_ABI(zcsend_ring_slot, seq, 0);
ZC_ABI(zcsend_ring_slot, rec, 8);
_Static_assert(sizeof(struct zcsend_dest) == 24, "zcsend_dest");
ZC_ABI(zcsend_dest, fd, 0);
ZC_ABI(zcsend_dest, addrlen, 4);
ZC_ABI(zcsend_dest, addr, 8);
ZC_ABI(zcsend_dest, result, 16);
_Static_assert(sizeof(struct zcsend_fanout) == 40, "zcsend_fanout");
ZC_ABI(zcsend_fanout, flags, 0);
ZC_ABI(zcsend_fanout, iovcnt, 4);
ZC_ABI(zcsend_fanout, iov, 8);
ZC_ABI(zcsend_fanout, dests, 16);
ZC_ABI(zcsend_fanout, nr, 24);
ZC_ABI(zcsend_fanout, resv, 28);
ZC_ABI(zcsend_fanout, user_data, 32);
#include "zcsend_pattern.h"

/*
 * The guest runs under TCG with KASAN: give every test two minutes instead
 * of the harness's 30 s. TEST() and TEST_F() expand this at their use.
 */
#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT	120

#define ZC_MODULE		"zcsend"
#define ZC_KO_DEFAULT		"/zcsend/zcsend.ko"
#define ZC_PARAMS_DIR		"/sys/module/" ZC_MODULE "/parameters"
#define ZC_MAX_RW_COUNT		(INT_MAX & ~4095UL)
/* How long a test waits for completions or pins that must come back. */
#define ZC_WAIT_MS		10000

#define ZC_FLAGS_ONE_OF		(ZCSEND_COMPL_ZEROCOPY | ZCSEND_COMPL_COPIED)

/* A send on a socket the peer closed must fail, not kill the test. */
static void __attribute__((constructor)) zc_ignore_sigpipe(void)
{
	signal(SIGPIPE, SIG_IGN);
}

static __maybe_unused int64_t zc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static __maybe_unused void zc_msleep(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ----------------------------------------------------------------------
 * /dev/zcsend
 */

/* Opens /dev/zcsend non-blocking (completions are collected by polling). */
static __maybe_unused int zc_open(void)
{
	return open(ZCSEND_DEVICE, O_RDWR | O_CLOEXEC | O_NONBLOCK);
}

/* One ZCSEND_IOC_SEND; returns the bytes accepted or a negative errno. */
static __maybe_unused int zc_send_req(int zfd, int fd, unsigned int flags,
				      uint64_t iov, uint32_t iovcnt,
				      const void *addr, socklen_t addrlen,
				      uint64_t user_data)
{
	struct zcsend_send s = {
		.fd = fd,
		.flags = flags,
		.iov = iov,
		.iovcnt = iovcnt,
		.addrlen = addrlen,
		.addr = (uintptr_t)addr,
		.user_data = user_data,
	};
	int ret;

	ret = ioctl(zfd, ZCSEND_IOC_SEND, &s);
	return ret < 0 ? -errno : ret;
}

static __maybe_unused int zc_sendv(int zfd, int fd, const struct iovec *iov,
				   unsigned int iovcnt, unsigned int flags,
				   const void *addr, socklen_t addrlen,
				   uint64_t user_data)
{
	return zc_send_req(zfd, fd, flags, (uintptr_t)iov, iovcnt, addr,
			   addrlen, user_data);
}

/* One buffer; returns the bytes accepted or a negative errno. */
static __maybe_unused int zc_send(int zfd, int fd, const void *buf,
				  size_t len, unsigned int flags,
				  const void *addr, socklen_t addrlen,
				  uint64_t user_data)
{
	struct iovec iov = { (void *)buf, len };

	return zc_sendv(zfd, fd, &iov, 1, flags, addr, addrlen, user_data);
}

/* One buffer named in the request (ZCSEND_SEND_BUF): nothing else read. */
static __maybe_unused int zc_send_buf(int zfd, int fd, const void *buf,
				      uint32_t len, unsigned int flags,
				      const void *addr, socklen_t addrlen,
				      uint64_t user_data)
{
	return zc_send_req(zfd, fd, flags | ZCSEND_SEND_BUF, (uintptr_t)buf,
			   len, addr, addrlen, user_data);
}

static __maybe_unused int zc_stats(int zfd, struct zcsend_stats *st)
{
	memset(st, 0xff, sizeof(*st));
	return ioctl(zfd, ZCSEND_IOC_STATS, st) ? -errno : 0;
}

static __maybe_unused int zc_version(int zfd, uint32_t *ver)
{
	*ver = 0xdeadbeef;
	return ioctl(zfd, ZCSEND_IOC_VERSION, ver) ? -errno : 0;
}

/*
 * The copy_threshold the module runs with, from ZCSEND_IOC_STATS (Rust
 * module parameters have no sysfs file in 7.2). 0 when it cannot be had.
 */
static __maybe_unused uint64_t zc_copy_threshold(void)
{
	struct zcsend_stats st;
	int zfd = open(ZCSEND_DEVICE, O_RDWR | O_CLOEXEC);
	uint64_t thr = 0;

	if (zfd < 0)
		return 0;
	if (!ioctl(zfd, ZCSEND_IOC_STATS, &st))
		thr = st.copy_threshold;
	close(zfd);
	return thr;
}

/* Frags per skb (CONFIG_MAX_SKB_FRAGS default): a datagram needs <= this. */
#define ZC_MAX_SKB_FRAGS	17

/*
 * The frags zcsend builds for @iov: one per page piece of each iovec, where
 * a piece that continues the previous one within the same page merges with
 * it. UDP datagrams over ZC_MAX_SKB_FRAGS take the copy path.
 */
static __maybe_unused int zc_count_frags(const struct iovec *iov, int n)
{
	uintptr_t last_end = 0, a, end, pend;
	int frags = 0, i;

	for (i = 0; i < n; i++) {
		a = (uintptr_t)iov[i].iov_base;
		end = a + iov[i].iov_len;
		while (a < end) {
			pend = (a | 4095) + 1;
			if (a != last_end || !(a & 4095))
				frags++;
			last_end = end < pend ? end : pend;
			a = last_end;
		}
	}
	return frags;
}

static __maybe_unused int zc_set_eventfd(int zfd, int32_t efd)
{
	return ioctl(zfd, ZCSEND_IOC_SET_EVENTFD, &efd) ? -errno : 0;
}

/*
 * Reads up to @max completions without blocking (the fd is O_NONBLOCK).
 * Returns how many, 0 when none is queued, or a negative errno.
 */
static __maybe_unused int zc_read_compl(int zfd, struct zcsend_completion *c,
					int max)
{
	ssize_t n = read(zfd, c, max * sizeof(*c));

	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	if (n % sizeof(*c))
		return -EPROTO;
	return n / sizeof(*c);
}

/*
 * Collects completions until @want have arrived or @timeout_ms passed.
 * Returns how many arrived (possibly fewer), or a negative errno.
 */
static __maybe_unused int zc_collect(int zfd, struct zcsend_completion *c,
				     int want, int timeout_ms)
{
	int64_t end = zc_now_ms() + timeout_ms;
	int got = 0, n, nap = 1;

	while (got < want) {
		n = zc_read_compl(zfd, c + got, want - got);
		if (n < 0)
			return n;
		got += n;
		if (got >= want)
			break;
		if (zc_now_ms() > end)
			break;
		if (!n) {
			zc_msleep(nap);
			nap = nap < 16 ? nap * 2 : 16;
		} else {
			nap = 1;
		}
	}
	return got;
}

/* What a test sent, to be matched against the completions. */
struct zc_sent {
	uint64_t user_data;
	uint64_t bytes;
	uint32_t flags;		/* flags of the matching completion */
	bool seen;
};

struct zc_log {
	struct zc_sent *v;
	int n, cap;
	uint64_t bytes;		/* sum of the accepted bytes */
};

static __maybe_unused void zc_log_add(struct zc_log *log, uint64_t user_data,
				      uint64_t bytes)
{
	if (log->n == log->cap) {
		log->cap = log->cap ? log->cap * 2 : 64;
		log->v = realloc(log->v, log->cap * sizeof(*log->v));
		if (!log->v)
			abort();
	}
	log->v[log->n++] = (struct zc_sent){ .user_data = user_data,
					     .bytes = bytes };
	log->bytes += bytes;
}

static __maybe_unused void zc_log_free(struct zc_log *log)
{
	free(log->v);
	memset(log, 0, sizeof(*log));
}

/* Counts of the completions matched by zc_expect_completions(). */
struct zc_tally {
	int zerocopy, copied, copy_path;
	uint64_t bytes;
};

/*
 * Waits for one completion per send in @log and checks each: user_data of
 * exactly one send, bytes equal to what the ioctl returned, result 0,
 * exactly one of ZEROCOPY and COPIED, every flag of @must and none of
 * @must_not. Then checks that no further completion is queued.
 */
static __maybe_unused void
zc_expect_completions(struct __test_metadata *_metadata, int zfd,
		      struct zc_log *log, uint32_t must, uint32_t must_not,
		      struct zc_tally *tally)
{
	struct zcsend_completion *c, extra;
	struct zc_tally t = { 0 };
	int got, i, j;

	c = calloc(log->n + 1, sizeof(*c));
	ASSERT_NE(NULL, c);
	got = zc_collect(zfd, c, log->n, ZC_WAIT_MS);
	EXPECT_EQ(log->n, got)
		TH_LOG("%d of %d completions arrived", got, log->n);
	for (i = 0; i < got; i++) {
		for (j = 0; j < log->n; j++)
			if (log->v[j].user_data == c[i].user_data &&
			    !log->v[j].seen)
				break;
		EXPECT_LT(j, log->n)
			TH_LOG("completion with unknown or repeated user_data %#llx",
			       (unsigned long long)c[i].user_data);
		if (j == log->n)
			continue;
		log->v[j].seen = true;
		log->v[j].flags = c[i].flags;
		EXPECT_EQ(log->v[j].bytes, c[i].bytes);
		EXPECT_EQ(0, c[i].result);
		EXPECT_EQ(0, c[i].flags & ~(ZC_FLAGS_ONE_OF |
					    ZCSEND_COMPL_COPY_PATH))
			TH_LOG("unknown completion flags %#x", c[i].flags);
		EXPECT_NE(ZC_FLAGS_ONE_OF, c[i].flags & ZC_FLAGS_ONE_OF);
		EXPECT_NE(0, c[i].flags & ZC_FLAGS_ONE_OF);
		EXPECT_EQ(must, c[i].flags & must)
			TH_LOG("send %#llx: flags %#x lack %#x",
			       (unsigned long long)c[i].user_data,
			       c[i].flags, must);
		EXPECT_EQ(0, c[i].flags & must_not)
			TH_LOG("send %#llx: flags %#x have %#x",
			       (unsigned long long)c[i].user_data,
			       c[i].flags, must_not);
		t.zerocopy += !!(c[i].flags & ZCSEND_COMPL_ZEROCOPY);
		t.copied += !!(c[i].flags & ZCSEND_COMPL_COPIED);
		t.copy_path += !!(c[i].flags & ZCSEND_COMPL_COPY_PATH);
		t.bytes += c[i].bytes;
	}
	EXPECT_EQ(log->bytes, t.bytes);
	EXPECT_EQ(0, zc_read_compl(zfd, &extra, 1))
		TH_LOG("a completion nobody sent: user_data %#llx",
		       (unsigned long long)extra.user_data);
	free(c);
	if (tally)
		*tally = t;
}

/*
 * Checks the counters of an idle file: nothing in flight, pinned or queued,
 * and sends == zerocopy + copied. A negative argument is not checked.
 */
static __maybe_unused void
zc_expect_idle_stats(struct __test_metadata *_metadata, int zfd,
		     int64_t sends, int64_t zerocopy, int64_t copied)
{
	struct zcsend_stats st;

	ASSERT_EQ(0, zc_stats(zfd, &st));
	EXPECT_EQ(0, st.inflight);
	EXPECT_EQ(0, st.pinned_pages);
	EXPECT_EQ(0, st.queued);
	EXPECT_EQ(st.sends, st.zerocopy + st.copied);
	if (sends >= 0)
		EXPECT_EQ(sends, st.sends);
	if (zerocopy >= 0)
		EXPECT_EQ(zerocopy, st.zerocopy);
	if (copied >= 0)
		EXPECT_EQ(copied, st.copied);
}

/* ----------------------------------------------------------------------
 * Pinned pages: nr_foll_pin_acquired - nr_foll_pin_released
 */

static __maybe_unused int zc_pins(uint64_t *acquired, uint64_t *released)
{
	char line[128];
	int fd, found = 0;
	FILE *f;

	/* Fold the per-CPU deltas in first (root only; best effort). */
	fd = open("/proc/sys/vm/stat_refresh", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t __maybe_unused w = write(fd, "1\n", 2);

		close(fd);
	}
	f = fopen("/proc/vmstat", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "nr_foll_pin_acquired %" SCNu64, acquired) == 1)
			found |= 1;
		else if (sscanf(line, "nr_foll_pin_released %" SCNu64,
				released) == 1)
			found |= 2;
	}
	fclose(f);
	return found == 3 ? 0 : -ENOENT;
}

/* Pages pinned with FOLL_PIN system-wide right now, or INT64_MIN. */
static __maybe_unused int64_t zc_pins_outstanding(void)
{
	uint64_t a, r;

	if (zc_pins(&a, &r))
		return INT64_MIN;
	return (int64_t)(a - r);
}

/*
 * Waits up to @timeout_ms for the outstanding pins to fall back to
 * @baseline; returns the last value seen.
 */
static __maybe_unused int64_t zc_wait_pins(int64_t baseline, int timeout_ms)
{
	int64_t end = zc_now_ms() + timeout_ms, now;

	for (;;) {
		now = zc_pins_outstanding();
		if (now == baseline || zc_now_ms() > end)
			return now;
		zc_msleep(20);
	}
}

/* /sys/module/zcsend/refcnt, or -1 (no such file: not checked). */
static __maybe_unused int zc_module_refcnt(void)
{
	char buf[32];
	ssize_t n;
	int fd;

	fd = open("/sys/module/" ZC_MODULE "/refcnt", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return atoi(buf);
}

/*
 * Waits up to @timeout_ms for the module's reference count to be @want;
 * returns the last value seen. A closed file's state holds one until it is
 * freed, after its last send and an RCU grace period, by a work item
 * (Documentation/zcsend.rst, "Lifetimes"): not at close() itself.
 */
static __maybe_unused int zc_wait_refcnt(int want, int timeout_ms)
{
	int64_t end = zc_now_ms() + timeout_ms;
	int now;

	for (;;) {
		now = zc_module_refcnt();
		if (now == want || zc_now_ms() > end)
			return now;
		zc_msleep(20);
	}
}

/*
 * The module's reference count once the files closed before are freed:
 * read until it has not moved for 300 ms (at most @timeout_ms).
 */
static __maybe_unused int zc_settled_refcnt(int timeout_ms)
{
	int64_t end = zc_now_ms() + timeout_ms, still = zc_now_ms() + 300;
	int last = zc_module_refcnt(), now;

	while (zc_now_ms() < still && zc_now_ms() < end) {
		zc_msleep(20);
		now = zc_module_refcnt();
		if (now != last)
			still = zc_now_ms() + 300;
		last = now;
	}
	return last;
}

/*
 * Used in teardowns, which may run from a failed ASSERT: log by hand rather
 * than through the EXPECT's handler, which would fire for that ASSERT too.
 */
#define ZC_EXPECT_PINS_BACK(baseline) do { \
	int64_t __now = zc_wait_pins(baseline, ZC_WAIT_MS); \
	uint64_t __a = 0, __r = 0; \
	if (__now != (baseline)) { \
		zc_pins(&__a, &__r); \
		TH_LOG("pins leaked: %" PRId64 " outstanding, %" PRId64 \
		       " before (nr_foll_pin_acquired %" PRIu64 \
		       " nr_foll_pin_released %" PRIu64 ")", __now, \
		       (int64_t)(baseline), __a, __r); \
	} \
	EXPECT_EQ(baseline, __now); \
} while (0)

/* ----------------------------------------------------------------------
 * Module parameters, unload and load
 */

static __maybe_unused int zc_param(const char *name, char *buf, size_t len)
{
	char path[320];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), ZC_PARAMS_DIR "/%.255s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = 0;
	return 0;
}

static __maybe_unused int zc_param_u64(const char *name, uint64_t *val)
{
	char buf[64], *end;
	int ret;

	ret = zc_param(name, buf, sizeof(buf));
	if (ret)
		return ret;
	errno = 0;
	*val = strtoull(buf, &end, 0);
	return errno || end == buf || *end ? -EINVAL : 0;
}

/* "name=value ..." for every readable parameter, to reload the module as is. */
static __maybe_unused bool zc_dir_empty(const char *path)
{
	struct dirent *de;
	bool empty = true;
	DIR *d = opendir(path);

	if (!d)
		return true;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			empty = false;
	closedir(d);
	return empty;
}

static __maybe_unused int zc_module_params(char *buf, size_t len)
{
	char val[128];
	struct dirent *de;
	size_t used = 0;
	DIR *d;

	buf[0] = 0;
	d = opendir(ZC_PARAMS_DIR);
	if (!d && errno != ENOENT)
		return -errno;
	if (!d || zc_dir_empty(ZC_PARAMS_DIR)) {
		/*
		 * 7.2's Rust module parameters have no sysfs files: the ones it
		 * was loaded with come from the runner (/init).
		 */
		const char *p = getenv("ZCSEND_KO_PARAMS");

		if (d)
			closedir(d);
		snprintf(buf, len, "%s", p ? p : "");
		return p && strlen(p) >= len ? -ENAMETOOLONG : 0;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || zc_param(de->d_name, val, sizeof(val)))
			continue;
		used += snprintf(buf + used, used < len ? len - used : 0,
				 "%s%s=%s", used ? " " : "", de->d_name, val);
	}
	closedir(d);
	return used < len ? 0 : -ENAMETOOLONG;
}

static __maybe_unused const char *zc_ko_path(void)
{
	const char *p = getenv("ZCSEND_KO");

	return p && *p ? p : ZC_KO_DEFAULT;
}

static __maybe_unused int zc_module_unload(void)
{
	return syscall(SYS_delete_module, ZC_MODULE, O_NONBLOCK) ? -errno : 0;
}

static __maybe_unused int zc_module_load(const char *params)
{
	int fd, ret;

	fd = open(zc_ko_path(), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = syscall(SYS_finit_module, fd, params, 0) ? -errno : 0;
	close(fd);
	return ret;
}

static __maybe_unused bool zc_module_loaded(void)
{
	return !access("/sys/module/" ZC_MODULE "/initstate", F_OK);
}

/* Waits for /dev/zcsend to exist (@present) or be gone. */
static __maybe_unused bool zc_wait_dev(bool present, int timeout_ms)
{
	int64_t end = zc_now_ms() + timeout_ms;

	for (;;) {
		if (!access(ZCSEND_DEVICE, F_OK) == present)
			return true;
		if (zc_now_ms() > end)
			return false;
		zc_msleep(10);
	}
}

/* Unloads, retrying while busy for up to @timeout_ms. */
static __maybe_unused int zc_module_unload_wait(int timeout_ms)
{
	int64_t end = zc_now_ms() + timeout_ms;
	int ret;

	for (;;) {
		ret = zc_module_unload();
		if ((ret != -EAGAIN && ret != -EBUSY) || zc_now_ms() > end)
			return ret;
		zc_msleep(50);
	}
}

/* ----------------------------------------------------------------------
 * Buffers
 */

/* Anonymous private mapping of @len bytes (rounded up to pages). */
static __maybe_unused void *zc_map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* A mapping holding the stream bytes [0, @len) of @seed. */
static __maybe_unused uint8_t *zc_map_pattern(size_t len, uint64_t seed)
{
	uint8_t *p = zc_map(len);

	if (p)
		zc_pattern_fill(p, len, seed, 0);
	return p;
}

/* ----------------------------------------------------------------------
 * Sockets
 */

static __maybe_unused socklen_t zc_loopback_addr(int family, uint16_t port,
						 struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (void *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof(*sin);
	}
	struct sockaddr_in6 *sin6 = (void *)ss;

	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	sin6->sin6_addr = in6addr_loopback;
	return sizeof(*sin6);
}

static __maybe_unused socklen_t zc_addr(int family, const char *ip,
					uint16_t port,
					struct sockaddr_storage *ss)
{
	socklen_t len = zc_loopback_addr(family, port, ss);

	if (family == AF_INET)
		inet_pton(AF_INET, ip, &((struct sockaddr_in *)ss)->sin_addr);
	else
		inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)ss)->sin6_addr);
	return len;
}

/*
 * A connected pair over loopback. TCP: @tx connected to the accepted @rx.
 * UDP: @rx bound, @tx unconnected; @dst/@dstlen is @rx's address.
 */
struct zc_pair {
	int tx, rx;
	struct sockaddr_storage dst;
	socklen_t dstlen;
};

/*
 * @rcvbuf and @sndbuf, when not 0, are set on the receiving and sending
 * sockets (SO_RCVBUFFORCE/SO_SNDBUFFORCE when root may exceed the limits).
 */
static __maybe_unused int zc_loopback_pair(struct zc_pair *p, int family,
					   int type, int rcvbuf, int sndbuf)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int l = -1, one = 1, err;

	p->tx = p->rx = -1;
	len = zc_loopback_addr(family, 0, &ss);
	l = socket(family, type | SOCK_CLOEXEC, 0);
	if (l < 0)
		return -errno;
	if (rcvbuf && setsockopt(l, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf,
				 sizeof(rcvbuf)) &&
	    setsockopt(l, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)))
		goto fail;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (void *)&ss, len))
		goto fail;
	p->dstlen = sizeof(p->dst);
	if (getsockname(l, (void *)&p->dst, &p->dstlen))
		goto fail;
	if (type == SOCK_STREAM && listen(l, 1))
		goto fail;
	p->tx = socket(family, type | SOCK_CLOEXEC, 0);
	if (p->tx < 0)
		goto fail;
	if (sndbuf && setsockopt(p->tx, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf,
				 sizeof(sndbuf)) &&
	    setsockopt(p->tx, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)))
		goto fail;
	if (type == SOCK_DGRAM) {
		p->rx = l;
		return 0;
	}
	if (connect(p->tx, (void *)&p->dst, p->dstlen))
		goto fail;
	p->rx = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (p->rx < 0)
		goto fail;
	close(l);
	return 0;
fail:
	err = -errno;
	close(l);
	if (p->tx >= 0)
		close(p->tx);
	p->tx = p->rx = -1;
	return err;
}

static __maybe_unused void zc_pair_close(struct zc_pair *p)
{
	if (p->tx >= 0)
		close(p->tx);
	if (p->rx >= 0)
		close(p->rx);
	p->tx = p->rx = -1;
}

/* Whether @family can be used on loopback (IPv6 may be disabled). */
static __maybe_unused bool zc_family_ok(int family)
{
	struct sockaddr_storage ss;
	socklen_t len = zc_loopback_addr(family, 0, &ss);
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		return false;
	ok = !bind(fd, (void *)&ss, len);
	close(fd);
	return ok;
}

/* ----------------------------------------------------------------------
 * Receiver thread: reads and checks the pattern
 */

struct zc_rx {
	pthread_t thread;
	int fd;
	uint64_t seed;
	uint64_t want;		/* stop after this many bytes; 0: at EOF */
	int timeout_ms;		/* give up after this long without data */
	/* Results. */
	uint64_t got;		/* bytes received */
	uint64_t reads;		/* recv calls (datagrams for UDP) */
	int64_t bad;		/* stream offset of the first wrong byte or -1 */
	int err;		/* errno of a failed recv, or 0 */
};

static void *zc_rx_main(void *arg)
{
	struct zc_rx *rx = arg;
	struct timeval tv = { rx->timeout_ms / 1000,
			      (rx->timeout_ms % 1000) * 1000 };
	size_t cap = 256 << 10, off;
	uint8_t *buf = malloc(cap);
	ssize_t n;

	if (!buf) {
		rx->err = ENOMEM;
		return NULL;
	}
	setsockopt(rx->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (!rx->want || rx->got < rx->want) {
		n = recv(rx->fd, buf, cap, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rx->err = errno;
			break;
		}
		if (n == 0)
			break;
		rx->reads++;
		off = zc_pattern_check(buf, n, rx->seed, rx->got);
		if (off < (size_t)n && rx->bad < 0)
			rx->bad = rx->got + off;
		rx->got += n;
	}
	free(buf);
	return NULL;
}

static __maybe_unused int zc_rx_start(struct zc_rx *rx, int fd, uint64_t seed,
				      uint64_t want)
{
	memset(rx, 0, sizeof(*rx));
	rx->fd = fd;
	rx->seed = seed;
	rx->want = want;
	rx->timeout_ms = ZC_WAIT_MS;
	rx->bad = -1;
	return -pthread_create(&rx->thread, NULL, zc_rx_main, rx);
}

static __maybe_unused void zc_rx_join(struct zc_rx *rx)
{
	pthread_join(rx->thread, NULL);
}

/* Joins @rx and checks it got @bytes of intact pattern. */
#define ZC_EXPECT_RX(rx, bytes) do { \
	zc_rx_join(rx); \
	EXPECT_EQ(0, (rx)->err) TH_LOG("receiver: %s", strerror((rx)->err)); \
	EXPECT_EQ((uint64_t)(bytes), (rx)->got); \
	EXPECT_EQ(-1, (rx)->bad) \
		TH_LOG("receiver: wrong data at stream offset %" PRId64, \
		       (rx)->bad); \
} while (0)

/*
 * Sends @chunk-sized pieces of @buf (stream offset log->bytes onwards) with
 * MSG_DONTWAIT until the socket refuses with EAGAIN; then, since ACKs of
 * what was in the receive window may still free room, waits 100 ms and
 * fills again, so that the connection is left stalled for good. Returns 0 once EAGAIN
 * came, 1 if @len ran out first, or the negative errno of another failure.
 * Every accepted send is logged with user_data @ud_base + its index.
 */
static __maybe_unused int zc_fill_until_eagain(int zfd, int fd,
					       const uint8_t *buf, size_t len,
					       size_t chunk, uint64_t ud_base,
					       struct zc_log *log)
{
	int round, ret;
	size_t n;

	for (round = 0; round < 2; round++) {
		if (round)
			zc_msleep(100);
		for (;;) {
			if (log->bytes >= len)
				return 1;
			n = len - log->bytes < chunk ? len - log->bytes : chunk;
			ret = zc_send(zfd, fd, buf + log->bytes, n,
				      MSG_DONTWAIT | MSG_NOSIGNAL, NULL, 0,
				      ud_base + log->n);
			if (ret == -EAGAIN)
				break;
			if (ret < 0)
				return ret;
			if (ret == 0)
				return -EPROTO;
			zc_log_add(log, ud_base + log->n, ret);
		}
	}
	return 0;
}

/* ----------------------------------------------------------------------
 * A dummy device with addresses and static neighbours, set up with ip
 */

/* Where ip is looked for before PATH: the guest has iproute2 at /sbin/ip. */
static const char *const zc_ip_paths[] = {
	"/sbin/ip", "/usr/sbin/ip", "/bin/ip", "/usr/bin/ip",
};

/* ip's failure messages that carry no strerror() text, and their errno. */
static const struct {
	const char *msg;
	int err;
} zc_ip_msgs[] = {
	{ "Unknown device type", EOPNOTSUPP },	/* no CONFIG_DUMMY */
	{ "IPv6 is disabled", EACCES },
	{ "Cannot find device", ENODEV },
};

/*
 * The errno a failed ip names in @msg: a known message, else the longest
 * strerror() text in it ("RTNETLINK answers: Operation not permitted"),
 * else EIO.
 */
static __maybe_unused int zc_ip_errno(const char *msg)
{
	size_t best = 0;
	int err = EIO, e;

	for (e = 0; e < (int)ARRAY_SIZE(zc_ip_msgs); e++)
		if (strstr(msg, zc_ip_msgs[e].msg))
			return zc_ip_msgs[e].err;
	for (e = 1; e < 134; e++) {
		const char *s = strerror(e);

		if (strlen(s) > best && strstr(msg, s)) {
			best = strlen(s);
			err = e;
		}
	}
	return err;
}

/*
 * Runs ip with the arguments after @why (NULL ended), without a shell:
 * /sbin/ip or the first of zc_ip_paths that exists, else ip from PATH.
 * Returns 0, or a negative errno read from ip's message (zc_ip_errno());
 * then *@why is "ip ARGS: MESSAGE", valid until the next call.
 */
static __maybe_unused __attribute__((sentinel)) int
zc_ip(const char **why, ...)
{
	static char buf[512];
	const char *argv[16] = { "ip" };
	posix_spawn_file_actions_t fa;
	size_t used, got = 0;
	int fds[2], st, err, argc = 1, i;
	va_list ap;
	ssize_t n;
	pid_t pid;

	va_start(ap, why);
	while (argc < 15 && (argv[argc] = va_arg(ap, const char *)))
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	used = snprintf(buf, sizeof(buf), "ip");
	for (i = 1; i < argc && used < sizeof(buf); i++)
		used += snprintf(buf + used, sizeof(buf) - used, " %s", argv[i]);
	*why = buf;
	if (used >= sizeof(buf) - 3)
		return -E2BIG;
	used += snprintf(buf + used, sizeof(buf) - used, ": ");

	if (pipe2(fds, O_CLOEXEC))
		return -errno;
	/*
	 * posix_spawn: vfork-like, so neither the test's threads nor its
	 * mappings (pinned pages included) are copied for the child.
	 */
	err = posix_spawn_file_actions_init(&fa);
	if (!err) {
		err = posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
		if (!err)
			err = posix_spawn_file_actions_adddup2(&fa, fds[1],
							       STDERR_FILENO);
		/* The first of zc_ip_paths that runs, else ip from PATH. */
		for (i = 0; !err && i < (int)ARRAY_SIZE(zc_ip_paths); i++)
			if (!posix_spawn(&pid, zc_ip_paths[i], &fa, NULL,
					 (char *const *)argv, environ))
				break;
		if (!err && i == (int)ARRAY_SIZE(zc_ip_paths))
			err = posix_spawnp(&pid, "ip", &fa, NULL,
					   (char *const *)argv, environ);
		posix_spawn_file_actions_destroy(&fa);
	}
	close(fds[1]);
	if (err) {
		close(fds[0]);
		snprintf(buf + used, sizeof(buf) - used,
			 "cannot run ip (not at /sbin/ip, nor in PATH): %s",
			 strerror(err));
		return -err;
	}
	/* Keep the start of ip's output, read it all. */
	for (;;) {
		char drop[256];

		if (used + got < sizeof(buf) - 1)
			n = read(fds[0], buf + used + got, sizeof(buf) - 1 - used - got);
		else
			n = read(fds[0], drop, sizeof(drop));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (used + got < sizeof(buf) - 1)
			got += n;
	}
	close(fds[0]);
	buf[used + got] = 0;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(st) && !WEXITSTATUS(st))
		return 0;
	/* The message's first line, or how ip ended. */
	buf[used + strcspn(buf + used, "\n")] = 0;
	if (!buf[used])
		snprintf(buf + used, sizeof(buf) - used, "ip %s %d, no message",
			 WIFEXITED(st) ? "exit status" : "killed by signal",
			 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	return -zc_ip_errno(buf + used);
}

static __maybe_unused int zc_write_file(const char *path, const char *val)
{
	int fd, ret = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* Addresses of the dummy0 set-up: ours and the static neighbour's. */
#define ZC_DUMMY_IP4		"10.99.0.1"
#define ZC_DUMMY_PEER4		"10.99.0.2"
#define ZC_DUMMY_IP6		"fd99::1"
#define ZC_DUMMY_PEER6		"fd99::2"

/*
 * Moves the calling process into a new network namespace holding dummy0
 * (@mtu, up, 10.99.0.1/24 and fd99::1/64, permanent neighbours 10.99.0.2
 * and fd99::2 at 02:00:00:00:00:02) and raises net.core.optmem_max, with
 * ip as tools/testing/selftests/net/msg_zerocopy.sh does. Returns 0 or a
 * negative errno: -EPERM or -EACCES without the rights, -EOPNOTSUPP from
 * "ip link add" without CONFIG_DUMMY, -EAFNOSUPPORT (or -EOPNOTSUPP) from
 * the IPv6 steps without IPv6; @why then names the step that failed and
 * what ip said.
 */
static __maybe_unused int zc_netns_dummy(uint32_t mtu, bool ipv6,
					 const char **why)
{
	static const char mac[] = "02:00:00:00:00:02";
	char mtu_s[16];
	int ret;

	*why = "unshare(CLONE_NEWNET)";
	if (unshare(CLONE_NEWNET))
		return -errno;
	snprintf(mtu_s, sizeof(mtu_s), "%u", mtu);
	ret = zc_ip(why, "link", "add", "dummy0", "mtu", mtu_s, "type", "dummy",
		    NULL);
	if (!ret)
		ret = zc_ip(why, "link", "set", "dummy0", "up", NULL);
	if (!ret)
		ret = zc_ip(why, "addr", "add", ZC_DUMMY_IP4 "/24", "dev",
			    "dummy0", NULL);
	if (!ret)
		ret = zc_ip(why, "neigh", "replace", ZC_DUMMY_PEER4, "lladdr",
			    mac, "dev", "dummy0", "nud", "permanent", NULL);
	if (!ret && ipv6)
		ret = zc_ip(why, "-6", "addr", "add", ZC_DUMMY_IP6 "/64", "dev",
			    "dummy0", "nodad", NULL);
	if (!ret && ipv6)
		ret = zc_ip(why, "-6", "neigh", "replace", ZC_DUMMY_PEER6,
			    "lladdr", mac, "dev", "dummy0", "nud", "permanent",
			    NULL);
	if (ret)
		return ret;
	/* Per namespace since 6.x; zcsend itself does not need optmem. */
	zc_write_file("/proc/sys/net/core/optmem_max", "1000000");
	*why = NULL;
	return 0;
}

#endif /* ZCSEND_HELPERS_H */
