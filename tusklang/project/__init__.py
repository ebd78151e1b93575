"""The project loader (stage 4): Settings, `load_project` and the source map.

Every command and the language server read TuskLang projects through here (docs/directives.md,
"Settings and projects"). What a project *means* as flags (schema, lint) is the compiler's:
`tusklang.compiler.check.check_project` is `tusk check`.
"""

from __future__ import annotations

from .dotenv import parse_dotenv, read_env_file
from .errors import InputError
from .loader import FLAG_BLOCKS, FileData, Merged, Project, ProjectFile, load_project
from .settings import Settings
from .sourcemap import Locator, Path

__all__ = [
    "FLAG_BLOCKS",
    "FileData",
    "InputError",
    "Locator",
    "Merged",
    "Path",
    "Project",
    "ProjectFile",
    "Settings",
    "load_project",
    "parse_dotenv",
    "read_env_file",
]
