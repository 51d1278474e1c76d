"""Camera analytics on the gateway: frames stay here, only anonymous events go upstream.

Rooms: ``config`` (YAML models), ``source`` (capture threads), ``analyzer`` (frame → events) built on
``masks``, ``motion``, ``scene`` and ``lifecycle``; ``snapshot`` (opt-in, faces blurred), ``health``
and ``http`` (``/metrics``, ``/health``, ``/snapshots``), ``runtime`` (the gateway's camera service) and
``synthetic`` (clips with ground truth for tests and the benchmark). See ``docs/privacy.md``.
"""
