"""The installed package is self-contained: the core library (both builds: baseline and AVX2)
needs no Swift toolchain, never links libpython, exports exactly the C API of the header, and
the ctypes signatures match it. The build for the CPU is chosen at import."""

import ctypes
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import embedrec
from embedrec import _lib
from conftest import REPO

HEADER = REPO / "Sources" / "CEmbedrec" / "include" / "embedrec.h"
LIBRARY = _lib.library_path()
PACKAGE = Path(embedrec.__file__).resolve().parent
BUILDS = [PACKAGE / _lib.LIBRARY_NAME, PACKAGE / _lib.AVX2_LIBRARY_NAME]


def toolchain_dir():
    swift = shutil.which("swift")
    return Path(swift).resolve().parents[2] if swift else Path("/opt/swift")


def dynamic_section(library):
    return subprocess.run(["readelf", "-d", str(library)], capture_output=True, text=True, check=True).stdout


def test_library_is_inside_the_installed_package():
    assert LIBRARY.parent == PACKAGE
    assert "site-packages" in str(LIBRARY), "tests must run against the installed wheel"
    assert all(build.is_file() for build in BUILDS), BUILDS


def test_the_build_for_this_cpu_is_loaded():
    expected = "avx2" if _lib.AVX2_CPU_FLAGS <= _lib.cpu_flags() else "baseline"
    assert embedrec.core_kernels == expected
    assert LIBRARY.name == (_lib.AVX2_LIBRARY_NAME if expected == "avx2" else _lib.LIBRARY_NAME)


PROBE = ("import embedrec, json; "
         "df = embedrec.datasets.synthetic(n_users=300, n_items=80, ratings_per_user=30, seed=1); "
         "m = embedrec.MatrixFactorization(n_factors=12, epochs=3, n_threads=1); m.fit(df); "
         "n = embedrec.EmbeddingNN(8, 8, layers=(16,), epochs=2, n_threads=1); n.fit(df); "
         "print(json.dumps([embedrec.core_kernels, m.predict(df)[:50].tolist(), n.predict(df)[:50].tolist()]))")


def test_both_builds_train_to_the_same_numbers():
    """The AVX2 build runs matrix factorisation's operations in the same order, only wider:
    the same bits. The networks' dense products fuse each multiply-add there (one rounding
    instead of two), so a network's predictions agree to float rounding, not bit for bit."""
    if not _lib.AVX2_CPU_FLAGS <= _lib.cpu_flags():
        pytest.skip("this CPU cannot run the AVX2 build")
    runs = {}
    for variant in ("baseline", "avx2"):
        env = {k: v for k, v in os.environ.items() if k != "EMBEDREC_LIBRARY"}
        env["EMBEDREC_KERNELS"] = variant
        out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        runs[variant] = json.loads(out.stdout)
        assert runs[variant][0] == variant
    # MF bit for bit: its kernels fix their operation order (explicit 8-lane vectors, no fused
    # multiply-add), so wider registers change the speed only.
    assert runs["baseline"][1] == runs["avx2"][1]
    # The network: the same sums in the same order, each product rounded once instead of twice.
    baseline, avx2 = np.array(runs["baseline"][2]), np.array(runs["avx2"][2])
    assert np.allclose(baseline, avx2, rtol=1e-4, atol=1e-4), np.abs(baseline - avx2).max()
    assert not np.array_equal(baseline, avx2), "the AVX2 build's dense products are expected to be fused"


def test_a_bad_kernel_choice_is_an_error_not_a_crash():
    env = {k: v for k, v in os.environ.items() if k != "EMBEDREC_LIBRARY"}
    env["EMBEDREC_KERNELS"] = "sse9"
    out = subprocess.run([sys.executable, "-c", "import embedrec"], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "EMBEDREC_KERNELS must be 'baseline' or 'avx2'" in out.stderr


@pytest.mark.parametrize("library", BUILDS, ids=lambda p: p.name)
def test_library_needs_nothing_from_the_toolchain(library):
    section = dynamic_section(library)
    needed = re.findall(r"\(NEEDED\).*\[(.+)\]", section)
    assert needed, section
    assert not [n for n in needed if "swift" in n.lower() or "python" in n.lower() or "Foundation" in n], needed
    assert "[$ORIGIN]" in section  # RUNPATH: only the package's own folder
    ldd = subprocess.run(["ldd", str(library)], capture_output=True, text=True, check=True).stdout
    assert "not found" not in ldd, ldd
    assert str(toolchain_dir()) not in ldd, ldd


def test_library_loads_and_trains_with_the_toolchain_hidden(tmp_path):
    """Mounts an empty tmpfs over the toolchain's folder in a private mount namespace (as a
    machine without Swift would look) and trains a model there."""
    hidden = toolchain_dir()
    if shutil.which("unshare") is None or not hidden.is_dir():
        pytest.skip("needs unshare(1) and a toolchain folder to hide")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"mount namespaces are not permitted here: {probe.stderr.decode().strip()}")
    script = ("import embedrec, os; "
              f"assert not os.listdir({str(hidden)!r}); "
              "df = embedrec.datasets.synthetic(n_users=50, n_items=20, ratings_per_user=8); "
              "m = embedrec.MatrixFactorization(n_factors=4, epochs=2); m.fit(df); "
              "print('ok', m.predict(df)[:2])")
    cmd = ["unshare", "-m", "sh", "-c",
           f"mount -t tmpfs none {hidden} && exec {sys.executable} -c \"{script}\""]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")


def test_wheel_is_tagged_for_the_platform_not_the_python():
    dist = importlib.metadata.distribution("embedrec")
    wheel = dist.read_text("WHEEL")
    assert "Root-Is-Purelib: false" in wheel
    tags = re.findall(r"^Tag: (.+)$", wheel, re.M)
    assert tags and all(t.startswith("py3-none-") and "linux" in t for t in tags), tags


def header_prototypes():
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    protos = {}
    for ret, name, params in re.findall(r"(\w[\w ]*?\**)\s*\b(embedrec_\w+)\s*\(([^)]*)\)\s*;", text):
        params = " ".join(params.split())
        protos[name] = (ret.strip(), [] if params in ("", "void") else [p.strip() for p in params.split(",")])
    return protos


C_TO_CTYPES = {"int64_t": ctypes.c_int64, "int32_t": ctypes.c_int32, "uint64_t": ctypes.c_uint64,
               "double": ctypes.c_double}


@pytest.mark.parametrize("library", BUILDS, ids=lambda p: p.name)
def test_header_exports_and_ctypes_agree(library):
    protos = header_prototypes()
    assert len(protos) >= 14
    exported = set(re.findall(r" T (embedrec_\w+)$",
                              subprocess.run(["nm", "-D", "--defined-only", str(library)], capture_output=True,
                                             text=True, check=True).stdout, re.M))
    assert exported == set(protos), (exported ^ set(protos))
    assert set(_lib._SIGNATURES) == set(protos)
    for name, (ret, params) in protos.items():
        restype, argtypes = _lib._SIGNATURES[name]
        assert len(argtypes) == len(params), name
        for param, argtype in zip(params, argtypes):
            ctype = param.rsplit(" ", 1)[0] if " " in param else param
            if "*" in param or "Handle" in param:
                assert argtype is ctypes.c_void_p or argtype.__name__.startswith("LP_"), (name, param)
            else:
                assert argtype is C_TO_CTYPES[ctype.replace("const ", "")], (name, param, argtype)
        assert restype is (ctypes.c_char_p if "char" in ret else ctypes.c_int32), name


def test_header_is_usable_from_c(tmp_path):
    """A C program compiled with -Wall -Werror against the header calls the library."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    source = tmp_path / "probe.c"
    source.write_text(r'''
#include <stdio.h>
#include "embedrec.h"
int main(void) {
    EmbedrecModelHandle m = NULL;
    if (embedrec_mf_create(3, 2, 4, 1, 0, 0, 0.0, 0.0, 0.1, 1, &m) != EMBEDREC_OK) return 1;
    int32_t users[2] = {0, 2}, items[2] = {1, 5};
    float out[2];
    int32_t status = embedrec_model_predict(m, users, items, 2, 1, out);
    if (status != EMBEDREC_ERR_INVALID_ARGUMENT) return 2;
    printf("%s\n", embedrec_last_error());
    return embedrec_model_free(m) == EMBEDREC_OK ? 0 : 3;
}
''')
    exe = tmp_path / "probe"
    subprocess.run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{HEADER.parent}", str(source), "-o", str(exe),
                    str(LIBRARY), f"-Wl,-rpath,{LIBRARY.parent}"], check=True)
    result = subprocess.run([str(exe)], capture_output=True, text=True)
    assert result.returncode == 0, result
    assert "item index 5" in result.stdout
