"""Upstreams for tests/http_websocket.rs: python ws_upstream.py MODE PORT LOG

fragments  the same library answering each fragment of a message as it
      arrives ("fragment N: LEN bytes"), before the message is whole.
echo  a real WebSocket server (the `websockets` library) echoing every
      message; it logs each handshake's Authorization and each connection's
      close code to LOG.
k8s   a stand-in for a kube-apiserver (which cannot be installed here): the
      same library, speaking the v5/v4.channel.k8s.io sub-protocols of
      `kubectl exec` on .../pods/NAME/exec, answering the pod GET kubectl makes
      first. Each stdin line comes back on stdout ("out: ...") and stderr
      ("err: ..."); when stdin is closed (v5 [255, 0]) or reads "exit", it
      sends a Success status on the error channel and closes.
Raw-socket fakes, only for what a real server does not do:
badaccept  answers the upgrade with a wrong Sec-WebSocket-Accept.
masked     answers correctly, then sends a masked server frame.
spdy       answers `Upgrade: SPDY/3.1` with 101 and echoes raw bytes (no
           SPDY server can be installed here; the gateway relays bytes only).
"""

import asyncio
import base64
import hashlib
import json
import sys

MODE, PORT, LOG = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def log(line):
    with open(LOG, "a") as f:
        f.write(line + "\n")


async def serve_echo():
    from websockets.asyncio.server import serve

    async def handler(ws):
        log("auth=[%s]" % ws.request.headers.get("Authorization", ""))
        try:
            async for msg in ws:
                await ws.send(msg)
        finally:
            log("close=%s" % (ws.close_code,))

    async with serve(handler, "127.0.0.1", PORT, max_size=None):
        await asyncio.Future()


async def serve_fragments():
    from websockets.asyncio.server import serve

    async def handler(ws):
        while True:
            n = 0
            async for fragment in ws.recv_streaming():
                n += 1
                await ws.send("fragment %d: %d bytes" % (n, len(fragment)))

    async with serve(handler, "127.0.0.1", PORT):
        await asyncio.Future()


POD = {
    "kind": "Pod",
    "apiVersion": "v1",
    "metadata": {"name": "web", "namespace": "prod"},
    "spec": {"containers": [{"name": "app", "image": "busybox"}]},
    "status": {"phase": "Running"},
}


# What kubectl's discovery reads before an exec.
DISCOVERY = {
    "/api": {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
    },
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
    "/api/v1": {
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
             "verbs": ["get", "list"], "shortNames": ["po"]},
            {"name": "pods/exec", "singularName": "", "namespaced": True,
             "kind": "PodExecOptions", "verbs": ["create", "get"]},
        ],
    },
}


async def serve_k8s():
    from websockets.asyncio.server import serve
    from websockets.datastructures import Headers
    from websockets.http11 import Response

    def process_request(conn, request):
        log("request %s auth=[%s]" % (request.path, request.headers.get("Authorization", "")))
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        path = request.path.split("?")[0]
        body = json.dumps(DISCOVERY.get(path, POD)).encode()
        headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return Response(200, "OK", headers, body)

    async def handler(ws):
        log("exec %s subprotocol=%s" % (ws.request.path, ws.subprotocol))
        done = False
        async for msg in ws:
            if isinstance(msg, str) or not msg:
                continue
            ch, data = msg[0], msg[1:]
            if ch == 255 and data == b"\x00":
                done = True
            elif ch == 0:
                for line in data.decode().splitlines():
                    if line.strip() == "exit":
                        done = True
                        continue
                    await ws.send(b"\x01out: " + line.encode() + b"\n")
                    await ws.send(b"\x02err: " + line.encode() + b"\n")
            if done:
                status = {"metadata": {}, "status": "Success"}
                await ws.send(b"\x03" + json.dumps(status).encode())
                await ws.close()
                return

    async with serve(
        handler,
        "127.0.0.1",
        PORT,
        subprotocols=["v5.channel.k8s.io", "v4.channel.k8s.io"],
        process_request=process_request,
    ):
        await asyncio.Future()


async def read_head(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    fields = {}
    for line in head.decode().split("\r\n")[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            fields[k.strip().lower()] = v.strip()
    return fields


def accept(key):
    guid = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    return base64.b64encode(hashlib.sha1(key.encode() + guid).digest()).decode()


async def raw(reader, writer):
    fields = await read_head(reader)
    log("auth=[%s]" % fields.get("authorization", ""))
    key = fields.get("sec-websocket-key", "")
    if MODE == "spdy":
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n")
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        writer.close()
        return
    good = accept(key)
    value = good if MODE == "masked" else accept(key + "x")
    writer.write(
        (
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
            "Upgrade: websocket\r\nSec-WebSocket-Accept: %s\r\n\r\n" % value
        ).encode()
    )
    if MODE == "masked":
        # A text frame "hi", masked: servers must not mask.
        key4 = b"\x01\x02\x03\x04"
        payload = bytes(b ^ key4[i % 4] for i, b in enumerate(b"hi"))
        writer.write(b"\x81\x82" + key4 + payload)
    await writer.drain()
    data = await reader.read(65536)
    log("after=%s" % data[:4].hex())
    writer.close()


async def serve_raw():
    server = await asyncio.start_server(raw, "127.0.0.1", PORT)
    async with server:
        await server.serve_forever()


asyncio.run({"echo": serve_echo, "k8s": serve_k8s, "fragments": serve_fragments}.get(MODE, serve_raw)())
