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
