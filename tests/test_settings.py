import re
from pathlib import Path

import pytest

from relay.settings import ENV_VARS, SettingsError, load_settings

ROOT = Path(__file__).resolve().parent.parent


def test_missing_secret_stops_start_up(tmp_path: Path) -> None:
    """Without AIPIPE_SECRET (and not --dev) the relay refuses to start, saying what to do."""
    with pytest.raises(SettingsError, match="AIPIPE_SECRET"):
        load_settings({}, cwd=tmp_path)


def test_short_secret_is_refused(tmp_path: Path) -> None:
    """A secret under 32 bytes is too weak to sign tokens."""
    with pytest.raises(SettingsError, match="32 bytes"):
        load_settings({"AIPIPE_SECRET": "short"}, cwd=tmp_path)


def test_dev_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    """--dev generates a secret in the data dir and reuses it, so tokens survive restarts."""
    env = {"AIPIPE_DATA_DIR": str(tmp_path / "d")}
    first = load_settings(env, dev=True, cwd=tmp_path)
    second = load_settings(env, dev=True, cwd=tmp_path)
    assert len(first.secret) >= 32
    assert first.secret == second.secret
    assert first.secret not in repr(first)


def test_env_file_is_read_and_real_environment_wins(tmp_path: Path) -> None:
    """`.env` in the working directory is read; the real environment overrides it."""
    (tmp_path / ".env").write_text(
        "AIPIPE_SECRET="
        + "x" * 40
        + "\nADMIN_EMAILS=a@x.org, B@x.org\nOPENAI_API_KEY=sk-from-file\n"
    )
    s = load_settings({"OPENAI_API_KEY": "sk-from-env"}, cwd=tmp_path)
    assert s.admin_emails == {"a@x.org", "b@x.org"}
    assert s.provider_keys["openai"] == "sk-from-env"
    assert "sk-from-env" not in repr(s)


def test_bases_default_to_public_and_can_be_overridden(tmp_path: Path) -> None:
    """Upstream bases default to the providers' public URLs; AIPIPE_*_BASE overrides them."""
    s = load_settings(
        {"AIPIPE_SECRET": "x" * 40, "AIPIPE_GEMINI_BASE": "http://127.0.0.1:9/g/"}, cwd=tmp_path
    )
    assert s.provider_bases["openai"] == "https://api.openai.com"
    assert s.provider_bases["openrouter"] == "https://openrouter.ai/api"
    assert s.provider_bases["gemini"] == "http://127.0.0.1:9/g"


def test_policy_file_found_in_working_directory(tmp_path: Path) -> None:
    """./aipipe.toml is used when AIPIPE_CONFIG is not set."""
    (tmp_path / "aipipe.toml").write_text('[budget]\n"*" = { limit = 2, days = 3 }\n')
    s = load_settings({"AIPIPE_SECRET": "x" * 40}, cwd=tmp_path)
    assert s.policy.budget_for("a@b.c").days == 3


def test_bad_number_names_the_variable(tmp_path: Path) -> None:
    """A malformed numeric setting names itself in the error."""
    with pytest.raises(SettingsError, match="AIPIPE_MAX_BODY_MB"):
        load_settings({"AIPIPE_SECRET": "x" * 40, "AIPIPE_MAX_BODY_MB": "lots"}, cwd=tmp_path)


@pytest.mark.parametrize("raw,expected", [
    (None, True), ("on", True), ("1", True), ("TRUE", True), ("off", False), ("no", False),
    ("0", False),
])
def test_native_keys_setting(tmp_path: Path, raw: str | None, expected: bool) -> None:
    """AIPIPE_NATIVE_KEYS: on unless set to off (or 0/false/no)."""
    env = {"AIPIPE_SECRET": "x" * 40, **({"AIPIPE_NATIVE_KEYS": raw} if raw else {})}
    assert load_settings(env, cwd=tmp_path).native_keys is expected


def test_bad_flag_names_the_variable(tmp_path: Path) -> None:
    """A flag that is neither on nor off stops the start, naming the variable."""
    with pytest.raises(SettingsError, match="AIPIPE_NATIVE_KEYS"):
        load_settings({"AIPIPE_SECRET": "x" * 40, "AIPIPE_NATIVE_KEYS": "maybe"}, cwd=tmp_path)


def test_readme_documents_every_variable() -> None:
    """The README's configuration table lists exactly the variables the code reads."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    table = set(re.findall(r"^\| `([A-Z_]+)` \|", section, flags=re.M))
    assert table == set(ENV_VARS)
