// SPDX-License-Identifier: GPL-2.0
/*
 * zcsend_broadcast_rx: the host end of zcsend_broadcast.
 *
 * Listens on TCP 7880 (IPv4 and IPv6) and serves broadcast runs: a run is
 * <n> subscriber connections that each announce the same stream ("ZCX1
 * bcast ..." in pattern.h) and then carry it. Every connection is checked on
 * its own, byte by byte, against the pattern stream at its own offset, and
 * hashed; it is answered with a verdict line when it ends. Once all <n>
 * connections of a run have ended, the run's report gives each subscriber's
 * byte count and OK/FAIL, and whether all streams were identical (every one
 * complete, matching the pattern, with the same hash).
 *
 * Exits by itself after --runs runs (default 2: normal and stable mode), or
 * after --timeout seconds, or on SIGTERM/SIGINT, printing a summary.
 * Exit status: 0 if every run was served and every stream verified.
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
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pattern.h"

#define RX_BUF		(256 * 1024)
#define MAX_CONNS	1100	/* ZCSEND_MAX_FANOUT subscribers and a few more */
#define MAX_RUNS	64
#define MAX_SUBS	1024

#define FNV_OFFSET	0xcbf29ce484222325ULL
#define FNV_PRIME	0x100000001b3ULL

enum state { ST_HELLO, ST_DATA };

struct conn {
	int fd;
	enum state state;
	char peer[INET6_ADDRSTRLEN];
	char line[ZCX_LINE_MAX];
	size_t line_len;
	struct run *run;
	unsigned int sub;
	uint64_t got;
	int64_t first_bad;
	uint64_t hash;
};

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

static struct conn conns[MAX_CONNS];
static struct run runs[MAX_RUNS];
static volatile sig_atomic_t stop_sig;
static int runs_wanted = 2, runs_done, runs_bad;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void say(const char *fmt, ...)
{
	va_list ap;

	printf("zcsend_broadcast_rx: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static void on_signal(int sig)
{
	stop_sig = sig;
}

/* A dual-stack socket bound to @port, or an IPv4 one if IPv6 is missing. */
static int bind_any(int port)
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

	fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		if (!bind(fd, (struct sockaddr *)&a6, sizeof(a6)))
			return fd;
		close(fd);
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a4, sizeof(a4))) {
		close(fd);
		return -1;
	}
	return fd;
}

static void peer_name(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const struct sockaddr_in6 *s6 = (const void *)ss;
	const struct sockaddr_in *s4 = (const void *)ss;
	char ip[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		if (!strncmp(ip, "::ffff:", 7) && strchr(ip + 7, '.'))
			memmove(ip, ip + 7, strlen(ip + 7) + 1);
	} else {
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
	}
	snprintf(buf, len, "%s", ip);
}

static void send_line(struct conn *c, const char *fmt, ...)
{
	char buf[ZCX_LINE_MAX];
	va_list ap;
	size_t off = 0;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	while (off < (size_t)n) {
		ssize_t w = send(c->fd, buf + off, n - off, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		off += w;
	}
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

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

/* Parses the hello line; returns false (after telling the peer) if bad. */
static bool parse_hello(struct conn *c)
{
	unsigned long long seed, bytes;
	unsigned int run, sub, nsubs;
	const char *why = "bad hello";
	struct run *r = NULL;

	if (sscanf(c->line, "ZCX1 bcast seed=%llx bytes=%llu run=%u sub=%u/%u",
		   &seed, &bytes, &run, &sub, &nsubs) == 5 &&
	    nsubs >= 1 && nsubs <= MAX_SUBS && sub < nsubs) {
		r = find_run(run, seed, bytes, nsubs, &why);
		if (r && r->subs[sub].claimed) {
			why = "subscriber index already connected";
			r = NULL;
		}
	}
	if (!r) {
		send_line(c, "BAD bcast %s", why);
		say("%s: %s: \"%s\"", c->peer, why, c->line);
		return false;
	}
	r->subs[sub].claimed = true;
	c->state = ST_DATA;
	c->run = r;
	c->sub = sub;
	c->first_bad = -1;
	c->hash = FNV_OFFSET;
	return true;
}

static void data_bytes(struct conn *c, const uint8_t *p, size_t n)
{
	struct run *r = c->run;
	size_t i;

	if (c->first_bad < 0) {
		size_t room = c->got < r->bytes ? r->bytes - c->got : 0;
		size_t chk = n < room ? n : room;
		size_t bad = zcx_check(p, chk, r->seed, c->got);

		if (bad < chk)
			c->first_bad = c->got + bad;
		else if (n > room)	/* more than announced */
			c->first_bad = r->bytes;
	}
	for (i = 0; i < n; i++)
		c->hash = (c->hash ^ p[i]) * FNV_PRIME;
	c->got += n;
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
	    runs_done, ok, r->nsubs, total, secs, secs > 0 ? total / secs / 1e6 : 0,
	    same ? "identical" : "NOT identical", ok == r->nsubs && same ? "PASS" : "FAIL");
	free(r->subs);
	memset(r, 0, sizeof(*r));
}

static void finish_conn(struct conn *c)
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

/* Reads from a connection; returns false once it is finished. */
static bool conn_read(struct conn *c, uint8_t *buf)
{
	ssize_t n = recv(c->fd, buf, RX_BUF, 0);
	size_t i;

	if (n < 0 && errno == EINTR)
		return true;
	if (n <= 0) {
		if (n < 0)
			say("%s: recv: %s", c->peer, strerror(errno));
		if (c->state == ST_DATA)
			finish_conn(c);
		return false;
	}
	if (c->state == ST_DATA) {
		data_bytes(c, buf, n);
		return true;
	}
	for (i = 0; i < (size_t)n; i++) {
		if (buf[i] != '\n') {
			if (c->line_len >= sizeof(c->line) - 1) {
				send_line(c, "BAD bcast line too long");
				return false;
			}
			c->line[c->line_len++] = buf[i];
			continue;
		}
		c->line[c->line_len] = 0;
		if (!parse_hello(c))
			return false;
		if (i + 1 < (size_t)n)
			data_bytes(c, buf + i + 1, n - i - 1);
		return true;
	}
	return true;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--port TCP] [--runs N] [--timeout SECONDS]\n"
		"Verifies the subscriber streams of zcsend_broadcast; exits after N runs\n"
		"(2 by default) or after the timeout (120 s).\n", prog);
	exit(1);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "runs", required_argument, NULL, 'r' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	static struct pollfd p[MAX_CONNS + 1];
	struct sigaction sa = { .sa_handler = on_signal };
	int port = ZCX_BCAST_PORT, lfd, opt, i, open_conns = 0;
	double timeout = 120, deadline;
	uint8_t *buf;
	bool ok;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt_long(argc, argv, "p:r:t:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			port = atoi(optarg);
			break;
		case 'r':
			runs_wanted = atoi(optarg);
			break;
		case 't':
			timeout = atof(optarg);
			break;
		default:
			usage(argv[0]);
		}
	}
	if (optind != argc)
		usage(argv[0]);

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < MAX_CONNS; i++)
		conns[i].fd = -1;

	buf = malloc(RX_BUF);
	lfd = bind_any(port);
	if (!buf || lfd < 0 || listen(lfd, 128)) {
		perror("zcsend_broadcast_rx: socket setup");
		return 1;
	}
	say("listening on tcp %d (IPv4 and IPv6), for %d broadcast runs, timeout %.0f s",
	    port, runs_wanted, timeout);

	deadline = now() + timeout;
	while (!stop_sig && runs_done < runs_wanted) {
		double left = deadline - now();
		int n;

		if (left <= 0)
			break;
		p[0] = (struct pollfd) { .fd = open_conns < MAX_CONNS ? lfd : -1, .events = POLLIN };
		for (i = 0; i < MAX_CONNS; i++)
			p[i + 1] = (struct pollfd) { .fd = conns[i].fd, .events = POLLIN };
		n = poll(p, MAX_CONNS + 1, left > 1 ? 1000 : (int)(left * 1000) + 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("zcsend_broadcast_rx: poll");
			break;
		}
		for (i = 0; i < MAX_CONNS; i++) {
			if (!p[i + 1].revents || conns[i].fd < 0)
				continue;
			if (!conn_read(&conns[i], buf)) {
				conn_close(&conns[i]);
				open_conns--;
			}
		}
		if (p[0].revents) {
			struct sockaddr_storage ss;
			socklen_t sl = sizeof(ss);
			int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);

			for (i = 0; fd >= 0 && i < MAX_CONNS; i++) {
				if (conns[i].fd >= 0)
					continue;
				conns[i].fd = fd;
				conns[i].state = ST_HELLO;
				peer_name(&ss, conns[i].peer, sizeof(conns[i].peer));
				open_conns++;
				break;
			}
		}
	}

	for (i = 0; i < MAX_CONNS; i++)
		if (conns[i].fd >= 0)
			conn_close(&conns[i]);
	ok = runs_done >= runs_wanted && !runs_bad;
	if (stop_sig)
		say("stopped by signal %d", (int)stop_sig);
	else if (runs_done < runs_wanted)
		say("timed out after %.0f s", timeout);
	for (i = 0; i < MAX_RUNS; i++)
		if (runs[i].used)
			say("run id %u unfinished: %u of %u subscribers ended", runs[i].id,
			    runs[i].ended, runs[i].nsubs);
	say("summary: broadcast runs %d/%d, runs with a failed subscriber %d: %s",
	    runs_done, runs_wanted, runs_bad, ok ? "PASS" : "FAIL");
	free(buf);
	return ok ? 0 : 1;
}
