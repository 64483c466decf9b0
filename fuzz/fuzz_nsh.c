/* fuzz_nsh.c - libFuzzer target for nsh_decode: arbitrary bytes must give a
 * drop reason or a header; a decoded header re-encoded and decoded again
 * must give the same metadata; nsh_decode_hop gives the same verdict and
 * the same SPI, SI, chain and direction, and writes nothing else of md.
 * Owns nothing else. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nsh.h"

static void same(const struct sp_meta *a, const struct sp_meta *b)
{
	if (a->spi != b->spi || a->si != b->si || a->dir != b->dir || a->fp_action != b->fp_action ||
	    a->is_copy != b->is_copy || a->chain != b->chain || a->guest_port != b->guest_port ||
	    a->vni != b->vni || !mac_eq(&a->orig_dst, &b->orig_dst) ||
	    !mac_eq(&a->orig_src, &b->orig_src) || !ipaddr_eq(&a->ret_vtep, &b->ret_vtep) ||
	    !mac_eq(&a->ret_spmac, &b->ret_spmac) || a->fp_service != b->fp_service ||
	    a->ingress != b->ingress || a->n_unknown != b->n_unknown ||
	    memcmp(a->unknown, b->unknown, a->n_unknown) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *p = malloc(size ? size : 1);
	if (!p)
		return 0;
	memcpy(p, data, size);
	uint16_t cls = DETOUR_MD_CLASS_DEFAULT;
	struct nsh_info info;
	struct sp_meta md, md2;
	enum drop_reason r = nsh_decode(p, size, cls, &info, &md);
	/* Without md the verdict is the same. */
	if (nsh_decode(p, size, cls, NULL, NULL) != r)
		abort();
	struct sp_meta hop;
	memset(&hop, 0xa5, sizeof(hop));
	struct sp_meta untouched = hop;
	if (nsh_decode_hop(p, size, cls, &info, &hop) != r)
		abort();
	if (r == DROP_NONE) {
		if (hop.spi != md.spi || hop.si != md.si || hop.chain != md.chain || hop.dir != md.dir)
			abort();
		hop.spi = untouched.spi, hop.si = untouched.si, hop.chain = untouched.chain, hop.dir = untouched.dir;
		if (memcmp(&hop, &untouched, sizeof(hop)) != 0)
			abort();
	}
	if (r == DROP_NONE) {
		if (info.hdr_len > size || md.n_unknown > sizeof(md.unknown))
			abort();
		uint8_t out[256];
		size_t n = nsh_encode(out, sizeof(out), md.spi, md.si, cls, &md, NSH_TLV_ALL);
		if (n == 0 || n != nsh_encoded_len(&md, NSH_TLV_ALL))
			abort();
		struct nsh_info i2;
		if (nsh_decode(out, n, cls, &i2, &md2) != DROP_NONE || i2.hdr_len != n)
			abort();
		same(&md, &md2);
	}
	free(p);
	return 0;
}
