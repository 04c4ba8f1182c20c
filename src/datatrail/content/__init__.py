"""Content storage: the bytes of versions, keyed by the SHA-256 that hashing already computed.

- :mod:`datatrail.content.objects` — the local cache, ``.datatrail/objects/sha256/ab/cdef…``;
- :mod:`datatrail.content.packs` — pack files that carry many small objects in one request;
- :mod:`datatrail.content.remotes` — a remote on any fsspec filesystem (a folder, S3, GCS, Azure, SSH, HTTP);
- :mod:`datatrail.content.restore` — writing objects back to a workspace, verified as written.

The engine knows digests and bytes only; which versions reach which objects
is the service's business (:mod:`datatrail.storage`).
"""

from __future__ import annotations
