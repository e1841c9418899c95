// SPDX-License-Identifier: GPL-2.0
/*
 * What one user can make zcsend hold, and what one user can do to another:
 * each test here was written against a defect found by reading the send and
 * completion paths, and failed before its fix.
 *
 * - memlock: pins are charged one page per page pinned, so iovecs that
 *   straddle page boundaries cannot pin 2048 pages for a charge of 6; an
 *   unprivileged user never holds more pinned pages than RLIMIT_MEMLOCK
 *   (measured from the system-wide pin count while sends are stuck).
 * - partial sends unpin what the socket did not take.
 * - the completion queue is bounded: EBUSY once ZCSEND_MAX_COMPLETIONS
 *   records are queued or in flight, nothing lost.
 * - a reader stuck in a user copy (userfaultfd) stalls nobody else.
 * - sockets that cannot carry user pages (kTLS) and TCP Fast Open SYN data
 *   take the copy path, and say so.
 * - sends of different files never share a notifier chain.
 */
#include <linux/tls.h>
#include <linux/userfaultfd.h>
#include <netinet/tcp.h>
#include <grp.h>
#include <sys/resource.h>

#include "zcsend_helpers.h"

#define SEED		0x5eed0008ULL
#define MEMLOCK		(64 << 10)	/* 16 pages */
#define PAGE		4096
#define BIG		(2050 * PAGE)

#ifndef SOL_TLS
#define SOL_TLS		282
#endif

/* Reads a small /proc file into @buf (NUL-terminated); 0 or -errno. */
static int read_small_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	buf[0] = 0;
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return 0;
}

FIXTURE(limits) {
	int zfd;
	int64_t pins;
	uint64_t thr;
};

FIXTURE_SETUP(limits)
{
	self->pins = zc_pins_outstanding();
	self->zfd = zc_open();
	ASSERT_LE(0, self->zfd) TH_LOG("open: %s", strerror(errno));
	self->thr = zc_copy_threshold();
}

FIXTURE_TEARDOWN(limits)
{
	if (self->zfd >= 0)
		close(self->zfd);
	ZC_EXPECT_PINS_BACK(self->pins);
}

/* Drops to uid/gid 65534 with RLIMIT_MEMLOCK @bytes; 0 on success. */
static int drop_privileges(rlim_t bytes)
{
	struct rlimit rl = { bytes, bytes };

	if (setrlimit(RLIMIT_MEMLOCK, &rl) || setgroups(0, NULL) ||
	    setgid(65534) || setuid(65534))
		return -1;
	return 0;
}

/* A stalled loopback TCP pair: tiny receive buffer, nobody reads. */
static int stalled_pair(struct zc_pair *p)
{
	return zc_loopback_pair(p, AF_INET, SOCK_STREAM, 4096, 4 << 20);
}

/*
 * 1024 iovecs of 16 bytes, each across a page boundary: 16 KiB of data in
 * 2048 pages. Charged by bytes (as MSG_ZEROCOPY estimates) that is 6 pages;
 * charged by pages it is far over a 16-page limit.
 */
TEST_F(limits, memlock_counts_pages_not_bytes)
{
	struct zc_pair p;
	uint8_t *buf;
	int status, pfd[2];
	pid_t pid;
	int res;

	if (geteuid())
		SKIP(return, "needs root to drop to uid 65534");
	buf = zc_map_pattern(2049 * PAGE, SEED);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, stalled_pair(&p));
	ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		static struct iovec iov[1024];
		int i;

		if (drop_privileges(MEMLOCK))
			_exit(10);
		for (i = 0; i < 1024; i++) {
			iov[i].iov_base = buf + (2 * i + 1) * PAGE - 8;
			iov[i].iov_len = 16;
		}
		res = zc_sendv(self->zfd, p.tx, iov, 1024,
			       MSG_DONTWAIT | MSG_NOSIGNAL, NULL, 0, 1);
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
	EXPECT_EQ(-ENOBUFS, res)
		TH_LOG("2048 pages under a 16-page memlock limit: %d", res);
	zc_pair_close(&p);
	munmap(buf, 2049 * PAGE);
}

/*
 * An unprivileged user tries every shape it can to keep pages pinned past
 * its 16-page limit: straddling iovecs, page-sized sends, partial sends to
 * several peers that do not read, through several files. The pins held at
 * any moment, measured system-wide, never exceed the limit.
 */
TEST_F(limits, unprivileged_pins_stay_within_memlock)
{
	const int npairs = 4, nfiles = 2;
	struct zc_pair p[4];
	int64_t base = zc_pins_outstanding(), max = 0, now;
	uint8_t *buf;
	int status, pfd[2], i, j, k, zf[2];
	pid_t pid;

	if (geteuid())
		SKIP(return, "needs root to drop to uid 65534");
	buf = zc_map_pattern(BIG, SEED);
	ASSERT_NE(NULL, buf);
	for (i = 0; i < npairs; i++)
		ASSERT_EQ(0, stalled_pair(&p[i]));
	for (i = 0; i < nfiles; i++) {
		zf[i] = zc_open();
		ASSERT_LE(0, zf[i]);
	}
	ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		static struct iovec iov[1024];
		int64_t hi = 0, cur;

		if (drop_privileges(MEMLOCK))
			_exit(10);
		for (k = 0; k < 8; k++) {
			for (i = 0; i < npairs; i++) {
				/* 1024 x 16 bytes across page boundaries
				 * (the copy threshold's 16 KiB in 2048
				 * pages), then 64 KiB and 40 KiB plain. */
				for (j = 0; j < 1024; j++) {
					iov[j].iov_base = buf + (2 * j + 1) * PAGE - 8 - k;
					iov[j].iov_len = 16;
				}
				zc_sendv(zf[i % nfiles], p[i].tx, iov, 1024,
					 MSG_DONTWAIT | MSG_NOSIGNAL, NULL, 0, k);
				zc_send(zf[i % nfiles], p[i].tx, buf, 64 << 10,
					MSG_DONTWAIT | MSG_NOSIGNAL, NULL, 0, k);
				zc_send(zf[(i + 1) % nfiles], p[i].tx,
					buf + 4096 * k, 40 << 10,
					MSG_DONTWAIT | MSG_NOSIGNAL, NULL, 0, k);
				cur = zc_pins_outstanding();
				if (cur - base > hi)
					hi = cur - base;
			}
		}
		if (write(pfd[1], &hi, sizeof(hi)) != sizeof(hi))
			_exit(11);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	ASSERT_EQ(sizeof(max), read(pfd[0], &max, sizeof(max)));
	now = zc_pins_outstanding() - base;
	if (now > max)
		max = now;
	close(pfd[0]);
	close(pfd[1]);
	TH_LOG("most pages pinned at once by uid 65534 with a %d-page "
	       "RLIMIT_MEMLOCK: %" PRId64, MEMLOCK / PAGE, max);
	EXPECT_GE(MEMLOCK / PAGE, max);
	for (i = 0; i < npairs; i++)
		zc_pair_close(&p[i]);
	for (i = 0; i < nfiles; i++)
		close(zf[i]);
	munmap(buf, BIG);
}

/*
 * A 4 MiB send with MSG_DONTWAIT to a stalled peer is accepted in part;
 * only the pages of the accepted prefix stay pinned.
 */
TEST_F(limits, partial_send_unpins_the_rest)
{
	const size_t len = 4 << 20;
	struct zcsend_stats st;
	struct zc_pair p;
	struct zc_rx rx;
	int64_t base = zc_pins_outstanding(), held;
	uint8_t *buf;
	uint64_t keep;
	int n;

	buf = zc_map_pattern(len, SEED);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, zc_loopback_pair(&p, AF_INET, SOCK_STREAM, 4096, 256 << 10));
	n = zc_send(self->zfd, p.tx, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL,
		    NULL, 0, 1);
	ASSERT_LT(0, n) TH_LOG("send: %s", strerror(-n));
	ASSERT_GT(len, (size_t)n) TH_LOG("the whole 4 MiB was accepted");
	keep = (n + PAGE - 1) / PAGE;
	ASSERT_EQ(0, zc_stats(self->zfd, &st));
	held = zc_pins_outstanding() - base;
	TH_LOG("accepted %d of %zu bytes; %llu pages pinned by the file, "
	       "%" PRId64 " system-wide", n, len,
	       (unsigned long long)st.pinned_pages, held);
	EXPECT_GE(keep, st.pinned_pages);
	EXPECT_GE((int64_t)keep, held);
	ASSERT_EQ(0, zc_rx_start(&rx, p.rx, SEED, n));
	ZC_EXPECT_RX(&rx, n);
	zc_pair_close(&p);
	munmap(buf, len);
}

/*
 * 1-byte sends, none read: the file refuses the one past
 * ZCSEND_MAX_COMPLETIONS with EBUSY, every record is then read exactly
 * once in order, and the file sends again.
 */
TEST_F(limits, completion_queue_is_bounded)
{
	struct zcsend_completion *c;
	struct zc_pair p;
	uint8_t b = 'x', sink[4096];
	int i, n, got = 0;

	ASSERT_EQ(0, zc_loopback_pair(&p, AF_INET, SOCK_DGRAM, 0, 0));
	for (i = 0; i < ZCSEND_MAX_COMPLETIONS; i++) {
		n = zc_send(self->zfd, p.tx, &b, 1, 0, &p.dst, p.dstlen, i);
		ASSERT_EQ(1, n) TH_LOG("send %d: %s", i, strerror(-n));
		if (i % 64 == 63)
			while (recv(p.rx, sink, sizeof(sink), MSG_DONTWAIT) > 0)
				;
	}
	n = zc_send(self->zfd, p.tx, &b, 1, 0, &p.dst, p.dstlen, i);
	EXPECT_EQ(-EBUSY, n) TH_LOG("send past the bound: %d", n);
	c = calloc(ZCSEND_MAX_COMPLETIONS + 1, sizeof(*c));
	ASSERT_NE(NULL, c);
	got = zc_collect(self->zfd, c, ZCSEND_MAX_COMPLETIONS + 1, 200);
	EXPECT_EQ(ZCSEND_MAX_COMPLETIONS, got);
	for (i = 0; i < got; i++)
		if (c[i].user_data != (uint64_t)i) {
			EXPECT_EQ(i, c[i].user_data);
			break;
		}
	n = zc_send(self->zfd, p.tx, &b, 1, 0, &p.dst, p.dstlen, 7);
	EXPECT_EQ(1, n);
	EXPECT_EQ(1, zc_collect(self->zfd, c, 1, ZC_WAIT_MS));
	free(c);
	zc_pair_close(&p);
}

struct stuck_reader {
	int zfd;
	void *buf;
	ssize_t ret;
};

static void *stuck_reader_main(void *arg)
{
	struct stuck_reader *r = arg;
	int fl = fcntl(r->zfd, F_GETFL);

	/* A blocking read whose copy to user faults on a userfaultfd page. */
	fcntl(r->zfd, F_SETFL, fl & ~O_NONBLOCK);
	r->ret = read(r->zfd, r->buf, sizeof(struct zcsend_completion));
	return NULL;
}

/*
 * File A has a reader stuck in its copy to user space (a userfaultfd page
 * nobody serves) while 320 of A's sends complete: the completion work must
 * not wait on the stuck reader, or after max_active (256 for the module's
 * unbound queue) blocked work items nobody's completions run. File B's send must complete meanwhile.
 */
TEST_F_TIMEOUT(limits, stuck_reader_stalls_nobody, 180)
{
	enum { NPAIRS = 8, PER = 40 };
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { 0 };
	struct zc_pair p[NPAIRS], q, pb;
	struct zc_rx rx[NPAIRS], rxq;
	struct zcsend_completion c;
	struct stuck_reader r;
	pthread_t th;
	int uffd, zb, i, j, n, got;
	uint8_t *buf, *trap;
	size_t chunk;

	chunk = self->thr > 16384 ? self->thr : 16384;
	uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0)
		SKIP(return, "userfaultfd: %s", strerror(errno));
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_API, &api));
	trap = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, trap);
	reg.range.start = (uintptr_t)trap;
	reg.range.len = PAGE;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_REGISTER, &reg));

	buf = zc_map_pattern(NPAIRS * PER * chunk, SEED);
	ASSERT_NE(NULL, buf);
	/* A: one record for the reader, then 320 sends stuck in flight. */
	ASSERT_EQ(0, zc_loopback_pair(&q, AF_INET, SOCK_DGRAM, 0, 0));
	ASSERT_EQ(1, zc_send(self->zfd, q.tx, buf, 1, 0, &q.dst, q.dstlen, 0));
	for (i = 0; i < NPAIRS; i++) {
		ASSERT_EQ(0, zc_loopback_pair(&p[i], AF_INET, SOCK_STREAM,
					      4096, 8 << 20));
		for (j = 0; j < PER; j++) {
			/* MSG_EOR: an skb each, so no chains: 320 work items. */
			n = zc_send(self->zfd, p[i].tx, buf + (i * PER + j) * chunk,
				    chunk, MSG_EOR | MSG_NOSIGNAL, NULL, 0,
				    1 + i * PER + j);
			ASSERT_EQ((int)chunk, n) TH_LOG("send: %s", strerror(-n));
		}
	}
	TH_LOG("%d sends in flight", NPAIRS * PER);
	r.zfd = self->zfd;
	r.buf = trap;
	ASSERT_EQ(0, pthread_create(&th, NULL, stuck_reader_main, &r));
	zc_msleep(300);
	/* Release A's sends: their completions now run. */
	for (i = 0; i < NPAIRS; i++)
		ASSERT_EQ(0, zc_rx_start(&rx[i], p[i].rx, SEED, PER * chunk));
	/* Each stream starts mid-pattern: count bytes, do not check them. */
	for (i = 0; i < NPAIRS; i++) {
		zc_rx_join(&rx[i]);
		EXPECT_EQ(PER * chunk, rx[i].got);
	}
	TH_LOG("A's peers drained");
	/* B: one send through the same workqueue must complete. */
	zb = zc_open();
	ASSERT_LE(0, zb);
	ASSERT_EQ(0, zc_loopback_pair(&pb, AF_INET, SOCK_STREAM, 0, 0));
	ASSERT_EQ(0, zc_rx_start(&rxq, pb.rx, SEED, chunk));
	n = zc_send(zb, pb.tx, buf, chunk, MSG_NOSIGNAL, NULL, 0, 99);
	ASSERT_EQ((int)chunk, n);
	got = zc_collect(zb, &c, 1, ZC_WAIT_MS);
	EXPECT_EQ(1, got) TH_LOG("file B's completion did not arrive while "
				 "file A's reader was stuck");
	ZC_EXPECT_RX(&rxq, chunk);
	TH_LOG("B's send done; releasing A's reader");
	/* Unstick the reader: serve its fault with a zero page. */
	{
		struct uffdio_zeropage zp = {
			.range = { .start = (uintptr_t)trap, .len = PAGE },
		};

		EXPECT_EQ(0, ioctl(uffd, UFFDIO_ZEROPAGE, &zp))
			TH_LOG("UFFDIO_ZEROPAGE: %s", strerror(errno));
	}
	close(uffd);
	pthread_join(th, NULL);
	EXPECT_EQ((ssize_t)sizeof(c), r.ret);
	/* The reader made the file blocking: back to O_NONBLOCK. */
	fcntl(self->zfd, F_SETFL, fcntl(self->zfd, F_GETFL) | O_NONBLOCK);
	/* A: the other 320 records, none lost, none extra. */
	for (got = 0, i = 0; i < NPAIRS * PER; i++) {
		n = zc_collect(self->zfd, &c, 1, ZC_WAIT_MS);
		if (n != 1)
			break;
		got++;
	}
	EXPECT_EQ(NPAIRS * PER, got);
	EXPECT_EQ(0, zc_read_compl(self->zfd, &c, 1));
	close(zb);
	zc_pair_close(&pb);
	for (i = 0; i < NPAIRS; i++)
		zc_pair_close(&p[i]);
	zc_pair_close(&q);
	munmap(trap, PAGE);
	munmap(buf, NPAIRS * PER * chunk);
}

/* Sends 64 KiB on @tx and returns the completion's flags (or 0). */
static uint32_t send_one_flags(struct __test_metadata *_metadata, int zfd,
			       int tx, const uint8_t *buf, size_t len)
{
	struct zcsend_completion c = { 0 };
	int n;

	n = zc_send(zfd, tx, buf, len, MSG_NOSIGNAL, NULL, 0, 42);
	EXPECT_EQ((int)len, n) TH_LOG("send: %s", strerror(-n));
	if (n != (int)len)
		return 0;
	EXPECT_EQ(1, zc_collect(zfd, &c, 1, ZC_WAIT_MS));
	EXPECT_EQ(42, c.user_data);
	return c.flags;
}

/*
 * kTLS clears SOCK_SUPPORT_ZC: the record layer copies. The send takes
 * the copy path and says so; the peer decrypts intact data.
 */
TEST_F(limits, ktls_takes_copy_path)
{
	struct tls12_crypto_info_aes_gcm_128 ci = { 0 };
	const size_t len = 64 << 10;
	struct zc_pair p;
	struct zc_rx rx;
	uint32_t flags;
	uint8_t *buf;

	ASSERT_EQ(0, zc_loopback_pair(&p, AF_INET, SOCK_STREAM, 0, 0));
	if (setsockopt(p.tx, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) ||
	    setsockopt(p.rx, SOL_TCP, TCP_ULP, "tls", sizeof("tls"))) {
		zc_pair_close(&p);
		SKIP(return, "TCP_ULP tls: %s", strerror(errno));
	}
	ci.info.version = TLS_1_2_VERSION;
	ci.info.cipher_type = TLS_CIPHER_AES_GCM_128;
	memset(ci.key, 0x11, sizeof(ci.key));
	memset(ci.iv, 0x22, sizeof(ci.iv));
	memset(ci.salt, 0x33, sizeof(ci.salt));
	ASSERT_EQ(0, setsockopt(p.tx, SOL_TLS, TLS_TX, &ci, sizeof(ci)));
	ASSERT_EQ(0, setsockopt(p.rx, SOL_TLS, TLS_RX, &ci, sizeof(ci)));
	buf = zc_map_pattern(len, SEED);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, zc_rx_start(&rx, p.rx, SEED, len));
	flags = send_one_flags(_metadata, self->zfd, p.tx, buf, len);
	EXPECT_EQ(ZCSEND_COMPL_COPIED | ZCSEND_COMPL_COPY_PATH, flags);
	ZC_EXPECT_RX(&rx, len);
	zc_pair_close(&p);
	munmap(buf, len);
}

/*
 * TCP Fast Open: the first send's data rides in the SYN, which the stack
 * copies. The socket is not established yet: copy path, and said so.
 */
TEST_F(limits, fastopen_syn_data_takes_copy_path)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	const size_t len = 32 << 10;
	socklen_t alen = sizeof(a);
	int l, tx, rxfd, one = 1, qlen = 16;
	char old[32] = "";
	struct zc_rx rx;
	uint32_t flags;
	uint8_t *buf;

	read_small_file("/proc/sys/net/ipv4/tcp_fastopen", old, sizeof(old));
	/* Client and server on, no cookie needed on either side (0x207). */
	if (zc_write_file("/proc/sys/net/ipv4/tcp_fastopen", "519"))
		SKIP(return, "cannot enable TCP Fast Open");
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, l);
	ASSERT_EQ(0, bind(l, (void *)&a, alen));
	ASSERT_EQ(0, getsockname(l, (void *)&a, &alen));
	ASSERT_EQ(0, setsockopt(l, SOL_TCP, TCP_FASTOPEN, &qlen, sizeof(qlen)));
	ASSERT_EQ(0, listen(l, 4));
	tx = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, tx);
	ASSERT_EQ(0, setsockopt(tx, SOL_TCP, TCP_FASTOPEN_CONNECT, &one,
				sizeof(one)));
	/* Returns at once; the SYN leaves with the first send's data. */
	ASSERT_EQ(0, connect(tx, (void *)&a, alen));
	buf = zc_map_pattern(len, SEED);
	ASSERT_NE(NULL, buf);
	flags = send_one_flags(_metadata, self->zfd, tx, buf, len);
	EXPECT_EQ(ZCSEND_COMPL_COPIED | ZCSEND_COMPL_COPY_PATH, flags);
	rxfd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	ASSERT_LE(0, rxfd);
	ASSERT_EQ(0, zc_rx_start(&rx, rxfd, SEED, len));
	ZC_EXPECT_RX(&rx, len);
	if (old[0])
		zc_write_file("/proc/sys/net/ipv4/tcp_fastopen", old);
	close(rxfd);
	close(tx);
	close(l);
	munmap(buf, len);
}

/*
 * Two files send on one stalled TCP socket, each send small enough to
 * share the tail skb with the one before. Sends of the same file join
 * one notifier chain (the `linked` counter shows it); a send of another
 * file never joins theirs.
 */
TEST_F(limits, chains_stay_within_one_file)
{
	struct zcsend_stats sa, sb;
	struct zcsend_completion c[2];
	const size_t len = 20000;
	struct zc_pair p;
	struct zc_rx rx;
	uint8_t *buf;
	int zb, n, i;

	zb = zc_open();
	ASSERT_LE(0, zb);
	buf = zc_map_pattern(4 * len, SEED);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, stalled_pair(&p));
	/* Close the tiny receive window with copied data, so that the
	 * zero-copy sends below stay queued in the write queue's tail skb. */
	n = send(p.tx, buf, len, MSG_DONTWAIT);
	ASSERT_EQ((int)len, n);
	zc_msleep(100);
	for (i = 0; i < 3; i++) {
		n = zc_send(i < 2 ? self->zfd : zb, p.tx, buf + (i + 1) * len,
			    len, MSG_NOSIGNAL, NULL, 0, i + 1);
		ASSERT_EQ((int)len, n);
	}
	ASSERT_EQ(0, zc_rx_start(&rx, p.rx, SEED, 4 * len));
	ZC_EXPECT_RX(&rx, 4 * len);
	EXPECT_EQ(2, zc_collect(self->zfd, c, 2, ZC_WAIT_MS));
	EXPECT_EQ(1, zc_collect(zb, c, 1, ZC_WAIT_MS));
	ASSERT_EQ(0, zc_stats(self->zfd, &sa));
	ASSERT_EQ(0, zc_stats(zb, &sb));
	TH_LOG("linked: file A %llu, file B %llu",
	       (unsigned long long)sa.linked, (unsigned long long)sb.linked);
	EXPECT_LE(1, sa.linked) TH_LOG("same-file sends did not share an skb: "
				       "the test did not set up the case");
	EXPECT_EQ(0, sb.linked);
	close(zb);
	zc_pair_close(&p);
	munmap(buf, 4 * len);
}

TEST_HARNESS_MAIN
