/* sn_emul.c - in-memory service node reflectors (tests, benchmarks). */
#include "sn_emul.h"

#include "nsh.h"
#include "wire.h"

uint16_t sn_emul_reflect(const struct hostcfg *hc, uint16_t port, uint8_t *frame, size_t len)
{
	if (port >= hc->n_ports || len < ETH_HLEN)
		return PORT_NONE;
	const struct hc_port *hp = &hc->ports[port];
	if (hp->kind == PORT_GUEST)
		return PORT_NONE;
	uint8_t tmp[6];
	switch ((enum svc_mode)hc->node_mode[hp->ref]) {
	case SVC_MODE_L2:
		return hc->node_port[hp->ref][hp->kind == PORT_SN_IN ? 1 : 0];
	case SVC_MODE_L3:
		memcpy(frame, frame + 6, 6);
		memcpy(frame + 6, hc->topo->nodes[hp->ref].mac.b, 6);
		return port;
	case SVC_MODE_NSH: {
		/* a minimal NSH-aware node: the data plane under test checks the rest */
		if (len < ETH_HLEN + NSH_BASE_LEN || rd16(frame + 12) != ETH_P_NSH || frame[ETH_HLEN + 7] == 0)
			return PORT_NONE;
		frame[ETH_HLEN + 7]--;
		memcpy(tmp, frame, 6);
		memcpy(frame, frame + 6, 6);
		memcpy(frame + 6, tmp, 6);
		return port;
	}
	}
	return PORT_NONE;
}
