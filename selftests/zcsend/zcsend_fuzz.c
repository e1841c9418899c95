// SPDX-License-Identifier: GPL-2.0
/*
 * zcsend fuzzer: a seeded, structured random sequence of calls on
 * /dev/zcsend. Every ioctl with every struct zcsend_send field good and bad;
 * fan-outs to random sets of the sockets (the same socket twice, bad fds,
 * arrays that cannot be read or written back, ranges of registered
 * buffers, STABLE copies); registered sockets (good, bad, twice) and
 * sends and fan-outs naming them by index, or past them; unknown ioctl
 * numbers and sizes;
 * read(2)/readv(2) into good, short and bad buffers; mmap, write and poll
 * on the device; extra files opened and closed; forked children; buffers
 * remapped, reprotected, zapped and truncated while sends may be in
 * flight. Over loopback TCP (draining and stalled pairs) and UDP
 * (IPv4/IPv6, connected or not). Nothing blocks for long: the files are
 * O_NONBLOCK, sends to stalled sockets carry MSG_DONTWAIT and SO_SNDTIMEO
 * bounds the rest.
 *
 * Any errno is fine from one call (histograms are printed as comments).
 * Asserted: each send accepted on a file still open completes exactly once,
 * with its user_data, byte count and valid flags; a fan-out accepted posts
 * exactly one record, flagged FANOUT (and STABLE when asked), whose bytes
 * are the sum of the results it wrote back; a failed send or fan-out posts
 * nothing; children exit normally; the open files end idle. Then, as tests
 * of their own: the pin balance of /proc/vmstat returns to its value before
 * the run, a fresh file is idle, a known good send arrives and completes.
 *
 * Environment: ZCSEND_FUZZ_SEED (default from the clock; printed first),
 * ZCSEND_FUZZ_CALLS (default 100000), ZCSEND_FUZZ_SECONDS (wall-clock cap of
 * the call loop, default 240). The call loop is single threaded: a seed
 * replays the same call sequence.
 */
#include <grp.h>
#include <linux/netlink.h>
#include <stdarg.h>
#include <netinet/udp.h>
#include <sys/resource.h>

#include "zcsend_helpers.h"

#define SLOT_LEN	(64 << 10)
#define NSLOT		8
#define NPAIR		8	/* TCP: 0-1 draining, 2-3 stalled; UDP: 4-7 */
#define STALLED(i)	((i) == 2 || (i) == 3)
#define NFILE		4	/* file 0 stays open, the others come and go */
#define NMISC		16
#define PG		4096
#define IOV_N		1280
#define IOV_LEN		(IOV_N * sizeof(struct iovec))
#define OUT_LEN		(2 * PG)
#define REC		sizeof(struct zcsend_completion)
#define UD_MUL		0x9e3779b97f4a7c15ULL
#define UD_TAG		0x5a17c0de00000000ULL
#define ALLOWED		(MSG_DONTWAIT | MSG_MORE | MSG_NOSIGNAL | MSG_EOR | \
			 MSG_CONFIRM | MSG_DONTROUTE)
#define MAXERR		160
#define CHILD_OPS	8
#define GOOD_SEED	0x5eed0005ULL
#define DST_LEN		(ZCSEND_MAX_FANOUT * sizeof(struct zcsend_dest))
#define NCELL		64	/* addresses of fan-out destinations */
#define CELL		136	/* sizeof(struct sockaddr_storage) + 8 */
#define CELLS_LEN	(3 * PG)
#define NREG		4	/* op_register registers 1 to NREG buffers */

enum {
	H_VERSION, H_SEND, H_EVENTFD, H_STATS, H_UNKNOWN, H_READ, H_WRITE,
	H_MMAP, H_SUBMIT, H_REGISTER, H_FANOUT, H_NR
};
static const char *const hname[H_NR] = {
	"VERSION", "SEND", "SET_EVENTFD", "STATS", "unknown-ioctl", "read",
	"write", "mmap", "SUBMIT", "(UN)REGISTER", "FANOUT",
};

_Static_assert(sizeof(struct sockaddr_storage) + 7 <= CELL &&
	       NCELL * CELL <= CELLS_LEN, "fan-out address cells");

/* A send whose accepted byte count the submitter does not learn (SUBMIT). */
#define BYTES_UNKNOWN	UINT32_MAX

enum { S_FAILED = 1, S_PENDING, S_DONE };
enum { M_ANON, M_ANON_RO, M_SHM, M_SHM_RO, M_SHM_PRIV, M_NONE, M_NR };

/*
 * A send, indexed by the counter its user_data encodes; xfl: the flags its
 * record must carry besides ZEROCOPY/COPIED/COPY_PATH (FANOUT, STABLE).
 */
struct sendrec {
	uint32_t bytes, fid;
	uint8_t st, xfl;
};

static struct {
	uint64_t rng;
	bool child, v6, clean;	/* clean: this send is meant to succeed */
	bool rdok[NSLOT];	/* the slot has no PROT_NONE page */
	int zfd[NFILE];
	uint32_t fid[NFILE], next_fid;
	uint64_t ok[NFILE], pend[NFILE];
	uint64_t reg[NFILE][NREG];	/* lengths of the buffers registered */
	int nreg[NFILE];		/* ... on each file, as far as known */
	struct zc_pair pr[NPAIR];
	int misc[NMISC], nmisc, efd[2], memfd;
	int inet[NMISC], ninet;		/* the TCP/UDP sockets of misc[] */
	uint8_t *arena, *slot[NSLOT], *iova, *out, *addra, *ro, *dsta, *cells;
	struct sendrec *s;
	uint64_t ns, cap, ud_inv;
	uint64_t hist[H_NR][MAXERR];
	uint64_t accepted, bytes, nzc, ncp, npath, mmap_ok, children;
	uint64_t nfan, fan_ok, fan_err;
	uint64_t stray, dup, badrec, badver, child_bad;
	char msg[8][200];
	int nmsg;
} fz;

/* The pin balance before any test of this program ran. */
static int64_t pins_before = INT64_MIN;

static void __attribute__((constructor)) fuzz_pins_before(void)
{
	pins_before = zc_pins_outstanding();
}

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *s = getenv(name);
	char *end;
	uint64_t v;

	if (!s || !*s)
		return def;
	errno = 0;
	v = strtoull(s, &end, 0);
	return errno || *end ? def : v;
}

static int fuzz_seconds(void)
{
	return env_u64("ZCSEND_FUZZ_SECONDS", 240) % 100000;
}

/* splitmix64 */
static uint64_t rnd(void)
{
	uint64_t z = (fz.rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rn(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static void hist(int h, long ret)
{
	int e = ret >= 0 ? 0 : errno;

	fz.hist[h][e >= 0 && e < MAXERR ? e : MAXERR - 1]++;
}

static void violation(uint64_t *ctr, const char *fmt, ...)
{
	va_list ap;

	(*ctr)++;
	if (fz.nmsg >= 8)
		return;
	va_start(ap, fmt);
	vsnprintf(fz.msg[fz.nmsg++], sizeof(fz.msg[0]), fmt, ap);
	va_end(ap);
}

/* user_data is a bijection of the send counter: unique, all bits vary. */
static uint64_t ud_of(uint64_t i)
{
	return (i * UD_MUL) ^ UD_TAG;
}

static bool in_out(const void *p, size_t n)
{
	return (const uint8_t *)p >= fz.out &&
	       (const uint8_t *)p + n <= fz.out + OUT_LEN;
}

/* A pointer every access through must fault on. */
static uint64_t bad_ptr(void)
{
	switch (rn(6)) {
	case 0: return 0;
	case 1: return 0xffffffff81000000ULL;
	case 2: return 0xffff888000000000ULL + (rn(1 << 20) << 12);
	case 3: return 0x10000 + rn(PG);			/* unmapped */
	case 4: return (uintptr_t)fz.out + OUT_LEN + rn(PG);	/* guard */
	default: return rnd() | 1ULL << 63;
	}
}

/* Where the kernel may write @len bytes: mostly fz.out, else it faults. */
static void *wptr(size_t len)
{
	int r = rn(20);

	len = len < OUT_LEN - 8 ? len : OUT_LEN - 8;
	if (r == 0)
		return fz.ro;
	if (r == 1)	/* straddles the guard page */
		return fz.out + OUT_LEN - 1 - rn(len > 1 ? len - 1 : 1);
	if (r < 5)
		return (void *)(uintptr_t)bad_ptr();
	return fz.out + (r == 5 ? 1 + rn(7) : 0);
}

static int pick_slot(void)
{
	return rn(4) ? 0 : rn(NFILE);
}

/* A socket of pair *pi, an fd of another kind, or no fd at all. */
static int pick_fd(int *pi)
{
	int r = rn(100), fd;

	*pi = -1;
	if (fz.clean || r < 72) {
		*pi = rn(NPAIR);
		return r < 64 || (fz.clean && r >= 70) ? fz.pr[*pi].tx :
		       fz.pr[*pi].rx;
	}
	if (r < 88 && fz.nmisc)
		return fz.misc[rn(fz.nmisc)];
	switch (r % 6) {
	case 0: return -1;
	case 1: return INT_MAX;
	case 2:		/* just closed */
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		close(fd);
		return fd;
	case 3: return fz.zfd[rn(NFILE)];
	case 4: return fz.efd[rn(2)];
	default: return rnd();
	}
}

static uint32_t pick_flags(bool stall)
{
	int r = fz.clean ? 2 : rn(16);
	uint32_t f = r == 0 ? rnd() : r == 1 ? 1U << rn(32) :
		     (rnd() & ALLOWED & ~MSG_MORE) | (rn(8) ? 0 : MSG_MORE);

	/* A blocking send to a stalled socket waits out SO_SNDTIMEO: rarely. */
	return stall && rn(50) ? f | MSG_DONTWAIT : f;
}

/* One iovec; *budget bounds the bytes of one send. */
static void pick_seg(struct iovec *e, size_t *budget)
{
	static const uint64_t huge[8] = {
		SIZE_MAX, SIZE_MAX - 4095, SIZE_MAX / 2 + 1, (size_t)INT_MAX + 1,
		ZC_MAX_RW_COUNT, 1ULL << 63, 1ULL << 32, 1 << 30,
	};
	size_t off = rn(SLOT_LEN), room, len;
	int r = fz.clean ? 100 : rn(100), i = rn(NSLOT), k;

	for (k = 0; fz.clean && k < NSLOT && !fz.rdok[i]; k++)
		i = (i + 1) % NSLOT;
	if (r < 7) {
		e->iov_base = r < 3 ? (void *)(uintptr_t)bad_ptr() :
			      r < 5 ? fz.ro + rn(PG) : fz.slot[i];
		e->iov_len = r < 5 && rn(2) ? rn(PG) :
			     rn(3) ? huge[rn(8)] : rnd() >> rn(64);
		return;
	}
	if (!rn(3))
		off &= ~(size_t)(PG - 1);
	room = SLOT_LEN - off;
	r = rn(100);
	if (r < 10)
		len = 0;
	else if (r < 14 && *budget >= room)
		len = room;			/* to the end of the slot */
	else if (r < 17 && !fz.clean)
		len = room + 1 + rn(2 * PG);	/* into its guard page */
	else
		len = *budget ? 1 + rn(*budget < room ? *budget : room) : 0;
	e->iov_base = fz.slot[i] + off;
	e->iov_len = len;
	*budget -= len < *budget ? len : *budget;
}

/* An iovec array (or a bad pointer); *cnt is what the send claims. */
static uint64_t pick_iov(uint32_t *cnt)
{
	int r = fz.clean ? 3 + rn(90) : rn(100);
	uint8_t *p = fz.iova;
	size_t budget, n, i;
	struct iovec e;

	*cnt = r < 3 ? 0 : r < 60 ? 1 + rn(4) : r < 85 ? 5 + rn(28) :
	       r < 93 ? 33 + rn(992) : r < 96 ? 1024 + rn(2) :
	       r < 98 ? (rn(2) ? UINT32_MAX : 1U << 31) : rnd();
	n = *cnt < IOV_N - 1 ? *cnt : IOV_N - 1;
	r = fz.clean ? 4 : rn(40);
	if (r == 0)
		return bad_ptr();
	if (r == 1)
		return (uintptr_t)fz.ro;	/* zeroes: empty iovecs */
	if (r == 2 && n)	/* the last iovec straddles the guard page */
		p = fz.iova + IOV_LEN - n * sizeof(e) + 8;
	else if (r == 3)
		p = fz.iova + 1 + rn(7);
	budget = rn(40) ? 1 + rn(64 << 10) : 1 + rn(1 << 20);
	for (i = 0; i < n; i++) {
		pick_seg(&e, &budget);
		memcpy(p + i * sizeof(e), &e,
		       p + (i + 1) * sizeof(e) <= fz.iova + IOV_LEN ? sizeof(e) : 8);
	}
	return (uintptr_t)p;
}

/*
 * A destination address, none, or a bad one; @pi: the pair sent on. It is
 * written to @cell (CELL bytes; fz.addra for single sends) or to the end of
 * fz.addra (straddling its guard page).
 */
static uint64_t pick_addr(uint32_t *lenp, int pi, uint8_t *cell)
{
	static const uint32_t lens[8] = { 1, 4, 15, 27, 128, 129, 4096,
					  UINT32_MAX };
	struct sockaddr_storage ss;
	bool udp = pi >= 4;
	int r = rn(100), len;
	uint8_t *p;

	if (fz.clean)
		r = udp && rn(8) ? 10 : 0;
	if (!udp || r >= 60)
		pi = 4 + rn(4);		/* not its own receiver */
	if (r < (udp ? 10 : 40)) {
		*lenp = 0;
		return rn(10) ? 0 : rn(2) ? bad_ptr() : (uintptr_t)cell;
	}
	if (r < 75) {
		ss = fz.pr[pi].dst;
		len = fz.pr[pi].dstlen;
	} else if (r < 92) {	/* a random port: on :: / 0.0.0.0 or ::1 */
		len = zc_loopback_addr(r & 1 ? AF_INET6 : AF_INET, rn(65536),
				       &ss);
		if (r < 85)
			memset((char *)&ss + (len > 16 ? 8 : 4), 0,
			       len > 16 ? 16 : 4);
	} else {		/* neither IPv4 nor IPv6 */
		memset(&ss, (int)rnd(), sizeof(ss));
		do
			ss.ss_family = rn(4) ? rn(64) : AF_UNSPEC;
		while (ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
		len = 2 + rn(sizeof(ss) - 1);
	}
	*lenp = fz.clean || rn(8) ? (uint32_t)len :
		rn(3) ? lens[rn(8)] : (uint32_t)rnd();
	r = fz.clean ? 3 : rn(30);
	if (r == 0)
		return bad_ptr();
	if (r == 1) {		/* straddles the guard page */
		len = 1 + rn(len - 1);
		memcpy(fz.addra + PG - len, &ss, len);
		return (uintptr_t)fz.addra + PG - len;
	}
	p = cell + (r == 2 ? 1 + rn(7) : 0);
	memcpy(p, &ss, sizeof(ss));
	return (uintptr_t)p;
}

static void drain_fd(int fd, int max)
{
	static uint8_t sink[SLOT_LEN];

	while (fd >= 0 && max-- && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
		;
}

/* Checks @n bytes of completion records read from file @slot. */
static void got(int slot, const void *p, size_t n)
{
	struct zcsend_completion c[OUT_LEN / REC], *r;
	struct sendrec *s;
	uint32_t fl, one;
	uint64_t i;

	if (n % REC || n > sizeof(c))
		violation(&fz.badrec, "read returned %zu bytes", n);
	n = n > sizeof(c) ? sizeof(c) : n;
	memcpy(c, p, n);
	for (r = c; r < c + n / REC; r++) {
		i = (r->user_data ^ UD_TAG) * fz.ud_inv;
		s = i < fz.ns ? &fz.s[i] : NULL;
		fl = r->flags;
		one = fl & ZC_FLAGS_ONE_OF;
		if (s && s->st == S_DONE) {
			violation(&fz.dup, "second record for send #%" PRIu64, i);
			continue;
		}
		if (!s || s->st != S_PENDING || s->fid != fz.fid[slot]) {
			violation(&fz.stray, "record for %s send (user_data %#llx) on file %d",
				  !s ? "an unknown" : s->st == S_FAILED ?
				  "a failed" : "another file's",
				  (unsigned long long)r->user_data, slot);
			continue;
		}
		s->st = S_DONE;
		fz.pend[slot]--;
		if ((s->bytes != BYTES_UNKNOWN && r->bytes != s->bytes) ||
		    r->result || !one ||
		    one == ZC_FLAGS_ONE_OF ||
		    (fl & ~(ZC_FLAGS_ONE_OF | ZCSEND_COMPL_COPY_PATH | s->xfl)) ||
		    (fl & s->xfl) != s->xfl ||
		    (fl & ZCSEND_COMPL_COPY_PATH && fl & ZCSEND_COMPL_ZEROCOPY))
			violation(&fz.badrec, "send #%" PRIu64 ": bytes %llu (ioctl said %u), flags %#x, result %d",
				  i, (unsigned long long)r->bytes, s->bytes,
				  fl, r->result);
		fz.nzc += !!(fl & ZCSEND_COMPL_ZEROCOPY);
		fz.ncp += !!(fl & ZCSEND_COMPL_COPIED);
		fz.npath += !!(fl & ZCSEND_COMPL_COPY_PATH);
	}
}

/*
 * Sometimes (1 in 8) makes @s name one registered range of file @slot in
 * the request itself (ZCSEND_SEND_FIXED | ZCSEND_SEND_BUF): mostly inside a
 * buffer op_register saw accepted, else a bad index, offset or length.
 */
static void maybe_inline_range(struct zcsend_send *s, int slot)
{
	int nb = fz.nreg[slot], r = fz.clean ? 100 : rn(100);
	uint32_t bi = nb ? rn(nb) : rn(NREG);
	uint64_t blen = nb ? fz.reg[slot][bi] : 1 + rn(SLOT_LEN), off;

	if (rn(8))
		return;
	blen = blen ? blen : 1;
	off = rn(blen);
	s->flags |= ZCSEND_SEND_FIXED | ZCSEND_SEND_BUF;
	s->iovcnt = 1 + rn(blen - off < (64 << 10) ? blen - off : 64 << 10);
	if (r < 3)		/* another buffer, or none */
		bi = rn(2) ? bi + 1 : rnd();
	else if (r < 6)		/* at or past the end */
		off = rn(2) ? blen : rnd();
	else if (r < 9)		/* one past the end, empty, huge */
		s->iovcnt = r == 6 ? blen - off + 1 : r == 7 ? 0 : rnd();
	s->iov = r == 9 ? rnd() : ZCSEND_FIXED_RANGE(bi, off);
}

static void op_send(void)
{
	struct zcsend_send s, *a = &s;
	int slot = pick_slot(), pi, r;
	uint64_t idx;
	long ret;

	if (fz.ns >= fz.cap)
		return;
	fz.clean = rn(100) < 65;
	s.fd = pick_fd(&pi);
	s.flags = pick_flags(pi < 0 || STALLED(pi));
	s.iov = pick_iov(&s.iovcnt);
	/* Sometimes the one buffer named in the request (ZCSEND_SEND_BUF). */
	if (fz.clean && s.iovcnt == 1 && !rn(4)) {
		struct iovec e;

		memcpy(&e, (void *)(uintptr_t)s.iov, sizeof(e));
		s.flags |= ZCSEND_SEND_BUF;
		s.iov = (uintptr_t)e.iov_base;
		s.iovcnt = e.iov_len > UINT32_MAX ? UINT32_MAX : e.iov_len;
	}
	maybe_inline_range(&s, slot);
	s.addr = pick_addr(&s.addrlen, pi, fz.addra);
	/* Sometimes by index in the registered sockets (or past them). */
	if (!fz.clean && !rn(6)) {
		s.flags |= ZCSEND_SEND_FIXED_SOCKET | (rn(50) ? MSG_DONTWAIT : 0);
		s.fd = rn(NPAIR + 3) - 1;
	}
	idx = fz.ns++;
	s.user_data = ud_of(idx);
	r = fz.clean ? 3 : rn(60);
	if (r == 0) {
		a = (void *)(uintptr_t)bad_ptr();
	} else if (r < 3) {	/* straddling the guard page, or misaligned */
		r = r == 1 ? 1 + rn(sizeof(s) - 1) : sizeof(s);
		a = (void *)(fz.out + (r < sizeof(s) ? OUT_LEN - r : 1 + rn(7)));
		memcpy(a, &s, r);
	}
	ret = ioctl(fz.zfd[slot], ZCSEND_IOC_SEND, a);
	hist(H_SEND, ret);
	fz.s[idx].st = S_FAILED;
	if (ret >= 0) {
		fz.s[idx] = (struct sendrec){ ret, fz.fid[slot], S_PENDING };
		fz.pend[slot]++;
		fz.ok[slot]++;
		fz.accepted++;
		fz.bytes += ret;
		if (a != &s && !in_out(a, sizeof(s)))
			violation(&fz.stray, "send #%" PRIu64 " accepted from argument %p",
				  idx, (void *)a);
	}
	if (pi >= 0 && !STALLED(pi)) {
		drain_fd(fz.pr[pi].rx, 4);
		drain_fd(fz.pr[pi].tx, 4);
	}
}

/*
 * ZCSEND_IOC_SUBMIT of 1..8 descriptors built as op_send builds one (some
 * with ZCSEND_SEND_FIXED in their random flags), or a bad batch: the
 * returned count says which were submitted; their bytes come only with the
 * record.
 */
static void op_submit(void)
{
	struct zcsend_send s[8];
	struct zcsend_submit b;
	int slot = pick_slot(), pi, k = 1 + rn(8), i;
	uint64_t idx0 = fz.ns;
	void *a = &b;
	long ret;

	if (fz.ns + k >= fz.cap)
		return;
	for (i = 0; i < k; i++) {
		fz.clean = rn(100) < 80;
		s[i].fd = pick_fd(&pi);
		s[i].flags = pick_flags(pi < 0 || STALLED(pi));
		s[i].iov = pick_iov(&s[i].iovcnt);
		maybe_inline_range(&s[i], slot);
		s[i].addr = pick_addr(&s[i].addrlen, pi, fz.addra);
		s[i].user_data = ud_of(fz.ns);
		fz.s[fz.ns++].st = S_FAILED;
	}
	b = (struct zcsend_submit){ (uintptr_t)s, k, 0 };
	if (!rn(30))
		b.flags = 2U << rn(31);	/* bit 0 is SUBMIT_FANOUT */
	if (!rn(30))
		b.nr = rn(2) ? 0 : ZCSEND_MAX_BATCH + 1 + rn(1000);
	if (!rn(40))
		b.sends = bad_ptr();
	if (!rn(40))
		a = (void *)(uintptr_t)bad_ptr();
	ret = ioctl(fz.zfd[slot], ZCSEND_IOC_SUBMIT, a);
	hist(H_SUBMIT, ret);
	if (ret > k)
		violation(&fz.stray, "SUBMIT of %d returned %ld", k, ret);
	for (i = 0; ret > 0 && i < ret && i < k; i++) {
		fz.s[idx0 + i] = (struct sendrec){ BYTES_UNKNOWN, fz.fid[slot],
						   S_PENDING };
		fz.pend[slot]++;
		fz.ok[slot]++;
		fz.accepted++;
	}
}

/*
 * Registers good, bad, read-only or PROT_NONE ranges of the fuzzer's slots,
 * or unregisters; sends with ZCSEND_SEND_FIXED in their random flags then
 * find buffers (their iovecs read as ranges) or ENXIO.
 */
static void op_register(void)
{
	struct zcsend_buffer bb[NREG];
	struct zcsend_register rg;
	int slot = pick_slot(), n = 1 + rn(NREG), i;
	long ret;

	if (rn(3) == 0) {
		ret = ioctl(fz.zfd[slot], ZCSEND_IOC_UNREGISTER_BUFFERS);
		hist(H_REGISTER, ret);
		if (!ret)
			fz.nreg[slot] = 0;
		return;
	}
	for (i = 0; i < n; i++) {
		int k = rn(NSLOT);
		size_t off = rn(SLOT_LEN);

		bb[i].addr = rn(20) ? (uintptr_t)fz.slot[k] + off : bad_ptr();
		bb[i].len = rn(20) ? 1 + rn(SLOT_LEN - off) :
			    rn(2) ? 0 : rnd() >> rn(64);
	}
	rg = (struct zcsend_register){ (uintptr_t)bb, n, rn(30) ? 0 : rnd() };
	if (!rn(30))
		rg.nr = rn(2) ? 0 : ZCSEND_MAX_BUFFERS + 1 + rn(100);
	ret = ioctl(fz.zfd[slot], ZCSEND_IOC_REGISTER_BUFFERS,
		    rn(40) ? (void *)&rg : (void *)(uintptr_t)bad_ptr());
	hist(H_REGISTER, ret);
	if (ret < 0)
		return;
	fz.nreg[slot] = n;	/* for op_fanout's ranges */
	for (i = 0; i < n; i++)
		fz.reg[slot][i] = bb[i].len;
}

/*
 * Registers 1 to NPAIR + 2 sockets (the pairs' senders, so past NPAIR one
 * twice; sometimes any descriptor), a bad count, flags or array, or
 * unregisters; sends and fan-outs with ZCSEND_SEND_FIXED_SOCKET name them
 * by index, or get EBADF or ENXIO.
 */
static void op_socks(void)
{
	int fds[NPAIR + 2], slot = pick_slot(), n = 1 + rn(NPAIR + 2), i, pi;
	struct zcsend_register_sockets rs;
	long ret;

	if (rn(3) == 0) {
		ret = ioctl(fz.zfd[slot], ZCSEND_IOC_UNREGISTER_SOCKETS);
		hist(H_REGISTER, ret);
		return;
	}
	for (i = 0; i < n; i++)
		fds[i] = rn(8) ? fz.pr[i % NPAIR].tx : pick_fd(&pi);
	rs = (struct zcsend_register_sockets){ (uintptr_t)fds, n, rn(30) ? 0 : rnd() };
	if (!rn(30))
		rs.nr = rn(2) ? 0 : ZCSEND_MAX_SOCKETS + 1 + rn(100);
	ret = ioctl(fz.zfd[slot], ZCSEND_IOC_REGISTER_SOCKETS,
		    rn(40) ? (void *)&rs : (void *)(uintptr_t)bad_ptr());
	hist(H_REGISTER, ret);
}

/*
 * ZCSEND_SEND_FIXED ranges of one buffer registered on file @slot (the
 * lengths op_register saw accepted), or of a buffer that may not exist;
 * written to fz.iova, or a bad pointer. *cnt is what the fan-out claims.
 */
static uint64_t pick_ranges(int slot, uint32_t *cnt)
{
	const size_t sz = sizeof(struct zcsend_range), max = IOV_LEN / sz;
	int nb = fz.nreg[slot], r = fz.clean ? 3 + rn(94) : rn(100);
	uint32_t bi = nb ? rn(nb) : rn(NREG);
	uint64_t blen = nb ? fz.reg[slot][bi] : 1 + rn(SLOT_LEN), room;
	size_t budget = 1 + rn(64 << 10), n, i, left;
	struct zcsend_range g;
	uint8_t *p = fz.iova;

	blen = blen ? blen : 1;
	*cnt = r < 3 ? 0 : r < 70 ? 1 + rn(4) : r < 90 ? 5 + rn(28) :
	       r < 97 ? 33 + rn(max - 33) : rn(3) ? 1024 + rn(2) : rnd();
	n = *cnt < max ? *cnt : max;
	r = fz.clean ? 4 : rn(40);
	if (r == 0)
		return bad_ptr();
	if (r == 1)
		return (uintptr_t)fz.ro;	/* zeroes: empty ranges */
	if (r == 2 && n)	/* the last range straddles the guard page */
		p = fz.iova + IOV_LEN - n * sz + 8;
	else if (r == 3)
		p = fz.iova + 1 + rn(7);
	for (i = 0; i < n; i++) {
		g = (struct zcsend_range){ bi, 0, rn(blen), 0 };
		room = blen - g.offset;
		g.len = 1 + rn(budget < room ? budget : room);
		budget = budget > g.len ? budget - g.len : 1;
		r = fz.clean ? 100 : rn(100);
		if (r < 2)		/* another buffer, or none */
			g.buf_index = rn(2) ? bi + 1 : rnd();
		else if (r < 4)
			g.reserved = 1U << rn(32);
		else if (r < 6)		/* at or past the end */
			g.offset = rn(2) ? blen : rnd();
		else if (r < 9)		/* one past the end, empty, wrapping */
			g.len = r == 6 ? room + 1 : r == 7 ? 0 :
				UINT64_MAX - g.offset + 1 + rn(8);
		left = fz.iova + IOV_LEN - (p + i * sz);
		memcpy(p + i * sz, &g, left < sz ? left : sz);
	}
	return (uintptr_t)p;
}

/*
 * A fan-out destination not yet named in this call (*used, by position):
 * mostly the sender of a pair, sometimes its receiver or a TCP/UDP socket
 * of fz.misc; once those run out, one named already (EINVAL) or a closed
 * one (EBADF). *pi: the pair, or -1.
 */
static int pick_dest(uint32_t *used, int *pi)
{
	int k, j = 0, r, fd = -1;

	for (k = 0; k < 32; k++) {
		r = rn(40);
		if (r < 34)
			j = rn(NPAIR);
		else if (r < 38 || !fz.ninet)
			j = NPAIR + rn(NPAIR);
		else
			j = 2 * NPAIR + rn(fz.ninet);
		fd = j < NPAIR ? fz.pr[j].tx : j < 2 * NPAIR ?
		     fz.pr[j - NPAIR].rx : fz.misc[fz.inet[j - 2 * NPAIR]];
		if (fd >= 0 && !(*used & 1U << j))
			break;
	}
	*used |= 1U << j;
	*pi = j < 2 * NPAIR ? j % NPAIR : -1;
	return fd;
}

/*
 * ZCSEND_IOC_FANOUT of one payload (iovecs, ranges of a registered buffer,
 * or a STABLE copy) to 1..16 sockets, rarely up to 64 or ZCSEND_MAX_FANOUT
 * (more than there are distinct sockets: EINVAL), or a bad request: nr 0
 * or over the limit, a socket twice (the same fd or a dup of it), bad,
 * closed or non-socket fds, FIXED|STABLE, resv, an array or argument that
 * cannot be read, results that cannot be written back. Accepted, it owes
 * exactly one record: FANOUT (and STABLE), bytes the sum of the results >= 0
 * written back, of which there are as many as the ioctl returned.
 */
static void op_fanout(void)
{
	static struct zcsend_dest dv[ZCSEND_MAX_FANOUT];
	const size_t dsz = sizeof(dv[0]);
	struct zcsend_fanout f = { 0 }, *a = &f;
	int slot = pick_slot(), pi, r, where, i, dupfd = -1;
	uint32_t used = 0, pairs = 0, nr, n, nok = 0, bad = 0;
	bool good = rn(100) < 60, stall = false;
	struct zcsend_dest e;
	uint8_t *p = fz.dsta;
	uint64_t idx, sum = 0;
	size_t len, room;
	long ret;

	if (fz.ns >= fz.cap)
		return;
	r = rn(100);
	nr = r < 70 ? 1 + rn(4) : r < 93 ? 5 + rn(12) : r < 99 ? 17 + rn(48) :
	     65 + rn(ZCSEND_MAX_FANOUT - 64);
	if (!good && !rn(8))
		nr = rn(2) ? 0 : rn(2) ? ZCSEND_MAX_FANOUT + 1 + rn(1000) :
		     rn(2) ? UINT32_MAX : 1U << 31;
	n = nr <= ZCSEND_MAX_FANOUT ? nr : rn(9);
	for (i = 0; i < n; i++) {
		fz.clean = good || rn(100) < 85;
		dv[i].fd = fz.clean ? pick_dest(&used, &pi) : pick_fd(&pi);
		dv[i].addr = pick_addr(&dv[i].addrlen, pi,
				       fz.cells + i % NCELL * CELL);
		dv[i].result = INT64_MIN;	/* not written back */
		stall |= pi < 0 || STALLED(pi);
		if (pi >= 0)
			pairs |= 1U << pi;
	}
	if (n >= 2 && !rn(good ? 30 : 6)) {	/* a socket named twice */
		i = 1 + rn(n - 1);
		r = rn(i);
		dupfd = rn(2) ? fcntl(dv[r].fd, F_DUPFD_CLOEXEC, 0) : -1;
		dv[i].fd = dupfd >= 0 ? dupfd : dv[r].fd;
	}

	fz.clean = good || rn(100) < 70;
	f.flags = pick_flags(stall);
	r = rn(100);
	if (r < 25)
		f.flags |= ZCSEND_FANOUT_STABLE;
	else if (r < 45)
		f.flags |= ZCSEND_SEND_FIXED;
	else if (r < 49 && !good)
		f.flags |= ZCSEND_FANOUT_STABLE | ZCSEND_SEND_FIXED;
	/* Destinations by index in the registered sockets (or past them). */
	if (!good && !rn(8)) {
		f.flags |= ZCSEND_SEND_FIXED_SOCKET | MSG_DONTWAIT;
		for (i = 0; i < n; i++)
			dv[i].fd = rn(NPAIR + 3) - 1;
	}
	fz.clean = good || rn(100) < 70;
	if (f.flags & ZCSEND_SEND_FIXED && (good || rn(5)))
		f.iov = pick_ranges(slot, &f.iovcnt);
	else
		f.iov = pick_iov(&f.iovcnt);
	f.nr = nr;
	if (!good && !rn(12))
		f.resv = 1U << rn(32);

	/* The array: in fz.dsta, or where it cannot be read or written. */
	len = (size_t)n * dsz;
	where = good ? 9 : rn(40);
	if (where == 0) {
		f.dests = bad_ptr();
	} else if (where == 1) {
		f.dests = (uintptr_t)fz.ro;	/* zeroes (fd 0), read-only */
	} else {
		if (where == 2 && n)	/* the last one straddles the guard */
			p = fz.dsta + DST_LEN - len + 1 + rn(dsz - 1);
		else if (where == 3)
			p = fz.dsta + 1 + rn(7);
		room = fz.dsta + DST_LEN - p;
		memcpy(p, dv, len < room ? len : room);
		f.dests = (uintptr_t)p;
	}
	if (where == 4 && n) {	/* readable, results not writable */
		room = rn(2) ? 0 : (len - 1) / PG * PG;
		mprotect(fz.dsta + room, DST_LEN - room, PROT_READ);
	}

	idx = fz.ns++;
	f.user_data = ud_of(idx);
	r = good ? 3 : rn(40);
	if (r == 0) {
		a = (void *)(uintptr_t)bad_ptr();
	} else if (r < 3) {	/* straddling the guard page, or misaligned */
		r = r == 1 ? 1 + rn(sizeof(f) - 1) : sizeof(f);
		a = (void *)(fz.out + (r < sizeof(f) ? OUT_LEN - r : 1 + rn(7)));
		memcpy(a, &f, r);
	}
	ret = ioctl(fz.zfd[slot], ZCSEND_IOC_FANOUT, a);
	hist(H_FANOUT, ret);
	if (where == 4 && n)
		mprotect(fz.dsta, DST_LEN, PROT_READ | PROT_WRITE);
	if (dupfd >= 0)
		close(dupfd);
	fz.s[idx].st = S_FAILED;
	if (ret >= 0) {
		fz.s[idx] = (struct sendrec){
			BYTES_UNKNOWN, fz.fid[slot], S_PENDING,
			ZCSEND_COMPL_FANOUT | (f.flags & ZCSEND_FANOUT_STABLE ?
					       ZCSEND_COMPL_STABLE : 0)
		};
		fz.pend[slot]++;
		fz.ok[slot]++;
		fz.accepted++;
		fz.nfan++;
	}
	if (ret >= 0 && (where < 3 || where == 4 || ret > nr ||
			 p + len > fz.dsta + DST_LEN ||
			 (a != &f && !in_out(a, sizeof(f))))) {
		violation(&fz.stray, "fan-out #%" PRIu64 " to %u accepted (%ld) from argument %p, array %#llx",
			  idx, nr, ret, (void *)a, (unsigned long long)f.dests);
	} else if (ret >= 0) {
		/* The array comes back as it was, with every result. */
		for (i = 0; i < n; i++) {
			memcpy(&e, p + i * dsz, dsz);
			bad += e.fd != dv[i].fd || e.addrlen != dv[i].addrlen ||
			       e.addr != dv[i].addr || e.result < -4095;
			nok += e.result >= 0;
			sum += e.result >= 0 ? e.result : 0;
		}
		if (bad || nok != ret)
			violation(&fz.badrec, "fan-out #%" PRIu64 " returned %ld; of %u results %u are >= 0, %u are wrong",
				  idx, ret, n, nok, bad);
		fz.s[idx].bytes = sum < BYTES_UNKNOWN ? sum : BYTES_UNKNOWN;
		fz.bytes += sum;
		fz.fan_ok += nok;
		fz.fan_err += n - nok;
	}
	for (i = 0; i < NPAIR; i++) {
		if (pairs & 1U << i && !STALLED(i)) {
			drain_fd(fz.pr[i].rx, 4);
			drain_fd(fz.pr[i].tx, 4);
		}
	}
}

/* read(2) or readv(2) into good, short, partly or wholly bad buffers. */
static void op_read(void)
{
	int slot = pick_slot(), k, nv = 1 + rn(3), r = rn(8);
	size_t len, off = 0, at = 0, l;
	uint8_t buf[OUT_LEN], *p;
	struct iovec v[3];
	ssize_t ret;

	len = r == 0 ? rn(REC) : r == 1 ? REC * (1 + rn(4)) + rn(REC) :
	      REC * (1 + rn((OUT_LEN - 8) / REC));
	if (rn(4)) {
		p = wptr(len);
		ret = read(fz.zfd[slot], p, len);
		hist(H_READ, ret);
		if (ret > 0 && !in_out(p, ret))
			violation(&fz.stray, "read of %zd bytes into %p", ret, p);
		else if (ret > 0)
			got(slot, p, ret);
		return;
	}
	for (k = 0; k < nv; k++) {
		l = rn(3 * REC);
		if (!rn(5)) {
			v[k].iov_base = (void *)(uintptr_t)bad_ptr();
		} else {
			l = l < OUT_LEN - off ? l : OUT_LEN - off;
			v[k].iov_base = fz.out + off;
			off += l;
		}
		v[k].iov_len = l;
	}
	ret = readv(fz.zfd[slot], v, nv);
	hist(H_READ, ret);
	for (k = 0; ret > 0 && k < nv && at < (size_t)ret; k++, at += l) {
		l = v[k].iov_len < ret - at ? v[k].iov_len : ret - at;
		if (l && !in_out(v[k].iov_base, l)) {
			violation(&fz.stray, "readv of %zd bytes via %p", ret,
				  v[k].iov_base);
			return;
		}
		memcpy(buf + at, v[k].iov_base, l);
	}
	if (ret > 0)
		got(slot, buf, ret);
}

/* ZCSEND_IOC_VERSION or ZCSEND_IOC_STATS */
static void op_out(void)
{
	bool ver = rn(2);
	uint8_t *p = wptr(ver ? 4 : sizeof(struct zcsend_stats));
	uint32_t v;
	long ret;

	ret = ioctl(fz.zfd[pick_slot()],
		    ver ? ZCSEND_IOC_VERSION : ZCSEND_IOC_STATS, p);
	hist(ver ? H_VERSION : H_STATS, ret);
	if (ver && !ret && in_out(p, 4) && (memcpy(&v, p, 4), v != ZCSEND_ABI_VERSION))
		violation(&fz.badver, "ZCSEND_IOC_VERSION wrote %u", v);
}

static void op_eventfd(void)
{
	int32_t v, *a = &v;
	int r = rn(12), pi, k;
	long ret;

	v = r < 4 ? fz.efd[r & 1] : r < 6 ? -1 : r == 6 ? pick_fd(&pi) :
	    r == 7 ? fz.zfd[rn(NFILE)] : r == 8 ? INT_MIN : r == 9 ? -2 : rnd();
	if (!rn(15)) {
		a = (void *)(uintptr_t)bad_ptr();
	} else if (!rn(15)) {	/* straddles the guard page */
		k = 1 + rn(3);
		a = (void *)(fz.out + OUT_LEN - k);
		memcpy(a, &v, k);
	}
	ret = ioctl(fz.zfd[pick_slot()], ZCSEND_IOC_SET_EVENTFD, a);
	hist(H_EVENTFD, ret);
}

static void op_unknown(void)
{
	static const unsigned int real[4] = {
		ZCSEND_IOC_VERSION, ZCSEND_IOC_SEND, ZCSEND_IOC_SET_EVENTFD,
		ZCSEND_IOC_STATS,
	};
	unsigned int c = real[rn(4)], d = _IOC_DIR(c), nr = _IOC_NR(c);
	unsigned int sz = _IOC_SIZE(c), cmd = 0;
	int r = rn(5);
	long ret;

	if (r == 0)		/* a known number with another size */
		cmd = _IOC(d, ZCSEND_IOC_MAGIC, nr,
			   (sz + 1 + rn(255)) & _IOC_SIZEMASK);
	else if (r == 1)	/* ... or another direction */
		cmd = _IOC((d + 1 + rn(3)) & 3, ZCSEND_IOC_MAGIC, nr, sz);
	else if (r == 2)
		/* past the real ones: SUBMIT's and FANOUT's sends would go
		 * untracked */
		cmd = _IOC(d, ZCSEND_IOC_MAGIC, 11 + rn(245), rn(64));
	else if (r == 3)
		cmd = _IOC(d, (uint8_t)"\xe4\xe6\xa5\xee"[rn(4)], nr, sz);
	/* Else anything clear of what the VFS does for every file (FIONBIO). */
	while (r == 4 && strchr("TXf\x94\x15\xe5", _IOC_TYPE(cmd = rnd())))
		;
	ret = ioctl(fz.zfd[pick_slot()], cmd, wptr(256));
	hist(H_UNKNOWN, ret);
}

static void map_slot(int i, int type)
{
	static const int prot[M_NR] = {
		PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE,
		PROT_READ | PROT_WRITE, PROT_READ, PROT_READ | PROT_WRITE,
		PROT_NONE,
	};
	bool shm = type >= M_SHM && type <= M_SHM_PRIV;
	int fl = MAP_FIXED | (type == M_SHM || type == M_SHM_RO ? MAP_SHARED :
			      MAP_PRIVATE) | (shm ? 0 : MAP_ANONYMOUS);
	off_t off = shm ? (off_t)rn(NSLOT) * SLOT_LEN : 0;
	size_t o = rn(SLOT_LEN), l = rn(SLOT_LEN - o + 1);
	int fill = rnd();

	fz.rdok[i] = false;
	if (mmap(fz.slot[i], SLOT_LEN, prot[type], fl, shm ? fz.memfd : -1,
		 off) == MAP_FAILED) {
		mmap(fz.slot[i], SLOT_LEN, PROT_NONE,
		     MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		return;
	}
	fz.rdok[i] = type != M_NONE;
	if (prot[type] & PROT_WRITE)	/* some pages stay untouched */
		memset(fz.slot[i] + o, fill, l);
	if (type == M_ANON_RO)
		mprotect(fz.slot[i], SLOT_LEN, PROT_READ);
}

/* Buffers changed under sends that may be in flight. */
static void op_mem(void)
{
	static const int prot[3] = { PROT_NONE, PROT_READ,
				     PROT_READ | PROT_WRITE };
	int i = rn(NSLOT), r = rn(8);
	size_t o = rn(SLOT_LEN / PG) * PG, l = (1 + rn(SLOT_LEN / PG)) * PG;

	l = l < SLOT_LEN - o ? l : SLOT_LEN - o;
	if (r < 3) {
		if (rn(2))
			munmap(fz.slot[i], SLOT_LEN);
		map_slot(i, rn(M_NR));
	} else if (r < 5) {
		r = rn(3);
		if (!mprotect(fz.slot[i] + o, l, prot[r]) && !r)
			fz.rdok[i] = false;
	} else if (r == 5) {
		madvise(fz.slot[i] + o, l, MADV_DONTNEED);
	} else if (r == 6) {	/* shrinks the memfd and grows it back */
		if (!ftruncate(fz.memfd, rn(NSLOT * SLOT_LEN)) &&
		    ftruncate(fz.memfd, NSLOT * SLOT_LEN))
			abort();	/* a shared slot would SIGBUS */
	} else {
		fallocate(fz.memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			  rn(NSLOT) * SLOT_LEN + o, l);
	}
}

/* Opens or closes an extra file; mmap, write, poll; eventfd churn. */
static void op_dev(void)
{
	static const int prot[4] = { PROT_READ, PROT_WRITE,
				     PROT_READ | PROT_WRITE, PROT_NONE };
	int zfd = fz.zfd[pick_slot()], r = rn(8), i = 1 + rn(NFILE - 1);
	size_t len = (size_t)PG << rn(3);
	struct pollfd pfd = { zfd, POLLIN | POLLOUT, 0 };
	uint64_t v;
	void *p;

	if (r < 2 && fz.zfd[i] >= 0) {
		close(fz.zfd[i]);	/* its records are dropped */
		fz.zfd[i] = -1;
		fz.nreg[i] = 0;
	} else if (r < 2) {
		fz.zfd[i] = zc_open();
		fz.fid[i] = ++fz.next_fid;
		fz.ok[i] = fz.pend[i] = 0;
		fz.nreg[i] = 0;
	} else if (r < 4) {
		p = mmap(NULL, len, prot[rn(4)], rn(2) ? MAP_SHARED :
			 MAP_PRIVATE, zfd, rn(4) * PG);
		hist(H_MMAP, p == MAP_FAILED ? -1 : 0);
		if (p != MAP_FAILED && ++fz.mmap_ok)
			munmap(p, len);
	} else if (r == 4) {
		hist(H_WRITE, write(zfd, rn(4) ? (void *)fz.out :
				    (void *)(uintptr_t)bad_ptr(), rn(64)));
	} else if (r == 5) {
		poll(&pfd, 1, 0);
	} else if (r == 6) {
		if (read(fz.efd[i & 1], &v, sizeof(v)) < 0)
			return;
	} else {
		close(fz.efd[i & 1]);
		fz.efd[i & 1] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	}
}

static void pair_open(int i)
{
	struct zc_pair *p = &fz.pr[i];
	struct timeval tv = { 0, 10000 };

	if (zc_loopback_pair(p, (i & 1) && fz.v6 ? AF_INET6 : AF_INET,
			     i < 4 ? SOCK_STREAM : SOCK_DGRAM,
			     STALLED(i) ? 4096 : 0, STALLED(i) ? 65536 : 0))
		return;
	if (i >= 6 && connect(p->tx, (void *)&p->dst, p->dstlen))
		return;
	setsockopt(p->tx, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(p->rx, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Drains a pair (stalled ones too); rarely replaces or breaks one. */
static void op_pair(void)
{
	int i = rn(NPAIR), r = rn(50);

	if (r < 40) {
		drain_fd(fz.pr[i].rx, 16);
		drain_fd(fz.pr[i].tx, 16);
	} else if (r < 48) {
		zc_pair_close(&fz.pr[i]);
		pair_open(i);
	} else if (r == 48) {
		shutdown(fz.pr[i].tx, rn(3));
	} else if (fz.pr[i].rx >= 0) {
		close(fz.pr[i].rx);
		fz.pr[i].rx = -1;
	}
}

static void fuzz_op(void);

/* A child does a few ops with a file of its own, then exits. */
static void op_fork(void)
{
	struct rlimit rl = { 64 << 10, 64 << 10 };
	int64_t end = zc_now_ms() + 5000;
	uint64_t seed = rnd();
	int status = 0, i;
	bool hung = false;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return;
	if (!pid) {
		/* The inherited files are the parent's to check: let go. */
		fz.child = true;
		fz.rng = seed;
		for (i = 0; i < NFILE; i++) {
			if (fz.zfd[i] >= 0)
				close(fz.zfd[i]);
			fz.zfd[i] = -1;
			fz.nreg[i] = 0;
		}
		fz.zfd[0] = zc_open();
		fz.fid[0] = ++fz.next_fid;
		if (!rn(4) && !setrlimit(RLIMIT_MEMLOCK, &rl) && rn(2) &&
		    !setgroups(0, NULL) && !setgid(65534))
			i = setuid(65534);
		for (i = 1 + rn(CHILD_OPS); i; i--)
			fuzz_op();
		_exit(0);
	}
	fz.children++;
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (zc_now_ms() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			hung = true;
			break;
		}
		zc_msleep(1);
	}
	if (hung || !WIFEXITED(status) || WEXITSTATUS(status))
		violation(&fz.child_bad, "child %d: status %#x%s", pid, status,
			  hung ? " (hung: killed after 5 s)" : "");
}

static void fuzz_op(void)
{
	static const struct { int w; void (*fn)(void); } ops[] = {
		{ 525, op_send }, { 150, op_read }, { 80, op_out },
		{ 40, op_eventfd }, { 50, op_unknown }, { 40, op_mem },
		{ 60, op_dev }, { 50, op_pair }, { 1, op_fork },
		{ 30, op_submit }, { 20, op_register }, { 30, op_fanout },
		{ 15, op_socks },
	};
	int r = 0, k = 0;

	for (k = 0; k < ARRAY_SIZE(ops); k++)
		r += ops[k].w;
	r = rn(r);
	k = 0;

	while (r >= ops[k].w)
		r -= ops[k++].w;
	if (ops[k].fn != op_fork || !fz.child)
		ops[k].fn();
}

static uint8_t *map_guarded(size_t len, int prot)
{
	uint8_t *p = mmap(NULL, len + PG, prot, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);

	return p == MAP_FAILED || mprotect(p + len, PG, PROT_NONE) ? NULL : p;
}

static void add_misc(int fd)
{
	struct timeval tv = { 0, 10000 };

	if (fd < 0 || fz.nmisc >= NMISC)
		return;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	fz.misc[fz.nmisc++] = fd;
}

/* Whether @fd is a TCP or UDP socket over IPv4 or IPv6. */
static bool inet_sock(int fd)
{
	static const int opt[3] = { SO_DOMAIN, SO_TYPE, SO_PROTOCOL };
	int v[3], i;
	socklen_t l;

	for (i = 0; i < 3; i++) {
		l = sizeof(v[i]);
		if (getsockopt(fd, SOL_SOCKET, opt[i], &v[i], &l))
			return false;
	}
	return (v[0] == AF_INET || v[0] == AF_INET6) &&
	       ((v[1] == SOCK_STREAM && v[2] == IPPROTO_TCP) ||
		(v[1] == SOCK_DGRAM && v[2] == IPPROTO_UDP));
}

static void fz_setup(struct __test_metadata *_metadata, uint64_t calls)
{
	/* Other kinds of fd: ENOTSOCK, EAFNOSUPPORT, EPROTONOSUPPORT... */
	static const int kinds[][3] = {
		{ AF_UNIX, SOCK_STREAM, 0 }, { AF_UNIX, SOCK_DGRAM, 0 },
		{ AF_NETLINK, SOCK_RAW, NETLINK_ROUTE },
		{ AF_PACKET, SOCK_DGRAM, 0 }, { AF_INET, SOCK_RAW, IPPROTO_UDP },
		{ AF_INET, SOCK_DGRAM, 0 }, { AF_INET6, SOCK_DGRAM, 0 },
		{ AF_INET, SOCK_STREAM, 0 },	/* listening, below */
	};
	struct sockaddr_storage ss;
	socklen_t len = zc_loopback_addr(AF_INET, 0, &ss);
	int i, sv[2], fd;
	uint8_t *pat;

	fz.cap = 2 * calls + CHILD_OPS + 1;	/* SUBMIT adds up to 8 a call */
	fz.s = calloc(fz.cap, sizeof(*fz.s));
	ASSERT_NE(NULL, fz.s) TH_LOG("no memory for %" PRIu64 " calls", calls);
	fz.ud_inv = UD_MUL;	/* Newton: the inverse mod 2^64 */
	for (i = 0; i < 6; i++)
		fz.ud_inv *= 2 - UD_MUL * fz.ud_inv;
	fz.v6 = zc_family_ok(AF_INET6);
	fz.iova = map_guarded(IOV_LEN, PROT_READ | PROT_WRITE);
	fz.out = map_guarded(OUT_LEN, PROT_READ | PROT_WRITE);
	fz.addra = map_guarded(PG, PROT_READ | PROT_WRITE);
	fz.ro = map_guarded(PG, PROT_READ);
	fz.dsta = map_guarded(DST_LEN, PROT_READ | PROT_WRITE);
	fz.cells = map_guarded(CELLS_LEN, PROT_READ | PROT_WRITE);
	/* The slots, each followed by a guard page that stays PROT_NONE. */
	fz.arena = mmap(NULL, NSLOT * (SLOT_LEN + PG), PROT_NONE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(fz.iova && fz.out && fz.addra && fz.ro && fz.dsta &&
		    fz.cells && fz.arena != MAP_FAILED);
	fz.memfd = memfd_create("zcsend-fuzz", MFD_CLOEXEC);
	pat = zc_map_pattern(SLOT_LEN, GOOD_SEED);
	ASSERT_NE(NULL, pat);
	for (i = 0; fz.memfd >= 0 && i < NSLOT; i++)
		ASSERT_EQ(SLOT_LEN, pwrite(fz.memfd, pat, SLOT_LEN,
					   (off_t)i * SLOT_LEN));
	munmap(pat, SLOT_LEN);
	for (i = 0; i < NSLOT; i++) {
		fz.slot[i] = fz.arena + i * (SLOT_LEN + PG);
		map_slot(i, i % M_NR);
	}
	for (i = 1; i < NFILE; i++)
		fz.zfd[i] = -1;
	fz.zfd[0] = zc_open();
	ASSERT_LE(0, fz.zfd[0]) TH_LOG("open %s: %s", ZCSEND_DEVICE,
				       strerror(errno));
	fz.fid[0] = ++fz.next_fid;
	fz.efd[0] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	fz.efd[1] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	for (i = 0; i < NPAIR; i++)
		pair_open(i);
	ASSERT_LE(0, fz.pr[0].tx) TH_LOG("no loopback TCP pair");

	add_misc(fz.memfd);
	add_misc(open("/dev/null", O_RDWR | O_CLOEXEC));
	if (!pipe2(sv, O_CLOEXEC | O_NONBLOCK)) {
		add_misc(sv[0]);
		add_misc(sv[1]);
	}
	for (i = 0; i < ARRAY_SIZE(kinds); i++)
		add_misc(fd = socket(kinds[i][0], kinds[i][1] | SOCK_CLOEXEC,
				     kinds[i][2]));
	if (fd >= 0 && !bind(fd, (void *)&ss, len))
		listen(fd, 1);
	for (i = 0; i < fz.nmisc; i++)
		if (inet_sock(fz.misc[i]))
			fz.inet[fz.ninet++] = i;
}

static uint64_t open_pending(void)
{
	uint64_t n = 0;
	int i;

	for (i = 0; i < NFILE; i++)
		n += fz.zfd[i] >= 0 ? fz.pend[i] : 0;
	return n;
}

static void read_all(void)
{
	struct zcsend_completion c[256];
	ssize_t n;
	int i;

	for (i = 0; i < NFILE; i++)
		while (fz.zfd[i] >= 0 &&
		       (n = read(fz.zfd[i], c, sizeof(c))) > 0)
			got(i, c, n);
}

static void close_sockets(void)
{
	int i;

	/* A registered socket stays open until its table goes. */
	for (i = 0; i < NFILE; i++)
		if (fz.zfd[i] >= 0)
			ioctl(fz.zfd[i], ZCSEND_IOC_UNREGISTER_SOCKETS);

	for (i = 0; i < NPAIR; i++)
		zc_pair_close(&fz.pr[i]);
	for (i = 0; i < fz.nmisc; i++)
		close(fz.misc[i]);
	fz.nmisc = 0;
	fz.ninet = 0;
}

/*
 * Lets what was accepted complete: pushes corked data out, drains every
 * receiver (the stalled ones too) and reads the records; after 5 s closes
 * the sockets, which frees what they still hold; gives up after 20 s.
 */
static void settle(void)
{
	int64_t t0 = zc_now_ms(), now;
	int i, one = 1, zero = 0, fd;
	bool closed = false;

	for (i = 0; i < 2 * NPAIR + fz.nmisc; i++) {
		fd = i >= 2 * NPAIR ? fz.misc[i - 2 * NPAIR] :
		     i & 1 ? fz.pr[i / 2].rx : fz.pr[i / 2].tx;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(fd, SOL_UDP, UDP_CORK, &zero, sizeof(zero));
	}
	for (;;) {
		for (i = 0; i < NPAIR; i++) {
			drain_fd(fz.pr[i].rx, 64);
			drain_fd(fz.pr[i].tx, 64);
		}
		read_all();
		now = zc_now_ms();
		if (!open_pending() || now - t0 > 20000)
			break;
		if (!closed && now - t0 > 5000) {
			ksft_print_msg("%" PRIu64 " completions missing after 5 s: closing every socket\n",
				       open_pending());
			close_sockets();
			closed = true;
		}
		zc_msleep(5);
	}
	zc_msleep(100);		/* for a late duplicate or stray record */
	read_all();
	ksft_print_msg("settled in %" PRId64 " ms\n", zc_now_ms() - t0);
}

static void print_summary(void)
{
	char line[1024];
	const char *name;
	int h, e, n;

	for (h = 0; h < H_NR; h++) {
		n = snprintf(line, sizeof(line), "%-13s", hname[h]);
		for (e = 0; e < MAXERR && n < (int)sizeof(line) - 40; e++) {
			name = !e ? "ok" : e == MAXERR - 1 ? "other" :
			       strerrorname_np(e);
			if (fz.hist[h][e])
				n += snprintf(line + n, sizeof(line) - n,
					      " %s %" PRIu64, name ? name : "?",
					      fz.hist[h][e]);
		}
		ksft_print_msg("%s\n", line);
	}
	ksft_print_msg("sends: %" PRIu64 " made, %" PRIu64 " accepted, %" PRIu64 " bytes; records: %" PRIu64 " zerocopy, %" PRIu64 " copied (%" PRIu64 " copy path); %" PRIu64 " forks; %" PRIu64 " device mmaps succeeded\n",
		       fz.ns, fz.accepted, fz.bytes, fz.nzc, fz.ncp, fz.npath,
		       fz.children, fz.mmap_ok);
	ksft_print_msg("fan-outs: %" PRIu64 " accepted; their destinations: %" PRIu64 " sent, %" PRIu64 " failed\n",
		       fz.nfan, fz.fan_ok, fz.fan_err);
}

FIXTURE(fuzz) {
};

FIXTURE_SETUP(fuzz)
{
}

FIXTURE_TEARDOWN(fuzz)
{
}

/* The call loop, then the accounting of every file still open. */
TEST_F_TIMEOUT(fuzz, run, fuzz_seconds() + 150)
{
	uint64_t seed, calls, n, i;
	int64_t t0, cap_ms = fuzz_seconds() * 1000LL;
	struct zcsend_stats st;
	struct timespec ts;
	int k;

	clock_gettime(CLOCK_REALTIME, &ts);
	seed = env_u64("ZCSEND_FUZZ_SEED", (uint64_t)ts.tv_sec * 1000000007ULL ^
		       ts.tv_nsec ^ (uint64_t)getpid() << 40);
	ksft_print_msg("seed %" PRIu64 "\n", seed);
	calls = env_u64("ZCSEND_FUZZ_CALLS", 100000);
	ksft_print_msg("%" PRIu64 " calls, wall-clock cap %d s; ZCSEND_FUZZ_SEED=%" PRIu64 " replays them\n",
		       calls, fuzz_seconds(), seed);
	fz.rng = seed;
	fz_setup(_metadata, calls);

	t0 = zc_now_ms();
	for (n = 0; n < calls; n++) {
		if (!(n & 15) && zc_now_ms() - t0 > cap_ms)
			break;
		fuzz_op();
	}
	if (n < calls)
		ksft_print_msg("wall-clock cap of %d s reached: stopped after %" PRIu64 " of %" PRIu64 " calls\n",
			       fuzz_seconds(), n, calls);
	else
		ksft_print_msg("%" PRIu64 " calls in %" PRId64 " ms\n", n,
			       zc_now_ms() - t0);
	print_summary();

	settle();
	for (k = 0; k < fz.nmsg; k++)
		TH_LOG("%s", fz.msg[k]);
	n = open_pending();
	for (i = 0; n && i < fz.ns; i++) {
		for (k = 0; k < NFILE; k++)
			if (fz.zfd[k] >= 0 && fz.s[i].fid == fz.fid[k] &&
			    fz.s[i].st == S_PENDING)
				break;
		if (k < NFILE) {
			TH_LOG("first missing: send #%" PRIu64 " (user_data %#llx, %u bytes) on file %d",
			       i, (unsigned long long)ud_of(i), fz.s[i].bytes, k);
			break;
		}
	}
	EXPECT_EQ(0, n)
		TH_LOG("%" PRIu64 " sends accepted on open files have no record", n);
	EXPECT_EQ(0, fz.dup)
		TH_LOG("%" PRIu64 " duplicate completion records", fz.dup);
	EXPECT_EQ(0, fz.stray)
		TH_LOG("%" PRIu64 " records of failed, unknown or other files' sends, or data through a bad pointer",
		       fz.stray);
	EXPECT_EQ(0, fz.badrec)
		TH_LOG("%" PRIu64 " records with wrong bytes, flags or result",
		       fz.badrec);
	EXPECT_EQ(0, fz.badver)
		TH_LOG("ZCSEND_IOC_VERSION wrote a wrong version");
	EXPECT_EQ(0, fz.child_bad)
		TH_LOG("%" PRIu64 " of %" PRIu64 " children did not exit normally",
		       fz.child_bad, fz.children);
	for (k = 0; k < NFILE; k++) {
		if (fz.zfd[k] < 0)
			continue;
		ASSERT_EQ(0, zc_stats(fz.zfd[k], &st));
		EXPECT_EQ(0, st.inflight + st.pinned_pages + st.queued)
			TH_LOG("file %d: %llu in flight, %llu pages pinned, %llu queued",
			       k, (unsigned long long)st.inflight,
			       (unsigned long long)st.pinned_pages,
			       (unsigned long long)st.queued);
		EXPECT_EQ(fz.ok[k], st.sends)
			TH_LOG("file %d: %llu records posted, %" PRIu64 " sends accepted",
			       k, (unsigned long long)st.sends, fz.ok[k]);
		close(fz.zfd[k]);
	}
	close_sockets();
	munmap(fz.arena, NSLOT * (SLOT_LEN + PG));
	free(fz.s);
}

/* Every pin the fuzz took is released once its sockets are gone. */
TEST_F(fuzz, pins_balanced)
{
	int64_t now;

	if (pins_before == INT64_MIN)
		SKIP(return, "no nr_foll_pin_* in /proc/vmstat");
	now = zc_wait_pins(pins_before, 20000);
	EXPECT_EQ(pins_before, now)
		TH_LOG("pin balance %" PRId64 " 20 s after the fuzz, %" PRId64 " before it",
		       now, pins_before);
}

TEST_F(fuzz, fresh_file_idle)
{
	int zfd = zc_open();
	uint32_t ver;

	ASSERT_LE(0, zfd) TH_LOG("open %s: %s", ZCSEND_DEVICE, strerror(errno));
	EXPECT_EQ(0, zc_version(zfd, &ver));
	EXPECT_EQ(ZCSEND_ABI_VERSION, ver);
	zc_expect_idle_stats(_metadata, zfd, 0, 0, 0);
	close(zfd);
}

/* The module still works: a TCP send arrives intact and completes. */
TEST_F(fuzz, known_good_send)
{
	const size_t len = 256 << 10;
	uint8_t *buf = zc_map_pattern(len, GOOD_SEED);
	int64_t pins = zc_pins_outstanding();
	struct zc_log log = { 0 };
	struct zc_pair p;
	struct zc_rx rx;
	int zfd, ret;

	ASSERT_NE(NULL, buf);
	zfd = zc_open();
	ASSERT_LE(0, zfd) TH_LOG("open %s: %s", ZCSEND_DEVICE, strerror(errno));
	ASSERT_EQ(0, zc_loopback_pair(&p, AF_INET, SOCK_STREAM, 0, 0));
	ASSERT_EQ(0, zc_rx_start(&rx, p.rx, GOOD_SEED, len));
	ret = zc_send(zfd, p.tx, buf, len, 0, NULL, 0, 42);
	ASSERT_EQ(len, ret) TH_LOG("send: %d (%s)", ret,
				   ret < 0 ? strerror(-ret) : "short");
	zc_log_add(&log, 42, ret);
	ZC_EXPECT_RX(&rx, len);
	zc_expect_completions(_metadata, zfd, &log, 0, 0, NULL);
	zc_expect_idle_stats(_metadata, zfd, 1, -1, -1);
	zc_pair_close(&p);
	close(zfd);
	munmap(buf, len);
	zc_log_free(&log);
	ZC_EXPECT_PINS_BACK(pins);
}

TEST_HARNESS_MAIN
