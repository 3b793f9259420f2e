"""The IREE runner's device keeps freed buffers for reuse (iree_flags.RUNTIME_ALLOCATORS):
repeated calls allocate nothing new from the device, where the plain allocator
allocates every call's transients afresh."""

from __future__ import annotations

import torch
from iree import runtime as iree_rt

import torch_grouped_conv as tgc
from torch_grouped_conv.runners import iree
from torch_grouped_conv.runners.iree_flags import RUNTIME_ALLOCATORS


def allocated_bytes_per_call(allocators: list[str] | None) -> tuple[int, int]:
    """(device bytes allocated by the first call, by the three calls after it)."""
    torch.manual_seed(0)
    x = torch.randn(1, 16, 32, 32)
    module = tgc.compile(torch.nn.Conv2d(16, 16, 3, padding=1, groups=4).eval(), x, grouped_conv="im2col")
    config = iree.runtime_config("local-sync", allocators)
    context = iree_rt.SystemContext(config=config)
    vm_module = iree_rt.VmModule.copy_buffer(context.instance, iree.compile_to_vmfb(module)[0])
    context.add_vm_module(vm_module)
    main = context.modules[vm_module.name]["main"]
    before = config.device.allocator.statistics["device_bytes_allocated"]
    main(x.numpy())
    first = config.device.allocator.statistics["device_bytes_allocated"]
    for _ in range(3):
        main(x.numpy())
    return first - before, config.device.allocator.statistics["device_bytes_allocated"] - first


def test_default_device_reuses_transient_buffers() -> None:
    assert RUNTIME_ALLOCATORS == ["caching"]
    first, later = allocated_bytes_per_call(None)
    assert first > 0 and later == 0


def test_plain_allocator_allocates_every_call() -> None:
    first, later = allocated_bytes_per_call([])
    assert first > 0 and later >= 3 * first // 2


def test_devices_are_shared_per_driver_and_allocators() -> None:
    assert iree.runtime_config("local-sync").device is iree.runtime_config("local-sync").device
    assert iree.runtime_config("local-sync", []).device is not iree.runtime_config("local-sync").device
