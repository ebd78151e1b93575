"""A warm `tusk check`: a background process that has imported and built what a check needs, and forks a
child for each `tusk check` the `tusk` script hands it.

Why: a 20-line `tusk check` spends ~70% of its time importing pydantic and building the schema's model
classes and validators, the same work every run (issue 19; editors and pre-commit hooks run it on every
save). The child is a copy of the warm process that takes on the calling process's arguments, working
folder, environment, umask and standard streams (passed as file descriptors), runs `tusk check` exactly as
the command line does (`tusklang.cli.main`), and reports the exit code. Nothing carries over from one check
to the next: each child starts from the same warmed state and exits.

- ``wire``: where the server listens and the few bytes client and server exchange;
- ``client``: the `tusk` script's side (standard-library C modules only, so that handing over is cheap);
- ``server``: the warm process, started by the client with the client's interpreter and import path.

docs/lint.md ("A warm check") is the user's description: when the server starts, when it stops, and how
to turn it off (`TUSK_CHECK_SERVER=0`).
"""
