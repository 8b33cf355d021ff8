"""core/config.py: each setting is declared once (default, help, check) and everything else derives from it."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap

import pytest

import comprehensive_pipeline
import dataset_builder
import semantic_chunker
from core.config import flag_of, settings_of
from core.io import UserError
from dataset_builder import DatasetConfig
from core.splits import DEFAULT_RATIOS
from pipeline.config import PipelineConfig, check_settings, load_config, stage_config
from scrapers import git_scraper_rich
from scrapers.git_scraper_rich import ScrapeConfig
from semantic_chunker import ChunkConfig
from tokenizers_ import file_snapshot_tokenizer
from tokenizers_.file_snapshot_tokenizer import TokenizeConfig

STAGES = (ScrapeConfig, ChunkConfig, TokenizeConfig, DatasetConfig)
CLASSES = (*STAGES, PipelineConfig)


def literal_defaults(cls: type) -> dict[str, str]:
    """Field -> its default as written in the class body, for the defaults written as a literal value
    (`= 512`, `setting(512, ...)`, `setting(default=(0.85, ...))`), not as a name or by reference."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    found = {}
    for node in tree.body[0].body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None):
            continue
        value = node.value
        if isinstance(value, ast.Call):
            args = list(value.args[:1]) + [k.value for k in value.keywords if k.arg == "default"]
            value = args[0] if args else None
        if value is not None and _literal(value):
            found[node.target.id] = ast.unparse(value)
    return found


def _literal(node: ast.AST) -> bool:
    try:
        return ast.literal_eval(node) is not None
    except ValueError:
        return False


def one_command_name(cls: type, f: dataclasses.Field) -> str:
    return f.metadata.get("pipeline") or f.name


def test_each_default_is_written_in_one_place():
    """A setting the one command shares with a stage is declared in the stage; no literal default twice."""
    declared: dict[str, list[str]] = {}
    for cls in CLASSES:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for name, literal in literal_defaults(cls).items():
            f = fields[name]
            key = name if cls is PipelineConfig else one_command_name(cls, f)
            if key.endswith("_ratio") or name == "split_ratios":
                key = "ratios"
            declared.setdefault(key, []).append(f"{cls.__name__}.{name} = {literal}")
    twice = {k: v for k, v in declared.items() if len(v) > 1}
    assert twice == {}


def test_the_one_command_takes_every_stage_setting_by_reference():
    pipeline = {f.name: f for f in dataclasses.fields(PipelineConfig)}
    for cls in STAGES:
        for f in settings_of(cls):
            name = one_command_name(cls, f)
            if name in pipeline and f.metadata["role"] != "path":
                origin = pipeline[name].metadata.get("from")
                assert origin is not None, f"PipelineConfig.{name} restates {cls.__name__}.{f.name}"
                # the same setting (redact) may be declared for two stages from one declaration
                assert getattr(PipelineConfig(), name) == getattr(cls, f.name, f.default) or \
                    f.default_factory is not dataclasses.MISSING


@pytest.mark.parametrize("cls, parse", [
    (ScrapeConfig, lambda: git_scraper_rich.parse_args([])[1]),
    (ChunkConfig, lambda: semantic_chunker.parse_args(["--commits", "c.jsonl", "--output", "o.jsonl"])),
    (TokenizeConfig, lambda: file_snapshot_tokenizer.parse_args(["--input", "c.jsonl"])),
    (DatasetConfig, lambda: dataset_builder.parse_args(["--vocab", "t.json"])),
])
def test_a_stage_script_flags_default_to_its_fields(cls, parse):
    """Every setting of the stage's config is a flag of its script, whose default is the field's."""
    parsed = parse()
    for f in settings_of(cls):
        if f.metadata["flag"] == "":  # the ratios: three flags
            assert (parsed.train_ratio, parsed.val_ratio, parsed.test_ratio) == DEFAULT_RATIOS == f.default
        elif not f.metadata["flag_args"].get("required"):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            assert getattr(parsed, f.name) == default, f.name


def test_the_one_command_has_a_flag_per_setting_and_a_yaml_key_per_field(tmp_path, capsys):
    with pytest.raises(SystemExit):
        comprehensive_pipeline.parse_args(["--help"])
    help_text = capsys.readouterr().out
    for f in settings_of(PipelineConfig):
        if f.metadata["flag"] != "":
            assert flag_of(f) in help_text, f.name
    assert comprehensive_pipeline.parse_args([]) == PipelineConfig()
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("max_chunk_tokens: 300\nscrape-jobs: 0\n", encoding="utf-8")
    assert load_config(str(yaml_file)) == {"max_chunk_tokens": 300, "scrape_jobs": 0}


def test_a_stage_check_holds_in_the_one_command_and_names_its_flag():
    with pytest.raises(UserError, match="^--chunk-workers must be at least 1, got 0$"):
        check_settings(PipelineConfig(chunk_workers=0))
    with pytest.raises(UserError, match="^--workers must be at least 1, got 0$"):
        semantic_chunker.run(ChunkConfig(workers=0, snapshot_at="none"))
    with pytest.raises(UserError, match="^--max-diff-bytes must be positive, got 0$"):
        git_scraper_rich.scrape(ScrapeConfig(max_diff_bytes=0))


def test_stage_configs_come_from_the_one_commands_fields():
    cfg = PipelineConfig(max_chunk_tokens=300, chunk_workers=2, scrape_jobs=0, redact=False)
    cc = stage_config(ChunkConfig, cfg, tokenizer="t", split_ratios=cfg.ratios)
    assert (cc.max_chunk_tokens, cc.workers, cc.redact, cc.tokenizer) == (300, 2, False, "t")
    sc = stage_config(ScrapeConfig, cfg, repo="r")
    assert (sc.jobs, sc.redact, sc.repo) == (0, False, "r")
