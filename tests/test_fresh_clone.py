"""A clean clone installs with `make install` and serves the site, vendor assets included,
and its test suite runs from the clone alone.

This is what a new user does: no .venv, node_modules or instance/ to lean on, and nothing
beside the clone (no `shared/` folder above it, as the development checkout has). It takes
minutes (pip and npm use their caches), so it is marked slow; CI runs it.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from push2fa.config import PROJECT_ROOT
from tests.web.auth.mailbox import free_port

pytestmark = pytest.mark.slow

INSTALL_TIMEOUT = 600
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
LEFTOVERS = (".venv", "node_modules", "instance", "push2fa/static/vendor")


def clean_environ(**extra: str) -> dict[str, str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PUSH2FA_", "AUTHY_", "VIRTUAL_ENV", "PYTHONPATH"))
    }
    venv_bin = str(Path(os.environ.get("VIRTUAL_ENV", "/nonexistent")) / "bin")
    path = [p for p in environ.get("PATH", "").split(os.pathsep) if p and p != venv_bin]
    environ["PATH"] = os.pathsep.join(path)
    return environ | extra


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """HEAD of this repository, cloned and installed with `make install`."""
    if shutil.which("git") is None or shutil.which("make") is None:
        pytest.fail("the fresh-clone check needs git and make")
    target = tmp_path_factory.mktemp("fresh") / "push2fa"
    beside = [parent / "shared" for parent in target.parents if (parent / "shared").exists()]
    assert not beside, f"the clone must have nothing beside it, found {beside}"
    subprocess.run(
        ["git", "clone", "--quiet", str(PROJECT_ROOT), str(target)], check=True, timeout=120
    )
    for leftover in LEFTOVERS:
        assert not (target / leftover).exists(), f"{leftover} is committed to git"

    install = subprocess.run(
        ["make", "install"],
        cwd=target,
        env=clean_environ(),
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )

    assert install.returncode == 0, f"make install failed:\n{install.stdout}\n{install.stderr}"
    yield target


@pytest.fixture
async def served(clone: Path, tmp_path: Path) -> AsyncIterator[str]:
    """`push2fa serve` from the clone's own virtualenv, on a free port."""
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [str(clone / ".venv/bin/push2fa"), "serve", "--bind", f"127.0.0.1:{port}"],
        cwd=clone,
        env=clean_environ(PUSH2FA_INSTANCE_PATH=str(tmp_path / "instance")),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        await wait_until_healthy(base_url, process, tmp_path / "serve.log")
        yield base_url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail("push2fa serve did not stop on SIGINT")
        log.close()


async def wait_until_healthy(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while True:
            if process.poll() is not None:
                pytest.fail(f"push2fa serve exited with {process.returncode}:\n{log.read_text()}")
            try:
                async with http.get(f"{base_url}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if loop.time() > deadline:
                pytest.fail(f"no /healthz after {START_TIMEOUT}s:\n{log.read_text()}")
            await asyncio.sleep(0.1)


def test_make_install_copies_the_vendor_assets(clone: Path):
    vendor = clone / "push2fa" / "static" / "vendor"

    assert sorted(p.name for p in vendor.iterdir()) == [
        ".installed",  # the stamp: `make run` re-runs npm only when package-lock.json changes
        "bootstrap.bundle.min.js",
        "bootstrap.min.css",
        "socket.io.min.js",
    ]


async def test_fresh_clone_serves_the_login_page_with_local_assets(served: str):
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        async with http.get(f"{served}/healthz") as response:
            assert await response.json() == {"status": "ok"}
        async with http.get(f"{served}/auth/login") as response:
            assert response.status == 200
            page = await response.text()
            csp = response.headers["Content-Security-Policy"]

        assets = re.findall(r'<(?:link rel="stylesheet" href|script src)="([^"]+)"', page)
        vendor = [url for url in assets if url.startswith("/static/vendor/")]
        assert any(url.endswith(".css") for url in vendor), assets
        assert any(url.endswith(".js") for url in vendor), assets
        assert all(url.startswith("/static/") for url in assets), f"not local: {assets}"
        assert "cdn.jsdelivr.net" not in csp  # local assets: the CDN is not even allowed
        for url in assets:
            async with http.get(f"{served}{url}") as response:
                assert response.status == 200, url
                assert len(await response.read()) > 0, url


def test_the_suite_runs_from_the_clone_alone(clone: Path):
    """Collect every test and run those that read data files, with the clone first on the
    path and no `shared/` anywhere above it: the project carries all its tests need."""
    assert not [p for p in clone.parents if (p / "shared").exists()]
    env = clean_environ(PYTHONPATH=str(clone))
    where = subprocess.run(
        [sys.executable, "-c", "import push2fa; print(push2fa.__file__)"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip().startswith(str(clone)), "the checkout's code, not the clone's"
    quick = ["tests/authy", "tests/test_docs.py", "tests/test_config.py"]
    for args in (["--collect-only", "tests"], quick):
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
        assert result.returncode == 0, f"{args}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
