// SPDX-License-Identifier: GPL-2.0
/*
 * The C test pattern generator, for the Rust copy in zcsend-cat to be
 * checked against. build.rs compiles this only in the source tree, with
 * ZCSEND_PATTERN_HEADER naming the header that holds the generator:
 * tools/include/zcsend_pattern.h (zc_pattern_*, shared by the selftests,
 * the samples and the host receiver) or, in older trees,
 * samples/pattern.h (zcx_*, what zcsend_host_rx verified). Only tests refer
 * to these symbols.
 */
#include <stddef.h>
#include <stdint.h>

#include ZCSEND_PATTERN_HEADER

#ifdef ZCSEND_PATTERN_SAMPLES
#define zc_pattern_word		zcx_word
#define zc_pattern_fill		zcx_fill
#define zc_pattern_check	zcx_check
#define ZC_PATTERN_SEED		ZCX_SEED
#endif

const uint64_t zcsend_c_pattern_seed = ZC_PATTERN_SEED;

uint64_t zcsend_c_pattern_word(uint64_t seed, uint64_t idx)
{
	return zc_pattern_word(seed, idx);
}

void zcsend_c_pattern_fill(void *buf, size_t len, uint64_t seed, uint64_t off)
{
	zc_pattern_fill(buf, len, seed, off);
}

size_t zcsend_c_pattern_check(const void *buf, size_t len, uint64_t seed,
			      uint64_t off)
{
	return zc_pattern_check(buf, len, seed, off);
}
