"""Parsing: text to AST (lexer, grammar, nodes, checks) and data back to text (writer)."""
