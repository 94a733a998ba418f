"""What the model says about itself (OIP ServerMetadata, ModelMetadata), as registry metadata keys."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from inference import grpc_service_pb2 as pb
from sidecar.core.errors import SidecarError
from sidecar.model.link import ModelLink
from sidecar.oip import contract

log = logging.getLogger(__name__)


async def model_metadata(link: ModelLink, models: Sequence[str], timeout: float) -> dict[str, str]:
    """Registry metadata from the model's own answers; a call that fails is logged and left out."""
    md: dict[str, str] = {}
    try:
        server, _, _ = await link.call(
            contract.SERVER_METADATA,
            pb.ServerMetadataRequest(),
            pb.ServerMetadataResponse,
            timeout=timeout,
        )
        md["server.name"], md["server.version"] = server.name, server.version
    except SidecarError as e:
        log.warning("registry metadata: ServerMetadata failed: %s", e.message)
    names = []
    for name in models:
        try:
            model, _, _ = await link.call(
                contract.MODEL_METADATA,
                pb.ModelMetadataRequest(name=name),
                pb.ModelMetadataResponse,
                timeout=timeout,
            )
        except SidecarError as e:
            log.warning("registry metadata: ModelMetadata %s failed: %s", name, e.message)
            continue
        names.append(model.name or name)
        md[f"model.{name}.versions"] = ",".join(model.versions)
        md[f"model.{name}.platform"] = model.platform
    if names:
        md["model_name"] = ",".join(names)
    return md
