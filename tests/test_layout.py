"""The C workspace layout (af_ws_layout, built by af_ws_layout_init alone): for many shapes, every segment of each
part lies inside the length the size queries report, starts aligned, and overlaps no other segment of that part."""
import itertools

import pytest

from annfast import _core
from annfast import _validation as v

# 1-unit layers, the transposed first layer's 2048-real boundary (n_in * round_up(n_out) <= 2048), the 64 KiB
# boundary of the pending path (n_in * n_out * 8 >= 65536 and float32's 4 bytes),
# deep and wide networks
SHAPES = [
    (1, 1), (1, 1, 1), (4, 8, 1), (64, 32, 10), (784, 128, 10), (784, 512, 512, 10), (3, 1, 1, 1, 2),
    (128, 16, 3), (128, 17, 3), (127, 16, 1), (129, 16, 1), (2048, 1, 1), (2049, 1, 1), (1, 2048, 1),
    (1024, 8, 2), (1024, 9, 2), (8192, 1, 1), (8191, 1, 1), (4096, 4, 4), (16384, 1, 1), (16383, 1, 1),
    (64, 256, 256), (5, 300, 7, 300, 2), (17, 33, 65, 129),
]


def spec(sizes):
    layers = [(n, v.ACTIVATIONS["sigmoid"], 0.0) for n in sizes[1:-1]] + [(sizes[-1], v.ACTIVATIONS["linear"], 0.0)]
    return _core.Spec(sizes[0], layers, v.LOSSES["half_squared_error"], v.KERNELS["base"])


def check_part(length, segments, align):
    used = [(name, off, n) for name, (off, n) in segments.items() if n > 0]
    for name, off, n in used:
        assert off % align == 0, name
        assert 0 <= off and off + n <= length, (name, off, n, length)
    for (a, oa, na), (b, ob, nb) in itertools.combinations(used, 2):
        assert oa + na <= ob or ob + nb <= oa, f"{a} [{oa}, {oa + na}) overlaps {b} [{ob}, {ob + nb})"


@pytest.mark.parametrize("sizes", SHAPES, ids=lambda s: "-".join(map(str, s)))
def test_segments_inside_and_disjoint(sizes):
    s = spec(sizes)
    lay = _core.workspace_layout(s)
    align = lay["align"]
    n_in, n1 = sizes[0], sizes[1]
    row_len, row = lay["row"]
    check_part(row_len, row, align)
    per_len, per = lay["per_sample"]
    assert per_len == s.row_workspace_len
    check_part(per_len, per, align)
    several_len, several = lay["several_rows"]
    assert several_len == s.workspace_len
    # the block and the per-sample part share the start; everything else lies past both
    check_part(several_len, {k: x for k, x in several.items() if k != "per_sample"}, align)
    check_part(several_len, {k: x for k, x in several.items() if k != "block"}, align)
    assert several["block"] == (0, 16 * row_len)
    split_len, split = lay["split"]
    assert split_len == _core.split_workspace_len(s)
    check_part(split_len, split, align)
    # the sizes each segment must have for the kernels that use it
    st = -(-n1 // align) * align
    assert lay["stride"] == st
    for name in ("pend_u", "pend_zb", "pend_zbv", "pend_uw", "pend_uv"):
        assert per[name][1] == 8 * st
    transposed = n_in * st <= 2048
    assert per["wt"][1] == per["wt0"][1] == (n_in * st if transposed else 0)
    assert several["vt"][1] == several["vt0"][1] == (n_in * st if transposed else 0)
    widest = max(sizes)
    assert row["delta0"][1] == row["delta1"][1] == -(-widest // align) * align
    if len(sizes) > 2:
        assert split["split_u"][1] == split["split_zb"][1] == 8 * st
        upper = spec(sizes[1:])
        assert split["split_row"] == (0, _core.workspace_layout(upper)["row"][0])
    else:
        assert split_len == 0
