"""The OIP contract's names: worked out from the descriptor, and read from nowhere else."""

import ast
import pathlib

from inference import grpc_service_pb2 as pb
from sidecar.oip import contract

ROOT = pathlib.Path(__file__).resolve().parents[2] / "sidecar"


def test_every_method_of_the_service_has_its_path_and_messages():
    assert contract.SERVICE == "inference.GRPCInferenceService"
    assert contract.MODEL_INFER == "/inference.GRPCInferenceService/ModelInfer"
    assert len(contract.METHODS) == 9 and set(contract.PATHS) >= {"ServerLive", "ModelStreamInfer"}
    assert contract.MESSAGES[contract.MODEL_INFER] == (pb.ModelInferRequest, pb.ModelInferResponse)
    assert set(contract.MESSAGES) == set(contract.METHODS)


def test_unary_and_streaming_split_the_methods():
    assert contract.STREAMING == (contract.MODEL_STREAM_INFER,)
    assert sorted(contract.UNARY + contract.STREAMING) == sorted(contract.METHODS)


def test_no_other_module_spells_the_contract_or_reads_its_descriptor():
    for path in ROOT.rglob("*.py"):
        if path == ROOT / "oip" / "contract.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            spelled = isinstance(node, ast.Constant) and "GRPCInferenceService" in str(node.value)
            read = isinstance(node, ast.Attribute) and node.attr == "services_by_name"
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            assert not (spelled or read), f"{where} names the OIP service; take it from sidecar.oip.contract"
