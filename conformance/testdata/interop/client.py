"""Interop client for wspushd's permessage-deflate (Python websockets).

Usage: python3 client.py ws://HOST:PORT/ws?topics=z SIZE...

Connects with compression (websockets' default: permessage-deflate), and
for each SIZE publishes SIZE bytes of JSON to topic z (websockets
compresses every message once the extension is on), then reads until its
delivery (which must carry the data byte for byte) and the publish's ack.
Prints one JSON line: the negotiated extensions and the sizes echoed.
"""
import asyncio
import json
import sys

import websockets


def data_of(n, i):
    body = " ".join("ABC %d.%02d" % (100 + (k * 7 + i) % 3, (k * 13) % 100) for k in range(n))
    return json.dumps({"v": body[: max(n - 8, 1)]})


async def main(uri, sizes):
    async with websockets.connect(uri, max_size=None, open_timeout=10) as ws:
        ext = ws.response_headers.get("Sec-WebSocket-Extensions", "")
        echoed = []
        for i, n in enumerate(sizes):
            data = data_of(n, i)
            await ws.send('{"op":"publish","topic":"z","id":%d,"data":%s}' % (i + 1, data))
            got_delivery = False
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if msg.get("topic") == "z":
                    if json.dumps(msg["data"]) != data:
                        raise SystemExit("delivery %d: data differs" % (i + 1))
                    got_delivery = True
                elif msg.get("op") == "ack" and msg.get("id") == i + 1:
                    break
                elif msg.get("op") == "error":
                    raise SystemExit("error reply: %r" % msg)
            if not got_delivery:
                raise SystemExit("ack %d before its delivery" % (i + 1))
            echoed.append(len(data))
        print(json.dumps({"extensions": ext, "echoed": echoed}))


asyncio.run(main(sys.argv[1], [int(a) for a in sys.argv[2:]]))
