"""Data transformation: a registered transform block run over project data, the result ingested.

- :mod:`~tinyforge.transform.source`: what to transform (``dataset[:category[/label]]`` or
  ``prefix:KEY``), the job's staging keys and how names travel through object keys;
- :mod:`~tinyforge.transform.stage`: resolve the block, validate its parameters, stage the input
  (the pipeline's ``transform-plan`` step);
- :mod:`~tinyforge.transform.ingest`: ingest every output file as samples, all or nothing
  (``transform-ingest``), and clean the staging keys (``transform-cleanup``);
- :mod:`~tinyforge.transform.run`: :func:`run_transform`, the same work in one process (the
  ``inprocess`` engine);
- :mod:`~tinyforge.transform.steps`: the pipeline steps of ``hera_workflows/transform.py``.
"""
