"""The TuskLang language server (`tusk lsp`): diagnostics, navigation, completion, formatting.

Everything but ``server.py`` is pure: functions from text (and its parsed index) to LSP types, so
each feature is testable without a client. ``server.py`` wires them to pygls.
"""
