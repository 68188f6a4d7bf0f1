"""Custom blocks (DESIGN.md §5): contract, images, and running them locally.

- ``manifest``     parameters.json parser/validator
- ``limits``       resource limits (``info.resources``) merged with the caller's
- ``contract``     per-type arguments, input checks and output checks
- ``run``          ``run_block`` (podman container or local command), ``executor_for_block``
- ``local_command`` the StepExecutor for ``info.localCommand``
- ``images``       podman build/push/inspect of block images (manifest carried as a label)
- ``containers``   locally bootstrapped base images (busybox, Debian+Python, TensorFlow)
- ``oci_registry`` a loopback OCI registry (docker-registry) and its catalogue client
- ``scaffold``     ``tinyforge blocks init``
- ``errors``       block run failures carrying the block's log tail

The container runtime itself (containers.conf, PodmanExecutor) is ``tinyforge.workflows.podman``.
"""
