/* flowspec.c - parse "PROTO SRC[:PORT] > DST[:PORT]". */
#include "flowspec.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

/* Parses one endpoint "ADDR", "ADDR:PORT", "[V6]:PORT" or "V6". */
static bool endpoint(const char *s, size_t n, bool want_port, struct ipaddr *a, uint16_t *port, char *err,
		     size_t errlen)
{
	char buf[IPADDR_STRLEN + 16];
	if (n == 0 || n >= sizeof(buf)) {
		snprintf(err, errlen, "bad endpoint");
		return false;
	}
	memcpy(buf, s, n);
	buf[n] = 0;
	char *addr = buf, *p = NULL;
	if (buf[0] == '[') {
		char *close = strchr(buf, ']');
		if (!close) {
			snprintf(err, errlen, "bad endpoint '%s': missing ']'", buf);
			return false;
		}
		*close = 0;
		addr = buf + 1;
		if (close[1] == ':')
			p = close + 2;
		else if (close[1]) {
			snprintf(err, errlen, "bad endpoint '%.*s'", (int)n, s);
			return false;
		}
	} else {
		char *c = strchr(buf, ':');
		if (c && !strchr(c + 1, ':')) { /* exactly one colon: v4 with port */
			*c = 0;
			p = c + 1;
		}
	}
	if (!ipaddr_parse(addr, a)) {
		snprintf(err, errlen, "bad address '%s'", addr);
		return false;
	}
	*port = 0;
	if (p) {
		char *end;
		long v = strtol(p, &end, 10);
		if (!*p || *end || v < 0 || v > 65535) {
			snprintf(err, errlen, "bad port '%s'", p);
			return false;
		}
		*port = (uint16_t)v;
	}
	if (want_port && !p) {
		snprintf(err, errlen, "a port is needed for tcp and udp");
		return false;
	}
	return true;
}

bool flowspec_parse(const char *s, struct flow_key *k, char *err, size_t errlen)
{
	memset(k, 0, sizeof(*k));
	static const struct {
		const char *name;
		uint8_t proto;
	} protos[] = {{"tcp", IPPROTO_TCP}, {"udp", IPPROTO_UDP}, {"icmp", IPPROTO_ICMP}, {"icmpv6", IPPROTO_ICMPV6}};
	while (*s == ' ')
		s++;
	const char *sp = strchr(s, ' ');
	if (!sp) {
		snprintf(err, errlen, "flow must be 'PROTO SRC[:PORT] > DST[:PORT]'");
		return false;
	}
	size_t plen = (size_t)(sp - s);
	bool found = false;
	for (size_t i = 0; i < ARRAY_SIZE(protos); i++)
		if (strlen(protos[i].name) == plen && strncasecmp(s, protos[i].name, plen) == 0) {
			k->proto = protos[i].proto;
			found = true;
		}
	if (!found) {
		snprintf(err, errlen, "unknown protocol '%.*s' (tcp, udp, icmp, icmpv6)", (int)MIN(plen, 16), s);
		return false;
	}
	const char *gt = strchr(sp, '>');
	if (!gt) {
		snprintf(err, errlen, "flow must be 'PROTO SRC[:PORT] > DST[:PORT]'");
		return false;
	}
	const char *a = sp, *ae = gt, *b = gt + 1, *be = s + strlen(s);
	while (*a == ' ')
		a++;
	while (ae > a && ae[-1] == ' ')
		ae--;
	while (*b == ' ')
		b++;
	while (be > b && be[-1] == ' ')
		be--;
	bool ports = k->proto == IPPROTO_TCP || k->proto == IPPROTO_UDP;
	if (!endpoint(a, (size_t)(ae - a), ports, &k->src, &k->sport, err, errlen) ||
	    !endpoint(b, (size_t)(be - b), ports, &k->dst, &k->dport, err, errlen))
		return false;
	if (ipaddr_is_v4(&k->src) != ipaddr_is_v4(&k->dst)) {
		snprintf(err, errlen, "source and destination are of different address families");
		return false;
	}
	if (k->proto == IPPROTO_ICMP && !ipaddr_is_v4(&k->src)) {
		snprintf(err, errlen, "icmp is IPv4; use icmpv6");
		return false;
	}
	if (k->proto == IPPROTO_ICMPV6 && ipaddr_is_v4(&k->src)) {
		snprintf(err, errlen, "icmpv6 is IPv6; use icmp");
		return false;
	}
	if (!ports) {
		k->sport = 0; /* echo identifier: unknown, 0 */
		k->dport = 0;
	}
	k->is_ip = 1;
	return true;
}
