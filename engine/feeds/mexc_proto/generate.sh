#!/bin/sh
# Regenerate the *_pb2.py modules. grpcio-tools is needed only here, never at run time.
# protoc writes bare `from mexc_proto import X_pb2`; sed makes them package-relative.
set -eu
cd "$(dirname "$0")/.."
python -m grpc_tools.protoc -I . --python_out=. mexc_proto/*.proto
sed -i 's/^from mexc_proto import /from . import /' mexc_proto/*_pb2.py
