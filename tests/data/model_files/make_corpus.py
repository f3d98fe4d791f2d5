"""Regenerate the corpus of nasty model files, byte for byte: ``python make_corpus.py [output_dir]``.

Independent of annfast on purpose: the files are written from the layout documented in
``annfast/_io.py`` with struct, json and zlib only, so the reader is tested against the
specification rather than against its own writer. Deterministic: no clock, no random module, no
NumPy (the .npy and .npz samples are written by hand too).

``CASES`` maps each file name to the substring its ``annfast.load`` error must contain, or None for
the valid reference files (whose parameters are ``reference_params(n)``). ``expected.json``
stores that table next to the files for the tests.

Most files are of format version 1 (no final CRC-32), which annfast still reads: they test the checks
the two versions share. The ``v2_*`` files are of version 2, which ends with the CRC-32 of every byte
before it.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import sys
import zipfile
import zlib

MAGIC = b"ANNFAST\x00"


def reference_params(n: int) -> list[float]:
    """Parameter i of a reference file: a multiple of 1/16 in [-0.5, 0.5], exact in float32 and float64."""
    return [((i * 5) % 17 - 8) / 16 for i in range(n)]


def pack_params(values, dtype: str = "float32") -> bytes:
    return struct.pack(f"<{len(values)}{'f' if dtype == 'float32' else 'd'}", *values)


def base_header(dtype: str = "float32") -> dict:
    """The header of a 3-input network, tanh(4) then softmax(2): 4 * 4 + 5 * 2 = 26 parameters."""
    return {
        "annfast_version": "0.1.0",
        "dtype": dtype,
        "format": "annfast-model",
        "layers": [{"activation": "tanh", "negative_slope": 0.01, "units": 4},
                   {"activation": "softmax", "negative_slope": 0.01, "units": 2}],
        "loss": "cross_entropy",
        "n_inputs": 3,
        "n_params": 26,
        "params_crc32": 0,
        "seed": 7,
        "training": {"batch_size": 1, "epochs": 3, "learning_rate": 0.05, "loss": "cross_entropy",
                     "momentum": 0.0, "n_rows": 12, "n_validation_rows": 0, "nesterov": False,
                     "shuffle": True, "weight_decay": 0.0},
    }


def model(header=None, params=None, *, raw_header: bytes | None = None, version: int = 1,
          head_len: int | None = None, magic: bytes = MAGIC, fix_crc: bool = True) -> bytes:
    """A model file: prefix, header, parameters; the CRC-32 is set from the parameters unless not fix_crc.

    Version 2 and above end with the CRC-32 of every byte before it (uint32 little-endian).
    """
    header = base_header() if header is None else header
    if params is None:
        params = pack_params(reference_params(26), header.get("dtype", "float32")
                             if isinstance(header, dict) else "float32")
    if raw_header is None:
        if fix_crc and isinstance(header, dict):
            header = dict(header, params_crc32=zlib.crc32(params))
        raw_header = json.dumps(header, sort_keys=True).encode("utf-8")
    if head_len is None:
        head_len = len(raw_header)
    raw = magic + struct.pack("<II", version, head_len) + raw_header + params
    return raw + struct.pack("<I", zlib.crc32(raw)) if version >= 2 else raw


def changed(**fields) -> dict:
    """The base header with some top-level fields replaced."""
    return dict(base_header(), **fields)


def changed_layer(k: int, **fields) -> dict:
    """The base header with some fields of layer k replaced."""
    h = base_header()
    h["layers"] = [dict(layer) for layer in h["layers"]]
    h["layers"][k].update(fields)
    return h


def without(key: str) -> dict:
    h = base_header()
    del h[key]
    return h


def pseudo_random_bytes(n: int, label: str) -> bytes:
    out, counter = b"", 0
    while len(out) < n:
        out += hashlib.sha256(f"{label}:{counter}".encode()).digest()
        counter += 1
    return out[:n]


def npy_bytes() -> bytes:
    """A NumPy .npy file (format 1.0) of 26 float32 values, written by hand."""
    head = "{'descr': '<f4', 'fortran_order': False, 'shape': (26,), }"
    head += " " * (64 - (10 + len(head) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head.encode("latin1") + \
        pack_params(reference_params(26))


def npz_bytes() -> bytes:
    """A NumPy .npz file (an uncompressed zip of .npy files) with a fixed timestamp."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(zipfile.ZipInfo("params.npy", date_time=(2026, 1, 1, 0, 0, 0)), npy_bytes())
    return buf.getvalue()


def pickle_exec_bytes() -> bytes:
    """A protocol-2 pickle that, if unpickled, would call exec() on code raising SystemExit."""
    code = b"raise SystemExit('annfast unpickled a model file: it must never execute code')"
    return b"\x80\x02cbuiltins\nexec\nX" + struct.pack("<I", len(code)) + code + b"\x85R."


def cases() -> dict[str, tuple[bytes, str | None]]:
    """File name -> (content, expected error substring or None for a valid file)."""
    valid32 = model()
    f64 = dict(base_header("float64"), seed=None, training=None, loss="cross_entropy",
               layers=[{"activation": "leaky_relu", "negative_slope": 0.25, "units": 5},
                       {"activation": "sigmoid", "negative_slope": 0.01, "units": 1}], n_params=26)
    valid64 = model(f64, pack_params(reference_params(26), "float64"))
    head_len = struct.unpack("<I", valid32[12:16])[0]
    flipped = bytearray(valid32)
    flipped[-9] ^= 0x10                       # one bit of the parameters
    nan_params = reference_params(26)
    nan_params[5] = float("nan")
    inf_params = reference_params(26)
    inf_params[25] = float("-inf")
    text = json.dumps(dict(base_header(), params_crc32=zlib.crc32(pack_params(reference_params(26)))),
                      sort_keys=True)
    dup = text.replace('"n_inputs": 3', '"n_inputs": 3, "n_inputs": 2')
    v2_valid32 = model(version=2)
    # one bit of the header: "negative_slope": 0.01 -> 0.11 (0x30 -> 0x31), and "seed": 7 -> 6
    v2_slope_flip = bytearray(v2_valid32)
    v2_slope_flip[v2_valid32.index(b'"negative_slope": 0.01') + len(b'"negative_slope": 0.')] ^= 0x01
    v2_seed_flip = bytearray(v2_valid32)
    v2_seed_flip[v2_valid32.index(b'"seed": 7') + len(b'"seed": ')] ^= 0x01
    v2_slope_flip, v2_seed_flip = bytes(v2_slope_flip), bytes(v2_seed_flip)
    big = 2 ** 20
    c = {
        "valid_float32.annf": (valid32, None),
        "valid_float64.annf": (valid64, None),
        # not a model file at all
        "empty.annf": (b"", "the file is empty"),
        "random_bytes.annf": (pseudo_random_bytes(256, "random"), "wrong magic bytes"),
        "pickle_exec.annf": (pickle_exec_bytes(), "Python pickle"),
        "numpy_array.npy": (npy_bytes(), "NumPy .npy"),
        "numpy_archive.npz": (npz_bytes(), "zip archive"),
        "json_text.annf": (text.encode(), "looks like JSON"),
        "magic_lowercase.annf": (b"annfast\x00" + valid32[8:], "wrong magic bytes"),
        # truncated or extended
        "truncated_magic.annf": (valid32[:5], "truncated"),
        "truncated_prefix.annf": (valid32[:11], "inside its 16-byte prefix"),
        "truncated_header.annf": (valid32[:16 + head_len // 2], "does not fit the file"),
        "truncated_params.annf": (valid32[:-1], "truncated or damaged"),
        "missing_params.annf": (valid32[:16 + head_len], "truncated or damaged"),
        "trailing_byte.annf": (valid32 + b"\x00", "trailing data or damaged"),
        # prefix
        "version_0.annf": (model(version=0), "invalid model format version 0"),
        "version_3.annf": (model(version=3), "version 3 is newer than this annfast"),
        "version_max.annf": (model(version=2 ** 32 - 1), "version 4294967295 is newer"),
        "header_len_2_31.annf": (model(head_len=2 ** 31), "header length 2147483648 exceeds the limit"),
        "header_len_max.annf": (model(head_len=2 ** 32 - 1), "exceeds the limit"),
        "header_len_zero.annf": (model(head_len=0), "not valid JSON"),
        "header_len_short.annf": (model(head_len=head_len - 1), "not valid JSON"),
        # header encoding
        "header_not_utf8.annf": (model(raw_header=b'{"format": "annfast-model\xff"}'), "not UTF-8"),
        "header_bom.annf": (model(raw_header=b"\xef\xbb\xbf" + text.encode()), "not valid JSON"),
        "header_not_json.annf": (model(raw_header=b"n_inputs = 3"), "not valid JSON"),
        "header_list.annf": (model(raw_header=b"[]"), "a JSON array instead of an object"),
        "header_null.annf": (model(raw_header=b"null"), "a JSON null instead of an object"),
        "header_string.annf": (model(raw_header=b'"annfast-model"'), "a JSON string instead of an object"),
        "duplicate_keys.annf": (model(raw_header=dup.encode()), "duplicated key 'n_inputs'"),
        "nan_literal.annf": (model(raw_header=text.replace('"negative_slope": 0.01', '"negative_slope": NaN', 1)
                                   .encode()), "NaN is not a valid JSON value"),
        "infinity_literal.annf": (model(raw_header=text.replace('"n_inputs": 3', '"n_inputs": -Infinity')
                                        .encode()), "-Infinity is not a valid JSON value"),
        "float_overflow.annf": (model(raw_header=text.replace('"negative_slope": 0.01', '"negative_slope": 1e999', 1)
                                      .encode()), "'1e999' is out of range"),
        "int_5000_digits.annf": (model(raw_header=text.replace('"seed": 7', '"seed": ' + "9" * 5000).encode()),
                                 "an integer with 5000 digits"),
        # fields present, known, and nothing else
        "wrong_format.annf": (model(changed(format="keras")), "not an annfast model header"),
        "missing_seed.annf": (model(without("seed")), "missing fields ['seed']"),
        "unknown_field.annf": (model(changed(pickle="gASVAAAAAAAAAAAu")), "unknown fields ['pickle']"),
        "annfast_version_number.annf": (model(changed(annfast_version=1)), "annfast_version 1"),
        # n_inputs and units: wrong types, extra nesting, out of range, huge
        "n_inputs_string.annf": (model(changed(n_inputs="3")), "n_inputs '3'"),
        "n_inputs_float.annf": (model(changed(n_inputs=3.0)), "n_inputs 3.0"),
        "n_inputs_bool.annf": (model(changed(n_inputs=True)), "n_inputs True"),
        "n_inputs_nested.annf": (model(changed(n_inputs=[3])), "n_inputs [3]"),
        "n_inputs_object.annf": (model(changed(n_inputs={"value": 3})), "n_inputs {'value': 3}"),
        "n_inputs_zero.annf": (model(changed(n_inputs=0)), "n_inputs 0"),
        "n_inputs_negative.annf": (model(changed(n_inputs=-3)), "n_inputs -3"),
        "n_inputs_2_31.annf": (model(changed(n_inputs=2 ** 31)), "n_inputs 2147483648"),
        "n_inputs_2_63.annf": (model(changed(n_inputs=2 ** 63 - 1)), "n_inputs 9223372036854775807"),
        "n_inputs_2_64.annf": (model(changed(n_inputs=2 ** 64)), "n_inputs 18446744073709551616"),
        "units_zero.annf": (model(changed_layer(0, units=0)), "layers[0].units 0"),
        "units_string.annf": (model(changed_layer(1, units="2")), "layers[1].units '2'"),
        "units_2_31.annf": (model(changed_layer(0, units=2 ** 31)), "layers[0].units 2147483648"),
        "units_2_63.annf": (model(changed_layer(1, units=2 ** 63)), "layers[1].units 9223372036854775808"),
        "n_params_2_40.annf": (model(changed(n_inputs=big - 1, n_params=big * big,
                                             layers=[{"activation": "linear", "negative_slope": 0.01,
                                                      "units": big}])),
                               "more than 268435456 parameters"),
        "n_params_2_56.annf": (model(changed(n_inputs=2 ** 28, n_params=(2 ** 28 + 1) * 2 ** 28,
                                             layers=[{"activation": "linear", "negative_slope": 0.01,
                                                      "units": 2 ** 28}])),
                               "more than 268435456 parameters"),
        "n_params_2_63.annf": (model(changed(n_params=2 ** 63 - 1)), "n_params 9223372036854775807 does not match"),
        "n_params_mismatch.annf": (model(changed(n_params=27)), "n_params 27 does not match the layers (26)"),
        "n_params_float.annf": (model(changed(n_params=26.0)), "n_params 26.0 does not match"),
        "layer_sizes_inconsistent.annf": (model(changed_layer(0, units=5)),
                                          "n_params 26 does not match the layers (32)"),
        # layers
        "layers_empty.annf": (model(changed(layers=[])), "layers must be a list of 1 to 32 layers"),
        "layers_33.annf": (model(changed(layers=[{"activation": "tanh", "negative_slope": 0.01, "units": 1}] * 33)),
                           "layers must be a list of 1 to 32 layers"),
        "layers_object.annf": (model(changed(layers={"0": base_header()["layers"][0]})), "layers must be a list"),
        "layer_nested.annf": (model(changed(layers=[base_header()["layers"]])), "layers[0] is a JSON array"),
        "layer_extra_field.annf": (model(changed_layer(0, bias=True)), "layers[0] has fields"),
        "activation_unknown.annf": (model(changed_layer(0, activation="gelu")), "layers[0].activation 'gelu'"),
        "activation_list.annf": (model(changed_layer(0, activation=["tanh"])), "layers[0].activation ['tanh']"),
        "softmax_hidden.annf": (model(changed_layer(0, activation="softmax")),
                                "softmax is only allowed in the output layer"),
        "softmax_one_unit.annf": (model(changed(n_params=21, layers=[
            {"activation": "tanh", "negative_slope": 0.01, "units": 4},
            {"activation": "softmax", "negative_slope": 0.01, "units": 1}])), "needs at least 2 units"),
        "slope_negative.annf": (model(changed_layer(0, negative_slope=-0.5)), "negative_slope -0.5"),
        "slope_huge_float32.annf": (model(changed_layer(0, negative_slope=1e39)), "negative_slope 1e+39"),
        "slope_string.annf": (model(changed_layer(0, negative_slope="0.01")), "negative_slope '0.01'"),
        # dtype, loss, seed, CRC, training
        "dtype_float16.annf": (model(changed(dtype="float16")), "dtype 'float16'"),
        "dtype_list.annf": (model(changed(dtype=["float32"])), "dtype ['float32']"),
        "loss_unknown.annf": (model(changed(loss="mse")), "loss 'mse'"),
        "loss_object.annf": (model(changed(loss={"name": "mse"})), "loss {'name': 'mse'}"),
        "cross_entropy_linear.annf": (model(changed_layer(1, activation="linear")),
                                      "cross_entropy loss needs a softmax or sigmoid output layer"),
        "seed_negative.annf": (model(changed(seed=-1)), "seed -1"),
        "seed_float.annf": (model(changed(seed=7.5)), "seed 7.5"),
        "crc_negative.annf": (model(changed(params_crc32=-1), fix_crc=False), "params_crc32 -1"),
        "crc_string.annf": (model(changed(params_crc32="0"), fix_crc=False), "params_crc32 '0'"),
        "training_list.annf": (model(changed(training=[1, 2])), "training must be an object or null"),
        "training_nested.annf": (model(changed(training={"callbacks": {"x": 1}})),
                                 "training['callbacks'] is a JSON object"),
        # parameters
        "params_bit_flip.annf": (bytes(flipped), "CRC-32 mismatch"),
        "params_count_short.annf": (model(params=pack_params(reference_params(25))), "truncated or damaged"),
        "params_nan.annf": (model(params=pack_params(nan_params)), "non-finite values (first at index 5)"),
        "params_inf.annf": (model(params=pack_params(inf_params)), "non-finite values (first at index 25)"),
        "params_float64_in_float32_file.annf": (model(params=pack_params(reference_params(26), "float64")),
                                                "trailing data or damaged"),
        # version 2: the final CRC-32 covers the whole file
        "v2_valid_float32.annf": (v2_valid32, None),
        "v2_valid_float64.annf": (model(f64, pack_params(reference_params(26), "float64"), version=2), None),
        "v2_slope_bit_flip.annf": (v2_slope_flip, "CRC-32 mismatch: a byte of its header or parameters"),
        "v2_seed_bit_flip.annf": (v2_seed_flip, "CRC-32 mismatch: a byte of its header or parameters"),
        "v2_final_crc_flipped.annf": (v2_valid32[:-1] + bytes([v2_valid32[-1] ^ 0x80]), "CRC-32 mismatch"),
        "v2_final_crc_missing.annf": (v2_valid32[:-4], "truncated or damaged"),
        "v2_final_crc_short.annf": (v2_valid32[:-1], "truncated or damaged"),
        "v2_as_version_1.annf": (v2_valid32[:8] + struct.pack("<I", 1) + v2_valid32[12:], "trailing data or damaged"),
        "v1_as_version_2.annf": (valid32[:8] + struct.pack("<I", 2) + valid32[12:], "truncated or damaged"),
    }
    return c


def main(argv: list[str]) -> None:
    out = argv[1] if len(argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    table = cases()
    for name, (content, _) in table.items():
        with open(os.path.join(out, name), "wb") as fh:
            fh.write(content)
    with open(os.path.join(out, "expected.json"), "w", encoding="utf-8", newline="\n") as fh:
        json.dump({name: expected for name, (_, expected) in table.items()}, fh, indent=1, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    main(sys.argv)
