"""Golden files of `ponder slurm submit --dry-run` for every example under configs/slurm/: the
layout, the ranks' srun step and the sbatch script a submit would run. Paths of this checkout are
written <ROOT> and the binary <PONDER>. PONDER_UPDATE_GOLDEN=1 rewrites the files."""
from __future__ import annotations

import difflib
import glob
import os
import subprocess
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PONDER = os.environ.get("PONDER", os.path.join(ROOT, "build", "release", "bin", "ponder"))
GOLDEN = os.path.join(ROOT, "tests", "slurm", "golden")


def dry_run(config: str) -> str:
    # No Slurm on PATH on purpose: a dry run needs none.
    env = dict(os.environ, PATH="/usr/bin:/bin")
    out = subprocess.run([PONDER, "slurm", "submit", config, "--dry-run"], capture_output=True, text=True,
                         cwd=ROOT, env=env, timeout=60)
    if out.returncode != 0:
        raise AssertionError(f"{config}: exit {out.returncode}\n{out.stderr}")
    return out.stdout.replace(os.path.realpath(PONDER), "<PONDER>").replace(ROOT, "<ROOT>")


class DryRunGolden(unittest.TestCase):
    def test_every_example_matches_its_golden_file(self):
        configs = sorted(glob.glob(os.path.join(ROOT, "configs", "slurm", "*.yaml")))
        self.assertGreaterEqual(len(configs), 2)
        for config in configs:
            name = os.path.splitext(os.path.basename(config))[0]
            with self.subTest(config=name):
                got = dry_run(config)
                path = os.path.join(GOLDEN, name + ".txt")
                if os.environ.get("PONDER_UPDATE_GOLDEN") == "1":
                    with open(path, "w") as f:
                        f.write(got)
                with open(path) as f:
                    want = f.read()
                diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True), path, "dry run"))
                self.assertEqual(want, got, "dry run differs from the golden file:\n" + diff)

    def test_the_gpu_example_keeps_tp_inside_nodes_and_pp_across(self):
        got = dry_run(os.path.join(ROOT, "configs", "slurm", "gpu-2x8-tp8-pp2.yaml"))
        self.assertIn("replica 0 stage 0: ranks 0-7 (tp 0-7) on node 1", got)
        self.assertIn("replica 0 stage 1: ranks 8-15 (tp 0-7) on node 2", got)
        for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=8", "#SBATCH --gpus-per-node=8",
                     "#SBATCH --exclusive", "#SBATCH --requeue", "#SBATCH --signal=B:USR1@300",
                     "#SBATCH --mail-type=FAIL", "export NCCL_SOCKET_IFNAME=ib0"):
            self.assertIn(line + "\n", got)
        self.assertIn("srun --mpi=pmix --relative=0 --nodes=2 --ntasks=16 --ntasks-per-node=8", got)
        self.assertIn("--kill-on-bad-exit=1 --label --job-name=r1-distill-70b-replica0 --gpus-per-node=8", got)

    def test_the_script_never_carries_the_api_key(self):
        import tempfile
        with open(os.path.join(ROOT, "configs", "slurm", "cpu-tiny.yaml")) as f:
            example = f.read().replace("model: models/", f"model: {ROOT}/models/")
        with tempfile.TemporaryDirectory() as tmp:
            def run(extra: str, check: bool = True):
                path = os.path.join(tmp, "deploy.yaml")
                with open(path, "w") as f:
                    f.write(extra + example.replace("output_dir: ponder-jobs", f"output_dir: {tmp}/jobs"))
                out = subprocess.run([PONDER, "slurm", "submit", path, "--dry-run"], capture_output=True,
                                     text=True, cwd=tmp, env=dict(os.environ, PATH="/usr/bin:/bin"), timeout=60)
                if check and out.returncode != 0:
                    raise AssertionError(out.stderr)
                return out

            # Inline: the script names a 0600 file the submit writes, never the key.
            out = run("api_key: inline-secret-42\n")
            self.assertNotIn("inline-secret-42", out.stdout + out.stderr)
            self.assertIn('\napi_key: ""\n', out.stdout)
            self.assertIn(f"\napi_key_file: {tmp}/jobs/api_key-XXXXXXXXXXXX\n", out.stdout)
            self.assertIn(f"a submit writes api_key to {tmp}/jobs/api_key-XXXXXXXXXXXX (mode 0600)", out.stderr)
            self.assertFalse(os.path.exists(os.path.join(tmp, "jobs")), "a dry run wrote files")
            # A key file: its absolute path, checked at submit.
            key = os.path.join(tmp, "key")
            with open(key, "w") as f:
                f.write("file-secret-43\n")
            os.chmod(key, 0o600)
            out = run("api_key_file: key\n")
            self.assertIn(f"api_key_file: {key}\n", out.stdout)
            self.assertNotIn("file-secret-43", out.stdout + out.stderr)
            os.chmod(key, 0o644)
            out = run("api_key_file: key\n", check=False)
            self.assertNotEqual(out.returncode, 0)
            self.assertIn(f"api_key_file {key} has mode 0644", out.stderr)
            os.chmod(key, 0o600)
            out = run("api_key_file: key\napi_key: both\n", check=False)
            self.assertNotEqual(out.returncode, 0)
            self.assertIn("'api_key' and 'api_key_file' are both set", out.stderr)


if __name__ == "__main__":
    unittest.main()
