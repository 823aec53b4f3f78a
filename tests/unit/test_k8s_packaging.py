"""Every Python package of the source tree is in the wheel: setuptools' explicit ``packages`` list
silently leaves out a new subpackage (``smload.k8s`` once was, so the image had no ``smload k8s``),
while the editable install of the tests finds it anyway."""

import tomllib

from testkit.support import REPO


def test_every_package_directory_is_listed():
    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(tool["packages"])
    found = set()
    for package, directory in tool["package-dir"].items():
        root = REPO / directory
        for init in root.rglob("__init__.py"):
            relative = init.parent.relative_to(root).parts
            found.add(".".join((package, *relative)) if relative else package)
    assert found <= listed, (
        f"packages missing from pyproject.toml [tool.setuptools] packages: {sorted(found - listed)}"
    )
