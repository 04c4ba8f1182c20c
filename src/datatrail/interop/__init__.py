"""Interoperability with the tools people already have, both ways.

Importers (``dvc``, ``mlflow``, ``openlineage``) turn what another tool recorded
into OpenLineage events and ingest them through the :class:`~datatrail.service.Trail`,
so they work against any store; exporters (``openlineage``, ``prov``,
``attestation``, ``atlas``) read through the store protocol only.
"""
