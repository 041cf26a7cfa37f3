"""Generated protobuf and gRPC modules for ``headwater.v1`` (see ``engine/service/generate.py``).

Never edit these files by hand: change ``proto/headwater/v1/*.proto`` and run
``python -m headwater.engine.service.generate``.
"""
