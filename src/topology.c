/* topology.c - loads the topology file of SPEC section 5 (YAML, through the
 * libyaml document API) into struct topology and validates it as a whole:
 * every error is collected with the line of the offending YAML node.
 *
 * Owns: parsing, validation and name lookups of the desired state.
 * Must not: touch the data plane or derive anything (spmacs, SPIs, next
 * hops are path.c's). The traversal is driven by the schema, never by the
 * shape of the document, so aliases and deep nesting cannot make it loop. */
#include "topology.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <yaml.h>

#define TOPO_MAX_ITEMS 1024
#define TOPO_MAX_RULES 65000 /* rule indices are 16-bit, 0xffff = none */
#define TOPO_MAX_FILE (16u << 20)
#define TOPO_MAX_DEPTH 64 /* a valid file nests 5 deep */

/* ------------------------------------------------------------------ */
/* errors */

static void err_add(struct topo_errors *errs, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void err_add(struct topo_errors *errs, int line, const char *fmt, ...)
{
	if (errs->n >= ARRAY_SIZE(errs->e)) {
		errs->n_dropped++;
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errs->e[errs->n].msg, sizeof(errs->e[errs->n].msg), fmt, ap);
	va_end(ap);
	errs->e[errs->n].line = line;
	errs->n++;
}

/* Stable sort by line, so that the list reads top to bottom. */
static void err_sort(struct topo_errors *errs)
{
	for (unsigned i = 1; i < errs->n; i++) {
		for (unsigned j = i; j > 0 && errs->e[j - 1].line > errs->e[j].line; j--) {
			int l = errs->e[j].line;
			char tmp[sizeof(errs->e[0].msg)];
			memcpy(tmp, errs->e[j].msg, sizeof(tmp));
			errs->e[j].line = errs->e[j - 1].line;
			memcpy(errs->e[j].msg, errs->e[j - 1].msg, sizeof(tmp));
			errs->e[j - 1].line = l;
			memcpy(errs->e[j - 1].msg, tmp, sizeof(tmp));
		}
	}
}

/* ------------------------------------------------------------------ */
/* context */

struct ifuse {
	uint16_t host;
	char ifname[TOPO_IFNAME_MAX];
	const char *kind;
	char name[TOPO_NAME_MAX];
	int line;
};

struct macuse {
	struct mac mac;
	const char *kind;
	char name[TOPO_NAME_MAX];
	int line;
};

struct ctx {
	yaml_document_t *doc;
	struct topo_errors *errs;
	struct topology *t;
	int sp_line;       /* line of service_plane.vni, 0 if none */
	struct ifuse *ifs;
	size_t n_ifs, cap_ifs;
	struct macuse *macs;
	size_t n_macs, cap_macs;
	bool oom;
};

#define ERR(c, line, ...) err_add((c)->errs, (line), __VA_ARGS__)

static int node_line(const yaml_node_t *n)
{
	return n ? (int)n->start_mark.line + 1 : 0;
}

static yaml_node_t *get_node(struct ctx *c, int id)
{
	return yaml_document_get_node(c->doc, id);
}

/* Label of an element for messages: "guest 'vm1'", or "guest #3" when it
 * has no usable name. */
struct label {
	char s[TOPO_NAME_MAX + 24];
};

static void make_label(struct label *l, const char *kind, const char *name, size_t idx)
{
	if (name && name[0])
		snprintf(l->s, sizeof(l->s), "%s '%s'", kind, name);
	else
		snprintf(l->s, sizeof(l->s), "%s #%zu", kind, idx + 1);
}

/* ------------------------------------------------------------------ */
/* scalars */

static bool is_scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE;
}

static bool is_null(const yaml_node_t *n)
{
	if (!n)
		return true;
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *s = (const char *)n->data.scalar.value;
	return !s[0] || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	       !strcmp(s, "NULL");
}

/* The text of a scalar, or NULL (and an error) for anything else. */
static const char *get_str(struct ctx *c, const yaml_node_t *n, const char *label, const char *key)
{
	if (!is_scalar(n) || is_null(n)) {
		ERR(c, node_line(n), "%s: '%s' must be a string", label, key);
		return NULL;
	}
	const char *s = (const char *)n->data.scalar.value;
	if (strlen(s) != n->data.scalar.length) {
		ERR(c, node_line(n), "%s: '%s' contains a NUL character", label, key);
		return NULL;
	}
	return s;
}

/* Decimal (optionally signed) or 0x-hex integer, whole string. */
static bool parse_ll(const char *s, long long min, long long max, long long *out)
{
	bool neg = false;
	unsigned long long v = 0;
	int base = 10;
	if (*s == '-' || *s == '+') {
		neg = *s == '-';
		s++;
	}
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!*s)
		return false;
	for (; *s; s++) {
		unsigned d;
		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			return false;
		if (v > (1ull << 40))
			return false; /* far beyond any range we accept */
		v = v * (unsigned)base + d;
	}
	long long r = neg ? -(long long)v : (long long)v;
	if (r < min || r > max)
		return false;
	*out = r;
	return true;
}

static bool get_int(struct ctx *c, const yaml_node_t *n, const char *label, const char *key,
		    long long min, long long max, long long *out)
{
	long long v;
	if (!is_scalar(n) || is_null(n) ||
	    strlen((const char *)n->data.scalar.value) != n->data.scalar.length) {
		ERR(c, node_line(n), "%s: %s must be an integer in %lld..%lld", label, key, min, max);
		return false;
	}
	const char *s = (const char *)n->data.scalar.value;
	if (!parse_ll(s, -(1ll << 40), 1ll << 40, &v)) {
		ERR(c, node_line(n), "%s: %s '%.40s' is not an integer (%lld..%lld)", label, key, s,
		    min, max);
		return false;
	}
	if (v < min || v > max) {
		ERR(c, node_line(n), "%s: %s %lld is out of range %lld..%lld", label, key, v, min, max);
		return false;
	}
	*out = v;
	return true;
}

/* A name: non-empty, shorter than TOPO_NAME_MAX. */
static bool get_name(struct ctx *c, const yaml_node_t *n, const char *label, const char *key,
		     char out[TOPO_NAME_MAX])
{
	const char *s = get_str(c, n, label, key);
	if (!s)
		return false;
	size_t len = strlen(s);
	if (len == 0) {
		ERR(c, node_line(n), "%s: %s is empty", label, key);
		return false;
	}
	if (len >= TOPO_NAME_MAX) {
		ERR(c, node_line(n), "%s: %s '%.40s...' is too long (at most %d characters)", label,
		    key, s, TOPO_NAME_MAX - 1);
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			ERR(c, node_line(n), "%s: %s contains a control character", label, key);
			return false;
		}
	}
	memcpy(out, s, len + 1);
	return true;
}

/* A Linux interface name (dev_valid_name()). */
static bool get_ifname(struct ctx *c, const yaml_node_t *n, const char *label, const char *key,
		       char out[TOPO_IFNAME_MAX])
{
	const char *s = get_str(c, n, label, key);
	if (!s)
		return false;
	size_t len = strlen(s);
	if (len == 0 || !strcmp(s, ".") || !strcmp(s, "..")) {
		ERR(c, node_line(n), "%s: '%s' is not a valid interface name", label, s);
		return false;
	}
	if (len >= TOPO_IFNAME_MAX) {
		ERR(c, node_line(n), "%s: interface name '%.40s' is too long (at most %d characters)",
		    label, s, TOPO_IFNAME_MAX - 1);
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '/' || ch == ':' || ch <= ' ' || ch == 0x7f) {
			ERR(c, node_line(n),
			    "%s: interface name '%s' contains '/', ':', a space or a control character",
			    label, s);
			return false;
		}
	}
	memcpy(out, s, len + 1);
	return true;
}

/* `io: auto | afpacket | afxdp` */
static bool get_io(struct ctx *c, const yaml_node_t *n, const char *label, enum port_io *out)
{
	const char *s = get_str(c, n, label, "io");
	if (!s)
		return false;
	if (!strcmp(s, "auto"))
		*out = PORT_IO_AUTO;
	else if (!strcmp(s, "afpacket"))
		*out = PORT_IO_AFPACKET;
	else if (!strcmp(s, "afxdp"))
		*out = PORT_IO_AFXDP;
	else {
		ERR(c, node_line(n), "%s: io '%.32s' must be auto, afpacket or afxdp", label, s);
		return false;
	}
	return true;
}

static bool get_mac(struct ctx *c, const yaml_node_t *n, const char *label, struct mac *out)
{
	const char *s = get_str(c, n, label, "mac");
	if (!s)
		return false;
	if (!mac_parse(s, out)) {
		ERR(c, node_line(n), "%s: bad MAC '%.40s' (expected xx:xx:xx:xx:xx:xx)", label, s);
		return false;
	}
	if (mac_is_multicast(out) || mac_is_zero(out)) {
		ERR(c, node_line(n), "%s: MAC %s is not a unicast address", label, s);
		return false;
	}
	return true;
}

/* Address with an optional "/len"; the address keeps its host bits. */
static bool parse_addr_len(const char *s, struct ipaddr *a, int *plen, bool *had_len)
{
	char tmp[IPADDR_STRLEN];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= sizeof(tmp))
		return false;
	memcpy(tmp, s, alen);
	tmp[alen] = 0;
	if (!ipaddr_parse(tmp, a))
		return false;
	bool v4 = ipaddr_is_v4(a);
	*had_len = slash != NULL;
	if (!slash) {
		*plen = 128; /* a host: /32 (96 + 32) or /128 */
		return true;
	}
	long long len;
	if (slash[1] == '-' || slash[1] == '+' || !parse_ll(slash + 1, 0, v4 ? 32 : 128, &len))
		return false;
	if (slash[1] == '0' && slash[2])
		return false; /* no "0x..", no leading zeros */
	*plen = (int)len + (v4 ? 96 : 0);
	return true;
}

static bool get_cidr(struct ctx *c, const yaml_node_t *n, const char *label, const char *key,
		     struct ipaddr *a, int *plen)
{
	const char *s = get_str(c, n, label, key);
	if (!s)
		return false;
	bool had_len;
	if (!parse_addr_len(s, a, plen, &had_len)) {
		ERR(c, node_line(n), "%s: %s '%.48s' is not an IPv4 or IPv6 address or prefix",
		    label, key, s);
		return false;
	}
	for (int bit = *plen; bit < 128; bit++)
		a->b[bit / 8] &= (uint8_t)~(0x80 >> (bit % 8));
	return true;
}

/* ------------------------------------------------------------------ */
/* mappings */

/* Fills vals[i] with the value of keys[i] (NULL if absent); reports keys
 * that are unknown or repeated, and that are not strings. */
static void get_fields(struct ctx *c, const yaml_node_t *map, const char *label,
		       const char *const keys[], size_t nkeys, yaml_node_t *vals[])
{
	for (size_t i = 0; i < nkeys; i++)
		vals[i] = NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = get_node(c, p->key);
		yaml_node_t *v = get_node(c, p->value);
		if (!is_scalar(k)) {
			ERR(c, node_line(k), "%s: keys must be strings", label);
			continue;
		}
		const char *ks = (const char *)k->data.scalar.value;
		size_t i;
		for (i = 0; i < nkeys; i++)
			if (!strcmp(ks, keys[i]) && strlen(ks) == k->data.scalar.length)
				break;
		if (i == nkeys) {
			ERR(c, node_line(k), "unknown key '%.40s' in %s", ks, label);
			continue;
		}
		if (vals[i]) {
			ERR(c, node_line(k), "duplicate key '%s' in %s (first at line %d)", ks, label,
			    node_line(vals[i]));
			continue;
		}
		vals[i] = v ? v : NULL;
	}
}

/* Value of key "name" of a mapping, as a plain string, without errors:
 * used only to label the element before its fields are checked. */
static const char *peek_name(struct ctx *c, const yaml_node_t *map)
{
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = get_node(c, p->key);
		yaml_node_t *v = get_node(c, p->value);
		if (is_scalar(k) && !strcmp((const char *)k->data.scalar.value, "name") &&
		    is_scalar(v) && !is_null(v)) {
			const char *s = (const char *)v->data.scalar.value;
			if (strlen(s) < TOPO_NAME_MAX && strlen(s) == v->data.scalar.length)
				return s;
			return NULL;
		}
	}
	return NULL;
}

static void missing(struct ctx *c, const yaml_node_t *map, const char *label, const char *key)
{
	ERR(c, node_line(map), "%s: missing '%s'", label, key);
}

/* A top-level list: NULL (and an error) unless a sequence within limits. */
static yaml_node_t *get_list(struct ctx *c, yaml_node_t *n, const char *what, size_t max)
{
	if (!n || is_null(n))
		return NULL;
	if (n->type != YAML_SEQUENCE_NODE) {
		ERR(c, node_line(n), "%s must be a list", what);
		return NULL;
	}
	size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (cnt > max) {
		ERR(c, node_line(n), "too many %s (%zu, at most %zu)", what, cnt, max);
		return NULL;
	}
	return n;
}

static size_t list_len(const yaml_node_t *n)
{
	return n ? (size_t)(n->data.sequence.items.top - n->data.sequence.items.start) : 0;
}

static yaml_node_t *list_item(struct ctx *c, const yaml_node_t *n, size_t i)
{
	return get_node(c, n->data.sequence.items.start[i]);
}

/* An element of a top-level list must be a mapping. */
static bool check_map(struct ctx *c, const yaml_node_t *n, const char *kind, size_t idx)
{
	if (n && n->type == YAML_MAPPING_NODE)
		return true;
	ERR(c, node_line(n), "%s #%zu must be a mapping", kind, idx + 1);
	return false;
}

/* ------------------------------------------------------------------ */
/* cross-element checks */

static void check_mac_unique(struct ctx *c, const struct mac *m, const char *kind, const char *name,
			     int line)
{
	for (size_t i = 0; i < c->n_macs; i++) {
		if (mac_eq(&c->macs[i].mac, m)) {
			char buf[MAC_STRLEN];
			mac_format(m, buf);
			ERR(c, line, "duplicate MAC %s (also %s '%s' at line %d)", buf,
			    c->macs[i].kind, c->macs[i].name, c->macs[i].line);
			return;
		}
	}
	if (c->n_macs == c->cap_macs) {
		size_t cap = c->cap_macs ? c->cap_macs * 2 : 64;
		struct macuse *nm = realloc(c->macs, cap * sizeof(*nm));
		if (!nm) {
			c->oom = true;
			return;
		}
		c->macs = nm;
		c->cap_macs = cap;
	}
	struct macuse *u = &c->macs[c->n_macs++];
	u->mac = *m;
	u->kind = kind;
	snprintf(u->name, sizeof(u->name), "%s", name);
	u->line = line;
}

static void check_if_unique(struct ctx *c, uint16_t host, const char *ifname, const char *kind,
			    const char *name, int line)
{
	if (host == TOPO_NO_INDEX)
		return;
	for (size_t i = 0; i < c->n_ifs; i++) {
		struct ifuse *u = &c->ifs[i];
		if (u->host == host && !strcmp(u->ifname, ifname)) {
			ERR(c, line, "host '%s': interface '%s' of %s '%s' is already used by %s '%s' (line %d)",
			    c->t->hosts[host].name, ifname, kind, name, u->kind, u->name, u->line);
			return;
		}
	}
	if (c->n_ifs == c->cap_ifs) {
		size_t cap = c->cap_ifs ? c->cap_ifs * 2 : 64;
		struct ifuse *ni = realloc(c->ifs, cap * sizeof(*ni));
		if (!ni) {
			c->oom = true;
			return;
		}
		c->ifs = ni;
		c->cap_ifs = cap;
	}
	struct ifuse *u = &c->ifs[c->n_ifs++];
	u->host = host;
	snprintf(u->ifname, sizeof(u->ifname), "%s", ifname);
	u->kind = kind;
	snprintf(u->name, sizeof(u->name), "%s", name);
	u->line = line;
}

/* Reference to a host by name. */
static uint16_t ref_host(struct ctx *c, const yaml_node_t *n, const char *label)
{
	char name[TOPO_NAME_MAX];
	if (!get_name(c, n, label, "host", name))
		return TOPO_NO_INDEX;
	uint16_t i = topology_host_index(c->t, name);
	if (i == TOPO_NO_INDEX)
		ERR(c, node_line(n), "%s: unknown host '%s'", label, name);
	return i;
}

/* ------------------------------------------------------------------ */
/* sections */

static void parse_service_plane(struct ctx *c, yaml_node_t *n)
{
	if (!n)
		return;
	if (n->type != YAML_MAPPING_NODE) {
		ERR(c, node_line(n), "service_plane must be a mapping");
		return;
	}
	static const char *const keys[] = {"vni", "md_class"};
	yaml_node_t *v[2];
	get_fields(c, n, "service_plane", keys, 2, v);
	long long x;
	if (!v[0])
		missing(c, n, "service_plane", "vni");
	else if (get_int(c, v[0], "service_plane", "vni", 1, 16777215, &x)) {
		c->t->sp_vni = (uint32_t)x;
		c->sp_line = node_line(v[0]);
	}
	if (v[1] && get_int(c, v[1], "service_plane", "md_class", 0, 0xffff, &x))
		c->t->md_class = (uint16_t)x;
}

static void parse_hosts(struct ctx *c, yaml_node_t *list)
{
	struct topology *t = c->t;
	size_t n = list_len(list);
	if (!n)
		return;
	t->hosts = calloc(n, sizeof(*t->hosts));
	if (!t->hosts) {
		c->oom = true;
		return;
	}
	static const char *const keys[] = {"name", "vtep", "mtu", "io", "uplink"};
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *m = list_item(c, list, i);
		if (!check_map(c, m, "host", i))
			continue;
		struct label l;
		make_label(&l, "host", peek_name(c, m), i);
		yaml_node_t *v[5];
		get_fields(c, m, l.s, keys, 5, v);
		struct topo_host h = {.mtu = 1500, .line = node_line(m)};
		bool ok = true;
		if (v[3] && !get_io(c, v[3], l.s, &h.io))
			ok = false;
		if (!v[0]) {
			missing(c, m, l.s, "name");
			ok = false;
		} else if (!get_name(c, v[0], l.s, "name", h.name)) {
			ok = false;
		} else {
			for (uint16_t j = 0; j < t->n_hosts; j++)
				if (!strcmp(t->hosts[j].name, h.name)) {
					ERR(c, node_line(v[0]), "duplicate host name '%s' (also at line %d)",
					    h.name, t->hosts[j].line);
					ok = false;
				}
		}
		if (!v[1]) {
			missing(c, m, l.s, "vtep");
			ok = false;
		} else {
			const char *s = get_str(c, v[1], l.s, "vtep");
			static const struct ipaddr zero6;
			struct ipaddr zero4;
			static const uint8_t z4[4];
			ipaddr_from_v4(&zero4, z4);
			if (!s) {
				ok = false;
			} else if (!ipaddr_parse(s, &h.vtep)) {
				ERR(c, node_line(v[1]), "%s: vtep '%.48s' is not an IPv4 or IPv6 address",
				    l.s, s);
				ok = false;
			} else if (ipaddr_eq(&h.vtep, &zero6) || ipaddr_eq(&h.vtep, &zero4)) {
				ERR(c, node_line(v[1]), "%s: vtep %s is the unspecified address", l.s, s);
				ok = false;
			} else {
				for (uint16_t j = 0; j < t->n_hosts; j++)
					if (ipaddr_eq(&t->hosts[j].vtep, &h.vtep)) {
						ERR(c, node_line(v[1]),
						    "duplicate VTEP %s (also host '%s' at line %d)", s,
						    t->hosts[j].name, t->hosts[j].line);
						ok = false;
					}
			}
		}
		long long x;
		if (v[2]) {
			if (get_int(c, v[2], l.s, "mtu", 576, 9000, &x))
				h.mtu = (uint16_t)x;
			else
				ok = false;
		}
		if (v[4] && !get_ifname(c, v[4], l.s, "uplink", h.uplink))
			ok = false;
		/* Keep even a broken host with a usable name, so that references
		 * to it do not also report "unknown host". */
		if (ok || h.name[0]) {
			t->hosts[t->n_hosts++] = h;
			if (h.uplink[0])
				check_if_unique(c, (uint16_t)(t->n_hosts - 1), h.uplink, "uplink of host", h.name,
						node_line(v[4]));
		}
	}
}

static void parse_networks(struct ctx *c, yaml_node_t *list)
{
	struct topology *t = c->t;
	size_t n = list_len(list);
	if (!n)
		return;
	t->networks = calloc(n, sizeof(*t->networks));
	if (!t->networks) {
		c->oom = true;
		return;
	}
	static const char *const keys[] = {"name", "vni"};
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *m = list_item(c, list, i);
		if (!check_map(c, m, "network", i))
			continue;
		struct label l;
		make_label(&l, "network", peek_name(c, m), i);
		yaml_node_t *v[2];
		get_fields(c, m, l.s, keys, 2, v);
		struct topo_network nw = {.line = node_line(m)};
		if (!v[0])
			missing(c, m, l.s, "name");
		else if (get_name(c, v[0], l.s, "name", nw.name)) {
			for (uint16_t j = 0; j < t->n_networks; j++)
				if (!strcmp(t->networks[j].name, nw.name))
					ERR(c, node_line(v[0]),
					    "duplicate network name '%s' (also at line %d)", nw.name,
					    t->networks[j].line);
		}
		long long x;
		if (!v[1])
			missing(c, m, l.s, "vni");
		else if (get_int(c, v[1], l.s, "vni", 1, 16777215, &x)) {
			nw.vni = (uint32_t)x;
			if (c->sp_line && t->sp_vni == nw.vni)
				ERR(c, node_line(v[1]),
				    "duplicate VNI %u (also service_plane at line %d)", nw.vni,
				    c->sp_line);
			for (uint16_t j = 0; j < t->n_networks; j++)
				if (t->networks[j].vni == nw.vni)
					ERR(c, node_line(v[1]),
					    "duplicate VNI %u (also network '%s' at line %d)", nw.vni,
					    t->networks[j].name, t->networks[j].line);
		}
		if (nw.name[0])
			t->networks[t->n_networks++] = nw;
	}
}

static void parse_guests(struct ctx *c, yaml_node_t *list)
{
	struct topology *t = c->t;
	size_t n = list_len(list);
	if (!n)
		return;
	t->guests = calloc(n, sizeof(*t->guests));
	if (!t->guests) {
		c->oom = true;
		return;
	}
	static const char *const keys[] = {"name", "host", "network", "port", "mac", "ip", "io"};
	enum { K_NAME, K_HOST, K_NET, K_PORT, K_MAC, K_IP, K_IO, K_N };
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *m = list_item(c, list, i);
		if (!check_map(c, m, "guest", i))
			continue;
		struct label l;
		make_label(&l, "guest", peek_name(c, m), i);
		yaml_node_t *v[K_N];
		get_fields(c, m, l.s, keys, K_N, v);
		struct topo_guest g = {.line = node_line(m), .host = TOPO_NO_INDEX,
				       .network = TOPO_NO_INDEX};
		for (int k = 0; k < K_N; k++)
			if (!v[k] && k != K_IP && k != K_IO)
				missing(c, m, l.s, keys[k]);
		if (v[K_IO])
			get_io(c, v[K_IO], l.s, &g.io);
		if (v[K_NAME] && get_name(c, v[K_NAME], l.s, "name", g.name)) {
			for (uint16_t j = 0; j < t->n_guests; j++)
				if (!strcmp(t->guests[j].name, g.name))
					ERR(c, node_line(v[K_NAME]),
					    "duplicate guest name '%s' (also at line %d)", g.name,
					    t->guests[j].line);
		}
		if (v[K_HOST])
			g.host = ref_host(c, v[K_HOST], l.s);
		if (v[K_NET]) {
			char name[TOPO_NAME_MAX];
			if (get_name(c, v[K_NET], l.s, "network", name)) {
				for (uint16_t j = 0; j < t->n_networks; j++)
					if (!strcmp(t->networks[j].name, name))
						g.network = j;
				if (g.network == TOPO_NO_INDEX)
					ERR(c, node_line(v[K_NET]), "%s: unknown network '%s'", l.s,
					    name);
			}
		}
		if (v[K_PORT] && get_ifname(c, v[K_PORT], l.s, "port", g.port))
			check_if_unique(c, g.host, g.port, "guest", g.name[0] ? g.name : "?",
					node_line(v[K_PORT]));
		if (v[K_MAC] && get_mac(c, v[K_MAC], l.s, &g.mac))
			check_mac_unique(c, &g.mac, "guest", g.name[0] ? g.name : "?",
					 node_line(v[K_MAC]));
		if (v[K_IP]) {
			const char *s = get_str(c, v[K_IP], l.s, "ip");
			bool had_len;
			if (s && !parse_addr_len(s, &g.ip, &g.plen, &had_len)) {
				ERR(c, node_line(v[K_IP]),
				    "%s: ip '%.48s' is not an IPv4 or IPv6 address (with optional /len)",
				    l.s, s);
			} else if (s) {
				g.has_ip = true;
				if (!had_len)
					g.plen = ipaddr_is_v4(&g.ip) ? 96 + 24 : 64;
			}
		}
		if (g.name[0])
			t->guests[t->n_guests++] = g;
	}
}

static bool add_node(struct ctx *c, const struct topo_node *nd, size_t *cap)
{
	struct topology *t = c->t;
	if (t->n_nodes == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct topo_node *nn = realloc(t->nodes, nc * sizeof(*nn));
		if (!nn) {
			c->oom = true;
			return false;
		}
		t->nodes = nn;
		*cap = nc;
	}
	t->nodes[t->n_nodes++] = *nd;
	return true;
}

static void parse_nodes(struct ctx *c, yaml_node_t *list, uint16_t svc, bool mode_ok,
			const char *svc_label, size_t *cap)
{
	struct topology *t = c->t;
	struct topo_service *s = &t->services[svc];
	static const char *const keys[] = {"name", "host", "ports", "mac", "io"};
	enum { K_NAME, K_HOST, K_PORTS, K_MAC, K_IO, K_N };
	size_t n = list_len(list);
	s->first_node = t->n_nodes;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *m = list_item(c, list, i);
		if (!m || m->type != YAML_MAPPING_NODE) {
			ERR(c, node_line(m), "%s: node #%zu must be a mapping", svc_label, i + 1);
			continue;
		}
		if (t->n_nodes >= TOPO_MAX_ITEMS) {
			ERR(c, node_line(m), "too many service nodes (at most %d)", TOPO_MAX_ITEMS);
			return;
		}
		struct label l;
		make_label(&l, "node", peek_name(c, m), i);
		yaml_node_t *v[K_N];
		get_fields(c, m, l.s, keys, K_N, v);
		struct topo_node nd = {.service = svc, .host = TOPO_NO_INDEX, .line = node_line(m)};
		for (int k = 0; k < K_MAC; k++)
			if (!v[k])
				missing(c, m, l.s, keys[k]);
		if (v[K_IO])
			get_io(c, v[K_IO], l.s, &nd.io);
		if (v[K_NAME] && get_name(c, v[K_NAME], l.s, "name", nd.name)) {
			for (uint16_t j = 0; j < t->n_nodes; j++)
				if (!strcmp(t->nodes[j].name, nd.name))
					ERR(c, node_line(v[K_NAME]),
					    "duplicate node name '%s' (also at line %d)", nd.name,
					    t->nodes[j].line);
		}
		if (v[K_HOST])
			nd.host = ref_host(c, v[K_HOST], l.s);
		if (v[K_PORTS]) {
			yaml_node_t *p = v[K_PORTS];
			if (p->type != YAML_SEQUENCE_NODE) {
				ERR(c, node_line(p), "%s: ports must be a list", l.s);
			} else {
				size_t np = list_len(p);
				size_t want = s->mode == SVC_MODE_L2 ? 2 : 1;
				if (mode_ok && np != want) {
					if (want == 2)
						ERR(c, node_line(p),
						    "%s: mode l2 needs exactly 2 ports [in, out], got %zu",
						    l.s, np);
					else
						ERR(c, node_line(p),
						    "%s: mode %s needs exactly 1 port, got %zu", l.s,
						    svc_mode_name(s->mode), np);
				}
				for (size_t k = 0; k < np && k < 2; k++) {
					yaml_node_t *pn = list_item(c, p, k);
					if (!get_ifname(c, pn, l.s, "ports", nd.ports[k]))
						continue;
					check_if_unique(c, nd.host, nd.ports[k], "node",
							nd.name[0] ? nd.name : "?", node_line(pn));
				}
				nd.n_ports = (uint8_t)(np > 2 ? 2 : np);
			}
		}
		if (v[K_MAC]) {
			if (get_mac(c, v[K_MAC], l.s, &nd.mac)) {
				nd.has_mac = true;
				check_mac_unique(c, &nd.mac, "node", nd.name[0] ? nd.name : "?",
						 node_line(v[K_MAC]));
			}
		} else if (mode_ok && s->mode == SVC_MODE_NSH) {
			ERR(c, node_line(m), "%s: mode nsh needs a 'mac'", l.s);
		}
		if (!add_node(c, &nd, cap))
			return;
	}
	s->n_nodes = (uint16_t)(t->n_nodes - s->first_node);
}

static void parse_services(struct ctx *c, yaml_node_t *list)
{
	struct topology *t = c->t;
	size_t n = list_len(list);
	if (!n)
		return;
	t->services = calloc(n, sizeof(*t->services));
	if (!t->services) {
		c->oom = true;
		return;
	}
	size_t cap = 0;
	static const char *const keys[] = {"name", "mode", "failure", "nodes"};
	enum { K_NAME, K_MODE, K_FAIL, K_NODES, K_N };
	for (size_t i = 0; i < n && !c->oom; i++) {
		yaml_node_t *m = list_item(c, list, i);
		if (!check_map(c, m, "service", i))
			continue;
		struct label l;
		make_label(&l, "service", peek_name(c, m), i);
		yaml_node_t *v[K_N];
		get_fields(c, m, l.s, keys, K_N, v);
		uint16_t si = t->n_services;
		struct topo_service *s = &t->services[si];
		memset(s, 0, sizeof(*s));
		s->line = node_line(m);
		s->first_node = t->n_nodes;
		if (!v[K_NAME])
			missing(c, m, l.s, "name");
		else if (get_name(c, v[K_NAME], l.s, "name", s->name)) {
			for (uint16_t j = 0; j < si; j++)
				if (!strcmp(t->services[j].name, s->name))
					ERR(c, node_line(v[K_NAME]),
					    "duplicate service name '%s' (also at line %d)", s->name,
					    t->services[j].line);
		}
		bool mode_ok = false;
		if (!v[K_MODE]) {
			missing(c, m, l.s, "mode");
		} else {
			const char *ms = get_str(c, v[K_MODE], l.s, "mode");
			if (ms) {
				mode_ok = true;
				if (!strcmp(ms, "l2"))
					s->mode = SVC_MODE_L2;
				else if (!strcmp(ms, "l3"))
					s->mode = SVC_MODE_L3;
				else if (!strcmp(ms, "nsh"))
					s->mode = SVC_MODE_NSH;
				else {
					mode_ok = false;
					ERR(c, node_line(v[K_MODE]),
					    "%s: unknown mode '%.40s' (l2, l3 or nsh)", l.s, ms);
				}
			}
		}
		if (v[K_FAIL]) {
			const char *fs = get_str(c, v[K_FAIL], l.s, "failure");
			if (fs && !strcmp(fs, "block"))
				s->failure = SVC_FAIL_BLOCK;
			else if (fs && !strcmp(fs, "allow"))
				s->failure = SVC_FAIL_ALLOW;
			else if (fs)
				ERR(c, node_line(v[K_FAIL]),
				    "%s: unknown failure policy '%.40s' (block or allow)", l.s, fs);
		}
		t->n_services++;
		if (!v[K_NODES]) {
			missing(c, m, l.s, "nodes");
		} else if (v[K_NODES]->type != YAML_SEQUENCE_NODE) {
			if (is_null(v[K_NODES]))
				ERR(c, node_line(v[K_NODES]), "%s: no nodes", l.s);
			else
				ERR(c, node_line(v[K_NODES]), "%s: nodes must be a list", l.s);
		} else if (list_len(v[K_NODES]) == 0) {
			ERR(c, node_line(v[K_NODES]), "%s: no nodes", l.s);
		} else {
			parse_nodes(c, v[K_NODES], si, mode_ok, l.s, &cap);
		}
	}
}

static void parse_chains(struct ctx *c, yaml_node_t *list)
{
	struct topology *t = c->t;
	size_t n = list_len(list);
	if (!n)
		return;
	t->chains = calloc(n, sizeof(*t->chains));
	if (!t->chains) {
		c->oom = true;
		return;
	}
	static const char *const keys[] = {"name", "services"};
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *m = list_item(c, list, i);
		if (!check_map(c, m, "chain", i))
			continue;
		struct label l;
		make_label(&l, "chain", peek_name(c, m), i);
		yaml_node_t *v[2];
		get_fields(c, m, l.s, keys, 2, v);
		struct topo_chain ch = {.line = node_line(m)};
		if (!v[0])
			missing(c, m, l.s, "name");
		else if (get_name(c, v[0], l.s, "name", ch.name)) {
			for (uint16_t j = 0; j < t->n_chains; j++)
				if (!strcmp(t->chains[j].name, ch.name))
					ERR(c, node_line(v[0]),
					    "duplicate chain name '%s' (also at line %d)", ch.name,
					    t->chains[j].line);
		}
		yaml_node_t *sl = v[1];
		if (!sl) {
			missing(c, m, l.s, "services");
		} else if (sl->type != YAML_SEQUENCE_NODE && !is_null(sl)) {
			ERR(c, node_line(sl), "%s: services must be a list", l.s);
		} else if (is_null(sl) || list_len(sl) == 0) {
			ERR(c, node_line(sl), "%s: empty chain (needs at least one service)", l.s);
		} else if (list_len(sl) > ARRAY_SIZE(ch.services)) {
			ERR(c, node_line(sl), "%s: has %zu services (at most %zu)", l.s, list_len(sl),
			    ARRAY_SIZE(ch.services));
		} else {
			for (size_t k = 0; k < list_len(sl); k++) {
				yaml_node_t *sn = list_item(c, sl, k);
				char name[TOPO_NAME_MAX];
				if (!get_name(c, sn, l.s, "services", name))
					continue;
				uint16_t si = topology_service_index(t, name);
				if (si == TOPO_NO_INDEX) {
					ERR(c, node_line(sn), "%s: unknown service '%s'", l.s, name);
					continue;
				}
				bool dup = false;
				for (uint16_t j = 0; j < ch.n_services; j++)
					dup |= ch.services[j] == si;
				if (dup) {
					ERR(c, node_line(sn), "%s: service '%s' appears twice", l.s,
					    name);
					continue;
				}
				ch.services[ch.n_services++] = si;
			}
		}
		if (ch.name[0])
			t->chains[t->n_chains++] = ch;
	}
}

static void parse_port_range(struct ctx *c, const yaml_node_t *n, const char *label,
			     const char *key, struct port_range *r)
{
	const char *s = NULL;
	if (is_scalar(n) && !is_null(n))
		s = (const char *)n->data.scalar.value;
	if (!s || strlen(s) != n->data.scalar.length) {
		ERR(c, node_line(n), "%s: %s must be a port number or \"LOW-HIGH\"", label, key);
		return;
	}
	char lo[16], hi[16];
	const char *dash = strchr(s, '-');
	long long a, b;
	bool ok;
	if (dash && dash != s) {
		size_t ll = (size_t)(dash - s), hl = strlen(dash + 1);
		ok = ll < sizeof(lo) && hl < sizeof(hi) && hl > 0;
		if (ok) {
			memcpy(lo, s, ll);
			lo[ll] = 0;
			memcpy(hi, dash + 1, hl + 1);
			ok = lo[0] != '+' && hi[0] != '+' && hi[0] != '-' &&
			     parse_ll(lo, 0, 65535, &a) && parse_ll(hi, 0, 65535, &b);
		}
	} else {
		ok = s[0] != '+' && s[0] != '-' && parse_ll(s, 0, 65535, &a);
		b = ok ? a : 0;
	}
	if (!ok) {
		ERR(c, node_line(n), "%s: %s '%.40s' is not a port (0..65535) or range \"LOW-HIGH\"",
		    label, key, s);
		return;
	}
	if (a > b) {
		ERR(c, node_line(n), "%s: %s range %lld-%lld has low > high", label, key, a, b);
		return;
	}
	r->lo = (uint16_t)a;
	r->hi = (uint16_t)b;
}

static void parse_match(struct ctx *c, yaml_node_t *m, const char *label, struct topo_match *mt)
{
	mt->sport.lo = mt->dport.lo = 0;
	mt->sport.hi = mt->dport.hi = 65535;
	if (!m || is_null(m))
		return;
	if (m->type != YAML_MAPPING_NODE) {
		ERR(c, node_line(m), "%s: match must be a mapping", label);
		return;
	}
	static const char *const keys[] = {"proto", "src", "dst", "src_port", "dst_port"};
	enum { K_PROTO, K_SRC, K_DST, K_SPORT, K_DPORT, K_N };
	yaml_node_t *v[K_N];
	char ml[sizeof(struct label) + 16];
	snprintf(ml, sizeof(ml), "match of %s", label);
	get_fields(c, m, ml, keys, K_N, v);
	bool proto_ok = true;
	if (v[K_PROTO]) {
		const char *ps = get_str(c, v[K_PROTO], label, "proto");
		long long x;
		proto_ok = false;
		if (ps) {
			proto_ok = true;
			if (!strcmp(ps, "tcp"))
				mt->proto = 6;
			else if (!strcmp(ps, "udp"))
				mt->proto = 17;
			else if (!strcmp(ps, "icmp"))
				mt->proto = 1;
			else if (!strcmp(ps, "icmpv6"))
				mt->proto = 58;
			else if (!strcmp(ps, "any"))
				mt->proto = 0;
			else if (ps[0] != '-' && ps[0] != '+' && parse_ll(ps, 0, 255, &x))
				mt->proto = (uint8_t)x;
			else {
				proto_ok = false;
				ERR(c, node_line(v[K_PROTO]),
				    "%s: unknown proto '%.40s' (tcp, udp, icmp, icmpv6, any or 0..255)",
				    label, ps);
			}
		}
	}
	if (v[K_SRC])
		mt->has_src = get_cidr(c, v[K_SRC], label, "src", &mt->src, &mt->src_plen);
	if (v[K_DST])
		mt->has_dst = get_cidr(c, v[K_DST], label, "dst", &mt->dst, &mt->dst_plen);
	if (mt->has_src && mt->has_dst && ipaddr_is_v4(&mt->src) != ipaddr_is_v4(&mt->dst))
		ERR(c, node_line(v[K_DST]), "%s: src and dst are of different address families",
		    label);
	const struct ipaddr *any = mt->has_src ? &mt->src : mt->has_dst ? &mt->dst : NULL;
	int fam_line = node_line(mt->has_src ? v[K_SRC] : v[K_DST]);
	if (any && mt->proto == 1 && !ipaddr_is_v4(any))
		ERR(c, fam_line, "%s: proto icmp with an IPv6 address (use icmpv6)", label);
	if (any && mt->proto == 58 && ipaddr_is_v4(any))
		ERR(c, fam_line, "%s: proto icmpv6 with an IPv4 address (use icmp)", label);
	bool ports_ok = mt->proto == 6 || mt->proto == 17 || mt->proto == 132;
	if (v[K_SPORT]) {
		if (proto_ok && !ports_ok)
			ERR(c, node_line(v[K_SPORT]), "%s: src_port needs proto tcp or udp", label);
		parse_port_range(c, v[K_SPORT], label, "src_port", &mt->sport);
	}
	if (v[K_DPORT]) {
		if (proto_ok && !ports_ok)
			ERR(c, node_line(v[K_DPORT]), "%s: dst_port needs proto tcp or udp", label);
		parse_port_range(c, v[K_DPORT], label, "dst_port", &mt->dport);
	}
}

/* Rule names: an open-addressing set of rule indices by name hash, so
 * that 10k rules are checked for duplicates (and mapped on reload) in
 * linear time. */
struct name_set {
	uint32_t mask;
	uint16_t *slot; /* rule index + 1; 0 = empty */
};

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static bool name_set_init(struct name_set *ns, size_t n)
{
	uint32_t size = 16;
	while (size < 2 * n)
		size <<= 1;
	ns->mask = size - 1;
	ns->slot = calloc(size, sizeof(*ns->slot));
	return ns->slot != NULL;
}

/* The index of a rule named like rules[i] already in the set, else adds i
 * and returns TOPO_NO_INDEX. With add false, only looks name up. */
static uint16_t name_set_find(struct name_set *ns, const struct topo_rule *rules, const char *name, uint16_t i,
			      bool add)
{
	for (uint32_t k = name_hash(name) & ns->mask;; k = (k + 1) & ns->mask) {
		uint16_t v = ns->slot[k];
		if (!v) {
			if (add)
				ns->slot[k] = (uint16_t)(i + 1);
			return TOPO_NO_INDEX;
		}
		if (!strcmp(rules[v - 1].name, name))
			return (uint16_t)(v - 1);
	}
}

uint16_t *topology_rule_map(const struct topology *from, const struct topology *to)
{
	uint16_t *map = calloc(from->n_rules + 1u, sizeof(*map));
	struct name_set ns;
	if (!map || !name_set_init(&ns, to->n_rules)) {
		free(map);
		return NULL;
	}
	for (uint16_t i = 0; i < to->n_rules; i++)
		name_set_find(&ns, to->rules, to->rules[i].name, i, true);
	for (uint16_t i = 0; i < from->n_rules; i++)
		map[i] = name_set_find(&ns, to->rules, from->rules[i].name, 0, false);
	free(ns.slot);
	return map;
}

static void parse_rules(struct ctx *c, yaml_node_t *list)
{
	struct topology *t = c->t;
	size_t n = list_len(list);
	if (!n)
		return;
	t->rules = calloc(n, sizeof(*t->rules));
	struct name_set names = {0, NULL};
	if (!t->rules || !name_set_init(&names, n)) {
		free(names.slot);
		c->oom = true;
		return;
	}
	static const char *const keys[] = {"name",  "applied_to", "direction", "priority",
					   "match", "action",     "chain"};
	enum { K_NAME, K_APPLIED, K_DIR, K_PRIO, K_MATCH, K_ACTION, K_CHAIN, K_N };
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *m = list_item(c, list, i);
		if (!check_map(c, m, "rule", i))
			continue;
		struct label l;
		make_label(&l, "rule", peek_name(c, m), i);
		yaml_node_t *v[K_N];
		get_fields(c, m, l.s, keys, K_N, v);
		struct topo_rule *r = &t->rules[t->n_rules];
		memset(r, 0, sizeof(*r));
		r->line = node_line(m);
		r->chain = TOPO_NO_INDEX;
		if (!v[K_NAME])
			missing(c, m, l.s, "name");
		else if (get_name(c, v[K_NAME], l.s, "name", r->name)) {
			uint16_t j = name_set_find(&names, t->rules, r->name, t->n_rules, true);
			if (j != TOPO_NO_INDEX)
				ERR(c, node_line(v[K_NAME]), "duplicate rule name '%s' (also at line %d)", r->name,
				    t->rules[j].line);
		}
		yaml_node_t *al = v[K_APPLIED];
		if (!al) {
			missing(c, m, l.s, "applied_to");
		} else if (al->type != YAML_SEQUENCE_NODE) {
			ERR(c, node_line(al), "%s: applied_to must be a list of guests or networks",
			    l.s);
		} else if (list_len(al) == 0) {
			ERR(c, node_line(al), "%s: applied_to is empty", l.s);
		} else if (list_len(al) > ARRAY_SIZE(r->applied_to)) {
			ERR(c, node_line(al), "%s: applied_to has %zu entries (at most %zu)", l.s,
			    list_len(al), ARRAY_SIZE(r->applied_to));
		} else {
			for (size_t k = 0; k < list_len(al); k++) {
				yaml_node_t *an = list_item(c, al, k);
				char name[TOPO_NAME_MAX];
				if (!get_name(c, an, l.s, "applied_to", name))
					continue;
				uint16_t gi = topology_guest_index(t, name);
				uint16_t ni = TOPO_NO_INDEX;
				for (uint16_t j = 0; j < t->n_networks; j++)
					if (!strcmp(t->networks[j].name, name))
						ni = j;
				if (gi == TOPO_NO_INDEX && ni == TOPO_NO_INDEX) {
					ERR(c, node_line(an),
					    "%s: applied_to names unknown guest or network '%s'", l.s,
					    name);
					continue;
				}
				if (gi != TOPO_NO_INDEX && ni != TOPO_NO_INDEX) {
					ERR(c, node_line(an),
					    "%s: applied_to '%s' is ambiguous (both a guest and a network)",
					    l.s, name);
					continue;
				}
				bool is_net = ni != TOPO_NO_INDEX;
				uint16_t idx = is_net ? ni : gi;
				bool dup = false;
				for (uint16_t j = 0; j < r->n_applied; j++)
					dup |= r->applied_to[j].is_network == is_net &&
					       r->applied_to[j].index == idx;
				if (dup) {
					ERR(c, node_line(an), "%s: applied_to lists '%s' twice", l.s,
					    name);
					continue;
				}
				r->applied_to[r->n_applied].is_network = is_net;
				r->applied_to[r->n_applied].index = idx;
				r->n_applied++;
			}
		}
		if (!v[K_DIR]) {
			missing(c, m, l.s, "direction");
		} else {
			const char *ds = get_str(c, v[K_DIR], l.s, "direction");
			if (ds && !strcmp(ds, "ingress"))
				r->dir = RULE_DIR_INGRESS;
			else if (ds && !strcmp(ds, "egress"))
				r->dir = RULE_DIR_EGRESS;
			else if (ds && !strcmp(ds, "both"))
				r->dir = RULE_DIR_BOTH;
			else if (ds)
				ERR(c, node_line(v[K_DIR]),
				    "%s: unknown direction '%.40s' (ingress, egress or both)", l.s, ds);
		}
		long long x;
		if (v[K_PRIO] && get_int(c, v[K_PRIO], l.s, "priority", INT32_MIN, INT32_MAX, &x))
			r->priority = (int32_t)x;
		parse_match(c, v[K_MATCH], l.s, &r->match);
		bool act_ok = false;
		if (!v[K_ACTION]) {
			missing(c, m, l.s, "action");
		} else {
			const char *as = get_str(c, v[K_ACTION], l.s, "action");
			act_ok = as != NULL;
			if (as && !strcmp(as, "redirect"))
				r->action = RULE_REDIRECT;
			else if (as && !strcmp(as, "copy"))
				r->action = RULE_COPY;
			else if (as && !strcmp(as, "skip"))
				r->action = RULE_SKIP;
			else if (as) {
				act_ok = false;
				ERR(c, node_line(v[K_ACTION]),
				    "%s: unknown action '%.40s' (redirect, copy or skip)", l.s, as);
			}
		}
		if (v[K_CHAIN]) {
			char name[TOPO_NAME_MAX];
			if (get_name(c, v[K_CHAIN], l.s, "chain", name)) {
				r->chain = topology_chain_index(t, name);
				if (r->chain == TOPO_NO_INDEX)
					ERR(c, node_line(v[K_CHAIN]), "%s: unknown chain '%s'", l.s,
					    name);
			}
		} else if (act_ok && r->action != RULE_SKIP) {
			ERR(c, node_line(v[K_ACTION]), "%s: action %s needs a 'chain'", l.s,
			    r->action == RULE_REDIRECT ? "redirect" : "copy");
		}
		if (r->name[0])
			t->n_rules++;
	}
	free(names.slot);
}

/* ------------------------------------------------------------------ */
/* top level */

static void parse_root(struct ctx *c, yaml_node_t *root)
{
	static const char *const keys[] = {"service_plane", "hosts",  "networks", "guests",
					   "services",      "chains", "rules"};
	enum { K_SP, K_HOSTS, K_NETS, K_GUESTS, K_SVCS, K_CHAINS, K_RULES, K_N };
	yaml_node_t *v[K_N];
	get_fields(c, root, "topology", keys, K_N, v);
	parse_service_plane(c, v[K_SP]);
	parse_hosts(c, get_list(c, v[K_HOSTS], "hosts", TOPO_MAX_ITEMS));
	parse_networks(c, get_list(c, v[K_NETS], "networks", TOPO_MAX_ITEMS));
	parse_guests(c, get_list(c, v[K_GUESTS], "guests", TOPO_MAX_ITEMS));
	if (c->oom)
		return;
	yaml_node_t *svcs = get_list(c, v[K_SVCS], "services", TOPO_MAX_ITEMS);
	if (list_len(svcs) && !v[K_SP])
		ERR(c, node_line(v[K_SVCS]), "services need a service_plane (with its vni)");
	parse_services(c, svcs);
	if (c->oom)
		return;
	parse_chains(c, get_list(c, v[K_CHAINS], "chains", TOPO_MAX_ITEMS));
	parse_rules(c, get_list(c, v[K_RULES], "rules", TOPO_MAX_RULES));
}

static int offset_line(const char *text, size_t len, size_t off)
{
	int line = 1;
	for (size_t i = 0; i < off && i < len; i++)
		line += text[i] == '\n';
	return line;
}

/* libyaml's scanner costs O(depth) per token in flow collections, so a
 * file of deeply nested brackets would take minutes to load. Walk the
 * events first and stop at the first collection nested too deep: the
 * scanner's look-ahead is bounded (simple keys end at a line), so this
 * costs O(TOPO_MAX_DEPTH) per token. A syntax error is left to the load. */
static bool depth_ok(const char *text, size_t len, struct topo_errors *errs)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	bool ok = true;
	int depth = 0;
	if (!yaml_parser_initialize(&parser))
		return true;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	for (;;) {
		if (!yaml_parser_parse(&parser, &ev))
			break;
		yaml_event_type_t type = ev.type;
		if (type == YAML_SEQUENCE_START_EVENT || type == YAML_MAPPING_START_EVENT) {
			if (++depth > TOPO_MAX_DEPTH) {
				err_add(errs, (int)ev.start_mark.line + 1,
					"lists and mappings nested deeper than %d levels", TOPO_MAX_DEPTH);
				ok = false;
			}
		} else if (type == YAML_SEQUENCE_END_EVENT || type == YAML_MAPPING_END_EVENT) {
			depth--;
		}
		yaml_event_delete(&ev);
		if (!ok || type == YAML_STREAM_END_EVENT)
			break;
	}
	yaml_parser_delete(&parser);
	return ok;
}

struct topology *topology_load_buffer(const char *text, size_t len, struct topo_errors *errs)
{
	memset(errs, 0, sizeof(*errs));
	yaml_parser_t parser;
	yaml_document_t doc;
	if (!depth_ok(text, len, errs))
		return NULL;
	if (!yaml_parser_initialize(&parser)) {
		err_add(errs, 0, "out of memory");
		return NULL;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		if (parser.error == YAML_MEMORY_ERROR) {
			err_add(errs, 0, "out of memory");
		} else {
			int line = parser.error == YAML_READER_ERROR
					   ? offset_line(text, len, parser.problem_offset)
					   : (int)parser.problem_mark.line + 1;
			err_add(errs, line, "YAML syntax error: %s%s%s",
				parser.problem ? parser.problem : "unknown problem",
				parser.context ? " " : "", parser.context ? parser.context : "");
		}
		yaml_parser_delete(&parser);
		return NULL;
	}
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (!root) {
		err_add(errs, 1, "empty topology file");
		yaml_document_delete(&doc);
		yaml_parser_delete(&parser);
		return NULL;
	}
	/* A second document would be silently ignored: refuse it. */
	yaml_document_t doc2;
	if (!yaml_parser_load(&parser, &doc2)) {
		int line = (int)parser.problem_mark.line + 1;
		if (parser.error == YAML_READER_ERROR)
			line = offset_line(text, len, parser.problem_offset);
		err_add(errs, line, "YAML syntax error: %s%s%s",
			parser.problem ? parser.problem : "unknown problem", parser.context ? " " : "",
			parser.context ? parser.context : "");
	} else {
		yaml_node_t *r2 = yaml_document_get_root_node(&doc2);
		if (r2)
			err_add(errs, (int)doc2.start_mark.line + 1,
				"more than one YAML document (only one topology per file)");
		yaml_document_delete(&doc2);
	}
	yaml_parser_delete(&parser);

	struct topology *t = calloc(1, sizeof(*t));
	if (!t) {
		err_add(errs, 0, "out of memory");
		yaml_document_delete(&doc);
		return NULL;
	}
	t->md_class = 0xFFF6;
	struct ctx c = {.doc = &doc, .errs = errs, .t = t};
	if (root->type != YAML_MAPPING_NODE)
		err_add(errs, node_line(root), "the topology must be a mapping (service_plane, hosts, ...)");
	else
		parse_root(&c, root);
	if (c.oom)
		err_add(errs, 0, "out of memory");
	free(c.ifs);
	free(c.macs);
	yaml_document_delete(&doc);
	if (errs->n || errs->n_dropped) {
		err_sort(errs);
		topology_free(t);
		return NULL;
	}
	return t;
}

struct topology *topology_load_file(const char *path, struct topo_errors *errs)
{
	memset(errs, 0, sizeof(*errs));
	FILE *f = fopen(path, "rb");
	if (!f) {
		err_add(errs, 0, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	while (buf) {
		if (len == cap) {
			if (cap >= TOPO_MAX_FILE) {
				err_add(errs, 0, "%s: file too large (more than %u bytes)", path,
					TOPO_MAX_FILE);
				free(buf);
				fclose(f);
				return NULL;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		size_t got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	if (!buf) {
		fclose(f);
		err_add(errs, 0, "out of memory");
		return NULL;
	}
	if (ferror(f)) {
		err_add(errs, 0, "cannot read %s: %s", path, strerror(errno));
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	struct topology *t = topology_load_buffer(buf, len, errs);
	free(buf);
	return t;
}

void topology_free(struct topology *t)
{
	if (!t)
		return;
	free(t->hosts);
	free(t->networks);
	free(t->guests);
	free(t->services);
	free(t->nodes);
	free(t->chains);
	free(t->rules);
	free(t);
}

/* ------------------------------------------------------------------ */
/* lookups */

#define LOOKUP(fn, arr, cnt)                                                   \
	uint16_t fn(const struct topology *t, const char *name)                \
	{                                                                      \
		if (!t || !name)                                               \
			return TOPO_NO_INDEX;                                  \
		for (uint16_t i = 0; i < t->cnt; i++)                          \
			if (!strcmp(t->arr[i].name, name))                     \
				return i;                                      \
		return TOPO_NO_INDEX;                                          \
	}

LOOKUP(topology_host_index, hosts, n_hosts)
LOOKUP(topology_guest_index, guests, n_guests)
LOOKUP(topology_node_index, nodes, n_nodes)
LOOKUP(topology_chain_index, chains, n_chains)
LOOKUP(topology_service_index, services, n_services)

const char *svc_mode_name(enum svc_mode m)
{
	switch (m) {
	case SVC_MODE_L2:
		return "l2";
	case SVC_MODE_L3:
		return "l3";
	case SVC_MODE_NSH:
		return "nsh";
	}
	return "?";
}
