"""The one language table and the content categories every stage and the report share."""

import pytest

from scrapers.languages import CATEGORIES, category_of, language_of


@pytest.mark.parametrize("path, category", [
    ("src/click/core.py", "code"), ("lib/router/index.js", "code"), ("cJSON.c", "code"),
    ("tests/test_basic.py", "tests"), ("command_test.go", "tests"), ("test/app.router.js", "tests"),
    ("src/parser.spec.ts", "tests"), ("fuzzing/inputs/test1", "tests"), ("tests/conftest.py", "tests"),
    ("README.md", "docs"), ("docs/api.rst", "docs"), ("CHANGES.txt", "docs"), ("LICENSE", "docs"),
    ("pyproject.toml", "config"), (".github/workflows/ci.yml", "config"), ("Cargo.lock", "config"),
    ("package.json", "config"), ("Makefile", "config"),
    ("artwork/logo.svg", "data"), ("data/table.csv", "data"), ("blob.bin", "data"),
])
def test_category_of(path, category):
    assert category_of(path) == category
    assert category in CATEGORIES


def test_language_of_names_and_extensions():
    assert [language_of(p) for p in ("a/b.rs", "Dockerfile", ".env.local", "x.unknown", "noext")] == \
        ["rust", "dockerfile", "dotenv", "other", "other"]


def test_parser_language_follows_the_one_extension_table():
    from chunking.parsers import parser_language

    assert parser_language("web/a.mts") == language_of("web/a.mts") == "typescript"
    assert parser_language("web/App.tsx") == "tsx" and language_of("web/App.tsx") == "typescript"
    assert parser_language("include/x.H") == language_of("include/x.H") == "c"
    assert parser_language("notes.txt") is None and parser_language("Makefile") is None
