/* topology.h - the desired state of SPEC section 5, as loaded from the
 * topology YAML file (libyaml), with every reference resolved to an index.
 *
 * Owns: parsing and validation of the file. Derived values (spmacs, SPIs,
 * next hops) are not here: see path.h.
 * Must not: touch the data plane. A topology is immutable once loaded; a
 * reload builds a new one and the daemon swaps it in whole. */
#ifndef DETOUR_TOPOLOGY_H
#define DETOUR_TOPOLOGY_H

#include "common.h"

#define TOPO_NAME_MAX 32   /* names, including NUL */
#define TOPO_IFNAME_MAX 16 /* Linux IFNAMSIZ */
#define TOPO_NO_INDEX 0xffff

enum svc_mode { SVC_MODE_L2 = 0, SVC_MODE_L3 = 1, SVC_MODE_NSH = 2 };
enum svc_failure { SVC_FAIL_BLOCK = 0, SVC_FAIL_ALLOW = 1 };
enum rule_dir { RULE_DIR_INGRESS = 1, RULE_DIR_EGRESS = 2, RULE_DIR_BOTH = 3 };
enum rule_action { RULE_REDIRECT = 0, RULE_COPY = 1, RULE_SKIP = 2 };
/* How a port is driven: `io:` on a host (its ports' default), a guest or a
 * node. Unset means the host's choice; a host without one uses AF_PACKET.
 * auto: AF_XDP where the interface takes it in native mode, else AF_PACKET. */
enum port_io { PORT_IO_UNSET = 0, PORT_IO_AFPACKET = 1, PORT_IO_AFXDP = 2, PORT_IO_AUTO = 3 };

struct topo_host {
	char name[TOPO_NAME_MAX];
	struct ipaddr vtep;
	uint16_t mtu;        /* default 1500 */
	enum port_io io;     /* default for this host's ports */
	char uplink[TOPO_IFNAME_MAX]; /* "": none. The interface that holds the VTEP
				       * address: Geneve sent and received on it with
				       * AF_XDP (underlay.h) */
	int line;
};

struct topo_network {
	char name[TOPO_NAME_MAX];
	uint32_t vni;
	int line;
};

struct topo_guest {
	char name[TOPO_NAME_MAX];
	uint16_t host;       /* index into hosts */
	uint16_t network;    /* index into networks */
	char port[TOPO_IFNAME_MAX];
	enum port_io io;
	struct mac mac;
	bool has_ip;
	struct ipaddr ip;    /* optional */
	int plen;            /* prefix length of ip in IPv6 bits (v4: 96 + len); default /24 or /64 */
	int line;
};

struct topo_node {
	char name[TOPO_NAME_MAX];
	uint16_t service;    /* index into services */
	uint16_t host;
	uint8_t n_ports;     /* 1 (nsh, l3) or 2 (l2: in, out) */
	char ports[2][TOPO_IFNAME_MAX];
	enum port_io io;
	bool has_mac;
	struct mac mac;      /* SN MAC (nsh: required; l3: optional) */
	int line;
};

struct topo_service {
	char name[TOPO_NAME_MAX];
	enum svc_mode mode;
	enum svc_failure failure;
	uint16_t first_node, n_nodes; /* nodes of this service are contiguous in topo.nodes */
	int line;
};

struct topo_chain {
	char name[TOPO_NAME_MAX];
	uint16_t n_services;
	uint16_t services[16]; /* indexes into services, in order */
	int line;
};

struct port_range {
	uint16_t lo, hi; /* inclusive; 0-65535 = any */
};

struct topo_match {
	uint8_t proto;        /* 0 = any; IPPROTO_TCP/UDP/ICMP/ICMPV6 */
	bool has_src, has_dst;
	struct ipaddr src, dst;
	int src_plen, dst_plen; /* IPv6 bits (v4: 96 + len) */
	struct port_range sport, dport;
};

struct topo_rule {
	char name[TOPO_NAME_MAX];
	uint16_t n_applied;
	struct {
		bool is_network;
		uint16_t index;   /* guest or network index */
	} applied_to[32];
	enum rule_dir dir;
	int32_t priority;       /* higher wins; ties by file order */
	struct topo_match match;
	enum rule_action action;
	uint16_t chain;         /* TOPO_NO_INDEX for skip without chain */
	int line;
};

struct topology {
	uint32_t sp_vni;        /* service_plane.vni */
	uint16_t md_class;      /* service_plane.md_class, default 0xFFF6 */
	uint16_t n_hosts, n_networks, n_guests, n_services, n_nodes, n_chains, n_rules;
	struct topo_host *hosts;
	struct topo_network *networks;
	struct topo_guest *guests;
	struct topo_service *services;
	struct topo_node *nodes;   /* grouped by service, in file order within a service */
	struct topo_chain *chains;
	struct topo_rule *rules;
};

/* Error list: every problem found, each with its line. */
struct topo_errors {
	unsigned n;
	struct {
		int line;
		char msg[160];
	} e[64];
	unsigned n_dropped; /* errors beyond the array */
};

/* Loads and validates. Returns NULL and fills errs (at least one entry) on
 * any error; the caller prints "FILE:LINE: msg" for each. */
struct topology *topology_load_file(const char *path, struct topo_errors *errs);
struct topology *topology_load_buffer(const char *text, size_t len, struct topo_errors *errs);
void topology_free(struct topology *t);

/* Lookups by name; TOPO_NO_INDEX if absent. */
uint16_t topology_host_index(const struct topology *t, const char *name);
uint16_t topology_guest_index(const struct topology *t, const char *name);
uint16_t topology_node_index(const struct topology *t, const char *name);
uint16_t topology_chain_index(const struct topology *t, const char *name);
uint16_t topology_service_index(const struct topology *t, const char *name);

/* For each rule of `from`, the index of the rule of the same name in `to`
 * (TOPO_NO_INDEX if none): an array of from->n_rules to free(). NULL
 * when out of memory. */
uint16_t *topology_rule_map(const struct topology *from, const struct topology *to);

const char *svc_mode_name(enum svc_mode m);

#endif
