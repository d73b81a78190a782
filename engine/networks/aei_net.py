"""AEI-Net (FaceShifter) as GHOST publishes it: U-Net/LinkNet attribute encoder + AAD generator.

Parameter names, shapes and the forward maths follow the official GHOST checkpoints
(`G_unet_{1,2,3}blocks.pth`), so those files load with `strict=True` and give the
published results. Verified against `../shared/golden/G_unet_*`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

BACKBONES = ("unet", "linknet")
OFFICIAL_LINEAR_STD = 0.001  # std of the official initialisation's linear weights


def init_official(module: nn.Module) -> None:
    """Give `module`'s layers the official GHOST initialisation, in place.

    The official `network/AEI_Net.py` applies its `weight_init` to the attribute encoder
    and the AAD generator before training from scratch: every Conv2d and ConvTranspose2d
    weight is drawn `xavier_normal_` (std sqrt(2 / (fan_in + fan_out))), their biases keep
    PyTorch's default; every Linear weight is drawn from N(0, 0.001) with a zero bias, so
    the AAD layers' identity terms (`fc1`, `fc2`) start near zero. PyTorch's default
    (uniform, std 1/sqrt(3 fan_in)) differs: sqrt(3) smaller for a square convolution,
    and 25 times larger for a linear layer over the 512-d identity, so a run from scratch
    without this does not start where the paper's did. Norm layers are left as they are,
    and so is the discriminator (the official code never initialises it). Loading weights
    replaces all of it, so only a generator trained from scratch needs this.
    """

    def init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=OFFICIAL_LINEAR_STD)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.xavier_normal_(m.weight)

    module.apply(init)  # children before parents, as the official `self.apply` visits them


def conv4x4(c_in: int, c_out: int) -> nn.Sequential:
    """Stride-2 downsampling conv + BatchNorm + LeakyReLU(0.1) (keys `N.0`, `N.1`)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.LeakyReLU(0.1, inplace=True),
    )


class Deconv4x4(nn.Module):
    """Stride-2 upsampling deconv + BN + LeakyReLU, then skip: concat (U-Net) or add (LinkNet)."""

    def __init__(self, c_in: int, c_out: int, backbone: str) -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose2d(
            c_in, c_out, kernel_size=4, stride=2, padding=1, bias=False
        )
        self.bn = nn.BatchNorm2d(c_out)
        self.lrelu = nn.LeakyReLU(0.1, inplace=True)
        self.backbone = backbone

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.lrelu(self.bn(self.deconv(x)))
        if self.backbone == "linknet":
            return x + skip
        return torch.cat((x, skip), dim=1)


class MLAttrEncoder(nn.Module):
    """Multi-level attribute encoder: eight feature maps from 2x2 up to 256x256."""

    def __init__(self, backbone: str = "unet") -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {backbone!r}")
        self.backbone = backbone
        self.conv1 = conv4x4(3, 32)
        self.conv2 = conv4x4(32, 64)
        self.conv3 = conv4x4(64, 128)
        self.conv4 = conv4x4(128, 256)
        self.conv5 = conv4x4(256, 512)
        self.conv6 = conv4x4(512, 1024)
        self.conv7 = conv4x4(1024, 1024)
        # U-Net concatenates the skip, so every deconv after the first sees twice the channels.
        k = 2 if backbone == "unet" else 1
        self.deconv1 = Deconv4x4(1024, 1024, backbone)
        self.deconv2 = Deconv4x4(1024 * k, 512, backbone)
        self.deconv3 = Deconv4x4(512 * k, 256, backbone)
        self.deconv4 = Deconv4x4(256 * k, 128, backbone)
        self.deconv5 = Deconv4x4(128 * k, 64, backbone)
        self.deconv6 = Deconv4x4(64 * k, 32, backbone)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feat1 = self.conv1(x)
        feat2 = self.conv2(feat1)
        feat3 = self.conv3(feat2)
        feat4 = self.conv4(feat3)
        feat5 = self.conv5(feat4)
        feat6 = self.conv6(feat5)
        z_attr1 = self.conv7(feat6)
        z_attr2 = self.deconv1(z_attr1, feat6)
        z_attr3 = self.deconv2(z_attr2, feat5)
        z_attr4 = self.deconv3(z_attr3, feat4)
        z_attr5 = self.deconv4(z_attr4, feat3)
        z_attr6 = self.deconv5(z_attr5, feat2)
        z_attr7 = self.deconv6(z_attr6, feat1)
        z_attr8 = F.interpolate(z_attr7, scale_factor=2, mode="bilinear", align_corners=True)
        return z_attr1, z_attr2, z_attr3, z_attr4, z_attr5, z_attr6, z_attr7, z_attr8


class AADLayer(nn.Module):
    """Adaptive Attentional Denormalisation: a learned mask mixes attribute and identity."""

    def __init__(self, c_x: int, c_attr: int, c_id: int) -> None:
        super().__init__()
        self.c_x = c_x
        self.conv1 = nn.Conv2d(c_attr, c_x, kernel_size=1, stride=1, padding=0, bias=True)
        self.conv2 = nn.Conv2d(c_attr, c_x, kernel_size=1, stride=1, padding=0, bias=True)
        self.fc1 = nn.Linear(c_id, c_x)
        self.fc2 = nn.Linear(c_id, c_x)
        self.norm = nn.InstanceNorm2d(c_x, affine=False)
        self.conv_h = nn.Conv2d(c_x, 1, kernel_size=1, stride=1, padding=0, bias=True)

    def forward(self, h_in: torch.Tensor, z_attr: torch.Tensor, z_id: torch.Tensor) -> torch.Tensor:
        h = self.norm(h_in)
        attr = self.conv1(z_attr) * h + self.conv2(z_attr)
        n = h.shape[0]
        gamma_id = self.fc1(z_id).reshape(n, self.c_x, 1, 1)
        beta_id = self.fc2(z_id).reshape(n, self.c_x, 1, 1)
        ident = gamma_id * h + beta_id
        mask = torch.sigmoid(self.conv_h(h))
        return (1 - mask) * attr + mask * ident


class _AADSequential(nn.ModuleList):
    """(AADLayer, ReLU, Conv) repeated; every AADLayer also receives z_attr and z_id.

    A module list keeps the official Sequential's key layout (`add_blocks.0`, `.2`,
    `.3`...) and has no one-input `forward` of its own to override.
    """

    def forward(self, h: torch.Tensor, z_attr: torch.Tensor, z_id: torch.Tensor) -> torch.Tensor:
        for module in self:
            h = module(h, z_attr, z_id) if isinstance(module, AADLayer) else module(h)
        return h


def _aad_unit(c_in: int, c_out: int, c_attr: int, c_id: int) -> list[nn.Module]:
    return [
        AADLayer(c_in, c_attr, c_id),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_in, c_out, kernel_size=3, stride=1, padding=1, bias=False),
    ]


class AADResBlock(nn.Module):
    """`num_blocks` AAD units with a residual; an extra AAD unit maps the residual on a
    channel change."""

    def __init__(self, c_in: int, c_out: int, c_attr: int, c_id: int, num_blocks: int) -> None:
        super().__init__()
        self.c_in = c_in
        self.c_out = c_out
        units: list[nn.Module] = []
        for i in range(num_blocks):
            units += _aad_unit(c_in, c_in if i < num_blocks - 1 else c_out, c_attr, c_id)
        self.add_blocks = _AADSequential(units)
        if c_in != c_out:
            self.last_add_block = _AADSequential(_aad_unit(c_in, c_out, c_attr, c_id))

    def forward(self, h: torch.Tensor, z_attr: torch.Tensor, z_id: torch.Tensor) -> torch.Tensor:
        x = self.add_blocks(h, z_attr, z_id)
        if self.c_in != self.c_out:
            h = self.last_add_block(h, z_attr, z_id)
        return x + h


# (c_in, c_out) of AADBlk1..8, and the attribute channels they read for each backbone.
_BLOCK_CHANNELS = [
    (1024, 1024),
    (1024, 1024),
    (1024, 1024),
    (1024, 512),
    (512, 256),
    (256, 128),
    (128, 64),
    (64, 3),
]
_ATTR_CHANNELS = {
    "unet": [1024, 2048, 1024, 512, 256, 128, 64, 64],
    "linknet": [1024, 1024, 512, 256, 128, 64, 32, 32],
}


class AADGenerator(nn.Module):
    """Eight AAD ResBlocks from 2x2 to 256x256; tanh output in [-1, 1]."""

    AADBlk8: AADResBlock

    def __init__(self, backbone: str = "unet", c_id: int = 512, num_blocks: int = 2) -> None:
        super().__init__()
        self.up1 = nn.ConvTranspose2d(c_id, 1024, kernel_size=2, stride=1, padding=0)
        for i, ((c_in, c_out), c_attr) in enumerate(
            zip(_BLOCK_CHANNELS, _ATTR_CHANNELS[backbone], strict=True), start=1
        ):
            setattr(self, f"AADBlk{i}", AADResBlock(c_in, c_out, c_attr, c_id, num_blocks))

    def forward(self, z_attr: tuple[torch.Tensor, ...], z_id: torch.Tensor) -> torch.Tensor:
        m = self.up1(z_id.reshape(z_id.shape[0], -1, 1, 1))
        for i in range(1, 8):
            m = getattr(self, f"AADBlk{i}")(m, z_attr[i - 1], z_id)
            m = F.interpolate(m, scale_factor=2, mode="bilinear", align_corners=True)
        return torch.tanh(self.AADBlk8(m, z_attr[7], z_id))


class EncoderGenerator(nn.Module):
    """What AEI-Net and its scaled variants share: `encoder` (target crop -> attribute
    maps) and `generator` (attribute maps and identity -> image), set by the subclass."""

    encoder: nn.Module
    generator: nn.Module

    def forward(
        self, xt: torch.Tensor, z_id: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        attr = self.encoder(xt)
        return self.generator(attr, z_id), attr

    def get_attr(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Attribute maps alone (the attribute loss compares these for Y and Xt)."""
        return self.encoder(x)


class AEINet(EncoderGenerator):
    """The face-swap generator: `forward(Xt, z_id) -> (Y, attributes)`.

    `Xt` is the target crop at 256x256, RGB, in [-1, 1]; `z_id` the raw (unnormalised)
    ArcFace embedding of the source. `Y` is in [-1, 1].
    """

    def __init__(self, backbone: str = "unet", num_blocks: int = 2, c_id: int = 512) -> None:
        super().__init__()
        if num_blocks < 1:
            raise ValueError(f"num_blocks must be at least 1, got {num_blocks}")
        self.backbone = backbone
        self.num_blocks = num_blocks
        self.encoder = MLAttrEncoder(backbone)
        self.generator = AADGenerator(backbone, c_id, num_blocks)
