/* fuzz_outer.c - libFuzzer target for tunnel_outer_pull (a frame the XDP
 * program of an AF_XDP uplink hands over: Ethernet + IPv4/IPv6 + UDP).
 * The first byte picks the VTEP family. An accepted frame is wrapped again
 * by tunnel_outer_push with the addresses it came with and must come back
 * with the same payload and sender. */
#include <stdint.h>
#include <stdlib.h>

#include "tunnel.h"

static struct pkt_pool *pool;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!pool && !(pool = pkt_pool_create(16)))
		abort();
	if (size < 1 || size - 1 > PKT_DATA_ROOM)
		return 0;
	struct ipaddr vtep;
	if (!ipaddr_parse(data[0] & 1 ? "fd00::2" : "10.0.0.2", &vtep))
		abort();
	struct pkt *p = pkt_alloc(pool);
	if (!p)
		abort();
	memcpy(p->data, data + 1, size - 1);
	p->len = (uint32_t)(size - 1);
	struct ipaddr from;
	uint8_t *d0 = p->data;
	enum drop_reason r = tunnel_outer_pull(p, &vtep, 6081, &from);
	if (r != DROP_NONE) {
		if (p->data != d0 || p->len != size - 1)
			abort();
		pkt_free(pool, p);
		return 0;
	}
	if (p->data < d0 || p->data + p->len > d0 + size - 1 || ipaddr_is_v4(&from) != ipaddr_is_v4(&vtep))
		abort();
	uint8_t copy[PKT_DATA_ROOM];
	uint32_t n = p->len;
	memcpy(copy, p->data, n);
	struct tunnel_outer o;
	memset(&o, 0, sizeof(o));
	o.src = from;
	o.dst = vtep;
	if (tunnel_outer_push(p, &o, 50000, 6081) == DROP_NONE) {
		struct ipaddr again;
		if (tunnel_outer_pull(p, &vtep, 6081, &again) != DROP_NONE || !ipaddr_eq(&again, &from) ||
		    p->len != n || memcmp(p->data, copy, n) != 0)
			abort();
	}
	pkt_free(pool, p);
	return 0;
}
