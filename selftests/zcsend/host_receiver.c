// SPDX-License-Identifier: GPL-2.0
/*
 * host_receiver: the far end of the zcsend "remote" selftests.
 *
 * Runs on the host, inside the network namespace that holds the guest's tap
 * device. Listens on TCP port 7777 (IPv4 and IPv6), checks that every
 * connection carries the stream of pattern.h (seed ZC_PATTERN_STREAM_SEED
 * from offset 0) and, once the peer has shut down its write side, answers
 * on the same connection with one line:
 *
 *	OK <bytes>\n		every byte matched
 *	BAD <offset>\n		first stream offset that did not
 *
 * and closes it. One line per connection is also logged to stdout.
 *
 * It stops by itself after -t seconds (default 900), after -n connections
 * when -n is given, or on SIGTERM/SIGINT. With -r FILE it writes its pid to
 * FILE once it listens, so a runner can wait for that file.
 *
 *	host_receiver [-p port] [-t seconds] [-n connections] [-r readyfile]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pattern.h"

#define BUF_SIZE	(256 << 10)
/* A connection silent this long is given up. */
#define IDLE_SECONDS	120

static volatile sig_atomic_t stop;
static atomic_int active, done;

static void on_signal(int sig)
{
	stop = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct conn {
	int fd;
	char peer[INET6_ADDRSTRLEN + 8];
};

static void *conn_main(void *arg)
{
	struct timeval tv = { IDLE_SECONDS, 0 };
	struct conn *c = arg;
	uint64_t got = 0, bad = UINT64_MAX;
	double start = now_s(), secs;
	char line[64];
	uint8_t *buf;
	size_t off;
	ssize_t n;
	int err = 0;

	buf = malloc(BUF_SIZE);
	if (!buf) {
		err = ENOMEM;
		goto out;
	}
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (;;) {
		n = recv(c->fd, buf, BUF_SIZE, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = errno;
			break;
		}
		if (n == 0)
			break;
		if (bad == UINT64_MAX) {
			off = zc_pattern_check(buf, n, ZC_PATTERN_STREAM_SEED,
					       got);
			if (off < (size_t)n)
				bad = got + off;
		}
		got += n;
	}
	secs = now_s() - start;
	if (err) {
		printf("host_receiver: %s: %s after %llu bytes\n", c->peer,
		       strerror(err), (unsigned long long)got);
		goto out;
	}
	if (bad == UINT64_MAX)
		snprintf(line, sizeof(line), "OK %llu\n",
			 (unsigned long long)got);
	else
		snprintf(line, sizeof(line), "BAD %llu\n",
			 (unsigned long long)bad);
	if (send(c->fd, line, strlen(line), MSG_NOSIGNAL) < 0)
		err = errno;
	printf("host_receiver: %s: %llu bytes in %.3f s (%.1f MB/s): %.*s%s%s\n",
	       c->peer, (unsigned long long)got, secs,
	       secs > 0 ? got / secs / 1e6 : 0.0, (int)strlen(line) - 1, line,
	       err ? ", reply failed: " : "", err ? strerror(err) : "");
out:
	fflush(stdout);
	free(buf);
	close(c->fd);
	free(c);
	atomic_fetch_sub(&active, 1);
	atomic_fetch_add(&done, 1);
	return NULL;
}

static int listen_on(int family, int port)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd, one = 1;

	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (void *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (void *)&ss;

		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		sin6->sin6_addr = in6addr_any;
		len = sizeof(*sin6);
	}
	if (bind(fd, (void *)&ss, len) || listen(fd, 16)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void peer_name(const struct sockaddr_storage *ss, char *out,
		      size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)ss;

		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		snprintf(out, len, "%s:%d", ip, ntohs(sin->sin_port));
	} else {
		const struct sockaddr_in6 *sin6 = (const void *)ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		snprintf(out, len, "[%s]:%d", ip, ntohs(sin6->sin6_port));
	}
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [-p port] [-t seconds] [-n connections] [-r readyfile]\n",
		prog);
	exit(2);
}

int main(int argc, char **argv)
{
	int port = 7777, limit = 0, timeout = 900, nfds = 0, opt, i;
	struct sigaction sa = { .sa_handler = on_signal };
	const char *ready = NULL;
	struct pollfd pfd[2];
	double end;

	while ((opt = getopt(argc, argv, "p:t:n:r:h")) != -1) {
		switch (opt) {
		case 'p':
			port = atoi(optarg);
			break;
		case 't':
			timeout = atoi(optarg);
			break;
		case 'n':
			limit = atoi(optarg);
			break;
		case 'r':
			ready = optarg;
			break;
		default:
			usage(argv[0]);
		}
	}
	if (port <= 0 || port > 65535 || timeout <= 0 || limit < 0)
		usage(argv[0]);

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	pfd[nfds].fd = listen_on(AF_INET, port);
	if (pfd[nfds].fd >= 0)
		nfds++;
	else
		fprintf(stderr, "host_receiver: IPv4 port %d: %s\n", port,
			strerror(errno));
	pfd[nfds].fd = listen_on(AF_INET6, port);
	if (pfd[nfds].fd >= 0)
		nfds++;
	else
		fprintf(stderr, "host_receiver: IPv6 port %d: %s\n", port,
			strerror(errno));
	if (!nfds)
		return 1;
	for (i = 0; i < nfds; i++)
		pfd[i].events = POLLIN;

	if (ready) {
		FILE *f = fopen(ready, "w");

		if (!f || fprintf(f, "%d\n", getpid()) < 0 || fclose(f)) {
			perror(ready);
			return 1;
		}
	}
	printf("host_receiver: listening on port %d (%s), pid %d, for %d s\n",
	       port, nfds == 2 ? "IPv4+IPv6" : "one family", getpid(),
	       timeout);
	fflush(stdout);

	end = now_s() + timeout;
	while (!stop && now_s() < end && (!limit || atomic_load(&done) +
					  atomic_load(&active) < limit)) {
		int ms = (end - now_s()) * 1000;

		if (poll(pfd, nfds, ms > 1000 ? 1000 : ms) <= 0)
			continue;
		for (i = 0; i < nfds; i++) {
			struct sockaddr_storage ss;
			socklen_t len = sizeof(ss);
			struct conn *c;
			pthread_t th;
			int fd;

			if (!(pfd[i].revents & POLLIN))
				continue;
			fd = accept4(pfd[i].fd, (void *)&ss, &len,
				     SOCK_CLOEXEC);
			if (fd < 0)
				continue;
			c = calloc(1, sizeof(*c));
			if (!c) {
				close(fd);
				continue;
			}
			c->fd = fd;
			peer_name(&ss, c->peer, sizeof(c->peer));
			atomic_fetch_add(&active, 1);
			if (pthread_create(&th, NULL, conn_main, c)) {
				atomic_fetch_sub(&active, 1);
				close(fd);
				free(c);
				continue;
			}
			pthread_detach(th);
		}
	}
	for (i = 0; i < nfds; i++)
		close(pfd[i].fd);
	/* Let connections in progress finish, within the time limit. */
	while (atomic_load(&active) && !stop && now_s() < end)
		usleep(100000);
	printf("host_receiver: %d connections, exiting\n", atomic_load(&done));
	return 0;
}
