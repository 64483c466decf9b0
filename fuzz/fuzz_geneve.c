/* fuzz_geneve.c - libFuzzer target for geneve_decode; a decoded header
 * re-encoded (without options) decodes to the same VNI and protocol. */
#include <stdint.h>
#include <stdlib.h>

#include "nsh.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *p = malloc(size ? size : 1);
	if (!p)
		return 0;
	memcpy(p, data, size);
	struct geneve_info gi, g2;
	if (geneve_decode(p, size, &gi) == DROP_NONE) {
		if (gi.hdr_len > size)
			abort();
		uint8_t out[GENEVE_BASE_LEN];
		if (geneve_encode(out, sizeof(out), gi.vni, gi.proto) != GENEVE_BASE_LEN)
			abort();
		if (geneve_decode(out, sizeof(out), &g2) != DROP_NONE || g2.vni != gi.vni ||
		    g2.proto != gi.proto || g2.hdr_len != GENEVE_BASE_LEN)
			abort();
	}
	free(p);
	return 0;
}
