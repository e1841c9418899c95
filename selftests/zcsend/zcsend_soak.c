// SPDX-License-Identifier: GPL-2.0
/*
 * zcsend soak with faults. For ZCSEND_SOAK_SECONDS (60), worker threads
 * and worker processes send through /dev/zcsend files of their own, each
 * on one socket at a time: "loop", TCP over loopback to a receiver thread
 * that checks every byte; "udp", UDP out dummy0 (MTU 65535) in a namespace
 * of the test; "remote", TCP through eth0 to zcsend_rx --mode remote
 * (10.77.0.1 / fd77::1 port 7777), which checks every byte (without the
 * host they send over loopback, and soak.remote SKIPs with the reason).
 * Sizes (1 B .. 1 MiB TCP, .. 65000 B UDP), flags (MSG_DONTWAIT, MSG_MORE,
 * MSG_NOSIGNAL) and iovecs (1..64, contiguous or scattered over two copies
 * of the pattern at different alignments) are random. A TCP connection
 * carries the pattern stream from offset 0; each send continues where the
 * accepted bytes end.
 *
 * At random moments workers close their socket (FIN: the receiver must get
 * exactly the accepted bytes; RST: what arrived must be intact) and their
 * file (abandoning its records, or draining them: every accepted send must
 * complete exactly once with the bytes the ioctl returned, and the counters
 * go idle). The main thread SIGKILLs worker processes with sends
 * outstanding, starts new ones, and tries delete_module, which must fail:
 * it keeps a file open. Afterwards no pin is left and a fresh file is idle;
 * soak.remote reports the host's verdicts, soak.reload unloads and reloads.
 *
 * Environment: ZCSEND_SOAK_SECONDS (60), ZCSEND_SOAK_THREADS (4),
 * ZCSEND_SOAK_PROCS (3), ZCSEND_SOAK_SEED (random, printed), ZCSEND_KO.
 */
#include <stdarg.h>
#include <sys/prctl.h>

#include "zcsend_helpers.h"

#define STREAM_MAX	(16 << 20)	/* at most this much per TCP connection */
#define B_SHIFT		(2048 + 5)	/* copy B's offset in its mapping */
#define TCP_BITS	20		/* TCP sends: 1 B .. 1 MiB */
#define UDP_BITS	16
#define UDP_MAX		65000
#define MAX_IOV		64
#define MAX_WORKERS	32
#define SNDTIMEO_S	10
#define RCVTIMEO_S	30		/* receivers and host verdicts */
#define DRAIN_MS	30000		/* for completions and pins */
#define JOIN_MS		120000		/* for workers to finish at the end */
#define REMOTE_PORT	ZCX_REMOTE_PORT
#define LOG_FAILS	8		/* failure messages printed per counter */

enum { LOOP, UDP, REMOTE };
static const char *const kind_name[] = { "loop", "udp", "remote" };

/* One worker slot, shared with the worker processes. */
struct wstat {
	int kind, proc, gen, done;
	pid_t pid;
	uint64_t outstanding;	/* sends accepted, completion not read yet */
	uint64_t sends, bytes, compls, zerocopy, conns, sock_closes, verified;
	uint64_t file_closes, drained, abandoned, eagain, ebusy, enobufs;
	uint64_t fails;
};

static struct soak {
	int secs, threads, procs, stop, ran, dummy_ns;
	uint64_t seed, thr;
	int64_t deadline;
	bool loop6, remote[2];
	char remote_why[320], remote_note[240], params[1024];
	uint64_t remote_conns, remote_ok, remote_rst, remote_fail;
	struct wstat w[MAX_WORKERS];
} *sh;

/* Stream bytes [0, STREAM_MAX) at two addresses of different alignment. */
static const uint8_t *pat_a, *pat_b;

struct rec {
	uint64_t bytes;
	uint32_t req;
	bool seen;
};

struct worker {
	int id;
	struct wstat *st;
	uint64_t rng;
	pthread_t th;
	/* The file and the sends made through it. */
	int zfd;
	uint32_t epoch, n, cap, matched;
	struct rec *rec;
	uint64_t zc;
	bool lazy;		/* reads only when the file is full */
	int64_t next_file_ev;
	/* The socket. */
	int fd, family;
	uint64_t off;		/* TCP: bytes accepted = stream offset */
	uint64_t cork;		/* UDP: bytes held back by MSG_MORE */
	struct sockaddr_storage dst;
	socklen_t dstlen;
	struct zc_rx rx;	/* loop: the receiving end */
	int64_t next_sock_ev;
	struct iovec iov[MAX_IOV];
};

static void __attribute__((format(printf, 3, 4)))
report(struct worker *w, uint64_t *count, const char *fmt, ...)
{
	char msg[320];
	va_list ap;

	if (__atomic_fetch_add(count, 1, __ATOMIC_RELAXED) >= LOG_FAILS)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "# soak: worker %d (%s, %s): %s\n", w->id,
		kind_name[w->st->kind], w->st->proc ? "process" : "thread",
		msg);
}

#define W_FAIL(w, ...)	report(w, &(w)->st->fails, __VA_ARGS__)
#define R_FAIL(w, ...)	report(w, &sh->remote_fail, __VA_ARGS__)
#define ULL(x)		((unsigned long long)(x))

static uint64_t rnd(struct worker *w, uint64_t n)
{
	uint64_t x = w->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	w->rng = x;
	return n ? (x * 0x2545f4914f6cdd1dULL) % n : 0;
}

/* Log-uniform: as many sends below 1 KiB as between 512 KiB and 1 MiB. */
static size_t rnd_size(struct worker *w, int bits, size_t max)
{
	size_t len = 1 + rnd(w, 1ULL << rnd(w, bits + 1));

	return len < max ? len : max;
}

static uint64_t ud_of(struct worker *w, uint32_t i)
{
	return (uint64_t)w->id << 56 | (uint64_t)(w->epoch & 0xffffff) << 32 | i;
}

/* ----------------------------------------------------------------------
 * Completions
 */

static void w_match(struct worker *w, const struct zcsend_completion *c)
{
	uint64_t idx = c->user_data & 0xffffffff;
	uint32_t f = c->flags, one = f & ZC_FLAGS_ONE_OF;
	struct rec *r;

	if (c->user_data >> 32 != ud_of(w, 0) >> 32 || idx >= w->n ||
	    w->rec[idx].seen) {
		W_FAIL(w, "completion with unknown or repeated user_data %#llx",
		       ULL(c->user_data));
		return;
	}
	r = &w->rec[idx];
	r->seen = true;
	w->matched++;
	w->st->compls++;
	if (c->bytes != r->bytes)
		W_FAIL(w, "send %#llx: completion says %llu bytes, the ioctl returned %llu",
		       ULL(c->user_data), ULL(c->bytes), ULL(r->bytes));
	if (c->result)
		W_FAIL(w, "send %#llx: result %d", ULL(c->user_data), c->result);
	if ((f & ~(ZC_FLAGS_ONE_OF | ZCSEND_COMPL_COPY_PATH)) || !one ||
	    one == ZC_FLAGS_ONE_OF)
		W_FAIL(w, "send %#llx: flags %#x", ULL(c->user_data), f);
	/*
	 * COPY_PATH below copy_threshold, never above it for TCP. Loopback
	 * data is copied on delivery, but a connection closed with data
	 * still queued frees those skbs uncopied: ZEROCOPY is then true, so
	 * it is not checked here.
	 */
	if ((r->req < sh->thr && !(f & ZCSEND_COMPL_COPY_PATH)) ||
	    (w->st->kind != UDP && r->req >= sh->thr &&
	     (f & ZCSEND_COMPL_COPY_PATH)))
		W_FAIL(w, "send %#llx of %u bytes (copy_threshold %llu): flags %#x",
		       ULL(c->user_data), r->req, ULL(sh->thr), f);
	if (f & ZCSEND_COMPL_ZEROCOPY) {
		w->zc++;
		w->st->zerocopy++;
	}
}

/* Reads what is queued; waits up to @ms until @want sends are matched. */
static void w_reap(struct worker *w, uint32_t want, int ms)
{
	int64_t end = zc_now_ms() + ms;
	struct zcsend_completion c[64];
	int i, n;

	for (;;) {
		n = zc_read_compl(w->zfd, c, 64);
		if (n < 0) {
			W_FAIL(w, "read: %s", strerror(-n));
			break;
		}
		for (i = 0; i < n; i++)
			w_match(w, &c[i]);
		if (n == 64)
			continue;
		if (w->matched >= want || zc_now_ms() > end)
			break;
		zc_msleep(5);
	}
	w->st->outstanding = w->n - w->matched;
}

/* The file was kept: every send completes exactly once, counters idle. */
static void w_drain(struct worker *w)
{
	struct zcsend_completion extra;
	struct zcsend_stats s;
	uint32_t i;

	w_reap(w, w->n, DRAIN_MS);
	if (w->matched < w->n) {
		for (i = 0; i < w->n && w->rec[i].seen; i++)
			;
		W_FAIL(w, "%u of %u sends not completed after %d s, the first: %#llx (%llu bytes)",
		       w->n - w->matched, w->n, DRAIN_MS / 1000,
		       ULL(ud_of(w, i)), ULL(w->rec[i].bytes));
	}
	if (zc_stats(w->zfd, &s)) {
		W_FAIL(w, "stats: %s", strerror(errno));
		return;
	}
	if (s.inflight || s.queued || s.pinned_pages || s.sends != w->n ||
	    s.zerocopy + s.copied != s.sends || s.zerocopy != w->zc)
		W_FAIL(w, "drained file: sends %llu (accepted %u) inflight %llu queued %llu pinned %llu zerocopy %llu (read %llu) copied %llu",
		       ULL(s.sends), w->n, ULL(s.inflight), ULL(s.queued),
		       ULL(s.pinned_pages), ULL(s.zerocopy), ULL(w->zc),
		       ULL(s.copied));
	if (zc_read_compl(w->zfd, &extra, 1))
		W_FAIL(w, "a completion after the drain: %#llx",
		       ULL(extra.user_data));
	w->st->drained++;
}

static bool w_file_open(struct worker *w)
{
	w->zfd = zc_open();
	if (w->zfd < 0) {
		W_FAIL(w, "open %s: %s", ZCSEND_DEVICE, strerror(errno));
		return false;
	}
	w->epoch++;
	w->n = w->matched = 0;
	w->zc = 0;
	w->lazy = !rnd(w, 4);
	w->next_file_ev = zc_now_ms() + 1000 + rnd(w, 7000);
	return true;
}

/* ----------------------------------------------------------------------
 * Sockets
 */

static void set_timeouts(int fd)
{
	struct timeval snd = { SNDTIMEO_S, 0 }, rcv = { RCVTIMEO_S, 0 };

	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof(snd));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof(rcv));
}

/* A TCP connection to zcsend_rx, within 10 s; 0 or a negative errno. */
static int remote_connect(int family, int *fdp)
{
	struct pollfd pfd = { .events = POLLOUT };
	struct sockaddr_storage ss;
	socklen_t len, elen = sizeof(int);
	int fd, err = 0;

	len = zc_addr(family, family == AF_INET ? "10.77.0.1" : "fd77::1",
		      REMOTE_PORT, &ss);
	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	pfd.fd = fd;
	if (connect(fd, (void *)&ss, len) && errno != EINPROGRESS)
		err = errno;
	else if (poll(&pfd, 1, 10000) != 1)
		err = ETIMEDOUT;
	else
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
	if (err) {
		close(fd);
		return -err;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	set_timeouts(fd);
	*fdp = fd;
	return 0;
}

/* Shuts the write side down and reads zcsend_rx's verdict line. */
static int remote_verdict(int fd, char *buf, size_t len)
{
	size_t got = 0;
	ssize_t r;

	buf[0] = 0;
	if (shutdown(fd, SHUT_WR))
		return -errno;
	while (got < len - 1 && !memchr(buf, '\n', got)) {
		r = recv(fd, buf + got, len - 1 - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r ? -errno : -ENODATA;
		got += r;
		buf[got] = 0;
	}
	return 0;
}

static int pick_family(struct worker *w, bool v4, bool v6)
{
	if (v4 && v6)
		return rnd(w, 2) ? AF_INET6 : AF_INET;
	return v6 ? AF_INET6 : AF_INET;
}

static bool w_sock_open(struct worker *w)
{
	static const int bufs[] = { 0, 64 << 10, 256 << 10 };
	struct zc_pair p;
	int ret;

	w->off = w->cork = 0;
	w->dstlen = 0;
	w->next_sock_ev = zc_now_ms() + 200 + rnd(w, 3000);
	switch (w->st->kind) {
	case LOOP:
		w->family = pick_family(w, true, sh->loop6);
		ret = zc_loopback_pair(&p, w->family, SOCK_STREAM,
				       bufs[rnd(w, 3)], bufs[rnd(w, 3)]);
		if (ret) {
			W_FAIL(w, "loopback pair: %s", strerror(-ret));
			return false;
		}
		memset(&w->rx, 0, sizeof(w->rx));
		w->rx.fd = p.rx;
		w->rx.seed = ZC_PATTERN_SEED;
		w->rx.timeout_ms = RCVTIMEO_S * 1000;
		w->rx.bad = -1;
		ret = pthread_create(&w->rx.thread, NULL, zc_rx_main, &w->rx);
		if (ret) {
			W_FAIL(w, "receiver thread: %s", strerror(ret));
			zc_pair_close(&p);
			return false;
		}
		w->fd = p.tx;
		break;
	case REMOTE:
		w->family = pick_family(w, sh->remote[0], sh->remote[1]);
		__atomic_fetch_add(&sh->remote_conns, 1, __ATOMIC_RELAXED);
		ret = remote_connect(w->family, &w->fd);
		if (ret) {
			R_FAIL(w, "connect to zcsend_rx: %s", strerror(-ret));
			return false;
		}
		break;
	default:
		w->family = pick_family(w, true, true);
		w->fd = socket(w->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (w->fd < 0) {
			W_FAIL(w, "socket: %s", strerror(errno));
			return false;
		}
		w->dstlen = zc_addr(w->family, w->family == AF_INET ?
				    ZC_DUMMY_PEER4 : ZC_DUMMY_PEER6, 9, &w->dst);
		if (rnd(w, 2)) {
			if (connect(w->fd, (void *)&w->dst, w->dstlen))
				W_FAIL(w, "connect: %s", strerror(errno));
			w->dstlen = 0;
		}
	}
	set_timeouts(w->fd);
	w->st->conns++;
	return true;
}

/*
 * Closes the socket, with sends possibly in flight. @graceful: FIN after
 * the queued data, and the receiver must have got exactly the accepted
 * bytes, intact. Otherwise RST: what arrived must be an intact prefix.
 */
static void w_sock_close(struct worker *w, bool graceful)
{
	struct linger lg = { 1, 0 };
	char verdict[64], want[64];
	int ret;

	if (w->fd < 0)
		return;
	w->st->sock_closes++;
	if (!graceful && w->st->kind != UDP)
		setsockopt(w->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	if (w->st->kind == REMOTE && graceful) {
		snprintf(want, sizeof(want), "OK %llu\n", ULL(w->off));
		ret = remote_verdict(w->fd, verdict, sizeof(verdict));
		if (ret)
			R_FAIL(w, "no verdict from the host for %llu bytes: %s",
			       ULL(w->off), strerror(-ret));
		else if (strcmp(verdict, want))
			R_FAIL(w, "host verdict \"%.*s\" for %llu bytes",
			       (int)strcspn(verdict, "\n"), verdict,
			       ULL(w->off));
		else
			__atomic_fetch_add(&sh->remote_ok, 1, __ATOMIC_RELAXED);
	} else if (w->st->kind == REMOTE) {
		__atomic_fetch_add(&sh->remote_rst, 1, __ATOMIC_RELAXED);
	}
	close(w->fd);
	w->fd = -1;
	if (w->st->kind != LOOP)
		return;
	/* Bounded: the receiver gives up after RCVTIMEO_S without data. */
	zc_rx_join(&w->rx);
	close(w->rx.fd);
	if (w->rx.bad >= 0 || w->rx.got > w->off ||
	    (graceful && (w->rx.err || w->rx.got != w->off)) ||
	    (w->rx.err && w->rx.err != ECONNRESET))
		W_FAIL(w, "%s: receiver got %llu of %llu bytes, first bad byte at %lld, error: %s",
		       graceful ? "FIN" : "RST", ULL(w->rx.got), ULL(w->off),
		       (long long)w->rx.bad,
		       w->rx.err ? strerror(w->rx.err) : "none");
	else if (graceful)
		w->st->verified++;
}

static void w_file_close(struct worker *w, bool drain)
{
	if (drain) {
		/* No MSG_MORE data may stay held back: close the socket. */
		w_sock_close(w, true);
		w_drain(w);
	} else {
		w->st->abandoned += w->n - w->matched;
	}
	close(w->zfd);
	w->zfd = -1;
	w->st->file_closes++;
	w->st->outstanding = 0;
}

/* ----------------------------------------------------------------------
 * Sends
 */

/*
 * @len bytes in 1..64 pieces. TCP: stream bytes [off, off + len), each
 * piece from copy A or B: all from one (contiguous), alternating, or at
 * random. UDP: anywhere, the pieces adjacent or each at a random place.
 */
static int build_iov(struct worker *w, size_t len, bool stream)
{
	int n = 1 + rnd(w, MAX_IOV), mode = rnd(w, 3), first = rnd(w, 2);
	size_t cut[MAX_IOV + 1], base, at, l, c;
	int i, j, k;

	if ((size_t)n > len)
		n = len;
	cut[0] = 0;
	for (k = 1; k < n;) {
		c = 1 + rnd(w, len - 1);
		for (j = 1; j < k && cut[j] < c; j++)
			;
		if (j < k && cut[j] == c)
			continue;
		memmove(cut + j + 1, cut + j, (k - j) * sizeof(cut[0]));
		cut[j] = c;
		k++;
	}
	cut[n] = len;
	base = stream ? w->off : rnd(w, STREAM_MAX - len + 1);
	for (i = 0; i < n; i++) {
		int copy = mode == 0 ? first :
			   mode == 1 ? (first ^ i) & 1 : (int)rnd(w, 2);

		l = cut[i + 1] - cut[i];
		at = base + cut[i];
		if (!stream && mode == 2)
			at = rnd(w, STREAM_MAX - l + 1);
		w->iov[i].iov_base = (void *)((copy ? pat_b : pat_a) + at);
		w->iov[i].iov_len = l;
	}
	return n;
}

static void w_send(struct worker *w)
{
	bool tcp = w->st->kind != UDP;
	unsigned int flags = 0;
	struct pollfd pfd;
	size_t len;
	int n, ret;

	if (tcp && w->off == STREAM_MAX) {
		w_sock_close(w, true);
		return;
	}
	len = tcp ? rnd_size(w, TCP_BITS, STREAM_MAX - w->off) :
		    rnd_size(w, UDP_BITS, UDP_MAX);
	if (rnd(w, 2))
		flags |= MSG_DONTWAIT;
	if (!rnd(w, 4))
		flags |= MSG_MORE;
	if (rnd(w, 2))
		flags |= MSG_NOSIGNAL;
	if (!tcp && w->cork + len > UDP_MAX) {
		/* The datagram must fit: end it here. */
		len = w->cork < UDP_MAX ? UDP_MAX - w->cork : 1;
		flags &= ~MSG_MORE;
	}
	n = build_iov(w, len, tcp);
	ret = zc_sendv(w->zfd, w->fd, w->iov, n, flags,
		       w->dstlen ? &w->dst : NULL, w->dstlen, ud_of(w, w->n));
	if (ret >= 0) {
		if ((size_t)ret > len || (!tcp && (size_t)ret != len))
			W_FAIL(w, "a send of %zu bytes returned %d", len, ret);
		if (w->n == w->cap) {
			w->cap = w->cap ? 2 * w->cap : 1024;
			w->rec = realloc(w->rec, w->cap * sizeof(*w->rec));
			if (!w->rec)
				abort();
		}
		w->rec[w->n++] = (struct rec){ .bytes = ret, .req = len };
		w->st->sends++;
		w->st->bytes += ret;
		w->st->outstanding = w->n - w->matched;
		if (tcp)
			w->off += ret;
		else
			w->cork = flags & MSG_MORE ? w->cork + ret : 0;
		return;
	}
	switch (-ret) {
	case EAGAIN:
		w->st->eagain++;
		pfd = (struct pollfd){ .fd = w->fd, .events = POLLOUT };
		poll(&pfd, 1, 20);
		return;
	case EBUSY:
		/* ZCSEND_MAX_COMPLETIONS queued and in flight. */
		w->st->ebusy++;
		w_reap(w, w->matched + 1, 1000);
		return;
	case ENOBUFS:
		/* Memlock or ZCSEND_MAX_PINNED_PAGES. */
		w->st->enobufs++;
		w_reap(w, w->matched + 1, 100);
		return;
	case EMSGSIZE:
		if (!tcp) {
			w->cork = 0;	/* the pending datagram was dropped */
			return;
		}
		break;
	case EPIPE:
	case ECONNRESET:
	case ETIMEDOUT:
		if (w->st->kind == REMOTE) {
			R_FAIL(w, "send after %llu bytes: %s", ULL(w->off),
			       strerror(-ret));
			w_sock_close(w, false);
			return;
		}
		break;
	}
	W_FAIL(w, "send of %zu bytes in %d iovecs, flags %#x: %s", len, n,
	       flags, strerror(-ret));
	w_sock_close(w, false);
	zc_msleep(100);
}

static void worker_run(struct worker *w)
{
	int64_t now;

	w->zfd = w->fd = -1;
	if (w->st->kind == UDP && setns(sh->dummy_ns, CLONE_NEWNET)) {
		W_FAIL(w, "setns to the dummy0 namespace: %s", strerror(errno));
		return;
	}
	while (!__atomic_load_n(&sh->stop, __ATOMIC_RELAXED) &&
	       zc_now_ms() < sh->deadline) {
		if (w->zfd < 0 && !w_file_open(w)) {
			zc_msleep(100);
			continue;
		}
		if (w->fd < 0 && !w_sock_open(w)) {
			zc_msleep(200);
			continue;
		}
		w_send(w);
		if (!w->lazy)
			w_reap(w, 0, 0);
		now = zc_now_ms();
		if (now >= w->next_sock_ev)
			w_sock_close(w, rnd(w, 4));
		if (now >= w->next_file_ev)
			w_file_close(w, rnd(w, 2));
	}
	if (w->zfd >= 0)
		w_file_close(w, true);
	else
		w_sock_close(w, true);
	free(w->rec);
	w->st->done = 1;
}

static void *worker_thread(void *arg)
{
	worker_run(arg);
	return NULL;
}

static void worker_init(struct worker *w, int id)
{
	memset(w, 0, sizeof(*w));
	w->id = id;
	w->st = &sh->w[id];
	w->rng = zc_pattern_word(sh->seed, id * 100003ULL + w->st->gen) | 1;
}

/* ----------------------------------------------------------------------
 * The main thread's part
 */

static void on_alarm(int sig)
{
	static const char msg[] = "# soak: watchdog: still running long after the deadline, failing\n";
	ssize_t __maybe_unused r = write(2, msg, sizeof(msg) - 1);

	_exit(KSFT_FAIL);
}

/* A worker process for slot @id; -1 if fork failed. */
static pid_t spawn(int id)
{
	pid_t parent = getpid(), pid;
	struct worker w;

	sh->w[id].gen++;
	sh->w[id].done = 0;
	sh->w[id].outstanding = 0;
	pid = fork();
	if (pid)
		return pid;
	/* Die with the test; hold no fd of the parent's (its sockets!). */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	if (sh->dummy_ns > 3)
		syscall(SYS_close_range, 3, sh->dummy_ns - 1, 0);
	syscall(SYS_close_range, sh->dummy_ns >= 3 ? sh->dummy_ns + 1 : 3,
		~0U, 0);
	alarm(sh->secs + 240);
	worker_init(&w, id);
	worker_run(&w);
	_exit(0);
}

static int wait_child(pid_t pid, int *status, int64_t end)
{
	pid_t r;

	for (;;) {
		r = waitpid(pid, status, WNOHANG);
		if (r)
			return r == pid ? 0 : -errno;
		if (zc_now_ms() > end)
			return -ETIMEDOUT;
		zc_msleep(20);
	}
}

/*
 * The parameters to load the module again as it runs now. Rust parameters
 * have no sysfs file in 7.2: copy_threshold comes from ZCSEND_IOC_STATS.
 */
static int soak_params(uint64_t thr)
{
	size_t used;
	int ret = zc_module_params(sh->params, sizeof(sh->params));

	used = strlen(sh->params);
	if (!ret && !strstr(sh->params, "copy_threshold="))
		snprintf(sh->params + used, sizeof(sh->params) - used,
			 "%scopy_threshold=%llu", used ? " " : "", ULL(thr));
	return ret;
}

/* Creates the dummy0 namespace (sh->dummy_ns); this thread stays out. */
static int dummy_setup(const char **why)
{
	int orig, ret;

	*why = "open /proc/thread-self/ns/net";
	orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (orig < 0)
		return -errno;
	ret = zc_netns_dummy(65535, true, why);
	if (!ret) {
		sh->dummy_ns = open("/proc/thread-self/ns/net",
				    O_RDONLY | O_CLOEXEC);
		if (sh->dummy_ns < 0) {
			ret = -errno;
			*why = "open the new namespace";
		}
	}
	if (setns(orig, CLONE_NEWNET)) {
		ret = -errno;
		*why = "setns back to the first namespace";
	}
	close(orig);
	return ret;
}

/* Which families reach zcsend_rx; the reason in sh->remote_why if none. */
static void remote_probe(void)
{
	static const char *const peer[] = { "10.77.0.1", "[fd77::1]" };
	static const int fam[] = { AF_INET, AF_INET6 };
	char verdict[64], *note = sh->remote_note;
	size_t used = 0;
	int i, ret, fd;

	if (!if_nametoindex("eth0")) {
		snprintf(sh->remote_why, sizeof(sh->remote_why),
			 "no eth0: the runner has no tap network");
		return;
	}
	for (i = 0; i < 2; i++) {
		ret = remote_connect(fam[i], &fd);
		if (!ret) {
			ret = remote_verdict(fd, verdict, sizeof(verdict));
			close(fd);
			if (!ret && strcmp(verdict, "OK 0\n"))
				ret = -EPROTO;
		}
		sh->remote[i] = !ret;
		if (ret && used < sizeof(sh->remote_note))
			used += snprintf(note + used,
					 sizeof(sh->remote_note) - used,
					 "%s%s port %d: %s", used ? "; " : "",
					 peer[i], REMOTE_PORT, strerror(-ret));
	}
	if (!sh->remote[0] && !sh->remote[1])
		snprintf(sh->remote_why, sizeof(sh->remote_why),
			 "zcsend_rx unreachable: %s", note);
}

static const uint8_t *pattern_map(size_t shift)
{
	size_t len = STREAM_MAX + shift;
	uint8_t *p;

	/* Shared: not copied into the worker processes at fork. */
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	zc_pattern_fill(p + shift, STREAM_MAX, ZC_PATTERN_SEED, 0);
	if (mprotect(p, len, PROT_READ)) {
		munmap(p, len);
		return NULL;
	}
	return p + shift;
}

FIXTURE(soak) {
	int sentinel;
};

FIXTURE_SETUP(soak)
{
	self->sentinel = -1;
}

FIXTURE_TEARDOWN(soak)
{
	if (self->sentinel >= 0)
		close(self->sentinel);
	/* Leave the module loaded for whatever runs next. */
	if (!zc_module_loaded() && sh->params[0] &&
	    !access(zc_ko_path(), R_OK)) {
		EXPECT_EQ(0, zc_module_load(sh->params));
		zc_wait_dev(true, 5000);
	}
}

TEST_F(soak, run)
{
	static const int tkinds[] = { LOOP, UDP, REMOTE };
	static const int pkinds[] = { LOOP, REMOTE, UDP };
	uint64_t sum[8] = { 0 }, rmmods = 0, rmmod_bad = 0, kills = 0;
	uint64_t killed_out = 0, rng = sh->seed | 1, out = 0;
	int nw = sh->threads + sh->procs, i, id = 0, ret, status;
	struct worker *ws = NULL;
	struct zcsend_stats st;
	struct timespec ts;
	int64_t pins, start, end, now;
	const char *why;

	if (geteuid())
		SKIP(return, "needs root: network namespace, delete_module");
	ASSERT_TRUE(zc_module_loaded()) TH_LOG("zcsend is not loaded");
	self->sentinel = zc_open();
	ASSERT_LE(0, self->sentinel) TH_LOG("open %s: %s", ZCSEND_DEVICE,
					    strerror(errno));
	ASSERT_EQ(0, zc_stats(self->sentinel, &st));
	sh->thr = st.copy_threshold;
	ASSERT_EQ(0, soak_params(sh->thr));

	ret = dummy_setup(&why);
	if (ret == -EPERM || ret == -EACCES)
		SKIP(return, "%s: %s", why, strerror(-ret));
	if (ret == -EOPNOTSUPP && !strncmp(why, "ip link add", 11))
		SKIP(return, "no dummy device (CONFIG_DUMMY)");
	ASSERT_EQ(0, ret) TH_LOG("%s: %s", why, strerror(-ret));
	sh->loop6 = zc_family_ok(AF_INET6);
	remote_probe();
	if (sh->remote_why[0])
		TH_LOG("remote part not run: %s", sh->remote_why);
	else if (sh->remote_note[0])
		TH_LOG("remote over one family only: %s", sh->remote_note);
	pat_a = pattern_map(0);
	pat_b = pattern_map(B_SHIFT);
	ASSERT_TRUE(pat_a && pat_b);

	for (i = 0, ret = 0; i < nw; i++) {
		struct wstat *s = &sh->w[i];

		s->proc = i >= sh->threads;
		s->kind = s->proc ? pkinds[(i - sh->threads) % 3] :
				    tkinds[i % 3];
		if (s->kind == REMOTE && sh->remote_why[0])
			s->kind = LOOP;
		ret += s->kind == REMOTE;
	}
	if (!ret && !sh->remote_why[0])
		snprintf(sh->remote_why, sizeof(sh->remote_why),
			 "no remote worker (ZCSEND_SOAK_THREADS/PROCS)");
	TH_LOG("seed %#llx (ZCSEND_SOAK_SEED), %d s, %d threads, %d processes, copy_threshold %llu",
	       ULL(sh->seed), sh->secs, sh->threads, sh->procs, ULL(sh->thr));

	pins = zc_pins_outstanding();
	signal(SIGALRM, on_alarm);
	alarm(sh->secs + 300);
	start = zc_now_ms();
	sh->deadline = start + sh->secs * 1000LL;
	ws = calloc(sh->threads, sizeof(*ws));
	ASSERT_NE(NULL, ws);
	for (i = 0; i < sh->threads; i++) {
		worker_init(&ws[i], i);
		ASSERT_EQ(0, pthread_create(&ws[i].th, NULL, worker_thread,
					    &ws[i]));
	}
	for (i = sh->threads; i < nw; i++) {
		sh->w[i].pid = spawn(i);
		ASSERT_LT(0, sh->w[i].pid) TH_LOG("fork: %s", strerror(errno));
	}

	/* Faults from outside the workers, until the deadline. */
	while ((now = zc_now_ms()) < sh->deadline) {
		rng = zc_pattern_word(rng, now);
		zc_msleep(100 + rng % 900);
		if (rng >> 32 & 1) {
			rmmods++;
			ret = zc_module_unload();
			if (ret == -EAGAIN || ret == -EBUSY)
				continue;
			rmmod_bad++;
			TH_LOG("delete_module with files open: %s",
			       ret ? strerror(-ret) : "unloaded");
			if (!ret)
				ASSERT_EQ(0, zc_module_load(sh->params));
			continue;
		}
		if (!sh->procs)
			continue;
		/* Kill a worker process while it has sends outstanding. */
		for (end = zc_now_ms() + 1000; zc_now_ms() < end; zc_msleep(1)) {
			rng = zc_pattern_word(rng, end);
			id = sh->threads + (rng >> 40) % sh->procs;
			out = __atomic_load_n(&sh->w[id].outstanding,
					      __ATOMIC_RELAXED);
			if (out)
				break;
		}
		if (!out)
			continue;
		killed_out += out;
		ASSERT_EQ(0, kill(sh->w[id].pid, SIGKILL));
		ASSERT_EQ(0, wait_child(sh->w[id].pid, &status,
					zc_now_ms() + 10000))
			TH_LOG("worker %d did not die of SIGKILL", id);
		EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
			TH_LOG("worker %d: status %#x", id, status);
		kills++;
		sh->w[id].pid = spawn(id);
		ASSERT_LT(0, sh->w[id].pid) TH_LOG("fork: %s", strerror(errno));
	}

	/* The workers finish: last socket closed, last file drained. */
	__atomic_store_n(&sh->stop, 1, __ATOMIC_RELAXED);
	end = zc_now_ms() + JOIN_MS;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += JOIN_MS / 1000;
	for (i = 0; i < sh->threads; i++) {
		ret = pthread_timedjoin_np(ws[i].th, NULL, &ts);
		ASSERT_EQ(0, ret) TH_LOG("worker thread %d: %s", i,
					 strerror(ret));
	}
	for (i = sh->threads; i < nw; i++) {
		ret = wait_child(sh->w[i].pid, &status, end);
		if (ret == -ETIMEDOUT) {
			kill(sh->w[i].pid, SIGKILL);
			wait_child(sh->w[i].pid, &status, zc_now_ms() + 10000);
		}
		EXPECT_EQ(0, ret) TH_LOG("worker process %d did not finish", i);
		EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
			TH_LOG("worker process %d: status %#x", i, status);
	}
	now = zc_now_ms();

	for (i = 0; i < nw; i++) {
		struct wstat *s = &sh->w[i];

		TH_LOG("worker %d (%s, %s): %llu sends, %llu connections, EAGAIN %llu EBUSY %llu ENOBUFS %llu, %llu failures",
		       i, kind_name[s->kind], s->proc ? "process" : "thread",
		       ULL(s->sends), ULL(s->conns), ULL(s->eagain),
		       ULL(s->ebusy), ULL(s->enobufs), ULL(s->fails));
		EXPECT_EQ(0, s->fails);
		EXPECT_TRUE(s->done) TH_LOG("worker %d did not finish", i);
		sum[0] += s->sends;
		sum[1] += s->bytes;
		sum[2] += s->compls;
		sum[3] += s->zerocopy;
		sum[4] += s->sock_closes;
		sum[5] += s->file_closes;
		sum[6] += s->drained;
		sum[7] += s->abandoned;
		if (s->kind == LOOP && !s->proc)
			EXPECT_LT(0, s->verified)
				TH_LOG("worker %d: no loopback stream verified", i);
	}
	TH_LOG("duration %.1f s: %llu sends, %llu bytes, %llu completions (%llu zerocopy)",
	       (now - start) / 1000.0, ULL(sum[0]), ULL(sum[1]), ULL(sum[2]),
	       ULL(sum[3]));
	TH_LOG("closes: %llu sockets, %llu files (%llu drained and checked, %llu records abandoned unread)",
	       ULL(sum[4]), ULL(sum[5]), ULL(sum[6]), ULL(sum[7]));
	TH_LOG("kills: %llu (%llu sends outstanding); rmmod attempts: %llu, %llu not refused",
	       ULL(kills), ULL(killed_out), ULL(rmmods), ULL(rmmod_bad));
	EXPECT_EQ(0, rmmod_bad);
	EXPECT_LT(0, sum[0]) TH_LOG("nothing was sent");
	EXPECT_TRUE(zc_module_loaded());

	/* Global invariants, also for the killed workers. */
	zc_expect_idle_stats(_metadata, self->sentinel, 0, 0, 0);
	close(self->sentinel);
	self->sentinel = zc_open();
	ASSERT_LE(0, self->sentinel);
	zc_expect_idle_stats(_metadata, self->sentinel, 0, 0, 0);
	close(self->sentinel);
	self->sentinel = -1;
	EXPECT_EQ(pins, zc_wait_pins(pins, DRAIN_MS))
		TH_LOG("pins outstanding: %" PRId64 " before the soak",
		       pins);
	alarm(0);
	free(ws);
	sh->ran = 1;
}

/* The remote part of soak.run: zcsend_rx's verdicts. */
TEST_F(soak, remote)
{
	if (!sh->ran)
		SKIP(return, "soak.run did not complete");
	if (sh->remote_why[0])
		SKIP(return, "%s", sh->remote_why);
	TH_LOG("%llu connections: %llu verified OK, %llu reset; %llu failures",
	       ULL(sh->remote_conns), ULL(sh->remote_ok),
	       ULL(sh->remote_rst), ULL(sh->remote_fail));
	EXPECT_EQ(0, sh->remote_fail);
	EXPECT_LT(0, sh->remote_ok) TH_LOG("no connection verified by the host");
}

/* Nothing of the soak holds the module: it unloads, and comes back. */
TEST_F(soak, reload)
{
	struct zcsend_stats st;
	uint64_t thr;
	int64_t pins;
	int ret;

	if (geteuid())
		SKIP(return, "needs root for delete_module/finit_module");
	if (access(zc_ko_path(), R_OK))
		SKIP(return, "%s: %s (set ZCSEND_KO)", zc_ko_path(),
		     strerror(errno));
	ASSERT_TRUE(zc_module_loaded()) TH_LOG("zcsend is not loaded");
	thr = zc_copy_threshold();
	ASSERT_EQ(0, soak_params(thr));
	pins = zc_pins_outstanding();
	ret = zc_module_unload_wait(DRAIN_MS);
	if (ret == -EPERM)
		SKIP(return, "delete_module: EPERM");
	ASSERT_EQ(0, ret) TH_LOG("delete_module after the soak: %s",
				 strerror(-ret));
	EXPECT_FALSE(zc_module_loaded());
	EXPECT_TRUE(zc_wait_dev(false, 5000));
	ret = zc_module_load(sh->params);
	ASSERT_EQ(0, ret) TH_LOG("finit_module(%s, \"%s\"): %s", zc_ko_path(),
				 sh->params, strerror(-ret));
	ASSERT_TRUE(zc_wait_dev(true, 5000));
	self->sentinel = zc_open();
	ASSERT_LE(0, self->sentinel);
	ASSERT_EQ(0, zc_stats(self->sentinel, &st));
	EXPECT_EQ(0, st.sends);
	EXPECT_EQ(0, st.inflight);
	EXPECT_EQ(thr, st.copy_threshold);
	TH_LOG("reloaded with \"%s\"", sh->params);
	ZC_EXPECT_PINS_BACK(pins);
}

static long env_long(const char *name, long def, long min, long max)
{
	const char *s = getenv(name);
	char *end;
	long v;

	if (!s || !*s)
		return def;
	v = strtol(s, &end, 0);
	return *end || v < min || v > max ? def : v;
}

/* After the tests are registered: the knobs, and soak.run's timeout. */
static void __attribute__((constructor(KSELFTEST_PRIO_TEST + 10)))
soak_init(void)
{
	const char *seed = getenv("ZCSEND_SOAK_SEED");

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		abort();
	sh->dummy_ns = -1;
	sh->secs = env_long("ZCSEND_SOAK_SECONDS", 60, 1, 24 * 3600);
	sh->threads = env_long("ZCSEND_SOAK_THREADS", 4, 1, MAX_WORKERS);
	sh->procs = env_long("ZCSEND_SOAK_PROCS", 3, 0,
			     MAX_WORKERS - sh->threads);
	sh->seed = seed && *seed ? strtoull(seed, NULL, 0) :
		   (uint64_t)time(NULL) << 20 ^ getpid();
	_soak_run_object->timeout = sh->secs + 420;
}

TEST_HARNESS_MAIN
