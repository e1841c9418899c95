/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Payload generator shared by zcsend_xfer (guest) and zcsend_host_rx (host),
 * and the little wire protocol between them.
 *
 * Payload: a stream named by a 64-bit seed. The byte at stream offset @off is
 * byte (@off % 8), least significant first, of zcx_word(seed, @off / 8): the
 * splitmix64 finaliser of the seed plus the 8-byte block index (the same
 * generator as selftests/zcsend/pattern.h). Every 8-byte block differs from
 * every other one, so lost, duplicated, reordered or shifted data is caught.
 *
 * Protocol (all on the receiver's TCP port, default 7878, IPv4 or IPv6):
 *
 *   TCP run:  "ZCX1 tcp seed=<hex> bytes=<n>\n", then the <n> stream bytes,
 *             then the sender shuts down its write side. The receiver answers
 *             one line: "OK tcp bytes=<n>" or "BAD tcp bytes=<n> ...".
 *
 *   UDP run:  "ZCX1 udp seed=<hex> bytes=<n> dgrams=<k> run=<id>\n" on a
 *             control connection; then <k> datagrams to the UDP port (default
 *             7879), each a struct zcx_dgram header followed by the stream
 *             bytes [offset, offset + len); then "END sent=<k>\n" and a
 *             shutdown of the write side. The receiver answers
 *             "OK udp dgrams=<got>/<k> bytes=<b> bad=0 dup=0 lost=0 ..." or
 *             "BAD udp ..." (wrong bytes) or "LOSS udp ..." (only missing
 *             datagrams).
 *
 * Broadcast (zcsend_broadcast to zcsend_broadcast_rx, TCP port 7880): one run
 * is <n> subscriber connections that each carry the same stream:
 *             "ZCX1 bcast seed=<hex> bytes=<b> run=<id> sub=<i>/<n>\n", then
 *             the <b> stream bytes, then a shutdown of the write side. The
 *             receiver checks each connection on its own and answers it
 *             "OK bcast sub=<i> bytes=<b> hash=<hex>" or "BAD bcast sub=<i>
 *             bytes=<got> expected=<b> first_bad=<off>"; once all <n> of a
 *             run have ended it prints a per-subscriber report and whether
 *             every stream was identical (same length, same hash, each
 *             matching the pattern).
 */
#ifndef ZCSEND_SAMPLES_PATTERN_H
#define ZCSEND_SAMPLES_PATTERN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ZCX_SEED		0x7a6373656e64ULL	/* "zcsend" */
#define ZCX_TCP_PORT		7878
#define ZCX_UDP_PORT		7879
#define ZCX_BCAST_PORT		7880
#define ZCX_DGRAM_MAGIC		0x3158435aU		/* "ZCX1" */
#define ZCX_LINE_MAX		256

/*
 * Header at the start of every UDP datagram, little endian on the wire (the
 * helpers below store and load it byte by byte).
 */
struct zcx_dgram {
	uint32_t magic;
	uint32_t seq;		/* datagram index, 0 .. dgrams - 1 */
	uint64_t offset;	/* stream offset of the payload */
	uint32_t len;		/* payload bytes after the header */
	uint32_t run;		/* run id from the control line */
};

#define ZCX_DGRAM_HDR		24

static inline uint64_t zcx_word(uint64_t seed, uint64_t idx)
{
	uint64_t x = seed + (idx + 1) * 0x9e3779b97f4a7c15ULL;

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static inline uint8_t zcx_byte(uint64_t seed, uint64_t off)
{
	return zcx_word(seed, off >> 3) >> ((off & 7) * 8);
}

static inline void zcx_put_le(uint8_t *p, uint64_t v, int bytes)
{
	int i;

	for (i = 0; i < bytes; i++)
		p[i] = v >> (8 * i);
}

static inline uint64_t zcx_get_le(const uint8_t *p, int bytes)
{
	uint64_t v = 0;
	int i;

	for (i = bytes - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* Fills @buf with the @len stream bytes starting at stream offset @off. */
static inline void zcx_fill(void *buf, size_t len, uint64_t seed, uint64_t off)
{
	uint8_t *p = buf;
	size_t i = 0;

	for (; i < len && ((off + i) & 7); i++)
		p[i] = zcx_byte(seed, off + i);
	for (; i + 8 <= len; i += 8)
		zcx_put_le(p + i, zcx_word(seed, (off + i) >> 3), 8);
	for (; i < len; i++)
		p[i] = zcx_byte(seed, off + i);
}

/*
 * Compares @buf with the @len stream bytes starting at stream offset @off.
 * Returns the index of the first byte that differs, or @len if none does.
 */
static inline size_t zcx_check(const void *buf, size_t len, uint64_t seed,
			       uint64_t off)
{
	const uint8_t *p = buf;
	uint8_t w[8];
	size_t i = 0;

	for (; i < len && ((off + i) & 7); i++)
		if (p[i] != zcx_byte(seed, off + i))
			return i;
	for (; i + 8 <= len; i += 8) {
		zcx_put_le(w, zcx_word(seed, (off + i) >> 3), 8);
		if (memcmp(p + i, w, 8))
			break;
	}
	for (; i < len; i++)
		if (p[i] != zcx_byte(seed, off + i))
			return i;
	return len;
}

static inline void zcx_dgram_store(uint8_t *p, const struct zcx_dgram *h)
{
	zcx_put_le(p, h->magic, 4);
	zcx_put_le(p + 4, h->seq, 4);
	zcx_put_le(p + 8, h->offset, 8);
	zcx_put_le(p + 16, h->len, 4);
	zcx_put_le(p + 20, h->run, 4);
}

static inline void zcx_dgram_load(struct zcx_dgram *h, const uint8_t *p)
{
	h->magic = zcx_get_le(p, 4);
	h->seq = zcx_get_le(p + 4, 4);
	h->offset = zcx_get_le(p + 8, 8);
	h->len = zcx_get_le(p + 16, 4);
	h->run = zcx_get_le(p + 20, 4);
}

#endif /* ZCSEND_SAMPLES_PATTERN_H */
