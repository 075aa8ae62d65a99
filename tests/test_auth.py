"""API-key checks in-process: constant-time comparison, keys from a file."""

from __future__ import annotations

import pytest

from speechengine import auth
from speechengine.config import Settings
from speechengine.errors import AuthenticationError, ConfigError


def test_keys_are_compared_with_hmac_compare_digest(monkeypatch):
    calls = []
    real = auth.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    auth.check_api_key("k2", ["k1", "k2", "k3"])
    assert len(calls) == 3  # every key compared, no early exit
    with pytest.raises(AuthenticationError):
        auth.check_api_key("k4", ["k1", "k2", "k3"])


def test_no_keys_means_open_and_missing_key_is_401():
    auth.check_api_key(None, [])
    with pytest.raises(AuthenticationError) as e:
        auth.check_api_key(None, ["k"])
    assert e.value.status == 401 and e.value.code == "invalid_api_key"


def test_presented_key_headers():
    assert auth.presented_key({"authorization": "Bearer abc"}) == "abc"
    assert auth.presented_key({"api-key": "xyz"}) == "xyz"
    assert auth.presented_key({"authorization": "Basic abc"}) is None


def test_keys_file(tmp_path):
    f = tmp_path / "keys"
    f.write_text("# team keys\nsk-a\n\n  sk-b  \n")
    s = Settings(api_keys=["sk-env"], api_keys_file=f)
    assert s.all_api_keys() == ["sk-env", "sk-a", "sk-b"]
    with pytest.raises(ConfigError, match="api_keys_file"):
        Settings(api_keys_file=tmp_path / "missing").all_api_keys()
