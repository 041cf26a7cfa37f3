"""Conversion between ``headwater.v1`` protobuf messages and engine values, in both directions.

Nothing else happens here: no evaluation, no store access, no status codes. Every
``*_from_proto`` builds engine values, whose constructors check every field, so a
malformed message becomes an :class:`~headwater.engine.errors.InvalidRequestError`
naming the field; the ``*_to_proto`` functions never fail on engine values. The
server uses the request-side ``from`` functions and the response-side ``to``
functions; the client uses the other half.

Example::

    >>> from headwater.engine.service.pb import core_pb2
    >>> ref = object_from_proto(core_pb2.ObjectReference(object_type="document", object_id="readme"))
    >>> str(ref), object_to_proto(ref).object_id
    ('document:readme', 'readme')
"""

from .audit import *  # noqa: F403
from .core import *  # noqa: F403
from .lineage import *  # noqa: F403
from .permissions import *  # noqa: F403
