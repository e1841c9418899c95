// SPDX-License-Identifier: GPL-2.0
/*
 * zcsend send path: data integrity and completions.
 *
 * loopback: TCP and UDP over v4 and v6 loopback. Local delivery copies
 *	(skb_orphan_frags_rx), so every completion must say COPIED.
 * file: per-file semantics on UDP loopback: batched and blocking reads,
 *	eventfd, two files, concurrent senders.
 * dummy: UDP out dummy0 in a namespace of our own (MTU 65535, static
 *	neighbour): true zero-copy; with MTU 1500 IP fragments, so COPIED.
 *	Also the copy_threshold module parameter.
 * remote: TCP through eth0 (virtio-net on a vnet_hdr tap) to zcsend_rx
 *	--mode remote at 10.77.0.1 / fd77::1 port 7777: true zero-copy.
 *	Skipped without eth0.
 */
#include <sys/sendfile.h>

#include "zcsend_helpers.h"

#define SEED		0x5eed0001ULL
#define UDP_DGRAM	60000

static uint64_t copy_threshold(void)
{
	return zc_copy_threshold();
}

/* ----------------------------------------------------------------------
 * loopback
 */

FIXTURE(loopback) {
	int zfd;
	struct zc_pair p;
	uint8_t *buf;
	size_t buflen;
	int64_t pins;
	struct zc_log log;
};

FIXTURE_VARIANT(loopback) {
	int family;
	int type;
	bool connect;		/* UDP: connect() instead of an address */
	size_t total;
	size_t chunk;
};

FIXTURE_VARIANT_ADD(loopback, tcp4) {
	.family = AF_INET, .type = SOCK_STREAM,
	.total = 1 << 20, .chunk = 256 << 10,
};

FIXTURE_VARIANT_ADD(loopback, tcp6) {
	.family = AF_INET6, .type = SOCK_STREAM,
	.total = 1 << 20, .chunk = 256 << 10,
};

FIXTURE_VARIANT_ADD(loopback, udp4) {
	.family = AF_INET, .type = SOCK_DGRAM,
	.total = 16 * UDP_DGRAM, .chunk = UDP_DGRAM,
};

FIXTURE_VARIANT_ADD(loopback, udp6) {
	.family = AF_INET6, .type = SOCK_DGRAM,
	.total = 16 * UDP_DGRAM, .chunk = UDP_DGRAM,
};

FIXTURE_VARIANT_ADD(loopback, udp4_connected) {
	.family = AF_INET, .type = SOCK_DGRAM, .connect = true,
	.total = 16 * UDP_DGRAM, .chunk = UDP_DGRAM,
};

FIXTURE_VARIANT_ADD(loopback, udp6_connected) {
	.family = AF_INET6, .type = SOCK_DGRAM, .connect = true,
	.total = 16 * UDP_DGRAM, .chunk = UDP_DGRAM,
};

FIXTURE_SETUP(loopback)
{
	int ret;

	self->zfd = -1;
	self->p.tx = self->p.rx = -1;
	if (!zc_family_ok(variant->family))
		SKIP(return, "no IPv6 loopback");
	self->pins = zc_pins_outstanding();
	self->zfd = zc_open();
	ASSERT_LE(0, self->zfd) TH_LOG("open %s: %s", ZCSEND_DEVICE,
				       strerror(errno));
	ret = zc_loopback_pair(&self->p, variant->family, variant->type,
			       variant->type == SOCK_DGRAM ? 8 << 20 : 0, 0);
	ASSERT_EQ(0, ret) TH_LOG("socket pair: %s", strerror(-ret));
	if (variant->connect)
		ASSERT_EQ(0, connect(self->p.tx, (void *)&self->p.dst,
				     self->p.dstlen));
	self->buflen = variant->total + 2 * 4096;
	self->buf = zc_map_pattern(self->buflen, SEED);
	ASSERT_NE(NULL, self->buf);
}

FIXTURE_TEARDOWN(loopback)
{
	zc_pair_close(&self->p);
	if (self->zfd >= 0)
		close(self->zfd);
	if (self->buf)
		munmap(self->buf, self->buflen);
	zc_log_free(&self->log);
	ZC_EXPECT_PINS_BACK(self->pins);
}

/* The destination argument: none for TCP and connected UDP. */
static const void *dst_of(FIXTURE_DATA(loopback) *self,
			  const FIXTURE_VARIANT(loopback) *variant,
			  socklen_t *len)
{
	if (variant->type == SOCK_STREAM || variant->connect) {
		*len = 0;
		return NULL;
	}
	*len = self->p.dstlen;
	return &self->p.dst;
}

/*
 * Completion flags a send of @len bytes in @frags frags must carry over
 * loopback: COPIED, and COPY_PATH below the copy threshold or for a
 * datagram of more frags than an skb holds.
 */
static void loopback_flags(const FIXTURE_VARIANT(loopback) *variant,
			   size_t len, int frags, uint32_t *must,
			   uint32_t *must_not)
{
	uint64_t thr = copy_threshold();

	*must = ZCSEND_COMPL_COPIED;
	*must_not = ZCSEND_COMPL_ZEROCOPY;
	if ((thr && len < thr) ||
	    (variant->type == SOCK_DGRAM && frags > ZC_MAX_SKB_FRAGS))
		*must |= ZCSEND_COMPL_COPY_PATH;
	else
		*must_not |= ZCSEND_COMPL_COPY_PATH;
}

/*
 * The @variant->total bytes at @base (the pattern from stream offset 0) in
 * chunks, each one iovec or, with @buf, named in the request
 * (ZCSEND_SEND_BUF); the receiver checks every byte.
 */
static void send_stream(struct __test_metadata *_metadata,
			FIXTURE_DATA(loopback) *self,
			const FIXTURE_VARIANT(loopback) *variant,
			const uint8_t *base, bool buf)
{
	uint32_t must, must_not;
	struct zc_tally t;
	struct zc_rx rx;
	int64_t start, ms;
	socklen_t alen;
	const void *dst = dst_of(self, variant, &alen);
	uint64_t ud;
	size_t n;
	int ret;

	ASSERT_EQ(0, zc_rx_start(&rx, self->p.rx, SEED, variant->total));
	start = zc_now_ms();
	while (self->log.bytes < variant->total) {
		n = variant->total - self->log.bytes;
		if (n > variant->chunk)
			n = variant->chunk;
		ud = (buf ? 0x3000 : 0x1000) + self->log.n;
		ret = buf ? zc_send_buf(self->zfd, self->p.tx,
					base + self->log.bytes, n, 0, dst,
					alen, ud) :
			    zc_send(self->zfd, self->p.tx,
				    base + self->log.bytes, n, 0, dst, alen,
				    ud);
		ASSERT_LT(0, ret) TH_LOG("send #%d: %s", self->log.n,
					 strerror(-ret));
		ASSERT_GE(n, (size_t)ret);
		if (variant->type == SOCK_DGRAM)
			ASSERT_EQ(n, (size_t)ret);
		zc_log_add(&self->log, ud, ret);
	}
	ZC_EXPECT_RX(&rx, variant->total);
	ms = zc_now_ms() - start;

	/* A chunk of whole pages: at most one frag per page (plus one). */
	loopback_flags(variant, variant->chunk, 0, &must, &must_not);
	zc_expect_completions(_metadata, self->zfd, &self->log, must,
			      must_not, &t);
	EXPECT_EQ(self->log.n, t.copied);
	zc_expect_idle_stats(_metadata, self->zfd, self->log.n, 0,
			     self->log.n);
	TH_LOG("%d sends, %" PRIu64 " bytes in %" PRId64 " ms, copied %d",
	       self->log.n, self->log.bytes, ms, t.copied);
}

TEST_F(loopback, stream)
{
	send_stream(_metadata, self, variant, self->buf, false);
}

/* The same stream named in the requests, from an unaligned start. */
TEST_F(loopback, send_buf)
{
	uint8_t *base = self->buf + 123;

	zc_pattern_fill(base, variant->total, SEED, 0);
	send_stream(_metadata, self, variant, base, true);
}

/*
 * One send of @n iovecs of @seg[i] bytes, each placed @gap[i] bytes after
 * the previous one in a scratch mapping, starting @start bytes in: the
 * receiver must see them concatenated, and the completion must say
 * COPY_PATH exactly when the rules say so.
 */
static void send_iovecs(struct __test_metadata *_metadata,
			FIXTURE_DATA(loopback) *self,
			const FIXTURE_VARIANT(loopback) *variant,
			const size_t *seg, const size_t *gap, int n,
			size_t start)
{
	const size_t maplen = 512 << 10;
	struct iovec iov[1024];
	uint32_t must, must_not;
	size_t total = 0, at = start;
	struct zc_rx rx;
	socklen_t alen;
	const void *dst = dst_of(self, variant, &alen);
	uint8_t *scratch;
	int i, ret, frags;

	ASSERT_GE(1024, n);
	scratch = zc_map(maplen);
	ASSERT_NE(NULL, scratch);
	/* Segment i holds stream bytes [total, total + seg[i]). */
	for (i = 0; i < n; i++) {
		ASSERT_GT(maplen, at + seg[i]);
		zc_pattern_fill(scratch + at, seg[i], SEED, total);
		iov[i].iov_base = scratch + at;
		iov[i].iov_len = seg[i];
		total += seg[i];
		at += seg[i] + gap[i];
	}
	frags = zc_count_frags(iov, n);
	ASSERT_EQ(0, zc_rx_start(&rx, self->p.rx, SEED, total));
	ret = zc_sendv(self->zfd, self->p.tx, iov, n, 0, dst, alen, 42);
	ASSERT_EQ(total, ret) TH_LOG("send: %d (%s)", ret,
				     ret < 0 ? strerror(-ret) : "short");
	zc_log_add(&self->log, 42, ret);
	ZC_EXPECT_RX(&rx, total);
	if (variant->type == SOCK_DGRAM)
		EXPECT_EQ(1, rx.reads);

	loopback_flags(variant, total, frags, &must, &must_not);
	zc_expect_completions(_metadata, self->zfd, &self->log, must,
			      must_not, NULL);
	zc_expect_idle_stats(_metadata, self->zfd, 1, 0, 1);
	TH_LOG("%d iovecs, %zu bytes, %d frags", n, total, frags);
	munmap(scratch, maplen);
}

/* Small, unaligned and page-crossing iovecs, within an skb's frags. */
TEST_F(loopback, iovec)
{
	static const size_t seg[] = { 1, 7, 4096, 4095, 8193, 3, 12345, 64, 1 };
	static const size_t gap[] = { 13, 4096, 100, 5000, 1, 4096, 7, 3, 0 };

	send_iovecs(_metadata, self, variant, seg, gap, ARRAY_SIZE(seg), 5);
}

/* 64 contiguous iovecs of one 60000-byte buffer merge into its pages. */
TEST_F(loopback, contiguous)
{
	size_t seg[64], gap[64] = { 0 };
	int i;

	for (i = 0; i < 64; i++)
		seg[i] = i < 32 ? 937 : 938;
	send_iovecs(_metadata, self, variant, seg, gap, 64, 0);
}

/* 24 iovecs on 24 pages: more frags than an skb holds. */
TEST_F(loopback, scattered)
{
	size_t seg[24], gap[24];
	int i;

	for (i = 0; i < 24; i++) {
		seg[i] = 1000;
		gap[i] = 8192 - 1000;
	}
	send_iovecs(_metadata, self, variant, seg, gap, 24, 100);
}

/*
 * Many sends just above copy_threshold, unaligned: over TCP they share
 * skbs (link_skb chains); each must still complete exactly once.
 */
TEST_F(loopback, many_small)
{
	uint64_t thr = copy_threshold();
	size_t chunk = thr > 20000 ? thr : 20000;
	uint32_t must, must_not;
	struct zc_rx rx;
	socklen_t alen;
	const void *dst = dst_of(self, variant, &alen);
	int i, ret, n = variant->total / chunk;

	if (n > 64)
		n = 64;
	ASSERT_EQ(0, zc_rx_start(&rx, self->p.rx, SEED, n * chunk));
	for (i = 0; i < n; i++) {
		ret = zc_send(self->zfd, self->p.tx,
			      self->buf + self->log.bytes, chunk, 0, dst, alen,
			      0x2000 + i);
		ASSERT_EQ(chunk, ret) TH_LOG("send #%d: %d", i, ret);
		zc_log_add(&self->log, 0x2000 + i, ret);
	}
	ZC_EXPECT_RX(&rx, n * chunk);
	loopback_flags(variant, chunk, 0, &must, &must_not);
	zc_expect_completions(_metadata, self->zfd, &self->log, must,
			      must_not, NULL);
	zc_expect_idle_stats(_metadata, self->zfd, n, 0, n);
}

/* Shared memory pages (memfd) pin and send like anonymous ones. */
TEST_F(loopback, memfd)
{
	uint32_t must, must_not;
	size_t len = variant->chunk;
	struct zc_rx rx;
	socklen_t alen;
	const void *dst = dst_of(self, variant, &alen);
	uint8_t *p;
	int mfd, ret;

	mfd = memfd_create("zcsend", MFD_CLOEXEC);
	if (mfd < 0 && errno == ENOSYS)
		SKIP(return, "no memfd_create");
	ASSERT_LE(0, mfd);
	ASSERT_EQ(0, ftruncate(mfd, len));
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	ASSERT_NE(MAP_FAILED, p);
	zc_pattern_fill(p, len, SEED, 0);

	ASSERT_EQ(0, zc_rx_start(&rx, self->p.rx, SEED, len));
	ret = zc_send(self->zfd, self->p.tx, p, len, 0, dst, alen, 7);
	ASSERT_EQ(len, ret) TH_LOG("send: %d", ret);
	zc_log_add(&self->log, 7, ret);
	ZC_EXPECT_RX(&rx, len);
	loopback_flags(variant, len, 0, &must, &must_not);
	zc_expect_completions(_metadata, self->zfd, &self->log, must,
			      must_not, NULL);
	zc_expect_idle_stats(_metadata, self->zfd, 1, 0, 1);
	munmap(p, len);
	close(mfd);
}

/* ----------------------------------------------------------------------
 * file: per-file semantics, over UDP v4 loopback
 */

FIXTURE(file) {
	int zfd;
	struct zc_pair p;
	uint8_t *buf;
	int64_t pins;
	struct zc_log log;
};

#define FILE_BUF	(1 << 20)

FIXTURE_SETUP(file)
{
	int ret;

	self->p.tx = self->p.rx = -1;
	self->pins = zc_pins_outstanding();
	self->zfd = zc_open();
	ASSERT_LE(0, self->zfd) TH_LOG("open %s: %s", ZCSEND_DEVICE,
				       strerror(errno));
	ret = zc_loopback_pair(&self->p, AF_INET, SOCK_DGRAM, 8 << 20, 0);
	ASSERT_EQ(0, ret) TH_LOG("socket pair: %s", strerror(-ret));
	ASSERT_EQ(0, connect(self->p.tx, (void *)&self->p.dst,
			     self->p.dstlen));
	self->buf = zc_map_pattern(FILE_BUF, SEED);
	ASSERT_NE(NULL, self->buf);
}

FIXTURE_TEARDOWN(file)
{
	zc_pair_close(&self->p);
	if (self->zfd >= 0)
		close(self->zfd);
	if (self->buf)
		munmap(self->buf, FILE_BUF);
	zc_log_free(&self->log);
	ZC_EXPECT_PINS_BACK(self->pins);
}

/* Sends @n datagrams of UDP_DGRAM bytes through @zfd, logging them. */
static int send_dgrams(int zfd, FIXTURE_DATA(file) *self, int n,
		       uint64_t ud_base, struct zc_log *log)
{
	int i, ret;

	for (i = 0; i < n; i++) {
		ret = zc_send(zfd, self->p.tx,
			      self->buf + (log->n % 16) * UDP_DGRAM,
			      UDP_DGRAM, 0, NULL, 0, ud_base + i);
		if (ret < 0)
			return ret;
		zc_log_add(log, ud_base + i, ret);
	}
	return 0;
}

/* Waits until @n completions are queued on @zfd. */
static int wait_queued(int zfd, uint64_t n)
{
	struct zcsend_stats st;
	int64_t end = zc_now_ms() + ZC_WAIT_MS;

	do {
		if (zc_stats(zfd, &st))
			return -errno;
		if (st.queued >= n)
			return st.queued;
		zc_msleep(5);
	} while (zc_now_ms() < end);
	return st.queued;
}

/* One read(2) returns every queued record that fits, whole. */
TEST_F(file, read_batch)
{
	struct zcsend_completion c[8];
	ssize_t n;
	int i;

	ASSERT_EQ(0, send_dgrams(self->zfd, self, 4, 100, &self->log));
	ASSERT_EQ(4, wait_queued(self->zfd, 4));
	/* Room for two and a half: two come back. */
	n = read(self->zfd, c, 2 * sizeof(c[0]) + sizeof(c[0]) / 2);
	ASSERT_EQ(2 * sizeof(c[0]), n);
	n = read(self->zfd, c + 2, 6 * sizeof(c[0]));
	ASSERT_EQ(2 * sizeof(c[0]), n);
	for (i = 0; i < 4; i++) {
		EXPECT_LE(100, c[i].user_data);
		EXPECT_GT(104, c[i].user_data);
		EXPECT_EQ(UDP_DGRAM, c[i].bytes);
	}
	EXPECT_EQ(-1, read(self->zfd, c, sizeof(c)));
	EXPECT_EQ(EAGAIN, errno);
	zc_expect_idle_stats(_metadata, self->zfd, 4, 0, 4);
}

/* A buffer smaller than one record is refused; the record stays queued. */
TEST_F(file, read_short_buffer)
{
	struct zcsend_completion c;

	ASSERT_EQ(0, send_dgrams(self->zfd, self, 1, 9, &self->log));
	ASSERT_EQ(1, wait_queued(self->zfd, 1));
	EXPECT_EQ(-1, read(self->zfd, &c, sizeof(c) - 1));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, read(self->zfd, &c, 0));
	EXPECT_EQ(EINVAL, errno);
	zc_expect_completions(_metadata, self->zfd, &self->log, 0, 0, NULL);
}

struct delayed_send {
	int zfd, fd;
	const uint8_t *buf;
	int ret;
};

static void *delayed_send_main(void *arg)
{
	struct delayed_send *d = arg;

	zc_msleep(300);
	d->ret = zc_send(d->zfd, d->fd, d->buf, UDP_DGRAM, 0, NULL, 0, 77);
	return NULL;
}

/* A blocking read sleeps until a completion is posted. */
TEST_F(file, read_blocking)
{
	struct delayed_send d = { .buf = self->buf, .fd = self->p.tx };
	struct zcsend_completion c[2];
	pthread_t th;
	ssize_t n;

	d.zfd = open(ZCSEND_DEVICE, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, d.zfd);
	ASSERT_EQ(0, pthread_create(&th, NULL, delayed_send_main, &d));
	alarm(30);
	n = read(d.zfd, c, sizeof(c));
	alarm(0);
	pthread_join(th, NULL);
	EXPECT_EQ(UDP_DGRAM, d.ret);
	ASSERT_EQ(sizeof(c[0]), n) TH_LOG("read: %s", strerror(errno));
	EXPECT_EQ(77, c[0].user_data);
	EXPECT_EQ(UDP_DGRAM, c[0].bytes);
	close(d.zfd);
}

static uint64_t eventfd_drain(int efd, uint64_t want, int timeout_ms)
{
	int64_t end = zc_now_ms() + timeout_ms;
	uint64_t sum = 0, v;

	do {
		if (read(efd, &v, sizeof(v)) == sizeof(v))
			sum += v;
		else if (sum < want)
			zc_msleep(5);
	} while (sum < want && zc_now_ms() < end);
	return sum;
}

TEST_F(file, eventfd)
{
	struct pollfd pfd;
	uint64_t v;
	int efd;

	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_LE(0, efd);
	ASSERT_EQ(0, zc_set_eventfd(self->zfd, efd));

	ASSERT_EQ(0, send_dgrams(self->zfd, self, 3, 10, &self->log));
	pfd = (struct pollfd){ .fd = efd, .events = POLLIN };
	EXPECT_EQ(1, poll(&pfd, 1, ZC_WAIT_MS))
		TH_LOG("the eventfd did not become readable");
	EXPECT_EQ(POLLIN, pfd.revents);
	zc_expect_completions(_metadata, self->zfd, &self->log, 0, 0, NULL);
	/* One signal per completion. */
	EXPECT_EQ(3, eventfd_drain(efd, 3, 1000));

	/* Unregistered: completions still come, the eventfd stays quiet. */
	zc_log_free(&self->log);
	ASSERT_EQ(0, zc_set_eventfd(self->zfd, -1));
	ASSERT_EQ(0, send_dgrams(self->zfd, self, 1, 20, &self->log));
	zc_expect_completions(_metadata, self->zfd, &self->log, 0, 0, NULL);
	zc_msleep(100);
	EXPECT_EQ(-1, read(efd, &v, sizeof(v)));
	EXPECT_EQ(EAGAIN, errno);

	/* Registered, then closed by us: the module keeps it alive. */
	zc_log_free(&self->log);
	ASSERT_EQ(0, zc_set_eventfd(self->zfd, efd));
	close(efd);
	ASSERT_EQ(0, send_dgrams(self->zfd, self, 2, 30, &self->log));
	zc_expect_completions(_metadata, self->zfd, &self->log, 0, 0, NULL);
	zc_expect_idle_stats(_metadata, self->zfd, 6, 0, 6);
}

/* Completions go to the file the send went through, and only there. */
TEST_F(file, two_files)
{
	struct zc_log log2 = { 0 };
	int zfd2;

	zfd2 = zc_open();
	ASSERT_LE(0, zfd2);
	ASSERT_EQ(0, send_dgrams(self->zfd, self, 3, 0x100, &self->log));
	ASSERT_EQ(0, send_dgrams(zfd2, self, 2, 0x200, &log2));
	zc_expect_completions(_metadata, self->zfd, &self->log, 0, 0, NULL);
	zc_expect_completions(_metadata, zfd2, &log2, 0, 0, NULL);
	zc_expect_idle_stats(_metadata, self->zfd, 3, 0, 3);
	zc_expect_idle_stats(_metadata, zfd2, 2, 0, 2);
	zc_log_free(&log2);
	close(zfd2);
}

#define THREADS		4
#define THREAD_SENDS	16
#define THREAD_DGRAM	32768

struct sender {
	int zfd, id, err;
	struct zc_pair p;
	struct zc_rx rx;
	struct zc_log log;
	uint8_t *buf;
};

static void *sender_main(void *arg)
{
	struct sender *s = arg;
	uint64_t ud;
	int i, ret;

	for (i = 0; i < THREAD_SENDS; i++) {
		ud = ((uint64_t)s->id << 32) | i;
		ret = zc_send(s->zfd, s->p.tx, s->buf + i * THREAD_DGRAM,
			      THREAD_DGRAM, 0, NULL, 0, ud);
		if (ret < 0) {
			s->err = -ret;
			break;
		}
		zc_log_add(&s->log, ud, ret);
	}
	return NULL;
}

/* Threads sending through one file: every completion exactly once. */
TEST_F(file, threads)
{
	struct sender s[THREADS];
	struct zc_log all = { 0 };
	pthread_t th[THREADS];
	int i, j;

	memset(s, 0, sizeof(s));
	for (i = 0; i < THREADS; i++) {
		s[i].zfd = self->zfd;
		s[i].id = i + 1;
		s[i].buf = zc_map_pattern(THREAD_SENDS * THREAD_DGRAM, i);
		ASSERT_NE(NULL, s[i].buf);
		ASSERT_EQ(0, zc_loopback_pair(&s[i].p, AF_INET, SOCK_DGRAM,
					      8 << 20, 0));
		ASSERT_EQ(0, connect(s[i].p.tx, (void *)&s[i].p.dst,
				     s[i].p.dstlen));
		ASSERT_EQ(0, zc_rx_start(&s[i].rx, s[i].p.rx, i,
					 THREAD_SENDS * THREAD_DGRAM));
	}
	for (i = 0; i < THREADS; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, sender_main, &s[i]));
	for (i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		EXPECT_EQ(0, s[i].err) TH_LOG("thread %d: %s", i,
					      strerror(s[i].err));
		ZC_EXPECT_RX(&s[i].rx, THREAD_SENDS * THREAD_DGRAM);
		for (j = 0; j < s[i].log.n; j++)
			zc_log_add(&all, s[i].log.v[j].user_data,
				   s[i].log.v[j].bytes);
	}
	EXPECT_EQ(THREADS * THREAD_SENDS, all.n);
	zc_expect_completions(_metadata, self->zfd, &all, 0, 0, NULL);
	zc_expect_idle_stats(_metadata, self->zfd, THREADS * THREAD_SENDS, 0,
			     THREADS * THREAD_SENDS);
	for (i = 0; i < THREADS; i++) {
		zc_pair_close(&s[i].p);
		zc_log_free(&s[i].log);
		munmap(s[i].buf, THREAD_SENDS * THREAD_DGRAM);
	}
	zc_log_free(&all);
}

/* ----------------------------------------------------------------------
 * dummy: UDP forwarded out dummy0, where the frags are really used
 */

FIXTURE(dummy) {
	int zfd, fd;
	uint8_t *buf;
	int64_t pins;
	struct zc_log log;
	struct sockaddr_storage dst;
	socklen_t dstlen;
};

FIXTURE_VARIANT(dummy) {
	int family;
	uint32_t mtu;
	uint32_t expect;	/* ZEROCOPY or COPIED */
};

FIXTURE_VARIANT_ADD(dummy, ipv4_mtu65535) {
	.family = AF_INET, .mtu = 65535, .expect = ZCSEND_COMPL_ZEROCOPY,
};

FIXTURE_VARIANT_ADD(dummy, ipv6_mtu65535) {
	.family = AF_INET6, .mtu = 65535, .expect = ZCSEND_COMPL_ZEROCOPY,
};

/* 60000 bytes in 1500-byte fragments: the stack copies. */
FIXTURE_VARIANT_ADD(dummy, ipv4_mtu1500) {
	.family = AF_INET, .mtu = 1500, .expect = ZCSEND_COMPL_COPIED,
};

FIXTURE_VARIANT_ADD(dummy, ipv6_mtu1500) {
	.family = AF_INET6, .mtu = 1500, .expect = ZCSEND_COMPL_COPIED,
};

#define DUMMY_SENDS	16

FIXTURE_SETUP(dummy)
{
	const char *why;
	int ret;

	self->fd = -1;
	self->zfd = zc_open();
	ASSERT_LE(0, self->zfd) TH_LOG("open %s: %s", ZCSEND_DEVICE,
				       strerror(errno));
	self->buf = zc_map_pattern(DUMMY_SENDS * UDP_DGRAM, SEED);
	ASSERT_NE(NULL, self->buf);
	self->pins = zc_pins_outstanding();

	ret = zc_netns_dummy(variant->mtu, variant->family == AF_INET6, &why);
	if (ret == -EPERM || ret == -EACCES)
		SKIP(return, "%s: %s (needs root)", why, strerror(-ret));
	if (ret == -EOPNOTSUPP && !strncmp(why, "ip link add", 11))
		SKIP(return, "no dummy device (CONFIG_DUMMY)");
	if (ret == -EAFNOSUPPORT && variant->family == AF_INET6)
		SKIP(return, "no IPv6");
	ASSERT_EQ(0, ret) TH_LOG("%s: %s", why, strerror(-ret));

	self->dstlen = zc_addr(variant->family,
			       variant->family == AF_INET ? ZC_DUMMY_PEER4 :
							    ZC_DUMMY_PEER6,
			       9, &self->dst);
	self->fd = socket(variant->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, self->fd);
}

FIXTURE_TEARDOWN(dummy)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->zfd >= 0)
		close(self->zfd);
	if (self->buf)
		munmap(self->buf, DUMMY_SENDS * UDP_DGRAM);
	zc_log_free(&self->log);
	ZC_EXPECT_PINS_BACK(self->pins);
}

static void dummy_send_all(struct __test_metadata *_metadata,
			   FIXTURE_DATA(dummy) *self, bool connected)
{
	int64_t start = zc_now_ms(), ms;
	int i, ret;

	for (i = 0; i < DUMMY_SENDS; i++) {
		ret = zc_send(self->zfd, self->fd, self->buf + i * UDP_DGRAM,
			      UDP_DGRAM, 0, connected ? NULL : &self->dst,
			      connected ? 0 : self->dstlen, 500 + i);
		ASSERT_EQ(UDP_DGRAM, ret) TH_LOG("send #%d: %s", i,
						 strerror(-ret));
		zc_log_add(&self->log, 500 + i, ret);
	}
	ms = zc_now_ms() - start;
	TH_LOG("%d sends of %d bytes in %" PRId64 " ms", DUMMY_SENDS,
	       UDP_DGRAM, ms);
}

/*
 * The DUMMY_SENDS records of the sends logged: each says what the route
 * makes of a datagram (never COPY_PATH), and the file's counters agree.
 */
static void dummy_expect(struct __test_metadata *_metadata,
			 FIXTURE_DATA(dummy) *self,
			 const FIXTURE_VARIANT(dummy) *variant)
{
	uint32_t other = variant->expect ^ ZC_FLAGS_ONE_OF;
	bool zc = variant->expect == ZCSEND_COMPL_ZEROCOPY;
	struct zc_tally t;

	zc_expect_completions(_metadata, self->zfd, &self->log,
			      variant->expect,
			      other | ZCSEND_COMPL_COPY_PATH, &t);
	TH_LOG("completions: zerocopy %d copied %d", t.zerocopy, t.copied);
	zc_expect_idle_stats(_metadata, self->zfd, DUMMY_SENDS,
			     zc ? DUMMY_SENDS : 0, zc ? 0 : DUMMY_SENDS);
}

TEST_F(dummy, send)
{
	dummy_send_all(_metadata, self, false);
	dummy_expect(_metadata, self, variant);
}

/* ZCSEND_SEND_BUF out dummy0: pinned and completed as an iovec's send. */
TEST_F(dummy, send_buf)
{
	int i, ret;

	for (i = 0; i < DUMMY_SENDS; i++) {
		ret = zc_send_buf(self->zfd, self->fd,
				  self->buf + i * UDP_DGRAM + (i & 7),
				  UDP_DGRAM - 8, 0, &self->dst, self->dstlen,
				  700 + i);
		ASSERT_EQ(UDP_DGRAM - 8, ret) TH_LOG("send #%d: %s", i,
						     strerror(-ret));
		zc_log_add(&self->log, 700 + i, ret);
	}
	dummy_expect(_metadata, self, variant);
}

TEST_F(dummy, connected)
{
	uint32_t other = variant->expect ^ ZC_FLAGS_ONE_OF;

	ASSERT_EQ(0, connect(self->fd, (void *)&self->dst, self->dstlen));
	dummy_send_all(_metadata, self, true);
	zc_expect_completions(_metadata, self->zfd, &self->log,
			      variant->expect, other, NULL);
}

/*
 * Below copy_threshold: the plain copy path, COPIED|COPY_PATH, no page
 * pinned. At the threshold: pinned, then whatever the route makes of it
 * (zero-copy out dummy0 at MTU 65535, copied into IP fragments at 1500),
 * never COPY_PATH.
 */
TEST_F(dummy, copy_threshold)
{
	uint32_t other = variant->expect ^ ZC_FLAGS_ONE_OF;
	uint64_t thr = copy_threshold(), a0, a1, r;
	bool zc = variant->expect == ZCSEND_COMPL_ZEROCOPY;
	struct zc_log big = { 0 };
	struct zcsend_stats st;
	int ret;

	ASSERT_EQ(0, zc_stats(self->zfd, &st));
	EXPECT_EQ(thr, st.copy_threshold);
	if (!thr)
		SKIP(return, "copy_threshold is 0: no copy path");
	if (thr > UDP_DGRAM || thr < 2)
		SKIP(return, "copy_threshold %" PRIu64 " does not fit a datagram",
		     thr);

	ASSERT_EQ(0, zc_pins(&a0, &r));
	ret = zc_send(self->zfd, self->fd, self->buf, thr - 1, 0, &self->dst,
		      self->dstlen, 1);
	ASSERT_EQ(thr - 1, ret);
	zc_log_add(&self->log, 1, ret);
	zc_expect_completions(_metadata, self->zfd, &self->log,
			      ZCSEND_COMPL_COPIED | ZCSEND_COMPL_COPY_PATH,
			      ZCSEND_COMPL_ZEROCOPY, NULL);
	ASSERT_EQ(0, zc_pins(&a1, &r));
	EXPECT_EQ(a0, a1) TH_LOG("the copy path pinned %" PRIu64 " pages",
				 a1 - a0);

	ret = zc_send(self->zfd, self->fd, self->buf + 4096 + 1, thr, 0,
		      &self->dst, self->dstlen, 2);
	ASSERT_EQ(thr, ret);
	zc_log_add(&big, 2, ret);
	zc_expect_completions(_metadata, self->zfd, &big, variant->expect,
			      other | ZCSEND_COMPL_COPY_PATH, NULL);
	ASSERT_EQ(0, zc_pins(&a0, &r));
	EXPECT_LT(a1, a0) TH_LOG("a send of %" PRIu64 " bytes pinned nothing",
				 thr);
	zc_expect_idle_stats(_metadata, self->zfd, 2, zc, 2 - zc);
	zc_log_free(&big);
}

/* ----------------------------------------------------------------------
 * remote: TCP to zcsend_rx --mode remote through eth0
 */

#define REMOTE_PORT	ZCX_REMOTE_PORT
#define REMOTE_TOTAL	(4 << 20)
#define REMOTE_CHUNK	(256 << 10)

FIXTURE(remote) {
	int zfd, fd;
	uint8_t *buf;
	int64_t pins;
	struct zc_log log;
};

FIXTURE_VARIANT(remote) {
	int family;
	const char *local;
	const char *peer;
};

FIXTURE_VARIANT_ADD(remote, ipv4) {
	.family = AF_INET, .local = "10.77.0.2", .peer = "10.77.0.1",
};

FIXTURE_VARIANT_ADD(remote, ipv6) {
	.family = AF_INET6, .local = "fd77::2", .peer = "fd77::1",
};

/*
 * Whether @ip is configured here: 0, or the errno of bind() after waiting up
 * to 3 s (IPv6 DAD may still be running).
 */
static int have_local_addr(int family, const char *ip)
{
	struct sockaddr_storage ss;
	socklen_t len = zc_addr(family, ip, 0, &ss);
	int64_t end = zc_now_ms() + 3000;
	int fd, ret;

	do {
		fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return errno;
		ret = bind(fd, (void *)&ss, len) ? errno : 0;
		close(fd);
		if (!ret)
			return 0;
		zc_msleep(100);
	} while (zc_now_ms() < end);
	return ret;
}

/* Logs eth0's IPv6 addresses with their flags (IFA_F_*), for a skip. */
static void log_if_inet6(struct __test_metadata *_metadata)
{
	char line[256];
	FILE *f = fopen("/proc/net/if_inet6", "re");

	if (!f) {
		TH_LOG("/proc/net/if_inet6: %s", strerror(errno));
		return;
	}
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "eth0"))
			TH_LOG("if_inet6: %.*s", (int)strcspn(line, "\n"), line);
	fclose(f);
}

/* connect() with a timeout; returns 0 or a negative errno. */
static int connect_timeout(int fd, const struct sockaddr_storage *ss,
			   socklen_t len, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	int err = 0, fl = fcntl(fd, F_GETFL);
	socklen_t elen = sizeof(err);

	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	if (connect(fd, (void *)ss, len) && errno != EINPROGRESS)
		return -errno;
	if (poll(&pfd, 1, timeout_ms) != 1)
		return -ETIMEDOUT;
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
	fcntl(fd, F_SETFL, fl);
	return -err;
}

FIXTURE_SETUP(remote)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int ret;

	self->fd = -1;
	self->zfd = -1;
	if (!if_nametoindex("eth0"))
		SKIP(return, "no eth0: the runner has no tap network");
	ret = have_local_addr(variant->family, variant->local);
	if (ret) {
		if (variant->family == AF_INET6)
			log_if_inet6(_metadata);
		SKIP(return, "eth0 has no usable %s: bind: %s", variant->local,
		     strerror(ret));
	}
	self->pins = zc_pins_outstanding();
	self->zfd = zc_open();
	ASSERT_LE(0, self->zfd) TH_LOG("open %s: %s", ZCSEND_DEVICE,
				       strerror(errno));
	self->buf = zc_map_pattern(REMOTE_TOTAL, ZC_PATTERN_SEED);
	ASSERT_NE(NULL, self->buf);
	self->fd = socket(variant->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, self->fd);
	len = zc_addr(variant->family, variant->peer, REMOTE_PORT, &ss);
	ret = connect_timeout(self->fd, &ss, len, 10000);
	ASSERT_EQ(0, ret) TH_LOG("connect %s port %d: %s (is zcsend_rx running?)",
				 variant->peer, REMOTE_PORT, strerror(-ret));
}

FIXTURE_TEARDOWN(remote)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->zfd >= 0)
		close(self->zfd);
	if (self->buf)
		munmap(self->buf, REMOTE_TOTAL);
	zc_log_free(&self->log);
	ZC_EXPECT_PINS_BACK(self->pins);
}

/*
 * Sends @total bytes in @chunk-byte sends, shuts the write side down and
 * checks zcsend_rx's verdict and that every completion says ZEROCOPY.
 */
static void remote_send(struct __test_metadata *_metadata,
			FIXTURE_DATA(remote) *self, size_t total, size_t chunk)
{
	struct timeval tv = { 60, 0 };
	char verdict[64] = "", want[64];
	int64_t start, ms;
	struct zc_tally t;
	size_t n, got = 0;
	ssize_t r;
	int ret;

	start = zc_now_ms();
	while (self->log.bytes < total) {
		n = total - self->log.bytes;
		if (n > chunk)
			n = chunk;
		ret = zc_send(self->zfd, self->fd, self->buf + self->log.bytes,
			      n, 0, NULL, 0, self->log.n);
		ASSERT_LT(0, ret) TH_LOG("send #%d: %s", self->log.n,
					 strerror(-ret));
		zc_log_add(&self->log, self->log.n, ret);
	}
	ms = zc_now_ms() - start;
	ASSERT_EQ(0, shutdown(self->fd, SHUT_WR));
	setsockopt(self->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (got < sizeof(verdict) - 1 && !strchr(verdict, '\n')) {
		r = recv(self->fd, verdict + got, sizeof(verdict) - 1 - got, 0);
		if (r <= 0)
			break;
		got += r;
	}
	snprintf(want, sizeof(want), "OK %zu\n", total);
	EXPECT_STREQ(want, verdict);

	zc_expect_completions(_metadata, self->zfd, &self->log,
			      ZCSEND_COMPL_ZEROCOPY, 0, &t);
	TH_LOG("%d sends, %zu bytes in %" PRId64 " ms (%.1f MB/s): zerocopy %d copied %d",
	       self->log.n, total, ms, ms ? total / 1e3 / ms : 0.0,
	       t.zerocopy, t.copied);
	zc_expect_idle_stats(_metadata, self->zfd, self->log.n, -1, -1);
}

TEST_F(remote, stream)
{
	remote_send(_metadata, self, REMOTE_TOTAL, REMOTE_CHUNK);
}

/* Sends just above copy_threshold: many share an skb (link_skb chains). */
TEST_F(remote, small_sends)
{
	uint64_t thr = copy_threshold();
	size_t chunk = thr > 20000 ? thr : 20000;

	remote_send(_metadata, self, 64 * chunk < REMOTE_TOTAL ?
		    64 * chunk : REMOTE_TOTAL, chunk);
}

TEST_HARNESS_MAIN
