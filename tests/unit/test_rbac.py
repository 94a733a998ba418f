"""RBAC verdicts: deny wins, default deny once any rule, exact paths, claims of every shape."""

from sidecar.rbac.matcher import Rbac, Rule

INFER = "/inference.GRPCInferenceService/ModelInfer"


def test_no_rules_allow_everything():
    assert Rbac(()).check(INFER, "m", "c", "default", {}).allowed


def test_once_a_rule_exists_the_default_is_deny_with_a_reason():
    rbac = Rbac((Rule("ops", True, {"roles": frozenset({"ops"})}),))
    verdict = rbac.check(INFER, "digits", "alice", "default", {"roles": ["reader"]})
    assert not verdict.allowed and "default deny" in verdict.reason and "alice" in verdict.reason
    assert rbac.check(INFER, "digits", "alice", "default", {"roles": ["reader", "ops"]}).allowed


def test_deny_wins_over_allow():
    rbac = Rbac((Rule("all", True), Rule("no-bob", False, {"client": frozenset({"bob"})})))
    assert rbac.check(INFER, "m", "alice", "d", {}).allowed
    verdict = rbac.check(INFER, "m", "bob", "d", {})
    assert not verdict.allowed and "no-bob" in verdict.reason


def test_methods_match_exactly():
    rbac = Rbac((Rule("infer", True, methods=frozenset({INFER})),))
    assert rbac.check(INFER, "", "c", "d", {}).allowed
    for tricky in (INFER.lower(), INFER + "/", "//inference.GRPCInferenceService/ModelInfer", INFER + "?x"):
        assert not rbac.check(tricky, "", "c", "d", {}).allowed, tricky


def test_models_match_exactly_and_star_is_any():
    rbac = Rbac((Rule("digits", True, models=frozenset({"digits"})),))
    assert rbac.check(INFER, "digits", "c", "d", {}).allowed
    assert not rbac.check(INFER, "Digits", "c", "d", {}).allowed
    assert not rbac.check(INFER, "", "c", "d", {}).allowed
    assert Rbac((Rule("any", True, models=frozenset({"*"})),)).check(INFER, "", "c", "d", {}).allowed


def test_scope_is_space_separated_and_class_and_client_are_principals():
    rbac = Rbac((Rule("s", True, {"scope": frozenset({"infer"}), "class": frozenset({"gold"})}),))
    assert rbac.check(INFER, "", "c", "gold", {"scope": "read infer"}).allowed
    assert not rbac.check(INFER, "", "c", "silver", {"scope": "read infer"}).allowed
    assert not rbac.check(INFER, "", "c", "gold", {"scope": "read"}).allowed


def test_a_star_principal_needs_the_claim_present():
    rbac = Rbac((Rule("any-tenant", True, {"tenant": frozenset({"*"})}),))
    assert rbac.check(INFER, "", "c", "d", {"tenant": "t1"}).allowed
    assert not rbac.check(INFER, "", "c", "d", {}).allowed
