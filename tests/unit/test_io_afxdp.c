/* test_io_afxdp.c - the AF_XDP port backend between veths in a private
 * network namespace (root and AF_XDP needed; skipped otherwise):
 * byte-exact RX from every queue, also over many ring wraps; TX to an
 * AF_PACKET port on the peer; close detaches the XDP program and a reopen
 * works; clear errors; one port per worker on a 2-queue veth (each frame
 * once, TX from each, a close keeps the other, the last detaches; an
 * interface deleted under its ports); and a TCP transfer with default
 * offloads between two namespaces forwarded by a loop over two AF_XDP
 * ports. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "io.h"

#define TEST_ETYPE 0x88b5

static struct pkt_pool *pool;
static int orig_ns = -1;
static bool have_ns;

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void quiet_ipv6(void)
{
	int fd = open("/proc/sys/net/ipv6/conf/default/disable_ipv6", O_WRONLY);
	if (fd >= 0) {
		if (write(fd, "1", 1) != 1)
			(void)0;
		close(fd);
	}
}

/* A private namespace with veth ta <-> tb; AF_XDP must open on tb. */
static int ns_setup(void **state)
{
	(void)state;
	have_ns = false;
	if (geteuid() != 0 || system("command -v ip >/dev/null 2>&1") != 0)
		return 0;
	orig_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (orig_ns < 0 || unshare(CLONE_NEWNET) != 0) {
		if (orig_ns >= 0)
			close(orig_ns);
		orig_ns = -1;
		return 0;
	}
	quiet_ipv6();
	if (system("ip link add ta type veth peer name tb && ip link set ta up && ip link set tb up") != 0)
		return 0;
	char err[256];
	struct io_port *p = io_open_afxdp("tb", NULL, err, sizeof(err));
	if (!p) {
		print_message("AF_XDP unavailable: %s\n", err);
		return 0;
	}
	io_close(p);
	have_ns = true;
	return 0;
}

static int ns_teardown(void **state)
{
	(void)state;
	if (orig_ns >= 0) {
		setns(orig_ns, CLONE_NEWNET); /* the namespace and its veths go away */
		close(orig_ns);
		orig_ns = -1;
	}
	return 0;
}

static int setup(void **state)
{
	(void)state;
	pool = pkt_pool_create(8192);
	return pool ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	pkt_pool_destroy(pool);
	return 0;
}

static size_t mk_frame(uint8_t *f, size_t len, uint32_t seq)
{
	static const uint8_t hdr[12] = {0x02, 0, 0, 0, 0, 0xbb, 0x02, 0, 0, 0, 0, 0xaa};
	memcpy(f, hdr, 12);
	f[12] = TEST_ETYPE >> 8;
	f[13] = TEST_ETYPE & 0xff;
	f[14] = (uint8_t)(seq >> 24);
	f[15] = (uint8_t)(seq >> 16);
	f[16] = (uint8_t)(seq >> 8);
	f[17] = (uint8_t)seq;
	for (size_t i = 18; i < len; i++)
		f[i] = (uint8_t)(i * 7 + seq);
	return len;
}

static size_t frame_len(uint32_t seq) { return 60 + (seq * 37) % 1400; }

static bool is_test_frame(const struct pkt *p)
{
	return p->len >= 18 && p->data[12] == (TEST_ETYPE >> 8) && p->data[13] == (TEST_ETYPE & 0xff);
}

static uint32_t frame_seq(const struct pkt *p)
{
	return (uint32_t)p->data[14] << 24 | (uint32_t)p->data[15] << 16 | (uint32_t)p->data[16] << 8 |
	       p->data[17];
}

/* Check a received frame against what was sent with its sequence number. */
static void check_frame(const struct pkt *p)
{
	uint8_t want[1600];
	uint32_t seq = frame_seq(p);
	size_t len = mk_frame(want, frame_len(seq), seq);
	assert_int_equal(p->len, len);
	assert_memory_equal(p->data, want, len);
}

static int raw_socket(const char *ifname)
{
	int fd = socket(AF_PACKET, SOCK_RAW, 0);
	assert_true(fd >= 0);
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_ifindex = (int)if_nametoindex(ifname)};
	assert_int_equal(bind(fd, (struct sockaddr *)&sll, sizeof(sll)), 0);
	return fd;
}

/* Receive test frames from p until `want` arrived (or 3 s): checks each,
 * and that sequence numbers run from *next upwards (one sender CPU, one
 * queue: in order). */
static uint32_t rx_expect(struct io_port *p, uint32_t *next, uint32_t want)
{
	uint32_t got = 0;
	uint64_t end = now_ms() + 3000;
	struct pkt *b[64];
	while (got < want && now_ms() < end) {
		uint32_t n = io_rx_burst(p, pool, b, 64);
		if (n == 0) {
			struct pollfd pf = {.fd = io_fd(p), .events = POLLIN};
			poll(&pf, 1, 50);
			continue;
		}
		for (uint32_t i = 0; i < n; i++) {
			if (is_test_frame(b[i])) {
				check_frame(b[i]);
				assert_int_equal(frame_seq(b[i]), *next);
				(*next)++;
				got++;
			}
		}
		pkt_free_bulk(pool, b, n);
	}
	return got;
}

static void pin_cpu(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void unpin(void)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	for (long i = 0; i < n && i < CPU_SETSIZE; i++)
		CPU_SET((int)i, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/* Frames sent into ta arrive byte-exact on tb through io_rx_burst, from
 * whichever queue the sender's CPU picked, many times around the rings. */
static void test_rx_exact(void **state)
{
	(void)state;
	if (!have_ns)
		skip();
	char err[256];
	struct io_port *p = io_open_afxdp("tb", NULL, err, sizeof(err));
	if (!p)
		fail_msg("open tb: %s", err);
	int fd = raw_socket("ta");
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	uint32_t seq = 0, next = 0;
	for (long cpu = 0; cpu < ncpu && cpu < 4; cpu++) {
		pin_cpu((int)cpu);
		/* 24 bursts of 200: 4800 frames, several times each fill ring */
		for (int burst = 0; burst < 24; burst++) {
			uint32_t first = seq;
			for (int i = 0; i < 200; i++, seq++) {
				uint8_t f[1600];
				size_t len = mk_frame(f, frame_len(seq), seq);
				assert_int_equal(send(fd, f, len, 0), (ssize_t)len);
			}
			assert_int_equal(rx_expect(p, &next, seq - first), seq - first);
		}
	}
	unpin();
	/* a burst larger than the RX rings without reading: the kernel drops
	 * the excess and counts it; the port keeps working */
	uint8_t f[1600];
	for (int i = 0; i < 6000; i++) {
		size_t len = mk_frame(f, 60, 0xffff0000u + (uint32_t)i);
		if (send(fd, f, len, 0) < 0)
			break;
	}
	struct pkt *b[64];
	uint32_t n, drained = 0;
	uint64_t end = now_ms() + 500;
	while (now_ms() < end) {
		while ((n = io_rx_burst(p, pool, b, 64)) > 0) {
			drained += n;
			pkt_free_bulk(pool, b, n);
		}
	}
	assert_true(drained > 0);
	struct io_stats st;
	io_get_stats(p, &st);
	print_message("rx %llu frames, flood drained %u, drops %llu\n", (unsigned long long)st.rx_pkts, drained,
		      (unsigned long long)st.rx_drops);
	assert_true(st.rx_pkts >= seq);
	next = seq;
	for (int i = 0; i < 10; i++, seq++) {
		size_t len = mk_frame(f, frame_len(seq), seq);
		assert_int_equal(send(fd, f, len, 0), (ssize_t)len);
	}
	assert_int_equal(rx_expect(p, &next, 10), 10);
	close(fd);
	io_close(p);
}

/* io_tx_burst frames arrive byte-exact at the other end (AF_PACKET port). */
static void test_tx_exact(void **state)
{
	(void)state;
	if (!have_ns)
		skip();
	char err[256];
	struct io_port *x = io_open_afxdp("tb", NULL, err, sizeof(err));
	if (!x)
		fail_msg("open tb: %s", err);
	struct io_port *a = io_open_afpacket("ta", NULL, err, sizeof(err));
	if (!a)
		fail_msg("open ta: %s", err);
	uint32_t seq = 0, next = 0;
	for (int round = 0; round < 80; round++) { /* 5120 frames: TX frames recycle */
		struct pkt *b[64];
		assert_int_equal(pkt_alloc_bulk(pool, b, 64), 64);
		uint32_t first = seq;
		for (int i = 0; i < 64; i++, seq++)
			b[i]->len = (uint32_t)mk_frame(b[i]->data, frame_len(seq), seq);
		uint32_t sent = io_tx_burst(x, b, 64);
		pkt_free_bulk(pool, b, 64);
		assert_int_equal(sent, 64);
		assert_int_equal(rx_expect(a, &next, seq - first), seq - first);
	}
	/* bad lengths are refused and counted, never sent */
	struct pkt *bad = pkt_alloc(pool);
	bad->len = 10;
	assert_int_equal(io_tx_burst(x, &bad, 1), 0);
	pkt_free(pool, bad);
	struct io_stats st;
	io_get_stats(x, &st);
	assert_int_equal(st.tx_pkts, seq);
	assert_int_equal(st.tx_errors, 1);
	io_close(a);
	io_close(x);
}

static uint32_t xdp_attach_mode(const char *ifname)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	if (bpf_xdp_query((int)if_nametoindex(ifname), 0, &q) != 0)
		return 0xff;
	return q.attach_mode;
}

/* Close detaches the program; a second port on the same interface is
 * refused with a message; reopen works; bad names give errors. */
static void test_reopen_errors(void **state)
{
	(void)state;
	if (!have_ns)
		skip();
	char err[256];
	assert_int_equal(xdp_attach_mode("tb"), XDP_ATTACHED_NONE);
	struct io_port *p = io_open_afxdp("tb", NULL, err, sizeof(err));
	if (!p)
		fail_msg("open tb: %s", err);
	assert_int_not_equal(xdp_attach_mode("tb"), XDP_ATTACHED_NONE);
	err[0] = 0;
	assert_null(io_open_afxdp("tb", NULL, err, sizeof(err)));
	assert_true(strlen(err) > 0);
	print_message("second open: %s\n", err);
	io_close(p);
	assert_int_equal(xdp_attach_mode("tb"), XDP_ATTACHED_NONE);
	for (int i = 0; i < 3; i++) {
		p = io_open_afxdp("tb", NULL, err, sizeof(err));
		if (!p)
			fail_msg("reopen tb: %s", err);
		io_close(p);
	}
	assert_int_equal(xdp_attach_mode("tb"), XDP_ATTACHED_NONE);
	/* one queue only, generic mode */
	struct io_opts o;
	io_opts_init(&o);
	o.xdp_one_queue = true;
	o.xdp_queue = 0;
	o.xdp_mode = IO_XDP_MODE_GENERIC;
	p = io_open_afxdp("tb", &o, err, sizeof(err));
	if (!p)
		fail_msg("open tb generic: %s", err);
	assert_int_equal(xdp_attach_mode("tb"), XDP_ATTACHED_SKB);
	io_close(p);
	assert_int_equal(xdp_attach_mode("tb"), XDP_ATTACHED_NONE);
	/* errors, never a crash */
	err[0] = 0;
	assert_null(io_open_afxdp("nosuchif0", NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "no such interface"));
	assert_null(io_open_afxdp("", NULL, err, sizeof(err)));
	assert_null(io_open_afxdp("averyveryverylongname0", NULL, err, sizeof(err)));
	o.xdp_queue = 200; /* no such queue */
	o.xdp_mode = IO_XDP_MODE_AUTO;
	err[0] = 0;
	assert_null(io_open_afxdp("tb", &o, err, sizeof(err)));
	assert_true(strlen(err) > 0);
	o.xdp_one_queue = false;
	o.xdp_frames = 8; /* too few */
	assert_null(io_open_afxdp("tb", &o, err, sizeof(err)));
	assert_int_equal(xdp_attach_mode("tb"), XDP_ATTACHED_NONE);
}

/* ---- one port per worker on a 2-queue interface ---- */

#define W_FLOWS 64

/* IPv4/UDP frame of flow `flow` (UDP source port) carrying seq. */
static size_t mk_udp(uint8_t *f, uint32_t flow, uint32_t seq)
{
	static const uint8_t hdr[12] = {0x02, 0, 0, 0, 0, 0xbb, 0x02, 0, 0, 0, 0, 0xaa};
	const size_t len = 14 + 20 + 8 + 16;
	memset(f, 0, len);
	memcpy(f, hdr, 12);
	f[12] = 0x08;
	uint8_t *ip = f + 14;
	ip[0] = 0x45;
	ip[2] = 0;
	ip[3] = 20 + 8 + 16;
	ip[8] = 64;
	ip[9] = IPPROTO_UDP;
	const uint8_t addrs[8] = {10, 99, 0, 1, 10, 99, 0, 2};
	memcpy(ip + 12, addrs, 8);
	uint32_t s = 0;
	for (int i = 0; i < 20; i += 2)
		s += (uint32_t)ip[i] << 8 | ip[i + 1];
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	ip[10] = (uint8_t)(~s >> 8);
	ip[11] = (uint8_t)~s;
	uint8_t *udp = ip + 20;
	uint16_t sport = (uint16_t)(20000 + flow);
	udp[0] = (uint8_t)(sport >> 8);
	udp[1] = (uint8_t)sport;
	udp[2] = 0x30; /* 12345 */
	udp[3] = 0x39;
	udp[5] = 8 + 16; /* checksum 0: none */
	uint8_t *pl = udp + 8;
	memcpy(pl, "DTRW", 4);
	pl[4] = (uint8_t)(seq >> 24);
	pl[5] = (uint8_t)(seq >> 16);
	pl[6] = (uint8_t)(seq >> 8);
	pl[7] = (uint8_t)seq;
	pl[8] = (uint8_t)flow;
	return len;
}

/* seq of a frame built by mk_udp, or -1. */
static long udp_seq(const struct pkt *p)
{
	if (p->len < 14 + 20 + 8 + 16 || p->data[12] != 0x08 || p->data[13] != 0 ||
	    memcmp(p->data + 42, "DTRW", 4) != 0)
		return -1;
	return (long)((uint32_t)p->data[46] << 24 | (uint32_t)p->data[47] << 16 | (uint32_t)p->data[48] << 8 |
		      p->data[49]);
}

/* Receive mk_udp frames on ports[0..np) (NULL ports skipped) until `want`
 * arrived or wait_ms passed; cnt[seq] counts copies, who[seq] the port. */
static uint32_t rx_workers(struct io_port **ports, int np, uint8_t *cnt, int8_t *who, uint32_t nseq,
			   uint32_t want, uint32_t wait_ms)
{
	uint32_t got = 0;
	uint64_t end = now_ms() + wait_ms;
	struct pkt *b[64];
	while (got < want && now_ms() < end) {
		struct pollfd pf[4];
		int k = 0;
		for (int i = 0; i < np; i++)
			if (ports[i])
				pf[k++] = (struct pollfd){.fd = io_fd(ports[i]), .events = POLLIN};
		poll(pf, (nfds_t)k, 50);
		for (int i = 0; i < np; i++) {
			if (!ports[i])
				continue;
			uint32_t n;
			while ((n = io_rx_burst(ports[i], pool, b, 64)) > 0) {
				for (uint32_t j = 0; j < n; j++) {
					long s = udp_seq(b[j]);
					if (s < 0 || (uint32_t)s >= nseq)
						continue;
					cnt[s]++;
					who[s] = (int8_t)i;
					got++;
				}
				pkt_free_bulk(pool, b, n);
			}
		}
	}
	return got;
}

struct wopen {
	struct io_opts o;
	struct io_port *p;
	char err[256];
};

static void *wopen_thread(void *arg)
{
	struct wopen *w = arg;
	w->p = io_open_afxdp("wb", &w->o, w->err, sizeof(w->err));
	return NULL;
}

/* Frames of `rounds` x W_FLOWS flows from wa (one AF_PACKET socket, the
 * flows spread over wa's two TX queues, hence wb's two RX queues). */
static uint32_t send_flows(int fd, uint32_t seq0, int rounds)
{
	uint32_t seq = seq0;
	for (int r = 0; r < rounds; r++) {
		for (uint32_t fl = 0; fl < W_FLOWS; fl++, seq++) {
			uint8_t f[128];
			size_t len = mk_udp(f, fl, seq);
			assert_int_equal(send(fd, f, len, 0), (ssize_t)len);
		}
	}
	return seq - seq0;
}

/* Two ports, worker 0 and 1 of 2, opened at once from two threads on a
 * veth with two RX queues: every frame is received exactly once, each flow
 * by one port, both ports get some; each port transmits; closing one keeps
 * the other working; the last close detaches the program; bad worker
 * counts are refused with a message. */
static void test_workers(void **state)
{
	(void)state;
	if (!have_ns)
		skip();
	assert_int_equal(system("ip link add wa numtxqueues 2 numrxqueues 2 type veth peer name wb "
				"numtxqueues 2 numrxqueues 2 && ip link set wa up && ip link set wb up"),
			 0);
	char err[256];
	struct io_opts o;
	io_opts_init(&o);
	/* more workers than queues */
	o.xdp_workers = 4;
	o.xdp_worker = 3;
	err[0] = 0;
	assert_null(io_open_afxdp("wb", &o, err, sizeof(err)));
	print_message("4 workers: %s\n", err);
	assert_non_null(strstr(err, "wb: 2 RX queues for 4 workers"));
	o.xdp_workers = 2;
	o.xdp_worker = 0;
	assert_null(io_open_afxdp("tb", &o, err, sizeof(err)));
	assert_non_null(strstr(err, "tb: 1 RX queue for 2 workers"));
	o.xdp_worker = 2; /* out of range */
	err[0] = 0;
	assert_null(io_open_afxdp("wb", &o, err, sizeof(err)));
	assert_true(strlen(err) > 0);
	assert_int_equal(xdp_attach_mode("wb"), XDP_ATTACHED_NONE);

	/* both workers at once (native mode: a generic XDP program on a veth
	 * sees every frame on queue 0) */
	struct wopen w[2];
	pthread_t t[2];
	for (int i = 0; i < 2; i++) {
		io_opts_init(&w[i].o);
		w[i].o.xdp_workers = 2;
		w[i].o.xdp_worker = (uint16_t)i;
		w[i].p = NULL;
		assert_int_equal(pthread_create(&t[i], NULL, wopen_thread, &w[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	if (!w[0].p || !w[1].p)
		fail_msg("open workers: %s / %s", w[0].p ? "ok" : w[0].err, w[1].p ? "ok" : w[1].err);
	struct io_port *ports[2] = {w[0].p, w[1].p};
	uint32_t mode = xdp_attach_mode("wb");
	print_message("attach mode %u\n", mode);
	assert_int_equal(mode, XDP_ATTACHED_DRV);
	/* the same worker twice, or a port without workers: refused */
	err[0] = 0;
	o.xdp_worker = 1;
	assert_null(io_open_afxdp("wb", &o, err, sizeof(err)));
	print_message("worker 1 again: %s\n", err);
	assert_true(strlen(err) > 0);
	err[0] = 0;
	assert_null(io_open_afxdp("wb", NULL, err, sizeof(err)));
	assert_true(strlen(err) > 0);
	o.xdp_workers = 4;
	o.xdp_worker = 1;
	assert_null(io_open_afxdp("wb", &o, err, sizeof(err)));

	/* RX: every frame once, a flow always on the same port */
	enum { ROUNDS = 16, NSEQ = 3 * ROUNDS * W_FLOWS };
	static uint8_t cnt[NSEQ];
	static int8_t who[NSEQ];
	memset(cnt, 0, sizeof(cnt));
	memset(who, -1, sizeof(who));
	int fd = raw_socket("wa");
	uint32_t seq = 0;
	uint32_t n1 = send_flows(fd, seq, ROUNDS);
	assert_int_equal(rx_workers(ports, 2, cnt, who, NSEQ, n1, 3000), n1);
	int8_t flow_port[W_FLOWS];
	uint32_t per_port[2] = {0, 0};
	for (uint32_t s = 0; s < n1; s++) {
		assert_int_equal(cnt[s], 1);
		uint32_t fl = s % W_FLOWS;
		if (s < W_FLOWS)
			flow_port[fl] = who[s];
		assert_int_equal(who[s], flow_port[fl]);
		per_port[(int)who[s]]++;
	}
	seq += n1;
	print_message("frames per worker port: %u + %u\n", per_port[0], per_port[1]);
	assert_true(per_port[0] > 0);
	assert_true(per_port[1] > 0);
	/* nothing more turns up (no late duplicates) */
	assert_int_equal(rx_workers(ports, 2, cnt, who, NSEQ, 1, 200), 0);

	/* TX from each port, received on wa */
	struct io_port *a = io_open_afpacket("wa", NULL, err, sizeof(err));
	if (!a)
		fail_msg("open wa: %s", err);
	uint32_t tseq = 0, next = 0;
	for (int i = 0; i < 2; i++) {
		struct pkt *b[64];
		assert_int_equal(pkt_alloc_bulk(pool, b, 64), 64);
		for (int k = 0; k < 64; k++, tseq++)
			b[k]->len = (uint32_t)mk_frame(b[k]->data, frame_len(tseq), tseq);
		assert_int_equal(io_tx_burst(ports[i], b, 64), 64);
		pkt_free_bulk(pool, b, 64);
		assert_int_equal(rx_expect(a, &next, 64), 64);
	}

	/* close worker 0: the program stays, worker 1 keeps its flows */
	io_close(ports[0]);
	ports[0] = NULL;
	assert_int_equal(xdp_attach_mode("wb"), mode);
	uint32_t n2 = send_flows(fd, seq, ROUNDS);
	uint32_t want = 0;
	for (uint32_t s = seq; s < seq + n2; s++)
		want += flow_port[(s - seq) % W_FLOWS] == 1;
	assert_int_equal(rx_workers(ports, 2, cnt, who, NSEQ, want, 3000), want);
	for (uint32_t s = seq; s < seq + n2; s++)
		assert_int_equal(cnt[s], flow_port[(s - seq) % W_FLOWS] == 1 ? 1 : 0);
	seq += n2;
	{
		struct pkt *b[64];
		assert_int_equal(pkt_alloc_bulk(pool, b, 64), 64);
		for (int k = 0; k < 64; k++, tseq++)
			b[k]->len = (uint32_t)mk_frame(b[k]->data, frame_len(tseq), tseq);
		assert_int_equal(io_tx_burst(ports[1], b, 64), 64);
		pkt_free_bulk(pool, b, 64);
		assert_int_equal(rx_expect(a, &next, 64), 64);
	}

	/* worker 0 again: its slot is free, it gets its flows back; it asks
	 * for another mode and reuses the program attached */
	io_opts_init(&o);
	o.xdp_workers = 2;
	o.xdp_worker = 0;
	o.xdp_mode = IO_XDP_MODE_GENERIC;
	ports[0] = io_open_afxdp("wb", &o, err, sizeof(err));
	if (!ports[0])
		fail_msg("reopen worker 0: %s", err);
	assert_int_equal(xdp_attach_mode("wb"), mode);
	uint32_t n3 = send_flows(fd, seq, ROUNDS);
	assert_int_equal(rx_workers(ports, 2, cnt, who, NSEQ, n3, 3000), n3);
	for (uint32_t s = seq; s < seq + n3; s++) {
		assert_int_equal(cnt[s], 1);
		assert_int_equal(who[s], flow_port[(s - seq) % W_FLOWS]);
	}
	struct io_stats st0, st1;
	io_get_stats(ports[0], &st0);
	io_get_stats(ports[1], &st1);
	assert_int_equal(st0.rx_pkts, per_port[0]);
	assert_int_equal(st1.rx_pkts, 2 * per_port[1] + want);
	assert_int_equal(st1.tx_pkts, 128);

	/* the last close detaches */
	io_close(ports[1]);
	assert_int_equal(xdp_attach_mode("wb"), mode);
	io_close(ports[0]);
	assert_int_equal(xdp_attach_mode("wb"), XDP_ATTACHED_NONE);
	/* and a port without workers can have the interface again */
	struct io_port *p = io_open_afxdp("wb", NULL, err, sizeof(err));
	if (!p)
		fail_msg("open wb alone: %s", err);
	io_close(p);
	assert_int_equal(xdp_attach_mode("wb"), XDP_ATTACHED_NONE);
	io_close(a);
	close(fd);
}

/* Worker ports whose interface is deleted under them: an interface that
 * comes back with the same index gets a program of its own (the old one
 * went with the old interface), and the stale ports still close cleanly. */
static void test_workers_gone(void **state)
{
	(void)state;
	if (!have_ns)
		skip();
	const char *mk = "ip link add wc index 4077 numtxqueues 2 numrxqueues 2 type veth peer name wd "
			 "numtxqueues 2 numrxqueues 2 && ip link set wc up && ip link set wd up";
	assert_int_equal(system(mk), 0);
	char err[256];
	struct io_opts o;
	io_opts_init(&o);
	o.xdp_workers = 2;
	struct io_port *old[2];
	for (int i = 0; i < 2; i++) {
		o.xdp_worker = (uint16_t)i;
		old[i] = io_open_afxdp("wc", &o, err, sizeof(err));
		if (!old[i])
			fail_msg("open wc worker %d: %s", i, err);
	}
	assert_int_equal(io_ifindex(old[0]), 4077);
	assert_int_equal(system("ip link del wc"), 0);
	assert_int_equal(system(mk), 0);
	assert_int_equal(xdp_attach_mode("wc"), XDP_ATTACHED_NONE);
	/* the same index, a new interface: a port of its own */
	struct io_port *p = io_open_afxdp("wc", NULL, err, sizeof(err));
	if (!p)
		fail_msg("open new wc: %s", err);
	assert_int_equal(io_ifindex(p), 4077);
	assert_int_not_equal(xdp_attach_mode("wc"), XDP_ATTACHED_NONE);
	io_close(old[0]);
	io_close(old[1]);
	assert_int_not_equal(xdp_attach_mode("wc"), XDP_ATTACHED_NONE);
	/* and it works: a frame from wd arrives */
	int fd = raw_socket("wd");
	uint8_t f[1600];
	size_t len = mk_frame(f, frame_len(7), 7);
	assert_int_equal(send(fd, f, len, 0), (ssize_t)len);
	uint32_t next = 7;
	assert_int_equal(rx_expect(p, &next, 1), 1);
	close(fd);
	io_close(p);
	assert_int_equal(xdp_attach_mode("wc"), XDP_ATTACHED_NONE);
}

/* ---- TCP through a forwarding loop between two namespaces ---- */

struct fwd {
	struct io_port *a, *b;
	struct pkt_pool *pool;
	atomic_bool stop;
	uint64_t moved;
};

static void *fwd_loop(void *arg)
{
	struct fwd *f = arg;
	struct pkt *b[64];
	while (!atomic_load(&f->stop)) {
		struct pollfd pf[2] = {{.fd = io_fd(f->a), .events = POLLIN}, {.fd = io_fd(f->b), .events = POLLIN}};
		poll(pf, 2, 5);
		for (int dir = 0; dir < 2; dir++) {
			struct io_port *from = dir ? f->b : f->a, *to = dir ? f->a : f->b;
			uint32_t n;
			while ((n = io_rx_burst(from, f->pool, b, 64)) > 0) {
				io_tx_burst(to, b, n);
				pkt_free_bulk(f->pool, b, n);
				f->moved += n;
			}
		}
	}
	return NULL;
}

static int ns_fd(const char *name)
{
	char path[128];
	snprintf(path, sizeof(path), "/run/netns/%s", name);
	return open(path, O_RDONLY | O_CLOEXEC);
}

/* A socket created in namespace nsfd (this thread comes back after). */
static int socket_in(int nsfd, int type)
{
	int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	assert_true(self >= 0);
	assert_int_equal(setns(nsfd, CLONE_NEWNET), 0);
	int s = socket(AF_INET, type, 0);
	assert_int_equal(setns(self, CLONE_NEWNET), 0);
	close(self);
	return s;
}

struct srv {
	int lfd;
	size_t want;
	size_t got;
	bool ok;
};

static void *server(void *arg)
{
	struct srv *s = arg;
	s->ok = true;
	int c = accept(s->lfd, NULL, NULL);
	if (c < 0) {
		s->ok = false;
		return NULL;
	}
	struct timeval tv = {.tv_sec = 5};
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	uint8_t buf[65536];
	for (;;) {
		ssize_t r = recv(c, buf, sizeof(buf), 0);
		if (r <= 0)
			break;
		for (ssize_t i = 0; i < r; i++)
			if (buf[i] != (uint8_t)((s->got + (size_t)i) * 31 / 7))
				s->ok = false;
		s->got += (size_t)r;
	}
	close(c);
	return NULL;
}

/* offloads: "" keeps the defaults (TSO, GSO, TX checksum offload on) */
static void tcp_through(uint8_t mode, const char *offloads)
{
	char cmd[1024], n1[32], n2[32];
	snprintf(n1, sizeof(n1), "afxh1_%d", (int)getpid());
	snprintf(n2, sizeof(n2), "afxh2_%d", (int)getpid());
	/* h1:e1 <-> x1 [AF_XDP] fwd [AF_XDP] x2 <-> e2:h2, default offloads */
	snprintf(cmd, sizeof(cmd),
		 "ip netns add %s && ip netns add %s && "
		 "ip link add x1 type veth peer name e1 netns %s && ip link add x2 type veth peer name e2 netns %s && "
		 "ip netns exec %s sh -c 'ip link set lo up; ip link set e1 up; ip addr add 10.88.0.1/24 dev e1' && "
		 "ip netns exec %s sh -c 'ip link set lo up; ip link set e2 up; ip addr add 10.88.0.2/24 dev e2' && "
		 "ip link set x1 up && ip link set x2 up%s%s%s%s%s%s",
		 n1, n2, n1, n2, n1, n2, *offloads ? " && ip netns exec " : "", *offloads ? n1 : "",
		 *offloads ? " ethtool -K e1 " : "", offloads, *offloads ? " && ip netns exec " : "",
		 *offloads ? n2 : "");
	if (*offloads) {
		size_t l = strlen(cmd);
		snprintf(cmd + l, sizeof(cmd) - l, " ethtool -K e2 %s >/dev/null", offloads);
	}
	int rc = system(cmd);
	int h1 = ns_fd(n1), h2 = ns_fd(n2);
	char err[256];
	struct io_opts o;
	io_opts_init(&o);
	o.xdp_mode = mode;
	struct fwd f = {.pool = pool};
	if (rc == 0 && h1 >= 0 && h2 >= 0) {
		f.a = io_open_afxdp("x1", &o, err, sizeof(err));
		f.b = f.a ? io_open_afxdp("x2", &o, err, sizeof(err)) : NULL;
	}
	bool ready = rc == 0 && h1 >= 0 && h2 >= 0 && f.a && f.b;
	struct srv s = {.want = 8u << 20};
	size_t sent = 0;
	if (ready) {
		pthread_t ft, st;
		atomic_store(&f.stop, false);
		assert_int_equal(pthread_create(&ft, NULL, fwd_loop, &f), 0);
		s.lfd = socket_in(h2, SOCK_STREAM);
		int one = 1;
		setsockopt(s.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(5201)};
		inet_pton(AF_INET, "10.88.0.2", &sa.sin_addr);
		assert_int_equal(bind(s.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		assert_int_equal(listen(s.lfd, 1), 0);
		struct timeval ltv = {.tv_sec = 5};
		setsockopt(s.lfd, SOL_SOCKET, SO_RCVTIMEO, &ltv, sizeof(ltv)); /* accept gives up */
		assert_int_equal(pthread_create(&st, NULL, server, &s), 0);
		int c = socket_in(h1, SOCK_STREAM);
		struct timeval tv = {.tv_sec = 5};
		setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			static uint8_t buf[65536];
			while (sent < s.want) {
				size_t k = MIN(sizeof(buf), s.want - sent);
				for (size_t i = 0; i < k; i++)
					buf[i] = (uint8_t)((sent + i) * 31 / 7);
				ssize_t w = send(c, buf, k, 0);
				if (w <= 0)
					break;
				sent += (size_t)w;
			}
		}
		shutdown(c, SHUT_WR);
		pthread_join(st, NULL);
		close(c);
		close(s.lfd);
		atomic_store(&f.stop, true);
		pthread_join(ft, NULL);
		struct io_stats sa1, sb1;
		io_get_stats(f.a, &sa1);
		io_get_stats(f.b, &sb1);
		print_message("mode %u: TCP %zu/%zu bytes, frames moved %llu, csum filled %llu+%llu, gso %llu+%llu\n",
			      mode, s.got, sent, (unsigned long long)f.moved, (unsigned long long)sa1.csum_filled,
			      (unsigned long long)sb1.csum_filled, (unsigned long long)sa1.gso_segmented,
			      (unsigned long long)sb1.gso_segmented);
	}
	io_close(f.a);
	io_close(f.b);
	if (h1 >= 0)
		close(h1);
	if (h2 >= 0)
		close(h2);
	snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null; ip netns del %s 2>/dev/null; ip link del x1 2>/dev/null; ip link del x2 2>/dev/null", n1, n2);
	if (system(cmd) != 0)
		(void)0;
	if (!ready)
		fail_msg("TCP lab not ready (rc %d): %s", rc, err);
	assert_int_equal(sent, s.want);
	assert_int_equal(s.got, s.want);
	assert_true(s.ok);
}

static void test_tcp_native(void **state)
{
	(void)state;
	if (!have_ns)
		skip();
	tcp_through(IO_XDP_MODE_AUTO, "");
}

/* Generic mode: TCP works once the senders segment themselves (partial
 * checksums remain and are completed). */
static void test_tcp_generic(void **state)
{
	(void)state;
	if (!have_ns)
		skip();
	/* generic XDP leaves the peer's GSO on and AF_XDP copy mode drops
	 * frames larger than a UMEM frame: the senders must segment */
	tcp_through(IO_XDP_MODE_GENERIC, "tso off gso off");
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test_setup_teardown(test_rx_exact, ns_setup, ns_teardown),
		cmocka_unit_test_setup_teardown(test_tx_exact, ns_setup, ns_teardown),
		cmocka_unit_test_setup_teardown(test_reopen_errors, ns_setup, ns_teardown),
		cmocka_unit_test_setup_teardown(test_workers, ns_setup, ns_teardown),
		cmocka_unit_test_setup_teardown(test_workers_gone, ns_setup, ns_teardown),
		cmocka_unit_test_setup_teardown(test_tcp_native, ns_setup, ns_teardown),
		cmocka_unit_test_setup_teardown(test_tcp_generic, ns_setup, ns_teardown),
	};
	return cmocka_run_group_tests(t, setup, teardown);
}
