/* steer.c - the eBPF programs that spread frames over detourd's workers
 * (src/steer_bpf.c loads the compiled object, embedded at build time).
 *
 * Both pick the worker that owns a frame's flow, computing exactly what
 * steer_owner() (src/steer.c) computes for untagged TCP/UDP over IPv4
 * (no options or fragments) or IPv6 (no extension headers), bare,
 * behind NSH with an Ethernet payload (what an nsh node returns) or inside
 * Geneve (guest plane or service plane): so the kernel hands each worker
 * its own flows and nothing has to cross to another worker. Other frames
 * go to worker 0, which hands them on.
 *  - fanout_steer (PACKET_FANOUT_EBPF): the frame's data starts at the
 *    network header, the Ethernet type is skb->protocol;
 *  - underlay_steer (SO_ATTACH_REUSEPORT_EBPF): the data is the UDP
 *    payload, a Geneve header.
 *
 * Owns: the map "cfg" (one u32: the number of workers). Must not change
 * the frame. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} cfg SEC(".maps");

static __always_inline __u64 mix64(__u64 h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static __always_inline __u64 end_mix(__u64 hi, __u64 lo, __u16 port)
{
	return mix64(hi ^ mix64(lo + port));
}

/* NSH at off: moves off to the inner frame's network header and returns
 * its Ethernet type; 0 if it is not NSH with an Ethernet payload. */
static __always_inline __u16 skip_nsh(struct __sk_buff *skb, __u32 *off)
{
	__u8 nsh[4];
	if (bpf_skb_load_bytes(skb, *off, nsh, sizeof(nsh)) < 0 || nsh[3] != 3)
		return 0;
	__u32 len = (__u32)(nsh[1] & 0x3f) * 4;
	if (len < 8)
		return 0;
	__u16 type;
	if (bpf_skb_load_bytes(skb, *off + len + 12, &type, sizeof(type)) < 0)
		return 0;
	*off += len + 14;
	return bpf_ntohs(type);
}

static __always_inline __u64 be64(const __u8 *b)
{
	__u64 v;
	__builtin_memcpy(&v, b, 8);
	return bpf_be64_to_cpu(v);
}

static __always_inline int owner_of(__u64 a, __u64 b, __u8 l4proto, __u32 n)
{
	__u64 h = mix64((a + b) ^ ((__u64)l4proto << 56)) ^ (a ^ b);
	if (!h)
		h = 1;
	return (int)((h >> 32) % n);
}

/* The owner of the IP packet at off (proto: its Ethernet type): IPv4
 * without options or fragments, IPv6 without extension headers, TCP/UDP. */
static __always_inline int owner_ip(struct __sk_buff *skb, __u32 off, __u16 proto, __u32 n)
{
	__u16 ports[2];
	if (proto == ETH_P_IP) {
		__u8 ip[20];
		if (bpf_skb_load_bytes(skb, off, ip, sizeof(ip)) < 0)
			return 0;
		__u8 l4proto = ip[9];
		if (ip[0] != 0x45 || (l4proto != 6 && l4proto != 17) || ((ip[6] & 0x3f) | ip[7]))
			return 0;
		if (bpf_skb_load_bytes(skb, off + 20, ports, sizeof(ports)) < 0)
			return 0;
		__u32 src, dst;
		__builtin_memcpy(&src, ip + 12, 4);
		__builtin_memcpy(&dst, ip + 16, 4);
		/* IPv4-mapped addresses, as the flow key holds them */
		__u64 lo_pfx = (__u64)0xffff << 32;
		return owner_of(end_mix(0, lo_pfx | bpf_ntohl(src), bpf_ntohs(ports[0])),
				end_mix(0, lo_pfx | bpf_ntohl(dst), bpf_ntohs(ports[1])), l4proto, n);
	}
	if (proto == ETH_P_IPV6) {
		__u8 ip[40];
		if (bpf_skb_load_bytes(skb, off, ip, sizeof(ip)) < 0)
			return 0;
		__u8 l4proto = ip[6];
		if ((ip[0] >> 4) != 6 || (l4proto != 6 && l4proto != 17))
			return 0;
		if (bpf_skb_load_bytes(skb, off + 40, ports, sizeof(ports)) < 0)
			return 0;
		return owner_of(end_mix(be64(ip + 8), be64(ip + 16), bpf_ntohs(ports[0])),
				end_mix(be64(ip + 24), be64(ip + 32), bpf_ntohs(ports[1])), l4proto, n);
	}
	return 0;
}

static __always_inline __u32 workers(void)
{
	__u32 zero = 0, *n = bpf_map_lookup_elem(&cfg, &zero);
	return n ? *n : 0;
}

SEC("socket")
int fanout_steer(struct __sk_buff *skb)
{
	__u32 n = workers(), off = 0;
	if (n < 2)
		return 0;
	__u16 proto = bpf_ntohs(skb->protocol);
	if (proto == 0x894f)
		proto = skip_nsh(skb, &off);
	return owner_ip(skb, off, proto, n);
}

SEC("socket")
int underlay_steer(struct __sk_buff *skb)
{
	__u32 n = workers(), off;
	if (n < 2)
		return 0;
	__u8 g[4];
	if (bpf_skb_load_bytes(skb, 0, g, sizeof(g)) < 0 || (g[0] >> 6) != 0)
		return 0;
	off = 8 + (__u32)(g[0] & 0x3f) * 4;
	__u16 gproto = (__u16)(g[2] << 8 | g[3]), proto;
	if (gproto == 0x6558) { /* guest plane: an Ethernet frame */
		__u16 type;
		if (bpf_skb_load_bytes(skb, off + 12, &type, sizeof(type)) < 0)
			return 0;
		proto = bpf_ntohs(type);
		off += 14;
	} else if (gproto == 0x894f) { /* service plane: NSH, then the frame */
		proto = skip_nsh(skb, &off);
	} else {
		return 0;
	}
	return owner_ip(skb, off, proto, n);
}

char LICENSE[] SEC("license") = "GPL";
