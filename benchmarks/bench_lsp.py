"""`tusk lsp` over real stdio: how soon diagnostics follow an edit, and how long requests wait while it lints.

1. Schema diagnostics on a 2,000-line flag project: each round sends one `didChange` (a one-line edit
   that alternates between a valid `rollout_percentage` and one over 100, a schema error, TSK303) and
   times until the server publishes diagnostics for that version. The default debounce (25 ms) is
   included. Target: median under 100 ms.
2. Requests on a 20,000-line flag file while it is being linted: edits arrive every 150 ms (each one
   restarts the lint of about a second; most change a value, every fourth adds a line), and between
   them hover, documentSymbol, completion and definition requests are timed from send to answer.
   Target: none waits more than 200 ms.

    python benchmarks/bench_lsp.py [--rounds 40] [--requests 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from typing import Any

FLAG = """        flag_{i} = {{
            enabled = true
            rollout_strategy = "percentage"
            rollout_percentage = {pct}
            targeting = {{
                user_segments = ["early_adopters", "premium_users"]
                environments = ["staging", "production"]
            }}
            fallback = false
            metadata = {{
                description = "Flag number {i} 🚀"
                owner = "team-{team}"
            }}
        }}
"""
DEFINITIONS = """    }
    targeting = {
        user_segments = {
            early_adopters = { criteria = { beta_opt_in = true } }
            premium_users = { criteria = { account_tier = "premium" } }
        }
        environments = {
            staging = { auto_enable = true }
            production = { auto_enable = false }
        }
    }
}
"""
EDIT_LINE = "rollout_percentage = 7\n"


def document(lines: int) -> str:
    parts = ["feature_flags = {\n    flags = {\n"]
    count = 2
    i = 0
    while count < lines - DEFINITIONS.count("\n"):
        block = FLAG.format(i=i, pct=i % 100, team=i % 7)
        parts.append(block)
        count += block.count("\n")
        i += 1
    parts.append(DEFINITIONS)
    return "".join(parts)


class Session:
    """A bare JSON-RPC client over the server's stdio: times are taken when a response's bytes have
    arrived, so they hold the server's work and none of a client library's (structuring 5,000 outline
    symbols into objects takes a Python client longer than the server takes to send them)."""

    def __init__(self) -> None:
        self.published: dict[int, tuple[float, list[dict[str, Any]]]] = {}
        self.answers: dict[int, asyncio.Future[float]] = {}
        self.next_id = 0

    async def start(self, uri: str, text: str) -> None:
        self.uri = uri
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import sys; from tusklang.cli import main; sys.exit(main(['lsp']))",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=64 * 1024 * 1024,
        )
        self.reader = asyncio.get_running_loop().create_task(self._read())
        await self.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
        self.notify("initialized", {})
        self.notify(
            "textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "tusk", "version": 1, "text": text}}
        )
        while 1 not in self.published:
            await asyncio.sleep(0.005)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            length = 0
            while True:
                line = await self.proc.stdout.readline()
                if not line:
                    return
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
                if line in (b"\r\n", b"\n"):
                    break
            body = await self.proc.stdout.readexactly(length)
            arrived = time.perf_counter()
            message = json.loads(body)
            if message.get("method") == "textDocument/publishDiagnostics":
                params = message["params"]
                if params["uri"] == self.uri and params.get("version") is not None:
                    self.published[params["version"]] = (arrived, params["diagnostics"])
            elif "id" in message and message["id"] in self.answers:
                self.answers.pop(message["id"]).set_result(arrived)
            elif "id" in message and "method" in message:  # a request from the server: answer null
                self._send({"jsonrpc": "2.0", "id": message["id"], "result": None})

    def _send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        body = json.dumps(message).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    async def request(self, method: str, params: dict[str, Any]) -> float:
        """Milliseconds from sending the request to the last byte of its answer."""
        self.next_id += 1
        answer = self.answers[self.next_id] = asyncio.get_running_loop().create_future()
        started = time.perf_counter()
        self._send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        return (await answer - started) * 1000

    def edit(self, version: int, line: int, column: int, old_length: int, new: str) -> None:
        change = {
            "range": {
                "start": {"line": line, "character": column},
                "end": {"line": line, "character": column + old_length},
            },
            "text": new,
        }
        self.notify(
            "textDocument/didChange",
            {"textDocument": {"uri": self.uri, "version": version}, "contentChanges": [change]},
        )

    async def stop(self) -> None:
        await self.request("shutdown", {})
        self.notify("exit", {})
        await self.proc.wait()
        self.reader.cancel()


async def schema_latency(rounds: int, lines: int) -> list[float]:
    session = Session()
    text = document(lines)
    await session.start("file:///tmp/bench-lsp-2000.tsk", text)
    line = text.count("\n", 0, text.index(EDIT_LINE))
    column = len("            rollout_percentage = ")
    latencies = []
    current = "7"
    for version in range(2, rounds + 2):
        new = "170" if version % 2 == 0 else "70"  # 170: TSK303, a schema error
        sent = time.perf_counter()
        session.edit(version, line, column, len(current), new)
        current = new
        while version not in session.published:
            await asyncio.sleep(0.001)
        at, found = session.published[version]
        codes = [d["code"] for d in found]
        assert codes == (["TSK303"] if new == "170" else []), codes
        latencies.append((at - sent) * 1000)
        await asyncio.sleep(0.1)  # a typing pause, so each edit is measured on its own
    await session.stop()
    return latencies


async def request_waits(requests: int, lines: int) -> tuple[dict[str, list[float]], float, int]:
    """Per method, the milliseconds from sending each request to its answer, while edits keep the linter busy."""
    session = Session()
    text = document(lines)
    await session.start("file:///tmp/bench-lsp-20000.tsk", text)
    first_lint = session.published[1][0]
    line = text.count("\n", 0, text.index(EDIT_LINE))
    column = len("            rollout_percentage = ")
    doc = {"uri": session.uri}
    params = {
        "hover": {"textDocument": doc, "position": {"line": line, "character": 14}},
        "documentSymbol": {"textDocument": doc},
        "completion": {"textDocument": doc, "position": {"line": line + 4, "character": 16}},
        # inside "early_adopters"
        "definition": {"textDocument": doc, "position": {"line": line + 2, "character": 35}},
    }

    async def one(kind: str) -> float:
        return await session.request(f"textDocument/{kind}", params[kind])

    kinds = ["hover", "documentSymbol", "completion", "definition"]
    waits: dict[str, list[float]] = {kind: [] for kind in kinds}
    current = "7"
    version = 1
    for n in range(requests):
        if n % 2 == 0:  # an edit every other request: the linter never catches up
            version += 1
            if n % 8 == 6:  # now and then a new line (below the lines asked about): every later line moves
                session.edit(version, line + 5, 0, 0, "            // a note\n")
            else:
                new = str(10 + version % 80)
                session.edit(version, line, column, len(current), new)
                current = new
        await asyncio.sleep(0.075)
        kind = kinds[n % len(kinds)]
        waits[kind].append(await one(kind))
    # A request about text typed since the last index has no answer in it: it waits for the new one.
    fresh = []
    for n in range(6):
        version += 1
        session.edit(version, line + 5, 0, 0, f"            $v{n} = {n}\n")
        fresh.append(
            await session.request(
                "textDocument/hover", {"textDocument": doc, "position": {"line": line + 5, "character": 13}}
            )
        )
        await asyncio.sleep(0.3)
    waits["hover (just typed)"] = fresh
    await session.stop()
    return waits, first_lint, version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--big", type=int, default=20000)
    args = parser.parse_args()

    latencies = sorted(asyncio.run(schema_latency(args.rounds, args.lines)))
    print(f"schema diagnostics after an edit, {args.lines}-line flag project ({args.rounds} edits, debounce included):")
    print(
        f"  median {statistics.median(latencies):.1f} ms  p90 {latencies[int(len(latencies) * 0.9)]:.1f} ms  "
        f"max {latencies[-1]:.1f} ms"
    )
    waits, _, edits = asyncio.run(request_waits(args.requests, args.big))
    every = sorted(w for kind, ws in waits.items() for w in ws if kind != "hover (just typed)")
    print(
        f"request waits on a {args.big}-line flag file while it is linted ({edits - 1} edits, {len(every)} requests):"
    )
    for kind, values in waits.items():
        values.sort()
        print(f"  {kind:18} median {statistics.median(values):6.1f} ms  max {values[-1]:6.1f} ms")
    print(
        f"  worst request wait {every[-1]:.1f} ms (median {statistics.median(every):.1f} ms), \"just typed\" aside"
    )


if __name__ == "__main__":
    main()
