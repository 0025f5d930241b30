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


@pytest.fixture(autouse=True)
def _cwd_of_its_own(tmp_path_factory, monkeypatch):
    """Each test runs in an empty directory of its own, not the work tree: a study command without ``--out``
    writes, or probes and removes, its default ``runs/<name>`` in the current directory, where a test in the
    other worker process of scripts/test.sh could meet it (``runs/t``, the tiny study's)."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


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

