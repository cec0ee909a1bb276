"""Every protocol named and counted: IEMOCAP's views, per-class kept and dropped counts in `data check`
and in the run record, and split sizes checked against the published ones."""

import pytest

from affectbench.core.specs import DatasetRef, ModelSpec, RunSpec
from affectbench.datasets import load_dataset
from affectbench.datasets.check import check_dataset
from affectbench.datasets.published import split_size_warnings
from affectbench.engine.select import select
from tests.datasets.fixtures import write_iemocap_fixture, write_mmsa_fixture

# the fixture's Session5 codes: impro01 neu exc xxx fru hap, script01_1 ang sad sur
WANT = {
    ("iemocap4", "4way"): ({"angry": 1, "happy": 2, "neutral": 1, "sad": 1}, {"fru": 1, "sur": 1, "xxx": 1}),
    ("iemocap4", "4way-happy"): (
        {"angry": 1, "happy": 1, "neutral": 1, "sad": 1},
        {"exc": 1, "fru": 1, "sur": 1, "xxx": 1},
    ),
    ("iemocap4", "4way-excited"): (
        {"angry": 1, "excited": 1, "neutral": 1, "sad": 1},
        {"fru": 1, "hap": 1, "sur": 1, "xxx": 1},
    ),
    ("iemocap4", "binary-angry"): ({"angry": 1, "other": 4}, {"fru": 1, "sur": 1, "xxx": 1}),
    ("iemocap", "6way"): (
        {"angry": 1, "excited": 1, "frustrated": 1, "happy": 1, "neutral": 1, "sad": 1},
        {"sur": 1, "xxx": 1},
    ),
}


@pytest.fixture(scope="module")
def iemocap_root(tmp_path_factory):
    return write_iemocap_fixture(tmp_path_factory.mktemp("iemocap"), clips=False)


@pytest.mark.parametrize(("adapter", "protocol"), list(WANT))
def test_iemocap_protocols_keep_and_drop_what_they_name(iemocap_root, adapter, protocol):
    kept, dropped = WANT[(adapter, protocol)]
    ds = load_dataset(adapter, iemocap_root, protocol=protocol)
    samples = ds.load("test")
    assert sorted(ds.info.labels) == sorted(kept)
    assert {lab: sum(s.target == lab for s in samples) for lab in kept} == kept
    assert ds.protocol("test") == {"name": protocol, "dropped": dropped}
    default = ds.info.corpus in ("iemocap", "iemocap4")
    assert default == (protocol in ("6way", "4way"))  # a non-default view is its own corpus name


def test_an_unknown_protocol_is_refused_naming_the_choices(iemocap_root):
    with pytest.raises(Exception, match="unknown protocol 'binary-joy'.*binary-happy"):
        load_dataset("iemocap4", iemocap_root, protocol="binary-joy")


def test_data_check_prints_kept_and_dropped_counts_per_class(iemocap_root):
    report = check_dataset("iemocap4", iemocap_root, probe=False)
    assert report.kept["test"] == WANT[("iemocap4", "4way")][0]
    assert report.dropped["test"] == {"fru": 1, "sur": 1, "xxx": 1}
    text = report.render()
    assert "protocol 4way: kept and dropped per class" in text
    assert "test      kept angry 1, happy 2, neutral 1, sad 1; dropped 3: fru 1, sur 1, xxx 1" in text


def test_the_run_record_keeps_the_protocol_counts(iemocap_root):
    spec = RunSpec(
        dataset=DatasetRef(name="iemocap4", root=str(iemocap_root), options={"protocol": "binary-angry"}),
        model=ModelSpec(backend="scripted"),
    )
    proto = select(spec).data["protocol"]
    assert proto == {
        "name": "binary-angry",
        "dropped": {"fru": 1, "sur": 1, "xxx": 1},
        "kept": {"angry": 1, "other": 4},
    }


def test_split_sizes_that_differ_from_the_published_ones_are_named():
    (w,) = split_size_warnings("simsv2", {"train": 2722, "valid": 647, "test": 1034})
    assert "split train has 2,722 samples; the published simsv2 split has 2,721 (+1)" in w
    assert split_size_warnings("mosi", {"train": 1284, "valid": 229, "test": 686}) == []
    assert split_size_warnings("manifest", {"train": 3}) == []  # no published sizes: nothing to say


def test_data_check_warns_about_a_copy_with_other_split_sizes(tmp_path):
    write_mmsa_fixture(tmp_path, layout="sims", clips=False)
    report = check_dataset("simsv2", tmp_path, probe=False)
    assert any("the published simsv2 split has 1,034" in w for w in report.warnings)
