"""Hatchling build hook: compiles the Swift core in release mode and puts the shared library
inside the wheel, next to the Python modules.

The library is self-contained (`-static-stdlib`: the Swift runtime is linked in, so the wheel
runs where no Swift toolchain is installed), stripped, and exports only the C API (a linker
version script). It never links libpython, so the wheel is tagged for the platform only
(py3-none-<platform>) and installs on any CPython 3.
"""

import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SCRATCH = ".build-wheel"  # ignored by git; reused between builds


class SwiftCoreBuildHook(BuildHookInterface):
    def initialize(self, version, build_data):
        root = Path(self.root)
        swift = shutil.which("swift")
        if swift is None:
            raise RuntimeError("building embedrec needs the Swift toolchain ('swift' on PATH)")
        env = {k: v for k, v in os.environ.items() if k not in ("CC", "CXX", "CFLAGS", "CXXFLAGS", "LDFLAGS")}
        cmd = [swift, "build", "-c", "release", "--product", "embedrec", "--scratch-path", str(root / SCRATCH),
               "-Xswiftc", "-static-stdlib", "-Xlinker", "-s",
               "-Xlinker", f"--version-script={root / 'build-support' / 'exports.map'}"]
        subprocess.run(cmd, cwd=root, env=env, check=True)
        library = root / SCRATCH / "release" / "libembedrec.so"
        build_data["force_include"][str(library)] = "embedrec/libembedrec.so"
        build_data["pure_python"] = False
        platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
        build_data["tag"] = f"py3-none-{platform}"
