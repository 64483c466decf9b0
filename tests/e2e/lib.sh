# lib.sh - helpers for the end-to-end lab tests (sourced, not run).
#
# Each test: source this, call `e2e_init`, `lab_up FILE`, then checks that
# print "PASS: test: what" or "FAIL: test: what", and end with `finish`.
# A trap on EXIT (also on INT/TERM) takes the lab down, kills the background
# processes the test started and anything left in the lab's namespaces, and
# removes the test's scratch directory, whether the test passed or not.
#
# Owns: nothing outside the lab of its own prefix (namespaces PREFIX-*,
# /run/detour/lab-PREFIX) and its scratch directory.

set -u

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$E2E_DIR/../.." && pwd)
BIN=${DETOUR_BIN:-$REPO/build/bin}
LAB=$BIN/detour-lab
CTL=$BIN/detourctl
SN_BIN=$BIN/detour-sn
TOPO=$E2E_DIR/topo
PY=/usr/bin/python3 # scapy imports only under the system python
TEST_NAME=$(basename "$0" .sh)${E2E_IO:+ ($E2E_IO)}${E2E_UPLINK:+ (uplink)}${E2E_WORKERS:+ (${E2E_WORKERS} worker$([ "$E2E_WORKERS" = 1 ] || echo s))}
case $BIN in *build-asan*) TEST_NAME="$TEST_NAME (asan)" ;; esac
# E2E_WORKERS=N: every detourd of the lab runs --workers N (default: one per CPU)
if [ -n "${E2E_WORKERS:-}" ]; then
	export DETOUR_LAB_WORKERS=$E2E_WORKERS
fi
# A short prefix unique to this run: the lab's namespaces are PREFIX-NAME.
PREFIX=${E2E_PREFIX:-e$(($$ % 100000))}
STATE=/run/detour/lab-$PREFIX
TMP=
BG_PIDS=()
N_PASS=0
N_FAIL=0

pass() { N_PASS=$((N_PASS + 1)); echo "PASS: $TEST_NAME: $*"; }
fail() { N_FAIL=$((N_FAIL + 1)); echo "FAIL: $TEST_NAME: $*"; }
note() { echo "  # $*"; }

# Shows the tail of a command's output, indented, under a FAIL line.
show_out() { [ -s "$1" ] && tail -n "${2:-15}" "$1" | sed 's/^/  | /'; return 0; }

cleanup() {
	local rc=$? p ns
	trap - EXIT INT TERM
	for p in "${BG_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${BG_PIDS[@]}"; do
		for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	if [ -x "$LAB" ]; then
		"$LAB" --prefix "$PREFIX" down >/dev/null 2>&1 || true
	fi
	# Anything the lab could not remove (a crashed detour-lab, say).
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$PREFIX-"); do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done
	rm -f "/run/detour/$PREFIX-"*.sock 2>/dev/null
	rm -rf "/run/detour/lab-$PREFIX" 2>/dev/null
	[ -n "$TMP" ] && rm -rf "$TMP"
	exit "$rc"
}

# e2e_init: root and binaries are there; scratch dir; cleanup trap.
e2e_init() {
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	TMP=$(mktemp -d "/tmp/detour-e2e-$TEST_NAME.XXXXXX")
	if [ "$(id -u)" != 0 ]; then
		fail "needs root (network namespaces)"
		exit 1
	fi
	local b
	for b in detour-lab detourd detourctl; do
		if [ ! -x "$BIN/$b" ]; then
			fail "$BIN/$b is missing (run make)"
			exit 1
		fi
	done
}

# finish: summary line (not counted) and exit status. Before it, the lab's
# daemon logs are searched for sanitizer reports (DETOUR_BIN=build-asan/bin
# runs the lab on the ASan/UBSan build).
finish() {
	local f
	for f in "$STATE"/*.log; do
		[ -f "$f" ] || continue
		if grep -Eq 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer' "$f"; then
			fail "sanitizer report in $(basename "$f")"
			grep -E -A12 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer' "$f" | head -30 | sed 's/^/  | /'
		fi
	done
	echo "# $TEST_NAME: $N_PASS passed, $N_FAIL failed"
	[ "$N_FAIL" -eq 0 ] && exit 0
	exit 1
}

# lab_up FILE: builds the lab or fails the test (and exits).
# E2E_IO=afxdp|afpacket|auto runs the lab's ports with that I/O backend:
# each host of the topology gets `io: $E2E_IO`. E2E_UPLINK=1: each host
# sends and receives Geneve through an AF_XDP uplink on ul0 (`uplink: ul0`).
lab_up() {
	local file=$1 add=""
	[ -n "${E2E_IO:-}" ] && add=", io: $E2E_IO"
	[ -n "${E2E_UPLINK:-}" ] && add="$add, uplink: ul0"
	if [ -n "$add" ]; then
		file=$TMP/$(basename "$1")
		sed -E "s/(vtep: [^,}]+)/\1$add/" "$1" >"$file"
	fi
	if "$LAB" --prefix "$PREFIX" up "$file" >"$TMP/lab-up.log" 2>&1; then
		pass "lab up ($(basename "$1"))"
	else
		fail "lab up ($(basename "$1"))"
		show_out "$TMP/lab-up.log" 40
		exit 1
	fi
}

# lab_exec NAME CMD...: runs CMD in the namespace of host/guest/node NAME.
lab_exec() {
	local name=$1
	shift
	"$LAB" --prefix "$PREFIX" exec "$name" "$@"
}

# ctl HOST ARGS...: detourctl talking to HOST's detourd.
ctl() {
	local host=$1
	shift
	"$CTL" --socket "/run/detour/$PREFIX-$host.sock" "$@"
}

# bg NAME CMD...: CMD in NAME's namespace in the background; killed at exit.
# Sets BG_PID.
bg() {
	"$LAB" --prefix "$PREFIX" exec "$@" & # a simple command: $! is CMD itself
	BG_PID=$!
	BG_PIDS+=("$BG_PID")
}

# stop_bg PID: stops one background process.
stop_bg() {
	kill -TERM "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

# wait_until TIMEOUT_S CMD...: polls CMD every 0.1 s until it succeeds.
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		[ "$SECONDS" -ge "$deadline" ] && break
		sleep 0.1
	done
	"$@" >/dev/null 2>&1
}

# check DESC CMD...: PASS when CMD exits 0, FAIL (with its output) otherwise.
check() {
	local desc=$1
	shift
	if "$@" >"$TMP/out" 2>&1; then
		pass "$desc"
	else
		fail "$desc (exit $?)"
		show_out "$TMP/out"
	fi
}

# check_not DESC CMD...: PASS when CMD fails.
check_not() {
	local desc=$1
	shift
	if "$@" >"$TMP/out" 2>&1; then
		fail "$desc (command succeeded)"
		show_out "$TMP/out"
	else
		pass "$desc"
	fi
}

# assert DESC TEST-EXPRESSION...: PASS when `[ ... ]` holds.
assert() {
	local desc=$1
	shift
	if [ "$@" ]; then pass "$desc"; else fail "$desc [ $* ]"; fi
}

# ---- traffic ------------------------------------------------------------

# ping_ok FROM DST [COUNT]: all COUNT echo requests answered.
ping_ok() {
	lab_exec "$1" ping -n -q -c "${3:-3}" -i 0.2 -W 1 "$2"
}

# ping_fails FROM DST: not a single answer to 3 requests.
ping_fails() {
	! lab_exec "$1" ping -n -q -c 3 -i 0.2 -W 1 "$2"
}

# make_blob FILE [BYTES]: random content (default 1 MiB).
make_blob() {
	head -c "${2:-1048576}" /dev/urandom >"$1"
}

# same_file A B: byte for byte (sha256).
same_file() {
	[ -f "$1" ] && [ -f "$2" ] &&
		[ "$(sha256sum <"$1" | cut -d' ' -f1)" = "$(sha256sum <"$2" | cut -d' ' -f1)" ]
}

# listening NAME PORT: a TCP socket listens on PORT in NAME's namespace.
listening() {
	[ -n "$(lab_exec "$1" ss -Hltn "sport = :$2" 2>/dev/null)" ]
}

not_listening() { ! listening "$@"; }

# ping_no_loss FROM DST COUNT INTERVAL: every request answered.
ping_no_loss() {
	local out
	out=$(lab_exec "$1" ping -n -q -c "$3" -i "$4" -W 1 "$2" 2>&1)
	echo "$out"
	grep -q " $3 received, 0% packet loss" <<<"$out"
}

# http_serve GUEST IP PORT DIR: a real HTTP server process in GUEST's
# namespace serving DIR; waits until it listens. Sets HTTP_PID.
http_serve() {
	local guest=$1 ip=$2 port=$3 dir=$4
	bg "$guest" "$PY" -m http.server "$port" --bind "$ip" --directory "$dir" \
		>"$TMP/http-$guest-$port.log" 2>&1
	HTTP_PID=$BG_PID
	if ! wait_until 10 listening "$guest" "$port"; then
		fail "HTTP server in $guest on port $port did not start"
		show_out "$TMP/http-$guest-$port.log"
		return 1
	fi
	return 0
}

# http_get FROM URL OUT: curl from FROM's namespace into OUT.
http_get() {
	rm -f "$3"
	lab_exec "$1" curl -sS --fail --max-time "${HTTP_TIMEOUT:-15}" -o "$3" "$2"
}

# http_fetch_same FROM URL OUT ORIG: fetched OUT equals ORIG byte for byte.
http_fetch_same() {
	http_get "$1" "$2" "$3" && same_file "$3" "$4"
}

# ---- counters -------------------------------------------------------------

# node_mode NODE: l2, l3 or nsh, from the lab's record.
node_mode() {
	awk -v n="$1" '$1 == "node" && $2 == n { print $3 }' "$STATE/names"
}

# nft_packets NODE FAMILY TABLE CHAIN [drop]: sum of the counters of that
# chain (with "drop": only of the rules whose verdict is drop).
nft_packets() {
	lab_exec "$1" nft -j list chain "$2" "$3" "$4" | "$PY" -c '
import json, sys
only_drop = len(sys.argv) > 1 and sys.argv[1] == "drop"
total = 0
for item in json.load(sys.stdin).get("nftables", []):
    rule = item.get("rule")
    if not rule:
        continue
    exprs = rule.get("expr", [])
    if only_drop and not any(isinstance(e, dict) and "drop" in e for e in exprs):
        continue
    for e in exprs:
        if isinstance(e, dict) and "counter" in e:
            total += int(e["counter"].get("packets", 0))
print(total)' "${5:-all}"
}

# Python that reads a detour-sn stats file. The schema is detour-sn's; this
# accepts the likely spellings: a total under rx/rx_packets/received (maybe
# nested in a "counters" object), and per-SPI counts as an object keyed by
# SPI or a list of {spi, rx|packets|...} under spi/spis/per_spi/by_spi/paths.
SN_STATS_PY='
import json, sys
what, path = sys.argv[1], sys.argv[2]
d = json.load(open(path))
CNT = ("rx", "rx_packets", "packets", "pkts", "received", "count", "rx_pkts")
def num(v):
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return int(v)
    if isinstance(v, dict):
        for k in CNT:
            if k in v and num(v[k]) is not None:
                return num(v[k])
    return None
def total(o):
    if isinstance(o, dict):
        for k in ("rx", "rx_packets", "received", "rx_pkts", "rx_total"):
            if k in o and num(o[k]) is not None:
                return num(o[k])
        for k in ("counters", "stats", "totals", "total"):
            if k in o:
                t = total(o[k])
                if t is not None:
                    return t
    return None
def spis(o, acc):
    if isinstance(o, dict):
        for k, v in o.items():
            if k.lower() in ("spi", "spis", "per_spi", "by_spi", "paths"):
                if isinstance(v, dict):
                    for s, c in v.items():
                        try:
                            key = int(s, 0)
                        except ValueError:
                            continue
                        acc[key] = acc.get(key, 0) + (num(c) or 0)
                elif isinstance(v, list):
                    for it in v:
                        if isinstance(it, dict) and isinstance(it.get("spi"), int):
                            rest = {a: b for a, b in it.items() if a not in ("spi", "si")}
                            acc[it["spi"]] = acc.get(it["spi"], 0) + (num(rest) or 0)
            else:
                spis(v, acc)
    elif isinstance(o, list):
        for v in o:
            spis(v, acc)
if what == "rx":
    t = total(d)
    if t is None:
        sys.exit("no rx total in " + path)
    print(t)
else:
    acc = {}
    spis(d, acc)
    print(" ".join(str(s) for s, c in sorted(acc.items()) if c > 0))
'

# sn_stats NODE: asks NODE's detour-sn for its counters (SIGUSR1) and prints
# the path of the fresh stats file.
sn_stats() {
	local node=$1 pid f
	f=$STATE/$node.stats
	pid=$("$LAB" --prefix "$PREFIX" pid "$node") || return 1
	rm -f "$f"
	kill -USR1 "$pid" || return 1
	wait_until 5 "$PY" -c 'import json,sys; json.load(open(sys.argv[1]))' "$f" || return 1
	echo "$f"
}

# sn_rx NODE: packets detour-sn has received.
sn_rx() {
	local f
	f=$(sn_stats "$1") || { echo "NA"; return 1; }
	"$PY" -c "$SN_STATS_PY" rx "$f" || { echo "NA"; return 1; }
}

# sn_spis NODE: the SPIs detour-sn has seen packets on (space separated).
sn_spis() {
	local f
	f=$(sn_stats "$1") || return 1
	"$PY" -c "$SN_STATS_PY" spis "$f"
}

# node_count NODE: packets the service node has handled, whatever its mode
# (l2: bridge forward counter; l3: inet forward counter; nsh: detour-sn rx).
node_count() {
	case "$(node_mode "$1")" in
	l2) nft_packets "$1" bridge detour forward ;;
	l3) nft_packets "$1" inet detour forward ;;
	nsh) sn_rx "$1" ;;
	*) echo "NA"; return 1 ;;
	esac
}

# snapshot VAR NODE...: VAR_NODE=count for each node.
snapshot() {
	local var=$1 n c
	shift
	for n in "$@"; do
		c=$(node_count "$n" 2>/dev/null) || c=NA
		printf -v "${var}_${n}" '%s' "$c"
	done
}

# delta OLDVAR NEWVAR NODE: the difference of two snapshots (or -1).
delta() {
	local o n
	o=${1}_$3
	n=${2}_$3
	o=${!o:-NA}
	n=${!n:-NA}
	if [[ $o =~ ^[0-9]+$ && $n =~ ^[0-9]+$ ]]; then
		echo $((n - o))
	else
		echo -1
	fi
}

# ---- detourctl JSON ---------------------------------------------------------

# json_ints_named KEYRE: every integer under a key matching KEYRE (stdin JSON).
json_ints_named() {
	"$PY" -c '
import json, re, sys
pat = re.compile(sys.argv[1], re.I)
out = []
def walk(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if pat.search(k) and isinstance(v, int) and not isinstance(v, bool):
                out.append(v)
            else:
                walk(v)
    elif isinstance(o, list):
        for v in o:
            walk(v)
walk(json.load(sys.stdin))
print(" ".join(str(x) for x in dict.fromkeys(out)))' "$1"
}

# json_macs_named KEYRE: every MAC string under a key matching KEYRE (stdin).
json_macs_named() {
	"$PY" -c '
import json, re, sys
pat = re.compile(sys.argv[1], re.I)
mac = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
out = []
def walk(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if pat.search(k) and isinstance(v, str) and mac.match(v):
                out.append(v.lower())
            else:
                walk(v)
    elif isinstance(o, list):
        for v in o:
            walk(v)
walk(json.load(sys.stdin))
print(" ".join(dict.fromkeys(out)))' "$1"
}

# ---- hosts joined by the underlay (namespace PREFIX-ul, bridge br0) ---------

# ul_capture_start FILE [FILTER]: tcpdump on the underlay bridge br0 into FILE
# (pcap, whole packets, immediate mode, large buffer; default filter: Geneve,
# udp port 6081), in the background; returns once tcpdump listens. Sets
# CAP_PID (and CAP_LOG, its stderr: the "dropped by kernel" count at the end).
ul_capture_start() {
	local file=$1 filter=${2:-udp port 6081}
	CAP_LOG=$file.log
	rm -f "$file" "$CAP_LOG"
	bg ul tcpdump -i br0 -n -s 0 -U --immediate-mode -B 65536 -w "$file" "$filter" \
		>"$CAP_LOG" 2>&1
	CAP_PID=$BG_PID
	if ! wait_until 10 grep -q "listening on br0" "$CAP_LOG"; then
		fail "tcpdump on the underlay did not start"
		show_out "$CAP_LOG"
		return 1
	fi
	return 0
}

# ul_capture_stop: stops the capture of ul_capture_start (its file is then
# complete); fails when tcpdump reports packets dropped by the kernel.
ul_capture_stop() {
	[ -n "${CAP_PID:-}" ] || return 1
	kill -INT "$CAP_PID" 2>/dev/null
	wait "$CAP_PID" 2>/dev/null
	CAP_PID=
	grep -q "^0 packets dropped by kernel" "$CAP_LOG"
}

# ul_fields FILE FILTER FIELD...: `tshark -T fields` of FILE, one line per
# packet matching the display FILTER, fields separated by spaces, first
# occurrence of each field (the outer header for ip.src/ip.dst), empty
# fields as "-".
ul_fields() {
	local file=$1 filter=$2 f args=()
	shift 2
	for f in "$@"; do args+=(-e "$f"); done
	tshark -r "$file" -Y "$filter" -T fields -E occurrence=f -E separator=/t \
		"${args[@]}" 2>/dev/null | awk -F'\t' '{
		for (i = 1; i <= NF; i++) { if ($i == "") $i = "-" }
		$1 = $1; print }'
}

# ul_attach NAME IP/LEN: a namespace PREFIX-NAME of its own on the underlay
# bridge, with interface "eth0" at IP (not a VTEP). Removed by the cleanup.
ul_attach() {
	local ns=$PREFIX-$1 peer="ux$1"
	ip netns add "$ns" &&
		ip link add "$peer" netns "$PREFIX-ul" type veth peer name eth0 netns "$ns" &&
		ip -n "$PREFIX-ul" link set "$peer" master br0 up &&
		ip -n "$ns" addr add "$2" dev eth0 &&
		ip -n "$ns" link set eth0 up &&
		ip -n "$ns" link set lo up
}

# tunnel_counter HOST PEER FIELD: FIELD (rx_pkts, rx_drops, ...) of the row
# of PEER (a host name, or "(unknown)") in HOST's `show tunnels`; 0 when
# there is no such row yet, "NA" when detourctl fails.
tunnel_counter() {
	ctl "$1" --json show tunnels 2>/dev/null | "$PY" -c '
import json, sys
peer, field = sys.argv[1], sys.argv[2]
try:
    rows = json.load(sys.stdin)
except ValueError:
    print("NA"); sys.exit(1)
if isinstance(rows, dict):
    rows = rows.get("tunnels", [])
print(sum(int(r.get(field, 0)) for r in rows if r.get("host") == peer))' "$2" "$3"
}

# uplink_field HOST PEER FIELD: the text of FIELD (uplink, next_hop) of
# PEER's row in HOST's `show tunnels`; "none" when the row has no uplink.
# (Its counters, uplink_rx_pkts and uplink_tx_pkts: tunnel_counter.)
uplink_field() {
	ctl "$1" --json show tunnels 2>/dev/null | "$PY" -c '
import json, sys
peer, field = sys.argv[1], sys.argv[2]
for r in json.load(sys.stdin):
    if r.get("host") == peer:
        print(r[field] if "uplink" in r else "none"); break
else:
    print("none")' "$2" "$3"
}

# stat_counter HOST KEY: the integer KEY at the top level of HOST's
# `show stats` JSON ("drops" sums every reason); "NA" when detourctl fails.
stat_counter() {
	ctl "$1" --json show stats 2>/dev/null | "$PY" -c '
import json, sys
key = sys.argv[1]
try:
    d = json.load(sys.stdin)
except ValueError:
    print("NA"); sys.exit(1)
v = d.get(key, 0)
print(sum(int(x) for x in v.values()) if isinstance(v, dict) else int(v))' "$2"
}

# sn_spi_counts NODE: "SPI COUNT" lines, one per SPI detour-sn on NODE saw.
sn_spi_counts() {
	local f
	f=$(sn_stats "$1") || return 1
	"$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
for s, c in sorted((d.get("spi") or {}).items()):
    print(int(s), int(c))' "$f"
}

# path_spis HOST: "SPI_FWD SPI_REV HOPS" lines of HOST's `show paths`.
path_spis() {
	ctl "$1" --json show paths | "$PY" -c '
import json, sys
for p in json.load(sys.stdin):
    print(p["spi_fwd"], p["spi_rev"], p.get("hops", "").replace(" ", ""))'
}
