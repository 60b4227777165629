#!/usr/bin/python3
# permessage-deflate interop with Python's websockets (Debian's
# python3-websockets, run with /usr/bin/python3).
#
#   INTEROP_PORT=13590 /usr/bin/python3 python_client.py
#
# The frames each connection's extension compresses and inflates are
# logged (PerMessageDeflate.encode / decode wrapped), so the test sees
# which messages went compressed each way. Prints "ok - ..." /
# "not ok - ..." lines, then "N passed, N failed".

import asyncio
import hashlib
import json
import os
import sys
import traceback

import websockets
from websockets.extensions import permessage_deflate as pmd
from websockets.frames import OP_TEXT, OP_BINARY, OP_CONT

PORT = int(os.environ.get("INTEROP_PORT", "13590"))
BASE = ("permessage-deflate; server_no_context_takeover; "
        "client_no_context_takeover")

passed = 0
failed = 0


def ok(cond, name, detail=None):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok - python websockets: {name}", flush=True)
    else:
        failed += 1
        extra = f" ({detail})" if detail is not None else ""
        print(f"not ok - python websockets: {name}{extra}", flush=True)
    return cond


# --- the frames, as the extension sees them ---------------------------------

_decode = pmd.PerMessageDeflate.decode
_encode = pmd.PerMessageDeflate.encode


def decode(self, frame, *, max_size=None):
    if frame.opcode in (OP_TEXT, OP_BINARY, OP_CONT):
        self.__dict__.setdefault("down", []).append(
            (frame.opcode, frame.rsv1, len(frame.data), frame.fin))
    return _decode(self, frame, max_size=max_size)


def encode(self, frame):
    out = _encode(self, frame)
    if out.opcode in (OP_TEXT, OP_BINARY, OP_CONT):
        self.__dict__.setdefault("up", []).append(
            (out.opcode, out.rsv1, len(out.data), out.fin))
    return out


pmd.PerMessageDeflate.decode = decode
pmd.PerMessageDeflate.encode = encode


def ext(ws):
    """The connection's PerMessageDeflate, or None."""
    for e in ws.extensions:
        if isinstance(e, pmd.PerMessageDeflate):
            return e
    return None


def down(ws):
    e = ext(ws)
    return e.__dict__.get("down", []) if e else []


def up(ws):
    e = ext(ws)
    return e.__dict__.get("up", []) if e else []


def noise(n, seed="n"):
    s = ""
    i = 0
    while len(s) < n:
        s += hashlib.sha256(f"{seed}{i}".encode()).hexdigest()
        i += 1
    return s[:n]


async def connect(path="/ws", **kw):
    ws = await websockets.connect(f"ws://127.0.0.1:{PORT}{path}",
                                  max_size=2 ** 21, **kw)
    welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
    if welcome.get("type") != "welcome":
        raise RuntimeError(f"no welcome: {welcome}")
    ws.relay_id = welcome["connectionId"]
    return ws


async def call(ws, msg):
    await ws.send(json.dumps(msg))
    return json.loads(await asyncio.wait_for(ws.recv(), 10))


def answer(ws):
    return ws.response_headers.get("Sec-WebSocket-Extensions")


# --- the tests ---------------------------------------------------------------

async def negotiation():
    ws = await connect()
    offer = ws.request_headers.get("Sec-WebSocket-Extensions")
    ok(offer == "permessage-deflate; client_max_window_bits",
       "default offer", offer)
    ok(answer(ws) == BASE, "default offer: the answer", answer(ws))
    e = ext(ws)
    ok(e is not None and e.remote_no_context_takeover
       and e.local_no_context_takeover
       and e.remote_max_window_bits == 15 and e.local_max_window_bits == 15,
       "websockets settled: no context takeover either way, 15 bits",
       repr(e))
    await ws.close()

    factory = pmd.ClientPerMessageDeflateFactory(
        server_no_context_takeover=True, client_no_context_takeover=True,
        server_max_window_bits=10, client_max_window_bits=9)
    ws = await connect(extensions=[factory])
    ok(answer(ws) == BASE + "; server_max_window_bits=10; "
       "client_max_window_bits=9", "all parameters: the answer", answer(ws))
    e = ext(ws)
    ok(e is not None and e.remote_max_window_bits == 10
       and e.local_max_window_bits == 9,
       "all parameters: 10 bits from the server, 9 to it", repr(e))
    text = noise(3000)
    echo = await call(ws, {"type": "chat", "text": text})
    ok(echo["text"] == text and down(ws)[-1][1],
       "all parameters: a compressed echo, inflated with a 2^10 window")
    await ws.close()

    ws = await connect(extensions=[pmd.ClientPerMessageDeflateFactory(
        server_max_window_bits=8)])
    ok(answer(ws) is None and ext(ws) is None,
       "server_max_window_bits=8: declined, no extension", answer(ws))
    echo = await call(ws, {"type": "chat", "text": "y" * 2000})
    ok(echo["text"] == "y" * 2000,
       "server_max_window_bits=8: plain messages work")
    await ws.close()

    ws = await connect(compression=None)
    ok(ws.request_headers.get("Sec-WebSocket-Extensions") is None
       and answer(ws) is None, "compression=None: no extension")
    await ws.close()

    ws = await connect("/ws-nodeflate")
    ok(answer(ws) is None and ext(ws) is None,
       "ws_relay_deflate off: the offer is declined")
    await ws.close()


async def sizes():
    ws = await connect()
    await ws.send(json.dumps({"type": "chat", "text": "x"}))
    fixed = len((await asyncio.wait_for(ws.recv(), 5)).encode()) - 1

    for n in (10, 255 - fixed, 256 - fixed, 1000, 20000, 200000, 900000):
        text = noise(n) if n > 1000 else "x" * n
        before = len(up(ws))
        echo = await call(ws, {"type": "chat", "text": text})
        sent = up(ws)[before]
        got = down(ws)[-1]
        ok(echo["text"] == text, f"compressed chat of {n} bytes: echoed")
        ok(sent[1] and sent[0] == OP_TEXT,
           f"compressed chat of {n} bytes: sent with RSV1")
        echo_len = fixed + n
        ok(bool(got[1]) == (echo_len >= 256),
           f"echo of about {echo_len} bytes: "
           + ("compressed" if echo_len >= 256 else "plain"), got)

    await ws.send(b'{"type":"ping"}')
    pong = json.loads(await asyncio.wait_for(ws.recv(), 5))
    ok(pong["type"] == "pong" and up(ws)[-1][:2] == (OP_BINARY, True),
       "a compressed binary message: pong")
    await ws.close()

    # uncompressed messages: a connection without the extension
    ws = await connect(compression=None)
    for n in (10, 5000, 100000):
        text = noise(n, "u")
        echo = await call(ws, {"type": "chat", "text": text})
        ok(echo["text"] == text,
           f"uncompressed chat of {n} bytes, no extension: echoed plain")
    await ws.close()


async def fragments():
    ws = await connect()
    text = noise(30000)
    data = json.dumps({"type": "chat", "text": text})
    cuts = [0, 7, 10000, 10001, 25000, len(data)]
    before = len(up(ws))
    await ws.send([data[cuts[i]:cuts[i + 1]] for i in range(len(cuts) - 1)])
    echo = json.loads(await asyncio.wait_for(ws.recv(), 10))
    frames = up(ws)[before:]
    ok(echo["text"] == text, "a compressed message in 5 fragments: echoed")
    # websockets ends an iterable with an empty final fragment
    ok(len(frames) >= 5 and frames[0][:2] == (OP_TEXT, True)
       and all(f[:2] == (OP_CONT, False) for f in frames[1:])
       and frames[-1][3], "RSV1 on the first fragment only", frames)
    ok(down(ws)[-1][1], "the echo comes back compressed")
    await ws.close()


async def context_takeover():
    ws = await connect()
    text = noise(4000)
    sent, got = [], []
    for i in range(3):
        before = len(up(ws))
        echo = await call(ws, {"type": "chat", "text": text})
        ok(echo["text"] == text, f"repeat {i + 1}: echoed")
        sent.append(up(ws)[before][2])
        got.append(down(ws)[-1][2])
    ok(all(n > sent[0] - 10 for n in sent),
       "websockets compresses each message alone (client_no_context_takeover)",
       sent)
    ok(all(n > got[0] - 10 for n in got),
       "the server compresses each message alone "
       "(server_no_context_takeover)", got)
    await ws.close()


async def fan_out():
    a = await connect()
    b = await connect(extensions=[pmd.ClientPerMessageDeflateFactory(
        server_max_window_bits=11)])
    plain = await connect(compression=None)
    sender = await connect()

    for ws in (a, b, plain):
        r = await call(ws, {"type": "register", "userId": "py-u1"})
        ok(r["status"] == "success", "register py-u1")
    await call(sender, {"type": "register", "userId": "py-u2"})

    data = {"text": noise(6000), "list": list(range(200))}
    res = await call(sender, {"type": "notification", "targetUserId": "py-u1",
                              "action": "big", "data": data})
    ok(res.get("connections") == 3, "notification_result: 3 connections", res)

    for ws, name, compressed in ((a, "15-bit", True), (b, "11-bit", True),
                                 (plain, "plain", False)):
        n = json.loads(await asyncio.wait_for(ws.recv(), 5))
        ok(n["type"] == "notification" and n["sender"] == "py-u2"
           and n["data"] == data,
           f"fan-out: the {name} connection gets the notification")
        if compressed:
            ok(down(ws)[-1][1], f"fan-out: compressed for the {name} connection")
        else:
            ok(ext(ws) is None, f"fan-out: plain for the {name} connection")

    chat = noise(2000, "c")
    await call(sender, {"type": "chat", "targetUserId": "py-u1", "text": chat})
    for ws in (a, b, plain):
        got = json.loads(await asyncio.wait_for(ws.recv(), 5))
        ok(got["text"] == chat, "fan-out: a chat reaches each connection")

    for ws in (a, b, plain, sender):
        await ws.close()


async def main():
    for test in (negotiation, sizes, fragments, context_takeover, fan_out):
        try:
            await asyncio.wait_for(test(), 60)
        except Exception:
            ok(False, f"{test.__name__} ran to the end",
               traceback.format_exc().strip().replace("\n", " | "))
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
