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
