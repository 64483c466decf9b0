/* sysgen.c - the traffic generator and receiver of bench/system (run.sh).
 *
 *   sysgen tx IFACE SRCMAC DSTMAC SRCIP DSTIP PPS SECS FLOWS
 *       sends 64-byte frames (60 bytes + FCS) of IPv4/UDP to DSTIP port
 *       SYSGEN_DPORT, source ports 10000..10000+FLOWS-1 in turn, at PPS
 *       frames per second for SECS seconds, with AF_PACKET sendmmsg
 *       (PACKET_QDISC_BYPASS). Rate limit: a token bucket refilled by the
 *       clock, sent in batches of up to 32; between batches the thread
 *       sleeps (clock_nanosleep to the instant the next batch is due), it
 *       never spins. Prints "sent N secs S tx_errors E".
 *   sysgen rx IFACE READYFILE
 *       counts the IPv4/UDP frames to port SYSGEN_DPORT that arrive on
 *       IFACE (TPACKET_V3 RX ring), creates READYFILE once the ring is
 *       bound, and on SIGINT/SIGTERM prints "rx N ring_drops D" and exits.
 *
 * Owns: only the sockets it opens, in the namespace it is started in. Run
 * it inside the lab's guest namespaces only (it sends raw frames). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SYSGEN_DPORT 5001
#define FRAME_LEN 60
#define BATCH 32
#define MAX_FLOWS 65536

static volatile sig_atomic_t g_stop;

static void on_sig(int s)
{
	(void)s;
	g_stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *m)
{
	perror(m);
	exit(1);
}

static int parse_mac(const char *s, uint8_t m[6])
{
	unsigned v[6];
	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
		return -1;
	for (int i = 0; i < 6; i++) {
		if (v[i] > 255)
			return -1;
		m[i] = (uint8_t)v[i];
	}
	return 0;
}

static int open_bound(const char *ifname, int proto)
{
	int fd = socket(AF_PACKET, SOCK_RAW, htons((uint16_t)proto));
	if (fd < 0)
		die("socket(AF_PACKET)");
	unsigned idx = if_nametoindex(ifname);
	if (!idx) {
		fprintf(stderr, "sysgen: no interface %s\n", ifname);
		exit(1);
	}
	struct sockaddr_ll sll = {.sll_family = AF_PACKET,
				  .sll_protocol = htons((uint16_t)proto),
				  .sll_ifindex = (int)idx};
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		die("bind");
	return fd;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void mk_frame(uint8_t *f, const uint8_t *src, const uint8_t *dst, uint32_t sip,
		     uint32_t dip, uint16_t sport)
{
	memset(f, 0, FRAME_LEN);
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	put16(f + 12, 0x0800);
	uint8_t *ip = f + 14;
	ip[0] = 0x45;
	put16(ip + 2, FRAME_LEN - 14);
	ip[8] = 64;
	ip[9] = 17;
	memcpy(ip + 12, &sip, 4);
	memcpy(ip + 16, &dip, 4);
	uint32_t sum = 0;
	for (int i = 0; i < 20; i += 2)
		sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	put16(ip + 10, (uint16_t)~sum);
	uint8_t *udp = ip + 20;
	put16(udp, sport);
	put16(udp + 2, SYSGEN_DPORT);
	put16(udp + 4, FRAME_LEN - 14 - 20);
	/* UDP checksum 0: none (IPv4) */
}

static int do_tx(int argc, char **argv)
{
	if (argc != 10) {
		fprintf(stderr, "usage: sysgen tx IFACE SRCMAC DSTMAC SRCIP DSTIP PPS SECS FLOWS\n");
		return 2;
	}
	uint8_t smac[6], dmac[6];
	struct in_addr sip, dip;
	if (parse_mac(argv[3], smac) || parse_mac(argv[4], dmac) || !inet_aton(argv[5], &sip) ||
	    !inet_aton(argv[6], &dip)) {
		fprintf(stderr, "sysgen: bad MAC or IP\n");
		return 2;
	}
	double pps = strtod(argv[7], NULL), secs = strtod(argv[8], NULL);
	long flows = strtol(argv[9], NULL, 10);
	if (!(pps > 0 && pps < 1e8) || !(secs > 0 && secs < 3600) || flows < 1 || flows > MAX_FLOWS) {
		fprintf(stderr, "sysgen: bad rate, duration or flow count\n");
		return 2;
	}
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0); /* 1 us: sleeps end on time */
	int fd = open_bound(argv[2], 0);
	int one = 1;
	setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
	int sndbuf = 4 << 20;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf));

	uint8_t *frames = calloc((size_t)flows, FRAME_LEN);
	if (!frames)
		die("calloc");
	for (long i = 0; i < flows; i++)
		mk_frame(frames + (size_t)i * FRAME_LEN, smac, dmac, sip.s_addr, dip.s_addr,
			 (uint16_t)(10000 + i % 50000));
	struct iovec iov[BATCH];
	struct mmsghdr msg[BATCH];
	memset(msg, 0, sizeof(msg));

	uint64_t start = now_ns(), dur = (uint64_t)(secs * 1e9), sent = 0, errs = 0;
	uint64_t total = (uint64_t)(pps * secs + 0.5);
	long next_flow = 0;
	signal(SIGINT, on_sig);
	signal(SIGTERM, on_sig);
	while (!g_stop && sent < total) {
		uint64_t t = now_ns() - start;
		if (t >= dur + 100000000ull)
			break; /* could not keep up: stop 0.1 s late at most */
		uint64_t due = (uint64_t)((double)t * pps / 1e9);
		if (due > total)
			due = total;
		if (due < sent + BATCH && due < total) {
			/* sleep until a whole batch (or the rest) is due */
			uint64_t want = sent + BATCH < total ? sent + BATCH : total;
			uint64_t at = start + (uint64_t)((double)want * 1e9 / pps);
			struct timespec ts = {.tv_sec = (time_t)(at / 1000000000ull),
					      .tv_nsec = (long)(at % 1000000000ull)};
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
			continue;
		}
		unsigned n = (unsigned)(due - sent > BATCH ? BATCH : due - sent);
		for (unsigned i = 0; i < n; i++) {
			iov[i].iov_base = frames + (size_t)next_flow * FRAME_LEN;
			iov[i].iov_len = FRAME_LEN;
			msg[i].msg_hdr.msg_iov = &iov[i];
			msg[i].msg_hdr.msg_iovlen = 1;
			if (++next_flow == flows)
				next_flow = 0;
		}
		int r = sendmmsg(fd, msg, n, 0);
		if (r > 0) {
			sent += (unsigned)r;
			if ((unsigned)r < n)
				errs++;
		} else {
			/* a full queue: count it and skip these frames (they
			 * are offered and lost, as on a wire) */
			errs++;
			sent += n;
		}
	}
	double el = (double)(now_ns() - start) / 1e9;
	printf("sent %llu secs %.3f tx_errors %llu\n", (unsigned long long)sent, el,
	       (unsigned long long)errs);
	free(frames);
	close(fd);
	return 0;
}

static int do_rx(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: sysgen rx IFACE READYFILE\n");
		return 2;
	}
	int fd = open_bound(argv[2], ETH_P_ALL);
	int v = TPACKET_V3;
	if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) < 0)
		die("PACKET_VERSION");
	struct tpacket_req3 req = {.tp_block_size = 1 << 18,
				   .tp_block_nr = 64,
				   .tp_frame_size = 2048,
				   .tp_retire_blk_tov = 10};
	req.tp_frame_nr = req.tp_block_size / req.tp_frame_size * req.tp_block_nr;
	if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0)
		die("PACKET_RX_RING");
	size_t len = (size_t)req.tp_block_size * req.tp_block_nr;
	uint8_t *ring = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (ring == MAP_FAILED)
		die("mmap");
	struct sigaction sa = {.sa_handler = on_sig};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	int rf = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (rf < 0)
		die("ready file");
	close(rf);

	uint64_t count = 0;
	unsigned blk = 0;
	unsigned idle_after_stop = 0;
	for (;;) {
		struct tpacket_block_desc *bd =
		    (struct tpacket_block_desc *)(ring + (size_t)blk * req.tp_block_size);
		if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) {
			/* after the stop signal: wait for the kernel to retire
			 * the open block (tp_retire_blk_tov), then leave */
			if (g_stop && ++idle_after_stop > 3)
				break;
			struct pollfd p = {.fd = fd, .events = POLLIN};
			poll(&p, 1, g_stop ? 20 : 100);
			continue;
		}
		uint32_t n = bd->hdr.bh1.num_pkts;
		size_t off = bd->hdr.bh1.offset_to_first_pkt;
		for (uint32_t i = 0; i < n && off + sizeof(struct tpacket3_hdr) <= req.tp_block_size;
		     i++) {
			struct tpacket3_hdr *h = (struct tpacket3_hdr *)((uint8_t *)bd + off);
			size_t fo = off + h->tp_mac;
			if (fo + 42 <= req.tp_block_size && h->tp_snaplen >= 42) {
				const uint8_t *f = (const uint8_t *)bd + fo;
				if (f[12] == 0x08 && f[13] == 0x00 && f[23] == 17 &&
				    (f[14] & 0x0f) == 5 && f[36] == (SYSGEN_DPORT >> 8) &&
				    f[37] == (SYSGEN_DPORT & 0xff))
					count++;
			}
			if (!h->tp_next_offset)
				break;
			off += h->tp_next_offset;
		}
		__atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
		blk = (blk + 1) % req.tp_block_nr;
	}
	struct tpacket_stats_v3 st;
	socklen_t sl = sizeof(st);
	memset(&st, 0, sizeof(st));
	getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &sl);
	printf("rx %llu ring_drops %u\n", (unsigned long long)count, st.tp_drops);
	fflush(stdout);
	munmap(ring, len);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "tx"))
		return do_tx(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "rx"))
		return do_rx(argc, argv);
	fprintf(stderr, "usage: sysgen tx|rx ...\n");
	return 2;
}
