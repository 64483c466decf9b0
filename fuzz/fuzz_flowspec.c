/* fuzz_flowspec.c - flowspec_parse on arbitrary text: never reads past the
 * string or the error buffer, always explains a rejection, and whatever it
 * accepts formats back into text that parses to the same key.
 * Owns this target and fuzz/corpus/flowspec/ only. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>

#include "flowspec.h"

static void endpoint(char *out, size_t room, const struct ipaddr *a, uint16_t port, bool ports)
{
	char txt[IPADDR_STRLEN];
	ipaddr_format(a, txt);
	if (!ports)
		snprintf(out, room, "%s", txt);
	else if (ipaddr_is_v4(a))
		snprintf(out, room, "%s:%u", txt, port);
	else
		snprintf(out, room, "[%s]:%u", txt, port);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a NUL-terminated copy of exactly the input, so ASan sees any overread */
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	/* the error buffer length comes from the first byte: small ones too */
	size_t errlen = size ? data[0] % 80 : 0;
	char *err = malloc(errlen ? errlen : 1);
	if (!err) {
		free(s);
		return 0;
	}
	struct flow_key k;
	bool ok = flowspec_parse(s, &k, err, errlen);
	if (!ok) {
		if (errlen && (!memchr(err, 0, errlen) || (errlen > 1 && !err[0])))
			__builtin_trap(); /* a rejection without a message */
	} else {
		if (!k.is_ip || k.zone || k.vni)
			__builtin_trap();
		const char *name = k.proto == IPPROTO_TCP	 ? "tcp"
				   : k.proto == IPPROTO_UDP	 ? "udp"
				   : k.proto == IPPROTO_ICMP	 ? "icmp"
				   : k.proto == IPPROTO_ICMPV6 ? "icmpv6"
							       : NULL;
		if (!name || ipaddr_is_v4(&k.src) != ipaddr_is_v4(&k.dst))
			__builtin_trap();
		bool ports = k.proto == IPPROTO_TCP || k.proto == IPPROTO_UDP;
		if (!ports && (k.sport || k.dport))
			__builtin_trap();
		char a[80], b[80], text[200], e2[128];
		endpoint(a, sizeof(a), &k.src, k.sport, ports);
		endpoint(b, sizeof(b), &k.dst, k.dport, ports);
		snprintf(text, sizeof(text), "%s %s > %s", name, a, b);
		struct flow_key k2;
		if (!flowspec_parse(text, &k2, e2, sizeof(e2)) || !flow_key_eq(&k, &k2))
			__builtin_trap(); /* the canonical text of an accepted key must give it back */
	}
	free(err);
	free(s);
	return 0;
}
