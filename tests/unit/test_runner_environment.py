"""What ansible-playbook inherits, and how run directories are made and pruned."""

import os
import stat
from pathlib import Path

import pytest

from labsmith.ansible.runner import SSH_ARGS, _environment, run_environment
from labsmith.orchestrate.build import make_run_dir, prune_runs


def test_only_allowed_caller_variables_and_runner_settings_reach_ansible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    caller = {
        "HOME": "/home/ada",
        "LC_ALL": "C.UTF-8",
        "XDG_RUNTIME_DIR": "/run/user/1000",
        "SSH_AUTH_SOCK": "/run/agent",
        "LABSMITH_PVE_TOKEN_SECRET": "s3cret",
        "LABSMITH_PVE_ROOT_PASSWORD": "hunter2",
        "AWS_SECRET_ACCESS_KEY": "aws",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_SSH_ARGS": "-o StrictHostKeyChecking=no",
        "ANSIBLE_CONFIG": "/home/ada/loose.cfg",
    }
    monkeypatch.setattr(os, "environ", caller)
    settings = _environment(tmp_path)
    # What ansible-runner's prepare() produces: the caller's environment, labsmith's
    # settings over it, then its own callback and artifact settings.
    prepared = {**caller, **settings, "ANSIBLE_STDOUT_CALLBACK": "awx_display"}

    env = run_environment(prepared, settings)

    assert not {"LABSMITH_PVE_TOKEN_SECRET", "LABSMITH_PVE_ROOT_PASSWORD"} & set(env)
    assert "AWS_SECRET_ACCESS_KEY" not in env and "ANSIBLE_CONFIG" not in env
    assert env["ANSIBLE_HOST_KEY_CHECKING"] == "True"
    assert env["ANSIBLE_SSH_ARGS"] == SSH_ARGS
    assert SSH_ARGS.startswith("-o StrictHostKeyChecking=yes")
    assert env["ANSIBLE_STDOUT_CALLBACK"] == "awx_display"
    for name in ("HOME", "LC_ALL", "XDG_RUNTIME_DIR", "SSH_AUTH_SOCK"):
        assert env[name] == caller[name]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_run_directories_are_private_and_only_labsmiths_old_runs_are_pruned(
    tmp_path: Path,
) -> None:
    root = tmp_path / "runs"
    first = make_run_dir(root, check=True)
    assert mode(root) == 0o700 and mode(first) == 0o700
    old = [root / f"2020010{day}-000000-build-1" for day in range(1, 6)]
    for path in old:
        path.mkdir()
    (root / "notes").mkdir()
    (root / "20200101-000000-build-1.txt").write_text("not a run")

    newest = make_run_dir(root, check=False, keep=3)

    left = sorted(p.name for p in root.iterdir())
    assert left == sorted(
        ["20200105-000000-build-1", first.name, newest.name, "notes", "20200101-000000-build-1.txt"]
    )
    assert prune_runs(root, 1) == [root / "20200105-000000-build-1", first]


def test_an_existing_run_dir_given_by_the_user_keeps_its_mode(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    run = make_run_dir(shared, check=False)
    assert mode(shared) == 0o755 and mode(run) == 0o700
