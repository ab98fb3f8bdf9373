"""Shared fixtures: the ESAC data beside the project, and a tiny model trained on a few songs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from melodybot.environment import configure_process

# The bot's process settings (one BLAS thread, TensorFlow quiet), set before any test module
# loads NumPy: the tests and the worker processes they start run as the bot's would.
configure_process()

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ESAC_DIR = PROJECT_ROOT.parent / "shared" / "data" / "esac" / "deutschl"
SHIPPED_MODEL = PROJECT_ROOT / "models" / "esac-lstm"
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each test run parses into its own cache, so tests never read a developer's stale one."""
    os.environ["MELODYBOT_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def esac_dir() -> Path:
    if not ESAC_DIR.is_dir():
        if IN_CI:
            pytest.fail(f"training data missing at {ESAC_DIR}")
        pytest.skip("the ESAC data (../shared/data/esac/deutschl) is not beside the project")
    return ESAC_DIR


@pytest.fixture(scope="session")
def few_songs_dir(esac_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Forty real ESAC songs: enough for both sides of the split, trained in seconds."""
    target = tmp_path_factory.mktemp("songs")
    for path in sorted((esac_dir / "kinder").glob("*.krn"))[:40]:
        shutil.copy(path, target / path.name)
    return target


@pytest.fixture(scope="session")
def tiny_model_dir(few_songs_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from generator.training.train import TrainConfig, train

    out = tmp_path_factory.mktemp("models") / "tiny"
    train(
        TrainConfig(
            data=str(few_songs_dir),
            out_dir=out,
            units=24,
            depth=2,
            embedding_dim=8,
            window=64,
            batch_size=16,
            epochs=2,
            validation_percent=20,
            verbose=0,
        )
    )
    return out


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_dir: Path):
    from generator.engine import MelodyEngine

    return MelodyEngine.load(tiny_model_dir)


@pytest.fixture(scope="session")
def shipped_engine():
    from generator.engine import MelodyEngine

    return MelodyEngine.load(SHIPPED_MODEL)


@pytest.fixture(scope="session")
def postgres_server():
    """One real PostgreSQL for the run (Debian's package, a cluster in a temp dir)."""
    from tests.postgres_server import PostgresServer, binaries

    if binaries() is None:
        if IN_CI:
            pytest.fail("PostgreSQL is not installed: scripts/install-system-deps installs it")
        pytest.skip("PostgreSQL is not installed (scripts/install-system-deps installs it)")
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """An empty database of its own for one test."""
    return postgres_server.database()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_target(request, tmp_path) -> str | Path:
    """Where a test's repository lives: a SQLite file, then a PostgreSQL database; the storage
    suite runs once on each engine."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return tmp_path / "bot.sqlite3"
