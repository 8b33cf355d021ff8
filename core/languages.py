"""A file's language and the category of content it holds (code, tests, docs, config, data, translations),
from maintained tables: `identify` (pre-commit's table of extensions, special file names and shebang
interpreters), then pygments' lexer table (hundreds of languages by file name pattern), then, for a
file neither names, its content's head (an Emacs / vim modeline, a shebang, a format's opening), then,
given the whole text (`language_of_text`), magika's content model (plain text is "text").

    >>> language_of("src/lib.rs"), language_of("build/Dockerfile"), language_of("notes.xyz")
    ('rust', 'dockerfile', 'other')
    >>> language_of("git-svn.perl"), language_of("lib/tk.tcl"), language_of("gitk", "#!/bin/sh\\n# -*- tcl -*-\\n")
    ('perl', 'tcl', 'tcl')
    >>> category_of("src/app.py"), category_of("tests/test_app.py"), category_of("docs/index.rst")
    ('code', 'tests', 'docs')
    >>> category_of("pyproject.toml"), category_of("logo.svg"), category_of("po/de.po")
    ('config', 'data', 'translations')
"""

from __future__ import annotations

import fnmatch
import io
import os
import re
from functools import lru_cache

from identify import identify
from pygments.lexers import find_lexer_class_by_name, find_lexer_class_for_filename
from pygments.lexers._mapping import LEXERS
from pygments.util import ClassNotFound

# The libraries' names for a language -> this project's (one name per language across the stages and the report).
_ALIASES = {
    "c++": "cpp", "c#": "csharp", "f#": "fsharp", "ts": "typescript", "tsx": "typescript", "jsx": "javascript",
    "bash": "shell", "sh": "shell", "zsh": "shell", "csh": "shell", "ksh": "shell", "tcsh": "shell", "ash": "shell",
    "dash": "shell", "bats": "shell", "plain-text": "text", "rst": "restructuredtext", "proto": "protobuf",
    "coffee": "coffeescript", "pyi": "python", "python2": "python", "python3": "python", "jade": "pug",
    "bazel": "starlark", "go-mod": "go-module", "go-sum": "go-module", "pofile": "gettext", "pot": "gettext",
    "java-properties": "properties", "plist": "xml", "msbuild": "xml", "docker": "dockerfile", "make": "makefile",
    "groff": "roff", "pkgconfig": "pkg-config", "js": "javascript", "javascript+ejs": "ejs",
    "html+handlebars": "handlebars", "emacs": "emacs-lisp", "elisp": "emacs-lisp", "objectivec": "objective-c",
    "cargo-lock": "lockfile", "poetry-lock": "lockfile", "uv-lock": "lockfile", "pipfile-lock": "lockfile",
}
# identify gives several tags to some names (`.h`: c and c++, `Cargo.lock`: cargo-lock and toml): the one named first here wins.
_PREFERRED = ("jupyter", "cargo-lock", "poetry-lock", "uv-lock", "pipfile-lock", "c", "python", "shell", "json", "yaml", "toml",
              "xml", "ini", "ruby", "groovy", "html", "scala", "clojure", "c#", "f#", "meson", "gitignore", "c++")
_GENERIC = frozenset({"text", "binary", "header", "executable", "non-executable", "file"})
_ARCHIVES = frozenset({"zip", "gzip", "tar", "bzip2", "xz", "zstd", "7z", "wheel", "jar", "lzma"})

# What both tables leave out, in this project's words (names met in public repositories, by convention, not by repository).
_EXTRA_EXTENSIONS = {
    "css_t": "css", "rdoc": "rdoc", "iml": "xml", "supp": "valgrind", "suppressions": "valgrind",
    "lock": "lockfile", "ac": "m4", "mts": "typescript", "cts": "typescript", "cfg": "ini", "conf": "conf", "cnf": "conf",
    "tmpl": "template", "tpl": "template", "pod": "pod", "texi": "texinfo", "org": "org", "haml": "haml",
    "pdf": "pdf", "xliff": "xliff", "xlf": "xliff", "strings": "strings", "arb": "json", "tsv": "tsv", "ru": "ruby",
    "pro": "pro",  # ProGuard rules and qmake projects, both settings (pygments reads Visual Prolog)
}
_EXTRA_NAMES = {
    "go.work": "go-module", "py.typed": "pep561", "procfile": "procfile", "codeowners": "codeowners",
    "cname": "cname", "podfile": "ruby", "doxyfile": "conf", "manifest": "manifest", "license": "text", "copying": "text",
}
# Files named for what they say, whatever follows (`LICENSE-MIT`, `CHANGES`, `Readme`): prose, when capitalized.
_PROSE_NAME = re.compile(r"(?:readme|changes|changelog|history|news|authors|contributors|maintainers|notice|"
                         r"licen[cs]e|copying|copyright|todo|install|thanks|contributing|credits|patents|hacking|"
                         r"security|code_of_conduct|faq|unlicense)(?:[-._].*)?")
# suffixes that name a stand-in for the file named before them: a template (autoconf, CMake), a test's expected
# output, a distributed default, an example
_LOOK_THROUGH = frozenset({"in", "golden", "dist", "example", "sample", "orig", "expected"})
_SCRIPT_DIRS = frozenset({"bin", "sbin", "script", "scripts", "libexec"})  # where executables without extension are
# pygments' file name patterns that are not `*.ext` (`Makefile.*`, `*Spec.hs`, `bash_*`): a name matching none
# of them is decided by its extension alone, so the lexer table is searched once per extension, not per name.
_IRREGULAR = re.compile("|".join(fnmatch.translate(p) for v in LEXERS.values() for p in v[3]
                                 if not re.fullmatch(r"\*\.[^*?\[\]]+", p)))
# A modeline declares the language in the first lines: Emacs `-*- tcl -*-` / `-*- mode: tcl -*-`, vim `vim: ft=tcl`.
_EMACS_MODE = re.compile(r"-\*-\s*(?:[^:;]*?mode:\s*)?([\w+#-]+)\s*(?:;[^\n]*?)?-\*-", re.I)
_VIM_MODE = re.compile(r"\b(?:vim?|ex):.*?\b(?:ft|filetype|syntax)=([\w+#-]+)")


def _from_tags(tags: set[str]) -> str | None:
    """This project's name for identify's tags of a file name, or None when they name no language."""
    if "image" in tags:
        return "svg" if "svg" in tags else "image"
    if tags & _ARCHIVES:
        return "archive"
    named = tags - _GENERIC
    if not named:
        return None
    tag = next((t for t in _PREFERRED if t in named), None) or min(named)
    return _ALIASES.get(tag, tag)


def _lexer_name(cls) -> str:
    alias = cls.aliases[0] if cls.aliases else cls.name.lower()
    return _ALIASES.get(alias, alias)


@lru_cache(maxsize=4096)
def _pygments(name: str) -> str | None:
    """The language of a file name in pygments' table (searched once per extension), or None."""
    if not _IRREGULAR.match(name):
        stem, dot, ext = name.rpartition(".")
        if not (dot and stem):
            return None
        return _pygments_extension(ext)
    cls = find_lexer_class_for_filename(name)
    return _lexer_name(cls) if cls is not None else None


@lru_cache(maxsize=None)
def _pygments_extension(ext: str) -> str | None:
    cls = find_lexer_class_for_filename("x." + ext)
    return _lexer_name(cls) if cls is not None else None


@lru_cache(maxsize=65536)
def language_of_path(path: str) -> str:
    """What the name alone tells (`language_of` without a head)."""
    dirs, _, name = path.rpartition("/")
    lower = name.lower()
    stem, dot, ext = lower.rpartition(".")
    if ext in ("txt", "in") and (stem.startswith("requirements") or dirs.rpartition("/")[2].lower() == "requirements"):
        return "pip-requirements"  # pins and specifiers: requirements*.txt, requirements/*.in (pip-tools)
    if lower.startswith(".env"):
        return "dotenv"
    if dot and stem and ext in _LOOK_THROUGH:  # `x.cmake.in`, `root.go.golden`, `phpunit.xml.dist`: what it stands for
        inner = language_of_path(path[:-len(ext) - 1])
        if inner != "other":
            return inner
    lang = (_from_tags(identify.tags_from_filename(name) or identify.tags_from_filename(lower)) or _EXTRA_NAMES.get(lower)
            or (_EXTRA_EXTENSIONS.get(ext) if dot and stem else None) or _pygments(name))
    if lang is not None:
        return lang
    if lower.startswith(("dockerfile.", "containerfile.")):
        return "dockerfile"
    if lower.startswith(("makefile", "gnumakefile")):  # `Makefile-all-warn`, `Makefile.win`
        return "makefile"
    if not stem and ext.endswith(("rc", "ignore")):  # .npmrc, .eslintrc, .npmignore, .dockerignore
        return "rc" if ext.endswith("rc") else "ignore"
    if name[:1].isupper() and _PROSE_NAME.fullmatch(lower):  # `INSTALL` is prose, `install` a script
        return "text"
    if not dot and dirs.rpartition("/")[2] in _SCRIPT_DIRS:
        return "script"
    return "other"


@lru_cache(maxsize=1024)
def _interpreter_language(command: str) -> str | None:
    """The language of a shebang's interpreter (`python3.11`, `node`, `wish`): identify's table, then pygments' names."""
    name = command.rpartition("/")[2]
    tags = identify.tags_from_interpreter(name)
    if tags:
        return _from_tags(set(tags))
    try:
        return _lexer_name(find_lexer_class_by_name(name.rstrip("0123456789.")))
    except ClassNotFound:
        return None


def _mode_language(mode: str) -> str | None:
    try:
        return _lexer_name(find_lexer_class_by_name(mode.lower()))
    except ClassNotFound:
        return None


def content_language(head: str) -> str | None:
    """The language a file's first lines declare: a modeline (first two lines), else the shebang's interpreter,
    else the format's own opening: an XML declaration, a JSON object or array, an HTML document type or `<html>`,
    zsh's `#compdef` / `#autoload`.

    >>> content_language("#!/usr/bin/env python3\\nimport os\\n"), content_language("#!/bin/sh\\n# -*- tcl -*-\\n")
    ('python', 'tcl')
    >>> content_language("#!/opt/bin/frobnicate\\n"), content_language("plain words\\n")
    (None, None)
    """
    lines = head[:HEAD_CHARS].split("\n", 2)[:2]
    for line in lines:
        m = _EMACS_MODE.search(line) or _VIM_MODE.search(line)
        if m and (lang := _mode_language(m.group(1))):
            return lang
    if not head.startswith("#!"):
        start = head.lstrip("\ufeff \t\r\n")[:6]
        return ("xml" if start.startswith("<?xml") else "json" if start[:1] in ("{", "[")
                else "html" if _HTML_OPENING.match(head.lstrip("\ufeff \t\r\n"))
                else "shell" if head.startswith(("#compdef", "#autoload")) else None)
    command = identify.parse_shebang(io.BytesIO(lines[0].encode("utf-8", "replace")))
    return _interpreter_language(command[0]) if command else None


_HTML_OPENING = re.compile(r"(?:<!--.*?-->\s*)*<(?:!doctype\s+html\b|html\b)", re.I | re.S)
CONTENT_DECIDES = frozenset({"other", "script"})  # what a name alone tells when the content may tell more
HEAD_CHARS = 8192  # the head of a file that `language_of` reads: modelines and shebangs in its first lines, C++ marks
# A `.h` header is C or C++ (identify tags it both): C++ when its head shows C++ only constructs (GitHub
# linguist's heuristics for `.h`, with `enum class`; not its `__cplusplus >`, which C headers that
# C++ includes test too).
_CPP_MARK = re.compile(r"^\s*(?:namespace\s+[\w:]*\s*\{|template\s*<|using\s+namespace\b|class\s+\w+[^;]*$"
                       r"|#\s*include\s*<[a-z_]+>\s*$|enum\s+class\b|(?:try|constexpr)\b|catch\s*\()"
                       r"|\bstd::|__has_cpp_attribute|^\s*(?:public|private|protected):", re.M)


def content_may_decide(path: str) -> bool:
    """Whether the first lines of the file at `path` may decide its language (its name tells none, or a
    `.h` that is C or C++).

    >>> content_may_decide("gitk"), content_may_decide("include/spdlog/logger.h"), content_may_decide("a.py")
    (True, True, False)
    """
    lang = language_of_path(path)
    return lang in CONTENT_DECIDES or (lang == "c" and path[-2:].lower() == ".h")


def language_of(path: str, head: str | None = None) -> str:
    """The language of `path` ("other" when nothing tells): its name in identify's table, then in
    pygments'; for a name neither knows, the modeline or shebang of `head` (the file's first lines);
    a `.h` header whose head shows C++ (`namespace x {`, `template <`, `std::`, `#include <string>`) is C++.

    A template's `.in` (autoconf, CMake) is looked through; dot-files named `...rc` / `...ignore`
    are settings; an executable without extension in a `bin/`-like directory is a script; a
    `README`, `CHANGES`, `LICENSE-MIT` ... without a known extension is prose ("text").

    >>> language_of("cJSONConfig.cmake.in"), language_of(".eslintrc"), language_of("bin/express")
    ('cmake', 'rc', 'script')
    """
    lang = language_of_path(path)
    if head and lang in CONTENT_DECIDES:
        return content_language(head) or lang
    if head and lang == "c" and path[-2:].lower() == ".h" and _CPP_MARK.search(head[:HEAD_CHARS]):
        return "cpp"
    return lang


def language_of_text(path: str, text: str) -> str:
    """The language of the file at `path` whose whole text (newlines normalized) is `text`: `language_of(path,
    head)`, and for a file that neither its name nor its first lines tell, what magika (Google's content-type
    model, shipped with its package, run offline) recognizes in it: a language when it is sure
    (`CONTENT_MODEL_MIN_SCORE`), else "text" when it sees text (prose, tables, program output), unless the
    file opens on a shebang (a program whose interpreter no table knows stays unknown).

    >>> language_of_text("summary", "linux_literal (pattern: PM_RESUME)\\n-----\\nrg*   0.084 +/- 0.002 (lines: 39)\\n")
    'text'
    """
    lang = language_of(path, text[:HEAD_CHARS])
    if lang not in CONTENT_DECIDES or not text.strip():
        return lang
    seen = _content_model(text)
    # a shebang of an interpreter nobody knows: a program in an unknown language, not plain text
    return lang if seen is None or seen == "text" and text.startswith("#!") else seen


def language_of_blob(path: str, data: bytes) -> str:
    r"""`language_of_text` of a blob's bytes, read as stage 2 reads a blob: UTF-8 (else its name decides),
    CRLF as LF; the one decision stage 1 and stage 2 make per blob version.

    >>> language_of_blob("x.h", b"namespace a {\r\nint f();\r\n}\r\n"), language_of_blob("x.h", b"\xff namespace a {")
    ('cpp', 'c')
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return language_of(path)
    lang = language_of(path, text[:2 * HEAD_CHARS].replace("\r\n", "\n")[:HEAD_CHARS])  # CRLF -> LF at most halves it
    if lang not in CONTENT_DECIDES:
        return lang
    return language_of_text(path, text.replace("\r\n", "\n"))


# magika's score under which its answer for a file that neither name nor first lines told is not taken: its own bar
# is 0.5 for most labels, but such a file is mostly prose or program output, and tables of benchmark timings
# (ripgrep's `benchsuite/runs/*/summary`) score 0.6-0.91 as CMake; the languages it told right on the nine clones
# (a `rakefile`, YAML without extension, Python, HTML) scored 0.97 and more
CONTENT_MODEL_MIN_SCORE = 0.95
CONTENT_MODEL_CHARS = 8192  # at least the 4096 bytes magika reads at each end of a file
_MAGIKA_NAMES = {"txt": "text", "latex": "tex", "ignorefile": "ignore", "cs": "csharp", "rst": "restructuredtext"}


_MODELS: dict[int, object] = {}  # process id -> its model: a forked worker makes its own (onnxruntime's threads do not fork)


def _magika():
    """This process's magika, made when a file first needs it (about 0.7 s: onnxruntime and the model)."""
    pid = os.getpid()
    if pid not in _MODELS:
        from magika import Magika

        _MODELS[pid] = Magika()
    return _MODELS[pid]


def _content_model(text: str) -> str | None:
    """magika's language of `text` (see `language_of_text`), None when it sees no text."""
    if len(text) > 2 * CONTENT_MODEL_CHARS:  # the model reads the first and last 4 KiB: a long file is not copied whole
        text = text[:CONTENT_MODEL_CHARS] + text[-CONTENT_MODEL_CHARS:]
    result = _magika().identify_bytes(text.encode("utf-8", "surrogatepass"))
    if not result.output.is_text:
        return None
    label = str(result.output.label)
    if label == "txt" or result.score < CONTENT_MODEL_MIN_SCORE:
        return "text"
    return _MAGIKA_NAMES.get(label, _ALIASES.get(label, label))


CATEGORIES = ("code", "tests", "docs", "config", "data", "translations")
_DOCS = frozenset({"markdown", "restructuredtext", "text", "tex", "roff", "rdoc", "asciidoc", "org", "pod", "texinfo",
                   "mdx"})
_CONFIG = frozenset({"json", "yaml", "toml", "ini", "xml", "dotenv", "gitignore", "gitattributes",
                     "gitmodules", "lockfile", "cmake", "gradle", "makefile", "dockerfile", "starlark",
                     "go-module", "meson", "manifest", "pep561", "procfile", "codeowners", "cname", "editorconfig",
                     "mailmap", "rc", "ignore", "pip-requirements", "conf", "properties", "pkg-config", "hcl",
                     "valgrind", "flake8", "jenkins", "csproj", "meson-options", "cfg", "nginx", "apacheconf", "pro"})
_BUILD_SCRIPTS = (".gradle", ".gradle.kts", ".sbt", ".sln")  # build settings written in a language (Groovy, Kotlin, Scala)
_DATA = frozenset({"csv", "tsv", "svg", "image", "pdf", "archive", "other", "icon", "font", "audio", "video"})
_TRANSLATIONS = frozenset({"gettext", "xliff", "strings"})
_TEST_DIRS = frozenset({"test", "tests", "testing", "__tests__", "spec", "specs", "testdata", "fuzzing", "t",
                        "test-data", "unittests", "unittest", "integration_tests", "e2e"})
_LOCALE_DIRS = frozenset({"po", "locale", "locales", "i18n", "l10n", "translations", "lang"})
# the formats message catalogs are written in (under a locale directory): `locales/fr.json`, `i18n/de.properties`
_MESSAGE_FORMATS = frozenset({"json", "yaml", "properties", "xml", "text", "ini", "toml", "other"})
# Test files by name, per ecosystem: test_x.py, x_test.go, x_spec.rb, x.test.js, x.spec.ts, FooTest.java, FooTests.cs, FooSpec.scala
_TEST_NAME = re.compile(r"test_.*|.*_(?:test|tests|spec)|.*\.(?:test|spec)|tests?|conftest")
_TEST_CLASS = re.compile(r"(?:.*[a-z0-9])?(?:Tests?|Spec|IT)")
_CLASS_LANGUAGES = frozenset({"java", "kotlin", "scala", "csharp", "fsharp", "groovy", "swift", "objective-c",
                              "cpp", "php", "dart"})


def category_of(path: str, language: str | None = None) -> str:
    """The kind of content at `path`, one of CATEGORIES: tests (a test directory of any ecosystem,
    `t/` included, or a test file name: `test_x.py`, `x_test.go`, `x.spec.js`, `FooTest.java`),
    translations (gettext catalogs, XLIFF, `.strings`; any file under `po/`, `locale/`, `i18n/`),
    docs (prose: Markdown, reST, plain text, TeX, man pages), config (settings formats, build files),
    data (tables, images, archives, unknown formats), else code (templates and scripts included).
    `language` is the file's language when known from its content (`language_of(path, head)`).

    >>> category_of("src/test/java/org/FooTest.java"), category_of("t/t0001-init.sh"), category_of("locale/fr.json")
    ('tests', 'tests', 'translations')
    """
    return _category(path, language or language_of(path))


@lru_cache(maxsize=65536)
def _category(path: str, lang: str) -> str:
    parts = path.split("/")
    name, dirs = parts[-1], [d.lower() for d in parts[:-1]]
    if lang in _TRANSLATIONS or (lang in _MESSAGE_FORMATS and not _LOCALE_DIRS.isdisjoint(dirs)):
        return "translations"
    stem = name.rsplit(".", 1)[0]
    if not _TEST_DIRS.isdisjoint(dirs) or (lang not in _CONFIG and lang not in _DOCS and (  # not `test.yml`
            _TEST_NAME.fullmatch(stem.lower()) or (lang in _CLASS_LANGUAGES and _TEST_CLASS.fullmatch(stem)))):
        return "tests"
    if lang in _DOCS:
        return "docs"
    if lang in _CONFIG or lang.endswith(("ignore", "rc")) or name.endswith(_BUILD_SCRIPTS):
        return "config"
    if lang in _DATA:
        return "data"
    return "code"
