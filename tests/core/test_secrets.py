"""Secrets in the OS keyring: a real Secret Service (private D-Bus + GNOME Keyring, see
tests/keyring_server.py), the real `jarvis secret` CLI, and refusal of insecure backends.

The only stand-ins are two tiny backend classes named like keyrings.alt's file backends (that package
is not installed here, and installing it just to be refused would add a plaintext store to the venv):
they check that the guard goes by module/class name and that they never receive a value.
"""
from __future__ import annotations

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail, null
from keyring.backends.chainer import ChainerBackend

from jarvis import doctor, secrets
from jarvis.errors import BadInput, NotAvailable
from tests.core.test_cli_bad_input import assert_one_clear_line, jarvis

FAKE_KEY = "sk-test-not-a-real-key-0123456789"  # never a real key anywhere


@pytest.fixture
def backend():
    """Restore whatever backend ``keyring`` had after a test that replaces it."""
    previous = keyring.get_keyring()
    yield
    keyring.set_keyring(previous)


# -- through the real Secret Service -------------------------------------------------------------

def test_round_trip_through_the_real_secret_service(secret_service):
    assert type(keyring.get_keyring()).__module__ == "keyring.backends.SecretService"
    assert secrets.backend_name() == "keyring.backends.SecretService.Keyring"
    assert secrets.check_keyring() == "keyring.backends.SecretService.Keyring"
    assert secrets.get_secret(secrets.OPENAI_API_KEY) is None

    secrets.set_secret(secrets.OPENAI_API_KEY, f"  {FAKE_KEY}\n")  # a piped value's newline is dropped
    assert secrets.get_secret(secrets.OPENAI_API_KEY) == FAKE_KEY
    assert keyring.get_password(secrets.SERVICE, "openai_api_key") == FAKE_KEY  # service "jarvis"

    secrets.set_secret(secrets.OPENAI_API_KEY, FAKE_KEY + "-2")  # replaces
    assert secrets.get_secret(secrets.OPENAI_API_KEY) == FAKE_KEY + "-2"
    assert secrets.delete_secret(secrets.OPENAI_API_KEY) is True
    assert secrets.get_secret(secrets.OPENAI_API_KEY) is None
    assert secrets.delete_secret(secrets.OPENAI_API_KEY) is False  # not there: no error


def test_doctor_reports_a_secure_backend(secret_service):
    report = doctor._keyring()
    assert report["backend"] == "keyring.backends.SecretService.Keyring"
    assert report["usable"] is True and report["secure"] is True
    assert report["note"] is None and report["fix"] is None


def test_cli_set_from_stdin_status_and_delete_never_show_the_value(secret_service):
    env = secret_service.subprocess_env()
    status = jarvis("secret", "status", env_extra=env)
    assert status.returncode == 0, status.stderr
    assert "SecretService" in status.stdout and "openai_api_key: not set" in status.stdout

    stored = _jarvis_stdin(["secret", "set", "openai_api_key"], FAKE_KEY + "\n", env)
    assert stored.returncode == 0, stored.stderr
    assert "stored openai_api_key" in stored.stdout
    assert secrets.get_secret(secrets.OPENAI_API_KEY) == FAKE_KEY  # this process reads what the CLI stored

    status = jarvis("secret", "status", env_extra=env)
    assert status.returncode == 0, status.stderr
    assert "openai_api_key: set" in status.stdout
    for result in (stored, status):
        assert FAKE_KEY not in result.stdout + result.stderr
        assert FAKE_KEY[:12] not in result.stdout + result.stderr

    deleted = jarvis("secret", "delete", "openai_api_key", env_extra=env)
    assert deleted.returncode == 0 and "deleted openai_api_key" in deleted.stdout
    assert "openai_api_key: not set" in jarvis("secret", "status", env_extra=env).stdout
    again = jarvis("secret", "delete", "openai_api_key", env_extra=env)
    assert again.returncode == 0 and "was not set" in again.stdout


def test_cli_refuses_values_on_the_command_line_and_unknown_or_empty_input(secret_service):
    env = secret_service.subprocess_env()
    on_argv = jarvis("secret", "set", "openai_api_key", FAKE_KEY, env_extra=env)
    assert_one_clear_line(on_argv, "echo KEY | jarvis secret set openai_api_key")
    assert FAKE_KEY not in on_argv.stdout + on_argv.stderr and FAKE_KEY[:12] not in on_argv.stderr
    assert_one_clear_line(_jarvis_stdin(["secret", "set", "openai_key"], FAKE_KEY, env), "unknown secret",
                          "openai_api_key")
    assert_one_clear_line(_jarvis_stdin(["secret", "set", "openai_api_key"], "  \n", env), "empty")
    assert_one_clear_line(jarvis("secret", "set", env_extra=env), "usage")
    assert secrets.get_secret(secrets.OPENAI_API_KEY) is None  # nothing was stored by any of these


# -- refusing insecure or absent backends --------------------------------------------------------

def test_cli_with_the_fail_backend_says_what_to_do_in_one_line(secret_service):
    env = secret_service.subprocess_env(PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    status = jarvis("secret", "status", env_extra=env)
    assert status.returncode == 3
    assert_one_clear_line(status, "no secure keyring", "keyring.backends.fail.Keyring", "GNOME Keyring")
    stored = _jarvis_stdin(["secret", "set", "openai_api_key"], FAKE_KEY, env)
    assert stored.returncode == 3
    assert_one_clear_line(stored, "no secure keyring")
    assert FAKE_KEY not in stored.stdout + stored.stderr
    assert secrets.get_secret(secrets.OPENAI_API_KEY) is None  # the real keyring got nothing either


@pytest.mark.parametrize("insecure", [fail.Keyring, null.Keyring])
def test_fail_and_null_backends_are_refused(backend, insecure):
    keyring.set_keyring(insecure())
    for call in (lambda: secrets.get_secret("openai_api_key"), lambda: secrets.set_secret("openai_api_key", "x"),
                 lambda: secrets.delete_secret("openai_api_key"), secrets.check_keyring):
        with pytest.raises(NotAvailable) as err:
            call()
        assert err.value.code == "keyring_unavailable"
        message = err.value.message
        assert "\n" not in message and f"{insecure.__module__}.Keyring" in message
        assert message.startswith("No secure keyring (found ") and "GNOME Keyring or KWallet" in message
    status = secrets.backend_status()
    assert status["secure"] is False and status["backend"] == f"{insecure.__module__}.Keyring"
    report = doctor._keyring()
    assert report["usable"] is False and report["note"] == doctor.FAIL_KEYRING and "GNOME" in report["fix"]


class _Recording(KeyringBackend):
    priority = 1

    def __init__(self):
        super().__init__()
        self.stored = {}

    def get_password(self, service, username):
        return self.stored.get((service, username))

    def set_password(self, service, username, password):
        self.stored[(service, username)] = password

    def delete_password(self, service, username):
        self.stored.pop((service, username))


class PlaintextKeyring(_Recording):
    """Named and placed like keyrings.alt's base64 file backend."""


class EncryptedKeyring(_Recording):
    """keyrings.alt's password-prompting file backend: also refused (it prompts on a terminal)."""


def _unregister(*classes):
    """Defining a KeyringBackend subclass registers it for keyring's backend detection: undo that."""
    for cls in classes:
        KeyringBackend._classes.discard(cls)


PlaintextKeyring.__module__ = EncryptedKeyring.__module__ = "keyrings.alt.file"
_unregister(_Recording, PlaintextKeyring, EncryptedKeyring)


@pytest.mark.parametrize("cls", [PlaintextKeyring, EncryptedKeyring])
def test_keyrings_alt_file_backends_are_refused_and_get_nothing(backend, cls):
    fake = cls()
    keyring.set_keyring(fake)
    with pytest.raises(NotAvailable) as err:
        secrets.set_secret("openai_api_key", FAKE_KEY)
    assert f"keyrings.alt.file.{cls.__name__}" in err.value.message and "a file backend, not an OS keyring" in err.value.message
    assert fake.stored == {}


def _chain(*members):
    """keyring's chainer over ``members`` (normally it chains every viable backend installed)."""
    cls = type("Chain", (ChainerBackend,), {"backends": list(members)})
    _unregister(cls)
    return cls()


def test_a_chain_uses_only_its_secure_members(secret_service, backend):
    plaintext, real = PlaintextKeyring(), keyring.get_keyring()
    keyring.set_keyring(_chain(plaintext, real))
    secrets.set_secret("openai_api_key", FAKE_KEY)
    assert plaintext.stored == {}
    assert real.get_password("jarvis", "openai_api_key") == FAKE_KEY
    assert secrets.backend_name() == "keyring.backends.SecretService.Keyring"
    assert secrets.delete_secret("openai_api_key") is True

    keyring.set_keyring(_chain(plaintext))
    with pytest.raises(NotAvailable) as err:
        secrets.set_secret("openai_api_key", FAKE_KEY)
    assert "keyrings.alt.file.PlaintextKeyring" in err.value.message
    assert plaintext.stored == {}


# -- bad names and values ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["", "   ", None, "has space", "a/b"])
def test_bad_names_are_bad_input(name):
    for call in (lambda: secrets.get_secret(name), lambda: secrets.set_secret(name, "x"),
                 lambda: secrets.delete_secret(name)):
        with pytest.raises(BadInput) as err:
            call()
        assert err.value.code == "bad_secret_name"


@pytest.mark.parametrize("value", ["", "  \n", None, "two\nlines"])
def test_empty_or_multiline_values_are_bad_input(value):
    with pytest.raises(BadInput) as err:
        secrets.set_secret("openai_api_key", value)
    assert err.value.code in ("empty_secret", "bad_secret")
    assert "\n" not in err.value.message


def _jarvis_stdin(args, stdin: str, env: dict):
    import subprocess
    import sys

    from tests.core.test_cli_bad_input import ROOT
    return subprocess.run([sys.executable, "-m", "jarvis", *args], cwd=ROOT, env=env, input=stdin,
                          capture_output=True, text=True, timeout=60)
