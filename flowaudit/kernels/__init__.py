"""The one compiled unit: every numba kernel and the codes they share.

``build.kernels()`` hands out the compiled functions (ahead-of-time module, numba JIT as
the fallback); the build's sources are exactly the modules of this folder: ``layout``
(array layouts and codes), ``icmp`` (protocol tables), ``jit`` (decorators), ``unpack``
(byte reads), ``walk`` and ``decode`` (capture records → packet arrays), ``flowtable``,
``tcpstate`` and ``fragtable`` (packets → flows). Nothing here imports another layer.
"""
