"""Ground-truth readers: each format's column count, nothing reshaped, errors name the line."""
import numpy as np
import pytest

from clnet_jax.data import groundtruth
from clnet_jax.data.groundtruth import GroundTruthError


def test_boxes_mixed_separators_and_nan_rows(tmp_path):
    f = tmp_path / "gt.txt"
    f.write_text("1,2,3,4\n5\t6\t7\t8\n\nNaN,NaN,NaN,NaN\n9 10 11 12\n")
    np.testing.assert_array_equal(groundtruth.read_boxes(str(f))[[0, 1, 3]],
                                  [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]])
    assert np.isnan(groundtruth.read_boxes(str(f))[2]).all()


@pytest.mark.parametrize("text,line,count", [
    ("1,302,214,132,430,0\n", 1, 6),        # a TLP file read as x,y,w,h
    ("1,2,3,4\n1,2,3,4,5,6,7,8\n", 2, 8),   # a polygon among boxes
    ("1,2,3\n", 1, 3),
])
def test_boxes_refuse_another_column_count(tmp_path, text, line, count):
    f = tmp_path / "groundtruth_rect.txt"
    f.write_text(text)
    with pytest.raises(GroundTruthError, match=rf"groundtruth_rect.txt:{line}: {count} values, "
                                               r"expected 4 \(x,y,w,h\)"):
        groundtruth.read_boxes(str(f))


def test_a_value_that_is_not_a_number_is_named(tmp_path):
    f = tmp_path / "gt.txt"
    f.write_text("1,2,3,4\n1,2,x,4\n")
    with pytest.raises(GroundTruthError, match="line 2 has a value that is not a number"):
        groundtruth.read_boxes(str(f))


def test_tlp_columns_frame_numbers_and_lost_flags(tmp_path):
    f = tmp_path / "gt.txt"
    f.write_text("1,10,20,30,40,0\n2,11,21,31,41,1\n3,12,22,32,42,0\n")
    boxes, lost = groundtruth.read_tlp(str(f))
    np.testing.assert_array_equal(boxes[1], [11, 21, 31, 41])
    np.testing.assert_array_equal(lost, [False, True, False])
    f.write_text("1,10,20,30,40,0\n3,11,21,31,41,0\n")
    with pytest.raises(GroundTruthError, match=r"gt.txt:2: frame number 3, expected 2"):
        groundtruth.read_tlp(str(f))
    f.write_text("1,10,20,30,40\n")
    with pytest.raises(GroundTruthError, match="5 values, expected 6"):
        groundtruth.read_tlp(str(f))
    f.write_text("1,10,20,30,40,2\n")
    with pytest.raises(GroundTruthError, match="isLost is 2"):
        groundtruth.read_tlp(str(f))


def test_vot_regions_and_polygon_to_box(tmp_path):
    f = tmp_path / "groundtruth.txt"
    f.write_text("10,20,30,40\n0,0,10,0,10,5,0,5\n")
    rect, poly = groundtruth.read_regions(str(f))
    assert rect.tolist() == [10, 20, 30, 40] and poly.size == 8
    np.testing.assert_allclose(groundtruth.polygon_to_box(poly, "vot"), [0, 0, 10, 5])
    # an axis-aligned polygon: pysot's box has the same centre and the +1 of its convention
    np.testing.assert_allclose(groundtruth.polygon_to_box(poly, "pysot"), [0, 0, 11, 6])
    # a rotated square of side sqrt(2)*5: bounding box 10x10, pysot's keeps the area (50)
    diamond = np.array([5, 0, 10, 5, 5, 10, 0, 5], float)
    np.testing.assert_allclose(groundtruth.polygon_to_box(diamond, "vot"), [0, 0, 10, 10])
    w = groundtruth.polygon_to_box(diamond, "pysot")[2]
    assert abs((w - 1) ** 2 - 50) < 1e-9
    f.write_text("1,2,3,4,5,6\n")
    with pytest.raises(GroundTruthError, match="6 values, expected 4 or 8"):
        groundtruth.read_regions(str(f))


def test_nfs_corners_to_boxes(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text('0 10 20 40 60 1 0 0 0 "person"\n0 12 20 42 61 2 0 0 0 "person"\n')
    np.testing.assert_array_equal(groundtruth.read_nfs(str(f)), [[10, 20, 30, 40], [12, 20, 30, 41]])
    f.write_text("0 10 20 40 60\n")
    with pytest.raises(GroundTruthError, match="5 values, expected 10"):
        groundtruth.read_nfs(str(f))
