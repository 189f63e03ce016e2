"""The default tolerances per quantization mode mean something: a damaged model fails under each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lamb import runtime_lib
from lamb.verify import compare_outputs, default_tolerances

MODES = runtime_lib.get("ai-edge-litert").format.modes

DEMO = Path(__file__).resolve().parent.parent / "models" / "demo"


@pytest.fixture(scope="module")
def damaged_outputs():
    """The trained demo model on 400 seeded crops of its sample images, and a copy whose last
    layer's weights are perturbed just enough to flip 2-6 % of its top-1 answers: (reference
    outputs, damaged outputs, fraction flipped). A damage a user would not ship; under the old
    defaults dynamic-range (>= 90 % top-1) and int8 (>= 80 %) passed it."""
    import keras
    from PIL import Image

    from lamb.handler.lambkit import preprocess

    model = keras.models.load_model(DEMO / "clothing.h5", compile=False)
    height, width = model.input_shape[1:3]
    rng = np.random.default_rng(0)
    files = sorted((DEMO / "samples").glob("*.png"))
    crops = []
    for i in range(400):
        image = Image.open(files[i % len(files)]).convert("RGB")
        w, h = image.size
        s = rng.uniform(0.6, 1.0)
        cw, ch = int(w * s), int(h * s)
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        pixels = np.asarray(image.crop((x0, y0, x0 + cw, y0 + ch)).resize((width, height)), np.float32)
        crops.append(np.clip((pixels[:, ::-1] if rng.random() < 0.5 else pixels) * rng.uniform(0.7, 1.3), 0, 255))
    batch = preprocess(np.stack(crops), "xception")
    reference = model.predict(batch, verbose=0)
    head = model.get_layer("logits")
    kernel, bias = head.get_weights()
    noise = np.random.default_rng(0).normal(size=kernel.shape).astype(np.float32) * kernel.std()

    def damage(scale: float) -> tuple[np.ndarray, float]:
        head.set_weights([kernel + scale * noise, bias])
        out = model.predict(batch, verbose=0)
        return out, float(np.mean(reference.argmax(1) != out.argmax(1)))

    low, high = 0.0, 1.0  # bisect the noise scale until a few percent of answers flip
    for _ in range(20):
        damaged, flipped = damage((low + high) / 2)
        if flipped < 0.02:
            low = (low + high) / 2
        elif flipped > 0.06:
            high = (low + high) / 2
        else:
            break
    assert 0.02 <= flipped <= 0.06, flipped
    return reference, damaged, flipped


@pytest.mark.parametrize("mode", [m.name for m in MODES])
def test_a_damaged_model_fails_under_every_modes_defaults(damaged_outputs, mode):
    reference, damaged, flipped = damaged_outputs
    _metrics, _checks, failures = compare_outputs([reference], [damaged], ["logits"], default_tolerances(mode))
    assert any("top-1 agreement" in f for f in failures), (mode, flipped, failures)


def test_every_mode_asks_99_percent_top1_agreement():
    # What the modes measurably achieve on real images (see the table in lamb.verify.tolerances).
    assert all(m.tolerances.min_top1 >= 0.99 for m in MODES)
    rtols = [default_tolerances(m).rtol for m in ("float32", "float16", "dynamic", "int8")]
    assert rtols == sorted(rtols) and rtols[-1] <= 0.25  # not 50 % of the range any more
