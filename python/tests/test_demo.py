"""The README's demo runs and prints what it promises."""

import subprocess
import sys

from conftest import REPO


def test_demo_trains_and_recommends():
    result = subprocess.run([sys.executable, str(REPO / "examples" / "demo.py")], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "test RMSE" in out and "top-5 recommendations" in out
    rmse = float(out.split("test RMSE ")[1].split()[0])
    baseline = float(out.split("predicting the mean: ")[1].split(")")[0])
    assert rmse < 0.7 * baseline, (rmse, baseline)
    assert out.count("predicted") >= 15  # 5 recommendations for each of 3 users
