"""Import of the authors' released checkpoint layout (plain nn.Sequential state dicts, keys model.<i>.*)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from voiceface.cli import main
from voiceface.errors import InputError
from voiceface.methods.gan.generate import ImportedGAN
from voiceface.methods.gan.weights import export_authors_state, import_authors, load_imported


class RefVoice(nn.Module):
    """Reference voice embedding network written independently in the authors' layout."""

    def __init__(self, c=(64, 256, 384, 576, 864), out=64):
        super().__init__()
        layers = []
        for a, b in zip(c[:-1], c[1:]):
            layers += [nn.Conv1d(a, b, 3, 2, 1, bias=False), nn.BatchNorm1d(b, affine=True), nn.ReLU(inplace=True)]
        layers.append(nn.Conv1d(c[-1], out, 3, 2, 1, bias=True))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        x = self.model(x)
        x = nn.functional.avg_pool1d(x, x.size(2), stride=1).view(x.size(0), -1)
        return nn.functional.normalize(x)


class RefGen(nn.Module):
    def __init__(self, cin=64, c=(1024, 512, 256, 128, 64)):
        super().__init__()
        layers = [nn.ConvTranspose2d(cin, c[0], 4, 1, 0, bias=True), nn.ReLU(inplace=True)]
        for a, b in zip(c[:-1], c[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=True), nn.ReLU(inplace=True)]
        layers.append(nn.ConvTranspose2d(c[-1], 3, 1, 1, 0, bias=True))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x.view(x.size(0), -1, 1, 1))


def _randomise_bn(net, gen):
    for m in net.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.num_batches_tracked.fill_(123)


def test_import_reproduces_reference_forward(tmp_path):
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    ref_v, ref_g = RefVoice().eval(), RefGen().eval()
    _randomise_bn(ref_v, gen)
    torch.save(ref_v.state_dict(), tmp_path / "voice_embedding.pth")
    torch.save(ref_g.state_dict(), tmp_path / "generator.pth")
    assert "model.1.running_mean" in ref_v.state_dict() and "model.10.weight" in ref_g.state_dict()

    mel = torch.randn(3, 64, 437, generator=gen)
    with torch.no_grad():
        e_ref = ref_v(mel)
        f_ref = ref_g(e_ref)

    ours_v, arch_v = import_authors("voice", tmp_path / "voice_embedding.pth")
    ours_g, arch_g = import_authors("generator", tmp_path / "generator.pth")
    assert arch_v == {"mel_bins": 64, "channels": [256, 384, 576, 864], "embed_dim": 64}
    assert arch_g["channels"] == [1024, 512, 256, 128, 64]
    with torch.no_grad():
        e = ours_v(mel)
        f = ours_g(e)
    assert f.shape == (3, 3, 64, 64)
    torch.testing.assert_close(e, e_ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(f, f_ref, atol=1e-6, rtol=0)
    # round trip back to the authors' layout
    back = export_authors_state(ours_v)
    assert set(back) == set(ref_v.state_dict())

    # the CLI writes voiceface checkpoints that generation can use
    assert main(["weights", "import", "--kind", "voice", str(tmp_path / "voice_embedding.pth"),
                 "--out", str(tmp_path / "v.pt")]) == 0
    assert main(["weights", "import", "--kind", "generator", str(tmp_path / "generator.pth"),
                 "--out", str(tmp_path / "g.pt")]) == 0
    loaded = load_imported(tmp_path / "v.pt")["voice"]
    with torch.no_grad():
        torch.testing.assert_close(loaded(mel), e_ref, atol=1e-6, rtol=0)
    model = ImportedGAN(tmp_path / "v.pt", tmp_path / "g.pt")
    torch.testing.assert_close(model.faces(mel), f_ref.clamp(-1, 1), atol=1e-6, rtol=0)


def test_import_mismatch_names_the_key(tmp_path, capsys):
    ref = RefVoice()
    state = ref.state_dict()
    del state["model.4.running_var"]
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(InputError, match=r"model\.4\.running_var"):
        import_authors("voice", tmp_path / "broken.pth")
    state = RefGen().state_dict()
    state["model.2.bias"] = torch.zeros(7)
    torch.save(state, tmp_path / "badshape.pth")
    with pytest.raises(InputError, match=r"model\.2\.bias"):
        import_authors("generator", tmp_path / "badshape.pth")
    # a generator file given as a voice network: clear one-line CLI error, exit status 2
    torch.save(RefGen().state_dict(), tmp_path / "gen.pth")
    assert main(["weights", "import", "--kind", "voice", str(tmp_path / "gen.pth"), "--out",
                 str(tmp_path / "x.pt")]) == 2
    assert "model." in capsys.readouterr().err


def test_generate_cli_with_imported_weights(tmp_path, voxceleb1_samples):
    torch.manual_seed(1)
    torch.save(RefVoice().eval().state_dict(), tmp_path / "voice_embedding.pth")
    torch.save(RefGen().state_dict(), tmp_path / "generator.pth")
    for kind, name in (("voice", "voice_embedding"), ("generator", "generator")):
        assert main(["weights", "import", "--kind", kind, str(tmp_path / f"{name}.pth"),
                     "--out", str(tmp_path / f"{kind}.pt")]) == 0
    wav = sorted(voxceleb1_samples.glob("*.wav"))[0]
    out = tmp_path / "faces"
    assert main(["generate", str(wav), "-o", str(out), "--run", str(tmp_path / "generator.pt"),
                 "--voice", str(tmp_path / "voice.pt")]) == 0
    assert (out / f"{wav.stem}.png").is_file() and (out / "sheet.png").is_file()
    # an imported generator without its voice network is a one-line error
    assert main(["generate", str(wav), "-o", str(out), "--run", str(tmp_path / "generator.pt")]) == 2
