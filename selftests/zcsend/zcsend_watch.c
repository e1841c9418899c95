// SPDX-License-Identifier: GPL-2.0
/*
 * Watching zcsend from outside: the module-wide counters of
 * /sys/kernel/debug/zcsend/stats and the zcsend:* tracepoints
 * (rust/trace.c, rust/zcsend_trace.h), checked against UDP sends of a
 * known shape out dummy0 (MTU 65535, static neighbour: true zero-copy) in
 * a network namespace of the test's own. Also UDP GSO (UDP_SEGMENT) from
 * pinned pages out dummy0.
 *
 * debugfs and tracefs are mounted when they are not (and left mounted); a
 * kernel without them (mount fails with ENODEV, or the mount point is
 * missing) skips. The debugfs counters are module-wide: the tests compare
 * deltas and assume nothing else sends through zcsend meanwhile (the suite
 * runs its programs one after another).
 */
#include <stdarg.h>
#include <sys/mount.h>
#include <sys/vfs.h>
#include <netinet/udp.h>

#include <linux/magic.h>

#include "zcsend_helpers.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT		103
#endif
#ifndef DEBUGFS_MAGIC
#define DEBUGFS_MAGIC		0x64626720
#endif
#ifndef TRACEFS_MAGIC
#define TRACEFS_MAGIC		0x74726163
#endif

#define SEED		0x5eed0009ULL
#define PAGE		4096
#define BUF_LEN		(1 << 20)
/* A zero-copy datagram out dummy0: 16 pages from a page-aligned start. */
#define DGRAM		65000
#define SMALL		100

#define DEBUGFS_DIR	"/sys/kernel/debug"
#define STATS_FILE	DEBUGFS_DIR "/zcsend/stats"
#define TRACEFS_DIR	"/sys/kernel/tracing"
#define EVENTS_ENABLE	TRACEFS_DIR "/events/zcsend/enable"

/* ----------------------------------------------------------------------
 * /sys/kernel/debug/zcsend/stats
 */

/* The order of zcsend_counter_names[] in rust/trace.c. */
enum {
	C_SENDS, C_BYTES, C_ZEROCOPY, C_COPIED, C_FB_THRESHOLD, C_FB_FRAG,
	C_FB_SOCKET, C_PINNED, C_INFLIGHT, C_CHAIN_CAP, C_LINKED, C_FANOUTS,
	C_FANOUT_DESTS, C_REGISTERED, C_NR
};

static const char *const counter_names[C_NR] = {
	"sends", "bytes", "zerocopy", "copied", "fallback_threshold",
	"fallback_frag_limit", "fallback_socket", "pinned_pages", "inflight",
	"chain_cap_hits", "linked", "fanouts", "fanout_dests",
	"registered_pages",
};

struct dstats {
	int64_t v[C_NR];
};

/* Reads every counter; 0, -errno, or -ENOENT if one is missing. */
static int dstats_read(struct dstats *s)
{
	char line[128], name[64];
	long long val;
	unsigned int found = 0;
	FILE *f;
	int i;

	f = fopen(STATS_FILE, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63s %lld", name, &val) != 2)
			continue;
		for (i = 0; i < C_NR; i++) {
			if (!strcmp(name, counter_names[i])) {
				s->v[i] = val;
				found |= 1U << i;
			}
		}
	}
	fclose(f);
	return found == (1U << C_NR) - 1 ? 0 : -ENOENT;
}

static int64_t delta(const struct dstats *a, const struct dstats *b, int i)
{
	return b->v[i] - a->v[i];
}

/*
 * The per-CPU sums are exact only when nothing is in motion, and a send's
 * inflight and pinned_pages shares are dropped just after its record is
 * posted: reads until both gauges are back at @before's and sends grew by
 * @sends, or ZC_WAIT_MS passed. Returns the last read's error.
 */
static int dstats_settle(const struct dstats *before, int64_t sends,
			 struct dstats *now)
{
	int64_t end = zc_now_ms() + ZC_WAIT_MS;
	int ret;

	for (;;) {
		ret = dstats_read(now);
		if (ret)
			return ret;
		if (now->v[C_INFLIGHT] == before->v[C_INFLIGHT] &&
		    now->v[C_PINNED] == before->v[C_PINNED] &&
		    delta(before, now, C_SENDS) >= sends)
			return 0;
		if (zc_now_ms() > end)
			return 0;
		zc_msleep(10);
	}
}

static void dstats_log(struct __test_metadata *_metadata,
		       const struct dstats *a, const struct dstats *b)
{
	int i;

	for (i = 0; i < C_NR; i++)
		if (delta(a, b, i))
			TH_LOG("debugfs %s: %" PRId64 " -> %" PRId64 " (%+" PRId64 ")",
			       counter_names[i], a->v[i], b->v[i],
			       delta(a, b, i));
}

/*
 * Mounts @type at @dir unless it is mounted there already. 0 or the
 * negative errno of statfs/mount: -ENODEV (not in the kernel) and -ENOENT
 * (no mount point: not in the kernel either) mean skip.
 */
static int ensure_mounted(const char *dir, const char *type, long magic)
{
	struct statfs sf;

	if (!statfs(dir, &sf) && (long)sf.f_type == magic)
		return 0;
	if (mount(type, dir, type, 0, NULL))
		return -errno;
	return 0;
}

static int debugfs_ready(void)
{
	int ret = ensure_mounted(DEBUGFS_DIR, "debugfs", DEBUGFS_MAGIC);

	if (ret)
		return ret;
	return access(STATS_FILE, R_OK) ? -errno : 0;
}

/* In a test body: debugfs mounted and the module's stats file there. */
#define NEED_DEBUGFS() do { \
	int __r = ensure_mounted(DEBUGFS_DIR, "debugfs", DEBUGFS_MAGIC); \
	if (__r == -ENODEV || __r == -ENOENT) \
		SKIP(return, "no debugfs: mount debugfs on " DEBUGFS_DIR \
		     ": %s", strerror(-__r)); \
	ASSERT_EQ(0, __r) TH_LOG("mount debugfs on " DEBUGFS_DIR ": %s", \
				 strerror(-__r)); \
	ASSERT_EQ(0, access(STATS_FILE, R_OK)) \
		TH_LOG(STATS_FILE ": %s (module without its counters?)", \
		       strerror(errno)); \
} while (0)

/* ----------------------------------------------------------------------
 * tracefs
 */

/* Empties the ring buffer of the top-level instance. */
static int trace_clear(void)
{
	int fd = open(TRACEFS_DIR "/trace", O_WRONLY | O_TRUNC | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

/* The whole of /sys/kernel/tracing/trace, NUL-terminated, or NULL. */
static char *trace_read(void)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap), *nb;
	ssize_t n;
	int fd;

	if (!buf)
		return NULL;
	fd = open(TRACEFS_DIR "/trace", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		free(buf);
		return NULL;
	}
	for (;;) {
		if (cap - len < 4096) {
			nb = realloc(buf, cap * 2);
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += n;
	}
	close(fd);
	buf[len] = 0;
	return buf;
}

/*
 * The first line of @text holding every one of the NULL-terminated
 * strings after @outlen, copied into @out; false if there is none.
 */
static bool trace_find(const char *text, char *out, size_t outlen, ...)
{
	const char *p = text, *eol, *s;
	bool all;
	va_list ap;

	for (; *p; p = *eol ? eol + 1 : eol) {
		eol = strchrnul(p, '\n');
		all = true;
		va_start(ap, outlen);
		while ((s = va_arg(ap, const char *)))
			if (!memmem(p, eol - p, s, strlen(s))) {
				all = false;
				break;
			}
		va_end(ap);
		if (all) {
			snprintf(out, outlen, "%.*s", (int)(eol - p), p);
			return true;
		}
	}
	if (outlen)
		out[0] = 0;
	return false;
}

/* Logs the zcsend lines of @text (the first 40), after a failed check. */
static void trace_log(struct __test_metadata *_metadata, const char *text)
{
	const char *p = text, *eol;
	int n = 0;

	for (; *p && n < 40; p = *eol ? eol + 1 : eol) {
		eol = strchrnul(p, '\n');
		if (memmem(p, eol - p, "zcsend_", 7)) {
			TH_LOG("trace: %.*s", (int)(eol - p), p);
			n++;
		}
	}
	if (!n)
		TH_LOG("trace: no zcsend events (%zu bytes of trace)",
		       strlen(text));
}

/* The number after @key in @line, or 0. */
static uint64_t trace_field(const char *line, const char *key)
{
	const char *p = strstr(line, key);

	return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

/* ----------------------------------------------------------------------
 * The fixture: dummy0 at MTU 65535 in a namespace of our own
 */

FIXTURE(watch) {
	int zfd, fd;
	uint8_t *buf;
	int64_t pins;
	uint64_t thr;
	struct sockaddr_storage dst;
	socklen_t dstlen;
	/* Set once the test turned the events on: the teardown undoes it. */
	bool events_on;
	char tracing_on_was;
};

FIXTURE_SETUP(watch)
{
	const char *why;
	int ret;

	self->fd = -1;
	self->zfd = zc_open();
	ASSERT_LE(0, self->zfd) TH_LOG("open %s: %s", ZCSEND_DEVICE,
				       strerror(errno));
	self->buf = zc_map_pattern(BUF_LEN, SEED);
	ASSERT_NE(NULL, self->buf);
	self->thr = zc_copy_threshold();
	self->pins = zc_pins_outstanding();

	ret = zc_netns_dummy(65535, false, &why);
	if (ret == -EPERM || ret == -EACCES)
		SKIP(return, "%s: %s (needs root)", why, strerror(-ret));
	if (ret == -EOPNOTSUPP && !strncmp(why, "ip link add", 11))
		SKIP(return, "no dummy device (CONFIG_DUMMY)");
	ASSERT_EQ(0, ret) TH_LOG("%s: %s", why, strerror(-ret));
	/* No IPv6 router solicitations among dummy0's tx packets. */
	zc_write_file("/proc/sys/net/ipv6/conf/dummy0/disable_ipv6", "1");

	self->dstlen = zc_addr(AF_INET, ZC_DUMMY_PEER4, 9, &self->dst);
	self->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, self->fd);
}

/*
 * In the parent, after the test's process is gone however it ended
 * (ASSERT, crash): the events go off again, and every pin the test's sends
 * and registrations took is back (its files are closed by then). The
 * test's fds and mappings went with its process.
 */
FIXTURE_TEARDOWN_PARENT(watch)
{
	if (self->events_on) {
		zc_write_file(EVENTS_ENABLE, "0");
		if (self->tracing_on_was == '0')
			zc_write_file(TRACEFS_DIR "/tracing_on", "0");
		self->events_on = false;
	}
	ZC_EXPECT_PINS_BACK(self->pins);
}

/*
 * Turns tracing and the zcsend events on (remembering tracing_on for the
 * teardown) and empties the buffer. 0 or a negative errno.
 */
static int events_on(FIXTURE_DATA(watch) *self)
{
	char c = '1';
	int fd, ret;

	fd = open(TRACEFS_DIR "/tracing_on", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, &c, 1) != 1)
			c = '1';
		close(fd);
	}
	self->tracing_on_was = c;
	self->events_on = true;
	ret = zc_write_file(TRACEFS_DIR "/tracing_on", "1");
	if (!ret)
		ret = zc_write_file(EVENTS_ENABLE, "1");
	if (!ret)
		ret = trace_clear();
	return ret;
}

/* 0 when tracefs is mounted and has the zcsend events, else -errno. */
static int tracefs_ready(void)
{
	int ret = ensure_mounted(TRACEFS_DIR, "tracefs", TRACEFS_MAGIC);

	if (ret)
		return ret;
	return access(EVENTS_ENABLE, W_OK) ? -errno : 0;
}

/* In a test body: tracefs there, zcsend events on, buffer empty. */
#define NEED_EVENTS() do { \
	int __r = ensure_mounted(TRACEFS_DIR, "tracefs", TRACEFS_MAGIC); \
	if (__r == -ENODEV || __r == -ENOENT) \
		SKIP(return, "no tracefs: mount tracefs on " TRACEFS_DIR \
		     ": %s", strerror(-__r)); \
	ASSERT_EQ(0, __r) TH_LOG("mount tracefs on " TRACEFS_DIR ": %s", \
				 strerror(-__r)); \
	ASSERT_EQ(0, access(EVENTS_ENABLE, W_OK)) \
		TH_LOG(EVENTS_ENABLE ": %s (module without tracepoints?)", \
		       strerror(errno)); \
	__r = events_on(self); \
	ASSERT_EQ(0, __r) TH_LOG("enabling the zcsend events: %s", \
				 strerror(-__r)); \
} while (0)

/* Asserts a line of @text holding all the strings; copies it to @line. */
#define EXPECT_TRACE(text, line, ...) do { \
	EXPECT_TRUE(trace_find(text, line, sizeof(line), __VA_ARGS__, NULL)) \
		TH_LOG("no trace line with %s", #__VA_ARGS__); \
} while (0)

static int reg(int zfd, const struct zcsend_buffer *b, uint32_t nr)
{
	struct zcsend_register r = { .bufs = (uintptr_t)b, .nr = nr };
	int ret = ioctl(zfd, ZCSEND_IOC_REGISTER_BUFFERS, &r);

	return ret < 0 ? -errno : ret;
}

static int unreg(int zfd)
{
	return ioctl(zfd, ZCSEND_IOC_UNREGISTER_BUFFERS) ? -errno : 0;
}

static int send_fixed(int zfd, int fd, const struct zcsend_range *r,
		      unsigned int n, const void *addr, socklen_t addrlen,
		      uint64_t ud)
{
	struct zcsend_send s = {
		.fd = fd, .flags = ZCSEND_SEND_FIXED,
		.iov = (uintptr_t)r, .iovcnt = n,
		.addr = (uintptr_t)addr, .addrlen = addrlen, .user_data = ud,
	};
	int ret = ioctl(zfd, ZCSEND_IOC_SEND, &s);

	return ret < 0 ? -errno : ret;
}

/* ----------------------------------------------------------------------
 * debugfs counters
 */

#define ZC_SENDS	8
#define SMALL_SENDS	4

/*
 * 8 zero-copy datagrams and 4 below copy_threshold: the module-wide
 * counters grow by exactly those sends, and the gauges (inflight,
 * pinned_pages) come back once every completion was read.
 */
TEST_F(watch, debugfs_counts)
{
	struct dstats before, after;
	struct zc_log log = { 0 };
	size_t small = SMALL;
	struct zc_tally t;
	int i, ret;

	if (!self->thr || self->thr > DGRAM)
		SKIP(return, "copy_threshold %" PRIu64 ": no copy path or no zero-copy datagram",
		     self->thr);
	if (self->thr <= small)
		small = self->thr - 1;
	NEED_DEBUGFS();
	ASSERT_EQ(0, dstats_read(&before));

	for (i = 0; i < ZC_SENDS; i++) {
		ret = zc_send(self->zfd, self->fd, self->buf + i * 65536, DGRAM,
			      0, &self->dst, self->dstlen, 0x100 + i);
		ASSERT_EQ(DGRAM, ret) TH_LOG("send %d: %s", i,
					     strerror(-ret));
		zc_log_add(&log, 0x100 + i, ret);
	}
	for (i = 0; i < SMALL_SENDS; i++) {
		ret = zc_send(self->zfd, self->fd, self->buf + 7 + i * 1000,
			      small, 0, &self->dst, self->dstlen, 0x200 + i);
		ASSERT_EQ(small, ret) TH_LOG("small send %d: %s", i,
					     strerror(-ret));
		zc_log_add(&log, 0x200 + i, ret);
	}
	zc_expect_completions(_metadata, self->zfd, &log, 0, 0, &t);
	EXPECT_EQ(ZC_SENDS, t.zerocopy);
	EXPECT_EQ(SMALL_SENDS, t.copied);
	EXPECT_EQ(SMALL_SENDS, t.copy_path);

	ASSERT_EQ(0, dstats_settle(&before, ZC_SENDS + SMALL_SENDS, &after));
	/* Settled: the file's own counters agree. */
	zc_expect_idle_stats(_metadata, self->zfd, ZC_SENDS + SMALL_SENDS,
			     ZC_SENDS, SMALL_SENDS);
	dstats_log(_metadata, &before, &after);
	EXPECT_EQ(ZC_SENDS + SMALL_SENDS, delta(&before, &after, C_SENDS));
	EXPECT_EQ((int64_t)log.bytes, delta(&before, &after, C_BYTES));
	EXPECT_EQ(ZC_SENDS * DGRAM + SMALL_SENDS * small,
		  (size_t)delta(&before, &after, C_BYTES));
	EXPECT_EQ(ZC_SENDS, delta(&before, &after, C_ZEROCOPY));
	EXPECT_EQ(SMALL_SENDS, delta(&before, &after, C_COPIED));
	EXPECT_EQ(SMALL_SENDS, delta(&before, &after, C_FB_THRESHOLD));
	EXPECT_EQ(0, delta(&before, &after, C_FB_FRAG));
	EXPECT_EQ(0, delta(&before, &after, C_FB_SOCKET));
	EXPECT_EQ(before.v[C_INFLIGHT], after.v[C_INFLIGHT]);
	EXPECT_EQ(before.v[C_PINNED], after.v[C_PINNED]);
	zc_log_free(&log);
}

/*
 * registered_pages follows ZCSEND_IOC_REGISTER_BUFFERS and
 * ZCSEND_IOC_UNREGISTER_BUFFERS: the pages each buffer spans.
 */
TEST_F(watch, debugfs_registered_pages)
{
	struct zcsend_buffer b[2] = {
		{ (uintptr_t)self->buf, 64 << 10 },
		/* Unaligned: 64 KiB over 17 pages. */
		{ (uintptr_t)self->buf + (128 << 10) + 100, 64 << 10 },
	};
	struct dstats base, now;
	int ret;

	NEED_DEBUGFS();
	ASSERT_EQ(0, dstats_read(&base));

	ret = reg(self->zfd, b, 1);
	ASSERT_LE(0, ret) TH_LOG("register: %s", strerror(-ret));
	ASSERT_EQ(0, dstats_read(&now));
	dstats_log(_metadata, &base, &now);
	EXPECT_EQ(16, delta(&base, &now, C_REGISTERED));
	ASSERT_EQ(0, unreg(self->zfd));
	ASSERT_EQ(0, dstats_read(&now));
	EXPECT_EQ(0, delta(&base, &now, C_REGISTERED));

	ret = reg(self->zfd, b, 2);
	ASSERT_LE(0, ret) TH_LOG("register two: %s", strerror(-ret));
	ASSERT_EQ(0, dstats_read(&now));
	EXPECT_EQ(16 + 17, delta(&base, &now, C_REGISTERED));
	/* Registered pages are not the pins of sends in flight. */
	TH_LOG("pinned_pages %+" PRId64 " while 33 pages are registered",
	       delta(&base, &now, C_PINNED));
	ASSERT_EQ(0, unreg(self->zfd));
	ASSERT_EQ(0, dstats_read(&now));
	EXPECT_EQ(0, delta(&base, &now, C_REGISTERED));
}

/* ----------------------------------------------------------------------
 * Tracepoints
 */

#define UD_PLAIN	0x5eedULL	/* 24301 */
#define UD_FIXED	0x5eeeULL	/* 24302 */

/*
 * One zero-copy send and one from a registered buffer, out dummy0: each
 * shows up as zcsend_send with its path and as zcsend_complete with
 * ZEROCOPY and a latency; the registration as zcsend_register.
 */
TEST_F(watch, tracepoints_fire)
{
	struct zcsend_buffer b = { (uintptr_t)self->buf + (512 << 10),
				   64 << 10 };
	struct zcsend_range r = { 0, 0, 0, DGRAM };
	struct zc_log log = { 0 };
	char line[512], ud1[32], ud2[32], res[32];
	uint64_t lat;
	char *text;
	int ret;

	if (self->thr > DGRAM)
		SKIP(return, "copy_threshold %" PRIu64 " > %d: no zero-copy datagram",
		     self->thr, DGRAM);
	NEED_EVENTS();

	ret = zc_send(self->zfd, self->fd, self->buf, DGRAM, 0, &self->dst,
		      self->dstlen, UD_PLAIN);
	ASSERT_EQ(DGRAM, ret) TH_LOG("send: %s", strerror(-ret));
	zc_log_add(&log, UD_PLAIN, ret);
	ret = reg(self->zfd, &b, 1);
	ASSERT_LE(0, ret) TH_LOG("register: %s", strerror(-ret));
	ret = send_fixed(self->zfd, self->fd, &r, 1, &self->dst, self->dstlen,
			 UD_FIXED);
	ASSERT_EQ(DGRAM, ret) TH_LOG("fixed send: %s", strerror(-ret));
	zc_log_add(&log, UD_FIXED, ret);
	zc_expect_completions(_metadata, self->zfd, &log,
			      ZCSEND_COMPL_ZEROCOPY, ZCSEND_COMPL_COPY_PATH,
			      NULL);
	EXPECT_EQ(0, unreg(self->zfd));

	text = trace_read();
	ASSERT_NE(NULL, text) TH_LOG("reading " TRACEFS_DIR "/trace: %s",
				     strerror(errno));
	snprintf(ud1, sizeof(ud1), "user_data=%llu ",
		 (unsigned long long)UD_PLAIN);
	snprintf(ud2, sizeof(ud2), "user_data=%llu ",
		 (unsigned long long)UD_FIXED);
	snprintf(res, sizeof(res), "result=%d ", DGRAM);

	EXPECT_TRACE(text, line, "zcsend_send:", ud1, res, "pages=16 ",
		     "path=zerocopy");
	TH_LOG("%s", line);
	EXPECT_TRACE(text, line, "zcsend_complete:", ud1, "flags=ZEROCOPY ",
		     "latency_ns=");
	TH_LOG("%s", line);
	lat = trace_field(line, "latency_ns=");
	EXPECT_LT(0, lat) TH_LOG("latency_ns of the zero-copy send is 0");

	EXPECT_TRACE(text, line, "zcsend_register:", "buffers=1 ",
		     "pages=16 ");
	TH_LOG("%s", line);
	EXPECT_TRACE(text, line, "zcsend_send:", ud2, res, "path=fixed");
	TH_LOG("%s", line);
	EXPECT_TRACE(text, line, "zcsend_complete:", ud2, "flags=ZEROCOPY ");
	TH_LOG("%s", line);

	if (_metadata->exit_code == KSFT_FAIL)
		trace_log(_metadata, text);
	free(text);
	zc_log_free(&log);
}

/*
 * The copy paths by name: a send below copy_threshold, and a datagram of
 * 20 iovecs on 20 pages (more frags than an skb holds). Each is
 * zcsend_send with its path and no pages, and completes COPIED|COPY_PATH;
 * the fallback counters say the same when debugfs is there.
 */
TEST_F(watch, tracepoint_copy_paths)
{
	struct zc_log log = { 0 };
	struct dstats before, after;
	struct iovec iov[20];
	char line[512], ud[32], res[32];
	size_t small = SMALL, seg, total = 0;
	bool dbg;
	char *text;
	int i, ret;

	if (!self->thr)
		SKIP(return, "copy_threshold is 0: no copy_threshold path");
	if (self->thr <= small)
		small = self->thr - 1;
	/* 20 pieces that together reach the threshold, one page each. */
	seg = (self->thr + 19) / 20;
	if (seg < 1000)
		seg = 1000;
	if (seg > 3000)
		SKIP(return, "copy_threshold %" PRIu64 ": 20 one-page pieces stay below it",
		     self->thr);
	for (i = 0; i < 20; i++) {
		iov[i].iov_base = self->buf + 100 + i * 2 * PAGE;
		iov[i].iov_len = seg;
		total += seg;
	}
	ASSERT_EQ(20, zc_count_frags(iov, 20));

	NEED_EVENTS();
	dbg = !debugfs_ready() && !dstats_read(&before);
	if (!dbg)
		TH_LOG("no debugfs counters: checking the trace only");

	ret = zc_send(self->zfd, self->fd, self->buf + 5, small, 0,
		      &self->dst, self->dstlen, 1001);
	ASSERT_EQ(small, ret) TH_LOG("small send: %s", strerror(-ret));
	zc_log_add(&log, 1001, ret);
	ret = zc_sendv(self->zfd, self->fd, iov, 20, 0, &self->dst,
		       self->dstlen, 1002);
	ASSERT_EQ(total, ret) TH_LOG("20-iovec send: %s", strerror(-ret));
	zc_log_add(&log, 1002, ret);
	zc_expect_completions(_metadata, self->zfd, &log,
			      ZCSEND_COMPL_COPIED | ZCSEND_COMPL_COPY_PATH,
			      ZCSEND_COMPL_ZEROCOPY, NULL);

	text = trace_read();
	ASSERT_NE(NULL, text) TH_LOG("reading " TRACEFS_DIR "/trace: %s",
				     strerror(errno));
	snprintf(ud, sizeof(ud), "user_data=%d ", 1001);
	snprintf(res, sizeof(res), "result=%zu ", small);
	EXPECT_TRACE(text, line, "zcsend_send:", ud, res, "pages=0 ",
		     "path=copy_threshold");
	TH_LOG("%s", line);
	EXPECT_TRACE(text, line, "zcsend_complete:", ud,
		     "flags=COPIED|COPY_PATH ");
	TH_LOG("%s", line);
	snprintf(ud, sizeof(ud), "user_data=%d ", 1002);
	snprintf(res, sizeof(res), "result=%zu ", total);
	EXPECT_TRACE(text, line, "zcsend_send:", ud, res, "pages=0 ",
		     "path=frag_limit");
	TH_LOG("%s", line);
	EXPECT_TRACE(text, line, "zcsend_complete:", ud,
		     "flags=COPIED|COPY_PATH ");
	TH_LOG("%s", line);
	if (_metadata->exit_code == KSFT_FAIL)
		trace_log(_metadata, text);
	free(text);

	if (dbg) {
		ASSERT_EQ(0, dstats_settle(&before, 2, &after));
		dstats_log(_metadata, &before, &after);
		EXPECT_EQ(1, delta(&before, &after, C_FB_THRESHOLD));
		EXPECT_EQ(1, delta(&before, &after, C_FB_FRAG));
		EXPECT_EQ(2, delta(&before, &after, C_COPIED));
		EXPECT_EQ(0, delta(&before, &after, C_ZEROCOPY));
		/* The copy paths pin nothing. */
		EXPECT_EQ(before.v[C_PINNED], after.v[C_PINNED]);
	}
	zc_log_free(&log);
}

/* ----------------------------------------------------------------------
 * UDP GSO
 */

#define GSO_SIZE	1400
#define GSO_LEN		60000

/* dummy0's tx counters from /proc/net/dev (this process's namespace). */
static int dummy_tx(uint64_t *packets, uint64_t *bytes)
{
	char line[512], *p;
	int ret = -ENOENT;
	FILE *f;

	f = fopen("/proc/net/dev", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		p = line + strspn(line, " ");
		if (strncmp(p, "dummy0:", 7))
			continue;
		/* rx: bytes packets errs drop fifo frame compressed multicast */
		if (sscanf(p + 7, "%*u %*u %*u %*u %*u %*u %*u %*u %" SCNu64
			   " %" SCNu64, bytes, packets) == 2)
			ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

/*
 * A UDP socket with UDP_SEGMENT 1400 sends one 60000-byte payload from
 * page-aligned memory (15 frags): one ioctl returning 60000, one
 * completion. dummy0 offers GSO_UDP_L4, so the stack should hand it the
 * skb whole (one tx packet, ZEROCOPY); segmented in software it would be
 * 43 packets and the payload copied (COPIED). Both pass; which one it was
 * is logged, with the trace line and counters that explain it.
 */
TEST_F(watch, udp_gso_dummy0)
{
	const uint64_t segs = (GSO_LEN + GSO_SIZE - 1) / GSO_SIZE;
	uint64_t p0, p1, b0, b1, pk;
	struct dstats before, after;
	struct zc_log log = { 0 };
	int gso = GSO_SIZE, ret;
	uint32_t flags;
	char line[512], *text;
	bool dbg, trc;

	if (self->thr > GSO_LEN)
		SKIP(return, "copy_threshold %" PRIu64 " > %d", self->thr,
		     GSO_LEN);
	if (setsockopt(self->fd, IPPROTO_UDP, UDP_SEGMENT, &gso, sizeof(gso)))
		SKIP(return, "setsockopt(UDP_SEGMENT): %s", strerror(errno));
	/* Best effort: what explains a COPIED. */
	dbg = !debugfs_ready() && !dstats_read(&before);
	trc = !tracefs_ready() && !events_on(self);
	ASSERT_EQ(0, dummy_tx(&p0, &b0)) TH_LOG("dummy0 in /proc/net/dev");

	ret = zc_send(self->zfd, self->fd, self->buf, GSO_LEN, 0, &self->dst,
		      self->dstlen, 0x650);
	ASSERT_EQ(GSO_LEN, ret) TH_LOG("send: %s",
				       ret < 0 ? strerror(-ret) : "short");
	zc_log_add(&log, 0x650, ret);
	zc_expect_completions(_metadata, self->zfd, &log, 0,
			      ZCSEND_COMPL_COPY_PATH, NULL);
	ASSERT_EQ(1, log.n);
	flags = log.v[0].flags;
	TH_LOG("UDP GSO of %d bytes in %d x %d: completion flags %#x (%s)",
	       GSO_LEN, (int)segs, GSO_SIZE, flags,
	       flags & ZCSEND_COMPL_ZEROCOPY ? "ZEROCOPY" :
	       flags & ZCSEND_COMPL_COPIED ? "COPIED" : "neither");

	ASSERT_EQ(0, dummy_tx(&p1, &b1));
	pk = p1 - p0;
	TH_LOG("dummy0 tx: %" PRIu64 " packets, %" PRIu64 " bytes: %s", pk,
	       b1 - b0, pk == 1 ? "one GSO skb, not segmented" :
	       pk == segs ? "segmented before dummy0" : "unexpected");
	EXPECT_TRUE(pk == 1 || pk == segs)
		TH_LOG("dummy0 counted %" PRIu64 " packets, want 1 or %" PRIu64,
		       pk, segs);

	if (trc) {
		text = trace_read();
		if (text && trace_find(text, line, sizeof(line),
				       "zcsend_send:", "user_data=1616 ", NULL))
			TH_LOG("%s", line);
		if (text && trace_find(text, line, sizeof(line),
				       "zcsend_complete:", "user_data=1616 ",
				       NULL))
			TH_LOG("%s", line);
		free(text);
	} else {
		TH_LOG("no tracefs: no zcsend_send line to show");
	}
	if (dbg) {
		if (!dstats_settle(&before, 1, &after))
			dstats_log(_metadata, &before, &after);
	} else {
		TH_LOG("no debugfs: no counters to show");
	}
	if (flags & ZCSEND_COMPL_COPIED)
		TH_LOG("COPIED: the pages were attached (see path= and frags= above) but the stack reported a copy; %s",
		       pk == segs ? "dummy0 got segments: software GSO copied them" :
		       "dummy0 got the skb whole, so the copy came earlier");
	zc_log_free(&log);
}

TEST_HARNESS_MAIN
