"""A file's language from its name (the extension, or the whole name for files like `Makefile`),
and the category of content it holds (code, tests, docs, config, data/other).

    >>> language_of("src/lib.rs"), language_of("build/Dockerfile"), language_of("notes.xyz")
    ('rust', 'dockerfile', 'other')
    >>> category_of("src/app.py"), category_of("tests/test_app.py"), category_of("docs/index.rst")
    ('code', 'tests', 'docs')
    >>> category_of("pyproject.toml"), category_of("logo.svg"), category_of("src/app_test.go")
    ('config', 'data', 'tests')
"""

from __future__ import annotations

_BY_EXTENSION = {
    "py": "python", "pyi": "python", "pyx": "cython", "ipynb": "jupyter",
    "rs": "rust", "go": "go", "java": "java", "kt": "kotlin", "kts": "kotlin", "scala": "scala",
    "js": "javascript", "mjs": "javascript", "cjs": "javascript", "jsx": "javascript",
    "ts": "typescript", "mts": "typescript", "cts": "typescript", "tsx": "typescript", "vue": "vue", "svelte": "svelte",
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


CATEGORIES = ("code", "tests", "docs", "config", "data")
_DOCS = frozenset({"markdown", "restructuredtext", "text", "tex"})
_CONFIG = frozenset({"json", "yaml", "toml", "ini", "xml", "dotenv", "gitignore", "gitattributes",
                     "gitmodules", "lockfile", "cmake", "gradle", "makefile", "dockerfile", "starlark"})
_DATA = frozenset({"csv", "svg", "image", "pdf", "archive", "other"})
_TEST_DIRS = frozenset({"test", "tests", "testing", "__tests__", "spec", "specs", "testdata", "fuzzing"})


def category_of(path: str) -> str:
    """The kind of content at `path`, one of CATEGORIES: tests (a test directory or a test file
    name such as `test_x.py`, `x_test.go`, `x.spec.js`),
    docs (prose: Markdown, reST, plain text, TeX), config (settings formats, build files), data
    (tables, images, archives, unknown formats), else code."""
    parts = path.lower().split("/")
    name, dirs = parts[-1], parts[:-1]
    lang = language_of(path)
    stem = name.rsplit(".", 1)[0]
    if (any(d in _TEST_DIRS for d in dirs) or stem.startswith("test_") or stem.endswith(("_test", "_tests"))
            or stem.endswith((".test", ".spec")) or stem in ("test", "tests", "conftest")):
        return "tests"
    if lang in _DOCS:
        return "docs"
    if lang in _CONFIG:
        return "config"
    if lang in _DATA:
        return "data"
    return "code"
