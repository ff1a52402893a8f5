"""_C.stream_probe (the benchmarks' memory floor): it must really read every input float and write
every output float, or the floor it times would be too low."""
import pytest
import torch

from mobilekernels import _C


def _reference(inp: torch.Tensor, out_n: int) -> torch.Tensor:
    blocks = out_n // 16
    out = torch.zeros(out_n, dtype=torch.float64)
    for b in range(blocks):
        q, rem = divmod(len(inp), blocks)  # q floats per block, one more for the first rem blocks
        i0 = b * q + min(b, rem)
        i1 = i0 + q + (1 if b < rem else 0)
        acc = torch.zeros(16, dtype=torch.float64)
        for i in range(i0, i1):
            acc[(i - i0) % 16] += float(inp[i])
        o1 = out_n if b + 1 == blocks else (b + 1) * 16
        for o in range(b * 16, o1):
            out[o] = acc[o % 16]
    return out


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("in_n,out_n", [(16, 16), (64, 16), (100, 37), (1000, 250), (37, 100), (4096, 1024)])
def test_every_input_is_read_and_every_output_written(in_n, out_n, threads):
    inp = torch.arange(1, in_n + 1, dtype=torch.float32)  # small integers: float sums are exact
    out = torch.full((out_n,), float("nan"))
    _C.stream_probe(inp.data_ptr(), in_n, out.data_ptr(), out_n, threads)
    ref = _reference(inp, out_n)
    torch.testing.assert_close(out.double(), ref, rtol=0, atol=0)


@pytest.mark.parametrize("in_n,out_n,threads", [(15, 16, 1), (16, 15, 1), (16, 16, 0), (16, 16, 2000)])
def test_bad_arguments_raise(in_n, out_n, threads):
    inp, out = torch.zeros(64), torch.zeros(64)
    with pytest.raises(ValueError):
        _C.stream_probe(inp.data_ptr(), in_n, out.data_ptr(), out_n, threads)
