"""The pack as `pulumi preview --policy-pack` starts it: its __main__ serves the analyzer over gRPC.

Started as a subprocess (what the Pulumi CLI does), then asked over gRPC, as the CLI would,
for its policies and for its verdict on a stack; no Pulumi CLI needed.
"""
from __future__ import annotations

import json
import subprocess
import sys

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from vigil.infra.mocks import declare_stack

from tests.conftest import ROOT
from tests.helpers import repo_policy
from tests.test_infra_controls import BREAKS


@pytest.fixture(scope="module")
def analyzer():
    process = subprocess.Popen([sys.executable, str(ROOT / "infra" / "policy_pack" / "__main__.py")], cwd=ROOT / "infra" / "policy_pack",
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = int(process.stdout.readline().strip())
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


def _struct(value: dict) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(json.loads(json.dumps(value)))
    return out


def _request(parts) -> analyzer_pb2.AnalyzeStackRequest:
    resources = []
    for record in declare_stack(repo_policy(), parts=parts).resources:
        provider = analyzer_pb2.AnalyzerProviderResource(type="pulumi:providers:aws", properties=_struct({"region": record.region}),
                                                          urn=f"urn:provider:{record.region}", name=record.region)
        resources.append(analyzer_pb2.AnalyzerResource(type=record.type, properties=_struct(record.state), name=record.name,
                                                       urn=f"urn:pulumi:dev::vigil::{record.type}::{record.name}", provider=provider))
    return analyzer_pb2.AnalyzeStackRequest(resources=resources)


def test_the_pack_lists_the_controls_as_mandatory_policies(analyzer) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
    names = {p.name for p in info.policies}
    assert {"vigil-tls-01", "vigil-enc-02", "vigil-mfa-03", "vigil-bak-02", "vigil-ret-01"} <= names
    assert "vigil-mfa-01" not in names  # run time only
    assert all(p.enforcementLevel == analyzer_pb2.MANDATORY for p in info.policies)


def test_the_pack_passes_the_stack_and_stops_a_broken_one(analyzer) -> None:
    assert list(analyzer.AnalyzeStack(_request(None), timeout=60).diagnostics) == []
    make_parts, resource = BREAKS["ENC-02"]
    diagnostics = analyzer.AnalyzeStack(_request(make_parts()), timeout=60).diagnostics
    assert {d.policyName for d in diagnostics} >= {"vigil-enc-02"}
    assert any(resource in d.message and d.urn.endswith("::example-contacts") for d in diagnostics)
