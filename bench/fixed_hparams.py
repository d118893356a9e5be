"""Train one family with fixed hyperparameters, and variants of them, on a finished training run's
features; print each variant's validation and test accuracy (and test macro-F1), from the project's
own prediction and evaluation code. This is how the demo profile's fixed settings were chosen
(BENCHMARKS.md, "Where the minutes go, and whether the method learns").

    python bench/fixed_hparams.py FAMILY [--run RUN_NAME_OR_ID] [--config configs/demo.yaml]
        [--variant NAME:KEY=VALUE[,KEY=VALUE...]] ...

The base hyperparameters are the family's fixed ones in ``--config`` (``parameters.families``), the
training settings its ``parameters.training``; each ``--variant`` overrides some of them (values are
YAML: ``kernel_size=5``, ``optimizer=rmsprop``, ``learning_rate=3e-4``; ``epochs`` and
``early_stopping_patience`` set the training's). The features are those the run trained the family
on (its ``train_<family>`` step's inputs; otherwise the run's scaled features), so no tuning and no
feature extraction happen here: each variant is one ``speech_emotion.training.train_model`` call.
Reads the ZenML store of ``ZENML_CONFIG_PATH`` (the Makefile's).
"""

from __future__ import annotations

import argparse

import yaml


def parse_variant(text: str) -> tuple[str, dict]:
    """``"k5:kernel_size=5,dropout=0.1"`` -> ``("k5", {"kernel_size": 5, "dropout": 0.1})``."""
    name, _, assignments = text.partition(":")
    values = {}
    for item in filter(None, assignments.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--variant {text!r}: {item!r} is not KEY=VALUE")
        values[key.strip()] = yaml.safe_load(value)
    return name, values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("family")
    parser.add_argument("--run", help="run name or id (default: the latest training_pipeline run)")
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--variant", action="append", default=[], type=parse_variant,
                        help="NAME:KEY=VALUE,... (repeatable; the base settings run as 'base')")
    args = parser.parse_args()

    from zenml.client import Client

    from speech_emotion.config import ModelConfig, TrainingConfig
    from speech_emotion.evaluation import evaluate_probabilities
    from speech_emotion.training import train_model

    params = yaml.safe_load(open(args.config))["parameters"]
    base_hp = dict(params.get("families", {}).get(args.family) or {})
    base_training = dict(params.get("training") or {})

    client = Client()
    run = client.get_pipeline_run(args.run) if args.run else client.get_pipeline("training_pipeline").runs[0]
    scaled = run.steps["scale_features"].outputs
    trained_on = run.steps.get(f"train_{args.family}")
    train, val = ((trained_on.inputs["train"][0].load(), trained_on.inputs["val"][0].load()) if trained_on
                  else (scaled["train_features"][0].load(), scaled["val_features"][0].load()))
    test = scaled["test_features"][0].load()
    print(f"run {run.name}: {args.family} on {len(train)} training, {len(val)} validation, {len(test)} test clips")
    print(f"base: {base_hp} training {base_training}")

    training_keys = set(TrainingConfig.model_fields)
    for name, override in [("base", {}), *args.variant]:
        hp = {**base_hp, **{k: v for k, v in override.items() if k not in training_keys}}
        training = TrainingConfig(**{**base_training, **{k: v for k, v in override.items() if k in training_keys}})
        trained = train_model(train, val, ModelConfig(family=args.family, hparams=hp), training, progress=False)
        val_ev, test_ev = (evaluate_probabilities(name, split, trained.predict_proba(fs), fs.labels, fs.corpus)
                           for split, fs in (("val", val), ("test", test)))
        print(f"{name:<16} epochs {len(trained.history['loss']):>3}  val accuracy {val_ev.accuracy:.3f}  "
              f"test accuracy {test_ev.accuracy:.3f} (F1-macro {test_ev.f1_macro:.3f})  {override}", flush=True)


if __name__ == "__main__":
    main()
