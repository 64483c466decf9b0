#!/usr/bin/env bash
# bench/system/run.sh [--smoke] [--rates "0.1 0.25"] [--secs S] [--flows N]
#
# The system benchmark of issue 4 item 4: Detour and Open vSwitch 3.1
# (userspace datapath, datapath_type=netdev) on the same lab namespaces and
# veths, in the same run. A generator offers 64-byte UDP frames at fixed
# rates below its limit (sendmmsg, about 1.3 Mpps here) from guest vm1; a
# receiver counts them in guest vm2. Per rate it reports delivered Mpps, loss
# and the CPU time per delivered packet of the data plane: every thread of
# the detourd / ovs-vswitchd processes of the hosts involved, read before and
# after the traffic (sum of /proc/PID/task/*/schedstat run time, in ns; the
# same quantity as utime+stime of /proc/PID/stat, which is logged too but
# has a 10 ms tick). The generator, the receiver and the NSH node run on CPU
# 0; the data plane on CPU 1 (taskset for detourd and ovs-vswitchd,
# pmd-cpu-mask for the OVS PMD thread).
#
# Scenarios (topologies in this directory):
#  (a) g2g     vm1 -> vm2 on host h1.
#      Detour: guest-plane switching. OVS: bridge br0 with vm1p, vm2p;
#      in_port=vm1p,dl_dst=vm2 -> output:vm2p (and the reverse).
#  (b) nsh     vm1 -> NSH node sn1 (detour-sn, SI-1, MACs swapped) -> vm2,
#      all on h1. Detour: a redirect rule for vm1's UDP into a one-node
#      chain. OVS: the same detour-sn in the same node namespace; on br0
#        in_port=vm1p,udp -> encap(nsh(md_type=2, one 4-byte TLV)), SPI 100,
#          SI 255, encap(ethernet), eth_src=h1, eth_dst=sn1, output:sn1p
#        in_port=sn1p,nsh_spi=100,nsh_si=254 -> decap() (Ethernet),
#          decap() (NSH), output:vm2p
#      i.e. push NSH on the way to the node, check SPI/SI and pop it on the
#      way back, which is the work Detour's service proxy does for an nsh
#      node (Detour also keeps per-flow state to restore metadata).
#  (c) geneve  vm1 on h1 -> vm2 on h2 over the lab underlay (ul0 in each
#      host namespace, Linux bridge in P-ul). Detour: guest plane in Geneve
#      VNI 100 (UDP 6081). OVS (userspace tunnelling): br-int holds the
#      guest port and a geneve port (key 100, remote_ip the peer VTEP);
#      br-phy (action NORMAL) holds ul0, the VTEP address moves from ul0 to
#      the br-phy internal port, plus ovs/route/add and tnl/arp/set for the
#      peer. The CPU is that of both hosts' data planes.
#
# Data planes x ports: detour/afpacket, detour/afxdp (`io:` on the hosts;
# for (c) Detour's underlay goes through an AF_XDP uplink on ul0, topology
# `uplink: ul0`, like OVS's afxdp port on ul0), detour/afpacket-sock ((c)
# only: the underlay on the kernel's UDP sockets, no uplink), ovs/system, ovs/afxdp (type=afxdp, n_rxq = queues of the veth), and
# ovs/afxdp-sleep (afxdp with other_config:pmd-maxsleep=50 us, OVS 3.1's
# load-based PMD sleeping; without it the PMD thread busy-polls, so its CPU
# per packet is 1 core / rate). For OVS the lab is built with the same file,
# detourd is stopped in the host namespace and OVS started there (own
# rundir, own database) on the same interfaces.
#
# Output (build/bench/system/): results.csv, table.txt (one table per
# scenario, with the ratio Detour / OVS(afxdp) of CPU per packet at the
# same offered rate), cpu_per_packet.png (gnuplot, one panel per scenario),
# logs/. --smoke: one rate (0.05 Mpps for 1 s) and no afxdp-sleep variant,
# just to prove it runs; no target is asserted. Exit status: 0 when every
# run delivered traffic, 1 otherwise.
#
# Owns: namespaces of its lab prefix (sbNNNN-*), the OVS instances and
# generator processes it starts, build/bench/system/. Everything is torn
# down on exit, also on failure or interrupt.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BIN=${DETOUR_BIN:-$REPO/build/bin}
LAB=$BIN/detour-lab
OUT=$REPO/build/bench/system
GEN=$OUT/sysgen
PREFIX=sb$(($$ % 10000))
SCHEMA=${OVS_SCHEMA:-/usr/share/openvswitch/vswitch.ovsschema}

SMOKE=0
RATES="0.1 0.25 0.5 1.0"
SECS=3
FLOWS=64
while [ $# -gt 0 ]; do
	case "$1" in
	--smoke) SMOKE=1 ;;
	--rates) RATES=$2; shift ;;
	--secs) SECS=$2; shift ;;
	--flows) FLOWS=$2; shift ;;
	-h | --help) sed -n '2,/^set -u/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
# SYSBENCH_CONFIGS / SYSBENCH_SCENARIOS: a subset (e.g. "detour:afxdp", "nsh")
CONFIGS=${SYSBENCH_CONFIGS:-"detour:afpacket detour:afxdp detour:afpacket-sock ovs:system ovs:afxdp ovs:afxdp-sleep"}
SCENARIOS=${SYSBENCH_SCENARIOS:-"g2g nsh geneve"}
if [ "$SMOKE" = 1 ]; then
	RATES=0.05
	SECS=1
	CONFIGS="detour:afpacket detour:afxdp ovs:system ovs:afxdp"
fi

NCPU=$(nproc)
if [ "$NCPU" -ge 2 ]; then GEN_CPU=0 DP_CPU=1; else GEN_CPU=0 DP_CPU=0; fi
# one data-plane CPU for both: detourd with one worker, like OVS's one PMD
export DETOUR_LAB_WORKERS=${DETOUR_LAB_WORKERS:-1}
PMD_MASK=$(printf '0x%x' $((1 << DP_CPU)))

VM1MAC=02:00:00:00:01:01 VM2MAC=02:00:00:00:01:02
VM1IP=192.168.1.1 VM2IP=192.168.1.2
SNMAC=02:00:00:00:aa:01 H1MAC=02:00:00:00:0f:01 H2MAC=02:00:00:00:0f:02
SPI=100

log() { echo "system: $*" >&2; }

# ---- cleanup ----------------------------------------------------------------
PIDS=()
OVS_DIRS=()
ovs_stop_dir() {
	local d=$1 f p
	for f in ovs-vswitchd ovsdb-server; do
		[ -f "$d/$f.pid" ] || continue
		p=$(cat "$d/$f.pid" 2>/dev/null)
		if [[ $p =~ ^[0-9]+$ ]] && kill -0 "$p" 2>/dev/null; then
			kill -TERM "$p" 2>/dev/null
			for _ in $(seq 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
			kill -KILL "$p" 2>/dev/null
		fi
		rm -f "$d/$f.pid"
	done
}
lab_down() {
	local d ns p
	for d in "${OVS_DIRS[@]}"; do ovs_stop_dir "$d"; done
	OVS_DIRS=()
	"$LAB" --prefix "$PREFIX" down >/dev/null 2>&1
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$PREFIX-"); do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf "/run/detour/lab-$PREFIX" /run/detour/"$PREFIX"-*.sock 2>/dev/null
	return 0
}
cleanup() {
	local rc=$? p
	trap - EXIT INT TERM
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	lab_down
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- prerequisites ----------------------------------------------------------
[ "$(id -u)" = 0 ] || { log "needs root (network namespaces)"; exit 1; }
for b in detour-lab detourd detour-sn; do
	[ -x "$BIN/$b" ] || { log "$BIN/$b missing (run make)"; exit 1; }
done
for c in ovs-vswitchd ovsdb-server ovs-vsctl ovs-ofctl ovs-appctl taskset cc; do
	command -v "$c" >/dev/null || { log "$c not found (scripts/install-deps.sh)"; exit 1; }
done
HAVE_GNUPLOT=1
command -v gnuplot >/dev/null || { HAVE_GNUPLOT=0; log "gnuplot not found: no plot (scripts/install-deps.sh)"; }
mkdir -p "$OUT/logs" "$OUT/data"
rm -f "$OUT"/data/*.dat "$OUT"/logs/*
if [ ! -x "$GEN" ] || [ "$HERE/sysgen.c" -nt "$GEN" ]; then
	cc -std=c17 -O2 -Wall -Wextra -D_GNU_SOURCE -o "$GEN" "$HERE/sysgen.c" ||
		{ log "building the generator failed"; exit 1; }
fi

# ---- helpers ----------------------------------------------------------------
lab() { "$LAB" --prefix "$PREFIX" "$@"; }
nsx() { local n=$1; shift; ip netns exec "$PREFIX-$n" "$@"; }

# cpu_ns PID...: run time of every thread of the processes, in ns.
cpu_ns() {
	local p t s=0 v
	for p in "$@"; do
		for t in /proc/"$p"/task/*/schedstat; do
			read -r v _ <"$t" 2>/dev/null || continue
			s=$((s + v))
		done
	done
	echo "$s"
}
# cpu_ticks PID...: utime+stime (/proc/PID/stat fields 14 and 15).
cpu_ticks() {
	local p s=0 l
	for p in "$@"; do
		l=$(cat /proc/"$p"/stat 2>/dev/null) || continue
		l=${l##*) }
		set -- $l
		s=$((s + ${12} + ${13}))
	done
	echo "$s"
}

# ---- Open vSwitch -----------------------------------------------------------
# ovs_start HOST RUNDIR [MAXSLEEP]: ovsdb-server and ovs-vswitchd in HOST's
# namespace; PMD on the data-plane CPU.
ovs_start() {
	local host=$1 d=$2 sleep=${3:-}
	mkdir -p "$d"
	OVS_DIRS+=("$d")
	rm -f "$d/conf.db" "$d"/.conf.db.~lock~
	ovsdb-tool create "$d/conf.db" "$SCHEMA" || return 1
	OVS_RUNDIR=$d OVS_DBDIR=$d OVS_LOGDIR=$d OVS_SYSCONFDIR=$d \
		taskset -c "$GEN_CPU" ip netns exec "$PREFIX-$host" ovsdb-server "$d/conf.db" \
		--remote="punix:$d/db.sock" -vconsole:off --unixctl="$d/ovsdb-server.ctl" \
		--pidfile="$d/ovsdb-server.pid" --log-file="$d/ovsdb-server.log" --no-chdir --detach ||
		return 1
	vs "$d" --no-wait init || return 1
	vs "$d" --no-wait set Open_vSwitch . other_config:pmd-cpu-mask="$PMD_MASK" || return 1
	if [ -n "$sleep" ]; then
		vs "$d" --no-wait set Open_vSwitch . other_config:pmd-maxsleep="$sleep" || return 1
	fi
	OVS_RUNDIR=$d OVS_DBDIR=$d OVS_LOGDIR=$d OVS_SYSCONFDIR=$d \
		taskset -c "$DP_CPU" ip netns exec "$PREFIX-$host" ovs-vswitchd "unix:$d/db.sock" \
		-vconsole:off --unixctl="$d/ovs-vswitchd.ctl" --pidfile="$d/ovs-vswitchd.pid" \
		--log-file="$d/ovs-vswitchd.log" --no-chdir --detach
}
vs() { local d=$1; shift; ovs-vsctl --db="unix:$d/db.sock" --timeout=20 "$@"; }
of() { local d=$1 br=$2; shift 2; ovs-ofctl -O OpenFlow13 "$1" "$d/$br.mgmt" "${@:2}"; }
ap() { local d=$1; shift; ovs-appctl --target="$d/ovs-vswitchd.ctl" "$@"; }

# add_port RUNDIR BRIDGE IFACE PORTS(system|afxdp) HOST
add_port() {
	local d=$1 br=$2 ifc=$3 ports=$4 host=$5 q
	if [ "$ports" = system ]; then
		vs "$d" add-port "$br" "$ifc" -- set interface "$ifc" type=system
	else
		q=$(nsx "$host" ls "/sys/class/net/$ifc/queues" 2>/dev/null | grep -c '^rx-')
		[ "$q" -ge 1 ] || q=1
		vs "$d" add-port "$br" "$ifc" -- set interface "$ifc" type=afxdp options:n_rxq="$q"
	fi
}
# wait_ports RUNDIR IFACE...: every interface has an OpenFlow port number.
wait_ports() {
	local d=$1 i p ok
	shift
	for _ in $(seq 100); do
		ok=1
		for i in "$@"; do
			p=$(vs "$d" get interface "$i" ofport 2>/dev/null)
			[[ $p =~ ^[0-9]+$ ]] && [ "$p" -gt 0 ] || ok=0
		done
		[ "$ok" = 1 ] && return 0
		sleep 0.1
	done
	log "ports $* did not come up in OVS (see $d/ovs-vswitchd.log)"
	return 1
}
new_bridge() {
	vs "$1" add-br "$2" -- set bridge "$2" datapath_type=netdev fail_mode=secure \
		protocols=OpenFlow13,OpenFlow14,OpenFlow15 "${@:3}"
}

# ovs_setup SCENARIO PORTS RUNBASE [MAXSLEEP]: OVS in place of detourd.
ovs_setup() {
	local scen=$1 ports=$2 base=$3 sleep=${4:-} h d pid
	local hosts="h1"
	[ "$scen" = geneve ] && hosts="h1 h2"
	for h in $hosts; do
		pid=$(lab pid "$h") || return 1
		kill -TERM "$pid"
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
		kill -0 "$pid" 2>/dev/null && { log "detourd of $h did not stop"; return 1; }
		ovs_start "$h" "$base-$h" "$sleep" || return 1
	done
	d=$base-h1
	case "$scen" in
	g2g)
		new_bridge "$d" br0 || return 1
		add_port "$d" br0 vm1p "$ports" h1 && add_port "$d" br0 vm2p "$ports" h1 || return 1
		wait_ports "$d" vm1p vm2p || return 1
		of "$d" br0 add-flow "in_port=vm1p,dl_dst=$VM2MAC,actions=output:vm2p" &&
			of "$d" br0 add-flow "in_port=vm2p,dl_dst=$VM1MAC,actions=output:vm1p"
		;;
	nsh)
		new_bridge "$d" br0 || return 1
		add_port "$d" br0 vm1p "$ports" h1 && add_port "$d" br0 vm2p "$ports" h1 &&
			add_port "$d" br0 sn1p "$ports" h1 || return 1
		wait_ports "$d" vm1p vm2p sn1p || return 1
		of "$d" br0 add-flow "priority=10,in_port=vm1p,udp,actions=encap(nsh(md_type=2,tlv(0xfff6,1,0x00000001))),set_field:$SPI->nsh_spi,set_field:255->nsh_si,encap(ethernet),set_field:$H1MAC->eth_src,set_field:$SNMAC->eth_dst,output:sn1p" &&
			of "$d" br0 add-flow "priority=10,in_port=sn1p,dl_type=0x894f,nsh_spi=$SPI,nsh_si=254,actions=decap(),decap(),output:vm2p" &&
			of "$d" br0 add-flow "priority=5,in_port=vm1p,dl_dst=$VM2MAC,actions=output:vm2p" &&
			of "$d" br0 add-flow "priority=5,in_port=vm2p,dl_dst=$VM1MAC,actions=output:vm1p"
		;;
	geneve)
		local i=1 vm vtep peer pmac mymac
		for h in h1 h2; do
			d=$base-$h
			if [ "$h" = h1 ]; then
				vm=vm1p vtep=10.0.0.1 peer=10.0.0.2 mymac=$H1MAC pmac=$H2MAC
			else
				vm=vm2p vtep=10.0.0.2 peer=10.0.0.1 mymac=$H2MAC pmac=$H1MAC
			fi
			nsx "$h" ip addr flush dev ul0
			new_bridge "$d" br-phy -- set bridge br-phy other_config:hwaddr="$mymac" || return 1
			add_port "$d" br-phy ul0 "$ports" "$h" || return 1
			new_bridge "$d" br-int || return 1
			add_port "$d" br-int "$vm" "$ports" "$h" || return 1
			vs "$d" add-port br-int gnv0 -- set interface gnv0 type=geneve \
				options:remote_ip="$peer" options:key=100 || return 1
			wait_ports "$d" ul0 "$vm" gnv0 || return 1
			nsx "$h" ip addr add "$vtep/24" dev br-phy && nsx "$h" ip link set br-phy up || return 1
			of "$d" br-phy add-flow "priority=0,actions=NORMAL" || return 1
			ap "$d" ovs/route/add "$peer/32" br-phy >/dev/null 2>&1
			ap "$d" tnl/arp/set br-phy "$peer" "$pmac" >/dev/null || return 1
			if [ "$h" = h1 ]; then
				of "$d" br-int add-flow "in_port=vm1p,dl_dst=$VM2MAC,actions=output:gnv0" &&
					of "$d" br-int add-flow "in_port=gnv0,dl_dst=$VM1MAC,actions=output:vm1p" || return 1
			else
				of "$d" br-int add-flow "in_port=vm2p,dl_dst=$VM1MAC,actions=output:gnv0" &&
					of "$d" br-int add-flow "in_port=gnv0,dl_dst=$VM2MAC,actions=output:vm2p" || return 1
			fi
			i=$((i + 1))
		done
		;;
	esac
}

# ---- traffic ----------------------------------------------------------------
# measure PPS SECS PIDS -> "sent elapsed rx cpu_ns ticks" on stdout
measure() {
	local pps=$1 secs=$2 pids=$3 rdy=$OUT/logs/rx.ready rxo=$OUT/logs/rx.out
	local rxpid c0 c1 t0 t1 txl sent el rx
	rm -f "$rdy" "$rxo"
	taskset -c "$GEN_CPU" ip netns exec "$PREFIX-vm2" "$GEN" rx eth0 "$rdy" >"$rxo" 2>&1 &
	rxpid=$!
	PIDS+=("$rxpid")
	for _ in $(seq 100); do [ -f "$rdy" ] && break; sleep 0.05; done
	c0=$(cpu_ns $pids) t0=$(cpu_ticks $pids)
	txl=$(taskset -c "$GEN_CPU" ip netns exec "$PREFIX-vm1" "$GEN" tx eth0 "$VM1MAC" "$VM2MAC" \
		"$VM1IP" "$VM2IP" "$pps" "$secs" "$FLOWS" 2>&1)
	c1=$(cpu_ns $pids) t1=$(cpu_ticks $pids)
	sleep 0.3
	kill -TERM "$rxpid" 2>/dev/null
	wait "$rxpid" 2>/dev/null
	PIDS=("${PIDS[@]/$rxpid/}")
	sent=$(awk '$1 == "sent" { print $2 }' <<<"$txl")
	el=$(awk '$1 == "sent" { print $4 }' <<<"$txl")
	rx=$(awk '$1 == "rx" { print $2 }' "$rxo" 2>/dev/null)
	[[ $sent =~ ^[0-9]+$ ]] || { log "generator: $txl"; sent=0 el=$secs; }
	[[ $rx =~ ^[0-9]+$ ]] || { log "receiver: $(cat "$rxo" 2>/dev/null)"; rx=0; }
	echo "$sent $el $rx $((c1 - c0)) $((t1 - t0))"
}

# dp_pids SCENARIO DP: the data-plane processes of the scenario's hosts.
dp_pids() {
	local hosts=h1 h out=""
	[ "$1" = geneve ] && hosts="h1 h2"
	for h in $hosts; do
		if [ "$2" = detour ]; then
			out="$out $(lab pid "$h")"
		else
			out="$out $(cat "$OUT/ovs-$h/ovs-vswitchd.pid" 2>/dev/null)"
		fi
	done
	echo "$out"
}

CSV=$OUT/results.csv
echo "scenario,dataplane,ports,offered_req_mpps,offered_mpps,delivered_mpps,loss_pct,cpu_ns_per_pkt,cpu_ticks" >"$CSV"
FAILED=0
TCK=$(getconf CLK_TCK)

run_config() {
	local scen=$1 dp=$2 ports=$3 io topo pids w r pps res sent el rx cns tk
	io=afpacket
	[ "$dp" = detour ] && io=${ports%-sock}
	# Detour's underlay: the AF_XDP uplink on ul0, or (-sock) the kernel's UDP sockets
	ul=", uplink: ul0"
	[ "${ports%-sock}" = "$ports" ] || ul=""
	topo=$OUT/logs/$scen-$ports.yaml
	sed -E "s/(vtep: [^,}]+)/\1, io: $io$ul/" "$HERE/$scen.yaml" >"$topo"
	lab_down
	if ! lab up "$topo" >"$OUT/logs/lab-$scen-$dp-$ports.log" 2>&1; then
		log "lab up failed for $scen $dp/$ports"
		tail -n 20 "$OUT/logs/lab-$scen-$dp-$ports.log" >&2
		return 1
	fi
	if [ "$scen" = nsh ]; then
		taskset -a -p -c "$GEN_CPU" "$(lab pid sn1)" >/dev/null
	fi
	# vm2's own stack drops the frames after the receiver's tap has them
	nsx vm2 nft -f - <<-EOF || return 1
		table netdev sysbench {
			chain rx {
				type filter hook ingress device eth0 priority 0;
				udp dport 5001 drop
			}
		}
	EOF
	if [ "$dp" = ovs ]; then
		local sl=""
		[ "$ports" = afxdp-sleep ] && sl=50
		rm -rf "$OUT"/ovs-h1 "$OUT"/ovs-h2
		if ! ovs_setup "$scen" "${ports%-sleep}" "$OUT/ovs" "$sl" >"$OUT/logs/ovs-$scen-$ports.log" 2>&1; then
			log "OVS setup failed for $scen $ports"
			tail -n 20 "$OUT/logs/ovs-$scen-$ports.log" >&2
			tail -n 5 "$OUT"/ovs-h1/ovs-vswitchd.log >&2
			return 1
		fi
	fi
	pids=$(dp_pids "$scen" "$dp")
	for p in $pids; do taskset -a -p -c "$DP_CPU" "$p" >/dev/null; done
	# warm-up: flows set up, caches filled; something must arrive
	w=$(measure 20000 0.3 "$pids")
	set -- $w
	if [ "$3" -eq 0 ]; then
		log "$scen $dp/$ports: nothing delivered in the warm-up (sent $1)"
		return 1
	fi
	sleep 0.2
	for r in $RATES; do
		pps=$(awk -v r="$r" 'BEGIN { printf "%d", r * 1e6 }')
		res=$(measure "$pps" "$SECS" "$pids")
		read -r sent el rx cns tk <<<"$res"
		awk -v s="$scen" -v d="$dp" -v p="$ports" -v r="$r" -v sent="$sent" -v el="$el" \
			-v rx="$rx" -v c="$cns" -v tk="$tk" -v hz="$TCK" 'BEGIN {
			off = sent / el / 1e6; del = rx / el / 1e6
			loss = sent ? 100 * (sent - rx) / sent : 100
			cpu = rx ? c / rx : -1
			printf "%s,%s,%s,%s,%.4f,%.4f,%.2f,%.1f,%d\n", s, d, p, r, off, del, loss, cpu, tk
			printf "%s %.1f %.4f %.4f\n", r, cpu, del, off >> ("'"$OUT"'/data/" s "-" d "-" p ".dat")
		}' >>"$CSV"
		log "$scen $dp/$ports offered $r Mpps: $(tail -n 1 "$CSV")"
		sleep 0.2
	done
	return 0
}

START=$SECONDS
for scen in $SCENARIOS; do
	for cfg in $CONFIGS; do
		dp=${cfg%%:*} ports=${cfg#*:}
		# the sockets variant differs only where there is an underlay
		[ "$scen" != geneve ] && [ "${ports%-sock}" != "$ports" ] && continue
		log "== $scen: $dp/$ports =="
		if ! run_config "$scen" "$dp" "$ports"; then
			FAILED=1
			echo "$scen,$dp,$ports,NA,NA,NA,NA,NA,NA" >>"$CSV"
		fi
	done
done
lab_down

# ---- table ------------------------------------------------------------------
awk -F, 'NR == 1 { next }
{ key = $1 "," $4; if ($2 == "ovs" && $3 == "afxdp") ref[key] = $8; row[NR] = $0; n = NR }
END {
	split("g2g nsh geneve", sc, " ")
	title["g2g"] = "(a) guest to guest, one host"
	title["nsh"] = "(b) guest through one NSH node, one host"
	title["geneve"] = "(c) guest to guest on another host (Geneve)"
	for (k = 1; k <= 3; k++) {
		s = sc[k]; printed = 0
		for (i = 2; i <= n; i++) {
			split(row[i], f, ",")
			if (f[1] != s) continue
			if (!printed) {
				printf "\n%s\n", title[s]
				printf "%-9s %-12s %8s %10s %7s %12s %16s\n", "dataplane", "ports", "offered", "delivered", "loss%", "CPU ns/pkt", "Detour/OVS(afxdp)"
				printed = 1
			}
			ratio = "-"
			r = ref[s "," f[4]]
			if (f[2] == "detour" && r != "" && r + 0 > 0 && f[8] + 0 > 0) ratio = sprintf("%.2f", f[8] / r)
			printf "%-9s %-12s %8s %10s %7s %12s %16s\n", f[2], f[3], f[5], f[6], f[7], f[8], ratio
		}
	}
}' "$CSV" | tee "$OUT/table.txt"
echo "(Mpps; CPU = all threads of the data-plane processes per delivered packet; $SECS s per rate, $FLOWS flows; data plane on CPU $DP_CPU, generator on CPU $GEN_CPU)" | tee -a "$OUT/table.txt"

# ---- plot -------------------------------------------------------------------
if [ "$HAVE_GNUPLOT" = 1 ] && ls "$OUT"/data/*.dat >/dev/null 2>&1; then
	gp=$OUT/plot.gp
	{
		echo "set terminal pngcairo size 1500,520 font ',10'"
		echo "set output '$OUT/cpu_per_packet.png'"
		echo "set multiplot layout 1,3 title 'CPU time per delivered packet of the data plane (64-byte UDP, $FLOWS flows)'"
		echo "set logscale y; set grid; set key top right font ',9'"
		echo "set xlabel 'offered Mpps (requested rate)'; set ylabel 'CPU ns / packet'"
		echo "set xrange [0:*]; set offsets 0, graph 0.05, 0, 0"
		for scen in $SCENARIOS; do
			case $scen in
			g2g) t="(a) guest to guest, one host" ;;
			nsh) t="(b) through one NSH node" ;;
			geneve) t="(c) to another host (Geneve)" ;;
			esac
			echo "set title '$t'"
			plot="plot"
			sep=""
			for cfg in $CONFIGS; do
				f=$OUT/data/$scen-${cfg%%:*}-${cfg#*:}.dat
				[ -s "$f" ] || continue
				plot="$plot$sep '$f' using 1:(\$2 > 0 ? \$2 : 1/0) with linespoints lw 2 title '${cfg%%:*} ${cfg#*:}'"
				sep=","
			done
			[ -n "$sep" ] && echo "$plot" || echo "set label 1 'no data' at graph 0.4,0.5; plot 1/0 notitle; unset label 1"
		done
		echo "unset multiplot"
	} >"$gp"
	# pngcairo if there, else the plain png terminal
	if ! gnuplot "$gp" 2>"$OUT/logs/gnuplot.log"; then
		sed -i 's/^set terminal pngcairo.*/set terminal png size 1500,520/' "$gp"
		gnuplot "$gp" 2>>"$OUT/logs/gnuplot.log" || log "gnuplot failed (see $OUT/logs/gnuplot.log)"
	fi
	[ -s "$OUT/cpu_per_packet.png" ] && echo "plot: $OUT/cpu_per_packet.png"
fi
echo "system bench: $((SECONDS - START)) s, results in $OUT (results.csv, table.txt)"
[ "$FAILED" = 0 ] && echo "system bench: every run delivered traffic" || echo "system bench: some runs failed (see above and $OUT/logs)"
exit "$FAILED"
