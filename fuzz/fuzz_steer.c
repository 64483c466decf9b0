/* fuzz_steer.c - libFuzzer target for steer_hash (the owner of a frame,
 * read as Ethernet, NSH-in-Ethernet or a Geneve payload): never reads past
 * the input, and for a plain frame agrees with the parser's key. */
#include <stdint.h>
#include <stdlib.h>

#include "steer.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *p = malloc(size ? size : 1);
	if (!p)
		return 0;
	memcpy(p, data, size);
	uint64_t h = steer_hash(p, size, false);
	(void)steer_hash(p, size, true);
	struct pkt_layout lay;
	struct flow_key key;
	if (size >= 14 && rd16(p + 12) != 0x894f && wire_parse_buf(p, size, &lay, &key) == DROP_NONE && key.is_ip &&
	    h != steer_key_hash(&key))
		abort();
	free(p);
	return 0;
}
