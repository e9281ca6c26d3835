"""The one access rule every channel applies: domains, addresses and customer groups."""

from desk_contracts.access import AddressSet, is_restricted, rule_admits
from desk_contracts.catalog import AccessRule

GROUPS = {"legal": AddressSet(addresses=("lawyer@acme.com",)),
          "partners": AddressSet(domains=("*.partner.io",)),
          "nobody": AddressSet()}


def test_an_open_service_admits_even_an_unknown_asker():
    assert not is_restricted(AccessRule())
    assert rule_admits(None, AccessRule(), GROUPS)
    assert rule_admits("anyone@evil.io", AccessRule(), GROUPS)


def test_a_restricted_service_needs_someone_the_channel_knows():
    for rule in (AccessRule(domains=("acme.com",)), AccessRule(groups=("legal",))):
        assert is_restricted(rule)
        assert not rule_admits(None, rule, GROUPS)
        assert not rule_admits("not an address", rule, GROUPS)


def test_groups_are_matched_exactly_and_an_unknown_group_admits_nobody():
    legal = AccessRule(groups=("legal",))
    assert rule_admits("lawyer@acme.com", legal, GROUPS)
    assert rule_admits("Lawyer@ACME.com", legal, GROUPS)
    assert not rule_admits("clerk@acme.com", legal, GROUPS)
    assert not rule_admits("lawyer@acme.com", legal, {})  # groups not known (yet)
    partners = AccessRule(groups=("partners",))
    assert rule_admits("p@it.partner.io", partners, GROUPS)
    assert not rule_admits("p@partner.io.evil.io", partners, GROUPS)
    assert not rule_admits("x@acme.com", AccessRule(groups=("nobody", "ghost")), GROUPS)
    # domains and groups together: either admits
    both = AccessRule(domains=("globex.example",), groups=("legal",))
    assert rule_admits("a@globex.example", both, GROUPS)
    assert rule_admits("lawyer@acme.com", both, GROUPS)
