/* fuzz_wire.c - libFuzzer target for src/wire.c: the frame parser, checksum
 * completion, software segmentation and the ARP/ND builders on arbitrary
 * bytes. Owns nothing else. */
#include <stdint.h>
#include <stdlib.h>

#include "wire.h"

static struct pkt_pool *pool;
static struct pkt pk;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!pool) {
		pool = pkt_pool_create(64);
		if (!pool)
			abort();
	}
	/* Exact-size heap copy so any over-read is caught. */
	uint8_t *f = malloc(size ? size : 1);
	if (!f)
		return 0;
	memcpy(f, data, size);

	struct pkt_layout lay;
	struct flow_key key = {.vni = 0xabcdef, .zone = 9};
	enum drop_reason r = wire_parse_buf(f, size, &lay, &key);
	if (key.vni != 0xabcdef || key.zone != 9)
		abort();
	if (r == DROP_NONE) {
		if (lay.l4 != PKT_OFF_NONE && lay.l4 > size)
			abort();
		if (lay.payload != PKT_OFF_NONE && lay.payload > size)
			abort();
	}

	if (size <= PKT_DATA_ROOM) {
		/* wire_parse (with its fast path) gives what the general parser gives */
		pkt_reset(&pk);
		memcpy(pk.data, f, size);
		pk.len = (uint32_t)size;
		memset(&pk.lay, 0x5a, sizeof(pk.lay));
		pk.key = (struct flow_key){.vni = 0xabcdef, .zone = 9};
		if (wire_parse(&pk) != r)
			abort();
		if (r == DROP_NONE && (memcmp(&pk.lay, &lay, sizeof(lay)) || memcmp(&pk.key, &key, sizeof(key))))
			abort();
		pkt_reset(&pk);
		memcpy(pk.data, f, size);
		pk.len = (uint32_t)size;
		if (wire_l4_csum_fill(&pk)) {
			/* Filling must leave a frame that still parses. */
			struct pkt_layout l2;
			struct flow_key k2 = {0};
			if (wire_parse_buf(pk.data, pk.len, &l2, &k2) != DROP_NONE)
				abort();
		}
	}

	struct pkt *out[64];
	uint16_t mtu = size >= 2 ? (uint16_t)(576 + (data[0] << 2)) : 1500;
	int n = wire_tcp_segment(f, size, mtu, pool, out, 64);
	if (n > 0) {
		for (int i = 0; i < n; i++) {
			struct pkt_layout l2;
			struct flow_key k2 = {0};
			if (wire_parse_buf(out[i]->data, out[i]->len, &l2, &k2) != DROP_NONE)
				abort();
		}
		pkt_free_bulk(pool, out, (uint32_t)n);
	}
	if (pkt_pool_avail(pool) != 64)
		abort();

	uint8_t reply[256];
	struct mac m = {{2, 0, 0, 0, 0, 1}};
	size_t rn = arp_build_reply(reply, sizeof(reply), f, size, &m);
	if (rn && !wire_is_arp_request(f, size))
		abort();
	rn = nd_build_advert(reply, sizeof(reply), f, size, &m);
	if (rn) {
		struct pkt_layout l2;
		struct flow_key k2 = {0};
		if (!wire_is_neigh_solicit(f, size) || wire_parse_buf(reply, rn, &l2, &k2) != DROP_NONE)
			abort();
	}
	free(f);
	return 0;
}
