// SPDX-License-Identifier: GPL-2.0
/*
 * zcsend's tracepoints and its debugfs counters, called from rust/trace.rs.
 *
 * Counters are per CPU (no shared cache line on the send path) and summed
 * when /sys/kernel/debug/zcsend/stats is read, so the gauges (pinned_pages,
 * inflight) are exact only when nothing is in motion.
 */

#include <linux/debugfs.h>
#include <linux/math64.h>
#include <linux/sched/clock.h>
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

/*
 * The stage profile (a module built with ZCSEND_STAGES=1): where a send's
 * time goes, stage by stage, in clock ticks (TSC cycles on x86, else ns)
 * summed per CPU. /sys/kernel/debug/zcsend/stages shows, per stage, how
 * often it ran, its total and its mean; writing to it starts a new sum.
 * Without ZCSEND_STAGES none of this exists and the Rust marks compile to
 * nothing.
 */
#ifdef ZCSEND_STAGES
/* In enum zcsend_stage's order (shim.h). */
static const char *const zcsend_stage_names[ZCSEND_NR_STAGES] = {
	"entry", "resolve", "socket", "reserve", "pin", "notif",
	"msghdr", "sendmsg", "result", "release", "chain_task",
	"chain_softirq", "post",
};

struct zcsend_stage_sums {
	u64 ticks[ZCSEND_NR_STAGES];
	u64 count[ZCSEND_NR_STAGES];
};

static DEFINE_PER_CPU(struct zcsend_stage_sums, zcsend_stage_sums);

u64 zcsend_stage_now(void)
{
#ifdef CONFIG_X86
	return rdtsc_ordered();
#else
	return local_clock();
#endif
}

void zcsend_stage_add(unsigned int idx, u64 ticks)
{
	if (idx < ZCSEND_NR_STAGES) {
		this_cpu_add(zcsend_stage_sums.ticks[idx], ticks);
		this_cpu_inc(zcsend_stage_sums.count[idx]);
	}
}

bool zcsend_in_task(void)
{
	return in_task();
}

static int zcsend_stages_show(struct seq_file *m, void *unused)
{
	unsigned int i;
	int cpu;

	seq_printf(m, "# stage count ticks mean (%s)\n",
		   IS_ENABLED(CONFIG_X86) ? "TSC cycles" : "ns");
	for (i = 0; i < ZCSEND_NR_STAGES; i++) {
		u64 t = 0, n = 0;

		for_each_possible_cpu(cpu) {
			t += per_cpu(zcsend_stage_sums.ticks[i], cpu);
			n += per_cpu(zcsend_stage_sums.count[i], cpu);
		}
		seq_printf(m, "%s %llu %llu %llu\n", zcsend_stage_names[i], n, t,
			   n ? div64_u64(t, n) : 0);
	}
	return 0;
}

static int zcsend_stages_open(struct inode *inode, struct file *file)
{
	return single_open(file, zcsend_stages_show, NULL);
}

/* Any write starts a new sum (racy against sends in flight: a profile). */
static ssize_t zcsend_stages_write(struct file *file, const char __user *buf,
				   size_t len, loff_t *ppos)
{
	int cpu;

	for_each_possible_cpu(cpu)
		memset(per_cpu_ptr(&zcsend_stage_sums, cpu), 0,
		       sizeof(struct zcsend_stage_sums));
	return len;
}

static const struct file_operations zcsend_stages_fops = {
	.owner = THIS_MODULE,
	.open = zcsend_stages_open,
	.read = seq_read,
	.write = zcsend_stages_write,
	.llseek = seq_lseek,
	.release = single_release,
};
#endif /* ZCSEND_STAGES */

void zcsend_debugfs_init(void)
{
	if (zcsend_debugfs)
		return;
	/* debugfs is optional: errors are ignored, as debugfs users do. */
	zcsend_debugfs = debugfs_create_dir("zcsend", NULL);
	debugfs_create_file("stats", 0444, zcsend_debugfs, NULL,
			    &zcsend_stats_fops);
#ifdef ZCSEND_STAGES
	debugfs_create_file("stages", 0600, zcsend_debugfs, NULL,
			    &zcsend_stages_fops);
#endif
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
