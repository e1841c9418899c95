// SPDX-License-Identifier: GPL-2.0
/*
 * zcsend_host_rx: the host end of the zcsend sample.
 *
 * Listens on TCP 7878 and UDP 7879 (IPv4 and IPv6), checks every byte that
 * zcsend_xfer sends against the generator in pattern.h and answers each run
 * with a verdict line (protocol in pattern.h). Exits by itself once it has
 * served the requested number of TCP and UDP runs (one each by default), or
 * after --timeout seconds, or on SIGTERM/SIGINT, printing a summary.
 *
 * Exit status: 0 if every run was served and verified, 1 otherwise.
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
#define UDP_BUF		(64 * 1024)
#define UDP_RCVBUF	(32 * 1024 * 1024)
#define UDP_GRACE_MS	500

enum mode { MODE_HELLO, MODE_TCP, MODE_UDP };

struct conn {
	int fd;
	enum mode mode;
	char peer[INET6_ADDRSTRLEN + 8];
	char line[ZCX_LINE_MAX];
	size_t line_len;
	uint64_t seed;
	uint64_t bytes;		/* announced */
	double t_start;
	/* TCP */
	uint64_t got;
	int64_t first_bad;
	/* UDP */
	uint32_t dgrams, run;
	uint32_t dgram_size;
	uint8_t *seen;
	uint32_t seen_count, bad, dup, stray;
	uint64_t ok_bytes;
	long end_sent;
};

static int udp_fd = -1;
static uint8_t udp_buf[UDP_BUF];
static uint32_t stray_total;
static volatile sig_atomic_t stop_sig;

static int tcp_runs = 1, udp_runs = 1;
static int tcp_done, udp_done, runs_bad;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void say(const char *fmt, ...)
{
	va_list ap;

	printf("zcsend_host_rx: ");
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

static void peer_name(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const struct sockaddr_in6 *s6 = (const void *)ss;
	const struct sockaddr_in *s4 = (const void *)ss;
	char ip[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		/* Show v4-mapped peers as plain IPv4. */
		if (!strncmp(ip, "::ffff:", 7) && strchr(ip + 7, '.'))
			memmove(ip, ip + 7, strlen(ip + 7) + 1);
		snprintf(buf, len, "%s", ip);
	} else {
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s", ip);
	}
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

static double mbps(uint64_t bytes, double secs)
{
	return secs > 0 ? bytes / secs / 1e6 : 0;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->seen);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* Parses the hello line; returns false (after telling the peer) if bad. */
static bool parse_hello(struct conn *c)
{
	unsigned long long seed, bytes;
	unsigned int dgrams, run, dgram;

	if (sscanf(c->line, "ZCX1 tcp seed=%llx bytes=%llu", &seed, &bytes) == 2) {
		c->mode = MODE_TCP;
		c->seed = seed;
		c->bytes = bytes;
		c->first_bad = -1;
		c->t_start = now();
		return true;
	}
	if (sscanf(c->line, "ZCX1 udp seed=%llx bytes=%llu dgrams=%u dgram=%u run=%u",
		   &seed, &bytes, &dgrams, &dgram, &run) == 5 &&
	    dgrams > 0 && dgrams <= 1U << 24 && dgram > ZCX_DGRAM_HDR &&
	    dgram <= 65507) {
		c->mode = MODE_UDP;
		c->seed = seed;
		c->bytes = bytes;
		c->dgrams = dgrams;
		c->dgram_size = dgram;
		c->run = run;
		c->end_sent = -1;
		c->seen = calloc(dgrams, 1);
		if (!c->seen) {
			send_line(c, "BAD udp receiver out of memory");
			return false;
		}
		c->t_start = now();
		send_line(c, "READY udp run=%u", run);
		return true;
	}
	send_line(c, "BAD hello");
	say("%s: bad hello line \"%s\"", c->peer, c->line);
	return false;
}

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

static void tcp_data(struct conn *c, const uint8_t *p, size_t n)
{
	if (c->first_bad < 0) {
		size_t room = c->got < c->bytes ? c->bytes - c->got : 0;
		size_t chk = n < room ? n : room;
		size_t i = zcx_check(p, chk, c->seed, c->got);

		if (i < chk)
			c->first_bad = c->got + i;
		else if (n > room)	/* more than announced */
			c->first_bad = c->bytes;
	}
	c->got += n;
}

/* Checks one datagram against the UDP run on @c (NULL: none active). */
static void udp_datagram(struct conn *c, const uint8_t *p, ssize_t n, int flags)
{
	uint32_t payload, want_len;
	struct zcx_dgram h;
	uint64_t want_off;

	if (!c || c->mode != MODE_UDP || n < ZCX_DGRAM_HDR) {
		stray_total++;
		return;
	}
	zcx_dgram_load(&h, p);
	if (h.magic != ZCX_DGRAM_MAGIC || h.run != c->run) {
		c->stray++;
		stray_total++;
		return;
	}
	payload = c->dgram_size - ZCX_DGRAM_HDR;
	want_off = (uint64_t)h.seq * payload;
	want_len = 0;
	if (want_off < c->bytes)
		want_len = c->bytes - want_off < payload ? c->bytes - want_off : payload;
	if (h.seq >= c->dgrams || (flags & MSG_TRUNC) || h.offset != want_off ||
	    h.len != want_len || (size_t)n != ZCX_DGRAM_HDR + (size_t)h.len ||
	    zcx_check(p + ZCX_DGRAM_HDR, h.len, c->seed, h.offset) != h.len) {
		if (c->bad < 3)
			say("  bad datagram: seq %u offset %" PRIu64 " len %u, %zd bytes",
			    h.seq, h.offset, h.len, n);
		c->bad++;
		return;
	}
	if (c->seen[h.seq]) {
		c->dup++;
		return;
	}
	c->seen[h.seq] = 1;
	c->seen_count++;
	c->ok_bytes += h.len;
}

/* Reads every datagram waiting on the UDP socket. */
static void udp_drain(struct conn *c)
{
	for (;;) {
		ssize_t n = recv(udp_fd, udp_buf, sizeof(udp_buf),
				 MSG_DONTWAIT | MSG_TRUNC);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		udp_datagram(c, udp_buf, n > UDP_BUF ? UDP_BUF : n,
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
		udp_drain(c);
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

/* Handles bytes of the control line(s); returns false when the run is over. */
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
		if (c->mode == MODE_HELLO)
			return parse_hello(c);
		/* UDP control: "END sent=<k>" */
		if (sscanf(c->line, "END sent=%ld", &c->end_sent) != 1)
			say("%s: unexpected control line \"%s\"", c->peer, c->line);
		return true;
	}
	*used = n;
	return true;
}

/* Reads from the connection; returns false once it is finished. */
static bool conn_read(struct conn *c, uint8_t *buf)
{
	ssize_t n = recv(c->fd, buf, RX_BUF, 0);
	size_t off = 0, used;

	if (n < 0 && errno == EINTR)
		return true;
	if (n <= 0) {
		if (n < 0)
			say("%s: recv: %s", c->peer, strerror(errno));
		if (c->mode == MODE_TCP)
			finish_tcp(c);
		else if (c->mode == MODE_UDP)
			finish_udp(c);
		return false;
	}
	while (off < (size_t)n) {
		if (c->mode == MODE_TCP) {
			tcp_data(c, buf + off, n - off);
			break;
		}
		if (!line_bytes(c, buf + off, n - off, &used))
			return false;
		off += used;
	}
	return true;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [--port TCP] [--udp-port UDP] [--tcp-runs N] [--udp-runs N]\n"
		"          [--timeout SECONDS]\n"
		"Verifies what zcsend_xfer sends; exits after N TCP and N UDP runs\n"
		"(1 each by default) or after the timeout (120 s).\n", prog);
	exit(1);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "udp-port", required_argument, NULL, 'u' },
		{ "tcp-runs", required_argument, NULL, 'T' },
		{ "udp-runs", required_argument, NULL, 'U' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	int tcp_port = ZCX_TCP_PORT, udp_port = ZCX_UDP_PORT;
	struct conn c = { .fd = -1 };
	double timeout = 120, deadline;
	struct sigaction sa = { .sa_handler = on_signal };
	int lfd, opt, rcvbuf = UDP_RCVBUF;
	uint8_t *buf;
	bool ok;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt_long(argc, argv, "p:u:T:U:t:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			tcp_port = atoi(optarg);
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

	buf = malloc(RX_BUF);
	lfd = bind_any(SOCK_STREAM, tcp_port);
	udp_fd = bind_any(SOCK_DGRAM, udp_port);
	if (!buf || lfd < 0 || udp_fd < 0 || listen(lfd, 8)) {
		perror("zcsend_host_rx: socket setup");
		return 1;
	}
	if (setsockopt(udp_fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)))
		setsockopt(udp_fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	say("listening on tcp %d and udp %d (IPv4 and IPv6), for %d tcp + %d udp runs, timeout %.0f s",
	    tcp_port, udp_port, tcp_runs, udp_runs, timeout);

	deadline = now() + timeout;
	while (!stop_sig && (tcp_done < tcp_runs || udp_done < udp_runs)) {
		struct pollfd p[3] = {
			{ .fd = c.fd >= 0 ? c.fd : lfd, .events = POLLIN },
			{ .fd = udp_fd, .events = POLLIN },
		};
		double left = deadline - now();

		if (left <= 0)
			break;
		if (poll(p, 2, left > 1 ? 1000 : (int)(left * 1000) + 1) < 0) {
			if (errno == EINTR)
				continue;
			perror("zcsend_host_rx: poll");
			break;
		}
		/* The control connection first: it announces the datagrams. */
		if (p[0].revents && c.fd < 0) {
			struct sockaddr_storage ss;
			socklen_t sl = sizeof(ss);
			int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);

			if (fd >= 0) {
				c.fd = fd;
				c.mode = MODE_HELLO;
				peer_name(&ss, c.peer, sizeof(c.peer));
			}
		} else if (p[0].revents) {
			if (!conn_read(&c, buf))
				conn_close(&c);
		}
		if (p[1].revents)
			udp_drain(c.fd >= 0 ? &c : NULL);
	}

	if (c.fd >= 0)
		conn_close(&c);
	ok = tcp_done >= tcp_runs && udp_done >= udp_runs && !runs_bad;
	if (stop_sig)
		say("stopped by signal %d", (int)stop_sig);
	else if (tcp_done < tcp_runs || udp_done < udp_runs)
		say("timed out after %.0f s", timeout);
	say("summary: tcp runs %d/%d, udp runs %d/%d, runs with bad data %d, stray datagrams %u: %s",
	    tcp_done, tcp_runs, udp_done, udp_runs, runs_bad, stray_total,
	    ok ? "PASS" : "FAIL");
	free(buf);
	return ok ? 0 : 1;
}
