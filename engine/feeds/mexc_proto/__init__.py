"""MEXC spot WebSocket protobuf messages (generated; regenerate with generate.sh).

Decode one binary frame with `PushDataV3ApiWrapper.FromString(frame)`; the body
that is set is named by `WhichOneof("body")`, e.g. "publicAggreDeals".
"""

from .PushDataV3ApiWrapper_pb2 import PushDataV3ApiWrapper

__all__ = ["PushDataV3ApiWrapper"]
