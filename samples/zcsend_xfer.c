// SPDX-License-Identifier: GPL-2.0
/*
 * zcsend_xfer: send a file's bytes over TCP or UDP straight from its page
 * cache pages with /dev/zcsend, and show what happened to every send.
 *
 * The payload is a file of deterministic pseudo-random bytes (the pattern of
 * tools/include/zcsend_pattern.h), written to a tmpfs and mapped read-only.
 * Each ZCSEND_IOC_SEND hands the module a slice of that mapping; the module
 * pins the pages and sends them as skb frags, and once the stack has let go
 * of them it posts a completion record. This program registers an eventfd,
 * poll()s it and read()s the records from /dev/zcsend, timing each send from
 * the call to its completion. zcsend_rx --mode xfer on the other end checks
 * every byte and answers with a verdict (protocol in zcsend_pattern.h).
 *
 *   zcsend_xfer --tcp [--dest 10.77.0.1]        256 KiB sends over TCP
 *   zcsend_xfer --udp [--dest 10.77.0.1]        60000-byte datagrams
 *   zcsend_xfer --udp --no-receiver --dest IP   no peer: completion flags only
 *   zcsend_xfer --plain ...                     send()/sendmsg() baseline
 *
 * Exit status: 0 verified (and, with zcsend, every completion seen), 1 on a
 * mismatch, missing completions or an error, 2 on usage errors, 77 when
 * /dev/zcsend is missing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <linux/zcsend.h>

#include "zcsend_pattern.h"
#include "sample_util.h"

#define COMPLETION_WAIT_MS	10000
#define VERDICT_WAIT_MS		30000
#define RETRY_LIMIT		1000

struct opts {
	bool udp;
	bool plain;
	bool no_receiver;
	const char *dest;
	int port;		/* TCP data / control port */
	int udp_port;
	size_t size;
	size_t chunk;		/* TCP bytes per send */
	size_t dgram;		/* UDP datagram bytes, header included */
	const char *file;
	uint64_t seed;
	const char *label;
};

/* One send and what became of it. */
struct send_rec {
	double t_call;		/* before the ioctl / send */
	double t_ret;		/* after it returned */
	double t_done;		/* completion read */
	uint64_t bytes;
	uint32_t flags;
	bool done;
};

struct xfer {
	struct opts *o;
	int zfd, efd, sfd, cfd;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	const uint8_t *map;
	uint8_t *hdrs;		/* UDP headers, one per datagram, never reused */
	struct send_rec *recs;
	size_t nrecs, cap;
	size_t ncompl, nzc, ncopied, ncopypath, nweird;
	uint64_t sent_bytes;
	uint32_t dgrams, run;
	char verdict[ZCX_LINE_MAX];
};

static const char *prog = "zcsend_xfer";

static void usage(void)
{
	fprintf(stderr,
		"usage: %s --tcp|--udp [options]\n"
		"  --plain            send()/sendmsg() instead of /dev/zcsend (baseline)\n"
		"  --dest ADDR        receiver, IPv4 or IPv6 (default 10.77.0.1)\n"
		"  --port N           TCP data/control port (default %d)\n"
		"  --udp-port N       UDP port (default %d)\n"
		"  --size BYTES       payload size (default 8M; K and M suffixes)\n"
		"  --chunk BYTES      TCP bytes per send (default 256K)\n"
		"  --dgram BYTES      UDP datagram size with its %d-byte header (default 60000)\n"
		"  --no-receiver      UDP only: nobody listens, report completions only\n"
		"  --label TEXT       name of this run in the RESULT line\n"
		"  --file PATH        payload file (default /tmp/zcsend_xfer.payload)\n",
		prog, ZCX_TCP_PORT, ZCX_UDP_PORT, ZCX_DGRAM_HDR);
	exit(2);
}

static void parse_opts(struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "tcp", no_argument, NULL, 't' },
		{ "udp", no_argument, NULL, 'u' },
		{ "plain", no_argument, NULL, 'P' },
		{ "dest", required_argument, NULL, 'd' },
		{ "port", required_argument, NULL, 'p' },
		{ "udp-port", required_argument, NULL, 'U' },
		{ "size", required_argument, NULL, 's' },
		{ "chunk", required_argument, NULL, 'c' },
		{ "dgram", required_argument, NULL, 'g' },
		{ "no-receiver", no_argument, NULL, 'n' },
		{ "label", required_argument, NULL, 'l' },
		{ "file", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	bool proto = false;
	int c;

	*o = (struct opts) {
		.dest = "10.77.0.1",
		.port = ZCX_TCP_PORT,
		.udp_port = ZCX_UDP_PORT,
		.size = 8 << 20,
		.chunk = 256 << 10,
		.dgram = 60000,
		.file = "/tmp/zcsend_xfer.payload",
		.seed = ZC_PATTERN_SEED,
	};
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 't':
			o->udp = false;
			proto = true;
			break;
		case 'u':
			o->udp = true;
			proto = true;
			break;
		case 'P':
			o->plain = true;
			break;
		case 'd':
			o->dest = optarg;
			break;
		case 'p':
			o->port = atoi(optarg);
			break;
		case 'U':
			o->udp_port = atoi(optarg);
			break;
		case 's':
			o->size = size_option(optarg);
			break;
		case 'c':
			o->chunk = size_option(optarg);
			break;
		case 'g':
			o->dgram = size_option(optarg);
			break;
		case 'n':
			o->no_receiver = true;
			break;
		case 'l':
			o->label = optarg;
			break;
		case 'f':
			o->file = optarg;
			break;
		default:
			usage();
		}
	}
	if (!proto || optind != argc)
		usage();
	if (o->no_receiver && !o->udp) {
		fprintf(stderr, "%s: --no-receiver is for --udp only\n", prog);
		exit(2);
	}
	if (o->dgram <= ZCX_DGRAM_HDR || o->dgram > 65507) {
		fprintf(stderr, "%s: --dgram must be %d..65507\n", prog, ZCX_DGRAM_HDR + 1);
		exit(2);
	}
	if (!o->label)
		o->label = o->plain ? "plain" : o->no_receiver ? "zcsend-norx" : "zcsend";
}

/* Writes the payload file and maps it read-only; the file is unlinked. */
static const uint8_t *make_payload(const struct opts *o)
{
	size_t blk = 1 << 20, off;
	uint8_t *buf = malloc(blk);
	void *map;
	int fd;

	fd = open(o->file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || !buf)
		die("cannot create %s: %s", o->file, strerror(errno));
	for (off = 0; off < o->size; off += blk) {
		size_t n = o->size - off < blk ? o->size - off : blk;

		zc_pattern_fill(buf, n, o->seed, off);
		if (write(fd, buf, n) != (ssize_t)n)
			die("write %s: %s", o->file, strerror(errno));
	}
	free(buf);
	map = mmap(NULL, o->size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (map == MAP_FAILED)
		die("mmap %s: %s", o->file, strerror(errno));
	close(fd);
	unlink(o->file);
	return map;
}

static int connect_to(struct xfer *x, int port)
{
	int fd;

	resolve(x->o->dest, port, &x->addr, &x->addrlen);
	fd = socket(x->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&x->addr, x->addrlen))
		die("cannot connect to %s port %d: %s (is zcsend_rx --mode xfer running?)",
		    x->o->dest, port, strerror(errno));
	return fd;
}

static struct send_rec *new_rec(struct xfer *x)
{
	if (x->nrecs == x->cap) {
		x->cap = x->cap ? 2 * x->cap : 64;
		x->recs = realloc(x->recs, x->cap * sizeof(*x->recs));
		if (!x->recs)
			die("out of memory");
	}
	memset(&x->recs[x->nrecs], 0, sizeof(*x->recs));
	return &x->recs[x->nrecs++];
}

/*
 * Waits up to @ms for the eventfd, then reads every completion record that
 * is queued. Returns the number of records read.
 */
static size_t drain(struct xfer *x, int ms)
{
	struct zcsend_completion cq[64];
	size_t got = 0;
	ssize_t n, i;

	if (!wait_completions(x->efd, ms))
		return 0;
	while ((n = read_completions(x->zfd, cq, ARRAY_SIZE(cq))) > 0) {
		for (i = 0; i < n; i++) {
			struct zcsend_completion *c = &cq[i];
			struct send_rec *r;
			uint32_t kind = c->flags & (ZCSEND_COMPL_ZEROCOPY | ZCSEND_COMPL_COPIED);

			if (c->user_data >= x->nrecs || x->recs[c->user_data].done) {
				printf("%s: unexpected completion user_data=%llu\n", prog,
				       (unsigned long long)c->user_data);
				x->nweird++;
				continue;
			}
			r = &x->recs[c->user_data];
			r->done = true;
			r->t_done = now();
			r->flags = c->flags;
			x->ncompl++;
			got++;
			if (c->bytes != r->bytes || c->result ||
			    (kind != ZCSEND_COMPL_ZEROCOPY && kind != ZCSEND_COMPL_COPIED)) {
				printf("%s: odd completion for send %llu: bytes %llu (sent %llu) flags %#x result %d\n",
				       prog, (unsigned long long)c->user_data,
				       (unsigned long long)c->bytes,
				       (unsigned long long)r->bytes, c->flags, c->result);
				x->nweird++;
			}
			if (kind == ZCSEND_COMPL_ZEROCOPY)
				x->nzc++;
			else
				x->ncopied++;
			if (c->flags & ZCSEND_COMPL_COPY_PATH)
				x->ncopypath++;
		}
	}
	return got;
}

/* One send through /dev/zcsend; returns the bytes accepted. */
static size_t zc_send(struct xfer *x, struct iovec *iov, int iovcnt, bool with_addr)
{
	struct zcsend_send req = {
		.fd = x->sfd,
		.flags = MSG_NOSIGNAL,
		.iov = (uintptr_t)iov,
		.iovcnt = iovcnt,
		.addrlen = with_addr ? x->addrlen : 0,
		.addr = with_addr ? (uintptr_t)&x->addr : 0,
	};
	int tries = 0;
	size_t len = 0;
	long n;
	int i;

	for (i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	for (;;) {
		struct send_rec *r = new_rec(x);

		req.user_data = x->nrecs - 1;
		r->bytes = len;
		r->t_call = now();
		n = ioctl(x->zfd, ZCSEND_IOC_SEND, &req);
		r->t_ret = now();
		if (n >= 0) {
			r->bytes = n;
			drain(x, 0);
			return n;
		}
		/* Failed sends post no completion: forget the record. */
		x->nrecs--;
		if (errno == EINTR)
			continue;
		if ((errno == ENOBUFS || errno == ENOMEM || errno == EAGAIN) &&
		    ++tries < RETRY_LIMIT) {
			/* Too much pinned (memlock) or queued: let some complete. */
			drain(x, 100);
			continue;
		}
		die("ZCSEND_IOC_SEND of %zu bytes: %s", len, strerror(errno));
	}
}

static size_t plain_send(struct xfer *x, struct iovec *iov, int iovcnt, bool with_addr)
{
	struct msghdr msg = {
		.msg_name = with_addr ? &x->addr : NULL,
		.msg_namelen = with_addr ? x->addrlen : 0,
		.msg_iov = iov,
		.msg_iovlen = iovcnt,
	};
	struct send_rec *r = new_rec(x);
	ssize_t n;

	r->t_call = now();
	do
		n = sendmsg(x->sfd, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	r->t_ret = now();
	if (n < 0)
		die("sendmsg: %s", strerror(errno));
	r->bytes = n;
	return n;
}

static size_t do_send(struct xfer *x, struct iovec *iov, int iovcnt, bool with_addr)
{
	size_t n = x->o->plain ? plain_send(x, iov, iovcnt, with_addr) :
				 zc_send(x, iov, iovcnt, with_addr);

	x->sent_bytes += n;
	return n;
}

static void send_tcp(struct xfer *x)
{
	const struct opts *o = x->o;
	size_t off = 0;

	while (off < o->size) {
		struct iovec iov = {
			.iov_base = (void *)(x->map + off),
			.iov_len = o->size - off < o->chunk ? o->size - off : o->chunk,
		};

		off += do_send(x, &iov, 1, false);
	}
}

static void send_udp(struct xfer *x)
{
	const struct opts *o = x->o;
	size_t payload = o->dgram - ZCX_DGRAM_HDR;
	uint32_t k;

	for (k = 0; k < x->dgrams; k++) {
		uint64_t off = (uint64_t)k * payload;
		struct iovec iov[2] = {
			{ x->hdrs + (size_t)k * ZCX_DGRAM_HDR, ZCX_DGRAM_HDR },
			{ (void *)(x->map + off),
			  o->size - off < payload ? o->size - off : payload },
		};

		/* The header is ours until its completion: one per datagram. */
		do_send(x, iov, 2, true);
	}
}

/* Median cost of a null ioctl (VERSION): the per-call overhead here. */
static double null_ioctl_cost(int zfd)
{
	double t[101];
	__u32 v;
	int i;

	for (i = 0; i < 101; i++) {
		double t0 = now();

		ioctl(zfd, ZCSEND_IOC_VERSION, &v);
		t[i] = now() - t0;
	}
	qsort(t, 101, sizeof(t[0]), cmp_double);
	return t[50];
}

int main(int argc, char **argv)
{
	struct opts o;
	struct xfer x = { .o = &o, .zfd = -1, .efd = -1, .sfd = -1, .cfd = -1 };
	const char *proto, *result;
	double t0, t_sent, t_end, t_verdict = 0, cpu0, cpu, span, ioctl_cost = 0;
	double mbs, e2e, gbcpu, call_med = 0;
	double *lat = NULL;
	char line[ZCX_LINE_MAX], a[32], b[32], c[32];
	bool recv_ok = true, compl_ok = true;
	struct zcsend_stats st;
	size_t i, nlat = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_opts(&o, argc, argv);
	proto = o.udp ? "udp" : "tcp";

	if (!o.plain) {
		x.zfd = open(ZCSEND_DEVICE, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		if (x.zfd < 0) {
			printf("%s: cannot open %s: %s\n", prog, ZCSEND_DEVICE, strerror(errno));
			printf("%s: is zcsend.ko loaded? Without it only the copy baseline runs (--plain).\n",
			       prog);
			printf("RESULT %-4s %-14s SKIP %s missing\n", proto, o.label,
			       ZCSEND_DEVICE);
			return EXIT_SKIP;
		}
		x.efd = zcsend_eventfd(x.zfd);
		ioctl_cost = null_ioctl_cost(x.zfd);
	}

	x.map = make_payload(&o);

	if (!o.udp) {
		x.sfd = connect_to(&x, o.port);
		snprintf(line, sizeof(line), "ZCX1 tcp seed=%llx bytes=%zu\n",
			 (unsigned long long)o.seed, o.size);
		write_all(x.sfd, line, strlen(line));
	} else {
		size_t payload = o.dgram - ZCX_DGRAM_HDR;

		x.dgrams = (o.size + payload - 1) / payload;
		x.run = (uint32_t)(getpid() ^ (uint32_t)(now() * 1e6));
		x.hdrs = malloc((size_t)x.dgrams * ZCX_DGRAM_HDR);
		if (!x.hdrs)
			die("out of memory");
		for (i = 0; i < x.dgrams; i++) {
			struct zcx_dgram h = {
				.magic = ZCX_DGRAM_MAGIC,
				.seq = i,
				.offset = (uint64_t)i * payload,
				.len = o.size - i * payload < payload ?
				       o.size - i * payload : payload,
				.run = x.run,
			};

			zcx_dgram_store(x.hdrs + i * ZCX_DGRAM_HDR, &h);
		}
		if (!o.no_receiver) {
			x.cfd = connect_to(&x, o.port);
			snprintf(line, sizeof(line),
				 "ZCX1 udp seed=%llx bytes=%zu dgrams=%u dgram=%zu run=%u\n",
				 (unsigned long long)o.seed, o.size, x.dgrams,
				 o.dgram, x.run);
			write_all(x.cfd, line, strlen(line));
			if (!read_line(x.cfd, line, sizeof(line), VERDICT_WAIT_MS) ||
			    strncmp(line, "READY", 5))
				die("receiver did not get ready: \"%s\"", line);
		}
		resolve(o.dest, o.udp_port, &x.addr, &x.addrlen);
		x.sfd = socket(x.addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (x.sfd < 0)
			die("socket: %s", strerror(errno));
	}

	printf("%s: %s %s to %s port %d: %zu bytes from a read-only mapping of a tmpfs file\n",
	       prog, proto, o.plain ? "send()/sendmsg() (copy baseline)" : "through /dev/zcsend",
	       o.dest, o.udp ? o.udp_port : o.port, o.size);
	if (o.udp)
		printf("%s:   %u datagrams of up to %zu bytes (%d-byte header + payload slice)%s\n",
		       prog, x.dgrams, o.dgram, ZCX_DGRAM_HDR,
		       o.no_receiver ? "; no receiver: completion flags only" : "");
	else
		printf("%s:   sends of %zu bytes\n", prog, o.chunk);

	cpu0 = cpu_seconds();
	t0 = now();
	if (o.udp)
		send_udp(&x);
	else
		send_tcp(&x);
	t_sent = now();

	/* Every accepted send owes exactly one completion. */
	if (!o.plain) {
		double end = now() + COMPLETION_WAIT_MS / 1e3;

		while (x.ncompl < x.nrecs && now() < end)
			drain(&x, (end - now()) * 1e3 + 1);
	}
	t_end = now();
	cpu = cpu_seconds() - cpu0;

	if (!o.udp) {
		shutdown(x.sfd, SHUT_WR);
		if (!read_line(x.sfd, x.verdict, sizeof(x.verdict), VERDICT_WAIT_MS) &&
		    !x.verdict[0])
			snprintf(x.verdict, sizeof(x.verdict), "(no verdict: receiver silent)");
		t_verdict = now();
		recv_ok = !strncmp(x.verdict, "OK ", 3);
	} else if (!o.no_receiver) {
		snprintf(line, sizeof(line), "END sent=%zu\n", x.nrecs);
		write_all(x.cfd, line, strlen(line));
		shutdown(x.cfd, SHUT_WR);
		if (!read_line(x.cfd, x.verdict, sizeof(x.verdict), VERDICT_WAIT_MS) &&
		    !x.verdict[0])
			snprintf(x.verdict, sizeof(x.verdict), "(no verdict: receiver silent)");
		t_verdict = now();
		/* Lost datagrams are not wrong data: LOSS is reported, not failed. */
		recv_ok = !strncmp(x.verdict, "OK ", 3) || !strncmp(x.verdict, "LOSS ", 5);
		if (strstr(x.verdict, " dgrams=0/"))
			recv_ok = false;	/* nothing arrived at all */
	}

	/* Report. */
	printf("%s:   sends %zu, bytes %" PRIu64 "%s, %.3f s until the last send returned\n",
	       prog, x.nrecs, x.sent_bytes, o.udp ? " (headers included)" : "",
	       t_sent - t0);
	lat = calloc(x.nrecs + 1, sizeof(*lat));
	if (!lat)
		die("out of memory");
	for (i = 0; i < x.nrecs; i++)
		lat[i] = x.recs[i].t_ret - x.recs[i].t_call;
	qsort(lat, x.nrecs, sizeof(*lat), cmp_double);
	if (x.nrecs) {
		call_med = lat[x.nrecs / 2];
		printf("%s:   time in the %s call: min %s, median %s, max %s\n",
		       prog, o.plain ? "sendmsg()" : "ZCSEND_IOC_SEND",
		       fmt_time(a, lat[0]), fmt_time(b, call_med),
		       fmt_time(c, lat[x.nrecs - 1]));
	}
	if (!o.plain) {
		for (i = 0; i < x.nrecs; i++)
			if (x.recs[i].done)
				lat[nlat++] = x.recs[i].t_done - x.recs[i].t_call;
		qsort(lat, nlat, sizeof(*lat), cmp_double);
		printf("%s:   completions %zu/%zu: zero-copy %zu, copied %zu (copy path %zu)%s\n",
		       prog, x.ncompl, x.nrecs, x.nzc, x.ncopied, x.ncopypath,
		       x.ncompl < x.nrecs ? "  <-- MISSING" : "");
		if (nlat)
			printf("%s:   send->completion: min %s, median %s, max %s (a null ioctl costs %s)\n",
			       prog, fmt_time(a, lat[0]), fmt_time(b, lat[nlat / 2]),
			       fmt_time(c, lat[nlat - 1]), fmt_time(line, ioctl_cost));
		if (!ioctl(x.zfd, ZCSEND_IOC_STATS, &st))
			printf("%s:   module stats: sends %llu, zerocopy %llu, copied %llu, inflight %llu, pinned pages %llu\n",
			       prog, (unsigned long long)st.sends,
			       (unsigned long long)st.zerocopy,
			       (unsigned long long)st.copied,
			       (unsigned long long)st.inflight,
			       (unsigned long long)st.pinned_pages);
		compl_ok = x.ncompl == x.nrecs && !x.nweird;
	}
	free(lat);
	/*
	 * The buffers may be reused once send() returns (copy) or once the
	 * completion is read (zcsend): that is the sender's throughput.
	 */
	span = (o.plain ? t_sent : t_end) - t0;
	mbs = x.sent_bytes / span / 1e6;
	e2e = t_verdict ? x.sent_bytes / (t_verdict - t0) / 1e6 : 0;
	gbcpu = x.sent_bytes ? cpu / (x.sent_bytes / 1e9) : 0;
	printf("%s:   throughput %.1f MB/s (first send until the buffers are free: %s), sender cpu %.2f s/GB\n",
	       prog, mbs, o.plain ? "last send returned" : "last completion", gbcpu);
	if (t_verdict)
		printf("%s:   receiver: %s (%.1f MB/s end to end, until the verdict)\n",
		       prog, x.verdict, e2e);
	else
		printf("%s:   receiver: none (no receiver: completion flags only)\n", prog);

	result = recv_ok && compl_ok ? "PASS" : "FAIL";
	if (!o.plain)
		printf("%s:   zero-copy: %s\n", prog,
		       x.nrecs && x.nzc == x.nrecs ?
		       "yes, every send left from the file's own pages" :
		       x.nzc ? "partly, the stack copied some sends on this path" :
		       "no, the stack copied the data on this path");
	if (o.plain)
		snprintf(a, sizeof(a), "n/a");
	else
		snprintf(a, sizeof(a), "%zu/%zu", x.nzc, x.nrecs);
	if (t_verdict)
		snprintf(b, sizeof(b), "%.1f", e2e);
	else
		snprintf(b, sizeof(b), "-");
	/* The verdict's first word: OK, BAD or LOSS. */
	snprintf(c, sizeof(c), "%.*s", (int)strcspn(x.verdict, " "), x.verdict);
	printf("RESULT %-4s %-13s %s %5.2f MiB %4zu sends  zero-copy %-7s  %6.1f MB/s  e2e %5s MB/s  cpu %6.1f s/GB  call %8s  %s%s\n",
	       proto, o.label, result, x.sent_bytes / 1048576.0, x.nrecs, a,
	       mbs, b, gbcpu, fmt_time(line, call_med),
	       o.no_receiver ? "no receiver: completion flags only" : "receiver ",
	       o.no_receiver ? "" : c);

	return recv_ok && compl_ok ? 0 : 1;
}
