"""`tusk schema`: print the JSON Schema of the flag snapshot (docs/snapshot.schema.json)."""

from __future__ import annotations

import argparse

from ._common import add_command, add_format


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(
        sub,
        "schema",
        "Print the JSON Schema (draft 2020-12) of the compiled flag snapshot.",
        "tusk schema > snapshot.schema.json",
    )
    add_format(parser, "json", default="json")  # the schema is a JSON document; accepted like everywhere else
    parser.set_defaults(func=run)


def schema_text() -> str:
    import json

    from ..snapshot import snapshot_json_schema

    return json.dumps(snapshot_json_schema(), indent=2, sort_keys=True) + "\n"


def run(args: argparse.Namespace) -> int:
    print(schema_text(), end="")
    return 0
