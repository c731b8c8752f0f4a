"""The notebooks: committed without outputs, and each runs top to bottom in smoke mode.

Every notebook's first cell is its parameters cell (tagged `parameters`); the test inserts a
cell after it that sets `SMOKE = True` and points `CACHE_DIR` / `WORK_DIR` at temporary
folders, then executes the notebook with nbclient on a kernel running this interpreter and
fails on the first cell that raises. Smoke mode trains on a slice of each dataset (written
under `CACHE_DIR`, with its processed data and stage-1 features) for one epoch, so the three
notebooks take about 3 minutes on 2 busy CPU cores. Mark: `slow` (deselect with
`-m "not slow"`); the Beauty notebook also needs ../shared/data (`shared_data`).
"""

from __future__ import annotations

import os

import nbformat
import pytest
from ipykernel.kernelspec import write_kernel_spec
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK_DIR = os.path.join(ROOT, "notebooks")
NOTEBOOKS = sorted(name for name in os.listdir(NOTEBOOK_DIR) if name.endswith(".ipynb"))
CELL_TIMEOUT_S = 300  # one cell at most (training is the longest)


def read(name: str) -> nbformat.NotebookNode:
    """The committed notebook `notebooks/<name>`."""
    return nbformat.read(os.path.join(NOTEBOOK_DIR, name), as_version=4)


@pytest.fixture(scope="session")
def kernel_specs(tmp_path_factory) -> KernelSpecManager:
    """A kernelspec that runs `sys.executable` (this venv), whatever kernels are installed."""
    folder = tmp_path_factory.mktemp("kernels")
    write_kernel_spec(str(folder / "corrkd"), overrides={"display_name": "corrkd_jax tests"})
    return KernelSpecManager(kernel_dirs=[str(folder)])


@pytest.fixture(scope="session")
def notebook_cache(tmp_path_factory) -> str:
    """Processed datasets and stage-1 features shared by the notebooks of this session."""
    return str(tmp_path_factory.mktemp("notebook-cache"))


def smoke_cell(cache_dir: str, work_dir: str) -> nbformat.NotebookNode:
    """The cell CI injects after the parameters (papermill's `injected-parameters` tag)."""
    cell = nbformat.v4.new_code_cell(
        f"# Injected by tests/test_notebooks.py\nSMOKE = True\n"
        f"CACHE_DIR = {cache_dir!r}\nWORK_DIR = {work_dir!r}\n"
    )
    cell.metadata["tags"] = ["injected-parameters"]
    return cell


def test_there_are_notebooks():
    assert {"quickstart.ipynb", "reproduce_beauty.ipynb", "losses_api.ipynb"} <= set(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_without_outputs(name):
    notebook = read(name)
    nbformat.validate(notebook)
    dirty = [
        i
        for i, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
        and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, f"{name}: cells {dirty} carry outputs; clear them before committing"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_first_cell_is_the_parameters_cell(name):
    first = read(name).cells[0]
    assert first.cell_type == "code" and "parameters" in first.metadata.get("tags", []), (
        f"{name}: the first cell must be the code cell tagged `parameters`"
    )
    assert "SMOKE = False" in first.source, f"{name}: parameters cell lacks SMOKE = False"


def execute(name: str, kernel_specs: KernelSpecManager, cache_dir: str, work_dir: str) -> None:
    """Runs the notebook in smoke mode; raises nbclient's CellExecutionError on a failing cell."""
    notebook = read(name)
    notebook.cells.insert(1, smoke_cell(cache_dir, work_dir))  # right after the parameters
    manager = KernelManager(kernel_name="corrkd", kernel_spec_manager=kernel_specs)
    client = NotebookClient(
        notebook, km=manager, timeout=CELL_TIMEOUT_S, resources={"metadata": {"path": NOTEBOOK_DIR}}
    )
    client.execute()


@pytest.mark.slow
def test_quickstart_runs(kernel_specs, notebook_cache, tmp_path):
    execute("quickstart.ipynb", kernel_specs, notebook_cache, str(tmp_path / "run"))
    assert os.path.isfile(tmp_path / "run" / "results.json")


@pytest.mark.slow
def test_losses_api_runs(kernel_specs, notebook_cache, tmp_path):
    execute("losses_api.ipynb", kernel_specs, notebook_cache, str(tmp_path / "run"))


@pytest.mark.slow
@pytest.mark.shared_data
def test_reproduce_beauty_runs(kernel_specs, notebook_cache, tmp_path):
    """Needs ../shared/data/amazon-beauty (a slice of it is trained in smoke mode)."""
    execute("reproduce_beauty.ipynb", kernel_specs, notebook_cache, str(tmp_path / "runs"))
    for variant in ("id_only", "feature_init", "kdsr"):
        assert os.path.isfile(tmp_path / "runs" / variant / "results.json"), variant
