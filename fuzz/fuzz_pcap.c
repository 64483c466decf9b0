/* fuzz_pcap.c - libFuzzer target for the pcap reader: any input is either
 * walked record by record or rejected with a message; every record handed
 * out must lie inside the input. Touches nothing but the reader. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pcap.h"

struct span {
	const uint8_t *lo, *hi;
	uint64_t sum;
};

static int check_rec(void *arg, const struct pcap_rec *r)
{
	struct span *s = arg;
	if (r->caplen > PCAP_CAPLEN_MAX || r->origlen < r->caplen)
		abort();
	if (r->data < s->lo || r->data > s->hi || (size_t)(s->hi - r->data) < r->caplen)
		abort();
	/* touch every byte so the sanitizer sees any stray read */
	for (uint32_t i = 0; i < r->caplen; i++)
		s->sum += r->data[i];
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* copy into an exact-size heap buffer: reads past it are caught */
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	if (size)
		memcpy(buf, data, size);
	struct span s = {buf, buf + size, 0};
	char err[256];
	long n = pcap_read_buffer(buf, size, check_rec, &s, err, sizeof(err));
	if (n < 0 && err[0] == '\0')
		abort(); /* every failure explains itself */

	/* the iterator must agree with the callback walk */
	struct pcap_iter it;
	if (pcap_iter_init(&it, buf, size, err, sizeof(err)) == 0) {
		struct pcap_rec r;
		long k = 0;
		int st;
		while ((st = pcap_iter_next(&it, &r, err, sizeof(err))) == 1)
			k++;
		if ((st == 0 && k != n) || (st < 0 && n != -1))
			abort();
	}
	free(buf);
	return 0;
}
