// SPDX-License-Identifier: GPL-2.0
/*
 * zcsend device tests: open and close, the ioctl ABI outside of sends,
 * read(2) without completions, and module unload and reload.
 *
 * The reload fixture comes last: it unloads the module and loads
 * $ZCSEND_KO (default /zcsend/zcsend.ko) again with the parameters it had.
 */
#include <sys/time.h>

#include "zcsend_helpers.h"

FIXTURE(dev) {
	int zfd;
	int64_t pins;
};

FIXTURE_SETUP(dev)
{
	self->pins = zc_pins_outstanding();
	self->zfd = zc_open();
	ASSERT_LE(0, self->zfd)
		TH_LOG("open %s: %s (is zcsend loaded?)", ZCSEND_DEVICE,
		       strerror(errno));
}

FIXTURE_TEARDOWN(dev)
{
	if (self->zfd >= 0)
		close(self->zfd);
	ZC_EXPECT_PINS_BACK(self->pins);
}

TEST_F(dev, version)
{
	uint32_t ver;

	ASSERT_EQ(0, zc_version(self->zfd, &ver));
	EXPECT_EQ(ZCSEND_ABI_VERSION, ver);
}

#define ALL_FEATURES	(ZCSEND_FEAT_SEND_BUF | ZCSEND_FEAT_FIXED_BUFFERS | \
			 ZCSEND_FEAT_FIXED_INLINE | ZCSEND_FEAT_FIXED_SOCKETS | \
			 ZCSEND_FEAT_SUBMIT | ZCSEND_FEAT_FANOUT | \
			 ZCSEND_FEAT_FANOUT_STABLE | ZCSEND_FEAT_RING_MMAP)

/*
 * ZCSEND_IOC_FEATURES names every feature of this header, and one form of
 * each is understood: a call whose only fault is its socket (-1) or the
 * missing registration fails with that (EBADF, ENXIO), never with the
 * EINVAL or ENOTTY of a form the module does not know.
 */
TEST_F(dev, features)
{
	struct zcsend_range rg = { 0, 0, 0, 4096 };
	struct zcsend_send s = {
		.fd = -1, .flags = ZCSEND_SEND_BUF, .iov = 4096, .iovcnt = 1,
	};
	struct zcsend_dest d = { .fd = -1 };
	char byte = 0;
	struct iovec iov = { &byte, 1 };
	/* A batch of one plain send (no SEND_BUF: the two bits stay apart). */
	struct zcsend_send plain = {
		.fd = -1, .iov = (uintptr_t)&iov, .iovcnt = 1,
	};
	struct zcsend_submit sub = { (uintptr_t)&plain, 1, 0 };
	struct zcsend_fanout fo = {
		.iov = (uintptr_t)&iov, .iovcnt = 1,
		.dests = (uintptr_t)&d, .nr = 1,
	};
	struct zcsend_submit subfo = { (uintptr_t)&fo, 1, ZCSEND_SUBMIT_FANOUT };
	uint64_t f = ~0ULL;
	void *hdr;

	ASSERT_EQ(0, ioctl(self->zfd, ZCSEND_IOC_FEATURES, &f));
	EXPECT_EQ(ALL_FEATURES, f);
	EXPECT_EQ(-1, ioctl(self->zfd, ZCSEND_IOC_FEATURES, (void *)8));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->zfd, ZCSEND_IOC_FEATURES, NULL));
	EXPECT_EQ(EFAULT, errno);

	/* SEND_BUF */
	EXPECT_EQ(-1, ioctl(self->zfd, ZCSEND_IOC_SEND, &s));
	EXPECT_EQ(EBADF, errno);
	/* SUBMIT */
	EXPECT_EQ(-1, ioctl(self->zfd, ZCSEND_IOC_SUBMIT, &sub));
	EXPECT_EQ(EBADF, errno);
	/* FIXED_INLINE, then FIXED_BUFFERS: nothing registered */
	s.flags = ZCSEND_SEND_FIXED | ZCSEND_SEND_BUF;
	s.iov = ZCSEND_FIXED_RANGE(0, 0);
	s.iovcnt = 4096;
	EXPECT_EQ(-1, ioctl(self->zfd, ZCSEND_IOC_SEND, &s));
	EXPECT_EQ(ENXIO, errno);
	s.flags = ZCSEND_SEND_FIXED;
	s.iov = (uintptr_t)&rg;
	s.iovcnt = 1;
	EXPECT_EQ(-1, ioctl(self->zfd, ZCSEND_IOC_SEND, &s));
	EXPECT_EQ(ENXIO, errno);
	/* FIXED_SOCKETS */
	EXPECT_EQ(-1, ioctl(self->zfd, ZCSEND_IOC_UNREGISTER_SOCKETS));
	EXPECT_EQ(ENXIO, errno);
	/* FANOUT, and a batch of fan-outs; FANOUT_STABLE */
	EXPECT_EQ(-1, ioctl(self->zfd, ZCSEND_IOC_FANOUT, &fo));
	EXPECT_EQ(EBADF, errno);
	EXPECT_EQ(-1, ioctl(self->zfd, ZCSEND_IOC_SUBMIT, &subfo));
	EXPECT_EQ(EBADF, errno);
	fo.flags = ZCSEND_FANOUT_STABLE;
	EXPECT_EQ(-1, ioctl(self->zfd, ZCSEND_IOC_FANOUT, &fo));
	EXPECT_EQ(EBADF, errno);
	/* RING_MMAP */
	hdr = mmap(NULL, getpagesize(), PROT_READ | PROT_WRITE, MAP_SHARED,
		   self->zfd, ZCSEND_RING_OFF_HDR);
	EXPECT_NE(MAP_FAILED, hdr);
	if (hdr != MAP_FAILED)
		munmap(hdr, getpagesize());
}

/* Every ioctl copies through a user pointer: a bad one is EFAULT. */
TEST_F(dev, bad_pointers)
{
	void *bad = (void *)8;
	void *kern = (void *)0xffffffff81000000UL;

	EXPECT_EQ(-1, ioctl(self->zfd, ZCSEND_IOC_VERSION, bad));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->zfd, ZCSEND_IOC_STATS, bad));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->zfd, ZCSEND_IOC_STATS, kern));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->zfd, ZCSEND_IOC_SEND, bad));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->zfd, ZCSEND_IOC_SEND, kern));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->zfd, ZCSEND_IOC_SET_EVENTFD, bad));
	EXPECT_EQ(EFAULT, errno);
}

TEST_F(dev, unknown_ioctl)
{
	static const unsigned long cmds[] = {
		_IO(ZCSEND_IOC_MAGIC, 0x7f),
		_IO(ZCSEND_IOC_MAGIC, 0x04),
		/* Known numbers with the wrong direction or size. */
		_IOW(ZCSEND_IOC_MAGIC, 0x00, __u32),
		_IOR(ZCSEND_IOC_MAGIC, 0x00, __u64),
		_IOR(ZCSEND_IOC_MAGIC, 0x01, struct zcsend_send),
		_IOW(ZCSEND_IOC_MAGIC, 0x01, struct zcsend_stats),
		_IOR(ZCSEND_IOC_MAGIC, 0x03, struct zcsend_send),
		_IO(ZCSEND_IOC_MAGIC, 0x00),
		/* Another driver's magic. */
		_IOR('T', 0x01, int),
		0,
	};
	uint64_t arg[16] = { 0 };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(cmds); i++) {
		EXPECT_EQ(-1, ioctl(self->zfd, cmds[i], arg))
			TH_LOG("ioctl %#lx succeeded", cmds[i]);
		EXPECT_EQ(ENOTTY, errno)
			TH_LOG("ioctl %#lx: %s", cmds[i], strerror(errno));
	}
}

TEST_F(dev, stats_fresh)
{
	struct zcsend_stats st;
	uint64_t thr;

	ASSERT_EQ(0, zc_stats(self->zfd, &st));
	EXPECT_EQ(0, st.sends);
	EXPECT_EQ(0, st.inflight);
	EXPECT_EQ(0, st.pinned_pages);
	EXPECT_EQ(0, st.zerocopy);
	EXPECT_EQ(0, st.copied);
	EXPECT_EQ(0, st.queued);
	/* The module parameter, where sysfs shows it. */
	if (!zc_param_u64("copy_threshold", &thr)) {
		EXPECT_EQ(thr, st.copy_threshold);
	} else {
		TH_LOG("no %s/copy_threshold; stats say %llu", ZC_PARAMS_DIR,
		       (unsigned long long)st.copy_threshold);
	}
}

TEST_F(dev, open_many)
{
	int fds[32], i;
	uint32_t ver;

	for (i = 0; i < 32; i++) {
		fds[i] = zc_open();
		ASSERT_LE(0, fds[i]) TH_LOG("open #%d: %s", i, strerror(errno));
	}
	for (i = 0; i < 32; i++) {
		EXPECT_EQ(0, zc_version(fds[i], &ver));
		EXPECT_EQ(ZCSEND_ABI_VERSION, ver);
	}
	/* Close in another order than opened. */
	for (i = 0; i < 32; i += 2)
		EXPECT_EQ(0, close(fds[i]));
	for (i = 1; i < 32; i += 2)
		EXPECT_EQ(0, close(fds[i]));
	/* The first file is unaffected. */
	EXPECT_EQ(0, zc_version(self->zfd, &ver));
}

/* A child shares the open file: ioctls work through the inherited fd. */
TEST_F(dev, fork_inherits)
{
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct zcsend_stats st;
		uint32_t ver;

		if (zc_version(self->zfd, &ver) || ver != ZCSEND_ABI_VERSION)
			_exit(1);
		if (zc_stats(self->zfd, &st) || st.sends)
			_exit(2);
		close(self->zfd);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST_F(dev, read_empty_nonblock)
{
	struct zcsend_completion c[4];

	EXPECT_EQ(-1, read(self->zfd, c, sizeof(c)));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_EQ(-1, read(self->zfd, c, sizeof(c[0])));
	EXPECT_EQ(EAGAIN, errno);
}

static void zc_on_alarm(int sig)
{
}

/* A blocking read with nothing to come sleeps interruptibly. */
TEST_F(dev, read_blocking_eintr)
{
	struct sigaction sa = { .sa_handler = zc_on_alarm };
	struct itimerval it = { .it_value = { 0, 300000 } };
	struct zcsend_completion c;
	int64_t start, took;
	ssize_t ret;
	int fd;

	fd = open(ZCSEND_DEVICE, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	/* No SA_RESTART: the read must end with EINTR. */
	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	ASSERT_EQ(0, setitimer(ITIMER_REAL, &it, NULL));
	start = zc_now_ms();
	ret = read(fd, &c, sizeof(c));
	took = zc_now_ms() - start;
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EINTR, errno);
	EXPECT_LE(250, took) TH_LOG("read returned after %" PRId64 " ms", took);
	close(fd);
}

TEST_F(dev, eventfd_register)
{
	int efd, p[2], closed;

	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_LE(0, efd);
	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	closed = dup(efd);
	ASSERT_LE(0, closed);
	close(closed);

	/* Unregistering when nothing is registered is fine. */
	EXPECT_EQ(0, zc_set_eventfd(self->zfd, -1));
	EXPECT_EQ(-EBADF, zc_set_eventfd(self->zfd, closed));
	EXPECT_EQ(-EINVAL, zc_set_eventfd(self->zfd, p[0]));
	EXPECT_EQ(-EINVAL, zc_set_eventfd(self->zfd, self->zfd));
	EXPECT_EQ(0, zc_set_eventfd(self->zfd, efd));
	/* Replacing and unregistering. */
	EXPECT_EQ(0, zc_set_eventfd(self->zfd, efd));
	EXPECT_EQ(0, zc_set_eventfd(self->zfd, -1));
	/* The registration holds its own reference to the eventfd. */
	EXPECT_EQ(0, zc_set_eventfd(self->zfd, efd));
	close(efd);
	close(p[0]);
	close(p[1]);
}

/* While a /dev/zcsend file is open the module must not go away. */
TEST_F(dev, unload_busy)
{
	char params[1024];
	uint32_t ver;
	int ret;

	if (geteuid())
		SKIP(return, "needs root for delete_module");
	ASSERT_EQ(0, zc_module_params(params, sizeof(params)));
	ret = zc_module_unload();
	if (ret == -EPERM)
		SKIP(return, "delete_module: EPERM (no CAP_SYS_MODULE)");
	EXPECT_TRUE(ret == -EAGAIN || ret == -EBUSY)
		TH_LOG("delete_module with an open file: %d (%s)", ret,
		       ret ? strerror(-ret) : "unloaded");
	if (!ret) {
		/* It went away under an open file: put it back for the rest. */
		zc_module_load(params);
		return;
	}
	EXPECT_TRUE(zc_module_loaded());
	EXPECT_EQ(0, zc_version(self->zfd, &ver));
	EXPECT_EQ(ZCSEND_ABI_VERSION, ver);
}

/* Runs last: unloads and reloads the module. */
FIXTURE(reload) {
	char params[1024];
	int64_t pins;
};

FIXTURE_SETUP(reload)
{
	if (geteuid())
		SKIP(return, "needs root for delete_module/finit_module");
	if (access(zc_ko_path(), R_OK))
		SKIP(return, "%s: %s (set ZCSEND_KO)", zc_ko_path(),
		     strerror(errno));
	ASSERT_TRUE(zc_module_loaded()) TH_LOG("zcsend is not loaded");
	ASSERT_EQ(0, zc_module_params(self->params, sizeof(self->params)));
	self->pins = zc_pins_outstanding();
}

FIXTURE_TEARDOWN(reload)
{
	/* Leave the module loaded for whatever runs next. */
	if (!zc_module_loaded()) {
		EXPECT_EQ(0, zc_module_load(self->params));
		zc_wait_dev(true, 5000);
	}
	ZC_EXPECT_PINS_BACK(self->pins);
}

static void zc_reload_once(struct __test_metadata *_metadata,
			   const char *params)
{
	char after[1024];
	struct zcsend_stats st;
	uint32_t ver;
	int ret, zfd;

	ret = zc_module_unload_wait(5000);
	if (ret == -EPERM)
		SKIP(return, "delete_module: EPERM (no CAP_SYS_MODULE)");
	ASSERT_EQ(0, ret) TH_LOG("delete_module: %s", strerror(-ret));
	EXPECT_FALSE(zc_module_loaded());
	EXPECT_TRUE(zc_wait_dev(false, 5000))
		TH_LOG("%s still exists after unload", ZCSEND_DEVICE);

	ret = zc_module_load(params);
	ASSERT_EQ(0, ret) TH_LOG("finit_module(%s, \"%s\"): %s", zc_ko_path(),
				 params, strerror(-ret));
	ASSERT_TRUE(zc_wait_dev(true, 5000))
		TH_LOG("%s did not come back", ZCSEND_DEVICE);

	zfd = zc_open();
	ASSERT_LE(0, zfd) TH_LOG("open after reload: %s", strerror(errno));
	EXPECT_EQ(0, zc_version(zfd, &ver));
	EXPECT_EQ(ZCSEND_ABI_VERSION, ver);
	EXPECT_EQ(0, zc_stats(zfd, &st));
	EXPECT_EQ(0, st.sends);
	close(zfd);

	EXPECT_EQ(0, zc_module_params(after, sizeof(after)));
	EXPECT_STREQ(params, after);
}

TEST_F(reload, cycle)
{
	int i;

	TH_LOG("parameters: \"%s\"", self->params);
	for (i = 0; i < 3 && !_metadata->exit_code; i++)
		zc_reload_once(_metadata, self->params);
}

/* An unread completion must not keep the module loaded once closed. */
TEST_F(reload, unread_completion)
{
	struct zcsend_stats st;
	struct zc_pair p;
	int64_t end;
	uint8_t *buf;
	int zfd, ret;

	buf = zc_map_pattern(65536, 1);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, zc_loopback_pair(&p, AF_INET, SOCK_DGRAM, 1 << 20, 0));
	zfd = zc_open();
	ASSERT_LE(0, zfd);
	ret = zc_send(zfd, p.tx, buf, 60000, 0, &p.dst, p.dstlen, 1);
	ASSERT_EQ(60000, ret) TH_LOG("send: %s", strerror(-ret));
	end = zc_now_ms() + ZC_WAIT_MS;
	do {
		ASSERT_EQ(0, zc_stats(zfd, &st));
		if (st.queued)
			break;
		zc_msleep(10);
	} while (zc_now_ms() < end);
	EXPECT_EQ(1, st.queued);
	close(zfd);
	zc_pair_close(&p);
	munmap(buf, 65536);

	zc_reload_once(_metadata, self->params);
}

/*
 * local_copy=1 (the default; the suite runs with local_copy=0): a connected
 * socket routed out loopback takes the copy path at once, nothing pinned,
 * the record at once with COPY_PATH; a socket whose route is not local
 * (UDP forwarded out dummy0) still sends zero-copy.
 */
TEST_F(reload, local_copy_up_front)
{
	struct zcsend_completion c;
	char params[1100];
	uint64_t acq0, rel0, acq1, rel1;
	struct sockaddr_storage dst;
	struct zcsend_stats st;
	struct zc_pair p;
	const char *why;
	socklen_t dstlen;
	uint8_t *buf;
	int zfd, ret, fd, type;

	/* Every other parameter as it was (7.2's Rust parameters refuse to be
	 * set twice in one load). */
	{
		char copy[1024], *tok, *save;
		size_t used = 0;

		snprintf(copy, sizeof(copy), "%s", self->params);
		for (tok = strtok_r(copy, " ", &save); tok;
		     tok = strtok_r(NULL, " ", &save))
			if (strncmp(tok, "local_copy=", 11))
				used += snprintf(params + used, sizeof(params) - used,
						 "%s ", tok);
		snprintf(params + used, sizeof(params) - used, "local_copy=1");
	}
	ret = zc_module_unload_wait(5000);
	ASSERT_EQ(0, ret) TH_LOG("delete_module: %s", strerror(-ret));
	ASSERT_TRUE(zc_wait_dev(false, 5000));
	ret = zc_module_load(params);
	ASSERT_EQ(0, ret) TH_LOG("finit_module(\"%s\"): %s", params, strerror(-ret));
	ASSERT_TRUE(zc_wait_dev(true, 5000));

	buf = zc_map_pattern(1 << 20, 7);
	ASSERT_NE(NULL, buf);
	zfd = zc_open();
	ASSERT_LE(0, zfd);
	for (type = SOCK_STREAM; type <= SOCK_DGRAM; type++) {
		size_t len = type == SOCK_STREAM ? 256 * 1024 : 60000;

		ASSERT_EQ(0, zc_loopback_pair(&p, AF_INET, type, 4 << 20, 4 << 20));
		if (type == SOCK_DGRAM)	/* connected: a cached route */
			ASSERT_EQ(0, connect(p.tx, (void *)&p.dst, p.dstlen));
		ASSERT_EQ(0, zc_pins(&acq0, &rel0));
		ret = zc_send(zfd, p.tx, buf, len, 0, NULL, 0, 40 + type);
		ASSERT_EQ((int)len, ret) TH_LOG("send: %s", strerror(-ret));
		ASSERT_EQ(0, zc_pins(&acq1, &rel1));
		EXPECT_EQ(acq0, acq1) TH_LOG("type %d: %llu pages pinned for a local send",
					     type, (unsigned long long)(acq1 - acq0));
		/* The record is there at once: no skb held anything. */
		ASSERT_EQ(0, zc_stats(zfd, &st));
		EXPECT_EQ(1, st.queued);
		EXPECT_EQ(0, st.inflight);
		ASSERT_EQ(1, zc_read_compl(zfd, &c, 1));
		EXPECT_EQ((uint64_t)(40 + type), c.user_data);
		EXPECT_EQ(len, c.bytes);
		EXPECT_EQ(ZCSEND_COMPL_COPIED | ZCSEND_COMPL_COPY_PATH, c.flags);
		zc_pair_close(&p);
	}

	/* Not local: forwarded out dummy0, still zero-copy. */
	ret = zc_netns_dummy(65535, false, &why);
	if (!ret) {
		dstlen = zc_addr(AF_INET, ZC_DUMMY_PEER4, 9, &dst);
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, connect(fd, (void *)&dst, dstlen));
		ret = zc_send(zfd, fd, buf, 60000, 0, NULL, 0, 99);
		ASSERT_EQ(60000, ret) TH_LOG("send: %s", strerror(-ret));
		ASSERT_EQ(1, zc_collect(zfd, &c, 1, ZC_WAIT_MS));
		EXPECT_EQ(ZCSEND_COMPL_ZEROCOPY, c.flags);
		close(fd);
	} else {
		TH_LOG("%s: %s: dummy0 part not run", why, strerror(-ret));
	}
	close(zfd);
	munmap(buf, 1 << 20);

	/* Back to the suite's parameters. */
	zc_reload_once(_metadata, self->params);
}

TEST_HARNESS_MAIN
