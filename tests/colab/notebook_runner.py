"""Executes a notebook headless, with the values of its parameter cell replaced.

Every notebook in ddsp/colab has one code cell tagged `parameters` (settings a
user edits: lengths, steps, file paths). The tests insert a cell right after
it that assigns smaller values, then run the whole notebook with nbclient on
the Python kernel of this interpreter; any failing cell fails the test.
"""
from __future__ import annotations

import os
import sys
from typing import Any

import nbformat
from nbclient import NotebookClient

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
NOTEBOOK_ROOT = os.path.join(REPO_ROOT, 'ddsp', 'colab')


def parameter_cell_index(notebook) -> int:
    """Index of the (single) code cell tagged `parameters`."""
    found = [i for i, cell in enumerate(notebook.cells)
             if cell.cell_type == 'code'
             and 'parameters' in cell.get('metadata', {}).get('tags', [])]
    if len(found) != 1:
        raise ValueError(f'expected exactly one code cell tagged "parameters", '
                         f'found {len(found)}')
    return found[0]


def run_notebook(path: str, overrides: dict[str, Any] | None = None,
                 timeout: int = 180, cwd: str | None = None):
    """Runs the notebook at `path` and returns the executed notebook.

    Args:
        path: The .ipynb file.
        overrides: Variable name -> value (written with repr) assigned after
            the parameter cell.
        timeout: Seconds allowed per cell.
        cwd: Working directory of the kernel (default: the repository root).

    Raises:
        nbclient.exceptions.CellExecutionError: when a cell fails.
    """
    notebook = nbformat.read(path, as_version=4)
    if overrides:
        index = parameter_cell_index(notebook)
        source = '\n'.join(f'{k} = {v!r}' for k, v in overrides.items())
        notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
    env_path = os.path.dirname(sys.executable)
    # The kernel must be this interpreter (the .venv with ddsp installed).
    os.environ['PATH'] = env_path + os.pathsep + os.environ.get('PATH', '')
    client = NotebookClient(notebook, timeout=timeout, kernel_name='python3',
                            resources={'metadata': {'path': cwd or REPO_ROOT}})
    client.execute()
    return notebook
