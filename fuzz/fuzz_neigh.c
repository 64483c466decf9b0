/* fuzz_neigh.c - libFuzzer target for the rtnetlink reply parsers of
 * src/neigh.c (neigh_parse_route, neigh_parse_neigh, neigh_parse_ack). The
 * first 4 bytes of the input are the sequence number looked for, the rest
 * is the receive buffer. Results must be one of the documented codes, the
 * same on a second run from a copy at an odd address (the parsers hand
 * libmnl an aligned copy), and consistent: no gateway means the next hop
 * is the destination, IPv4 replies hold IPv4 addresses, fields without
 * their attribute stay zero, extended-ack texts are terminated. */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "neigh.h"

static void check_rc(int rc)
{
	if (rc > 0 || rc < -4095)
		abort();
}

static void check_kmsg(const char *kmsg, size_t size, int rc)
{
	if (!memchr(kmsg, 0, size))
		abort();
	if (rc >= 0 && kmsg[0]) /* text only comes with an error */
		abort();
}

static bool is_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static void route(const uint8_t *buf, const uint8_t *odd, size_t len, uint32_t seq, const char *dst_text)
{
	struct ipaddr dst;
	if (!ipaddr_parse(dst_text, &dst))
		abort();
	struct neigh_route r, r2;
	int rc = neigh_parse_route(buf, len, seq, &dst, &r);
	check_rc(rc);
	check_kmsg(r.kmsg, sizeof(r.kmsg), rc);
	if (neigh_parse_route(odd, len, seq, &dst, &r2) != rc || memcmp(&r, &r2, sizeof(r)) != 0)
		abort();
	if (rc != 0) {
		/* nothing but the text is filled on failure */
		if (r.oif || r.type || r.has_gw || r.has_prefsrc || !is_zero(&r.gw, sizeof(r.gw)) ||
		    !is_zero(&r.prefsrc, sizeof(r.prefsrc)))
			abort();
		return;
	}
	if (!r.has_gw && !ipaddr_eq(&r.gw, &dst))
		abort();
	/* (an IPv6 reply may carry an IPv4-mapped address: only IPv4 is checked) */
	if (r.has_prefsrc ? ipaddr_is_v4(&dst) && !ipaddr_is_v4(&r.prefsrc) : !is_zero(&r.prefsrc, sizeof(r.prefsrc)))
		abort();
}

static void neigh(const uint8_t *buf, const uint8_t *odd, size_t len, uint32_t seq)
{
	struct neigh_entry e, e2;
	int rc = neigh_parse_neigh(buf, len, seq, &e);
	check_rc(rc);
	check_kmsg(e.kmsg, sizeof(e.kmsg), rc);
	if (neigh_parse_neigh(odd, len, seq, &e2) != rc || memcmp(&e, &e2, sizeof(e)) != 0)
		abort();
	if (rc != 0) {
		if (e.has_dst || e.has_lladdr || e.family || e.state || e.ifindex)
			abort();
		return;
	}
	if (e.family != AF_INET && e.family != AF_INET6)
		abort();
	if (e.has_dst && e.family == AF_INET && !ipaddr_is_v4(&e.dst))
		abort();
	if (!e.has_dst && !is_zero(&e.dst, sizeof(e.dst)))
		abort();
	if (!e.has_lladdr && !is_zero(e.lladdr, sizeof(e.lladdr)))
		abort();
}

static void ack(const uint8_t *buf, const uint8_t *odd, size_t len, uint32_t seq)
{
	char kmsg[16];
	memset(kmsg, 'x', sizeof(kmsg));
	int rc = neigh_parse_ack(buf, len, seq, kmsg, sizeof(kmsg));
	check_rc(rc);
	check_kmsg(kmsg, sizeof(kmsg), rc);
	if (neigh_parse_ack(odd, len, seq, NULL, 0) != rc)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t seq = 1;
	if (size >= 4) {
		memcpy(&seq, data, 4);
		data += 4;
		size -= 4;
	}
	/* the same bytes at an odd address, still ending where the allocation does */
	uint8_t *copy = malloc(size + 1);
	if (!copy)
		abort();
	memcpy(copy + 1, data, size);
	const uint8_t *odd = copy + 1;
	route(data, odd, size, seq, "10.9.0.7");
	route(data, odd, size, seq, "fd00::7");
	neigh(data, odd, size, seq);
	ack(data, odd, size, seq);
	free(copy);
	return 0;
}
