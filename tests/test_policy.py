from decimal import Decimal
from pathlib import Path

import pytest

from relay.policy import PolicyError, load_policy, parse_policy


def test_lookup_order_email_then_domain_then_star() -> None:
    """The exact email wins (case-insensitive), then @domain, then '*'."""
    policy = parse_policy(
        {
            "budget": {
                "*": {"limit": 0.10, "days": 7},
                "@example.com": {"limit": 1.0, "days": 7},
                "User@Example.com": {"limit": 10.0, "days": 30},
            }
        }
    )
    assert policy.budget_for("user@EXAMPLE.com").limit == Decimal("10.0")
    assert policy.budget_for("user@EXAMPLE.com").days == 30
    assert policy.budget_for("other@example.com").limit == Decimal("1.0")
    assert policy.budget_for("x@elsewhere.org").limit == Decimal("0.1")


def test_no_matching_entry_means_no_budget() -> None:
    """Without '*', an unknown user has a limit of 0."""
    policy = parse_policy({"budget": {"@example.com": {"limit": 1, "days": 7}}})
    assert policy.budget_for("x@other.org").limit == 0


def test_limits_keep_their_written_decimals() -> None:
    """0.1 in TOML is exactly Decimal('0.1'), not a binary float."""
    policy = parse_policy({"budget": {"*": {"limit": 0.1, "days": 7}}})
    assert policy.budget_for("a@b.c").limit == Decimal("0.1")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[budget]\n"*" = { limit = -1, days = 7 }', "limit must be a finite number >= 0"),
        ('[budget]\n"*" = { limit = 1, days = 0 }', "days must be a whole number"),
        ('[budget]\n"nobody" = { limit = 1 }', "key must be an email"),
        ('[budget]\n"*" = { days = 3 }', "'limit' is required"),
        ('[budget]\n"*" = { limit = 1, dayz = 3 }', "unknown field"),
        ("[budgets]\n", "unknown section [budgets]"),
        ("[budget\n", "not valid TOML"),
        ('[salt]\n"a@b.c" = 3', "salt must be a non-empty string"),
    ],
)
def test_bad_policy_names_file_key_and_problem(tmp_path: Path, text: str, expected: str) -> None:
    """A bad policy file stops start-up with a message naming the file, the key and the problem."""
    path = tmp_path / "aipipe.toml"
    path.write_text(text)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_salts_and_admins_are_read(tmp_path: Path) -> None:
    """Salts are looked up case-insensitively; the admins list is kept."""
    path = tmp_path / "p.toml"
    path.write_text('admins = ["Boss@X.org"]\n[salt]\n"U@X.org" = "s1"\n')
    policy = load_policy(path)
    assert policy.salt_for("u@x.org") == "s1"
    assert "boss@x.org" in policy.admins
