"""The aiortc cell of `cargo xtask interop` (xtask/INTEROP.md): a controller written with aiortc,
a WebRTC stack that shares no code with str0m or Chromium.

It speaks signaling v1 (crates/proto/SIGNALING.md) to SIGNAL_URL, pairs with the puppet by
CODE, answers the puppet's offer, counts the RTP packets of the AV1 track (aiortc has no AV1
decoder; the packets are counted, not decoded) and sends input events as INPUT.md lays them out
on the puppet's `pointer` and `input` channels. Whether the puppet injected them is checked by
the xtask in the puppet's log, so this script only reports what it sent and received.

Prints `RESULT <check> PASS|FAIL <detail>` lines and `SENT <what>` lines (the events the xtask
then looks for in the puppet's log). STUN: the `ice_servers` of `accepted` when the signaling
server sends some, plus STUN_URL (stun:HOST:PORT) when set. Exit status 0 when every check passed.
"""

import asyncio
import json
import os
import re
import struct
import sys
import time

import websockets
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc import codecs as aiortc_codecs
from aiortc import rtcrtpreceiver
from aiortc.codecs.base import Decoder
from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpCodecParameters
from aiortc.sdp import candidate_from_sdp

CELL = os.environ.get("CELL", "aiortc")
FAILED = False


def result(name, ok, detail=""):
    global FAILED
    if not ok:
        FAILED = True
    print(f"RESULT {CELL}.{name} {'PASS' if ok else 'FAIL'} {' '.join(str(detail).split())}", flush=True)


class CountOnlyDecoder(Decoder):
    """Stands in for an AV1 decoder aiortc does not have: the cell checks RTP, not pictures."""

    def decode(self, encoded_frame):
        return []


def accept_av1():
    """Lets aiortc negotiate AV1 (it offers VP8 and H.264 only) and count its packets."""
    aiortc_codecs.CODECS["video"].insert(
        0,
        RTCRtpCodecParameters(
            mimeType="video/AV1",
            clockRate=90000,
            payloadType=45,
            rtcpFeedback=[RTCRtcpFeedback(type="nack"), RTCRtcpFeedback(type="nack", parameter="pli")],
        ),
    )
    original = rtcrtpreceiver.get_decoder

    def get_decoder(codec):
        if codec.mimeType.lower() == "video/av1":
            return CountOnlyDecoder()
        return original(codec)

    rtcrtpreceiver.get_decoder = get_decoder
    counts = {}
    handle = rtcrtpreceiver.RTCRtpReceiver._handle_rtp_packet

    async def counting(self, packet, arrival_time_ms):
        # Packets, payload bytes, and packets whose AV1 aggregation header (RTP payload format
        # for AV1, 4.4) has N set: the first packet of a coded video sequence (a keyframe).
        entry = counts.setdefault(packet.payload_type, [0, 0, 0])
        entry[0] += 1
        entry[1] += len(packet.payload)
        if packet.payload and packet.payload[0] & 0x08:
            entry[2] += 1
        await handle(self, packet, arrival_time_ms)

    rtcrtpreceiver.RTCRtpReceiver._handle_rtp_packet = counting
    return counts


class InputEncoder:
    """INPUT.md v1: a 13-byte header (tag, seq u32, send time u64 in µs) and the kind's body."""

    def __init__(self):
        self.seq = 0

    def header(self, tag):
        self.seq = (self.seq + 1) & 0xFFFFFFFF
        return struct.pack("<BIQ", tag, self.seq, int(time.time() * 1_000_000))

    def pointer_move(self, x, y):
        return self.header(0x10) + struct.pack("<HH", x, y)

    def key(self, code, down):
        return self.header(0x14 if down else 0x15) + struct.pack("<HB", code, 0)

    def text(self, text):
        data = text.encode("utf-8")
        return self.header(0x16) + struct.pack("<H", len(data)) + data


async def expect(ws, types, timeout=15):
    """The next signaling message of one of `types`; candidates met meanwhile go to `pending`."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no {'/'.join(types)} from the signaling server")
        message = json.loads(await asyncio.wait_for(ws.recv(), left))
        if message.get("type") in types:
            return message
        if message.get("type") == "error":
            raise RuntimeError(f"signaling error: {message}")
        expect.pending.append(message)


expect.pending = []


def ice_servers(accepted):
    servers = []
    for entry in accepted.get("ice_servers") or []:
        urls = entry.get("urls")
        urls = [urls] if isinstance(urls, str) else list(urls or [])
        # aioice takes stun: and turn: over UDP and TCP.
        urls = [u for u in urls if u.startswith(("stun:", "turn:"))]
        if urls:
            servers.append(RTCIceServer(urls=urls, username=entry.get("username"), credential=entry.get("credential")))
    if os.environ.get("STUN_URL"):
        servers.append(RTCIceServer(urls=[os.environ["STUN_URL"]]))
    return servers


async def add_candidate(pc, message):
    line = (message.get("candidate") or "").strip()
    if line.startswith("a="):
        line = line[2:]
    if not line:
        return
    if line.startswith("candidate:"):
        line = line[len("candidate:"):]
    candidate = candidate_from_sdp(line)
    candidate.sdpMid = message.get("mid")
    if candidate.sdpMid is None:
        candidate.sdpMLineIndex = 0
    await pc.addIceCandidate(candidate)


async def main():
    counts = accept_av1()
    code = os.environ["CODE"]
    async with websockets.connect(os.environ["SIGNAL_URL"]) as ws:
        await ws.send(json.dumps({"type": "connect", "code": code, "name": "aiortc"}))
        ringing = await expect(ws, ["ringing"])
        session = ringing["session"]
        accepted = await expect(ws, ["accepted", "rejected"])
        result("paired", accepted["type"] == "accepted", f"session {session}")
        servers = ice_servers(accepted)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        channels = {}
        opened = asyncio.Event()

        @pc.on("datachannel")
        def on_datachannel(channel):
            channels[channel.label] = channel
            if {"input", "pointer"} <= channels.keys():
                opened.set()

        offer = await expect(ws, ["offer"])
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
        av1 = {int(pt) for pt in re.findall(r"a=rtpmap:(\d+) AV1/90000", offer["sdp"])}
        await pc.setLocalDescription(await pc.createAnswer())
        await ws.send(json.dumps({"type": "answer", "session": session, "sdp": pc.localDescription.sdp}))
        for message in expect.pending:
            if message.get("type") == "candidate":
                await add_candidate(pc, message)

        async def trickle():
            async for raw in ws:
                message = json.loads(raw)
                if message.get("type") == "candidate" and message.get("session") == session:
                    await add_candidate(pc, message)

        trickling = asyncio.create_task(trickle())
        try:
            await asyncio.wait_for(opened.wait(), 20)
        except TimeoutError:
            result("connected", False, f"state {pc.connectionState}, channels {sorted(channels)}")
            return
        result("connected", pc.connectionState == "connected", f"servers {[s.urls for s in servers]}")

        encoder = InputEncoder()
        # Pointer moves back and forth (each changes the screen, so the puppet sends a frame)
        # until 100 AV1 packets have arrived or 15 s have passed.
        deadline = time.monotonic() + 15
        step = 0
        while time.monotonic() < deadline and sum(counts.get(pt, [0])[0] for pt in av1) < 100:
            channels["pointer"].send(encoder.pointer_move(2000 + (step % 120) * 500, 30000))
            step += 1
            await asyncio.sleep(1 / 60)
        packets = sum(counts.get(pt, [0, 0])[0] for pt in av1)
        octets = sum(counts.get(pt, [0, 0])[1] for pt in av1)
        starts = sum(counts.get(pt, [0, 0, 0])[2] for pt in av1)
        result(
            "av1_rtp_received",
            packets >= 100 and starts >= 1,
            f"{packets} packets, {octets} payload bytes on payload types {sorted(av1)}, "
            f"{starts} starting a coded video sequence (aggregation header N bit), "
            f"after {step} pointer moves; all payload types {counts}",
        )
        # Then the events the xtask looks for in the puppet's log.
        channels["pointer"].send(encoder.pointer_move(13107, 52428))
        print("SENT pointer 13107 52428", flush=True)
        channels["input"].send(encoder.key(45, True))  # KeyZ
        channels["input"].send(encoder.key(45, False))
        print("SENT key KeyZ", flush=True)
        channels["input"].send(encoder.text("typed by aiortc"))
        print("SENT text typed by aiortc", flush=True)
        # Close only once the channels have handed everything to SCTP; the xtask waits for
        # the puppet's log lines itself.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(c.bufferedAmount for c in channels.values()):
            await asyncio.sleep(0.05)
        await ws.send(json.dumps({"type": "leave", "session": session}))
        trickling.cancel()
        await pc.close()


try:
    asyncio.run(asyncio.wait_for(main(), 60))
except Exception as error:  # noqa: BLE001 (any failure is one FAIL line)
    result("session", False, f"{type(error).__name__}: {error}")
sys.exit(1 if FAILED else 0)
