"""The gRPC service (``headwater serve``): the API of ``proto/headwater/v1`` over an Engine.

- ``pb/``          generated protobuf/gRPC modules (``generate.py`` makes them; never edited by hand)
- ``convert.py``   proto ↔ engine values, nothing else
- ``servicer.py``  one method per RPC: proto → Engine → proto
- ``handlers.py``  every RPC wrapped: decoding, authentication, deadlines, the error table, access logs
- ``errors.py``    the one table mapping errors to gRPC status codes
- ``auth.py``      bearer tokens with names and scopes, from a TOML token file
- ``server.py``    ServerConfig (flags > HEADWATER_* > TOML file), TLS, health, reflection, drain on stop
- ``client.py``    the former home of the Python client, now ``headwater.client``

grpc and protobuf are imported only under this package and the client, ``headwater/client``
(tests/test_architecture.py).
docs/grpc.md describes the API, authentication, TLS, limits and configuration.
"""
