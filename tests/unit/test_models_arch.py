"""Architectures: shapes, parameter counts against the paper's numbers, registry round trips,
the YAE loss ramp, and MC-dropout inference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gabaapp.models.cnn import CNN, CNNConfig
from gabaapp.models.fcnn import FCNN, FCNNConfig
from gabaapp.models.inference import predict, predict_ensemble
from gabaapp.models.registry import (
    PRESETS,
    build_model,
    config_from_dict,
    config_to_dict,
    model_config,
    n_parameters,
)
from gabaapp.models.yae import YAE, YAEConfig, q_weight_at


def test_yae_paper_parameter_counts_match_paper_notes():
    # paper-notes §4.3: encoder ~6.98 M, decoder ~2.81 M, quantifier ~0.20 M parameters.
    m = YAE(YAEConfig())
    enc, dec, q = (n_parameters(p) for p in (m.encoder, m.decoder, m.quantifier))
    assert enc == pytest.approx(6.98e6, rel=0.01)
    assert dec == pytest.approx(2.81e6, rel=0.01)
    assert q == pytest.approx(0.20e6, rel=0.03)
    assert m.config.latent == 128


def test_yae_shapes_and_row_sharing():
    cfg = YAEConfig(n_points=64, lin=3, lout=3, units=8, dropout=0.0)
    m = YAE(cfg).eval()
    x = torch.randn(3, 4, 64)
    q, recon = m.forward_both(x)
    assert q.shape == (3, 5) and recon.shape == (3, 4, 64)
    # The encoder is shared across rows: swapping two input rows swaps their reconstructions.
    x2 = x[:, [1, 0, 2, 3]]
    _, recon2 = m.forward_both(x2)
    torch.testing.assert_close(recon2[:, 0], recon[:, 1])
    assert torch.all((q > 0) & (q < 1))  # sigmoid output


def test_cnn_paper_feature_width_matches_shape_walkthrough():
    # paper-notes §4.2: widths 2040, 2032, row mixing 2028 -> 2024, ... final 23 x 512.
    cfg = CNNConfig()
    assert cfg.feature_width() == 23
    plan = cfg.block_plan()
    assert [p[1] for p in plan[2:4]] == [3, 2]  # 4 rows -> 2 -> 1
    assert len(plan) == 2 + 2 + 8


def test_cnn_forward_matches_planned_width():
    cfg = model_config("cnn", "cnn_cpu")
    m = CNN(cfg).eval()
    feats = m.features(torch.randn(2, 1, 4, 2048))
    assert feats.shape == (2, cfg.f2, 1, cfg.feature_width())
    assert m(torch.randn(2, 4, 2048)).shape == (2, 5)


def test_cnn_stride_code_positive_strides():
    cfg = CNNConfig(s1=2, s2=3, f1=4, f2=4, dense=8)
    m = CNN(cfg).eval()
    feats = m.features(torch.randn(1, 1, 4, 2048))
    assert feats.shape[-1] == cfg.feature_width()


def test_fcnn_paper_dense_input_and_row_selection():
    cfg = FCNNConfig()
    m = FCNN(cfg)
    # paper-notes §4.4: 64 x 1024 = 65 536 features into Dense(1024).
    assert m.head[1].in_features == 65536
    small = FCNN(FCNNConfig(filters=(2, 2, 2, 2, 2), dense=4)).eval()
    x = torch.randn(2, 4, 2048)
    y = small(x)
    # Only OFF-real and ON-real (rows 1, 3) are used: changing the imaginary rows changes nothing.
    x2 = x.clone()
    x2[:, [0, 2]] = 0
    torch.testing.assert_close(small(x2), y)


def test_registry_round_trip_and_errors():
    for preset, (name, cfg) in PRESETS.items():
        again = config_from_dict(name, config_to_dict(cfg))
        assert again == cfg, preset
    assert model_config("yae", units=256).units == 256
    with pytest.raises(ValueError, match="unknown preset"):
        model_config("yae", "cnn_paper")
    with pytest.raises(ValueError, match="unknown yae option"):
        model_config("yae", bogus=1)
    with pytest.raises(ValueError, match="unknown model"):
        build_model("mlp", {})
    with pytest.raises(ValueError, match="activation"):
        YAEConfig(act="swish")


def test_q_weight_ramp():
    assert q_weight_at(0) == pytest.approx(0.1)
    assert q_weight_at(12) == pytest.approx(0.1 + 0.9 * 12 / 25)
    assert q_weight_at(25) == 1.0 and q_weight_at(400) == 1.0


def test_yae_loss_is_weighted_huber():
    torch.manual_seed(0)
    m = YAE(YAEConfig(n_points=32, lin=2, lout=2, units=4, dropout=-1)).eval()
    x, clean, target = torch.randn(4, 4, 32), torch.randn(4, 4, 32), torch.rand(4, 5)
    q, recon = m.forward_both(x)
    ae = torch.nn.functional.huber_loss(recon, clean)
    qq = torch.nn.functional.huber_loss(q, target)
    loss0, _ = m.loss(x, clean, target, 0)
    loss30, _ = m.loss(x, clean, target, 30)
    torch.testing.assert_close(loss0, ae + 0.1 * qq)
    torch.testing.assert_close(loss30, ae + qq)


def test_predict_mc_dropout_gives_spread_and_is_reproducible():
    torch.manual_seed(0)
    m = YAE(YAEConfig(n_points=64, lin=3, lout=2, units=8, dropout=0.3)).eval()
    x = np.random.default_rng(0).normal(size=(6, 4, 64)).astype(np.float32)
    mean1, sd1 = predict(m, x, 1)
    assert mean1.shape == (6, 5) and np.all(sd1 == 0)
    again, _ = predict(m, x, 1)
    np.testing.assert_array_equal(mean1, again)  # eval mode: deterministic
    mean, sd = predict(m, x, 16, seed=3)
    mean_b, sd_b = predict(m, x, 16, seed=3)
    np.testing.assert_array_equal(mean, mean_b)
    assert np.all(sd > 0)
    assert not m.training  # predict leaves the mode as it found it
    ens_mean, ens_sd = predict_ensemble([m, m], x)
    np.testing.assert_allclose(ens_mean, mean1, rtol=1e-6)
    assert np.all(ens_sd == 0)
