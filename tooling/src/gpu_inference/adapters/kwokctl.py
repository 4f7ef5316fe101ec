"""kwokctl adapter: a real Kubernetes control plane from local binaries, with fake nodes.

Always `--runtime binary` with every component binary given as a local path, so nothing is
downloaded. kwokctl's work directory and kubeconfig are placed under the caller's directory
(KWOK_WORKDIR, --kubeconfig) so that ~/.kube/config and ~/.kwok stay untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from gpu_inference.adapters import process

log = logging.getLogger(__name__)

#: Control-plane binaries kwokctl runs, by its flag name.
COMPONENT_BINARIES = {
    "--etcd-binary": "etcd",
    "--kube-apiserver-binary": "kube-apiserver",
    "--kube-controller-manager-binary": "kube-controller-manager",
    "--kube-scheduler-binary": "kube-scheduler",
    "--kwok-controller-binary": "kwok",
}


class Kwokctl:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.binary = process.find_binary("kwokctl")
        # kwokctl runs kubectl itself: it must be on PATH.
        process.find_binary("kubectl")

    @property
    def env(self) -> dict[str, str]:
        return {"KWOK_WORKDIR": str(self.workdir)}

    def create_args(
        self,
        name: str,
        *,
        kubeconfig: Path,
        config_file: Path,
        extra_args: Sequence[str] = (),
        dry_run: bool = False,
        wait_s: int = 120,
    ) -> list[str]:
        args = [
            "create",
            "cluster",
            "--name",
            name,
            "--runtime",
            "binary",
            "--kubeconfig",
            str(kubeconfig),
            "--config",
            str(config_file),
            "--wait",
            f"{wait_s}s",
            "--disable-qps-limits",
        ]
        for flag, tool in COMPONENT_BINARIES.items():
            args += [flag, process.find_binary(tool)]
        for extra in extra_args:
            args += ["--extra-args", extra]
        if dry_run:
            args.append("--dry-run")
        return args

    def create_cluster(
        self,
        name: str,
        *,
        kubeconfig: Path,
        config_file: Path,
        extra_args: Sequence[str] = (),
        wait_s: int = 120,
    ) -> None:
        args = self.create_args(
            name, kubeconfig=kubeconfig, config_file=config_file, extra_args=extra_args, wait_s=wait_s
        )
        process.run("kwokctl", args, timeout=wait_s + 60, env=self.env)

    def dry_run(
        self, name: str, *, kubeconfig: Path, config_file: Path, extra_args: Sequence[str] = ()
    ) -> str:
        """What `create cluster` would do, without doing it (used to prove no download happens)."""
        args = self.create_args(
            name, kubeconfig=kubeconfig, config_file=config_file, extra_args=extra_args, dry_run=True
        )
        return process.run("kwokctl", args, timeout=60, env=self.env).stdout

    def delete_cluster(self, name: str, *, kubeconfig: Path) -> None:
        process.run(
            "kwokctl",
            ["delete", "cluster", "--name", name, "--kubeconfig", str(kubeconfig)],
            timeout=120,
            env=self.env,
            check=False,
        )

    def clusters(self) -> list[str]:
        out = process.run("kwokctl", ["get", "clusters"], timeout=30, env=self.env, check=False)
        return [line.strip() for line in out.stdout.splitlines() if line.strip()]
