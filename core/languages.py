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

import re

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
    "coffee": "coffeescript", "ru": "ruby", "rake": "ruby", "gemspec": "ruby", "groovy": "groovy",
    "vim": "vim", "el": "emacs-lisp", "awk": "awk", "mk": "makefile", "mak": "makefile", "am": "makefile",
    # templates (markup with a template language's code) and style sheets
    "ejs": "ejs", "hbs": "handlebars", "handlebars": "handlebars", "mustache": "mustache", "jade": "pug",
    "pug": "pug", "haml": "haml", "erb": "erb", "j2": "jinja", "jinja": "jinja", "jinja2": "jinja",
    "njk": "nunjucks", "twig": "twig", "liquid": "liquid", "tmpl": "template", "tpl": "template",
    "css_t": "css", "styl": "stylus",
    # prose: man pages (roff, sections 1-9), RDoc, AsciiDoc, Org, POD, Texinfo
    **dict.fromkeys("123456789", "roff"), "man": "roff", "roff": "roff", "rdoc": "rdoc", "adoc": "asciidoc",
    "asciidoc": "asciidoc", "org": "org", "pod": "pod", "texi": "texinfo",
    # settings
    "conf": "conf", "cnf": "conf", "properties": "properties", "pc": "pkg-config", "iml": "xml", "plist": "xml",
    "csproj": "xml", "bzl": "starlark", "hcl": "hcl", "supp": "valgrind", "suppressions": "valgrind",
    "png": "image", "jpg": "image", "jpeg": "image", "gif": "image", "svg": "svg", "ico": "image",
    "webp": "image", "pdf": "pdf", "zip": "archive", "gz": "archive", "tar": "archive", "whl": "archive",
}
_BY_NAME = {
    "makefile": "makefile", "gnumakefile": "makefile", "dockerfile": "dockerfile",
    "cmakelists.txt": "cmake", "gemfile": "ruby", "rakefile": "ruby", "vagrantfile": "ruby",
    "build": "starlark", "workspace": "starlark", "jenkinsfile": "groovy",
    ".gitignore": "gitignore", ".gitattributes": "gitattributes", ".gitmodules": "gitmodules",
    ".env": "dotenv", "license": "text", "copying": "text",
    "containerfile": "dockerfile", "go.mod": "go-module", "go.work": "go-module", "meson.build": "meson",
    "meson_options.txt": "meson", "manifest": "manifest", "py.typed": "pep561", "procfile": "procfile",
    "codeowners": "codeowners", "cname": "cname", "brewfile": "ruby", "podfile": "ruby",
    ".editorconfig": "editorconfig", ".mailmap": "mailmap", ".flake8": "ini",
}
# Files named for what they say, whatever follows (`LICENSE-MIT`, `CHANGES`, `Readme`): prose, when capitalized.
_PROSE_NAME = re.compile(r"(?:readme|changes|changelog|history|news|authors|contributors|maintainers|notice|"
                         r"licen[cs]e|copying|copyright|todo|install|thanks|contributing|credits|patents|hacking|"
                         r"security|code_of_conduct|faq)(?:[-._].*)?")
_SCRIPT_DIRS = frozenset({"bin", "sbin", "script", "scripts", "libexec"})  # where executables without extension are


def language_of(path: str) -> str:
    """The language of `path` ("other" when neither its name nor its extension is known).

    A template's `.in` (autoconf, CMake) is looked through; dot-files named `...rc` / `...ignore`
    are settings; an executable without extension in a `bin/`-like directory is a script; a
    `README`, `CHANGES`, `LICENSE-MIT` ... without a known extension is prose ("text").

    >>> language_of("cJSONConfig.cmake.in"), language_of(".eslintrc"), language_of("bin/express")
    ('cmake', 'rc', 'script')
    """
    dirs, _, name = path.lower().rpartition("/")
    if name in _BY_NAME:
        return _BY_NAME[name]
    if name.startswith(".env."):
        return "dotenv"
    if name.startswith(("dockerfile.", "makefile.")):
        return name.split(".", 1)[0]
    stem, dot, ext = name.rpartition(".")
    if ext in ("txt", "in") and (stem.startswith("requirements") or dirs.rpartition("/")[2] == "requirements"):
        return "pip-requirements"  # pins and specifiers: requirements*.txt, requirements/*.in (pip-tools)
    if dot and stem and ext == "in":
        return language_of(stem)
    lang = _BY_EXTENSION.get(ext, "other") if dot and stem else "other"
    if lang != "other":
        return lang
    if not stem and ext.endswith(("rc", "ignore")):  # .npmrc, .eslintrc, .npmignore, .dockerignore
        return "rc" if ext.endswith("rc") else "ignore"
    if path[-len(name):][:1].isupper() and _PROSE_NAME.fullmatch(name):  # `INSTALL` is prose, `install` a script
        return "text"
    if not dot and dirs.rpartition("/")[2] in _SCRIPT_DIRS:
        return "script"
    return "other"


CATEGORIES = ("code", "tests", "docs", "config", "data")
_DOCS = frozenset({"markdown", "restructuredtext", "text", "tex", "roff", "rdoc", "asciidoc", "org", "pod", "texinfo"})
_CONFIG = frozenset({"json", "yaml", "toml", "ini", "xml", "dotenv", "gitignore", "gitattributes",
                     "gitmodules", "lockfile", "cmake", "gradle", "makefile", "dockerfile", "starlark",
                     "go-module", "meson", "manifest", "pep561", "procfile", "codeowners", "cname", "editorconfig",
                     "mailmap", "rc", "ignore", "pip-requirements", "conf", "properties", "pkg-config", "hcl", "valgrind"})
_DATA = frozenset({"csv", "svg", "image", "pdf", "archive", "other"})
_TEST_DIRS = frozenset({"test", "tests", "testing", "__tests__", "spec", "specs", "testdata", "fuzzing"})


def category_of(path: str) -> str:
    """The kind of content at `path`, one of CATEGORIES: tests (a test directory or a test file
    name such as `test_x.py`, `x_test.go`, `x.spec.js`),
    docs (prose: Markdown, reST, plain text, TeX, man pages), config (settings formats, build files), data
    (tables, images, archives, unknown formats), else code (templates and scripts included)."""
    parts = path.lower().split("/")
    name, dirs = parts[-1], parts[:-1]
    lang = language_of(path)
    stem = name.rsplit(".", 1)[0]
    if any(d in _TEST_DIRS for d in dirs) or (lang not in _CONFIG and lang not in _DOCS and (  # not `test.yml`
            stem.startswith("test_") or stem.endswith(("_test", "_tests")) or stem.endswith((".test", ".spec"))
            or stem in ("test", "tests", "conftest"))):
        return "tests"
    if lang in _DOCS:
        return "docs"
    if lang in _CONFIG:
        return "config"
    if lang in _DATA:
        return "data"
    return "code"
