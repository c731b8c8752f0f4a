"""Bad inputs through the real command-line tools (issue 16): a table of malformed or
inconsistent configs, data files, run directories and CLI arguments.

Every case runs the CLI in a subprocess and checks: exit status 2; exactly one line on
stderr, `error: ...`, naming the config field or the file and line; nothing written to the
run directory (absent, or exactly as before); and the corrected rerun in the SAME run
directory works (a 1-epoch tiny training run in-process, or the corrected CLI call).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable

import pytest

from corrkd_jax import recommend as rec
from corrkd_jax.data.__main__ import main as describe_main
from corrkd_jax.paths import repo_root
from corrkd_jax.train import train_and_evaluate
from corrkd_jax.trainer.config_files import load_config_file
from support import tiny_runs as testing

pytestmark = pytest.mark.slow

REPO = repo_root()
TINY_CONFIG = """
from support import tiny_runs as testing
from corrkd_jax.trainer.config_files import link_features_to_data


def get_config(arg=None):
    config = testing.tiny_config({data!r}, {encoder!r}, {cache!r})
    link_features_to_data(config)
    config.data.format = "auto"  # S3-Rec and RecBole folders alike
    config.model.variant = "id_only"
    config.num_epochs = 1
    config.kd.num_codes = 4
    config.kd.num_pairs = 500
    config.kd.kmeans_iters = 3
    return config
"""
FEATURES_CONFIG = """
from corrkd_jax.trainer.config_files import load_config_file


def get_config():
    return load_config_file({tiny!r}).features
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory, compile_cache):
    """Good inputs: S3-Rec and RecBole folders, a tiny encoder, config files, a trained run."""
    from support.tiny_encoders import save_tiny_text_encoder

    root = tmp_path_factory.mktemp("bad_inputs")
    s3rec = testing.write_tiny_dataset(str(root / "s3rec"), num_users=60, max_items_per_user=8)
    recbole = testing.write_recbole_dataset(s3rec, str(root / "recbole"))
    encoder = save_tiny_text_encoder("bert", str(root / "bert"))
    tiny = root / "tiny.py"
    tiny.write_text(TINY_CONFIG.format(data=s3rec, encoder=encoder, cache=str(root / "cache")))
    features = root / "tiny_features.py"
    features.write_text(FEATURES_CONFIG.format(tiny=str(tiny)))
    trained = str(root / "trained")
    train_and_evaluate(load_config_file(str(tiny)), trained)
    return {
        "root": root,
        "s3rec": s3rec,
        "recbole": recbole,
        "tiny": str(tiny),
        "features": str(features),
        "trained": trained,
    }


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad input. `bad`: CLI overrides that are wrong (dropped in the rerun); `context`:
    overrides kept in the rerun (values as Python literals); `data`: "s3rec" | "recbole";
    `breaks(folder)` damages the case's copy of the data (the rerun gets a fresh copy);
    `argv(env, case_dir)`: a whole command line instead (other CLIs); `workdir(env, path)`
    prepares an existing run directory; `fix(env, path)` repairs it before the rerun."""

    name: str
    expect: tuple[str, ...]
    bad: tuple[str, ...] = ()
    context: tuple[tuple[str, object], ...] = ()
    data: str = "s3rec"
    breaks: Callable[[str], None] | None = None
    argv: Callable[[dict, str], list[str]] | None = None
    rerun: Callable[[dict, str], None] | None = None
    workdir: Callable[[dict, str], None] | None = None
    fix: Callable[[str], None] | None = None
    config: str | None = None  # --config value instead of the tiny config file


def _append(name: str, text: str) -> Callable[[str], None]:
    def breaks(folder: str) -> None:
        with open(os.path.join(folder, name), "a", encoding="utf-8") as f:
            f.write(text)

    return breaks


def _write(name: str, content: str | bytes) -> Callable[[str], None]:
    def breaks(folder: str) -> None:
        mode = "wb" if isinstance(content, bytes) else "w"
        with open(os.path.join(folder, name), mode) as f:
            f.write(content)

    return breaks


def _edit_line(name: str, number: int, edit: Callable[[str], str]) -> Callable[[str], None]:
    def breaks(folder: str) -> None:
        path = os.path.join(folder, name)
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        lines[number - 1] = edit(lines[number - 1])
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines))

    return breaks


def _timestamp(value: str) -> Callable[[str], None]:
    return _edit_line("tiny.inter", 3, lambda line: "\t".join(line.split("\t")[:2] + [value]))


def _recommend(*extra: str) -> Callable[[dict, str], list[str]]:
    def argv(env: dict, case_dir: str) -> list[str]:
        return ["-m", "corrkd_jax.recommend", "--workdir", env["trained"], *extra]

    return argv


def _rerun_recommend(env: dict, case_dir: str) -> None:
    assert rec.main(["--workdir", env["trained"], "--history", "1 2", "--k", "3"]) == 0


def _features_rerun(env: dict, case_dir: str) -> None:
    out = _run(["-m", "corrkd_jax.features", f"--config={env['features']}"])
    assert out.returncode == 0, out.stderr[-2000:]


def _copy_checkpoints(env: dict, workdir: str) -> None:
    shutil.copytree(
        os.path.join(env["trained"], "checkpoints"), os.path.join(workdir, "checkpoints")
    )


def _file_workdir(env: dict, workdir: str) -> None:
    with open(workdir, "w") as f:
        f.write("not a folder\n")


S3 = "sequences.txt"
CASES = [
    # ---- config fields (train CLI)
    Case("unknown_field", ("--config.model.dimm", "model.dim"), bad=("model.dimm=3",)),
    Case("bad_int", ("config.model.dim", "abc"), bad=("model.dim=abc",)),
    Case("missing_config_file", ("nope.py",), config="nope.py"),
    Case("bad_config_argument", ("'foo'", "variant"), config="configs/default.py:sasrec,foo"),
    Case("unknown_backbone", ("model.backbone",), bad=("model.backbone=transformer",)),
    Case("unknown_variant", ("model.variant",), bad=("model.variant=kdsrx",)),
    Case(
        "chunks_vs_dim",
        ("kd.num_chunks",),
        bad=("kd.num_chunks=5",),
        context=(("model.variant", "kdsr"),),
    ),
    Case("max_len_zero", ("data.max_len",), bad=("data.max_len=0",)),
    Case("bucket_below_max_len", ("data.length_buckets",), bad=("data.length_buckets=(4,)",)),
    Case("unknown_protocol", ("data.protocol",), bad=("data.protocol=random",)),
    Case("unknown_format", ("data.format",), bad=("data.format=csv",)),
    Case("batch_size_zero", ("batch_size",), bad=("batch_size=0",)),
    Case("metric_not_computed", ("eval.metric",), bad=("eval.metric=AUC@10",)),
    Case("patience_zero", ("eval.patience",), bad=("eval.patience=0",)),
    Case("negative_lr", ("optim.lr",), bad=("optim.lr=-1.0",)),
    Case("unknown_async_schedule", ("optim.async_schedule",), bad=("optim.async_schedule=linear",)),
    Case("dropout_above_one", ("model.dropout",), bad=("model.dropout=1.5",)),
    Case(
        "heads_vs_dim",
        ("model.sasrec.num_heads",),
        bad=("model.sasrec.num_heads=3",),
        context=(("model.backbone", "sasrec"),),
    ),
    Case(
        "unknown_sasrec_norm",
        ("model.sasrec.norm",),
        bad=("model.sasrec.norm=mid",),
        context=(("model.backbone", "sasrec"),),
    ),
    Case("unknown_corr_kind", ("kd.corr_kind",), bad=("kd.corr_kind=pearson",)),
    Case("zero_tau", ("kd.tau",), bad=("kd.tau=0.0",)),
    Case(
        "view_not_in_features",
        ("model.views", "colour"),
        bad=("model.views=colour",),
        context=(("model.variant", "feature_init"),),
    ),
    Case(
        "unknown_reduce_method",
        ("reduce.method",),
        bad=("features.reduce.method=umap",),
        context=(("model.variant", "feature_init"),),
    ),
    Case(
        "no_text_field_for_views",
        ("model.views", "id_only"),
        breaks=lambda folder: os.remove(os.path.join(folder, "items.tsv")),
        context=(("model.variant", "feature_init"),),
    ),
    Case(
        "encoder_folder_missing",
        ("features.views.attr.encoder",),
        bad=("features.views.attr.encoder=/nonexistent/encoder",),
        context=(("model.variant", "feature_init"),),
    ),
    Case("sequences_on_session_graph", ("data.train_on",), bad=("data.train_on=sequences",)),
    Case("negative_negatives", ("num_negatives",), bad=("num_negatives=-1",)),
    Case("negatives_above_catalogue", ("num_negatives",), bad=("num_negatives=100000",)),
    Case("valid_fraction_above_one", ("data.valid_fraction",), bad=("data.valid_fraction=1.5",)),
    Case("negative_save_interval", ("checkpoint.every_steps",), bad=("checkpoint.every_steps=-1",)),
    Case(
        "data_root_missing",
        ("data.root", "/nonexistent/data"),
        bad=("data.root=/nonexistent/data",),
    ),
    Case(
        "workdir_flag_missing",
        ("--workdir",),
        argv=lambda env, d: ["-m", "corrkd_jax.train", f"--config={env['tiny']}"],
    ),
    # ---- S3-Rec files
    Case("item_not_integer", (S3, "line 61", "'x'"), breaks=_append(S3, "999 1 x\n")),
    Case("user_twice", (S3, "line 61", "line 1"), breaks=_append(S3, "1 1 2\n")),
    Case("user_without_items", (S3, "line 61"), breaks=_append(S3, "999\n")),
    Case("item_zero", (S3, "line 61", ">= 1"), breaks=_append(S3, "999 0 1\n")),
    Case("item_without_row", (S3, "line 61", "items.tsv"), breaks=_append(S3, "999 1 99999\n")),
    Case(
        "item_row_twice",
        ("items.tsv, line", "duplicated"),
        breaks=_append("items.tsv", "1\tB0DUP\tdup\tdup\n"),
    ),
    Case(
        "item_row_short",
        ("items.tsv, line", "tab-separated"),
        breaks=_append("items.tsv", "5000\tonly two\n"),
    ),
    Case(
        "header_empty_column",
        ("items.tsv, line 1", "empty column"),
        breaks=_edit_line("items.tsv", 1, lambda line: line.replace("asin", "")),
    ),
    Case("sequences_empty", (S3, "empty file"), breaks=_write(S3, "")),
    Case("sequences_not_utf8", (S3, "cannot read"), breaks=_write(S3, b"1 2 3\n2 \xff\xfe 4\n")),
    Case("split_without_cases", ("data.protocol", "no "), breaks=_write(S3, "1 1\n2 2\n3 3\n")),
    # ---- RecBole files
    Case(
        "recbole_no_item_column",
        (".inter, line 1", "item_id"),
        data="recbole",
        breaks=_edit_line("tiny.inter", 1, lambda line: line.replace("item_id", "item")),
    ),
    Case(
        "recbole_nan_timestamp",
        (".inter, line 3", "not finite"),
        data="recbole",
        breaks=_timestamp("nan"),
    ),
    Case(
        "recbole_inf_timestamp",
        (".inter, line 3", "not finite"),
        data="recbole",
        breaks=_timestamp("inf"),
    ),
    Case(
        "recbole_text_timestamp",
        (".inter, line 3", "non-numeric"),
        data="recbole",
        breaks=_timestamp("yesterday"),
    ),
    Case(
        "recbole_empty_user",
        (".inter, line 3", "empty user_id"),
        data="recbole",
        breaks=_edit_line("tiny.inter", 3, lambda line: "\t" + line.split("\t", 1)[1]),
    ),
    Case(
        "recbole_two_inter_files",
        ("several .inter",),
        data="recbole",
        breaks=_write("other.inter", "user_id:token\titem_id:token\nu1\ti1\n"),
    ),
    Case(
        "recbole_item_twice",
        (".item, line", "duplicated"),
        data="recbole",
        breaks=_append("tiny.item", "i1\tagain\n"),
    ),
    Case(
        "recbole_header_only",
        (".inter", "empty file"),
        data="recbole",
        breaks=_write("tiny.inter", "user_id:token\titem_id:token\ttimestamp:float\n"),
    ),
    # ---- run directories
    Case(
        "checkpoints_without_config",
        ("config.json", "checkpoints"),
        workdir=_copy_checkpoints,
        fix=lambda w: shutil.rmtree(os.path.join(w, "checkpoints")),
    ),
    Case("workdir_is_a_file", ("not a folder",), workdir=_file_workdir, fix=os.remove),
    # ---- the other CLIs
    Case(
        "recommend_unknown_item",
        ("99999",),
        argv=_recommend("--history", "1 99999"),
        rerun=_rerun_recommend,
    ),
    Case(
        "recommend_missing_workdir",
        ("does not exist",),
        argv=lambda env, d: [
            "-m",
            "corrkd_jax.recommend",
            "--workdir",
            os.path.join(d, "nope"),
            "--history",
            "1",
        ],
        rerun=_rerun_recommend,
    ),
    Case(
        "recommend_bad_histories_line",
        ("histories.txt line 2", "99999"),
        argv=lambda env, d: [
            "-m",
            "corrkd_jax.recommend",
            "--workdir",
            env["trained"],
            "--histories-file",
            _histories(d),
        ],
        rerun=_rerun_recommend,
    ),
    Case(
        "features_field_missing",
        ("views.attr.fields", "nope"),
        argv=lambda env, d: [
            "-m",
            "corrkd_jax.features",
            f"--config={env['features']}",
            "--config.views.attr.fields=nope",
        ],
        rerun=_features_rerun,
    ),
    Case(
        "features_unknown_field",
        ("--config.reduce.dimm", "reduce.dim"),
        argv=lambda env, d: [
            "-m",
            "corrkd_jax.features",
            f"--config={env['features']}",
            "--config.reduce.dimm=3",
        ],
        rerun=_features_rerun,
    ),
    Case(
        "describe_missing_folder",
        ("/nonexistent/folder",),
        argv=lambda env, d: ["-m", "corrkd_jax.data", "--describe", "/nonexistent/folder"],
        rerun=lambda env, d: _describe_ok(env),
    ),
    Case(
        "describe_bad_line",
        (S3, "line 61"),
        breaks=_append(S3, "999 1 x\n"),
        argv=lambda env, d: ["-m", "corrkd_jax.data", "--describe", os.path.join(d, "data")],
        rerun=lambda env, d: _describe_ok(env),
    ),
]


def _histories(case_dir: str) -> str:
    path = os.path.join(case_dir, "histories.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("1 2\n3 99999\n")
    return path


def _describe_ok(env: dict) -> None:
    assert describe_main(["--describe", env["s3rec"]]) == 0


def _run(args: list[str]) -> subprocess.CompletedProcess:
    environment = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        PYTHONPATH=os.pathsep.join([REPO, os.path.join(REPO, "tests")]),
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _literal(value: object) -> str:
    return str(value)


def _snapshot(path: str) -> dict[str, int] | None:
    """Every file under `path` with its size (None when absent; {"": size} for a file)."""
    if not os.path.exists(path):
        return None
    if os.path.isfile(path):
        return {"": os.path.getsize(path)}
    return {
        os.path.relpath(os.path.join(d, f), path): os.path.getsize(os.path.join(d, f))
        for d, _, files in os.walk(path)
        for f in files
    }


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input(case: Case, env: dict, tmp_path) -> None:
    case_dir = str(tmp_path)
    data = os.path.join(case_dir, "data")
    shutil.copytree(env[case.data], data)
    if case.breaks is not None:
        case.breaks(data)
    workdir = os.path.join(case_dir, "run")
    if case.workdir is not None:
        case.workdir(env, workdir)
    before = _snapshot(workdir)

    if case.argv is not None:
        args = case.argv(env, case_dir)
    else:
        config = case.config or env["tiny"]
        args = [
            "-m",
            "corrkd_jax.train",
            f"--config={config}",
            f"--workdir={workdir}",
            f"--config.data.root={data}",
        ]
        args += [f"--config.{key}={_literal(value)}" for key, value in case.context]
        args += [f"--config.{override}" for override in case.bad]
    out = _run(args)

    assert out.returncode == 2, (out.returncode, out.stderr[-3000:])
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr[-3000:]
    assert lines[0].startswith("error: "), lines
    for text in case.expect:
        assert text in lines[0], (text, lines[0])
    assert _snapshot(workdir) == before, "the refused run wrote to the run directory"

    # The corrected rerun, in the same run directory.
    if case.rerun is not None:
        case.rerun(env, case_dir)
        return
    shutil.rmtree(data)
    shutil.copytree(env[case.data], data)
    if case.fix is not None:
        case.fix(workdir)
    config = load_config_file(env["tiny"])
    config.data.root = data
    for key, value in case.context:
        section, _, name = key.rpartition(".")
        node = config
        for part in section.split(".") if section else ():
            node = node[part]
        node[name] = value
    results = train_and_evaluate(config, workdir)
    assert set(results["test"]) >= {"HR@10", "NDCG@10"}
    assert json.load(open(os.path.join(workdir, "config.json")))["data"]["root"] == data


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert len({case.name for case in CASES}) == len(CASES)
