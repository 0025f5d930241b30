import textwrap

import pytest

TINY = textwrap.dedent("""
    [study]
    name = "t"
    n_trials = 3
    seed = 0
    [data]
    dataset = "breast_cancer"
    steps = 6
    train_size = 60
    [chip]
    layer_sizes = [30, 8, 2]
    lanes = 4
    [search]
    methods = ["bptt", "mh"]
    surrogates = ["atan", "fast_sigmoid"]
    [search.bptt]
    epochs = [2, 3]
    [search.mh]
    iters = [40, 60]
""")


@pytest.fixture
def tiny_toml(tmp_path):
    p = tmp_path / "study.toml"
    p.write_text(TINY)
    return p
