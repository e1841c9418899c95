/* SPDX-License-Identifier: GPL-2.0 */
/*
 * zcsend C shim: prototypes of the functions rust/ calls through its own
 * extern "C" blocks (rust/net.rs, rust/ubuf.rs, rust/wq.rs, ...).
 */
#ifndef ZCSEND_SHIM_H
#define ZCSEND_SHIM_H

#include <linux/skbuff.h>
#include <linux/types.h>

struct eventfd_ctx;
struct iov_iter;
struct file_operations;
struct kiocb;
struct miscdevice;
struct page;
struct sk_buff;
struct socket;
struct ubuf_info;
struct user_struct;
struct workqueue_struct;

struct ubuf_info *zcsend_skb_zcopy_attach(struct sk_buff *skb,
					  struct ubuf_info *uarg);
struct workqueue_struct *zcsend_alloc_workqueue(const char *name);
bool zcsend_in_compat_syscall(void);
bool zcsend_kiocb_nowait(const struct kiocb *iocb);
/*
 * The frags of one payload, described once for all its sends (fan-out):
 * the iterator position they start at (@bvec, @offset, @len bytes) and end
 * at; @nr = 0: not usable. Mirrored by FragTemplate in rust/net.rs.
 */
struct zcsend_frags {
	const struct bio_vec *bvec;
	size_t offset;
	size_t len;
	const struct bio_vec *end;
	size_t end_offset;
	unsigned long end_segs;
	unsigned long truesize;
	unsigned int nr;
	skb_frag_t frags[MAX_SKB_FRAGS];
};
void zcsend_frags_build(struct zcsend_frags *t, const struct iov_iter *from);
int zcsend_fill_frags(struct sk_buff *skb, struct iov_iter *from, size_t length,
		      const struct zcsend_frags *t);
/* zcsend_sock_lookup()'s *kind bits; mirrored in rust/ffi.rs. */
#define ZCSEND_SK_INET		0x01
#define ZCSEND_SK_TCP		0x02
#define ZCSEND_SK_UDP		0x04
#define ZCSEND_SK_ZC		0x08
#define ZCSEND_SK_ESTABLISHED	0x10
#define ZCSEND_SK_LOCAL		0x20
struct file;
struct socket *zcsend_sock_lookup(struct file *file, unsigned int *kind);
unsigned int zcsend_sock_state(struct socket *sock);
int zcsend_account_pinned(struct user_struct **user, unsigned long nr);
void zcsend_unaccount_pinned(struct user_struct *user, unsigned long nr);
void zcsend_put_user(struct user_struct *user);
unsigned long zcsend_nofile_limit(void);
void zcsend_publish_fops(struct miscdevice *misc, const struct file_operations *fops);
void zcsend_synchronize_rcu_tasks(void);
bool zcsend_folio_next(struct page *prev, struct page *next);
struct wait_queue_head;
void zcsend_waitq_init(struct wait_queue_head *wq);
void zcsend_waitq_wake_all(struct wait_queue_head *wq);
int zcsend_waitq_wait(struct wait_queue_head *wq, bool (*cond)(void *), void *arg);
bool zcsend_can_complete_inline(void);
bool zcsend_resched_or_killed(void);
void *zcsend_page_address(struct page *page);
struct page *zcsend_alloc_chunk(unsigned int order);
void zcsend_free_chunk(struct page *page, unsigned int order);
void zcsend_eventfd_signal_rcu(struct eventfd_ctx **slot);
struct eventfd_ctx *zcsend_eventfd_swap(struct eventfd_ctx **slot, struct eventfd_ctx *new);
struct zcsend_inflight;
struct zcsend_inflight *zcsend_inflight_new(void (*idle)(void *owner));
bool zcsend_inflight_tryget(struct zcsend_inflight *i);
void zcsend_inflight_put(struct zcsend_inflight *i);
void zcsend_inflight_close(struct zcsend_inflight *i, void *owner);
void zcsend_inflight_free(struct zcsend_inflight *i);

/* rust/trace.c */
/* Mirrors enum Counter in rust/trace.rs. */
enum zcsend_counter {
	ZCSEND_C_SENDS, ZCSEND_C_BYTES, ZCSEND_C_ZEROCOPY, ZCSEND_C_COPIED,
	ZCSEND_C_FALLBACK_THRESHOLD, ZCSEND_C_FALLBACK_FRAG_LIMIT,
	ZCSEND_C_FALLBACK_SOCKET, ZCSEND_C_PINNED_PAGES, ZCSEND_C_INFLIGHT,
	ZCSEND_C_CHAIN_CAP_HITS, ZCSEND_C_LINKED, ZCSEND_C_FANOUTS,
	ZCSEND_C_FANOUT_DESTS, ZCSEND_C_REGISTERED_PAGES, ZCSEND_C_FALLBACK_LOCAL,
	ZCSEND_NR_COUNTERS
};
void zcsend_count(unsigned int idx, s64 delta);
u64 zcsend_note_reserve(void);
void zcsend_note_post(u64 user_data, u64 bytes, u32 flags, u64 stamp,
		      u32 chain_len, u64 pinned_pages, bool linked,
		      bool zerocopy);
/*
 * Mirrors enum Stage in rust/trace.rs. The stage profile exists only in a
 * module built with ZCSEND_STAGES=1 (kbuild -DZCSEND_STAGES, Rust
 * --cfg zcsend_stages).
 */
enum zcsend_stage {
	ZCSEND_S_ENTRY, ZCSEND_S_RESOLVE, ZCSEND_S_SOCKET, ZCSEND_S_RESERVE,
	ZCSEND_S_PIN, ZCSEND_S_NOTIF, ZCSEND_S_MSGHDR,
	ZCSEND_S_SENDMSG, ZCSEND_S_RESULT, ZCSEND_S_RELEASE,
	ZCSEND_S_CHAIN_TASK, ZCSEND_S_CHAIN_SOFTIRQ, ZCSEND_S_POST,
	ZCSEND_NR_STAGES
};
u64 zcsend_stage_now(void);
void zcsend_stage_add(unsigned int idx, u64 ticks);
bool zcsend_in_task(void);
void zcsend_debugfs_init(void);
void zcsend_debugfs_exit(void);
void zcsend_trace_send(u64 user_data, s64 result, u32 bytes, u32 pages,
		       u32 frags, u32 path);
void zcsend_trace_register(u32 buffers, u64 pages, u64 segments);
void zcsend_trace_fanout(u64 user_data, u32 dests, u32 ok, u64 bytes,
			 bool stable);

#endif /* ZCSEND_SHIM_H */
