"""Start-up (issue 17, point 6): `nebula --help` / `--version` within 5x `python -c "import numpy"`,
and neither `import nebula` nor `--help` loads torch or scikit-learn."""

from __future__ import annotations

import os
import subprocess
import sys

from benchmarks.startup import SRC, measure


def test_help_within_five_times_import_numpy():
    med = measure(repeats=3)
    ratio = med["nebula --help"] / med["import numpy"]
    assert ratio <= 5.0, med
    assert med["nebula --version"] / med["import numpy"] <= 5.0, med


def test_import_and_help_load_neither_torch_nor_sklearn():
    code = ("import sys, nebula\n"
            "from nebula.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'sklearn', 'scipy') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]", out


def test_version_flag(capsys):
    import nebula
    from nebula.cli import main

    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert capsys.readouterr().out.strip() == f"nebula {nebula.__version__}"
