import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from sf_platform.core.qa import ids

MASK = (1 << 64) - 1


def reference_hash(s: str) -> int:
    """Independent pure-Python FNV-1a + SplitMix64 (the documented definition)."""
    h = 0xCBF29CE484222325
    data = s.encode("utf-8")
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & MASK
    z = (h ^ (len(data) << 40)) & MASK
    z = (z + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


@settings(deadline=None, max_examples=60)
@given(st.lists(st.text(max_size=40), max_size=30))
def test_vectorized_hash_matches_reference(strings):
    got = ids.hash_strings(pa.array(strings, type=pa.string()))
    assert [int(v) for v in got] == [reference_hash(s) for s in strings]


def test_hash_handles_nulls_chunks_and_slices():
    arr = pa.array(["a", None, "", "héllo", "a"])
    h = ids.hash_strings(arr)
    assert h[0] == h[4] and h[1] != h[2] and len(set(h[:4].tolist())) == 4
    chunked = pa.chunked_array([arr.slice(0, 2), arr.slice(2)])
    assert (ids.hash_strings(chunked) == h).all()
    assert (ids.hash_strings(arr.slice(3)) == h[3:]).all()
    assert ids.hash_string("héllo") == h[3]


def test_mix_is_order_sensitive_and_qa_ids_share_the_image_prefix():
    a, b = np.uint64(1), np.uint64(2)
    assert ids.combine(a, b) != ids.combine(b, a)
    img = np.array([7, 7, 9], dtype=np.uint64)
    key = ids.splitmix64(np.array([1, 2, 1], dtype=np.uint64))
    out = ids.qa_ids(ids.splitmix64(img), key).to_pylist()
    assert all(len(x) == 20 and int(x, 16) >= 0 for x in out)
    assert out[0][:8] == out[1][:8] != out[2][:8]
    assert out[0] != out[1]


def test_coin_is_uniform_in_unit_interval():
    u = ids.coin(ids.splitmix64(np.arange(20000, dtype=np.uint64)))
    assert 0 <= u.min() and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.01
