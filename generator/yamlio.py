"""The one YAML writer: every generated YAML byte goes through `dump`, with one configuration."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import yaml

from . import memo, parallel


# libyaml's emitter (5x faster on the megabytes of upstream CRDs) when present; the pure-Python one emits the
# same bytes (tests/test_render.py checks both): block style, insertion order, lists flush with their key.
class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


class _PyDumper(yaml.SafeDumper):
    pass


for _d in (_Dumper, _PyDumper):
    _d.add_representer(str, _str)


def dump(doc: Any, dumper: type = _Dumper) -> str:
    return yaml.dump(doc, Dumper=dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100_000)


def dump_all(docs: Iterable[Any]) -> str:
    return dump_each([list(docs)])[0]


def dump_each(batches: Sequence[list[Any]], index: str | None = None) -> list[str]:
    """[dump_all(docs) for docs in batches]: each through the memo, and what it does not hold emitted half here, half
    in a forked process when it is much (a cold render at 1000 services emits 2,000 values files and Applications,
    each also written to the memo: 4 s on one core).

    `index` names the set (an environment's values files and Applications): its texts are also kept in one entry by
    the hash of their documents, so that the next run reads one entry instead of 2,000 (one change at 1000 services)."""
    m = memo.active()
    if m is None:
        return ["---\n".join(dump(doc) for doc in docs) for docs in batches]
    keys = [memo.key_of(docs) for docs in batches]
    look = memo.Index(m, f"emitted {index}".encode()) if index is not None else m
    out: list[str | None] = [look.lookup("dump", key) for key in keys]
    todo = [i for i, text in enumerate(out) if text is None]
    m.misses += len(todo)

    def emit(i: int) -> str:  # each process stores what it emitted
        text = "---\n".join(dump(doc) for doc in batches[i])
        m.store("dump", keys[i], text)
        return text
    for i, text in zip(todo, parallel.halves(emit, todo)):
        out[i] = text
        if isinstance(look, memo.Index):
            look.remember("dump", keys[i], text)
    if isinstance(look, memo.Index):
        look.save()
    return out  # type: ignore[return-value]


def banner(lines: Iterable[str]) -> str:
    return "".join(f"# {line}\n" if line else "#\n" for line in lines)


class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe loader (libyaml's when present) that also reads everything real helm emits.

    YAML 1.1 resolves a plain `=` to the 'value' type, which PyYAML's safe loader cannot construct;
    kube-prometheus-stack renders one (in a Grafana dashboard). Kubernetes (YAML 1.2) reads it as the string "=".
    """


Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))
# Kubernetes converts YAML to JSON, where a date is a string; so must we (and JSON caches need it).
Loader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))


def load_all(text: str, remembered: bool = True) -> list[Any]:
    """Parse generated YAML back (tests, hydration sorting, validation): the fast C loader when present, or the
    memo's copy of the same text's documents (JSON reads about 10x faster than YAML). remembered=False for text
    that is parsed once (helm's output, which the hydration cache keeps parsed): no memo entry is written for it."""
    m = memo.active()
    if m is None or not remembered:
        return _parse(text)

    def parse() -> list[Any]:
        docs = _parse(text)
        if not memo.json_safe(docs):
            raise memo.Unstorable(docs)
        return docs
    return m.get("load", text.encode("utf-8"), parse, stored_form=True)


def load_new(datas: list[bytes]) -> dict[bytes, list[Any] | str]:
    """load_all of each of these files (bytes) that the memo does not hold yet, half of them in a forked process when
    they are many (a cold run: 4 s of PyYAML at 1000 services): file -> its documents, or the message of the error it
    does not parse with. Files the memo holds are left out: load_all gives them from there, as fast."""
    from . import parallel

    m = memo.active()
    todo = sorted({d for d in datas if m is None or not m.has("load", d)}) if len(datas) >= parallel.MIN_ITEMS else []
    return dict(zip(todo, parallel.halves(documents, todo)))


def documents(data: bytes) -> list[Any] | str:
    """load_all of a file's bytes, or the message of the error it does not parse with (a finding, not a crash)."""
    try:
        return load_all(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        return " ".join(str(exc).split())


def _parse(text: str) -> list[Any]:
    return [doc for doc in yaml.load_all(text, Loader=Loader) if doc is not None]
