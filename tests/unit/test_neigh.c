/* test_neigh.c - unit tests of src/neigh.c (the next hop's Ethernet address
 * from the kernel's routing and neighbour tables): the reply parsers on
 * hand-built netlink buffers (good replies, errors, other sequence numbers,
 * every truncation, bad lengths), and neigh_resolve against the kernel in
 * fresh network namespaces of its own (skipped when not root). The live
 * tests create and delete a named namespace (detour-neigh-PID) too. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "neigh.h"

static struct ipaddr A(const char *s)
{
	struct ipaddr a;
	assert_true(ipaddr_parse(s, &a));
	return a;
}

static void assert_addr(const struct ipaddr *got, const char *want)
{
	struct ipaddr w = A(want);
	if (!ipaddr_eq(got, &w)) {
		char g[IPADDR_STRLEN];
		ipaddr_format(got, g);
		fail_msg("address %s, want %s", g, want);
	}
}

/* ---- building netlink buffers ---- */

struct nlbuf {
	uint8_t b[1024];
	size_t len;
	size_t msg; /* start of the message being built */
};

static void nb_msg(struct nlbuf *nb, uint16_t type, uint16_t flags, uint32_t seq, const void *fam, size_t famlen)
{
	nb->msg = nb->len;
	struct nlmsghdr h = {.nlmsg_type = type, .nlmsg_flags = flags, .nlmsg_seq = seq, .nlmsg_pid = 4242};
	assert_true(nb->len + NLMSG_HDRLEN + NLMSG_ALIGN(famlen) <= sizeof(nb->b));
	memcpy(nb->b + nb->len, &h, sizeof(h));
	memcpy(nb->b + nb->len + NLMSG_HDRLEN, fam, famlen);
	nb->len += NLMSG_HDRLEN + NLMSG_ALIGN(famlen);
}

static void nb_attr(struct nlbuf *nb, uint16_t type, const void *data, size_t len)
{
	struct rtattr a = {.rta_len = (unsigned short)RTA_LENGTH(len), .rta_type = type};
	assert_true(nb->len + RTA_SPACE(len) <= sizeof(nb->b));
	memcpy(nb->b + nb->len, &a, sizeof(a));
	memcpy(nb->b + nb->len + sizeof(a), data, len);
	nb->len += RTA_SPACE(len);
}

static void nb_addr(struct nlbuf *nb, uint16_t type, const char *s)
{
	struct ipaddr a = A(s);
	if (ipaddr_is_v4(&a))
		nb_attr(nb, type, a.b + 12, 4);
	else
		nb_attr(nb, type, a.b, 16);
}

static void nb_u32(struct nlbuf *nb, uint16_t type, uint32_t v) { nb_attr(nb, type, &v, sizeof(v)); }

/* Sets nlmsg_len of the message being built. */
static void nb_end(struct nlbuf *nb)
{
	uint32_t l = (uint32_t)(nb->len - nb->msg);
	memcpy(nb->b + nb->msg + offsetof(struct nlmsghdr, nlmsg_len), &l, sizeof(l));
}

static void nb_route(struct nlbuf *nb, uint32_t seq, uint8_t family, uint8_t type)
{
	struct rtmsg rtm = {.rtm_family = family, .rtm_dst_len = family == AF_INET ? 32 : 128,
			    .rtm_table = RT_TABLE_MAIN, .rtm_type = type};
	nb_msg(nb, RTM_NEWROUTE, 0, seq, &rtm, sizeof(rtm));
}

static void nb_neigh(struct nlbuf *nb, uint32_t seq, uint8_t family, int ifindex, uint16_t state, uint8_t flags)
{
	struct ndmsg ndm = {.ndm_family = family, .ndm_ifindex = ifindex, .ndm_state = state, .ndm_flags = flags,
			    .ndm_type = 1};
	nb_msg(nb, RTM_NEWNEIGH, 0, seq, &ndm, sizeof(ndm));
}

/* An NLMSG_ERROR for seq; capped: without the echoed request's payload.
 * msg: an NLMSGERR_ATTR_MSG TLV (NULL: none). */
static void nb_error(struct nlbuf *nb, uint32_t seq, int error, bool capped, const char *msg)
{
	struct nlmsgerr e = {.error = error};
	e.msg.nlmsg_type = RTM_GETROUTE;
	e.msg.nlmsg_flags = NLM_F_REQUEST;
	e.msg.nlmsg_seq = seq;
	uint8_t echoed[NLMSG_ALIGN(sizeof(struct rtmsg)) + RTA_SPACE(4)];
	memset(echoed, 0x5a, sizeof(echoed)); /* an echoed payload whose bytes must not be read as TLVs */
	e.msg.nlmsg_len = NLMSG_HDRLEN + (uint32_t)sizeof(echoed);
	uint16_t flags = (uint16_t)((capped ? NLM_F_CAPPED : 0) | (msg ? NLM_F_ACK_TLVS : 0));
	nb_msg(nb, NLMSG_ERROR, flags, seq, &e, sizeof(e));
	if (!capped) {
		memcpy(nb->b + nb->len, echoed, sizeof(echoed));
		nb->len += sizeof(echoed);
	}
	if (msg) {
		uint32_t offs = 20;
		nb_attr(nb, NLMSGERR_ATTR_OFFS, &offs, sizeof(offs));
		nb_attr(nb, NLMSGERR_ATTR_MSG, msg, strlen(msg) + 1);
	}
	nb_end(nb);
}

/* A route reply to 10.77.1.2 via 10.9.0.254 on ifindex 7 from 10.9.0.1. */
static void good_route(struct nlbuf *nb, uint32_t seq)
{
	nb_route(nb, seq, AF_INET, RTN_UNICAST);
	nb_u32(nb, RTA_TABLE, RT_TABLE_MAIN);
	nb_addr(nb, RTA_DST, "10.77.1.2");
	nb_u32(nb, RTA_OIF, 7);
	nb_addr(nb, RTA_GATEWAY, "10.9.0.254");
	nb_addr(nb, RTA_PREFSRC, "10.9.0.1");
	uint32_t uid = 0;
	nb_attr(nb, RTA_UID, &uid, sizeof(uid));
	nb_end(nb);
}

static const uint8_t MAC7[6] = {2, 0, 0, 0, 0, 7};

static void good_neigh(struct nlbuf *nb, uint32_t seq)
{
	nb_neigh(nb, seq, AF_INET, 7, NUD_REACHABLE, NTF_ROUTER);
	nb_addr(nb, NDA_DST, "10.9.0.7");
	nb_attr(nb, NDA_LLADDR, MAC7, 6);
	uint32_t probes = 1;
	nb_attr(nb, NDA_PROBES, &probes, sizeof(probes));
	nb_end(nb);
}

/* The parsers read from an exact-size heap copy: ASan sees any read past len. */
static int parse_route_exact(const uint8_t *b, size_t len, uint32_t seq, const char *dst, struct neigh_route *out)
{
	uint8_t *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	memcpy(copy, b, len);
	struct ipaddr d = A(dst);
	int rc = neigh_parse_route(copy, len, seq, &d, out);
	free(copy);
	return rc;
}

static int parse_neigh_exact(const uint8_t *b, size_t len, uint32_t seq, struct neigh_entry *out)
{
	uint8_t *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	memcpy(copy, b, len);
	int rc = neigh_parse_neigh(copy, len, seq, out);
	free(copy);
	return rc;
}

static int parse_ack_exact(const uint8_t *b, size_t len, uint32_t seq, char *kmsg, size_t kmsglen)
{
	uint8_t *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	memcpy(copy, b, len);
	int rc = neigh_parse_ack(copy, len, seq, kmsg, kmsglen);
	free(copy);
	return rc;
}

/* ---- parser tests ---- */

static void test_route_good(void **state)
{
	(void)state;
	struct nlbuf nb = {0};
	good_route(&nb, 11);
	struct neigh_route r;
	assert_int_equal(parse_route_exact(nb.b, nb.len, 11, "10.77.1.2", &r), 0);
	assert_int_equal(r.oif, 7);
	assert_int_equal(r.type, RTN_UNICAST);
	assert_true(r.has_gw);
	assert_addr(&r.gw, "10.9.0.254");
	assert_true(r.has_prefsrc);
	assert_addr(&r.prefsrc, "10.9.0.1");
	assert_string_equal(r.kmsg, "");

	/* directly connected: no gateway, the next hop is dst */
	struct nlbuf c = {0};
	nb_route(&c, 12, AF_INET, RTN_UNICAST);
	nb_addr(&c, RTA_DST, "10.9.0.7");
	nb_u32(&c, RTA_OIF, 3);
	nb_end(&c);
	assert_int_equal(parse_route_exact(c.b, c.len, 12, "10.9.0.7", &r), 0);
	assert_false(r.has_gw);
	assert_addr(&r.gw, "10.9.0.7");
	assert_false(r.has_prefsrc);
	assert_addr(&r.prefsrc, "::");
	assert_int_equal(r.oif, 3);

	/* a local route keeps its type */
	struct nlbuf l = {0};
	nb_route(&l, 13, AF_INET, RTN_LOCAL);
	nb_u32(&l, RTA_OIF, 1);
	nb_end(&l);
	assert_int_equal(parse_route_exact(l.b, l.len, 13, "10.9.0.1", &r), 0);
	assert_int_equal(r.type, RTN_LOCAL);
	assert_int_equal(r.oif, 1);
}

static void test_route_v6_and_via(void **state)
{
	(void)state;
	struct nlbuf nb = {0};
	nb_route(&nb, 5, AF_INET6, RTN_UNICAST);
	nb_addr(&nb, RTA_DST, "2001:db8::9");
	nb_addr(&nb, RTA_GATEWAY, "fe80::1");
	nb_u32(&nb, RTA_OIF, 4);
	nb_addr(&nb, RTA_PREFSRC, "2001:db8::1");
	nb_end(&nb);
	struct neigh_route r;
	assert_int_equal(parse_route_exact(nb.b, nb.len, 5, "2001:db8::9", &r), 0);
	assert_addr(&r.gw, "fe80::1");
	assert_addr(&r.prefsrc, "2001:db8::1");
	assert_int_equal(r.oif, 4);
	/* the same reply does not answer an IPv4 lookup */
	assert_int_equal(parse_route_exact(nb.b, nb.len, 5, "10.0.0.9", &r), -EBADMSG);

	/* IPv4 over an IPv6 next hop (RTA_VIA) */
	struct nlbuf v = {0};
	nb_route(&v, 6, AF_INET, RTN_UNICAST);
	uint8_t via[2 + 16];
	uint16_t fam = AF_INET6;
	struct ipaddr g = A("fe80::2");
	memcpy(via, &fam, 2);
	memcpy(via + 2, g.b, 16);
	nb_attr(&v, RTA_VIA, via, sizeof(via));
	nb_u32(&v, RTA_OIF, 4);
	nb_end(&v);
	assert_int_equal(parse_route_exact(v.b, v.len, 6, "10.0.0.9", &r), 0);
	assert_true(r.has_gw);
	assert_addr(&r.gw, "fe80::2");

	/* a via of the wrong length */
	struct nlbuf w = {0};
	nb_route(&w, 6, AF_INET, RTN_UNICAST);
	nb_attr(&w, RTA_VIA, via, sizeof(via) - 1);
	nb_end(&w);
	assert_int_equal(parse_route_exact(w.b, w.len, 6, "10.0.0.9", &r), -EBADMSG);
}

static void test_route_error(void **state)
{
	(void)state;
	struct neigh_route r;
	struct nlbuf nb = {0};
	nb_error(&nb, 21, -ENETUNREACH, true, NULL);
	assert_int_equal(parse_route_exact(nb.b, nb.len, 21, "192.0.2.1", &r), -ENETUNREACH);
	assert_string_equal(r.kmsg, "");

	/* with the request echoed and an extended-ack text */
	struct nlbuf e = {0};
	nb_error(&e, 22, -EHOSTUNREACH, false, "no way there");
	assert_int_equal(parse_route_exact(e.b, e.len, 22, "192.0.2.1", &r), -EHOSTUNREACH);
	assert_string_equal(r.kmsg, "no way there");

	/* capped, with the text */
	struct nlbuf c = {0};
	nb_error(&c, 23, -EINVAL, true, "Invalid values in header");
	assert_int_equal(parse_route_exact(c.b, c.len, 23, "192.0.2.1", &r), -EINVAL);
	assert_string_equal(r.kmsg, "Invalid values in header");

	/* a positive ack is no route reply; a positive error code is malformed */
	struct nlbuf k = {0};
	nb_error(&k, 24, 0, true, NULL);
	assert_int_equal(parse_route_exact(k.b, k.len, 24, "192.0.2.1", &r), -EBADMSG);
	struct nlbuf p = {0};
	nb_error(&p, 25, 5, true, NULL);
	assert_int_equal(parse_route_exact(p.b, p.len, 25, "192.0.2.1", &r), -EBADMSG);

	/* an error message too short for struct nlmsgerr */
	struct nlbuf s = {0};
	int32_t code = -ENETUNREACH;
	nb_msg(&s, NLMSG_ERROR, 0, 26, &code, sizeof(code));
	nb_end(&s);
	assert_int_equal(parse_route_exact(s.b, s.len, 26, "192.0.2.1", &r), -EBADMSG);
}

static void test_other_seq_first(void **state)
{
	(void)state;
	struct nlbuf nb = {0};
	/* an old reply (another seq) with other data, an error of yet another seq, then ours */
	nb_route(&nb, 40, AF_INET, RTN_UNICAST);
	nb_u32(&nb, RTA_OIF, 99);
	nb_end(&nb);
	nb_error(&nb, 39, -ENETUNREACH, true, "stale");
	good_route(&nb, 41);
	struct neigh_route r;
	assert_int_equal(parse_route_exact(nb.b, nb.len, 41, "10.77.1.2", &r), 0);
	assert_int_equal(r.oif, 7);
	assert_addr(&r.gw, "10.9.0.254");
	/* the older ones still parse by their own seq */
	assert_int_equal(parse_route_exact(nb.b, nb.len, 40, "10.77.1.2", &r), 0);
	assert_int_equal(r.oif, 99);
	assert_int_equal(parse_route_exact(nb.b, nb.len, 39, "10.77.1.2", &r), -ENETUNREACH);
	/* nothing for seq 42 */
	assert_int_equal(parse_route_exact(nb.b, nb.len, 42, "10.77.1.2", &r), -EBADMSG);

	struct nlbuf n2 = {0};
	nb_neigh(&n2, 1, AF_INET, 7, NUD_FAILED, 0);
	nb_end(&n2);
	good_neigh(&n2, 2);
	struct neigh_entry e;
	assert_int_equal(parse_neigh_exact(n2.b, n2.len, 2, &e), 0);
	assert_int_equal(e.state, NUD_REACHABLE);
	assert_int_equal(parse_neigh_exact(n2.b, n2.len, 1, &e), 0);
	assert_int_equal(e.state, NUD_FAILED);
	assert_false(e.has_lladdr);
}

/* Every proper prefix of a buffer whose reply is its last message fails. */
static void test_truncated(void **state)
{
	(void)state;
	struct nlbuf r = {0}, n = {0}, k = {0}, e = {0};
	nb_route(&r, 40, AF_INET, RTN_UNICAST);
	nb_u32(&r, RTA_OIF, 99);
	nb_end(&r);
	good_route(&r, 41);
	nb_neigh(&n, 1, AF_INET, 7, NUD_FAILED, 0);
	nb_end(&n);
	good_neigh(&n, 2);
	nb_error(&k, 3, 0, true, NULL);
	nb_error(&e, 4, -ENOENT, false, "Neighbour entry not found");
	struct neigh_route rt;
	struct neigh_entry ne;
	char kmsg[64];
	assert_int_equal(parse_route_exact(r.b, r.len, 41, "10.77.1.2", &rt), 0);
	assert_int_equal(parse_neigh_exact(n.b, n.len, 2, &ne), 0);
	assert_int_equal(parse_ack_exact(k.b, k.len, 3, kmsg, sizeof(kmsg)), 0);
	assert_int_equal(parse_neigh_exact(e.b, e.len, 4, &ne), -ENOENT);
	assert_string_equal(ne.kmsg, "Neighbour entry not found");
	for (size_t len = 0; len < r.len; len++)
		if (parse_route_exact(r.b, len, 41, "10.77.1.2", &rt) != -EBADMSG)
			fail_msg("route reply cut to %zu of %zu bytes accepted", len, r.len);
	for (size_t len = 0; len < n.len; len++)
		if (parse_neigh_exact(n.b, len, 2, &ne) != -EBADMSG)
			fail_msg("neighbour reply cut to %zu of %zu bytes accepted", len, n.len);
	for (size_t len = 0; len < k.len; len++)
		if (parse_ack_exact(k.b, len, 3, kmsg, sizeof(kmsg)) != -EBADMSG)
			fail_msg("ack cut to %zu of %zu bytes accepted", len, k.len);
	for (size_t len = 0; len < e.len; len++)
		if (parse_neigh_exact(e.b, len, 4, &ne) != -EBADMSG)
			fail_msg("error reply cut to %zu of %zu bytes accepted", len, e.len);
	/* a short kmsg buffer gets a terminated prefix */
	char small[8];
	assert_int_equal(parse_ack_exact(e.b, e.len, 4, small, sizeof(small)), -ENOENT);
	assert_string_equal(small, "Neighbo");
}

static void set_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, sizeof(v)); }
static void set_u16(uint8_t *p, uint16_t v) { memcpy(p, &v, sizeof(v)); }

static void test_bad_lengths(void **state)
{
	(void)state;
	struct neigh_route r;
	struct nlbuf nb = {0};
	good_route(&nb, 7);
	assert_int_equal(parse_route_exact(nb.b, nb.len, 7, "10.77.1.2", &r), 0);
	/* nlmsg_len larger than the buffer, below the header size, zero */
	const uint32_t bad_nl[] = {(uint32_t)nb.len + 4, (uint32_t)nb.len + 1, 0xffffffffu, 15, 0};
	for (size_t i = 0; i < ARRAY_SIZE(bad_nl); i++) {
		struct nlbuf c = nb;
		set_u32(c.b, bad_nl[i]);
		if (parse_route_exact(c.b, c.len, 7, "10.77.1.2", &r) != -EBADMSG)
			fail_msg("nlmsg_len %u of a %zu-byte buffer accepted", bad_nl[i], c.len);
	}
	/* the rtmsg itself cut: nlmsg_len 16 + 8 */
	struct nlbuf h = nb;
	set_u32(h.b, NLMSG_HDRLEN + 8);
	assert_int_equal(parse_route_exact(h.b, NLMSG_HDRLEN + 8, 7, "10.77.1.2", &r), -EBADMSG);

	/* the first attribute (RTA_TABLE) sits right after the rtmsg */
	size_t a0 = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct rtmsg));
	const uint16_t bad_rta[] = {0, 3, (uint16_t)(nb.len - a0 + 1), 0xffff};
	for (size_t i = 0; i < ARRAY_SIZE(bad_rta); i++) {
		struct nlbuf c = nb;
		set_u16(c.b + a0, bad_rta[i]);
		if (parse_route_exact(c.b, c.len, 7, "10.77.1.2", &r) != -EBADMSG)
			fail_msg("rta_len %u accepted", bad_rta[i]);
	}
	/* an attribute running past its message into the next one */
	struct nlbuf two = {0};
	nb_route(&two, 7, AF_INET, RTN_UNICAST);
	nb_u32(&two, RTA_OIF, 7);
	nb_end(&two);
	size_t second = two.len;
	good_route(&two, 8);
	set_u16(two.b + a0, (uint16_t)(RTA_LENGTH(4) + 8));
	assert_true(a0 + RTA_LENGTH(4) + 8 <= two.len);
	assert_true(a0 + RTA_LENGTH(4) + 8 > second);
	assert_int_equal(parse_route_exact(two.b, two.len, 7, "10.77.1.2", &r), -EBADMSG);
	/* a malformed message of another seq ends the walk too */
	assert_int_equal(parse_route_exact(two.b, two.len, 8, "10.77.1.2", &r), 0); /* its header is fine */
	struct nlbuf badfirst = two;
	set_u32(badfirst.b, 8);
	assert_int_equal(parse_route_exact(badfirst.b, badfirst.len, 8, "10.77.1.2", &r), -EBADMSG);
	/* ... also one of 2 GiB or more (libmnl 1.0.4's mnl_nlmsg_ok takes it for a fit) */
	const uint32_t huge[] = {0x80000000u, 0xfffffffcu};
	for (size_t i = 0; i < ARRAY_SIZE(huge); i++) {
		set_u32(badfirst.b, huge[i]);
		assert_int_equal(parse_route_exact(badfirst.b, badfirst.len, 8, "10.77.1.2", &r), -EBADMSG);
	}
	/* trailing bytes after the last message */
	struct nlbuf trail = {0};
	nb_route(&trail, 40, AF_INET, RTN_UNICAST);
	nb_end(&trail);
	trail.len += 8;
	assert_int_equal(parse_route_exact(trail.b, trail.len, 41, "10.77.1.2", &r), -EBADMSG);

	/* attributes of the wrong size or the wrong address */
	struct {
		uint16_t type;
		size_t len;
	} wrong[] = {{RTA_OIF, 2}, {RTA_OIF, 8}, {RTA_GATEWAY, 16}, {RTA_GATEWAY, 3}, {RTA_PREFSRC, 6}, {RTA_DST, 16}};
	for (size_t i = 0; i < ARRAY_SIZE(wrong); i++) {
		struct nlbuf c = {0};
		uint8_t zero[16] = {0};
		nb_route(&c, 9, AF_INET, RTN_UNICAST);
		nb_attr(&c, wrong[i].type, zero, wrong[i].len);
		nb_end(&c);
		if (parse_route_exact(c.b, c.len, 9, "10.77.1.2", &r) != -EBADMSG)
			fail_msg("attribute %u of %zu bytes accepted", wrong[i].type, wrong[i].len);
	}
	struct nlbuf d = {0};
	nb_route(&d, 9, AF_INET, RTN_UNICAST);
	nb_addr(&d, RTA_DST, "10.77.1.3");
	nb_end(&d);
	assert_int_equal(parse_route_exact(d.b, d.len, 9, "10.77.1.2", &r), -EBADMSG);
	assert_int_equal(parse_route_exact(d.b, d.len, 9, "10.77.1.3", &r), 0);
	/* wrong family */
	struct nlbuf f = {0};
	nb_route(&f, 9, AF_INET6, RTN_UNICAST);
	nb_end(&f);
	assert_int_equal(parse_route_exact(f.b, f.len, 9, "10.77.1.2", &r), -EBADMSG);
}

static void test_neigh_reply(void **state)
{
	(void)state;
	struct neigh_entry e;
	struct nlbuf nb = {0};
	good_neigh(&nb, 3);
	assert_int_equal(parse_neigh_exact(nb.b, nb.len, 3, &e), 0);
	assert_int_equal(e.state, NUD_REACHABLE);
	assert_int_equal(e.flags, NTF_ROUTER);
	assert_int_equal(e.ifindex, 7);
	assert_int_equal(e.family, AF_INET);
	assert_true(e.has_dst);
	assert_addr(&e.dst, "10.9.0.7");
	assert_true(e.has_lladdr);
	assert_memory_equal(e.lladdr, MAC7, 6);

	/* lladdr of 5 or 7 bytes */
	for (size_t l = 5; l <= 7; l += 2) {
		struct nlbuf c = {0};
		uint8_t mac[7] = {2, 0, 0, 0, 0, 7, 9};
		nb_neigh(&c, 3, AF_INET, 7, NUD_REACHABLE, 0);
		nb_addr(&c, NDA_DST, "10.9.0.7");
		nb_attr(&c, NDA_LLADDR, mac, l);
		nb_end(&c);
		if (parse_neigh_exact(c.b, c.len, 3, &e) != -EBADMSG)
			fail_msg("lladdr of %zu bytes accepted", l);
	}
	/* IPv6, no lladdr (INCOMPLETE) */
	struct nlbuf v = {0};
	nb_neigh(&v, 4, AF_INET6, 2, NUD_INCOMPLETE, 0);
	nb_addr(&v, NDA_DST, "fd00::7");
	nb_end(&v);
	assert_int_equal(parse_neigh_exact(v.b, v.len, 4, &e), 0);
	assert_int_equal(e.state, NUD_INCOMPLETE);
	assert_int_equal(e.family, AF_INET6);
	assert_addr(&e.dst, "fd00::7");
	assert_false(e.has_lladdr);
	/* a destination of the other family's length; an unknown family */
	struct nlbuf w = {0};
	nb_neigh(&w, 4, AF_INET6, 2, NUD_INCOMPLETE, 0);
	nb_addr(&w, NDA_DST, "10.9.0.7");
	nb_end(&w);
	assert_int_equal(parse_neigh_exact(w.b, w.len, 4, &e), -EBADMSG);
	struct nlbuf b = {0};
	nb_neigh(&b, 4, AF_BRIDGE, 2, NUD_REACHABLE, 0);
	nb_end(&b);
	assert_int_equal(parse_neigh_exact(b.b, b.len, 4, &e), -EBADMSG);
	/* the kernel's "no entry" */
	struct nlbuf n = {0};
	nb_error(&n, 5, -ENOENT, true, "Neighbour entry not found");
	assert_int_equal(parse_neigh_exact(n.b, n.len, 5, &e), -ENOENT);
	assert_string_equal(e.kmsg, "Neighbour entry not found");
	/* a route reply is not a neighbour reply */
	struct nlbuf r = {0};
	good_route(&r, 6);
	assert_int_equal(parse_neigh_exact(r.b, r.len, 6, &e), -EBADMSG);
}

static void test_ack(void **state)
{
	(void)state;
	char kmsg[NEIGH_KMSG_LEN];
	struct nlbuf k = {0};
	nb_error(&k, 8, 0, true, NULL);
	assert_int_equal(parse_ack_exact(k.b, k.len, 8, kmsg, sizeof(kmsg)), 0);
	assert_int_equal(parse_ack_exact(k.b, k.len, 9, kmsg, sizeof(kmsg)), -EBADMSG);
	assert_int_equal(neigh_parse_ack(k.b, k.len, 8, NULL, 0), 0);
	struct nlbuf e = {0};
	nb_error(&e, 8, -EOPNOTSUPP, false, "Unsupported");
	assert_int_equal(parse_ack_exact(e.b, e.len, 8, kmsg, sizeof(kmsg)), -EOPNOTSUPP);
	assert_string_equal(kmsg, "Unsupported");
	/* TLVs with a broken length: the code stands, without text */
	struct nlbuf t = {0};
	nb_error(&t, 8, -EPERM, true, "x");
	size_t first_tlv = NLMSG_HDRLEN + sizeof(struct nlmsgerr);
	set_u16(t.b + first_tlv, 0);
	assert_int_equal(parse_ack_exact(t.b, t.len, 8, kmsg, sizeof(kmsg)), -EPERM);
	assert_string_equal(kmsg, "");
	/* an echoed request longer than the message: no text either */
	struct nlbuf u = {0};
	nb_error(&u, 8, -EPERM, false, "y");
	set_u32(u.b + NLMSG_HDRLEN + offsetof(struct nlmsgerr, msg), 4000);
	assert_int_equal(parse_ack_exact(u.b, u.len, 8, kmsg, sizeof(kmsg)), -EPERM);
	assert_string_equal(kmsg, "");
}

/* Replies of a real kernel (6.18, x86-64: netlink is in host order),
 * captured in a namespace with a on ifindex 3, 10.9.0.1/24 and fd00::1/64
 * on it, `ip route add 10.9.0.7/32 via 10.9.0.254` and fd00::7 at
 * 02:00:00:00:00:07: the route to 10.9.0.7 (seq 41), the neighbour fd00::7
 * (seq 42), the error for the missing neighbour 10.9.0.99 (seq 43, with the
 * NETLINK_EXT_ACK text, NETLINK_CAP_ACK). */
static const uint8_t k_route[] = {
	0x70, 0x00, 0x00, 0x00, 0x18, 0x00, 0x00, 0x00, 0x29, 0x00, 0x00, 0x00,
	0x78, 0x27, 0x00, 0x00, 0x02, 0x20, 0x00, 0x00, 0xfe, 0x00, 0x00, 0x01,
	0x00, 0x02, 0x00, 0x00, 0x08, 0x00, 0x0f, 0x00, 0xfe, 0x00, 0x00, 0x00,
	0x08, 0x00, 0x01, 0x00, 0x0a, 0x09, 0x00, 0x07, 0x08, 0x00, 0x04, 0x00,
	0x03, 0x00, 0x00, 0x00, 0x08, 0x00, 0x07, 0x00, 0x0a, 0x09, 0x00, 0x01,
	0x08, 0x00, 0x05, 0x00, 0x0a, 0x09, 0x00, 0xfe, 0x08, 0x00, 0x19, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x24, 0x00, 0x0c, 0x00, 0x02, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00
};
static const uint8_t k_neigh[] = {
	0x58, 0x00, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x00, 0x2a, 0x00, 0x00, 0x00,
	0x78, 0x27, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00,
	0x02, 0x00, 0x00, 0x01, 0x14, 0x00, 0x01, 0x00, 0xfd, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07,
	0x0a, 0x00, 0x02, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00,
	0x08, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x03, 0x00,
	0x15, 0x00, 0x00, 0x00, 0x15, 0x00, 0x00, 0x00, 0x15, 0x00, 0x00, 0x00,
	0x02, 0x00, 0x00, 0x00
};
static const uint8_t k_enoent[] = {
	0x44, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x03, 0x2b, 0x00, 0x00, 0x00,
	0x78, 0x27, 0x00, 0x00, 0xfe, 0xff, 0xff, 0xff, 0x24, 0x00, 0x00, 0x00,
	0x1e, 0x00, 0x01, 0x00, 0x2b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x1e, 0x00, 0x01, 0x00, 0x4e, 0x65, 0x69, 0x67, 0x68, 0x62, 0x6f, 0x75,
	0x72, 0x20, 0x65, 0x6e, 0x74, 0x72, 0x79, 0x20, 0x6e, 0x6f, 0x74, 0x20,
	0x66, 0x6f, 0x75, 0x6e, 0x64, 0x00, 0x00, 0x00
};

static void test_kernel_replies(void **state)
{
	(void)state;
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
	skip();
#endif
	struct neigh_route r;
	assert_int_equal(parse_route_exact(k_route, sizeof(k_route), 41, "10.9.0.7", &r), 0);
	assert_int_equal(r.type, RTN_UNICAST);
	assert_int_equal(r.oif, 3);
	assert_true(r.has_gw);
	assert_addr(&r.gw, "10.9.0.254");
	assert_addr(&r.prefsrc, "10.9.0.1");
	struct neigh_entry e;
	assert_int_equal(parse_neigh_exact(k_neigh, sizeof(k_neigh), 42, &e), 0);
	assert_int_equal(e.family, AF_INET6);
	assert_int_equal(e.ifindex, 3);
	assert_int_equal(e.state, NUD_REACHABLE);
	assert_addr(&e.dst, "fd00::7");
	assert_true(e.has_lladdr);
	assert_memory_equal(e.lladdr, MAC7, 6);
	assert_int_equal(parse_neigh_exact(k_enoent, sizeof(k_enoent), 43, &e), -ENOENT);
	assert_string_equal(e.kmsg, "Neighbour entry not found");
	for (size_t len = 0; len < sizeof(k_route); len++)
		if (parse_route_exact(k_route, len, 41, "10.9.0.7", &r) != -EBADMSG)
			fail_msg("kernel route reply cut to %zu bytes accepted", len);
}

/* A buffer of any alignment is parsed (the parsers hand libmnl an aligned
 * copy); one longer than NEIGH_PARSE_MAX is refused. */
static void test_alignment_and_size(void **state)
{
	(void)state;
	struct nlbuf nb = {0};
	good_route(&nb, 11);
	good_neigh(&nb, 12);
	nb_error(&nb, 13, -ENOENT, false, "Neighbour entry not found");
	struct ipaddr d = A("10.77.1.2");
	for (size_t shift = 1; shift < 8; shift++) {
		uint8_t *b = malloc(nb.len + shift);
		assert_non_null(b);
		memcpy(b + shift, nb.b, nb.len);
		struct neigh_route r;
		struct neigh_entry e;
		char kmsg[NEIGH_KMSG_LEN];
		assert_int_equal(neigh_parse_route(b + shift, nb.len, 11, &d, &r), 0);
		assert_int_equal(r.oif, 7);
		assert_addr(&r.gw, "10.9.0.254");
		assert_int_equal(neigh_parse_neigh(b + shift, nb.len, 12, &e), 0);
		assert_memory_equal(e.lladdr, MAC7, 6);
		assert_int_equal(neigh_parse_ack(b + shift, nb.len, 13, kmsg, sizeof(kmsg)), -ENOENT);
		assert_string_equal(kmsg, "Neighbour entry not found");
		free(b);
	}
	/* an NLMSG_NOOP filling the buffer up to the route reply at its end */
	struct nlbuf r1 = {0};
	good_route(&r1, 14);
	for (size_t total = NEIGH_PARSE_MAX; total <= NEIGH_PARSE_MAX + 4; total += 4) {
		uint8_t *b = calloc(1, total);
		assert_non_null(b);
		struct nlmsghdr noop = {.nlmsg_len = (uint32_t)(total - r1.len), .nlmsg_type = NLMSG_NOOP,
					 .nlmsg_seq = 14};
		memcpy(b, &noop, sizeof(noop));
		memcpy(b + total - r1.len, r1.b, r1.len);
		struct neigh_route r;
		assert_int_equal(neigh_parse_route(b, total, 14, &d, &r), total <= NEIGH_PARSE_MAX ? 0 : -EBADMSG);
		free(b);
	}
}

static void test_state_names(void **state)
{
	(void)state;
	assert_string_equal(neigh_state_name(NEIGH_OK), "ok");
	assert_string_equal(neigh_state_name(NEIGH_PENDING), "pending");
	assert_string_equal(neigh_state_name(NEIGH_NO_ROUTE), "no route");
	assert_string_equal(neigh_state_name(NEIGH_OTHER_DEV), "other device");
	assert_string_equal(neigh_state_name(NEIGH_FAILED), "failed");
	assert_string_equal(neigh_state_name(NEIGH_ERROR), "error");
	assert_string_equal(neigh_state_name((enum neigh_state)42), "?");
	neigh_close(NULL);
}

/* ---- live tests: each in a fresh network namespace ---- */

static char peer_ns[64]; /* the named namespace of the ARP test, "" when none */

static bool fresh_netns(void)
{
	return geteuid() == 0 && unshare(CLONE_NEWNET) == 0;
}

#define NEED_NETNS()                                                                       \
	do {                                                                               \
		if (!fresh_netns()) {                                                      \
			print_message("live neigh tests need root and netns: skipped\n"); \
			skip();                                                            \
		}                                                                          \
	} while (0)

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int rc = system(cmd);
	if (rc != 0)
		fail_msg("`%s` failed (status %d)", cmd, rc);
}

/* veth a <-> b, both up, 10.9.0.1/24 on a; lo up. */
static void veth_pair(void)
{
	sh("ip link set lo up && ip link add name a type veth peer name b"
	   " && ip link set dev a up && ip link set dev b up && ip addr add 10.9.0.1/24 dev a");
}

static int ifidx(const char *name)
{
	int i = (int)if_nametoindex(name);
	if (i <= 0)
		fail_msg("no interface %s", name);
	return i;
}

static struct neigh *open_n(void)
{
	char err[200] = "";
	struct neigh *n = neigh_open(err, sizeof(err));
	if (!n)
		fail_msg("neigh_open: %s", err);
	return n;
}

static void assert_state(enum neigh_state got, enum neigh_state want, const char *err)
{
	if (got != want)
		fail_msg("state %s, want %s (%s)", neigh_state_name(got), neigh_state_name(want), err);
}

static void test_live_direct(void **state)
{
	(void)state;
	NEED_NETNS();
	veth_pair();
	sh("ip neigh add 10.9.0.7 lladdr 02:00:00:00:00:07 dev a nud permanent");
	struct neigh *n = open_n();
	struct neigh_result r;
	char err[256] = "";
	struct ipaddr d = A("10.9.0.7");
	assert_state(neigh_resolve(n, ifidx("a"), &d, &r, err, sizeof(err)), NEIGH_OK, err);
	assert_int_equal(r.st, NEIGH_OK);
	assert_memory_equal(r.mac, MAC7, 6);
	assert_addr(&r.nexthop, "10.9.0.7");
	assert_int_equal(r.oif, ifidx("a"));
	assert_addr(&r.src, "10.9.0.1");
	/* (c) asked for the other end of the pair: the route leaves through a */
	err[0] = 0;
	assert_state(neigh_resolve(n, ifidx("b"), &d, &r, err, sizeof(err)), NEIGH_OTHER_DEV, err);
	assert_int_equal(r.oif, ifidx("a"));
	assert_non_null(strstr(err, "10.9.0.7"));
	/* a local address */
	struct ipaddr self = A("10.9.0.1");
	assert_state(neigh_resolve(n, ifidx("a"), &self, &r, err, sizeof(err)), NEIGH_OTHER_DEV, err);
	assert_non_null(strstr(err, "local"));
	/* the entry is left as it was: still permanent */
	assert_state(neigh_resolve(n, ifidx("a"), &d, &r, err, sizeof(err)), NEIGH_OK, err);
	assert_int_equal(system("ip neigh show 10.9.0.7 dev a | grep -q PERMANENT"), 0);
	/* a stale entry gives its address and is handed back to the kernel to confirm (DELAY) */
	sh("ip neigh add 10.9.0.8 lladdr 02:00:00:00:00:08 dev a nud stale");
	struct ipaddr s8 = A("10.9.0.8");
	assert_state(neigh_resolve(n, ifidx("a"), &s8, &r, err, sizeof(err)), NEIGH_OK, err);
	const uint8_t mac8[6] = {2, 0, 0, 0, 0, 8};
	assert_memory_equal(r.mac, mac8, 6);
	assert_int_equal(system("ip neigh show 10.9.0.8 dev a | grep -q DELAY"), 0);
	neigh_close(n);
}

static void test_live_gateway(void **state)
{
	(void)state;
	NEED_NETNS();
	veth_pair();
	sh("ip neigh add 10.9.0.254 lladdr 02:00:00:00:00:fe dev a nud permanent"
	   " && ip route add 10.77.0.0/16 via 10.9.0.254 dev a");
	struct neigh *n = open_n();
	struct neigh_result r;
	char err[256] = "";
	struct ipaddr d = A("10.77.1.2");
	assert_state(neigh_resolve(n, ifidx("a"), &d, &r, err, sizeof(err)), NEIGH_OK, err);
	const uint8_t fe[6] = {2, 0, 0, 0, 0, 0xfe};
	assert_memory_equal(r.mac, fe, 6);
	assert_addr(&r.nexthop, "10.9.0.254");
	assert_int_equal(r.oif, ifidx("a"));
	assert_addr(&r.src, "10.9.0.1");
	neigh_close(n);
}

static void test_live_no_route(void **state)
{
	(void)state;
	NEED_NETNS();
	veth_pair();
	sh("ip -6 addr add fd00::1/64 dev a nodad"
	   " && ip route add unreachable 10.66.0.0/16 && ip route add blackhole 10.67.0.0/16"
	   " && ip route add prohibit 10.68.0.0/16 && ip -6 route add blackhole fd67::/64"
	   " && ip -6 route add prohibit fd68::/64 && ip -6 route add unreachable fd66::/64");
	struct neigh *n = open_n();
	struct neigh_result r;
	/* no route, unreachable, blackhole, prohibit (each family); a broadcast route is not unicast */
	const char *none[] = {"192.0.2.1", "2001:db8::1", "10.66.0.1", "fd66::1", "10.67.0.1",
			      "fd67::1",   "10.68.0.1",   "fd68::1",   "10.9.0.255"};
	for (size_t i = 0; i < ARRAY_SIZE(none); i++) {
		char err[256] = "";
		struct ipaddr d = A(none[i]);
		enum neigh_state st = neigh_resolve(n, ifidx("a"), &d, &r, err, sizeof(err));
		if (st != NEIGH_NO_ROUTE)
			fail_msg("%s: %s, want no route (%s)", none[i], neigh_state_name(st), err);
		assert_int_equal(r.st, NEIGH_NO_ROUTE);
		assert_int_equal(r.oif, i + 1 < ARRAY_SIZE(none) ? 0 : ifidx("a"));
		assert_non_null(strstr(err, none[i]));
	}
	/* asked on lo: the route leaves through a */
	char err[256] = "";
	struct ipaddr d = A("10.9.0.7");
	assert_state(neigh_resolve(n, ifidx("lo"), &d, &r, err, sizeof(err)), NEIGH_OTHER_DEV, err);
	/* bad arguments */
	assert_state(neigh_resolve(n, 0, &d, &r, err, sizeof(err)), NEIGH_ERROR, err);
	assert_state(neigh_resolve(NULL, ifidx("a"), &d, &r, err, sizeof(err)), NEIGH_ERROR, err);
	neigh_close(n);
}

static void test_live_v6(void **state)
{
	(void)state;
	NEED_NETNS();
	veth_pair();
	sh("ip -6 addr add fd00::1/64 dev a nodad"
	   " && ip -6 neigh add fd00::7 lladdr 02:00:00:00:00:07 dev a nud permanent");
	struct neigh *n = open_n();
	struct neigh_result r;
	char err[256] = "";
	struct ipaddr d = A("fd00::7");
	assert_state(neigh_resolve(n, ifidx("a"), &d, &r, err, sizeof(err)), NEIGH_OK, err);
	assert_memory_equal(r.mac, MAC7, 6);
	assert_addr(&r.nexthop, "fd00::7");
	assert_int_equal(r.oif, ifidx("a"));
	assert_addr(&r.src, "fd00::1");
	neigh_close(n);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Calls neigh_resolve every 10 ms until it returns want or ms pass. */
static enum neigh_state poll_until(struct neigh *n, int ifindex, const struct ipaddr *d, enum neigh_state want,
				   uint64_t ms, struct neigh_result *r, char *err, size_t errlen)
{
	uint64_t end = mono_ms() + ms;
	enum neigh_state st;
	for (;;) {
		st = neigh_resolve(n, ifindex, d, r, err, errlen);
		if (st == want || st == NEIGH_ERROR || mono_ms() >= end)
			return st;
		struct timespec ten = {0, 10 * 1000 * 1000};
		nanosleep(&ten, NULL);
	}
}

static int peer_teardown(void **state)
{
	(void)state;
	if (peer_ns[0]) {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null", peer_ns);
		if (system(cmd) != 0)
			print_message("could not delete netns %s\n", peer_ns);
		peer_ns[0] = 0;
	}
	return 0;
}

/* (e) a real ARP exchange with b in a namespace of its own */
static void test_live_arp(void **state)
{
	(void)state;
	NEED_NETNS();
	veth_pair();
	snprintf(peer_ns, sizeof(peer_ns), "detour-neigh-%d", (int)getpid());
	sh("ip netns add %s", peer_ns);
	sh("ip link set dev b address 02:00:00:00:00:02 && ip link set dev b netns %s", peer_ns);
	sh("ip -n %s link set lo up && ip -n %s addr add 10.9.0.2/24 dev b && ip -n %s link set dev b up", peer_ns,
	   peer_ns, peer_ns);
	/* b's address as the peer namespace sees it */
	char cmd[160], mac[32] = "";
	snprintf(cmd, sizeof(cmd), "ip netns exec %s cat /sys/class/net/b/address", peer_ns);
	FILE *f = popen(cmd, "r");
	assert_non_null(f);
	assert_non_null(fgets(mac, sizeof(mac), f));
	assert_int_equal(pclose(f), 0);
	mac[strcspn(mac, "\n")] = 0;
	struct mac want;
	assert_true(mac_parse(mac, &want));
	const uint8_t set[6] = {2, 0, 0, 0, 0, 2};
	assert_memory_equal(want.b, set, 6);

	struct neigh *n = open_n();
	struct neigh_result r;
	char err[256] = "";
	struct ipaddr d = A("10.9.0.2");
	enum neigh_state st = neigh_resolve(n, ifidx("a"), &d, &r, err, sizeof(err));
	if (st != NEIGH_PENDING && st != NEIGH_OK)
		fail_msg("first resolve: %s (%s)", neigh_state_name(st), err);
	print_message("first resolve of 10.9.0.2: %s\n", neigh_state_name(st));
	st = poll_until(n, ifidx("a"), &d, NEIGH_OK, 3000, &r, err, sizeof(err));
	assert_state(st, NEIGH_OK, err);
	assert_memory_equal(r.mac, want.b, 6);
	assert_addr(&r.nexthop, "10.9.0.2");
	/* the kernel learnt it by ARP: a dynamic entry */
	assert_int_equal(system("ip neigh show 10.9.0.2 dev a | grep -q 'lladdr 02:00:00:00:00:02'"), 0);
	assert_int_not_equal(system("ip neigh show 10.9.0.2 dev a | grep -q PERMANENT"), 0);
	neigh_close(n);
}

/* Nobody answers 10.9.0.99: pending while the kernel asks, then failed. */
static void test_live_failed(void **state)
{
	(void)state;
	NEED_NETNS();
	veth_pair();
	/* fast ARP give-up: one broadcast probe, 20 ms */
	sh("cd /proc/sys/net/ipv4/neigh/a && echo 20 > retrans_time_ms && echo 1 > mcast_solicit"
	   " && echo 0 > ucast_solicit && echo 0 > app_solicit");
	struct neigh *n = open_n();
	struct neigh_result r;
	char err[256] = "";
	struct ipaddr d = A("10.9.0.99");
	/* with no probes at all the kernel fails a new entry as soon as it is asked */
	sh("echo 0 > /proc/sys/net/ipv4/neigh/a/mcast_solicit");
	struct ipaddr d98 = A("10.9.0.98");
	assert_state(neigh_resolve(n, ifidx("a"), &d98, &r, err, sizeof(err)), NEIGH_FAILED, err);
	assert_int_equal(system("ip neigh show 10.9.0.98 dev a | grep -q FAILED"), 0);
	sh("echo 1 > /proc/sys/net/ipv4/neigh/a/mcast_solicit");
	assert_state(neigh_resolve(n, ifidx("a"), &d, &r, err, sizeof(err)), NEIGH_PENDING, err);
	assert_addr(&r.nexthop, "10.9.0.99");
	assert_int_equal(system("ip neigh show 10.9.0.99 dev a | grep -q -e INCOMPLETE -e FAILED"), 0);
	enum neigh_state st = poll_until(n, ifidx("a"), &d, NEIGH_FAILED, 3000, &r, err, sizeof(err));
	assert_state(st, NEIGH_FAILED, err);
	assert_non_null(strstr(err, "10.9.0.99"));
	/* slow probes from now on; once the entry is FAILED, a resolve says so
	 * and asks again: the entry is INCOMPLETE for the next 3 s */
	sh("echo 3000 > /proc/sys/net/ipv4/neigh/a/retrans_time_ms");
	uint64_t end = mono_ms() + 1000;
	while (system("ip neigh show 10.9.0.99 dev a | grep -q FAILED") != 0) {
		if (mono_ms() >= end)
			fail_msg("the entry of 10.9.0.99 did not go FAILED");
		struct timespec ten = {0, 10 * 1000 * 1000};
		nanosleep(&ten, NULL);
	}
	assert_state(neigh_resolve(n, ifidx("a"), &d, &r, err, sizeof(err)), NEIGH_FAILED, err);
	assert_int_equal(system("ip neigh show 10.9.0.99 dev a | grep -q INCOMPLETE"), 0);
	assert_state(neigh_resolve(n, ifidx("a"), &d, &r, err, sizeof(err)), NEIGH_PENDING, err);
	neigh_close(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route_good),
		cmocka_unit_test(test_route_v6_and_via),
		cmocka_unit_test(test_route_error),
		cmocka_unit_test(test_other_seq_first),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_bad_lengths),
		cmocka_unit_test(test_neigh_reply),
		cmocka_unit_test(test_ack),
		cmocka_unit_test(test_kernel_replies),
		cmocka_unit_test(test_alignment_and_size),
		cmocka_unit_test(test_state_names),
		cmocka_unit_test(test_live_direct),
		cmocka_unit_test(test_live_gateway),
		cmocka_unit_test(test_live_no_route),
		cmocka_unit_test(test_live_v6),
		cmocka_unit_test_teardown(test_live_arp, peer_teardown),
		cmocka_unit_test(test_live_failed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
