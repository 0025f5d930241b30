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
    [report]
    recheck_seeds = 0
""")


@pytest.fixture
def tiny_toml(tmp_path):
    p = tmp_path / "study.toml"
    p.write_text(TINY)
    return p


@pytest.fixture
def study_toml(tiny_toml, tmp_path):
    """The tiny study with its storage and artefacts under tmp_path."""
    def make(extra: str = "", **study):
        text = tiny_toml.read_text()
        for k, v in study.items():
            text = text.replace("[study]\n", f"[study]\n{k} = {v!r}\n".replace("'", '"'), 1)
        p = tmp_path / f"study{len(list(tmp_path.glob('study*.toml')))}.toml"
        p.write_text(text + extra)
        return p
    return make

