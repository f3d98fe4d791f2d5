"""Data that need not fit in memory: memory-mapped arrays and iterables of (X, y) chunks."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import QUICK

import annfast as af


def make_net(dtype="float64"):
    return af.Network(5, [af.Dense(12, "tanh"), af.Dense(2)], dtype=dtype, seed=3)


@pytest.fixture
def data(rng):
    X = rng.normal(size=(3000, 5))
    y = np.column_stack([np.sin(X[:, 0]), X[:, 1] * X[:, 2]])
    return X, y


def test_memmap_trains_like_the_array_in_memory(tmp_path, data):
    X, y = data
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    ym = np.load(tmp_path / "y.npy", mmap_mode="r")
    assert isinstance(Xm, np.memmap)
    a, b = make_net(), make_net()
    ha = a.fit(X, y, epochs=2, shuffle=False)
    hb = b.fit(Xm, ym, epochs=2, shuffle=False, shuffle_buffer=700)    # 5 blocks, in file order
    np.testing.assert_allclose(b.parameters, a.parameters, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(hb.history["loss"], ha.history["loss"], rtol=1e-12)


def test_memmap_with_shuffling_learns(tmp_path, data):
    X, y = data
    path = tmp_path / "X.f32"
    mm = np.memmap(path, dtype=np.float32, mode="w+", shape=X.shape)
    mm[:] = X
    mm.flush()
    del mm
    Xm = np.memmap(path, dtype=np.float32, mode="r", shape=X.shape)
    net = make_net("float32")
    hist = net.fit(Xm, y, epochs=15, learning_rate=0.02, shuffle_buffer=512)
    assert hist.history["loss"][-1] < 0.3 * hist.history["loss"][0]
    # a slice of a memmap streams too
    net.fit(Xm[1000:2000], y[1000:2000], epochs=1)


def test_bad_value_in_a_memmap_is_found_before_training(tmp_path, data):
    X, y = data
    X = X.copy()
    X[2345, 3] = np.nan
    np.save(tmp_path / "X.npy", X)
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    net = make_net()
    before = net.parameters.tobytes()
    with pytest.raises(ValueError, match=r"X holds a non-finite value \(nan\) at row 2345, column 3"):
        net.fit(Xm, y, epochs=1, shuffle_buffer=700)
    assert net.parameters.tobytes() == before


def test_chunk_iterables(data):
    X, y = data
    chunks = [(X[i:i + 250], y[i:i + 250]) for i in range(0, len(X), 250)]
    a, b = make_net(), make_net()
    a.fit(X, y, epochs=3, shuffle=False)
    hist = b.fit(chunks, None, epochs=3, shuffle=False, shuffle_buffer=1000)
    assert hist.params["n_rows"] is None and len(hist) == 3
    np.testing.assert_allclose(b.parameters, a.parameters, rtol=1e-12, atol=1e-14)
    # partial_fit takes chunks too, and a one-shot generator is fine for one pass
    b.partial_fit(((X[i:i + 100], y[i:i + 100]) for i in range(0, 1000, 100)), None)


def test_one_shot_generator_cannot_feed_two_epochs(data):
    """Refused before the first epoch trains (it used to raise only after the first epoch had)."""
    X, y = data
    gen = ((X[i:i + 500], y[i:i + 500]) for i in range(0, len(X), 500))
    net = make_net()
    before = net.parameters.tobytes()
    with pytest.raises(ValueError, match=r"one-shot iterator of chunks .* only one epoch, but epochs=2"):
        net.fit(gen, None, epochs=2)
    assert net.parameters.tobytes() == before and net.history is None
    assert next(gen)[0].shape == (500, 5)        # not even started: the generator is still whole
    it = iter([(X[:100], y[:100])])
    with pytest.raises(ValueError, match="one-shot iterator"):
        net.fit(it, None, epochs=3)
    net.fit(iter([(X[:100], y[:100])]), None, epochs=1)    # one epoch is fine


def test_bad_chunks(data):
    X, y = data
    net = make_net()
    with pytest.raises(ValueError, match=r"chunk 2 \(rows 200 onwards\): X has 4 columns"):
        net.fit([(X[:100], y[:100]), (X[100:200], y[100:200]), (X[200:300, :4], y[200:300])], None)
    with pytest.raises(TypeError, match="chunk 0 must be a pair"):
        net.fit([X[:10]], None)
    with pytest.raises(ValueError, match="gave no rows"):
        net.fit([], None)
    with pytest.raises(ValueError, match="validation_split needs the data in memory"):
        net.fit([(X, y)], None, validation_split=0.2)
    with pytest.raises(ValueError, match="full-batch gradient descent"):
        net.fit([(X, y)], None, batch_size=None)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the peak RSS from /proc/self/status")
def test_memmap_larger_than_the_data_memory_streams_with_flat_rss(tmp_path):
    rows = 1_000_000 if QUICK else 4_000_000         # 64 float32 inputs: 256 MB or 1 GB on disk
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        import annfast as af
        def peak_rss():   # this process's own high-water mark (ru_maxrss would include the parent's)
            with open("/proc/self/status") as fh:
                return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM:"))
        path = sys.argv[1]
        with open(path, "wb") as fh:             # written in pieces with file writes: never mapped
            for i in range(0, {rows}, 100_000):
                np.random.default_rng(i).random((min(100_000, {rows} - i), 64), dtype=np.float32).tofile(fh)
        X = np.memmap(path, dtype=np.float32, mode="r", shape=({rows}, 64))
        y = np.random.default_rng(1).random({rows}, dtype=np.float32)
        net = af.Network(64, [af.Dense(16, "tanh"), af.Dense(1)], seed=0)
        base = peak_rss()
        hist = net.fit(X, y, epochs=1, learning_rate=0.01, shuffle_buffer=32_768)
        peak = peak_rss()
        assert np.isfinite(hist.history["loss"][0])
        check = np.memmap(path, dtype=np.float32, mode="r", shape=({rows}, 64))
        float(np.asarray(check).sum())              # reading through the mapping does count (sanity)
        mapped = peak_rss()
        print(base, peak, mapped)
    """)
    path = tmp_path / "big.f32"
    # run outside the source tree, so that the installed annfast is the one imported
    proc = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    base, peak, mapped = map(int, proc.stdout.split())
    size = path.stat().st_size
    # 32k rows of 64 float32 are 8 MB a buffer; allow a few buffers and copies, far below the file
    assert peak - base < size / 8, (peak - base, size)
    assert mapped - base > size / 2        # the measurement can see a file's pages when they are mapped


def test_memmap_trains_on_what_the_array_holds_not_on_its_file(tmp_path, data):
    """A memory-mapped X is read from the array object, never by reopening its file (issue 18, item 6)."""
    X, y = data
    path = tmp_path / "X.npy"
    np.save(path, X)
    # a copy-on-write map with a NaN written in memory: refused like the same NaN in memory
    Xc = np.load(path, mmap_mode="c")
    Xc[1234, 2] = np.nan
    net = make_net()
    before = net.parameters.tobytes()
    with pytest.raises(ValueError, match=r"X holds a non-finite value \(nan\) at row 1234, column 2"):
        net.fit(Xc, y, epochs=1, shuffle_buffer=500)
    assert net.parameters.tobytes() == before
    # zeroed in memory: trains on the zeros, exactly as the same array in memory does
    Xz = np.load(path, mmap_mode="c")
    Xz[:] = 0
    a, b = make_net(), make_net()
    a.fit(Xz, y, epochs=1, shuffle=False, shuffle_buffer=500)
    b.fit(np.zeros_like(X), y, epochs=1, shuffle=False)
    assert a.parameters.tobytes() == b.parameters.tobytes()
    # the file replaced after mapping (a new file renamed over it): the map, and training, keep the old data
    Xr = np.load(path, mmap_mode="r")
    np.save(tmp_path / "new.npy", np.ones_like(X))
    (tmp_path / "new.npy").replace(path)
    a, b = make_net(), make_net()
    a.fit(Xr, y, epochs=1, shuffle=False, shuffle_buffer=500)
    b.fit(X, y, epochs=1, shuffle=False)
    assert a.parameters.tobytes() == b.parameters.tobytes()


def test_memmap_with_a_scalar_or_bad_y_is_a_clear_error(tmp_path, data):
    X, y = data
    np.save(tmp_path / "X.npy", X)
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    net = make_net()
    with pytest.raises(ValueError, match=r"y must be 1-D or 2-D \(n_rows, n_outputs\), got shape \(\)"):
        net.fit(Xm, 3.0)
    with pytest.raises(TypeError, match="y must hold real numbers"):
        net.fit(Xm, np.array(["a"] * len(X)))
