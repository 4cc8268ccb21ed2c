"""generator.upstream.charts: charts.lock, resolving a verified upstream chart archive, and pulling one with real helm
from a real (local) Helm chart repository."""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import replace
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from generator.helm import _env
from generator.upstream import charts
from generator.upstream.charts import (
    Archive, ChartSourceError, dump_lock, fetch, read_lock, resolve_chart, verify, write_lock,
)

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "charts.lock"
MIRROR = REPO.parent / "shared" / "charts"
MS = ("metrics-server", "3.13.1", "https://kubernetes-sigs.github.io/metrics-server")
MS_FILE = "metrics-server-3.13.1.tgz"
MS_SHA = "89e6df9a22e6d7f5bc736eb185a39da31cbedc7fed1be476c56549e0e3b96eb1"
MS_REPO_ORIGIN = (f"chart repository {MS[2]} (recorded by make charts, checked against its index.yaml digest)")
PINNED = {
    ("kube-prometheus-stack", "88.5.3", "https://prometheus-community.github.io/helm-charts"),
    ("argo-rollouts", "2.41.0", "https://argoproj.github.io/argo-helm"),
    ("aws-load-balancer-controller", "3.5.0", "https://aws.github.io/eks-charts"),
    ("aws-ebs-csi-driver", "2.64.0", "https://kubernetes-sigs.github.io/aws-ebs-csi-driver"),
    MS,
}

needs_mirror = pytest.mark.skipif(not (MIRROR / MS_FILE).is_file(), reason=f"no chart mirror at {MIRROR}")


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    monkeypatch.delenv("ECO2_CHARTS", raising=False)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A throwaway repository root with the committed lock; its ../shared/charts and .cache/charts are empty."""
    (tmp_path / "root").mkdir()
    shutil.copy(LOCK, tmp_path / "root" / "charts.lock")
    return tmp_path / "root"


def _archive(dest: Path, tamper: bool = False) -> Path:
    """A copy of the metrics-server archive in dest; with tamper, one byte in the middle flipped."""
    dest.mkdir(parents=True, exist_ok=True)
    data = bytearray((MIRROR / MS_FILE).read_bytes())
    if tamper:
        data[len(data) // 2] ^= 0x01
    (dest / MS_FILE).write_bytes(data)
    return dest / MS_FILE


def _with_ms(lock: Path, *archives: Archive) -> Path:
    """Rewrite lock so that metrics-server accepts exactly `archives`."""
    write_lock(lock, [replace(c, archives=archives) if c.name == MS[0] else c for c in read_lock(lock)])
    return lock


# ---------------------------------------------------------------- the lock


def test_committed_lock_pins_the_five_charts_and_is_canonical():
    locked = read_lock(LOCK)
    assert {(c.name, c.version, c.repo) for c in locked} == PINNED
    assert all(c.archives and "(the ../shared/charts mirror)" in c.archives[0].origin for c in locked)
    assert dump_lock(locked) == LOCK.read_text(encoding="utf-8"), "charts.lock is not in the form make charts writes"


@needs_mirror
def test_the_shared_mirror_verifies_against_the_lock():
    sums = dict(line.split()[::-1] for line in (MIRROR / "SHA256SUMS").read_text().splitlines())
    for c in read_lock(LOCK):
        path = resolve_chart(c.name, c.version, c.repo)
        assert path == MIRROR / c.filename
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sums[c.filename] == c.archives[0].sha256
    assert verify(LOCK, MIRROR) == []


@pytest.mark.parametrize("text, message", [
    ("", "no [[chart]] entries"),
    ('[[chart]]\nname = "../x"\nversion = "1"\nrepo = "https://e.x"\n', "Helm chart name"),
    ('[[chart]]\nname = "x"\nversion = "1"\nrepo = "https://e.x"\narchives = [{ sha256 = "ABC", origin = "o" }]\n',
     "lowercase hex sha256"),
])
def test_a_malformed_lock_is_refused(tmp_path, text, message):
    (tmp_path / "charts.lock").write_text(text)
    with pytest.raises(ChartSourceError, match=message.replace("[", r"\[")):
        read_lock(tmp_path / "charts.lock")


# ---------------------------------------------------------------- resolving


@needs_mirror
def test_resolution_order_explicit_then_env_then_shared_then_cache(root, tmp_path, monkeypatch):
    explicit, env = tmp_path / "explicit", tmp_path / "env"
    shared, cache = tmp_path / "shared" / "charts", root / ".cache" / "charts"
    for d in (explicit, env, shared, cache):
        _archive(d)
    monkeypatch.setenv("ECO2_CHARTS", str(env))
    assert resolve_chart(*MS, explicit=explicit, repo_root=root) == explicit / MS_FILE
    assert resolve_chart(*MS, repo_root=root) == env / MS_FILE
    monkeypatch.delenv("ECO2_CHARTS")
    assert resolve_chart(*MS, repo_root=root) == shared / MS_FILE
    (shared / MS_FILE).unlink()
    assert resolve_chart(*MS, repo_root=root) == cache / MS_FILE
    shutil.rmtree(shared.parent)
    assert resolve_chart(*MS, repo_root=root) == cache / MS_FILE


@needs_mirror
def test_explicit_and_env_are_final(root, tmp_path, monkeypatch):
    _archive(tmp_path / "shared" / "charts")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ChartSourceError) as err:
        resolve_chart(*MS, explicit=tmp_path / "empty", repo_root=root)
    assert f"{tmp_path / 'empty'} (--charts) has no {MS_FILE}" in str(err.value)
    assert "shared" not in str(err.value).split(". Provide")[0]
    monkeypatch.setenv("ECO2_CHARTS", str(tmp_path / "nowhere"))
    with pytest.raises(ChartSourceError, match=r"nowhere \(\$ECO2_CHARTS\) does not exist"):
        resolve_chart(*MS, repo_root=root)


@needs_mirror
def test_a_tampered_archive_is_refused_not_skipped(root, tmp_path):
    bad = _archive(tmp_path / "shared" / "charts", tamper=True)
    _archive(root / ".cache" / "charts")  # a good copy later in the order must not be used instead
    with pytest.raises(ChartSourceError) as err:
        resolve_chart(*MS, repo_root=root)
    message = str(err.value)
    assert str(bad) in message
    assert hashlib.sha256(bad.read_bytes()).hexdigest() in message
    assert MS_SHA in message and "tampered" in message


@needs_mirror
def test_a_file_changed_in_place_is_hashed_again(root, tmp_path):
    good = _archive(tmp_path / "given")
    assert resolve_chart(*MS, explicit=good.parent, repo_root=root) == good
    st = good.stat()
    _archive(good.parent, tamper=True)  # same path and size: only the mtime tells the cache
    os.utime(good, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    with pytest.raises(ChartSourceError, match="is not an accepted archive"):
        resolve_chart(*MS, explicit=good.parent, repo_root=root)


@needs_mirror
def test_a_chart_missing_from_the_lock(root, tmp_path):
    _archive(tmp_path / "shared" / "charts")
    for name, version, repo in [(MS[0], "9.9.9", MS[2]), (MS[0], MS[1], "https://example.com/charts"),
                                ("not-locked", "1.0.0", MS[2])]:
        with pytest.raises(ChartSourceError) as err:
            resolve_chart(name, version, repo, repo_root=root)
        assert f"chart {name} {version} from {repo} is not pinned in {root / 'charts.lock'}" in str(err.value)
        assert "run `make charts` to pin it" in str(err.value)


def test_no_source_at_all_names_the_three_ways(root):
    with pytest.raises(ChartSourceError) as err:
        resolve_chart(*MS, repo_root=root)
    message = str(err.value)
    assert f"no {MS_FILE}" in message
    for way in ("`--charts DIR`", "`$ECO2_CHARTS`", "`../shared/charts`", "`make charts`"):
        assert way in message
    assert "(../shared/charts) does not exist" in message and "(make charts) does not exist" in message


@needs_mirror
def test_verify_cli(tmp_path):
    _archive(tmp_path / "bad", tamper=True)
    run = functools.partial(subprocess.run, capture_output=True, text=True, cwd=REPO, timeout=60)
    ok = run([sys.executable, "-m", "generator.upstream.charts", "verify", "--dir", str(MIRROR)])
    assert ok.returncode == 0 and "all 5 charts verified" in ok.stdout, ok.stderr
    bad = run([sys.executable, "-m", "generator.upstream.charts", "verify", "--dir", str(tmp_path / "bad")])
    assert bad.returncode == 1
    assert f"{tmp_path / 'bad' / MS_FILE}: sha256" in bad.stderr
    assert f"{tmp_path / 'bad' / 'argo-rollouts-2.41.0.tgz'}: missing" in bad.stderr


# ---------------------------------------------------------------- fetching from a real chart repository


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def chart_repo(helm, tmp_path, monkeypatch):
    """A real Helm chart repository (archive + `helm repo index`) served on 127.0.0.1; yields (url, dir)."""
    monkeypatch.setenv("ECO2_CACHE", str(tmp_path / "eco2-cache"))  # helm's homes: nothing shared, nothing leaks
    served = tmp_path / "served"
    _archive(served)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    proc = subprocess.run([str(helm.path), "repo", "index", str(served), "--url", url],
                          capture_output=True, text=True, env=_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f"digest: {MS_SHA}" in (served / "index.yaml").read_text()
    yield url, served
    server.shutdown()
    server.server_close()


def _no_index(url):
    raise AssertionError(f"index.yaml must not be consulted here ({url})")


@needs_mirror
def test_fetch_accepts_a_locked_digest(chart_repo, helm, root, tmp_path):
    url, _ = chart_repo
    lock, dest = root / "charts.lock", tmp_path / "dest"
    before = lock.read_bytes()
    _archive(dest, tamper=True)  # a stale wrong copy is replaced
    written = fetch(lock, dest, helm, repo_override={MS[2]: url}, charts=[MS[0]], opener=_no_index)
    assert written == [MS_FILE]
    assert hashlib.sha256((dest / MS_FILE).read_bytes()).hexdigest() == MS_SHA
    assert sorted(p.name for p in dest.iterdir()) == [MS_FILE]
    assert lock.read_bytes() == before
    # Verified already: nothing is pulled again (an unreachable repository proves it).
    assert fetch(lock, dest, helm, repo_override={MS[2]: "http://127.0.0.1:9"}, charts=[MS[0]]) == []


@needs_mirror
def test_fetch_records_a_new_repository_digest_checked_against_index_yaml(chart_repo, helm, root, tmp_path,
                                                                         monkeypatch, capsys):
    url, _ = chart_repo
    lock, dest = root / "charts.lock", tmp_path / "dest"
    mirror = Archive("0" * 64, "helm package of something else (the ../shared/charts mirror)")
    _with_ms(lock, mirror)
    assert fetch(lock, dest, helm, repo_override={MS[2]: url}, charts=[MS[0]]) == [MS_FILE]

    (ms,) = [c for c in read_lock(lock) if c.name == MS[0]]
    assert ms.archives == (mirror, Archive(MS_SHA, f"{MS_REPO_ORIGIN}, pulled from the mirror {url}"))
    assert lock.read_text() == dump_lock(read_lock(lock))  # rewritten in canonical form
    out = capsys.readouterr().out
    assert f"recorded sha256 {MS_SHA} of {MS_FILE}" in out and "commit charts.lock" in out
    assert sorted(p.name for p in dest.iterdir()) == [MS_FILE]
    monkeypatch.setenv("ECO2_CHARTS", str(dest))
    assert resolve_chart(*MS, repo_root=root) == dest / MS_FILE
    # Now recorded: the next run accepts it straight from the lock.
    (dest / MS_FILE).unlink()
    before = lock.read_bytes()
    assert fetch(lock, dest, helm, repo_override={MS[2]: url}, charts=[MS[0]], opener=_no_index) == [MS_FILE]
    assert lock.read_bytes() == before


@needs_mirror
def test_fetch_pins_a_chart_locked_without_archives(chart_repo, helm, root, tmp_path):
    url, _ = chart_repo
    lock = _with_ms(root / "charts.lock")  # `archives = []`: a new chart, not pinned yet
    assert "archives = []" in lock.read_text()
    fetch(lock, tmp_path / "dest", helm, repo_override={MS[2]: url}, charts=[MS[0]])
    (ms,) = [c for c in read_lock(lock) if c.name == MS[0]]
    assert [a.sha256 for a in ms.archives] == [MS_SHA]


@needs_mirror
def test_fetch_refuses_a_digest_index_yaml_does_not_publish(chart_repo, helm, root, tmp_path):
    url, served = chart_repo
    index = served / "index.yaml"
    index.write_text(index.read_text().replace(MS_SHA, "f" * 64))
    lock, dest = _with_ms(root / "charts.lock", Archive("0" * 64, "elsewhere")), tmp_path / "dest"
    before = lock.read_bytes()
    with pytest.raises(ChartSourceError) as err:
        fetch(lock, dest, helm, repo_override={MS[2]: url}, charts=[MS[0]])
    assert f"sha256 {MS_SHA}, but its index.yaml publishes {'f' * 64}" in str(err.value)
    assert list(dest.iterdir()) == []
    assert lock.read_bytes() == before


@needs_mirror
def test_fetch_refuses_a_digest_other_than_the_recorded_repository_one(chart_repo, helm, root, tmp_path):
    url, _ = chart_repo
    recorded = Archive("a" * 64, MS_REPO_ORIGIN)
    lock, dest = _with_ms(root / "charts.lock", Archive("0" * 64, "elsewhere"), recorded), tmp_path / "dest"
    before = lock.read_bytes()
    _archive(dest, tamper=True)
    with pytest.raises(ChartSourceError) as err:
        fetch(lock, dest, helm, repo_override={MS[2]: url}, charts=[MS[0]], opener=_no_index)
    assert f"already records {'a' * 64} from the chart repository" in str(err.value)
    assert list(dest.iterdir()) == []  # the download and the stale copy are both gone
    assert lock.read_bytes() == before


def test_fetch_of_an_unknown_chart(root, tmp_path, helm):
    with pytest.raises(ChartSourceError, match="not in .*: nope"):
        fetch(root / "charts.lock", tmp_path / "dest", helm, charts=["nope"])


def test_index_digest_parses_the_published_digest():
    import io

    index = (b"apiVersion: v1\nentries:\n  metrics-server:\n  - version: 3.13.0\n    digest: " + b"a" * 64
             + b"\n  - version: 3.13.1\n    digest: " + b"b" * 64 + b"\n")
    assert charts.index_digest("https://x.example/", *MS[:2], opener=lambda url: io.BytesIO(index)) == "b" * 64
    with pytest.raises(ChartSourceError, match="publishes no single digest for metrics-server 9.9.9"):
        charts.index_digest("https://x.example", MS[0], "9.9.9", opener=lambda url: io.BytesIO(index))
