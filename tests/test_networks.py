import torch

from svdd_lightning.networks.sequence import DenoiserFeatureRegressor, SequenceDenoiser


def test_denoiser_feature_regressor_starts_from_pretrained_weights(tmp_path):
    torch.manual_seed(0)
    denoiser = SequenceDenoiser(vocab_size=5, channels=8, num_layers=2, time_dim=8)
    path = tmp_path / "pretrained.ckpt"
    torch.save({"state_dict": {f"diffusion.network.{k}": v for k, v in denoiser.state_dict().items()},
                "svdd": {"kind": "diffusion", "domain": "molecule"}}, path)
    value = DenoiserFeatureRegressor(vocab_size=5, channels=8, num_layers=2, time_dim=8, init_from=str(path))
    for k, v in denoiser.state_dict().items():
        torch.testing.assert_close(value.denoiser.state_dict()[k], v)
    tokens = torch.randint(0, 6, (3, 10))  # 5 = mask
    out = value(tokens, torch.full((3,), 0.5))
    assert out.shape == (3,)
    # Soft one-hots embed as mixtures, so a one-hot input gives the same value as its tokens.
    clean = torch.randint(0, 5, (3, 10))
    onehot = torch.nn.functional.one_hot(clean, 5).float()
    torch.testing.assert_close(value(onehot), value(clean))


def test_transformer_regressor_shapes_and_one_hot_equivalence():
    from svdd_lightning.networks.sequence import TransformerRegressor

    torch.manual_seed(0)
    net = TransformerRegressor(vocab_size=5, seq_len=10, channels=16, num_layers=2, num_heads=2, time_dim=8)
    tokens = torch.randint(0, 6, (3, 10))
    assert net(tokens, torch.full((3,), 0.3)).shape == (3,)
    clean = torch.randint(0, 5, (3, 10))
    torch.testing.assert_close(net(torch.nn.functional.one_hot(clean, 5).float()), net(clean))
