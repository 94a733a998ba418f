from sidecar.telemetry.names import OTHER, BoundedNames, MethodLabels, split_method

CONTRACT = ("/inference.GRPCInferenceService/ModelInfer", "/inference.GRPCInferenceService/ServerLive")


def test_split_method_reads_service_and_method_from_a_grpc_path():
    assert split_method("/inference.GRPCInferenceService/ModelInfer") == (
        "inference.GRPCInferenceService",
        "ModelInfer",
    )
    assert split_method("/a.b.C/D") == ("a.b.C", "D")


def test_split_method_keeps_an_odd_path_whole_as_the_method():
    for odd in ("", "/", "noslash", "/OnlyMethod", "/svc/", "//m"):
        assert split_method(odd) == ("", odd), odd


def test_known_names_always_pass_and_others_until_the_limit():
    names = BoundedNames(["digits"], limit=2)
    assert [names(n) for n in ("a", "digits", "b", "c", "a", "digits", "d")] == [
        "a", "digits", "b", OTHER, "a", "digits", OTHER,
    ]  # fmt: skip


def test_a_name_too_long_is_other_and_takes_no_room():
    names = BoundedNames(limit=1, max_length=5)
    assert names("x" * 6) == OTHER
    assert names("short") == "short"


def test_method_labels_stay_bounded_under_ten_thousand_hostile_names():
    labels = MethodLabels(CONTRACT, limit=100)
    seen = {labels(f"/evil.Service{i}/Method{i}") for i in range(10_000)}
    assert len(seen) == 101  # 100 admitted, then one ("other", "other")
    assert (OTHER, OTHER) in seen
    assert labels(CONTRACT[0]) == ("inference.GRPCInferenceService", "ModelInfer")
    assert len(labels._labels) <= 100 + len(CONTRACT)  # the cache is bounded too


def test_limit_zero_admits_only_known_names():
    labels = MethodLabels(CONTRACT, limit=0)
    assert labels("/x.Y/Z") == (OTHER, OTHER)
    assert labels(CONTRACT[1]) == ("inference.GRPCInferenceService", "ServerLive")
