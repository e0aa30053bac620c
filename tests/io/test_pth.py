import os
import pickle
import zipfile

import numpy as np
import pytest

from clnet_jax.io.pth import PthError, flatten_state_dict, load_pth
from conftest import PARITY


def test_zip_legacy_and_half_fixtures_agree():
    z = flatten_state_dict(load_pth(os.path.join(PARITY, "siamrpn_tiny.pth")))
    legacy = flatten_state_dict(load_pth(os.path.join(PARITY, "siamrpn_tiny_legacy.pth")))
    half = flatten_state_dict(load_pth(os.path.join(PARITY, "clnet_tiny.pth")))
    assert set(z) == set(legacy) and len(z) == 314
    for k in z:
        np.testing.assert_array_equal(z[k], legacy[k])
    assert half["backbone.conv1.weight"].dtype == np.float32  # stored as float16
    assert z["backbone.conv1.weight"].shape == (8, 3, 7, 7)
    assert not any(k.startswith("module.") for k in legacy)


def _zip_with_pickle(path, payload: bytes):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", payload)
        zf.writestr("archive/byteorder", "little")


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"w": _Evil(marker)}, protocol=2)
    _zip_with_pickle(tmp_path / "evil.pth", payload)
    with pytest.raises(PthError, match="refusing to load global"):
        load_pth(tmp_path / "evil.pth")
    # the legacy (non-zip) form goes through the same unpickler
    legacy = pickle.dumps(0x1950A86A20F9469CFC6C, 2) + pickle.dumps(1001, 2) + \
        pickle.dumps({}, 2) + payload
    (tmp_path / "evil_legacy.pth").write_bytes(legacy)
    with pytest.raises(PthError, match="posix.system|os.system|refusing"):
        load_pth(tmp_path / "evil_legacy.pth")
    (tmp_path / "evil_first.pth").write_bytes(payload)  # payload in the very first pickle
    with pytest.raises(PthError, match="refusing"):
        load_pth(tmp_path / "evil_first.pth")
    assert not marker.exists()


def test_truncated_and_foreign_files_name_the_file(tmp_path):
    src = open(os.path.join(PARITY, "siamrpn_tiny_legacy.pth"), "rb").read()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(src[: len(src) // 2])
    with pytest.raises(PthError, match="cut.pth"):
        load_pth(cut)
    zsrc = open(os.path.join(PARITY, "siamrpn_tiny.pth"), "rb").read()
    zcut = tmp_path / "zcut.pth"
    zcut.write_bytes(zsrc[: len(zsrc) - 5000])
    with pytest.raises(PthError, match="zcut.pth"):
        load_pth(zcut)
    txt = tmp_path / "notes.pth"
    txt.write_text("hello")
    with pytest.raises(PthError, match="notes.pth"):
        load_pth(txt)
    with pytest.raises(PthError, match="missing.pth"):
        load_pth(tmp_path / "missing.pth")


def test_state_dict_without_tensors_is_refused():
    with pytest.raises(PthError):
        flatten_state_dict({"epoch": 3})
