/* fuzz_topology.c - libFuzzer target for the topology loader: any bytes
 * must give either a topology or an error list, never a crash or a leak.
 * A loaded topology is checked for the invariants its users rely on.
 * Touches only topology_load_buffer / topology_free. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "topology.h"

static void check(const struct topology *t)
{
	for (uint16_t s = 0; s < t->n_services; s++) {
		const struct topo_service *sv = &t->services[s];
		if (!sv->n_nodes || sv->first_node + sv->n_nodes > t->n_nodes)
			abort();
		for (uint16_t i = 0; i < sv->n_nodes; i++) {
			const struct topo_node *n = &t->nodes[sv->first_node + i];
			if (n->service != s || n->host >= t->n_hosts)
				abort();
			if (n->n_ports != (sv->mode == SVC_MODE_L2 ? 2 : 1))
				abort();
			if (sv->mode == SVC_MODE_NSH && !n->has_mac)
				abort();
		}
	}
	for (uint16_t g = 0; g < t->n_guests; g++)
		if (t->guests[g].host >= t->n_hosts || t->guests[g].network >= t->n_networks)
			abort();
	for (uint16_t c = 0; c < t->n_chains; c++) {
		if (!t->chains[c].n_services || t->chains[c].n_services > 16)
			abort();
		for (uint16_t i = 0; i < t->chains[c].n_services; i++)
			if (t->chains[c].services[i] >= t->n_services)
				abort();
	}
	for (uint16_t r = 0; r < t->n_rules; r++) {
		const struct topo_rule *ru = &t->rules[r];
		if (ru->action != RULE_SKIP && ru->chain >= t->n_chains)
			abort();
		if (ru->match.sport.lo > ru->match.sport.hi || ru->match.dport.lo > ru->match.dport.hi)
			abort();
		if (!ru->n_applied || ru->n_applied > 32)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct topo_errors errs;
	/* a copy of exactly size bytes, so reads past the end are caught */
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	struct topology *t = topology_load_buffer(buf, size, &errs);
	if (t) {
		if (errs.n)
			abort();
		check(t);
		topology_free(t);
	} else if (errs.n == 0 || errs.n > 64) {
		abort();
	}
	free(buf);
	return 0;
}
