"""Model registry: name -> (config class, module class), named presets, and config <-> dict
conversion so a model can be rebuilt from the JSON of its model card alone."""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from gabaapp.models.cnn import CNN, CNNConfig
from gabaapp.models.fcnn import FCNN, FCNNConfig
from gabaapp.models.yae import YAE, YAEConfig

MODELS: dict[str, tuple[type, type[nn.Module]]] = {
    "yae": (YAEConfig, YAE),
    "cnn": (CNNConfig, CNN),
    "fcnn": (FCNNConfig, FCNN),
}

# Named configurations. "*_paper" are the paper's selected/deployed architectures (§4.2-4.4);
# "*_cpu" are members of the same families sized to train on a few CPU cores.
PRESETS: dict[str, tuple[str, Any]] = {
    "yae_paper": ("yae", YAEConfig()),
    "yae_top1": ("yae", YAEConfig(lout=7, units=448, layers=4)),
    "cnn_paper": ("cnn", CNNConfig()),
    "cnn_small": (
        "cnn",
        CNNConfig(s1=2, s2=3, c1=7, c2=5, c3=3, c4=3, f1=256, f2=512, dense=1024),
    ),
    "cnn_cpu": (
        "cnn",
        CNNConfig(s1=-2, s2=-3, c1=9, c2=9, c3=5, c4=3, f1=16, f2=32, dense=256),
    ),
    "fcnn_paper": ("fcnn", FCNNConfig()),
    "fcnn_cpu": ("fcnn", FCNNConfig(filters=(8, 16, 32, 64, 128), dense=256)),
}
DEFAULT_PRESET = {"yae": "yae_paper", "cnn": "cnn_cpu", "fcnn": "fcnn_cpu"}


def _check_name(name: str) -> None:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {tuple(MODELS)}")


def model_config(name: str, preset: str | None = None, **overrides: Any) -> Any:
    """Return the config of model `name`: `preset` (default DEFAULT_PRESET[name]) with
    `overrides` replacing fields. Raises ValueError for unknown names, presets or fields."""
    _check_name(name)
    preset = preset or DEFAULT_PRESET[name]
    if preset not in PRESETS or PRESETS[preset][0] != name:
        options = [p for p, (m, _) in PRESETS.items() if m == name]
        raise ValueError(f"unknown preset {preset!r} for model {name!r}; choose from {options}")
    base = PRESETS[preset][1]
    fields = {f.name for f in dataclasses.fields(base)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown {name} option(s) {unknown}; known: {sorted(fields)}")
    return dataclasses.replace(base, **overrides)


def config_to_dict(config: Any) -> dict[str, Any]:
    """Return the config as a JSON-ready dict (tuples become lists)."""
    return {
        k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()
    }


def config_from_dict(name: str, values: dict[str, Any]) -> Any:
    """Return the config of model `name` built from `values` (as written by config_to_dict)."""
    _check_name(name)
    cls = MODELS[name][0]
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(f"unknown {name} option(s) {unknown}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def build_model(name: str, config: Any) -> nn.Module:
    """Return a freshly initialised model `name` with `config` (a config instance or dict)."""
    _check_name(name)
    if isinstance(config, dict):
        config = config_from_dict(name, config)
    cfg_cls, module_cls = MODELS[name]
    if not isinstance(config, cfg_cls):
        raise ValueError(f"model {name!r} needs a {cfg_cls.__name__}, got {type(config).__name__}")
    return module_cls(config)


def n_parameters(model: nn.Module) -> int:
    """Return the number of trainable parameters of `model`."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
