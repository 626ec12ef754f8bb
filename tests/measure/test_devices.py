import torch

from fastslow.measure.devices import device_available, list_devices, measure_peaks, peak_dtypes
from fastslow.measure.timer import TimerConfig
from tests.conftest import needs_cuda


def test_cpu_is_always_listed_with_its_properties():
    devs = list_devices()
    cpu = devs[0]
    assert cpu["device"] == "cpu" and cpu["logical_cores"] >= 1
    assert isinstance(cpu["isa_flags"], list)
    assert device_available("cpu")
    assert device_available("cuda") == torch.cuda.is_available()


def test_cpu_peaks_are_positive_and_cover_each_dtype():
    cfg = TimerConfig(warmup_s=0.0, min_time_s=0.0, max_time_s=0.05, min_samples=2)
    peaks = measure_peaks("cpu", threads=1, matmul_size=64, bandwidth_bytes=1 << 20, config=cfg)
    kinds = [(p.kind, p.dtype) for p in peaks]
    assert ("matmul", "float32") in kinds and ("bandwidth", "float32") in kinds
    assert len([k for k in kinds if k[0] == "matmul"]) == len(peak_dtypes("cpu"))
    for p in peaks:
        assert p.value > 0 and p.median_s > 0
    mm = next(p for p in peaks if p.kind == "matmul" and p.dtype == "float32")
    assert mm.value == 2 * 64**3 / mm.median_s


@needs_cuda
def test_cuda_peaks():
    peaks = measure_peaks("cuda", matmul_size=2048, bandwidth_bytes=64 << 20)
    assert {p.dtype for p in peaks if p.kind == "matmul"} >= {"float32", "float16"}
