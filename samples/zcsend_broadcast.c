// SPDX-License-Identifier: GPL-2.0
/*
 * zcsend_broadcast: one stream to N TCP subscribers with ZCSEND_IOC_FANOUT.
 *
 * A broadcaster (market data, video, replication) sends the same bytes to
 * many sockets. With ZCSEND_IOC_FANOUT each chunk is handed to the module
 * once for all N subscribers: pinned once, attached to the skbs of every
 * socket, and reported by one completion record once the last skb of the
 * last socket has let go of it. The chunk content is the pattern stream of
 * zcsend_pattern.h at the chunk's stream offset, so zcsend_rx --mode bcast on
 * the host checks every subscriber's stream on its own.
 *
 * Two modes, one after the other, each on N fresh connections:
 *
 *   normal  the chunk buffer belongs to the kernel until its completion:
 *           chunks rotate over --bufs buffers, and a buffer is refilled only
 *           after the completions of every call that sent from it arrived.
 *   stable  ZCSEND_FANOUT_STABLE: the module sends a copy of its own, so
 *           the one chunk buffer is overwritten with the next chunk right
 *           after each call returns (and poisoned after the last): if the
 *           module sent from it instead, the receiver would see it.
 *
 * A TCP socket may accept only part of a chunk (MSG_DONTWAIT with --nowait,
 * or a signal): that subscriber alone then gets the rest, by fan-outs of one
 * destination from the same buffer, before the next chunk goes out, so every
 * subscriber receives the same full stream. A destination that fails (a
 * negative result other than EAGAIN/EINTR) is dropped and fails the run.
 *
 *   zcsend_broadcast [-n SUBS] [-c CHUNKS] [-s CHUNK_BYTES] [-b BUFS]
 *                    [--dest 10.77.0.1] [--port 7880] [--nowait]
 *                    [--mode normal|stable|both]
 *
 * Exit status: 0 if every mode passed (every subscriber verified by the
 * receiver, one completion per call), 1 otherwise, 2 on usage errors, 77
 * when /dev/zcsend is missing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <linux/zcsend.h>

#include "zcsend_pattern.h"
#include "sample_util.h"

#define COMPLETION_WAIT_MS	20000
#define WRITABLE_WAIT_MS	20000
#define VERDICT_WAIT_MS		30000
#define RETRY_LIMIT		1000
#define MAX_BUFS		16

struct opts {
	const char *dest;
	int port;
	unsigned int subs;
	unsigned int chunks;
	size_t chunk;
	unsigned int bufs;
	bool nowait;
	bool run_normal, run_stable;
	uint64_t seed;
};

struct sub {
	int fd;
	bool dead;		/* a send failed: dropped from the fan-outs */
	int err;		/* its errno */
	uint64_t sent;		/* stream bytes its socket accepted */
	char verdict[ZCX_LINE_MAX];
};

/* One ZCSEND_IOC_FANOUT call that the module accepted. */
struct call {
	double t_call, t_ret, t_done;
	uint64_t bytes;		/* sum of the positive results */
	unsigned int slot;	/* chunk buffer it sent from */
	uint32_t flags;		/* of its completion */
	bool done;
};

struct run {
	const struct opts *o;
	bool stable;
	const char *label;
	uint32_t id;		/* run id for the receiver */
	uint32_t tag;		/* high half of user_data: this run's records */
	struct sub *subs;
	struct zcsend_dest *dests;
	unsigned int *dest_sub;	/* dests[i] is subs[dest_sub[i]] */
	uint8_t *buf[MAX_BUFS];
	unsigned int pending[MAX_BUFS];	/* calls in flight per buffer */
	struct call *calls;
	size_t ncalls, cap;
	size_t ncompl, nzc, ncopied, ncopypath, nfanout_flag, nstable_flag, nweird;
	size_t remainder_calls, partial, eagain;
	uint64_t delivered;	/* sum over subscribers of the bytes accepted */
	double fill_cpu;	/* CPU spent generating the pattern */
};

static const char *prog = "zcsend_broadcast";
static int zfd = -1, efd = -1;
static struct sockaddr_storage peer;
static socklen_t peerlen;

static double thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: %s [options]\n"
		"  -n, --subs N        subscribers (TCP connections), default 8, at most %d\n"
		"  -c, --chunks N      chunks per mode, default 64\n"
		"  -s, --size BYTES    bytes per chunk, default 256K (K and M suffixes)\n"
		"  -b, --bufs N        rotating chunk buffers in normal mode, 1..%d, default 4\n"
		"  --dest ADDR         receiver, IPv4 or IPv6 (default 10.77.0.1)\n"
		"  --port N            receiver port (default %d, zcsend_rx --mode bcast)\n"
		"  --nowait            MSG_DONTWAIT: sockets take what fits, the rest is\n"
		"                      resent to each short subscriber alone\n"
		"  --mode M            normal, stable or both (default both)\n",
		prog, ZCSEND_MAX_FANOUT, MAX_BUFS, ZCX_BCAST_PORT);
	exit(2);
}

static unsigned int parse_uint(const char *s, unsigned int min, unsigned int max)
{
	char *end;
	unsigned long v = strtoul(s, &end, 0);

	if (*end || v < min || v > max)
		usage();
	return v;
}

static void parse_opts(struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "subs", required_argument, NULL, 'n' },
		{ "chunks", required_argument, NULL, 'c' },
		{ "size", required_argument, NULL, 's' },
		{ "bufs", required_argument, NULL, 'b' },
		{ "dest", required_argument, NULL, 'd' },
		{ "port", required_argument, NULL, 'p' },
		{ "nowait", no_argument, NULL, 'N' },
		{ "mode", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	int c;

	*o = (struct opts) {
		.dest = "10.77.0.1",
		.port = ZCX_BCAST_PORT,
		.subs = 8,
		.chunks = 64,
		.chunk = 256 << 10,
		.bufs = 4,
		.run_normal = true,
		.run_stable = true,
		.seed = ZC_PATTERN_SEED,
	};
	while ((c = getopt_long(argc, argv, "n:c:s:b:h", lo, NULL)) != -1) {
		switch (c) {
		case 'n':
			o->subs = parse_uint(optarg, 1, ZCSEND_MAX_FANOUT);
			break;
		case 'c':
			o->chunks = parse_uint(optarg, 1, 1U << 24);
			break;
		case 's':
			o->chunk = size_option(optarg);
			break;
		case 'b':
			o->bufs = parse_uint(optarg, 1, MAX_BUFS);
			break;
		case 'd':
			o->dest = optarg;
			break;
		case 'p':
			o->port = parse_uint(optarg, 1, 65535);
			break;
		case 'N':
			o->nowait = true;
			break;
		case 'm':
			o->run_normal = !strcmp(optarg, "normal") || !strcmp(optarg, "both");
			o->run_stable = !strcmp(optarg, "stable") || !strcmp(optarg, "both");
			if (!o->run_normal && !o->run_stable)
				usage();
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (o->chunk > (1U << 30)) {
		fprintf(stderr, "%s: --size at most 1G\n", prog);
		exit(2);
	}
}

static struct call *new_call(struct run *r)
{
	if (r->ncalls == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 256;
		r->calls = realloc(r->calls, r->cap * sizeof(*r->calls));
		if (!r->calls)
			die("out of memory");
	}
	memset(&r->calls[r->ncalls], 0, sizeof(*r->calls));
	return &r->calls[r->ncalls++];
}

/*
 * Waits up to @ms for the eventfd, then reads every completion record that
 * is queued. Returns the number of records read.
 */
static size_t drain(struct run *r, int ms)
{
	struct zcsend_completion cq[64];
	size_t got = 0;
	ssize_t n, i;

	if (!wait_completions(efd, ms))
		return 0;
	while ((n = read_completions(zfd, cq, ARRAY_SIZE(cq))) > 0) {
		for (i = 0; i < n; i++) {
			struct zcsend_completion *c = &cq[i];
			uint32_t kind = c->flags & (ZCSEND_COMPL_ZEROCOPY | ZCSEND_COMPL_COPIED);
			uint64_t idx = c->user_data & 0xffffffffu;
			bool stable_flag = c->flags & ZCSEND_COMPL_STABLE;
			struct call *k;

			if (c->user_data >> 32 != r->tag || idx >= r->ncalls ||
			    r->calls[idx].done) {
				printf("%s: unexpected completion user_data=%#llx\n", prog,
				       (unsigned long long)c->user_data);
				r->nweird++;
				continue;
			}
			k = &r->calls[idx];
			k->done = true;
			k->t_done = now();
			k->flags = c->flags;
			r->pending[k->slot]--;
			r->ncompl++;
			got++;
			if (c->flags & ZCSEND_COMPL_FANOUT)
				r->nfanout_flag++;
			if (stable_flag)
				r->nstable_flag++;
			if (c->bytes != k->bytes || c->result ||
			    (kind != ZCSEND_COMPL_ZEROCOPY && kind != ZCSEND_COMPL_COPIED) ||
			    !(c->flags & ZCSEND_COMPL_FANOUT) || stable_flag != r->stable) {
				printf("%s: odd completion for call %llu: bytes %llu (accepted %llu) flags %#x result %d\n",
				       prog, (unsigned long long)idx,
				       (unsigned long long)c->bytes,
				       (unsigned long long)k->bytes, c->flags, c->result);
				r->nweird++;
			}
			if (kind == ZCSEND_COMPL_ZEROCOPY)
				r->nzc++;
			else
				r->ncopied++;
			if (c->flags & ZCSEND_COMPL_COPY_PATH)
				r->ncopypath++;
		}
	}
	return got;
}

/* Reads completions until @slot has no call in flight. */
static void wait_slot(struct run *r, unsigned int slot)
{
	double end = now() + COMPLETION_WAIT_MS / 1e3;

	while (r->pending[slot]) {
		if (now() >= end)
			die("buffer %u: %u completion(s) missing after %d ms", slot,
			    r->pending[slot], COMPLETION_WAIT_MS);
		drain(r, (end - now()) * 1e3 + 1);
	}
}

/*
 * One ZCSEND_IOC_FANOUT of @len bytes at @p to @nr destinations (results
 * written back into @dests). Retries while the module's limits are hit.
 * Returns the number of destinations that accepted bytes.
 */
static int fanout(struct run *r, unsigned int slot, const uint8_t *p, size_t len,
		  struct zcsend_dest *dests, unsigned int nr)
{
	struct iovec iov = { .iov_base = (void *)p, .iov_len = len };
	struct zcsend_fanout req = {
		.flags = MSG_NOSIGNAL | (r->o->nowait ? MSG_DONTWAIT : 0) |
			 (r->stable ? ZCSEND_FANOUT_STABLE : 0),
		.iovcnt = 1,
		.iov = (uintptr_t)&iov,
		.dests = (uintptr_t)dests,
		.nr = nr,
	};
	unsigned int i, accepted;
	int tries = 0;
	long n;

	for (;;) {
		struct call *k = new_call(r);

		for (i = 0; i < nr; i++)
			dests[i].result = 0;
		req.user_data = (uint64_t)r->tag << 32 | (r->ncalls - 1);
		k->slot = slot;
		k->t_call = now();
		n = ioctl(zfd, ZCSEND_IOC_FANOUT, &req);
		k->t_ret = now();
		if (n >= 0) {
			r->pending[slot]++;
			for (i = 0, accepted = 0; i < nr; i++) {
				if (dests[i].result > 0) {
					k->bytes += dests[i].result;
					accepted++;
				}
				if (dests[i].result > (int64_t)len) {
					printf("%s: destination %u accepted %lld of %zu bytes\n",
					       prog, i, (long long)dests[i].result, len);
					r->nweird++;
				}
			}
			if (accepted != (unsigned int)n) {
				printf("%s: ZCSEND_IOC_FANOUT returned %ld, but %u destinations accepted bytes\n",
				       prog, n, accepted);
				r->nweird++;
			}
			drain(r, 0);
			return n;
		}
		/* Failed calls post no completion: forget the record. */
		r->ncalls--;
		if (errno == EINTR)
			continue;
		if ((errno == ENOBUFS || errno == ENOMEM || errno == EBUSY) &&
		    r->ncompl < r->ncalls && ++tries < RETRY_LIMIT) {
			/* Too much pinned/copied (memlock) or queued: let some complete. */
			drain(r, 100);
			continue;
		}
		if (errno == ENOTTY)
			die("ZCSEND_IOC_FANOUT: %s: this zcsend.ko has no fan-out", strerror(errno));
		die("ZCSEND_IOC_FANOUT of %zu bytes to %u destinations: %s", len, nr,
		    strerror(errno));
	}
}

static void drop_sub(struct run *r, struct sub *s, int err)
{
	s->dead = true;
	s->err = err;
	printf("%s: subscriber %td failed: %s; dropped from the stream\n", prog,
	       s - r->subs, strerror(err));
}

/*
 * Sends the rest of a chunk (@p + @acc up to @len) to subscriber @s alone,
 * by fan-outs of one destination, until its socket took all of it.
 */
static void send_rest(struct run *r, struct sub *s, unsigned int slot,
		      const uint8_t *p, size_t acc, size_t len)
{
	struct zcsend_dest d = { .fd = s->fd };

	while (acc < len && !s->dead) {
		if (r->o->nowait) {
			struct pollfd pf = { .fd = s->fd, .events = POLLOUT };
			int pr = poll(&pf, 1, WRITABLE_WAIT_MS);

			if (pr < 0 && errno == EINTR)
				continue;
			if (pr <= 0) {
				drop_sub(r, s, pr ? errno : ETIMEDOUT);
				break;
			}
		}
		r->remainder_calls++;
		fanout(r, slot, p + acc, len - acc, &d, 1);
		if (d.result > 0) {
			acc += d.result;
			s->sent += d.result;
			r->delivered += d.result;
		} else if (d.result == -EAGAIN || d.result == -EINTR || d.result == 0) {
			r->eagain += d.result == -EAGAIN;
		} else {
			drop_sub(r, s, -d.result);
		}
	}
}

/* Fills @buf with chunk @k of the stream (or poison past the end). */
static void fill_chunk(struct run *r, uint8_t *buf, unsigned int k)
{
	const struct opts *o = r->o;
	double t0 = thread_cpu();

	if (k < o->chunks)
		zc_pattern_fill(buf, o->chunk, o->seed, (uint64_t)k * o->chunk);
	else
		memset(buf, 0xa5, o->chunk);
	r->fill_cpu += thread_cpu() - t0;
}

static void connect_subs(struct run *r)
{
	const struct opts *o = r->o;
	char line[ZCX_LINE_MAX];
	unsigned int i;

	for (i = 0; i < o->subs; i++) {
		struct sub *s = &r->subs[i];

		s->fd = socket(peer.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&peer, peerlen))
			die("subscriber %u: cannot connect to %s port %d: %s (is zcsend_rx --mode bcast running?)",
			    i, o->dest, o->port, strerror(errno));
		snprintf(line, sizeof(line), "ZCX1 bcast seed=%llx bytes=%llu run=%u sub=%u/%u\n",
			 (unsigned long long)o->seed,
			 (unsigned long long)o->chunks * o->chunk, r->id, i, o->subs);
		write_all(s->fd, line, strlen(line));
	}
}

/* Sends the whole stream to every subscriber in one mode; true if it passed. */
static bool run_mode(const struct opts *o, bool stable, uint32_t tag)
{
	struct run r = {
		.o = o,
		.stable = stable,
		.tag = tag,
		.label = o->nowait ? (stable ? "fanout-nb-stb" : "fanout-nb") :
				     (stable ? "fanout-stable" : "fanout"),
	};
	unsigned int nbufs = stable ? 1 : o->bufs, i, k, nr, alive, ok_subs = 0;
	uint64_t stream = (uint64_t)o->chunks * o->chunk;
	double t0, t_sent, t_end, t_verdict, cpu0, cpu, send_cpu, span, mbs, e2e, gbcpu;
	double call_med = 0, *lat;
	char a[32], b[32], c[32], line[ZCX_LINE_MAX];
	bool compl_ok, recv_ok = true, pass;
	struct zcsend_stats st;
	size_t nlat = 0;

	r.id = (uint32_t)(getpid() ^ (uint32_t)(now() * 1e6)) ^ tag;
	r.subs = calloc(o->subs, sizeof(*r.subs));
	r.dests = calloc(o->subs, sizeof(*r.dests));
	r.dest_sub = calloc(o->subs, sizeof(*r.dest_sub));
	if (!r.subs || !r.dests || !r.dest_sub)
		die("out of memory");
	for (i = 0; i < nbufs; i++) {
		r.buf[i] = mmap(NULL, o->chunk, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (r.buf[i] == MAP_FAILED)
			die("mmap %zu bytes: %s", o->chunk, strerror(errno));
	}

	printf("\n%s: %s mode: %u chunks of %zu bytes to %u subscribers at %s port %d%s\n",
	       prog, stable ? "STABLE" : "normal", o->chunks, o->chunk, o->subs,
	       o->dest, o->port, o->nowait ? ", MSG_DONTWAIT" : "");
	if (stable)
		printf("%s:   ZCSEND_FANOUT_STABLE: one chunk buffer, overwritten right after each call returns\n",
		       prog);
	else
		printf("%s:   %u rotating chunk buffers, each refilled only after its completion(s)\n",
		       prog, nbufs);

	connect_subs(&r);

	cpu0 = cpu_seconds();
	t0 = now();
	if (stable)
		fill_chunk(&r, r.buf[0], 0);
	for (k = 0; k < o->chunks; k++) {
		unsigned int slot = k % nbufs;
		uint8_t *p = r.buf[slot];

		if (!stable) {
			/* The kernel may read this buffer until its completions. */
			wait_slot(&r, slot);
			fill_chunk(&r, p, k);
		}
		for (i = 0, nr = 0; i < o->subs; i++) {
			if (r.subs[i].dead)
				continue;
			r.dests[nr] = (struct zcsend_dest) { .fd = r.subs[i].fd };
			r.dest_sub[nr++] = i;
		}
		if (!nr)
			break;
		fanout(&r, slot, p, o->chunk, r.dests, nr);
		/* Short destinations get the rest of this chunk on their own. */
		for (i = 0; i < nr; i++) {
			struct sub *s = &r.subs[r.dest_sub[i]];
			int64_t res = r.dests[i].result;
			size_t acc = res > 0 ? res : 0;

			if (res < 0 && res != -EAGAIN && res != -EINTR) {
				drop_sub(&r, s, -res);
				continue;
			}
			r.eagain += res == -EAGAIN;
			s->sent += acc;
			r.delivered += acc;
			if (acc < o->chunk) {
				r.partial++;
				send_rest(&r, s, slot, p, acc, o->chunk);
			}
		}
		/* Stable: the module sent its own copy, the buffer is ours again. */
		if (stable)
			fill_chunk(&r, p, k + 1);
	}
	t_sent = now();

	/* Every accepted call owes exactly one completion. */
	{
		double end = now() + COMPLETION_WAIT_MS / 1e3;

		while (r.ncompl < r.ncalls && now() < end)
			drain(&r, (end - now()) * 1e3 + 1);
	}
	t_end = now();
	cpu = cpu_seconds() - cpu0;
	send_cpu = cpu - r.fill_cpu;

	/* Verdicts: the receiver checked each stream against the pattern. */
	for (i = 0; i < o->subs; i++)
		shutdown(r.subs[i].fd, SHUT_WR);
	for (i = 0; i < o->subs; i++) {
		struct sub *s = &r.subs[i];

		if (!read_line(s->fd, s->verdict, sizeof(s->verdict), VERDICT_WAIT_MS) &&
		    !s->verdict[0])
			snprintf(s->verdict, sizeof(s->verdict), "(no verdict: receiver silent)");
		if (!strncmp(s->verdict, "OK ", 3) && !s->dead && s->sent == stream)
			ok_subs++;
		else
			recv_ok = false;
		close(s->fd);
	}
	t_verdict = now();
	for (i = 0, alive = 0; i < o->subs; i++)
		alive += !r.subs[i].dead;

	/* Report. */
	printf("%s:   chunks %u, destinations %u (%u still subscribed), fan-out calls %zu (%zu of them remainders to one subscriber)\n",
	       prog, o->chunks, o->subs, alive, r.ncalls, r.remainder_calls);
	printf("%s:   bytes delivered %" PRIu64 " (%.2f MiB, %u x %.2f MiB), partial acceptances %zu, EAGAIN %zu\n",
	       prog, r.delivered, r.delivered / 1048576.0, o->subs, stream / 1048576.0,
	       r.partial, r.eagain);
	printf("%s:   completions %zu/%zu (one per call)%s: ZEROCOPY %zu, COPIED %zu (copy path %zu); FANOUT flag on %zu, STABLE flag on %zu\n",
	       prog, r.ncompl, r.ncalls, r.ncompl < r.ncalls ? "  <-- MISSING" : "",
	       r.nzc, r.ncopied, r.ncopypath, r.nfanout_flag, r.nstable_flag);
	lat = calloc(r.ncalls + 1, sizeof(*lat));
	if (!lat)
		die("out of memory");
	for (i = 0; i < r.ncalls; i++)
		lat[i] = r.calls[i].t_ret - r.calls[i].t_call;
	qsort(lat, r.ncalls, sizeof(*lat), cmp_double);
	if (r.ncalls) {
		call_med = lat[r.ncalls / 2];
		printf("%s:   time in ZCSEND_IOC_FANOUT: min %s, median %s, max %s\n", prog,
		       fmt_time(a, lat[0]), fmt_time(b, call_med), fmt_time(c, lat[r.ncalls - 1]));
	}
	for (i = 0; i < r.ncalls; i++)
		if (r.calls[i].done)
			lat[nlat++] = r.calls[i].t_done - r.calls[i].t_call;
	qsort(lat, nlat, sizeof(*lat), cmp_double);
	if (nlat)
		printf("%s:   call->completion: min %s, median %s, max %s\n", prog,
		       fmt_time(a, lat[0]), fmt_time(b, lat[nlat / 2]), fmt_time(c, lat[nlat - 1]));
	free(lat);
	if (!ioctl(zfd, ZCSEND_IOC_STATS, &st))
		printf("%s:   module stats (this file so far): records %llu, zerocopy %llu, copied %llu, inflight %llu, pinned pages %llu\n",
		       prog, (unsigned long long)st.sends, (unsigned long long)st.zerocopy,
		       (unsigned long long)st.copied, (unsigned long long)st.inflight,
		       (unsigned long long)st.pinned_pages);

	span = t_end - t0;
	mbs = span > 0 ? r.delivered / span / 1e6 : 0;
	e2e = t_verdict > t0 ? r.delivered / (t_verdict - t0) / 1e6 : 0;
	gbcpu = r.delivered ? send_cpu / (r.delivered / 1e9) : 0;
	printf("%s:   throughput %.1f MB/s delivered (first call until the last completion, %.3f s; last call returned at %.3f s)\n",
	       prog, mbs, span, t_sent - t0);
	printf("%s:   sender cpu %.2f s/GB delivered (%.3f s, not counting %.3f s generating the pattern)\n",
	       prog, gbcpu, send_cpu, r.fill_cpu);
	compl_ok = r.ncompl == r.ncalls && !r.nweird;
	pass = recv_ok && compl_ok && alive == o->subs;
	if (recv_ok)
		printf("%s:   receiver: all %u streams OK (%" PRIu64 " bytes each; first verdict: %s)\n",
		       prog, o->subs, stream, r.subs[0].verdict);
	else
		for (i = 0; i < o->subs; i++)
			printf("%s:   subscriber %u: %" PRIu64 " bytes sent%s, receiver: %s\n", prog,
			       i, r.subs[i].sent, r.subs[i].dead ? " (dropped)" : "",
			       r.subs[i].verdict);
	snprintf(a, sizeof(a), "%zu/%zu", r.nzc, r.ncompl);
	snprintf(b, sizeof(b), "%.1f", e2e);
	snprintf(c, sizeof(c), "%s %u/%u", recv_ok ? "OK" : "BAD", ok_subs, o->subs);
	printf("RESULT %-4s %-13s %s %5.2f MiB %4zu sends  zero-copy %-7s  %6.1f MB/s  e2e %5s MB/s  cpu %6.1f s/GB  call %8s  receiver %s\n",
	       "tcp", r.label, pass ? "PASS" : "FAIL", r.delivered / 1048576.0, r.ncalls,
	       a, mbs, b, gbcpu, fmt_time(line, call_med), c);

	for (i = 0; i < nbufs; i++)
		munmap(r.buf[i], o->chunk);
	free(r.calls);
	free(r.subs);
	free(r.dests);
	free(r.dest_sub);
	return pass;
}

int main(int argc, char **argv)
{
	struct opts o;
	bool ok = true;

	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_opts(&o, argc, argv);
	signal(SIGPIPE, SIG_IGN);
	resolve(o.dest, o.port, &peer, &peerlen);

	zfd = open(ZCSEND_DEVICE, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (zfd < 0) {
		printf("%s: cannot open %s: %s (is zcsend.ko loaded?)\n", prog,
		       ZCSEND_DEVICE, strerror(errno));
		if (o.run_normal)
			printf("RESULT tcp  %-13s SKIP %s missing\n",
			       o.nowait ? "fanout-nb" : "fanout", ZCSEND_DEVICE);
		if (o.run_stable)
			printf("RESULT tcp  %-13s SKIP %s missing\n",
			       o.nowait ? "fanout-nb-stb" : "fanout-stable", ZCSEND_DEVICE);
		return EXIT_SKIP;
	}
	efd = zcsend_eventfd(zfd);

	printf("%s: one stream of %u x %zu bytes to %u TCP subscribers, one ZCSEND_IOC_FANOUT per chunk\n",
	       prog, o.chunks, o.chunk, o.subs);
	if (o.run_normal)
		ok &= run_mode(&o, false, 1);
	if (o.run_stable)
		ok &= run_mode(&o, true, 2);
	return ok ? 0 : 1;
}
