// SPDX-License-Identifier: GPL-2.0
/*
 * zcsend under systematic fault injection, as syzkaller does it: N = 1,
 * 2, ... is written to /proc/thread-self/fail-nth right before the one
 * system call under test, failing the N-th fault-injectable site (slab or
 * page allocation, user copy; in zcsend or the socket layer) the calling
 * thread reaches in it, until the call gets through without reaching one.
 *
 * Each call succeeds or fails with a plain errno. A failed send posts no
 * completion, a successful one exactly one, with its user_data and bytes;
 * read() neither loses nor doubles a record; failed opens leak no module
 * reference; every pin comes back and the file ends idle.
 *
 * failslab and fail_page_alloc get ignore-gfp-wait N (and ignore-gfp-highmem
 * N, min-order 0) so that fail-nth reaches GFP_KERNEL allocations; every
 * fault attribute gets verbose 0, so no "FAULT_INJECTION: forcing a failure"
 * stack dump reaches the console; the old values come back after each test
 * and at exit. Without the knobs or fail-nth every test is skipped.
 * ZCSEND_INJECT_MAX (default 400) caps the walk of one call.
 */
#include <sys/mount.h>

#include "zcsend_helpers.h"

#define SEED		0x5eed0005ULL
#define DEBUGFS		"/sys/kernel/debug"
#define FAIL_NTH	"/proc/thread-self/fail-nth"
#define INJECT_MAX	400
#define SETTLE_MS	5
#define BUF_LEN		(256 << 10)
#define SMALL_LEN	1000
#define POST_LEN	100	/* datagrams that only post a record */
#define READ_RECS	40	/* per read(): more than READ_BATCH (32) */

/* ----------------------------------------------------------------------
 * debugfs knobs: saved once by the harness process, set by each test
 */

static const struct {
	const char *dir, *file, *want;
	bool optional;
} knobs[] = {
	{ "failslab", "ignore-gfp-wait", "N" },
	{ "failslab", "task-filter", "Y" },
	{ "failslab", "verbose", "0" },
	{ "fail_page_alloc", "ignore-gfp-wait", "N" },
	{ "fail_page_alloc", "ignore-gfp-highmem", "N" },
	{ "fail_page_alloc", "min-order", "0" },
	{ "fail_page_alloc", "task-filter", "Y" },
	{ "fail_page_alloc", "verbose", "0" },
	{ "fail_usercopy", "task-filter", "Y", true },
	{ "fail_usercopy", "verbose", "0", true },
	/* Others fail-nth would reach if built in: quiet too. */
	{ "fail_futex", "verbose", "0", true },
	{ "fail_skb_realloc", "verbose", "0", true },
	{ "fail_function", "verbose", "0", true },
	{ "fail_make_request", "verbose", "0", true },
};

static struct {
	char old[ARRAY_SIZE(knobs)][32];	/* "" if not there */
	char path[160];				/* of the last write */
	pid_t pid;
	bool mounted;				/* debugfs mounted by us */
	char skip[256];				/* why no test can run */
} inj;

static int read_line(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

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

static void __attribute__((constructor)) inj_snapshot(void)
{
	unsigned int i;
	int ret;

	inj.pid = getpid();
	if (access(DEBUGFS "/failslab", F_OK) &&
	    !mount("debugfs", DEBUGFS, "debugfs", 0, NULL))
		inj.mounted = true;
	if (access(FAIL_NTH, F_OK)) {
		snprintf(inj.skip, sizeof(inj.skip), "no %s: %s (CONFIG_FAULT_INJECTION)",
			 FAIL_NTH, strerror(errno));
		return;
	}
	for (i = 0; i < ARRAY_SIZE(knobs); i++) {
		snprintf(inj.path, sizeof(inj.path), DEBUGFS "/%s/%s",
			 knobs[i].dir, knobs[i].file);
		ret = read_line(inj.path, inj.old[i], sizeof(inj.old[i]));
		if (ret && !knobs[i].optional) {
			snprintf(inj.skip, sizeof(inj.skip),
				 "cannot read %s: %s (CONFIG_FAILSLAB, CONFIG_FAIL_PAGE_ALLOC, CONFIG_FAULT_INJECTION_DEBUG_FS, root)",
				 inj.path, strerror(-ret));
			return;
		}
		if (ret)
			inj.old[i][0] = 0;
	}
}

/* Writes the wanted values, or the saved ones (in reverse); 0 or -errno. */
static int inj_write(bool old)
{
	int i, j, r, ret = 0, n = ARRAY_SIZE(knobs);
	char path[160];

	for (i = 0; i < n; i++) {
		j = old ? n - 1 - i : i;
		if (!inj.old[j][0])
			continue;
		snprintf(path, sizeof(path), DEBUGFS "/%s/%s", knobs[j].dir,
			 knobs[j].file);
		r = zc_write_file(path, old ? inj.old[j] : knobs[j].want);
		if (r && !ret) {
			ret = r;
			strcpy(inj.path, path);
		}
	}
	return ret;
}

static void __attribute__((destructor)) inj_restore_all(void)
{
	if (getpid() != inj.pid)
		return;
	inj_write(true);
	if (inj.mounted)
		umount2(DEBUGFS, MNT_DETACH);
}

/* ----------------------------------------------------------------------
 * One walk: arm N, make the call, see whether its fault was reached
 */

static const char *const errnames[] = {
	[ENOMEM] = "ENOMEM", [EFAULT] = "EFAULT", [ENOBUFS] = "ENOBUFS",
	[EAGAIN] = "EAGAIN", [EINTR] = "EINTR", [ENFILE] = "ENFILE",
	[ENOSPC] = "ENOSPC", [ENETUNREACH] = "ENETUNREACH",
	[EHOSTUNREACH] = "EHOSTUNREACH",
};

/* The errnos an injected fault may show as; NULL for any other. */
static const char *errname(int err)
{
	return err > 0 && err < (int)ARRAY_SIZE(errnames) ? errnames[err]
							   : NULL;
}

struct walk {
	const char *op;
	int nth;		/* fd of FAIL_NTH */
	int max, n;
	int injected;		/* calls that reached their fault */
	int survived;		/* ... and succeeded all the same */
	int end;		/* N of the first success without a fault */
	bool stop;		/* failed without a fault: give up */
	int errs[256];		/* errno counts, [0] for errno >= 256 */
};

#define WALK(name) \
	((struct walk){ .op = (name), .nth = self->nth, .max = self->max })

/* Arms fail-nth for the next N, as the last thing before the call. */
static bool walk_arm(struct __test_metadata *_metadata, struct walk *w)
{
	char b[16];
	int len;

	if (w->end || w->stop || w->n >= w->max)
		return false;
	len = snprintf(b, sizeof(b), "%d", ++w->n);
	ASSERT_EQ(len, pwrite(w->nth, b, len, 0))
		TH_LOG("write %s: %s", FAIL_NTH, strerror(errno));
	return true;
}

/*
 * First thing after the call, @err its errno or 0: books it and disarms.
 * Reading back 0 means the fault was injected. With 1 left, the read's own
 * copy-out takes it (EFAULT), and the write of 0 may take the last one:
 * either way the call did not reach it.
 */
static void walk_done(struct __test_metadata *_metadata, struct walk *w,
		      int err)
{
	bool hit = false;
	char b[16];
	ssize_t r;

	r = pread(w->nth, b, sizeof(b) - 1, 0);
	if (r >= 0 || errno != EFAULT) {
		ASSERT_LT(0, r) TH_LOG("read %s: %s", FAIL_NTH, strerror(errno));
		b[r] = 0;
		hit = !strtoul(b, NULL, 10);
	}
	r = pwrite(w->nth, "0", 1, 0);
	ASSERT_TRUE(r == 1 || errno == EFAULT)
		TH_LOG("disarm %s: %s", FAIL_NTH, strerror(errno));
	ASSERT_EQ(2, pread(w->nth, b, sizeof(b) - 1, 0));
	ASSERT_EQ('0', b[0]) TH_LOG("%s still armed", FAIL_NTH);

	w->injected += hit;
	w->survived += hit && !err;
	if (!hit && !err)
		w->end = w->n;
	if (!err)
		return;
	w->errs[err < 256 ? err : 0]++;
	EXPECT_NE(NULL, errname(err))
		TH_LOG("%s: N=%d: unexpected errno %d (%s)", w->op, w->n, err,
		       strerror(err));
	EXPECT_TRUE(hit) TH_LOG("%s: N=%d: %s without a fault injected",
				w->op, w->n, strerror(err));
	w->stop = !hit;
}

static void walk_report(struct __test_metadata *_metadata,
			const struct walk *w)
{
	char errs[256] = "none", num[16];
	size_t used = 0;
	int e;

	for (e = 0; e < 256; e++) {
		if (!w->errs[e] || used >= sizeof(errs))
			continue;
		snprintf(num, sizeof(num), "errno %d", e);
		used += snprintf(errs + used, sizeof(errs) - used, "%s%s x%d",
				 used ? ", " : "", errname(e) ?: num,
				 w->errs[e]);
	}
	ksft_print_msg("%s: %d faults injected, first success at N=%d, errnos seen: %s (%d calls succeeded despite the fault)\n",
		       w->op, w->injected, w->end, errs, w->survived);
	fflush(stdout);
	/* A failure without a fault was reported where it happened. */
	EXPECT_TRUE(w->end || w->stop)
		TH_LOG("%s: no success up to N=%d (ZCSEND_INJECT_MAX)", w->op,
		       w->max);
}

FIXTURE(inject) {
	int zfd, nth;
	struct zc_pair tcp;	/* connected TCP v4 */
	struct zc_pair udp;	/* UDP v4: tx unconnected, rx at dst */
	struct zc_rx rx;	/* drains tcp.rx while rx_on */
	bool rx_on, knobs_set;
	uint8_t *buf;
	int64_t pins;
	uint64_t thr;		/* copy_threshold */
	int max;
};

FIXTURE_SETUP(inject)
{
	const char *env = getenv("ZCSEND_INJECT_MAX");
	char why[256];
	int ret;

	self->zfd = self->nth = -1;
	self->tcp.tx = self->tcp.rx = self->udp.tx = self->udp.rx = -1;
	if (inj.skip[0])
		SKIP(return, "%s", inj.skip);
	self->max = env && atoi(env) > 0 ? atoi(env) : INJECT_MAX;
	self->pins = zc_pins_outstanding();
	self->zfd = zc_open();
	ASSERT_LE(0, self->zfd) TH_LOG("open %s: %s", ZCSEND_DEVICE,
				       strerror(errno));
	self->thr = zc_copy_threshold();
	ret = zc_loopback_pair(&self->tcp, AF_INET, SOCK_STREAM, 1 << 20,
			       1 << 20);
	ASSERT_EQ(0, ret) TH_LOG("tcp pair: %s", strerror(-ret));
	ret = zc_loopback_pair(&self->udp, AF_INET, SOCK_DGRAM, 4 << 20, 0);
	ASSERT_EQ(0, ret) TH_LOG("udp pair: %s", strerror(-ret));
	self->buf = zc_map_pattern(BUF_LEN, SEED);
	ASSERT_NE(NULL, self->buf);
	/* Last: a setup that fails an ASSERT gets no teardown. */
	self->nth = open(FAIL_NTH, O_RDWR | O_CLOEXEC);
	if (self->nth < 0)
		SKIP(return, "open %s: %s", FAIL_NTH, strerror(errno));
	ret = inj_write(false);
	if (ret) {
		snprintf(why, sizeof(why), "write %s: %s", inj.path,
			 strerror(-ret));
		inj_write(true);
		SKIP(return, "%s", why);
	}
	self->knobs_set = true;
}

FIXTURE_TEARDOWN(inject)
{
	int64_t end = zc_now_ms() + ZC_WAIT_MS;
	struct zcsend_stats st = { 0 };
	int ret;

	if (self->nth >= 0) {
		ret = pwrite(self->nth, "0", 1, 0);
		close(self->nth);
	}
	if (self->rx_on) {
		shutdown(self->tcp.tx, SHUT_WR);
		zc_rx_join(&self->rx);
	}
	zc_pair_close(&self->tcp);
	zc_pair_close(&self->udp);
	if (self->zfd >= 0) {
		while (!zc_stats(self->zfd, &st) &&
		       (st.inflight || st.pinned_pages) && zc_now_ms() < end)
			zc_msleep(5);
		EXPECT_EQ(0, st.inflight);
		EXPECT_EQ(0, st.pinned_pages);
		close(self->zfd);
	}
	if (self->buf)
		munmap(self->buf, BUF_LEN);
	ret = self->knobs_set ? inj_write(true) : 0;
	if (ret)
		TH_LOG("restore %s: %s", inj.path, strerror(-ret));
	ZC_EXPECT_PINS_BACK(self->pins);
}

/* Nothing in flight or pinned, @sends posted and @queued unread. */
static void expect_idle(struct __test_metadata *_metadata, int zfd,
			uint64_t sends, uint64_t queued, const struct walk *w)
{
	int64_t end = zc_now_ms() + ZC_WAIT_MS;
	struct zcsend_stats st;

	do {
		ASSERT_EQ(0, zc_stats(zfd, &st));
		if (!st.inflight && !st.pinned_pages && st.queued == queued)
			break;
		zc_msleep(1);
	} while (zc_now_ms() < end);
	ASSERT_TRUE(!st.inflight && !st.pinned_pages && st.queued == queued &&
		    st.sends == sends)
		TH_LOG("%s: N=%d: inflight %llu, pinned_pages %llu, queued %llu (not %" PRIu64
		       "), sends %llu (not %" PRIu64 ")", w->op, w->n,
		       st.inflight, st.pinned_pages, st.queued, queued,
		       st.sends, sends);
}

/* Exactly one record: send @ud's, for @bytes, with sane flags. */
static void expect_record(struct __test_metadata *_metadata, int zfd,
			  uint64_t ud, int bytes, uint32_t must,
			  uint32_t must_not, const struct walk *w)
{
	struct zcsend_completion c[2];
	uint32_t f;

	ASSERT_EQ(1, zc_collect(zfd, c, 1, ZC_WAIT_MS))
		TH_LOG("%s: N=%d: no completion for %d bytes sent", w->op,
		       w->n, bytes);
	f = c[0].flags;
	ASSERT_EQ(ud, c[0].user_data) TH_LOG("%s: N=%d", w->op, w->n);
	EXPECT_EQ((uint64_t)bytes, c[0].bytes);
	EXPECT_EQ(0, c[0].result);
	EXPECT_TRUE(__builtin_popcount(f & ZC_FLAGS_ONE_OF) == 1 &&
		    (f & must) == must && !(f & must_not))
		TH_LOG("%s: N=%d: flags %#x", w->op, w->n, f);
	ASSERT_EQ(0, zc_read_compl(zfd, &c[1], 1))
		TH_LOG("%s: N=%d: a second completion, user_data %#llx",
		       w->op, w->n, (unsigned long long)c[1].user_data);
}

/* Datagrams queued on @fd, thrown away. */
static int dgram_drain(int fd)
{
	static uint8_t d[65536];
	int n = 0;

	while (recv(fd, d, sizeof(d), MSG_DONTWAIT) >= 0)
		n++;
	return n;
}

/* The datagram of a successful send, intact; false if it never came. */
static bool dgram_check(struct __test_metadata *_metadata, int fd,
			ssize_t len)
{
	static uint8_t d[65536];
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	if (poll(&p, 1, 500) != 1)
		return false;
	n = recv(fd, d, sizeof(d), MSG_DONTWAIT);
	EXPECT_EQ(len, n);
	EXPECT_EQ((size_t)len, zc_pattern_check(d, n > 0 ? n : 0, SEED, 0))
		TH_LOG("datagram corrupted");
	return true;
}

/*
 * Walks one send of @iov: on UDP (each datagram checked), or on TCP with a
 * receiver checking the byte stream, each send going on where the last
 * accepted byte ended. user_data is @tag | N.
 */
static void walk_send(struct __test_metadata *_metadata,
		      FIXTURE_DATA(inject) *self, const char *name,
		      struct iovec *iov, int iovcnt, bool udp, uint64_t tag)
{
	uint64_t len = 0, off = 0, filled = UINT64_MAX, sends = 0, o;
	int lost = 0, stray = 0, ret, i;
	struct zcsend_completion c;
	struct zcsend_send s;
	struct walk w;
	bool copy;

	for (i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	copy = len < self->thr;
	if (copy)
		ksft_print_msg("%s: %" PRIu64 " bytes < copy_threshold %" PRIu64
			       ": the copy path\n", name, len, self->thr);
	if (!udp) {
		memset(&self->rx, 0, sizeof(self->rx));
		self->rx.fd = self->tcp.rx;
		self->rx.seed = SEED;
		self->rx.timeout_ms = 60000;	/* failed sends send nothing */
		self->rx.bad = -1;
		ASSERT_EQ(0, pthread_create(&self->rx.thread, NULL,
					    zc_rx_main, &self->rx));
		self->rx_on = true;
	}
	w = WALK(name);
	for (;;) {
		if (!udp && filled != off) {
			for (i = 0, o = off; i < iovcnt; o += iov[i++].iov_len)
				zc_pattern_fill(iov[i].iov_base,
						iov[i].iov_len, SEED, o);
			filled = off;
		}
		s = (struct zcsend_send){
			.fd = udp ? self->udp.tx : self->tcp.tx,
			.flags = MSG_DONTWAIT | MSG_NOSIGNAL,
			.iov = (uintptr_t)iov,
			.iovcnt = iovcnt,
			.addrlen = udp ? self->udp.dstlen : 0,
			.addr = udp ? (uintptr_t)&self->udp.dst : 0,
			.user_data = tag | (w.n + 1),
		};
		if (!walk_arm(_metadata, &w))
			break;
		ret = ioctl(self->zfd, ZCSEND_IOC_SEND, &s);
		walk_done(_metadata, &w, ret < 0 ? errno : 0);
		if (ret < 0) {
			zc_msleep(SETTLE_MS);
			ASSERT_EQ(0, zc_read_compl(self->zfd, &c, 1))
				TH_LOG("%s: N=%d failed but posted user_data %#llx",
				       w.op, w.n,
				       (unsigned long long)c.user_data);
			stray += udp ? dgram_drain(self->udp.rx) : 0;
		} else {
			ASSERT_LT(0, ret) TH_LOG("%s: N=%d: 0 bytes", w.op, w.n);
			expect_record(_metadata, self->zfd, s.user_data, ret,
				      copy ? ZCSEND_COMPL_COPIED |
					     ZCSEND_COMPL_COPY_PATH : 0,
				      copy ? ZCSEND_COMPL_ZEROCOPY :
					     ZCSEND_COMPL_COPY_PATH, &w);
			sends++;
			off += ret;
			if (udp) {
				EXPECT_EQ(len, ret);
				lost += !dgram_check(_metadata, self->udp.rx,
						     ret);
			}
		}
		expect_idle(_metadata, self->zfd, sends, 0, &w);
	}
	walk_report(_metadata, &w);
	if (lost || stray)
		ksft_print_msg("%s: %d datagrams of successful sends lost, %d of failed ones delivered\n",
			       w.op, lost, stray);
	if (!udp) {
		shutdown(self->tcp.tx, SHUT_WR);
		self->rx_on = false;
		ZC_EXPECT_RX(&self->rx, off);
	}
}

TEST_F(inject, open)
{
	struct zcsend_stats st;
	struct walk w;
	int fd, refs;

	refs = zc_settled_refcnt(ZC_WAIT_MS);
	w = WALK("open");
	while (walk_arm(_metadata, &w)) {
		fd = open(ZCSEND_DEVICE, O_RDWR | O_CLOEXEC | O_NONBLOCK);
		walk_done(_metadata, &w, fd < 0 ? errno : 0);
		if (fd < 0)
			continue;
		EXPECT_EQ(0, zc_stats(fd, &st));
		EXPECT_EQ(0, st.sends + st.inflight + st.queued);
		EXPECT_EQ(self->thr, st.copy_threshold);
		close(fd);
	}
	walk_report(_metadata, &w);
	/* Failed opens leave no module reference behind (closed ones go
	 * once freed). */
	if (refs >= 0)
		EXPECT_EQ(refs, zc_wait_refcnt(refs, ZC_WAIT_MS))
			TH_LOG("module references");
}

TEST_F(inject, send_copy_tcp)
{
	struct iovec iov = { self->buf, SMALL_LEN };

	if (self->thr <= 1)
		SKIP(return, "copy_threshold %" PRIu64 ": no copy path",
		     self->thr);
	if (self->thr <= SMALL_LEN)
		iov.iov_len = self->thr - 1;
	walk_send(_metadata, self, "send copy path TCP", &iov, 1, false,
		  1ULL << 32);
}

TEST_F(inject, send_zerocopy_tcp)
{
	struct iovec iov = { self->buf, 65536 };

	walk_send(_metadata, self, "send zerocopy TCP 64 KiB", &iov, 1, false,
		  2ULL << 32);
}

TEST_F(inject, send_zerocopy_udp)
{
	struct iovec iov = { self->buf, 60000 };

	walk_send(_metadata, self, "send zerocopy UDP 60000 B", &iov, 1, true,
		  3ULL << 32);
}

/* 16 iovecs of a page each, a page apart: a heap iovec array, 16 frags. */
TEST_F(inject, send_16_iovecs)
{
	struct iovec iov[16];
	int i;

	for (i = 0; i < 16; i++)
		iov[i] = (struct iovec){ self->buf + i * 8192, 4096 };
	walk_send(_metadata, self, "send 16 iovecs TCP", iov, 16, false,
		  4ULL << 32);
}

/*
 * 1024 iovecs of 64 bytes: 32 runs of 32 contiguous ones, a run per page:
 * 32 frags, more than one skb holds, so a send may be accepted in part.
 */
TEST_F(inject, send_1024_iovecs)
{
	struct iovec *iov = calloc(1024, sizeof(*iov));
	int i;

	ASSERT_NE(NULL, iov);
	for (i = 0; i < 1024; i++)
		iov[i] = (struct iovec){
			self->buf + (i / 32) * 4096 + (i % 32) * 64, 64 };
	walk_send(_metadata, self, "send 1024 iovecs TCP", iov, 1024, false,
		  5ULL << 32);
	free(iov);
}

/* ----------------------------------------------------------------------
 * Registration and completions; records come from small datagrams
 */

static void post(struct __test_metadata *_metadata,
		 FIXTURE_DATA(inject) *self, int k, uint64_t *ud)
{
	int ret;

	while (k-- > 0) {
		ret = zc_send(self->zfd, self->udp.tx, self->buf, POST_LEN, 0,
			      &self->udp.dst, self->udp.dstlen, (*ud)++);
		ASSERT_EQ(POST_LEN, ret) TH_LOG("post: %s", strerror(-ret));
	}
	dgram_drain(self->udp.rx);
}

/* Posts one record, reads it back and returns the eventfd counters. */
static void post_one(struct __test_metadata *_metadata,
		     FIXTURE_DATA(inject) *self, uint64_t *ud, int efd[2],
		     uint64_t v[2])
{
	struct zcsend_completion c;
	int i;

	post(_metadata, self, 1, ud);
	ASSERT_EQ(1, zc_collect(self->zfd, &c, 1, ZC_WAIT_MS));
	EXPECT_EQ(*ud - 1, c.user_data);
	for (i = 0; i < 2; i++)
		if (read(efd[i], &v[i], sizeof(v[i])) != sizeof(v[i]))
			v[i] = 0;
}

TEST_F(inject, set_eventfd)
{
	int efd[2] = { eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK),
		       eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) };
	uint64_t ud = 6ULL << 32, v[2];
	struct walk w;
	int ret;

	ASSERT_LE(0, efd[0]);
	ASSERT_LE(0, efd[1]);
	w = WALK("set_eventfd");
	for (;;) {
		ASSERT_EQ(0, zc_set_eventfd(self->zfd, efd[0]));
		if (!walk_arm(_metadata, &w))
			break;
		ret = ioctl(self->zfd, ZCSEND_IOC_SET_EVENTFD, &efd[1]);
		walk_done(_metadata, &w, ret ? errno : 0);
		/* The next record signals the new eventfd, or still the old. */
		post_one(_metadata, self, &ud, efd, v);
		EXPECT_EQ(ret ? 1 : 0, v[0]) TH_LOG("N=%d: old eventfd", w.n);
		EXPECT_EQ(ret ? 0 : 1, v[1]) TH_LOG("N=%d: new eventfd", w.n);
	}
	walk_report(_metadata, &w);
	ASSERT_EQ(0, zc_set_eventfd(self->zfd, -1));
	post_one(_metadata, self, &ud, efd, v);
	EXPECT_EQ(0, v[0] + v[1]) TH_LOG("signalled after unregistering");
	close(efd[0]);
	close(efd[1]);
}

/*
 * Records are read oldest first and posted in user_data order, so each one
 * read must be the next: a lost, doubled or reordered record shows here.
 */
static void expect_next(struct __test_metadata *_metadata,
			const struct zcsend_completion *rec, int n,
			uint64_t ud0, uint64_t *got, int nth)
{
	int i;

	for (i = 0; i < n; i++, (*got)++) {
		ASSERT_EQ(ud0 + *got, rec[i].user_data)
			TH_LOG("N=%d: record %d of the read", nth, i);
		EXPECT_EQ(POST_LEN, rec[i].bytes);
	}
}

TEST_F(inject, read)
{
	struct zcsend_completion rec[READ_RECS];
	uint64_t ud0 = 7ULL << 32, ud = ud0, got = 0;
	struct walk w = WALK("read");
	ssize_t r;
	int n;

	memset(rec, 0, sizeof(rec));	/* no page fault inside the walk */
	for (;;) {
		/* Enough queued for two READ_BATCH copies in one read(). */
		post(_metadata, self, READ_RECS - (ud - ud0 - got), &ud);
		expect_idle(_metadata, self->zfd, ud - ud0, ud - ud0 - got,
			    &w);
		if (!walk_arm(_metadata, &w))
			break;
		r = read(self->zfd, rec, sizeof(rec));
		walk_done(_metadata, &w, r < 0 ? errno : 0);
		ASSERT_EQ(0, r > 0 ? r % sizeof(*rec) : 0);
		expect_next(_metadata, rec, r > 0 ? r / sizeof(*rec) : 0, ud0,
			    &got, w.n);
		/* A failed or short read put back what it did not return. */
		expect_idle(_metadata, self->zfd, ud - ud0, ud - ud0 - got,
			    &w);
	}
	walk_report(_metadata, &w);
	while ((n = zc_read_compl(self->zfd, rec, READ_RECS)) > 0)
		expect_next(_metadata, rec, n, ud0, &got, 0);
	EXPECT_EQ(ud - ud0, got) TH_LOG("records posted and read");
}

TEST_F(inject, stats)
{
	struct zcsend_completion c;
	uint64_t ud = 8ULL << 32;
	struct zcsend_stats st;
	struct walk w;
	int ret;

	w = WALK("stats");
	post(_metadata, self, 1, &ud);
	expect_idle(_metadata, self->zfd, 1, 1, &w);
	while (walk_arm(_metadata, &w)) {
		memset(&st, 0xff, sizeof(st));
		ret = ioctl(self->zfd, ZCSEND_IOC_STATS, &st);
		walk_done(_metadata, &w, ret ? errno : 0);
		if (ret)
			continue;
		EXPECT_EQ(1, st.sends);
		EXPECT_EQ(1, st.queued);
		EXPECT_EQ(0, st.inflight + st.pinned_pages);
		EXPECT_EQ(1, st.zerocopy + st.copied);
		EXPECT_EQ(self->thr, st.copy_threshold);
	}
	walk_report(_metadata, &w);
	ASSERT_EQ(1, zc_collect(self->zfd, &c, 1, ZC_WAIT_MS));
	EXPECT_EQ(ud - 1, c.user_data);
}

/*
 * ZCSEND_IOC_REGISTER_BUFFERS: every fault an errno with nothing pinned
 * left behind; each success pins the buffer's pages exactly, and
 * unregistering gives them back.
 */
TEST_F(inject, register_buffers)
{
	struct zcsend_buffer b[2] = { { (uintptr_t)self->buf, BUF_LEN / 2 },
				      { (uintptr_t)self->buf + BUF_LEN / 2,
					BUF_LEN / 2 } };
	struct zcsend_register r = { (uintptr_t)b, 2, 0 };
	int64_t base = zc_pins_outstanding();
	struct walk w;
	int ret;

	w = WALK("register buffers");
	while (walk_arm(_metadata, &w)) {
		ret = ioctl(self->zfd, ZCSEND_IOC_REGISTER_BUFFERS, &r);
		walk_done(_metadata, &w, ret < 0 ? errno : 0);
		if (ret < 0) {
			EXPECT_EQ(base, zc_pins_outstanding())
				TH_LOG("N=%d: pins left by a failed register", w.n);
			continue;
		}
		EXPECT_EQ(BUF_LEN / 4096, zc_pins_outstanding() - base);
		ASSERT_EQ(0, ioctl(self->zfd, ZCSEND_IOC_UNREGISTER_BUFFERS));
		EXPECT_EQ(base, zc_pins_outstanding());
	}
	walk_report(_metadata, &w);
}

/*
 * ZCSEND_IOC_SUBMIT of 8 fixed UDP sends: a fault stops the batch where it
 * hits; exactly the submitted sends post a record, in order.
 */
TEST_F(inject, submit_batch)
{
	struct zcsend_buffer b = { (uintptr_t)self->buf, BUF_LEN };
	struct zcsend_register rg = { (uintptr_t)&b, 1, 0 };
	struct zcsend_range rr[8];
	struct zcsend_send s[8];
	struct zcsend_completion c[9];
	uint64_t ud = 10ULL << 32;
	struct walk w;
	int ret, i, got;

	ASSERT_LE(0, ioctl(self->zfd, ZCSEND_IOC_REGISTER_BUFFERS, &rg));
	w = WALK("submit 8 fixed UDP sends");
	while (walk_arm(_metadata, &w)) {
		for (i = 0; i < 8; i++) {
			rr[i] = (struct zcsend_range){ 0, 0, i * 20000, 20000 };
			s[i] = (struct zcsend_send){
				.fd = self->udp.tx, .flags = ZCSEND_SEND_FIXED,
				.iov = (uintptr_t)&rr[i], .iovcnt = 1,
				.addr = (uintptr_t)&self->udp.dst,
				.addrlen = self->udp.dstlen, .user_data = ud + i };
		}
		ret = ioctl(self->zfd, ZCSEND_IOC_SUBMIT,
			    &(struct zcsend_submit){ (uintptr_t)s, 8, 0 });
		walk_done(_metadata, &w, ret < 0 ? errno : 0);
		if (ret < 0)
			ret = 0;
		got = zc_collect(self->zfd, c, ret, ZC_WAIT_MS);
		EXPECT_EQ(ret, got) TH_LOG("N=%d: %d submitted, %d records", w.n, ret, got);
		for (i = 0; i < got; i++)
			EXPECT_EQ(ud + i, c[i].user_data);
		zc_msleep(SETTLE_MS);
		EXPECT_EQ(0, zc_read_compl(self->zfd, c, 9))
			TH_LOG("N=%d: records for sends not submitted", w.n);
		dgram_drain(self->udp.rx);
		ud += 8;
	}
	walk_report(_metadata, &w);
	EXPECT_EQ(0, ioctl(self->zfd, ZCSEND_IOC_UNREGISTER_BUFFERS));
}

TEST_HARNESS_MAIN
