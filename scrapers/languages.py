"""A file's language from its name: the extension, or the whole name for files like `Makefile`.

    >>> language_of("src/lib.rs"), language_of("build/Dockerfile"), language_of("notes.xyz")
    ('rust', 'dockerfile', 'other')
"""

from __future__ import annotations

_BY_EXTENSION = {
    "py": "python", "pyi": "python", "pyx": "cython", "ipynb": "jupyter",
    "rs": "rust", "go": "go", "java": "java", "kt": "kotlin", "kts": "kotlin", "scala": "scala",
    "js": "javascript", "mjs": "javascript", "cjs": "javascript", "jsx": "javascript",
    "ts": "typescript", "tsx": "typescript", "vue": "vue", "svelte": "svelte",
    "c": "c", "h": "c", "cc": "cpp", "cpp": "cpp", "cxx": "cpp", "hpp": "cpp", "hh": "cpp", "hxx": "cpp",
    "m": "objective-c", "mm": "objective-c", "swift": "swift", "cs": "csharp", "fs": "fsharp",
    "rb": "ruby", "php": "php", "pl": "perl", "pm": "perl", "lua": "lua", "r": "r", "jl": "julia",
    "dart": "dart", "ex": "elixir", "exs": "elixir", "erl": "erlang", "hs": "haskell", "ml": "ocaml",
    "clj": "clojure", "zig": "zig", "nim": "nim", "sol": "solidity",
    "sh": "shell", "bash": "shell", "zsh": "shell", "fish": "shell", "ps1": "powershell",
    "bat": "batch", "cmd": "batch",
    "sql": "sql", "proto": "protobuf", "graphql": "graphql", "gql": "graphql",
    "html": "html", "htm": "html", "css": "css", "scss": "scss", "sass": "sass", "less": "less",
    "md": "markdown", "markdown": "markdown", "rst": "restructuredtext", "txt": "text", "tex": "tex",
    "json": "json", "yaml": "yaml", "yml": "yaml", "toml": "toml", "ini": "ini", "cfg": "ini",
    "xml": "xml", "csv": "csv", "lock": "lockfile", "cmake": "cmake", "gradle": "gradle",
    "png": "image", "jpg": "image", "jpeg": "image", "gif": "image", "svg": "svg", "ico": "image",
    "webp": "image", "pdf": "pdf", "zip": "archive", "gz": "archive", "tar": "archive", "whl": "archive",
}
_BY_NAME = {
    "makefile": "makefile", "gnumakefile": "makefile", "dockerfile": "dockerfile",
    "cmakelists.txt": "cmake", "gemfile": "ruby", "rakefile": "ruby", "vagrantfile": "ruby",
    "build": "starlark", "workspace": "starlark", "jenkinsfile": "groovy",
    ".gitignore": "gitignore", ".gitattributes": "gitattributes", ".gitmodules": "gitmodules",
    ".env": "dotenv", "license": "text", "copying": "text",
}


def language_of(path: str) -> str:
    """The language of `path` ("other" when neither its name nor its extension is known)."""
    name = path.rsplit("/", 1)[-1].lower()
    if name in _BY_NAME:
        return _BY_NAME[name]
    if name.startswith(".env."):
        return "dotenv"
    stem, dot, ext = name.rpartition(".")
    if dot and stem:
        return _BY_EXTENSION.get(ext, "other")
    return "other"
