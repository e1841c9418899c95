// SPDX-License-Identifier: GPL-2.0
/*
 * zcsend_rx: the host end of zcsend's network tests and samples.
 *
 * Runs on the host, inside the network namespace that holds the guest's tap
 * device (scripts/guest.sh --tap --host-cmd), listens on IPv4 and IPv6 and
 * checks every byte it receives against the pattern of
 * tools/include/zcsend_pattern.h, which also describes the wire protocols.
 * One mode per process:
 *
 *   remote  the selftests' "remote" tests and soak (TCP 7777): every
 *           connection carries the stream of ZC_PATTERN_SEED from offset 0
 *           and is answered "OK <bytes>" or "BAD <offset>" once the peer has
 *           shut down its write side. Runs until --timeout (900 s), or until
 *           --count connections have ended; exit status 0.
 *   xfer    the samples' transfers (zcsend_xfer, zcsend-cat --zcx): "ZCX1
 *           tcp" runs on TCP 7878, "ZCX1 udp" runs announced there and sent
 *           to UDP 7879. Exits after --tcp-runs TCP and --udp-runs UDP runs
 *           (1 each by default).
 *   bcast   zcsend_broadcast's subscribers (TCP 7880): a run is <n>
 *           connections carrying the same stream; each is checked and
 *           hashed on its own, and once all have ended the run is reported
 *           with whether every stream was identical. Exits after --runs runs
 *           (2 by default).
 *
 * xfer and bcast stop after --timeout seconds (120) or on SIGTERM/SIGINT,
 * printing a summary; exit status 0 if every run was served and verified.
 * Any number of connections are served at once, in one poll() loop; one
 * silent for --idle seconds (remote: 120; otherwise no limit) is given up.
 * With --ready FILE the pid is written to FILE once the sockets listen.
 *
 * zcbench --sink (tools/bench) is the benchmark's receiver: it discards,
 * and is also zcbench's own loopback sink in the guest.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "zcsend_pattern.h"

#define RX_BUF		(256 * 1024)
#define UDP_BUF		(64 * 1024)
#define UDP_RCVBUF	(32 * 1024 * 1024)
#define UDP_GRACE_MS	500
#define MAX_CONNS	1100	/* ZCSEND_MAX_FANOUT subscribers and a few more */
#define MAX_RUNS	64	/* bcast runs at once */
#define MAX_SUBS	1024

/* conn_end()'s error for a connection given up after --idle seconds. */
#define ERR_IDLE	(-1)

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

#define FNV_OFFSET	0xcbf29ce484222325ULL
#define FNV_PRIME	0x100000001b3ULL

enum mode { MODE_REMOTE, MODE_XFER, MODE_BCAST };

static const char * const mode_names[] = {
	[MODE_REMOTE] = "remote",
	[MODE_XFER] = "xfer",
	[MODE_BCAST] = "bcast",
};

/* What a connection carries. */
enum cstate {
	C_FREE,
	C_HELLO,	/* xfer, bcast: waiting for the hello line */
	C_REMOTE,	/* the bare stream of ZC_PATTERN_SEED */
	C_TCP,		/* xfer TCP run: the announced stream */
	C_UDP,		/* xfer UDP run: control lines; data on the UDP port */
	C_BCAST,	/* one subscriber of a broadcast run */
};

struct run;

struct conn {
	int fd;
	enum cstate st;
	char peer[INET6_ADDRSTRLEN + 8];
	char line[ZCX_LINE_MAX];
	size_t line_len;
	double t_start, t_last;
	/* The stream: seed, announced length (remote: unlimited), progress. */
	uint64_t seed, bytes, got;
	int64_t first_bad;
	uint64_t hash;		/* bcast: FNV-1a of every byte */
	struct run *run;	/* bcast */
	unsigned int sub;
	/* xfer UDP */
	uint32_t dgrams, run_id, dgram_size;
	uint8_t *seen;
	uint32_t seen_count, bad, dup, stray;
	uint64_t ok_bytes;
	long end_sent;
};

/* A bcast run: its subscribers' results. */
struct sub_result {
	bool claimed, done, ok;
	uint64_t got;
	int64_t first_bad;
	uint64_t hash;
};

struct run {
	bool used;
	uint32_t id;
	unsigned int nsubs, ended;
	uint64_t seed, bytes;
	double t_start;
	struct sub_result *subs;
};

static enum mode mode = MODE_REMOTE;
static struct conn conns[MAX_CONNS];
static int conns_hi;		/* conns[conns_hi..] are free */
static int conns_open;
static uint8_t *rx_buf;
static int udp_fd = -1;
static uint8_t udp_buf[UDP_BUF];
static atomic_int stop_sig;	/* lock-free: set by the signal handler */
static double idle;

/* Counters: remote connections; xfer and bcast runs. */
static int conns_done, conns_ok, conns_bad, conns_failed;
static int tcp_runs = 1, udp_runs = 1, tcp_done, udp_done;
static uint32_t stray_total;
static struct run runs[MAX_RUNS];
static int runs_wanted = 2, runs_done;
static int runs_bad;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void say(const char *fmt, ...)
{
	va_list ap;

	printf("zcsend_rx(%s): ", mode_names[mode]);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static void on_signal(int sig)
{
	stop_sig = sig;
}

static double mbps(uint64_t bytes, double secs)
{
	return secs > 0 ? bytes / secs / 1e6 : 0;
}

/* Up to the hard limit: a broadcast run has up to MAX_SUBS connections. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* A dual-stack socket bound to @port, or an IPv4 one if IPv6 is missing. */
static int bind_any(int type, int port)
{
	struct sockaddr_in6 a6 = {
		.sin6_family = AF_INET6,
		.sin6_port = htons(port),
		.sin6_addr = IN6ADDR_ANY_INIT,
	};
	struct sockaddr_in a4 = {
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_ANY),
	};
	int one = 1, zero = 0;
	int fd;

	fd = socket(AF_INET6, type | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		if (!bind(fd, (struct sockaddr *)&a6, sizeof(a6)))
			return fd;
		close(fd);
	}
	fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a4, sizeof(a4))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* "ip:port" or "[ip6]:port"; v4-mapped IPv6 peers as plain IPv4. */
static void peer_name(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const struct sockaddr_in6 *s6 = (const void *)ss;
	const struct sockaddr_in *s4 = (const void *)ss;
	char ip[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		if (!strncmp(ip, "::ffff:", 7) && strchr(ip + 7, '.'))
			snprintf(buf, len, "%s:%d", ip + 7, ntohs(s6->sin6_port));
		else
			snprintf(buf, len, "[%s]:%d", ip, ntohs(s6->sin6_port));
	} else {
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%d", ip, ntohs(s4->sin_port));
	}
}

/* Sends one line (a newline is added); returns 0 or a negative errno. */
static int send_line(struct conn *c, const char *fmt, ...)
{
	char buf[ZCX_LINE_MAX];
	va_list ap;
	size_t off = 0;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n > sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	while (off < (size_t)n) {
		ssize_t w = send(c->fd, buf + off, n - off, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = c->fd, .events = POLLOUT };

			/* A verdict line always fits; bounded anyway. */
			if (poll(&p, 1, 1000) <= 0)
				return -ETIMEDOUT;
			continue;
		}
		if (w <= 0)
			return w < 0 ? -errno : -EPIPE;
		off += w;
	}
	return 0;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->seen);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->st = C_FREE;
	conns_open--;
	while (conns_hi > 0 && conns[conns_hi - 1].st == C_FREE)
		conns_hi--;
}

/* Checks and counts stream bytes at the connection's offset. */
static void stream_data(struct conn *c, const uint8_t *p, size_t n)
{
	size_t i;

	if (c->first_bad < 0) {
		uint64_t room = c->got < c->bytes ? c->bytes - c->got : 0;
		size_t chk = n < room ? n : room;
		size_t bad = zc_pattern_check(p, chk, c->seed, c->got);

		if (bad < chk)
			c->first_bad = c->got + bad;
		else if (n > room)	/* more than announced */
			c->first_bad = c->bytes;
	}
	if (c->st == C_BCAST)
		for (i = 0; i < n; i++)
			c->hash = (c->hash ^ p[i]) * FNV_PRIME;
	c->got += n;
}

/* ---- remote ----------------------------------------------------------- */

static void finish_remote(struct conn *c, int err)
{
	double secs = now() - c->t_start;
	char line[64];
	int serr;

	conns_done++;
	if (err) {
		conns_failed++;
		if (err == ERR_IDLE)
			say("%s: silent for %.0f s after %" PRIu64 " bytes, given up",
			    c->peer, idle, c->got);
		else
			say("%s: %s after %" PRIu64 " bytes", c->peer, strerror(err),
			    c->got);
		return;
	}
	if (c->first_bad < 0) {
		snprintf(line, sizeof(line), "OK %" PRIu64, c->got);
		conns_ok++;
	} else {
		snprintf(line, sizeof(line), "BAD %" PRId64, c->first_bad);
		conns_bad++;
	}
	serr = send_line(c, "%s", line);
	say("%s: %" PRIu64 " bytes in %.3f s (%.1f MB/s): %s%s%s", c->peer,
	    c->got, secs, mbps(c->got, secs), line,
	    serr ? ", reply failed: " : "", serr ? strerror(-serr) : "");
}

/* ---- xfer --------------------------------------------------------------- */

static void finish_tcp(struct conn *c)
{
	double secs = now() - c->t_start;
	bool ok = c->first_bad < 0 && c->got == c->bytes;

	if (ok) {
		send_line(c, "OK tcp bytes=%" PRIu64, c->got);
	} else {
		send_line(c, "BAD tcp bytes=%" PRIu64 " expected=%" PRIu64
			  " first_bad=%" PRId64, c->got, c->bytes, c->first_bad);
		runs_bad++;
	}
	tcp_done++;
	say("tcp run %d from %s: %" PRIu64 "/%" PRIu64 " bytes in %.3f s (%.1f MB/s), %s",
	    tcp_done, c->peer, c->got, c->bytes, secs, mbps(c->got, secs),
	    ok ? "every byte matches" :
	    c->first_bad >= 0 ? "MISMATCH" : "SHORT");
	if (c->first_bad >= 0)
		say("  first wrong byte at stream offset %" PRId64, c->first_bad);
}

/* The open UDP run with id @id, or NULL. */
static struct conn *udp_run(uint32_t id)
{
	int i;

	for (i = 0; i < conns_hi; i++)
		if (conns[i].st == C_UDP && conns[i].run_id == id)
			return &conns[i];
	return NULL;
}

/* Checks one datagram against the UDP run it names. */
static void udp_datagram(const uint8_t *p, ssize_t n, int flags)
{
	uint32_t payload, want_len;
	struct zcx_dgram h;
	struct conn *c = NULL;
	uint64_t want_off;
	int i;

	if (n < ZCX_DGRAM_HDR) {
		stray_total++;
		return;
	}
	zcx_dgram_load(&h, p);
	if (h.magic == ZCX_DGRAM_MAGIC)
		c = udp_run(h.run);
	if (!c) {
		/* Of no run under way: a stray for each of them. */
		stray_total++;
		for (i = 0; i < conns_hi; i++)
			if (conns[i].st == C_UDP)
				conns[i].stray++;
		return;
	}
	payload = c->dgram_size - ZCX_DGRAM_HDR;
	want_off = (uint64_t)h.seq * payload;
	want_len = 0;
	if (want_off < c->bytes)
		want_len = c->bytes - want_off < payload ? c->bytes - want_off : payload;
	if (h.seq >= c->dgrams || (flags & MSG_TRUNC) || h.offset != want_off ||
	    h.len != want_len || (size_t)n != ZCX_DGRAM_HDR + (size_t)h.len ||
	    zc_pattern_check(p + ZCX_DGRAM_HDR, h.len, c->seed, h.offset) != h.len) {
		if (c->bad < 3)
			say("  bad datagram: seq %u offset %" PRIu64 " len %u, %zd bytes",
			    h.seq, h.offset, h.len, n);
		c->bad++;
		return;
	}
	c->t_last = now();
	if (c->seen[h.seq]) {
		c->dup++;
		return;
	}
	c->seen[h.seq] = 1;
	c->seen_count++;
	c->ok_bytes += h.len;
}

/* Reads every datagram waiting on the UDP socket. */
static void udp_drain(void)
{
	for (;;) {
		ssize_t n = recv(udp_fd, udp_buf, sizeof(udp_buf),
				 MSG_DONTWAIT | MSG_TRUNC);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		udp_datagram(udp_buf, n > UDP_BUF ? UDP_BUF : n,
			     n > UDP_BUF ? MSG_TRUNC : 0);
	}
}

static void finish_udp(struct conn *c)
{
	double secs, last = now();
	uint32_t lost;
	const char *v;

	/* Datagrams still on their way: wait until all are in or it is quiet. */
	while (c->seen_count < c->dgrams) {
		struct pollfd p = { .fd = udp_fd, .events = POLLIN };
		uint32_t before = c->seen_count + c->bad + c->dup;

		if (poll(&p, 1, 50) < 0 && errno != EINTR)
			break;
		udp_drain();
		if (c->seen_count + c->bad + c->dup != before)
			last = now();
		else if (now() - last > UDP_GRACE_MS / 1e3)
			break;
	}
	secs = now() - c->t_start;
	lost = c->dgrams - c->seen_count;
	v = c->bad ? "BAD" : (lost || c->dup) ? "LOSS" : "OK";
	send_line(c, "%s udp dgrams=%u/%u bytes=%" PRIu64 " bad=%u dup=%u lost=%u stray=%u",
		  v, c->seen_count, c->dgrams, c->ok_bytes, c->bad, c->dup,
		  lost, c->stray);
	if (c->bad || !c->seen_count)
		runs_bad++;
	udp_done++;
	say("udp run %d from %s: %u/%u datagrams, %" PRIu64 "/%" PRIu64
	    " bytes verified in %.3f s (%.1f MB/s), bad %u, dup %u, lost %u: %s",
	    udp_done, c->peer, c->seen_count, c->dgrams, c->ok_bytes, c->bytes,
	    secs, mbps(c->ok_bytes, secs), c->bad, c->dup, lost,
	    c->bad ? "MISMATCH" : lost ? "some datagrams lost" :
	    "every byte matches");
	if (c->end_sent >= 0 && c->end_sent != c->dgrams)
		say("  sender says it sent %ld datagrams", c->end_sent);
}

/* ---- bcast -------------------------------------------------------------- */

static struct run *find_run(uint32_t id, uint64_t seed, uint64_t bytes,
			    unsigned int nsubs, const char **why)
{
	struct run *free_slot = NULL;
	int i;

	for (i = 0; i < MAX_RUNS; i++) {
		struct run *r = &runs[i];

		if (!r->used) {
			if (!free_slot)
				free_slot = r;
			continue;
		}
		if (r->id != id)
			continue;
		if (r->seed != seed || r->bytes != bytes || r->nsubs != nsubs) {
			*why = "hello differs from the run's other subscribers";
			return NULL;
		}
		return r;
	}
	if (!free_slot) {
		*why = "too many runs at once";
		return NULL;
	}
	free_slot->subs = calloc(nsubs, sizeof(*free_slot->subs));
	if (!free_slot->subs) {
		*why = "receiver out of memory";
		return NULL;
	}
	free_slot->used = true;
	free_slot->id = id;
	free_slot->seed = seed;
	free_slot->bytes = bytes;
	free_slot->nsubs = nsubs;
	free_slot->ended = 0;
	free_slot->t_start = now();
	return free_slot;
}

/* Prints the report of a run whose subscribers have all ended. */
static void finish_run(struct run *r)
{
	unsigned int i, ok = 0;
	bool same = true;
	double secs = now() - r->t_start;
	uint64_t total = 0;

	runs_done++;
	say("broadcast run %d (id %u): %u subscribers, %" PRIu64 " bytes each announced",
	    runs_done, r->id, r->nsubs, r->bytes);
	for (i = 0; i < r->nsubs; i++) {
		struct sub_result *s = &r->subs[i];

		total += s->got;
		ok += s->ok;
		if (!s->ok || s->hash != r->subs[0].hash || s->got != r->subs[0].got)
			same = false;
		if (s->ok)
			say("  subscriber %u: %" PRIu64 " bytes, hash %016" PRIx64 ", OK", i,
			    s->got, s->hash);
		else if (s->first_bad >= 0)
			say("  subscriber %u: %" PRIu64 " bytes, FAIL: first wrong byte at stream offset %" PRId64,
			    i, s->got, s->first_bad);
		else
			say("  subscriber %u: %" PRIu64 " of %" PRIu64 " bytes, FAIL: short",
			    i, s->got, r->bytes);
	}
	if (ok != r->nsubs)
		runs_bad++;
	say("broadcast run %d: %u/%u subscribers OK, %" PRIu64 " bytes in %.3f s (%.1f MB/s), streams %s: %s",
	    runs_done, ok, r->nsubs, total, secs, mbps(total, secs),
	    same ? "identical" : "NOT identical", ok == r->nsubs && same ? "PASS" : "FAIL");
	free(r->subs);
	memset(r, 0, sizeof(*r));
}

static void finish_sub(struct conn *c)
{
	struct run *r = c->run;
	struct sub_result *s = &r->subs[c->sub];

	s->done = true;
	s->got = c->got;
	s->first_bad = c->first_bad;
	s->hash = c->hash;
	s->ok = c->first_bad < 0 && c->got == r->bytes;
	if (s->ok)
		send_line(c, "OK bcast sub=%u bytes=%" PRIu64 " hash=%016" PRIx64,
			  c->sub, c->got, c->hash);
	else
		send_line(c, "BAD bcast sub=%u bytes=%" PRIu64 " expected=%" PRIu64
			  " first_bad=%" PRId64, c->sub, c->got, r->bytes, c->first_bad);
	if (++r->ended == r->nsubs)
		finish_run(r);
}

/* ---- connections -------------------------------------------------------- */

/* Parses a hello line; returns false (after telling the peer) if bad. */
static bool parse_hello(struct conn *c)
{
	unsigned long long seed, bytes;
	unsigned int dgrams, id, dgram, sub, nsubs;
	const char *why = "bad hello";
	struct run *r = NULL;

	if (mode == MODE_XFER &&
	    sscanf(c->line, "ZCX1 tcp seed=%llx bytes=%llu", &seed, &bytes) == 2) {
		c->st = C_TCP;
		c->seed = seed;
		c->bytes = bytes;
		return true;
	}
	if (mode == MODE_XFER &&
	    sscanf(c->line, "ZCX1 udp seed=%llx bytes=%llu dgrams=%u dgram=%u run=%u",
		   &seed, &bytes, &dgrams, &dgram, &id) == 5 &&
	    dgrams > 0 && dgrams <= 1U << 24 && dgram > ZCX_DGRAM_HDR &&
	    dgram <= 65507) {
		if (udp_run(id)) {
			send_line(c, "BAD udp run=%u already under way", id);
			say("%s: udp run id %u already under way", c->peer, id);
			return false;
		}
		c->seen = calloc(dgrams, 1);
		if (!c->seen) {
			send_line(c, "BAD udp receiver out of memory");
			return false;
		}
		c->st = C_UDP;
		c->seed = seed;
		c->bytes = bytes;
		c->dgrams = dgrams;
		c->dgram_size = dgram;
		c->run_id = id;
		c->end_sent = -1;
		send_line(c, "READY udp run=%u", id);
		return true;
	}
	if (mode == MODE_BCAST &&
	    sscanf(c->line, "ZCX1 bcast seed=%llx bytes=%llu run=%u sub=%u/%u",
		   &seed, &bytes, &id, &sub, &nsubs) == 5 &&
	    nsubs >= 1 && nsubs <= MAX_SUBS && sub < nsubs) {
		r = find_run(id, seed, bytes, nsubs, &why);
		if (r && r->subs[sub].claimed) {
			why = "subscriber index already connected";
			r = NULL;
		}
		if (!r) {
			send_line(c, "BAD bcast %s", why);
			say("%s: %s: \"%s\"", c->peer, why, c->line);
			return false;
		}
		r->subs[sub].claimed = true;
		c->st = C_BCAST;
		c->run = r;
		c->sub = sub;
		c->seed = seed;
		c->bytes = bytes;
		c->hash = FNV_OFFSET;
		return true;
	}
	if (mode == MODE_BCAST)
		send_line(c, "BAD bcast %s", why);
	else
		send_line(c, "BAD hello");
	say("%s: %s: \"%s\"", c->peer, why, c->line);
	return false;
}

/*
 * Takes the line bytes at @p (hello, or an xfer UDP run's control lines);
 * *@used says how many. Returns false once the connection is to be closed.
 */
static bool line_bytes(struct conn *c, const uint8_t *p, size_t n, size_t *used)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] != '\n') {
			if (c->line_len >= sizeof(c->line) - 1) {
				send_line(c, "BAD line too long");
				*used = i + 1;
				return false;
			}
			c->line[c->line_len++] = p[i];
			continue;
		}
		c->line[c->line_len] = 0;
		c->line_len = 0;
		*used = i + 1;
		if (c->st == C_HELLO) {
			c->t_start = now();
			return parse_hello(c);
		}
		/* UDP control: "END sent=<k>" */
		if (sscanf(c->line, "END sent=%ld", &c->end_sent) != 1)
			say("%s: unexpected control line \"%s\"", c->peer, c->line);
		return true;
	}
	*used = n;
	return true;
}

/*
 * The peer has shut down its write side (@err 0), or the connection failed
 * (an errno) or was silent for too long (ERR_IDLE).
 */
static void conn_end(struct conn *c, int err)
{
	if (c->st == C_REMOTE) {
		finish_remote(c, err);
		return;
	}
	if (err == ERR_IDLE)
		say("%s: silent for %.0f s, given up", c->peer, idle);
	else if (err)
		say("%s: recv: %s", c->peer, strerror(err));
	if (c->st == C_TCP)
		finish_tcp(c);
	else if (c->st == C_UDP)
		finish_udp(c);
	else if (c->st == C_BCAST)
		finish_sub(c);
}

/* Reads from a connection; returns false once it is finished. */
static bool conn_read(struct conn *c)
{
	ssize_t n = recv(c->fd, rx_buf, RX_BUF, MSG_DONTWAIT);
	size_t off = 0, used;

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0) {
		conn_end(c, n < 0 ? errno : 0);
		return false;
	}
	c->t_last = now();
	while (off < (size_t)n) {
		if (c->st == C_REMOTE || c->st == C_TCP || c->st == C_BCAST) {
			stream_data(c, rx_buf + off, n - off);
			break;
		}
		if (!line_bytes(c, rx_buf + off, n - off, &used))
			return false;
		off += used;
	}
	return true;
}

/* Accepts one pending connection; false if there was none or no room. */
static bool conn_accept(int lfd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct conn *c;
	int fd, i;

	for (i = 0; i < MAX_CONNS && conns[i].st != C_FREE; i++)
		;
	if (i == MAX_CONNS)
		return false;
	fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
	if (fd < 0)
		return false;
	c = &conns[i];
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->first_bad = -1;
	c->t_start = c->t_last = now();
	peer_name(&ss, c->peer, sizeof(c->peer));
	if (mode == MODE_REMOTE) {
		c->st = C_REMOTE;
		c->seed = ZC_PATTERN_SEED;
		c->bytes = UINT64_MAX;
	} else {
		c->st = C_HELLO;
	}
	conns_open++;
	if (i >= conns_hi)
		conns_hi = i + 1;
	return true;
}

/* Whether the mode's work is done. */
static bool finished(int count, int accepted)
{
	switch (mode) {
	case MODE_REMOTE:
		return count && accepted >= count && !conns_open;
	case MODE_XFER:
		return tcp_done >= tcp_runs && udp_done >= udp_runs;
	case MODE_BCAST:
		return runs_done >= runs_wanted;
	}
	return true;
}

/* Prints the summary; returns the exit status. */
static int report(bool timed_out, double timeout)
{
	bool ok;
	int i;

	if (stop_sig)
		say("stopped by signal %d", (int)stop_sig);
	switch (mode) {
	case MODE_REMOTE:
		say("%d connections (%d OK, %d BAD, %d failed), exiting",
		    conns_done, conns_ok, conns_bad, conns_failed);
		return 0;
	case MODE_XFER:
		ok = tcp_done >= tcp_runs && udp_done >= udp_runs && !runs_bad;
		if (timed_out)
			say("timed out after %.0f s", timeout);
		say("summary: tcp runs %d/%d, udp runs %d/%d, runs with bad data %d, stray datagrams %u: %s",
		    tcp_done, tcp_runs, udp_done, udp_runs, runs_bad, stray_total,
		    ok ? "PASS" : "FAIL");
		return ok ? 0 : 1;
	case MODE_BCAST:
		ok = runs_done >= runs_wanted && !runs_bad;
		if (timed_out)
			say("timed out after %.0f s", timeout);
		for (i = 0; i < MAX_RUNS; i++)
			if (runs[i].used)
				say("run id %u unfinished: %u of %u subscribers ended",
				    runs[i].id, runs[i].ended, runs[i].nsubs);
		say("summary: broadcast runs %d/%d, runs with a failed subscriber %d: %s",
		    runs_done, runs_wanted, runs_bad, ok ? "PASS" : "FAIL");
		return ok ? 0 : 1;
	}
	return 1;
}

static void bad_usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s --mode remote|xfer|bcast [options]\n"
		"  --port N          TCP port (remote %d, xfer %d, bcast %d)\n"
		"  --timeout S       stop after S seconds (remote 900, otherwise 120)\n"
		"  --idle S          give up a connection silent for S seconds\n"
		"                    (remote 120, otherwise 0: never)\n"
		"  --ready FILE      write the pid to FILE once listening\n"
		"remote: --count N   exit once N connections have ended\n"
		"xfer:   --udp-port N (%d), --tcp-runs N (1), --udp-runs N (1)\n"
		"bcast:  --runs N    broadcast runs to serve (2)\n",
		prog, ZCX_REMOTE_PORT, ZCX_TCP_PORT, ZCX_BCAST_PORT, ZCX_UDP_PORT);
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "port", required_argument, NULL, 'p' },
		{ "udp-port", required_argument, NULL, 'u' },
		{ "tcp-runs", required_argument, NULL, 'T' },
		{ "udp-runs", required_argument, NULL, 'U' },
		{ "runs", required_argument, NULL, 'R' },
		{ "count", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ "idle", required_argument, NULL, 'i' },
		{ "ready", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	static struct pollfd p[MAX_CONNS + 2];
	struct sigaction sa = { .sa_handler = on_signal };
	int port = -1, udp_port = ZCX_UDP_PORT, count = 0, accepted = 0;
	double timeout = -1, deadline;
	const char *ready = NULL, *mode_arg = NULL;
	bool timed_out = false;
	int lfd, opt, i, m;

	setvbuf(stdout, NULL, _IOLBF, 0);
	idle = -1;
	while ((opt = getopt_long(argc, argv, "m:p:t:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			mode_arg = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'u':
			udp_port = atoi(optarg);
			break;
		case 'T':
			tcp_runs = atoi(optarg);
			break;
		case 'U':
			udp_runs = atoi(optarg);
			break;
		case 'R':
			runs_wanted = atoi(optarg);
			break;
		case 'n':
			count = atoi(optarg);
			break;
		case 't':
			timeout = atof(optarg);
			break;
		case 'i':
			idle = atof(optarg);
			break;
		case 'r':
			ready = optarg;
			break;
		default:
			bad_usage(argv[0]);
		}
	}
	if (optind != argc || !mode_arg)
		bad_usage(argv[0]);
	for (m = 0; m < (int)ARRAY_SIZE(mode_names); m++)
		if (!strcmp(mode_arg, mode_names[m]))
			break;
	if (m == (int)ARRAY_SIZE(mode_names))
		bad_usage(argv[0]);
	mode = m;
	if (port < 0)
		port = mode == MODE_REMOTE ? ZCX_REMOTE_PORT :
		       mode == MODE_XFER ? ZCX_TCP_PORT : ZCX_BCAST_PORT;
	if (timeout < 0)
		timeout = mode == MODE_REMOTE ? 900 : 120;
	if (idle < 0)
		idle = mode == MODE_REMOTE ? 120 : 0;
	if (port <= 0 || port > 65535 || timeout <= 0 || count < 0 ||
	    udp_port <= 0 || udp_port > 65535)
		bad_usage(argv[0]);

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	for (i = 0; i < MAX_CONNS; i++)
		conns[i].fd = -1;

	rx_buf = malloc(RX_BUF);
	lfd = bind_any(SOCK_STREAM | SOCK_NONBLOCK, port);
	if (!rx_buf || lfd < 0 || listen(lfd, SOMAXCONN)) {
		fprintf(stderr, "zcsend_rx: tcp port %d: %s\n", port, strerror(errno));
		return 1;
	}
	if (mode == MODE_XFER) {
		int rcvbuf = UDP_RCVBUF;

		udp_fd = bind_any(SOCK_DGRAM, udp_port);
		if (udp_fd < 0) {
			fprintf(stderr, "zcsend_rx: udp port %d: %s\n", udp_port,
				strerror(errno));
			return 1;
		}
		if (setsockopt(udp_fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf,
			       sizeof(rcvbuf)))
			setsockopt(udp_fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
				   sizeof(rcvbuf));
	}
	if (ready) {
		FILE *f = fopen(ready, "w");

		if (!f || fprintf(f, "%d\n", getpid()) < 0 || fclose(f)) {
			perror(ready);
			return 1;
		}
	}
	switch (mode) {
	case MODE_REMOTE:
		say("listening on tcp %d (IPv4 and IPv6), pid %d, for %.0f s%s",
		    port, getpid(), timeout, count ? " or until the connection limit" : "");
		break;
	case MODE_XFER:
		say("listening on tcp %d and udp %d (IPv4 and IPv6), for %d tcp + %d udp runs, timeout %.0f s",
		    port, udp_port, tcp_runs, udp_runs, timeout);
		break;
	case MODE_BCAST:
		say("listening on tcp %d (IPv4 and IPv6), for %d broadcast runs, timeout %.0f s",
		    port, runs_wanted, timeout);
		break;
	}

	deadline = now() + timeout;
	while (!stop_sig && !finished(count, accepted)) {
		bool accepting = conns_open < MAX_CONNS && (!count || accepted < count);
		double left = deadline - now(), t;
		int n;

		if (left <= 0) {
			timed_out = true;
			break;
		}
		p[0] = (struct pollfd){ .fd = accepting ? lfd : -1, .events = POLLIN };
		p[1] = (struct pollfd){ .fd = udp_fd, .events = POLLIN };
		for (i = 0; i < conns_hi; i++)
			p[i + 2] = (struct pollfd){ .fd = conns[i].fd, .events = POLLIN };
		n = poll(p, conns_hi + 2, left > 1 ? 1000 : (int)(left * 1000) + 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("zcsend_rx: poll");
			break;
		}
		/* Connections first: a UDP run's control line announces its datagrams. */
		for (i = 0; i < conns_hi; i++) {
			if (!p[i + 2].revents || conns[i].st == C_FREE)
				continue;
			if (!conn_read(&conns[i]))
				conn_close(&conns[i]);
		}
		if (p[1].revents)
			udp_drain();
		/* Every pending connection (a broadcast run opens many at once). */
		while (p[0].revents && (!count || accepted < count) &&
		       conn_accept(lfd))
			accepted++;
		if (idle <= 0)
			continue;
		t = now();
		for (i = 0; i < conns_hi; i++) {
			if (conns[i].st == C_FREE || t - conns[i].t_last < idle)
				continue;
			conn_end(&conns[i], ERR_IDLE);
			conn_close(&conns[i]);
		}
	}

	for (i = 0; i < conns_hi; i++)
		if (conns[i].st != C_FREE)
			conn_close(&conns[i]);
	free(rx_buf);
	return report(timed_out, timeout);
}
