"""Model quality on the validation split: the shipped model vs the seed method's network vs an
order-5 Kneser-Ney n-gram, all scored on whole held-out songs.

    python -m bench.bench_quality --help
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.common import report, split_as_trained

DATA = "../shared/data/esac/deutschl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--model", default=None, help="model folder (default: the shipped one)")
    parser.add_argument(
        "--seed-model",
        default="runs/seed-architecture.keras",
        help="where the seed network is saved; trained first if missing",
    )
    parser.add_argument(
        "--budget-minutes",
        type=float,
        default=None,
        help="training budget for the seed network (default: the shipped "
        "model's own training time)",
    )
    parser.add_argument("--ngram-order", type=int, default=5)
    args = parser.parse_args()

    import keras

    from bench import seed_architecture
    from generator.engine import MelodyEngine
    from generator.paths import default_model_dir
    from generator.training.ngram import KneserNey
    from generator.training.scoring import score_songs

    engine = MelodyEngine.load(args.model or default_model_dir())
    train_songs, valid_songs = split_as_trained(engine, args.data)
    vocab = engine.vocab

    ours = score_songs(engine.step_model, vocab, valid_songs).as_dict()
    ngram = KneserNey(vocab, args.ngram_order).fit(train_songs).score(valid_songs).as_dict()

    seed_path = Path(args.seed_model)
    training_info_path = seed_path.with_suffix(".json")
    if not seed_path.exists():
        budget = args.budget_minutes or engine.meta["wall_time_s"] / 60
        seed_path.parent.mkdir(parents=True, exist_ok=True)
        info = seed_architecture.train(vocab, train_songs, budget, seed_path)
        training_info_path.write_text(json.dumps(info))
    info = json.loads(training_info_path.read_text())
    seed_model = keras.saving.load_model(seed_path, compile=False)
    seed_step = seed_architecture.as_step_model(seed_model, len(vocab))
    seed_carried = score_songs(seed_step, vocab, valid_songs).as_dict()
    seed_windowed = seed_architecture.score_windowed(seed_step, vocab, valid_songs)

    def row(name, scores, budget):
        return (
            name,
            f"{scores['nll_bits_per_step']:.3f}",
            f"{scores['nll_nats_per_step']:.3f}",
            f"{scores['accuracy']:.3f}",
            f"{scores['non_hold_accuracy']:.3f}",
            budget,
        )

    hp = engine.meta["hyperparameters"]
    ours_budget = f"{engine.meta['epochs_run']} epochs, {engine.meta['wall_time_s'] / 60:.0f} min"
    seed_budget = f"{info['epochs_equivalent']:.2f} epochs, {info['minutes']:.0f} min"
    rows = [
        (
            "model (validation: whole songs)",
            "bits/step",
            "nats/step",
            "accuracy",
            "non-hold acc.",
            "training",
        ),
        row(f"shipped: Embedding→{hp['depth']}×LSTM({hp['units']})", ours, ours_budget),
        row("seed network, state carried", seed_carried, seed_budget),
        row("seed network, 64-step windows", seed_windowed, seed_budget),
        row(f"{args.ngram_order}-gram Kneser-Ney", ngram, "counts"),
    ]
    report(
        f"Model quality on {len(valid_songs)} validation songs",
        rows,
        {
            "bench": "quality",
            "shipped": ours,
            "seed_state_carried": seed_carried,
            "seed_windowed": seed_windowed,
            "seed_training": info,
            "ngram": ngram,
        },
    )


if __name__ == "__main__":
    main()
