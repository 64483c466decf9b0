#!/usr/bin/env bash
# ovs-sn.sh - runs Open vSwitch (userspace datapath) as an NSH-aware service
# node inside a network namespace: every NSH frame that comes in on IFACE goes
# back out IFACE with its Service Index decremented by one and its Ethernet
# addresses swapped (source = MAC, destination = the sender's address).
#
#   ovs-sn.sh start NETNS IFACE MAC RUNDIR   start ovsdb-server + ovs-vswitchd
#   ovs-sn.sh stop RUNDIR                    stop them (idempotent)
#   ovs-sn.sh ofctl RUNDIR ARGS...           ovs-ofctl -O OpenFlow13 ARGS on
#                                            the instance's bridge socket
#   ovs-sn.sh vsctl RUNDIR ARGS...           ovs-vsctl on the instance's db
#   ovs-sn.sh count RUNDIR [SPI]             packets the SI flows returned
#                                            (with SPI: the table-0 counter
#                                            flow added by `watch-spi`)
#   ovs-sn.sh watch-spi RUNDIR SPI           adds a per-SPI counter flow
#
# Each instance has its own database, sockets, pid and log files, all inside
# RUNDIR (OVS_RUNDIR/OVS_DBDIR/OVS_LOGDIR point there), so several instances
# and a system Open vSwitch never meet. No systemd: the daemons are started
# by hand with --detach and stopped through their pid files.
#
# Pipeline (OpenFlow 1.3, bridge "br-sn", fail_mode=secure):
#   table 0  priority 1   in_port=IFACE,dl_type=0x894f  -> goto_table:1
#            priority 10  ... ,nsh_spi=S                -> goto_table:1 (watch-spi)
#            anything else: dropped (no flow)
#   table 1  one flow per SI value N = 1..255 (OVS has no "decrement SI"):
#            dl_type=0x894f,nsh_si=N actions=
#              move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[], mod_dl_src:MAC,
#              set_field:N-1->nsh_si, in_port
#            SI 0 frames match nothing and are dropped.
#
# Owns: the processes and files under RUNDIR, and the bridge br-sn inside
# NETNS. Touches nothing else (no offload settings, no system OVS).
set -eu

BR=br-sn
SCHEMA=${OVS_SCHEMA:-/usr/share/openvswitch/vswitch.ovsschema}

die() { echo "ovs-sn: $*" >&2; exit 1; }

usage() {
	sed -n '2,/^set -eu/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' >&2
	exit 2
}

# env_for RUNDIR: exports the per-instance OVS directories.
env_for() {
	export OVS_RUNDIR=$1 OVS_DBDIR=$1 OVS_LOGDIR=$1 OVS_SYSCONFDIR=$1
}

vsctl() { ovs-vsctl --db="unix:$OVS_RUNDIR/db.sock" --timeout=10 "$@"; }
ofctl() {
	local cmd=$1
	shift
	ovs-ofctl -O OpenFlow13 "$cmd" "$OVS_RUNDIR/$BR.mgmt" "$@"
}

# stop_pid NAME: TERM the daemon of pid file RUNDIR/NAME.pid, then KILL.
stop_pid() {
	local f=$OVS_RUNDIR/$1.pid pid
	[ -f "$f" ] || return 0
	pid=$(cat "$f" 2>/dev/null) || return 0
	if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$f"
}

do_stop() {
	local rundir=$1
	[ -d "$rundir" ] || return 0
	env_for "$rundir"
	stop_pid ovs-vswitchd
	stop_pid ovsdb-server
	rm -f "$rundir"/*.ctl "$rundir"/*.mgmt "$rundir"/*.snoop "$rundir/db.sock"
}

do_start() {
	local ns=$1 iface=$2 mac=$3 rundir=$4 n flows ofport
	[[ $mac =~ ^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$ ]] || die "bad MAC '$mac'"
	ip netns exec "$ns" true 2>/dev/null || die "no network namespace '$ns'"
	ip netns exec "$ns" ip link show "$iface" >/dev/null 2>&1 || die "no interface $iface in $ns"
	command -v ovs-vswitchd >/dev/null || die "ovs-vswitchd not found (install openvswitch-switch)"
	mkdir -p "$rundir"
	rundir=$(cd "$rundir" && pwd)
	env_for "$rundir"
	do_stop "$rundir"
	rm -f "$rundir/conf.db" "$rundir"/.conf.db.~lock~
	ovsdb-tool create "$rundir/conf.db" "$SCHEMA"

	# Both daemons in the node's namespace: ovs-vswitchd opens IFACE there.
	ip netns exec "$ns" ovsdb-server "$rundir/conf.db" \
		--remote="punix:$rundir/db.sock" \
		-vconsole:off --unixctl="$rundir/ovsdb-server.ctl" \
		--pidfile="$rundir/ovsdb-server.pid" \
		--log-file="$rundir/ovsdb-server.log" \
		--no-chdir --detach
	vsctl --no-wait init
	ip netns exec "$ns" ovs-vswitchd "unix:$rundir/db.sock" \
		-vconsole:off --unixctl="$rundir/ovs-vswitchd.ctl" \
		--pidfile="$rundir/ovs-vswitchd.pid" \
		--log-file="$rundir/ovs-vswitchd.log" \
		--no-chdir --detach

	vsctl -- add-br "$BR" \
		-- set bridge "$BR" datapath_type=netdev fail_mode=secure \
		protocols=OpenFlow13,OpenFlow14,OpenFlow15 \
		-- add-port "$BR" "$iface" -- set interface "$iface" type=system
	ofport=
	for _ in $(seq 100); do
		ofport=$(vsctl get interface "$iface" ofport 2>/dev/null || true)
		[[ $ofport =~ ^[0-9]+$ ]] && [ "$ofport" -gt 0 ] && break
		sleep 0.05
	done
	if ! [[ $ofport =~ ^[0-9]+$ ]] || [ "$ofport" -le 0 ]; then
		die "port $iface did not get an OpenFlow port number (see $rundir/ovs-vswitchd.log)"
	fi

	flows=$rundir/flows.txt
	{
		echo "table=0,priority=1,in_port=$iface,dl_type=0x894f,actions=goto_table:1"
		for n in $(seq 1 255); do
			echo "table=1,priority=10,dl_type=0x894f,nsh_si=$n,actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],mod_dl_src:$mac,set_field:$((n - 1))->nsh_si,in_port"
		done
	} >"$flows"
	ofctl replace-flows "$flows"
	n=$(ofctl dump-flows 2>/dev/null | grep -c nsh_si= || true)
	[ "$n" -eq 255 ] || die "expected 255 SI flows, found $n"
	echo "ovs-sn: OVS on $ns/$iface (ofport $ofport), 255 SI flows, state in $rundir"
}

# sum of n_packets over the flows that dump-flows prints for ARGS
sum_packets() {
	ofctl dump-flows "$@" | sed -n 's/.*n_packets=\([0-9]*\).*/\1/p' |
		awk '{ s += $1 } END { print s + 0 }'
}

[ $# -ge 2 ] || usage
cmd=$1
shift
case "$cmd" in
start)
	[ $# -eq 4 ] || usage
	do_start "$@"
	;;
stop)
	[ $# -eq 1 ] || usage
	do_stop "$1"
	;;
ofctl)
	env_for "$1"
	shift
	[ $# -ge 1 ] || usage
	ofctl "$@"
	;;
vsctl)
	env_for "$1"
	shift
	vsctl "$@"
	;;
watch-spi)
	[ $# -eq 2 ] || usage
	env_for "$1"
	[[ $2 =~ ^[0-9]+$ ]] || die "bad SPI '$2'"
	ofctl add-flow "table=0,priority=10,dl_type=0x894f,nsh_spi=$2,actions=goto_table:1"
	;;
count)
	env_for "$1"
	if [ $# -ge 2 ]; then
		[[ $2 =~ ^[0-9]+$ ]] || die "bad SPI '$2'"
		sum_packets "table=0,dl_type=0x894f,nsh_spi=$2"
	else
		sum_packets "table=1"
	fi
	;;
*) usage ;;
esac
