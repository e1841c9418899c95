/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the zcsend samples (zcsend_xfer.c, zcsend_broadcast.c,
 * zcsend_httpd.c): clocks, errors and option sizes, whole sends and line
 * reads on a socket, addresses, latency formatting, and the eventfd and
 * completion records of /dev/zcsend.
 *
 * The functions are static inline so that a sample that does not use one
 * gets no unused-function warning. Messages start with prog, which every
 * sample defines: static const char *prog = "name";
 */
#ifndef SAMPLE_UTIL_H
#define SAMPLE_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/zcsend.h>

#define EXIT_SKIP	77	/* exit status when /dev/zcsend is missing */

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#endif

/* The program name that messages start with; the sample initialises it. */
static const char *prog;

/* The sample's usage message; it exits with status 2. */
static void usage(void);

/* Monotonic clock, in seconds. */
static inline double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CPU time of the process so far (user + sys, getrusage), in seconds. */
static inline double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* Prints "prog: " and the message on stdout, then exits with status 1. */
static inline void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stdout, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	exit(1);
}

/*
 * A byte count, with a K or M suffix for KiB or MiB, into @v. Returns false
 * for trailing characters or an empty string; 0 is a valid count.
 */
static inline bool parse_size(const char *s, size_t *v)
{
	char *end;
	unsigned long long n = strtoull(s, &end, 0);

	if (*end == 'K' || *end == 'k')
		n <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		n <<= 20, end++;
	if (*end || s == end)
		return false;
	*v = n;
	return true;
}

/* A size option's value as parse_size() reads it; usage() if bad or 0. */
static inline size_t size_option(const char *s)
{
	size_t v;

	if (!parse_size(s, &v) || !v)
		usage();
	return v;
}

/* send()s all @n bytes at @p (MSG_NOSIGNAL added to @flags); false on error. */
static inline bool send_all(int fd, const char *p, size_t n, int flags)
{
	while (n) {
		ssize_t w = send(fd, p, n, flags | MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= w;
	}
	return true;
}

/* send_all() on a control connection: dies if it fails. */
static inline void write_all(int fd, const char *p, size_t n)
{
	if (!send_all(fd, p, n, 0))
		die("control send: %s", strerror(errno));
}

/* Reads one line from @fd into @buf within @ms; returns false on timeout/EOF. */
static inline bool read_line(int fd, char *buf, size_t len, int ms)
{
	double end = now() + ms / 1e3;
	size_t n = 0;

	while (n < len - 1) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int left = (end - now()) * 1e3;
		ssize_t r;

		if (left <= 0 || poll(&p, 1, left) <= 0)
			break;
		r = recv(fd, buf + n, 1, 0);
		if (r <= 0)
			break;
		if (buf[n] == '\n') {
			buf[n] = 0;
			return true;
		}
		n++;
	}
	buf[n] = 0;
	return false;
}

/*
 * @host (an IPv4 or IPv6 address) and @port into @addr and @addrlen; exits
 * with status 2 if @host is neither.
 */
static inline void resolve(const char *host, int port,
			   struct sockaddr_storage *addr, socklen_t *addrlen)
{
	struct sockaddr_in *s4 = (void *)addr;
	struct sockaddr_in6 *s6 = (void *)addr;

	memset(addr, 0, sizeof(*addr));
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*addrlen = sizeof(*s4);
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*addrlen = sizeof(*s6);
	} else {
		fprintf(stderr, "%s: %s is not an IPv4 or IPv6 address\n", prog, host);
		exit(2);
	}
}

/* qsort() comparison of doubles, ascending. */
static inline int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* @s seconds as "1.5 us", "12 us", "3.25 ms" or "1.20 s" in @buf (32 bytes). */
static inline char *fmt_time(char *buf, double s)
{
	if (s < 1e-5)
		sprintf(buf, "%.1f us", s * 1e6);
	else if (s < 1e-3)
		sprintf(buf, "%.0f us", s * 1e6);
	else if (s < 1)
		sprintf(buf, "%.2f ms", s * 1e3);
	else
		sprintf(buf, "%.2f s", s);
	return buf;
}

/*
 * Checks the ABI version of /dev/zcsend (@zfd) and registers a new
 * non-blocking eventfd for its completions. Returns the eventfd; dies on
 * failure.
 */
static inline int zcsend_eventfd(int zfd)
{
	__u32 abi;
	int efd;

	if (ioctl(zfd, ZCSEND_IOC_VERSION, &abi) || abi != ZCSEND_ABI_VERSION)
		die("%s speaks ABI %u, this program ABI %u", ZCSEND_DEVICE,
		    abi, ZCSEND_ABI_VERSION);
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (efd < 0 || ioctl(zfd, ZCSEND_IOC_SET_EVENTFD, &efd))
		die("eventfd / ZCSEND_IOC_SET_EVENTFD: %s", strerror(errno));
	return efd;
}

/*
 * Waits up to @ms for the eventfd @efd; if it signalled, resets it and
 * returns true (then read every queued record). Dies on a read error.
 */
static inline bool wait_completions(int efd, int ms)
{
	struct pollfd p = { .fd = efd, .events = POLLIN };
	uint64_t ticks;

	if (poll(&p, 1, ms) <= 0)
		return false;
	/* Reset the counter first: a record posted later signals it again. */
	if (read(efd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		die("read eventfd: %s", strerror(errno));
	return true;
}

/*
 * Reads up to @nr completion records from /dev/zcsend (@zfd, opened
 * O_NONBLOCK) into @cq. Returns how many, 0 when none is queued; dies on
 * errors.
 */
static inline ssize_t read_completions(int zfd, struct zcsend_completion *cq,
				       size_t nr)
{
	ssize_t n;

	do
		n = read(zfd, cq, nr * sizeof(*cq));
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n < 0)
		die("read /dev/zcsend: %s", strerror(errno));
	if (n % sizeof(*cq))
		die("read /dev/zcsend returned %zd bytes, not whole records", n);
	return n / sizeof(*cq);
}

#endif /* SAMPLE_UTIL_H */
