/* SPDX-License-Identifier: GPL-2.0 */
/*
 * zcsend_pattern.h: the test traffic of zcsend, in one place. The pattern
 * generator of the selftests, the samples and the host receiver
 * (tools/host/zcsend_rx.c), and the small wire protocols between the guest's
 * senders and that receiver. tools/zcsend-rs has a Rust copy of the
 * generator, tested against the values of this one.
 *
 * Pattern: a stream named by a 64-bit seed. The byte at stream offset @off
 * is byte (@off % 8), least significant first, of
 * zc_pattern_word(seed, @off / 8): the splitmix64 finaliser applied to the
 * seed plus the 8-byte block index. Every 8-byte block of a stream differs
 * from every other one, so a lost, duplicated, reordered or shifted block is
 * detected anywhere in the stream, and so is data of a stream with another
 * seed. Datagrams are checked as consecutive pieces of one stream: datagram
 * k of length L carries stream bytes [k * L, (k + 1) * L), unless it says
 * otherwise (struct zcx_dgram).
 *
 * Wire protocols (IPv4 or IPv6; zcsend_rx --mode selects one):
 *
 * remote (selftests' "remote" tests and soak, TCP port ZCX_REMOTE_PORT):
 *   every connection carries the stream of ZC_PATTERN_SEED from offset 0,
 *   with no header, then the sender shuts down its write side. The receiver
 *   answers one line, "OK <bytes>\n" (every byte matched) or
 *   "BAD <offset>\n" (the first stream offset that did not), and closes.
 *
 * xfer (samples' zcsend_xfer and zcsend-cat --zcx, TCP ZCX_TCP_PORT):
 *   TCP run:  "ZCX1 tcp seed=<hex> bytes=<n>\n", then the <n> stream bytes,
 *             then the sender shuts down its write side. The receiver answers
 *             one line: "OK tcp bytes=<n>" or "BAD tcp bytes=<got>
 *             expected=<n> first_bad=<off>".
 *   UDP run:  "ZCX1 udp seed=<hex> bytes=<n> dgrams=<k> dgram=<size>
 *             run=<id>\n" on a control connection, answered "READY udp
 *             run=<id>"; then <k> datagrams of at most <size> bytes to UDP
 *             port ZCX_UDP_PORT, each a struct zcx_dgram header followed by
 *             the stream bytes [offset, offset + len), datagram <seq>
 *             starting at <seq> * (<size> - ZCX_DGRAM_HDR); then "END
 *             sent=<k>\n" and a shutdown of the write side. The receiver
 *             answers "OK udp dgrams=<got>/<k> bytes=<b> bad=0 dup=0 lost=0
 *             ..." or "BAD udp ..." (wrong bytes) or "LOSS udp ..." (only
 *             missing or duplicated datagrams).
 *
 * bcast (samples' zcsend_broadcast, TCP ZCX_BCAST_PORT): one run is <n>
 *   subscriber connections that each carry the same stream:
 *             "ZCX1 bcast seed=<hex> bytes=<b> run=<id> sub=<i>/<n>\n", then
 *             the <b> stream bytes, then a shutdown of the write side. The
 *             receiver checks each connection on its own and answers it
 *             "OK bcast sub=<i> bytes=<b> hash=<hex>" or "BAD bcast sub=<i>
 *             bytes=<got> expected=<b> first_bad=<off>"; once all <n> of a
 *             run have ended it reports each subscriber and whether every
 *             stream was identical (same length, same hash, each matching
 *             the pattern).
 */
#ifndef ZCSEND_PATTERN_H
#define ZCSEND_PATTERN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Seed of the remote streams and the samples' default: "zcsend". */
#define ZC_PATTERN_SEED		0x7a6373656e64ULL

#define ZCX_REMOTE_PORT		7777
#define ZCX_TCP_PORT		7878
#define ZCX_UDP_PORT		7879
#define ZCX_BCAST_PORT		7880
#define ZCX_DGRAM_MAGIC		0x3158435aU		/* "ZCX1" */
#define ZCX_LINE_MAX		256

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

/* Stores the low @bytes bytes of @v at @p, least significant first. */
static inline void zc_put_le(uint8_t *p, uint64_t v, int bytes)
{
	int i;

	for (i = 0; i < bytes; i++)
		p[i] = v >> (8 * i);
}

static inline uint64_t zc_get_le(const uint8_t *p, int bytes)
{
	uint64_t v = 0;
	int i;

	for (i = bytes - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
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
		zc_put_le(p + i, zc_pattern_word(seed, (off + i) >> 3), 8);
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
		zc_put_le(w, zc_pattern_word(seed, (off + i) >> 3), 8);
		if (memcmp(p + i, w, 8))
			break;
	}
	for (; i < len; i++)
		if (p[i] != zc_pattern_byte(seed, off + i))
			return i;
	return len;
}

/*
 * Header at the start of every xfer UDP datagram, little endian on the wire
 * (stored and loaded byte by byte below).
 */
struct zcx_dgram {
	uint32_t magic;
	uint32_t seq;		/* datagram index, 0 .. dgrams - 1 */
	uint64_t offset;	/* stream offset of the payload */
	uint32_t len;		/* payload bytes after the header */
	uint32_t run;		/* run id from the control line */
};

#define ZCX_DGRAM_HDR		24

static inline void zcx_dgram_store(uint8_t *p, const struct zcx_dgram *h)
{
	zc_put_le(p, h->magic, 4);
	zc_put_le(p + 4, h->seq, 4);
	zc_put_le(p + 8, h->offset, 8);
	zc_put_le(p + 16, h->len, 4);
	zc_put_le(p + 20, h->run, 4);
}

static inline void zcx_dgram_load(struct zcx_dgram *h, const uint8_t *p)
{
	h->magic = zc_get_le(p, 4);
	h->seq = zc_get_le(p + 4, 4);
	h->offset = zc_get_le(p + 8, 8);
	h->len = zc_get_le(p + 16, 4);
	h->run = zc_get_le(p + 20, 4);
}

#endif /* ZCSEND_PATTERN_H */
