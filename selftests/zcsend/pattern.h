/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Test data pattern shared by the zcsend selftests and host_receiver.
 *
 * A stream is named by a 64-bit seed. The byte at stream offset @off is byte
 * (@off % 8) (least significant first) of zc_pattern_word(seed, @off / 8),
 * where the word is the splitmix64 finaliser applied to the seed plus the
 * 8-byte block index. Every 8-byte block of a stream differs from every other
 * one, so a lost, duplicated, reordered or shifted block is detected anywhere
 * in the stream, and so is data of a stream with another seed.
 *
 * Datagrams are checked as consecutive pieces of one stream: datagram k of
 * length L carries stream bytes [k * L, (k + 1) * L).
 *
 * host_receiver expects ZC_PATTERN_STREAM_SEED from stream offset 0 on every
 * TCP connection, and answers "OK <bytes>\n" or "BAD <offset>\n" once the
 * peer has shut down its write side.
 */
#ifndef ZCSEND_PATTERN_H
#define ZCSEND_PATTERN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Seed of every stream sent to host_receiver. */
#define ZC_PATTERN_STREAM_SEED	0x7a6373656e64ULL	/* "zcsend" */

static inline uint64_t zc_pattern_word(uint64_t seed, uint64_t idx)
{
	uint64_t x = seed + (idx + 1) * 0x9e3779b97f4a7c15ULL;

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static inline uint8_t zc_pattern_byte(uint64_t seed, uint64_t off)
{
	return zc_pattern_word(seed, off >> 3) >> ((off & 7) * 8);
}

/* Stores @w at @p least significant byte first. */
static inline void zc_pattern_put(uint8_t *p, uint64_t w)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = w >> (8 * i);
}

/* Fills @buf with the @len stream bytes that start at stream offset @off. */
static inline void zc_pattern_fill(void *buf, size_t len, uint64_t seed,
				   uint64_t off)
{
	uint8_t *p = buf;
	size_t i = 0;

	for (; i < len && ((off + i) & 7); i++)
		p[i] = zc_pattern_byte(seed, off + i);
	for (; i + 8 <= len; i += 8)
		zc_pattern_put(p + i, zc_pattern_word(seed, (off + i) >> 3));
	for (; i < len; i++)
		p[i] = zc_pattern_byte(seed, off + i);
}

/*
 * Compares @buf with the @len stream bytes that start at stream offset @off.
 * Returns the index in @buf of the first byte that differs, or @len.
 */
static inline size_t zc_pattern_check(const void *buf, size_t len,
				      uint64_t seed, uint64_t off)
{
	const uint8_t *p = buf;
	uint8_t w[8];
	size_t i = 0;

	for (; i < len && ((off + i) & 7); i++)
		if (p[i] != zc_pattern_byte(seed, off + i))
			return i;
	for (; i + 8 <= len; i += 8) {
		zc_pattern_put(w, zc_pattern_word(seed, (off + i) >> 3));
		if (memcmp(p + i, w, 8))
			break;
	}
	for (; i < len; i++)
		if (p[i] != zc_pattern_byte(seed, off + i))
			return i;
	return len;
}

#endif /* ZCSEND_PATTERN_H */
