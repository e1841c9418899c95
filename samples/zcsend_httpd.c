// SPDX-License-Identifier: GPL-2.0
/*
 * zcsend_httpd: a small HTTP/1.1 file server, the classic sendfile(2) use,
 * that sends response bodies through /dev/zcsend from a read-only mapping.
 *
 * GET and HEAD of regular files below one directory, keep-alive and
 * Content-Length, one connection at a time, single-threaded. The target is
 * percent-decoded; ".." segments and absolute paths are refused (400),
 * hidden files and anything but regular files are not found (404), and the
 * file is opened with openat2(RESOLVE_BENEATH) so that symlinks cannot lead
 * out of the directory either.
 *
 * Two ways to send a body (-m):
 *
 *   zcsend    mmap the file PROT_READ, MAP_SHARED (the module pins read-only
 *             pages), send the headers with send(MSG_MORE), then the body
 *             with ZCSEND_IOC_SEND in chunks (-c, default 256 KiB), at most
 *             MAX_INFLIGHT sends in flight. Completion records are read from
 *             /dev/zcsend with read(2) (an eventfd says when); a mapping is
 *             unmapped once the last completion of its sends arrived, which
 *             may be while the next request is served.
 *   sendfile  the headers with send(MSG_MORE), then sendfile(2).
 *
 * When it stops (after -n requests, -t seconds without a request, SIGTERM or
 * SIGINT, or GET /quit with -q) it waits for the completions in flight and
 * prints requests, bytes, CPU seconds (getrusage, user + sys), CPU s/GB and,
 * for zcsend, the ZEROCOPY/COPIED completion counts, then a RESULT line.
 *
 * -q enables GET /quit?verdict=TEXT: a test client reports what it found
 * (TEXT starting with PASS or not); the server stops and passes only if
 * TEXT starts with PASS. `make run` uses it (samples/zcsend_httpd_check.sh).
 *
 *   zcsend_httpd [-m zcsend|sendfile] [-d DIR] [-p PORT] [-n REQUESTS]
 *                [-t IDLE_SECONDS] [-c CHUNK] [-q]
 *   zcsend_httpd --mkfile PATH SIZE     write SIZE pattern bytes to PATH
 *                                       (zcsend_pattern.h, seed
 *                                       ZC_PATTERN_SEED + SIZE)
 *
 * Exit status: 0 if every completion arrived as expected (and with -q the
 * client's verdict was PASS), 1 otherwise, 2 on usage errors, 77 in zcsend
 * mode when /dev/zcsend is missing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <linux/zcsend.h>

#include "zcsend_pattern.h"
#include "sample_util.h"

#define REQ_MAX		8192		/* request line + headers */
#define MAX_INFLIGHT	16		/* zcsend sends in flight */
#define MAX_MAPS	8		/* mappings waiting for completions */
#define KEEPALIVE_MS	15000		/* idle keep-alive connection */
#define SNDTIMEO_S	30		/* a client that stops reading */
#define DRAIN_MS	10000		/* completions at most this late */

static const char *prog = "zcsend_httpd";

static struct {
	bool zc;
	const char *dir;
	int port;
	unsigned long max_reqs;
	int idle_s;
	size_t chunk;
	bool control;
} opt = { .zc = true, .dir = ".", .port = 8080, .idle_s = 0,
	  .chunk = 256 << 10 };

static struct {
	unsigned long reqs, files, errors, aborted;
	uint64_t bytes;			/* body bytes sent */
	unsigned long sends, recs, zc, copied, copypath, weird;
} st;

/* A file mapping whose pages the module may still hold. */
static struct map {
	void *addr;
	size_t len;
	uint64_t accepted, completed;
	unsigned int pending;		/* sends without completion yet */
	bool used, sending;
} maps[MAX_MAPS];

static int dirfd_ = -1, lfd = -1, zfd = -1, efd = -1;
static unsigned int inflight;
static volatile sig_atomic_t stop;
static bool quit, have_verdict;
static char verdict[128];

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* --mkfile: the zcsend_pattern.h stream of seed ZC_PATTERN_SEED + size. */
static int mkfile(const char *path, const char *size_arg)
{
	size_t size, blk = 1 << 20, off, n;
	/* "-1" reads as SIZE_MAX: a bad size too. */
	bool size_ok = parse_size(size_arg, &size) && size != SIZE_MAX;
	uint8_t *buf = malloc(blk);
	FILE *f = fopen(path, "w");

	if (!size_ok || !buf || !f) {
		fprintf(stderr, "%s: --mkfile %s %s: %s\n", prog, path, size_arg,
			!size_ok ? "bad size" : strerror(errno));
		return 2;
	}
	for (off = 0; off < size; off += n) {
		n = size - off < blk ? size - off : blk;
		zc_pattern_fill(buf, n, ZC_PATTERN_SEED + size, off);
		if (fwrite(buf, 1, n, f) != n)
			break;
	}
	if (fclose(f) || off < size) {
		fprintf(stderr, "%s: writing %s failed\n", prog, path);
		return 1;
	}
	free(buf);
	return 0;
}

/* ---- zcsend completions ---- */

static void unmap_if_done(struct map *m)
{
	if (!m->used || m->sending || m->pending)
		return;
	if (m->completed != m->accepted) {
		printf("%s: completions say %" PRIu64 " bytes, the sends accepted %" PRIu64 "\n",
		       prog, m->completed, m->accepted);
		st.weird++;
	}
	munmap(m->addr, m->len);
	m->used = false;
}

/* Reads every queued record; the eventfd only says when to look. */
static void reap(void)
{
	struct zcsend_completion cq[64];
	uint64_t ticks;
	ssize_t n, i;

	if (read(efd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		perror("read eventfd");
	for (;;) {
		n = read(zfd, cq, sizeof(cq));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0 || n % sizeof(cq[0])) {
			printf("%s: read %s: %zd (%s)\n", prog, ZCSEND_DEVICE, n,
			       n < 0 ? strerror(errno) : "not whole records");
			st.weird++;
			return;
		}
		for (i = 0; i < n / (ssize_t)sizeof(cq[0]); i++) {
			const struct zcsend_completion *c = &cq[i];
			struct map *m = &maps[c->user_data % MAX_MAPS];

			if (c->user_data >= MAX_MAPS || !m->used || !m->pending) {
				printf("%s: unexpected completion user_data=%llu\n",
				       prog, (unsigned long long)c->user_data);
				st.weird++;
				continue;
			}
			m->pending--;
			inflight--;
			m->completed += c->bytes;
			st.recs++;
			if (c->flags & ZCSEND_COMPL_ZEROCOPY)
				st.zc++;
			else
				st.copied++;
			if (c->flags & ZCSEND_COMPL_COPY_PATH)
				st.copypath++;
			if (c->result || !(c->flags & ZCSEND_COMPL_ZEROCOPY) ==
					 !(c->flags & ZCSEND_COMPL_COPIED))
				st.weird++;
			unmap_if_done(m);
		}
	}
}

/* Waits up to @ms for completions; false if none came. */
static bool wait_reap(int ms)
{
	struct pollfd p = { .fd = efd, .events = POLLIN };

	if (poll(&p, 1, ms) <= 0)
		return false;
	reap();
	return true;
}

/* ---- responses ---- */

static const char *reason(int code)
{
	switch (code) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	default:  return "Internal Server Error";
	}
}

/* Status line and headers; @more when a body follows (MSG_MORE). */
static bool send_head(int c, int code, const char *type, uint64_t len,
		      bool keep, const char *extra, bool more)
{
	char h[512], date[64];
	time_t t = time(NULL);
	struct tm tm;
	int n;

	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	n = snprintf(h, sizeof(h),
		     "HTTP/1.1 %d %s\r\nServer: zcsend_httpd (mode=%s)\r\n"
		     "Date: %s\r\nContent-Type: %s\r\nContent-Length: %" PRIu64 "\r\n"
		     "Connection: %s\r\n%s\r\n",
		     code, reason(code), opt.zc ? "zcsend" : "sendfile", date,
		     type, len, keep ? "keep-alive" : "close", extra ? extra : "");
	return send_all(c, h, n, more ? MSG_MORE : 0);
}

/* A short text response; false if the connection is to be closed. */
static bool reply(int c, int code, bool head, bool keep, const char *text)
{
	char body[256];
	int n = snprintf(body, sizeof(body), "%d %s%s%s\n", code, reason(code),
			 text ? ": " : "", text ? text : "");

	if (code >= 400)
		st.errors++;
	if (!send_head(c, code, "text/plain", n, keep,
		       code == 405 ? "Allow: GET, HEAD\r\n" : NULL, !head))
		return false;
	return (head || send_all(c, body, n, 0)) && keep;
}

static bool send_body_zc(int c, int fd, size_t len)
{
	struct map *m = NULL;
	size_t off = 0;
	int i;

	while (!m) {
		for (i = 0; i < MAX_MAPS && !m; i++)
			if (!maps[i].used)
				m = &maps[i];
		if (!m && !wait_reap(DRAIN_MS)) {
			printf("%s: no mapping became free: completions missing\n", prog);
			return false;
		}
	}
	m->addr = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	if (m->addr == MAP_FAILED) {
		printf("%s: mmap: %s\n", prog, strerror(errno));
		return false;
	}
	*m = (struct map){ .addr = m->addr, .len = len, .used = true, .sending = true };
	while (off < len) {
		struct iovec iov = {
			.iov_base = (char *)m->addr + off,
			.iov_len = len - off < opt.chunk ? len - off : opt.chunk,
		};
		struct zcsend_send s = {
			.fd = c,
			.flags = MSG_NOSIGNAL,
			.iov = (uintptr_t)&iov,
			.iovcnt = 1,
			.user_data = m - maps,
		};
		long n;

		if (inflight >= MAX_INFLIGHT) {
			if (!wait_reap(DRAIN_MS))
				break;
			continue;
		}
		n = ioctl(zfd, ZCSEND_IOC_SEND, &s);
		if (n < 0 && errno == EINTR)
			continue;
		/* Too much queued or pinned: let some sends complete first. */
		if (n < 0 && (errno == EBUSY || errno == ENOBUFS) && inflight &&
		    wait_reap(DRAIN_MS))
			continue;
		if (n < 0) {
			printf("%s: ZCSEND_IOC_SEND: %s\n", prog, strerror(errno));
			break;
		}
		/* Accepted (maybe in part): one completion will follow. */
		m->pending++;
		m->accepted += n;
		inflight++;
		st.sends++;
		st.bytes += n;
		off += n;
		if (!n)
			break;
	}
	m->sending = false;
	unmap_if_done(m);
	return off == len;
}

static bool send_body_sendfile(int c, int fd, size_t len)
{
	off_t off = 0;

	while ((size_t)off < len) {
		ssize_t n = sendfile(c, fd, &off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		st.bytes += n;
	}
	return true;
}

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch |= 0x20;
	return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/*
 * Percent-decodes [@s, @end) into @out; '+' is a space if @plus. Returns
 * false for a bad escape, an encoded NUL or no room.
 */
static bool decode(const char *s, const char *end, char *out, size_t size, bool plus)
{
	size_t n = 0;

	for (; s < end; s++) {
		int ch = *s;

		if (ch == '%') {
			if (end - s < 3 || hexval(s[1]) < 0 || hexval(s[2]) < 0)
				return false;
			ch = hexval(s[1]) << 4 | hexval(s[2]);
			s += 2;
		} else if (ch == '+' && plus) {
			ch = ' ';
		}
		if (!ch || n + 1 >= size)
			return false;
		out[n++] = ch;
	}
	out[n] = 0;
	return true;
}

/*
 * The request target's path, decoded and relative to the directory, in
 * @rel. Returns 0, or the status to answer: 400 for a malformed target, an
 * absolute path after the leading '/' or a ".." segment; 404 for hidden
 * names and empty segments.
 */
static int target_path(const char *target, char *rel, size_t size)
{
	const char *end = target + strcspn(target, "?#");
	char *seg, *next;

	if (*target != '/' || !decode(target + 1, end, rel, size, false))
		return 400;
	if (!*rel)
		snprintf(rel, size, "index.html");
	if (*rel == '/')
		return 400;
	for (seg = rel; seg; seg = next ? next + 1 : NULL) {
		size_t len;

		next = strchr(seg, '/');
		len = next ? (size_t)(next - seg) : strlen(seg);
		if (len == 2 && !strncmp(seg, "..", 2))
			return 400;
		if (!len || *seg == '.')
			return 404;
	}
	return 0;
}

/* Opens @rel read-only without leaving the directory, symlinks included. */
static int open_beneath(const char *rel)
{
	static bool no_openat2;
	struct open_how how = {
		.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	int fd;

	if (!no_openat2) {
		fd = syscall(SYS_openat2, dirfd_, rel, &how, sizeof(how));
		if (fd >= 0 || errno != ENOSYS)
			return fd;
		no_openat2 = true;	/* before Linux 5.6: lexical checks only */
	}
	return openat(dirfd_, rel, how.flags);
}

static const char *content_type(const char *rel)
{
	const char *dot = strrchr(rel, '.');

	if (dot && !strcmp(dot, ".html"))
		return "text/html";
	if ((dot && !strcmp(dot, ".txt")) || !strcmp(rel, "manifest"))
		return "text/plain";
	return "application/octet-stream";
}

static bool serve_file(int c, const char *target, bool head, bool keep)
{
	char rel[PATH_MAX];
	struct stat sb;
	bool ok;
	int code = target_path(target, rel, sizeof(rel)), fd;

	if (code)
		return reply(c, code, head, keep && code != 400, NULL);
	fd = open_beneath(rel);
	if (fd < 0) {
		code = errno == EACCES || errno == EPERM ? 403 :
		       errno == EMFILE || errno == ENFILE || errno == ENOMEM ? 500 : 404;
		return reply(c, code, head, keep, NULL);
	}
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
		close(fd);
		return reply(c, 404, head, keep, NULL);
	}
	ok = send_head(c, 200, content_type(rel), sb.st_size, keep, NULL,
		       !head && sb.st_size);
	if (ok && !head && sb.st_size) {
		ok = opt.zc ? send_body_zc(c, fd, sb.st_size) :
			      send_body_sendfile(c, fd, sb.st_size);
		if (!ok) {
			printf("%s: %s: body not sent in full (%s): connection closed\n",
			       prog, rel, strerror(errno));
			st.aborted++;
		}
	}
	st.files += ok && !head;
	close(fd);
	return ok && keep;
}

/* Next line of the header block, CRLF (or LF) cut off; NULL at the end. */
static char *next_line(char **p)
{
	char *line = *p, *nl = strchr(line, '\n');

	if (!nl)
		return NULL;
	*nl = 0;
	if (nl > line && nl[-1] == '\r')
		nl[-1] = 0;
	*p = nl + 1;
	return line;
}

/* One request (NUL-terminated header block); false to close. */
static bool handle(int c, char *req)
{
	char *p = req, *line = next_line(&p), *method, *target, *version;
	bool keep, host = false, body = false, head;

	method = line;
	target = method ? strchr(method, ' ') : NULL;
	version = target ? strchr(target + 1, ' ') : NULL;
	if (!version)
		return reply(c, 400, false, false, "bad request line");
	*target++ = 0;
	*version++ = 0;
	if (strncmp(version, "HTTP/1.", 7) ||
	    (version[7] != '0' && version[7] != '1') || version[8])
		return reply(c, 400, false, false, "HTTP/1.0 or HTTP/1.1 only");
	keep = version[7] == '1';
	while ((line = next_line(&p)) && *line) {
		char *v = strchr(line, ':');

		if (!v || v == line || strchr(" \t", line[0]))
			return reply(c, 400, false, false, "bad header line");
		*v++ = 0;
		v += strspn(v, " \t");
		if (!strcasecmp(line, "Host"))
			host = true;
		else if (!strcasecmp(line, "Connection") && strcasestr(v, "close"))
			keep = false;
		else if (!strcasecmp(line, "Connection") && strcasestr(v, "keep-alive"))
			keep = true;
		else if (!strcasecmp(line, "Transfer-Encoding") ||
			 (!strcasecmp(line, "Content-Length") && strtoull(v, NULL, 10)))
			body = true;
	}
	head = !strcmp(method, "HEAD");
	if (!head && strcmp(method, "GET"))
		return reply(c, 405, false, false, NULL);
	/* This server reads no request bodies: the stream would be lost. */
	if (body || (!host && version[7] == '1'))
		return reply(c, 400, head, false, body ? "request body" : "no Host");
	if (opt.control && !strncmp(target, "/quit", 5) &&
	    (!target[5] || target[5] == '?')) {
		const char *v = strstr(target, "verdict=");

		have_verdict = v && decode(v + 8, v + strlen(v), verdict,
					   sizeof(verdict), true);
		quit = true;
		close(lfd);	/* the next server may bind once this one answered */
		lfd = -1;
		return reply(c, 200, head, false, "bye");
	}
	return serve_file(c, target, head, keep);
}

/* Waits until @c has bytes; reaps completions meanwhile. */
static bool wait_readable(int c)
{
	double end = now() + KEEPALIVE_MS / 1e3;

	while (!stop) {
		struct pollfd p[2] = { { .fd = c, .events = POLLIN },
				       { .fd = efd, .events = POLLIN } };
		int left = (end - now()) * 1e3, r;

		if (left <= 0)
			return false;
		r = poll(p, 2, left);
		if (r < 0 && errno != EINTR)
			return false;
		if (r > 0 && p[1].revents)
			reap();
		if (r > 0 && p[0].revents)
			return true;
	}
	return false;
}

static void serve_conn(int c)
{
	static char buf[REQ_MAX], req[REQ_MAX + 1];
	size_t have = 0, hlen;
	char *end;

	for (;;) {
		while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
			ssize_t r;

			if (have == sizeof(buf)) {
				st.reqs++;
				reply(c, 400, false, false, "headers too long");
				return;
			}
			if (!wait_readable(c))
				return;
			r = recv(c, buf + have, sizeof(buf) - have, 0);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return;
			have += r;
		}
		hlen = end + 4 - buf;
		memcpy(req, buf, hlen);
		req[hlen] = 0;
		memmove(buf, buf + hlen, have - hlen);	/* pipelined requests */
		have -= hlen;
		st.reqs++;
		if (strlen(req) != hlen) {
			reply(c, 400, false, false, "NUL in request");
			return;
		}
		if (!handle(c, req) || stop || quit ||
		    (opt.max_reqs && st.reqs >= opt.max_reqs))
			return;
	}
}

/* Lingering close: a client's unread bytes must not reset our answer. */
static void close_conn(int c)
{
	double end = now() + 1;
	char junk[4096];

	shutdown(c, SHUT_WR);
	for (;;) {
		struct pollfd p = { .fd = c, .events = POLLIN };
		int left = (end - now()) * 1e3;

		if (left <= 0 || poll(&p, 1, left) <= 0 ||
		    recv(c, junk, sizeof(junk), 0) <= 0)
			break;
	}
	close(c);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: %s [-m zcsend|sendfile] [-d DIR] [-p PORT] [-n REQUESTS]\n"
		"          [-t IDLE_SECONDS] [-c CHUNK] [-q]\n"
		"       %s --mkfile PATH SIZE\n", prog, prog);
	exit(2);
}

static void parse_opts(int argc, char **argv)
{
	int ch;

	while ((ch = getopt(argc, argv, "m:d:p:n:t:c:qh")) != -1) {
		switch (ch) {
		case 'm':
			if (strcmp(optarg, "zcsend") && strcmp(optarg, "sendfile"))
				usage();
			opt.zc = !strcmp(optarg, "zcsend");
			break;
		case 'd':
			opt.dir = optarg;
			break;
		case 'p':
			opt.port = atoi(optarg);
			break;
		case 'n':
			opt.max_reqs = strtoul(optarg, NULL, 0);
			break;
		case 't':
			opt.idle_s = atoi(optarg);
			break;
		case 'c':
			opt.chunk = size_option(optarg);
			break;
		case 'q':
			opt.control = true;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || opt.port <= 0 || opt.port > 65535 ||
	    !opt.chunk || opt.chunk > (1U << 30))
		usage();
}

static void setup(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(opt.port) };
	struct sigaction sa = { .sa_handler = on_signal };	/* no SA_RESTART */
	int one = 1;
	__u32 abi;

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	dirfd_ = open(opt.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd_ < 0) {
		printf("%s: %s: %s\n", prog, opt.dir, strerror(errno));
		exit(1);
	}
	if (opt.zc) {
		zfd = open(ZCSEND_DEVICE, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		if (zfd < 0) {
			printf("%s: cannot open %s: %s (is zcsend.ko loaded?)\n",
			       prog, ZCSEND_DEVICE, strerror(errno));
			printf("RESULT http zcsend        SKIP %s missing\n", ZCSEND_DEVICE);
			exit(EXIT_SKIP);
		}
		efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (ioctl(zfd, ZCSEND_IOC_VERSION, &abi) || abi != ZCSEND_ABI_VERSION ||
		    efd < 0 || ioctl(zfd, ZCSEND_IOC_SET_EVENTFD, &efd)) {
			printf("%s: %s: ABI version or eventfd: %s\n", prog,
			       ZCSEND_DEVICE, strerror(errno));
			exit(1);
		}
	}
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) || listen(lfd, 16)) {
		printf("%s: listen on port %d: %s\n", prog, opt.port, strerror(errno));
		exit(1);
	}
}

static void report(double cpu)
{
	const char *mode = opt.zc ? "zcsend" : "sendfile";
	double mib = st.bytes / 1048576.0, gb = st.bytes / 1e9;
	bool ok = !st.weird && st.recs == st.sends;
	char zc[32] = "n/a", host[sizeof(verdict) + 8] = "-";
	struct zcsend_stats ks;

	printf("%s: mode %s: %lu requests (%lu files sent, %lu errors answered, %lu aborted), %" PRIu64 " body bytes\n",
	       prog, mode, st.reqs, st.files, st.errors, st.aborted, st.bytes);
	printf("%s:   cpu %.3f s (user + sys, getrusage), %.2f s/GB\n",
	       prog, cpu, gb > 0 ? cpu / gb : 0);
	if (opt.zc) {
		printf("%s:   ZCSEND_IOC_SEND calls %lu (chunks of %zu), completions %lu: ZEROCOPY %lu, COPIED %lu (copy path %lu)%s\n",
		       prog, st.sends, opt.chunk, st.recs, st.zc, st.copied,
		       st.copypath, st.recs < st.sends ? "  <-- MISSING" : "");
		if (!ioctl(zfd, ZCSEND_IOC_STATS, &ks))
			printf("%s:   module stats: sends %llu, zerocopy %llu, copied %llu, inflight %llu, pinned pages %llu, copy_threshold %llu\n",
			       prog, (unsigned long long)ks.sends,
			       (unsigned long long)ks.zerocopy,
			       (unsigned long long)ks.copied,
			       (unsigned long long)ks.inflight,
			       (unsigned long long)ks.pinned_pages,
			       (unsigned long long)ks.copy_threshold);
		snprintf(zc, sizeof(zc), "%lu/%lu", st.zc, st.recs);
	}
	if (opt.control) {
		printf("%s:   client verdict: %s\n", prog,
		       have_verdict ? verdict : "none (no GET /quit?verdict=...)");
		ok = ok && have_verdict && !strncmp(verdict, "PASS", 4);
		snprintf(host, sizeof(host), "%s", have_verdict ? verdict : "none");
	}
	printf("RESULT http %-13s %s %5.2f MiB %4lu reqs   zero-copy %-9s cpu %6.1f s/GB  client %s\n",
	       mode, ok ? "PASS" : "FAIL", mib, st.reqs, zc,
	       gb > 0 ? cpu / gb : 0, host);
	exit(ok ? 0 : 1);
}

int main(int argc, char **argv)
{
	double cpu0, last;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && !strcmp(argv[1], "--mkfile"))
		return mkfile(argv[2], argv[3]);
	parse_opts(argc, argv);
	setup();
	printf("%s: serving %s on 0.0.0.0:%d, bodies by %s%s\n", prog, opt.dir,
	       opt.port, opt.zc ? "ZCSEND_IOC_SEND from a read-only mapping" :
	       "sendfile(2)", opt.control ? ", GET /quit ends" : "");
	cpu0 = cpu_seconds();
	last = now();
	while (!stop && !quit && !(opt.max_reqs && st.reqs >= opt.max_reqs)) {
		struct pollfd p[2] = { { .fd = lfd, .events = POLLIN },
				       { .fd = efd, .events = POLLIN } };
		int tmo = opt.idle_s ? (last + opt.idle_s - now()) * 1e3 : -1;
		struct timeval tv = { .tv_sec = SNDTIMEO_S };
		int r, c, one = 1;

		if (opt.idle_s && tmo <= 0) {
			printf("%s: no request for %d s: stopping\n", prog, opt.idle_s);
			break;
		}
		r = poll(p, 2, tmo);
		if (r > 0 && p[1].revents)
			reap();
		if (r <= 0 || !(p[0].revents & POLLIN))
			continue;
		c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		/* A client that stops reading fails the send after SNDTIMEO_S. */
		setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		serve_conn(c);
		close_conn(c);
		last = now();
	}
	/* Every accepted send owes one completion; mappings go with them. */
	while (inflight && wait_reap(DRAIN_MS))
		;
	report(cpu_seconds() - cpu0);
	return 0;
}
