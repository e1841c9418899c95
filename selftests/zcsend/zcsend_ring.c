// SPDX-License-Identifier: GPL-2.0
/*
 * The mmap'ed completion ring: records read without a system call through
 * tools/include/zcsend_ring.h, read(2) on the same ring, back-pressure when
 * full, a consumer that lies about its head, and mmap misuse (wrong size or
 * offset, writable or executable slots, mprotect, mremap, fork, munmap then
 * read, close with the ring still mapped).
 */
#include "zcsend_helpers.h"
#include "zcsend_ring.h"

#define PAGE		4096

FIXTURE(ring) {
	int zfd;
	struct zc_pair p;
	int64_t pins;
};

FIXTURE_SETUP(ring)
{
	self->pins = zc_pins_outstanding();
	self->zfd = zc_open();
	ASSERT_LE(0, self->zfd);
	ASSERT_EQ(0, zc_loopback_pair(&self->p, AF_INET, SOCK_DGRAM, 0, 0));
}

FIXTURE_TEARDOWN(ring)
{
	zc_pair_close(&self->p);
	if (self->zfd >= 0)
		close(self->zfd);
	ZC_EXPECT_PINS_BACK(self->pins);
}

/* @n one-byte UDP sends (copy path: each completes at once). */
static void post(struct __test_metadata *_metadata, FIXTURE_DATA(ring) *self,
		 int n, uint64_t ud)
{
	uint8_t sink[2048];
	int i;

	for (i = 0; i < n; i++) {
		ASSERT_EQ(1, zc_send(self->zfd, self->p.tx, "x", 1, 0,
				     &self->p.dst, self->p.dstlen, ud + i));
		if (i % 64 == 63)
			while (recv(self->p.rx, sink, sizeof(sink), MSG_DONTWAIT) > 0)
				;
	}
}

TEST_F(ring, records_without_syscalls_then_read)
{
	struct zcsend_completion c[64];
	struct zcsend_stats st;
	struct zcsend_ring r = { 0 };
	unsigned int n, i;

	ASSERT_EQ(0, zcsend_ring_map(self->zfd, &r));
	EXPECT_EQ(ZCSEND_MAX_COMPLETIONS, r.hdr->entries);
	EXPECT_EQ(ZCSEND_MAX_COMPLETIONS - 1, r.mask);
	EXPECT_EQ(0, zcsend_ring_peek(&r, c, 64));
	post(_metadata, self, 40, 100);
	n = zcsend_ring_peek(&r, c, 64);
	ASSERT_EQ(40, n);
	for (i = 0; i < n; i++) {
		EXPECT_EQ(100 + i, c[i].user_data);
		EXPECT_EQ(ZCSEND_COMPL_COPIED | ZCSEND_COMPL_COPY_PATH, c[i].flags);
	}
	/* Peeked, not consumed: read() still sees them. Consume 30 here. */
	zcsend_ring_advance(&r, 30);
	ASSERT_EQ(0, zc_stats(self->zfd, &st));
	EXPECT_EQ(10, st.queued);
	EXPECT_EQ(10, zc_read_compl(self->zfd, c, 64));
	EXPECT_EQ(130, c[0].user_data);
	EXPECT_EQ(r.hdr->head, 40);
	EXPECT_EQ(0, zcsend_ring_peek(&r, c, 64));
	/* Around the ring twice, through the mapping only. */
	for (i = 0; i < 2 * ZCSEND_MAX_COMPLETIONS / 64; i++) {
		post(_metadata, self, 64, 1000 + 64 * i);
		n = zcsend_ring_peek(&r, c, 64);
		ASSERT_EQ(64, n);
		ASSERT_EQ(1000 + 64 * i, c[0].user_data);
		ASSERT_EQ(1000 + 64 * i + 63, c[63].user_data);
		zcsend_ring_advance(&r, n);
	}
	EXPECT_EQ(0, zc_read_compl(self->zfd, c, 1));
	zcsend_ring_unmap(&r);
}

/*
 * A full ring refuses sends with EBUSY; consuming through the mapping
 * makes room. A consumer that writes nonsense into head only hurts itself.
 */
TEST_F(ring, backpressure_and_lying_head)
{
	struct zcsend_completion c[64];
	struct zcsend_ring r = { 0 };
	uint64_t head;

	ASSERT_EQ(0, zcsend_ring_map(self->zfd, &r));
	post(_metadata, self, ZCSEND_MAX_COMPLETIONS, 0);
	EXPECT_EQ(-EBUSY, zc_send(self->zfd, self->p.tx, "x", 1, 0,
				  &self->p.dst, self->p.dstlen, 9));
	EXPECT_EQ(1, zcsend_ring_peek(&r, c, 1));
	zcsend_ring_advance(&r, 1);
	post(_metadata, self, 1, ZCSEND_MAX_COMPLETIONS);
	head = r.hdr->head;
	r.hdr->head = head + (1ULL << 40);
	EXPECT_EQ(-EBUSY, zc_send(self->zfd, self->p.tx, "x", 1, 0,
				  &self->p.dst, self->p.dstlen, 9));
	EXPECT_EQ(0, zc_read_compl(self->zfd, c, 64));
	r.hdr->head = head - 5;
	EXPECT_EQ(-EBUSY, zc_send(self->zfd, self->p.tx, "x", 1, 0,
				  &self->p.dst, self->p.dstlen, 9));
	/*
	 * Positions at the very end of the range: the kernel's position
	 * arithmetic wraps (it once overflowed there: a Rust overflow check,
	 * an oops, and the reader lock held for ever).
	 */
	r.hdr->head = UINT64_MAX;
	EXPECT_EQ(0, zc_read_compl(self->zfd, c, 64));
	r.hdr->head = UINT64_MAX - 1;
	EXPECT_EQ(0, zc_read_compl(self->zfd, c, 64));
	r.hdr->head = head;
	EXPECT_EQ(64, zc_read_compl(self->zfd, c, 64));
	EXPECT_EQ(1, c[0].user_data);
	post(_metadata, self, 1, 7);
	zcsend_ring_unmap(&r);
}

TEST_F(ring, mmap_misuse)
{
	size_t slen = ZCSEND_MAX_COMPLETIONS * sizeof(struct zcsend_ring_slot);
	struct zcsend_completion c;
	struct zcsend_ring r = { 0 };
	void *m;
	int status;
	pid_t pid;

	/* Wrong sizes and offsets. */
	m = mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, self->zfd, 0);
	EXPECT_EQ(MAP_FAILED, m);
	EXPECT_EQ(EINVAL, errno);
	m = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, self->zfd, PAGE);
	EXPECT_EQ(MAP_FAILED, m);
	m = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, self->zfd,
		 ZCSEND_RING_OFF_SLOTS);
	EXPECT_EQ(MAP_FAILED, m);
	/* The slots are the kernel's: no write, no exec, not now, not later. */
	m = mmap(NULL, slen, PROT_READ | PROT_WRITE, MAP_SHARED, self->zfd,
		 ZCSEND_RING_OFF_SLOTS);
	EXPECT_EQ(MAP_FAILED, m);
	EXPECT_EQ(EACCES, errno);
	m = mmap(NULL, PAGE, PROT_READ | PROT_EXEC, MAP_SHARED, self->zfd, 0);
	EXPECT_EQ(MAP_FAILED, m);
	m = mmap(NULL, slen, PROT_READ, MAP_SHARED, self->zfd,
		 ZCSEND_RING_OFF_SLOTS);
	ASSERT_NE(MAP_FAILED, m);
	EXPECT_EQ(-1, mprotect(m, slen, PROT_READ | PROT_WRITE));
	EXPECT_EQ(MAP_FAILED, mremap(m, slen, 2 * slen, MREMAP_MAYMOVE));
	munmap(m, slen);

	/* fork with the ring mapped: both see the same ring. */
	ASSERT_EQ(0, zcsend_ring_map(self->zfd, &r));
	post(_metadata, self, 3, 50);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(zcsend_ring_peek(&r, &c, 1) == 1 && c.user_data == 50 ? 0 : 1);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* munmap, then read() the same records. */
	zcsend_ring_unmap(&r);
	EXPECT_EQ(1, zc_read_compl(self->zfd, &c, 1));
	EXPECT_EQ(50, c.user_data);
	/* close the file with the ring mapped: the mapping stays readable. */
	ASSERT_EQ(0, zcsend_ring_map(self->zfd, &r));
	close(self->zfd);
	self->zfd = -1;
	{
		struct zcsend_completion two[2];

		EXPECT_EQ(2, zcsend_ring_peek(&r, two, 2));
	}
	zcsend_ring_unmap(&r);
}

TEST_HARNESS_MAIN
