"""Generated protobuf classes for the parts of CEL's syntax tree Headwater reads (see ``cel_expr.proto``).

Never edit ``cel_expr_pb2.py`` or ``cel_expr_pb2.pyi`` by hand: change ``cel_expr.proto`` and run
``python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. dsl/cel/pb/cel_expr.proto`` from the
repository root.
"""
