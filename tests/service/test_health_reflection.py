"""A generic gRPC client can check health, discover the API by reflection and call it without our stubs."""

from __future__ import annotations

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from .conftest import TOKENS


def test_standard_health_checking(make_server) -> None:
    server = make_server()
    with grpc.insecure_channel(server.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "headwater.v1.PermissionService", "headwater.v1.LineageService",
                        "headwater.v1.AuditService"):
            assert stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status == \
                health_pb2.HealthCheckResponse.SERVING
        try:
            stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
            raise AssertionError("expected NOT_FOUND")
        except grpc.RpcError as e:
            assert e.code() is grpc.StatusCode.NOT_FOUND
        server.stop(grace=0)
    with grpc.insecure_channel(server.address) as channel:
        try:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
            raise AssertionError("a stopped server answered")
        except grpc.RpcError as e:
            assert e.code() is grpc.StatusCode.UNAVAILABLE


def test_reflection_discovers_and_calls_the_api(server) -> None:
    with grpc.insecure_channel(server.address) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        assert {"headwater.v1.PermissionService", "headwater.v1.RelationshipService", "headwater.v1.SchemaService",
                "headwater.v1.LineageService", "headwater.v1.AuditService", "grpc.health.v1.Health"} <= services
        pool = descriptor_pool.DescriptorPool(database)  # descriptors fetched from the server, not our modules
        method = pool.FindServiceByName("headwater.v1.PermissionService").FindMethodByName("Check")
        request_cls = message_factory.GetMessageClass(method.input_type)
        response_cls = message_factory.GetMessageClass(method.output_type)
        request = request_cls()
        request.resource.object_type, request.resource.object_id = "document", "readme"
        request.permission = "view"
        request.subject.object.object_type, request.subject.object.object_id = "user", "ann"
        call = channel.unary_unary("/headwater.v1.PermissionService/Check",
                                   request_serializer=lambda m: m.SerializeToString(),
                                   response_deserializer=response_cls.FromString)
        response = call(request, metadata=(("authorization", f"Bearer {TOKENS['reader'][0]}"),), timeout=5)
        enum = pool.FindEnumTypeByName("headwater.v1.Permissionship")
        assert enum.values_by_number[response.permissionship].name == "PERMISSIONSHIP_HAS_PERMISSION"
        assert response.revision_token.startswith("hw1_")
