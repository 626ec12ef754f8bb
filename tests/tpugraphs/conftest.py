from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "tpugraphs"


@pytest.fixture(scope="session")
def fixtures() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"real TpuGraphs fixtures not found at {FIXTURES}")
    return FIXTURES


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory) -> Path:
    from fastslow.tpugraphs.synth import write_synthetic

    root = tmp_path_factory.mktemp("synth")
    write_synthetic(root, train=40, valid=10, test=5, seed=1)
    return root
