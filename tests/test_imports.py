"""Every module imports on its own, whatever is imported first (no circular imports)."""

import pkgutil
import subprocess
import sys

import monai_nnunet
from tests.conftest import REPO_ROOT

SCRIPT = """
import importlib, sys
import monai, torch  # the heavy dependencies stay loaded; our modules are re-imported from scratch each time
failures = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "monai_nnunet" or m.startswith("monai_nnunet.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as e:
        failures.append(f"{name}: {type(e).__name__}: {e}")
print("\\n".join(failures))
sys.exit(1 if failures else 0)
"""


def test_each_module_imports_first():
    names = [i.name for i in pkgutil.walk_packages(monai_nnunet.__path__, prefix="monai_nnunet.")
             if not i.name.endswith("__main__")]
    result = subprocess.run([sys.executable, "-c", SCRIPT, *names], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
