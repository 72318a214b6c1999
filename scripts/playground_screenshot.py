#!/usr/bin/env python3
"""Screenshot of the playground (GET /) after a real streamed answer, in headless Chromium.

Usage: python3 scripts/playground_screenshot.py http://127.0.0.1:PORT out.png [seconds] [mode]

Chromium's --screenshot fires at page load, before any answer streams in, so this drives it over
the DevTools protocol instead: open the page with ?run=1, wait in real time, capture. Needs
Debian's chromium and the websocket-client package from PyPI.
"""
import base64
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import websocket


def main():
    base, out = sys.argv[1], sys.argv[2]
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 30
    mode = sys.argv[4] if len(sys.argv) > 4 else "relaygen"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    profile = tempfile.mkdtemp()
    chrome = subprocess.Popen(["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--remote-debugging-port={port}",
                               f"--user-data-dir={profile}", "--window-size=1100,800", "about:blank"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json"))
                page = next(t for t in targets if t["type"] == "page")
                break
            except (OSError, StopIteration):
                time.sleep(0.2)
        ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60)
        ids = iter(range(1, 1000))

        def call(method, **params):
            i = next(ids)
            ws.send(json.dumps({"id": i, "method": method, "params": params}))
            while True:
                msg = json.loads(ws.recv())
                if msg.get("id") == i:
                    return msg.get("result", {})

        prompt = "Explain step by step how to add 17 and 25."
        call("Page.enable")
        call("Page.navigate", url=f"{base}/?run=1&mode={mode}&prompt={urllib.parse.quote(prompt)}")
        time.sleep(seconds)
        png = call("Page.captureScreenshot", format="png")["data"]
        with open(out, "wb") as f:
            f.write(base64.b64decode(png))
        print(f"wrote {out}")
    finally:
        chrome.terminate()
        chrome.wait(timeout=30)


if __name__ == "__main__":
    main()
