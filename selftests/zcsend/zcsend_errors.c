// SPDX-License-Identifier: GPL-2.0
/*
 * zcsend input validation: each bad send fails with its errno, posts no
 * completion, counts as no send, leaves nothing pinned and puts no byte on
 * the wire. Plus the edges that must work: 1024 iovecs, read-only buffers,
 * every allowed MSG_* flag, a send buffer filled with MSG_DONTWAIT, and the
 * memlock limit of an unprivileged user.
 */
#include <sys/resource.h>
#include <grp.h>
#include <linux/netlink.h>

#include "zcsend_helpers.h"

#define SEED		0x5eed0002ULL
#define BUF_LEN		(1 << 20)
#define KERNEL_ADDR	((void *)0xffffffff81000000UL)
/* Bytes per refused send: above the default copy_threshold (16384). */
#define ZC_LEN		65536
#define ZC_DGRAM	60000

#ifndef MSG_SOCK_DEVMEM
#define MSG_SOCK_DEVMEM		0x2000000
#endif
#ifndef MSG_SPLICE_PAGES
#define MSG_SPLICE_PAGES	0x8000000
#endif
#ifndef MSG_BATCH
#define MSG_BATCH		0x40000
#endif
#ifndef MSG_NO_SHARED_FRAGS
#define MSG_NO_SHARED_FRAGS	0x80000
#endif
#ifndef MSG_SENDPAGE_DECRYPTED
#define MSG_SENDPAGE_DECRYPTED	0x100000
#endif
#ifndef MSG_PROBE
#define MSG_PROBE		0x10
#endif
#ifndef MSG_ZEROCOPY
#define MSG_ZEROCOPY		0x4000000
#endif

FIXTURE(errors) {
	int zfd;
	struct zc_pair tcp;	/* connected TCP v4 */
	int udp;		/* unconnected UDP v4 */
	struct zc_pair udpp;	/* UDP v4: receiver and its address */
	uint8_t *buf;
	int64_t pins;
	uint64_t thr;		/* copy_threshold */
	struct zc_log log;
};

FIXTURE_SETUP(errors)
{
	int ret;

	self->tcp.tx = self->tcp.rx = -1;
	self->udpp.tx = self->udpp.rx = -1;
	self->udp = -1;
	self->pins = zc_pins_outstanding();
	self->zfd = zc_open();
	ASSERT_LE(0, self->zfd) TH_LOG("open %s: %s", ZCSEND_DEVICE,
				       strerror(errno));
	self->thr = zc_copy_threshold();
	/* The faults below must reach the pinning, not the copy path. */
	if (self->thr > ZC_LEN)
		TH_LOG("copy_threshold %" PRIu64 " > %d: testing the copy path",
		       self->thr, ZC_LEN);
	ret = zc_loopback_pair(&self->tcp, AF_INET, SOCK_STREAM, 0, 0);
	ASSERT_EQ(0, ret) TH_LOG("tcp pair: %s", strerror(-ret));
	ret = zc_loopback_pair(&self->udpp, AF_INET, SOCK_DGRAM, 4 << 20, 0);
	ASSERT_EQ(0, ret) TH_LOG("udp pair: %s", strerror(-ret));
	self->udp = self->udpp.tx;
	self->buf = zc_map_pattern(BUF_LEN, SEED);
	ASSERT_NE(NULL, self->buf);
}

FIXTURE_TEARDOWN(errors)
{
	zc_pair_close(&self->tcp);
	zc_pair_close(&self->udpp);
	if (self->zfd >= 0)
		close(self->zfd);
	if (self->buf)
		munmap(self->buf, BUF_LEN);
	zc_log_free(&self->log);
	ZC_EXPECT_PINS_BACK(self->pins);
}

/*
 * Nothing may come of a refused send: no send counted, no completion,
 * nothing pinned, and no byte at either receiver.
 */
static void expect_nothing_sent(struct __test_metadata *_metadata,
				FIXTURE_DATA(errors) *self)
{
	struct zcsend_completion c;
	struct zcsend_stats st;
	ssize_t r;
	char b;

	zc_msleep(20);
	ASSERT_EQ(0, zc_stats(self->zfd, &st));
	EXPECT_EQ(0, st.sends);
	EXPECT_EQ(0, st.inflight);
	EXPECT_EQ(0, st.pinned_pages);
	EXPECT_EQ(0, st.queued);
	EXPECT_EQ(0, zc_read_compl(self->zfd, &c, 1));
	/* Nothing to read; EOF if the test shut the sender down. */
	r = recv(self->tcp.rx, &b, 1, MSG_DONTWAIT);
	EXPECT_TRUE(r == 0 || (r < 0 && errno == EAGAIN))
		TH_LOG("TCP receiver: %zd", r);
	r = recv(self->udpp.rx, &b, 1, MSG_DONTWAIT);
	EXPECT_TRUE(r < 0 && errno == EAGAIN) TH_LOG("UDP receiver: %zd", r);
	EXPECT_EQ(self->pins, zc_wait_pins(self->pins, 2000));
}

/* A zc_send*() result that must be -err; EXPECT_EQ logs both. */
#define EXPECT_ERR(err, call) EXPECT_EQ(-(err), (call))

TEST_F(errors, bad_fd)
{
	int closed = dup(0);

	ASSERT_LE(0, closed);
	close(closed);
	EXPECT_ERR(EBADF, zc_send(self->zfd, -1, self->buf, ZC_LEN, 0, NULL, 0,
				  1));
	EXPECT_ERR(EBADF, zc_send(self->zfd, closed, self->buf, ZC_LEN, 0,
				  NULL, 0, 1));
	EXPECT_ERR(EBADF, zc_send(self->zfd, INT_MAX, self->buf, ZC_LEN, 0,
				  NULL, 0, 1));
	expect_nothing_sent(_metadata, self);
}

TEST_F(errors, not_socket)
{
	int p[2], efd, ffd;

	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	efd = eventfd(0, EFD_CLOEXEC);
	ASSERT_LE(0, efd);
	ffd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, ffd);
	EXPECT_ERR(ENOTSOCK, zc_send(self->zfd, p[1], self->buf, ZC_LEN, 0,
				     NULL, 0, 1));
	EXPECT_ERR(ENOTSOCK, zc_send(self->zfd, efd, self->buf, ZC_LEN, 0,
				     NULL, 0, 1));
	EXPECT_ERR(ENOTSOCK, zc_send(self->zfd, ffd, self->buf, ZC_LEN, 0,
				     NULL, 0, 1));
	/* The /dev/zcsend file itself. */
	EXPECT_ERR(ENOTSOCK, zc_send(self->zfd, self->zfd, self->buf, ZC_LEN,
				     0, NULL, 0, 1));
	close(p[0]);
	close(p[1]);
	close(efd);
	close(ffd);
	expect_nothing_sent(_metadata, self);
}

/* Only IPv4 and IPv6 ... */
TEST_F(errors, wrong_family)
{
	int sv[2], dg[2], nl;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, dg));
	nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	ASSERT_LE(0, nl);
	EXPECT_ERR(EAFNOSUPPORT, zc_send(self->zfd, sv[0], self->buf, ZC_LEN,
					 0, NULL, 0, 1));
	EXPECT_ERR(EAFNOSUPPORT, zc_send(self->zfd, dg[0], self->buf, ZC_LEN,
					 0, NULL, 0, 1));
	EXPECT_ERR(EAFNOSUPPORT, zc_send(self->zfd, nl, self->buf, ZC_LEN, 0,
					 NULL, 0, 1));
	close(sv[0]);
	close(sv[1]);
	close(dg[0]);
	close(dg[1]);
	close(nl);
	expect_nothing_sent(_metadata, self);
}

/* ... and only TCP and UDP there. */
TEST_F(errors, wrong_protocol)
{
	struct sockaddr_storage ss;
	socklen_t len = zc_loopback_addr(AF_INET, 0, &ss);
	int raw, raw6;

	raw = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	raw6 = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_UDP);
	if (raw < 0 && (errno == EPERM || errno == EACCES))
		SKIP(return, "raw sockets need CAP_NET_RAW");
	ASSERT_LE(0, raw);
	EXPECT_ERR(EPROTONOSUPPORT, zc_send(self->zfd, raw, self->buf,
					    ZC_DGRAM, 0, &ss, len, 1));
	/* A raw socket whose protocol number is UDP's is still raw. */
	if (raw6 >= 0) {
		len = zc_loopback_addr(AF_INET6, 0, &ss);
		EXPECT_ERR(EPROTONOSUPPORT, zc_send(self->zfd, raw6, self->buf,
						    ZC_DGRAM, 0, &ss, len, 1));
		close(raw6);
	}
	close(raw);
	expect_nothing_sent(_metadata, self);
}

TEST_F(errors, unmapped)
{
	uint8_t *p = zc_map(ZC_LEN);

	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, munmap(p, ZC_LEN));
	EXPECT_ERR(EFAULT, zc_send(self->zfd, self->tcp.tx, p, ZC_LEN, 0, NULL,
				   0, 1));
	EXPECT_ERR(EFAULT, zc_send(self->zfd, self->udp, p + 8, ZC_DGRAM, 0,
				   &self->udpp.dst, self->udpp.dstlen, 1));
	expect_nothing_sent(_metadata, self);
}

TEST_F(errors, prot_none)
{
	uint8_t *p = mmap(NULL, ZC_LEN, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);

	ASSERT_NE(MAP_FAILED, p);
	EXPECT_ERR(EFAULT, zc_send(self->zfd, self->tcp.tx, p, ZC_LEN, 0, NULL,
				   0, 1));
	EXPECT_ERR(EFAULT, zc_send(self->zfd, self->udp, p + 100, ZC_DGRAM, 0,
				   &self->udpp.dst, self->udpp.dstlen, 1));
	/* Readable once, then PROT_NONE: the pin must see the change. */
	ASSERT_EQ(0, mprotect(self->buf, ZC_LEN, PROT_NONE));
	EXPECT_ERR(EFAULT, zc_send(self->zfd, self->tcp.tx, self->buf, ZC_LEN,
				   0, NULL, 0, 1));
	ASSERT_EQ(0, mprotect(self->buf, ZC_LEN, PROT_READ | PROT_WRITE));
	munmap(p, ZC_LEN);
	expect_nothing_sent(_metadata, self);
}

/* A buffer whose tail is unmapped: all or nothing, and here nothing. */
TEST_F(errors, partly_unmapped)
{
	uint8_t *p = zc_map_pattern(ZC_LEN, SEED);
	struct iovec iov[2];

	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, munmap(p + ZC_LEN - 4096, 4096));
	EXPECT_ERR(EFAULT, zc_send(self->zfd, self->tcp.tx, p, ZC_LEN, 0, NULL,
				   0, 1));
	/* The second iovec is the bad one. */
	iov[0] = (struct iovec){ p, ZC_LEN / 2 };
	iov[1] = (struct iovec){ p + ZC_LEN / 2, ZC_LEN / 2 };
	EXPECT_ERR(EFAULT, zc_sendv(self->zfd, self->tcp.tx, iov, 2, 0, NULL,
				    0, 1));
	EXPECT_ERR(EFAULT, zc_sendv(self->zfd, self->udp, iov, 2, 0,
				    &self->udpp.dst, self->udpp.dstlen, 1));
	munmap(p, ZC_LEN - 4096);
	expect_nothing_sent(_metadata, self);
}

TEST_F(errors, kernel_address)
{
	struct iovec iov = { self->buf, ZC_LEN };

	EXPECT_ERR(EFAULT, zc_send(self->zfd, self->tcp.tx, KERNEL_ADDR,
				   ZC_LEN, 0, NULL, 0, 1));
	EXPECT_ERR(EFAULT, zc_send(self->zfd, self->udp, KERNEL_ADDR,
				   ZC_DGRAM, 0, &self->udpp.dst,
				   self->udpp.dstlen, 1));
	/* The last user page and beyond. */
	EXPECT_ERR(EFAULT, zc_send(self->zfd, self->tcp.tx,
				   (void *)0x7ffffffff000UL, ZC_LEN, 0, NULL,
				   0, 1));
	/*
	 * Below the copy threshold the stack copies from the user iterator
	 * (ITER_UBUF for one buffer, ITER_IOVEC for several): its copy
	 * checks the address, as for send(2).
	 */
	{
		struct iovec two[2] = { { self->buf, 500 }, { KERNEL_ADDR, 500 } };

		EXPECT_ERR(EFAULT, zc_sendv(self->zfd, self->udp, two, 2, 0,
					    &self->udpp.dst, self->udpp.dstlen,
					    1));
		two[0].iov_base = KERNEL_ADDR;
		two[1].iov_base = self->buf;
		EXPECT_ERR(EFAULT, zc_sendv(self->zfd, self->tcp.tx, two, 2, 0,
					    NULL, 0, 1));
	}
	EXPECT_ERR(EFAULT, zc_send(self->zfd, self->tcp.tx, KERNEL_ADDR, 1000,
				   0, NULL, 0, 1));
	EXPECT_ERR(EFAULT, zc_send_buf(self->zfd, self->tcp.tx, KERNEL_ADDR,
				       1000, 0, NULL, 0, 1));
	EXPECT_ERR(EFAULT, zc_send_buf(self->zfd, self->udp, KERNEL_ADDR,
				       1000, 0, &self->udpp.dst,
				       self->udpp.dstlen, 1));
	EXPECT_ERR(EFAULT, zc_send_buf(self->zfd, self->tcp.tx,
				       (void *)0x7ffffffffc00UL, 4096, 0, NULL,
				       0, 1));
	/* The iovec array and the address are user pointers too. */
	EXPECT_ERR(EFAULT, zc_sendv(self->zfd, self->tcp.tx, KERNEL_ADDR, 1,
				    0, NULL, 0, 1));
	EXPECT_ERR(EFAULT, zc_sendv(self->zfd, self->tcp.tx, (void *)8, 1,
				    0, NULL, 0, 1));
	iov.iov_len = ZC_DGRAM;
	EXPECT_ERR(EFAULT, zc_sendv(self->zfd, self->udp, &iov, 1, 0,
				    KERNEL_ADDR, sizeof(struct sockaddr_in),
				    1));
	EXPECT_ERR(EFAULT, zc_sendv(self->zfd, self->udp, &iov, 1, 0,
				    (void *)8, sizeof(struct sockaddr_in), 1));
	EXPECT_ERR(EFAULT, zc_sendv(self->zfd, self->udp, &iov, 1, 0, NULL,
				    sizeof(struct sockaddr_in), 1));
	expect_nothing_sent(_metadata, self);
}

TEST_F(errors, iovcnt)
{
	struct iovec *iov = calloc(1025, sizeof(*iov));
	int i;

	ASSERT_NE(NULL, iov);
	for (i = 0; i < 1025; i++)
		iov[i] = (struct iovec){ self->buf + i * 64, 64 };
	EXPECT_ERR(EINVAL, zc_sendv(self->zfd, self->tcp.tx, iov, 0, 0, NULL,
				    0, 1));
	EXPECT_ERR(EINVAL, zc_sendv(self->zfd, self->tcp.tx, iov, 1025, 0,
				    NULL, 0, 1));
	EXPECT_ERR(EINVAL, zc_sendv(self->zfd, self->tcp.tx, iov, UINT_MAX, 0,
				    NULL, 0, 1));
	EXPECT_ERR(EINVAL, zc_sendv(self->zfd, self->tcp.tx, iov, 1U << 31, 0,
				    NULL, 0, 1));
	free(iov);
	expect_nothing_sent(_metadata, self);
}

/* UIO_MAXIOV scattered 64-byte pieces: many frags, many skbs. */
TEST_F(errors, iovcnt_max)
{
	struct iovec *iov = calloc(1024, sizeof(*iov));
	uint8_t *scatter = zc_map(1024 * 128);
	struct zc_rx rx;
	int i, ret;

	ASSERT_NE(NULL, iov);
	ASSERT_NE(NULL, scatter);
	for (i = 0; i < 1024; i++) {
		zc_pattern_fill(scatter + i * 128, 64, SEED, i * 64);
		iov[i] = (struct iovec){ scatter + i * 128, 64 };
	}
	ASSERT_EQ(0, zc_rx_start(&rx, self->tcp.rx, SEED, 65536));
	ret = zc_sendv(self->zfd, self->tcp.tx, iov, 1024, 0, NULL, 0, 5);
	ASSERT_EQ(65536, ret) TH_LOG("send: %d (%s)", ret,
				     ret < 0 ? strerror(-ret) : "short");
	zc_log_add(&self->log, 5, ret);
	ZC_EXPECT_RX(&rx, 65536);
	zc_expect_completions(_metadata, self->zfd, &self->log,
			      ZCSEND_COMPL_COPIED, ZCSEND_COMPL_ZEROCOPY, NULL);
	zc_expect_idle_stats(_metadata, self->zfd, 1, 0, 1);
	free(iov);
	munmap(scatter, 1024 * 128);
}

TEST_F(errors, length_overflow)
{
	struct iovec iov[3];

	/* An iov_len negative as ssize_t. */
	iov[0] = (struct iovec){ self->buf, SIZE_MAX };
	EXPECT_ERR(EINVAL, zc_sendv(self->zfd, self->tcp.tx, iov, 1, 0, NULL,
				    0, 1));
	/* A sum that wraps to exactly 0 ... */
	iov[0] = (struct iovec){ self->buf, 4096 };
	iov[1] = (struct iovec){ self->buf, SIZE_MAX - 4095 };
	EXPECT_ERR(EINVAL, zc_sendv(self->zfd, self->tcp.tx, iov, 2, 0, NULL,
				    0, 1));
	/* ... or to something small. */
	iov[1] = (struct iovec){ self->buf, SIZE_MAX / 2 + 1 };
	iov[2] = (struct iovec){ self->buf, SIZE_MAX / 2 + 1 };
	EXPECT_ERR(EINVAL, zc_sendv(self->zfd, self->tcp.tx, iov, 3, 0, NULL,
				    0, 1));
	/* More than MAX_RW_COUNT in total. */
	iov[0] = (struct iovec){ self->buf, ZC_MAX_RW_COUNT };
	iov[1] = (struct iovec){ self->buf, 4096 };
	EXPECT_ERR(EINVAL, zc_sendv(self->zfd, self->tcp.tx, iov, 2, 0, NULL,
				    0, 1));
	iov[0] = (struct iovec){ self->buf, (size_t)INT_MAX + 1 };
	EXPECT_ERR(EINVAL, zc_sendv(self->zfd, self->tcp.tx, iov, 1, 0, NULL,
				    0, 1));
	expect_nothing_sent(_metadata, self);
}

TEST_F(errors, bad_flags)
{
	static const unsigned int bad[] = {
		MSG_OOB, MSG_PEEK, MSG_CTRUNC, MSG_PROBE, MSG_TRUNC,
		MSG_WAITALL, MSG_ERRQUEUE, MSG_BATCH, MSG_NO_SHARED_FRAGS,
		MSG_SENDPAGE_DECRYPTED, MSG_SOCK_DEVMEM, MSG_ZEROCOPY,
		MSG_SPLICE_PAGES, MSG_FASTOPEN, MSG_CMSG_CLOEXEC, 0x80000000,
		MSG_DONTWAIT | MSG_OOB,
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_ERR(EINVAL, zc_send(self->zfd, self->tcp.tx, self->buf,
					   ZC_LEN, bad[i], NULL, 0, 1))
			TH_LOG("flags %#x", bad[i]);
		EXPECT_ERR(EINVAL, zc_send(self->zfd, self->udp, self->buf,
					   ZC_DGRAM, bad[i], &self->udpp.dst,
					   self->udpp.dstlen, 1))
			TH_LOG("flags %#x", bad[i]);
	}
	expect_nothing_sent(_metadata, self);
}

/*
 * ZCSEND_SEND_BUF: the buffer named in the request. The same refusals as
 * an iovec's; with ZCSEND_SEND_FIXED a registered range (ENXIO: none here;
 * zcsend_fixed.c's inline_range tests the rest).
 */
TEST_F(errors, send_buf)
{
	uint8_t *p = zc_map(ZC_LEN);

	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, munmap(p, ZC_LEN));
	EXPECT_ERR(ENXIO, zc_send_buf(self->zfd, self->tcp.tx, self->buf,
				      ZC_LEN, ZCSEND_SEND_FIXED, NULL, 0, 1));
	EXPECT_ERR(EINVAL, zc_send_buf(self->zfd, self->tcp.tx, self->buf,
				       ZC_MAX_RW_COUNT + 1, 0, NULL, 0, 1));
	EXPECT_ERR(EINVAL, zc_send_buf(self->zfd, self->tcp.tx, self->buf,
				       UINT32_MAX, 0, NULL, 0, 1));
	EXPECT_ERR(EINVAL, zc_send_buf(self->zfd, self->tcp.tx, self->buf,
				       ZC_LEN, MSG_OOB, NULL, 0, 1));
	/* A range that wraps, one unmapped, a kernel one. */
	EXPECT_ERR(EFAULT, zc_send_buf(self->zfd, self->tcp.tx,
				       (void *)-4096L, 8192, 0, NULL, 0, 1));
	EXPECT_ERR(EFAULT, zc_send_buf(self->zfd, self->tcp.tx, p, ZC_LEN, 0,
				       NULL, 0, 1));
	EXPECT_ERR(EFAULT, zc_send_buf(self->zfd, self->udp, p + 8, ZC_DGRAM,
				       0, &self->udpp.dst, self->udpp.dstlen,
				       1));
	EXPECT_ERR(EFAULT, zc_send_buf(self->zfd, self->tcp.tx, KERNEL_ADDR,
				       ZC_LEN, 0, NULL, 0, 1));
	/* The address is still read from user memory. */
	EXPECT_ERR(EFAULT, zc_send_buf(self->zfd, self->udp, self->buf,
				       ZC_DGRAM, 0, KERNEL_ADDR,
				       sizeof(struct sockaddr_in), 1));
	expect_nothing_sent(_metadata, self);
}

/* ZCSEND_SEND_BUF of 0 bytes: 0, and its one completion, as an iovec's. */
TEST_F(errors, send_buf_zero_length)
{
	int ret;

	ret = zc_send_buf(self->zfd, self->udp, self->buf, 0, 0,
			  &self->udpp.dst, self->udpp.dstlen, 7);
	EXPECT_EQ(0, ret) TH_LOG("UDP: %d", ret);
	if (!ret)
		zc_log_add(&self->log, 7, 0);
	zc_expect_completions(_metadata, self->zfd, &self->log,
			      ZCSEND_COMPL_COPIED, ZCSEND_COMPL_ZEROCOPY, NULL);
}

/* Every allowed flag; MSG_MORE holds data back until the next send. */
TEST_F(errors, good_flags_tcp)
{
	struct zc_rx rx;
	size_t a = 16384, b = 24576;
	int ret;

	ASSERT_EQ(0, zc_rx_start(&rx, self->tcp.rx, SEED, a + b));
	ret = zc_send(self->zfd, self->tcp.tx, self->buf, a,
		      MSG_MORE | MSG_NOSIGNAL | MSG_DONTROUTE | MSG_CONFIRM,
		      NULL, 0, 1);
	ASSERT_EQ(a, ret) TH_LOG("send: %d", ret);
	zc_log_add(&self->log, 1, ret);
	ret = zc_send(self->zfd, self->tcp.tx, self->buf + a, b,
		      MSG_EOR | MSG_DONTWAIT, NULL, 0, 2);
	ASSERT_LT(0, ret) TH_LOG("send: %s", strerror(-ret));
	zc_log_add(&self->log, 2, ret);
	if ((size_t)ret < b) {
		ret = zc_send(self->zfd, self->tcp.tx, self->buf + a + ret,
			      b - ret, 0, NULL, 0, 3);
		ASSERT_EQ(b - self->log.v[1].bytes, ret);
		zc_log_add(&self->log, 3, ret);
	}
	ZC_EXPECT_RX(&rx, a + b);
	zc_expect_completions(_metadata, self->zfd, &self->log, 0, 0, NULL);
}

/* UDP corking across two sends: one datagram, two completions. */
TEST_F(errors, udp_msg_more)
{
	size_t a = 20000, b = 30000;
	struct zc_rx rx;
	int ret;

	ASSERT_EQ(0, connect(self->udp, (void *)&self->udpp.dst,
			     self->udpp.dstlen));
	ASSERT_EQ(0, zc_rx_start(&rx, self->udpp.rx, SEED, a + b));
	ret = zc_send(self->zfd, self->udp, self->buf, a, MSG_MORE, NULL, 0,
		      1);
	ASSERT_EQ(a, ret) TH_LOG("send: %d (%s)", ret,
				 ret < 0 ? strerror(-ret) : "short");
	zc_log_add(&self->log, 1, ret);
	ret = zc_send(self->zfd, self->udp, self->buf + a, b,
		      MSG_NOSIGNAL | MSG_CONFIRM | MSG_DONTWAIT, NULL, 0, 2);
	ASSERT_EQ(b, ret) TH_LOG("send: %d (%s)", ret,
				 ret < 0 ? strerror(-ret) : "short");
	zc_log_add(&self->log, 2, ret);
	ZC_EXPECT_RX(&rx, a + b);
	EXPECT_EQ(1, rx.reads);
	zc_expect_completions(_metadata, self->zfd, &self->log, 0, 0, NULL);
}

TEST_F(errors, bad_address)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6,
				     .sin6_port = htons(9),
				     .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	char big[4096] = { 0 };

	memcpy(big, &self->udpp.dst, self->udpp.dstlen);
	/* Longer than any sockaddr. */
	EXPECT_ERR(EINVAL, zc_send(self->zfd, self->udp, self->buf, ZC_DGRAM,
				   0, big, sizeof(struct sockaddr_storage) + 1,
				   1));
	EXPECT_ERR(EINVAL, zc_send(self->zfd, self->udp, self->buf, ZC_DGRAM,
				   0, big, sizeof(big), 1));
	EXPECT_ERR(EINVAL, zc_send(self->zfd, self->udp, self->buf, ZC_DGRAM,
				   0, big, UINT_MAX, 1));
	/* Shorter than a sockaddr_in. */
	EXPECT_ERR(EINVAL, zc_send(self->zfd, self->udp, self->buf, ZC_DGRAM,
				   0, &self->udpp.dst, 4, 1));
	/* An IPv6 address for an IPv4 socket. */
	EXPECT_ERR(EAFNOSUPPORT, zc_send(self->zfd, self->udp, self->buf,
					 ZC_DGRAM, 0, &sin6, sizeof(sin6), 1));
	expect_nothing_sent(_metadata, self);
}

TEST_F(errors, tcp_not_connected)
{
	struct sockaddr_storage ss;
	socklen_t len = zc_loopback_addr(AF_INET, 0, &ss);
	int fd, l, ret;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, fd);
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, l);
	ASSERT_EQ(0, bind(l, (void *)&ss, len));
	ASSERT_EQ(0, listen(l, 1));

	/* tcp_sendmsg answers EPIPE outside SYN_SENT/SYN_RECV. */
	ret = zc_send(self->zfd, fd, self->buf, 65536, MSG_NOSIGNAL, NULL, 0,
		      1);
	EXPECT_TRUE(ret == -EPIPE || ret == -ENOTCONN)
		TH_LOG("unconnected: %d (%s)", ret, strerror(-ret));
	ret = zc_send(self->zfd, l, self->buf, 65536, MSG_NOSIGNAL, NULL, 0,
		      1);
	EXPECT_TRUE(ret == -EPIPE || ret == -ENOTCONN)
		TH_LOG("listening: %d (%s)", ret, strerror(-ret));
	/* After shutdown(SHUT_WR) of a connected one. */
	ASSERT_EQ(0, shutdown(self->tcp.tx, SHUT_WR));
	ret = zc_send(self->zfd, self->tcp.tx, self->buf, 65536, MSG_NOSIGNAL,
		      NULL, 0, 1);
	EXPECT_EQ(-EPIPE, ret) TH_LOG("shut down: %d (%s)", ret,
				      strerror(-ret));
	close(fd);
	close(l);
	expect_nothing_sent(_metadata, self);
}

TEST_F(errors, udp_no_destination)
{
	EXPECT_ERR(EDESTADDRREQ, zc_send(self->zfd, self->udp, self->buf,
					 ZC_DGRAM, 0, NULL, 0, 1));
	/* Also below the copy threshold, where the stack itself refuses. */
	EXPECT_ERR(EDESTADDRREQ, zc_send(self->zfd, self->udp, self->buf, 100,
					 0, NULL, 0, 1));
	expect_nothing_sent(_metadata, self);
}

/* A send of 0 bytes returns 0 and still posts its one completion. */
TEST_F(errors, zero_length)
{
	struct iovec iov[2] = { { self->buf, 0 }, { self->buf + 4096, 0 } };
	char b;
	int ret;

	ret = zc_sendv(self->zfd, self->tcp.tx, iov, 2, 0, NULL, 0, 1);
	EXPECT_EQ(0, ret) TH_LOG("TCP: %d", ret);
	if (!ret)
		zc_log_add(&self->log, 1, 0);
	ret = zc_sendv(self->zfd, self->udp, iov, 1, 0, &self->udpp.dst,
		       self->udpp.dstlen, 2);
	EXPECT_EQ(0, ret) TH_LOG("UDP: %d", ret);
	if (!ret)
		zc_log_add(&self->log, 2, 0);
	zc_expect_completions(_metadata, self->zfd, &self->log,
			      ZCSEND_COMPL_COPIED, ZCSEND_COMPL_ZEROCOPY, NULL);
	zc_expect_idle_stats(_metadata, self->zfd, self->log.n, 0,
			     self->log.n);
	/* UDP carries an empty datagram; TCP carries nothing. */
	zc_msleep(50);
	EXPECT_EQ(0, recv(self->udpp.rx, &b, 1, MSG_DONTWAIT));
	EXPECT_EQ(-1, recv(self->tcp.rx, &b, 1, MSG_DONTWAIT));
}

/* A read-only private mapping: pinned without FOLL_WRITE. */
TEST_F(errors, readonly)
{
	uint8_t *p = zc_map_pattern(BUF_LEN, SEED);
	struct zc_rx rx;
	int ret;

	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, mprotect(p, BUF_LEN, PROT_READ));
	ASSERT_EQ(0, zc_rx_start(&rx, self->tcp.rx, SEED, 256 << 10));
	ret = zc_send(self->zfd, self->tcp.tx, p, 256 << 10, 0, NULL, 0, 1);
	ASSERT_EQ(256 << 10, ret) TH_LOG("send: %d (%s)", ret,
					 ret < 0 ? strerror(-ret) : "short");
	zc_log_add(&self->log, 1, ret);
	ZC_EXPECT_RX(&rx, 256 << 10);

	ret = zc_send(self->zfd, self->udp, p, 60000, 0, &self->udpp.dst,
		      self->udpp.dstlen, 2);
	EXPECT_EQ(60000, ret);
	if (ret > 0)
		zc_log_add(&self->log, 2, ret);
	zc_expect_completions(_metadata, self->zfd, &self->log, 0, 0, NULL);
	munmap(p, BUF_LEN);
}

/* A sealed memfd mapped read-only and shared. */
TEST_F(errors, readonly_sealed_memfd)
{
	size_t len = 128 << 10;
	struct zc_rx rx;
	int mfd, ret;
	void *p;

	mfd = memfd_create("zcsend-ro", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0 && errno == ENOSYS)
		SKIP(return, "no memfd_create");
	ASSERT_LE(0, mfd);
	ASSERT_EQ(len, write(mfd, self->buf, len));
	ASSERT_EQ(0, fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK |
			   F_SEAL_GROW | F_SEAL_SEAL));
	p = mmap(NULL, len, PROT_READ, MAP_SHARED, mfd, 0);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, zc_rx_start(&rx, self->tcp.rx, SEED, len));
	ret = zc_send(self->zfd, self->tcp.tx, p, len, 0, NULL, 0, 1);
	ASSERT_EQ(len, ret) TH_LOG("send: %d (%s)", ret,
				   ret < 0 ? strerror(-ret) : "short");
	zc_log_add(&self->log, 1, ret);
	ZC_EXPECT_RX(&rx, len);
	zc_expect_completions(_metadata, self->zfd, &self->log, 0, 0, NULL);
	munmap(p, len);
	close(mfd);
}

/*
 * MSG_DONTWAIT on a TCP socket whose peer does not read: accepted sends
 * until the send buffer is full, then EAGAIN. Pinning must be bounded by
 * the send buffer, and what was accepted completes once the peer reads.
 */
TEST_F(errors, dontwait_full)
{
	const size_t len = 8 << 20;
	struct zcsend_stats st;
	int64_t end;
	struct zc_pair p;
	struct zc_rx rx;
	uint8_t *big;
	int ret;

	big = zc_map_pattern(len, SEED);
	ASSERT_NE(NULL, big);
	ASSERT_EQ(0, zc_loopback_pair(&p, AF_INET, SOCK_STREAM, 65536,
				      256 << 10));
	ret = zc_fill_until_eagain(self->zfd, p.tx, big, len, 64 << 10, 1,
				   &self->log);
	ASSERT_EQ(0, ret) TH_LOG("%s after %d sends, %" PRIu64 " bytes",
				 ret == 1 ? "no EAGAIN" : strerror(-ret),
				 self->log.n, self->log.bytes);
	TH_LOG("EAGAIN after %d sends, %" PRIu64 " bytes", self->log.n,
	       self->log.bytes);
	/*
	 * Each accepted send is in flight or completed; a refused one stops
	 * counting as in flight soon after its ioctl returned.
	 */
	end = zc_now_ms() + 2000;
	do {
		ASSERT_EQ(0, zc_stats(self->zfd, &st));
		if (self->log.n == st.inflight + st.zerocopy + st.copied)
			break;
		zc_msleep(10);
	} while (zc_now_ms() < end);
	EXPECT_EQ(self->log.n, st.inflight + st.zerocopy + st.copied);
	EXPECT_LT(0, st.inflight);
	EXPECT_LT(0, st.pinned_pages);
	/* Stalled: EAGAIN again. */
	EXPECT_ERR(EAGAIN, zc_send(self->zfd, p.tx, big + self->log.bytes,
				   65536, MSG_DONTWAIT, NULL, 0, 999));

	ASSERT_EQ(0, zc_rx_start(&rx, p.rx, SEED, self->log.bytes));
	ZC_EXPECT_RX(&rx, self->log.bytes);
	zc_expect_completions(_metadata, self->zfd, &self->log,
			      ZCSEND_COMPL_COPIED, 0, NULL);
	zc_expect_idle_stats(_metadata, self->zfd, self->log.n, 0,
			     self->log.n);
	zc_pair_close(&p);
	munmap(big, len);
}

/*
 * An unprivileged user with RLIMIT_MEMLOCK 64 KiB: pinning 1 MiB is
 * charged like MSG_ZEROCOPY (mm_account_pinned_pages) and fails with
 * ENOBUFS. Sends that fit, one after the other, all succeed: the charge
 * is returned on completion.
 */
TEST_F(errors, memlock)
{
	struct {
		int big, small[4], compl[4];
		uint64_t bytes;
	} res;
	const size_t len = 2 << 20;
	uint64_t thr = 0;
	struct zc_rx rx;
	int status, pfd[2], i;
	uint8_t *buf;
	pid_t pid;

	if (geteuid())
		SKIP(return, "needs root to drop to uid 65534");
	thr = zc_copy_threshold();
	/* Room for everything, should the 1 MiB send wrongly succeed. */
	buf = zc_map_pattern(len, SEED);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	ASSERT_EQ(0, zc_rx_start(&rx, self->tcp.rx, SEED, 0));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct rlimit rl = { 64 << 10, 64 << 10 };
		struct zcsend_completion c;
		size_t small = 40 << 10;

		memset(&res, 0, sizeof(res));
		if (setrlimit(RLIMIT_MEMLOCK, &rl) || setgroups(0, NULL) ||
		    setgid(65534) || setuid(65534))
			_exit(10);
		res.big = zc_send(self->zfd, self->tcp.tx, buf, 1 << 20, 0,
				  NULL, 0, 1);
		if (res.big > 0)
			res.bytes += res.big;
		for (i = 0; i < 4; i++) {
			res.small[i] = zc_send(self->zfd, self->tcp.tx,
					       buf + res.bytes, small, 0, NULL,
					       0, 10 + i);
			if (res.small[i] <= 0)
				break;
			res.bytes += res.small[i];
			res.compl[i] = zc_collect(self->zfd, &c, 1, ZC_WAIT_MS);
		}
		if (write(pfd[1], &res, sizeof(res)) != sizeof(res))
			_exit(11);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	ASSERT_EQ(sizeof(res), read(pfd[0], &res, sizeof(res)));
	close(pfd[0]);
	close(pfd[1]);

	EXPECT_EQ(-ENOBUFS, res.big) TH_LOG("1 MiB over a 64 KiB memlock: %d",
					    res.big);
	for (i = 0; i < 4; i++) {
		EXPECT_EQ(40 << 10, res.small[i])
			TH_LOG("40 KiB send #%d (copy_threshold %" PRIu64 "): %d",
			       i, thr, res.small[i]);
		EXPECT_EQ(1, res.compl[i]);
	}
	shutdown(self->tcp.tx, SHUT_WR);
	ZC_EXPECT_RX(&rx, res.bytes);
	munmap(buf, len);
}

TEST_HARNESS_MAIN
