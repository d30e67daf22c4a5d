"""The public API: what `import ppdgm` offers, what the README's tour imports, what it costs."""

import re
import subprocess
import sys
from pathlib import Path

import ppdgm

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_public_name_resolves():
    for name in ppdgm.__all__:
        assert getattr(ppdgm, name) is not None, name


def test_the_readme_imports_only_public_names_one_line_per_example():
    text = README.read_text()
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        imports = re.findall(r"^from ppdgm(\S*) import \(?([^)]*?)\)?$", block, re.M | re.S)
        assert len(imports) <= 1, block[:200]
        for module, names in imports:
            assert module == "", f"from ppdgm{module} import ...: the tour imports from ppdgm itself"
            for name in re.split(r"[,\s]+", names.strip()):
                if name:
                    assert name in ppdgm.__all__, name


def test_importing_ppdgm_or_its_command_line_leaves_the_heavy_libraries_unloaded():
    # Every command pays for what the command line imports: matplotlib loads with the first
    # figure, torchvision (which loads torch's compiler stack) with a torchvision dataset.
    heavy = ('arviz', 'matplotlib', 'torchvision', 'seaborn')
    code = f"import sys, ppdgm, ppdgm.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    assert (Path(ppdgm.__file__).parent / "py.typed").exists()
