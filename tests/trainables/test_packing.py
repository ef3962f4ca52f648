"""Packing (PacGAN): how samples become packs, and how D's per-pack class logits go back
to the samples they belong to. The networks' side is in test_models.py (every
architecture judges packs), the training's in test_engine.py (every loss and penalty)."""

import torch

from gansweep.trainables.models import ModelSpec
from gansweep.trainables.packing import pack, packed_shape, packed_spec, unpack_class_logits


def test_vectors_are_concatenated_in_order():
    x = torch.arange(12.0).view(6, 2)
    torch.testing.assert_close(pack(x, 3), torch.arange(12.0).view(2, 6))
    assert packed_shape((2,), 3) == (6,)


def test_images_are_stacked_along_the_channels():
    x = torch.randn(6, 3, 4, 4)
    packs = pack(x, 2)
    assert packs.shape == (3, 6, 4, 4) and packed_shape((3, 4, 4), 2) == (6, 4, 4)
    for j in range(3):
        for i in range(2):
            torch.testing.assert_close(packs[j, 3 * i : 3 * i + 3], x[2 * j + i], rtol=0, atol=0)


def test_pac_1_is_the_input_itself():
    x = torch.randn(4, 2)
    assert pack(x, 1) is x and unpack_class_logits(x, 1) is x
    spec = ModelSpec((1, 8, 8), z_dim=4, width=8, num_classes=10)
    assert packed_spec(spec, 1) is spec


def test_a_packed_spec_has_a_class_head_per_sample_of_its_pack():
    spec = ModelSpec((1, 8, 8), z_dim=4, width=8, num_classes=10, d_norm="layer")
    packed = packed_spec(spec, 3)
    assert (packed.data_shape, packed.num_classes) == ((3, 8, 8), 30)
    assert (packed.z_dim, packed.width, packed.d_norm) == (4, 8, "layer")


def test_class_logits_go_back_to_the_samples_they_were_packed_from():
    """A class head that reads each sample's slot of its pack (here: the channel means of
    the slot, K = C) gives, once unpacked, what it reads from each sample alone."""
    x = torch.randn(8, 3, 4, 4)
    for pac in (2, 4):
        per_pack = pack(x, pac).mean(dim=(2, 3))  # [8 / pac, pac * 3]
        torch.testing.assert_close(unpack_class_logits(per_pack, pac), x.mean(dim=(2, 3)))
