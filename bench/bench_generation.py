"""MelodyRecord latency for a 500-step melody: the seed method vs the stateful NumPy step.

The seed method (the well-known tutorial) calls ``model.predict`` on the whole 64-step window for
every new step. Ours advances the LSTM state one step at a time. Same model, same run.

    python -m bench.bench_generation --help
"""

from __future__ import annotations

import argparse
import statistics

from bench.common import median_ms, pin_to_cores, report, timed

WINDOW = 64


def seed_method(keras_model, engine, request, steps: int) -> list[int]:
    """Re-run the network over the last 64 steps for every new step, as the tutorial does (with
    the same form inputs beside each step as the fast path reads)."""
    import numpy as np

    from generator import form
    from generator.engine import sample

    prepared = engine.prepare(request)
    layout = prepared.layout(0)
    tracker = form.FormTracker(layout, engine.vocab.delimiter_id)
    melody = list(prepared.seed_ids)
    # inputs[i] is fed with rows[i], the context of the step it predicts: the delimiter opens the
    # song, so the step before step k is inputs[WINDOW + k]
    inputs = [engine.vocab.delimiter_id] * (WINDOW + 1) + melody
    rows = [np.zeros(len(form.CONTEXT_COLUMNS), np.int32)] * WINDOW
    rows += [np.array(tracker.context(k, melody), np.int32) for k in range(len(melody))]
    rng = np.random.default_rng(prepared.rng_seed)
    allowed = np.ones(len(engine.vocab), bool)
    allowed[engine.vocab.delimiter_id] = False
    columns = [form.CONTEXT_COLUMNS.index(n) for n in engine.step_model.form_inputs]
    while len(melody) < steps:
        rows.append(np.array(tracker.context(len(melody), melody), np.int32))
        window_ids = np.array([inputs[-WINDOW:]], np.int32)
        window_rows = np.array([rows[-WINDOW:]], np.int32)
        feed = {"steps": window_ids} | {
            name: window_rows[..., c]
            for name, c in zip(engine.step_model.form_inputs, columns, strict=True)
        }
        probabilities = keras_model.predict(feed, verbose=0)[0, -1]
        choice = sample(np.log(probabilities + 1e-12), rng, request, allowed)
        melody.append(choice)
        inputs.append(choice)
    return melody


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model folder (default: the shipped one)")
    parser.add_argument("--steps", type=int, default=500, help="melody length in 16th steps")
    parser.add_argument("--repeats", type=int, default=20, help="runs of the fast path")
    parser.add_argument("--seed-repeats", type=int, default=1, help="runs of the slow seed method")
    parser.add_argument("--cores", type=int, default=1, help="pin to this many cores (0: all)")
    parser.add_argument("--batch", type=int, default=16, help="melodies composed together")
    args = parser.parse_args()
    pin_to_cores(args.cores)

    from generator.engine import MelodyEngine
    from generator.model import MODEL_FILE, load_keras_model
    from generator.paths import default_model_dir
    from generator.request import MelodyRequest

    model_dir = args.model or default_model_dir()
    engine = MelodyEngine.load(model_dir)
    keras_model = load_keras_model(f"{model_dir}/{MODEL_FILE}")
    request = MelodyRequest.parse(f"C4 D4 E4 F4 G4 temp=1.0 seed=1 steps={args.steps}")

    def ours():
        (melody,) = engine.compose_many([request])
        assert melody.steps == args.steps

    batch = [request.with_options(rng_seed=i) for i in range(args.batch)]
    fast = timed(ours, args.repeats)
    batched = timed(lambda: engine.compose_many(batch), 5)
    slow = timed(lambda: seed_method(keras_model, engine, request, args.steps), args.seed_repeats)

    fast_ms, slow_ms = median_ms(fast), median_ms(slow)
    batch_ms = median_ms(batched) / args.batch
    rows = [
        ("method", f"{args.steps}-step melody (median)", "per step", "speed-up"),
        (
            "seed method: predict on 64-step window",
            f"{slow_ms:,.0f} ms",
            f"{slow_ms / args.steps:.2f} ms",
            "1×",
        ),
        (
            "stateful NumPy step",
            f"{fast_ms:,.1f} ms",
            f"{fast_ms / args.steps * 1000:.0f} µs",
            f"{slow_ms / fast_ms:,.0f}×",
        ),
        (
            f"stateful, batch of {args.batch} (per melody)",
            f"{batch_ms:,.1f} ms",
            f"{batch_ms / args.steps * 1000:.0f} µs",
            f"{slow_ms / batch_ms:,.0f}×",
        ),
    ]
    report(
        f"MelodyRecord latency, {args.cores or 'all'} core(s)",
        rows,
        {
            "bench": "generation",
            "steps": args.steps,
            "cores": args.cores,
            "seed_method_ms": round(slow_ms, 1),
            "stateful_ms": round(fast_ms, 2),
            "stateful_ms_stdev": round(statistics.pstdev(fast) * 1000, 2),
            "batched_ms_per_melody": round(batch_ms, 2),
            "speedup": round(slow_ms / fast_ms, 1),
        },
    )


if __name__ == "__main__":
    main()
