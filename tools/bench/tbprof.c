// SPDX-License-Identifier: GPL-2.0
/*
 * tbprof: a QEMU TCG plugin that counts, per guest kernel translation block,
 * how often it ran, the guest instructions it executed and the memory
 * accesses they made, between markers the guest sets (BENCH_TBPROF=1, see
 * tools/bench/README.rst).
 *
 * Under TCG a guest instruction costs host instructions, and a memory
 * access costs a softmmu TLB lookup besides: these two counts are what a
 * kernel path costs there, exactly and without the noise of timing. zcbench
 * executes the marker `xchg %bx,%bx` (66 87 db, a no-op) in user space when
 * a cell's timed part starts and when it ends; at every marker the plugin
 * writes the counts since the previous one to OUT.N (N = 1, 2, ...: the
 * even ones are timed parts) as "vaddr insns execs mems atomics" lines
 * (atomics: locked instructions, host atomics under MTTCG) and clears
 * them. tbprof.py maps them to functions.
 *
 * Usage: qemu-system-x86_64 -plugin tbprof.so,out=PREFIX[,lookups=1] ...
 * Built against QEMU 7.2's plugin API (version 1), declared here because
 * Debian ships no qemu-plugin.h.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- QEMU 7.2 plugin API (include/qemu/qemu-plugin.h), as used ---- */
typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef struct qemu_info_t qemu_info_t;
enum qemu_plugin_cb_flags {
	QEMU_PLUGIN_CB_NO_REGS,
	QEMU_PLUGIN_CB_R_REGS,
	QEMU_PLUGIN_CB_RW_REGS,
};
enum qemu_plugin_mem_rw {
	QEMU_PLUGIN_MEM_R = 1,
	QEMU_PLUGIN_MEM_W,
	QEMU_PLUGIN_MEM_RW,
};
enum qemu_plugin_op {
	QEMU_PLUGIN_INLINE_ADD_U64,
};
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
					      void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb,
					  qemu_plugin_vcpu_udata_cb_t cb,
					  enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
					    qemu_plugin_vcpu_udata_cb_t cb,
					    enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_mem_inline(struct qemu_plugin_insn *insn,
					  enum qemu_plugin_mem_rw rw, enum qemu_plugin_op op,
					  void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb,
				    void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

/* ---- the profile ---- */

/* Kernel text (x86-64: the upper half) is counted; user space is not. */
#define KERNEL_START 0xffff800000000000ULL
#define SLOTS (1u << 20)

struct tbcount {
	uint64_t vaddr;		/* 0: free */
	uint64_t insns;		/* guest instructions executed */
	uint64_t execs;		/* runs of a TB starting here */
	uint64_t mems;		/* memory accesses */
	uint64_t atomics;	/* locked instructions (lock prefix, xchg with memory) */
	uint64_t lookups;	/* runs entered through a TB lookup (see below) */
	bool indirect;		/* the block ends with ret or an indirect jump/call */
};

static struct tbcount *table;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char out[4096] = "tbprof";
static unsigned int marks;
static uint64_t translations;	/* kernel TBs translated since the last mark */
static bool full_warned;

/* The entry of @vaddr (created if new), or NULL when the table is full. */
static struct tbcount *lookup(uint64_t vaddr)
{
	uint32_t h = (uint32_t)((vaddr * 0x9e3779b97f4a7c15ULL) >> 44) & (SLOTS - 1);
	unsigned int i;

	for (i = 0; i < SLOTS; i++, h = (h + 1) & (SLOTS - 1)) {
		if (table[h].vaddr == vaddr)
			return &table[h];
		if (!table[h].vaddr) {
			table[h].vaddr = vaddr;
			return &table[h];
		}
	}
	if (!full_warned)
		fprintf(stderr, "tbprof: table full\n");
	full_warned = true;
	return NULL;
}

/* Writes the counts since the previous marker to OUT.N and clears them. */
static void mark(unsigned int vcpu, void *udata)
{
	char path[4200];
	FILE *f;
	unsigned int i;

	(void)vcpu;
	(void)udata;
	pthread_mutex_lock(&lock);
	snprintf(path, sizeof(path), "%s.%u", out, ++marks);
	f = fopen(path, "w");
	if (f)
		fprintf(f, "# translations %" PRIu64 "\n", translations);
	translations = 0;
	for (i = 0; i < SLOTS; i++) {
		struct tbcount *e = &table[i];

		if (!e->vaddr || !e->execs)
			continue;
		if (f)
			fprintf(f, "%" PRIx64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
				" %" PRIu64 "\n", e->vaddr, e->insns, e->execs, e->mems,
				e->atomics, e->lookups);
		e->insns = e->execs = e->mems = e->atomics = e->lookups = 0;
	}
	if (f)
		fclose(f);
	pthread_mutex_unlock(&lock);
}

static const unsigned char marker[] = { 0x66, 0x87, 0xdb };

/* The previous kernel block each vCPU ran (lookups=1 only). */
#define MAX_VCPUS 64
static struct tbcount *last[MAX_VCPUS];
static bool count_lookups;

/*
 * lookups=1: an exec callback per block (slower) counts the runs that were
 * entered through a lookup of the next block rather than a chained jump:
 * after a block that ended with ret or an indirect jump or call, or from a
 * block that started on another page (QEMU 7.2 chains direct jumps only
 * within the page a block starts on). Each such entry costs a call to
 * helper_lookup_tb_ptr(), and a hash-table lookup when the per-vCPU jump
 * cache misses.
 */
static void tb_exec(unsigned int vcpu, void *udata)
{
	struct tbcount *e = udata, *prev;

	if (vcpu >= MAX_VCPUS)
		return;
	prev = last[vcpu];
	if (prev && (prev->indirect || (prev->vaddr >> 12) != (e->vaddr >> 12)))
		e->lookups++;
	last[vcpu] = e;
}

/* Whether @insn is ret, iret, or an indirect call or jump. */
static bool is_indirect(const struct qemu_plugin_insn *insn)
{
	const unsigned char *b = qemu_plugin_insn_data(insn);
	size_t i, n = qemu_plugin_insn_size(insn);

	for (i = 0; i < n; i++) {
		if (b[i] == 0x66 || b[i] == 0x67 || b[i] == 0xf2 || b[i] == 0xf3 ||
		    b[i] == 0x2e || b[i] == 0x3e || (b[i] & 0xf0) == 0x40)
			continue;
		if (b[i] == 0xc3 || b[i] == 0xc2 || b[i] == 0xcf || b[i] == 0xca || b[i] == 0xcb)
			return true;
		/* ff /2, /3 (call), ff /4, /5 (jmp) */
		return b[i] == 0xff && i + 1 < n && ((b[i + 1] >> 3) & 7) >= 2 &&
		       ((b[i + 1] >> 3) & 7) <= 5;
	}
	return false;
}

/*
 * Whether @insn is a locked read-modify-write: a lock prefix among its
 * prefixes, or xchg with a memory operand (implicitly locked). Under MTTCG
 * these become host atomics through helpers.
 */
static bool is_atomic(const struct qemu_plugin_insn *insn)
{
	const unsigned char *b = qemu_plugin_insn_data(insn);
	size_t i, n = qemu_plugin_insn_size(insn);

	for (i = 0; i < n; i++) {
		if (b[i] == 0xf0)
			return true;
		/* Legacy prefixes, then REX. */
		if (b[i] == 0x66 || b[i] == 0x67 || b[i] == 0xf2 || b[i] == 0xf3 ||
		    b[i] == 0x2e || b[i] == 0x36 || b[i] == 0x3e || b[i] == 0x26 ||
		    b[i] == 0x64 || b[i] == 0x65 || (b[i] & 0xf0) == 0x40)
			continue;
		/* xchg r/m, r with mod != 3. */
		return (b[i] == 0x86 || b[i] == 0x87) && i + 1 < n && (b[i + 1] >> 6) != 3;
	}
	return false;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	uint64_t vaddr = qemu_plugin_tb_vaddr(tb);
	size_t i, n = qemu_plugin_tb_n_insns(tb);
	uint64_t atomics = 0;
	struct tbcount *e;

	(void)id;
	if (vaddr < KERNEL_START) {
		for (i = 0; i < n; i++) {
			struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);

			if (qemu_plugin_insn_size(insn) == sizeof(marker) &&
			    !memcmp(qemu_plugin_insn_data(insn), marker, sizeof(marker)))
				qemu_plugin_register_vcpu_insn_exec_cb(insn, mark,
								       QEMU_PLUGIN_CB_NO_REGS,
								       NULL);
		}
		return;
	}
	pthread_mutex_lock(&lock);
	translations++;
	e = lookup(vaddr);
	pthread_mutex_unlock(&lock);
	if (!e)
		return;
	/* Racy adds from the vCPUs: a lost count now and then is noise. */
	qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &e->execs, 1);
	qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &e->insns, n);
	for (i = 0; i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);

		atomics += is_atomic(insn);
		qemu_plugin_register_vcpu_mem_inline(insn, QEMU_PLUGIN_MEM_RW,
						     QEMU_PLUGIN_INLINE_ADD_U64, &e->mems, 1);
	}
	if (atomics)
		qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64,
							 &e->atomics, atomics);
	if (count_lookups) {
		e->indirect = n && is_indirect(qemu_plugin_tb_get_insn(tb, n - 1));
		qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_exec, QEMU_PLUGIN_CB_NO_REGS, e);
	}
}

__attribute__((visibility("default"))) int
qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
	int i;

	(void)info;
	for (i = 0; i < argc; i++) {
		if (!strncmp(argv[i], "out=", 4)) {
			snprintf(out, sizeof(out), "%s", argv[i] + 4);
		} else if (!strcmp(argv[i], "lookups=1")) {
			count_lookups = true;
		} else {
			fprintf(stderr, "tbprof: unknown argument %s\n", argv[i]);
			return -1;
		}
	}
	table = calloc(SLOTS, sizeof(*table));
	if (!table)
		return -1;
	qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
	return 0;
}
