/* detourd - the per-host agent and data plane (SPEC section 2), standalone
 * mode: runs host NAME's data plane from a topology file.
 *
 *   detourd --config FILE --host NAME [--socket PATH] [--workers N] [--log-level L] [--syslog]
 *
 * The main thread is the control thread: a poll loop over the control
 * socket and signals (SIGHUP reloads, SIGTERM/SIGINT stop), and the life
 * cycle of ports and underlay sockets; N worker threads (default: one per
 * CPU the process may run on) forward (worker.c). See daemon.h. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <urcu/urcu-qsbr.h>

#include "daemon.h"
#include "log.h"
#include "neigh.h"
#include "nsh.h"
#include "worker.h"

#define POOL_SIZE 16384
#define NSH_OVERHEAD_MAX 100 /* Ethernet + NSH base + the chain TLV, with room to spare */
#define CT_CAPACITY (1u << 18)

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The frames a port carries: guest MTU, plus the NSH encapsulation on the
 * link to an nsh node. */
static uint16_t port_mtu(const struct hostcfg *hc, const struct hc_port *hp)
{
	uint16_t mtu = hc->topo->hosts[hc->self].mtu ? hc->topo->hosts[hc->self].mtu : 1500;
	if (hp->kind == PORT_SN && hc->topo->services[hc->topo->nodes[hp->ref].service].mode == SVC_MODE_NSH)
		return (uint16_t)MIN(mtu + NSH_OVERHEAD_MAX, IO_MTU_MAX);
	return mtu;
}

static void close_all(struct io_port **io, uint16_t n)
{
	for (uint16_t w = 0; w < n; w++) {
		io_close(io[w]);
		io[w] = NULL;
	}
}

/* Open port hp for every worker (io[w]) as the topology asks (`io:`):
 * AF_XDP with RX queues spread over the workers, else AF_PACKET sockets
 * in one PACKET_FANOUT group. AF_XDP that cannot be had falls back to
 * AF_PACKET with a log line. */
static bool open_port(const struct daemon *d, const struct hostcfg *hc, const struct hc_port *hp, bool quiet,
		      struct io_port **io)
{
	char err[256];
	struct io_opts o;
	io_opts_init(&o);
	o.mtu = port_mtu(hc, hp);
	uint16_t n = d->n_workers;
	if (hp->io == PORT_IO_AFXDP || hp->io == PORT_IO_AUTO) {
		/* auto: native mode only (generic mode cannot take GSO frames from a TSO peer) */
		o.xdp_mode = hp->io == PORT_IO_AUTO ? IO_XDP_MODE_NATIVE : IO_XDP_MODE_AUTO;
		o.xdp_workers = n > 1 ? n : 0;
		uint16_t w;
		for (w = 0; w < n; w++) {
			o.xdp_worker = w;
			if (!(io[w] = io_open_afxdp(hp->ifname, &o, err, sizeof(err))))
				break;
		}
		if (w == n) {
			log_info("port %s open (AF_XDP, %u worker%s)", hp->ifname, n, n > 1 ? "s" : "");
			return true;
		}
		close_all(io, w); /* the ones opened; io[w..] were never set */
		if (!quiet)
			log_warn("port %s: AF_XDP not available (%s); using AF_PACKET", hp->ifname, err);
	}
	o.fanout = n > 1;
	o.fanout_workers = n;
	for (uint16_t w = 0; w < n; w++) {
		if (!(io[w] = io_open_afpacket(hp->ifname, &o, err, sizeof(err)))) {
			close_all(io, w);
			if (!quiet)
				log_warn("port %s: %s (retrying every second)", hp->ifname, err);
			return false;
		}
		if (w == 0 && o.fanout)
			o.fanout_id = io_fanout_id(io[0]);
	}
	log_info("port %s open (AF_PACKET%s)", hp->ifname,
		 n == 1 ? "" : io_fanout_steered(io[0]) ? ", each worker gets its own flows (eBPF fanout)"
						 : ", fanout by the kernel's hash, workers hand flows over");
	return true;
}

static struct dconf *conf_new(const struct daemon *d, struct hostcfg *hc)
{
	struct dconf *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->hc = hc;
	c->n_ports = hc->n_ports;
	c->io = calloc((size_t)d->n_workers * hc->n_ports + 1u, sizeof(*c->io));
	c->ul = calloc(d->n_workers, sizeof(*c->ul));
	c->nh = calloc(hc->n_peers + 1u, sizeof(*c->nh));
	if (!c->io || !c->ul || !c->nh) {
		free(c->io);
		free(c->ul);
		free(c->nh);
		free(c);
		return NULL;
	}
	return c;
}

/* A copy of d's current dconf (same configuration, ports and underlays). */
static struct dconf *conf_copy(const struct daemon *d)
{
	const struct dconf *o = d->conf;
	struct dconf *c = conf_new(d, o->hc);
	if (!c)
		return NULL;
	memcpy(c->io, o->io, (size_t)d->n_workers * o->n_ports * sizeof(*c->io));
	memcpy(c->ul, o->ul, d->n_workers * sizeof(*c->ul));
	free(c->nh);
	c->nh = o->nh;
	c->port_gen = o->port_gen;
	return c;
}

static bool conf_has_io(const struct dconf *c, size_t n, const struct io_port *io)
{
	for (size_t i = 0; c && i < n; i++)
		if (c->io[i] == io)
			return true;
	return false;
}

/* Free what old holds and next does not. */
static void conf_free(const struct daemon *d, struct dconf *old, const struct dconf *next)
{
	if (!old)
		return;
	for (uint16_t i = 0; i < old->n_ports; i++)
		for (uint16_t w = 0; w < d->n_workers; w++) {
			struct io_port *io = old->io[(size_t)w * old->n_ports + i];
			if (io && !conf_has_io(next, next ? (size_t)d->n_workers * next->n_ports : 0, io)) {
				if (w == 0)
					log_info("port %s closed", old->hc->ports[i].ifname);
				io_close(io);
			}
		}
	for (uint16_t w = 0; w < d->n_workers; w++)
		if (old->ul[w] && (!next || next->ul[w] != old->ul[w]))
			underlay_close(old->ul[w]);
	if (!next || next->hc != old->hc)
		hostcfg_free(old->hc);
	if (!next || next->nh != old->nh)
		free(old->nh);
	free(old->io);
	free(old->ul);
	free(old);
}

/* Make c what the workers run with. A worker may read the old dconf until
 * it has passed two quiescent states (it switches at the top of its loop,
 * reading the old one while it moves its flows over), hence two grace
 * periods before the old one goes. */
static void publish(struct daemon *d, struct dconf *c)
{
	struct dconf *old = d->conf;
	rcu_assign_pointer(d->conf, c);
	d->hc = c->hc;
	for (uint16_t w = 0; w < d->n_workers; w++)
		worker_wake(&d->w[w]);
	urcu_qsbr_synchronize_rcu();
	urcu_qsbr_synchronize_rcu();
	conf_free(d, old, c);
}

/* Every port of c opened: those of the same name reused from d->conf. */
static void open_ports(struct daemon *d, struct dconf *c, bool quiet)
{
	const struct dconf *o = d->conf;
	uint16_t nw = d->n_workers;
	struct io_port *tmp[STEER_MAX_WORKERS];
	for (uint16_t i = 0; i < c->n_ports; i++) {
		uint16_t j = o ? hostcfg_port_by_ifname(o->hc, c->hc->ports[i].ifname) : PORT_NONE;
		if (j != PORT_NONE && o->io[j]) {
			for (uint16_t w = 0; w < nw; w++)
				c->io[(size_t)w * c->n_ports + i] = o->io[(size_t)w * o->n_ports + j];
			continue;
		}
		if (open_port(d, c->hc, &c->hc->ports[i], quiet, tmp))
			for (uint16_t w = 0; w < nw; w++)
				c->io[(size_t)w * c->n_ports + i] = tmp[w];
	}
}

static const char *uplink_of(const struct hostcfg *hc) { return hc->topo->hosts[hc->self].uplink; }

/* Worker w's underlay gets the AF_XDP uplink the topology names, if any;
 * without it (a warning) the sockets carry everything. */
static void attach_uplink(const struct daemon *d, struct underlay *ul, const char *ifname, uint16_t w, bool quiet)
{
	char err[256];
	if (!ifname[0])
		return;
	if (!underlay_attach_uplink(ul, ifname, w, d->n_workers, err, sizeof(err))) {
		if (!quiet && w == 0)
			log_warn("uplink %s: %s; Geneve goes through the kernel's UDP sockets", ifname, err);
		return;
	}
	if (w == 0)
		log_info("uplink %s: Geneve through AF_XDP (%u worker%s)", ifname, d->n_workers,
			 d->n_workers > 1 ? "s" : "");
}

/* The underlay sockets on this host's VTEP, one per worker (a SO_REUSEPORT
 * group), with the uplink; reused while the VTEP and uplink stay the same. */
static void open_underlay(struct daemon *d, struct dconf *c, bool quiet)
{
	const struct dconf *o = d->conf;
	char err[256], vtep[IPADDR_STRLEN];
	ipaddr_format(&c->hc->vtep, vtep);
	for (uint16_t w = 0; w < d->n_workers; w++) {
		if (o && o->ul[w] && ipaddr_eq(underlay_vtep(o->ul[w]), &c->hc->vtep) &&
		    !strcmp(uplink_of(o->hc), uplink_of(c->hc))) {
			c->ul[w] = o->ul[w];
			continue;
		}
		c->ul[w] = underlay_open_shared(&c->hc->vtep, GENEVE_PORT, d->n_workers, err, sizeof(err));
		if (!c->ul[w]) {
			for (uint16_t k = 0; k < w; k++)
				if (!o || c->ul[k] != o->ul[k])
					underlay_close(c->ul[k]);
			memset(c->ul, 0, d->n_workers * sizeof(*c->ul));
			if (!quiet)
				log_warn("underlay %s: %s (retrying every second)", vtep, err);
			return;
		}
		attach_uplink(d, c->ul[w], uplink_of(c->hc), w, quiet);
	}
	if (!o || !o->ul[0] || o->ul[0] != c->ul[0])
		log_info("underlay on %s port %u%s", vtep, GENEVE_PORT,
			 d->n_workers == 1 ? "" : underlay_steered(c->ul[0]) ? ", each worker gets its own flows (eBPF)"
									 : ", workers hand flows over");
}

/* The Ethernet address of each peer's next hop on the uplink, from the
 * kernel's tables (neigh.h), published in c->nh for the workers: a peer
 * whose next hop is unknown, or not on the uplink, goes through the
 * sockets meanwhile. */
static void resolve_next_hops(struct daemon *d, struct dconf *c)
{
	const struct underlay *ul = c->ul[0];
	int ifindex = ul ? underlay_uplink_ifindex(ul) : 0;
	if (!ifindex || !d->neigh)
		return;
	for (uint32_t i = 0; i < c->hc->n_peers; i++) {
		struct neigh_result r;
		char err[256] = "", peer[IPADDR_STRLEN];
		enum neigh_state st = neigh_resolve(d->neigh, ifindex, &c->hc->peers[i], &r, err, sizeof(err));
		uint64_t w = st == NEIGH_OK ? underlay_nh_word(r.mac) : 0;
		uint64_t old = atomic_exchange_explicit(&c->nh[i], w, memory_order_relaxed);
		if (w == old)
			continue;
		ipaddr_format(&c->hc->peers[i], peer);
		if (w) {
			struct mac m;
			char ms[MAC_STRLEN];
			underlay_nh_mac(w, m.b);
			mac_format(&m, ms);
			log_info("uplink %s: peer %s through next hop %s", underlay_uplink_name(ul), peer, ms);
		} else {
			log_info("uplink %s: peer %s: next hop %s%s%s; through the sockets meanwhile",
				 underlay_uplink_name(ul), peer, neigh_state_name(st), err[0] ? ": " : "", err);
		}
	}
}

/* Once a second, or when a worker saw an error on a port: close ports
 * whose interface went away, open the missing ones and the underlay. */
static void check_ports(struct daemon *d, bool retry)
{
	const struct dconf *o = d->conf;
	uint16_t nw = d->n_workers;
	bool change = false;
	struct dconf *c = conf_copy(d);
	if (!c)
		return;
	for (uint16_t i = 0; i < c->n_ports; i++) {
		if (c->io[i]) { /* worker 0's: all workers have it or none */
			bool alive = true;
			for (uint16_t w = 0; w < nw; w++)
				alive &= io_check_alive(c->io[(size_t)w * c->n_ports + i]);
			if (!alive) {
				log_warn("port %s: interface gone; closed, retrying every second", c->hc->ports[i].ifname);
				for (uint16_t w = 0; w < nw; w++)
					c->io[(size_t)w * c->n_ports + i] = NULL;
				change = true;
			}
		} else if (retry) {
			struct io_port *tmp[STEER_MAX_WORKERS];
			if (open_port(d, c->hc, &c->hc->ports[i], true, tmp)) {
				for (uint16_t w = 0; w < nw; w++)
					c->io[(size_t)w * c->n_ports + i] = tmp[w];
				change = true;
			}
		}
	}
	if (retry && !o->ul[0]) {
		open_underlay(d, c, true);
		change |= c->ul[0] != NULL;
	}
	if (retry)
		resolve_next_hops(d, c); /* c->nh is o->nh: seen at once */
	if (change)
		publish(d, c);
	else
		conf_free(d, c, o);
}

static struct hostcfg *load(const char *path, const char *host, json_t *errors)
{
	struct topo_errors errs;
	memset(&errs, 0, sizeof(errs));
	struct topology *t = topology_load_file(path, &errs);
	if (!t) {
		for (unsigned i = 0; i < errs.n && i < ARRAY_SIZE(errs.e); i++)
			json_array_append_new(errors, json_sprintf("%s:%d: %s", path, errs.e[i].line, errs.e[i].msg));
		if (errs.n_dropped)
			json_array_append_new(errors, json_sprintf("%s: %u more errors", path, errs.n_dropped));
		if (errs.n == 0)
			json_array_append_new(errors, json_sprintf("%s: cannot load", path));
		return NULL;
	}
	char err[256];
	struct hostcfg *hc = hostcfg_build(t, host, err, sizeof(err));
	if (!hc)
		json_array_append_new(errors, json_sprintf("%s: %s", path, err));
	return hc;
}

/* Do the ports a and b have in common keep their numbers (ports added or
 * removed at the end only)? */
static bool same_ports(const struct hostcfg *a, const struct hostcfg *b)
{
	for (uint16_t i = 0; i < a->n_ports && i < b->n_ports; i++)
		if (strcmp(a->ports[i].ifname, b->ports[i].ifname) || a->ports[i].kind != b->ports[i].kind)
			return false;
	return true;
}

bool daemon_reload(struct daemon *d, json_t *errors)
{
	struct hostcfg *hc = load(d->config_path, d->host, errors);
	if (!hc) {
		d->reload_failures++;
		return false;
	}
	hostcfg_inherit_liveness(hc, d->hc);
	struct dconf *c = conf_new(d, hc);
	if (!c) {
		json_array_append_new(errors, json_string("out of memory"));
		hostcfg_free(hc);
		d->reload_failures++;
		return false;
	}
	open_ports(d, c, false);
	open_underlay(d, c, false);
	resolve_next_hops(d, c);
	c->port_gen = (uint16_t)(d->conf->port_gen + !same_ports(d->conf->hc, hc));
	publish(d, c);
	d->reloads++;
	log_info("reloaded %s: %u ports, %u paths", d->config_path, hc->n_ports, hc->ps->n_paths);
	return true;
}

void daemon_set_node(struct daemon *d, uint16_t node, bool up)
{
	struct hc_live *old = hostcfg_set_node_rcu(d->hc, node, up);
	if (old) {
		/* workers read the liveness afresh for every packet */
		urcu_qsbr_synchronize_rcu();
		hostcfg_live_free(d->hc, old);
	}
}

void daemon_on_worker(struct daemon *d, uint16_t id, void (*fn)(struct worker *w, void *arg), void *arg)
{
	if (id < d->n_workers)
		worker_call(&d->w[id], fn, arg);
}

void daemon_on_workers(struct daemon *d, void (*fn)(struct worker *w, void *arg), void *arg)
{
	for (uint16_t i = 0; i < d->n_workers; i++)
		worker_call(&d->w[i], fn, arg);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: detourd --config FILE --host NAME [--socket PATH] [--workers N] "
		   "[--log-level error|warning|info|debug] [--syslog]\n");
}

/* One worker per CPU the process may run on. */
static uint16_t default_workers(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return 1;
	int n = CPU_COUNT(&set);
	return (uint16_t)(n < 1 ? 1 : n > STEER_MAX_WORKERS ? STEER_MAX_WORKERS : n);
}

/* Worker i on the i-th CPU of the affinity set, when there are enough. */
static void pin_workers(struct daemon *d)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) < 0 || CPU_COUNT(&set) < d->n_workers)
		return;
	uint16_t w = 0;
	for (int cpu = 0; cpu < CPU_SETSIZE && w < d->n_workers; cpu++) {
		if (!CPU_ISSET(cpu, &set))
			continue;
		d->w[w].cpu = cpu;
		w++;
	}
}

static void log_errors(json_t *errors)
{
	size_t i;
	json_t *v;
	json_array_foreach(errors, i, v)
		log_err("%s", json_string_value(v));
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'}, {"host", required_argument, NULL, 'H'},
		{"socket", required_argument, NULL, 's'}, {"log-level", required_argument, NULL, 'l'},
		{"syslog", no_argument, NULL, 'S'},       {"help", no_argument, NULL, 'h'},
		{"workers", required_argument, NULL, 'w'}, {NULL, 0, NULL, 0},
	};
	struct daemon d = {0};
	const char *sock = NULL;
	enum log_level lvl = LOG_LVL_INFO;
	bool use_syslog = false;
	uint16_t n_workers = 0;
	int c;
	while ((c = getopt_long(argc, argv, "c:H:s:l:Shw:", opts, NULL)) != -1) {
		switch (c) {
		case 'w': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end || v < 1 || v > STEER_MAX_WORKERS) {
				fprintf(stderr, "detourd: --workers must be 1..%d\n", STEER_MAX_WORKERS);
				usage(stderr);
				return 2;
			}
			n_workers = (uint16_t)v;
			break;
		}
		case 'c': d.config_path = optarg; break;
		case 'H': d.host = optarg; break;
		case 's': sock = optarg; break;
		case 'S': use_syslog = true; break;
		case 'l':
			if (!strcmp(optarg, "error")) lvl = LOG_LVL_ERR;
			else if (!strcmp(optarg, "warning")) lvl = LOG_LVL_WARN;
			else if (!strcmp(optarg, "info")) lvl = LOG_LVL_INFO;
			else if (!strcmp(optarg, "debug")) lvl = LOG_LVL_DEBUG;
			else { usage(stderr); return 2; }
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!d.config_path || !d.host || optind != argc) {
		usage(stderr);
		return 2;
	}
	log_init("detourd", use_syslog, lvl);
	char sockbuf[256];
	if (!sock) {
		snprintf(sockbuf, sizeof(sockbuf), "/run/detour/%s.sock", d.host);
		sock = sockbuf;
	}
	json_t *errors = json_array();
	struct hostcfg *hc = load(d.config_path, d.host, errors);
	if (!hc) {
		log_errors(errors);
		log_err("not starting: %s is invalid", d.config_path);
		return 1;
	}
	json_decref(errors);
	d.started_ns = now_ns();
	if (n_workers == 0)
		n_workers = default_workers();
	d.n_workers = n_workers;
	if (n_workers > 1 && !(d.steer = steer_create(n_workers, 1u << 16))) {
		log_err("cannot allocate the worker hand-off");
		return 1;
	}
	d.main_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	d.w = calloc(n_workers, sizeof(*d.w));
	struct dconf *conf = conf_new(&d, hc);
	if (!d.w || !conf || d.main_efd < 0) {
		log_err("out of memory");
		return 1;
	}
	char err[256];
	if (!(d.neigh = neigh_open(err, sizeof(err))))
		log_warn("%s: no next hops for an uplink, Geneve goes through the UDP sockets", err);
	open_ports(&d, conf, false);
	open_underlay(&d, conf, false);
	resolve_next_hops(&d, conf);
	d.conf = conf;
	d.hc = hc;
	for (uint16_t i = 0; i < n_workers; i++)
		if (!worker_init(&d.w[i], &d, i, conf, POOL_SIZE, CT_CAPACITY)) {
			log_err("cannot allocate worker %u", i);
			return 1;
		}
	d.ctl = control_open(sock, err, sizeof(err));
	if (!d.ctl) {
		log_err("%s", err);
		return 1;
	}
	daemon_register_handlers(&d);

	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigprocmask(SIG_BLOCK, &sigs, NULL); /* inherited by the workers */
	signal(SIGPIPE, SIG_IGN);
	int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	pin_workers(&d);
	for (uint16_t i = 0; i < n_workers; i++)
		if (!worker_start(&d.w[i])) {
			log_err("cannot start worker %u", i);
			return 1;
		}
	log_info("host %s running: %u ports, %u paths, %u worker%s, socket %s", d.host, hc->n_ports,
		 hc->ps->n_paths, n_workers, n_workers > 1 ? "s" : "", sock);

	uint64_t last_retry = now_ns();
	bool running = true;
	while (running) {
		struct pollfd pfd[3] = {
			{.fd = sfd, .events = POLLIN},
			{.fd = control_fd(d.ctl), .events = POLLIN},
			{.fd = d.main_efd, .events = POLLIN},
		};
		int r = poll(pfd, 3, 250);
		if (r < 0 && errno != EINTR) {
			log_err("poll: %s", strerror(errno));
			break;
		}
		if (pfd[1].revents)
			control_poll(d.ctl);
		if (pfd[0].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGHUP) {
					json_t *e = json_array();
					if (!daemon_reload(&d, e)) {
						log_errors(e);
						log_err("reload rejected; running state kept");
					}
					json_decref(e);
				} else {
					running = false;
				}
			}
		}
		/* a port whose interface went away: at once when a worker saw
		 * its error, else at the once-a-second check */
		uint64_t t = now_ns();
		bool tick = t - last_retry > 1000000000ull;
		if (pfd[2].revents & POLLIN) {
			uint64_t v;
			ssize_t k = read(d.main_efd, &v, sizeof(v));
			(void)k;
		}
		if (tick || (pfd[2].revents & POLLIN))
			check_ports(&d, tick);
		if (tick)
			last_retry = t;
	}
	log_info("stopping");
	atomic_store(&d.stop, true);
	for (uint16_t i = 0; i < n_workers; i++) {
		worker_wake(&d.w[i]);
		pthread_join(d.w[i].thread, NULL);
	}
	control_close(d.ctl);
	for (uint16_t i = 0; i < n_workers; i++)
		worker_drop_handed(&d.w[i]);
	conf_free(&d, d.conf, NULL); /* ports first: their pending frames go back to the pools */
	for (uint16_t i = 0; i < n_workers; i++)
		worker_fini(&d.w[i]);
	free(d.w);
	steer_destroy(d.steer);
	neigh_close(d.neigh);
	close(d.main_efd);
	close(sfd);
	return 0;
}
