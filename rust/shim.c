// SPDX-License-Identifier: GPL-2.0
/*
 * zcsend C shim: static inlines and macros that Rust cannot reach.
 *
 * Nothing here makes a decision; every function is a thin, named wrapper
 * (or, for zcsend_fill_frags(), the composition of skb static inlines that
 * attaches already pinned pages as frags, after io_sg_from_iter() in
 * io_uring/net.c). The logic that uses them lives in rust/ubuf.rs.
 */

#include <linux/bvec.h>
#include <linux/compat.h>
#include <linux/eventfd.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/net.h>
#include <linux/percpu-refcount.h>
#include <linux/rcupdate.h>
#include <linux/sched/signal.h>
#include <linux/sched/user.h>
#include <linux/capability.h>
#include <net/tcp_states.h>
#include <linux/skbuff.h>
#include <linux/uio.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <net/sock.h>

#include "shim.h"

/* rust/net.rs mirrors struct zcsend_frags (FragTemplate). */
static_assert(offsetof(struct zcsend_frags, frags) == 64);

/*
 * The notifier of skb if it has one; else attaches uarg with a new
 * reference (net_zcopy_get() + skb_zcopy_init()) and returns NULL. One
 * call for what link_skb does to every new skb.
 */
struct ubuf_info *zcsend_skb_zcopy_attach(struct sk_buff *skb,
					  struct ubuf_info *uarg)
{
	struct ubuf_info *prev = skb_zcopy(skb);

	if (prev)
		return prev;
	net_zcopy_get(uarg);
	skb_zcopy_init(skb, uarg);
	return NULL;
}

struct workqueue_struct *zcsend_alloc_workqueue(const char *name)
{
	return alloc_workqueue("%s", WQ_UNBOUND | WQ_MEM_RECLAIM, 0, name);
}

bool zcsend_in_compat_syscall(void)
{
	return in_compat_syscall();
}

bool zcsend_kiocb_nowait(const struct kiocb *iocb)
{
	return (iocb->ki_flags & IOCB_NOWAIT) ||
	       (iocb->ki_filp->f_flags & O_NONBLOCK);
}

/*
 * Describe up to MAX_SKB_FRAGS - @frag segments of @left bytes of @from
 * (a bvec iterator, advanced past them) in @frags[@frag..], taking a page
 * reference for each unless @managed; returns the next free frag. A
 * segment at a time (what mp_bvec_iter_bvec() and
 * bvec_iter_advance_single() would give, without their general
 * bookkeeping: this runs once per page of every zero-copy send). Every
 * segment but the first and the last is taken whole, so the loop decides
 * once per frag whether the segment ends the send, and counts the bytes
 * done only at the end.
 */
static __always_inline int zcsend_describe(skb_frag_t *frags, int frag,
					    struct iov_iter *from, size_t left,
					    bool managed, size_t *copied,
					    unsigned long *truesize)
{
	const struct bio_vec *bv = from->bvec;
	size_t skip = from->iov_offset;
	size_t want = left;
	unsigned long ts = 0;

	while (left && frag < MAX_SKB_FRAGS) {
		size_t start = bv->bv_offset + skip;
		size_t len = bv->bv_len - skip;
		struct page *page = bv->bv_page;
		unsigned int off;

		/* One test for 0 < len <= left: left is not 0 here. */
		if (likely(len - 1 < left)) {
			/* The rest of the segment (all of it, but the first). */
			skip = 0;
			bv++;
		} else if (!len) {
			/* An empty segment, or an iterator at a segment's end. */
			skip = 0;
			bv++;
			continue;
		} else {
			/* The send ends inside this segment. */
			len = left;
			skip += len;
		}
		/*
		 * A multi-page segment (a folio) entered part way: start the
		 * frag at the page that holds its first byte, so truesize
		 * counts the pages the frag spans, not the folio before it.
		 */
		page += start >> PAGE_SHIFT;
		off = offset_in_page(start);
		if (!managed)
			get_page(page);
		skb_frag_fill_page_desc(&frags[frag++], page, off, len);
		ts += PAGE_ALIGN(len + off);
		left -= len;
	}
	from->nr_segs -= bv - from->bvec;
	from->bvec = bv;
	from->count -= want - left;
	from->iov_offset = skip;
	*copied = want - left;
	*truesize += ts;
	return frag;
}

void zcsend_frags_build(struct zcsend_frags *t, const struct iov_iter *from)
{
	struct iov_iter it = *from;
	size_t copied;

	t->bvec = from->bvec;
	t->offset = from->iov_offset;
	t->len = from->count;
	t->truesize = 0;
	t->nr = 0;
	if (WARN_ON_ONCE(!iov_iter_is_bvec(from)))
		return;
	t->nr = zcsend_describe(t->frags, 0, &it, it.count, true, &copied,
				&t->truesize);
	if (it.count)
		t->nr = 0;	/* more segments than an skb takes: unusable */
	t->end = it.bvec;
	t->end_offset = it.iov_offset;
	t->end_segs = it.nr_segs;
}

/*
 * to[0..nr) = from[0..nr) in straight-line moves of exactly @nr frags: a
 * memcpy() of the whole array is a rep movsq (under QEMU TCG one block per
 * word, 34 for 17 frags, whatever @nr is) and a loop is a block per frag.
 */
static __always_inline void zcsend_copy_frags(skb_frag_t *to, const skb_frag_t *from,
					      unsigned int nr)
{
#define ZC_FRAG(i) case (i) + 1: to[i] = from[i]; fallthrough
	switch (nr) {
	ZC_FRAG(16); ZC_FRAG(15); ZC_FRAG(14); ZC_FRAG(13);
	ZC_FRAG(12); ZC_FRAG(11); ZC_FRAG(10); ZC_FRAG(9);
	ZC_FRAG(8); ZC_FRAG(7); ZC_FRAG(6); ZC_FRAG(5);
	ZC_FRAG(4); ZC_FRAG(3); ZC_FRAG(2); ZC_FRAG(1);
	ZC_FRAG(0);
	case 0:
		break;
	default:
		/* More than 17 (CONFIG_MAX_SKB_FRAGS above its default). */
		memcpy(to, from, nr * sizeof(*to));
	}
#undef ZC_FRAG
}

/*
 * Attach the pages of a bvec iterator to @skb as frags, without taking page
 * references (SKBFL_MANAGED_FRAG_REFS): the pages stay pinned until the
 * ubuf_info that covers this skb completes. If @skb already carries frags
 * that hold their own references (TCP appended copied data to it), each new
 * frag takes a page reference too, so the skb stays consistent. @t, if not
 * NULL, describes @from already (zcsend_frags_build()): an skb without frags
 * that takes all of it gets a copy of its frags.
 */
int zcsend_fill_frags(struct sk_buff *skb, struct iov_iter *from, size_t length,
		      const struct zcsend_frags *t)
{
	struct skb_shared_info *shinfo = skb_shinfo(skb);
	size_t want = min(from->count, length);
	int frag = shinfo->nr_frags;
	unsigned long truesize = 0;
	size_t copied;
	bool managed;

	if (WARN_ON_ONCE(!iov_iter_is_bvec(from)))
		return -EFAULT;

	if (!frag)
		shinfo->flags |= SKBFL_MANAGED_FRAG_REFS;
	managed = skb_zcopy_managed(skb);

	if (t && t->nr && !frag && managed && from->bvec == t->bvec &&
	    from->iov_offset == t->offset && from->count == t->len &&
	    length >= t->len) {
		/*
		 * All of them, built once for every skb of the send: the
		 * template's frags, moved.
		 */
		zcsend_copy_frags(shinfo->frags, t->frags, t->nr);
		frag = t->nr;
		copied = t->len;
		truesize = t->truesize;
		from->bvec = t->end;
		from->iov_offset = t->end_offset;
		from->nr_segs = t->end_segs;
		from->count = 0;
	} else {
		/* Unswitched: @managed tested once, not per frag. */
		if (managed)
			frag = zcsend_describe(shinfo->frags, frag, from, want,
					       true, &copied, &truesize);
		else
			frag = zcsend_describe(shinfo->frags, frag, from, want,
					       false, &copied, &truesize);
	}
	shinfo->nr_frags = frag;
	skb->data_len += copied;
	skb->len += copied;
	skb->truesize += truesize;
	return copied < want ? -EMSGSIZE : 0;
}

/* The ZCSEND_SK_* bits that change over a socket's life: ZC, ESTABLISHED, LOCAL. */
static __always_inline unsigned int __zcsend_sock_state(struct socket *sock)
{
	struct sock *sk = sock->sk;
	struct dst_entry *dst;
	unsigned int k = 0;
	int state;

	if (test_bit(SOCK_SUPPORT_ZC, &sock->flags))
		k |= ZCSEND_SK_ZC;
	state = READ_ONCE(sk->sk_state);
	if (state == TCP_ESTABLISHED || state == TCP_CLOSE_WAIT)
		k |= ZCSEND_SK_ESTABLISHED;
	rcu_read_lock();
	dst = rcu_dereference(sk->sk_dst_cache);
	if (dst && dst->dev && (READ_ONCE(dst->dev->flags) & IFF_LOOPBACK))
		k |= ZCSEND_SK_LOCAL;
	rcu_read_unlock();
	return k;
}

/*
 * The socket of @file (sock_from_file(); NULL if it is none), and in *@kind
 * the ZCSEND_SK_* facts about it, read in one call (struct sock is opaque
 * to Rust's bindings): the family is IPv4/IPv6, the transport TCP or UDP;
 * ZC: the socket may carry zero-copy frags (SOCK_SUPPORT_ZC: a ULP such as
 * kTLS, or a sockmap, clears it); ESTABLISHED: a TCP socket that can send
 * data segments now (not a Fast Open SYN whose data the stack copies);
 * LOCAL: its cached route goes out a loopback device (a loopback or local
 * address: local delivery, where skb_orphan_frags_rx() copies every frag
 * anyway; only a connected socket has a cached route).
 */
struct socket *zcsend_sock_lookup(struct file *file, unsigned int *kind)
{
	struct socket *sock = sock_from_file(file);
	struct sock *sk;
	unsigned int k = 0;

	*kind = 0;
	if (!sock)
		return NULL;
	sk = sock->sk;
	if (sk->sk_family == AF_INET || sk->sk_family == AF_INET6)
		k |= ZCSEND_SK_INET;
	if (sock->type == SOCK_STREAM && sk->sk_protocol == IPPROTO_TCP)
		k |= ZCSEND_SK_TCP;
	if (sock->type == SOCK_DGRAM && sk->sk_protocol == IPPROTO_UDP)
		k |= ZCSEND_SK_UDP;
	*kind = k | __zcsend_sock_state(sock);
	return sock;
}

/*
 * zcsend_sock_lookup()'s state bits alone, for a socket already known to be
 * an IPv4/IPv6 TCP or UDP one (a registered socket: none of that changes;
 * IPV6_ADDRFORM turns IPv6 into IPv4, still INET).
 */
unsigned int zcsend_sock_state(struct socket *sock)
{
	return __zcsend_sock_state(sock);
}

/*
 * RLIMIT_MEMLOCK charge of exactly @nr pages to the current user, as
 * mm_account_pinned_pages() does for MSG_ZEROCOPY but without its
 * "(bytes >> PAGE_SHIFT) + 2" estimate: the caller charges the pages it pins.
 * On success *@user holds a reference on the user charged (NULL: exempt,
 * CAP_IPC_LOCK or no limit, nothing to give back).
 */
int zcsend_account_pinned(struct user_struct **user, unsigned long nr)
{
	unsigned long max_pg, old_pg, new_pg, rlim;
	struct user_struct *u;

	*user = NULL;
	if (!nr || capable(CAP_IPC_LOCK))
		return 0;
	rlim = rlimit(RLIMIT_MEMLOCK);
	if (rlim == RLIM_INFINITY)
		return 0;
	max_pg = rlim >> PAGE_SHIFT;
	u = current_user();
	old_pg = atomic_long_read(&u->locked_vm);
	do {
		new_pg = old_pg + nr;
		if (new_pg < old_pg || new_pg > max_pg)
			return -ENOBUFS;
	} while (!atomic_long_try_cmpxchg(&u->locked_vm, &old_pg, new_pg));
	*user = get_uid(u);
	return 0;
}

/* Gives back @nr pages of a charge taken by zcsend_account_pinned(). */
void zcsend_unaccount_pinned(struct user_struct *user, unsigned long nr)
{
	atomic_long_sub(nr, &user->locked_vm);
}

/*
 * The calling task's RLIMIT_NOFILE: the most sockets one table may hold, as
 * io_uring bounds its registered files (a registered socket outlives its
 * descriptor).
 */
unsigned long zcsend_nofile_limit(void)
{
	return rlimit(RLIMIT_NOFILE);
}

/* Drops the user reference of a charge (after its last unaccount). */
void zcsend_put_user(struct user_struct *user)
{
	free_uid(user);
}

/*
 * Publishes @fops as @misc's file operations with release ordering: a CPU
 * that sees the new pointer sees the table's contents.
 */
void zcsend_publish_fops(struct miscdevice *misc, const struct file_operations *fops)
{
	/* Pairs with the dependent load of misc->fops in misc_open(). */
	smp_store_release(&misc->fops, fops);
}

void zcsend_synchronize_rcu_tasks(void)
{
	synchronize_rcu_tasks();
}

/*
 * Whether pinned page @next directly follows @prev inside the same folio, so
 * that one multi-page bio_vec (and one skb frag) can cover both.
 */
bool zcsend_folio_next(struct page *prev, struct page *next)
{
	return page_folio(prev) == page_folio(next) && next == prev + 1;
}

void zcsend_waitq_init(struct wait_queue_head *wq)
{
	init_waitqueue_head(wq);
}

/*
 * A compound page of 2^@order pages, charged to the caller's memory cgroup;
 * above order 0 it fails fast (no reclaim retries, no warning): the caller
 * falls back to smaller chunks.
 */
struct page *zcsend_alloc_chunk(unsigned int order)
{
	gfp_t gfp = GFP_KERNEL_ACCOUNT;

	if (order)
		gfp |= __GFP_COMP | __GFP_NOWARN | __GFP_NORETRY;
	return alloc_pages(gfp, order);
}

void zcsend_free_chunk(struct page *page, unsigned int order)
{
	__free_pages(page, order);
}

/* Wakes every waiter of @wq (the caller saw one: rust/wait.rs). */
void zcsend_waitq_wake_all(struct wait_queue_head *wq)
{
	wake_up_interruptible_all(wq);
}

int zcsend_waitq_wait(struct wait_queue_head *wq, bool (*cond)(void *), void *arg)
{
	return wait_event_interruptible(*wq, cond(arg));
}

/*
 * Whether a completion may finish here rather than on the workqueue: not in
 * hard IRQ or NMI, interrupts on, and either atomic through softirq (where
 * vfree() defers) or preemptible (where it may sleep).
 */
bool zcsend_can_complete_inline(void)
{
	/*
	 * preemptible() is not enough: under PREEMPT_RCU an RCU read-side
	 * section (nf_hook() freeing a dropped skb) leaves preemption on.
	 */
	return !in_hardirq() && !in_nmi() && !irqs_disabled() &&
	       (in_interrupt() || (preemptible() && !rcu_preempt_depth()));
}

/*
 * Between the sends of one long system call (a batch, a fan-out's
 * destinations), as __sys_sendmmsg() does per message: a scheduling point
 * (on kernels without full preemption), and whether the task was killed
 * (then the call stops where it is).
 */
bool zcsend_resched_or_killed(void)
{
	cond_resched();
	return fatal_signal_pending(current);
}

void zcsend_eventfd_signal_rcu(struct eventfd_ctx **slot)
{
	struct eventfd_ctx *ctx;

	rcu_read_lock();
	ctx = rcu_dereference(*(struct eventfd_ctx __rcu **)slot);
	if (ctx)
		eventfd_signal(ctx);
	rcu_read_unlock();
}

/*
 * Installs @new (may be NULL) and returns the previous eventfd, which the
 * caller puts after synchronize_rcu().
 */
struct eventfd_ctx *zcsend_eventfd_swap(struct eventfd_ctx **slot, struct eventfd_ctx *new)
{
	return unrcu_pointer(xchg((struct eventfd_ctx __rcu **)slot, RCU_INITIALIZER(new)));
}

void *zcsend_page_address(struct page *page)
{
	return page_address(page);
}

/*
 * A file's sends in flight (rust/inflight.rs): a percpu_ref, per CPU while
 * the file is open (no atomic per send), atomic once it is closed; when the
 * last reference of a closed file goes, @idle gets back the @owner that
 * zcsend_inflight_close() left.
 */
struct zcsend_inflight {
	struct percpu_ref ref;
	void *owner;
	void (*idle)(void *owner);
};

static void zcsend_inflight_release(struct percpu_ref *ref)
{
	struct zcsend_inflight *i = container_of(ref, struct zcsend_inflight, ref);

	i->idle(i->owner);
}

struct zcsend_inflight *zcsend_inflight_new(void (*idle)(void *owner))
{
	struct zcsend_inflight *i = kzalloc(sizeof(*i), GFP_KERNEL_ACCOUNT);

	if (!i)
		return NULL;
	i->idle = idle;
	if (percpu_ref_init(&i->ref, zcsend_inflight_release, 0,
			    GFP_KERNEL_ACCOUNT)) {
		kfree(i);
		return NULL;
	}
	return i;
}

bool zcsend_inflight_tryget(struct zcsend_inflight *i)
{
	return percpu_ref_tryget_live(&i->ref);
}

void zcsend_inflight_put(struct zcsend_inflight *i)
{
	percpu_ref_put(&i->ref);
}

void zcsend_inflight_close(struct zcsend_inflight *i, void *owner)
{
	i->owner = owner;
	percpu_ref_kill(&i->ref);
}

void zcsend_inflight_free(struct zcsend_inflight *i)
{
	percpu_ref_exit(&i->ref);
	kfree(i);
}
