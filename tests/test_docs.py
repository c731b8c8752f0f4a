"""Documentation checks: docstrings with shapes, commented config fields, the README commands.

The README's first two ```bash blocks are the two commands a new user runs: the first trains
the embedded default (its module and config file must exist), the second is the test command,
which `.ci/run` must run verbatim so CI and the README cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import os
import re
import shlex
import sys
import types

import pytest

from corrkd_jax import losses, metrics, models, teacher

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_tool(name: str) -> types.ModuleType:
    """Imports `tools/<name>.py` (tools/ is a folder of scripts, not a package)."""
    path = os.path.join(ROOT, "tools", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_tool_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


config_reference = load_tool("config_reference")


def public_functions(module: types.ModuleType) -> dict[str, object]:
    """The functions and classes of `__all__` (else the module's own non-underscore ones)."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            name
            for name, obj in vars(module).items()
            if not name.startswith("_") and getattr(obj, "__module__", None) == module.__name__
        ]
    return {
        name: getattr(module, name)
        for name in names
        if inspect.isfunction(getattr(module, name)) or inspect.isclass(getattr(module, name))
    }


def own_doc(obj: object) -> str:
    """The object's own docstring: not inherited, not the signature dataclasses and
    NamedTuple write when there is none."""
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
    doc = inspect.cleandoc(doc or "")
    if inspect.isclass(obj) and doc.startswith(obj.__name__ + "("):
        return ""
    return doc


def bash_blocks(markdown: str) -> list[str]:
    """Bodies of the ```bash fenced blocks, in order."""
    return [
        m.group(1).strip()
        for m in re.finditer(r"^```bash[ \t]*\n(.*?)^```", markdown, flags=re.M | re.S)
    ]


def command_lines(block: str) -> list[str]:
    """The block's commands: comment lines dropped, backslash continuations joined."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [
        line.strip()
        for line in joined.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


# ----------------------------------------------------------------------------- docstrings


@pytest.mark.parametrize("name", losses.__all__)
def test_every_loss_documents_its_shapes(name):
    doc = own_doc(getattr(losses, name))
    assert doc, f"corrkd_jax.losses.{name} has no docstring"
    assert re.search(r"\[[^\]]*\]", doc), (
        f"corrkd_jax.losses.{name}'s docstring names no array shape like [B, L, L]"
    )


@pytest.mark.parametrize("module", [losses, teacher, metrics, models], ids=lambda m: m.__name__)
def test_public_functions_have_docstrings(module):
    members = public_functions(module)
    assert members, f"{module.__name__} exposes nothing public"
    missing = [name for name, obj in members.items() if not own_doc(obj)]
    assert not missing, f"{module.__name__}: no docstring on {missing}"


def test_own_doc_sees_through_generated_docstrings():
    @dataclasses.dataclass
    class Undocumented:
        x: int

    class Documented(Undocumented):
        """Has one."""

    assert own_doc(Undocumented) == "" and own_doc(Documented) == "Has one."
    assert own_doc(type("Bare", (Documented,), {})) == ""


def test_build_model_documents_its_arguments():
    doc = own_doc(models.build_model)
    for argument in inspect.signature(models.build_model).parameters:
        assert argument in doc, f"build_model's docstring does not mention {argument!r}"
    assert "[" in doc and "]" in doc, "build_model's docstring names no shapes"


# ----------------------------------------------------------------------------- config reference


def test_every_default_config_field_has_a_comment():
    fields = config_reference.config_fields(os.path.join(ROOT, "configs", "default.py"))
    names = {field.name for field in fields}
    # The reference covers the nested sections, stage-1 settings included.
    assert {"seed", "data.root", "model.variant", "kd.tau", "features.reduce.dim"} <= names
    missing = [field.name for field in fields if not field.comment]
    assert not missing, f"configs/default.py: fields without a comment: {missing}"


def test_config_reference_reads_comments_and_flags_missing_ones(tmp_path, capsys):
    path = tmp_path / "toy.py"
    path.write_text(
        "import ml_collections\n\n"
        "def get_config():\n"
        "    config = ml_collections.ConfigDict()\n"
        "    config.lr = 0.5  # step size | of Adam\n"
        "    config.model = ml_collections.ConfigDict()\n"
        "    # The width of everything.\n"
        "    config.model.dim = 8\n"
        "    config.model.names = ('a',)  # the views\n"
        "    config.bare = 'x'\n"
        "    return config\n"
    )
    fields = config_reference.config_fields(str(path))
    by_name = {field.name: field for field in fields}
    assert [field.name for field in fields] == ["lr", "model.dim", "model.names", "bare"]
    assert by_name["lr"].comment == "step size | of Adam" and by_name["lr"].default == 0.5
    assert by_name["model.dim"].comment == "The width of everything."
    assert by_name["bare"].comment == ""
    table = config_reference.render_markdown(fields)
    assert "| `lr` | `0.5` | step size \\| of Adam |" in table
    assert '| `model.names` | `("a",)` | the views |' in table
    assert config_reference.main([str(path), "--check"]) == 1
    assert "field bare has no comment" in capsys.readouterr().err


# ----------------------------------------------------------------------------- README


def test_readme_commands_exist_and_ci_runs_the_second():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        blocks = bash_blocks(f.read())
    assert len(blocks) >= 2, "README.md must start with two ```bash blocks (train, test)"
    first, second = command_lines(blocks[0]), command_lines(blocks[1])
    assert first and second, "the README's first two ```bash blocks hold no command"
    # The first command runs on a checkout: its module and config file must exist.
    for line in first:
        words = shlex.split(line)
        if "-m" in words:
            module = words[words.index("-m") + 1]
            assert importlib.util.find_spec(module) is not None, f"no module {module}"
        if "--config" in words:
            config = words[words.index("--config") + 1].split(":")[0]
            assert os.path.isfile(os.path.join(ROOT, config)), f"no config file {config}"
    with open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8") as f:
        ci = f.read()
    for line in second:
        assert line in ci, f".ci/run does not run the README's test command verbatim: {line}"
