"""What a plaintext credential is: one definition, used to find them (policy) and to hide them (diff redaction).

Three kinds of evidence, each judged here and nowhere else:
- a value's shape, wherever it is (a private key, a token with a known prefix, `scheme://user:pw@host`);
- the name it is written under: a mapping key (`adminPassword`, `clientSecret`), the name of a list
  entry that holds it (`env: [{name: DB_PASSWORD, value: …}]`, Argo CD's helm `parameters`), or a
  `key = value` line inside a config file carried as a string;
- the object: a Secret's `data` and `stringData`.

A name is judged by its words (camelCase, snake_case, kebab-case, dotted and SCREAMING_CASE all
split the same way) and above all its last word, which says what the value is: `dbPassword` and
`DB_PASSWORD` hold a password; `passwordKey` names a key inside a Secret, `credentialsSecret`,
`existingSecret` and `secretName` name a Secret, `tokenFile` names a file. Those references must stay
visible to a reviewer and are never flagged.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Callable, Iterator

# Values that are credentials whatever key they sit under, with what to call them in a finding.
TOKENS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.DOTALL), "a private key"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), "a JSON Web Token"),
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"), "a GitHub token"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), "a Slack token"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{20,}"), "an API secret key (sk-...)"),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{16,}"), "a bearer token"),
]
# scheme://user:password@host — group 2 is the password.
URL_PASSWORD = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:)([^/\s@]+)(@)")

# Last words that say the value is a credential.
_SECRET_WORDS = frozenset({"password", "passwd", "pwd", "pass", "passphrase", "token", "credential", "credentials",
                           "apikey"})
# A last word `secret` or `key` is a credential only right after one of these: `clientSecret`, `AWS_SECRET_ACCESS_KEY`,
# `apiKey`, `privateKey`; alone, `secret:` and `key:` name a Secret or a key in one (Kubernetes' own usage), and
# after another noun they name a Secret holding it (`bearerTokenSecret`, `passwordKey`, `tlsSecret`).
_QUALIFIERS = frozenset({"api", "access", "auth", "client", "shared", "signing", "encryption", "hmac", "jwt", "session",
                         "cookie", "master", "root", "private", "webhook", "app", "oauth", "consumer", "license", "ssh",
                         "secret", "bearer", "admin"})
# Words before the last that make the whole name a reference: `existingSecretPassword`, `secretRefName`.
_REFERENCE_WORDS = frozenset({"existing", "ref", "name"})
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


class Name(str):
    """A path step into a list of named items (containers[app], env[DB_PASSWORD]), as opposed to a key or an index."""

    __slots__ = ()


def words(name: str) -> list[str]:
    """`adminPassword` -> [admin, password]; `AWS_SECRET_ACCESS_KEY` -> [aws, secret, access, key]."""
    return [w.lower() for w in _WORD.findall(name)]


@functools.lru_cache(maxsize=65536)  # keys repeat: a CRD schema has thousands of `type` and `description`
def is_credential_name(name: str, *, env: bool = False) -> bool:
    """Whether a value written under this name is a credential. `env`: the name of an environment variable (or
    another named entry holding a literal), where a bare `SECRET` is one; as a mapping key, `secret:` names a Secret."""
    parts = words(name)
    if not parts or _REFERENCE_WORDS & set(parts[:-1]):
        return False
    last, before = parts[-1], parts[-2] if len(parts) > 1 else None
    if last in _SECRET_WORDS or any(last.endswith(w) for w in ("password", "passwd", "passphrase", "apikey")):
        return True
    if last == "secret":
        return env or before in _QUALIFIERS
    if last == "key":
        return before in _QUALIFIERS
    return False


def sensitive(parts: tuple, kind: str = "") -> bool:
    """Whether the value at `parts` (keys as str, Name for named list entries, int indexes) of an object of `kind`
    is a credential by where it sits: in a Secret's data, directly under a credential key, or as the `value` of an
    entry whose name is one. Only the key that holds the value counts: below `password:` a schema's `type` or a
    chart's `existingSecret` is no credential."""
    keys = [p for p in parts if isinstance(p, str) and not isinstance(p, Name)]
    if kind == "Secret" and keys and keys[0] in ("data", "stringData"):
        return True
    if len(parts) >= 2 and parts[-1] == "value" and isinstance(parts[-2], Name):
        return is_credential_name(parts[-2], env=True)
    rest = list(parts)
    while rest and isinstance(rest[-1], int):
        rest.pop()  # the items of a list written under a credential key (`tokens: [...]`)
    return bool(rest) and isinstance(rest[-1], str) and not isinstance(rest[-1], Name) and is_credential_name(rest[-1])


# `password = x` / `token: x` lines inside config files carried as strings (ConfigMap data, Helm values blobs).
_CONFIG_LINE = re.compile(r"(?m)^([ \t]*([\w.-]+)[ \t]*[:=][ \t]*)(\S.*?)[ \t]*$")


def config_lines(text: str, ignore: Callable[[str], bool] = lambda value: False) -> Iterator[re.Match[str]]:
    """The `key: value` / `key = value` lines of a multi-line string whose key is a credential name and whose
    value is a literal (not a `${VAR}` reference, a nested block or an ignored placeholder); group 3 is the value."""
    if "\n" not in text.strip():
        return
    for match in _CONFIG_LINE.finditer(text):
        value = match.group(3)
        if is_credential_name(match.group(2)) and not value.startswith(("#", "{", "[", "$", "|", ">")) and not ignore(value):
            yield match


# What each shape above contains (a literal of each of TOKENS, URL_PASSWORD's `://`): a string without any holds none
# of them (config_lines needs a line break instead). One search instead of eight for most of the 400,000 strings of
# a render at 1000 services: 1.04 s -> 0.39 s.
_MAY_HOLD = re.compile(r"PRIVATE KEY|eyJ|AKIA|ASIA|gh[pousr]_|xox[abposr]-|sk-|(?i:bearer)|://")


def shapes(text: str, ignore: Callable[[str], bool] = lambda value: False) -> Iterator[str]:
    """What credentials a string holds by their shape alone, for a finding's message (`ignore`: placeholders)."""
    if _MAY_HOLD.search(text):
        if URL_PASSWORD.search(text):
            yield "a connection string with a password"
        for pattern, what in TOKENS:
            if pattern.search(text):
                yield what
    if "\n" not in text:
        return
    line = next(config_lines(text, ignore), None)
    if line is not None:
        yield f"a config file line with a credential ({line.group(2)})"


REDACTED = "<redacted>"


def redact_text(text: str) -> str:
    """A string with every credential recognisable by its shape replaced by <redacted>."""
    text = URL_PASSWORD.sub(lambda m: m.group(1) + REDACTED + m.group(3), text)
    for pattern, _ in TOKENS:
        text = pattern.sub(REDACTED, text)
    for match in reversed(list(config_lines(text))):
        text = text[:match.start(3)] + REDACTED + text[match.end(3):]
    return text


def leaves(node: Any, path: tuple = (), parts: tuple = ()) -> Iterator[tuple[tuple, tuple, Any]]:
    """(path with list indexes, the same path with named entries as Name, value) of every leaf of a document."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from leaves(v, path + (k,), parts + (str(k),))
    elif isinstance(node, list):
        names = [item.get("name") if isinstance(item, dict) else None for item in node]
        unique = all(isinstance(n, str) for n in names) and len(set(names)) == len(names)
        for i, v in enumerate(node):
            yield from leaves(v, path + (i,), parts + ((Name(names[i]),) if unique else (i,)))
    else:
        yield path, parts, node
