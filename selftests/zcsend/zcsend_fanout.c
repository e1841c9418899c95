// SPDX-License-Identifier: GPL-2.0
/*
 * ZCSEND_IOC_FANOUT: one payload to many sockets in one call.
 *
 * - bad input fails whole, with its errno, before anything is sent: no
 *   receiver sees a byte and no record is posted;
 * - every destination is tried in order, a failing one does not stop the
 *   others, each result is written back, the ioctl returns how many
 *   accepted bytes, and exactly one record (ZCSEND_COMPL_FANOUT) is posted
 *   whose bytes are the sum over destinations: ZEROCOPY out dummy0, COPIED
 *   over loopback (local delivery copies);
 * - TCP and UDP, IPv4 and IPv6, addressed and connected, in one call, and
 *   ZCSEND_MAX_FANOUT destinations at once;
 * - ranges of a registered buffer (ZCSEND_SEND_FIXED): nothing pinned per
 *   call, unregistering refused while the fan-out is in flight;
 * - registered sockets (ZCSEND_SEND_FIXED_SOCKET): destinations by index,
 *   a bad or repeated index failing the call before anything is sent;
 * - ZCSEND_FANOUT_STABLE: the caller overwrites and unmaps its buffer as
 *   soon as the ioctl returns and every receiver still gets the original;
 * - the file and the sockets closed mid-flight: pins and module references
 *   all come back;
 * - RLIMIT_MEMLOCK is charged once per call, not once per destination.
 */
#include <grp.h>
#include <sys/resource.h>

#include "zcsend_helpers.h"

#define SEED		0x5eed000fULL
#define PAGE		4096
/* One datagram over loopback, and out dummy0 at MTU 65535. */
#define UDP_LEN		60000
#define DUMMY_LEN	65000
#define TCP_LEN		(256 << 10)
/* What a result field holds until the module writes it. */
#define NO_RESULT	INT64_MIN

#define COMPL_KNOWN	(ZCSEND_COMPL_ZEROCOPY | ZCSEND_COMPL_COPIED | \
			 ZCSEND_COMPL_COPY_PATH | ZCSEND_COMPL_FANOUT | \
			 ZCSEND_COMPL_STABLE)

FIXTURE(fanout) {
	int zfd;
	int64_t pins;
	uint64_t thr;
};

FIXTURE_SETUP(fanout)
{
	self->pins = zc_pins_outstanding();
	self->zfd = zc_open();
	ASSERT_LE(0, self->zfd) TH_LOG("open %s: %s", ZCSEND_DEVICE,
				       strerror(errno));
	self->thr = zc_copy_threshold();
}

FIXTURE_TEARDOWN(fanout)
{
	if (self->zfd >= 0)
		close(self->zfd);
	ZC_EXPECT_PINS_BACK(self->pins);
}

/* ----------------------------------------------------------------------
 * Helpers
 */

static int fanout_raw(int zfd, struct zcsend_fanout *f)
{
	int ret = ioctl(zfd, ZCSEND_IOC_FANOUT, f);

	return ret < 0 ? -errno : ret;
}

/* One fan-out; every result starts out as NO_RESULT. */
static int fanout(int zfd, uint32_t flags, const void *iov, uint32_t iovcnt,
		  struct zcsend_dest *d, uint32_t nr, uint64_t user_data)
{
	struct zcsend_fanout f = {
		.flags = flags,
		.iovcnt = iovcnt,
		.iov = (uintptr_t)iov,
		.dests = (uintptr_t)d,
		.nr = nr,
		.user_data = user_data,
	};
	uint32_t i;

	for (i = 0; i < nr; i++)
		d[i].result = NO_RESULT;
	return fanout_raw(zfd, &f);
}

static void dest_set(struct zcsend_dest *d, int fd, const void *addr,
		     socklen_t addrlen)
{
	d->fd = fd;
	d->addrlen = addrlen;
	d->addr = (uintptr_t)addr;
	d->result = NO_RESULT;
}

static uint64_t file_sends(int zfd)
{
	struct zcsend_stats st;

	return zc_stats(zfd, &st) ? UINT64_MAX : st.sends;
}

/* Bytes queued on a receiving socket (UDP: the next datagram), or -errno. */
static int inq(int fd)
{
	int n = -1;

	return ioctl(fd, FIONREAD, &n) ? -errno : n;
}

static int reg(int zfd, void *addr, size_t len)
{
	struct zcsend_buffer b = { (uintptr_t)addr, len };
	struct zcsend_register r = { .bufs = (uintptr_t)&b, .nr = 1 };

	return ioctl(zfd, ZCSEND_IOC_REGISTER_BUFFERS, &r) < 0 ? -errno : 0;
}

static int unreg(int zfd)
{
	return ioctl(zfd, ZCSEND_IOC_UNREGISTER_BUFFERS) ? -errno : 0;
}

/*
 * Waits for the one record of a fan-out and checks it: @user_data, @bytes
 * (the sum over destinations), result 0, exactly one of ZEROCOPY and
 * COPIED, every flag of @must and none of @must_not. Then checks that it
 * was the only one: nothing more is queued or comes a little later, the
 * file's sends counter went up by exactly one from @sends_before, and
 * nothing is in flight or pinned. Returns the record's flags (0 if none).
 */
static uint32_t expect_record(struct __test_metadata *_metadata, int zfd,
			      uint64_t sends_before, uint64_t user_data,
			      uint64_t bytes, uint32_t must, uint32_t must_not)
{
	struct zcsend_completion c[4];
	struct zcsend_stats st;
	int got;

	memset(c, 0, sizeof(c));
	got = zc_collect(zfd, c, 1, ZC_WAIT_MS);
	EXPECT_EQ(1, got) TH_LOG("no completion record within %d ms",
				 ZC_WAIT_MS);
	if (got != 1)
		return 0;
	EXPECT_EQ(user_data, c[0].user_data);
	EXPECT_EQ(bytes, c[0].bytes)
		TH_LOG("record bytes %llu, want the sum over destinations %llu",
		       (unsigned long long)c[0].bytes,
		       (unsigned long long)bytes);
	EXPECT_EQ(0, c[0].result);
	EXPECT_EQ(0, c[0].flags & ~COMPL_KNOWN)
		TH_LOG("unknown completion flags %#x", c[0].flags);
	EXPECT_NE(ZC_FLAGS_ONE_OF, c[0].flags & ZC_FLAGS_ONE_OF)
		TH_LOG("flags %#x: both ZEROCOPY and COPIED", c[0].flags);
	EXPECT_NE(0, c[0].flags & ZC_FLAGS_ONE_OF)
		TH_LOG("flags %#x: neither ZEROCOPY nor COPIED", c[0].flags);
	EXPECT_EQ(must, c[0].flags & must)
		TH_LOG("record flags %#x lack %#x", c[0].flags, must);
	EXPECT_EQ(0, c[0].flags & must_not)
		TH_LOG("record flags %#x have %#x", c[0].flags,
		       c[0].flags & must_not);
	/* Exactly one: no record per destination, now or a little later. */
	zc_msleep(50);
	got = zc_read_compl(zfd, c + 1, 3);
	EXPECT_EQ(0, got)
		TH_LOG("%d more record(s) after the fan-out's one: user_data %#llx bytes %llu flags %#x",
		       got, (unsigned long long)c[1].user_data,
		       (unsigned long long)c[1].bytes, c[1].flags);
	EXPECT_EQ(0, zc_stats(zfd, &st));
	EXPECT_EQ(sends_before + 1, st.sends)
		TH_LOG("the file posted %llu records for one fan-out",
		       (unsigned long long)(st.sends - sends_before));
	EXPECT_EQ(0, st.inflight);
	EXPECT_EQ(0, st.pinned_pages);
	EXPECT_EQ(0, st.queued);
	return c[0].flags;
}

/* @n UDP pairs over loopback of @family; odd ones connected. */
static void udp_pairs(struct __test_metadata *_metadata, struct zc_pair *p,
		      int n, int family)
{
	int i, ret;

	for (i = 0; i < n; i++) {
		ret = zc_loopback_pair(&p[i], family, SOCK_DGRAM, 1 << 20, 0);
		ASSERT_EQ(0, ret) TH_LOG("UDP pair %d: %s", i, strerror(-ret));
		if (i % 2)
			ASSERT_EQ(0, connect(p[i].tx, (void *)&p[i].dst,
					     p[i].dstlen));
	}
}

/* The destination of UDP pair @i as udp_pairs() made it. */
static void udp_dest(struct zcsend_dest *d, const struct zc_pair *p, int i)
{
	if (i % 2)
		dest_set(d, p->tx, NULL, 0);
	else
		dest_set(d, p->tx, &p->dst, p->dstlen);
}

static void pairs_close(struct zc_pair *p, int n)
{
	int i;

	for (i = 0; i < n; i++)
		zc_pair_close(&p[i]);
}

/*
 * Moves the test into a namespace of its own with dummy0 at MTU 65535
 * (IPv6 too when @want_v6 and available: *@v6 says). 0, or 1 when the
 * test must end (skipped or failed).
 */
static int dummy_ns(struct __test_metadata *_metadata, bool want_v6, bool *v6)
{
	const char *why = NULL;
	int ret = zc_netns_dummy(65535, want_v6, &why);

	*v6 = want_v6;
	if (ret == -EPERM || ret == -EACCES)
		SKIP(return 1, "%s: %s (needs root)", why, strerror(-ret));
	if (ret == -EOPNOTSUPP && why && !strncmp(why, "ip link add", 11))
		SKIP(return 1, "no dummy device (CONFIG_DUMMY)");
	if (ret == -EAFNOSUPPORT && want_v6) {
		/* The IPv4 half is set up: go on without IPv6. */
		TH_LOG("%s: %s: IPv4 only", why, strerror(-ret));
		*v6 = false;
		ret = 0;
	}
	EXPECT_EQ(0, ret) TH_LOG("%s: %s", why, strerror(-ret));
	return ret ? 1 : 0;
}

/* Receives one datagram on @fd and checks it is stream bytes [0, @len). */
static void expect_dgram(struct __test_metadata *_metadata, int fd, size_t len,
			 int which)
{
	struct timeval tv = { ZC_WAIT_MS / 1000, 0 };
	uint8_t *b = malloc(len + 1);
	ssize_t n;
	size_t off;

	ASSERT_NE(NULL, b);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = recv(fd, b, len + 1, 0);
	EXPECT_EQ((ssize_t)len, n) TH_LOG("receiver %d: %zd (%s)", which, n,
					  n < 0 ? strerror(errno) : "bytes");
	if (n == (ssize_t)len) {
		off = zc_pattern_check(b, len, SEED, 0);
		EXPECT_EQ(len, off) TH_LOG("receiver %d: wrong byte at %zu",
					   which, off);
	}
	free(b);
}

/* ----------------------------------------------------------------------
 * Bad input
 */

/*
 * Runs @f, which must fail with @err before anything is sent: no record
 * posted, nothing in flight, no receiver in @p got anything.
 */
static void refused(struct __test_metadata *_metadata, int zfd,
		    struct zcsend_fanout *f, int err, const char *mode,
		    const char *what, const struct zc_pair *p, int np)
{
	struct zcsend_completion c;
	struct zcsend_stats st;
	uint8_t sink[2048];
	int ret, i, q;

	ret = fanout_raw(zfd, f);
	EXPECT_EQ(-err, ret)
		TH_LOG("%s%s: %d (%s), want -1 with %s", mode, what, ret,
		       ret < 0 ? strerror(-ret) : "accepted", strerror(err));
	if (ret >= 0) {
		/* Keep the next cases clean. */
		zc_collect(zfd, &c, 1, ZC_WAIT_MS);
	} else {
		EXPECT_EQ(0, zc_read_compl(zfd, &c, 1))
			TH_LOG("%s%s: refused, yet a record was posted", mode,
			       what);
		ASSERT_EQ(0, zc_stats(zfd, &st));
		EXPECT_EQ(0, st.inflight)
			TH_LOG("%s%s: refused, yet a send is in flight", mode,
			       what);
	}
	for (i = 0; i < np; i++) {
		q = inq(p[i].rx);
		EXPECT_EQ(0, q)
			TH_LOG("%s%s: receiver %d has %d bytes: something was sent",
			       mode, what, i, q);
		while (recv(p[i].rx, sink, sizeof(sink), MSG_DONTWAIT) > 0)
			;
	}
}

#define BAD_NP	4

TEST_F(fanout, bad_input)
{
	static struct zcsend_dest many[ZCSEND_MAX_FANOUT + 1];
	static struct iovec many_iov[UIO_MAXIOV + 1];
	struct zcsend_dest d[BAD_NP], d2[BAD_NP], *tail, *ro;
	struct zcsend_fanout base, f;
	struct zc_pair p[BAD_NP];
	struct iovec iov, hole_iov;
	struct zcsend_range r = { 0, 0, 0, UDP_LEN };
	int i, m, n, pfd[2], dupfd;
	uint8_t *buf, *hole, *two;
	const char *mode;

	udp_pairs(_metadata, p, BAD_NP, AF_INET);
	for (i = 0; i < BAD_NP; i++)
		udp_dest(&d[i], &p[i], i);
	buf = zc_map_pattern(16 * PAGE, SEED);
	ASSERT_NE(NULL, buf);
	iov = (struct iovec){ buf, UDP_LEN };
	hole = mmap(NULL, 16 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	ASSERT_NE(MAP_FAILED, hole);
	hole_iov = (struct iovec){ hole, UDP_LEN };
	ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	dupfd = dup(p[1].tx);
	ASSERT_LE(0, dupfd);
	for (i = 0; i <= ZCSEND_MAX_FANOUT; i++)
		many[i].fd = -1;
	for (i = 0; i <= UIO_MAXIOV; i++)
		many_iov[i] = (struct iovec){ buf, 1 };
	/* Dests running into a PROT_NONE page: three fit, the fourth not. */
	two = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, two);
	ASSERT_EQ(0, mprotect(two + PAGE, PAGE, PROT_NONE));
	tail = (struct zcsend_dest *)(two + PAGE - 3 * sizeof(*tail));
	memcpy(tail, d, 3 * sizeof(*tail));
	/* Dests that can be read but whose results cannot be written. */
	ro = zc_map(PAGE);
	ASSERT_NE(NULL, ro);
	memcpy(ro, d, sizeof(d));
	ASSERT_EQ(0, mprotect(ro, PAGE, PROT_READ));

	for (m = 0; m < 2; m++) {
		mode = m ? "STABLE: " : "";
		base = (struct zcsend_fanout){
			.flags = m ? ZCSEND_FANOUT_STABLE : 0,
			.iovcnt = 1, .iov = (uintptr_t)&iov,
			.dests = (uintptr_t)d, .nr = BAD_NP, .user_data = 1,
		};
#define REFUSED(err, what) \
	refused(_metadata, self->zfd, &f, err, mode, what, p, BAD_NP)

		f = base; f.nr = 0;
		REFUSED(EINVAL, "nr 0");
		f = base; f.nr = ZCSEND_MAX_FANOUT + 1; f.dests = (uintptr_t)many;
		REFUSED(EINVAL, "nr ZCSEND_MAX_FANOUT + 1");
		f = base; f.resv = 1;
		REFUSED(EINVAL, "resv 1");
		f = base; f.flags |= MSG_OOB;
		REFUSED(EINVAL, "MSG_OOB");
		f = base; f.flags |= 1U << 29;
		REFUSED(EINVAL, "flag bit 29");
		f = base; f.iovcnt = 0;
		REFUSED(EINVAL, "iovcnt 0");
		f = base; f.iovcnt = UIO_MAXIOV + 1; f.iov = (uintptr_t)many_iov;
		REFUSED(EINVAL, "iovcnt UIO_MAXIOV + 1");
		f = base; f.iov = 8;
		REFUSED(EFAULT, "iovec array unmapped");
		f = base; f.iov = (uintptr_t)&hole_iov;
		REFUSED(EFAULT, "payload unmapped");
		f = base; f.dests = 0;
		REFUSED(EFAULT, "dests NULL");
		f = base; f.dests = 8;
		REFUSED(EFAULT, "dests unmapped");
		f = base; f.dests = (uintptr_t)tail;
		REFUSED(EFAULT, "dests end in an unmapped page");
		f = base; f.dests = (uintptr_t)ro;
		REFUSED(EFAULT, "dests read-only (results cannot be written)");

		f = base; f.dests = (uintptr_t)d2;
		memcpy(d2, d, sizeof(d));
		d2[2].fd = -1;
		REFUSED(EBADF, "fd -1 in the middle");
		d2[2].fd = 100000;
		REFUSED(EBADF, "fd 100000 in the middle");
		d2[2].fd = pfd[0];
		REFUSED(ENOTSOCK, "a pipe in the middle");
		memcpy(d2, d, sizeof(d));
		d2[3].fd = d2[0].fd;
		REFUSED(EINVAL, "the same fd twice");
		d2[3].fd = dupfd;
		REFUSED(EINVAL, "the same socket through dup()");
		memcpy(d2, d, sizeof(d));
		d2[2].addr = (uintptr_t)hole;
		REFUSED(EFAULT, "an address unmapped");
		memcpy(d2, d, sizeof(d));
		d2[2].addrlen = sizeof(struct sockaddr_storage) + 1;
		REFUSED(EINVAL, "addrlen 129");
		d2[2].addrlen = 4096;
		REFUSED(EINVAL, "addrlen 4096");
		d2[2].addrlen = 1;
		REFUSED(EINVAL, "addrlen 1");
		d2[2].addrlen = sizeof(struct sockaddr_in) - 1;
		REFUSED(EINVAL, "addrlen 15");
#undef REFUSED
	}

	/* STABLE with ranges of a registered buffer. */
	ASSERT_EQ(0, reg(self->zfd, buf, 16 * PAGE));
	f = base;
	f.flags = ZCSEND_FANOUT_STABLE | ZCSEND_SEND_FIXED;
	f.iov = (uintptr_t)&r;
	refused(_metadata, self->zfd, &f, EINVAL, "", "STABLE | FIXED", p,
		BAD_NP);
	EXPECT_EQ(0, unreg(self->zfd));

	/* Nothing was posted for any of them... */
	EXPECT_EQ(0, file_sends(self->zfd));
	/* ...and the same call, good, goes through. */
	n = fanout(self->zfd, 0, &iov, 1, d, BAD_NP, 2);
	EXPECT_EQ(BAD_NP, n) TH_LOG("the good call: %d (%s)", n,
				    n < 0 ? strerror(-n) : "destinations");
	for (i = 0; i < BAD_NP; i++) {
		EXPECT_EQ(UDP_LEN, d[i].result) TH_LOG("dest %d", i);
		expect_dgram(_metadata, p[i].rx, UDP_LEN, i);
	}
	expect_record(_metadata, self->zfd, 0, 2, (uint64_t)BAD_NP * UDP_LEN,
		      ZCSEND_COMPL_FANOUT | ZCSEND_COMPL_COPIED,
		      ZCSEND_COMPL_STABLE);

	mprotect(ro, PAGE, PROT_READ | PROT_WRITE);
	munmap(ro, PAGE);
	munmap(two, 2 * PAGE);
	munmap(hole, 16 * PAGE);
	munmap(buf, 16 * PAGE);
	close(pfd[0]);
	close(pfd[1]);
	close(dupfd);
	pairs_close(p, BAD_NP);
}

/* ----------------------------------------------------------------------
 * Fan-outs that go through
 */

/*
 * UDP out dummy0 at MTU 65535 to 8 sockets (IPv4 and IPv6, addressed and
 * connected): nothing copies, so the one record says ZEROCOPY.
 */
TEST_F(fanout, udp_dummy_zerocopy)
{
	struct sockaddr_storage dst[8];
	struct zcsend_dest d[8];
	struct zcsend_stats st;
	struct iovec iov;
	uint64_t sends;
	uint8_t *buf;
	int fd[8], i, n, fam;
	socklen_t len;
	bool v6;

	if (self->thr > DUMMY_LEN)
		SKIP(return, "copy_threshold %llu: a datagram takes the copy path",
		     (unsigned long long)self->thr);
	if (dummy_ns(_metadata, true, &v6))
		return;
	buf = zc_map_pattern(DUMMY_LEN, SEED);
	ASSERT_NE(NULL, buf);
	iov = (struct iovec){ buf, DUMMY_LEN };
	for (i = 0; i < 8; i++) {
		fam = v6 && i >= 4 ? AF_INET6 : AF_INET;
		len = zc_addr(fam, fam == AF_INET ? ZC_DUMMY_PEER4 :
			      ZC_DUMMY_PEER6, 9000 + i, &dst[i]);
		fd[i] = socket(fam, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		ASSERT_LE(0, fd[i]);
		if (i % 2) {
			ASSERT_EQ(0, connect(fd[i], (void *)&dst[i], len));
			dest_set(&d[i], fd[i], NULL, 0);
		} else {
			dest_set(&d[i], fd[i], &dst[i], len);
		}
	}
	sends = file_sends(self->zfd);
	n = fanout(self->zfd, 0, &iov, 1, d, 8, 0xf00d);
	ASSERT_EQ(8, n) TH_LOG("fan-out: %s", n < 0 ? strerror(-n) : "short");
	for (i = 0; i < 8; i++) {
		EXPECT_EQ(DUMMY_LEN, d[i].result)
			TH_LOG("dest %d (%s, %s): %lld", i,
			       v6 && i >= 4 ? "IPv6" : "IPv4",
			       i % 2 ? "connected" : "addressed",
			       (long long)d[i].result);
	}
	expect_record(_metadata, self->zfd, sends, 0xf00d, 8ULL * DUMMY_LEN,
		      ZCSEND_COMPL_ZEROCOPY | ZCSEND_COMPL_FANOUT,
		      ZCSEND_COMPL_COPIED | ZCSEND_COMPL_COPY_PATH |
		      ZCSEND_COMPL_STABLE);
	ASSERT_EQ(0, zc_stats(self->zfd, &st));
	EXPECT_EQ(1, st.zerocopy);
	EXPECT_EQ(0, st.copied);
	for (i = 0; i < 8; i++)
		close(fd[i]);
	munmap(buf, DUMMY_LEN);
}

#define TCP_DESTS	8

/* 8 TCP streams over loopback, every byte checked on every stream. */
TEST_F(fanout, tcp_loopback_verified)
{
	struct zcsend_dest d[TCP_DESTS];
	struct zc_pair p[TCP_DESTS];
	struct zc_rx rx[TCP_DESTS];
	struct iovec iov;
	uint64_t sends;
	uint8_t *buf;
	int i, n, ret;

	buf = zc_map_pattern(TCP_LEN, SEED);
	ASSERT_NE(NULL, buf);
	iov = (struct iovec){ buf, TCP_LEN };
	for (i = 0; i < TCP_DESTS; i++) {
		ret = zc_loopback_pair(&p[i], AF_INET, SOCK_STREAM, 0, 0);
		ASSERT_EQ(0, ret) TH_LOG("TCP pair %d: %s", i, strerror(-ret));
		dest_set(&d[i], p[i].tx, NULL, 0);
	}
	for (i = 0; i < TCP_DESTS; i++)
		ASSERT_EQ(0, zc_rx_start(&rx[i], p[i].rx, SEED, TCP_LEN));
	sends = file_sends(self->zfd);
	n = fanout(self->zfd, MSG_NOSIGNAL, &iov, 1, d, TCP_DESTS, 0x7c9);
	EXPECT_EQ(TCP_DESTS, n) TH_LOG("fan-out: %s",
				       n < 0 ? strerror(-n) : "short");
	/* A short stream ends at EOF instead of the receiver's timeout. */
	for (i = 0; i < TCP_DESTS; i++)
		shutdown(p[i].tx, SHUT_WR);
	for (i = 0; i < TCP_DESTS; i++) {
		EXPECT_EQ(TCP_LEN, d[i].result) TH_LOG("dest %d: %lld", i,
						       (long long)d[i].result);
		ZC_EXPECT_RX(&rx[i], TCP_LEN);
	}
	expect_record(_metadata, self->zfd, sends, 0x7c9,
		      (uint64_t)TCP_DESTS * TCP_LEN,
		      ZCSEND_COMPL_COPIED | ZCSEND_COMPL_FANOUT,
		      ZCSEND_COMPL_ZEROCOPY | ZCSEND_COMPL_COPY_PATH |
		      ZCSEND_COMPL_STABLE);
	pairs_close(p, TCP_DESTS);
	munmap(buf, TCP_LEN);
}

/*
 * One call to TCPv4, TCPv6, UDPv4 and UDPv6 (addressed and connected)
 * over loopback, the payload in two iovecs: every receiver checks it.
 */
TEST_F(fanout, mixed_families_and_protocols)
{
	static const struct { int family, type; bool connect; } kind[8] = {
		{ AF_INET, SOCK_STREAM }, { AF_INET, SOCK_STREAM },
		{ AF_INET6, SOCK_STREAM }, { AF_INET6, SOCK_STREAM },
		{ AF_INET, SOCK_DGRAM }, { AF_INET, SOCK_DGRAM, true },
		{ AF_INET6, SOCK_DGRAM }, { AF_INET6, SOCK_DGRAM, true },
	};
	struct zcsend_dest d[8];
	struct zc_pair p[8];
	struct zc_rx rx[8];
	struct iovec iov[2];
	uint64_t sends;
	uint8_t *buf;
	int i, n, ret;

	if (!zc_family_ok(AF_INET6))
		SKIP(return, "no IPv6 loopback");
	buf = zc_map_pattern(16 * PAGE, SEED);
	ASSERT_NE(NULL, buf);
	iov[0] = (struct iovec){ buf, 20000 };
	iov[1] = (struct iovec){ buf + 20000, UDP_LEN - 20000 };
	for (i = 0; i < 8; i++) {
		ret = zc_loopback_pair(&p[i], kind[i].family, kind[i].type,
				       kind[i].type == SOCK_DGRAM ? 1 << 20 : 0,
				       0);
		ASSERT_EQ(0, ret) TH_LOG("pair %d: %s", i, strerror(-ret));
		if (kind[i].connect)
			ASSERT_EQ(0, connect(p[i].tx, (void *)&p[i].dst,
					     p[i].dstlen));
		if (kind[i].type == SOCK_DGRAM && !kind[i].connect)
			dest_set(&d[i], p[i].tx, &p[i].dst, p[i].dstlen);
		else
			dest_set(&d[i], p[i].tx, NULL, 0);
		ASSERT_EQ(0, zc_rx_start(&rx[i], p[i].rx, SEED, UDP_LEN));
	}
	sends = file_sends(self->zfd);
	n = fanout(self->zfd, MSG_NOSIGNAL, iov, 2, d, 8, 0x313);
	EXPECT_EQ(8, n) TH_LOG("fan-out: %s", n < 0 ? strerror(-n) : "short");
	for (i = 0; i < 8; i++) {
		EXPECT_EQ(UDP_LEN, d[i].result)
			TH_LOG("dest %d (%s %s%s): %lld", i,
			       kind[i].type == SOCK_STREAM ? "TCP" : "UDP",
			       kind[i].family == AF_INET ? "IPv4" : "IPv6",
			       kind[i].connect ? ", connected" : "",
			       (long long)d[i].result);
		if (kind[i].type == SOCK_STREAM)
			shutdown(p[i].tx, SHUT_WR);
	}
	for (i = 0; i < 8; i++) {
		ZC_EXPECT_RX(&rx[i], UDP_LEN);
		if (kind[i].type == SOCK_DGRAM) {
			EXPECT_EQ(1, rx[i].reads) TH_LOG("dest %d", i);
		}
	}
	expect_record(_metadata, self->zfd, sends, 0x313, 8ULL * UDP_LEN,
		      ZCSEND_COMPL_COPIED | ZCSEND_COMPL_FANOUT,
		      ZCSEND_COMPL_ZEROCOPY | ZCSEND_COMPL_STABLE);
	pairs_close(p, 8);
	munmap(buf, 16 * PAGE);
}

/* A TCP socket whose sending side is shut down: sends fail with EPIPE. */
static void shut_pair(struct __test_metadata *_metadata, struct zc_pair *p)
{
	ASSERT_EQ(0, zc_loopback_pair(p, AF_INET, SOCK_STREAM, 0, 0));
	ASSERT_EQ(0, shutdown(p->tx, SHUT_WR));
}

/*
 * A TCP socket shut down for writing (EPIPE) and an unconnected UDP socket
 * without an address (EDESTADDRREQ) in the middle: their results say so,
 * the others get everything, the ioctl counts the others, one record.
 */
TEST_F(fanout, failing_destination_does_not_stop_others)
{
	struct zcsend_dest d[5];
	struct zc_pair p[4];
	struct zc_rx rx[3];
	struct iovec iov;
	uint64_t sends;
	uint8_t *buf, b;
	int i, n, ret, udp;

	buf = zc_map_pattern(16 * PAGE, SEED);
	ASSERT_NE(NULL, buf);
	iov = (struct iovec){ buf, UDP_LEN };
	/* p[0], p[2]: TCP; p[1]: TCP shut down; p[3]: UDP. */
	for (i = 0; i < 3; i += 2) {
		ret = zc_loopback_pair(&p[i], AF_INET, SOCK_STREAM, 0, 0);
		ASSERT_EQ(0, ret) TH_LOG("TCP pair: %s", strerror(-ret));
	}
	shut_pair(_metadata, &p[1]);
	ASSERT_EQ(0, zc_loopback_pair(&p[3], AF_INET, SOCK_DGRAM, 1 << 20, 0));
	udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, udp);
	dest_set(&d[0], p[0].tx, NULL, 0);
	dest_set(&d[1], p[1].tx, NULL, 0);
	dest_set(&d[2], udp, NULL, 0);
	dest_set(&d[3], p[2].tx, NULL, 0);
	dest_set(&d[4], p[3].tx, &p[3].dst, p[3].dstlen);
	ASSERT_EQ(0, zc_rx_start(&rx[0], p[0].rx, SEED, UDP_LEN));
	ASSERT_EQ(0, zc_rx_start(&rx[1], p[2].rx, SEED, UDP_LEN));
	ASSERT_EQ(0, zc_rx_start(&rx[2], p[3].rx, SEED, UDP_LEN));
	sends = file_sends(self->zfd);
	n = fanout(self->zfd, MSG_NOSIGNAL, &iov, 1, d, 5, 0xfa11);
	EXPECT_EQ(3, n) TH_LOG("fan-out: %d (%s)", n,
			       n < 0 ? strerror(-n) : "destinations");
	EXPECT_EQ(UDP_LEN, d[0].result);
	EXPECT_EQ(-EPIPE, d[1].result) TH_LOG("shut-down TCP: %lld",
					      (long long)d[1].result);
	EXPECT_EQ(-EDESTADDRREQ, d[2].result)
		TH_LOG("UDP without address: %lld", (long long)d[2].result);
	EXPECT_EQ(UDP_LEN, d[3].result);
	EXPECT_EQ(UDP_LEN, d[4].result);
	shutdown(p[0].tx, SHUT_WR);
	shutdown(p[2].tx, SHUT_WR);
	for (i = 0; i < 3; i++)
		ZC_EXPECT_RX(&rx[i], UDP_LEN);
	/* The shut-down stream carried nothing: its peer sees EOF at once. */
	EXPECT_EQ(0, recv(p[1].rx, &b, 1, MSG_DONTWAIT));
	expect_record(_metadata, self->zfd, sends, 0xfa11, 3ULL * UDP_LEN,
		      ZCSEND_COMPL_COPIED | ZCSEND_COMPL_FANOUT,
		      ZCSEND_COMPL_ZEROCOPY | ZCSEND_COMPL_STABLE);
	close(udp);
	pairs_close(p, 4);
	munmap(buf, 16 * PAGE);
}

/*
 * Every destination fails after the call was accepted: the ioctl returns
 * 0, and still posts its one record, of 0 bytes.
 */
TEST_F(fanout, none_accepted_still_one_record)
{
	struct zcsend_dest d[2];
	struct zc_pair p;
	struct iovec iov;
	uint64_t sends;
	uint8_t *buf;
	int n, udp;

	buf = zc_map_pattern(16 * PAGE, SEED);
	ASSERT_NE(NULL, buf);
	iov = (struct iovec){ buf, UDP_LEN };
	shut_pair(_metadata, &p);
	udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, udp);
	dest_set(&d[0], p.tx, NULL, 0);
	dest_set(&d[1], udp, NULL, 0);
	sends = file_sends(self->zfd);
	n = fanout(self->zfd, MSG_NOSIGNAL, &iov, 1, d, 2, 0x0);
	EXPECT_EQ(0, n) TH_LOG("fan-out: %d (%s)", n,
			       n < 0 ? strerror(-n) : "destinations");
	EXPECT_EQ(-EPIPE, d[0].result);
	EXPECT_EQ(-EDESTADDRREQ, d[1].result);
	if (n == 0)
		expect_record(_metadata, self->zfd, sends, 0x0, 0,
			      ZCSEND_COMPL_FANOUT, ZCSEND_COMPL_STABLE);
	close(udp);
	zc_pair_close(&p);
	munmap(buf, 16 * PAGE);
}

/* ZCSEND_MAX_FANOUT UDP sockets out dummy0 in one call. */
TEST_F(fanout, max_destinations)
{
	struct rlimit rl = { 4096, 4096 };
	struct sockaddr_storage dst;
	struct zcsend_dest *d;
	struct iovec iov;
	int64_t start, ms;
	uint64_t sends;
	size_t len;
	socklen_t dlen;
	uint8_t *buf;
	int *fd, i, n, ok;
	bool v6;

	len = self->thr > 16384 ? self->thr : 16384;
	if (len > DUMMY_LEN)
		SKIP(return, "copy_threshold %llu: a datagram takes the copy path",
		     (unsigned long long)self->thr);
	if (setrlimit(RLIMIT_NOFILE, &rl))
		SKIP(return, "RLIMIT_NOFILE %d: %s", 4096, strerror(errno));
	if (dummy_ns(_metadata, false, &v6))
		return;
	buf = zc_map_pattern(len, SEED);
	ASSERT_NE(NULL, buf);
	iov = (struct iovec){ buf, len };
	d = calloc(ZCSEND_MAX_FANOUT, sizeof(*d));
	fd = calloc(ZCSEND_MAX_FANOUT, sizeof(*fd));
	ASSERT_NE(NULL, d);
	ASSERT_NE(NULL, fd);
	dlen = zc_addr(AF_INET, ZC_DUMMY_PEER4, 9, &dst);
	for (i = 0; i < ZCSEND_MAX_FANOUT; i++) {
		fd[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		ASSERT_LE(0, fd[i]) TH_LOG("socket %d: %s", i, strerror(errno));
		dest_set(&d[i], fd[i], &dst, dlen);
	}
	sends = file_sends(self->zfd);
	start = zc_now_ms();
	n = fanout(self->zfd, 0, &iov, 1, d, ZCSEND_MAX_FANOUT, 1024);
	ms = zc_now_ms() - start;
	EXPECT_EQ(ZCSEND_MAX_FANOUT, n)
		TH_LOG("fan-out: %d (%s)", n, n < 0 ? strerror(-n) : "destinations");
	for (ok = 0, i = 0; i < ZCSEND_MAX_FANOUT; i++) {
		if (d[i].result == (int64_t)len)
			ok++;
		else if (ok == i)
			TH_LOG("dest %d: %lld", i, (long long)d[i].result);
	}
	EXPECT_EQ(ZCSEND_MAX_FANOUT, ok);
	TH_LOG("%d datagrams of %zu bytes in one call: %" PRId64 " ms",
	       ZCSEND_MAX_FANOUT, len, ms);
	if (n >= 0)
		expect_record(_metadata, self->zfd, sends, 1024,
			      (uint64_t)ok * len,
			      ZCSEND_COMPL_ZEROCOPY | ZCSEND_COMPL_FANOUT,
			      ZCSEND_COMPL_COPIED | ZCSEND_COMPL_STABLE);
	for (i = 0; i < ZCSEND_MAX_FANOUT; i++)
		close(fd[i]);
	free(fd);
	free(d);
	munmap(buf, len);
}

/* ----------------------------------------------------------------------
 * Registered buffers
 */

/*
 * Two ranges of a registered buffer to 4 UDP sockets over loopback:
 * nothing pinned for the call, every receiver gets the bytes.
 */
TEST_F(fanout, fixed_udp_verified)
{
	struct zcsend_range r[2] = { { 0, 0, 0, 30000 },
				     { 0, 0, 30000, UDP_LEN - 30000 } };
	struct zcsend_dest d[4];
	struct zc_pair p[4];
	struct zc_rx rx[4];
	int64_t held;
	uint64_t sends;
	uint8_t *buf;
	int i, n;

	buf = zc_map_pattern(16 * PAGE, SEED);
	ASSERT_NE(NULL, buf);
	udp_pairs(_metadata, p, 4, AF_INET);
	for (i = 0; i < 4; i++) {
		udp_dest(&d[i], &p[i], i);
		ASSERT_EQ(0, zc_rx_start(&rx[i], p[i].rx, SEED, UDP_LEN));
	}
	ASSERT_EQ(0, reg(self->zfd, buf, 16 * PAGE));
	held = zc_pins_outstanding() - self->pins;
	EXPECT_EQ(16, held);
	sends = file_sends(self->zfd);
	n = fanout(self->zfd, ZCSEND_SEND_FIXED, r, 2, d, 4, 0xf1);
	EXPECT_EQ(4, n) TH_LOG("fan-out: %d (%s)", n,
			       n < 0 ? strerror(-n) : "destinations");
	EXPECT_EQ(held, zc_pins_outstanding() - self->pins)
		TH_LOG("a fixed fan-out pinned pages");
	for (i = 0; i < 4; i++) {
		EXPECT_EQ(UDP_LEN, d[i].result) TH_LOG("dest %d", i);
		ZC_EXPECT_RX(&rx[i], UDP_LEN);
		EXPECT_EQ(1, rx[i].reads);
	}
	expect_record(_metadata, self->zfd, sends, 0xf1, 4ULL * UDP_LEN,
		      ZCSEND_COMPL_COPIED | ZCSEND_COMPL_FANOUT,
		      ZCSEND_COMPL_ZEROCOPY | ZCSEND_COMPL_STABLE);
	EXPECT_EQ(0, unreg(self->zfd));
	EXPECT_EQ(self->pins, zc_pins_outstanding());
	pairs_close(p, 4);
	munmap(buf, 16 * PAGE);
}

/*
 * Destinations by index in the registered sockets (two of them addressed,
 * two connected, from a registered buffer): every receiver gets the
 * datagram, one record. An index past the table (EBADF) or named twice
 * (EINVAL), or none registered (ENXIO), fails the call before anything is
 * sent.
 */
TEST_F(fanout, fixed_sockets_udp_verified)
{
	struct zcsend_range r = { 0, 0, 0, UDP_LEN };
	struct zcsend_register_sockets rs;
	struct zcsend_dest d[4];
	struct zc_pair p[4];
	struct zc_rx rx[4];
	uint64_t sends;
	uint8_t *buf;
	int fds[4], i, n;

	buf = zc_map_pattern(16 * PAGE, SEED);
	ASSERT_NE(NULL, buf);
	udp_pairs(_metadata, p, 4, AF_INET);
	for (i = 0; i < 4; i++) {
		/* Index 3 - i: the table's order is not the descriptors'. */
		fds[3 - i] = p[i].tx;
		udp_dest(&d[i], &p[i], i);
		d[i].fd = 3 - i;
	}
	ASSERT_EQ(0, reg(self->zfd, buf, 16 * PAGE));
	sends = file_sends(self->zfd);
	EXPECT_EQ(-ENXIO, fanout(self->zfd, ZCSEND_SEND_FIXED | ZCSEND_SEND_FIXED_SOCKET,
				 &r, 1, d, 4, 1));
	rs = (struct zcsend_register_sockets){ (uintptr_t)fds, 4, 0 };
	ASSERT_EQ(0, ioctl(self->zfd, ZCSEND_IOC_REGISTER_SOCKETS, &rs));
	d[2].fd = 4;
	EXPECT_EQ(-EBADF, fanout(self->zfd, ZCSEND_SEND_FIXED | ZCSEND_SEND_FIXED_SOCKET,
				 &r, 1, d, 4, 1));
	d[2].fd = 3;
	EXPECT_EQ(-EINVAL, fanout(self->zfd, ZCSEND_SEND_FIXED | ZCSEND_SEND_FIXED_SOCKET,
				  &r, 1, d, 4, 1));
	d[2].fd = 1;
	for (i = 0; i < 4; i++)
		EXPECT_EQ(0, inq(p[i].rx)) TH_LOG("dest %d got bytes of a failed call", i);
	EXPECT_EQ(sends, file_sends(self->zfd));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, zc_rx_start(&rx[i], p[i].rx, SEED, UDP_LEN));
	n = fanout(self->zfd, ZCSEND_SEND_FIXED | ZCSEND_SEND_FIXED_SOCKET, &r, 1, d,
		   4, 0xf5);
	EXPECT_EQ(4, n) TH_LOG("fan-out: %d (%s)", n, n < 0 ? strerror(-n) : "destinations");
	for (i = 0; i < 4; i++) {
		EXPECT_EQ(UDP_LEN, d[i].result) TH_LOG("dest %d", i);
		ZC_EXPECT_RX(&rx[i], UDP_LEN);
	}
	expect_record(_metadata, self->zfd, sends, 0xf5, 4ULL * UDP_LEN,
		      ZCSEND_COMPL_COPIED | ZCSEND_COMPL_FANOUT,
		      ZCSEND_COMPL_ZEROCOPY | ZCSEND_COMPL_STABLE);
	EXPECT_EQ(0, ioctl(self->zfd, ZCSEND_IOC_UNREGISTER_SOCKETS));
	EXPECT_EQ(0, unreg(self->zfd));
	pairs_close(p, 4);
	munmap(buf, 16 * PAGE);
}

/*
 * A fixed fan-out held in flight by 4 TCP peers that do not read:
 * unregistering is refused until its record was read.
 */
TEST_F(fanout, fixed_unregister_busy_in_flight)
{
	const size_t blen = 1 << 20, len = 256 << 10;
	struct zcsend_range r = { 0, 0, 0, len };
	struct zcsend_dest d[4];
	struct zcsend_stats st;
	struct zc_pair p[4];
	struct zc_rx rx[4];
	uint64_t sends, sum = 0;
	uint8_t *buf;
	int i, n, ret;

	buf = zc_map_pattern(blen, SEED);
	ASSERT_NE(NULL, buf);
	for (i = 0; i < 4; i++) {
		/* Tiny receive buffer, big send buffer: the data waits. */
		ret = zc_loopback_pair(&p[i], AF_INET, SOCK_STREAM, 4096,
				       4 << 20);
		ASSERT_EQ(0, ret) TH_LOG("TCP pair %d: %s", i, strerror(-ret));
		dest_set(&d[i], p[i].tx, NULL, 0);
	}
	ASSERT_EQ(0, reg(self->zfd, buf, blen));
	sends = file_sends(self->zfd);
	n = fanout(self->zfd, ZCSEND_SEND_FIXED | MSG_DONTWAIT | MSG_NOSIGNAL,
		   &r, 1, d, 4, 0xb5);
	ASSERT_EQ(4, n) TH_LOG("fan-out: %d (%s)", n,
			       n < 0 ? strerror(-n) : "destinations");
	for (i = 0; i < 4; i++) {
		EXPECT_LT(0, d[i].result) TH_LOG("dest %d: %lld", i,
						 (long long)d[i].result);
		EXPECT_GE((int64_t)len, d[i].result);
		if (d[i].result > 0)
			sum += d[i].result;
	}
	ASSERT_EQ(0, zc_stats(self->zfd, &st));
	EXPECT_EQ(1, st.inflight) TH_LOG("the fan-out is not in flight: the test set up nothing");
	EXPECT_EQ(-EBUSY, unreg(self->zfd));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, zc_rx_start(&rx[i], p[i].rx, SEED,
					 d[i].result > 0 ? d[i].result : 0));
	for (i = 0; i < 4; i++)
		ZC_EXPECT_RX(&rx[i], d[i].result > 0 ? d[i].result : 0);
	expect_record(_metadata, self->zfd, sends, 0xb5, sum,
		      ZCSEND_COMPL_FANOUT | ZCSEND_COMPL_COPIED,
		      ZCSEND_COMPL_STABLE);
	EXPECT_EQ(0, unreg(self->zfd));
	pairs_close(p, 4);
	munmap(buf, blen);
}

/* ----------------------------------------------------------------------
 * Stable mode
 */

#define ST_DESTS	16
#define ST_LEN		(1 << 20)

/*
 * ZCSEND_FANOUT_STABLE to 16 TCP peers that read nothing until the ioctl
 * returned: the caller fills its buffer with 0xAA and unmaps it at once,
 * and every stream still carries the original 1 MiB.
 */
TEST_F(fanout, stable_overwrite_after_return)
{
	struct zcsend_dest d[ST_DESTS];
	struct zc_pair p[ST_DESTS];
	struct zc_rx rx[ST_DESTS];
	struct zcsend_stats st;
	struct iovec iov[3];
	uint64_t sends, sum = 0;
	int64_t held;
	uint8_t *buf;
	int i, n, ret;

	buf = zc_map_pattern(ST_LEN, SEED);
	ASSERT_NE(NULL, buf);
	/* Three contiguous pieces, unaligned: one stream [0, ST_LEN). */
	iov[0] = (struct iovec){ buf, 100000 };
	iov[1] = (struct iovec){ buf + 100000, 600001 };
	iov[2] = (struct iovec){ buf + 700001, ST_LEN - 700001 };
	for (i = 0; i < ST_DESTS; i++) {
		/* Room for the whole payload in the send buffer. */
		ret = zc_loopback_pair(&p[i], AF_INET, SOCK_STREAM, 0, 4 << 20);
		ASSERT_EQ(0, ret) TH_LOG("TCP pair %d: %s", i, strerror(-ret));
		dest_set(&d[i], p[i].tx, NULL, 0);
	}
	sends = file_sends(self->zfd);
	n = fanout(self->zfd, ZCSEND_FANOUT_STABLE | MSG_DONTWAIT | MSG_NOSIGNAL,
		   iov, 3, d, ST_DESTS, 0x57ab1e);
	/* The buffer is the caller's again: scribble over it, give it back. */
	memset(buf, 0xAA, ST_LEN);
	munmap(buf, ST_LEN);
	EXPECT_EQ(ST_DESTS, n) TH_LOG("fan-out: %d (%s)", n,
				      n < 0 ? strerror(-n) : "destinations");
	held = zc_pins_outstanding() - self->pins;
	EXPECT_EQ(0, held) TH_LOG("%" PRId64 " user pages still pinned after "
				  "a STABLE fan-out returned", held);
	ASSERT_EQ(0, zc_stats(self->zfd, &st));
	TH_LOG("after return: inflight %llu pinned_pages %llu",
	       (unsigned long long)st.inflight,
	       (unsigned long long)st.pinned_pages);
	for (i = 0; i < ST_DESTS; i++) {
		EXPECT_EQ(ST_LEN, d[i].result) TH_LOG("dest %d: %lld", i,
						      (long long)d[i].result);
		if (d[i].result > 0)
			sum += d[i].result;
	}
	/* Only now does anybody read. */
	for (i = 0; i < ST_DESTS; i++)
		ASSERT_EQ(0, zc_rx_start(&rx[i], p[i].rx, SEED,
					 d[i].result > 0 ? d[i].result : 0));
	for (i = 0; i < ST_DESTS; i++) {
		ZC_EXPECT_RX(&rx[i], d[i].result > 0 ? d[i].result : 0);
		if (rx[i].bad >= 0)
			TH_LOG("stream %d: byte %" PRId64 " is not the original",
			       i, rx[i].bad);
	}
	expect_record(_metadata, self->zfd, sends, 0x57ab1e, sum,
		      ZCSEND_COMPL_STABLE | ZCSEND_COMPL_FANOUT |
		      ZCSEND_COMPL_COPIED,
		      ZCSEND_COMPL_ZEROCOPY | ZCSEND_COMPL_COPY_PATH);
	pairs_close(p, ST_DESTS);
}

/* ----------------------------------------------------------------------
 * Teardown while in flight
 */

#define CL_DESTS	4
#define CL_LEN		(256 << 10)

/*
 * Fan-outs held in flight by TCP peers that do not read, then the file
 * and the sockets closed under them, in both orders, plain and STABLE:
 * nothing crashes, every pin and module reference comes back, and a new
 * file starts from zero and works.
 */
TEST_F(fanout, close_mid_flight)
{
	struct zcsend_dest d[CL_DESTS];
	struct zc_pair p[CL_DESTS];
	struct zcsend_stats st;
	struct iovec iov;
	int refbase, ref, round, i, n, zfd, ret;
	uint8_t *buf;

	refbase = zc_settled_refcnt(ZC_WAIT_MS);
	if (refbase < 0)
		TH_LOG("no /sys/module/%s/refcnt: module references not checked",
		       ZC_MODULE);
	for (round = 0; round < 2; round++) {
		bool stable = round == 1;

		zfd = zc_open();
		ASSERT_LE(0, zfd);
		buf = zc_map_pattern(CL_LEN, SEED);
		ASSERT_NE(NULL, buf);
		iov = (struct iovec){ buf, CL_LEN };
		for (i = 0; i < CL_DESTS; i++) {
			ret = zc_loopback_pair(&p[i], AF_INET, SOCK_STREAM,
					       4096, 4 << 20);
			ASSERT_EQ(0, ret) TH_LOG("TCP pair: %s", strerror(-ret));
			dest_set(&d[i], p[i].tx, NULL, 0);
		}
		n = fanout(zfd, (stable ? ZCSEND_FANOUT_STABLE : 0) |
			   MSG_DONTWAIT | MSG_NOSIGNAL, &iov, 1, d, CL_DESTS,
			   round);
		EXPECT_EQ(CL_DESTS, n) TH_LOG("round %d: %d (%s)", round, n,
					      n < 0 ? strerror(-n) : "destinations");
		for (i = 0; i < CL_DESTS; i++) {
			EXPECT_LT(0, d[i].result)
				TH_LOG("round %d dest %d: %lld", round, i,
				       (long long)d[i].result);
		}
		ASSERT_EQ(0, zc_stats(zfd, &st));
		EXPECT_EQ(1, st.inflight)
			TH_LOG("round %d: not in flight: the test set up nothing",
			       round);
		if (!stable) {
			EXPECT_LT(self->pins, zc_pins_outstanding())
				TH_LOG("no page pinned mid-flight");
			/* The file first, then the peers (RST), then ours. */
			close(zfd);
			for (i = 0; i < CL_DESTS; i++) {
				close(p[i].rx);
				close(p[i].tx);
			}
		} else {
			/* Ours first (orphaned with data), the file, peers. */
			for (i = 0; i < CL_DESTS; i++)
				close(p[i].tx);
			close(zfd);
			for (i = 0; i < CL_DESTS; i++)
				close(p[i].rx);
		}
		munmap(buf, CL_LEN);
		ZC_EXPECT_PINS_BACK(self->pins);
		if (refbase >= 0) {
			ref = zc_wait_refcnt(refbase, ZC_WAIT_MS);
			EXPECT_EQ(refbase, ref)
				TH_LOG("round %d: module references %d, %d before",
				       round, ref, refbase);
		}
	}

	/* A new file: nothing carried over, and it sends. */
	zfd = zc_open();
	ASSERT_LE(0, zfd);
	ASSERT_EQ(0, zc_stats(zfd, &st));
	EXPECT_EQ(0, st.sends);
	EXPECT_EQ(0, st.inflight);
	EXPECT_EQ(0, st.pinned_pages);
	EXPECT_EQ(0, st.queued);
	buf = zc_map_pattern(16 * PAGE, SEED);
	ASSERT_NE(NULL, buf);
	iov = (struct iovec){ buf, UDP_LEN };
	udp_pairs(_metadata, p, 2, AF_INET);
	for (i = 0; i < 2; i++)
		udp_dest(&d[i], &p[i], i);
	n = fanout(zfd, 0, &iov, 1, d, 2, 99);
	EXPECT_EQ(2, n);
	for (i = 0; i < 2; i++)
		expect_dgram(_metadata, p[i].rx, UDP_LEN, i);
	expect_record(_metadata, zfd, 0, 99, 2ULL * UDP_LEN,
		      ZCSEND_COMPL_FANOUT, ZCSEND_COMPL_STABLE);
	close(zfd);
	pairs_close(p, 2);
	munmap(buf, 16 * PAGE);
}

/* ----------------------------------------------------------------------
 * Memlock
 */

#define ML_DESTS	64
#define ML_LIMIT	(16 * PAGE)

/* Drops to uid/gid 65534 with RLIMIT_MEMLOCK @bytes; 0 on success. */
static int drop_privileges(rlim_t bytes)
{
	struct rlimit rl = { bytes, bytes };

	if (setrlimit(RLIMIT_MEMLOCK, &rl) || setgroups(0, NULL) ||
	    setgid(65534) || setuid(65534))
		return -1;
	return 0;
}

enum {
	ML_BIG, ML_SMALL, ML_SMALL_OK, ML_SMALL_REC, ML_SMALL_BYTES,
	ML_ST_BIG, ML_ST_SMALL, ML_ST_SMALL_OK, ML_ST_SMALL_REC,
	ML_ST_SMALL_FLAGS, ML_NR
};

/*
 * As uid 65534 with RLIMIT_MEMLOCK of 16 pages: 32 KiB (8 pages) to 64
 * TCP peers goes through (charged once, not 64 times), 128 KiB (32 pages)
 * fails with ENOBUFS before anything is sent; the same with STABLE.
 */
TEST_F(fanout, memlock_charged_once)
{
	const size_t small = 32 << 10, big = 128 << 10;
	struct zcsend_dest d[ML_DESTS];
	struct zc_pair p[ML_DESTS];
	int64_t res[ML_NR];
	int status, pfd[2], i, q, ret;
	uint8_t *buf;
	pid_t pid;

	if (geteuid())
		SKIP(return, "needs root to drop to uid 65534");
	if (self->thr > small)
		SKIP(return, "copy_threshold %llu: 32 KiB takes the copy path",
		     (unsigned long long)self->thr);
	buf = zc_map_pattern(big, SEED);
	ASSERT_NE(NULL, buf);
	for (i = 0; i < ML_DESTS; i++) {
		ret = zc_loopback_pair(&p[i], AF_INET, SOCK_STREAM, 1 << 20,
				       1 << 20);
		ASSERT_EQ(0, ret) TH_LOG("TCP pair %d: %s", i, strerror(-ret));
		dest_set(&d[i], p[i].tx, NULL, 0);
	}
	ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		const uint32_t fl = MSG_DONTWAIT | MSG_NOSIGNAL;
		struct iovec bi = { buf, big }, si = { buf, small };
		struct zcsend_completion c;
		int k;

		for (k = 0; k < ML_NR; k++)
			res[k] = INT64_MIN;
		if (drop_privileges(ML_LIMIT))
			_exit(10);
		res[ML_BIG] = fanout(self->zfd, fl, &bi, 1, d, ML_DESTS, 1);
		res[ML_SMALL] = fanout(self->zfd, fl, &si, 1, d, ML_DESTS, 2);
		for (res[ML_SMALL_OK] = 0, k = 0; k < ML_DESTS; k++)
			res[ML_SMALL_OK] += d[k].result == (int64_t)small;
		memset(&c, 0, sizeof(c));
		res[ML_SMALL_REC] = zc_collect(self->zfd, &c, 1, ZC_WAIT_MS);
		res[ML_SMALL_BYTES] = c.bytes;
		res[ML_ST_BIG] = fanout(self->zfd, fl | ZCSEND_FANOUT_STABLE,
					&bi, 1, d, ML_DESTS, 3);
		res[ML_ST_SMALL] = fanout(self->zfd, fl | ZCSEND_FANOUT_STABLE,
					  &si, 1, d, ML_DESTS, 4);
		for (res[ML_ST_SMALL_OK] = 0, k = 0; k < ML_DESTS; k++)
			res[ML_ST_SMALL_OK] += d[k].result == (int64_t)small;
		memset(&c, 0, sizeof(c));
		res[ML_ST_SMALL_REC] = zc_collect(self->zfd, &c, 1, ZC_WAIT_MS);
		res[ML_ST_SMALL_FLAGS] = c.flags;
		if (write(pfd[1], res, sizeof(res)) != sizeof(res))
			_exit(11);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status)) TH_LOG("child: exit %d (10: cannot drop privileges)",
						 WEXITSTATUS(status));
	ASSERT_EQ(sizeof(res), read(pfd[0], res, sizeof(res)));
	close(pfd[0]);
	close(pfd[1]);
	EXPECT_EQ(-ENOBUFS, res[ML_BIG])
		TH_LOG("128 KiB (32 pages) under a 16-page limit: %lld",
		       (long long)res[ML_BIG]);
	EXPECT_EQ(ML_DESTS, res[ML_SMALL])
		TH_LOG("32 KiB (8 pages) to %d peers under a 16-page limit: %lld%s",
		       ML_DESTS, (long long)res[ML_SMALL],
		       res[ML_SMALL] == -ENOBUFS ? " (charged per destination?)" : "");
	EXPECT_EQ(ML_DESTS, res[ML_SMALL_OK]);
	EXPECT_EQ(1, res[ML_SMALL_REC]);
	EXPECT_EQ((int64_t)(ML_DESTS * small), res[ML_SMALL_BYTES]);
	EXPECT_EQ(-ENOBUFS, res[ML_ST_BIG])
		TH_LOG("STABLE 128 KiB under a 16-page limit: %lld",
		       (long long)res[ML_ST_BIG]);
	EXPECT_EQ(ML_DESTS, res[ML_ST_SMALL])
		TH_LOG("STABLE 32 KiB to %d peers: %lld", ML_DESTS,
		       (long long)res[ML_ST_SMALL]);
	EXPECT_EQ(ML_DESTS, res[ML_ST_SMALL_OK]);
	EXPECT_EQ(1, res[ML_ST_SMALL_REC]);
	EXPECT_EQ(ZCSEND_COMPL_STABLE | ZCSEND_COMPL_FANOUT,
		  res[ML_ST_SMALL_FLAGS] &
		  (ZCSEND_COMPL_STABLE | ZCSEND_COMPL_FANOUT));
	/* The refused calls sent nothing: two times 32 KiB per peer. */
	for (i = 0; i < ML_DESTS; i++) {
		q = inq(p[i].rx);
		EXPECT_EQ((int)(2 * small), q) TH_LOG("peer %d", i);
	}
	pairs_close(p, ML_DESTS);
	munmap(buf, big);
}

/*
 * ZCSEND_IOC_SUBMIT with ZCSEND_SUBMIT_FANOUT: three fan-outs in one system
 * call, each to 2 UDP receivers over loopback: 3 records, one per fan-out,
 * each fan-out's results in its own array; a bad fan-out in the middle stops
 * the batch there (sendmmsg's convention) and posts nothing for itself.
 */
TEST_F(fanout, submit_batch_of_fanouts)
{
	struct zcsend_completion c[8];
	struct zcsend_dest d[3][2];
	struct zcsend_fanout f[3];
	struct zcsend_submit b;
	struct zc_pair p[2];
	struct iovec iov;
	size_t len = 2000;
	uint8_t *buf;
	int i, j, ret, got;

	if (self->thr > len)
		len = self->thr;	/* the path the threshold picks */
	if (len > 60000)
		SKIP(return, "copy_threshold %llu above a datagram",
		     (unsigned long long)self->thr);
	buf = zc_map_pattern(len, SEED);
	ASSERT_NE(NULL, buf);
	iov = (struct iovec){ buf, len };
	udp_pairs(_metadata, p, 2, AF_INET);
	for (i = 0; i < 3; i++) {
		for (j = 0; j < 2; j++)
			udp_dest(&d[i][j], &p[j], j);
		f[i] = (struct zcsend_fanout){
			.flags = MSG_DONTWAIT, .iovcnt = 1, .iov = (uintptr_t)&iov,
			.dests = (uintptr_t)d[i], .nr = 2, .user_data = 700 + i,
		};
	}
	b = (struct zcsend_submit){ (uintptr_t)f, 3, ZCSEND_SUBMIT_FANOUT };
	ret = ioctl(self->zfd, ZCSEND_IOC_SUBMIT, &b);
	ASSERT_EQ(3, ret) TH_LOG("SUBMIT of 3 fan-outs: %s", strerror(errno));
	for (i = 0; i < 3; i++)
		for (j = 0; j < 2; j++)
			EXPECT_EQ((int64_t)len, d[i][j].result);
	got = zc_collect(self->zfd, c, 3, ZC_WAIT_MS);
	ASSERT_EQ(3, got);
	for (i = 0; i < 3; i++) {
		EXPECT_EQ((uint64_t)(700 + i), c[i].user_data);
		EXPECT_EQ(2 * len, c[i].bytes);
		EXPECT_NE(0, c[i].flags & ZCSEND_COMPL_FANOUT);
	}
	for (i = 0; i < 3; i++)
		for (j = 0; j < 2; j++)
			expect_dgram(_metadata, p[j].rx, len, j);

	/* The second one bad (nr 0): one submitted, one record. */
	f[1].nr = 0;
	ret = ioctl(self->zfd, ZCSEND_IOC_SUBMIT, &b);
	EXPECT_EQ(1, ret) TH_LOG("SUBMIT with a bad second fan-out: %d (%s)",
				 ret, strerror(errno));
	got = zc_collect(self->zfd, c, 2, 200);
	EXPECT_EQ(1, got);
	EXPECT_EQ(700u, c[0].user_data);
	/* The first one bad: its errno, nothing sent. */
	f[0].resv = 1;
	ret = ioctl(self->zfd, ZCSEND_IOC_SUBMIT, &b);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, zc_read_compl(self->zfd, c, 2));
	for (j = 0; j < 2; j++)
		while (inq(p[j].rx) > 0)
			recv(p[j].rx, buf, len, 0);
	pairs_close(p, 2);
	munmap(buf, len);
}

/*
 * A task killed inside a long batch of fan-outs (256 fan-outs to 32 UDP
 * receivers over loopback: seconds under TCG with KASAN) stops at its next
 * scheduling point (every 16 destinations) rather than finish the call: it
 * is gone in a fraction of the time one call takes. Nothing leaks: pins and
 * module references come back.
 */
#define KB_DESTS	32
#define KB_LEN		4096

TEST_F(fanout, killed_mid_batch)
{
	int refbase, ref, pfd[2], status;
	int64_t t_call = 0, t0, t_kill;
	pid_t pid;

	refbase = zc_settled_refcnt(ZC_WAIT_MS);
	ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		static struct zcsend_dest d[ZCSEND_MAX_BATCH][KB_DESTS];
		static struct zcsend_fanout f[ZCSEND_MAX_BATCH];
		static struct zc_pair p[KB_DESTS];
		struct zcsend_completion c[64];
		struct zcsend_submit b;
		struct iovec iov;
		uint8_t *buf = zc_map_pattern(KB_LEN, SEED);
		int zfd = zc_open(), i, k;

		if (!buf || zfd < 0)
			_exit(10);
		iov = (struct iovec){ buf, KB_LEN };
		for (i = 0; i < KB_DESTS; i++)
			if (zc_loopback_pair(&p[i], AF_INET, SOCK_DGRAM, 1 << 20, 0))
				_exit(11);
		for (k = 0; k < ZCSEND_MAX_BATCH; k++) {
			for (i = 0; i < KB_DESTS; i++)
				dest_set(&d[k][i], p[i].tx, &p[i].dst, p[i].dstlen);
			f[k] = (struct zcsend_fanout){
				.flags = MSG_DONTWAIT | MSG_NOSIGNAL, .iovcnt = 1,
				.iov = (uintptr_t)&iov, .dests = (uintptr_t)d[k],
				.nr = KB_DESTS, .user_data = k,
			};
		}
		b = (struct zcsend_submit){ (uintptr_t)f, ZCSEND_MAX_BATCH,
					    ZCSEND_SUBMIT_FANOUT };
		t0 = zc_now_ms();
		if (ioctl(zfd, ZCSEND_IOC_SUBMIT, &b) != ZCSEND_MAX_BATCH)
			_exit(12);
		t_call = zc_now_ms() - t0;
		if (write(pfd[1], &t_call, sizeof(t_call)) != sizeof(t_call))
			_exit(13);
		for (;;) {
			/* Records read so the ring never fills (EBUSY). */
			while (zc_read_compl(zfd, c, 64) > 0)
				;
			ioctl(zfd, ZCSEND_IOC_SUBMIT, &b);
		}
	}
	close(pfd[1]);
	ASSERT_EQ(sizeof(t_call), read(pfd[0], &t_call, sizeof(t_call)))
		TH_LOG("the child failed before its first batch");
	close(pfd[0]);
	/* Well inside its next batch. */
	usleep(t_call * 1000 / 3 + 10000);
	t0 = zc_now_ms();
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	t_kill = zc_now_ms() - t0;
	EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
		TH_LOG("child status %#x", status);
	TH_LOG("one batch %lld ms; killed inside the next, gone after %lld ms",
	       (long long)t_call, (long long)t_kill);
	if (t_call >= 400) {
		EXPECT_LT(t_kill, t_call / 4)
			TH_LOG("killed after %lld ms, one batch takes %lld ms: the batch ran on",
			       (long long)t_kill, (long long)t_call);
	} else {
		TH_LOG("one batch took %lld ms: too short to tell an early stop (%lld ms)",
		       (long long)t_call, (long long)t_kill);
	}
	ZC_EXPECT_PINS_BACK(self->pins);
	if (refbase >= 0) {
		ref = zc_wait_refcnt(refbase, ZC_WAIT_MS);
		EXPECT_EQ(refbase, ref)
			TH_LOG("module references %d, %d before", ref, refbase);
	}
}

TEST_HARNESS_MAIN
