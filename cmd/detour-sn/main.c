/* detour-sn - the reference NSH-aware service node (SPEC section 2).
 *
 * Receives Ethernet frames carrying NSH (type 0x894F) on one interface,
 * drops the ones whose inner frame matches a --drop rule, and sends every
 * other one back out the same interface with SI decremented by one and the
 * MACs swapped (dst = the sender, src = own MAC). Counts rx, passed,
 * dropped, ignored (non-NSH), malformed (bad NSH) and packets per SPI, and
 * writes them as JSON on SIGUSR1 and at exit.
 *
 * Owns: this program only. Must not: change the NSH metadata other than SI,
 * or the inner frame. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <net/if.h>
#include <netinet/in.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nsh.h"
#include "wire.h"

#define BATCH 64
#define FRAME_MAX 16384
#define MAX_RULES 32
#define MAX_SPI 64

struct drop_rule {
	uint8_t proto;
	bool has_port;
	uint16_t dport;
};

struct spi_count {
	uint32_t spi;
	uint64_t packets;
};

struct stats {
	uint64_t rx, passed, dropped, ignored, malformed;
	struct spi_count spi[MAX_SPI];
	uint32_t n_spi;
	uint64_t spi_other; /* SPIs beyond the table */
};

static volatile sig_atomic_t want_dump, want_exit;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		want_dump = 1;
	else
		want_exit = 1;
}

static void usage(FILE *to)
{
	fprintf(to,
		"usage: detour-sn --iface IF [--mac MAC] [--drop PROTO[:DPORT]]... [--stats FILE]\n"
		"                 [--md-class N]\n"
		"  --iface IF       interface to serve (receives and returns NSH frames)\n"
		"  --mac MAC        own MAC address (default: the interface's)\n"
		"  --drop P[:PORT]  drop inner frames of protocol P (tcp, udp, icmp, icmpv6),\n"
		"                   optionally only to destination port PORT; repeatable\n"
		"  --stats FILE     write counters as JSON to FILE on SIGUSR1 and at exit\n"
		"  --md-class N     NSH metadata class of the Detour TLVs (default 0xFFF6)\n");
}

static bool parse_rule(const char *s, struct drop_rule *r)
{
	char name[16];
	const char *colon = strchr(s, ':');
	size_t n = colon ? (size_t)(colon - s) : strlen(s);
	if (n == 0 || n >= sizeof(name))
		return false;
	memcpy(name, s, n);
	name[n] = 0;
	if (strcmp(name, "tcp") == 0)
		r->proto = 6;
	else if (strcmp(name, "udp") == 0)
		r->proto = 17;
	else if (strcmp(name, "icmp") == 0)
		r->proto = 1;
	else if (strcmp(name, "icmpv6") == 0)
		r->proto = 58;
	else
		return false;
	r->has_port = colon != NULL;
	if (colon) {
		char *end;
		errno = 0;
		unsigned long p = strtoul(colon + 1, &end, 10);
		if (errno || end == colon + 1 || *end || p > 65535)
			return false;
		r->dport = (uint16_t)p;
	}
	return true;
}

static void count_spi(struct stats *st, uint32_t spi)
{
	for (uint32_t i = 0; i < st->n_spi; i++) {
		if (st->spi[i].spi == spi) {
			st->spi[i].packets++;
			return;
		}
	}
	if (st->n_spi < MAX_SPI) {
		st->spi[st->n_spi].spi = spi;
		st->spi[st->n_spi].packets = 1;
		st->n_spi++;
	} else {
		st->spi_other++;
	}
}

static void write_stats(const struct stats *st, const char *path, const char *iface)
{
	fprintf(stderr,
		"detour-sn: %s rx=%" PRIu64 " passed=%" PRIu64 " dropped=%" PRIu64 " ignored=%" PRIu64
		" malformed=%" PRIu64 "\n",
		iface, st->rx, st->passed, st->dropped, st->ignored, st->malformed);
	if (!path)
		return;
	json_t *o = json_object();
	json_t *spis = json_object();
	if (!o || !spis) {
		json_decref(o);
		json_decref(spis);
		return;
	}
	json_object_set_new(o, "iface", json_string(iface));
	json_object_set_new(o, "rx", json_integer((json_int_t)st->rx));
	json_object_set_new(o, "passed", json_integer((json_int_t)st->passed));
	json_object_set_new(o, "dropped", json_integer((json_int_t)st->dropped));
	json_object_set_new(o, "ignored", json_integer((json_int_t)st->ignored));
	json_object_set_new(o, "malformed", json_integer((json_int_t)st->malformed));
	for (uint32_t i = 0; i < st->n_spi; i++) {
		char key[16];
		snprintf(key, sizeof(key), "%" PRIu32, st->spi[i].spi);
		json_object_set_new(spis, key, json_integer((json_int_t)st->spi[i].packets));
	}
	json_object_set_new(o, "spi", spis);
	json_object_set_new(o, "spi_other", json_integer((json_int_t)st->spi_other));
	char tmp[4096];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		fprintf(stderr, "detour-sn: stats path too long\n");
	} else if (json_dump_file(o, tmp, JSON_INDENT(2) | JSON_SORT_KEYS) != 0) {
		fprintf(stderr, "detour-sn: cannot write %s\n", tmp);
	} else if (rename(tmp, path) != 0) {
		fprintf(stderr, "detour-sn: cannot rename %s to %s: %s\n", tmp, path, strerror(errno));
	}
	json_decref(o);
}

/* Does the inner frame match a drop rule? */
static bool rule_match(const struct drop_rule *rules, int n_rules, const struct flow_key *k)
{
	if (!k->is_ip)
		return false;
	for (int i = 0; i < n_rules; i++) {
		if (rules[i].proto != k->proto)
			continue;
		if (rules[i].has_port && rules[i].dport != k->dport)
			continue;
		return true;
	}
	return false;
}

/* Parses the payload after NSH (Ethernet, or bare IPv4/IPv6 given a
 * made-up Ethernet header) into a flow key. */
static bool inner_key(const uint8_t *in, size_t len, uint8_t np, struct flow_key *k)
{
	static uint8_t tmp[FRAME_MAX + ETH_HLEN];
	struct pkt_layout lay;
	memset(k, 0, sizeof(*k));
	if (np == NSH_NP_ETHERNET)
		return wire_parse_buf(in, len, &lay, k) == DROP_NONE;
	if ((np != NSH_NP_IPV4 && np != NSH_NP_IPV6) || len > FRAME_MAX)
		return false;
	memset(tmp, 0, 12);
	wr16(tmp + 12, np == NSH_NP_IPV4 ? ETH_P_IPV4 : ETH_P_IPV6);
	memcpy(tmp + ETH_HLEN, in, len);
	return wire_parse_buf(tmp, len + ETH_HLEN, &lay, k) == DROP_NONE;
}

enum verdict { V_IGNORE, V_MALFORMED, V_DROP, V_PASS };

static enum verdict handle(uint8_t *f, size_t len, uint16_t md_class, const struct mac *own,
			   const struct drop_rule *rules, int n_rules, struct stats *st)
{
	if (len < ETH_HLEN)
		return V_IGNORE;
	size_t off = ETH_HLEN;
	uint16_t type = rd16(f + 12);
	for (int tags = 0; tags < 2 && (type == ETH_P_VLAN || type == ETH_P_QINQ); tags++) {
		if (len - off < 4)
			return V_IGNORE;
		type = rd16(f + off + 2);
		off += 4;
	}
	if (type != ETH_P_NSH)
		return V_IGNORE;
	struct nsh_info info;
	struct sp_meta md;
	if (nsh_decode(f + off, len - off, md_class, &info, &md) != DROP_NONE)
		return V_MALFORMED;
	if (info.si == 0)
		return V_MALFORMED; /* nothing left to decrement */
	count_spi(st, info.spi);
	struct flow_key k;
	size_t inner = off + info.hdr_len;
	if (n_rules && inner_key(f + inner, len - inner, info.next_proto, &k) &&
	    rule_match(rules, n_rules, &k))
		return V_DROP;
	f[off + 7] = (uint8_t)(info.si - 1);
	memcpy(f, f + 6, 6);
	memcpy(f + 6, own->b, 6);
	return V_PASS;
}

static int open_socket(const char *ifname, int *ifindex, struct mac *mac)
{
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(0x0003 /* ETH_P_ALL */));
	if (fd < 0) {
		perror("detour-sn: socket(AF_PACKET)");
		return -1;
	}
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	if (strlen(ifname) >= sizeof(ifr.ifr_name)) {
		fprintf(stderr, "detour-sn: interface name too long: %s\n", ifname);
		close(fd);
		return -1;
	}
	strcpy(ifr.ifr_name, ifname);
	if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) {
		fprintf(stderr, "detour-sn: no interface %s: %s\n", ifname, strerror(errno));
		close(fd);
		return -1;
	}
	*ifindex = ifr.ifr_ifindex;
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) {
		fprintf(stderr, "detour-sn: cannot read MAC of %s: %s\n", ifname, strerror(errno));
		close(fd);
		return -1;
	}
	memcpy(mac->b, ifr.ifr_hwaddr.sa_data, 6);
	struct sockaddr_ll sll;
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(0x0003);
	sll.sll_ifindex = *ifindex;
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		fprintf(stderr, "detour-sn: bind to %s: %s\n", ifname, strerror(errno));
		close(fd);
		return -1;
	}
	int one = 1;
	if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) < 0)
		fprintf(stderr, "detour-sn: PACKET_IGNORE_OUTGOING: %s\n", strerror(errno));
	return fd;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"iface", required_argument, NULL, 'i'}, {"mac", required_argument, NULL, 'm'},
		{"drop", required_argument, NULL, 'd'},  {"stats", required_argument, NULL, 's'},
		{"md-class", required_argument, NULL, 'c'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *iface = NULL, *stats_path = NULL;
	struct mac own = {{0}};
	bool have_mac = false;
	uint16_t md_class = DETOUR_MD_CLASS_DEFAULT;
	static struct drop_rule rules[MAX_RULES];
	int n_rules = 0, c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			iface = optarg;
			break;
		case 'm':
			if (!mac_parse(optarg, &own)) {
				fprintf(stderr, "detour-sn: bad MAC address '%s'\n", optarg);
				usage(stderr);
				return 2;
			}
			have_mac = true;
			break;
		case 'd':
			if (n_rules == MAX_RULES) {
				fprintf(stderr, "detour-sn: at most %d --drop rules\n", MAX_RULES);
				return 2;
			}
			if (!parse_rule(optarg, &rules[n_rules])) {
				fprintf(stderr, "detour-sn: bad --drop rule '%s' (want tcp|udp|icmp|icmpv6[:PORT])\n",
					optarg);
				usage(stderr);
				return 2;
			}
			n_rules++;
			break;
		case 's':
			stats_path = optarg;
			break;
		case 'c': {
			char *end;
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 0);
			if (errno || end == optarg || *end || v > 0xffff) {
				fprintf(stderr, "detour-sn: bad --md-class '%s' (0..0xFFFF)\n", optarg);
				usage(stderr);
				return 2;
			}
			md_class = (uint16_t)v;
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "detour-sn: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (!iface) {
		fprintf(stderr, "detour-sn: --iface is required\n");
		usage(stderr);
		return 2;
	}

	/* Signals are blocked except while waiting in ppoll, so none is lost
	 * between the flag check and the wait. */
	sigset_t block, waitmask;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &waitmask);
	sigdelset(&waitmask, SIGUSR1);
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGINT);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	int ifindex;
	struct mac ifmac;
	int fd = open_socket(iface, &ifindex, &ifmac);
	if (fd < 0)
		return 1;
	if (!have_mac)
		own = ifmac;

	static uint8_t bufs[BATCH][FRAME_MAX];
	static struct iovec rx_iov[BATCH], tx_iov[BATCH];
	static struct mmsghdr rx_msg[BATCH], tx_msg[BATCH];
	struct sockaddr_ll dst;
	memset(&dst, 0, sizeof(dst));
	dst.sll_family = AF_PACKET;
	dst.sll_ifindex = ifindex;
	dst.sll_protocol = htons(ETH_P_NSH);
	dst.sll_halen = 6;
	static struct stats st;
	char macs[MAC_STRLEN];
	mac_format(&own, macs);
	fprintf(stderr, "detour-sn: serving %s as %s, %d drop rule(s), md class 0x%04x\n", iface, macs,
		n_rules, md_class);

	while (!want_exit) {
		if (want_dump) {
			want_dump = 0;
			write_stats(&st, stats_path, iface);
		}
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int pr = ppoll(&pfd, 1, NULL, &waitmask);
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			perror("detour-sn: ppoll");
			break;
		}
		for (int i = 0; i < BATCH; i++) {
			rx_iov[i].iov_base = bufs[i];
			rx_iov[i].iov_len = FRAME_MAX;
			memset(&rx_msg[i].msg_hdr, 0, sizeof(rx_msg[i].msg_hdr));
			rx_msg[i].msg_hdr.msg_iov = &rx_iov[i];
			rx_msg[i].msg_hdr.msg_iovlen = 1;
		}
		int n = recvmmsg(fd, rx_msg, BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			perror("detour-sn: recvmmsg");
			break;
		}
		int ntx = 0;
		for (int i = 0; i < n; i++) {
			st.rx++;
			size_t len = rx_msg[i].msg_len;
			enum verdict v;
			if (rx_msg[i].msg_hdr.msg_flags & MSG_TRUNC)
				v = V_MALFORMED;
			else
				v = handle(bufs[i], len, md_class, &own, rules, n_rules, &st);
			switch (v) {
			case V_IGNORE:
				st.ignored++;
				break;
			case V_MALFORMED:
				st.malformed++;
				break;
			case V_DROP:
				st.dropped++;
				break;
			case V_PASS:
				st.passed++;
				tx_iov[ntx].iov_base = bufs[i];
				tx_iov[ntx].iov_len = len;
				memset(&tx_msg[ntx].msg_hdr, 0, sizeof(tx_msg[ntx].msg_hdr));
				tx_msg[ntx].msg_hdr.msg_name = &dst;
				tx_msg[ntx].msg_hdr.msg_namelen = sizeof(dst);
				tx_msg[ntx].msg_hdr.msg_iov = &tx_iov[ntx];
				tx_msg[ntx].msg_hdr.msg_iovlen = 1;
				ntx++;
				break;
			}
		}
		for (int done = 0; done < ntx;) {
			int k = sendmmsg(fd, tx_msg + done, (unsigned)(ntx - done), 0);
			if (k < 0) {
				if (errno == EINTR)
					continue;
				fprintf(stderr, "detour-sn: sendmmsg: %s\n", strerror(errno));
				break;
			}
			if (k == 0)
				break;
			done += k;
		}
	}
	write_stats(&st, stats_path, iface);
	close(fd);
	return 0;
}
