"""The one Reader base: every registered reader checks the common arguments the same way, before
it reads a file, and its own options are exactly its ``build``'s keyword-only arguments."""

from __future__ import annotations

import inspect

import pytest

from fer_nla.data import available_datasets, build_dataset, dataset_options
from fer_nla.data.registry import _reader
from fer_nla.data.sources.common import ReadRequest
from fer_nla.data.sources.reader import ListingReader, Reader
from fer_nla.errors import InputError


def test_every_dataset_is_a_reader_whose_options_exclude_the_common_arguments():
    common = {field for field in ReadRequest.__dataclass_fields__}
    for name in available_datasets():
        reader = _reader(name)
        assert isinstance(reader, Reader) and reader.name == name
        assert not common & set(dataset_options(name)), name
        first = next(iter(inspect.signature(reader.build).parameters))
        assert first == "request", name


def test_the_request_is_checked_before_any_file_is_read(tmp_path):
    reader = _reader("rafdb")
    checked = reader.request(ReadRequest(root=tmp_path, split="Testing"), {})
    assert checked.split == "test" and checked.num_classes == 7 and checked.root == tmp_path
    with pytest.raises(InputError, match="RAF-DB has only the splits 'train' and 'test', no 'valid'; model selection"):
        reader.request(ReadRequest(root=tmp_path, split="val"), {})
    # a listing reader refuses a conflict policy before it looks at the root
    with pytest.raises(InputError, match="conflicts='keep' is not a policy"):
        build_dataset("manifest", root=tmp_path / "absent.csv", conflicts="keep")
    assert all(isinstance(_reader(n), ListingReader) for n in ("rafdb", "affectnet", "ferplus", "fer2013", "manifest"))


def test_a_reader_can_be_called_with_a_checked_request_directly():
    reader = _reader("synthetic")
    request = reader.request(ReadRequest(split="valid", labels="distribution", seed=3), {})
    dataset = reader.build(request, num_samples=4, image_size=16)
    assert dataset.split == "valid" and len(dataset) == 4 and dataset.target_mode == "soft"
    assert dataset.info["seed"] == 3 and len(dataset.class_names) == 7
    with pytest.raises(InputError, match="which reads no files"):
        reader.request(ReadRequest(root="faces/", labels="plurality"), {})  # the root first: another dataset was meant
