// SPDX-License-Identifier: GPL-2.0
/*
 * zcsend with sends in flight: every test first stalls a TCP loopback
 * connection (the peer does not read, its receive buffer is small) with
 * MSG_DONTWAIT sends until EAGAIN, so that pinned sends sit in the write
 * queue. Then it closes, kills, forks or unloads, and checks that nothing
 * crashes, the data that was accepted is intact, the completions that can
 * still be read arrive, and every pin is released.
 *
 * The rmmod test comes last: it unloads the module once the sends are done
 * and loads $ZCSEND_KO (default /zcsend/zcsend.ko) again.
 */
#include "zcsend_helpers.h"

#define SEED		0x5eed0003ULL
#define BUF_LEN		(4 << 20)
#define CHUNK		(64 << 10)

FIXTURE(faults) {
	int zfd;
	struct zc_pair p;
	uint8_t *buf;
	int64_t pins;
	struct zc_log log;
};

FIXTURE_SETUP(faults)
{
	int ret;

	self->p.tx = self->p.rx = -1;
	self->pins = zc_pins_outstanding();
	self->zfd = zc_open();
	ASSERT_LE(0, self->zfd) TH_LOG("open %s: %s", ZCSEND_DEVICE,
				       strerror(errno));
	ret = zc_loopback_pair(&self->p, AF_INET, SOCK_STREAM, 65536,
			       256 << 10);
	ASSERT_EQ(0, ret) TH_LOG("socket pair: %s", strerror(-ret));
	self->buf = zc_map_pattern(BUF_LEN, SEED);
	ASSERT_NE(NULL, self->buf);
}

FIXTURE_TEARDOWN(faults)
{
	zc_pair_close(&self->p);
	if (self->zfd >= 0)
		close(self->zfd);
	if (self->buf)
		munmap(self->buf, BUF_LEN);
	zc_log_free(&self->log);
	ZC_EXPECT_PINS_BACK(self->pins);
}

/* Fills the connection until EAGAIN; checks sends are left in flight. */
static void stall(struct __test_metadata *_metadata, int zfd, int fd,
		  const uint8_t *buf, struct zc_log *log)
{
	struct zcsend_stats st;
	int ret;

	ret = zc_fill_until_eagain(zfd, fd, buf, BUF_LEN, CHUNK, 1, log);
	ASSERT_EQ(0, ret) TH_LOG("%s after %d sends, %" PRIu64 " bytes",
				 ret == 1 ? "no EAGAIN" : strerror(-ret),
				 log->n, log->bytes);
	ASSERT_EQ(0, zc_stats(zfd, &st));
	ASSERT_LT(0, st.inflight) TH_LOG("no send left in flight");
	EXPECT_LT(0, st.pinned_pages);
	TH_LOG("%d sends, %" PRIu64 " bytes accepted; %llu in flight, %llu pages pinned",
	       log->n, log->bytes, (unsigned long long)st.inflight,
	       (unsigned long long)st.pinned_pages);
}

/* The file still works for a new send and its completion. */
static void expect_usable(struct __test_metadata *_metadata)
{
	struct zc_log log = { 0 };
	uint8_t *buf = zc_map_pattern(65536, 1);
	struct zc_pair p;
	int zfd, ret;

	ASSERT_NE(NULL, buf);
	zfd = zc_open();
	ASSERT_LE(0, zfd) TH_LOG("open %s: %s", ZCSEND_DEVICE,
				 strerror(errno));
	ASSERT_EQ(0, zc_loopback_pair(&p, AF_INET, SOCK_DGRAM, 1 << 20, 0));
	ret = zc_send(zfd, p.tx, buf, 50000, 0, &p.dst, p.dstlen, 1);
	EXPECT_EQ(50000, ret) TH_LOG("send: %s", strerror(-ret));
	if (ret > 0)
		zc_log_add(&log, 1, ret);
	zc_expect_completions(_metadata, zfd, &log, 0, 0, NULL);
	zc_pair_close(&p);
	close(zfd);
	munmap(buf, 65536);
	zc_log_free(&log);
}

/* Sender closed: the queued data still goes out, completions arrive. */
TEST_F(faults, close_socket_drain)
{
	struct zc_rx rx;

	stall(_metadata, self->zfd, self->p.tx, self->buf, &self->log);
	close(self->p.tx);
	self->p.tx = -1;
	ASSERT_EQ(0, zc_rx_start(&rx, self->p.rx, SEED, 0));
	ZC_EXPECT_RX(&rx, self->log.bytes);
	zc_expect_completions(_metadata, self->zfd, &self->log,
			      ZCSEND_COMPL_COPIED, 0, NULL);
	zc_expect_idle_stats(_metadata, self->zfd, self->log.n, -1, -1);
}

/* Both ends closed with unread data: RST, the write queue is purged. */
TEST_F(faults, close_socket_reset)
{
	stall(_metadata, self->zfd, self->p.tx, self->buf, &self->log);
	close(self->p.tx);
	close(self->p.rx);
	self->p.tx = self->p.rx = -1;
	zc_expect_completions(_metadata, self->zfd, &self->log, 0, 0, NULL);
	zc_expect_idle_stats(_metadata, self->zfd, self->log.n, -1, -1);
}

/* /dev/zcsend closed first: the sends finish without a reader. */
TEST_F(faults, close_dev_drain)
{
	struct zc_rx rx;

	stall(_metadata, self->zfd, self->p.tx, self->buf, &self->log);
	close(self->zfd);
	self->zfd = -1;
	ASSERT_EQ(0, zc_rx_start(&rx, self->p.rx, SEED, self->log.bytes));
	ZC_EXPECT_RX(&rx, self->log.bytes);
	ZC_EXPECT_PINS_BACK(self->pins);
	expect_usable(_metadata);
}

TEST_F(faults, close_dev_reset)
{
	stall(_metadata, self->zfd, self->p.tx, self->buf, &self->log);
	close(self->zfd);
	self->zfd = -1;
	zc_pair_close(&self->p);
	ZC_EXPECT_PINS_BACK(self->pins);
	expect_usable(_metadata);
}

/* The buffer unmapped under the sends: the pins keep the pages. */
TEST_F(faults, munmap_inflight)
{
	struct zc_rx rx;

	stall(_metadata, self->zfd, self->p.tx, self->buf, &self->log);
	ASSERT_EQ(0, munmap(self->buf, BUF_LEN));
	self->buf = NULL;
	ASSERT_EQ(0, zc_rx_start(&rx, self->p.rx, SEED, self->log.bytes));
	ZC_EXPECT_RX(&rx, self->log.bytes);
	zc_expect_completions(_metadata, self->zfd, &self->log, 0, 0, NULL);
}

/*
 * A child writes all over its copy of the buffer while the parent's sends
 * are in flight. Pinned pages are copied for the child at fork, so the
 * data on the wire is the parent's, unchanged.
 */
TEST_F(faults, fork_write_inflight)
{
	struct zc_rx rx;
	int status;
	pid_t pid;

	stall(_metadata, self->zfd, self->p.tx, self->buf, &self->log);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		memset(self->buf, 0x5a, BUF_LEN);
		_exit(self->buf[BUF_LEN - 1] == 0x5a ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(BUF_LEN, zc_pattern_check(self->buf, BUF_LEN, SEED, 0));

	ASSERT_EQ(0, zc_rx_start(&rx, self->p.rx, SEED, self->log.bytes));
	ZC_EXPECT_RX(&rx, self->log.bytes);
	zc_expect_completions(_metadata, self->zfd, &self->log,
			      ZCSEND_COMPL_COPIED, 0, NULL);
}

/* The sender killed with sends in flight; its socket drains on exit. */
TEST_F(faults, kill_sender)
{
	struct { int err; uint64_t bytes; } res = { 0 };
	struct zc_rx rx;
	int status, pfd[2];
	pid_t pid;

	ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct zc_log log = { 0 };
		int zfd = zc_open();

		close(self->zfd);
		res.err = zfd < 0 ? errno :
			  -zc_fill_until_eagain(zfd, self->p.tx, self->buf,
						BUF_LEN, CHUNK, 1, &log);
		res.bytes = log.bytes;
		if (write(pfd[1], &res, sizeof(res)) != sizeof(res))
			_exit(1);
		for (;;)
			pause();
	}
	/* The child holds the last reference to the sending socket. */
	close(self->p.tx);
	self->p.tx = -1;
	ASSERT_EQ(sizeof(res), read(pfd[0], &res, sizeof(res)));
	close(pfd[0]);
	close(pfd[1]);
	zc_msleep(50);
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status));
	ASSERT_EQ(0, res.err) TH_LOG("child: %s", strerror(res.err));
	TH_LOG("child accepted %" PRIu64 " bytes before SIGKILL", res.bytes);

	ASSERT_EQ(0, zc_rx_start(&rx, self->p.rx, SEED, 0));
	ZC_EXPECT_RX(&rx, res.bytes);
	ZC_EXPECT_PINS_BACK(self->pins);
	expect_usable(_metadata);
}

struct racer {
	int zfd, fd, sends, err;
	const uint8_t *buf;
	struct zc_log log;
};

static void *racer_main(void *arg)
{
	struct racer *r = arg;
	int ret;

	for (;;) {
		ret = zc_send(r->zfd, r->fd, r->buf, 60000, MSG_DONTWAIT, NULL,
			      0, r->log.n);
		if (ret > 0) {
			zc_log_add(&r->log, r->log.n, ret);
		} else if (ret != -EAGAIN && ret != -ENOBUFS) {
			r->err = -ret;
			return NULL;
		}
	}
}

/*
 * The socket closed by another thread while sends are being made on it:
 * the sender sees EBADF (or a send error), nothing crashes, and each send
 * that was accepted completes.
 */
TEST_F(faults, close_race)
{
	struct racer r = { .zfd = self->zfd, .buf = self->buf };
	struct zc_pair p;
	pthread_t th;
	int i;

	for (i = 0; i < 20; i++) {
		ASSERT_EQ(0, zc_loopback_pair(&p, AF_INET, SOCK_DGRAM, 1 << 20,
					      0));
		ASSERT_EQ(0, connect(p.tx, (void *)&p.dst, p.dstlen));
		r.fd = p.tx;
		r.err = 0;
		ASSERT_EQ(0, pthread_create(&th, NULL, racer_main, &r));
		zc_msleep(1 + i % 7);
		close(p.tx);
		pthread_join(th, NULL);
		EXPECT_NE(0, r.err);
		close(p.rx);
	}
	TH_LOG("%d sends accepted before the closes", r.log.n);
	zc_expect_completions(_metadata, self->zfd, &r.log, 0, 0, NULL);
	zc_expect_idle_stats(_metadata, self->zfd, r.log.n, -1, -1);
	zc_log_free(&r.log);
}

/* The module stays while sends are in flight, even with no file open. */
TEST_F(faults, rmmod_inflight)
{
	char params[1024];
	struct zc_rx rx;
	int ret;

	if (geteuid())
		SKIP(return, "needs root for delete_module");
	ASSERT_EQ(0, zc_module_params(params, sizeof(params)));
	stall(_metadata, self->zfd, self->p.tx, self->buf, &self->log);

	ret = zc_module_unload();
	if (ret == -EPERM)
		SKIP(return, "delete_module: EPERM");
	EXPECT_TRUE(ret == -EAGAIN || ret == -EBUSY)
		TH_LOG("delete_module with the file open: %d", ret);
	ASSERT_TRUE(zc_module_loaded());

	close(self->zfd);
	self->zfd = -1;
	ret = zc_module_unload();
	EXPECT_TRUE(ret == -EAGAIN || ret == -EBUSY)
		TH_LOG("delete_module with sends in flight: %d", ret);
	ASSERT_TRUE(zc_module_loaded())
		TH_LOG("unloaded with sends in flight");

	ASSERT_EQ(0, zc_rx_start(&rx, self->p.rx, SEED, self->log.bytes));
	ZC_EXPECT_RX(&rx, self->log.bytes);
	ZC_EXPECT_PINS_BACK(self->pins);

	/* Done: now it may go, and comes back. */
	if (access(zc_ko_path(), R_OK)) {
		TH_LOG("%s missing: not reloading", zc_ko_path());
		return;
	}
	ret = zc_module_unload_wait(ZC_WAIT_MS);
	EXPECT_EQ(0, ret) TH_LOG("delete_module after the sends: %s",
				 strerror(-ret));
	if (!ret) {
		ret = zc_module_load(params);
		ASSERT_EQ(0, ret) TH_LOG("finit_module: %s", strerror(-ret));
		ASSERT_TRUE(zc_wait_dev(true, 5000));
	}
	expect_usable(_metadata);
}

TEST_HARNESS_MAIN
