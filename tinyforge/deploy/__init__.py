"""tinyforge.deploy: deployment formats, built and verified on their targets (DESIGN.md §6).

Entry point: :func:`tinyforge.deploy.registry.build_artifact` (format + target + bundle ->
one zip + metrics). The bundle is :class:`tinyforge.deploy.bundle.DeployBundle`; the target
catalog is :data:`tinyforge.deploy.targets.TARGETS`; formats are
:data:`tinyforge.deploy.registry.FORMATS` (one module each). Firmware-style builds run the
bundle's test windows on the target (QEMU mps2-an386 / an500 for Cortex-M4F / M7, QEMU
riscv32 virt for ESP32-C3/C6-class RV32, natively, or node) and fail unless every prediction
equals the platform's int8 prediction.
"""
