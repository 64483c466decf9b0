/* test_io.c - port I/O: the memory backend in full (inject/take, bursts,
 * eventfd readiness, replay, TX discard, stats, and the RX repair of
 * offload artefacts: VLAN re-insertion, partial checksums, GSO
 * segmentation, oversize drops), and the AF_PACKET backend between two
 * veths in a private network namespace (root only; skipped otherwise). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "io.h"
#include "steer.h"
#include "wire.h"

#define TEST_ETYPE 0x88b5

static struct pkt_pool *pool;

static int setup(void **state)
{
	(void)state;
	pool = pkt_pool_create(1024);
	return pool ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	pkt_pool_destroy(pool);
	return 0;
}

/* ---- frame builders and checkers ---- */

static const uint8_t DST[6] = {0x02, 0, 0, 0, 0, 0xbb};
static const uint8_t SRC[6] = {0x02, 0, 0, 0, 0, 0xaa};

/* Test frame: Ethernet with TEST_ETYPE, then a 32-bit sequence number,
 * then bytes derived from it. */
static size_t mk_test_frame(uint8_t *f, size_t len, uint32_t seq)
{
	memcpy(f, DST, 6);
	memcpy(f + 6, SRC, 6);
	f[12] = TEST_ETYPE >> 8;
	f[13] = TEST_ETYPE & 0xff;
	f[14] = (uint8_t)(seq >> 24);
	f[15] = (uint8_t)(seq >> 16);
	f[16] = (uint8_t)(seq >> 8);
	f[17] = (uint8_t)seq;
	for (size_t i = 18; i < len; i++)
		f[i] = (uint8_t)(i * 13 + seq);
	return len;
}

static uint32_t sum16(const uint8_t *d, size_t n, uint32_t s)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(d[i] << 8 | d[i + 1]);
	if (n & 1)
		s += (uint32_t)d[n - 1] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/* IPv4 + TCP/UDP frame with `paylen` payload bytes. The L4 checksum is
 * left partial (pseudo-header sum only, as the kernel hands it over with
 * CHECKSUM_PARTIAL) when partial is true, else complete. */
static size_t mk_ip4(uint8_t *f, uint8_t proto, size_t paylen, bool partial)
{
	memcpy(f, DST, 6);
	memcpy(f + 6, SRC, 6);
	f[12] = 0x08;
	f[13] = 0x00;
	uint8_t *ip = f + 14;
	size_t l4hl = proto == 6 ? 20 : 8;
	size_t tot = 20 + l4hl + paylen;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[2] = (uint8_t)(tot >> 8);
	ip[3] = (uint8_t)tot;
	ip[4] = 0x12;
	ip[5] = 0x34;
	ip[6] = 0x40; /* DF */
	ip[8] = 64;
	ip[9] = proto;
	uint8_t sa[4] = {10, 0, 0, 1}, da[4] = {10, 0, 0, 2};
	memcpy(ip + 12, sa, 4);
	memcpy(ip + 16, da, 4);
	uint16_t hc = (uint16_t)~fold(sum16(ip, 20, 0));
	ip[10] = (uint8_t)(hc >> 8);
	ip[11] = (uint8_t)hc;
	uint8_t *l4 = ip + 20;
	memset(l4, 0, l4hl);
	l4[0] = 0x30;
	l4[1] = 0x39; /* sport 12345 */
	l4[2] = 0x00;
	l4[3] = 0x50; /* dport 80 */
	size_t l4len = l4hl + paylen;
	if (proto == 6) {
		l4[4] = 0x01; /* seq 0x01000000 */
		l4[12] = 0x50;
		l4[13] = 0x18; /* PSH ACK */
		l4[14] = 0xff;
		l4[15] = 0xff;
	} else {
		l4[4] = (uint8_t)(l4len >> 8);
		l4[5] = (uint8_t)l4len;
	}
	for (size_t i = 0; i < paylen; i++)
		l4[l4hl + i] = (uint8_t)(i * 7 + (i >> 8));
	uint32_t ps = sum16(ip + 12, 8, 0) + proto + (uint32_t)l4len;
	size_t at = proto == 6 ? 16 : 6;
	uint16_t c = partial ? fold(ps) : (uint16_t)~fold(sum16(l4, l4len, ps));
	l4[at] = (uint8_t)(c >> 8);
	l4[at + 1] = (uint8_t)c;
	return 14 + tot;
}

/* True if the IPv4 frame f (l3 at off) has valid IP and L4 checksums. */
static bool ip4_csums_ok(const uint8_t *f, size_t len, size_t off)
{
	const uint8_t *ip = f + off;
	if (len < off + 20 || fold(sum16(ip, 20, 0)) != 0xffff)
		return false;
	size_t tot = (size_t)(ip[2] << 8 | ip[3]);
	if (off + tot > len)
		return false;
	size_t l4len = tot - 20;
	uint32_t ps = sum16(ip + 12, 8, 0) + ip[9] + (uint32_t)l4len;
	return fold(sum16(ip + 20, l4len, ps)) == 0xffff;
}

/* ---- memory backend ---- */

static void test_mem_inject_take(void **state)
{
	(void)state;
	struct io_port *p = io_open_mem("m0", 4);
	assert_non_null(p);
	assert_string_equal(io_name(p), "m0");
	assert_int_equal(io_ifindex(p), 0);
	struct mac m;
	io_mac(p, &m);
	assert_int_equal(m.b[0], 0x02);
	assert_true(io_fd(p) >= 0);

	uint8_t f[3][200];
	size_t lens[3] = {60, 128, 200};
	for (int i = 0; i < 3; i++) {
		mk_test_frame(f[i], lens[i], (uint32_t)i);
		assert_true(io_mem_inject(p, f[i], lens[i]));
	}
	assert_int_equal(io_mem_rx_pending(p), 3);
	/* ring of 4: one more fits, the fifth does not */
	assert_true(io_mem_inject(p, f[0], 60));
	assert_false(io_mem_inject(p, f[0], 60));
	assert_false(io_mem_inject(p, f[0], 300 * 1024));

	uint32_t avail = pkt_pool_avail(pool);
	struct pkt *out[8];
	assert_int_equal(io_rx_burst(p, pool, out, 2), 2);
	assert_int_equal(out[0]->len, 60);
	assert_memory_equal(out[0]->data, f[0], 60);
	assert_memory_equal(out[1]->data, f[1], 128);
	assert_int_equal(out[0]->flags, 0);
	assert_int_equal(io_rx_burst(p, pool, out + 2, 8), 2);
	assert_memory_equal(out[2]->data, f[2], 200);
	assert_int_equal(io_rx_burst(p, pool, out, 8), 0);
	assert_int_equal(pkt_pool_avail(pool), avail - 4);

	/* TX: copies, caller frees */
	assert_int_equal(io_tx_burst(p, out, 3), 3);
	assert_int_equal(io_mem_tx_pending(p), 3);
	out[0]->data[0] = 0xee; /* the collected copy must not change */
	uint8_t buf[256];
	assert_int_equal(io_mem_take(p, buf, sizeof(buf)), 60);
	assert_memory_equal(buf, f[0], 60);
	assert_int_equal(io_mem_take(p, buf, 10), 128); /* truncated copy, full length */
	assert_memory_equal(buf, f[1], 10);
	assert_int_equal(io_mem_take(p, buf, sizeof(buf)), 200);
	assert_int_equal(io_mem_take(p, buf, sizeof(buf)), 0);
	/* TX ring of 4 is full after 4: the rest are counted */
	struct pkt *four[6] = {out[0], out[1], out[2], out[3], out[0], out[1]};
	assert_int_equal(io_tx_burst(p, four, 6), 4);
	pkt_free_bulk(pool, out, 4);
	assert_int_equal(pkt_pool_avail(pool), avail);

	struct io_stats st;
	io_get_stats(p, &st);
	assert_int_equal(st.rx_pkts, 4);
	assert_int_equal(st.rx_bytes, 60 + 128 + 200 + 60);
	assert_int_equal(st.tx_pkts, 7);
	assert_int_equal(st.tx_errors, 2);
	assert_int_equal(st.rx_drops, 0);
	io_close(p);
	io_close(NULL);
}

static bool readable(int fd)
{
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	return poll(&pf, 1, 0) == 1 && (pf.revents & POLLIN);
}

static void test_mem_fd_and_pool_empty(void **state)
{
	(void)state;
	struct io_port *p = io_open_mem("m1", 16);
	assert_non_null(p);
	assert_false(readable(io_fd(p)));
	uint8_t f[64];
	mk_test_frame(f, 64, 7);
	assert_true(io_mem_inject(p, f, 64));
	assert_true(io_mem_inject(p, f, 64));
	assert_true(readable(io_fd(p)));

	/* a pool with one buffer: the burst stops, the rest stays queued */
	struct pkt_pool *small = pkt_pool_create(1);
	assert_non_null(small);
	struct pkt *out[4];
	assert_int_equal(io_rx_burst(p, small, out, 4), 1);
	assert_int_equal(io_mem_rx_pending(p), 1);
	assert_true(readable(io_fd(p)));
	assert_int_equal(io_rx_burst(p, small, out + 1, 4), 0);
	pkt_free(small, out[0]);
	assert_int_equal(io_rx_burst(p, small, out, 4), 1);
	assert_false(readable(io_fd(p)));
	pkt_free(small, out[0]);
	struct io_stats st;
	io_get_stats(p, &st);
	assert_true(st.rx_nobuf >= 2);
	assert_int_equal(st.rx_pkts, 2);
	pkt_pool_destroy(small);
	io_close(p);
}

static void test_mem_replay_and_discard(void **state)
{
	(void)state;
	struct io_port *p = io_open_mem("bench", 8);
	assert_non_null(p);
	static uint8_t f[3][100];
	const uint8_t *frames[3];
	uint32_t lens[3] = {60, 80, 100};
	for (int i = 0; i < 3; i++) {
		mk_test_frame(f[i], lens[i], (uint32_t)i);
		frames[i] = f[i];
	}
	uint32_t badlen[1] = {0};
	assert_false(io_mem_set_replay(p, frames, badlen, 1));
	assert_true(io_mem_set_replay(p, frames, lens, 3));
	assert_true(readable(io_fd(p)));
	assert_true(io_mem_set_tx_discard(p, true));

	struct pkt *out[64];
	uint64_t total = 0;
	for (int round = 0; round < 10; round++) {
		uint32_t n = io_rx_burst(p, pool, out, 7);
		assert_int_equal(n, 7);
		for (uint32_t i = 0; i < n; i++) {
			uint32_t k = (uint32_t)((total + i) % 3);
			assert_int_equal(out[i]->len, lens[k]);
			assert_memory_equal(out[i]->data, f[k], lens[k]);
		}
		total += n;
		assert_int_equal(io_tx_burst(p, out, n), n);
		pkt_free_bulk(pool, out, n);
	}
	assert_int_equal(io_mem_tx_pending(p), 0);
	assert_true(readable(io_fd(p)));
	struct io_stats st;
	io_get_stats(p, &st);
	assert_int_equal(st.rx_pkts, 70);
	assert_int_equal(st.tx_pkts, 70);

	/* replay limited by the pool */
	struct pkt_pool *small = pkt_pool_create(5);
	assert_int_equal(io_rx_burst(p, small, out, 64), 5);
	pkt_free_bulk(small, out, 5);
	pkt_pool_destroy(small);

	assert_true(io_mem_set_replay(p, NULL, NULL, 0));
	assert_false(readable(io_fd(p)));
	assert_int_equal(io_rx_burst(p, pool, out, 64), 0);
	io_close(p);
}

static void test_mem_vlan_reinsert(void **state)
{
	(void)state;
	struct io_port *p = io_open_mem("vlan", 8);
	uint8_t f[100];
	mk_test_frame(f, 100, 42);
	assert_true(io_mem_inject_ex(p, f, 100, IO_MEM_VLAN, 0x2064));
	struct pkt *out[2];
	assert_int_equal(io_rx_burst(p, pool, out, 2), 1);
	assert_int_equal(out[0]->len, 104);
	assert_memory_equal(out[0]->data, f, 12);
	static const uint8_t tag[4] = {0x81, 0x00, 0x20, 0x64};
	assert_memory_equal(out[0]->data + 12, tag, 4);
	assert_memory_equal(out[0]->data + 16, f + 12, 88);
	pkt_free(pool, out[0]);
	io_close(p);
}

static void test_mem_csum_partial(void **state)
{
	(void)state;
	struct io_port *p = io_open_mem("csum", 8);
	static uint8_t f[2000];
	struct pkt *out[4];
	uint8_t protos[2] = {17, 6};
	for (int i = 0; i < 2; i++) {
		size_t len = mk_ip4(f, protos[i], 333, true);
		assert_false(ip4_csums_ok(f, len, 14));
		assert_true(io_mem_inject_ex(p, f, len, IO_MEM_CSUM_PARTIAL, 0));
		assert_int_equal(io_rx_burst(p, pool, out, 4), 1);
		assert_int_equal(out[0]->len, len);
		assert_true(ip4_csums_ok(out[0]->data, out[0]->len, 14));
		assert_false(out[0]->flags & PKT_F_CSUM_PARTIAL);
		assert_true(out[0]->flags & PKT_F_PARSED);
		/* equal to the frame built with a full checksum */
		mk_ip4(f, protos[i], 333, false);
		assert_memory_equal(out[0]->data, f, len);
		pkt_free(pool, out[0]);
	}
	/* a partial checksum on a VLAN-stripped frame */
	size_t len = mk_ip4(f, 17, 100, true);
	assert_true(io_mem_inject_ex(p, f, len, IO_MEM_CSUM_PARTIAL | IO_MEM_VLAN, 5));
	assert_int_equal(io_rx_burst(p, pool, out, 4), 1);
	assert_int_equal(out[0]->len, len + 4);
	assert_true(ip4_csums_ok(out[0]->data, out[0]->len, 18));
	/* not parseable: keeps the flag so later stages know */
	uint8_t junk[20] = {0};
	junk[12] = 0x08;
	assert_true(io_mem_inject_ex(p, junk, sizeof(junk), IO_MEM_CSUM_PARTIAL, 0));
	assert_int_equal(io_rx_burst(p, pool, out + 1, 3), 1);
	assert_true(out[1]->flags & PKT_F_CSUM_PARTIAL);

	/* TX completes a checksum still flagged partial */
	mk_ip4(out[0]->data + 4, 17, 100, true);
	pkt_pull(out[0], 4);
	out[0]->flags = PKT_F_CSUM_PARTIAL;
	assert_int_equal(io_tx_burst(p, out, 1), 1);
	uint8_t buf[2048];
	size_t got = io_mem_take(p, buf, sizeof(buf));
	assert_int_equal(got, len);
	assert_true(ip4_csums_ok(buf, got, 14));

	struct io_stats st;
	io_get_stats(p, &st);
	assert_int_equal(st.csum_filled, 4);
	pkt_free_bulk(pool, out, 2);
	io_close(p);
}

static void check_segments(struct pkt **seg, uint32_t n, const uint8_t *orig, size_t paylen, uint16_t mtu,
			   size_t l2)
{
	size_t off = 0;
	uint32_t seq0 = 0x01000000;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *d = seg[i]->data;
		size_t len = seg[i]->len;
		assert_true(len <= (size_t)mtu + l2);
		assert_true(ip4_csums_ok(d, len, l2));
		const uint8_t *tcp = d + l2 + 20;
		uint32_t seq = (uint32_t)tcp[4] << 24 | (uint32_t)tcp[5] << 16 | (uint32_t)tcp[6] << 8 | tcp[7];
		assert_int_equal(seq, seq0 + off);
		size_t pl = len - l2 - 40;
		assert_memory_equal(tcp + 20, orig + 14 + 40 + off, pl);
		/* PSH only on the last segment */
		assert_int_equal(!!(tcp[13] & 0x08), i + 1 == n);
		off += pl;
	}
	assert_int_equal(off, paylen);
}

static void test_mem_gso(void **state)
{
	(void)state;
	struct io_port *p = io_open_mem("gso", 8);
	static uint8_t f[70000];
	size_t paylen = 10000;
	size_t len = mk_ip4(f, 6, paylen, true); /* GSO frames also carry partial csums */
	assert_true(io_mem_inject_ex(p, f, len, IO_MEM_CSUM_PARTIAL, 0));
	struct pkt *out[16];
	/* 10000 / 1460 = 7 segments; a burst of 4 leaves 3 pending */
	uint32_t n = io_rx_burst(p, pool, out, 4);
	assert_int_equal(n, 4);
	assert_true(readable(io_fd(p)));
	n += io_rx_burst(p, pool, out + 4, 12);
	assert_int_equal(n, 7);
	assert_int_equal(io_rx_burst(p, pool, out + 7, 8), 0);
	check_segments(out, n, f, paylen, 1500, 14);
	pkt_free_bulk(pool, out, n);

	/* smaller MTU, VLAN stripped: every segment gets the tag back */
	assert_false(io_set_mtu(p, 100));
	assert_false(io_set_mtu(p, 5000));
	assert_true(io_set_mtu(p, 1000));
	assert_int_equal(io_mtu(p), 1000);
	assert_true(io_mem_inject_ex(p, f, len, IO_MEM_VLAN, 7));
	n = io_rx_burst(p, pool, out, 16);
	assert_int_equal(n, 11); /* 10000 / 960 */
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(out[i]->data[12], 0x81);
		assert_int_equal(out[i]->data[15], 7);
		assert_false(out[i]->flags & PKT_F_PARSED);
	}
	check_segments(out, n, f, paylen, 1000, 18);
	pkt_free_bulk(pool, out, n);

	/* a 64 KiB super-frame is never copied whole */
	assert_true(io_set_mtu(p, 1500));
	len = mk_ip4(f, 6, 65000, false);
	assert_true(io_mem_inject(p, f, len));
	struct pkt *many[64];
	n = io_rx_burst(p, pool, many, 64);
	assert_int_equal(n, 45); /* 65000 / 1460 */
	check_segments(many, n, f, 65000, 1500, 14);
	pkt_free_bulk(pool, many, n);

	/* oversize UDP cannot be segmented: dropped and counted */
	len = mk_ip4(f, 17, 3000, false);
	assert_true(io_mem_inject(p, f, len));
	assert_int_equal(io_rx_burst(p, pool, out, 16), 0);

	/* pending segments go back to the pool on close */
	uint32_t avail = pkt_pool_avail(pool);
	len = mk_ip4(f, 6, 5000, false);
	assert_true(io_mem_inject(p, f, len));
	assert_int_equal(io_rx_burst(p, pool, out, 1), 1);
	pkt_free(pool, out[0]);

	struct io_stats st;
	io_get_stats(p, &st);
	assert_int_equal(st.gso_segmented, 4);
	assert_int_equal(st.gso_segments, 7 + 11 + 45 + 4);
	assert_int_equal(st.rx_too_big, 1);
	io_close(p);
	assert_int_equal(pkt_pool_avail(pool), avail);
}

static void test_mem_bad_args(void **state)
{
	(void)state;
	assert_null(io_open_mem("x", 0));
	assert_null(io_open_mem("x", (1u << 20) + 1));
	struct io_port *p = io_open_mem("odd", 5); /* rounded up to 8 */
	uint8_t f[60] = {0};
	for (int i = 0; i < 8; i++)
		assert_true(io_mem_inject(p, f, sizeof(f)));
	assert_false(io_mem_inject(p, f, sizeof(f)));
	assert_false(io_mem_inject(p, NULL, 10));
	/* empty and tiny frames are handed over as is (the parser drops them) */
	struct pkt *out[8];
	assert_int_equal(io_rx_burst(p, pool, out, 8), 8);
	pkt_free_bulk(pool, out, 8);
	assert_true(io_mem_inject(p, f, 0));
	assert_true(io_mem_inject(p, f, 5));
	assert_true(io_mem_inject_ex(p, f, 5, IO_MEM_VLAN | IO_MEM_CSUM_PARTIAL, 1));
	assert_int_equal(io_rx_burst(p, pool, out, 8), 3);
	assert_int_equal(out[0]->len, 0);
	assert_int_equal(out[1]->len, 5);
	assert_int_equal(out[2]->len, 5);
	/* a zero-length frame is not sent */
	assert_int_equal(io_tx_burst(p, out, 1), 0);
	pkt_free_bulk(pool, out, 3);
	io_close(p);
}

/* ---- AF_PACKET between two veths in a private namespace ---- */

static int orig_ns = -1;

static int ns_setup(void **state)
{
	(void)state;
	if (geteuid() != 0 || system("command -v ip >/dev/null 2>&1") != 0)
		return 0;
	orig_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (orig_ns < 0 || unshare(CLONE_NEWNET) != 0) {
		if (orig_ns >= 0)
			close(orig_ns);
		orig_ns = -1;
		return 0;
	}
	/* keep IPv6 autoconfiguration noise (RS, MLD, DAD) off the test links */
	int fd = open("/proc/sys/net/ipv6/conf/default/disable_ipv6", O_WRONLY);
	if (fd >= 0) {
		if (write(fd, "1", 1) != 1)
			(void)0;
		close(fd);
	}
	if (system("ip link add ta type veth peer name tb") != 0) {
		setns(orig_ns, CLONE_NEWNET);
		close(orig_ns);
		orig_ns = -1;
	}
	return 0;
}

static int ns_teardown(void **state)
{
	(void)state;
	if (orig_ns >= 0) {
		/* leaving the namespace destroys it and the veths */
		setns(orig_ns, CLONE_NEWNET);
		close(orig_ns);
		orig_ns = -1;
	}
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Receive until `want` test frames arrived (others are freed) or 3 s
 * passed; each burst takes at most `burst`. Returns frames kept. */
static uint32_t rx_test_frames(struct io_port *p, struct pkt **keep, uint32_t want, uint32_t burst)
{
	uint32_t got = 0;
	uint64_t end = now_ms() + 3000;
	struct pkt *b[64];
	while (got < want && now_ms() < end) {
		struct pollfd pf = {.fd = io_fd(p), .events = POLLIN};
		if (poll(&pf, 1, 100) < 0 && errno != EINTR)
			break;
		uint32_t n;
		while ((n = io_rx_burst(p, pool, b, burst)) > 0) {
			for (uint32_t i = 0; i < n; i++) {
				if (got < want && b[i]->len >= 18 && b[i]->data[12] == (TEST_ETYPE >> 8) &&
				    b[i]->data[13] == (TEST_ETYPE & 0xff))
					keep[got++] = b[i];
				else
					pkt_free(pool, b[i]);
			}
		}
	}
	return got;
}

static struct pkt *mk_pkt(size_t len, uint32_t seq)
{
	struct pkt *p = pkt_alloc(pool);
	assert_non_null(p);
	p->len = (uint32_t)mk_test_frame(p->data, len, seq);
	return p;
}

/* IPv6 UDP frame fd00::1 -> fd00::2, source port sport. */
static size_t mk_flow_frame6(uint8_t *f, uint16_t sport)
{
	memcpy(f, DST, 6);
	memcpy(f + 6, SRC, 6);
	wr16(f + 12, 0x86dd);
	uint8_t *ip = f + 14;
	memset(ip, 0, 48);
	ip[0] = 0x60;
	wr16(ip + 4, 8 + 4);
	ip[6] = 17;
	ip[7] = 64;
	ip[8] = 0xfd, ip[23] = 1;
	ip[24] = 0xfd, ip[39] = 2;
	wr16(ip + 40, sport);
	wr16(ip + 42, 53);
	wr16(ip + 44, 12);
	return 14 + 40 + 12;
}

/* IPv4 UDP vm -> vm frame, source port sport; behind NSH (as an nsh node
 * returns it) when nsh is set. Returns its length. */
static size_t mk_flow_frame(uint8_t *f, uint16_t sport, bool nsh)
{
	size_t off = 0;
	memcpy(f, DST, 6);
	memcpy(f + 6, SRC, 6);
	if (nsh) {
		wr16(f + 12, 0x894f);
		const uint8_t base[8] = {0x0f, 0xc2, 0x02, 0x03, 0x00, 0x00, 0x2a, 0xfe}; /* MD type 2, no TLVs */
		memcpy(f + 14, base, sizeof(base));
		f[15] = (uint8_t)((f[15] & 0xc0) | 2); /* 2 words: base header only */
		off = 14 + 8;
		memcpy(f + off, DST, 6);
		memcpy(f + off + 6, SRC, 6);
	}
	wr16(f + off + 12, 0x0800);
	uint8_t *ip = f + off + 14;
	memset(ip, 0, 28);
	ip[0] = 0x45;
	wr16(ip + 2, 28 + 4);
	ip[8] = 64;
	ip[9] = 17;
	const uint8_t a[4] = {10, 1, 0, 1}, b[4] = {10, 1, 0, 2};
	memcpy(ip + 12, a, 4);
	memcpy(ip + 16, b, 4);
	ipv4_set_csum(ip);
	wr16(ip + 20, sport);
	wr16(ip + 22, 53);
	wr16(ip + 24, 12);
	return off + 14 + 32;
}

/* Two workers' sockets on one interface: the eBPF fanout program gives
 * every frame to the worker steer.h names as its owner, IPv4 bare or
 * behind NSH, IPv6, so nothing needs handing over between workers. */
static void test_afp_fanout_steer(void **state)
{
	(void)state;
	if (orig_ns < 0)
		skip();
	char err[256];
	struct io_opts o;
	io_opts_init(&o);
	o.fanout = true;
	o.fanout_workers = 2;
	struct io_port *w[2];
	w[0] = io_open_afpacket("tb", &o, err, sizeof(err));
	if (!w[0])
		fail_msg("open tb (worker 0): %s", err);
	o.fanout_id = io_fanout_id(w[0]);
	assert_int_not_equal(o.fanout_id, 0);
	w[1] = io_open_afpacket("tb", &o, err, sizeof(err));
	if (!w[1])
		fail_msg("open tb (worker 1): %s", err);
	assert_true(io_fanout_steered(w[0]));
	struct io_port *tx = io_open_afpacket("ta", NULL, err, sizeof(err));
	if (!tx)
		fail_msg("open ta: %s", err);
	struct steer *s = steer_create(2, 16);
	enum { N = 96 };
	for (uint32_t i = 0; i < N; i++) {
		struct pkt *p = pkt_alloc(pool);
		uint16_t sport = (uint16_t)(20000 + i * 7);
		p->len = (uint32_t)(i % 4 == 3 ? mk_flow_frame6(p->data, sport) : mk_flow_frame(p->data, sport, i % 4 == 2));
		assert_int_equal(io_tx_burst(tx, &p, 1), 1);
		pkt_free(pool, p);
	}
	uint32_t got = 0, right = 0, per[2] = {0, 0};
	uint64_t end = now_ms() + 3000;
	while (got < N && now_ms() < end) {
		struct pollfd pf[2] = {{.fd = io_fd(w[0]), .events = POLLIN}, {.fd = io_fd(w[1]), .events = POLLIN}};
		(void)poll(pf, 2, 100);
		for (int k = 0; k < 2; k++) {
			struct pkt *b[64];
			uint32_t n = io_rx_burst(w[k], pool, b, 64);
			for (uint32_t i = 0; i < n; i++) {
				uint16_t type = b[i]->len >= 14 ? rd16(b[i]->data + 12) : 0;
				if (type == 0x0800 || type == 0x894f || type == 0x86dd) {
					got++;
					per[k]++;
					right += steer_owner(s, steer_hash(b[i]->data, b[i]->len, false)) == k;
				}
				pkt_free(pool, b[i]);
			}
		}
	}
	assert_int_equal(got, N);
	assert_int_equal(right, N); /* each on its owner's socket */
	assert_true(per[0] > 0 && per[1] > 0);
	steer_destroy(s);
	io_close(tx);
	io_close(w[1]);
	io_close(w[0]);
}

static void test_afp_burst(void **state)
{
	(void)state;
	if (orig_ns < 0)
		skip();
	char err[256];
	struct io_port *a = io_open_afpacket("ta", NULL, err, sizeof(err));
	if (!a)
		fail_msg("open ta: %s", err);
	struct io_port *b = io_open_afpacket("tb", NULL, err, sizeof(err));
	if (!b)
		fail_msg("open tb: %s", err);
	assert_true(io_ifindex(a) > 0);
	struct mac ma;
	io_mac(a, &ma);
	assert_false(mac_is_zero(&ma));
	assert_null(io_open_afpacket("nosuchif0", NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "nosuchif0"));

	enum { N = 32 };
	struct pkt *tx[N], *rx[N];
	size_t sizes[N];
	for (uint32_t i = 0; i < N; i++) {
		sizes[i] = 60 + (i * 97) % 1455;
		tx[i] = mk_pkt(sizes[i], i);
	}
	assert_int_equal(io_tx_burst(a, tx, N), N);
	uint32_t got = rx_test_frames(b, rx, N, 64);
	assert_int_equal(got, N);
	for (uint32_t i = 0; i < N; i++) {
		assert_int_equal(rx[i]->len, tx[i]->len);
		assert_memory_equal(rx[i]->data, tx[i]->data, tx[i]->len);
	}
	pkt_free_bulk(pool, rx, got);

	/* our own transmissions are not seen on the sending port: the first
	 * test frame ta receives is the marker tb sends after them */
	struct pkt *mark = mk_pkt(64, 1000), *own;
	assert_int_equal(io_tx_burst(b, &mark, 1), 1);
	assert_int_equal(rx_test_frames(a, &own, 1, 64), 1);
	assert_memory_equal(own->data, mark->data, 64);
	pkt_free(pool, own);
	pkt_free(pool, mark);

	/* a tagged frame: the kernel strips the tag, RX puts it back */
	struct pkt *v = pkt_alloc(pool);
	uint8_t tmp[200];
	mk_test_frame(tmp, 200, 99);
	memcpy(v->data, tmp, 12);
	static const uint8_t tag[4] = {0x81, 0x00, 0x00, 0x2a};
	memcpy(v->data + 12, tag, 4);
	memcpy(v->data + 16, tmp + 12, 188);
	v->len = 204;
	assert_int_equal(io_tx_burst(a, &v, 1), 1);
	struct pkt *vr = NULL;
	/* the tag hides the test ethertype: look for the frame itself */
	uint64_t end = now_ms() + 3000;
	struct pkt *bb[64];
	while (!vr && now_ms() < end) {
		struct pollfd pf = {.fd = io_fd(b), .events = POLLIN};
		poll(&pf, 1, 100);
		uint32_t n = io_rx_burst(b, pool, bb, 64);
		for (uint32_t i = 0; i < n; i++) {
			if (!vr && bb[i]->len == 204 && memcmp(bb[i]->data, v->data, 204) == 0)
				vr = bb[i];
			else
				pkt_free(pool, bb[i]);
		}
	}
	assert_non_null(vr);
	pkt_free(pool, vr);
	pkt_free(pool, v);

	/* bad lengths (shorter than Ethernet, longer than the MTU) are refused
	 * and counted, and the rest of the burst still goes out */
	struct pkt *mixed[4] = {tx[0], tx[1], tx[2], tx[3]};
	tx[1]->len = 10;
	pkt_free(pool, tx[2]);
	mixed[2] = tx[2] = mk_pkt(1600, 2);
	assert_int_equal(io_tx_burst(a, mixed, 4), 2);
	assert_int_equal(rx_test_frames(b, rx, 2, 64), 2);
	assert_int_equal(rx[0]->len, tx[0]->len);
	assert_memory_equal(rx[1]->data, tx[3]->data, tx[3]->len);
	pkt_free_bulk(pool, rx, 2);
	pkt_free_bulk(pool, tx, N);

	struct io_stats sa, sb;
	io_get_stats(a, &sa);
	io_get_stats(b, &sb);
	assert_int_equal(sa.tx_pkts, N + 3);
	assert_int_equal(sa.tx_errors, 2);
	assert_true(sb.rx_pkts >= N + 3);
	assert_int_equal(sb.tx_pkts, 1);
	assert_int_equal(sb.rx_drops, 0);
	io_close(a);
	io_close(b);
}

/* Small blocks (a few frames each) and bursts of 3: bursts stop in the
 * middle of blocks and the ring wraps many times. Then overflow it. */
static void test_afp_ring_walk(void **state)
{
	(void)state;
	if (orig_ns < 0)
		skip();
	char err[256];
	struct io_opts o;
	io_opts_init(&o);
	o.rx_block_size = 4096;
	o.rx_block_nr = 8;
	struct io_port *b = io_open_afpacket("tb", &o, err, sizeof(err));
	if (!b)
		fail_msg("open tb: %s", err);
	struct io_port *a = io_open_afpacket("ta", NULL, err, sizeof(err));
	if (!a)
		fail_msg("open ta: %s", err);

	uint32_t seq = 0;
	for (int round = 0; round < 20; round++) {
		enum { K = 16 };
		struct pkt *tx[K], *rx[K];
		for (uint32_t i = 0; i < K; i++)
			tx[i] = mk_pkt(300 + (seq + i) % 700, seq + i);
		assert_int_equal(io_tx_burst(a, tx, K), K);
		uint32_t got = rx_test_frames(b, rx, K, 3);
		assert_int_equal(got, K);
		for (uint32_t i = 0; i < K; i++) {
			assert_int_equal(rx[i]->len, tx[i]->len);
			assert_memory_equal(rx[i]->data, tx[i]->data, tx[i]->len);
		}
		pkt_free_bulk(pool, tx, K);
		pkt_free_bulk(pool, rx, K);
		seq += K;
	}

	/* overflow the 8 small blocks without reading: kernel drops counted */
	for (int i = 0; i < 4; i++) {
		struct pkt *tx[64];
		for (uint32_t k = 0; k < 64; k++)
			tx[k] = mk_pkt(1000, k);
		assert_int_equal(io_tx_burst(a, tx, 64), 64);
		pkt_free_bulk(pool, tx, 64);
	}
	struct io_stats st;
	uint64_t end = now_ms() + 3000;
	do {
		io_get_stats(b, &st);
	} while (st.rx_drops == 0 && now_ms() < end);
	assert_true(st.rx_drops > 0);
	/* and the ring still works afterwards */
	struct pkt *drain[64];
	uint32_t n;
	while ((n = io_rx_burst(b, pool, drain, 64)) > 0)
		pkt_free_bulk(pool, drain, n);
	struct pkt *one = mk_pkt(100, 12345), *back;
	assert_int_equal(io_tx_burst(a, &one, 1), 1);
	assert_int_equal(rx_test_frames(b, &back, 1, 64), 1);
	assert_memory_equal(back->data, one->data, 100);
	pkt_free(pool, one);
	pkt_free(pool, back);
	io_close(a);
	io_close(b);
}

/* The kernel stack sends UDP out of ta with checksum offload on: the
 * frame reaches tb's ring with TP_STATUS_CSUMNOTREADY and must come out
 * of io_rx_burst with a valid checksum. */
static void test_afp_csum_offload(void **state)
{
	(void)state;
	if (orig_ns < 0)
		skip();
	char err[256];
	struct io_port *b = io_open_afpacket("tb", NULL, err, sizeof(err));
	if (!b)
		fail_msg("open tb: %s", err);
	struct mac mb;
	io_mac(b, &mb);
	char cmd[256];
	snprintf(cmd, sizeof(cmd),
		 "ip link set ta up && ip addr add 10.77.0.1/24 dev ta && "
		 "ip neigh replace 10.77.0.2 lladdr %02x:%02x:%02x:%02x:%02x:%02x dev ta",
		 mb.b[0], mb.b[1], mb.b[2], mb.b[3], mb.b[4], mb.b[5]);
	assert_int_equal(system(cmd), 0);
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(s >= 0);
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9999)};
	inet_pton(AF_INET, "10.77.0.2", &to.sin_addr);
	char msg[300];
	memset(msg, 'x', sizeof(msg));
	assert_int_equal(sendto(s, msg, sizeof(msg), 0, (struct sockaddr *)&to, sizeof(to)), sizeof(msg));
	close(s);

	struct pkt *got = NULL, *bb[64];
	uint64_t end = now_ms() + 3000;
	while (!got && now_ms() < end) {
		struct pollfd pf = {.fd = io_fd(b), .events = POLLIN};
		poll(&pf, 1, 100);
		uint32_t n = io_rx_burst(b, pool, bb, 64);
		for (uint32_t i = 0; i < n; i++) {
			const uint8_t *d = bb[i]->data;
			if (!got && bb[i]->len >= 42 && d[12] == 0x08 && d[13] == 0 && d[23] == 17 &&
			    d[36] == (9999 >> 8) && d[37] == (9999 & 0xff))
				got = bb[i];
			else
				pkt_free(pool, bb[i]);
		}
	}
	assert_non_null(got);
	assert_true(ip4_csums_ok(got->data, got->len, 14));
	struct io_stats st;
	io_get_stats(b, &st);
	print_message("csum_filled=%llu (0 means the kernel sent a full checksum)\n",
		      (unsigned long long)st.csum_filled);
	pkt_free(pool, got);
	io_close(b);
}

int main(void)
{
	const struct CMUnitTest mem[] = {
		cmocka_unit_test(test_mem_inject_take),
		cmocka_unit_test(test_mem_fd_and_pool_empty),
		cmocka_unit_test(test_mem_replay_and_discard),
		cmocka_unit_test(test_mem_vlan_reinsert),
		cmocka_unit_test(test_mem_csum_partial),
		cmocka_unit_test(test_mem_gso),
		cmocka_unit_test(test_mem_bad_args),
		cmocka_unit_test_setup_teardown(test_afp_burst, ns_setup, ns_teardown),
		cmocka_unit_test_setup_teardown(test_afp_fanout_steer, ns_setup, ns_teardown),
		cmocka_unit_test_setup_teardown(test_afp_ring_walk, ns_setup, ns_teardown),
		cmocka_unit_test_setup_teardown(test_afp_csum_offload, ns_setup, ns_teardown),
	};
	return cmocka_run_group_tests(mem, setup, teardown);
}
