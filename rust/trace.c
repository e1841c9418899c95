// SPDX-License-Identifier: GPL-2.0
/*
 * zcsend's tracepoints and its debugfs counters, called from rust/trace.rs.
 *
 * Counters are per CPU (no shared cache line on the send path) and summed
 * when /sys/kernel/debug/zcsend/stats is read, so the gauges (pinned_pages,
 * inflight) are exact only when nothing is in motion.
 */

#include <linux/debugfs.h>
#include <linux/percpu.h>
#include <linux/seq_file.h>
#include <linux/timekeeping.h>

#define CREATE_TRACE_POINTS
#include "zcsend_trace.h"

#include "shim.h"

/* In enum zcsend_counter's order (shim.h). */
static const char *const zcsend_counter_names[ZCSEND_NR_COUNTERS] = {
	"sends", "bytes", "zerocopy", "copied", "fallback_threshold",
	"fallback_frag_limit", "fallback_socket", "pinned_pages", "inflight",
	"chain_cap_hits", "linked", "fanouts", "fanout_dests", "registered_pages",
	"fallback_local",
};

struct zcsend_counters {
	s64 v[ZCSEND_NR_COUNTERS];
};

static DEFINE_PER_CPU(struct zcsend_counters, zcsend_counters);
static struct dentry *zcsend_debugfs;

void zcsend_count(unsigned int idx, s64 delta)
{
	if (idx < ZCSEND_NR_COUNTERS)
		this_cpu_add(zcsend_counters.v[idx], delta);
}

static int zcsend_stats_show(struct seq_file *m, void *unused)
{
	unsigned int i;
	int cpu;

	for (i = 0; i < ZCSEND_NR_COUNTERS; i++) {
		s64 sum = 0;

		for_each_possible_cpu(cpu)
			sum += per_cpu(zcsend_counters.v[i], cpu);
		seq_printf(m, "%s %lld\n", zcsend_counter_names[i], sum);
	}
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(zcsend_stats);

void zcsend_debugfs_init(void)
{
	if (zcsend_debugfs)
		return;
	/* debugfs is optional: errors are ignored, as debugfs users do. */
	zcsend_debugfs = debugfs_create_dir("zcsend", NULL);
	debugfs_create_file("stats", 0444, zcsend_debugfs, NULL,
			    &zcsend_stats_fops);
}

void zcsend_debugfs_exit(void)
{
	debugfs_remove(zcsend_debugfs);
	zcsend_debugfs = NULL;
}

/*
 * A send took a completion slot: it is in flight. Returns the time to
 * measure its completion latency from, or 0 when nobody traces completions
 * (no clock read on the fast path).
 */
u64 zcsend_note_reserve(void)
{
	this_cpu_inc(zcsend_counters.v[ZCSEND_C_INFLIGHT]);
	return trace_zcsend_complete_enabled() ? ktime_get_ns() : 0;
}

/*
 * A record is about to be posted: every module-wide counter it moves and
 * the zcsend_complete event, in one call (the completion runs once per
 * send, and a call out of Rust is not free).
 */
void zcsend_note_post(u64 user_data, u64 bytes, u32 flags, u64 stamp,
		      u32 chain_len, u64 pinned_pages, bool linked,
		      bool zerocopy)
{
	this_cpu_inc(zcsend_counters.v[ZCSEND_C_SENDS]);
	this_cpu_add(zcsend_counters.v[ZCSEND_C_BYTES], bytes);
	this_cpu_inc(zcsend_counters.v[zerocopy ? ZCSEND_C_ZEROCOPY :
						 ZCSEND_C_COPIED]);
	if (linked)
		this_cpu_inc(zcsend_counters.v[ZCSEND_C_LINKED]);
	if (pinned_pages)
		this_cpu_sub(zcsend_counters.v[ZCSEND_C_PINNED_PAGES],
			     pinned_pages);
	this_cpu_dec(zcsend_counters.v[ZCSEND_C_INFLIGHT]);
	if (trace_zcsend_complete_enabled())
		trace_zcsend_complete(user_data, bytes, flags,
				      stamp ? ktime_get_ns() - stamp : 0,
				      chain_len);
}

void zcsend_trace_send(u64 user_data, s64 result, u32 bytes, u32 pages,
		       u32 frags, u32 path)
{
	trace_zcsend_send(user_data, result, bytes, pages, frags, path);
}

void zcsend_trace_register(u32 buffers, u64 pages, u64 segments)
{
	trace_zcsend_register(buffers, pages, segments);
}

void zcsend_trace_fanout(u64 user_data, u32 dests, u32 ok, u64 bytes,
			 bool stable)
{
	trace_zcsend_fanout(user_data, dests, ok, bytes, stable);
}
