"""Latency from an edit to its diagnostics in `tusk lsp`, on a 2,000-line file, over real stdio.

Each round sends one `didChange` (a one-character edit alternating between valid and an
unknown-variable error) and times until the server publishes diagnostics for that version.
The default debounce (25 ms) is included in the numbers. Target: median under 100 ms.

    python benchmarks/bench_lsp.py [--rounds 40]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

from lsprotocol import types
from pygls.protocol import default_converter
from pytest_lsp import LanguageClient
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

FLAG = """        flag_{i} = {{
            enabled = true
            rollout_strategy = "percentage"
            rollout_percentage = {pct}
            targeting = {{
                user_segments = ["early_adopters", "premium_users"]
                environments = ["staging", "production"]
            }}
            metadata = {{
                description = "Flag number {i} 🚀"
                owner = "team-{team}"
            }}
        }}
"""


def document(lines: int) -> str:
    parts = ["feature_flags = {\n    flags = {\n"]
    count = 2
    i = 0
    while count < lines - 2:
        block = FLAG.format(i=i, pct=i % 100, team=i % 7)
        parts.append(block)
        count += block.count("\n")
        i += 1
    parts.append("    }\n}\n")
    return "".join(parts)


async def run(rounds: int, lines: int) -> list[float]:
    published: dict[int, float] = {}

    def on_publish(client: LanguageClient, params: types.PublishDiagnosticsParams) -> None:
        if params.version is not None:
            published[params.version] = time.perf_counter()

    client = LanguageClient(converter_factory=default_converter)
    register_lsp_features(client, {**DEFAULT_CLIENT_FEATURES, types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS: on_publish})

    await client.start_io(sys.executable, "-c", "import sys; from tusklang.cli import main; sys.exit(main(['lsp']))")
    await client.initialize_session(types.InitializeParams(capabilities=types.ClientCapabilities()))
    uri = "file:///tmp/bench-lsp.tsk"
    text = document(lines)
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="tusk", version=1, text=text)
        )
    )
    while 1 not in published:
        await asyncio.sleep(0.005)
    target_line = text.count("\n", 0, text.index("rollout_percentage = 7"))
    column = len("            rollout_percentage = ")
    latencies = []
    for version in range(2, rounds + 2):
        new = "$x" if version % 2 == 0 else "70"  # `$x` is an unknown variable: one diagnostic
        old_end = column + (2 if version > 2 else 1)
        sent = time.perf_counter()
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(
                            start=types.Position(line=target_line, character=column),
                            end=types.Position(line=target_line, character=old_end),
                        ),
                        text=new,
                    )
                ],
            )
        )
        while version not in published:
            await asyncio.sleep(0.001)
        latencies.append((published[version] - sent) * 1000)
        await asyncio.sleep(0.05)  # a typing pause, so each edit is measured on its own
    await client.shutdown_session()
    await client.stop()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--lines", type=int, default=2000)
    args = parser.parse_args()
    latencies = asyncio.run(run(args.rounds, args.lines))
    ordered = sorted(latencies)
    print(f"file: {args.lines} lines, {args.rounds} edits (debounce 25 ms included)")
    print(
        f"median {statistics.median(ordered):.1f} ms  p90 {ordered[int(len(ordered) * 0.9)]:.1f} ms  "
        f"max {ordered[-1]:.1f} ms"
    )


if __name__ == "__main__":
    main()
