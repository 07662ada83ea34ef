"""The agent page: what a person sees when the IVR routes a caller to them.

- ``routing``: which routed callers wait in which queue, who rings, and who
  answered, learned from the ARI events of the caller's channel (the
  controller subscribes to it before continuing it into the queue).
- ``caller_data``: the policies and contact history of a caller, behind small
  interfaces with defaults that work before the data layer exists.
- ``pop``: the screen pop, built from the saved call state and that data.
- ``accounts``: sign-in with agent id and token, cookie sessions.
- ``desk`` and ``server``: the glue and the aiohttp routes under ``/agent``.
"""
