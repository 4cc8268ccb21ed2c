"""One definition of a plaintext credential: policy flags exactly what the diff redacts, on every case.

The cases are written from how Kubernetes, Helm charts and twelve-factor apps name things, not from
the code's output: a name whose last word is what the value is (`adminPassword`, `DB_PASSWORD`,
`clientSecret`, `AWS_SECRET_ACCESS_KEY`) holds a credential; a name that points at one
(`credentialsSecret`, `existingSecret`, `secret:`, `passwordKey`, `secretKeyRef`, `tokenFile`) does not.
"""

from __future__ import annotations

import pytest

from generator.credentials import Name
from generator.review import redaction
from generator.validate import policy

VALUE = "s3cr3t-pw"

CREDENTIAL_KEYS = ["password", "adminPassword", "dbPassword", "db_password", "smtp_auth_password", "passwd", "pwd",
                   "passphrase", "token", "botToken", "authToken", "apiKey", "api_key", "apikey", "opsGenieApiKey",
                   "clientSecret", "client-secret", "secretKey", "accessKey", "privateKey", "credentials",
                   "webhookSecret", "AWS_SECRET_ACCESS_KEY"]
REFERENCE_KEYS = ["secret", "secretName", "credentialsSecret", "existingSecret", "existingSecretPassword",
                  "passwordKey", "secretKeyRef", "bearerTokenSecret", "tlsSecret", "tokenFile", "passwordFile",
                  "key", "secretRef", "username", "user", "host", "tokenUrl", "secretEnv"]
CREDENTIAL_ENV = ["DB_PASSWORD", "DATABASE_PASSWORD", "OPENAI_API_KEY", "JWT_SECRET", "SECRET", "GITHUB_TOKEN",
                  "AWS_SECRET_ACCESS_KEY", "REDIS_PASS"]
NEUTRAL_ENV = ["DB_HOST", "DB_USER", "SECRET_NAME", "TOKEN_FILE", "PASSWORD_KEY", "LOG_LEVEL"]


def flagged(doc) -> set[tuple]:
    return {path for path, _ in policy.credential_problems(doc)}


@pytest.mark.parametrize("key", CREDENTIAL_KEYS + REFERENCE_KEYS)
def test_a_key_is_flagged_exactly_when_the_diff_hides_it(key: str):
    credential = key in CREDENTIAL_KEYS
    doc = {"grafana": {key: VALUE}}
    assert flagged(doc) == ({("grafana", key)} if credential else set())
    assert redaction.redact(doc) == {"grafana": {key: "<redacted>" if credential else VALUE}}


@pytest.mark.parametrize("name", CREDENTIAL_ENV + NEUTRAL_ENV)
def test_an_env_entry_is_flagged_exactly_when_the_diff_hides_it(name: str):
    credential = name in CREDENTIAL_ENV
    doc = {"env": [{"name": "A", "value": "1"}, {"name": name, "value": VALUE}]}
    assert flagged(doc) == ({("env", 1, "value")} if credential else set())
    assert redaction.redact(doc)["env"][1]["value"] == ("<redacted>" if credential else VALUE)
    # Argo CD's helm parameters are named entries too
    params = {"parameters": [{"name": f"grafana.{name}", "value": VALUE}]}
    assert bool(flagged(params)) == (redaction.redact(params)["parameters"][0]["value"] == "<redacted>")


def test_the_issue_cases_adminpassword_and_dbpassword():
    """Redacted by the diff but not flagged by policy before there was one definition."""
    for key in ("adminPassword", "dbPassword"):
        assert flagged({key: VALUE}) == {(key,)}
        assert redaction.redact(VALUE, (key,)) == "<redacted>"


def test_references_below_a_credential_key_stay_visible():
    doc = {"password": {"existingSecret": "pg", "secretKeys": {"adminPasswordKey": "pw"}}}
    assert flagged(doc) == set()
    assert redaction.redact(doc) == doc
    schema = {"properties": {"password": {"type": "string", "format": "password"}}}  # a CRD's schema
    assert flagged(schema) == set() and redaction.redact(schema) == schema


@pytest.mark.parametrize("text,credential", [
    ("global:\n  resolve_timeout: 5m\n  smtp_auth_password: hunter2\n", True),
    ("[security]\nadmin_password = hunter2\n", True),
    ("global:\n  smtp_auth_password: hunter2\n", True),  # right after a line that opens a block
    ("requirepass: hunter2\nport: 6379\n", False),  # redis' directive is a word, not a credential noun
    ("user: grafana\npassword: ${GF_PASSWORD}\n", False),  # a reference to the environment
    ("password_file: /etc/pw\nhost: db\n", False),
    ("single line password: hunter2", False),  # not a config file: judged by its key
])
def test_config_files_in_strings(text: str, credential: bool):
    doc = {"data": {"config.yaml": text}}
    assert flagged(doc) == ({("data", "config.yaml")} if credential else set())
    redacted = redaction.redact(doc)["data"]["config.yaml"]
    assert ("hunter2" not in redacted and "<redacted>" in redacted) if credential else redacted == text


@pytest.mark.parametrize("value", [
    "postgres://app:hunter2@db:5432/app", "AKIAABCDEFGHIJKLMNOP", "ghp_" + "a" * 36, "Bearer " + "x" * 20,
    "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
])
def test_credentials_by_shape_under_any_key(value: str):
    doc = {"note": value}
    assert flagged(doc) == {("note",)}
    assert "hunter2" not in redaction.redact_text(value) and redaction.redact_text(value) != value


def test_placeholders_are_not_flagged_but_a_secret_with_data_is():
    assert flagged({"password": ""}) == set() and flagged({"password": "changeme"}) == set()
    assert flagged({"kind": "Secret", "data": {"pw": "aHVudGVyMg=="}}) == {("data",)}
    assert redaction.redact({"pw": "aHVudGVyMg=="}, ("data",), kind="Secret") == {"pw": "<redacted>"}
    assert redaction.redact(VALUE, ("env", Name("DB_PASSWORD"), "value")) == "<redacted>"


@pytest.mark.parametrize("value", ["# set in the vault", "{{ .Values.password }}", "[redacted, list]", "${DB_PASSWORD}",
                                   "|", ">-"])
def test_a_config_line_whose_value_is_a_reference_or_a_block_is_no_credential(value: str):
    text = f"[db]\npassword = {value}\n"
    assert list(policy.credential_problems({"data": {"app.ini": text}})) == []
    assert redaction.redact_text(text) == text


def test_a_secrets_string_data_is_hidden_whatever_its_keys():
    assert redaction.redact({"stringData": {"host": "db", "dsn": "x"}, "type": "Opaque"}, (), "Secret") == {
        "stringData": {"host": "<redacted>", "dsn": "<redacted>"}, "type": "Opaque"}
    assert redaction.redact({"stringData": {"host": "db"}}, (), "ConfigMap") == {"stringData": {"host": "db"}}


def test_a_list_of_named_entries_at_the_top_is_judged_by_name():
    from generator import credentials
    assert credentials.sensitive((Name("DB_PASSWORD"), "value"))
    assert not credentials.sensitive((Name("DB_HOST"), "value"))


def test_list_items_are_named_only_when_every_item_has_a_name_of_its_own():
    from generator import credentials
    named = [{"name": "a", "value": 1}, {"name": "b", "value": 2}]
    assert [parts for _, parts, _ in credentials.leaves(named)] == [(Name("a"), "name"), (Name("a"), "value"),
                                                                   (Name("b"), "name"), (Name("b"), "value")]
    for items in ([{"name": "a"}, {"value": 2}], [{"name": "a"}, {"name": "a"}], [{"name": 1}, {"name": 2}]):
        assert all(isinstance(parts[0], int) for _, parts, _ in credentials.leaves(items)), items
