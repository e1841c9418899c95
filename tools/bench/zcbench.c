// SPDX-License-Identifier: GPL-2.0
/*
 * zcbench: benchmark zcsend against the other ways Linux sends bytes from
 * user memory, on one socket path, in one process.
 *
 * Methods (--methods, comma separated):
 *   send            plain send(): the stack copies the bytes (the baseline)
 *   msg_zerocopy    SO_ZEROCOPY + send(MSG_ZEROCOPY); the error queue is
 *                   drained every 32 sends as in selftests/net/msg_zerocopy.c
 *                   and each range is counted zero-copy or copied by
 *                   SO_EE_CODE_ZEROCOPY_COPIED
 *   uring_zc        io_uring IORING_OP_SEND_ZC with IORING_SEND_ZC_REPORT_USAGE
 *                   (IORING_NOTIF_USAGE_ZC_COPIED counts copied sends); the
 *                   ring is refilled and entered once per round
 *   uring_zc_fixed  the same from a registered (fixed) buffer
 *   sendfile        sendfile() from a tmpfs file (page cache pages)
 *   vmsplice        vmsplice() of the user buffer into a pipe + splice() out
 *   zcsend          ZCSEND_IOC_SEND on /dev/zcsend; completion records read
 *                   with read() every 32 sends; their flags are reported
 *   zcsend_fixed    the same from a buffer registered once
 *                   (ZCSEND_IOC_REGISTER_BUFFERS; ZCSEND_SEND_FIXED with the
 *                   range in the request, ZCSEND_SEND_BUF)
 *   zcsend_batch    registered buffer, up to URING_ENTRIES sends per
 *                   ZCSEND_IOC_SUBMIT (io_uring's batch); completions taken
 *                   from the mmap'ed ring (no read()), eventfd to wait
 *
 * Fan-out methods (also in --methods; "fanout" selects all six, "single"
 * the nine above, "all" everything): one payload to each of N sockets
 * (--fanout, default 1,8,64) at --fanout-sizes (default 64K,1M; UDP: 65000
 * instead of 64K, 1M n/a). TCP: N connections to the same receiver; UDP: N
 * sockets, each connected to --dest at --port + i.
 *   fanout_send            N x send()
 *   fanout_msg_zc          N x send(MSG_ZEROCOPY), each socket's error queue
 *                          drained every 32 payloads (N notifications per
 *                          payload, before coalescing)
 *   fanout_uring_zc_fixed  the payload's N SEND_ZC SQEs from the registered
 *                          buffer to the registered files (IOSQE_FIXED_FILE),
 *                          submitted together (a ring of its own: SQ
 *                          FANOUT_SQ, CQ FANOUT_CQ); TCP: the next payloads
 *                          once these have sent
 *   fanout_tee             vmsplice() the payload into a pipe once, tee()
 *                          it into a pipe per destination and splice() that
 *                          to the socket; the last destination gets the
 *                          source pipe itself (N-1 tee(), N splice())
 *   zcsend_fanout          fan-outs batched with ZCSEND_SUBMIT_FANOUT as the
 *                          io_uring method batches its SQEs, the payload a
 *                          ZCSEND_SEND_FIXED range of the registered buffer
 *                          (the cheap path: nothing pinned per payload) to
 *                          the registered sockets (ZCSEND_SEND_FIXED_SOCKET);
 *                          one record per payload, read from the mmap'ed ring
 *   zcsend_fanout_stable   the same with ZCSEND_FANOUT_STABLE, a plain iovec
 *                          (the module copies it once)
 * At most inflight_cap() payloads (buffer slots) are in flight, as sends
 * are for the single-socket methods; io_uring also at most FANOUT_SENDS
 * sends (its CQ). Bytes are counted once per destination.
 *
 * Every cell (method x size) sends a fixed byte count (--bytes, between
 * --min-calls and --max-calls sends) on a fresh socket after an untimed
 * warm-up of 1/16 of it, and is repeated --reps times, repetition-major so
 * that drift spreads over all methods. A cell ends when the buffers are free
 * again: the last send returned (copying methods) or the last completion
 * was read (zero-copy ones); on TCP, additionally, when the peer has
 * acknowledged every byte (SIOCOUTQ == 0), so that every method is timed to
 * the same point.
 *
 * Output, one line per record on stdout, parsed by report.py:
 *   ZCB,meta,KEY,VALUE
 *   ZCB,null,PATH,NAME,CPU_S_PER_CALL,WALL_S_PER_CALL,CALLS
 *   ZCB,cell,PATH,METHOD,SIZE,SENDSZ,REP,BYTES,CALLS,SYSCALLS,WALL_S,CPU_S,
 *       GUEST_CPU_S,COMPL,ZC,COPIED,CFLAGS,RUSAGE_S
 *   ZCB,skip,PATH,METHOD,SIZE,REASON
 *   ZCB,tbmark,PATH,METHOD,SIZE,REP,CALLS (ZCBENCH_TBPROF=1 only)
 *   ZCB,fanout,PATH,METHOD,SIZE,SENDSZ,N,REP,PAYLOADS,BYTES,SENDS,SYSCALLS,
 *       WALL_S,CPU_S,GUEST_CPU_S,COMPL,EVENTS,ZC,COPIED,CFLAGS,RUSAGE_S
 *   ZCB,fanout_skip,PATH,METHOD,SIZE,N,REASON
 * and human-readable progress lines starting with "zcbench:". In fanout
 * records BYTES is the sum over destinations (PAYLOADS x N x SENDSZ when
 * every send took everything), SENDS the per-socket sends (PAYLOADS x N),
 * COMPL the completions (one per send; zcsend: one per payload) and EVENTS
 * the completion messages read (MSG_ZEROCOPY coalesces ranges).
 *
 * CPU_S is the sending thread's CPU time (CLOCK_THREAD_CPUTIME_ID, ns; the
 * same runtime getrusage(RUSAGE_THREAD) reports as RUSAGE_S, in us),
 * completion draining included; GUEST_CPU_S is the busy time of all CPUs
 * (/proc/stat), which also holds softirqs, kworkers and an in-guest receiver.
 *
 * zcbench --sink PORT [ADDR] runs the TCP receiver (discards everything,
 * from any number of concurrent connections, one poll() loop); the runner
 * starts it on the host end of the tap, and zcbench forks one itself for
 * --local-sink (loopback).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <liburing.h>
#include <linux/errqueue.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/zcsend.h>
#include "zcsend_ring.h"

#ifndef SO_ZEROCOPY
#define SO_ZEROCOPY 60
#endif
#ifndef MSG_ZEROCOPY
#define MSG_ZEROCOPY 0x4000000
#endif
#ifndef SO_EE_ORIGIN_ZEROCOPY
#define SO_EE_ORIGIN_ZEROCOPY 5
#endif
#ifndef SO_EE_CODE_ZEROCOPY_COPIED
#define SO_EE_CODE_ZEROCOPY_COPIED 1
#endif
/* Newer than liburing 2.3's header; the 7.2 kernel has them. */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

#define REGION		(16u << 20)	/* send buffer and tmpfs file */
#define PAGE		4096u
#define DRAIN_EVERY	32		/* sends between completion drains */
#define MAX_INFLIGHT	256		/* zero-copy sends not completed yet */
#define URING_ENTRIES	MAX_INFLIGHT	/* SQ size; the CQ has twice that */
#define WAIT_S		20.0		/* for completions / ACKs at cell end */
#define UDP_MAX		65000		/* UDP payload used for the 64K cell */
#define FANOUT_SQ	1024		/* fan-out ring: one payload per submission */
#define FANOUT_CQ	4096
#define FANOUT_SENDS	(FANOUT_CQ / 2)	/* a send and its notification */
#define MAX_NS		16		/* --fanout values */

enum method {
	M_SEND, M_MSGZC, M_URING_ZC, M_URING_ZCF, M_SENDFILE, M_SPLICE, M_ZCSEND,
	M_ZCSEND_FIXED, M_ZCSEND_BATCH,
	/* fan-out: one payload to N sockets */
	M_FO_SEND, M_FO_MSGZC, M_FO_URING, M_FO_TEE, M_FO_ZCSEND, M_FO_STABLE,
	M_NR
};
#define M_FO_FIRST M_FO_SEND

static const char *const method_name[M_NR] = {
	"send", "msg_zerocopy", "uring_zc", "uring_zc_fixed", "sendfile",
	"vmsplice", "zcsend", "zcsend_fixed", "zcsend_batch",
	"fanout_send", "fanout_msg_zc", "fanout_uring_zc_fixed", "fanout_tee",
	"zcsend_fanout", "zcsend_fanout_stable",
};

struct res {
	uint64_t bytes, calls, syscalls, compl, zc, copied;
	uint64_t sends, events;	/* fan-out: per-socket sends, messages read */
	uint32_t cflags;
	double wall, cpu, gcpu, rusage;
};

/* The sockets (and tee pipes) of one fan-out cell. */
struct fan {
	int n;
	int *fd;
	struct res *d;			/* per-socket counters (MSG_ZEROCOPY) */
	int *pr, *pw;			/* fanout_tee: a pipe per destination */
	size_t pipe_cap;		/* fanout_tee: bytes every pipe holds */
	struct zcsend_dest *dest;	/* ZCSEND_IOC_FANOUT */
	uint32_t dest_flags;		/* ZCSEND_SEND_FIXED_SOCKET if registered */
	bool uring_files;		/* fanout_uring_zc_fixed: registered files */
};

static struct {
	const char *path;
	bool tcp;
	bool huge;		/* --huge: the buffer in transparent huge pages */
	struct sockaddr_storage dst;
	socklen_t dstlen;
	uint8_t *buf;
	int filefd;
	int pr, pw;
	int zfd, efd;
	struct io_uring ring, fring;
	bool ring_ok, fixed_ok, zc_fixed_ok, zc_ring_ok, fring_ok;
	const char *fanout_why, *stable_why;	/* why ZCSEND_IOC_FANOUT cannot run */
	struct zcsend_ring zring;
	pid_t sink;
	uint64_t bytes, fbytes, min_calls, max_calls;
	int reps;
	bool verbose;
} g = { .filefd = -1, .pr = -1, .pw = -1, .zfd = -1, .efd = -1, .sink = -1 };

/*
 * A method's name in the records: with --huge, "<method>_huge" (its own
 * rows in the report).
 */
static const char *mname(enum method m)
{
	static char huge[M_NR][40];

	if (!g.huge)
		return method_name[m];
	if (!huge[m][0])
		snprintf(huge[m], sizeof(huge[m]), "%s_huge", method_name[m]);
	return huge[m];
}

static const char *prog = "zcbench";

static void die(const char *fmt, ...)
{
	va_list ap;

	printf("%s: error: ", prog);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (g.sink > 0)
		kill(g.sink, SIGTERM);
	exit(1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * The sending thread's CPU time. CLOCK_THREAD_CPUTIME_ID reads the
 * scheduler's runtime in ns; getrusage(RUSAGE_THREAD) derives its
 * utime+stime from the same runtime but in us and only monotonically
 * adjusted, which loses short intervals. Both are recorded.
 */
static double thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* User-space part of this thread's CPU time (progress lines only). */
static double thread_utime(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
}

static double thread_rusage(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/*
 * TCP counters of the guest (/proc/net/snmp Tcp: OutSegs, InSegs; /proc/net/
 * netstat TcpExt: TCPAutoCorking): per cell, how many segments a send made
 * and how many ACKs came back, which say whether sends coalesced.
 */
struct tcpstat {
	double out, in, autocork, ctxt, intr;
};

static double proc_field(const char *file, const char *prefix, const char *name)
{
	char hdr[4096], val[4096], *hs, *vs, *h, *v;
	size_t plen = strlen(prefix);
	double ret = 0;
	FILE *f = fopen(file, "r");

	if (!f)
		return 0;
	while (fgets(hdr, sizeof(hdr), f) && fgets(val, sizeof(val), f)) {
		if (strncmp(hdr, prefix, plen) || strncmp(val, prefix, plen))
			continue;
		h = strtok_r(hdr + plen, " \n", &hs);
		v = strtok_r(val + plen, " \n", &vs);
		for (; h && v; h = strtok_r(NULL, " \n", &hs), v = strtok_r(NULL, " \n", &vs))
			if (!strcmp(h, name)) {
				ret = strtod(v, NULL);
				break;
			}
	}
	fclose(f);
	return ret;
}

/* The first number of /proc/stat's line starting with @key. */
static double stat_line(const char *key)
{
	char line[8192];
	double ret = 0;
	FILE *f = fopen("/proc/stat", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key))) {
			ret = strtod(line + strlen(key), NULL);
			break;
		}
	fclose(f);
	return ret;
}

static struct tcpstat tcp_stat(void)
{
	return (struct tcpstat){
		proc_field("/proc/net/snmp", "Tcp:", "OutSegs"),
		proc_field("/proc/net/snmp", "Tcp:", "InSegs"),
		proc_field("/proc/net/netstat", "TcpExt:", "TCPAutoCorking"),
		stat_line("ctxt "),
		stat_line("intr "),
	};
}

/* Busy time of all CPUs so far, from /proc/stat (everything but idle/iowait). */
static double guest_cpu(void)
{
	unsigned long long v[10] = { 0 };
	static long hz;
	FILE *f = fopen("/proc/stat", "r");
	int n;

	if (!hz)
		hz = sysconf(_SC_CLK_TCK);
	if (!f)
		return 0;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu",
		   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n < 7)
		return 0;
	/* user nice system idle iowait irq softirq steal */
	return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / hz;
}

static size_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);

	if (*end == 'K' || *end == 'k')
		v <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		v <<= 20, end++;
	else if (*end == 'G' || *end == 'g')
		v <<= 30, end++;
	if (*end || !v) {
		fprintf(stderr, "%s: bad size %s\n", prog, s);
		exit(2);
	}
	return v;
}

static const char *size_str(size_t s, char *b)
{
	if (s >= (1u << 20) && !(s % (1u << 20)))
		sprintf(b, "%zuM", s >> 20);
	else if (s >= 1024 && !(s % 1024))
		sprintf(b, "%zuK", s >> 10);
	else
		sprintf(b, "%zu", s);
	return b;
}

/* ---- TCP receiver --------------------------------------------------- */

static volatile sig_atomic_t sink_stop;

static void on_term(int sig)
{
	(void)sig;
	sink_stop = 1;
}

/* Raises the open-file limit to its hard limit: fan-out needs a socket (and
 * for fanout_tee a pipe) per destination, the sink one per connection. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/*
 * Accepts any number of concurrent connections (fan-out opens up to 1024 at
 * once) and discards what they send: one poll() loop, every pending
 * connection accepted per round, at most a few reads per connection per
 * round so that none starves the others.
 */
static int run_sink(int port, const char *addr)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	static char buf[1 << 20];
	struct pollfd *p;
	int one = 1, lfd, n = 1, room = 256, i;

	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	if (addr && inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
		die("sink: bad address %s", addr);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (void *)&sa, sizeof(sa)) || listen(lfd, SOMAXCONN))
		die("sink: cannot listen on port %d: %s", port, strerror(errno));
	p = malloc(room * sizeof(*p));
	if (!p)
		die("sink: out of memory");
	printf("%s: sink listening on %s:%d\n", prog, addr ? addr : "0.0.0.0", port);
	fflush(stdout);
	p[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
	while (!sink_stop) {
		if (poll(p, n, 1000) < 0) {
			if (errno == EINTR)
				continue;
			die("sink: poll: %s", strerror(errno));
		}
		for (i = 1; i < n; i++) {
			ssize_t r = 1;
			int k;

			if (!p[i].revents)
				continue;
			for (k = 0; k < 4 && r > 0; k++)
				r = recv(p[i].fd, buf, sizeof(buf), 0);
			if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
				close(p[i].fd);
				p[i--] = p[--n];
			}
		}
		if (!(p[0].revents & POLLIN))
			continue;
		for (;;) {
			int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

			if (c < 0)
				break;	/* EAGAIN: all taken; EMFILE: next round */
			if (n == room) {
				struct pollfd *q = realloc(p, 2 * room * sizeof(*p));

				if (!q) {
					close(c);
					break;
				}
				p = q;
				room *= 2;
			}
			p[n++] = (struct pollfd){ .fd = c, .events = POLLIN };
		}
	}
	return 0;
}

/* ---- setup ---------------------------------------------------------- */

static void resolve(const char *host, int port)
{
	struct sockaddr_in *s4 = (void *)&g.dst;
	struct sockaddr_in6 *s6 = (void *)&g.dst;

	memset(&g.dst, 0, sizeof(g.dst));
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		g.dstlen = sizeof(*s4);
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		g.dstlen = sizeof(*s6);
	} else {
		fprintf(stderr, "%s: %s is not an IP address\n", prog, host);
		exit(2);
	}
}

/* A socket connected to the destination, its port raised by @port_add
 * (fan-out: each UDP destination its own port). */
static int open_sock_port(bool zerocopy, int port_add)
{
	struct sockaddr_storage dst = g.dst;
	int one = 1, fd, tries;

	if (port_add) {
		struct sockaddr_in *s4 = (void *)&dst;
		struct sockaddr_in6 *s6 = (void *)&dst;

		if (dst.ss_family == AF_INET)
			s4->sin_port = htons(ntohs(s4->sin_port) + port_add);
		else
			s6->sin6_port = htons(ntohs(s6->sin6_port) + port_add);
	}
	for (tries = 0; ; tries++) {
		fd = socket(g.dst.ss_family, (g.tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
		if (fd < 0)
			die("socket: %s", strerror(errno));
		if (zerocopy && setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)))
			die("SO_ZEROCOPY: %s", strerror(errno));
		if (!connect(fd, (void *)&dst, g.dstlen))
			return fd;
		if (tries >= 50)
			die("connect: %s", strerror(errno));
		close(fd);
		usleep(100000);	/* the receiver may still be starting */
	}
}

static int open_sock(bool zerocopy)
{
	return open_sock_port(zerocopy, 0);
}

/* TCP: waits until the peer has acknowledged every byte. */
static void wait_acked(int fd, struct res *r)
{
	double end = now() + WAIT_S;
	int out;

	if (!g.tcp)
		return;
	for (;;) {
		r->syscalls++;
		if (ioctl(fd, SIOCOUTQ, &out) || out == 0)
			return;
		if (now() > end)
			die("%d bytes still unacknowledged after %.0f s", out, WAIT_S);
		r->syscalls++;
		usleep(200);
	}
}

/* Kilobytes of this process's anonymous memory in huge pages. */
static long anon_huge_kb(void)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	char line[256];
	long kb = -1;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

#define HUGE_SZ		(2u << 20)

static void setup_buffers(void)
{
	const char *file = "/tmp/zcbench.data";
	size_t i, extra = g.huge ? HUGE_SZ : 0;
	uint8_t *p;

	p = mmap(NULL, REGION + extra, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	/*
	 * Small pages by default, as before the kernels had THP: huge folios
	 * change what a frag is for every zero-copy method (and io_uring's
	 * fixed buffers then charge TCP a frag's whole offset into the folio
	 * as truesize). --huge is the huge-page variant: the region 2 MiB
	 * aligned in transparent huge pages, so that one frag can carry a
	 * whole send (the module's and io_uring's registered buffers coalesce
	 * a folio into one segment, MSG_ZEROCOPY merges compound pages).
	 */
	g.buf = (uint8_t *)(((uintptr_t)p + extra - 1) & ~(uintptr_t)(extra ? extra - 1 : 0));
	if (!extra)
		g.buf = p;
	madvise(g.buf, REGION, g.huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	for (i = 0; i < REGION; i++)
		g.buf[i] = (uint8_t)(i * 131 + (i >> 12));
	if (g.huge) {
		long kb = anon_huge_kb();

		printf("ZCB,meta,huge_kb,%ld\n", kb);
		if (kb < (long)(REGION / 2 / 1024))
			die("--huge: only %ld kB of the %u MiB buffer in huge pages", kb,
			    REGION >> 20);
	}
	g.filefd = open(file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (g.filefd < 0 || write(g.filefd, g.buf, REGION) != REGION)
		die("cannot write %s: %s", file, strerror(errno));
	unlink(file);
}

/* Byte offset of the i-th send of @size bytes in the region. */
static size_t slot(uint64_t i, size_t size)
{
	size_t stride = size < PAGE ? size : (size + PAGE - 1) & ~(size_t)(PAGE - 1);

	if (size >= 65000)	/* UDP 65000: 64 KiB-aligned, 16 pages */
		stride = (size + 0xffff) & ~(size_t)0xffff;
	return (i * stride) % (REGION - REGION % stride);
}

static int inflight_cap(size_t size)
{
	size_t stride = (size + PAGE - 1) & ~(size_t)(PAGE - 1);
	size_t cap = REGION / stride;

	return cap < MAX_INFLIGHT ? (int)cap : MAX_INFLIGHT;
}

/* ---- send() --------------------------------------------------------- */

static void run_send(int fd, size_t size, uint64_t calls, struct res *r)
{
	uint64_t i;

	for (i = 0; i < calls; i++) {
		ssize_t n;

		r->syscalls++;
		n = send(fd, g.buf + slot(i, size), size, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR || errno == ENOBUFS || errno == EAGAIN) {
				i--;
				continue;
			}
			die("send: %s", strerror(errno));
		}
		r->bytes += n;
		r->calls++;
	}
}

/* ---- MSG_ZEROCOPY --------------------------------------------------- */

/* Reads notifications until @want completions are in (or EAGAIN). */
static void msgzc_drain(int fd, struct res *r, uint64_t want, int wait_ms)
{
	while (r->compl < want) {
		struct sock_extended_err *serr;
		char control[128];
		struct msghdr msg = { .msg_control = control,
				      .msg_controllen = sizeof(control) };
		struct cmsghdr *cm;
		uint32_t range;

		r->syscalls++;
		if (recvmsg(fd, &msg, MSG_ERRQUEUE) < 0) {
			struct pollfd p = { .fd = fd, .events = 0 };

			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				die("recvmsg(MSG_ERRQUEUE): %s", strerror(errno));
			if (!wait_ms)
				return;
			r->syscalls++;
			if (poll(&p, 1, wait_ms) <= 0)
				return;
			continue;
		}
		cm = CMSG_FIRSTHDR(&msg);
		if (!cm)
			die("MSG_ZEROCOPY notification without cmsg");
		serr = (void *)CMSG_DATA(cm);
		if (serr->ee_origin != SO_EE_ORIGIN_ZEROCOPY || serr->ee_errno)
			die("unexpected error queue entry: origin %u errno %u",
			    serr->ee_origin, serr->ee_errno);
		range = serr->ee_data - serr->ee_info + 1;
		r->events++;
		r->compl += range;
		if (serr->ee_code & SO_EE_CODE_ZEROCOPY_COPIED)
			r->copied += range;
		else
			r->zc += range;
	}
}

static void run_msgzc(int fd, size_t size, uint64_t calls, struct res *r)
{
	double end;
	uint64_t i;
	int cap = inflight_cap(size);

	for (i = 0; i < calls; i++) {
		ssize_t n;

		r->syscalls++;
		n = send(fd, g.buf + slot(i, size), size, MSG_ZEROCOPY | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR) {
				i--;
				continue;
			}
			if (errno == ENOBUFS || errno == EAGAIN) {
				/* optmem (notification) limit: let some complete */
				msgzc_drain(fd, r, r->compl + 1, 10);
				i--;
				continue;
			}
			die("send(MSG_ZEROCOPY): %s", strerror(errno));
		}
		r->bytes += n;
		r->calls++;
		if (r->calls % DRAIN_EVERY == 0)
			msgzc_drain(fd, r, r->calls, 0);
		if (r->calls - r->compl >= (uint64_t)cap)
			msgzc_drain(fd, r, r->calls - cap / 2, 100);
	}
	end = now() + WAIT_S;
	while (r->compl < r->calls && now() < end)
		msgzc_drain(fd, r, r->calls, 100);
	if (r->compl < r->calls)
		die("MSG_ZEROCOPY: %" PRIu64 " of %" PRIu64 " completions after %.0f s",
		    r->compl, r->calls, WAIT_S);
}

/* ---- io_uring SEND_ZC ----------------------------------------------- */

static void setup_ring(void)
{
	struct io_uring_params p = {
		.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
	};
	struct iovec iov = { g.buf, REGION };
	int ret;

	ret = io_uring_queue_init_params(URING_ENTRIES, &g.ring, &p);
	if (ret == -EINVAL) {
		memset(&p, 0, sizeof(p));
		ret = io_uring_queue_init_params(URING_ENTRIES, &g.ring, &p);
	}
	if (ret) {
		printf("%s: io_uring unavailable: %s\n", prog, strerror(-ret));
		return;
	}
	g.ring_ok = true;
	ret = io_uring_register_buffers(&g.ring, &iov, 1);
	if (ret)
		printf("%s: io_uring_register_buffers: %s: no fixed-buffer runs\n",
		       prog, strerror(-ret));
	else
		g.fixed_ok = true;
}

/*
 * fanout_uring_zc_fixed's ring: an SQ that holds a whole payload's SQEs
 * (N <= ZCSEND_MAX_FANOUT) and a CQ for FANOUT_SENDS sends in flight, with
 * the region registered as in the single-socket ring.
 */
static void setup_fring(void)
{
	struct io_uring_params p = {
		.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
			 IORING_SETUP_CQSIZE,
		.cq_entries = FANOUT_CQ,
	};
	struct iovec iov = { g.buf, REGION };
	int ret;

	ret = io_uring_queue_init_params(FANOUT_SQ, &g.fring, &p);
	if (ret == -EINVAL) {
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = FANOUT_CQ;
		ret = io_uring_queue_init_params(FANOUT_SQ, &g.fring, &p);
	}
	if (ret) {
		printf("%s: fan-out io_uring unavailable: %s\n", prog, strerror(-ret));
		return;
	}
	ret = io_uring_register_buffers(&g.fring, &iov, 1);
	if (ret) {
		printf("%s: io_uring_register_buffers (fan-out ring): %s\n", prog,
		       strerror(-ret));
		io_uring_queue_exit(&g.fring);
		return;
	}
	g.fring_ok = true;
}

/*
 * UDP: up to @cap independent sends in flight. TCP: sends on one stream must
 * not overtake each other, and hundreds of unordered requests parked on the
 * socket's poll would all wake at every ACK: so each round is one chain of
 * linked sends (IOSQE_IO_LINK, MSG_WAITALL: complete, in order), the next
 * chain is queued once the previous one has sent, and only the zero-copy
 * notifications stay outstanding (up to @cap), as an application would do.
 */
static void run_uring(int fd, size_t size, uint64_t calls, bool fixed, struct res *r)
{
	struct io_uring *ring = &g.ring;
	int cap = inflight_cap(size), inflight = 0, unsent = 0;
	int msgflags = MSG_NOSIGNAL | (g.tcp ? MSG_WAITALL : 0);
	uint64_t queued = 0;
	double end = 0;

	while (queued < calls || inflight) {
		struct io_uring_sqe *sqe, *last = NULL;
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		int ret;

		while (inflight < cap && queued < calls && !(g.tcp && unsent && !last)) {
			void *p = g.buf + slot(queued, size);

			sqe = io_uring_get_sqe(ring);
			if (!sqe)
				break;
			if (fixed)
				io_uring_prep_send_zc_fixed(sqe, fd, p, size, msgflags,
							    IORING_SEND_ZC_REPORT_USAGE, 0);
			else
				io_uring_prep_send_zc(sqe, fd, p, size, msgflags,
						      IORING_SEND_ZC_REPORT_USAGE);
			sqe->user_data = queued;
			if (g.tcp) {
				if (last)
					last->flags |= IOSQE_IO_LINK;
				last = sqe;
			}
			inflight++;
			unsent++;
			queued++;
		}
		if (queued == calls && !end)
			end = now() + WAIT_S;
		r->syscalls++;
		ret = io_uring_submit_and_wait(ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
			die("io_uring_submit_and_wait: %s", strerror(-ret));
		io_uring_for_each_cqe(ring, head, cqe) {
			seen++;
			if (cqe->flags & IORING_CQE_F_NOTIF) {
				inflight--;
				r->compl++;
				if (cqe->res & IORING_NOTIF_USAGE_ZC_COPIED)
					r->copied++;
				else
					r->zc++;
				continue;
			}
			unsent--;
			if (cqe->res < 0)
				die("SEND_ZC%s: %s", fixed ? " (fixed)" : "", strerror(-cqe->res));
			r->bytes += cqe->res;
			r->calls++;
			if (!(cqe->flags & IORING_CQE_F_MORE))
				inflight--;	/* no notification follows */
		}
		io_uring_cq_advance(ring, seen);
		if (end && now() > end)
			die("io_uring: %d sends still in flight after %.0f s", inflight, WAIT_S);
	}
}

/* ---- sendfile(), vmsplice() + splice() ------------------------------- */

static void run_sendfile(int fd, size_t size, uint64_t calls, struct res *r)
{
	uint64_t i;

	for (i = 0; i < calls; i++) {
		off_t off = slot(i, size);
		ssize_t n;

		r->syscalls++;
		n = sendfile(fd, g.filefd, &off, size);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == ENOBUFS) {
				i--;
				continue;
			}
			die("sendfile: %s", strerror(errno));
		}
		r->bytes += n;
		r->calls++;
	}
}

static void run_splice(int fd, size_t size, uint64_t calls, struct res *r)
{
	uint64_t i;

	for (i = 0; i < calls; i++) {
		struct iovec iov = { g.buf + slot(i, size), size };
		size_t inpipe = 0;

		while (iov.iov_len || inpipe) {
			ssize_t n;

			if (iov.iov_len) {
				r->syscalls++;
				n = vmsplice(g.pw, &iov, 1, SPLICE_F_NONBLOCK);
				if (n < 0 && errno != EAGAIN && errno != EINTR)
					die("vmsplice: %s", strerror(errno));
				if (n > 0) {
					iov.iov_base = (char *)iov.iov_base + n;
					iov.iov_len -= n;
					inpipe += n;
					r->bytes += n;
				}
			}
			while (inpipe) {
				r->syscalls++;
				n = splice(g.pr, NULL, fd, NULL, inpipe,
					   SPLICE_F_MOVE | (iov.iov_len ? SPLICE_F_MORE : 0));
				if (n < 0 && (errno == EINTR || errno == EAGAIN))
					continue;
				if (n <= 0)
					die("splice: %s", n ? strerror(errno) : "returned 0");
				inpipe -= n;
			}
		}
		r->calls++;
	}
}

/* ---- zcsend --------------------------------------------------------- */

/* Counts @n completion records in @r. */
static void zc_account(struct res *r, const struct zcsend_completion *c, int n)
{
	int k;

	for (k = 0; k < n; k++) {
		r->compl++;
		r->events++;
		r->cflags |= c[k].flags;
		if (c[k].flags & ZCSEND_COMPL_ZEROCOPY)
			r->zc++;
		else
			r->copied++;
	}
}

static void zc_drain(struct res *r, uint64_t want, int wait_ms)
{
	struct zcsend_completion c[64];

	while (r->compl < want) {
		ssize_t n;

		r->syscalls++;
		n = read(g.zfd, c, sizeof(c));
		if (n < 0) {
			struct pollfd p = { .fd = g.efd, .events = POLLIN };
			uint64_t ticks;

			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				die("read %s: %s", ZCSEND_DEVICE, strerror(errno));
			if (!wait_ms)
				return;
			/* Wake-ups on request: arm one, then look again. */
			if (g.zc_ring_ok && zcsend_ring_arm(&g.zring))
				continue;
			r->syscalls += 2;
			if (poll(&p, 1, wait_ms) <= 0)
				return;
			if (read(g.efd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
				die("read eventfd: %s", strerror(errno));
			continue;
		}
		zc_account(r, c, n / (ssize_t)sizeof(c[0]));
	}
}

static void run_zcsend(int fd, size_t size, uint64_t calls, bool fixed, struct res *r)
{
	int cap = inflight_cap(size);
	double end;
	uint64_t i;

	for (i = 0; i < calls; i++) {
		/*
		 * zcsend: the buffer named in the request (ZCSEND_SEND_BUF),
		 * as send(2) names it for MSG_ZEROCOPY; zcsend_fixed: the same
		 * bytes, as a range of buffer 0 named in the request too
		 * (ZCSEND_SEND_FIXED | ZCSEND_SEND_BUF), as an io_uring SQE
		 * names its registered buffer.
		 */
		struct zcsend_send req = {
			.fd = fd,
			.flags = MSG_NOSIGNAL | ZCSEND_SEND_BUF | (fixed ? ZCSEND_SEND_FIXED : 0),
			.iov = fixed ? ZCSEND_FIXED_RANGE(0, slot(i, size)) :
				       (uintptr_t)(g.buf + slot(i, size)),
			.iovcnt = size,
			.user_data = i,
		};
		long n;

		r->syscalls++;
		n = ioctl(g.zfd, ZCSEND_IOC_SEND, &req);
		if (n < 0) {
			if (errno == EINTR) {
				i--;
				continue;
			}
			if (errno == ENOBUFS || errno == ENOMEM || errno == EAGAIN ||
			    errno == EBUSY) {
				zc_drain(r, r->compl + 1, 10);
				i--;
				continue;
			}
			die("ZCSEND_IOC_SEND: %s", strerror(errno));
		}
		r->bytes += n;
		r->calls++;
		if (r->calls % DRAIN_EVERY == 0)
			zc_drain(r, r->calls, 0);
		if (r->calls - r->compl >= (uint64_t)cap)
			zc_drain(r, r->calls - cap / 2, 100);
	}
	end = now() + WAIT_S;
	while (r->compl < r->calls && now() < end)
		zc_drain(r, r->calls, 100);
	if (r->compl < r->calls)
		die("zcsend: %" PRIu64 " of %" PRIu64 " completions after %.0f s",
		    r->compl, r->calls, WAIT_S);
}

/* Completions from the mmap'ed ring until @want, waiting up to @wait_ms. */
static void zc_ring_drain(struct res *r, uint64_t want, int wait_ms)
{
	struct zcsend_completion c[64];

	while (r->compl < want) {
		unsigned int n = zcsend_ring_peek(&g.zring, c, 64);

		if (!n) {
			if (!wait_ms)
				return;
			r->syscalls += 2;	/* poll + eventfd read */
			if (zcsend_ring_wait(&g.zring, g.efd, wait_ms) <= 0)
				return;
			continue;
		}
		zc_account(r, c, n);
		zcsend_ring_advance(&g.zring, n);
	}
}

/* Registered buffer + ZCSEND_IOC_SUBMIT batches, as io_uring batches. */
static void run_zcsend_batch(int fd, size_t size, uint64_t calls, struct res *r)
{
	static struct zcsend_send req[URING_ENTRIES];
	int cap = inflight_cap(size);
	uint64_t queued = 0;
	double end;

	while (queued < calls) {
		uint64_t room = cap - (r->calls - r->compl);
		int k, n = 0;
		long ret;

		if (room > calls - queued)
			room = calls - queued;
		if (room > URING_ENTRIES)
			room = URING_ENTRIES;
		for (k = 0; k < (int)room; k++) {
			req[k] = (struct zcsend_send){
				.fd = fd,
				.flags = MSG_NOSIGNAL | ZCSEND_SEND_FIXED | ZCSEND_SEND_BUF,
				.iov = ZCSEND_FIXED_RANGE(0, slot(queued + k, size)),
				.iovcnt = size,
				.user_data = queued + k,
			};
			n++;
		}
		if (n) {
			struct zcsend_submit sub = { (uintptr_t)req, n, 0 };

			r->syscalls++;
			ret = ioctl(g.zfd, ZCSEND_IOC_SUBMIT, &sub);
			if (ret < 0) {
				if (errno != EINTR && errno != ENOBUFS && errno != ENOMEM &&
				    errno != EAGAIN && errno != EBUSY)
					die("ZCSEND_IOC_SUBMIT: %s", strerror(errno));
				ret = 0;
			}
			/* Blocking sends: a submitted one took all its bytes. */
			r->bytes += (uint64_t)ret * size;
			r->calls += ret;
			queued += ret;
		}
		zc_ring_drain(r, r->calls >= (uint64_t)cap ? r->calls - cap / 2 : 0,
			      r->calls - r->compl >= (uint64_t)cap ? 100 : 0);
		zc_ring_drain(r, r->calls, 0);
	}
	end = now() + WAIT_S;
	while (r->compl < r->calls && now() < end)
		zc_ring_drain(r, r->calls, 100);
	if (r->compl < r->calls)
		die("zcsend_batch: %" PRIu64 " of %" PRIu64 " completions after %.0f s",
		    r->compl, r->calls, WAIT_S);
}

static void setup_zcsend(void)
{
	struct zcsend_stats st;
	__u32 abi = 0;

	g.zfd = open(ZCSEND_DEVICE, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (g.zfd < 0) {
		printf("%s: %s: %s: no zcsend runs\n", prog, ZCSEND_DEVICE, strerror(errno));
		return;
	}
	if (ioctl(g.zfd, ZCSEND_IOC_VERSION, &abi) || abi != ZCSEND_ABI_VERSION)
		die("%s speaks ABI %u, this program %u", ZCSEND_DEVICE, abi,
		    ZCSEND_ABI_VERSION);
	g.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (g.efd < 0 || ioctl(g.zfd, ZCSEND_IOC_SET_EVENTFD, &g.efd))
		die("ZCSEND_IOC_SET_EVENTFD: %s", strerror(errno));
	if (!ioctl(g.zfd, ZCSEND_IOC_STATS, &st))
		printf("ZCB,meta,zcsend_copy_threshold,%llu\n",
		       (unsigned long long)st.copy_threshold);
	{
		/* zcsend_fixed sends from the whole region, registered once. */
		struct zcsend_buffer b = { (uintptr_t)g.buf, REGION };
		struct zcsend_register rq = { (uintptr_t)&b, 1, 0 };

		/* Returns the segment count. */
		g.zc_fixed_ok = ioctl(g.zfd, ZCSEND_IOC_REGISTER_BUFFERS, &rq) >= 0;
		g.zc_ring_ok = !zcsend_ring_map(g.zfd, &g.zring);
		if (!g.zc_ring_ok)
			printf("%s: cannot map the zcsend ring: no zcsend_batch runs\n", prog);
		else	/* eventfd signals only when a waiter armed one */
			zcsend_ring_wakeup_on_request(&g.zring);
		if (!g.zc_fixed_ok)
			printf("%s: ZCSEND_IOC_REGISTER_BUFFERS: %s: no zcsend_fixed runs\n",
			       prog, strerror(errno));
	}
}

/*
 * Whether the loaded module has ZCSEND_IOC_FANOUT (and its STABLE mode):
 * a well-formed call whose only fault is its destination, fd -1, must fail
 * with EBADF before sending anything; an unknown command fails otherwise
 * (ENOTTY, EINVAL). A module that took it all the same posted one record,
 * which is read here.
 */
static const char *probe_fanout(uint32_t flags)
{
	static char why[2][96];
	static int which;
	struct zcsend_completion c;
	struct zcsend_dest d = { .fd = -1 };
	struct iovec iov = { g.buf, 1 };
	struct zcsend_range rg = { 0, 0, 0, 1 };
	struct zcsend_fanout fo = {
		.flags = MSG_NOSIGNAL | flags, .iovcnt = 1,
		.iov = flags & ZCSEND_SEND_FIXED ? (uintptr_t)&rg : (uintptr_t)&iov,
		.dests = (uintptr_t)&d, .nr = 1, .user_data = ~0ULL,
	};
	struct pollfd p = { .fd = g.efd, .events = POLLIN };
	char *w = why[which++ & 1];

	if (g.zfd < 0)
		return "/dev/zcsend missing";
	if (ioctl(g.zfd, ZCSEND_IOC_FANOUT, &fo) < 0) {
		if (errno == EBADF || errno == ENOTSOCK)
			return NULL;
		snprintf(w, 96, "no ZCSEND_IOC_FANOUT%s in this module (probe: %s)",
			 flags & ZCSEND_FANOUT_STABLE ? " STABLE" : "", strerror(errno));
		return w;
	}
	if (poll(&p, 1, 1000) == 1 && read(g.zfd, &c, sizeof(c)) == sizeof(c)) {
		uint64_t ticks;

		if (read(g.efd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
			die("read eventfd: %s", strerror(errno));
	}
	return NULL;
}

/* ---- null calls ----------------------------------------------------- */

static void null_call(int kind)
{
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	__u32 v;

	switch (kind) {
	case 0:
		syscall(SYS_getppid);
		break;
	case 1:
		ioctl(g.zfd, ZCSEND_IOC_VERSION, &v);
		break;
	case 2:
		sqe = io_uring_get_sqe(&g.ring);
		io_uring_prep_nop(sqe);
		io_uring_submit_and_wait(&g.ring, 1);
		if (!io_uring_peek_cqe(&g.ring, &cqe))
			io_uring_cqe_seen(&g.ring, cqe);
		break;
	}
}

/* Per-call cost of a call that does nothing, in this run: the overhead
 * every method pays per system call, whatever it sends. */
static void measure_null(double secs)
{
	static const char *const name[] = { "getppid", "zcsend_version", "uring_nop" };
	int kind;

	for (kind = 0; kind < 3; kind++) {
		double t0, c0, t;
		uint64_t n = 0;
		int i;

		if ((kind == 1 && g.zfd < 0) || (kind == 2 && !g.ring_ok))
			continue;
		for (i = 0; i < 64; i++)
			null_call(kind);
		t0 = now();
		c0 = thread_cpu();
		do {
			for (i = 0; i < 256; i++)
				null_call(kind);
			n += 256;
			t = now();
		} while (t - t0 < secs);
		printf("ZCB,null,%s,%s,%.9f,%.9f,%" PRIu64 "\n", g.path, name[kind],
		       (thread_cpu() - c0) / n, (t - t0) / n, n);
	}
}

/* ---- cells ---------------------------------------------------------- */

static bool method_ok(enum method m, size_t size, const char **why)
{
	*why = NULL;
	if (!g.tcp && size > UDP_MAX)
		*why = "larger than one UDP datagram";
	else if ((m == M_URING_ZC || m == M_URING_ZCF) && !g.ring_ok)
		*why = "io_uring unavailable";
	else if (m == M_URING_ZCF && !g.fixed_ok)
		*why = "no registered buffer";
	else if ((m == M_ZCSEND || m == M_ZCSEND_FIXED || m == M_ZCSEND_BATCH) && g.zfd < 0)
		*why = "/dev/zcsend missing";
	else if (m == M_ZCSEND_BATCH && !g.zc_ring_ok)
		*why = "no completion ring";
	else if ((m == M_ZCSEND_FIXED || m == M_ZCSEND_BATCH) && !g.zc_fixed_ok)
		*why = "no registered buffer";
	return !*why;
}

static void run_method(enum method m, int fd, size_t size, uint64_t calls, struct res *r)
{
	switch (m) {
	case M_SEND:	 run_send(fd, size, calls, r); break;
	case M_MSGZC:	 run_msgzc(fd, size, calls, r); break;
	case M_URING_ZC: run_uring(fd, size, calls, false, r); break;
	case M_URING_ZCF: run_uring(fd, size, calls, true, r); break;
	case M_SENDFILE: run_sendfile(fd, size, calls, r); break;
	case M_SPLICE:	 run_splice(fd, size, calls, r); break;
	case M_ZCSEND:	 run_zcsend(fd, size, calls, false, r); break;
	case M_ZCSEND_FIXED: run_zcsend(fd, size, calls, true, r); break;
	case M_ZCSEND_BATCH: run_zcsend_batch(fd, size, calls, r); break;
	default:	 break;
	}
}

static bool set_pipe_fd(int pw, size_t size, bool quiet)
{
	size_t want = 65536;

	while (want < size && want < (8u << 20))
		want <<= 1;
	if (fcntl(pw, F_SETPIPE_SZ, (int)want) >= 0)
		return true;
	if (!quiet)
		printf("%s: F_SETPIPE_SZ %zu: %s (vmsplice goes in pieces)\n",
		       prog, want, strerror(errno));
	return false;
}

static void set_pipe(size_t size)
{
	set_pipe_fd(g.pw, size, false);
}

/*
 * $ZCBENCH_PROFILE names ftrace's function_profile_enabled: the profiler is
 * on only while a cell's timed part runs (enabling resets its counts), so
 * the profile holds no setup (run_bench.sh, BENCH_PROFILE=1).
 */
static void profile_switch(bool on)
{
	const char *f = getenv("ZCBENCH_PROFILE");
	int fd;

	if (!f || !*f)
		return;
	fd = open(f, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, on ? "1" : "0", 1) != 1)
		fprintf(stderr, "%s: profile %s: %s\n", prog, f, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/*
 * $ZCBENCH_TBPROF=1: the QEMU plugin tools/bench/tbprof.so counts guest
 * kernel instructions and memory accesses between markers, `xchg %bx,%bx`
 * (a no-op anywhere else), set where a cell's timed part starts and ends;
 * a ZCB,tbmark record after each cell says which cell the counts are.
 */
static bool tb_on(void)
{
	static int on = -1;

	if (on < 0)
		on = getenv("ZCBENCH_TBPROF") && !strcmp(getenv("ZCBENCH_TBPROF"), "1");
	return on;
}

static void tb_marker(void)
{
#if defined(__x86_64__) || defined(__i386__)
	if (tb_on())
		__asm__ volatile("xchg %%bx, %%bx" ::: "memory");
#endif
}

/*
 * The module's stage profile (a zcsend.ko built with ZCSEND_STAGES=1, see
 * tools/bench/README.rst): cleared before a cell's timed part, printed
 * after it as ZCB,stage records and one line per stage (mean clock ticks
 * per occurrence, occurrences per send). Absent file: nothing.
 */
#define STAGES_FILE "/sys/kernel/debug/zcsend/stages"

static void stages_clear(void)
{
	int fd = open(STAGES_FILE, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (write(fd, "0", 1) != 1)
		fprintf(stderr, "%s: %s: %s\n", prog, STAGES_FILE, strerror(errno));
	close(fd);
}

static void stages_print(enum method m, size_t size, uint64_t calls)
{
	unsigned long long n, t, mean;
	char line[256], name[64];
	FILE *f = fopen(STAGES_FILE, "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63s %llu %llu %llu", name, &n, &t, &mean) != 4 || !n)
			continue;
		printf("ZCB,stage,%s,%s,%zu,%s,%llu,%llu\n", g.path, mname(m), size,
		       name, n, t);
		printf("%s:   stage %-14s %8llu ticks x %.2f per send\n", prog, name,
		       mean, calls ? (double)n / calls : 0.0);
	}
	fclose(f);
}

static void run_cell(enum method m, size_t size, size_t sendsz, int rep)
{
	uint64_t calls = g.bytes / sendsz;
	struct res w = { 0 }, r = { 0 };
	double t0, c0, g0, u0, ut0;
	struct tcpstat ts0, ts1;
	char sb[24];
	int fd;

	if (calls < g.min_calls)
		calls = g.min_calls;
	if (calls > g.max_calls)
		calls = g.max_calls;
	if (m == M_SPLICE)
		set_pipe(sendsz);
	fd = open_sock(m == M_MSGZC);

	/* Untimed warm-up on the same socket: page tables, slab caches,
	 * TCP's congestion window. It ends fully drained. */
	run_method(m, fd, sendsz, calls / 16 ? calls / 16 : 1, &w);
	wait_acked(fd, &w);

	profile_switch(true);
	stages_clear();
	tb_marker();
	ts0 = tcp_stat();
	g0 = guest_cpu();
	u0 = thread_rusage();
	ut0 = thread_utime();
	c0 = thread_cpu();
	t0 = now();
	run_method(m, fd, sendsz, calls, &r);
	wait_acked(fd, &r);
	r.wall = now() - t0;
	r.cpu = thread_cpu() - c0;
	r.rusage = thread_rusage() - u0;
	ut0 = thread_utime() - ut0;
	r.gcpu = guest_cpu() - g0;
	ts1 = tcp_stat();
	tb_marker();
	profile_switch(false);
	close(fd);

	printf("ZCB,cell,%s,%s,%zu,%zu,%d,%" PRIu64 ",%" PRIu64 ",%" PRIu64
	       ",%.6f,%.6f,%.3f,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%u,%.6f\n",
	       g.path, mname(m), size, sendsz, rep, r.bytes, r.calls, r.syscalls,
	       r.wall, r.cpu, r.gcpu, r.compl, r.zc, r.copied, r.cflags, r.rusage);
	printf("%s: %s rep %d %5s %-14s %8.1f MB/s %8.2f s/GB", prog, g.path, rep,
	       size_str(size, sb), mname(m), r.bytes / r.wall / 1e6,
	       r.cpu / (r.bytes / 1e9));
	if (r.compl)
		printf("  zero-copy %" PRIu64 "/%" PRIu64, r.zc, r.compl);
	if (r.rusage > 0)
		printf("  user %.0f%%", 100 * ut0 / r.rusage);
	if (ts1.out > ts0.out && r.calls)
		printf("  tcp segs/send out %.2f in %.2f autocork %.2f ctxt %.2f intr %.2f",
		       (ts1.out - ts0.out) / r.calls, (ts1.in - ts0.in) / r.calls,
		       (ts1.autocork - ts0.autocork) / r.calls,
		       (ts1.ctxt - ts0.ctxt) / r.calls, (ts1.intr - ts0.intr) / r.calls);
	putchar('\n');
	stages_print(m, size, r.calls);
	if (tb_on())
		printf("ZCB,tbmark,%s,%s,%zu,%d,%" PRIu64 "\n", g.path, mname(m), size, rep,
		       r.calls);
}

/* ---- fan-out ------------------------------------------------------- */

/* Opens the @n sockets of a fan-out cell (and fanout_tee's pipes). */
static void fan_open(struct fan *f, enum method m, int n, size_t size)
{
	bool quiet = false;
	int i, pfd[2];
	long sz;

	memset(f, 0, sizeof(*f));
	f->n = n;
	f->fd = calloc(n, sizeof(*f->fd));
	f->d = calloc(n, sizeof(*f->d));
	f->dest = calloc(n, sizeof(*f->dest));
	if (!f->fd || !f->d || !f->dest)
		die("out of memory");
	for (i = 0; i < n; i++) {
		/* UDP: a port per destination; TCP: N connections to the sink */
		f->fd[i] = open_sock_port(m == M_FO_MSGZC, g.tcp ? 0 : i);
		f->dest[i].fd = f->fd[i];
	}
	if (m == M_FO_URING && g.fring_ok) {
		/* Registered files, as zcsend's registered sockets below. */
		int ret = io_uring_register_files(&g.fring, f->fd, n);

		if (!ret)
			f->uring_files = true;
		else
			printf("%s: io_uring_register_files: %s (descriptors)\n", prog,
			       strerror(-ret));
	}
	if (m == M_FO_ZCSEND || m == M_FO_STABLE) {
		/*
		 * The destinations as registered sockets, by index (as
		 * io_uring's registered files would be): no descriptor lookup
		 * per destination. By descriptor if the module has none.
		 */
		struct zcsend_register_sockets rs = { (uintptr_t)f->fd, n, 0 };

		if (!ioctl(g.zfd, ZCSEND_IOC_REGISTER_SOCKETS, &rs)) {
			f->dest_flags = ZCSEND_SEND_FIXED_SOCKET;
			for (i = 0; i < n; i++)
				f->dest[i].fd = i;
		}
	}
	if (m != M_FO_TEE)
		return;
	/* The source pipe and one per destination but the last, all the
	 * same size; a payload larger than the smallest goes in pieces. */
	set_pipe(size);
	sz = fcntl(g.pw, F_GETPIPE_SZ);
	f->pipe_cap = sz > 0 ? (size_t)sz : 65536;
	f->pr = calloc(n, sizeof(*f->pr));
	f->pw = calloc(n, sizeof(*f->pw));
	if (!f->pr || !f->pw)
		die("out of memory");
	for (i = 0; i < n - 1; i++) {
		if (pipe2(pfd, O_CLOEXEC))
			die("pipe: %s", strerror(errno));
		f->pr[i] = pfd[0];
		f->pw[i] = pfd[1];
		if (!set_pipe_fd(f->pw[i], size, true) && !quiet) {
			printf("%s: fanout_tee: F_SETPIPE_SZ on destination pipes: %s "
			       "(payloads go in pieces)\n", prog, strerror(errno));
			quiet = true;
		}
		sz = fcntl(f->pw[i], F_GETPIPE_SZ);
		if (sz > 0 && (size_t)sz < f->pipe_cap)
			f->pipe_cap = sz;
	}
}

static void fan_close(struct fan *f)
{
	int i;

	if (f->dest_flags & ZCSEND_SEND_FIXED_SOCKET)
		ioctl(g.zfd, ZCSEND_IOC_UNREGISTER_SOCKETS);
	if (f->uring_files)
		io_uring_unregister_files(&g.fring);

	for (i = 0; i < f->n; i++) {
		close(f->fd[i]);
		if (f->pr && i < f->n - 1) {
			close(f->pr[i]);
			close(f->pw[i]);
		}
	}
	free(f->fd);
	free(f->d);
	free(f->dest);
	free(f->pr);
	free(f->pw);
}

static void fan_wait_acked(struct fan *f, struct res *r)
{
	int i;

	for (i = 0; i < f->n; i++)
		wait_acked(f->fd[i], r);
}

/* N x send() */
static void run_fo_send(struct fan *f, size_t size, uint64_t payloads, struct res *r)
{
	uint64_t k;
	int i;

	for (k = 0; k < payloads; k++) {
		const void *p = g.buf + slot(k, size);

		for (i = 0; i < f->n; i++) {
			ssize_t n;

			r->syscalls++;
			n = send(f->fd[i], p, size, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EINTR || errno == ENOBUFS || errno == EAGAIN) {
					i--;
					continue;
				}
				die("send: %s", strerror(errno));
			}
			r->bytes += n;
			r->sends++;
		}
		r->calls++;
	}
}

/*
 * N x send(MSG_ZEROCOPY): each socket has its own error queue, drained as
 * run_msgzc() drains its one: every DRAIN_EVERY payloads, and down to cap/2
 * when a socket has cap sends in flight.
 */
static void run_fo_msgzc(struct fan *f, size_t size, uint64_t payloads, struct res *r)
{
	int cap = inflight_cap(size), i;
	double end;
	uint64_t k;

	for (i = 0; i < f->n; i++)
		f->d[i] = (struct res){ 0 };
	for (k = 0; k < payloads; k++) {
		const void *p = g.buf + slot(k, size);

		for (i = 0; i < f->n; i++) {
			struct res *d = &f->d[i];
			ssize_t n;

			if (d->calls - d->compl >= (uint64_t)cap)
				msgzc_drain(f->fd[i], d, d->calls - cap / 2, 100);
			d->syscalls++;
			n = send(f->fd[i], p, size, MSG_ZEROCOPY | MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == ENOBUFS || errno == EAGAIN)
					/* optmem (notification) limit */
					msgzc_drain(f->fd[i], d, d->compl + 1, 10);
				else if (errno != EINTR)
					die("send(MSG_ZEROCOPY): %s", strerror(errno));
				i--;
				continue;
			}
			r->bytes += n;
			d->calls++;
		}
		r->calls++;
		if (r->calls % DRAIN_EVERY == 0)
			for (i = 0; i < f->n; i++)
				msgzc_drain(f->fd[i], &f->d[i], f->d[i].calls, 0);
	}
	end = now() + WAIT_S;
	for (i = 0; i < f->n; i++) {
		struct res *d = &f->d[i];

		while (d->compl < d->calls && now() < end)
			msgzc_drain(f->fd[i], d, d->calls, 100);
		if (d->compl < d->calls)
			die("fan-out MSG_ZEROCOPY: socket %d: %" PRIu64 " of %" PRIu64
			    " completions after %.0f s", i, d->compl, d->calls, WAIT_S);
		r->sends += d->calls;
		r->syscalls += d->syscalls;
		r->compl += d->compl;
		r->events += d->events;
		r->zc += d->zc;
		r->copied += d->copied;
	}
}

/*
 * A payload's N SEND_ZC SQEs from the registered buffer, submitted together.
 * As many whole payloads per submission as the caps allow: at most cap
 * payloads and FANOUT_SENDS sends without their notification. UDP: those
 * payloads one after the other. TCP: one linked chain per socket (its sends
 * stay in order), and the next round once this one has sent, as run_uring().
 */
static void run_fo_uring(struct fan *f, size_t size, uint64_t payloads, struct res *r)
{
	struct io_uring *ring = &g.fring;
	int msgflags = MSG_NOSIGNAL | (g.tcp ? MSG_WAITALL : 0);
	uint64_t n = f->n, limit = (uint64_t)inflight_cap(size) * n;
	uint64_t queued = 0, inflight = 0, unsent = 0;
	double end = 0;

	if (limit > (n > FANOUT_SENDS ? n : FANOUT_SENDS))
		limit = n > FANOUT_SENDS ? n : FANOUT_SENDS;
	while (queued < payloads || inflight) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		uint64_t np = 0, a, b;
		int ret;

		if (!(g.tcp && unsent) && !io_uring_sq_ready(ring))
			while (queued + np < payloads && inflight + (np + 1) * n <= limit &&
			       (np + 1) * n <= FANOUT_SQ)
				np++;
		for (a = 0; a < (g.tcp ? n : np); a++) {
			for (b = 0; b < (g.tcp ? np : n); b++) {
				uint64_t k = queued + (g.tcp ? b : a);
				int i = g.tcp ? a : b;
				struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

				if (!sqe)
					die("fan-out io_uring: SQ full");
				io_uring_prep_send_zc_fixed(sqe, f->uring_files ? i : f->fd[i],
							    g.buf + slot(k, size), size, msgflags,
							    IORING_SEND_ZC_REPORT_USAGE, 0);
				if (f->uring_files)
					sqe->flags |= IOSQE_FIXED_FILE;
				sqe->user_data = k;
				if (g.tcp && b + 1 < np)
					sqe->flags |= IOSQE_IO_LINK;
			}
		}
		queued += np;
		inflight += np * n;
		unsent += np * n;
		if (queued == payloads && !end)
			end = now() + WAIT_S;
		r->syscalls++;
		ret = io_uring_submit_and_wait(ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
			die("io_uring_submit_and_wait: %s", strerror(-ret));
		io_uring_for_each_cqe(ring, head, cqe) {
			seen++;
			if (cqe->flags & IORING_CQE_F_NOTIF) {
				inflight--;
				r->compl++;
				r->events++;
				if (cqe->res & IORING_NOTIF_USAGE_ZC_COPIED)
					r->copied++;
				else
					r->zc++;
				continue;
			}
			unsent--;
			if (cqe->res < 0)
				die("SEND_ZC (fixed, fan-out): %s", strerror(-cqe->res));
			r->bytes += cqe->res;
			r->sends++;
			if (!(cqe->flags & IORING_CQE_F_MORE))
				inflight--;	/* no notification follows */
		}
		io_uring_cq_advance(ring, seen);
		if (end && now() > end)
			die("fan-out io_uring: %" PRIu64 " sends still in flight after %.0f s",
			    inflight, WAIT_S);
	}
	r->calls += payloads;
}

/* Moves @len bytes from pipe @from to socket @fd. */
static void splice_out(int from, int fd, size_t len, unsigned int more, struct res *r)
{
	while (len) {
		ssize_t n;

		r->syscalls++;
		n = splice(from, NULL, fd, NULL, len, SPLICE_F_MOVE | more);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			die("splice: %s", n ? strerror(errno) : "returned 0");
		len -= n;
		r->bytes += n;
	}
}

/*
 * vmsplice() the payload into the source pipe once; for each destination
 * but the last, tee() the source into that destination's (empty) pipe and
 * splice() it to the socket; splice() the source pipe itself to the last.
 * tee() always starts at the head of the source, so a destination's pipe
 * must take all of it: payloads larger than the smallest pipe go in pieces.
 */
static void run_fo_tee(struct fan *f, size_t size, uint64_t payloads, struct res *r)
{
	int last = f->n - 1, i;
	uint64_t k;

	for (k = 0; k < payloads; k++) {
		char *p = (char *)g.buf + slot(k, size);
		size_t off = 0;

		while (off < size) {
			struct iovec iov = { p + off, size - off };
			unsigned int more;
			ssize_t c, t;

			if (iov.iov_len > f->pipe_cap)
				iov.iov_len = f->pipe_cap;
			r->syscalls++;
			c = vmsplice(g.pw, &iov, 1, 0);
			if (c < 0 && errno == EINTR)
				continue;
			if (c <= 0)
				die("vmsplice: %s", c ? strerror(errno) : "returned 0");
			more = off + c < size ? SPLICE_F_MORE : 0;
			for (i = 0; i < last; i++) {
				do {
					r->syscalls++;
					t = tee(g.pr, f->pw[i], c, 0);
				} while (t < 0 && errno == EINTR);
				if (t != c)
					die("tee: %s (%zd of %zd bytes)",
					    t < 0 ? strerror(errno) : "short", t, c);
				splice_out(f->pr[i], f->fd[i], c, more, r);
			}
			splice_out(g.pr, f->fd[last], c, more, r);
			off += c;
		}
		r->sends += f->n;
		r->calls++;
	}
}

/*
 * Fan-outs from the registered buffer (ZCSEND_SEND_FIXED, nothing pinned per
 * payload) or, @stable, a plain iovec the module copies once
 * (ZCSEND_FANOUT_STABLE). As many whole payloads per system call as the caps
 * allow, as run_fo_uring() submits them: ZCSEND_IOC_SUBMIT with
 * ZCSEND_SUBMIT_FANOUT, at most ZCSEND_MAX_BATCH payloads, the in-flight cap
 * and FANOUT_SENDS sends. One record per payload, read from the mmap'ed
 * ring (read() when it cannot be mapped), as run_zcsend_batch() does.
 */
static void run_fo_zcsend(struct fan *f, size_t size, uint64_t payloads, bool stable,
			  struct res *r)
{
	static struct zcsend_fanout fo[ZCSEND_MAX_BATCH];
	static struct zcsend_range rg[ZCSEND_MAX_BATCH];
	static struct iovec iov[ZCSEND_MAX_BATCH];
	uint64_t cap = inflight_cap(size), n = f->n, per = FANOUT_SENDS / n;
	struct zcsend_dest *dd;
	uint64_t queued = 0, k;
	double end;
	int i;

	if (per < 1)
		per = 1;
	if (per > ZCSEND_MAX_BATCH)
		per = ZCSEND_MAX_BATCH;
	dd = calloc(per * n, sizeof(*dd));
	if (!dd)
		die("out of memory");
	while (queued < payloads) {
		uint64_t room = cap - (r->calls - r->compl), np;
		struct zcsend_submit sub;
		long ret;

		np = payloads - queued;
		if (np > room)
			np = room;
		if (np > per)
			np = per;
		for (k = 0; k < np; k++) {
			uint64_t p = queued + k;

			iov[k] = (struct iovec){ g.buf + slot(p, size), size };
			rg[k] = (struct zcsend_range){ 0, 0, slot(p, size), size };
			memcpy(&dd[k * n], f->dest, n * sizeof(*dd));
			fo[k] = (struct zcsend_fanout){
				.flags = MSG_NOSIGNAL | f->dest_flags |
					 (stable ? ZCSEND_FANOUT_STABLE : ZCSEND_SEND_FIXED),
				.iovcnt = 1,
				.iov = stable ? (uintptr_t)&iov[k] : (uintptr_t)&rg[k],
				.dests = (uintptr_t)&dd[k * n],
				.nr = n,
				.user_data = p,
			};
		}
		ret = 0;
		if (np) {
			sub = (struct zcsend_submit){ (uintptr_t)fo, np, ZCSEND_SUBMIT_FANOUT };
			r->syscalls++;
			ret = ioctl(g.zfd, ZCSEND_IOC_SUBMIT, &sub);
			if (ret < 0) {
				if (errno != EINTR && !((errno == ENOBUFS || errno == ENOMEM ||
							 errno == EAGAIN || errno == EBUSY) &&
							r->compl < r->calls))
					die("ZCSEND_IOC_SUBMIT of fan-outs%s: %s%s",
					    stable ? " (stable)" : "", strerror(errno),
					    r->compl < r->calls ? "" : " (nothing in flight)");
				ret = 0;
			}
		}
		for (k = 0; k < (uint64_t)ret; k++) {
			for (i = 0; i < f->n; i++) {
				int64_t res = dd[k * n + i].result;

				if (res < 0)
					die("zcsend fan-out%s: destination %d: %s",
					    stable ? " (stable)" : "", i, strerror((int)-res));
				r->bytes += res;
			}
			r->sends += n;
			r->calls++;
		}
		queued += ret;
		if (g.zc_ring_ok) {
			zc_ring_drain(r, r->calls >= cap ? r->calls - cap / 2 : 0,
				      r->calls - r->compl >= cap ? 100 : 0);
			zc_ring_drain(r, r->calls, 0);
		} else {
			zc_drain(r, r->calls - r->compl >= cap ? r->calls - cap / 2 : 0,
				 r->calls - r->compl >= cap ? 100 : 0);
		}
	}
	end = now() + WAIT_S;
	while (r->compl < r->calls && now() < end) {
		if (g.zc_ring_ok)
			zc_ring_drain(r, r->calls, 100);
		else
			zc_drain(r, r->calls, 100);
	}
	free(dd);
	if (r->compl < r->calls)
		die("zcsend fan-out: %" PRIu64 " of %" PRIu64 " completions after %.0f s",
		    r->compl, r->calls, WAIT_S);
}

static void run_fanout_method(enum method m, struct fan *f, size_t size, uint64_t payloads,
			      struct res *r)
{
	switch (m) {
	case M_FO_SEND:	  run_fo_send(f, size, payloads, r); break;
	case M_FO_MSGZC:  run_fo_msgzc(f, size, payloads, r); break;
	case M_FO_URING:  run_fo_uring(f, size, payloads, r); break;
	case M_FO_TEE:	  run_fo_tee(f, size, payloads, r); break;
	case M_FO_ZCSEND: run_fo_zcsend(f, size, payloads, false, r); break;
	case M_FO_STABLE: run_fo_zcsend(f, size, payloads, true, r); break;
	default:	  break;
	}
}

static bool fanout_ok(enum method m, size_t size, int n, const char **why)
{
	struct rlimit rl;
	uint64_t fds = (uint64_t)n * (m == M_FO_TEE ? 3 : 1) + 32;

	*why = NULL;
	if (!g.tcp && size > UDP_MAX)
		*why = "larger than one UDP datagram";
	else if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur != RLIM_INFINITY &&
		 fds > rl.rlim_cur)
		*why = "more destinations than RLIMIT_NOFILE allows";
	else if (m == M_FO_URING && !g.fring_ok)
		*why = "io_uring unavailable";
	else if ((m == M_FO_ZCSEND || m == M_FO_STABLE) && g.zfd < 0)
		*why = "/dev/zcsend missing";
	else if (m == M_FO_ZCSEND && !g.zc_fixed_ok)
		*why = "no registered buffer";
	else if (m == M_FO_ZCSEND && g.fanout_why)
		*why = g.fanout_why;
	else if (m == M_FO_STABLE && g.stable_why)
		*why = g.stable_why;
	return !*why;
}

/* Payloads per fan-out cell: --fanout-bytes delivered (over all
 * destinations), --min-calls..--max-calls sends, at least one payload. */
static uint64_t fanout_payloads(size_t sendsz, int n)
{
	uint64_t sends = g.fbytes / sendsz, p;

	if (sends < g.min_calls)
		sends = g.min_calls;
	if (sends > g.max_calls)
		sends = g.max_calls;
	p = sends / n;
	return p ? p : 1;
}

static void run_fanout_cell(enum method m, size_t size, size_t sendsz, int n, int rep)
{
	uint64_t payloads = fanout_payloads(sendsz, n);
	struct res w = { 0 }, r = { 0 };
	double t0, c0, g0, u0;
	struct fan f;
	char sb[24];

	fan_open(&f, m, n, sendsz);

	/* Untimed warm-up on the same sockets, fully drained. */
	run_fanout_method(m, &f, sendsz, payloads / 16 ? payloads / 16 : 1, &w);
	fan_wait_acked(&f, &w);

	g0 = guest_cpu();
	u0 = thread_rusage();
	profile_switch(true);
	tb_marker();
	c0 = thread_cpu();
	t0 = now();
	run_fanout_method(m, &f, sendsz, payloads, &r);
	fan_wait_acked(&f, &r);
	r.wall = now() - t0;
	r.cpu = thread_cpu() - c0;
	tb_marker();
	profile_switch(false);
	r.rusage = thread_rusage() - u0;
	r.gcpu = guest_cpu() - g0;
	fan_close(&f);

	printf("ZCB,fanout,%s,%s,%zu,%zu,%d,%d,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
	       ",%.6f,%.6f,%.3f,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%u,%.6f\n",
	       g.path, method_name[m], size, sendsz, n, rep, r.calls, r.bytes, r.sends,
	       r.syscalls, r.wall, r.cpu, r.gcpu, r.compl, r.events, r.zc, r.copied,
	       r.cflags, r.rusage);
	printf("%s: %s rep %d %5s x%-4d %-21s %8.1f MB/s %8.2f s/GB", prog, g.path, rep,
	       size_str(size, sb), n, method_name[m], r.bytes / r.wall / 1e6,
	       r.cpu / (r.bytes / 1e9));
	if (r.compl)
		printf("  %.3g completions/payload, zero-copy %" PRIu64 "/%" PRIu64,
		       (double)r.compl / r.calls, r.zc, r.compl);
	putchar('\n');
	/* Counted per destination send (payloads x N). */
	if (tb_on())
		printf("ZCB,tbmark,%s,%s_x%d,%zu,%d,%" PRIu64 "\n", g.path, method_name[m],
		       n, size, rep, r.sends);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: %s --path NAME --tcp|--udp --dest ADDR --port N [options]\n"
		"       %s --sink PORT [ADDR]\n"
		"  --local-sink        fork a TCP receiver on ADDR:PORT (loopback)\n"
		"  --huge              the send buffer in transparent huge pages; the\n"
		"                      records name the methods <method>_huge\n"
		"  --sizes LIST        default 1K,4K,16K,64K,256K,1M (UDP: 64K sends %d)\n"
		"  --methods LIST      default all: send,msg_zerocopy,uring_zc,\n"
		"                      uring_zc_fixed,sendfile,vmsplice,zcsend,zcsend_fixed,\n"
		"                      zcsend_batch (\"single\": these nine), fanout_send,\n"
		"                      fanout_msg_zc,fanout_uring_zc_fixed,fanout_tee,\n"
		"                      zcsend_fanout,zcsend_fanout_stable (\"fanout\": these six)\n"
		"  --fanout LIST       destinations per payload for the fan-out methods,\n"
		"                      1..%d (default 1,8,64; none: no fan-out cells)\n"
		"  --fanout-sizes LIST payload sizes (default 64K,1M; UDP: 64K sends %d)\n"
		"  --fanout-bytes N    bytes delivered per fan-out cell, summed over the\n"
		"                      destinations (default: --bytes)\n"
		"  --bytes N           bytes per cell (default 64M)\n"
		"  --min-calls N       (default 64)   --max-calls N (default 16384)\n"
		"                      (fan-out: sends, i.e. payloads x N)\n"
		"  --reps N            repetitions (default 3)\n"
		"  --null-secs S       time per null-call measurement (default 0.3)\n",
		prog, prog, UDP_MAX, ZCSEND_MAX_FANOUT, UDP_MAX);
	exit(2);
}

/* Adds @m to @ms unless it is there already. */
static void add_method(enum method *ms, int *nm, enum method m)
{
	int i;

	for (i = 0; i < *nm && ms[i] != m; i++)
		;
	if (i == *nm)
		ms[(*nm)++] = m;
}

static bool is_none(const char *s)
{
	return !*s || !strcmp(s, "none") || !strcmp(s, "0");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "path", required_argument, NULL, 'P' },
		{ "tcp", no_argument, NULL, 't' },
		{ "udp", no_argument, NULL, 'u' },
		{ "dest", required_argument, NULL, 'd' },
		{ "port", required_argument, NULL, 'p' },
		{ "local-sink", no_argument, NULL, 'L' },
		{ "sizes", required_argument, NULL, 's' },
		{ "methods", required_argument, NULL, 'm' },
		{ "fanout", required_argument, NULL, 'F' },
		{ "fanout-sizes", required_argument, NULL, 'Z' },
		{ "fanout-bytes", required_argument, NULL, 'B' },
		{ "bytes", required_argument, NULL, 'b' },
		{ "min-calls", required_argument, NULL, 'n' },
		{ "max-calls", required_argument, NULL, 'N' },
		{ "reps", required_argument, NULL, 'r' },
		{ "null-secs", required_argument, NULL, 'z' },
		{ "sink", required_argument, NULL, 'S' },
		{ "huge", no_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	const char *sizes = "1K,4K,16K,64K,256K,1M", *methods = NULL, *dest = NULL;
	const char *fanout = "1,8,64", *fsizes = "64K,1M";
	size_t sz[16], fsz[16];
	enum method ms[M_NR], fms[M_NR];
	int nsz = 0, nm = 0, nfsz = 0, nfm = 0, nns = 0, ns[MAX_NS];
	int port = 0, proto = -1, c, rep, i, j, l, pfd[2];
	bool local_sink = false, fanout_zc = false;
	double null_secs = 0.3, t0;
	char *list, *tok;

	setvbuf(stdout, NULL, _IOLBF, 0);
	g.bytes = 64 << 20;
	g.min_calls = 64;
	g.max_calls = 16384;
	g.reps = 3;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'P': g.path = optarg; break;
		case 't': proto = 1; break;
		case 'u': proto = 0; break;
		case 'd': dest = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'L': local_sink = true; break;
		case 'H': g.huge = true; break;
		case 's': sizes = optarg; break;
		case 'm': methods = optarg; break;
		case 'F': fanout = optarg; break;
		case 'Z': fsizes = optarg; break;
		case 'B': g.fbytes = parse_size(optarg); break;
		case 'b': g.bytes = parse_size(optarg); break;
		case 'n': g.min_calls = parse_size(optarg); break;
		case 'N': g.max_calls = parse_size(optarg); break;
		case 'r': g.reps = atoi(optarg); break;
		case 'z': null_secs = atof(optarg); break;
		case 'S': return run_sink(atoi(optarg), optind < argc ? argv[optind] : NULL);
		default: usage();
		}
	}
	if (!g.path || proto < 0 || !dest || !port || g.reps < 1 || optind != argc)
		usage();
	g.tcp = proto == 1;
	if (local_sink && !g.tcp)
		usage();
	if (!g.fbytes)
		g.fbytes = g.bytes;
	resolve(dest, port);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();

	list = strdup(sizes);
	for (tok = strtok(list, ","); tok && nsz < 16; tok = strtok(NULL, ","))
		sz[nsz++] = parse_size(tok);
	if (!is_none(fanout)) {
		list = strdup(fanout);
		for (tok = strtok(list, ","); tok && nns < MAX_NS; tok = strtok(NULL, ",")) {
			char *end;
			long v = strtol(tok, &end, 10);

			if (*end || v < 1 || v > ZCSEND_MAX_FANOUT) {
				fprintf(stderr, "%s: bad fan-out %s (1..%d)\n", prog, tok,
					ZCSEND_MAX_FANOUT);
				usage();
			}
			ns[nns++] = v;
		}
		list = strdup(fsizes);
		for (tok = strtok(list, ","); tok && nfsz < 16; tok = strtok(NULL, ","))
			fsz[nfsz++] = parse_size(tok);
	}
	list = strdup(methods ? methods : "all");
	for (tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
		bool all = !strcmp(tok, "all");

		if (all || !strcmp(tok, "single"))
			for (i = 0; i < M_FO_FIRST; i++)
				add_method(ms, &nm, i);
		if (all || !strcmp(tok, "fanout"))
			for (i = M_FO_FIRST; i < M_NR; i++)
				add_method(fms, &nfm, i);
		if (all || !strcmp(tok, "single") || !strcmp(tok, "fanout"))
			continue;
		for (i = 0; i < M_NR && strcmp(tok, method_name[i]); i++)
			;
		if (i == M_NR) {
			fprintf(stderr, "%s: unknown method %s\n", prog, tok);
			usage();
		}
		if (i < M_FO_FIRST)
			add_method(ms, &nm, i);
		else
			add_method(fms, &nfm, i);
	}
	if (!nns || !nfsz)
		nfm = 0;	/* --fanout none */
	if (!nsz)
		nm = 0;
	if (!nm && !nfm) {
		printf("%s: path %s: no cells to run\n", prog, g.path);
		return 0;
	}
	for (i = 0; i < nfm; i++)
		fanout_zc |= fms[i] == M_FO_ZCSEND || fms[i] == M_FO_STABLE;

	if (local_sink) {
		g.sink = fork();
		if (g.sink == 0)
			exit(run_sink(port, dest));
		if (g.sink < 0)
			die("fork: %s", strerror(errno));
	}

	setup_buffers();
	if (pipe2(pfd, O_CLOEXEC))
		die("pipe: %s", strerror(errno));
	g.pr = pfd[0];
	g.pw = pfd[1];
	setup_ring();
	for (i = 0; i < nfm; i++)
		if (fms[i] == M_FO_URING)
			setup_fring();
	setup_zcsend();
	if (fanout_zc) {
		g.fanout_why = probe_fanout(ZCSEND_SEND_FIXED);
		g.stable_why = probe_fanout(ZCSEND_FANOUT_STABLE);
		if (g.fanout_why || g.stable_why)
			printf("%s: %s\n", prog, g.fanout_why ? g.fanout_why : g.stable_why);
	}

	printf("%s: path %s: %s to %s port %d, %d sizes x %d methods x %d reps, "
	       "%" PRIu64 " bytes per cell (%" PRIu64 "..%" PRIu64 " sends)\n",
	       prog, g.path, g.tcp ? "TCP" : "UDP", dest, port, nm ? nsz : 0, nm, g.reps,
	       g.bytes, g.min_calls, g.max_calls);
	if (nfm) {
		printf("%s: path %s: fan-out to", prog, g.path);
		for (l = 0; l < nns; l++)
			printf("%s%d", l ? "," : " ", ns[l]);
		printf(" %s, %d sizes x %d methods, %" PRIu64 " bytes delivered per cell\n",
		       g.tcp ? "connections" : "UDP sockets (a port each)", nfsz, nfm,
		       g.fbytes);
	}
	measure_null(null_secs);

	/* TCP: one untimed bulk transfer first, so that the first cells do
	 * not pay for what the path learns once (tcp_metrics, the
	 * receiver's buffers). */
	if (g.tcp) {
		struct res w = { 0 };
		int fd = open_sock(false);

		run_send(fd, 65536, 512, &w);
		wait_acked(fd, &w);
		close(fd);
	}

	t0 = now();
	for (rep = 1; rep <= g.reps; rep++) {
		for (i = 0; i < nsz && nm; i++) {
			size_t sendsz = sz[i];

			if (!g.tcp && sendsz == 65536)
				sendsz = UDP_MAX;
			for (j = 0; j < nm; j++) {
				const char *why;

				if (!method_ok(ms[j], sendsz, &why)) {
					if (rep == 1)
						printf("ZCB,skip,%s,%s,%zu,%s\n", g.path,
						       mname(ms[j]), sz[i], why);
					continue;
				}
				run_cell(ms[j], sz[i], sendsz, rep);
			}
		}
		/* Fan-out cells after the single-socket ones, in the same
		 * repetition: size, then N, then method. */
		for (i = 0; i < nfsz && nfm; i++) {
			size_t sendsz = fsz[i];

			if (!g.tcp && sendsz == 65536)
				sendsz = UDP_MAX;
			for (l = 0; l < nns; l++) {
				for (j = 0; j < nfm; j++) {
					const char *why;

					if (!fanout_ok(fms[j], sendsz, ns[l], &why)) {
						if (rep == 1)
							printf("ZCB,fanout_skip,%s,%s,%zu,%d,%s\n",
							       g.path, method_name[fms[j]], fsz[i],
							       ns[l], why);
						continue;
					}
					run_fanout_cell(fms[j], fsz[i], sendsz, ns[l], rep);
				}
			}
		}
	}
	measure_null(null_secs);
	printf("%s: path %s done in %.1f s\n", prog, g.path, now() - t0);

	if (g.sink > 0) {
		kill(g.sink, SIGTERM);
		waitpid(g.sink, NULL, 0);
	}
	return 0;
}
