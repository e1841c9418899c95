/* SPDX-License-Identifier: GPL-2.0 */
/*
 * zcsend tracepoints: `perf record -e 'zcsend:*'`, bpftrace
 * `tracepoint:zcsend:*`, or /sys/kernel/tracing/events/zcsend/.
 * Fired from Rust through the wrappers in rust/trace.c.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM zcsend

#if !defined(_ZCSEND_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _ZCSEND_TRACE_H

#include <linux/tracepoint.h>

/* How a send left: enum zcsend_path in rust/trace.rs mirrors these. */
#define ZCSEND_PATHS						\
	EM(0, "zerocopy")					\
	EM(1, "fixed")						\
	EM(2, "copy_threshold")					\
	EM(3, "frag_limit")					\
	EM(4, "unsupported_socket")				\
	EMe(5, "local")

#undef EM
#undef EMe
#define EM(a, b)	{ a, b },
#define EMe(a, b)	{ a, b }

TRACE_EVENT(zcsend_send,
	TP_PROTO(u64 user_data, s64 result, u32 bytes_asked, u32 pages,
		 u32 frags, u32 path),
	TP_ARGS(user_data, result, bytes_asked, pages, frags, path),
	TP_STRUCT__entry(
		__field(u64, user_data)
		__field(s64, result)
		__field(u32, bytes_asked)
		__field(u32, pages)
		__field(u32, frags)
		__field(u32, path)
	),
	TP_fast_assign(
		__entry->user_data = user_data;
		__entry->result = result;
		__entry->bytes_asked = bytes_asked;
		__entry->pages = pages;
		__entry->frags = frags;
		__entry->path = path;
	),
	TP_printk("user_data=%llu result=%lld bytes=%u pages=%u frags=%u path=%s",
		  __entry->user_data, __entry->result, __entry->bytes_asked,
		  __entry->pages, __entry->frags,
		  __print_symbolic(__entry->path, ZCSEND_PATHS))
);

TRACE_EVENT(zcsend_complete,
	TP_PROTO(u64 user_data, u64 bytes, u32 flags, u64 latency_ns,
		 u32 chain_len),
	TP_ARGS(user_data, bytes, flags, latency_ns, chain_len),
	TP_STRUCT__entry(
		__field(u64, user_data)
		__field(u64, bytes)
		__field(u64, latency_ns)
		__field(u32, flags)
		__field(u32, chain_len)
	),
	TP_fast_assign(
		__entry->user_data = user_data;
		__entry->bytes = bytes;
		__entry->latency_ns = latency_ns;
		__entry->flags = flags;
		__entry->chain_len = chain_len;
	),
	TP_printk("user_data=%llu bytes=%llu flags=%s%s%s%s%s latency_ns=%llu chain_len=%u",
		  __entry->user_data, __entry->bytes,
		  (__entry->flags & 1) ? "ZEROCOPY" : "",
		  (__entry->flags & 2) ? "COPIED" : "",
		  (__entry->flags & 4) ? "|COPY_PATH" : "",
		  (__entry->flags & 8) ? "|FANOUT" : "",
		  (__entry->flags & 16) ? "|STABLE" : "",
		  __entry->latency_ns, __entry->chain_len)
);

TRACE_EVENT(zcsend_register,
	TP_PROTO(u32 buffers, u64 pages, u64 segments),
	TP_ARGS(buffers, pages, segments),
	TP_STRUCT__entry(
		__field(u32, buffers)
		__field(u64, pages)
		__field(u64, segments)
	),
	TP_fast_assign(
		__entry->buffers = buffers;
		__entry->pages = pages;
		__entry->segments = segments;
	),
	TP_printk("buffers=%u pages=%llu segments=%llu",
		  __entry->buffers, __entry->pages, __entry->segments)
);

TRACE_EVENT(zcsend_fanout,
	TP_PROTO(u64 user_data, u32 dests, u32 ok, u64 bytes, bool stable),
	TP_ARGS(user_data, dests, ok, bytes, stable),
	TP_STRUCT__entry(
		__field(u64, user_data)
		__field(u64, bytes)
		__field(u32, dests)
		__field(u32, ok)
		__field(bool, stable)
	),
	TP_fast_assign(
		__entry->user_data = user_data;
		__entry->bytes = bytes;
		__entry->dests = dests;
		__entry->ok = ok;
		__entry->stable = stable;
	),
	TP_printk("user_data=%llu dests=%u ok=%u bytes=%llu stable=%d",
		  __entry->user_data, __entry->dests, __entry->ok,
		  __entry->bytes, __entry->stable)
);

#endif /* _ZCSEND_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE zcsend_trace
#include <trace/define_trace.h>
