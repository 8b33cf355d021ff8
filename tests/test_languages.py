"""The one language table and the content categories every stage and the report share."""

import pytest

from core.languages import CATEGORIES, category_of, language_of


@pytest.mark.parametrize("path, category", [
    ("src/click/core.py", "code"), ("lib/router/index.js", "code"), ("cJSON.c", "code"),
    ("tests/test_basic.py", "tests"), ("command_test.go", "tests"), ("test/app.router.js", "tests"),
    ("src/parser.spec.ts", "tests"), ("fuzzing/inputs/test1", "tests"), ("tests/conftest.py", "tests"),
    ("README.md", "docs"), ("docs/api.rst", "docs"), ("CHANGES.txt", "docs"), ("LICENSE", "docs"),
    ("pyproject.toml", "config"), (".github/workflows/ci.yml", "config"), ("Cargo.lock", "config"),
    ("package.json", "config"), ("Makefile", "config"),
    ("artwork/logo.svg", "data"), ("data/table.csv", "data"), ("blob.bin", "data"),
    # named for what they are, not data (files of the repositories in shared/repos)
    ("bin/express", "code"), ("examples/auth/views/login.ejs", "code"), ("views/list.jade", "code"),
    ("views/edit.hbs", "code"), ("zsh_template.tmpl", "code"), ("static/click.css_t", "code"), ("app.coffee", "code"),
    ("docs/guide.1", "docs"), ("History.rdoc", "docs"), ("CHANGES", "docs"), ("LICENSE-APACHE", "docs"),
    ("MAINTAINERS", "docs"), ("Readme", "docs"),
    ("go.mod", "config"), (".eslintrc", "config"), (".npmrc", "config"), (".npmignore", "config"),
    (".editorconfig", "config"), (".mailmap", "config"), ("MANIFEST.in", "config"), ("cJSONConfig.cmake.in", "config"),
    ("library_config/libcjson.pc.in", "config"), ("meson.build", "config"), (".idea/log.iml", "config"),
    ("Dockerfile.dev", "config"), (".github/workflows/test.yml", "config"), ("requirements/dev.in", "config"),
    ("requirements-dev.txt", "config"), ("docs/_themes/click/theme.conf", "config"),
    # still unknown by name: counted as data
    (".pomo", "data"), ("benchmarks/run", "data"), ("install", "data"), ("18295", "data"),
])
def test_category_of(path, category):
    assert category_of(path) == category
    assert category in CATEGORIES


def test_language_of_names_and_extensions():
    assert [language_of(p) for p in ("a/b.rs", "Dockerfile", ".env.local", "x.unknown", "noext")] == \
        ["rust", "dockerfile", "dotenv", "other", "other"]


def test_parser_language_follows_the_one_extension_table():
    from core.parsers import parser_language

    assert parser_language("web/a.mts") == language_of("web/a.mts") == "typescript"
    assert parser_language("web/App.tsx") == "tsx" and language_of("web/App.tsx") == "typescript"
    assert parser_language("include/x.H") == language_of("include/x.H") == "c"
    assert parser_language("notes.txt") is None and parser_language("Makefile") is None


@pytest.mark.parametrize("path, language, category", [
    # a C project's tools (git's tree): Perl, Tcl, gettext catalogs, shell test scripts under t/
    ("git-svn.perl", "perl", "code"), ("gitweb/gitweb.perl", "perl", "code"), ("git-gui/lib/blame.tcl", "tcl", "code"),
    ("po/de.po", "gettext", "translations"), ("po/git.pot", "gettext", "translations"),
    ("t/t0001-init.sh", "shell", "tests"), ("Documentation/git-log.txt", "text", "docs"),
    ("configure.ac", "m4", "code"), ("Makefile.am", "makefile", "config"),
    # other ecosystems' names and test conventions
    ("src/test/java/org/app/ParserTest.java", "java", "tests"), ("app/src/main/java/org/app/Parser.java", "java", "code"),
    ("Tests/FooTests.cs", "csharp", "tests"), ("lib/Parser.cs", "csharp", "code"), ("spec/models/user_spec.rb", "ruby", "tests"),
    ("src/__tests__/App.jsx", "javascript", "tests"), ("src/Foo.kt", "kotlin", "code"), ("build.gradle.kts", "kotlin", "config"),
    ("build.gradle", "groovy", "config"), ("lib/mix.ex", "elixir", "code"), ("src/Main.hs", "haskell", "code"),
    ("notebooks/intro.ipynb", "jupyter", "code"), ("locales/fr.json", "json", "translations"),
    ("src/i18n/messages_de.properties", "properties", "translations"), ("App/fr.lproj/Localizable.strings", "strings", "translations"),
    ("data/points.tsv", "tsv", "data"), ("pixi.lock", "lockfile", "config"), ("uv.lock", "lockfile", "config"),
])
def test_language_and_category_from_the_maintained_tables(path, language, category):
    assert (language_of(path), category_of(path)) == (language, category)


@pytest.mark.parametrize("head, language", [
    ('#!/bin/sh\n# Tcl ignores the next line -*- tcl -*- \\\nexec wish "$0" -- "$@"\n', "tcl"),  # gitk's first lines
    ("#!/usr/bin/env python3\nimport sys\n", "python"), ("#!/usr/bin/perl -w\nuse strict;\n", "perl"),
    ("#!/usr/bin/env node\n'use strict'\n", "javascript"), ("#!/bin/bash\nset -e\n", "shell"),
    ("#!/usr/bin/env ruby\nputs 1\n", "ruby"), ("# vim: set ft=python :\nx = 1\n", "python"),
])
def test_a_file_without_a_known_name_is_known_by_its_first_lines(head, language):
    assert language_of("gitk", head) == language
    assert language_of("bin/tool", head) == language  # more precise than "script"
    assert category_of("gitk", language_of("gitk", head)) == "code"


@pytest.mark.parametrize("head", ["#!/opt/weird/frobnicate --fast\n", "#!\n", "#!   \n", "\x00\x01binary", "",
                                  "-*- nonexistent-mode -*-\n", "#!/usr/bin/env\n"])
def test_an_unknown_or_broken_shebang_is_judged_not_a_crash(head):
    assert language_of("tools/run-thing", head) == "other"
    assert language_of("lib/x.py", head) == "python"  # the name decides when it can


@pytest.mark.parametrize("path, head, language", [
    ("complete/_rg", "#compdef rg\n\n# zsh completion for rg\n", "shell"),  # zsh's completion functions
    ("tests/tests.vcxproj.filters", '\ufeff<?xml version="1.0" encoding="utf-8"?>\n<Project>\n', "xml"),
    ("tests/inputs/test4", '{\n  "glossary": {\n    "title": "example glossary"', "json"),
    ("cobra/cmd/testdata/root.go.golden", None, "go"), ("phpunit.xml.dist", None, "xml"),
    (".env.example", None, "dotenv"), ("app/proguard-rules.pro", None, "pro"),
])
def test_a_format_known_by_its_opening_or_by_the_file_it_stands_for(path, head, language):
    assert language_of(path, head) == language


def test_a_header_is_cpp_when_its_head_shows_cpp():
    spdlog = ("// Copyright(c) 2015-present, Gabi Melman & spdlog contributors.\n#pragma once\n\n"
              "#include <spdlog/common.h>\n#include <vector>\n\nnamespace spdlog {\nclass logger {\npublic:\n")
    cjson = ("#ifndef cJSON__h\n#define cJSON__h\n\n#ifdef __cplusplus\nextern \"C\"\n{\n#endif\n\n"
             "#include <stddef.h>\n\ntypedef struct cJSON\n{\n    struct cJSON *next;\n} cJSON;\n")
    assert language_of("include/spdlog/logger.h", spdlog) == "cpp"
    assert language_of("cJSON.h", cjson) == "c"  # `extern "C"` guards are C
    assert language_of("include/spdlog/logger.h") == "c"  # without content: identify's first tag
    from core.parsers import parser_language
    assert parser_language("include/spdlog/logger.h", language_of("include/spdlog/logger.h", spdlog)) == "cpp"


@pytest.mark.parametrize("head", [
    # fmt's bundled color.h: a macro for its namespace, then an enum class (C has none)
    "// Formatting library for C++ - color support\n#ifndef FMT_COLOR_H_\n#define FMT_COLOR_H_\n\n"
    "#include \"format.h\"\n\nFMT_BEGIN_NAMESPACE\n\nenum class color : uint32_t {\n  alice_blue = 0xF0F8FF,\n",
    "#pragma once\n\nconstexpr int level_count = 7;\n",
    "#pragma once\n#if defined(__has_cpp_attribute)\n#  define HAS_NODISCARD __has_cpp_attribute(nodiscard)\n#endif\n",
    "inline void run() {\n  try {\n    go();\n  } catch (...) {\n  }\n}\n",
])
def test_a_header_with_a_cpp_only_construct_from_linguists_list_is_cpp(head):
    assert language_of("include/fmt/x.h", head) == "cpp"
    assert language_of("include/x.h", "/* try this first */\nint retries;\n#if __cplusplus\n#endif\n") == "c"


BENCH_SUMMARY = "".join(  # a benchmark's result table as ripgrep keeps them (`benchsuite/runs/*/summary`)
    f"{name} (pattern: {pattern})\n{'-' * (len(name) + len(pattern) + 12)}\n" + "".join(
        f"{tool:<20}{t:.3f} +/- {t / 40:.3f} (lines: {n})\n"
        for tool, t in (("rg (ignore)", 0.322), ("ag (ignore)", 1.754), ("git grep (ignore)", 0.502),
                        ("rg (whitelist)*", 0.197), ("ucg (whitelist)", 0.217))) + "\n"
    for name, pattern, n in (("linux_alternates", "ERR_SYS|PME_TURN_OFF", 68), ("linux_literal", "PM_RESUME", 39),
                             ("subtitles_ru_literal", "Шерлок Холмс", 583), ("linux_word", "PM_RESUME", 6),
                             ("subtitles_en_alternate", "Sherlock Holmes|John Watson", 848)) * 4)


@pytest.mark.parametrize("path, text, language, category", [
    ("benchsuite/runs/2016-09-17/summary", BENCH_SUMMARY, "text", "docs"),  # magika: CMake, not sure enough
    ("doc/notes", "Release checklist\n\nBump the version in the manifest, tag the commit, then write the "
                  "announcement. The changelog lists every user-visible change since the last tag.\n", "text", "docs"),
    ("ci/build-all", 'import os\nimport subprocess\n\n\ndef build(target):\n    """Build one target."""\n'
                     '    subprocess.run(["cargo", "build", "--target", target], check=True)\n\n\n'
                     'for t in os.environ["TARGETS"].split():\n    build(t)\n', "python", "code"),
    ("tools/run-thing", "#!/opt/weird/frobnicate --fast\nfrobnicate all the things\n", "other", "data"),
    ("tools/empty", "\n\n", "other", "data"),
    ("src/app.py", BENCH_SUMMARY, "python", "code"),  # a name that tells is never second-guessed
])
def test_content_decides_what_neither_name_nor_first_lines_tell(path, text, language, category):
    """Files that no table names and whose first lines declare nothing: magika's content model names a language
    it is sure of, plain text (prose, program output) is "text"; a program of an unknown interpreter stays unknown."""
    from core.languages import language_of_blob, language_of_text

    assert language_of_text(path, text) == language
    assert language_of_blob(path, text.replace("\n", "\r\n").encode()) == language  # stage 1's read of the blob
    assert category_of(path, language) == category
