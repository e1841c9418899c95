// SPDX-License-Identifier: GPL-2.0
/*
 * Registered buffers: ZCSEND_IOC_REGISTER_BUFFERS pins user ranges once;
 * ZCSEND_SEND_FIXED sends name ranges inside them (no pin, no memlock charge
 * per send); ZCSEND_IOC_UNREGISTER_BUFFERS refuses while a send from them is
 * in flight. Bad input of both ioctls, memlock charged once and given back,
 * pins balanced, bytes verified on loopback TCP, ZEROCOPY out dummy0.
 *
 * Registered sockets: ZCSEND_IOC_REGISTER_SOCKETS holds the sockets by
 * index for ZCSEND_SEND_FIXED_SOCKET (sends, batches; fan-outs in
 * zcsend_fanout.c): bad input, the file reference it holds (a closed
 * descriptor's socket lives on until unregistered), sends by index.
 */
#include <grp.h>
#include <sys/resource.h>

#include "zcsend_helpers.h"

#define SEED		0x5eed0007ULL
#define LEN		(1 << 20)
#define PAGE		4096

FIXTURE(fixed) {
	int zfd;
	int64_t pins;
	uint8_t *buf;
	uint64_t thr;
};

FIXTURE_SETUP(fixed)
{
	self->pins = zc_pins_outstanding();
	self->zfd = zc_open();
	ASSERT_LE(0, self->zfd) TH_LOG("open: %s", strerror(errno));
	self->buf = zc_map_pattern(LEN, SEED);
	ASSERT_NE(NULL, self->buf);
	self->thr = zc_copy_threshold();
}

FIXTURE_TEARDOWN(fixed)
{
	if (self->zfd >= 0)
		close(self->zfd);
	if (self->buf)
		munmap(self->buf, LEN);
	ZC_EXPECT_PINS_BACK(self->pins);
}

/* Registers; 0 or -errno (the segment count is for huge_pages_coalesce). */
static int reg_segments(int zfd, const struct zcsend_buffer *b, uint32_t nr,
			uint32_t flags)
{
	struct zcsend_register r = { .bufs = (uintptr_t)b, .nr = nr,
				     .flags = flags };
	int ret = ioctl(zfd, ZCSEND_IOC_REGISTER_BUFFERS, &r);

	return ret < 0 ? -errno : ret;
}

static int reg(int zfd, const struct zcsend_buffer *b, uint32_t nr,
	       uint32_t flags)
{
	int ret = reg_segments(zfd, b, nr, flags);

	return ret < 0 ? ret : 0;
}

static int unreg(int zfd)
{
	return ioctl(zfd, ZCSEND_IOC_UNREGISTER_BUFFERS) ? -errno : 0;
}

static int send_fixed(int zfd, int fd, const struct zcsend_range *r,
		      unsigned int n, unsigned int flags, const void *addr,
		      socklen_t addrlen, uint64_t ud)
{
	struct zcsend_send s = {
		.fd = fd, .flags = flags | ZCSEND_SEND_FIXED,
		.iov = (uintptr_t)r, .iovcnt = n,
		.addr = (uintptr_t)addr, .addrlen = addrlen, .user_data = ud,
	};
	int ret = ioctl(zfd, ZCSEND_IOC_SEND, &s);

	return ret < 0 ? -errno : ret;
}

/*
 * A ZCSEND_SEND_FIXED | ZCSEND_SEND_BUF send: the one range in the request
 * itself, @iov = ZCSEND_FIXED_RANGE(index, offset) (raw, to test bad ones).
 */
static int send_inline(int zfd, int fd, uint64_t iov, uint32_t len,
		       unsigned int flags, uint64_t ud)
{
	struct zcsend_send s = {
		.fd = fd, .flags = flags | ZCSEND_SEND_FIXED | ZCSEND_SEND_BUF,
		.iov = iov, .iovcnt = len, .user_data = ud,
	};
	int ret = ioctl(zfd, ZCSEND_IOC_SEND, &s);

	return ret < 0 ? -errno : ret;
}

TEST_F(fixed, register_bad_input)
{
	struct zcsend_buffer b[2] = { { (uintptr_t)self->buf, LEN },
				      { (uintptr_t)self->buf, PAGE } };
	static struct zcsend_buffer many[ZCSEND_MAX_BUFFERS + 1];
	struct zcsend_buffer bad;
	void *hole;

	EXPECT_EQ(-EINVAL, reg(self->zfd, b, 0, 0));
	EXPECT_EQ(-EINVAL, reg(self->zfd, many, ZCSEND_MAX_BUFFERS + 1, 0));
	EXPECT_EQ(-EINVAL, reg(self->zfd, b, 1, 1));
	EXPECT_EQ(-EFAULT, reg(self->zfd, (void *)16, 1, 0));
	bad = (struct zcsend_buffer){ (uintptr_t)self->buf, 0 };
	EXPECT_EQ(-EINVAL, reg(self->zfd, &bad, 1, 0));
	bad.len = ZCSEND_MAX_BUFFER_LEN + 1;
	EXPECT_EQ(-EINVAL, reg(self->zfd, &bad, 1, 0));
	hole = mmap(NULL, 2 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	ASSERT_NE(MAP_FAILED, hole);
	bad = (struct zcsend_buffer){ (uintptr_t)hole, 2 * PAGE };
	EXPECT_EQ(-EFAULT, reg(self->zfd, &bad, 1, 0));
	munmap(hole, 2 * PAGE);
	EXPECT_EQ(-ENXIO, unreg(self->zfd));
	ASSERT_EQ(0, reg(self->zfd, b, 2, 0));
	EXPECT_EQ(-EBUSY, reg(self->zfd, b, 2, 0));
	EXPECT_EQ(0, unreg(self->zfd));
	EXPECT_EQ(-ENXIO, unreg(self->zfd));
	EXPECT_EQ(self->pins, zc_pins_outstanding());
}

TEST_F(fixed, send_bad_input)
{
	struct zcsend_buffer b[2] = { { (uintptr_t)self->buf, LEN },
				      { (uintptr_t)self->buf, PAGE } };
	struct zcsend_range r[2] = { { 0, 0, 0, 100 }, { 0, 0, 100, 100 } };
	struct zc_pair p;

	ASSERT_EQ(0, zc_loopback_pair(&p, AF_INET, SOCK_STREAM, 0, 0));
	EXPECT_EQ(-ENXIO, send_fixed(self->zfd, p.tx, r, 1, 0, NULL, 0, 1));
	ASSERT_EQ(0, reg(self->zfd, b, 2, 0));
	EXPECT_EQ(-EINVAL, send_fixed(self->zfd, p.tx, r, 0, 0, NULL, 0, 1));
	EXPECT_EQ(-EINVAL, send_fixed(self->zfd, p.tx, r, 1025, 0, NULL, 0, 1));
	EXPECT_EQ(-EFAULT, send_fixed(self->zfd, p.tx, (void *)8, 1, 0, NULL, 0, 1));
	r[0] = (struct zcsend_range){ 2, 0, 0, 100 };
	EXPECT_EQ(-EINVAL, send_fixed(self->zfd, p.tx, r, 1, 0, NULL, 0, 1));
	r[0] = (struct zcsend_range){ 0, 1, 0, 100 };
	EXPECT_EQ(-EINVAL, send_fixed(self->zfd, p.tx, r, 1, 0, NULL, 0, 1));
	r[0] = (struct zcsend_range){ 1, 0, PAGE - 10, 11 };
	EXPECT_EQ(-EINVAL, send_fixed(self->zfd, p.tx, r, 1, 0, NULL, 0, 1));
	r[0] = (struct zcsend_range){ 0, 0, UINT64_MAX - 10, 100 };
	EXPECT_EQ(-EINVAL, send_fixed(self->zfd, p.tx, r, 1, 0, NULL, 0, 1));
	r[0] = (struct zcsend_range){ 0, 0, 0, UINT64_MAX };
	EXPECT_EQ(-EINVAL, send_fixed(self->zfd, p.tx, r, 1, 0, NULL, 0, 1));
	/* Ranges of two buffers in one send. */
	r[0] = (struct zcsend_range){ 0, 0, 0, 100 };
	r[1] = (struct zcsend_range){ 1, 0, 0, 100 };
	EXPECT_EQ(-EINVAL, send_fixed(self->zfd, p.tx, r, 2, 0, NULL, 0, 1));
	EXPECT_EQ(-EINVAL, send_fixed(self->zfd, p.tx, r, 1, MSG_OOB, NULL, 0, 1));
	EXPECT_EQ(-EBADF, send_fixed(self->zfd, 999, r, 1, 0, NULL, 0, 1));
	/* Nothing was posted for any of them. */
	EXPECT_EQ(0, zc_read_compl(self->zfd, (void *)&r, 1));
	EXPECT_EQ(0, unreg(self->zfd));
	zc_pair_close(&p);
}

/*
 * Loopback TCP: sends of every shape from two registered buffers, byte
 * verified; one completion each; nothing pinned per send.
 */
TEST_F(fixed, tcp_loopback_verified)
{
	struct zcsend_buffer b = { (uintptr_t)self->buf, LEN };
	struct zcsend_range r[4];
	struct zc_log log = { 0 };
	struct zcsend_stats st;
	uint64_t off = 0;
	struct zc_pair p;
	struct zc_rx rx;
	int64_t held;
	int i, n;

	ASSERT_EQ(0, zc_loopback_pair(&p, AF_INET, SOCK_STREAM, 0, 0));
	ASSERT_EQ(0, reg(self->zfd, &b, 1, 0));
	held = zc_pins_outstanding() - self->pins;
	EXPECT_EQ(LEN / PAGE, held);
	ASSERT_EQ(0, zc_rx_start(&rx, p.rx, SEED, 0));
	for (i = 0; off < LEN - 3 * 70000; i++) {
		size_t len = i % 3 ? 70000 : 100 + i;

		/* Up to three consecutive pieces in one send. */
		for (n = 0; n < 1 + i % 3; n++) {
			r[n] = (struct zcsend_range){ 0, 0, off, len };
			off += len;
		}
		n = send_fixed(self->zfd, p.tx, r, 1 + i % 3, 0, NULL, 0, i);
		ASSERT_LT(0, n) TH_LOG("send %d: %s", i, strerror(-n));
		/* A stream may take part of it: continue from there. */
		off -= (1 + i % 3) * len - n;
		zc_log_add(&log, i, n);
		ASSERT_EQ(held, zc_pins_outstanding() - self->pins);
	}
	zc_expect_completions(_metadata, self->zfd, &log, 0, 0, NULL);
	ASSERT_EQ(0, zc_stats(self->zfd, &st));
	EXPECT_EQ(0, st.pinned_pages);
	shutdown(p.tx, SHUT_WR);
	ZC_EXPECT_RX(&rx, log.bytes);
	EXPECT_EQ(0, unreg(self->zfd));
	zc_log_free(&log);
	zc_pair_close(&p);
}

/*
 * One send naming the same 4-page buffer three times: each range needs its
 * own segments (12 in all, more than the buffer's 4 plus one per range).
 */
TEST_F(fixed, ranges_repeat_segments)
{
	struct zcsend_buffer b = { (uintptr_t)self->buf, 4 * PAGE };
	struct zcsend_range r[3];
	struct zcsend_completion c;
	struct zc_pair p;
	struct zc_rx rx;
	int i, n;

	ASSERT_EQ(0, zc_loopback_pair(&p, AF_INET, SOCK_STREAM, 0, 0));
	ASSERT_EQ(0, reg(self->zfd, &b, 1, 0));
	for (i = 0; i < 3; i++)
		r[i] = (struct zcsend_range){ 0, 0, 0, 4 * PAGE };
	ASSERT_EQ(0, zc_rx_start(&rx, p.rx, SEED, 12 * PAGE));
	n = send_fixed(self->zfd, p.tx, r, 3, 0, NULL, 0, 1);
	EXPECT_EQ(12 * PAGE, n) TH_LOG("send: %s", n < 0 ? strerror(-n) : "short");
	EXPECT_EQ(1, zc_collect(self->zfd, &c, 1, ZC_WAIT_MS));
	/* The stream repeats the buffer: count the bytes, not the pattern. */
	zc_rx_join(&rx);
	EXPECT_EQ(12 * PAGE, rx.got);
	EXPECT_EQ(0, unreg(self->zfd));
	zc_pair_close(&p);
}

/* Unregister refuses while a send from the buffers is in flight. */
TEST_F(fixed, unregister_in_flight)
{
	struct zcsend_buffer b = { (uintptr_t)self->buf, LEN };
	struct zcsend_range r = { 0, 0, 0, 256 << 10 };
	struct zcsend_completion c;
	struct zc_pair p;
	struct zc_rx rx;
	int n;

	ASSERT_EQ(0, zc_loopback_pair(&p, AF_INET, SOCK_STREAM, 4096,
				      1 << 20));
	ASSERT_EQ(0, reg(self->zfd, &b, 1, 0));
	n = send_fixed(self->zfd, p.tx, &r, 1, MSG_DONTWAIT, NULL, 0, 1);
	ASSERT_LT(0, n);
	EXPECT_EQ(-EBUSY, unreg(self->zfd));
	ASSERT_EQ(0, zc_rx_start(&rx, p.rx, SEED, n));
	ZC_EXPECT_RX(&rx, n);
	EXPECT_EQ(1, zc_collect(self->zfd, &c, 1, ZC_WAIT_MS));
	EXPECT_EQ(0, unreg(self->zfd));
	zc_pair_close(&p);
}

/*
 * Memlock: as uid 65534 with 64 KiB (16 pages), registering 17 pages fails
 * with ENOBUFS; 16 pages succeed; unregistering gives them back (16 again
 * succeed); sends from them charge nothing more.
 */
TEST_F(fixed, memlock_charged_once)
{
	int status, pfd[2], res[5];
	struct zc_pair p;
	pid_t pid;

	if (geteuid())
		SKIP(return, "needs root to drop to uid 65534");
	ASSERT_EQ(0, zc_loopback_pair(&p, AF_INET, SOCK_STREAM, 0, 0));
	ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct rlimit rl = { 64 << 10, 64 << 10 };
		struct zcsend_buffer big = { (uintptr_t)self->buf, 17 * PAGE };
		struct zcsend_buffer fit = { (uintptr_t)self->buf, 16 * PAGE };
		struct zcsend_range r = { 0, 0, 0, 16 * PAGE };
		struct zcsend_completion c;
		uint8_t sink[65536];

		if (setrlimit(RLIMIT_MEMLOCK, &rl) || setgroups(0, NULL) ||
		    setgid(65534) || setuid(65534))
			_exit(10);
		res[0] = reg(self->zfd, &big, 1, 0);
		res[1] = reg(self->zfd, &fit, 1, 0);
		res[2] = send_fixed(self->zfd, p.tx, &r, 1, 0, NULL, 0, 1);
		while (recv(p.rx, sink, sizeof(sink), MSG_DONTWAIT) > 0)
			;
		zc_collect(self->zfd, &c, 1, ZC_WAIT_MS);
		res[3] = unreg(self->zfd);
		res[4] = reg(self->zfd, &fit, 1, 0);
		unreg(self->zfd);
		if (write(pfd[1], res, sizeof(res)) != sizeof(res))
			_exit(11);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	ASSERT_EQ(sizeof(res), read(pfd[0], res, sizeof(res)));
	close(pfd[0]);
	close(pfd[1]);
	EXPECT_EQ(-ENOBUFS, res[0]);
	EXPECT_EQ(0, res[1]);
	EXPECT_EQ(16 * PAGE, res[2]);
	EXPECT_EQ(0, res[3]);
	EXPECT_EQ(0, res[4]);
	zc_pair_close(&p);
}

/* UDP out dummy0 at MTU 65535: every fixed send leaves zero-copy. */
TEST_F(fixed, udp_dummy_zerocopy)
{
	struct zcsend_buffer b = { (uintptr_t)self->buf, LEN };
	struct sockaddr_storage dst;
	struct zc_log log = { 0 };
	struct zc_tally t;
	const char *why;
	socklen_t dlen;
	int fd, i, n, ret;

	ret = zc_netns_dummy(65535, false, &why);
	if (ret == -EPERM || ret == -EOPNOTSUPP)
		SKIP(return, "%s: %s", why, strerror(-ret));
	ASSERT_EQ(0, ret) TH_LOG("%s: %s", why, strerror(-ret));
	dlen = zc_addr(AF_INET, ZC_DUMMY_PEER4, 9, &dst);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, reg(self->zfd, &b, 1, 0));
	for (i = 0; i < 16; i++) {
		struct zcsend_range r = { 0, 0, i * 65000 + i, 65000 };

		n = send_fixed(self->zfd, fd, &r, 1, 0, &dst, dlen, i);
		ASSERT_EQ(65000, n) TH_LOG("send %d: %s", i, strerror(-n));
		zc_log_add(&log, i, n);
	}
	zc_expect_completions(_metadata, self->zfd, &log,
			      ZCSEND_COMPL_ZEROCOPY, ZCSEND_COMPL_COPY_PATH, &t);
	EXPECT_EQ(16, t.zerocopy);
	EXPECT_EQ(0, unreg(self->zfd));
	zc_log_free(&log);
	close(fd);
}

/*
 * A buffer backed by transparent huge pages is registered as a few
 * multi-page segments (one frag can carry a whole huge page), a small-page
 * one as one segment per page; a UDP send spanning a huge page still
 * leaves zero-copy and arrives intact.
 */
TEST_F(fixed, huge_pages_coalesce)
{
	const size_t huge = 2 << 20, len = 2 * huge;
	struct zcsend_buffer b;
	struct zc_pair p;
	struct zc_rx rx;
	struct zcsend_range r;
	struct zcsend_completion c;
	uint8_t *raw, *buf;
	int segs, small, n;

	/* Small pages first: one segment per page. */
	b = (struct zcsend_buffer){ (uintptr_t)self->buf, LEN };
	small = reg_segments(self->zfd, &b, 1, 0);
	EXPECT_EQ(LEN / PAGE, small);
	EXPECT_EQ(0, unreg(self->zfd));

	raw = mmap(NULL, len + huge, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, raw);
	buf = (uint8_t *)(((uintptr_t)raw + huge - 1) & ~(uintptr_t)(huge - 1));
	if (madvise(buf, len, MADV_HUGEPAGE)) {
		munmap(raw, len + huge);
		SKIP(return, "MADV_HUGEPAGE: %s", strerror(errno));
	}
	zc_pattern_fill(buf, len, SEED, 0);
	b = (struct zcsend_buffer){ (uintptr_t)buf, len };
	segs = reg_segments(self->zfd, &b, 1, 0);
	ASSERT_LT(0, segs) TH_LOG("register: %s", strerror(-segs));
	TH_LOG("4 MiB registered as %d segments (small pages: %d per MiB)",
	       segs, small);
	if (segs == (int)(len / PAGE)) {
		EXPECT_EQ(0, unreg(self->zfd));
		munmap(raw, len + huge);
		SKIP(return, "no transparent huge page was allocated");
	}
	EXPECT_GE(16, segs);
	/* A TCP send across the huge page boundary, byte-verified. */
	ASSERT_EQ(0, zc_loopback_pair(&p, AF_INET, SOCK_STREAM, 0, 0));
	ASSERT_EQ(0, zc_rx_start(&rx, p.rx, SEED, 0));
	r = (struct zcsend_range){ 0, 0, 0, len };
	n = send_fixed(self->zfd, p.tx, &r, 1, 0, NULL, 0, 1);
	EXPECT_EQ((int)len, n);
	EXPECT_EQ(1, zc_collect(self->zfd, &c, 1, ZC_WAIT_MS));
	shutdown(p.tx, SHUT_WR);
	ZC_EXPECT_RX(&rx, len);
	zc_pair_close(&p);
	EXPECT_EQ(0, unreg(self->zfd));
	munmap(raw, len + huge);
}

static int submit(int zfd, const struct zcsend_send *s, uint32_t nr,
		  uint32_t flags)
{
	struct zcsend_submit b = { (uintptr_t)s, nr, flags };
	int ret = ioctl(zfd, ZCSEND_IOC_SUBMIT, &b);

	return ret < 0 ? -errno : ret;
}

/*
 * ZCSEND_SEND_FIXED | ZCSEND_SEND_BUF: one range named in the request.
 * Refused as a struct zcsend_range would be (ENXIO with none registered,
 * EINVAL for an index or bytes past the buffers), nothing posted for those;
 * then the whole buffer on loopback TCP in sends of every size, alone and in
 * batches that mix them with array ranges, byte verified, one completion
 * each, nothing pinned per send.
 */
TEST_F(fixed, inline_range)
{
	struct zcsend_buffer b[2] = { { (uintptr_t)self->buf, LEN },
				      { (uintptr_t)self->buf, PAGE } };
	struct zcsend_range r[4];
	struct zcsend_send s[8];
	struct zc_log log = { 0 };
	struct zcsend_completion c;
	uint64_t off = 0, ud = 0;
	struct zc_pair p;
	struct zc_rx rx;
	int64_t held;
	int i, k, n;

	ASSERT_EQ(0, zc_loopback_pair(&p, AF_INET, SOCK_STREAM, 0, 4 << 20));
	EXPECT_EQ(-ENXIO, send_inline(self->zfd, p.tx, ZCSEND_FIXED_RANGE(0, 0),
				      100, 0, 1));
	ASSERT_EQ(0, reg(self->zfd, b, 2, 0));
	held = zc_pins_outstanding() - self->pins;
	EXPECT_EQ(-EINVAL, send_inline(self->zfd, p.tx, ZCSEND_FIXED_RANGE(2, 0),
				       100, 0, 1));
	EXPECT_EQ(-EINVAL, send_inline(self->zfd, p.tx,
				       ZCSEND_FIXED_RANGE(1, PAGE - 10), 11, 0, 1));
	EXPECT_EQ(-EINVAL, send_inline(self->zfd, p.tx, ZCSEND_FIXED_RANGE(0, LEN),
				       1, 0, 1));
	EXPECT_EQ(-EINVAL, send_inline(self->zfd, p.tx, ZCSEND_FIXED_RANGE(0, 1),
				       LEN, 0, 1));
	EXPECT_EQ(-EINVAL, send_inline(self->zfd, p.tx, UINT64_MAX, 1, 0, 1));
	EXPECT_EQ(-EINVAL, send_inline(self->zfd, p.tx, ZCSEND_FIXED_RANGE(0, 0),
				       UINT32_MAX, 0, 1));
	EXPECT_EQ(-EINVAL, send_inline(self->zfd, p.tx, ZCSEND_FIXED_RANGE(0, 0),
				       100, MSG_OOB, 1));
	EXPECT_EQ(-EBADF, send_inline(self->zfd, 999, ZCSEND_FIXED_RANGE(0, 0),
				      100, 0, 1));
	EXPECT_EQ(0, zc_read_compl(self->zfd, &c, 1));

	ASSERT_EQ(0, zc_rx_start(&rx, p.rx, SEED, 0));
	for (i = 0; off < LEN - 8 * 70000; i++) {
		size_t len = i % 3 ? 70000 : 1 + i * 37;

		if (i % 4 != 3) {
			n = send_inline(self->zfd, p.tx,
					ZCSEND_FIXED_RANGE(0, off), len, 0, ud);
			ASSERT_LT(0, n) TH_LOG("send %d: %s", i, strerror(-n));
			zc_log_add(&log, ud++, n);
			off += n;
			continue;
		}
		/* A batch: inline ranges and array ones, alternating. */
		for (k = 0; k < 8; k++) {
			s[k] = (struct zcsend_send){ .fd = p.tx,
				.flags = ZCSEND_SEND_FIXED, .iovcnt = len,
				.user_data = ud + k };
			if (k % 2) {
				r[k / 2] = (struct zcsend_range){ 0, 0,
								  off + k * len,
								  len };
				s[k].iov = (uintptr_t)&r[k / 2];
				s[k].iovcnt = 1;
			} else {
				s[k].flags |= ZCSEND_SEND_BUF;
				s[k].iov = ZCSEND_FIXED_RANGE(0, off + k * len);
			}
		}
		n = submit(self->zfd, s, 8, 0);
		ASSERT_EQ(8, n) TH_LOG("batch %d: %s", i, strerror(-n));
		for (k = 0; k < 8; k++)
			zc_log_add(&log, ud++, len);
		off += 8 * len;
		ASSERT_EQ(held, zc_pins_outstanding() - self->pins);
	}
	zc_expect_completions(_metadata, self->zfd, &log, 0, 0, NULL);
	shutdown(p.tx, SHUT_WR);
	ZC_EXPECT_RX(&rx, log.bytes);
	EXPECT_EQ(off, log.bytes);
	EXPECT_EQ(0, unreg(self->zfd));
	zc_log_free(&log);
	zc_pair_close(&p);
}

/*
 * A batch reserves its completion slots and its hold on the registered
 * buffers for all its descriptors at once: one stopped after its first
 * send gives back the rest. Nothing stays in flight once that send's
 * record is read, and the buffers unregister at once.
 */
TEST_F(fixed, submit_stopped_gives_back)
{
	struct zcsend_buffer b = { (uintptr_t)self->buf, LEN };
	static struct zcsend_send s[ZCSEND_MAX_BATCH];
	struct zcsend_range r = { 0, 0, 0, 1000 };
	struct zcsend_completion c;
	struct zcsend_stats st;
	struct zc_pair p;
	int i;

	ASSERT_EQ(0, zc_loopback_pair(&p, AF_INET, SOCK_STREAM, 0, 4 << 20));
	ASSERT_EQ(0, reg(self->zfd, &b, 1, 0));
	for (i = 0; i < ZCSEND_MAX_BATCH; i++)
		s[i] = (struct zcsend_send){ .fd = p.tx, .flags = ZCSEND_SEND_FIXED,
			.iov = (uintptr_t)&r, .iovcnt = 1, .user_data = i };
	s[1].flags |= MSG_OOB;
	EXPECT_EQ(1, submit(self->zfd, s, ZCSEND_MAX_BATCH, 0));
	ASSERT_EQ(1, zc_read_compl(self->zfd, &c, 1));
	EXPECT_EQ(0, c.user_data);
	ASSERT_EQ(0, zc_stats(self->zfd, &st));
	EXPECT_EQ(0, st.inflight) TH_LOG("slots of the stopped batch kept");
	EXPECT_EQ(0, st.queued);
	EXPECT_EQ(0, unreg(self->zfd)) TH_LOG("the batch's hold on the buffers kept");
	zc_pair_close(&p);
}

/*
 * ZCSEND_IOC_SUBMIT: bad batches fail whole; a bad descriptor stops the
 * batch there (its errno if first, else the count before it); plain and
 * fixed sends mix; every submitted send completes exactly once and the
 * stream arrives intact.
 */
TEST_F(fixed, submit_batches)
{
	struct zcsend_buffer b = { (uintptr_t)self->buf, LEN };
	static struct zcsend_send s[ZCSEND_MAX_BATCH + 1];
	static struct zcsend_range r[ZCSEND_MAX_BATCH];
	static struct iovec iov[ZCSEND_MAX_BATCH];
	struct zc_log log = { 0 };
	uint64_t off = 0, ud = 0;
	struct zc_pair p;
	struct zc_rx rx;
	int i, k, n;

	ASSERT_EQ(0, zc_loopback_pair(&p, AF_INET, SOCK_STREAM, 0, 4 << 20));
	ASSERT_EQ(0, reg(self->zfd, &b, 1, 0));
	EXPECT_EQ(-EINVAL, submit(self->zfd, s, 0, 0));
	EXPECT_EQ(-EINVAL, submit(self->zfd, s, ZCSEND_MAX_BATCH + 1, 0));
	EXPECT_EQ(-EINVAL, submit(self->zfd, s, 1, 2));
	EXPECT_EQ(-EFAULT, submit(self->zfd, (void *)8, 1, 0));
	s[0] = (struct zcsend_send){ .fd = -1, .iov = (uintptr_t)iov, .iovcnt = 1 };
	EXPECT_EQ(-EBADF, submit(self->zfd, s, 1, 0));
	EXPECT_EQ(0, zc_read_compl(self->zfd, (void *)r, 1));

	ASSERT_EQ(0, zc_rx_start(&rx, p.rx, SEED, 0));
	for (k = 0; k < 6; k++) {
		int nr = k < 5 ? 1 + k * 50 : ZCSEND_MAX_BATCH;
		size_t len = k < 5 ? 100 + k * 997 : 1000;

		if (off + (uint64_t)nr * len > LEN - 1000)
			continue;
		for (i = 0; i < nr; i++, off += len) {
			/* Alternate fixed ranges and plain iovecs. */
			if (i % 2) {
				r[i] = (struct zcsend_range){ 0, 0, off, len };
				s[i] = (struct zcsend_send){ .fd = p.tx,
					.flags = ZCSEND_SEND_FIXED,
					.iov = (uintptr_t)&r[i], .iovcnt = 1,
					.user_data = ud + i };
			} else {
				iov[i] = (struct iovec){ self->buf + off, len };
				s[i] = (struct zcsend_send){ .fd = p.tx,
					.iov = (uintptr_t)&iov[i], .iovcnt = 1,
					.user_data = ud + i };
			}
		}
		n = submit(self->zfd, s, nr, 0);
		ASSERT_EQ(nr, n) TH_LOG("batch of %d: %s", nr, n < 0 ? strerror(-n) : "short");
		for (i = 0; i < nr; i++)
			zc_log_add(&log, ud + i, len);
		ud += nr;
	}
	/* A bad descriptor in the middle: the count before it. */
	iov[0] = (struct iovec){ self->buf + off, 1000 };
	s[0] = (struct zcsend_send){ .fd = p.tx, .iov = (uintptr_t)&iov[0],
				     .iovcnt = 1, .user_data = ud };
	s[1] = s[0];
	s[1].flags = MSG_OOB;
	s[2] = s[0];
	n = submit(self->zfd, s, 3, 0);
	EXPECT_EQ(1, n);
	zc_log_add(&log, ud, 1000);
	zc_expect_completions(_metadata, self->zfd, &log, 0, 0, NULL);
	shutdown(p.tx, SHUT_WR);
	ZC_EXPECT_RX(&rx, log.bytes);
	EXPECT_EQ(0, unreg(self->zfd));
	zc_log_free(&log);
	zc_pair_close(&p);
}

/*
 * A batch looks a socket up once per run of descriptors naming it and a
 * registered buffer once per run naming it: runs of two sockets and two
 * buffers (the second starts a page later, so a range resolved in the
 * wrong one sends the wrong bytes), interleaved with plain iovec sends,
 * must each reach their own stream, in order, byte for byte.
 */
TEST_F(fixed, submit_runs_switch_sockets_and_buffers)
{
	struct zcsend_buffer b[2] = { { (uintptr_t)self->buf, LEN / 2 },
				      { (uintptr_t)self->buf + PAGE, LEN / 2 } };
	static struct zcsend_send s[ZCSEND_MAX_BATCH];
	static struct zcsend_range r[ZCSEND_MAX_BATCH];
	static struct iovec iov[ZCSEND_MAX_BATCH];
	uint64_t off[2] = { 0, 0 }, sent[2] = { 0, 0 }, ud = 0;
	struct zc_log log = { 0 };
	struct zc_pair p[2];
	struct zc_rx rx[2];
	int i, k, n;

	for (k = 0; k < 2; k++) {
		ASSERT_EQ(0, zc_loopback_pair(&p[k], AF_INET, SOCK_STREAM, 0,
					      4 << 20));
		ASSERT_EQ(0, zc_rx_start(&rx[k], p[k].rx, SEED, 0));
	}
	ASSERT_EQ(0, reg(self->zfd, b, 2, 0));
	for (k = 0; k < 3; k++) {
		int nr = k < 2 ? 97 : ZCSEND_MAX_BATCH;

		for (i = 0; i < nr; i++) {
			int t = (i / 3) % 2;		/* runs of 3 per socket */
			size_t len = 1000 + 37 * (i % 11);

			ASSERT_GT(LEN / 2, off[t] + len);
			if (i % 7 == 6) {
				iov[i] = (struct iovec){ self->buf + off[t], len };
				s[i] = (struct zcsend_send){ .fd = p[t].tx,
					.iov = (uintptr_t)&iov[i], .iovcnt = 1,
					.user_data = ud + i };
			} else {
				/* Runs of 2 per buffer; buffer 1 is a page on. */
				uint32_t bi = off[t] >= PAGE ? (i / 2) % 2 : 0;

				r[i] = (struct zcsend_range){ bi, 0, off[t] - bi * PAGE, len };
				s[i] = (struct zcsend_send){ .fd = p[t].tx,
					.flags = ZCSEND_SEND_FIXED,
					.iov = (uintptr_t)&r[i], .iovcnt = 1,
					.user_data = ud + i };
			}
			off[t] += len;
			sent[t] += len;
			zc_log_add(&log, ud + i, len);
		}
		n = submit(self->zfd, s, nr, 0);
		ASSERT_EQ(nr, n) TH_LOG("batch %d: %s", k, n < 0 ? strerror(-n) : "short");
		ud += nr;
	}
	zc_expect_completions(_metadata, self->zfd, &log, 0, 0, NULL);
	/* The batch let go of the buffers: nothing in flight, unregister. */
	EXPECT_EQ(0, unreg(self->zfd));
	for (k = 0; k < 2; k++) {
		shutdown(p[k].tx, SHUT_WR);
		ZC_EXPECT_RX(&rx[k], sent[k]);
		zc_pair_close(&p[k]);
	}
	zc_log_free(&log);
}

/* ----------------------------------------------------------------------
 * Registered sockets
 */

static int reg_socks(int zfd, const int *fds, uint32_t nr, uint32_t flags)
{
	struct zcsend_register_sockets r = { .fds = (uintptr_t)fds, .nr = nr,
					     .flags = flags };

	return ioctl(zfd, ZCSEND_IOC_REGISTER_SOCKETS, &r) ? -errno : 0;
}

static int unreg_socks(int zfd)
{
	return ioctl(zfd, ZCSEND_IOC_UNREGISTER_SOCKETS) ? -errno : 0;
}

/*
 * Every bad registration fails whole with its errno and registers nothing
 * (a send by index then says ENXIO); one table at a time (EBUSY), and
 * unregistering twice says ENXIO.
 */
TEST_F(fixed, sockets_register_bad_input)
{
	static int many[ZCSEND_MAX_SOCKETS + 1];
	int fds[2], pfd[2], un[2], bad, dupfd, raw, ret;
	struct rlimit rl, lim;
	struct zc_pair p, q;

	ASSERT_EQ(0, zc_loopback_pair(&p, AF_INET, SOCK_STREAM, 0, 0));
	ASSERT_EQ(0, zc_loopback_pair(&q, AF_INET, SOCK_DGRAM, 0, 0));
	fds[0] = p.tx;
	fds[1] = q.tx;
	EXPECT_EQ(-EINVAL, reg_socks(self->zfd, fds, 0, 0));
	EXPECT_EQ(-EINVAL, reg_socks(self->zfd, many, ZCSEND_MAX_SOCKETS + 1, 0));
	EXPECT_EQ(-EINVAL, reg_socks(self->zfd, fds, 2, 1));
	EXPECT_EQ(-EFAULT, reg_socks(self->zfd, (void *)16, 1, 0));
	bad = 999;
	EXPECT_EQ(-EBADF, reg_socks(self->zfd, &bad, 1, 0));
	bad = -1;
	EXPECT_EQ(-EBADF, reg_socks(self->zfd, &bad, 1, 0));
	ASSERT_EQ(0, pipe(pfd));
	EXPECT_EQ(-ENOTSOCK, reg_socks(self->zfd, pfd, 1, 0));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, un));
	EXPECT_EQ(-EAFNOSUPPORT, reg_socks(self->zfd, un, 1, 0));
	raw = socket(AF_INET, SOCK_RAW, IPPROTO_UDP);
	if (raw >= 0)
		EXPECT_EQ(-EPROTONOSUPPORT, reg_socks(self->zfd, &raw, 1, 0));
	/* A good one before a bad one: nothing registered either. */
	fds[1] = 999;
	EXPECT_EQ(-EBADF, reg_socks(self->zfd, fds, 2, 0));
	/* One socket twice, by the same descriptor or a dup() of it. */
	fds[1] = p.tx;
	EXPECT_EQ(-EINVAL, reg_socks(self->zfd, fds, 2, 0));
	dupfd = dup(p.tx);
	ASSERT_LE(0, dupfd);
	fds[1] = dupfd;
	EXPECT_EQ(-EINVAL, reg_socks(self->zfd, fds, 2, 0));
	EXPECT_EQ(-ENXIO, zc_send(self->zfd, 0, self->buf, 100,
				  ZCSEND_SEND_FIXED_SOCKET, NULL, 0, 1));
	EXPECT_EQ(-ENXIO, unreg_socks(self->zfd));
	fds[1] = q.tx;
	ASSERT_EQ(0, reg_socks(self->zfd, fds, 2, 0));
	EXPECT_EQ(-EBUSY, reg_socks(self->zfd, fds, 2, 0));
	EXPECT_EQ(0, unreg_socks(self->zfd));
	EXPECT_EQ(-ENXIO, unreg_socks(self->zfd));
	ASSERT_EQ(0, reg_socks(self->zfd, fds, 2, 0));
	EXPECT_EQ(0, unreg_socks(self->zfd));
	/* More sockets than RLIMIT_NOFILE allows descriptors: EMFILE. */
	ASSERT_EQ(0, getrlimit(RLIMIT_NOFILE, &rl));
	lim = (struct rlimit){ 1, rl.rlim_max };
	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &lim));
	ret = reg_socks(self->zfd, fds, 2, 0);
	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &rl));
	EXPECT_EQ(-EMFILE, ret);
	/* Nothing was posted for any of it. */
	EXPECT_EQ(0, zc_read_compl(self->zfd, (void *)many, 1));
	if (raw >= 0)
		close(raw);
	close(dupfd);
	close(pfd[0]);
	close(pfd[1]);
	close(un[0]);
	close(un[1]);
	zc_pair_close(&p);
	zc_pair_close(&q);
}

/*
 * Sends by index: plain iovecs and a registered buffer's range on a TCP
 * socket whose descriptor was closed after registering (the table keeps it
 * open), an addressed datagram on a UDP one; bad indexes say EBADF; one
 * record each. Unregistering drops the last reference: the TCP peer sees
 * the stream end, with every byte intact.
 */
TEST_F(fixed, sockets_send_by_index)
{
	struct zcsend_buffer b = { (uintptr_t)self->buf, LEN };
	struct zcsend_range r = { 0, 0, 3000, 20000 };
	struct zcsend_completion c[4];
	uint8_t dgram[2000];
	struct zc_pair p, q;
	struct zc_rx rx;
	int fds[2], tx, i;
	uint64_t seen = 0;

	ASSERT_EQ(0, zc_loopback_pair(&p, AF_INET, SOCK_STREAM, 0, 0));
	ASSERT_EQ(0, zc_loopback_pair(&q, AF_INET, SOCK_DGRAM, 0, 0));
	ASSERT_EQ(0, zc_rx_start(&rx, p.rx, SEED, 0));
	fds[0] = q.tx;
	fds[1] = p.tx;
	ASSERT_EQ(0, reg_socks(self->zfd, fds, 2, 0));
	EXPECT_EQ(-EBADF, zc_send(self->zfd, 2, self->buf, 100,
				  ZCSEND_SEND_FIXED_SOCKET, NULL, 0, 1));
	EXPECT_EQ(-EBADF, zc_send(self->zfd, -1, self->buf, 100,
				  ZCSEND_SEND_FIXED_SOCKET, NULL, 0, 1));
	/* The descriptor goes; the registered socket stays open. */
	tx = p.tx;
	p.tx = -1;
	close(tx);
	EXPECT_EQ(3000, zc_send(self->zfd, 1, self->buf, 3000,
				ZCSEND_SEND_FIXED_SOCKET | MSG_NOSIGNAL, NULL, 0, 10));
	ASSERT_EQ(0, reg(self->zfd, &b, 1, 0));
	EXPECT_EQ(20000, send_fixed(self->zfd, 1, &r, 1,
				    ZCSEND_SEND_FIXED_SOCKET | MSG_NOSIGNAL,
				    NULL, 0, 11));
	/* By its descriptor, index 1 is gone: EBADF, not the socket. */
	EXPECT_EQ(-EBADF, zc_send(self->zfd, tx, self->buf, 100, 0, NULL, 0, 1));
	EXPECT_EQ(1500, zc_send(self->zfd, 0, self->buf, 1500,
				ZCSEND_SEND_FIXED_SOCKET, &q.dst, q.dstlen, 12));
	EXPECT_EQ(1500, recv(q.rx, dgram, sizeof(dgram), MSG_DONTWAIT));
	EXPECT_EQ(0, memcmp(dgram, self->buf, 1500));
	ASSERT_EQ(3, zc_collect(self->zfd, c, 3, ZC_WAIT_MS));
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(0, c[i].result);
		seen |= 1ULL << (c[i].user_data - 10);
	}
	EXPECT_EQ(7, seen) TH_LOG("records of sends 10, 11 and 12 once each");
	EXPECT_EQ(0, zc_read_compl(self->zfd, c, 1));
	EXPECT_EQ(0, unreg_socks(self->zfd));
	EXPECT_EQ(-ENXIO, zc_send(self->zfd, 1, self->buf, 100,
				  ZCSEND_SEND_FIXED_SOCKET, NULL, 0, 1));
	/* The table held the last reference: the stream ends now. */
	ZC_EXPECT_RX(&rx, 23000);
	EXPECT_EQ(0, unreg(self->zfd));
	zc_pair_close(&p);
	zc_pair_close(&q);
}

/*
 * A batch mixing sends by index and by descriptor on two sockets: every
 * send completes once, the stream arrives intact; a bad index stops the
 * batch there (the count before it).
 */
TEST_F(fixed, sockets_submit_mixed)
{
	static struct zcsend_send s[8];
	struct zcsend_completion c[8];
	struct iovec iov[8];
	struct zc_pair p;
	struct zc_rx rx;
	int i;

	ASSERT_EQ(0, zc_loopback_pair(&p, AF_INET, SOCK_STREAM, 0, 4 << 20));
	ASSERT_EQ(0, zc_rx_start(&rx, p.rx, SEED, 0));
	ASSERT_EQ(0, reg_socks(self->zfd, &p.tx, 1, 0));
	for (i = 0; i < 8; i++) {
		iov[i] = (struct iovec){ self->buf + i * 20000, 20000 };
		s[i] = (struct zcsend_send){
			.fd = i % 2 ? 0 : p.tx,
			.flags = MSG_NOSIGNAL | (i % 2 ? ZCSEND_SEND_FIXED_SOCKET : 0),
			.iov = (uintptr_t)&iov[i], .iovcnt = 1, .user_data = i };
	}
	/* Index 1 (send 5): past the one-socket table. */
	s[5].fd = 1;
	EXPECT_EQ(5, submit(self->zfd, s, 8, 0));
	ASSERT_EQ(5, zc_collect(self->zfd, c, 5, ZC_WAIT_MS));
	for (i = 0; i < 5; i++)
		EXPECT_EQ(20000, c[i].bytes);
	EXPECT_EQ(0, zc_read_compl(self->zfd, c, 1));
	EXPECT_EQ(-EBADF, submit(self->zfd, &s[5], 1, 0));
	EXPECT_EQ(0, unreg_socks(self->zfd));
	shutdown(p.tx, SHUT_WR);
	ZC_EXPECT_RX(&rx, 5 * 20000);
	zc_pair_close(&p);
}

/*
 * A send held in flight (a peer that does not read) on a registered TCP
 * socket whose descriptor is closed: only the table keeps the socket, and
 * the socket keeps the send (and so the file's state) alive. Closing the
 * file drops the table: the socket closes (SO_LINGER 0: at once, with a
 * reset that frees its queue), the send completes, and the file's state and
 * module reference go, while the peer is still open: no cycle.
 */
TEST_F(fixed, sockets_released_with_the_file)
{
	struct zcsend_buffer b = { (uintptr_t)self->buf, LEN };
	struct zcsend_range r = { 0, 0, 0, 256 << 10 };
	struct linger lg = { 1, 0 };
	struct zcsend_stats st;
	int before, zfd, n;
	struct zc_pair p;

	/* -1: no refcount to read (a built-in module). */
	before = zc_settled_refcnt(ZC_WAIT_MS);
	ASSERT_EQ(0, zc_loopback_pair(&p, AF_INET, SOCK_STREAM, 4096, 4 << 20));
	ASSERT_EQ(0, setsockopt(p.tx, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
	zfd = zc_open();
	ASSERT_LE(0, zfd);
	ASSERT_EQ(0, reg(zfd, &b, 1, 0));
	ASSERT_EQ(0, reg_socks(zfd, &p.tx, 1, 0));
	n = send_fixed(zfd, 0, &r, 1, ZCSEND_SEND_FIXED_SOCKET | MSG_DONTWAIT | MSG_NOSIGNAL,
		       NULL, 0, 1);
	EXPECT_LT(0, n) TH_LOG("send: %s", n < 0 ? strerror(-n) : "none");
	ASSERT_EQ(0, zc_stats(zfd, &st));
	EXPECT_EQ(1, st.inflight) TH_LOG("the send is not in flight: the test set up nothing");
	close(p.tx);
	p.tx = -1;
	close(zfd);
	if (before >= 0)
		EXPECT_EQ(before, zc_wait_refcnt(before, ZC_WAIT_MS))
			TH_LOG("the closed file's state (and module reference) stayed");
	EXPECT_EQ(self->pins, zc_wait_pins(self->pins, ZC_WAIT_MS));
	zc_pair_close(&p);
}

TEST_HARNESS_MAIN
