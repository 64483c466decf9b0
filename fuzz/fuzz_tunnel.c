/* fuzz_tunnel.c - libFuzzer target for tunnel_decap (the Geneve payload a
 * host receives from the underlay). A service-plane packet that decodes is
 * re-encapsulated and must decode to the same metadata and frame; the inner
 * frame of any accepted packet also goes through the MTU handling
 * (mtu_check, icmperr_build_too_big, ipv4_fragment). */
#include <stdint.h>
#include <stdlib.h>

#include "icmperr.h"
#include "tunnel.h"

static struct pkt_pool *pool;

static void mtu_paths(struct pkt *p, uint32_t mtu)
{
	struct pkt *o = pkt_alloc(pool);
	if (!o)
		abort();
	size_t n = icmperr_build_too_big(p->data, p->len, mtu, o);
	if (n && (n != o->len || n > 1280 + 22))
		abort();
	pkt_free(pool, o);
	struct pkt *fr[64];
	int nf = ipv4_fragment(p, mtu, pool, fr, 64);
	for (int i = 0; i < nf; i++)
		if (fr[i]->len > p->len + 40 || fr[i]->len < 14)
			abort();
	if (nf > 0)
		pkt_free_bulk(pool, fr, (uint32_t)nf);
	(void)mtu_check(p->data, p->len, mtu);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!pool && !(pool = pkt_pool_create(128)))
		abort();
	if (size > PKT_DATA_ROOM)
		return 0;
	struct pkt *p = pkt_alloc(pool);
	if (!p)
		abort();
	memcpy(p->data, data, size);
	p->len = (uint32_t)size;
	struct tunnel_rx rx = tunnel_decap(p, DETOUR_MD_CLASS_DEFAULT);
	if (rx.kind == TUN_DROP) {
		if (rx.why == DROP_NONE || p->len != size || (p->flags & PKT_F_HAS_MD))
			abort();
	} else {
		if (p->len < 14 || p->data + p->len != p->buf + PKT_HEADROOM + size)
			abort();
		uint32_t mtu = size ? 68u + (uint32_t)data[size - 1] * 8u : 1500u;
		if (rx.kind == TUN_SERVICE) {
			if (rx.ttl == 0 || !(p->flags & PKT_F_HAS_MD))
				abort();
			struct sp_meta md = p->md;
			uint32_t flen = p->len;
			if (tunnel_encap_sp(p, rx.vni, DETOUR_MD_CLASS_DEFAULT, rx.ttl) != DROP_NONE)
				abort();
			struct tunnel_rx r2 = tunnel_decap(p, DETOUR_MD_CLASS_DEFAULT);
			if (rx.ttl > 1) {
				if (r2.kind != TUN_SERVICE || r2.vni != rx.vni || r2.ttl != rx.ttl - 1 ||
				    p->len != flen || p->md.spi != md.spi || p->md.si != md.si ||
				    p->md.chain != md.chain || p->md.vni != md.vni ||
				    !ipaddr_eq(&p->md.ret_vtep, &md.ret_vtep) || p->md.n_unknown != md.n_unknown ||
				    memcmp(p->md.unknown, md.unknown, md.n_unknown) != 0)
					abort();
			} else if (r2.why != DROP_NSH_TTL) {
				abort();
			}
		}
		if (p->len >= 14)
			mtu_paths(p, mtu);
	}
	pkt_free(pool, p);
	return 0;
}
